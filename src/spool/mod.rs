//! The spool (docs/spool.md and docs/instances.md): jobs of `delivery = "spool"` hooks stored
//! durably before the client hears `ok`, then delivered in order per hook.
//!
//! An engine is a folder behind the `Spool` trait, its typed settings in `rules::SpoolEngine`
//! (read in `rules/load/spool.rs`) and one arm in `open`: `embedded` (SQLite in a directory of
//! this machine) and `nats` (a JetStream stream that several instances share). How an attempt is
//! made and what its end means for a job is the same for every engine (`attempt.rs`).

pub mod attempt;
pub mod embedded;
pub mod gauges;
pub mod messages;
pub mod nats;
pub mod route;

use crate::active::Active;
use crate::delivery::job::Job;
use crate::observe::metrics::Metrics;
use crate::rules::{SpoolEngine, SpoolSettings};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;

/// A worker's lock, taken even when poisoned: its maps hold bookkeeping (busy hooks, pauses)
/// that stays usable after a panic in another task.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A stored job's identity within its hook, as the admin API shows it: the order it was stored
/// in (an engine's sequence number).
pub type Seq = i64;

/// Why a job was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    /// `max_bytes` would be passed; try again after some delivery.
    #[error("the spool holds max_bytes already")]
    Full,
    #[error("{0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("spool store: {0}")]
pub struct StoreError(pub String);

/// One hook's part of the store, for `GET /spool` and the gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookStatus {
    pub pending: u64,
    pub dead: u64,
    /// When the oldest pending job was received, in milliseconds since the Unix epoch.
    pub oldest_pending_ms: Option<u64>,
    /// When the head job will be tried next.
    pub next_attempt_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// A dead letter, as the admin lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub seq: Seq,
    pub job: Job,
    pub attempts: u32,
    pub reason: String,
}

/// What the gateway asks of a spool engine: take jobs, answer the admin, and deliver.
#[async_trait]
pub trait Spool: Send + Sync {
    /// Stores a job; returns once it is durable, as the engine defines it.
    async fn append(&self, job: Job) -> Result<(), Refused>;
    /// Every hook with something stored, by name.
    async fn status(&self) -> Result<Vec<(String, HookStatus)>, StoreError>;
    async fn dead(&self, hook: &str) -> Result<Vec<DeadLetter>, StoreError>;
    /// Dead letters of `hook` (one, or all when `seq` is `None`) back to the end of its queue,
    /// attempts reset. Returns how many.
    async fn replay(&self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError>;
    /// Removes one dead letter; false when the hook has none of that id.
    async fn drop_dead(&self, hook: &str, seq: Seq) -> Result<bool, StoreError>;
    /// Removes every message stored for `hook`, pending and dead; how many.
    async fn drop_hook(&self, hook: &str) -> Result<u64, StoreError>;
    /// Payload bytes stored, pending and dead, for `hookgate_spool_bytes`.
    async fn bytes(&self) -> Result<u64, StoreError>;
    /// The Web API's message map, kept in this engine's store (docs/webapi.md).
    fn messages(&self) -> &dyn messages::MessageMap;
    /// The delivery worker, run by pingora as a background service.
    fn worker(self: Arc<Self>, active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> DeliveryService;
}

/// Opens the engine the settings name, checking it can be used: a gateway that cannot keep what
/// it acknowledges must not start. The engines are few and their settings are typed in `rules`
/// (`SpoolEngine`), so choosing one is a match.
pub fn open(settings: &SpoolSettings, metrics: &Arc<Metrics>) -> Result<Arc<dyn Spool>, StoreError> {
    match &settings.engine {
        SpoolEngine::Embedded => embedded::open(settings, metrics),
        SpoolEngine::Nats(nats) => nats::open(nats, settings, metrics),
    }
}

/// An engine's delivery worker as one pingora background service.
pub struct DeliveryService(pub Box<dyn BackgroundService + Send + Sync>);

#[async_trait]
impl BackgroundService for DeliveryService {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.start(shutdown).await
    }
}
