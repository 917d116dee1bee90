//! Which request heads hookgate reads itself: the common webhook or Web API request, an HTTP/1.1
//! `POST` of an origin-form target with one `Host`, one plain `Content-Length` and nothing that
//! changes the framing. Anything else (chunked bodies, HTTP/1.0, other methods, odd targets or
//! fields, a parse error) goes to pingora's session with the bytes read so far, so its framing
//! checks and its refusals stay the only ones (docs/webhooks.md, "Responses").

/// The longest head read here; a longer one is pingora's.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header fields read here.
const MAX_FIELDS: usize = 32;

/// A header field's name and value, as places in the head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Field {
    name: (u16, u16),
    value: (u16, u16),
}

/// A head read here, as places in its bytes (the head is at most 16 KiB, so `u16` holds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its length, the blank line included.
    pub len: usize,
    path: (u16, u16),
    query: (u16, u16),
    pub content_length: usize,
    /// `Connection: close`.
    pub close: bool,
    /// `Expect: 100-continue`.
    pub expect: bool,
    fields: [Field; MAX_FIELDS],
    count: usize,
}

/// What the bytes read so far hold.
// Returned once per head and not kept: boxing the head would cost an allocation a request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    Common(Head),
    /// pingora's to read.
    Other,
}

pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Parsed::Partial,
        _ => return Parsed::Other,
    };
    if request.version != Some(1) || request.method != Some("POST") {
        return Parsed::Other;
    }
    let target = request.path.unwrap_or("").as_bytes();
    if target.first() != Some(&b'/') || !target.iter().all(|&b| is_target_byte(b)) {
        return Parsed::Other;
    }
    let base = buf.as_ptr() as usize;
    let place = |s: &[u8]| -> (u16, u16) {
        let start = s.as_ptr() as usize - base;
        (start as u16, (start + s.len()) as u16)
    };
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (place(&target[..at]), place(&target[at + 1..])),
        None => (place(target), (0, 0)),
    };
    let mut head = Head {
        len,
        path,
        query,
        content_length: 0,
        close: false,
        expect: false,
        fields: [Field::default(); MAX_FIELDS],
        count: 0,
    };
    let (mut length, mut host, mut connection) = (None, false, false);
    for field in request.headers.iter() {
        let (name, value) = (field.name, field.value);
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("content-length") {
            if length.is_some() {
                return Parsed::Other;
            }
            let Some(n) = plain_number(value) else { return Parsed::Other };
            length = Some(n);
        } else if is("host") {
            if host || value.is_empty() || !value.iter().all(|&b| is_host_byte(b)) {
                return Parsed::Other;
            }
            host = true;
        } else if is("connection") {
            match value {
                _ if connection => return Parsed::Other,
                v if v.eq_ignore_ascii_case(b"keep-alive") => {}
                v if v.eq_ignore_ascii_case(b"close") => head.close = true,
                _ => return Parsed::Other,
            }
            connection = true;
        } else if is("expect") {
            if head.expect || !value.eq_ignore_ascii_case(b"100-continue") {
                return Parsed::Other;
            }
            head.expect = true;
        } else if is("transfer-encoding") || is("upgrade") {
            return Parsed::Other;
        }
        head.fields[head.count] = Field { name: place(name.as_bytes()), value: place(value) };
        head.count += 1;
    }
    match (length, host) {
        (Some(n), true) => {
            head.content_length = n;
            Parsed::Common(head)
        }
        _ => Parsed::Other,
    }
}

impl Head {
    pub fn path<'a>(&self, raw: &'a [u8]) -> &'a str {
        text(raw, self.path)
    }

    pub fn query<'a>(&self, raw: &'a [u8]) -> &'a str {
        text(raw, self.query)
    }

    /// The value of the first field called `name`; empty when there is none.
    pub fn header<'a>(&self, raw: &'a [u8], name: &str) -> &'a [u8] {
        let slice = |(start, end): (u16, u16)| &raw[start as usize..end as usize];
        self.fields[..self.count]
            .iter()
            .find(|field| slice(field.name).eq_ignore_ascii_case(name.as_bytes()))
            .map_or(&[], |field| slice(field.value))
    }
}

/// The target's characters are checked ASCII when it is read.
fn text(raw: &[u8], (start, end): (u16, u16)) -> &str {
    std::str::from_utf8(&raw[start as usize..end as usize]).unwrap_or("")
}

/// A decimal length of up to 18 digits and nothing else.
fn plain_number(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

/// RFC 3986's unreserved, sub-delims, `%`, `:`, `@`, `/` and `?`: a target of only these means the
/// same to every reader. No `#`.
fn is_target_byte(b: u8) -> bool {
    TARGET_BYTES[usize::from(b)]
}

/// A name, an IPv4 address or a bracketed IPv6 one, with a port.
fn is_host_byte(b: u8) -> bool {
    HOST_BYTES[usize::from(b)]
}

// Tables rather than searches of the lists: every byte of every target and host is checked.
const TARGET_BYTES: [bool; 256] = byte_table(b"-._~!$&'()*+,;=%:@/?");
const HOST_BYTES: [bool; 256] = byte_table(b"-._:[]");

/// ASCII letters and digits, and `others`.
const fn byte_table(others: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const COMMON: &str = "POST /hooks/abc?x=1 HTTP/1.1\r\nHost: gw:8065\r\nContent-Type: application/json\r\n\
                          Content-Length: 12\r\nX-Request-Id: r1\r\n\r\n";

    fn head(text: &str) -> Head {
        match parse(text.as_bytes()) {
            Parsed::Common(head) => head,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn the_common_request_is_read_here() {
        let raw = COMMON.as_bytes();
        let h = head(COMMON);
        assert_eq!(h.len, raw.len());
        assert_eq!((h.path(raw), h.query(raw), h.content_length), ("/hooks/abc", "x=1", 12));
        assert_eq!(h.header(raw, "content-type"), b"application/json");
        assert_eq!(h.header(raw, "X-REQUEST-ID"), b"r1");
        assert_eq!(h.header(raw, "authorization"), b"");
        assert!(!h.close && !h.expect);
        let extra = "POST /api/chat.postMessage HTTP/1.1\r\nhost: [::1]:80\r\ncontent-length: 0\r\n\
                     connection: Close\r\nexpect: 100-Continue\r\n\r\n{}";
        let h = head(extra);
        assert_eq!((h.path(extra.as_bytes()), h.query(extra.as_bytes())), ("/api/chat.postMessage", ""));
        assert!(h.close && h.expect);
        assert_eq!(h.len, extra.len() - 2);
        // Bare line feeds end lines for pingora's parser too (the same `httparse`).
        let bare = "POST /hooks/abc HTTP/1.1\nHost: gw\nContent-Length: 0\n\nnext";
        assert_eq!(head(bare).len, bare.len() - 4);
    }

    #[test]
    fn everything_else_is_pingoras() {
        let cases = [
            "GET /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/abc HTTP/1.0\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST http://gw/hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/a\"b HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/ab#c HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: u@gw\r\nContent-Length: 0\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 1, 1\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: +1\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 1234567890123456789\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nExpect: something\r\n\r\n",
            "POST /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nBad Name: x\r\n\r\n",
            "POST  /hooks/abc HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
        ];
        for case in cases {
            assert_eq!(parse(case.as_bytes()), Parsed::Other, "{case:?}");
        }
        let many = format!("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n{}\r\n", "A: b\r\n".repeat(MAX_FIELDS));
        assert_eq!(parse(many.as_bytes()), Parsed::Other);
        let long = format!("POST /{} HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(long.as_bytes()), Parsed::Other);
    }

    #[test]
    fn the_byte_tables_hold_their_lists() {
        let target: Vec<u8> = (0..=255u8).filter(|&b| is_target_byte(b)).collect();
        let host: Vec<u8> = (0..=255u8).filter(|&b| is_host_byte(b)).collect();
        let alnum = || (0..=255u8).filter(u8::is_ascii_alphanumeric);
        let with = |others: &[u8]| -> Vec<u8> {
            let mut all: Vec<u8> = alnum().chain(others.iter().copied()).collect();
            all.sort_unstable();
            all
        };
        assert_eq!(target, with(b"-._~!$&'()*+,;=%:@/?"));
        assert_eq!(host, with(b"-._:[]"));
    }

    /// Whatever the bytes, parsing ends in one of the three answers, and a head read here is
    /// within them and names its parts by places inside it.
    fn holds(bytes: &[u8]) {
        if let Parsed::Common(head) = parse(bytes) {
            assert!(head.len <= bytes.len() && head.len <= MAX_HEAD_BYTES);
            let raw = &bytes[..head.len];
            assert!(head.path(raw).starts_with('/'));
            for name in ["host", "content-length", "content-type", "x-request-id", "authorization", "none"] {
                let value = head.header(raw, name);
                assert!(value.is_empty() || raw.windows(value.len()).any(|w| w == value));
            }
            for end in 0..head.len {
                assert_eq!(parse(&bytes[..end]), Parsed::Partial, "{end}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            holds(&bytes);
        }

        #[test]
        fn a_common_head_changed_anywhere_parses_without_panicking(at in 0..COMMON.len(), byte in any::<u8>()) {
            let mut bytes = COMMON.as_bytes().to_vec();
            bytes[at] = byte;
            holds(&bytes);
        }
    }

    #[test]
    fn a_head_in_pieces_waits_for_the_rest() {
        for end in [0, 1, 10, COMMON.len() - 1] {
            assert_eq!(parse(&COMMON.as_bytes()[..end]), Parsed::Partial, "{end}");
        }
        let endless = format!("POST /{}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(endless.as_bytes()), Parsed::Other);
    }
}
