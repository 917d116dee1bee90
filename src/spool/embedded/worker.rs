//! The spool's delivery worker: for each hook, its oldest pending job, one at a time, so each
//! hook's messages reach the backend in the order they were acknowledged. What an attempt's end
//! means for the job (delivered, retried when, dead) is decided by `decide`, a pure function.

use super::store::QueuedHead;
use super::Embedded;
use crate::active::Active;
use crate::delivery::job::{self, Job};
use crate::observe::metrics::Metrics;
use crate::rules::SpoolSettings;
use crate::spool::attempt::{self, Attempts, Ended, Settle};
use crate::spool::route::{self, Posts, Target};
use crate::spool::{gauges, lock, Spool};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The longest the worker sleeps without looking at the store: a reload may have brought back an
/// orphaned hook, and nothing else wakes it for that.
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// How long shutdown waits for attempts in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

pub struct StoreWorker {
    shared: Arc<Shared>,
}

struct Shared {
    spool: Arc<Embedded>,
    active: Arc<ArcSwap<Active>>,
    metrics: Arc<Metrics>,
    attempts: Attempts,
    /// Hooks with an attempt in flight, or finished since the store was last read: a list of
    /// heads read while an attempt was being recorded would still show its job.
    busy: Mutex<HashSet<String>>,
    /// Hooks whose attempt has been recorded, let go before the store is read again.
    finished: Mutex<Vec<String>>,
    /// Set once shutdown began.
    stopping: AtomicBool,
}

impl StoreWorker {
    pub fn new(
        spool: Arc<Embedded>,
        active: Arc<ArcSwap<Active>>,
        metrics: Arc<Metrics>,
        settings: SpoolSettings,
    ) -> Self {
        let shared = Shared {
            spool,
            active,
            attempts: Attempts::new(metrics.clone(), settings),
            metrics,
            busy: Mutex::new(HashSet::new()),
            finished: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        };
        StoreWorker { shared: Arc::new(shared) }
    }
}

#[async_trait]
impl BackgroundService for StoreWorker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = &self.shared;
        // Held while delivering; the file closes with the process.
        let Some(_delivering) = deliver_alone(&shared.attempts.settings.path, &mut shutdown).await else { return };
        match shared.spool.status().await {
            Ok(status) => {
                let pending: u64 = status.iter().map(|(_, s)| s.pending).sum();
                // After a crash, the head of each queue may have reached the backend already.
                log::info!(target: "hookgate", pending = pending, hooks = status.len() as u64; "spool: resuming messages");
            }
            Err(e) => log::error!(target: "hookgate", "spool: cannot read the store: {e}"),
        }
        let mut gauges_at: Option<Instant> = None;
        loop {
            let wait = shared.start_due().await;
            if gauges_at.is_none_or(|at| at.elapsed() >= IDLE_LOOK) {
                shared.update_gauges().await;
                gauges_at = Some(Instant::now());
            }
            tokio::select! {
                _ = shared.spool.wake.notified() => {}
                _ = tokio::time::sleep(wait.min(IDLE_LOOK)) => {}
                _ = shutdown.changed() => break,
            }
        }
        shared.stopping.store(true, Ordering::Release);
        // Attempts in flight finish, so their outcome is recorded; the rest waits in the store.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while lock(&shared.busy).len() > lock(&shared.finished).len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until no other process delivers from this store. During a graceful upgrade both the old
/// and the new process run; the new one's worker starts once the old one's has finished its
/// attempt in flight and let go, so no job is sent by both. `None` when shut down meanwhile.
async fn deliver_alone(dir: &Path, shutdown: &mut ShutdownWatch) -> Option<File> {
    let path = dir.join("worker.lock");
    let file = match File::options().create(true).truncate(false).write(true).open(&path) {
        Ok(file) => file,
        Err(e) => {
            log::error!(target: "hookgate", "spool: cannot open {}, delivery is off: {e}", path.display());
            return None;
        }
    };
    let mut waiting = false;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            if waiting {
                log::info!(target: "hookgate", "spool: the previous process let go; delivering");
            }
            return Some(file);
        }
        if !waiting {
            log::info!(target: "hookgate", "spool: another process is delivering from this store; waiting for it");
            waiting = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = shutdown.changed() => return None,
        }
    }
}

impl Shared {
    /// Starts an attempt for every due head whose hook is idle; returns how long until the next
    /// head is due.
    async fn start_due(self: &Arc<Self>) -> Duration {
        for hook in lock(&self.finished).drain(..) {
            lock(&self.busy).remove(&hook);
        }
        let heads = match self.spool.heads().await {
            Ok(heads) => heads,
            Err(e) => {
                log::error!(target: "hookgate", "spool: cannot read the store: {e}");
                return IDLE_LOOK;
            }
        };
        let now = SystemTime::now();
        let now_ms = job::now_ms(now);
        let mut wait = IDLE_LOOK;
        for head in heads {
            if lock(&self.busy).contains(&head.job.hook) {
                continue;
            }
            if attempt::too_old(&head.job, &self.attempts.settings, now_ms) {
                let settle = Settle::Dead {
                    parts_done: head.parts_done,
                    attempts: head.attempts,
                    reason: attempt::TOO_OLD.into(),
                };
                self.record(&head, settle, None).await;
                continue;
            }
            if head.next_ms > now_ms {
                wait = wait.min(Duration::from_millis(head.next_ms - now_ms));
                continue;
            }
            // A hook the rules no longer have is orphaned, and a job of a newer release is left
            // for it: both wait in the store.
            let active = self.active.load_full();
            let Target::To { hook } = route::target(&head.job, &active.rules) else { continue };
            let backend = &active.rules.backends[active.routes.of(hook).backend];
            if let Some(left) = self.attempts.paused(&backend.name) {
                wait = wait.min(left);
                continue;
            }
            lock(&self.busy).insert(head.job.hook.clone());
            let shared = self.clone();
            tokio::spawn(async move {
                let name = head.job.hook.clone();
                shared.attempt(head, &active, hook).await;
                lock(&shared.finished).push(name);
                shared.spool.wake.notify_one();
            });
        }
        wait
    }

    /// Sends the job's remaining posts in order and records how it went. A job whose hook now
    /// points at another backend is first stored as it goes there (`route.rs`).
    async fn attempt(&self, mut head: QueuedHead, active: &Active, hook: usize) {
        let route = active.routes.of(hook);
        let backend = &active.rules.backends[route.backend];
        if head.job.backend != backend.name {
            let moved = match route::posts(&head.job, active, hook) {
                Ok(Posts { posts, .. }) => Job {
                    backend: backend.name.clone(),
                    posts: posts.into_owned(),
                    moved_from: Some(head.job.backend.clone()),
                    ..head.job.clone()
                },
                Err(reason) => {
                    let settle = Settle::Dead { parts_done: head.parts_done, attempts: head.attempts, reason };
                    self.record(&head, settle, None).await;
                    return;
                }
            };
            if let Err(e) = self.spool.moved(&head, moved.clone()).await {
                // Tried again at the next look at the store.
                log::error!(target: "hookgate", request_id = head.job.request_id.as_str(); "spool: cannot store a job that follows its hook: {e}");
                return;
            }
            head = QueuedHead { job: moved, parts_done: 0, ..head };
        }
        let remaining = head.job.posts.iter().skip(head.parts_done).cloned();
        let number = head.attempts + 1;
        let progress = (head.parts_done, head.job.posts.len());
        let map = self.spool.messages();
        let Ended { settle, upstream } =
            self.attempts.attempt(active, hook, &head.job, remaining, progress, number, map).await;
        self.record(&head, settle, Some((number, upstream))).await;
    }

    /// Commits an attempt's end, logs it and counts it.
    async fn record(&self, head: &QueuedHead, settle: Settle, attempt: Option<(u32, Cow<'static, str>)>) {
        let (number, upstream) = attempt.unwrap_or((head.attempts, Cow::Borrowed("none")));
        // Until the outcome is recorded the hook stays busy: sending the job again because the
        // disk was full for a moment would post it twice. Only a shutdown gives up, and then the
        // job is in the window the next start resends.
        let mut pause = Duration::from_millis(100);
        while let Err(e) = self.spool.settle(head, settle.clone()).await {
            log::error!(target: "hookgate", request_id = head.job.request_id.as_str(); "spool: cannot record an attempt, trying again: {e}");
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        attempt::recorded(&self.metrics, &head.job, &settle, number, &upstream, head.job.moved_from.as_deref());
    }

    /// The gauges, with the stored bytes counted again from the store.
    async fn update_gauges(&self) {
        let Ok(status) = self.spool.status().await else { return };
        if let Err(e) = self.spool.recount().await {
            log::error!(target: "hookgate", "spool: cannot count the stored bytes: {e}");
        }
        gauges::set(&self.metrics, &self.active.load(), &status, self.spool.bytes());
    }
}
