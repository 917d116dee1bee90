//! Reading a request head, for both listeners: the parser's refusals and the size limits of
//! docs/webhooks.md, "Responses" become answers (400, 431) instead of a silent close.

use crate::refusal::Refusal;
use pingora::protocols::http::ServerSession;
// pingora's shared 10 ms timer wheel (see `server.rs`).
use pingora_timeout::fast_timeout::fast_timeout;
use std::time::Duration;

/// The largest request head served (docs/webhooks.md, "Responses"): its bytes, and its header lines.
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEAD_LINES: usize = 100;
/// The longest request target the `http` crate's `Uri` holds, plus one.
const MAX_URI_BYTES: usize = u16::MAX as usize - 1;

/// How reading a request head ended.
pub enum Read {
    Request,
    /// The parser refused it: answered, then closed.
    Refused(Refusal),
    /// Closed, timed out or broken: nothing to answer.
    Gone,
}

pub async fn read_head(session: &mut ServerSession, timeout: Duration) -> Read {
    // Requests written in one go are answered each, in order (docs/webhooks.md, "Responses").
    session.set_pipelining_enabled(true);
    match fast_timeout(timeout, session.read_request()).await {
        Ok(Ok(true)) => Read::Request,
        Ok(Err(e)) => parser_refusal(&e).map_or(Read::Gone, Read::Refused),
        _ => Read::Gone,
    }
}

/// The refusal for a request the HTTP parser would not take; `None` for a connection that broke
/// or closed, which gets no answer.
fn parser_refusal(e: &pingora::Error) -> Option<Refusal> {
    if e.etype != pingora::ErrorType::InvalidHTTPHeader {
        return None;
    }
    let too_many = e
        .cause
        .as_ref()
        .and_then(|c| c.downcast_ref::<httparse::Error>())
        .is_some_and(|c| *c == httparse::Error::TooManyHeaders);
    let context = e.context.as_ref().map_or("", |c| c.as_str());
    let too_long = context.starts_with("Request header larger than");
    // The `http` crate takes no request target of 65,534 bytes or more, which is past the head
    // limit anyway: pingora names such a target "invalid uri".
    let target_too_long = context.strip_prefix("invalid uri ").is_some_and(|target| target.len() >= MAX_URI_BYTES);
    Some(if too_many || too_long || target_too_long {
        Refusal::HeadTooLarge
    } else {
        Refusal::BadRequest("malformed request head")
    })
}

/// Over 64 KiB of head or over 100 header lines: pingora's own limits are higher.
pub fn too_large(session: &ServerSession) -> bool {
    let header = session.req_header();
    if header.headers.len() > MAX_HEAD_LINES {
        return true;
    }
    let line = header.method.as_str().len() + header.uri.path_and_query().map_or(1, |p| p.as_str().len()) + 11;
    let fields: usize = header.headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    line + fields + 2 > MAX_HEAD_BYTES
}
