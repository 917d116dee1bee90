//! Takes the message map's writes (`map_log`) to the disk, on a thread of its own, gathering
//! those of `SYNC_GATHER` (`mod.rs`) into one sync (docs/webapi.md, "The embedded map").

use crate::spool::{lock, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Takes every write made so far to the disk.
pub type SyncAll = Box<dyn Fn() -> Result<(), StoreError> + Send>;

#[derive(Default)]
struct State {
    /// Writes were made since the last sync began.
    behind: bool,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// `behind` as the writers see it without the lock: set by them, cleared before a sync
    /// begins. Each Web API post calls `behind`; only the first after a sync takes the lock.
    pending: AtomicBool,
}

/// The handle the writer thread keeps; dropping it syncs what is left and ends the thread.
pub struct Syncer {
    shared: Arc<Shared>,
}

impl Syncer {
    /// Starts the thread: once told writes are behind, it waits `gather` (so one sync covers
    /// every write of that time) and syncs.
    pub fn start(sync: SyncAll, gather: Duration) -> std::io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        std::thread::Builder::new().name("hookgate-sync".into()).spawn(move || run(&theirs, &sync, gather))?;
        Ok(Syncer { shared })
    }

    /// A write that did not wait for the disk was made.
    pub fn behind(&self) {
        if self.shared.pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut state = lock(&self.shared.state);
        if !state.behind {
            state.behind = true;
            self.shared.changed.notify_one();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared.state).stopping = true;
        self.shared.changed.notify_one();
    }
}

fn run(shared: &Shared, sync: &SyncAll, gather: Duration) {
    let wait = |state| shared.changed.wait(state).unwrap_or_else(|p| p.into_inner());
    let mut state = lock(&shared.state);
    loop {
        while !state.behind && !state.stopping {
            state = wait(state);
        }
        if !state.behind {
            return;
        }
        if !state.stopping {
            // Writes made meanwhile share this sync.
            let gathered = shared.changed.wait_timeout_while(state, gather, |s| !s.stopping);
            state = gathered.unwrap_or_else(|p| p.into_inner()).0;
        }
        state.behind = false;
        shared.pending.store(false, Ordering::SeqCst);
        let stopping = state.stopping;
        drop(state);
        let synced = sync();
        state = lock(&shared.state);
        if let Err(e) = synced {
            log::error!(target: "hookgate", "spool: the message map's last writes are not on the disk yet: {e}");
            state.behind = true;
            shared.pending.store(true, Ordering::SeqCst);
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    const GATHER: Duration = Duration::from_millis(50);

    /// A syncer gathering for `gather` whose sync counts its calls and fails while `failing` is
    /// set.
    fn counted(gather: Duration) -> (Syncer, Arc<AtomicUsize>, Arc<std::sync::atomic::AtomicBool>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, f) = (calls.clone(), failing.clone());
        let sync: SyncAll = Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
            if f.load(Ordering::SeqCst) {
                Err(StoreError("the disk said no".into()))
            } else {
                Ok(())
            }
        });
        (Syncer::start(sync, gather).unwrap(), calls, failing)
    }

    /// Waits, up to five seconds, until `calls` reaches `n`.
    fn until(calls: &AtomicUsize, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        while calls.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        calls.load(Ordering::SeqCst)
    }

    #[test]
    fn commits_of_one_gathering_share_one_sync_and_nothing_is_synced_without_commits() {
        let (syncer, calls, _) = counted(GATHER);
        std::thread::sleep(GATHER * 3);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        for _ in 0..5 {
            syncer.behind();
        }
        assert_eq!(until(&calls, 1), 1);
        std::thread::sleep(GATHER * 3);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "five commits of one gathering, one sync");
        syncer.behind();
        assert_eq!(until(&calls, 2), 2);
    }

    #[test]
    fn a_failed_sync_is_tried_again() {
        let (syncer, calls, failing) = counted(GATHER);
        failing.store(true, Ordering::SeqCst);
        syncer.behind();
        assert!(until(&calls, 3) >= 3, "a failing sync is retried");
        failing.store(false, Ordering::SeqCst);
        let settled = until(&calls, calls.load(Ordering::SeqCst) + 1);
        std::thread::sleep(GATHER * 3);
        assert!(calls.load(Ordering::SeqCst) <= settled + 1, "once it succeeds the retries stop");
    }

    #[test]
    fn dropping_the_handle_syncs_what_is_behind_at_once() {
        let (syncer, calls, _) = counted(Duration::from_secs(60));
        let started = Instant::now();
        syncer.behind();
        drop(syncer);
        assert_eq!(until(&calls, 1), 1);
        assert!(started.elapsed() < Duration::from_secs(5), "the sync did not wait out its gathering");
    }
}
