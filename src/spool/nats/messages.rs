//! The message map on NATS (docs/webapi.md, "The message map"): a JetStream key-value bucket,
//! `{stream}_MESSAGES`, replicated like the streams, keyed by `ts`. A new message is a `create`,
//! which fails for a key that exists, so instances sharing the bucket never hand out one `ts` twice;
//! the bucket's `max_age` is `message_max_age`, so JetStream itself forgets old entries. Another
//! instance's `ts` are learnt only by colliding with them: `record` then steps to the next.

use super::{failed, Nats};
use crate::spool::messages::{mint_after, Entry, MessageMap};
use crate::spool::StoreError;
use crate::webapi::ts::Ts;
use async_nats::jetstream::kv;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// How many taken `ts` a mint steps over before it gives up: each is a later microsecond, so
/// only a burst of that many posts within one microsecond across instances could exhaust it.
const MINT_TRIES: u64 = 1_000;

/// The bucket's name for a stream.
pub(super) fn bucket(stream: &str) -> String {
    format!("{stream}_MESSAGES")
}

#[async_trait]
impl MessageMap for Nats {
    fn mint(&self) -> Ts {
        mint_after(&self.last_ts)
    }

    async fn record(&self, ts: Ts, entry: Entry) -> Result<Ts, StoreError> {
        let store = &self.connection().await?.messages;
        let value = Bytes::from(entry.to_json());
        let mut ts = ts;
        for _ in 0..MINT_TRIES {
            match store.create(ts.to_string(), value.clone()).await {
                Ok(_) => {
                    self.last_ts.fetch_max(ts.0, Ordering::AcqRel);
                    return Ok(ts);
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => ts = Ts(ts.0 + 1),
                Err(e) => return Err(failed(e)),
            }
        }
        Err(StoreError(format!("no free ts after {MINT_TRIES} tries up to {ts}")))
    }

    async fn keep(&self, ts: Ts, entry: Entry) -> Result<(), StoreError> {
        let store = &self.connection().await?.messages;
        store.put(ts.to_string(), Bytes::from(entry.to_json())).await.map_err(failed)?;
        Ok(())
    }

    async fn find(&self, ts: Ts) -> Result<Option<Entry>, StoreError> {
        let store = &self.connection().await?.messages;
        let value = store.get(ts.to_string()).await.map_err(failed)?;
        Ok(value.and_then(|v| Entry::of_json(std::str::from_utf8(v.as_ref()).ok()?)))
    }

    /// The key stays, empty, until the bucket's `max_age` removes it: a `create` of it fails
    /// meanwhile, so the `ts` is not minted again.
    async fn forget(&self, ts: Ts) -> Result<(), StoreError> {
        let store = &self.connection().await?.messages;
        store.put(ts.to_string(), Bytes::new()).await.map_err(failed)?;
        Ok(())
    }
}
