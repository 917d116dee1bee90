//! The webhook listener: a pingora `ServerApp` that reads each request whole, hands the head
//! to admission, the body to the pipeline and the job to delivery, and writes the reply. The
//! common request is read and answered by `h1/`, every other by pingora's HTTP/1 session; both
//! through `exchange.rs`.
//!
//! pingora's proxy loop is not used: it replays at most 64 KiB of a body read early, while
//! webhook bodies go up to `max_body_bytes`, and hookgate never passes a backend's answer through.
//! This file only moves bytes and records what happened; every decision is made elsewhere.

use super::exchange::{discard_body, Body, Exchange};
use super::h1::{Conn, Next};
use super::head::{read_head, Read};
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
use bytes::BytesMut;
use pingora::apps::ServerApp;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
// pingora's shared 10 ms timer wheel: arming a tokio timer per request costs a wake-up of the
// runtime's driver (an eventfd write) whenever the new deadline is its earliest.
use pingora_timeout::fast_timeout::fast_timeout;
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What pingora's session is told of keep-alive, so that it hands the connection back; the wait
/// for the next request is `client_header_timeout_ms`, in `process_new`.
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

/// Held for the life of a client connection; dropping it frees the place.
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
impl ServerApp for WebhookService {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let (max_connections, header_timeout, dialect) = self.gateway_limits();
        let Some(_slot) = self.open_connection(max_connections) else {
            // Boxed, like the Web API below: held inline, a rare path's future would make every
            // request's larger (docs/performance.md, "Connections").
            let session = ServerSession::new_http1(stream);
            if let Some(reply) = Box::pin(refuse_connection(session, header_timeout, dialect)).await {
                self.count_unknown(&reply);
            }
            return None;
        };
        let mut conn = Conn::new(stream, BytesMut::new());
        loop {
            // Read again for each request: a reload may have changed them while the connection waited.
            let (_, header_timeout, dialect) = self.gateway_limits();
            let started = Instant::now();
            // An idle keep-alive connection and a slow request head get the same bound.
            match fast_timeout(header_timeout, conn.next()).await {
                Ok(Next::Common(mut request)) => {
                    if !(self.exchange(&mut request, shutdown).await && request.keeps_connection()) {
                        conn.close().await;
                        return None;
                    }
                }
                Ok(Next::Other) => {
                    let (stream, read) = conn.into_parts();
                    let mut session = ServerSession::new_http1(stream);
                    session.set_pipelined_prefix(read);
                    let left = header_timeout.saturating_sub(started.elapsed());
                    let (stream, read) = Box::pin(self.serve_session(session, left, dialect, shutdown)).await?;
                    conn = Conn::new(stream, read);
                }
                Ok(Next::Gone) | Err(_) => return None,
            }
        }
    }
}

impl WebhookService {
    /// `max_connections`, `client_header_timeout` and the error dialect, as the rules are now.
    fn gateway_limits(&self) -> (usize, Duration, ErrorDialect) {
        let gateway = &self.active.load().rules.gateway;
        (gateway.max_connections, gateway.client_header_timeout, gateway.errors)
    }

    /// A request pingora's session reads (which ones: `h1/parse.rs`), within what is `left` of
    /// the head's time. The stream and what was read past the request, when the connection goes on.
    async fn serve_session(
        &self,
        mut session: ServerSession,
        left: Duration,
        dialect: ErrorDialect,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, BytesMut)> {
        match read_head(&mut session, left).await {
            Read::Request => {}
            Read::Refused(refusal) => {
                let reply = answer_refused_head(&mut session, &refusal, dialect).await;
                self.count_unknown(&reply);
                return None;
            }
            Read::Gone => return None,
        }
        // Kept open whatever the request's version says, as before hookgate read heads itself.
        session.set_keepalive(Some(CLIENT_KEEPALIVE_SECS));
        if !self.exchange(&mut session, shutdown).await {
            return None;
        }
        // pingora's `finish` future is 3.7 KiB (it covers HTTP/2 and subrequests too): boxed, it is
        // held only while the request ends, not for the request's whole life.
        match Box::pin(session.finish()).await {
            Ok(Some(stream)) => {
                let (stream, read) = stream.into_parts();
                Some((stream, read.unwrap_or_default()))
            }
            _ => None,
        }
    }

    /// One request, its head read: served, answered and logged. False when the answer could not
    /// be written or the request was abandoned.
    async fn exchange(&self, exchange: &mut impl Exchange, shutdown: &ShutdownWatch) -> bool {
        // The rules as they are when the request arrives (a reload may have landed while an idle
        // connection waited), kept for the whole request.
        let active = self.active.load_full();
        let started = Instant::now();
        let _inflight = self.metrics.inflight();
        let mut record = Record {
            request_id: request_id::choose(exchange.header("x-request-id")),
            hook: None,
            body_bytes: 0,
            pipeline: Duration::ZERO,
            delivery: None,
            api: None,
        };
        let reply = match self.serve(exchange, &active, &mut record).await {
            Ok(reply) => reply,
            Err(Abort(why)) => {
                log_request(&active.rules, &record, 0, why, started.elapsed());
                return false;
            }
        };
        // An unread body must go before the next request can be read. A small one is read and
        // dropped so the client keeps its connection; one too large to drain closes it.
        let close = match reply.close {
            Close::Always => true,
            _ if reply.reason.is_none() || exchange.is_body_done() => false,
            Close::UnreadBody => true,
            Close::Never => !discard_body(exchange, active.rules.gateway.max_body_bytes).await,
        };
        // Counted before it is written, so a client that has its answer finds it counted.
        active.handles.hook(&active.rules, record.hook).answered(&self.metrics, reply.status, reply.reason);
        let written = exchange.write_reply(&reply, &record.request_id, close || *shutdown.borrow()).await;
        // One clock read for both: there are about thirty a request already.
        let total = started.elapsed();
        self.metrics.total_stage(total);
        let reason = match record.api {
            Some(api) => api.result,
            None => reply.reason.map_or("ok", |r| r.spec().code),
        };
        log_request(&active.rules, &record, reply.status, reason, total);
        written
    }
}

impl WebhookService {
    /// The request's life: head limits, admission, body, pipeline, job, delivery.
    async fn serve(&self, session: &mut impl Exchange, active: &Active, record: &mut Record) -> Result<Reply, Abort> {
        let rules = &active.rules;
        let dialect = rules.gateway.errors;
        let refused =
            |refusal: &Refusal, record: &Record| Reply::refused(refusal.ending(), dialect, &record.request_id);
        if session.head_too_large() {
            return Ok(refused(&Refusal::HeadTooLarge, record));
        }
        if let Some(method) = Method::of_path(session.path()) {
            // Boxed: a Web API call's future (its REST calls and the map) is 3 KiB, and inline
            // it made each webhook's request future, held by every connection, that much larger.
            return Box::pin(self.serve_api(session, active, record, method)).await;
        }
        let received = SystemTime::now();
        let head =
            RequestHead { method: session.method(), path: session.path(), content_length: session.declared_length() };
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
        if session.expects_continue() && !session.write_continue().await {
            return Err(Abort("client_gone"));
        }
        let reading = fast_timeout(rules.gateway.client_body_timeout, session.read_body(max));
        let body = match reading.await.map_err(|_| Abort("client_body_timeout"))? {
            Body::Whole(body) => body,
            Body::TooLarge => return Ok(refused(&Refusal::TooLarge, record)),
            Body::Malformed => return Ok(refused(&Refusal::BadRequest("malformed body framing"), record)),
            Body::Broken => return Err(Abort("client_body_error")),
        };
        record.body_bytes = body.len();
        let Processed { result, dropped, actions, timings } =
            pipeline::process(hook, session.header("content-type"), &body);
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

/// Answers a connection over `max_connections` with 503 `overloaded`, in the gateway's dialect,
/// and closes it. The reply, when a request came to be answered.
async fn refuse_connection(
    mut session: ServerSession,
    header_timeout: Duration,
    dialect: ErrorDialect,
) -> Option<Reply> {
    let Read::Request = read_head(&mut session, header_timeout).await else { return None };
    let request_id = request_id::choose(session.get_header_bytes("x-request-id"));
    let reply = Reply::refused(Refusal::Overloaded.ending(), dialect, &request_id);
    session.write_reply(&reply, &request_id, true).await;
    log::warn!(target: "hookgate::request", request_id = request_id.as_str(); "refused: max_connections reached");
    Some(reply)
}

/// Answers a request head the parser refused (400, or 431 for its size) and lets the connection
/// close: what follows it on the connection cannot be framed.
async fn answer_refused_head(session: &mut ServerSession, refusal: &Refusal, dialect: ErrorDialect) -> Reply {
    let request_id = request_id::choose(b"");
    let reply = Reply::refused(refusal.ending(), dialect, &request_id);
    session.write_reply(&reply, &request_id, true).await;
    log::info!(
        target: "hookgate::request",
        request_id = request_id.as_str(),
        status = reply.status as u64,
        reason = refusal.code();
        "refused: {refusal}"
    );
    reply
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
