//! `application/x-www-form-urlencoded` bodies, as the URL standard decodes them: fields split at
//! `&`, a name from its value at the first `=`, `+` is a space, `%XX` a byte (a `%` without two
//! hex digits stays as it is), invalid UTF-8 becomes U+FFFD.
//!
//! Written here rather than taken from `form_urlencoded` because a percent-encoded payload is the
//! common case and that crate spent about 30 instructions a byte on it.

/// The value of the first field named `name`, decoded.
pub(crate) fn field(body: &[u8], name: &str) -> Option<String> {
    let mut rest = body;
    while !rest.is_empty() {
        let end = memchr::memchr(b'&', rest).unwrap_or(rest.len());
        let pair = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if key == name.as_bytes() || decode(key) == name {
            return Some(decode(value));
        }
    }
    None
}

/// Every field of the body, in order, decoded: the Web API reads all of a form's arguments
/// (docs/webapi.md, "Arguments").
pub(crate) fn pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match memchr::memchr(b'=', pair) {
            Some(i) => (decode(&pair[..i]), decode(&pair[i + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn decode(raw: &[u8]) -> String {
    // Written by index into a buffer of the input's size: the output is never longer.
    let mut out = vec![0u8; raw.len()];
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        out[n] = match raw[i] {
            b'+' => b' ',
            b'%' => match raw.get(i + 1..i + 3).map(|h| (HEX[h[0] as usize], HEX[h[1] as usize])) {
                Some((high, low)) if (high | low) < 16 => {
                    i += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            b => b,
        };
        n += 1;
        i += 1;
    }
    out.truncate(n);
    crate::pipeline::json::lossy_string(out)
}

/// The value of each hex digit; 0xff for every other byte.
const HEX: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut d = 0;
    while d < 10 {
        table[b'0' as usize + d] = d as u8;
        d += 1;
    }
    let mut d = 0;
    while d < 6 {
        table[b'a' as usize + d] = 10 + d as u8;
        table[b'A' as usize + d] = 10 + d as u8;
        d += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields() {
        let cases: &[(&str, Option<&str>)] = &[
            ("payload=%7B%22text%22%3A%22hi%22%7D", Some(r#"{"text":"hi"}"#)),
            ("payload=a+b%2Bc", Some("a b+c")),
            ("payload=%e2%82%AC", Some("€")),
            ("payload=100%", Some("100%")),
            ("payload=%4", Some("%4")),
            ("payload=%zz%4g", Some("%zz%4g")),
            ("payload=%ff", Some("\u{fffd}")),
            ("x=1&&payload=first&payload=second", Some("first")),
            ("pay%6Coad=encoded+name", Some("encoded name")),
            ("payload", Some("")),
            ("payload=", Some("")),
            ("payload=a=b", Some("a=b")),
            ("Payload=x", None),
            ("text=hi", None),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(field(body.as_bytes(), "payload").as_deref(), *want, "{body:?}");
        }
    }

    proptest! {
        /// The same field as the `form_urlencoded` crate finds, for any body.
        #[test]
        fn agrees_with_form_urlencoded(body in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'='), Just(b'+'), Just(b'%'), Just(b'a'), Just(b'F'), Just(b'7'), Just(0xe2), Just(0x82), Just(0xff), any::<u8>()],
            0..40,
        ), prefix in prop_oneof![Just(&b""[..]), Just(&b"payload="[..]), Just(&b"pay%6coad="[..])]) {
            let body = [prefix, &body].concat();
            let want = form_urlencoded::parse(&body).find(|(k, _)| k == "payload").map(|(_, v)| v.into_owned());
            prop_assert_eq!(field(&body, "payload"), want);
        }

        /// Every field as the `form_urlencoded` crate reads them, for any body.
        #[test]
        fn pairs_agree_with_form_urlencoded(body in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'='), Just(b'+'), Just(b'%'), Just(b'a'), Just(b'F'), Just(0xe2), any::<u8>()],
            0..40,
        )) {
            let want: Vec<(String, String)> =
                form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            prop_assert_eq!(pairs(&body), want);
        }
    }
}
