//! A small `multipart/form-data` reader: webhook clients send a handful of short text fields, so
//! the whole body is in memory already and parts are borrowed slices of it.

/// One part: its field name and content.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub name: String,
    pub content: &'a [u8],
}

/// The `boundary` parameter of a multipart content type, unquoted.
pub(crate) fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"')).filter(|b| !b.is_empty())
    })
}

/// Splits a multipart body into its parts. Parts without a field name are skipped.
pub(crate) fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, &'static str> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = match find(body, delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return Err("multipart body has no boundary line"),
    };
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        rest = skip_line_end(rest).ok_or("malformed multipart boundary line")?;
        let (header_len, content_start) = header_end(rest).ok_or("multipart part has no header end")?;
        let headers = &rest[..header_len];
        let content_and_rest = &rest[content_start..];
        let end = find(content_and_rest, delimiter).ok_or("multipart body is not terminated")?;
        let mut content = &content_and_rest[..end];
        content = content.strip_suffix(b"\n").unwrap_or(content);
        content = content.strip_suffix(b"\r").unwrap_or(content);
        if let Some(name) = field_name(headers) {
            out.push(Part { name, content });
        }
        rest = &content_and_rest[end + delimiter.len()..];
    }
}

/// Where a part's headers end and its content starts: at its first blank line, each line ended
/// by CRLF or by a bare LF. Only the headers are read, so many parts cost what their bytes do.
fn header_end(part: &[u8]) -> Option<(usize, usize)> {
    let blank_after = |i: usize| match part.get(i..) {
        Some([b'\n', ..]) => Some(i + 1),
        Some([b'\r', b'\n', ..]) => Some(i + 2),
        _ => None,
    };
    if let Some(start) = blank_after(0) {
        return Some((0, start));
    }
    memchr::memchr_iter(b'\n', part).find_map(|nl| {
        let start = blank_after(nl + 1)?;
        Some((if nl > 0 && part[nl - 1] == b'\r' { nl - 1 } else { nl }, start))
    })
}

fn skip_line_end(b: &[u8]) -> Option<&[u8]> {
    let b = b.strip_prefix(b"\r").unwrap_or(b);
    b.strip_prefix(b"\n")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The `name` parameter of the part's `Content-Disposition: form-data` header.
fn field_name(headers: &[u8]) -> Option<String> {
    let headers = String::from_utf8_lossy(headers);
    headers.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if !key.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|param| {
            let (k, v) = param.split_once('=')?;
            k.trim().eq_ignore_ascii_case("name").then(|| v.trim().trim_matches('"').to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_boundary() {
        assert_eq!(boundary("multipart/form-data; boundary=abc"), Some("abc"));
        assert_eq!(boundary("multipart/form-data;BOUNDARY=\"a b\""), Some("a b"));
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
    }

    #[test]
    fn splits_parts() {
        let body = b"preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\nworld\r\n--XX\r\nContent-Disposition: form-data; name=\"username\"\r\nContent-Type: text/plain\r\n\r\nbot\r\n--XX\r\nContent-Type: text/plain\r\n\r\nnameless\r\n--XX--\r\n";
        let got = parts(body, "XX").unwrap();
        assert_eq!(
            got,
            vec![
                Part { name: "text".into(), content: b"hello\r\nworld" },
                Part { name: "username".into(), content: b"bot" },
            ]
        );
    }

    #[test]
    fn accepts_bare_newlines() {
        let body = b"--XX\nContent-Disposition: form-data; name=text\n\nhi\n--XX--\n";
        assert_eq!(parts(body, "XX").unwrap(), vec![Part { name: "text".into(), content: b"hi" }]);
    }

    /// Headers end at the first blank line, whichever line ends the part uses, even when a later
    /// part or the content has a blank line of the other kind.
    #[test]
    fn headers_end_at_the_first_blank_line() {
        let cases: &[(&[u8], Vec<Part>)] = &[
            (
                b"--XX\nContent-Disposition: form-data; name=a\n\nx\r\n\r\ny\n--XX--\n",
                vec![Part { name: "a".into(), content: b"x\r\n\r\ny" }],
            ),
            (
                b"--XX\nContent-Disposition: form-data; name=a\n\n1\n--XX\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XX--",
                vec![Part { name: "a".into(), content: b"1" }, Part { name: "b".into(), content: b"2" }],
            ),
            (b"--XX\r\n\r\nno headers\r\n--XX--", vec![]),
            (b"--XX\n\nno headers\n--XX--", vec![]),
            (
                b"--XX\r\nContent-Disposition: form-data; name=a\r\n\nmixed\n--XX--",
                vec![Part { name: "a".into(), content: b"mixed" }],
            ),
        ];
        for (body, want) in cases {
            assert_eq!(&parts(body, "XX").unwrap(), want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn refuses_malformed_bodies() {
        for body in [
            &b"no boundary here"[..],
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"",
            b"--XXjunk",
        ] {
            assert!(parts(body, "XX").is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }
}
