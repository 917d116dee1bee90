//! The embedded spool (contract section 11): one directory on this machine, no server. Jobs are
//! stored durably before the client hears `ok`, then delivered in order by `worker.rs`.
//!
//! One writer thread owns the store (`store.rs`, written by `sqlite.rs`). Every
//! operation, from requests and from the worker alike, is sent to it; it takes whatever has
//! queued up, runs it all in one transaction and answers each only after the commit returned, so
//! concurrent requests share one fsync (group commit).

pub mod sqlite;
pub mod store;
pub mod worker;

use crate::active::Active;
use crate::delivery::job::Job;
use crate::observe::metrics::Metrics;
use crate::rules::SpoolSettings;
use crate::spool::attempt::Settle;
use crate::spool::{DeadLetter, HookStatus, Refused, Seq, Spool, StoreError};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use sqlite::Sqlite;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use store::{Engine, Head};
use tokio::sync::{oneshot, Notify};

/// Operations taken into one transaction at most.
const MAX_BATCH: usize = 1024;

enum Op {
    Append(Job, u64),
    Moved(Seq, Job, u64),
    Heads,
    Settle(Seq, Settle),
    Status,
    Dead(String),
    Replay(String, Option<Seq>),
    DropDead(String, Seq),
    DropHook(String),
    Bytes,
}

enum Reply {
    Appended,
    /// The bytes a moved job held before, when it was still pending.
    Moved(Option<u64>),
    Heads(Vec<Head>),
    /// Payload bytes the store let go.
    Settled(u64),
    Status(Vec<(String, HookStatus)>),
    Dead(Vec<DeadLetter>),
    Replayed(usize),
    Dropped(Option<u64>),
    DroppedHook(u64, u64),
    Bytes(u64),
}

type Answer = oneshot::Sender<Result<Reply, StoreError>>;

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
    ops: OnceLock<mpsc::Sender<(Op, Answer)>>,
    open: Arc<Opener>,
    on_commit: Mutex<Option<CommitObserver>>,
    /// Payload bytes stored, pending and dead; reserved before an append is sent.
    bytes: AtomicU64,
    settings: SpoolSettings,
    /// Woken when there may be new work for the worker.
    pub wake: Notify,
}

impl Embedded {
    /// Opens the store once to check it can be used, and reads what it holds.
    pub fn new(open: Opener, settings: SpoolSettings, on_commit: CommitObserver) -> Result<Embedded, StoreError> {
        let stored = open()?.bytes()?;
        Ok(Embedded {
            ops: OnceLock::new(),
            open: Arc::new(open),
            on_commit: Mutex::new(Some(on_commit)),
            bytes: AtomicU64::new(stored),
            settings,
            wake: Notify::new(),
        })
    }

    fn writer(&self) -> &mpsc::Sender<(Op, Answer)> {
        self.ops.get_or_init(|| {
            let (ops, queue) = mpsc::channel::<(Op, Answer)>();
            let open = self.open.clone();
            let on_commit = self.on_commit.lock().unwrap_or_else(|p| p.into_inner()).take();
            let on_commit = on_commit.unwrap_or_else(|| Box::new(|_| ()));
            let started = std::thread::Builder::new().name("hookgate-spool".into()).spawn(move || match open() {
                Ok(mut engine) => write_loop(engine.as_mut(), &queue, &on_commit),
                Err(e) => {
                    log::error!(target: "hookgate", "spool: the store cannot be opened: {e}");
                    while let Ok((_, answer)) = queue.recv() {
                        let _ = answer.send(Err(e.clone()));
                    }
                }
            });
            if let Err(e) = started {
                log::error!(target: "hookgate", "spool: cannot start the writer thread: {e}");
            }
            ops
        })
    }

    async fn call(&self, op: Op) -> Result<Reply, StoreError> {
        let (answer, reply) = oneshot::channel();
        self.writer().send((op, answer)).map_err(|_| StoreError("the spool's writer has stopped".into()))?;
        reply.await.map_err(|_| StoreError("the spool's writer has stopped".into()))?
    }

    /// The oldest pending job of every hook.
    pub async fn heads(&self) -> Result<Vec<Head>, StoreError> {
        match self.call(Op::Heads).await? {
            Reply::Heads(heads) => Ok(heads),
            _ => Err(mismatch()),
        }
    }

    /// Records an attempt's end; `head` is the job it was made for.
    pub async fn settle(&self, head: &Head, settle: Settle) -> Result<(), StoreError> {
        match self.call(Op::Settle(head.seq, settle)).await? {
            Reply::Settled(freed) => {
                self.release(freed);
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }

    /// Stores `job` in place of the head it was, as it goes now that its hook has moved: the
    /// store keeps the posts it sends, so an attempt later counts its parts against them. A
    /// job already acknowledged is never refused for `max_bytes`.
    pub async fn moved(&self, head: &Head, job: Job) -> Result<(), StoreError> {
        let size = bytes(&job);
        match self.call(Op::Moved(head.seq, job, size)).await? {
            Reply::Moved(Some(held)) => {
                self.bytes.fetch_add(size, Ordering::AcqRel);
                self.release(held);
                Ok(())
            }
            Reply::Moved(None) => Err(StoreError(format!("job {} is no longer pending", head.seq))),
            _ => Err(mismatch()),
        }
    }

    /// Payload bytes stored now, as this process counts them.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Counts the stored bytes again from the store. During a graceful upgrade two processes
    /// append to and deliver from one store, and neither sees the other's changes in its count.
    pub async fn recount(&self) -> Result<(), StoreError> {
        match self.call(Op::Bytes).await? {
            Reply::Bytes(stored) => {
                self.bytes.store(stored, Ordering::Release);
                Ok(())
            }
            _ => Err(mismatch()),
        }
    }

    fn release(&self, size: u64) {
        let _ = self.bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(size)));
    }
}

#[async_trait]
impl Spool for Embedded {
    /// Stores a job; returns once it is durable.
    async fn append(&self, job: Job) -> Result<(), Refused> {
        let size = bytes(&job);
        let reserved = self.bytes.fetch_add(size, Ordering::AcqRel);
        if reserved + size > self.settings.max_bytes {
            self.release(size);
            return Err(Refused::Full);
        }
        match self.call(Op::Append(job, size)).await {
            Ok(_) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                self.release(size);
                Err(Refused::Store(e))
            }
        }
    }

    async fn status(&self) -> Result<Vec<(String, HookStatus)>, StoreError> {
        match self.call(Op::Status).await? {
            Reply::Status(status) => Ok(status),
            _ => Err(mismatch()),
        }
    }

    async fn dead(&self, hook: &str) -> Result<Vec<DeadLetter>, StoreError> {
        match self.call(Op::Dead(hook.to_owned())).await? {
            Reply::Dead(letters) => Ok(letters),
            _ => Err(mismatch()),
        }
    }

    /// Dead letters back to the end of the hook's queue; how many.
    async fn replay(&self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError> {
        match self.call(Op::Replay(hook.to_owned(), seq)).await? {
            Reply::Replayed(n) => {
                self.wake.notify_one();
                Ok(n)
            }
            _ => Err(mismatch()),
        }
    }

    /// Removes a dead letter; false when the hook has none of that id.
    async fn drop_dead(&self, hook: &str, seq: Seq) -> Result<bool, StoreError> {
        match self.call(Op::DropDead(hook.to_owned(), seq)).await? {
            Reply::Dropped(freed) => {
                self.release(freed.unwrap_or(0));
                Ok(freed.is_some())
            }
            _ => Err(mismatch()),
        }
    }

    /// Removes every message stored for `hook`, pending and dead; how many.
    async fn drop_hook(&self, hook: &str) -> Result<u64, StoreError> {
        match self.call(Op::DropHook(hook.to_owned())).await? {
            Reply::DroppedHook(jobs, freed) => {
                self.release(freed);
                Ok(jobs)
            }
            _ => Err(mismatch()),
        }
    }

    async fn bytes(&self) -> Result<u64, StoreError> {
        Ok(self.bytes())
    }

    fn worker(self: Arc<Self>, active: Arc<ArcSwap<Active>>, metrics: Arc<Metrics>) -> crate::spool::Worker {
        let settings = self.settings.clone();
        crate::spool::Worker(Box::new(worker::Worker::new(self, active, metrics, settings)))
    }
}

/// What a job counts towards `max_bytes`: the bodies it will send.
fn bytes(job: &Job) -> u64 {
    job.posts.iter().map(|p| p.len() as u64).sum()
}

fn mismatch() -> StoreError {
    StoreError("the spool's writer answered another question".into())
}

/// The writer thread: batches of operations, one transaction each, answered after the commit.
fn write_loop(engine: &mut dyn Engine, queue: &mpsc::Receiver<(Op, Answer)>, on_commit: &CommitObserver) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let results: Vec<Result<Reply, StoreError>> = match engine.begin() {
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
            Ok(()) => {
                let results: Vec<_> = batch.iter().map(|(op, _)| apply(engine, op)).collect();
                match engine.commit() {
                    Ok(()) => results,
                    Err(e) => {
                        engine.rollback();
                        log::error!(target: "hookgate", "spool commit failed, nothing of this batch was stored: {e}");
                        batch.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            }
        };
        on_commit(started.elapsed());
        for ((_, answer), result) in batch.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }
}

fn apply(engine: &mut dyn Engine, op: &Op) -> Result<Reply, StoreError> {
    Ok(match op {
        Op::Append(job, bytes) => {
            engine.append(job, *bytes)?;
            Reply::Appended
        }
        Op::Moved(seq, job, bytes) => Reply::Moved(engine.moved(*seq, job, *bytes)?),
        Op::Heads => Reply::Heads(engine.heads()?),
        Op::Settle(seq, settle) => Reply::Settled(engine.settle(*seq, settle)?),
        Op::Status => Reply::Status(engine.status()?),
        Op::Dead(hook) => Reply::Dead(engine.dead(hook)?),
        Op::Replay(hook, seq) => Reply::Replayed(engine.replay(hook, *seq)?),
        Op::DropDead(hook, seq) => Reply::Dropped(engine.drop_dead(hook, *seq)?),
        Op::DropHook(hook) => {
            let (jobs, bytes) = engine.drop_hook(hook)?;
            Reply::DroppedHook(jobs, bytes)
        }
        Op::Bytes => Reply::Bytes(engine.bytes()?),
    })
}
