//! The webhook listener: a pingora `HttpServerApp` that reads each request whole, hands the head
//! to admission, the body to the pipeline and the job to delivery, and writes the reply.
//!
//! pingora's proxy loop is not used: it replays at most 64 KiB of a body read early, while
//! webhook bodies go up to `max_body_bytes`, and hookgate never passes a backend's answer through.
//! This file only moves bytes and records what happened; every decision is made elsewhere.

use super::head::{self, read_head, Read};
use super::respond::Reply;
use crate::active::Active;
use crate::delivery::job::Job;
use crate::delivery::kind::Upstream;
use crate::delivery::{self, Direct, Outcome};
use crate::observe::metrics::Metrics;
use crate::observe::request_id;
use crate::pipeline::admit::{self, RequestHead};
use crate::pipeline::{self, Processed};
use crate::reason::Close;
use crate::refusal::Refusal;
use crate::rules::{Delivery, ErrorDialect, Rules};
use crate::spool::{Refused, Spool, StoreError};
use crate::webapi::ts::Ts;
use crate::webapi::Method;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
// pingora's shared 10 ms timer wheel: arming a tokio timer per request costs a wake-up of the
// runtime's driver (an eventfd write) whenever the new deadline is its earliest.
use pingora_timeout::fast_timeout::fast_timeout;
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Seconds an idle client connection is kept open between requests.
const CLIENT_KEEPALIVE_SECS: u64 = 60;
/// Backend connections kept for reuse; must exceed the concurrent requests to one backend. With
/// 128, a thousand busy clients made and closed a backend connection for most requests, and the
/// connects in flight were most of the gateway's memory (docs/performance.md, "Connections"). An
/// idle one costs a socket and a few hundred bytes, and is closed after a minute.
const UPSTREAM_POOL_SIZE: usize = 1024;

/// The webhook listener's pingora application.
pub struct WebhookService {
    active: Arc<ArcSwap<Active>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) direct: Direct,
    /// Set when the rules the gateway started with have a `[spool]`.
    pub(super) spool: Option<Arc<dyn Spool>>,
    connections: Arc<AtomicUsize>,
}

impl WebhookService {
    pub fn new(active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>, spool: Option<Arc<dyn Spool>>) -> WebhookService {
        WebhookService {
            active,
            metrics,
            direct: Direct::new(UPSTREAM_POOL_SIZE),
            spool,
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// An answer given before any hook could be known.
    fn count_unknown(&self, reply: &Reply) {
        let active = self.active.load();
        active.handles.hook(&active.rules, None).answered(&self.metrics, reply.status, reply.reason);
    }

    /// A place for a new client connection, or `None` when `max_connections` are open.
    fn open_connection(&self, max: usize) -> Option<ConnectionSlot> {
        let open = self.connections.fetch_add(1, Ordering::AcqRel);
        let slot = ConnectionSlot(self.connections.clone());
        (open < max).then_some(slot)
    }
}

/// Held for the life of a client connection, carried from request to request in pingora's
/// per-connection context; dropping it frees the place.
struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Everything the request's log line reports.
pub(super) struct Record {
    pub request_id: String,
    /// Position of the hook the key matched, in the request's rule set.
    pub hook: Option<usize>,
    pub body_bytes: usize,
    pub pipeline: Duration,
    pub delivery: Option<Outcome>,
    /// A Web API call's method (as its path named it), its message's `ts` and its result.
    pub api: Option<ApiRecord>,
}

/// What the log line says of a Web API call (docs/webapi.md, "Logs and metrics").
#[derive(Debug, Clone, Copy)]
pub(super) struct ApiRecord {
    pub method: &'static str,
    pub ts: Option<Ts>,
    /// `ok` or Slack's error code.
    pub result: &'static str,
}

/// Why no reply can be written: the client is gone or too slow.
pub(super) struct Abort(pub &'static str);

#[async_trait]
impl HttpServerApp for WebhookService {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let (max_connections, header_timeout, dialect) = {
            let gateway = &self.active.load().rules.gateway;
            (gateway.max_connections, gateway.client_header_timeout, gateway.errors)
        };
        let carried = session.take_connection_user_context().and_then(|c| c.downcast::<ConnectionSlot>().ok());
        let slot = match carried.map(|slot| *slot).or_else(|| self.open_connection(max_connections)) {
            Some(slot) => slot,
            None => {
                // Boxed, like the Web API below: held inline, a rare path's future would make
                // every request's larger (docs/performance.md, "Connections").
                if let Some(reply) = Box::pin(refuse_connection(session, header_timeout, dialect)).await {
                    self.count_unknown(&reply);
                }
                return None;
            }
        };
        // An idle keep-alive connection and a slow request head get the same bound.
        match read_head(&mut session, header_timeout).await {
            Read::Request => {}
            Read::Refused(refusal) => {
                let reply = answer_refused_head(&mut session, &refusal, dialect).await;
                self.count_unknown(&reply);
                return None;
            }
            Read::Gone => return None,
        }
        // The rules as they are when the request arrives (a reload may have landed while an idle
        // connection waited), kept for the whole request.
        let active = self.active.load_full();
        let started = Instant::now();
        let _inflight = self.metrics.inflight();
        session.set_keepalive((!*shutdown.borrow()).then_some(CLIENT_KEEPALIVE_SECS));
        let mut record = Record {
            request_id: request_id::choose(session.get_header_bytes("x-request-id")),
            hook: None,
            body_bytes: 0,
            pipeline: Duration::ZERO,
            delivery: None,
            api: None,
        };
        let reply = match self.serve(&mut session, &active, &mut record).await {
            Ok(reply) => reply,
            Err(Abort(why)) => {
                log_request(&active.rules, &record, 0, why, started.elapsed());
                return None;
            }
        };
        // An unread body must go before the next request can be read. A small one is read and
        // dropped so the client keeps its connection; one too large to drain closes it.
        let close = match reply.close {
            Close::Always => true,
            _ if reply.reason.is_none() || session.is_body_done() => false,
            Close::UnreadBody => true,
            Close::Never => !discard_body(&mut session, active.rules.gateway.max_body_bytes).await,
        };
        if close {
            session.set_keepalive(None);
        }
        // Counted before it is written, so a client that has its answer finds it counted.
        active.handles.hook(&active.rules, record.hook).answered(&self.metrics, reply.status, reply.reason);
        let written = write_reply(&mut session, &reply, &record.request_id).await;
        self.metrics.total_stage(started.elapsed());
        let reason = match record.api {
            Some(api) => api.result,
            None => reply.reason.map_or("ok", |r| r.spec().code),
        };
        log_request(&active.rules, &record, reply.status, reason, started.elapsed());
        if !written {
            return None;
        }
        let mut settings = HttpPersistentSettings::for_session(&session);
        settings.set_user_context(Box::new(slot));
        // pingora's `finish` future is 3.7 KiB (it covers HTTP/2 and subrequests too): boxed, it is
        // held only while the request ends, not for the request's whole life.
        match Box::pin(session.finish()).await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }
}

impl WebhookService {
    /// The request's life: head limits, admission, body, pipeline, job, delivery.
    async fn serve(&self, session: &mut ServerSession, active: &Active, record: &mut Record) -> Result<Reply, Abort> {
        let rules = &active.rules;
        let dialect = rules.gateway.errors;
        let refused =
            |refusal: &Refusal, record: &Record| Reply::refused(refusal.ending(), dialect, &record.request_id);
        if head::too_large(session) {
            return Ok(refused(&Refusal::HeadTooLarge, record));
        }
        if let Some(method) = Method::of_path(session.req_header().uri.path()) {
            // Boxed: a Web API call's future (its REST calls and the map) is 3 KiB, and inline
            // it made each webhook's request future, held by every connection, that much larger.
            return Box::pin(self.serve_api(session, active, record, method)).await;
        }
        let received = SystemTime::now();
        let head = RequestHead {
            method: &session.req_header().method,
            path: session.req_header().uri.path(),
            content_length: declared_length(session),
        };
        let mut admission = admit::admit(head, rules, &active.limiters);
        if let Some(shared) = &active.shared_limiter {
            admission = shared.admit(admission, rules).await;
        }
        record.hook = admission.hook;
        let (Ok(()), Some(index)) = (&admission.result, admission.hook) else {
            let refusal = admission.result.err().unwrap_or(Refusal::NoService);
            return Ok(refused(&refusal, record));
        };
        let hook = &rules.hooks[index];
        let max = rules.gateway.max_body_bytes;
        if is_expect_continue(session) {
            session.write_continue_response().await.map_err(|_| Abort("client_gone"))?;
        }
        let reading = fast_timeout(rules.gateway.client_body_timeout, read_body(session, max));
        let body = match reading.await.map_err(|_| Abort("client_body_timeout"))? {
            Body::Whole(body) => body,
            Body::TooLarge => return Ok(refused(&Refusal::TooLarge, record)),
            Body::Malformed => return Ok(refused(&Refusal::BadRequest("malformed body framing"), record)),
            Body::Broken => return Err(Abort("client_body_error")),
        };
        record.body_bytes = body.len();
        let Processed { result, dropped, actions, timings } =
            pipeline::process(hook, session.get_header_bytes("content-type"), &body);
        // The same hop events whether the request was accepted or refused.
        record.pipeline = timings.total();
        self.metrics.stages(&timings);
        self.metrics.dropped(&dropped);
        active.handles.hook(rules, Some(index)).overrides(&actions);
        let message = match result {
            Ok(message) => message,
            Err(refusal) => return Ok(refused(&refusal, record)),
        };
        let route = active.routes.of(index);
        self.metrics.dropped(&route.bound.unsupported(&message));
        let backend = &rules.backends[route.backend].name;
        let job = delivery::accept(hook, route, backend, &record.request_id, received, message);
        if hook.delivery == Delivery::Spool {
            return Ok(self.store(job, record, dialect).await);
        }
        let backend_metrics = active.handles.backend(route.backend);
        let mut observe = |upstream, took| backend_metrics.exchange(&self.metrics, upstream, took);
        let outcome = self.direct.deliver(job, route, &mut observe).await;
        self.metrics.upstream_stage(outcome.took);
        let reply = match &outcome.result {
            Ok(()) => Reply::ok(),
            Err(undelivered) => Reply::refused(undelivered.ending(), dialect, &record.request_id),
        };
        record.delivery = Some(outcome);
        Ok(reply)
    }
}

impl WebhookService {
    /// A spooled hook's job: `ok` once the store has it durably.
    async fn store(&self, job: Job, record: &mut Record, dialect: ErrorDialect) -> Reply {
        let started = Instant::now();
        let parts = job.posts.len();
        let result = match &self.spool {
            Some(spool) => spool.append(job).await,
            // The reloader refuses rules that spool without a running spool.
            None => Err(Refused::Store(StoreError("no spool is running".into()))),
        };
        let took = started.elapsed();
        self.metrics.upstream_stage(took);
        let refusal = match result {
            Ok(()) => None,
            Err(Refused::Full) => Some(Refusal::SpoolFull),
            Err(Refused::Store(e)) => {
                log::error!(target: "hookgate", request_id = record.request_id.as_str(); "{e}");
                Some(Refusal::SpoolFailed)
            }
        };
        record.delivery =
            Some(Outcome { result: Ok(()), upstream: Some(Upstream::Spooled), delivered: 0, parts, took });
        match refusal {
            None => Reply::ok(),
            Some(refusal) => Reply::refused(refusal.ending(), dialect, &record.request_id),
        }
    }
}

pub(super) fn declared_length(session: &ServerSession) -> Option<usize> {
    std::str::from_utf8(session.get_header_bytes("content-length")).ok()?.trim().parse().ok()
}

pub(super) fn is_expect_continue(session: &ServerSession) -> bool {
    session.get_header_bytes("expect").eq_ignore_ascii_case(b"100-continue")
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

/// Reads the whole body. A body that arrives as one chunk, as most do, is kept as it is, without
/// a copy.
pub(super) async fn read_body(session: &mut ServerSession, max: usize) -> Body {
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    loop {
        let chunk = match session.read_request_body().await {
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
            joined.reserve(declared_length(session).unwrap_or(0).clamp(held + chunk.len(), max));
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

/// Reads and drops the rest of a body of at most `max` bytes; false when it is larger or broken.
async fn discard_body(session: &mut ServerSession, max: usize) -> bool {
    if declared_length(session).is_some_and(|n| n > max) {
        return false;
    }
    matches!(read_body(session, max).await, Body::Whole(_))
}

/// Answers a connection over `max_connections` with 503 `overloaded`, in the gateway's dialect,
/// and closes it. The reply, when a request came to be answered.
async fn refuse_connection(
    mut session: ServerSession,
    header_timeout: Duration,
    dialect: ErrorDialect,
) -> Option<Reply> {
    let Read::Request = read_head(&mut session, header_timeout).await else { return None };
    session.set_keepalive(None);
    let request_id = request_id::choose(session.get_header_bytes("x-request-id"));
    let reply = Reply::refused(Refusal::Overloaded.ending(), dialect, &request_id);
    write_reply(&mut session, &reply, &request_id).await;
    log::warn!(target: "hookgate::request", request_id = request_id.as_str(); "refused: max_connections reached");
    Some(reply)
}

/// Answers a request head the parser refused (400, or 431 for its size) and lets the connection
/// close: what follows it on the connection cannot be framed.
async fn answer_refused_head(session: &mut ServerSession, refusal: &Refusal, dialect: ErrorDialect) -> Reply {
    session.set_keepalive(None);
    let request_id = request_id::choose(b"");
    let reply = Reply::refused(refusal.ending(), dialect, &request_id);
    write_reply(session, &reply, &request_id).await;
    log::info!(
        target: "hookgate::request",
        request_id = request_id.as_str(),
        status = reply.status as u64,
        reason = refusal.code();
        "refused: {refusal}"
    );
    reply
}

/// Writes the reply; false when the client could not be written to.
async fn write_reply(session: &mut ServerSession, reply: &Reply, request_id: &str) -> bool {
    let Ok(mut header) = ResponseHeader::build(reply.status, Some(5)) else { return false };
    let length = reply.body.len().to_string();
    let retry_after = reply.retry_after.map(|s| s.to_string());
    // Header names as Slack writes them: some clients look them up case-sensitively.
    let mut headers =
        vec![("Content-Type", reply.content_type), ("Content-Length", length.as_str()), ("X-Request-Id", request_id)];
    if let Some(secs) = &retry_after {
        headers.push(("Retry-After", secs.as_str()));
    }
    headers.extend(reply.headers.iter().copied());
    for (name, value) in headers {
        if header.insert_header(name, value).is_err() {
            return false;
        }
    }
    session.write_response_header(Box::new(header)).await.is_ok()
        && session.write_response_body(reply.body.clone(), true).await.is_ok()
}

/// One line per request. The key, the token and the body are never part of it.
fn log_request(rules: &Rules, record: &Record, status: u16, reason: &str, total: Duration) {
    let hook = record.hook.map_or("unknown", |i| rules.hooks[i].name.as_str());
    let (upstream, upstream_us, delivered, parts) = match &record.delivery {
        None => (Cow::Borrowed("none"), 0, 0, 0),
        Some(outcome) => {
            let upstream = outcome.upstream.map_or(Cow::Borrowed("none"), Upstream::label);
            (upstream, outcome.took.as_micros() as u64, outcome.delivered as u64, outcome.parts as u64)
        }
    };
    let (request_id, body_bytes, pipeline_us) =
        (record.request_id.as_str(), record.body_bytes as u64, record.pipeline.as_micros() as u64);
    let (status, upstream, total_us) = (status as u64, upstream.as_ref(), total.as_micros() as u64);
    // A Web API call's line also says which method and which message (docs/webapi.md, "Logs and metrics").
    if let Some(ApiRecord { method, ts, .. }) = record.api {
        let ts = ts.map_or(String::new(), |ts| ts.to_string());
        log::info!(
            target: "hookgate::request",
            request_id, hook, status, reason, body_bytes, pipeline_us, upstream, upstream_us,
            posts_delivered = delivered, posts = parts, total_us, method, ts = ts.as_str();
            "request"
        );
        return;
    }
    log::info!(
        target: "hookgate::request",
        request_id, hook, status, reason, body_bytes, pipeline_us, upstream, upstream_us,
        posts_delivered = delivered, posts = parts, total_us;
        "request"
    );
}
