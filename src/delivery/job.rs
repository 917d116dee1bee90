//! The accepted job: everything delivery needs, by name, with the posts already rendered for the
//! backend. It is what a spool stores, so it serialises and reads back losslessly, and it holds
//! no position in a rule set: a reload or a restart can come between acceptance and delivery.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub hook: String,
    pub backend: String,
    pub request_id: String,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The bodies to send, in order, as the backend's kind rendered them.
    pub posts: Vec<String>,
}

/// Milliseconds since the Unix epoch, for `received_ms`.
pub fn now_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn job() -> impl Strategy<Value = Job> {
        let text = || proptest::string::string_regex("(?s).{0,40}").unwrap();
        (text(), text(), text(), any::<u64>(), proptest::collection::vec(text(), 0..5)).prop_map(
            |(hook, backend, request_id, received_ms, posts)| Job { hook, backend, request_id, received_ms, posts },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// Whatever a job holds (any Unicode, quotes, control characters, empty posts), it reads
        /// back as it was written.
        #[test]
        fn a_job_reads_back_as_written(job in job()) {
            let stored = serde_json::to_vec(&job).unwrap();
            let read: Job = serde_json::from_slice(&stored).unwrap();
            prop_assert_eq!(read, job);
        }
    }

    #[test]
    fn received_time_is_milliseconds_since_the_epoch() {
        assert_eq!(now_ms(UNIX_EPOCH + std::time::Duration::from_millis(1_234)), 1_234);
        assert_eq!(now_ms(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }
}
