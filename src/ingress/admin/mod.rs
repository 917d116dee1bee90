//! The admin listener, separate from the webhook listener and on loopback by default:
//! `GET /metrics` (Prometheus text format), `/healthz`, `/readyz`, `/dashboard.json` (the
//! Grafana dashboard for these metrics, ready to import), and the spool's API under `/spool`.

mod spool;

use crate::active::Active;
use crate::observe::metrics::Metrics;
use crate::spool::Spool;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Grafana dashboard, kept beside the code that defines the metrics it shows.
pub const DASHBOARD: &str = include_str!("dashboard.json");

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

#[async_trait]
impl ServeHttp for Admin {
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
