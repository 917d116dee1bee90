//! What answering a request needs of its connection, whichever reader holds it: hookgate's own
//! for the common request (`h1/`), pingora's HTTP/1 session for every other one. `server.rs` and
//! `webapi.rs` serve through this and do not know which.

use super::head;
use super::respond::Reply;
use bytes::{Bytes, BytesMut};
use http::Method;
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;

/// One request on its connection: its head, its body and its answer.
pub(super) trait Exchange {
    fn method(&self) -> &Method;
    fn path(&self) -> &str;
    /// The query string, empty when there is none.
    fn query(&self) -> &str;
    /// The value of the first field of that name; empty when there is none.
    fn header(&self, name: &str) -> &[u8];
    /// The body's length as `Content-Length` gives it; `None` for a chunked body or a bad value.
    fn declared_length(&self) -> Option<usize>;
    /// Whether the client waits for `100 Continue` before it sends the body.
    fn expects_continue(&self) -> bool;
    /// Whether the client came over TLS.
    fn is_tls(&self) -> bool;
    /// Over the head limits of docs/webhooks.md, "Responses".
    fn head_too_large(&self) -> bool;
    /// Writes `100 Continue`; false when the client could not be written to.
    async fn write_continue(&mut self) -> bool;
    /// Reads the whole body, at most `max` bytes.
    async fn read_body(&mut self, max: usize) -> Body;
    fn is_body_done(&mut self) -> bool;
    /// Writes the reply; false when the client could not be written to. With `close`, or when
    /// the client asked for it, the connection ends after it.
    async fn write_reply(&mut self, reply: &Reply, request_id: &str, close: bool) -> bool;
}

/// How reading a body ended.
pub(super) enum Body {
    Whole(Bytes),
    /// It grew past `max_body_bytes` (chunked bodies declare no length).
    TooLarge,
    /// Its framing is broken: a bad chunk size or trailer.
    Malformed,
    /// The client went away or stopped sending.
    Broken,
}

/// The answer's fields before any a writer adds, in the order and with the names pingora's
/// session wrote them (some clients of Slack look them up case-sensitively): Content-Type,
/// Content-Length, X-Request-Id, Retry-After, then the reply's own. Both readers' writers
/// take them from here, so the two answer alike.
pub(super) fn answer_fields(reply: &Reply, request_id: &str, mut field: impl FnMut(&'static str, &[u8])) {
    let mut digits = itoa::Buffer::new();
    field("Content-Type", reply.content_type.as_bytes());
    field("Content-Length", digits.format(reply.body.len()).as_bytes());
    field("X-Request-Id", request_id.as_bytes());
    if let Some(secs) = reply.retry_after {
        field("Retry-After", digits.format(secs).as_bytes());
    }
    for (name, value) in reply.headers {
        field(name, value.as_bytes());
    }
}

/// Reads and drops the rest of a body of at most `max` bytes; false when it is larger or broken.
pub(super) async fn discard_body(exchange: &mut impl Exchange, max: usize) -> bool {
    if exchange.declared_length().is_some_and(|n| n > max) {
        return false;
    }
    matches!(exchange.read_body(max).await, Body::Whole(_))
}

impl Exchange for ServerSession {
    fn method(&self) -> &Method {
        &self.req_header().method
    }

    fn path(&self) -> &str {
        self.req_header().uri.path()
    }

    fn query(&self) -> &str {
        self.req_header().uri.query().unwrap_or("")
    }

    fn header(&self, name: &str) -> &[u8] {
        self.get_header_bytes(name)
    }

    fn declared_length(&self) -> Option<usize> {
        std::str::from_utf8(self.header("content-length")).ok()?.trim().parse().ok()
    }

    fn expects_continue(&self) -> bool {
        self.header("expect").eq_ignore_ascii_case(b"100-continue")
    }

    fn is_tls(&self) -> bool {
        self.digest().is_some_and(|d| d.ssl_digest.is_some())
    }

    fn head_too_large(&self) -> bool {
        head::too_large(self)
    }

    async fn write_continue(&mut self) -> bool {
        self.write_continue_response().await.is_ok()
    }

    /// A body that arrives as one chunk, as most do, is kept as it is, without a copy.
    async fn read_body(&mut self, max: usize) -> Body {
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        loop {
            let chunk = match self.read_request_body().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) if matches!(e.etype.as_str(), "InvalidChunk" | "InvalidTrailerEnd") => return Body::Malformed,
                Err(_) => return Body::Broken,
            };
            let held = first.as_ref().map_or(joined.len(), Bytes::len);
            if held + chunk.len() > max {
                return Body::TooLarge;
            }
            if let Some(first) = first.take() {
                joined.reserve(self.declared_length().unwrap_or(0).clamp(held + chunk.len(), max));
                joined.extend_from_slice(&first);
            }
            if joined.is_empty() {
                first = Some(chunk);
            } else {
                joined.extend_from_slice(&chunk);
            }
        }
        Body::Whole(first.unwrap_or_else(|| joined.freeze()))
    }

    fn is_body_done(&mut self) -> bool {
        ServerSession::is_body_done(self)
    }

    async fn write_reply(&mut self, reply: &Reply, request_id: &str, close: bool) -> bool {
        if close {
            self.set_keepalive(None);
        }
        let Ok(mut header) = ResponseHeader::build(reply.status, Some(5)) else { return false };
        let mut inserted = true;
        answer_fields(reply, request_id, |name, value| {
            inserted &= header.insert_header(name, value).is_ok();
        });
        if !inserted {
            return false;
        }
        self.write_response_header(Box::new(header)).await.is_ok()
            && self.write_response_body(reply.body.clone(), true).await.is_ok()
    }
}
