//! hookgate's own HTTP/1.1 for the common request (`parse.rs`): the head read into the
//! connection's buffer and parsed in place, the body read by its length, the answer written in
//! one go. pingora's session built two header maps per request and a response header map per
//! answer, about a quarter of a webhook's instructions
//! (docs/performance.md, "Reading requests ourselves"). Every other request goes, with the bytes
//! read of it, to pingora's session (`ingress/server.rs`), which frames and refuses it as before.

mod parse;

use super::exchange::{answer_fields, Body, Exchange};
use super::respond::Reply;
use bytes::{BufMut, Bytes, BytesMut};
use http::Method;
use parse::{Head, Parsed};
use pingora::protocols::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a connection's buffer starts with: most heads fit, as in pingora's session.
const BUFFER_BYTES: usize = 4096;

/// A client connection between requests.
pub struct Conn {
    stream: Stream,
    /// Bytes read and not yet used: the start of the next request.
    read: BytesMut,
    tls: bool,
}

/// What the next request on a connection is.
// Held while one request is served, as `parse::Parsed` is: unboxed for the same reason.
#[allow(clippy::large_enum_variant)]
pub enum Next<'c> {
    Common(Request<'c>),
    /// pingora's to read (`parse.rs`): the connection goes to its session.
    Other,
    /// Closed or broken before a whole head: nothing to answer.
    Gone,
}

impl Conn {
    /// A connection, with what was read of its next request.
    pub fn new(stream: Stream, read: BytesMut) -> Conn {
        let tls = stream.get_ssl_digest().is_some();
        Conn { stream, read, tls }
    }

    /// The stream and the bytes read from it, for pingora's session.
    pub fn into_parts(self) -> (Stream, BytesMut) {
        (self.stream, self.read)
    }

    /// Reads until a whole head is in; the caller bounds the time.
    pub async fn next(&mut self) -> Next<'_> {
        loop {
            // Between requests the buffer is most often empty: nothing to parse yet.
            let parsed = if self.read.is_empty() { Parsed::Partial } else { parse::parse(&self.read) };
            match parsed {
                Parsed::Partial => {}
                Parsed::Other => return Next::Other,
                Parsed::Common(head) => {
                    let raw = self.read.split_to(head.len).freeze();
                    let keep = !head.close;
                    let unread = head.content_length;
                    return Next::Common(Request { conn: self, head, raw, unread, continued: false, keep });
                }
            }
            if self.read.capacity() - self.read.len() < BUFFER_BYTES / 4 {
                self.read.reserve(BUFFER_BYTES);
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) | Err(_) => return Next::Gone,
                Ok(_) => {}
            }
        }
    }

    /// Ends the connection: the client reads to its end.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// A common request on its connection.
pub struct Request<'c> {
    conn: &'c mut Conn,
    head: Head,
    raw: Bytes,
    /// Body bytes not read yet.
    unread: usize,
    /// Whether `100 Continue` was written.
    continued: bool,
    /// Whether the connection serves another request after this one's answer.
    keep: bool,
}

impl Request<'_> {
    /// Whether the connection serves another request after the answer written.
    pub fn keeps_connection(&self) -> bool {
        self.keep
    }
}

static POST: Method = Method::POST;

impl Exchange for Request<'_> {
    fn method(&self) -> &Method {
        &POST
    }

    fn path(&self) -> &str {
        self.head.path(&self.raw)
    }

    fn query(&self) -> &str {
        self.head.query(&self.raw)
    }

    fn header(&self, name: &str) -> &[u8] {
        self.head.header(&self.raw, name)
    }

    fn declared_length(&self) -> Option<usize> {
        Some(self.head.content_length)
    }

    fn expects_continue(&self) -> bool {
        self.head.expect
    }

    fn is_tls(&self) -> bool {
        self.conn.tls
    }

    /// Heads over this reader's limits are pingora's, and these are under the gateway's.
    fn head_too_large(&self) -> bool {
        false
    }

    async fn write_continue(&mut self) -> bool {
        if self.continued {
            return true;
        }
        self.continued = true;
        let stream = &mut self.conn.stream;
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_ok() && stream.flush().await.is_ok()
    }

    /// Only the declared length is read: bytes after it are the next request's.
    async fn read_body(&mut self, max: usize) -> Body {
        let length = self.unread;
        if length > max {
            return Body::TooLarge;
        }
        let read = &mut self.conn.read;
        if read.len() >= length {
            self.unread = 0;
            return Body::Whole(read.split_to(length).freeze());
        }
        let mut body = BytesMut::with_capacity(length);
        body.extend_from_slice(read);
        read.clear();
        let mut rest = (&mut self.conn.stream).take((length - body.len()) as u64);
        while body.len() < length {
            match rest.read_buf(&mut body).await {
                Ok(0) | Err(_) => return Body::Broken,
                Ok(_) => {}
            }
        }
        self.unread = 0;
        Body::Whole(body.freeze())
    }

    fn is_body_done(&mut self) -> bool {
        self.unread == 0
    }

    async fn write_reply(&mut self, reply: &Reply, request_id: &str, close: bool) -> bool {
        // A body left unread cannot be told from the next request: the connection ends.
        self.keep &= !close && self.unread == 0;
        let date = pingora::protocols::http::date::get_cached_date();
        let answer = response(reply, request_id, date.as_bytes(), self.keep);
        let stream = &mut self.conn.stream;
        stream.write_all(&answer).await.is_ok() && stream.flush().await.is_ok()
    }
}

/// The answer's bytes: `exchange::answer_fields`, then Date and Connection, as pingora's session
/// wrote them.
fn response(reply: &Reply, request_id: &str, date: &[u8], keep: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(192 + request_id.len() + reply.body.len());
    let status = http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    let mut field = |name: &str, value: &[u8]| {
        out.put_slice(b"\r\n");
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
    };
    answer_fields(reply, request_id, &mut field);
    field("Date", date);
    field("Connection", if keep { b"keep-alive" } else { b"close" });
    out.put_slice(b"\r\n\r\n");
    out.put_slice(&reply.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Close;

    #[test]
    fn answers_are_written_as_pingora_wrote_them() {
        let date = b"Mon, 07 Dec 2026 14:24:41 GMT";
        let ok = Reply::ok();
        assert_eq!(
            String::from_utf8(response(&ok, "r1", date, true)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-Request-Id: r1\r\n\
             Date: Mon, 07 Dec 2026 14:24:41 GMT\r\nConnection: keep-alive\r\n\r\nok"
        );
        let refused = Reply {
            status: 405,
            content_type: "text/plain",
            body: Bytes::from_static(b"invalid_method"),
            retry_after: Some(5),
            headers: &[("Allow", "POST")],
            close: Close::Never,
            reason: None,
        };
        assert_eq!(
            String::from_utf8(response(&refused, "r2", date, false)).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\
             X-Request-Id: r2\r\nRetry-After: 5\r\nAllow: POST\r\nDate: Mon, 07 Dec 2026 14:24:41 GMT\r\n\
             Connection: close\r\n\r\ninvalid_method"
        );
    }
}
