//! The NATS engine (docs/instances.md): jobs in a JetStream work-queue stream that every
//! instance shares, so a message acknowledged by one instance is delivered by whichever is alive.
//!
//! - `{stream}`: subjects `{stream}.{hook}`, work-queue retention, file storage. A job is
//!   acknowledged `ok` once JetStream acknowledged its publish. Its message id is the hook,
//!   request id and time received, so a publish this gateway repeats after a lost answer is
//!   stored once, while two clients sending the same `X-Request-Id` are still two messages.
//! - One durable pull consumer per hook with one message in flight (`max_ack_pending = 1`): each
//!   hook's order holds across all instances. Backoff and `Retry-After` are delayed redeliveries.
//! - `{stream}_DEAD`: dead letters (limits retention), listed, replayed and dropped from any
//!   instance through the same admin API.
//! - `{stream}_MESSAGES`: the Web API's message map, a key-value bucket (`messages.rs`).
//!
//! The client runs on a runtime of its own, started on first use like the embedded writer (a
//! `--daemon` fork keeps no threads), so the connection outlives any one pingora service.

mod messages;
mod worker;

use crate::active::Active;
use crate::delivery::job::{self, Job};
use crate::observe::metrics::Metrics;
use crate::rules::{NatsSettings, SpoolSettings};
use crate::spool::{DeadLetter, HookStatus, Refused, Seq, Spool, StoreError};
use arc_swap::ArcSwap;
use async_nats::jetstream::{self, context::PublishErrorKind, kv, message::PublishMessage, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::OnceCell;

/// How long a request waits for JetStream to acknowledge its publish, retries included; an
/// acknowledgement that comes later is not taken.
const PUBLISH_WAIT: Duration = Duration::from_secs(4);
/// How far this machine's clock and the NATS servers' may disagree while the discard rule holds
/// (docs/spool.md): a job is marked to be discarded if stored later than `PUBLISH_WAIT` plus
/// this, and its request is answered 503 no sooner than `PUBLISH_WAIT` plus twice this.
const CLOCK_MARGIN: Duration = Duration::from_millis(500);
/// How long a job of a newer format waits before it is offered again, to an instance that
/// may read it.
const NEWER_WAIT: Duration = Duration::from_secs(5);
/// One JetStream API call.
const API_TIMEOUT: Duration = Duration::from_secs(3);
/// Duplicate publishes of one message id are suppressed within this window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How many messages a listing of dead letters reads at most.
const MAX_LISTED: usize = 10_000;

/// The connection's runtime: a static, so it is never dropped inside an async context.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

pub struct Nats {
    settings: SpoolSettings,
    /// Each acknowledged publish is this engine's commit, timed as one.
    metrics: Arc<Metrics>,
    nats: NatsSettings,
    connection: OnceCell<Connection>,
    /// What this instance saw of each hook's last failed attempt: the error and when the next
    /// attempt is due. JetStream keeps neither.
    notes: Mutex<HashMap<String, (String, u64)>>,
    /// The newest `ts` this instance minted, where its next mint starts.
    last_ts: AtomicU64,
}

struct Connection {
    client: async_nats::Client,
    js: jetstream::Context,
    work: stream::Stream,
    dead: stream::Stream,
    messages: kv::Store,
}

/// A dead letter as stored in `{stream}_DEAD`: `v` is its format, as the job's (0 when absent).
#[derive(Serialize, Deserialize)]
struct DeadRecord {
    #[serde(default)]
    v: u32,
    job: Job,
    attempts: u32,
    reason: String,
}

/// Connects once to check the servers and the streams, then lets go: the gateway connects for
/// good on first use, after any fork.
pub fn open(
    nats: &NatsSettings,
    settings: &SpoolSettings,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn Spool>, StoreError> {
    let check = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError(format!("cannot start a runtime to reach NATS: {e}")))?;
    check.block_on(connect(nats, settings))?;
    Ok(Arc::new(Nats {
        settings: settings.clone(),
        metrics: metrics.clone(),
        nats: nats.clone(),
        connection: OnceCell::new(),
        notes: Mutex::new(HashMap::new()),
        last_ts: AtomicU64::new(0),
    }))
}

/// Connects and makes the two streams and the message map's bucket when missing.
async fn connect(nats: &NatsSettings, settings: &SpoolSettings) -> Result<Connection, StoreError> {
    let max_bytes = settings.max_bytes;
    let urls = nats.urls.join(",");
    let client = async_nats::ConnectOptions::new()
        .name("hookgate")
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(None)
        .connect(nats.urls.as_slice())
        .await
        .map_err(|e| StoreError(format!("cannot connect to NATS at {urls}: {e}")))?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(API_TIMEOUT);
    let work = stream::Config {
        name: nats.stream.clone(),
        description: Some(format_mark()),
        subjects: vec![format!("{}.>", nats.stream)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: nats.replicas,
        max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    let dead = stream::Config {
        name: dead_stream(nats),
        description: Some(format_mark()),
        subjects: vec![format!("{}.>", dead_stream(nats))],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: nats.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    let stream_error = |name: &str, e: &dyn std::fmt::Display| StoreError(format!("JetStream stream {name}: {e}"));
    let work = js.get_or_create_stream(work).await.map_err(|e| stream_error(&nats.stream, &e))?;
    let dead = js.get_or_create_stream(dead).await.map_err(|e| stream_error(&dead_stream(nats), &e))?;
    for stream in [&work, &dead] {
        let config = &stream.cached_info().config;
        match stream_format(config.description.as_deref()) {
            format if format > job::FORMAT => {
                return Err(StoreError(format!(
                    "JetStream stream {} is in spool format {format}, written by a newer hookgate; this one reads \
                     formats up to {}",
                    config.name,
                    job::FORMAT
                )))
            }
            format if format < job::FORMAT => {
                // Older streams need no change but the mark, so the next release can tell.
                let marked = stream::Config { description: Some(format_mark()), ..config.clone() };
                js.update_stream(&marked).await.map_err(|e| stream_error(&config.name, &e))?;
            }
            _ => {}
        }
    }
    // The bucket's stream, made as a key-value bucket's is (`KV_{bucket}`, one value per key):
    // the client's own `create_key_value` first asks for account details that servers before
    // 2.10 describe in a shape it cannot read.
    let bucket = messages::bucket(&nats.stream);
    let kv_stream = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(format_mark()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: settings.message_max_age,
        storage: stream::StorageType::File,
        num_replicas: nats.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(kv_stream).await.map_err(|e| stream_error(&format!("KV_{bucket}"), &e))?;
    let messages = js.get_key_value(bucket.as_str()).await.map_err(|e| stream_error(&format!("KV_{bucket}"), &e))?;
    Ok(Connection { client, js, work, dead, messages })
}

/// The description a stream of this format carries; streams made before formats have none.
fn format_mark() -> String {
    format!("hookgate spool, format {}", job::FORMAT)
}

/// The format a stream's description names: 0 for none.
fn stream_format(description: Option<&str>) -> u32 {
    description.and_then(|d| d.strip_prefix("hookgate spool, format ")).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The times of one publish: until when an acknowledgement is taken, the `give_up_ms` its job
/// carries, and when a failure may be answered.
struct Window {
    started: Instant,
    acks_until: Instant,
    give_up_ms: u64,
    answer_at: Instant,
}

impl Window {
    fn open() -> Window {
        let started = Instant::now();
        Window {
            started,
            acks_until: started + PUBLISH_WAIT,
            give_up_ms: job::now_ms(SystemTime::now()) + (PUBLISH_WAIT + CLOCK_MARGIN).as_millis() as u64,
            answer_at: started + PUBLISH_WAIT + 2 * CLOCK_MARGIN,
        }
    }
}

fn dead_stream(nats: &NatsSettings) -> String {
    format!("{}_DEAD", nats.stream)
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("NATS: {e}"))
}

impl Nats {
    async fn connection(&self) -> Result<&Connection, StoreError> {
        self.connection
            .get_or_try_init(|| async {
                let runtime = RUNTIME.get_or_init(|| {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("hookgate-nats")
                        .enable_all()
                        .build()
                        .expect("a one-thread runtime can be built")
                });
                let (nats, settings) = (self.nats.clone(), self.settings.clone());
                runtime.spawn(async move { connect(&nats, &settings).await }).await.map_err(failed)?
            })
            .await
    }

    fn work_subject(&self, hook: &str) -> String {
        format!("{}.{hook}", self.nats.stream)
    }

    fn dead_subject(&self, hook: &str) -> String {
        format!("{}.{hook}", dead_stream(&self.nats))
    }

    /// The hook a subject of either stream belongs to.
    fn hook_of<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let dead = dead_stream(&self.nats);
        subject
            .strip_prefix(dead.as_str())
            .or_else(|| subject.strip_prefix(self.nats.stream.as_str()))
            .and_then(|rest| rest.strip_prefix('.'))
    }

    /// Publishes a job, marked with the moment its request gives up waiting: a copy the stream
    /// takes after that (the client sends what it held while it thought itself connected, once it
    /// is connected again) is discarded by the worker, since its request was answered 503.
    async fn publish_job(&self, subject: String, id: String, mut job: Job) -> Result<(), Refused> {
        let window = Window::open();
        job.give_up_ms = Some(window.give_up_ms);
        let payload = serde_json::to_vec(&job).map_err(failed)?;
        self.publish(subject, id, payload, window).await
    }

    /// Publishes and waits for JetStream's acknowledgement, trying again with the same message id
    /// until the window's acknowledgements close: a repeat of a publish that was stored is
    /// suppressed. Nothing is published while the client is disconnected. A publish that failed
    /// after anything was sent is answered only once the window has closed, so whatever the
    /// stream takes from then on is past the job's `give_up_ms`.
    async fn publish(&self, subject: String, id: String, payload: Vec<u8>, window: Window) -> Result<(), Refused> {
        let connection = self.connection().await?;
        let js = &connection.js;
        let mut sent = false;
        let error = loop {
            let left = window.acks_until.saturating_duration_since(Instant::now());
            if connection.client.connection_state() != async_nats::connection::State::Connected {
                if left <= Duration::from_millis(100) {
                    break failed("not connected to any NATS server");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            sent = true;
            let message = PublishMessage::build().message_id(&id).payload(payload.clone().into());
            let attempt = async {
                match js.send_publish(subject.clone(), message).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                }
            };
            let error = match tokio::time::timeout(left, attempt).await {
                Ok(Ok(_)) => {
                    self.metrics.spool().committed(window.started.elapsed());
                    return Ok(());
                }
                Ok(Err(error)) => error,
                Err(_) => break failed("the publish was not acknowledged in time"),
            };
            // JetStream refuses a message past the stream's max_bytes (discard new): not stored.
            if error.kind() == PublishErrorKind::Other && error.to_string().contains("maximum bytes") {
                return Err(Refused::Full);
            }
            if left <= Duration::from_millis(200) {
                break failed(format!("the publish was not acknowledged: {error}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if sent {
            tokio::time::sleep_until(window.answer_at.into()).await;
        }
        Err(Refused::Store(error))
    }

    /// Messages per hook in one stream.
    async fn counts(&self, stream: &stream::Stream) -> Result<HashMap<String, u64>, StoreError> {
        let filter = format!("{}.>", stream.cached_info().config.name);
        let mut subjects = stream.info_with_subjects(filter).await.map_err(failed)?;
        let mut counts = HashMap::new();
        while let Some(entry) = subjects.next().await {
            let (subject, count) = entry.map_err(failed)?;
            if let Some(hook) = self.hook_of(&subject) {
                counts.insert(hook.to_owned(), count as u64);
            }
        }
        Ok(counts)
    }

    /// The dead letters of `hook`, oldest first.
    async fn dead_records(&self, hook: &str) -> Result<Vec<(Seq, DeadRecord)>, StoreError> {
        let dead = &self.connection().await?.dead;
        let subject = self.dead_subject(hook);
        let mut records = Vec::new();
        let mut from = 1;
        while records.len() < MAX_LISTED {
            let Ok(message) = dead.get_first_raw_message_by_subject(&subject, from).await else { break };
            from = message.sequence + 1;
            match serde_json::from_slice::<DeadRecord>(&message.payload) {
                Ok(record) if record.v > job::FORMAT => {
                    log::warn!(target: "hookgate", "spool: dead letter {} of {hook} is of format {}, newer than this release's; left out", message.sequence, record.v)
                }
                Ok(record) => records.push((message.sequence as Seq, record)),
                Err(e) => {
                    log::error!(target: "hookgate", "spool: dead letter {} of {hook} is unreadable: {e}", message.sequence)
                }
            }
        }
        Ok(records)
    }

    /// One dead letter of `hook`, or `None` when that id is another hook's or gone.
    async fn dead_record(&self, hook: &str, seq: Seq) -> Result<Option<DeadRecord>, StoreError> {
        let dead = &self.connection().await?.dead;
        let Ok(seq) = u64::try_from(seq) else { return Ok(None) };
        let Ok(message) = dead.get_raw_message(seq).await else { return Ok(None) };
        if message.subject.as_str() != self.dead_subject(hook) {
            return Ok(None);
        }
        Ok(serde_json::from_slice(&message.payload).ok().filter(|r: &DeadRecord| r.v <= job::FORMAT))
    }

    /// Puts a dead letter back at the end of its hook's queue and removes it from the dead.
    async fn replay_one(&self, hook: &str, seq: Seq, record: DeadRecord) -> Result<(), StoreError> {
        let id = format!("replay.{}.{seq}", dead_stream(&self.nats));
        self.publish_job(self.work_subject(hook), id, record.job).await.map_err(|e| match e {
            Refused::Full => failed("the stream holds max_bytes already"),
            Refused::Store(e) => e,
        })?;
        self.connection().await?.dead.delete_message(seq as u64).await.map_err(failed)?;
        Ok(())
    }

    fn note(&self, hook: &str, note: Option<(String, u64)>) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        match note {
            Some(note) => notes.insert(hook.to_owned(), note),
            None => notes.remove(hook),
        };
    }
}

#[async_trait]
impl Spool for Nats {
    async fn append(&self, job: Job) -> Result<(), Refused> {
        let id = format!("{}.{}.{}", job.hook, job.request_id, job.received_ms);
        self.publish_job(self.work_subject(&job.hook), id, job).await
    }

    async fn status(&self) -> Result<Vec<(String, HookStatus)>, StoreError> {
        let connection = self.connection().await?;
        let pending = self.counts(&connection.work).await?;
        let dead = self.counts(&connection.dead).await?;
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut hooks: Vec<String> = pending.keys().chain(dead.keys()).cloned().collect();
        hooks.sort();
        hooks.dedup();
        let mut status = Vec::with_capacity(hooks.len());
        for hook in hooks {
            let pending = pending.get(&hook).copied().unwrap_or(0);
            let mut s = HookStatus { pending, dead: dead.get(&hook).copied().unwrap_or(0), ..HookStatus::default() };
            if pending > 0 {
                let oldest = connection.work.get_first_raw_message_by_subject(self.work_subject(&hook), 1).await;
                s.oldest_pending_ms =
                    oldest.ok().and_then(|m| serde_json::from_slice::<Job>(&m.payload).ok()).map(|j| j.received_ms);
                if let Some((error, next_ms)) = notes.get(&hook) {
                    s.last_error = Some(error.clone());
                    s.next_attempt_ms = Some(*next_ms);
                }
            }
            status.push((hook, s));
        }
        Ok(status)
    }

    async fn dead(&self, hook: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let records = self.dead_records(hook).await?;
        Ok(records
            .into_iter()
            .map(|(seq, r)| DeadLetter { seq, job: r.job, attempts: r.attempts, reason: r.reason })
            .collect())
    }

    async fn replay(&self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError> {
        let chosen = match seq {
            Some(seq) => self.dead_record(hook, seq).await?.map(|r| (seq, r)).into_iter().collect(),
            None => self.dead_records(hook).await?,
        };
        let n = chosen.len();
        for (seq, record) in chosen {
            self.replay_one(hook, seq, record).await?;
        }
        Ok(n)
    }

    async fn drop_dead(&self, hook: &str, seq: Seq) -> Result<bool, StoreError> {
        if self.dead_record(hook, seq).await?.is_none() {
            return Ok(false);
        }
        self.connection().await?.dead.delete_message(seq as u64).await.map_err(failed)
    }

    async fn drop_hook(&self, hook: &str) -> Result<u64, StoreError> {
        let connection = self.connection().await?;
        let mut dropped = 0;
        for (stream, subject) in
            [(&connection.work, self.work_subject(hook)), (&connection.dead, self.dead_subject(hook))]
        {
            dropped += stream.purge().filter(subject).await.map_err(failed)?.purged;
        }
        // Its consumer goes too; a hook of that name made later gets a new one.
        let _ = connection.work.delete_consumer(&worker::consumer_name(hook)).await;
        Ok(dropped)
    }

    async fn bytes(&self) -> Result<u64, StoreError> {
        let connection = self.connection().await?;
        let mut bytes = 0;
        for stream in [&connection.work, &connection.dead] {
            bytes += stream.get_info().await.map_err(failed)?.state.bytes;
        }
        Ok(bytes)
    }

    fn messages(&self) -> &dyn crate::spool::messages::MessageMap {
        self
    }

    fn worker(self: Arc<Self>, active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> crate::spool::DeliveryService {
        crate::spool::DeliveryService(Box::new(worker::StreamWorker::new(self, active, metrics)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_names_its_format_in_its_description() {
        assert_eq!(stream_format(Some(&format_mark())), job::FORMAT);
        assert_eq!(stream_format(None), 0, "streams made before formats have no description");
        assert_eq!(stream_format(Some("made by hand")), 0);
        assert_eq!(stream_format(Some("hookgate spool, format 12")), 12);
    }

    /// The times a publish keeps: acknowledgements until `PUBLISH_WAIT`, the job's mark a margin
    /// later, a failure answered a margin after that, so a message stored after the answer is
    /// always past its mark, even with clocks a margin apart.
    #[test]
    fn a_publish_window_answers_a_failure_only_after_its_mark() {
        let before = job::now_ms(SystemTime::now());
        let window = Window::open();
        let after = job::now_ms(SystemTime::now());
        let margin = CLOCK_MARGIN.as_millis() as u64;
        let wait = PUBLISH_WAIT.as_millis() as u64;
        assert!((before + wait + margin..=after + wait + margin).contains(&window.give_up_ms));
        assert_eq!(window.acks_until - window.started, PUBLISH_WAIT);
        assert_eq!(window.answer_at - window.acks_until, 2 * CLOCK_MARGIN);
    }
}
