//! The embedded spool (docs/spool.md): one directory on this machine, no server. Jobs are
//! stored durably before the client hears `ok`, then delivered in order by `worker.rs`.
//!
//! One writer thread owns the store (`store.rs`, written by `sqlite.rs`). Every
//! operation, from requests and from the worker alike, is sent to it; it takes whatever has
//! queued up, runs it all in one transaction and answers each only after the commit returned, so
//! concurrent requests share one fsync (group commit).
//!
//! The Web API's message map is beside it, in `map_log`: written by the requests themselves,
//! taken to the disk by `syncer.rs` about `SYNC_GATHER` later, and by the writer thread before
//! each commit, so that a job never reaches the disk ahead of the entries written before it.

pub mod map_log;
pub mod sqlite;
pub mod store;
pub mod syncer;
pub mod worker;

use crate::active::Active;
use crate::delivery::job::Job;
use crate::observe::metrics::Metrics;
use crate::rules::SpoolSettings;
use crate::spool::attempt::Settle;
use crate::spool::messages::{Entry, MessageMap};
use crate::spool::{DeadLetter, HookStatus, Refused, Seq, Spool, StoreError};
use crate::webapi::ts::Ts;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use map_log::Log;
use sqlite::Sqlite;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use store::{Engine, QueuedHead};
use syncer::Syncer;
use tokio::sync::{oneshot, Notify};

/// Operations taken into one transaction at most.
const MAX_BATCH: usize = 1024;
/// How often the message map lets go of entries past `message_max_age`.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long writes of the message map gather before one sync takes them to the disk. A direct
/// post is already delivered when its entry is written, so a power cut can only cost the chance
/// to edit or delete the last second's messages; every `fsync` it does not wait for was 12-16%
/// of a `chat.postMessage`'s CPU (docs/performance.md).
const SYNC_GATHER: Duration = Duration::from_millis(500);

/// What the writer thread owns: the store, and the payload bytes it holds as of the open
/// transaction. Only this thread changes the count, in the order the store changes, so it is
/// exact; `max_bytes` is checked against it (see docs/spool.md, "Limits").
pub struct Ledger {
    engine: Box<dyn Engine>,
    bytes: u64,
    max_bytes: u64,
}

impl Ledger {
    fn release(&mut self, size: u64) {
        self.bytes = self.bytes.saturating_sub(size);
    }
}

/// Called once the batch's transaction ended, with how it ended.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One operation for the writer thread, typed by the closure that made it: it runs inside the
/// batch's transaction (or learns that none could begin) and answers its caller only when told
/// how the transaction ended.
type Call = Box<dyn FnOnce(Result<&mut Ledger, StoreError>) -> Finish + Send>;

/// A call as the writer thread receives it; `writes` when its batch must commit durably.
struct Queued {
    writes: bool,
    call: Call,
}

/// Called with each commit's duration, for the commit histogram.
pub type CommitObserver = Box<dyn Fn(Duration) + Send>;

/// Opens the store engine; called once at start to check it, and again by the writer thread.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Engine>, StoreError> + Send + Sync>;

/// Opens the store in `settings.path`.
pub fn open(settings: &SpoolSettings, metrics: &Arc<Metrics>) -> Result<Arc<dyn Spool>, StoreError> {
    let path = settings.path.clone();
    let open: Opener = Box::new(move || Ok(Box::new(Sqlite::open(&path)?) as Box<dyn Engine>));
    let observer = metrics.clone();
    let on_commit = Box::new(move |took| observer.spool().committed(took));
    Ok(Arc::new(Embedded::new(open, settings.clone(), on_commit)?))
}

/// The running spool: a handle to the writer thread.
pub struct Embedded {
    /// The writer thread's queue. The thread starts on first use: `--daemon` forks after the
    /// spool is made, and neither a thread nor an open database survives a fork.
    calls: OnceLock<mpsc::Sender<Queued>>,
    open: Arc<Opener>,
    on_commit: Mutex<Option<CommitObserver>>,
    /// The ledger's count as of the last commit, for the gauge and the admin.
    bytes: Arc<AtomicU64>,
    settings: SpoolSettings,
    /// Woken when there may be new work for the worker.
    pub wake: Notify,
    /// The message map.
    map: Arc<Log>,
    /// Takes the map's writes to the disk; started on the first, like the writer thread.
    map_syncer: OnceLock<Option<Syncer>>,
    /// When the map last let old entries go, in milliseconds since the Unix epoch.
    pruned_ms: AtomicU64,
}

impl Embedded {
    /// Opens the store once to check it can be used, and reads what it holds.
    pub fn new(open: Opener, settings: SpoolSettings, on_commit: CommitObserver) -> Result<Embedded, StoreError> {
        let mut store = open()?;
        let (stored, last_ts) = (store.bytes()?, store.last_ts()?);
        let map = Log::open(&settings.path.join("messages"))?;
        // Entries an earlier release kept in the store itself are read from there (`find`).
        map.saw(last_ts);
        Ok(Embedded {
            calls: OnceLock::new(),
            open: Arc::new(open),
            on_commit: Mutex::new(Some(on_commit)),
            bytes: Arc::new(AtomicU64::new(stored)),
            settings,
            wake: Notify::new(),
            map: Arc::new(map),
            map_syncer: OnceLock::new(),
            pruned_ms: AtomicU64::new(0),
        })
    }

    fn writer(&self) -> &mpsc::Sender<Queued> {
        self.calls.get_or_init(|| {
            let (calls, queue) = mpsc::channel::<Queued>();
            let open = self.open.clone();
            let on_commit = self.on_commit.lock().unwrap_or_else(|p| p.into_inner()).take();
            let on_commit = on_commit.unwrap_or_else(|| Box::new(|_| ()));
            let published = self.bytes.clone();
            let max_bytes = self.settings.max_bytes;
            let map = self.map.clone();
            let opened = move || -> Result<Ledger, StoreError> {
                let mut engine = open()?;
                let bytes = engine.bytes()?;
                Ok(Ledger { engine, bytes, max_bytes })
            };
            let started = std::thread::Builder::new().name("hookgate-spool".into()).spawn(move || match opened() {
                Ok(mut ledger) => write_loop(&mut ledger, &map, &queue, &on_commit, &published),
                Err(e) => {
                    log::error!(target: "hookgate", "spool: the store cannot be opened: {e}");
                    while let Ok(queued) = queue.recv() {
                        (queued.call)(Err(e.clone()))(Err(e.clone()));
                    }
                }
            });
            if let Err(e) = started {
                log::error!(target: "hookgate", "spool: cannot start the writer thread: {e}");
            }
            calls
        })
    }

    /// Runs `op`, which writes jobs, on the writer thread, in the next batch; its result once
    /// the batch is on the disk.
    async fn call<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_as(true, op).await
    }

    /// Runs `op`, which reads only, in the next batch; its result once the batch ended.
    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_as(false, op).await
    }

    /// Runs `op` on the writer thread, in the next batch; its result once the batch committed,
    /// durably when it `writes`.
    async fn call_as<T, F>(&self, writes: bool, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, reply) = oneshot::channel();
        let call: Call = Box::new(move |ledger| {
            let result = ledger.and_then(op);
            Box::new(move |committed| {
                let _ = answer.send(committed.and(result));
            })
        });
        let stopped = || StoreError("the spool's writer has stopped".into());
        self.writer().send(Queued { writes, call }).map_err(|_| stopped())?;
        reply.await.map_err(|_| stopped())?
    }

    /// The oldest pending job of every hook.
    pub async fn heads(&self) -> Result<Vec<QueuedHead>, StoreError> {
        self.read(|l| l.engine.heads()).await
    }

    /// Records an attempt's end; `head` is the job it was made for.
    pub async fn settle(&self, head: &QueuedHead, settle: Settle) -> Result<(), StoreError> {
        let seq = head.seq;
        self.call(move |l| {
            let freed = l.engine.settle(seq, &settle)?;
            l.release(freed);
            Ok(())
        })
        .await
    }

    /// Stores `job` in place of the head it was, as it goes now that its hook has moved: the
    /// store keeps the posts it sends, so an attempt later counts its parts against them. A
    /// job already acknowledged is never refused for `max_bytes`.
    pub async fn moved(&self, head: &QueuedHead, job: Job) -> Result<(), StoreError> {
        let seq = head.seq;
        self.call(move |l| {
            let size = bytes(&job);
            let held = l.engine.moved(seq, &job, size)?;
            let held = held.ok_or_else(|| StoreError(format!("job {seq} is no longer pending")))?;
            l.release(held);
            l.bytes += size;
            Ok(())
        })
        .await
    }

    /// Payload bytes stored as of the last commit.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Counts the stored bytes again from the store. During a graceful upgrade two processes
    /// append to and deliver from one store, and neither sees the other's changes in its count.
    pub async fn recount(&self) -> Result<(), StoreError> {
        self.read(|l| {
            l.bytes = l.engine.bytes()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Spool for Embedded {
    /// Stores a job; returns once it is durable.
    async fn append(&self, job: Job) -> Result<(), Refused> {
        let stored = self
            .call(move |l| {
                let size = bytes(&job);
                if l.bytes + size > l.max_bytes {
                    return Ok(false);
                }
                l.engine.append(&job, size)?;
                l.bytes += size;
                Ok(true)
            })
            .await?;
        if !stored {
            return Err(Refused::Full);
        }
        self.wake.notify_one();
        Ok(())
    }

    async fn status(&self) -> Result<Vec<(String, HookStatus)>, StoreError> {
        self.read(|l| l.engine.status()).await
    }

    async fn dead(&self, hook: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let hook = hook.to_owned();
        self.read(move |l| l.engine.dead(&hook)).await
    }

    /// Dead letters back to the end of the hook's queue; how many.
    async fn replay(&self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError> {
        let hook = hook.to_owned();
        let replayed = self.call(move |l| l.engine.replay(&hook, seq)).await?;
        self.wake.notify_one();
        Ok(replayed)
    }

    /// Removes a dead letter; false when the hook has none of that id.
    async fn drop_dead(&self, hook: &str, seq: Seq) -> Result<bool, StoreError> {
        let hook = hook.to_owned();
        self.call(move |l| {
            let freed = l.engine.drop_dead(&hook, seq)?;
            l.release(freed.unwrap_or(0));
            Ok(freed.is_some())
        })
        .await
    }

    /// Removes every message stored for `hook`, pending and dead; how many.
    async fn drop_hook(&self, hook: &str) -> Result<u64, StoreError> {
        let hook = hook.to_owned();
        self.call(move |l| {
            let (jobs, freed) = l.engine.drop_hook(&hook)?;
            l.release(freed);
            Ok(jobs)
        })
        .await
    }

    async fn bytes(&self) -> Result<u64, StoreError> {
        Ok(self.bytes())
    }

    fn messages(&self) -> &dyn MessageMap {
        self
    }

    fn worker(self: Arc<Self>, active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> crate::spool::DeliveryService {
        let settings = self.settings.clone();
        crate::spool::DeliveryService(Box::new(worker::StoreWorker::new(self, active, metrics, settings)))
    }
}

/// New entries, changes and deletions go to the map log; an entry it never had may be one an
/// earlier release kept in the store's `messages` table, read from there.
#[async_trait]
impl MessageMap for Embedded {
    fn mint(&self) -> Ts {
        self.map.mint()
    }

    async fn record(&self, ts: Ts, entry: Entry) -> Result<Ts, StoreError> {
        self.prune_when_due();
        self.map.write(ts, Some(&entry), true)?;
        self.map_written();
        Ok(ts)
    }

    async fn keep(&self, ts: Ts, entry: Entry) -> Result<(), StoreError> {
        self.map.write(ts, Some(&entry), false)?;
        self.map_written();
        Ok(())
    }

    async fn find(&self, ts: Ts) -> Result<Option<Entry>, StoreError> {
        if ts < self.oldest_kept(SystemTime::now()) {
            return Ok(None);
        }
        if let Some(found) = self.map.find(ts)? {
            return Ok(found);
        }
        let text = self.read(move |l| l.engine.find(ts)).await?;
        Ok(text.as_deref().and_then(Entry::of_json))
    }

    async fn forget(&self, ts: Ts) -> Result<(), StoreError> {
        self.map.write(ts, None, false)?;
        self.map_written();
        Ok(())
    }
}

impl Embedded {
    /// Has the map's new writes taken to the disk soon.
    fn map_written(&self) {
        let map = self.map.clone();
        let syncer = self.map_syncer.get_or_init(|| {
            let started = Syncer::start(Box::new(move || map.sync()), SYNC_GATHER);
            started.map_err(|e| log::error!(target: "hookgate", "spool: cannot start the map's sync thread: {e}")).ok()
        });
        if let Some(syncer) = syncer {
            syncer.behind();
        }
    }

    /// At most once a minute, lets go of entries past `message_max_age`: the map's old days, and
    /// what an earlier release kept in the store (in the writer's next batch, not waited for).
    fn prune_when_due(&self) {
        let now = SystemTime::now();
        let now_ms = crate::delivery::job::now_ms(now);
        let due = self.pruned_ms.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
            (now_ms >= last + PRUNE_EVERY.as_millis() as u64).then_some(now_ms)
        });
        if due.is_err() {
            return;
        }
        let before = self.oldest_kept(now);
        self.map.prune(before);
        let call: Call = Box::new(move |ledger| {
            if let Err(e) = ledger.and_then(|l| l.engine.prune(before)) {
                log::warn!(target: "hookgate", "spool: cannot let old messages go: {e}");
            }
            Box::new(|_| ())
        });
        let _ = self.writer().send(Queued { writes: true, call });
    }
}

impl Embedded {
    /// The oldest `ts` the map still knows at `now`: `message_max_age` ago.
    fn oldest_kept(&self, now: SystemTime) -> Ts {
        Ts::at(now.checked_sub(self.settings.message_max_age).unwrap_or(SystemTime::UNIX_EPOCH))
    }
}

/// What a job counts towards `max_bytes`: the bodies it will send.
fn bytes(job: &Job) -> u64 {
    job.posts.iter().map(|p| p.len() as u64).sum()
}

/// The writer thread: batches of calls, one transaction each, answered after the commit. The
/// map's writes made so far go to the disk before a batch that writes does.
fn write_loop(
    ledger: &mut Ledger,
    map: &Log,
    queue: &mpsc::Receiver<Queued>,
    on_commit: &CommitObserver,
    published: &AtomicU64,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        let writes = batch.iter().any(|q| q.writes);
        let started = Instant::now();
        let before = ledger.bytes;
        let begun = if writes { map.sync() } else { Ok(()) };
        let (finishes, ended): (Vec<Finish>, _) = match begun.and_then(|()| ledger.engine.begin()) {
            Err(e) => (batch.into_iter().map(|q| (q.call)(Err(e.clone()))).collect(), Err(e)),
            Ok(()) => {
                let finishes = batch.into_iter().map(|q| (q.call)(Ok(&mut *ledger))).collect();
                let committed = ledger.engine.commit();
                if let Err(e) = &committed {
                    ledger.engine.rollback();
                    ledger.bytes = before;
                    log::error!(target: "hookgate", "spool commit failed, nothing of this batch was stored: {e}");
                }
                (finishes, committed)
            }
        };
        published.store(ledger.bytes, Ordering::Release);
        on_commit(started.elapsed());
        for finish in finishes {
            finish(ended.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &std::path::Path, max_bytes: u64) -> Arc<Embedded> {
        let path = dir.to_path_buf();
        let open: Opener = Box::new(move || Ok(Box::new(Sqlite::open(&path)?) as Box<dyn Engine>));
        let settings = SpoolSettings { max_bytes, ..SpoolSettings::new(dir) };
        Arc::new(Embedded::new(open, settings, Box::new(|_| ())).unwrap())
    }

    /// An upgrade from the release that kept the map in the store's `messages` table: its
    /// entries are still found, its `ts` never minted again, and a change or a delete of one goes
    /// to the map log and wins over the old row.
    #[tokio::test]
    async fn entries_an_earlier_release_kept_in_the_store_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let old = Entry {
            v: 1,
            hook: "bot".into(),
            backend: "chat".into(),
            channel: "alerts".into(),
            thread_ts: None,
            parts: 1,
            ids: vec!["p1".into()],
            pending: false,
        };
        let far = Ts::at(SystemTime::now()).0 + 3_600_000_000;
        drop(Sqlite::open(dir.path()).unwrap());
        let db = rusqlite::Connection::open(dir.path().join("spool.sqlite3")).unwrap();
        let rows = [(far - 1, Some(old.to_json())), (far, None)];
        for (ts, entry) in rows {
            db.execute("INSERT INTO messages (ts, entry) VALUES (?1, ?2)", rusqlite::params![ts as i64, entry])
                .unwrap();
        }
        drop(db);
        let spool = spool(dir.path(), 100);
        assert_eq!(spool.find(Ts(far - 1)).await.unwrap(), Some(old.clone()));
        assert_eq!(spool.find(Ts(far)).await.unwrap(), None, "forgotten there");
        assert!(spool.mint() > Ts(far), "never minted again");
        let changed = Entry { ids: vec!["p2".into()], ..old };
        spool.keep(Ts(far - 1), changed.clone()).await.unwrap();
        assert_eq!(spool.find(Ts(far - 1)).await.unwrap(), Some(changed));
        spool.forget(Ts(far - 1)).await.unwrap();
        assert_eq!(spool.find(Ts(far - 1)).await.unwrap(), None);
    }

    /// Appends racing the once-a-second recount: exactly as many are stored as `max_bytes`
    /// has room for, and the count ends exact (docs/spool.md, "Limits").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_bytes_holds_under_concurrent_appends_and_recounts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = spool(dir.path(), 100);
        let mut tasks = Vec::new();
        for n in 0..40 {
            let spool = spool.clone();
            tasks.push(tokio::spawn(async move {
                if n % 4 == 0 {
                    spool.recount().await.unwrap();
                }
                let job = Job::new("alerts", "chat", &format!("r{n}"), 0, vec!["ten bytes!".into()]);
                spool.append(job).await
            }));
        }
        let mut stored = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => stored += 1,
                Err(Refused::Full) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(stored, 10);
        assert_eq!(spool.bytes(), 100);
        spool.recount().await.unwrap();
        assert_eq!(spool.bytes(), 100);
        let status = spool.status().await.unwrap();
        assert_eq!(status[0].1.pending, 10);
    }
}
