//! The Web API's message map (docs/webapi.md, "The message map"): each `ts` hookgate minted, with
//! where its message went and the backend's ids of its posts, kept in the spool's store so that
//! a restart or a `kill -9` still knows every message. Entries older than `message_max_age` are
//! forgotten.
//!
//! Entries carry a format version (`v`); a newer one than `FORMAT` is read as no entry, never
//! guessed at.

use super::StoreError;
use crate::pipeline::json::write_string;
use crate::webapi::ts::Ts;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// The entry format this build writes and the newest it reads.
pub const FORMAT: u32 = 1;

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub v: u32,
    pub hook: String,
    pub backend: String,
    /// The channel as the call named it, after the hook's channel rules.
    pub channel: String,
    /// The `ts` of the thread's root, when the message is a reply.
    #[serde(default)]
    pub thread_ts: Option<Ts>,
    /// How many posts the message is.
    pub parts: usize,
    /// The backend's id of each post, in order; empty when the backend gives none (a Mattermost
    /// incoming webhook).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Accepted by a spooled hook and not yet (wholly) posted.
    #[serde(default)]
    pub pending: bool,
}

impl Entry {
    /// The entry as stored.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the entry as stored to `out`, written by hand: every Web API post writes one
    /// (docs/performance.md). Members left out are their defaults.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(br#"{"v":"#);
        out.extend_from_slice(digits.format(self.v).as_bytes());
        out.extend_from_slice(br#","hook":"#);
        write_string(out, &self.hook);
        out.extend_from_slice(br#","backend":"#);
        write_string(out, &self.backend);
        out.extend_from_slice(br#","channel":"#);
        write_string(out, &self.channel);
        if let Some(thread_ts) = self.thread_ts {
            out.extend_from_slice(br#","thread_ts":"#);
            out.extend_from_slice(digits.format(thread_ts.0).as_bytes());
        }
        out.extend_from_slice(br#","parts":"#);
        out.extend_from_slice(digits.format(self.parts).as_bytes());
        if !self.ids.is_empty() {
            out.extend_from_slice(br#","ids":["#);
            for (i, id) in self.ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, id);
            }
            out.push(b']');
        }
        if self.pending {
            out.extend_from_slice(br#","pending":true"#);
        }
        out.push(b'}');
    }

    /// A stored entry; `None` for one this build cannot read.
    pub fn of_json(text: &str) -> Option<Entry> {
        serde_json::from_str::<Entry>(text).ok().filter(|entry| entry.v <= FORMAT)
    }
}

/// What the Web API asks of the store.
#[async_trait]
pub trait MessageMap: Send + Sync {
    /// A `ts` for a new message: after the clock and every `ts` this process knows of. It is
    /// only claimed by `record`, which may move it on.
    fn mint(&self) -> Ts;
    /// Durably records a new message under `ts`, or, when another process sharing the store
    /// took that `ts` meanwhile, under the next free one; returns the `ts` it has.
    async fn record(&self, ts: Ts, entry: Entry) -> Result<Ts, StoreError>;
    /// Durably replaces the entry of the message `ts`.
    async fn keep(&self, ts: Ts, entry: Entry) -> Result<(), StoreError>;
    /// The entry of `ts`, when it has one and it is not older than `message_max_age`.
    async fn find(&self, ts: Ts) -> Result<Option<Entry>, StoreError>;
    /// Drops the entry of `ts` (a deleted message); the `ts` is never minted again.
    async fn forget(&self, ts: Ts) -> Result<(), StoreError>;
}

/// The clock's `ts`, or the one after `last`, kept in `last`: what `mint` hands out in one
/// process, whatever the threads.
pub fn mint_after(last: &AtomicU64) -> Ts {
    let now = Ts::at(std::time::SystemTime::now());
    let previous = last.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(Ts::next(now, Ts(last)).0));
    Ts::next(now, Ts(previous.unwrap_or_else(|last| last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_newer_formats_are_left_alone() {
        let entry = Entry {
            v: FORMAT,
            hook: "bot".into(),
            backend: "chat".into(),
            channel: "alerts".into(),
            thread_ts: Some(Ts(5)),
            parts: 2,
            ids: vec!["a".into(), "b".into()],
            pending: false,
        };
        let text = entry.to_json();
        assert_eq!(
            text,
            r#"{"v":1,"hook":"bot","backend":"chat","channel":"alerts","thread_ts":5,"parts":2,"ids":["a","b"]}"#
        );
        assert_eq!(Entry::of_json(&text), Some(entry.clone()));
        let odd = Entry { hook: "b\"o\nt".into(), thread_ts: None, ids: Vec::new(), pending: true, ..entry };
        let text = odd.to_json();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["hook"], "b\"o\nt");
        assert_eq!(Entry::of_json(&text), Some(odd));
        assert_eq!(Entry::of_json(&text.replace(r#""v":1"#, r#""v":2"#)), None);
        assert_eq!(Entry::of_json("{}"), None);
    }

    #[test]
    fn minted_ts_only_grow_across_threads() {
        let last = AtomicU64::new(u64::MAX / 2);
        let minted: Vec<Ts> = std::thread::scope(|scope| {
            let tasks: Vec<_> =
                (0..4).map(|_| scope.spawn(|| (0..1000).map(|_| mint_after(&last)).collect::<Vec<_>>())).collect();
            tasks.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        let distinct: std::collections::HashSet<&Ts> = minted.iter().collect();
        assert_eq!(distinct.len(), 4000);
        assert!(minted.iter().all(|ts| ts.0 > u64::MAX / 2), "after the last one known, not the clock");
    }
}
