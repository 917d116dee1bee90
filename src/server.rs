//! The webhook listener: a pingora `HttpServerApp` that reads each request whole, runs the pure
//! pipeline, delivers the payload with its own backend exchange and answers the client itself.
//!
//! pingora's proxy loop is not used: it replays at most 64 KiB of a body read early, while
//! webhook bodies go up to `max_body_bytes`, and hookgate never passes a backend's answer through.
//! This file only moves bytes and records what happened; every decision is made elsewhere.

use crate::backend::pool::Pool;
use crate::backend::{self, Delivery, Upstream};
use crate::keys;
use crate::metrics::{Metrics, RuleHandles};
use crate::pipeline;
use crate::ratelimit::Limiters;
use crate::rejection::Rejection;
use crate::request_id;
use crate::respond::Reply;
use crate::rules::{ErrorDialect, Rules};
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
use std::time::{Duration, Instant};

/// Seconds an idle client connection is kept open between requests.
const CLIENT_KEEPALIVE_SECS: u64 = 60;
/// Backend connections kept for reuse; must exceed the concurrent requests to one backend.
const UPSTREAM_POOL_SIZE: usize = 128;

/// A rule set with the metric handles and rate buckets built for it; swapped as one on reload.
pub struct Active {
    pub rules: Rules,
    pub handles: RuleHandles,
    pub limiters: Limiters,
}

impl Active {
    /// `previous` lends its rate buckets to hooks whose limits did not change.
    pub fn new(rules: Rules, metrics: &Metrics, previous: Option<&Active>) -> Active {
        let handles = metrics.handles(&rules);
        let limiters = Limiters::new(&rules, previous.map(|p| &p.limiters));
        Active { rules, handles, limiters }
    }
}

pub struct Gateway {
    active: Arc<ArcSwap<Active>>,
    metrics: Arc<Metrics>,
    upstreams: Pool,
    connections: Arc<AtomicUsize>,
}

impl Gateway {
    pub fn new(active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> Gateway {
        Gateway {
            active,
            metrics,
            upstreams: Pool::new(UPSTREAM_POOL_SIZE),
            connections: Arc::new(AtomicUsize::new(0)),
        }
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
struct Record {
    request_id: String,
    /// Index of the hook the key matched.
    hook: Option<usize>,
    body_bytes: usize,
    pipeline: Duration,
    upstream: Option<(Delivery, Duration)>,
}

/// Why no reply can be written: the client is gone or broke the protocol.
struct Abort(&'static str);

#[async_trait]
impl HttpServerApp for Gateway {
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
            None => return refuse_connection(session, header_timeout, dialect).await,
        };
        // An idle keep-alive connection and a slow request head get the same bound.
        match fast_timeout(header_timeout, session.read_request()).await {
            Ok(Ok(true)) => {}
            _ => return None,
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
            upstream: None,
        };
        let outcome = self.serve(&mut session, &active, &mut record).await;
        let hook_metrics = active.handles.hook(record.hook);
        let (reply, rejection) = match outcome {
            Ok(Ok(())) => (Reply::ok(), None),
            Ok(Err(rejection)) => {
                // An unread body must go before the next request can be read. A small one is
                // read and dropped so the client keeps its connection; a large one closes it.
                if !session.is_body_done()
                    && (rejection == Rejection::TooLarge
                        || !discard_body(&mut session, active.rules.gateway.max_body_bytes).await)
                {
                    session.set_keepalive(None);
                }
                (Reply::rejection(&rejection, active.rules.gateway.errors, &record.request_id), Some(rejection))
            }
            Err(Abort(why)) => {
                log_request(&active.rules, &record, 0, why, started.elapsed());
                return None;
            }
        };
        let written = write_reply(&mut session, &reply, &record.request_id).await;
        hook_metrics.answered(&self.metrics, reply.status, rejection.as_ref());
        self.metrics.total_stage(started.elapsed());
        let reason = rejection.as_ref().map_or("ok", Rejection::code);
        log_request(&active.rules, &record, reply.status, reason, started.elapsed());
        if !written {
            return None;
        }
        let mut settings = HttpPersistentSettings::for_session(&session);
        settings.set_user_context(Box::new(slot));
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }
}

impl Gateway {
    /// The request's life, in the contract's order of checks.
    async fn serve(
        &self,
        session: &mut ServerSession,
        active: &Active,
        record: &mut Record,
    ) -> Result<Result<(), Rejection>, Abort> {
        let rules = &active.rules;
        if session.req_header().method != http::Method::POST {
            return Ok(Err(Rejection::InvalidMethod));
        }
        let Some(index) = find_hook(rules, session.req_header().uri.path()) else {
            return Ok(Err(Rejection::NoService));
        };
        record.hook = Some(index);
        let hook = &rules.hooks[index];
        if let Err(retry_after) = active.limiters.check(index) {
            return Ok(Err(Rejection::RateLimited { retry_after }));
        }
        let max = rules.gateway.max_body_bytes;
        if declared_length(session).is_some_and(|n| n > max) {
            return Ok(Err(Rejection::TooLarge));
        }
        if is_expect_continue(session) {
            session.write_continue_response().await.map_err(|_| Abort("client_gone"))?;
        }
        let reading = fast_timeout(rules.gateway.client_body_timeout, read_body(session, max));
        let body = match reading.await.map_err(|_| Abort("client_body_timeout"))?? {
            Some(body) => body,
            None => return Ok(Err(Rejection::TooLarge)),
        };
        record.body_bytes = body.len();
        let processed = pipeline::process(hook, session.get_header_bytes("content-type"), &body);
        // The same hop events whether the request was accepted or refused.
        let (timings, dropped, actions) = match &processed {
            Ok(p) => (&p.timings, &p.dropped, &p.actions),
            Err(r) => (&r.timings, &r.dropped, &r.actions),
        };
        record.pipeline = timings.total();
        self.metrics.stages(timings);
        self.metrics.dropped(dropped);
        active.handles.hook(Some(index)).overrides(actions);
        let processed = match processed {
            Ok(p) => p,
            Err(refused) => return Ok(Err(refused.rejection)),
        };
        let backend_metrics = active.handles.backend(hook.backend);
        let mut observe = |upstream, took| backend_metrics.exchange(&self.metrics, upstream, took);
        let started = Instant::now();
        let (delivery, result) = backend::deliver(
            rules.backend(hook),
            hook,
            &self.upstreams,
            processed.canonical,
            &record.request_id,
            &mut observe,
        )
        .await;
        let took = started.elapsed();
        self.metrics.upstream_stage(took);
        record.upstream = Some((delivery, took));
        Ok(result)
    }
}

/// The index of the hook named by `/hooks/{key}` or `/services/{key with slashes}`. The key is
/// hashed before lookup whatever it is, so an unknown key costs what a known one does.
fn find_hook(rules: &Rules, path: &str) -> Option<usize> {
    let key = path.strip_prefix("/hooks/").or_else(|| path.strip_prefix("/services/"))?;
    rules.hook_index(&keys::digest(key))
}

fn declared_length(session: &ServerSession) -> Option<usize> {
    std::str::from_utf8(session.get_header_bytes("content-length")).ok()?.trim().parse().ok()
}

fn is_expect_continue(session: &ServerSession) -> bool {
    session.get_header_bytes("expect").eq_ignore_ascii_case(b"100-continue")
}

/// Reads the whole body; `None` once it grows past `max` (chunked bodies declare no length).
/// A body that arrives as one chunk, as most do, is kept as it is, without a copy.
async fn read_body(session: &mut ServerSession, max: usize) -> Result<Option<Bytes>, Abort> {
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await.map_err(|_| Abort("client_body_error"))? {
        let held = first.as_ref().map_or(joined.len(), Bytes::len);
        if held + chunk.len() > max {
            return Ok(None);
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
    Ok(Some(first.unwrap_or_else(|| joined.freeze())))
}

/// Reads and drops the rest of a body of at most `max` bytes; false when it is larger or broken.
async fn discard_body(session: &mut ServerSession, max: usize) -> bool {
    if declared_length(session).is_some_and(|n| n > max) {
        return false;
    }
    matches!(read_body(session, max).await, Ok(Some(_)))
}

/// Answers a connection over `max_connections` with 503 `overloaded`, in the gateway's dialect,
/// and closes it.
async fn refuse_connection(
    mut session: ServerSession,
    header_timeout: Duration,
    dialect: ErrorDialect,
) -> Option<ReusedHttpStream> {
    if matches!(fast_timeout(header_timeout, session.read_request()).await, Ok(Ok(true))) {
        session.set_keepalive(None);
        let request_id = request_id::choose(session.get_header_bytes("x-request-id"));
        let reply = Reply::rejection(&Rejection::Overloaded, dialect, &request_id);
        write_reply(&mut session, &reply, &request_id).await;
        log::warn!(target: "hookgate::request", request_id = request_id.as_str(); "refused: max_connections reached");
    }
    None
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
    if reply.status == 405 {
        headers.push(("Allow", "POST"));
    }
    for (name, value) in headers {
        if header.insert_header(name, value).is_err() {
            return false;
        }
    }
    session.write_response_header(Box::new(header)).await.is_ok()
        && session.write_response_body(reply.body.clone(), true).await.is_ok()
}

/// One line per request. The key and the body are never part of it.
fn log_request(rules: &Rules, record: &Record, status: u16, reason: &str, total: Duration) {
    let hook = record.hook.map_or("unknown", |i| rules.hooks[i].name.as_str());
    let (upstream, upstream_us, delivered, parts) = match &record.upstream {
        None => (Cow::Borrowed("none"), 0, 0, 0),
        Some((delivery, took)) => {
            let upstream = match delivery.upstream {
                Upstream::Status(code) => Cow::Owned(code.to_string()),
                Upstream::Failed(failure) => Cow::Borrowed(failure.label()),
                Upstream::Logged => Cow::Borrowed("log"),
            };
            (upstream, took.as_micros() as u64, delivery.delivered as u64, delivery.parts as u64)
        }
    };
    log::info!(
        target: "hookgate::request",
        request_id = record.request_id.as_str(),
        hook = hook,
        status = status as u64,
        reason = reason,
        body_bytes = record.body_bytes as u64,
        pipeline_us = record.pipeline.as_micros() as u64,
        upstream = upstream.as_ref(),
        upstream_us = upstream_us,
        posts_delivered = delivered,
        posts = parts,
        total_us = total.as_micros() as u64;
        "request"
    );
}
