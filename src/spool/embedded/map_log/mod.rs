//! The Web API's message map on this machine (docs/webapi.md, "The message map"): each write is
//! appended to a file mapped into memory, so recording a message is a copy, not a system call or
//! a transaction, and an index in memory finds it again. It survives a `kill -9` at once (the
//! bytes are in the kernel's page cache); `Log::sync` takes them to the disk, called by a sync
//! thread soon after and by the spool's writer before any durable commit, so a job is never on
//! the disk without the entries written before it.
//!
//! Every process writes segments of its own (`<day>-<process>-<k>.log`, one day of `ts` each, so
//! old days go whole) and reads the others' (a graceful upgrade runs two). They share one file
//! of counters: the last `ts` minted, so a `ts` is unique across them, and how many changes
//! (updates, deletes) were written, so a process knows when to read the others' new writes.

mod index;
mod line;
mod mapped;

use crate::spool::messages::{mint_after, Entry};
use crate::spool::{lock, StoreError};
use crate::webapi::ts::Ts;
use index::{Index, Loc, DAY_US};
use mapped::Mapped;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The counters file's format, in its first word.
const COUNTERS_FORMAT: u64 = 1;
const COUNTERS_BYTES: usize = 4096;
/// The counters' words.
const LAST_TS: usize = 1;
const CHANGES: usize = 2;
/// A process's first segment of a day; each next one is twice as large, up to the largest.
const FIRST_SEGMENT: usize = 64 * 1024;
const LARGEST_SEGMENT: usize = 16 * 1024 * 1024;

enum Held {
    /// Written by this process: `used` bytes so far. The mapping is let go once the segment is
    /// no longer written and is on the disk, so the pages of a day's traffic do not stay in the
    /// process's memory.
    Mine { map: Option<Arc<Mapped>>, used: usize, unsynced: bool },
    /// Another process's (or an earlier run's), read up to `scanned`.
    Theirs { scanned: u64 },
    /// Pruned, or in a format this build does not read.
    Gone,
}

struct Segment {
    name: String,
    day: u64,
    /// For reading, whoever writes it.
    file: File,
    held: Held,
}

#[derive(Default)]
struct State {
    index: Index,
    segments: Vec<Segment>,
    /// The segment this process writes each day's `ts` into.
    writing: HashMap<u64, usize>,
    /// This process's part of segment names; chosen at its first write (after `--daemon` forks).
    process: Option<String>,
    /// The changes counter as of the last read of the others' writes.
    changes_seen: u64,
    /// A segment was made since the directory was last synced.
    new_names: bool,
}

pub struct Log {
    dir: PathBuf,
    counters: Mapped,
    state: Mutex<State>,
    /// Held through a whole `sync`, so a second caller returns only once the first's writes are
    /// on the disk too.
    syncing: Mutex<()>,
}

fn failed(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("cannot {what} {}: {e}", path.display()))
}

impl Log {
    /// Opens the map in `dir`, reading every segment there.
    pub fn open(dir: &Path) -> Result<Log, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
        let path = dir.join("counters");
        let counters = Mapped::open(&path, COUNTERS_BYTES, false).map_err(|e| failed("open", &path, e))?;
        let format = match counters.word(0).compare_exchange(0, COUNTERS_FORMAT, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => COUNTERS_FORMAT,
            Err(format) => format,
        };
        if format > COUNTERS_FORMAT {
            return Err(StoreError(format!(
                "{} is in format {format}, written by a newer hookgate; this one reads formats up to {COUNTERS_FORMAT}",
                path.display()
            )));
        }
        let log = Log { dir: dir.to_owned(), counters, state: Mutex::new(State::default()), syncing: Mutex::new(()) };
        let mut state = lock(&log.state);
        state.changes_seen = log.counters.word(CHANGES).load(Ordering::Acquire);
        log.read_others(&mut state);
        let newest = state.index.newest().unwrap_or(0);
        drop(state);
        log.saw(Ts(newest));
        Ok(log)
    }

    /// A `ts` for a new message, after every one minted by any process sharing the map.
    pub fn mint(&self) -> Ts {
        mint_after(self.counters.word(LAST_TS))
    }

    /// `ts` is taken (by an older store), so it is never minted.
    pub fn saw(&self, ts: Ts) {
        self.counters.word(LAST_TS).fetch_max(ts.0, Ordering::AcqRel);
    }

    /// Writes `entry` as the message `ts` (`None`: forgotten); `first` for a new message.
    pub fn write(&self, ts: Ts, entry: Option<&Entry>, first: bool) -> Result<(), StoreError> {
        let n = if first { 0 } else { self.counters.word(CHANGES).fetch_add(1, Ordering::AcqRel) + 1 };
        let mut bytes = Vec::with_capacity(256);
        line::write(&mut bytes, ts.0, n, entry.map(|entry| |out: &mut Vec<u8>| entry.write_json(out)));
        if bytes.len() > line::MAX {
            return Err(StoreError(format!("the map's entry of {ts} is {} bytes, more than it holds", bytes.len())));
        }
        let mut state = lock(&self.state);
        if n == state.changes_seen + 1 {
            // No other process changed anything since this one last looked.
            state.changes_seen = n;
        }
        let segment = self.room(&mut state, ts.0 / DAY_US, bytes.len())?;
        let Held::Mine { map: Some(map), used, unsynced } = &mut state.segments[segment].held else {
            unreachable!("`room` gives a mapped segment of this process")
        };
        let at = *used;
        // SAFETY: `at..at + len` was free and is this write's alone: handed out under the lock.
        unsafe { map.write(at, &bytes) };
        *used += bytes.len();
        *unsynced = true;
        // The write's first byte is its newline, not part of what reads back.
        let len = if entry.is_some() { bytes.len() as u32 - 1 } else { 0 };
        state.index.set(ts.0, n, Loc { segment: segment as u32, at: at as u32 + 1, len });
        Ok(())
    }

    /// The segment of this process for `day` with room for `len` bytes, made when there is none.
    fn room(&self, state: &mut State, day: u64, len: usize) -> Result<usize, StoreError> {
        let mut size = FIRST_SEGMENT;
        if let Some(&current) = state.writing.get(&day) {
            if let Held::Mine { map: Some(map), used, .. } = &state.segments[current].held {
                if used + len <= map.len() {
                    return Ok(current);
                }
                size = (map.len() * 2).min(LARGEST_SEGMENT);
            }
        }
        let process = state.process.get_or_insert_with(process_name).clone();
        let k = state.segments.iter().filter(|s| s.day == day && matches!(s.held, Held::Mine { .. })).count();
        let name = format!("{day}-{process}-{k}.log");
        let path = self.dir.join(&name);
        // A segment not made (a full disk) leaves no file behind to take its name.
        let unmade = |e: std::io::Error| {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                let _ = std::fs::remove_file(&path);
            }
            failed("make", &path, e)
        };
        let map = Mapped::open(&path, size.max(line::HEADER.len() + len), true).map_err(unmade)?;
        let file = File::open(&path).map_err(unmade)?;
        // SAFETY: a new file; no one reads it before the index points into it.
        unsafe { map.write(0, line::HEADER) };
        let held = Held::Mine { map: Some(Arc::new(map)), used: line::HEADER.len(), unsynced: true };
        state.segments.push(Segment { name, day, file, held });
        // Only the newest day and the segment just made stay mapped; an earlier day's, written
        // again, gets a new segment.
        state.writing.retain(|written, _| *written > day);
        state.writing.insert(day, state.segments.len() - 1);
        state.new_names = true;
        Ok(state.segments.len() - 1)
    }

    /// The entry of `ts`: `None` when the map has never had it, `Some(None)` when it was
    /// forgotten.
    pub fn find(&self, ts: Ts) -> Result<Option<Option<Entry>>, StoreError> {
        let mut state = lock(&self.state);
        let changes = self.counters.word(CHANGES).load(Ordering::Acquire);
        let mut fresh = false;
        if changes != state.changes_seen {
            state.changes_seen = changes;
            self.read_others(&mut state);
            fresh = true;
        }
        let mut found = state.index.get(ts.0);
        if found.is_none() && !fresh {
            // Perhaps another process's new message.
            self.read_others(&mut state);
            found = state.index.get(ts.0);
        }
        let Some(loc) = found else { return Ok(None) };
        if loc.len == 0 {
            return Ok(Some(None));
        }
        let segment = &state.segments[loc.segment as usize];
        if matches!(segment.held, Held::Gone) {
            return Ok(None);
        }
        let mut bytes = vec![0; loc.len as usize];
        let read = segment.file.read_exact_at(&mut bytes, u64::from(loc.at));
        read.map_err(|e| failed("read", &self.dir.join(&segment.name), e))?;
        let entry = line::read(&bytes).and_then(|line| line.entry.and_then(Entry::of_json));
        Ok(Some(entry))
    }

    /// Takes every write made so far to the disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        let _syncing = lock(&self.syncing);
        let (unsynced, new_names) = {
            let mut state = lock(&self.state);
            let state = &mut *state;
            let mut unsynced = Vec::new();
            for (i, segment) in state.segments.iter_mut().enumerate() {
                let Held::Mine { map: mapped @ Some(_), unsynced: u, .. } = &mut segment.held else { continue };
                if *u {
                    *u = false;
                    unsynced.push((i, mapped.clone()));
                }
                if !state.writing.values().any(|w| *w == i) {
                    *mapped = None;
                }
            }
            (unsynced, std::mem::take(&mut state.new_names))
        };
        let mut first_error = None;
        if new_names {
            if let Err(e) = File::open(&self.dir).and_then(|dir| dir.sync_all()) {
                lock(&self.state).new_names = true;
                first_error = Some(failed("sync", &self.dir, e));
            }
        }
        for (i, map) in unsynced {
            let Some(map) = map else { continue };
            if let Err(e) = map.sync() {
                // Tried again at the next sync, so kept mapped until then.
                let mut state = lock(&self.state);
                if let Held::Mine { map: mapped, unsynced, .. } = &mut state.segments[i].held {
                    *unsynced = true;
                    *mapped = Some(map);
                }
                first_error.get_or_insert_with(|| failed("sync", &self.dir.join(&state.segments[i].name), e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Lets go of every day before the one of `before`: their segments are deleted, whoever
    /// wrote them.
    pub fn prune(&self, before: Ts) {
        let first_day = before.0 / DAY_US;
        let mut state = lock(&self.state);
        self.read_others(&mut state);
        for segment in state.segments.iter_mut().filter(|s| s.day < first_day && !matches!(s.held, Held::Gone)) {
            let path = self.dir.join(&segment.name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!(target: "hookgate", "spool: cannot delete {}: {e}", path.display()),
            }
            segment.held = Held::Gone;
        }
        state.writing.retain(|day, _| *day >= first_day);
        state.index.prune(first_day);
    }

    /// Reads what other processes wrote since the last time: new segments whole, known ones
    /// from a little before where the last read ended, since a write there may have been made
    /// after one that follows it.
    fn read_others(&self, state: &mut State) {
        let names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
            Err(e) => {
                log::warn!(target: "hookgate", "spool: cannot list {}: {e}", self.dir.display());
                return;
            }
        };
        for name in names {
            let Some(day) = name.strip_suffix(".log").and_then(|n| n.split('-').next()?.parse::<u64>().ok()) else {
                continue;
            };
            if !state.segments.iter().any(|s| s.name == name) {
                let path = self.dir.join(&name);
                match File::open(&path) {
                    Ok(file) => state.segments.push(Segment { name, day, file, held: Held::Theirs { scanned: 0 } }),
                    Err(e) => log::warn!(target: "hookgate", "spool: cannot open {}: {e}", path.display()),
                }
            }
        }
        let mut writes = Vec::new();
        for i in 0..state.segments.len() {
            self.read_segment(state, i, &mut writes);
        }
        state.index.set_all(writes);
    }

    /// Adds the writes read from segment `i` to `writes`, as (`ts`, `n`, where).
    fn read_segment(&self, state: &mut State, i: usize, writes: &mut Vec<(u64, u64, Loc)>) {
        let segment = &state.segments[i];
        let Held::Theirs { scanned } = segment.held else { return };
        let from = scanned.saturating_sub(line::MAX as u64);
        let path = self.dir.join(&segment.name);
        let bytes = match read_written(&segment.file, from) {
            Ok(bytes) => bytes,
            Err(e) => {
                log::warn!(target: "hookgate", "spool: cannot read {}: {e}", path.display());
                return;
            }
        };
        let mut body = &bytes[..];
        if from == 0 {
            if bytes.starts_with(line::HEADER) {
                body = &bytes[line::HEADER.len()..];
            } else if bytes.is_empty() {
                return; // Just made: no header yet.
            } else {
                log::warn!(target: "hookgate", "spool: {} is not a message map segment this build reads; left alone", path.display());
                state.segments[i].held = Held::Gone;
                return;
            }
        }
        let base = from + (bytes.len() - body.len()) as u64;
        let mut end = scanned;
        for (at, piece) in line::pieces(body) {
            if let Some(line) = line::read(piece) {
                let at = base + at as u64;
                let len = if line.entry.is_some() { piece.len() as u32 } else { 0 };
                writes.push((line.ts, line.n, Loc { segment: i as u32, at: at as u32, len }));
                end = end.max(at + piece.len() as u64);
            }
        }
        state.segments[i].held = Held::Theirs { scanned: end };
    }
}

/// This process's part of its segments' names, unique among the logs it opens.
fn process_name() -> String {
    static OPENED: AtomicU64 = AtomicU64::new(0);
    let now = Ts::at(std::time::SystemTime::now()).0;
    format!("{}.{now}.{}", std::process::id(), OPENED.fetch_add(1, Ordering::Relaxed))
}

/// A segment's bytes from `from`, up to its end or the first stretch as long as the longest
/// write that is still zeros (the room not used yet).
fn read_written(file: &File, from: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; line::MAX];
    loop {
        let read = file.read_at(&mut chunk, from + bytes.len() as u64)?;
        if read == 0 || chunk[..read].iter().all(|b| *b == 0) {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(channel: &str, ids: &[&str]) -> Entry {
        Entry {
            v: crate::spool::messages::FORMAT,
            hook: "bot".into(),
            backend: "chat".into(),
            channel: channel.into(),
            thread_ts: None,
            parts: ids.len().max(1),
            ids: ids.iter().map(|id| id.to_string()).collect(),
            pending: false,
        }
    }

    fn segments(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_are_found_and_read_again_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let (a, b, c) = (log.mint(), log.mint(), log.mint());
        assert!(a < b && b < c);
        log.write(a, Some(&entry("alerts", &["p1"])), true).unwrap();
        log.write(b, Some(&entry("alerts", &["p2"])), true).unwrap();
        log.write(b, Some(&entry("alerts", &["p2", "p3"])), false).unwrap();
        log.write(c, Some(&entry("builds", &[])), true).unwrap();
        log.write(c, None, false).unwrap();
        let read = |log: &Log| [a, b, c, Ts(1)].map(|ts| log.find(ts).unwrap());
        let expected =
            [Some(Some(entry("alerts", &["p1"]))), Some(Some(entry("alerts", &["p2", "p3"]))), Some(None), None];
        assert_eq!(read(&log), expected);
        log.sync().unwrap();
        drop(log);
        let again = Log::open(dir.path()).unwrap();
        assert_eq!(read(&again), expected, "after a restart");
        assert!(again.mint() > c, "a new run never mints a `ts` again");
    }

    /// Two processes sharing the map, as during a graceful upgrade: neither mints a `ts` the
    /// other did, and each finds, and sees the changes of, the other's messages.
    #[test]
    fn two_processes_share_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (Log::open(dir.path()).unwrap(), Log::open(dir.path()).unwrap());
        let minted: std::collections::HashSet<Ts> = (0..200).flat_map(|_| [old.mint(), new.mint()]).collect();
        assert_eq!(minted.len(), 400);
        let ts = old.mint();
        old.write(ts, Some(&entry("alerts", &["p1"])), true).unwrap();
        assert_eq!(new.find(ts).unwrap(), Some(Some(entry("alerts", &["p1"]))), "the other's new message");
        new.write(ts, Some(&entry("alerts", &["q1"])), false).unwrap();
        assert_eq!(old.find(ts).unwrap(), Some(Some(entry("alerts", &["q1"]))), "the other's change");
        old.write(ts, Some(&entry("alerts", &["r1"])), false).unwrap();
        new.write(ts, None, false).unwrap();
        assert_eq!(old.find(ts).unwrap(), Some(None), "the other's delete, after its own change");
        assert_eq!(new.find(ts).unwrap(), Some(None));
        let third = Log::open(dir.path()).unwrap();
        assert_eq!(third.find(ts).unwrap(), Some(None), "the newest write wins, whichever segment it is in");
    }

    /// What a crash can leave in a segment: a write cut short, or reserved and never made. The
    /// writes around it are read, and the next run writes segments of its own.
    #[test]
    fn a_torn_segment_loses_only_its_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let ts: Vec<Ts> = (0..3).map(|_| log.mint()).collect();
        for (i, ts) in ts.iter().enumerate() {
            log.write(*ts, Some(&entry(&format!("c{i}"), &[])), true).unwrap();
        }
        drop(log);
        let name = segments(dir.path()).remove(0);
        let path = dir.path().join(&name);
        let mut bytes = std::fs::read(&path).unwrap();
        let second =
            bytes.windows(2).enumerate().filter(|(_, w)| w[0] == b'\n' && w[1].is_ascii_digit()).nth(1).unwrap().0;
        bytes[second + 12] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let again = Log::open(dir.path()).unwrap();
        assert_eq!(again.find(ts[0]).unwrap(), Some(Some(entry("c0", &[]))));
        assert_eq!(again.find(ts[1]).unwrap(), None);
        assert_eq!(again.find(ts[2]).unwrap(), Some(Some(entry("c2", &[]))));
        again.write(again.mint(), Some(&entry("c3", &[])), true).unwrap();
        assert_eq!(segments(dir.path()).len(), 2, "the next run writes a segment of its own");
    }

    #[test]
    fn old_days_go_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let (day, next) = (Ts(20_000 * DAY_US + 5), Ts(20_001 * DAY_US + 5));
        log.write(day, Some(&entry("old", &[])), true).unwrap();
        log.write(next, Some(&entry("new", &[])), true).unwrap();
        let other = Log::open(dir.path()).unwrap();
        assert_eq!(segments(dir.path()).len(), 2);
        other.prune(Ts(20_001 * DAY_US));
        assert_eq!(segments(dir.path()).len(), 1, "the old day's segment is deleted, whoever wrote it");
        assert_eq!(other.find(day).unwrap(), None);
        assert_eq!(other.find(next).unwrap(), Some(Some(entry("new", &[]))));
        log.prune(Ts(20_001 * DAY_US));
        assert_eq!(log.find(day).unwrap(), None);
    }

    /// A segment grows into new files, each twice as large, and every write in them is found.
    #[test]
    fn segments_follow_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let ids: Vec<String> = (0..40).map(|i| format!("{i:0>26}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let ts: Vec<Ts> = (0..200).map(|_| log.mint()).collect();
        for ts in &ts {
            log.write(*ts, Some(&entry("alerts", &ids)), true).unwrap();
        }
        assert!(segments(dir.path()).len() >= 3, "{:?}", segments(dir.path()));
        let again = Log::open(dir.path()).unwrap();
        for ts in &ts {
            assert_eq!(log.find(*ts).unwrap(), Some(Some(entry("alerts", &ids))));
            assert_eq!(again.find(*ts).unwrap(), Some(Some(entry("alerts", &ids))));
        }
    }

    /// A full disk refuses the write that needs a new segment, leaves no file behind, and the
    /// map writes again once there is room (on a small tmpfs, so it needs root).
    #[test]
    fn a_full_disk_refuses_a_write_and_the_map_goes_on_after() {
        use std::process::Command;
        // SAFETY: reads the process's user id.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: mounting a small tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("small");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&mount).status();
        assert!(mounted.unwrap().success(), "mount -t tmpfs failed");
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(mount.clone());
        let log = Log::open(&mount.join("messages")).unwrap();
        std::fs::write(mount.join("filler"), vec![1u8; 1024 * 1024 - 96 * 1024]).unwrap_or(());
        let ids: Vec<String> = (0..40).map(|i| format!("{i:0>26}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut written = Vec::new();
        let refused = loop {
            assert!(written.len() < 10_000, "the disk never filled");
            let ts = log.mint();
            match log.write(ts, Some(&entry("alerts", &ids)), true) {
                Ok(()) => written.push(ts),
                Err(e) => break e,
            }
        };
        assert!(refused.0.contains("cannot make"), "{refused}");
        assert!(!written.is_empty());
        let names = segments(&mount.join("messages"));
        std::fs::remove_file(mount.join("filler")).unwrap();
        let ts = log.mint();
        log.write(ts, Some(&entry("alerts", &ids)), true).unwrap();
        assert_eq!(segments(&mount.join("messages")).len(), names.len() + 1, "the refused segment left no file");
        for ts in written.iter().chain([&ts]) {
            assert_eq!(log.find(*ts).unwrap(), Some(Some(entry("alerts", &ids))));
        }
    }

    #[test]
    fn newer_formats_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let ts = log.mint();
        log.write(ts, Some(&entry("alerts", &[])), true).unwrap();
        drop(log);
        let name = segments(dir.path()).remove(0);
        let path = dir.path().join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[line::HEADER.len() - 2] = b'2';
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Log::open(dir.path()).unwrap().find(ts).unwrap(), None, "a segment of format 2 is not read");
        let counters = dir.path().join("counters");
        let mut bytes = std::fs::read(&counters).unwrap();
        bytes[0] = 2;
        std::fs::write(&counters, &bytes).unwrap();
        let refused = Log::open(dir.path()).err().unwrap();
        assert!(refused.0.contains("newer hookgate"), "{refused}");
    }
}
