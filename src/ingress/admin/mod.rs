//! The admin listener, separate from the webhook listener and on loopback by default:
//! `GET /metrics` (Prometheus text format), `/healthz`, `/readyz`, `/dashboard.json` (the
//! Grafana dashboard for these metrics, ready to import), and the spool's API under `/spool`.

mod spool;

use super::head::{self, read_head, Read};
use crate::active::Active;
use crate::observe::metrics::Metrics;
use crate::refusal::Refusal;
use crate::spool::Spool;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Grafana dashboard, kept beside the code that defines the metrics it shows.
pub const DASHBOARD: &str = include_str!("dashboard.json");

/// Seconds an idle admin connection is kept open between requests, as pingora's default.
const KEEPALIVE_SECS: u64 = 60;

pub struct Admin {
    metrics: Arc<Metrics>,
    active: Arc<ArcSwap<Active>>,
    spool: Option<Arc<dyn Spool>>,
    /// The webhook listener, which must accept connections before the gateway is ready.
    webhook_listen: SocketAddr,
    ready: AtomicBool,
}

impl Admin {
    pub fn new(
        metrics: Arc<Metrics>,
        active: Arc<ArcSwap<Active>>,
        spool: Option<Arc<dyn Spool>>,
        webhook_listen: SocketAddr,
    ) -> Admin {
        Admin { metrics, active, spool, webhook_listen, ready: AtomicBool::new(false) }
    }

    /// Rules are loaded before any listener starts, so ready means the webhook listener accepts.
    async fn ready(&self) -> bool {
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        let connect = tokio::net::TcpStream::connect(self.webhook_listen);
        let up = matches!(tokio::time::timeout(Duration::from_millis(500), connect).await, Ok(Ok(_)));
        self.ready.store(up, Ordering::Relaxed);
        up
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

/// A request head the admin listener will not serve, answered as plain text, as the rest.
fn refused(refusal: &Refusal) -> Response<Vec<u8>> {
    let spec = refusal.reason().spec();
    let status = StatusCode::from_u16(spec.status).unwrap_or(StatusCode::BAD_REQUEST);
    reply(status, "text/plain", format!("{}\n", spec.code).into_bytes())
}

/// Reads each request head itself, as the webhook listener does, so that a head over the limits
/// or one the parser refuses is answered (431, 400) before the connection closes
/// (docs/webhooks.md, "Responses"); pingora's `ServeHttp` would close it silently.
#[async_trait]
impl HttpServerApp for Admin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let timeout = self.active.load().rules.gateway.client_header_timeout;
        let response = match read_head(&mut session, timeout).await {
            Read::Gone => return None,
            Read::Refused(refusal) => {
                session.set_keepalive(None);
                refused(&refusal)
            }
            Read::Request if head::too_large(&session) => {
                session.set_keepalive(None);
                refused(&Refusal::HeadTooLarge)
            }
            Read::Request => {
                session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
                self.response(&mut session).await
            }
        };
        let (parts, body) = response.into_parts();
        let written = session.write_response_header(Box::new(parts.into())).await.is_ok()
            && session.write_response_body(body.into(), true).await.is_ok();
        if !written {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, settings)),
            _ => None,
        }
    }
}

impl Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (method, uri) = (&session.req_header().method, &session.req_header().uri);
        if uri.path() == "/spool" || uri.path().starts_with("/spool/") {
            let active = self.active.load();
            let (status, body) =
                spool::answer(self.spool.as_deref(), &active.rules, method, uri.path(), uri.query().unwrap_or(""))
                    .await;
            let mut text = serde_json::to_vec_pretty(&body).unwrap_or_default();
            text.push(b'\n');
            return reply(status, "application/json", text);
        }
        if session.req_header().method != Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", b"method not allowed\n".to_vec());
        }
        match session.req_header().uri.path() {
            "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render()),
            "/healthz" => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" if self.ready().await => reply(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
            "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", b"not ready\n".to_vec()),
            "/dashboard.json" => reply(StatusCode::OK, "application/json", DASHBOARD.as_bytes().to_vec()),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}
