//! The embedded store: one SQLite database in the spool directory, in WAL mode. A commit runs
//! with `synchronous = FULL`, so it has reached the disk when it returns and a `kill -9` or a
//! power cut at any moment leaves either the whole batch or none of it.

use super::store::{Engine, QueuedHead};
use crate::delivery::job::Job;
use crate::spool::attempt::Settle;
use crate::spool::{DeadLetter, HookStatus, Seq, StoreError};
use crate::webapi::ts::Ts;
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Sqlite {
    db: Connection,
    /// A file of `BALLAST_BYTES` kept beside the database. When the disk fills, it is removed:
    /// recording deliveries needs room too, and without it a full disk could never be emptied.
    ballast: PathBuf,
    /// Set while the ballast is gone: appends are refused until it can be written again.
    full_since: Option<Instant>,
}

/// Room held back for recording deliveries on a full disk.
const BALLAST_BYTES: usize = 2 << 20;
/// How often a full store tries to take its ballast back.
const BALLAST_RETRY: Duration = Duration::from_secs(1);

/// The store's format, in SQLite's `PRAGMA user_version`: 0 is what releases before versions
/// wrote (the same tables; jobs carry their own version, `delivery/job.rs`), 1 since. A file of
/// a newer format than this build knows is refused at start, never written.
const FORMAT: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    hook TEXT NOT NULL,
    job TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    parts_done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(hook, state, seq);
CREATE TABLE IF NOT EXISTS queues (
    hook TEXT PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    ts INTEGER PRIMARY KEY,
    entry TEXT
);
";

/// Each hook's counts, kept in step with `jobs` in the same transactions, so that finding the
/// heads, the status and the stored bytes never reads the whole backlog: with 100,000 messages
/// waiting, those scans made every commit, and so every spooled request, wait.
const RECOUNT: &str = "
DELETE FROM queues;
INSERT INTO queues (hook, pending, dead, bytes)
    SELECT hook, sum(state = 'pending'), sum(state = 'dead'), sum(bytes) FROM jobs GROUP BY hook;
";

/// The head of a hook's queue, found through the `jobs_queue` index.
const HEAD_OF: &str = "(SELECT seq FROM jobs WHERE hook = q.hook AND state = 'pending' ORDER BY seq LIMIT 1)";

fn fail(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl Sqlite {
    /// Opens (or creates) `dir/spool.sqlite3`. Fails when the directory cannot be made or
    /// written: a spool that cannot keep what it acknowledges must not start.
    pub fn open(dir: &Path) -> Result<Sqlite, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("spool.sqlite3");
        let db = Connection::open(&path).map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        // Another process (the old one, during a graceful upgrade) may be writing: wait for it.
        db.busy_timeout(std::time::Duration::from_secs(5)).map_err(fail)?;
        let mode: String = db.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError(format!("{} cannot use WAL (journal_mode {mode})", path.display())));
        }
        // Checkpoints at SQLite's default (every 1,000 pages); the WAL file is cut back to 4 MB
        // after each, so it gives its room back after a backlog. A 32 MiB page cache keeps the
        // worker's removals at the front of a large backlog from rereading pages: with SQLite's
        // 2 MB, flat-out p99 of spooled requests was 4-17 ms, with 32 MiB about 2 ms.
        db.execute_batch("PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 4194304; PRAGMA cache_size = -32768")
            .map_err(fail)?;
        let format: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(fail)?;
        if format > FORMAT {
            return Err(StoreError(format!(
                "{} is in spool format {format}, written by a newer hookgate; this one reads formats up to \
                 {FORMAT}: run the newer release, or move the directory aside",
                path.display()
            )));
        }
        // Creating the table writes the file, so an unwritable directory fails here, at start.
        db.execute_batch(SCHEMA).map_err(|e| StoreError(format!("cannot write {}: {e}", path.display())))?;
        // Counted again at every start, so the counts cannot drift from what is stored. An older
        // file is marked with this format in the same transaction: it needs no other change.
        db.execute_batch(&format!("BEGIN IMMEDIATE; {RECOUNT} PRAGMA user_version = {FORMAT}; COMMIT;"))
            .map_err(|e| StoreError(format!("cannot write {}: {e}", path.display())))?;
        // SQLite syncs the directory for the journal files it makes, not for the database file
        // itself: a new store's name, and the directory's, must reach the disk before a message
        // is acknowledged, or a power cut could take the whole store (tests/it/power_loss.rs).
        sync_dir(dir)
            .and_then(|()| dir.parent().map_or(Ok(()), sync_dir))
            .map_err(|e| StoreError(format!("cannot sync {}: {e}", dir.display())))?;
        let mut store = Sqlite { db, ballast: dir.join("ballast"), full_since: None };
        if !store.ballast.exists() {
            store.write_ballast().map_err(|e| StoreError(format!("cannot write {}: {e}", store.ballast.display())))?;
        }
        Ok(store)
    }

    fn write_ballast(&mut self) -> std::io::Result<()> {
        let mut file = std::fs::File::create(&self.ballast)?;
        let written = file.write_all(&vec![0u8; BALLAST_BYTES]).and_then(|()| file.sync_all());
        if written.is_err() {
            let _ = std::fs::remove_file(&self.ballast);
        }
        written
    }

    /// A failed write: when the disk is full, the ballast goes, so deliveries can be recorded.
    fn failed(&mut self, e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) && self.full_since.is_none() {
            let _ = std::fs::remove_file(&self.ballast);
            self.full_since = Some(Instant::now());
            log::error!(target: "hookgate", "spool: the disk is full; new messages are refused until there is room");
        }
        fail(e)
    }

    /// Moves the WAL into the database and empties it; on a full disk, the room it held is what
    /// recording deliveries runs on.
    fn checkpoint(&mut self) {
        let _ = self.db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::fs::File::open(dir)?.sync_all()
}

fn job_of(text: &str) -> Result<Job, rusqlite::Error> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl Engine for Sqlite {
    // BEGIN and COMMIT as cached statements: `execute_batch` parsed them anew for every batch.
    fn begin(&mut self) -> Result<(), StoreError> {
        self.db.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])).map(|_| ()).map_err(fail)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let committed =
            self.db.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map(|_| ()).map_err(|e| self.failed(e));
        if self.full_since.is_some() {
            self.checkpoint();
        }
        committed
    }

    fn rollback(&mut self) {
        let _ = self.db.execute_batch("ROLLBACK");
    }

    fn append(&mut self, job: &Job, bytes: u64) -> Result<Seq, StoreError> {
        if let Some(since) = self.full_since {
            if since.elapsed() < BALLAST_RETRY {
                return Err(StoreError("the disk is full".into()));
            }
            if self.write_ballast().is_err() {
                self.full_since = Some(Instant::now());
                return Err(StoreError("the disk is full".into()));
            }
            self.full_since = None;
            log::info!(target: "hookgate", "spool: there is room on the disk again; taking new messages");
        }
        let text = serde_json::to_string(job).map_err(fail)?;
        let inserted = self
            .db
            .prepare_cached("INSERT INTO jobs (hook, job, bytes, received_ms) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![job.hook, text, bytes as i64, job.received_ms as i64]));
        inserted.map_err(|e| self.failed(e))?;
        let seq = self.db.last_insert_rowid();
        self.db
            .prepare_cached(
                "INSERT INTO queues (hook, pending, bytes) VALUES (?1, 1, ?2) \
                 ON CONFLICT (hook) DO UPDATE SET pending = pending + 1, bytes = bytes + excluded.bytes",
            )
            .and_then(|mut s| s.execute(params![job.hook, bytes as i64]))
            .map_err(|e| self.failed(e))?;
        Ok(seq)
    }

    fn moved(&mut self, seq: Seq, job: &Job, bytes: u64) -> Result<Option<u64>, StoreError> {
        let text = serde_json::to_string(job).map_err(fail)?;
        let before: Option<(String, i64)> = self
            .db
            .query_row("SELECT hook, bytes FROM jobs WHERE seq = ?1 AND state = 'pending'", [seq], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(fail)?;
        let Some((hook, held)) = before else { return Ok(None) };
        self.db
            .execute(
                "UPDATE jobs SET job = ?2, bytes = ?3, parts_done = 0 WHERE seq = ?1",
                params![seq, text, bytes as i64],
            )
            .and_then(|_| {
                self.db.execute(
                    "UPDATE queues SET bytes = bytes - ?2 + ?3 WHERE hook = ?1",
                    params![hook, held, bytes as i64],
                )
            })
            .map_err(|e| self.failed(e))?;
        Ok(Some(held as u64))
    }

    fn heads(&mut self) -> Result<Vec<QueuedHead>, StoreError> {
        let sql = format!(
            "SELECT j.seq, j.job, j.parts_done, j.attempts, j.next_ms FROM queues q \
             JOIN jobs j ON j.seq = {HEAD_OF} WHERE q.pending > 0"
        );
        let mut statement = self.db.prepare_cached(&sql).map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok(QueuedHead {
                    seq: r.get(0)?,
                    job: job_of(&r.get::<_, String>(1)?)?,
                    parts_done: r.get::<_, i64>(2)? as usize,
                    attempts: r.get::<_, i64>(3)? as u32,
                    next_ms: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    fn settle(&mut self, seq: Seq, settle: &Settle) -> Result<u64, StoreError> {
        // Only a pending job is settled; its hook's counts move with it.
        let moved: Option<(String, i64)> = match settle {
            Settle::Delivered => self
                .db
                .query_row("DELETE FROM jobs WHERE seq = ?1 AND state = 'pending' RETURNING hook, bytes", [seq], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional(),
            Settle::Retry { parts_done, attempts, next_ms, error } => self
                .db
                .execute(
                    "UPDATE jobs SET parts_done = ?2, attempts = ?3, next_ms = ?4, last_error = ?5 WHERE seq = ?1",
                    params![seq, *parts_done as i64, attempts, *next_ms as i64, error],
                )
                .map(|_| None),
            Settle::Dead { parts_done, attempts, reason } => self
                .db
                .query_row(
                    "UPDATE jobs SET state = 'dead', parts_done = ?2, attempts = ?3, last_error = ?4 \
                     WHERE seq = ?1 AND state = 'pending' RETURNING hook, 0",
                    params![seq, *parts_done as i64, attempts, reason],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional(),
        }
        .map_err(|e| self.failed(e))?;
        // A dead letter keeps its bytes: its row says 0 freed.
        let Some((hook, freed)) = moved else { return Ok(0) };
        let dead = matches!(settle, Settle::Dead { .. }) as i64;
        self.db
            .execute(
                "UPDATE queues SET pending = pending - 1, dead = dead + ?2, bytes = bytes - ?3 WHERE hook = ?1",
                params![hook, dead, freed],
            )
            .map(|_| freed as u64)
            .map_err(|e| self.failed(e))
    }

    fn status(&mut self) -> Result<Vec<(String, HookStatus)>, StoreError> {
        let sql = format!(
            "SELECT q.hook, q.pending, q.dead, h.received_ms, h.next_ms, h.last_error FROM queues q \
             LEFT JOIN jobs h ON h.seq = {HEAD_OF} WHERE q.pending > 0 OR q.dead > 0 ORDER BY q.hook"
        );
        let mut statement = self.db.prepare_cached(&sql).map_err(fail)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    HookStatus {
                        pending: r.get::<_, i64>(1)? as u64,
                        dead: r.get::<_, i64>(2)? as u64,
                        oldest_pending_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        next_attempt_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                        last_error: r.get(5)?,
                    },
                ))
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    fn dead(&mut self, hook: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let mut statement = self
            .db
            .prepare_cached(
                "SELECT seq, job, attempts, last_error FROM jobs WHERE hook = ?1 AND state = 'dead' ORDER BY seq",
            )
            .map_err(fail)?;
        let rows = statement
            .query_map([hook], |r| {
                Ok(DeadLetter {
                    seq: r.get(0)?,
                    job: job_of(&r.get::<_, String>(1)?)?,
                    attempts: r.get::<_, i64>(2)? as u32,
                    reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    fn replay(&mut self, hook: &str, seq: Option<Seq>) -> Result<usize, StoreError> {
        let chosen: Vec<Seq> = {
            let mut statement = self
                .db
                .prepare_cached(
                    "SELECT seq FROM jobs WHERE hook = ?1 AND state = 'dead' AND (?2 IS NULL OR seq = ?2) ORDER BY seq",
                )
                .map_err(fail)?;
            let rows = statement.query_map(params![hook, seq], |r| r.get(0)).map_err(fail)?;
            rows.collect::<Result<_, _>>().map_err(fail)?
        };
        // A replayed job goes behind everything queued: it takes a new, higher sequence number.
        for old in &chosen {
            self.db
                .execute(
                    "UPDATE jobs SET seq = (SELECT max(seq) + 1 FROM jobs), state = 'pending', attempts = 0, \
                     next_ms = 0, last_error = NULL WHERE seq = ?1",
                    [old],
                )
                .map_err(|e| self.failed(e))?;
        }
        let n = chosen.len() as i64;
        self.db
            .execute("UPDATE queues SET pending = pending + ?2, dead = dead - ?2 WHERE hook = ?1", params![hook, n])
            .map_err(|e| self.failed(e))?;
        Ok(chosen.len())
    }

    fn drop_dead(&mut self, hook: &str, seq: Seq) -> Result<Option<u64>, StoreError> {
        let removed: Option<i64> = self
            .db
            .query_row(
                "DELETE FROM jobs WHERE hook = ?1 AND seq = ?2 AND state = 'dead' RETURNING bytes",
                params![hook, seq],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.failed(e))?;
        let Some(bytes) = removed else { return Ok(None) };
        self.db
            .execute("UPDATE queues SET dead = dead - 1, bytes = bytes - ?2 WHERE hook = ?1", params![hook, bytes])
            .map_err(|e| self.failed(e))?;
        Ok(Some(bytes as u64))
    }

    fn drop_hook(&mut self, hook: &str) -> Result<(u64, u64), StoreError> {
        let removed = self
            .db
            .query_row("DELETE FROM queues WHERE hook = ?1 RETURNING pending + dead, bytes", [hook], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .map_err(|e| self.failed(e))?;
        self.db.execute("DELETE FROM jobs WHERE hook = ?1", [hook]).map_err(|e| self.failed(e))?;
        Ok(removed.unwrap_or((0, 0)))
    }

    fn bytes(&mut self) -> Result<u64, StoreError> {
        self.db
            .query_row("SELECT coalesce(sum(bytes), 0) FROM queues", [], |r| r.get::<_, i64>(0))
            .map(|b| b as u64)
            .map_err(fail)
    }

    fn last_ts(&mut self) -> Result<Ts, StoreError> {
        let last: Option<i64> = self
            .db
            .prepare_cached("SELECT max(ts) FROM messages")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(fail)?;
        Ok(Ts(last.unwrap_or(0) as u64))
    }

    fn prune(&mut self, before: Ts) -> Result<(), StoreError> {
        self.db
            .prepare_cached("DELETE FROM messages WHERE ts < ?1")
            .and_then(|mut s| s.execute([before.0 as i64]))
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    fn find(&mut self, ts: Ts) -> Result<Option<String>, StoreError> {
        self.db
            .prepare_cached("SELECT entry FROM messages WHERE ts = ?1")
            .and_then(|mut s| s.query_row([ts.0 as i64], |r| r.get::<_, Option<String>>(0)).optional())
            .map(Option::flatten)
            .map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(hook: &str, n: u32) -> Job {
        Job::new(hook, "chat", &format!("r{n}"), 1_000 + n as u64, vec![format!("{{\"text\":\"{n}\"}}")])
    }

    fn committed<T>(db: &mut Sqlite, f: impl FnOnce(&mut Sqlite) -> T) -> T {
        db.begin().unwrap();
        let out = f(db);
        db.commit().unwrap();
        out
    }

    #[test]
    fn queues_settle_replay_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Sqlite::open(dir.path()).unwrap();
        let seqs: Vec<Seq> = committed(&mut db, |db| {
            [job("a", 1), job("b", 2), job("a", 3)].iter().map(|j| db.append(j, 10).unwrap()).collect()
        });
        let heads = committed(&mut db, |db| db.heads().unwrap());
        assert_eq!(heads.iter().map(|h| h.job.request_id.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);

        let retry = Settle::Retry { parts_done: 0, attempts: 1, next_ms: 5_000, error: "backend answered 500".into() };
        committed(&mut db, |db| db.settle(seqs[0], &retry).unwrap());
        let dead = Settle::Dead { parts_done: 0, attempts: 1, reason: "backend does not know the channel".into() };
        committed(&mut db, |db| db.settle(seqs[1], &dead).unwrap());
        let status = committed(&mut db, |db| db.status().unwrap());
        assert_eq!(
            status,
            [
                (
                    "a".to_owned(),
                    HookStatus {
                        pending: 2,
                        dead: 0,
                        oldest_pending_ms: Some(1_001),
                        next_attempt_ms: Some(5_000),
                        last_error: Some("backend answered 500".into())
                    }
                ),
                ("b".to_owned(), HookStatus { pending: 0, dead: 1, ..HookStatus::default() }),
            ]
        );
        drop(db);

        // Reopened: what was committed is there.
        let mut db = Sqlite::open(dir.path()).unwrap();
        assert_eq!(committed(&mut db, |db| db.bytes().unwrap()), 30);
        let letters = committed(&mut db, |db| db.dead("b").unwrap());
        assert_eq!((letters.len(), letters[0].job.request_id.as_str()), (1, "r2"));
        committed(&mut db, |db| db.settle(seqs[0], &Settle::Delivered).unwrap());
        assert_eq!(committed(&mut db, |db| db.replay("b", None).unwrap()), 1);
        assert_eq!(committed(&mut db, |db| db.drop_dead("b", seqs[1]).unwrap()), None, "replayed, no longer dead");
        let heads = committed(&mut db, |db| db.heads().unwrap());
        let order: Vec<(&str, &str)> = heads.iter().map(|h| (h.job.hook.as_str(), h.job.request_id.as_str())).collect();
        assert_eq!(order, [("a", "r3"), ("b", "r2")]);
        assert!(heads[1].seq > seqs[2], "a replayed job goes to the end");

        // The counts kept step by step are what counting from scratch gives.
        committed(&mut db, |db| db.settle(heads[0].seq, &Settle::Delivered).unwrap());
        let dead = Settle::Dead { parts_done: 0, attempts: 2, reason: "gone".into() };
        committed(&mut db, |db| db.settle(heads[1].seq, &dead).unwrap());
        let counts = |db: &mut Sqlite| -> Vec<(String, i64, i64, i64)> {
            let mut s = db.db.prepare("SELECT hook, pending, dead, bytes FROM queues ORDER BY hook").unwrap();
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
        };
        let kept = counts(&mut db);
        assert_eq!(kept, [("a".to_owned(), 0, 0, 0), ("b".to_owned(), 0, 1, 10)]);
        db.db.execute_batch(RECOUNT).unwrap();
        let recounted: Vec<_> = counts(&mut db).into_iter().filter(|(_, p, d, _)| p + d > 0).collect();
        assert_eq!(recounted, kept.into_iter().filter(|(_, p, d, _)| p + d > 0).collect::<Vec<_>>());
    }

    #[test]
    fn a_store_of_a_newer_format_is_refused_and_an_older_one_marked() {
        let dir = tempfile::tempdir().unwrap();
        drop(Sqlite::open(dir.path()).unwrap());
        let file = dir.path().join("spool.sqlite3");
        let version = |v: Option<i64>| {
            let db = Connection::open(&file).unwrap();
            if let Some(v) = v {
                db.execute_batch(&format!("PRAGMA user_version = {v}")).unwrap();
            }
            db.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap()
        };
        assert_eq!(version(None), FORMAT, "a new store is written in this format");

        version(Some(0));
        drop(Sqlite::open(dir.path()).unwrap());
        assert_eq!(version(None), FORMAT, "a store of the release before versions is marked");

        version(Some(FORMAT + 1));
        let refused = Sqlite::open(dir.path()).err().expect("a newer format is refused");
        assert!(refused.0.contains(&file.display().to_string()), "names the file: {refused}");
        assert!(refused.0.contains(&format!("format {}", FORMAT + 1)), "names the version: {refused}");
        assert_eq!(version(None), FORMAT + 1, "and leaves it as it was");
    }

    #[test]
    fn an_unwritable_directory_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, "x").unwrap();
        let error = Sqlite::open(&file.join("spool")).err().expect("refused");
        assert!(error.0.contains("cannot create"), "{error}");
    }
}
