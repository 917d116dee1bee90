//! Reads a backend's HTTP/1.1 answer: its status, its `Retry-After`, whether the connection can
//! carry the next request, and its body when the kind asks for it.
//!
//! hookgate never passes an answer on, so it parses the head with httparse into a small buffer
//! instead of building a full response header, and skips the body unless asked. An answer whose
//! end cannot be known from its head (chunked, or delimited by closing the connection) is not
//! read further; its connection is simply not reused.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// At most this much answer head is read.
const MAX_HEAD: usize = 16 * 1024;
/// At most this much of an answer body is read, to keep its connection or for its kind; it is
/// never shown to clients.
const MAX_BODY: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// What the backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Its `Retry-After` in whole seconds, when it sent one, or else its `X-Ratelimit-Reset`.
    pub retry_after: Option<u64>,
    /// The body, when asked for and framed by a `Content-Length` of at most 64 KiB.
    pub body: Option<Vec<u8>>,
}

/// How the body after a head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Exactly this many bytes.
    Length(usize),
    /// In chunks: read only when the body is wanted.
    Chunked,
    /// Until the connection closes: not read.
    Unframed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResponseHead {
    answer: Answer,
    /// Bytes of the head, blank line included.
    len: usize,
    body: Body,
    /// The backend lets the connection carry another request.
    keep_alive: bool,
}

/// Parses an answer head from the start of `buf`; `Ok(None)` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or_default();
    let mut keep_alive = response.version == Some(1);
    let mut retry_after = None;
    // Mattermost's REST API says when its limit resets rather than `Retry-After`.
    let mut reset = None;
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        // Read as text only for the fields used: most of an answer's (Server, Date, ...) are not.
        let value = || std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            // Two different lengths leave the end unknown.
            let parsed = value().parse::<usize>().ok();
            length = match length {
                None => Some(parsed),
                Some(seen) if seen == parsed => Some(seen),
                Some(_) => Some(None),
            };
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value().split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && response.version == Some(0) {
                    keep_alive = true;
                }
            }
        } else if header.name.eq_ignore_ascii_case("retry-after") {
            retry_after = value().parse().ok();
        } else if header.name.eq_ignore_ascii_case("x-ratelimit-reset") {
            reset = value().parse().ok();
        }
    }
    let retry_after = retry_after.or(reset);
    let body = match (status, chunked, length) {
        (204 | 304, _, _) => Body::Length(0),
        (_, false, Some(Some(n))) => Body::Length(n),
        (_, true, None) => Body::Chunked,
        _ => Body::Unframed,
    };
    Ok(Some(ResponseHead { answer: Answer { status, retry_after, body: None }, len, body, keep_alive }))
}

/// Reads one answer from `stream`, with its body when `keep_body`. The flag says whether the
/// connection is left at the end of the answer, ready for another request. Informational (1xx)
/// heads are skipped.
pub async fn read<S: AsyncRead + Unpin>(stream: &mut S, keep_body: bool) -> io::Result<(Answer, bool)> {
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        match parse_head(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
            // httparse takes any three digits; HTTP's statuses start at 100 (found by fuzz/answer).
            Some(head) if head.answer.status < 100 => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "answer status below 100"));
            }
            Some(head) if (100..200).contains(&head.answer.status) && head.answer.status != 101 => {
                buf.drain(..head.len);
            }
            Some(head) => break head,
            None => {
                if buf.len() >= MAX_HEAD {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "answer head too long"));
                }
                if buf.len() == buf.capacity() {
                    buf.reserve(buf.len());
                }
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    };
    let mut answer = head.answer;
    let reusable = match head.body {
        Body::Length(n) if (head.keep_alive || keep_body) && n <= MAX_BODY => {
            buf.drain(..head.len);
            let whole = rest(stream, n, &mut buf, keep_body).await;
            if whole && keep_body {
                answer.body = Some(buf);
            }
            whole && head.keep_alive
        }
        Body::Chunked if keep_body => {
            buf.drain(..head.len);
            match dechunk(stream, buf).await {
                Some(body) => {
                    answer.body = Some(body);
                    head.keep_alive
                }
                None => false,
            }
        }
        _ => false,
    };
    Ok((answer, reusable))
}

/// Reads a chunked body of at most `MAX_BODY` bytes whose start is in `buf`, up to the end of
/// its last chunk and trailers; `None` when it is malformed, too long or cut short.
async fn dechunk<S: AsyncRead + Unpin>(stream: &mut S, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        // A size line, its chunk and the chunk's line end, or at the end the trailers.
        let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
            if buf.len() > MAX_HEAD || !more(stream, &mut buf).await {
                return None;
            }
            continue;
        };
        let line = std::str::from_utf8(&buf[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            // The size line's end and the trailers (often none) end with an empty line; nothing
            // may follow, or the connection's next answer would start mid-buffer.
            loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return (end + 4 == buf.len()).then_some(body);
                }
                if buf.len() > MAX_HEAD || !more(stream, &mut buf).await {
                    return None;
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return None;
        }
        let end = line_end + 2 + size + 2;
        while buf.len() < end {
            if !more(stream, &mut buf).await {
                return None;
            }
        }
        if &buf[end - 2..end] != b"\r\n" {
            return None;
        }
        body.extend_from_slice(&buf[line_end + 2..end - 2]);
        buf.drain(..end);
    }
}

/// Reads more of the answer into `buf`; false at its end or on an error.
async fn more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    buf.reserve(4096);
    matches!(stream.read_buf(buf).await, Ok(n) if n > 0)
}

/// Reads the rest of a body of `length` bytes, of which `buf` holds the start, keeping it in
/// `buf` when `keep`; false when the connection broke or more arrived than the body holds.
async fn rest<S: AsyncRead + Unpin>(stream: &mut S, length: usize, buf: &mut Vec<u8>, keep: bool) -> bool {
    let mut have = buf.len();
    if have > length {
        return false;
    }
    if keep {
        buf.reserve(length - have);
    }
    while have < length {
        if !keep {
            buf.clear();
        }
        match stream.read_buf(buf).await {
            Ok(n) if n > 0 && have + n <= length => have += n,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a complete head with nothing after it parses to.
    type Want = Option<(u16, Option<u64>, Body, bool)>;

    fn head(status: u16, retry_after: Option<u64>, body: Body, keep_alive: bool) -> Want {
        Some((status, retry_after, body, keep_alive))
    }

    #[test]
    fn heads() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        let cases: &[(&str, Want)] = &[
            (ok, head(200, None, Body::Length(2), true)),
            ("HTTP/1.1 200 OK\r\nContent-Len", None),
            ("", None),
            (
                "HTTP/1.1 429 X\r\nretry-after: 30\r\ncontent-length: 0\r\n\r\n",
                head(429, Some(30), Body::Length(0), true),
            ),
            (
                "HTTP/1.1 429 X\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n",
                head(429, None, Body::Length(0), true),
            ),
            // Mattermost's REST API: the seconds until its limit resets.
            (
                "HTTP/1.1 429 X\r\nX-Ratelimit-Limit: 10\r\nX-Ratelimit-Reset: 4\r\nContent-Length: 0\r\n\r\n",
                head(429, Some(4), Body::Length(0), true),
            ),
            (
                "HTTP/1.1 429 X\r\nX-Ratelimit-Reset: 4\r\nRetry-After: 9\r\nContent-Length: 0\r\n\r\n",
                head(429, Some(9), Body::Length(0), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
                head(200, None, Body::Length(2), false),
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 2\r\n\r\n",
                head(200, None, Body::Length(2), false),
            ),
            ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", head(200, None, Body::Length(2), false)),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
                head(200, None, Body::Length(2), true),
            ),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", head(200, None, Body::Chunked, true)),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
                head(200, None, Body::Unframed, true),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", head(200, None, Body::Unframed, true)),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
                head(200, None, Body::Length(2), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                head(200, None, Body::Unframed, true),
            ),
            ("HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n", head(200, None, Body::Unframed, true)),
            ("HTTP/1.1 204 No Content\r\n\r\n", head(204, None, Body::Length(0), true)),
        ];
        for (raw, want) in cases {
            let want = want.map(|(status, retry_after, body, keep_alive)| ResponseHead {
                answer: Answer { status, retry_after, body: None },
                len: raw.len(),
                body,
                keep_alive,
            });
            assert_eq!(parse_head(raw.as_bytes()).unwrap(), want, "{raw:?}");
        }
        assert!(parse_head(b"SMTP ready\r\n\r\n").is_err());
    }

    async fn read_all(raw: &[u8]) -> io::Result<(Answer, bool)> {
        let mut stream = raw;
        read(&mut stream, false).await
    }

    #[tokio::test]
    async fn answers_and_reuse() {
        let ok = |status, reusable| Ok((Answer { status, retry_after: None, body: None }, reusable));
        let long_body =
            format!("HTTP/1.1 500 X\r\nContent-Length: {}\r\n\r\n{}", MAX_BODY + 1, "x".repeat(MAX_BODY + 1));
        let many_headers = format!("HTTP/1.1 200 OK\r\n{}Content-Length: 0\r\n\r\n", "X-A: b\r\n".repeat(2000));
        type Read = io::Result<(Answer, bool)>;
        let cases: Vec<(&[u8], Read)> = vec![
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ok(200, true)),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", ok(201, true)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", ok(200, false)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1", ok(200, false)),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", ok(200, false)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", ok(200, false)),
            (long_body.as_bytes(), ok(500, false)),
            (b"HTTP/1.1 200 OK\r\nContent-Le", Err(io::ErrorKind::UnexpectedEof.into())),
            (b"", Err(io::ErrorKind::UnexpectedEof.into())),
            (b"garbage\r\n\r\n", Err(io::ErrorKind::InvalidData.into())),
            (b"HTTP/1.1 021 F429\r\nContent-Length: 0\r\n\r\n", Err(io::ErrorKind::InvalidData.into())),
            (many_headers.as_bytes(), Err(io::ErrorKind::InvalidData.into())),
        ];
        for (raw, want) in cases {
            let got = read_all(raw).await;
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{:?}", String::from_utf8_lossy(&raw[..raw.len().min(80)])),
                (Err(g), Err(w)) => {
                    assert_eq!(g.kind(), w.kind(), "{:?}", String::from_utf8_lossy(&raw[..raw.len().min(80)]))
                }
                _ => panic!("{:?}: got {got:?}, want {want:?}", String::from_utf8_lossy(&raw[..raw.len().min(80)])),
            }
        }
    }

    #[tokio::test]
    async fn a_head_split_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in
                [&b"HTTP/1.1 4"[..], b"29 Too Many\r\nRetry-", b"After: 7\r\nContent-Length: 3\r\n\r", b"\nab", b"c"]
            {
                server.write_all(piece).await.unwrap();
            }
            server
        });
        let got = read(&mut client, true).await.unwrap();
        assert_eq!(got, (Answer { status: 429, retry_after: Some(7), body: Some(b"abc".to_vec()) }, true));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn bodies_when_asked() {
        // An answer, the body read from it, and whether its connection can be used again.
        type Case<'a> = (&'a [u8], Option<&'a [u8]>, bool);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"} x", Some(b"{\"a\":\"b\"} x"), true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Some(b""), true),
            // Read whole though the connection then closes.
            (b"HTTP/1.1 429 X\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", Some(b"{}"), false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", Some(b"ok"), true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nT: v\r\n\r\n",
                Some(b"{\"a\":1}"),
                true,
            ),
            // Cut short, malformed, unframed: no body.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", None, false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok", None, false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n", None, false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", None, false),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil closed", None, false),
        ];
        for (raw, body, reusable) in cases {
            let mut stream = *raw;
            let (answer, reused) = read(&mut stream, true).await.unwrap();
            assert_eq!((answer.body.as_deref(), reused), (*body, *reusable), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
