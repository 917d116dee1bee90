//! Delivery from JetStream: one task per spooled hook of the rules, each pulling its hook's
//! messages through the hook's durable consumer. The consumer lets one message out at a time
//! across every instance, so whichever instance holds it, the hook's order holds.

use super::{DeadRecord, Nats, NEWER_WAIT};
use crate::active::Active;
use crate::delivery::job::{self, Job};
use crate::observe::metrics::{Metrics, STORED_AFTER_REFUSAL};
use crate::rules::Delivery;
use crate::spool::attempt::{self, Attempts, Ended, Settle};
use crate::spool::route::{self, Posts, Target};
use crate::spool::{gauges, lock, Spool};
use arc_swap::ArcSwap;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{AckKind, Message};
use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the hooks to deliver for and the gauges are looked at.
const LOOK: Duration = Duration::from_secs(1);
/// How long one pull waits for a message.
const PULL_WAIT: Duration = Duration::from_secs(1);
/// Past this without word from this instance, JetStream gives the message to another: it bounds
/// how long a killed instance holds up its hooks. A longer attempt sends progress.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long shutdown waits for attempts in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

pub struct StreamWorker {
    shared: Arc<Shared>,
}

struct Shared {
    spool: Arc<Nats>,
    active: Arc<ArcSwap<Active>>,
    metrics: Arc<Metrics>,
    attempts: Attempts,
    /// Hooks with a task pulling for them.
    running: Mutex<HashSet<String>>,
    stopping: AtomicBool,
    /// Posts of a job already accepted, by stream sequence, with the backend that took them:
    /// JetStream's messages cannot be changed, so this instance remembers them; another
    /// instance sends them again.
    parts_done: Mutex<HashMap<u64, (String, usize)>>,
}

/// The durable consumer of a hook. Names cannot hold `.`, which hook names may; they cannot
/// hold `~`, so the mapping is one to one.
pub fn consumer_name(hook: &str) -> String {
    format!("hook_{}", hook.replace('.', "~"))
}

impl StreamWorker {
    pub fn new(spool: Arc<Nats>, active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> StreamWorker {
        let shared = Shared {
            attempts: Attempts::new(metrics.clone(), spool.settings.clone()),
            spool,
            active,
            metrics,
            running: Mutex::new(HashSet::new()),
            stopping: AtomicBool::new(false),
            parts_done: Mutex::new(HashMap::new()),
        };
        StreamWorker { shared: Arc::new(shared) }
    }
}

#[async_trait]
impl BackgroundService for StreamWorker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = &self.shared;
        match shared.spool.status().await {
            Ok(status) => {
                let pending: u64 = status.iter().map(|(_, s)| s.pending).sum();
                log::info!(target: "hookgate", pending = pending, hooks = status.len() as u64; "spool: resuming messages");
            }
            Err(e) => log::error!(target: "hookgate", "spool: cannot read the stream: {e}"),
        }
        loop {
            shared.start_hooks();
            shared.update_gauges().await;
            tokio::select! {
                _ = tokio::time::sleep(LOOK) => {}
                _ = shutdown.changed() => break,
            }
        }
        shared.stopping.store(true, Ordering::Release);
        // Each task ends after its attempt in flight; what is not acknowledged stays in the stream.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while !lock(&shared.running).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Shared {
    /// A task for every spooled hook of the rules that has none.
    fn start_hooks(self: &Arc<Self>) {
        let active = self.active.load();
        for hook in active.rules.hooks.iter().filter(|h| h.delivery == Delivery::Spool) {
            if lock(&self.running).insert(hook.name.clone()) {
                let (shared, name) = (self.clone(), hook.name.clone());
                tokio::spawn(async move {
                    shared.pull(&name).await;
                    lock(&shared.running).remove(&name);
                });
            }
        }
    }

    /// Whether `hook` is still a spooled hook of the rules: a reload may have removed it, and
    /// then its messages wait, orphaned, for it to return.
    fn wanted(&self, hook: &str) -> bool {
        let active = self.active.load();
        active.rules.hook_named(hook).is_some_and(|i| active.rules.hooks[i].delivery == Delivery::Spool)
    }

    /// Pulls and delivers the hook's messages while it is wanted.
    async fn pull(&self, hook: &str) {
        let mut consumer = None;
        while !self.stopping.load(Ordering::Acquire) && self.wanted(hook) {
            let Some(pulling) = &consumer else {
                match self.consumer(hook).await {
                    Ok(made) => consumer = Some(made),
                    Err(e) => {
                        log::warn!(target: "hookgate", hook = hook; "spool: cannot reach the hook's consumer: {e}");
                        tokio::time::sleep(LOOK).await;
                    }
                }
                continue;
            };
            let batch = pulling.fetch().max_messages(1).expires(PULL_WAIT).messages().await;
            let mut messages = match batch {
                Ok(messages) => messages,
                Err(e) => {
                    log::warn!(target: "hookgate", hook = hook; "spool: cannot pull from NATS: {e}");
                    consumer = None;
                    tokio::time::sleep(LOOK).await;
                    continue;
                }
            };
            while let Some(message) = messages.next().await {
                match message {
                    Ok(message) => self.deliver(message).await,
                    Err(e) => log::warn!(target: "hookgate", hook = hook; "spool: a pull from NATS failed: {e}"),
                }
            }
        }
    }

    async fn consumer(&self, hook: &str) -> Result<async_nats::jetstream::consumer::Consumer<pull::Config>, String> {
        let connection = self.spool.connection().await.map_err(|e| e.to_string())?;
        let name = consumer_name(hook);
        let config = pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: self.spool.work_subject(hook),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: 1,
            max_deliver: -1,
            ..Default::default()
        };
        connection.work.get_or_create_consumer(&name, config).await.map_err(|e| e.to_string())
    }

    /// One attempt at one message, and its end told to JetStream.
    async fn deliver(&self, message: Message) {
        let Ok(info) = message.info() else { return };
        let (seq, attempts) = (info.stream_sequence, info.delivered.max(1) as u32);
        let stored_ms = u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let job: Job = match serde_json::from_slice(&message.payload) {
            Ok(job) => job,
            Err(e) => {
                // Not a job this gateway wrote: nothing can deliver it.
                log::error!(target: "hookgate", "spool: message {seq} of the stream is not a job, dropped: {e}");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        if job.give_up_ms.is_some_and(|give_up_ms| stored_ms > give_up_ms) {
            self.discard(&message, seq, &job, stored_ms).await;
            return;
        }
        let now_ms = job::now_ms(SystemTime::now());
        if attempt::too_old(&job, &self.spool.settings, now_ms) {
            let settle = Settle::Dead { parts_done: 0, attempts: attempts - 1, reason: attempt::TOO_OLD.into() };
            self.settle(&message, seq, &job, settle, attempts - 1, Cow::Borrowed("none"), None).await;
            return;
        }
        let active = self.active.load_full();
        let hook = match route::target(&job, &active.rules) {
            Target::To { hook } => hook,
            Target::Newer => {
                log::warn!(target: "hookgate", request_id = job.request_id.as_str(); "spool: message {seq} is of format {}, newer than this release's; left for an instance that reads it", job.v);
                let _ = message.ack_with(AckKind::Nak(Some(NEWER_WAIT))).await;
                return;
            }
            // A hook the rules no longer have: not an attempt; it waits, orphaned.
            Target::Orphaned => {
                let _ = message.ack_with(AckKind::Nak(Some(LOOK))).await;
                return;
            }
        };
        let route = active.routes.of(hook);
        let backend_rules = &active.rules.backends[route.backend];
        if let Some(paused) = self.attempts.paused(&backend_rules.name) {
            let _ = message.ack_with(AckKind::Nak(Some(paused))).await;
            return;
        }
        let Posts { posts, moved_from } = match route::posts(&job, &active, hook) {
            Ok(posts) => posts,
            Err(reason) => {
                let settle = Settle::Dead { parts_done: 0, attempts: attempts - 1, reason };
                self.settle(&message, seq, &job, settle, attempts - 1, Cow::Borrowed("none"), None).await;
                return;
            }
        };
        // Parts done count against the posts of the backend they went to.
        let done_before =
            lock(&self.parts_done).get(&seq).filter(|(to, _)| *to == backend_rules.name).map_or(0, |(_, done)| *done);
        let remaining = posts.iter().skip(done_before).cloned();
        let map = self.spool.messages();
        let progress = (done_before, posts.len());
        let sending = self.attempts.attempt(&active, hook, &job, remaining, progress, attempts, map);
        tokio::pin!(sending);
        // A long attempt tells JetStream it is alive, so ACK_WAIT can stay short.
        let Ended { settle, upstream } = loop {
            tokio::select! {
                ended = &mut sending => break ended,
                _ = tokio::time::sleep(ACK_WAIT / 3) => { let _ = message.ack_with(AckKind::Progress).await; }
            }
        };
        if let Settle::Retry { parts_done, .. } = &settle {
            lock(&self.parts_done).insert(seq, (backend_rules.name.clone(), *parts_done));
        }
        self.settle(&message, seq, &job, settle, attempts, upstream, moved_from).await;
    }

    /// Takes a message off the stream undelivered: the store took it after its request had
    /// been answered 503 (docs/spool.md, "A refused message is never delivered later"), so the
    /// client sends it again.
    async fn discard(&self, message: &Message, seq: u64, job: &Job, stored_ms: u64) {
        if let Err(e) = message.double_ack().await {
            // Offered again after ACK_WAIT, and discarded then.
            log::error!(target: "hookgate", request_id = job.request_id.as_str(); "spool: cannot discard message {seq}: {e}");
            return;
        }
        lock(&self.parts_done).remove(&seq);
        self.metrics.spool().discarded(&job.hook, STORED_AFTER_REFUSAL);
        let late_ms = stored_ms.saturating_sub(job.give_up_ms.unwrap_or(stored_ms));
        log::warn!(
            target: "hookgate::spool",
            request_id = job.request_id.as_str(),
            hook = job.hook.as_str(),
            reason = STORED_AFTER_REFUSAL,
            late_ms = late_ms;
            "discarded: the store took this message after its request was answered 503"
        );
    }

    /// Tells JetStream what became of the message, then logs and counts the attempt.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        message: &Message,
        seq: u64,
        job: &Job,
        settle: Settle,
        number: u32,
        upstream: Cow<'_, str>,
        moved_from: Option<&str>,
    ) {
        let told = match &settle {
            Settle::Delivered => message.double_ack().await.map_err(|e| e.to_string()),
            Settle::Retry { next_ms, error, .. } => {
                self.spool.note(&job.hook, Some((error.clone(), *next_ms)));
                let wait = Duration::from_millis(next_ms.saturating_sub(job::now_ms(SystemTime::now())));
                message.ack_with(AckKind::Nak(Some(wait))).await.map_err(|e| e.to_string())
            }
            Settle::Dead { attempts, reason, .. } => self.bury(message, seq, job, *attempts, reason).await,
        };
        if !matches!(settle, Settle::Retry { .. }) {
            lock(&self.parts_done).remove(&seq);
            self.spool.note(&job.hook, None);
        }
        if let Err(e) = told {
            // JetStream gives the message out again after ACK_WAIT: within the at-least-once window.
            log::error!(target: "hookgate", request_id = job.request_id.as_str(); "spool: cannot tell NATS how an attempt ended: {e}");
        }
        attempt::recorded(&self.metrics, job, &settle, number, &upstream, moved_from);
    }

    /// Stores a dead letter in `{stream}_DEAD`, then takes the message off the work queue.
    async fn bury(&self, message: &Message, seq: u64, job: &Job, attempts: u32, reason: &str) -> Result<(), String> {
        let record = DeadRecord { v: job::FORMAT, job: job.clone(), attempts, reason: reason.to_owned() };
        let payload = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
        let id = format!("dead.{}.{seq}", self.spool.nats.stream);
        let subject = self.spool.dead_subject(&job.hook);
        if let Err(e) = self.spool.publish(subject, id, payload, super::Window::open()).await {
            let _ = message.ack_with(AckKind::Nak(Some(LOOK))).await;
            return Err(format!("the dead letter was not stored, the message stays queued: {e}"));
        }
        message.double_ack().await.map_err(|e| e.to_string())
    }

    async fn update_gauges(&self) {
        let Ok(status) = self.spool.status().await else { return };
        let bytes = self.spool.bytes().await.unwrap_or(0);
        gauges::set(&self.metrics, &self.active.load(), &status, bytes);
    }
}
