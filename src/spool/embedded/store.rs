//! What the embedded spool asks of its store: append accepted jobs, hand out each hook's oldest
//! pending job, record what became of an attempt, and answer the admin's questions. All calls
//! come from the spool's one writer thread, between `begin` and `commit`, so an engine needs no
//! locking of its own and every call in a batch shares one durable commit.

use crate::delivery::job::Job;
use crate::spool::attempt::Settle;
use crate::spool::{DeadLetter, HookStatus, Seq, StoreError};
use crate::webapi::ts::Ts;

/// A pending job at the head of its hook's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedHead {
    pub seq: Seq,
    pub job: Job,
    /// Posts of the job already accepted by the backend, from an earlier attempt.
    pub parts_done: usize,
    pub attempts: u32,
    /// Not to be tried before this, in milliseconds since the Unix epoch.
    pub next_ms: u64,
}

pub trait Engine: Send {
    /// Starts a transaction.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Ends the transaction, on the disk when it returns: only then is an append acknowledged.
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self);
    /// Stores a job as pending at the end of its hook's queue; `bytes` is what counts towards
    /// `max_bytes`.
    fn append(&mut self, job: &Job, bytes: u64) -> Result<Seq, StoreError>;
    /// Replaces pending job `seq` by `job`, as it goes now that its hook points at another
    /// backend; its posts start again from the first. Returns how many bytes it held before, or
    /// `None` when no pending job has that id.
    fn moved(&mut self, seq: Seq, job: &Job, bytes: u64) -> Result<Option<u64>, StoreError>;
    /// The oldest pending job of every hook.
    fn heads(&mut self) -> Result<Vec<QueuedHead>, StoreError>;
    /// Records an attempt's end for a pending job; returns the payload bytes the store let go (a
    /// delivered job's; 0 otherwise, and when no pending job has that id).
    fn settle(&mut self, seq: Seq, settle: &Settle) -> Result<u64, StoreError>;
    fn status(&mut self) -> Result<Vec<(String, HookStatus)>, StoreError>;
    fn dead(&mut self, hook: &str) -> Result<Vec<DeadLetter>, StoreError>;
    /// Dead letters of `hook` (one, or all when `seq` is `None`) back to the end of its queue,
    /// attempts reset. Returns how many.
    fn replay(&mut self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError>;
    /// Removes one dead letter; returns its payload bytes, `None` when there is none of that id.
    fn drop_dead(&mut self, hook: &str, seq: Seq) -> Result<Option<u64>, StoreError>;
    /// Removes everything stored for `hook`, pending and dead; returns how many jobs and their
    /// payload bytes.
    fn drop_hook(&mut self, hook: &str) -> Result<(u64, u64), StoreError>;
    /// Payload bytes of everything stored, pending and dead.
    fn bytes(&mut self) -> Result<u64, StoreError>;
    /// The message map as an earlier release kept it here (`spool/messages.rs`; new entries go
    /// to `map_log`): the newest `ts` it holds.
    fn last_ts(&mut self) -> Result<Ts, StoreError>;
    /// Drops every entry, and the memory of every `ts`, before `before`.
    fn prune(&mut self, before: Ts) -> Result<(), StoreError>;
    /// The entry of `ts`; `None` when it has none (deleted, forgotten or never kept here).
    fn find(&mut self, ts: Ts) -> Result<Option<String>, StoreError>;
}
