//! An attempt, the same for every engine: the posts sent along the hook's route (`Attempts`),
//! what its end means for the job (the table in docs/spool.md as a pure function, `decide`), and
//! the one log line and counter of each attempt.

use super::lock;
use crate::active::Active;
use crate::delivery::http::pool::Pool;
use crate::delivery::job::{self, Job};
use crate::delivery::kind::{Undelivered, Upstream};
use crate::delivery::operation::{queued, Queued, Stored};
use crate::delivery::send_posts;
use crate::observe::metrics::Metrics;
use crate::rules::SpoolSettings;
use crate::spool::messages::MessageMap;
use rand::Rng;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Idle backend connections a worker keeps.
const POOL_SIZE: usize = 64;

/// What a worker's attempts share: the backend connections, the backends a 429 paused, and the
/// settings a decision needs.
pub struct Attempts {
    pool: Pool,
    /// Backends that answered 429, by name, paused until then.
    paused: Mutex<HashMap<String, Instant>>,
    metrics: Arc<Metrics>,
    pub settings: SpoolSettings,
}

/// How an attempt ended: what becomes of the job, and the backend's last answer for the log line.
pub struct Ended {
    pub settle: Settle,
    pub upstream: Cow<'static, str>,
}

impl Attempts {
    pub fn new(metrics: Arc<Metrics>, settings: SpoolSettings) -> Attempts {
        Attempts { pool: Pool::new(POOL_SIZE), paused: Mutex::new(HashMap::new()), metrics, settings }
    }

    /// How much longer `backend` is paused, if it is.
    pub fn paused(&self, backend: &str) -> Option<Duration> {
        lock(&self.paused).get(backend).and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// Sends `posts`, the job's `parts` posts from part `done` on, along the route of `hook` (its
    /// position in `active`), and decides what becomes of the job; a 429 pauses the backend.
    /// A Web API operation goes through the message map (`delivery/operation.rs`). This is
    /// attempt number `attempts`.
    #[allow(clippy::too_many_arguments)]
    pub async fn attempt(
        &self,
        active: &Active,
        hook: usize,
        job: &Job,
        posts: impl IntoIterator<Item = String>,
        (done, parts): (usize, usize),
        attempts: u32,
        map: &dyn MessageMap,
    ) -> Ended {
        let route = active.routes.of(hook);
        let handles = active.handles.backend(route.backend);
        let mut observe = |answer, took| handles.exchange(&self.metrics, answer, took);
        let sent = match &job.op {
            None => send_posts(posts, done, &job.request_id, route, &self.pool, &mut observe).await,
            Some(op) => {
                let stored = Stored {
                    op,
                    backend: &active.rules.backends[route.backend].name,
                    request_id: &job.request_id,
                    route,
                    map,
                    pool: &self.pool,
                    parts,
                };
                let mut dropped = Vec::new();
                let queued = queued(&stored, posts.into_iter().collect(), done, &mut dropped, &mut observe).await;
                self.metrics.dropped(&dropped);
                match queued {
                    Queued::Sent(sent) => sent,
                    Queued::Skipped(why) => {
                        return Ended { settle: Settle::Delivered, upstream: Cow::Owned(format!("none ({why})")) }
                    }
                    Queued::Dead(reason) => {
                        let settle = Settle::Dead { parts_done: done, attempts, reason };
                        return Ended { settle, upstream: Cow::Borrowed("none") };
                    }
                    Queued::Store(e) => return self.ended_without(done, attempts, format!("message map: {e}")),
                }
            }
        };
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        let decision = decide(sent.failure.as_ref(), done + sent.delivered, attempts, &self.settings, jitter);
        if let Pause::For(wait) = decision.pause {
            let backend = active.rules.backends[route.backend].name.clone();
            lock(&self.paused).insert(backend, Instant::now() + wait);
        }
        Ended { settle: decision.settle, upstream: sent.upstream.map_or(Cow::Borrowed("none"), Upstream::label) }
    }

    /// An attempt that sent nothing because the store failed: tried again after `retry_initial`.
    fn ended_without(&self, done: usize, attempts: u32, error: String) -> Ended {
        let next_ms = job::now_ms(SystemTime::now()) + self.settings.retry_initial.as_millis() as u64;
        Ended { settle: Settle::Retry { parts_done: done, attempts, next_ms, error }, upstream: Cow::Borrowed("none") }
    }
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Every post was accepted: the job leaves the store.
    Delivered,
    /// Try again at `next_ms`; `parts_done` posts need not be sent again.
    Retry { parts_done: usize, attempts: u32, next_ms: u64, error: String },
    /// Never to be tried again unless replayed.
    Dead { parts_done: usize, attempts: u32, reason: String },
}

impl Settle {
    /// The `result` label and the log line's detail.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Settle::Delivered => ("delivered", String::new()),
            Settle::Retry { error, next_ms, .. } => {
                let wait = next_ms.saturating_sub(job::now_ms(SystemTime::now()));
                ("retry", format!("{error}; next attempt in {wait} ms"))
            }
            Settle::Dead { reason, .. } => ("dead", reason.clone()),
        }
    }
}

/// The job is past `max_age` when received before `now_ms - max_age`.
pub fn too_old(job: &Job, settings: &SpoolSettings, now_ms: u64) -> bool {
    job.received_ms.saturating_add(settings.max_age.as_millis() as u64) <= now_ms
}

/// The reason a job past `max_age` becomes a dead letter.
pub const TOO_OLD: &str = "older than max_age";

/// Counts an attempt and logs its line: request id, hook, attempt number, outcome, the backend's
/// answer, what comes next, and `moved_from` when the job followed its hook to another backend.
pub fn recorded(metrics: &Metrics, job: &Job, settle: &Settle, number: u32, upstream: &str, moved_from: Option<&str>) {
    let (result, detail) = settle.describe();
    metrics.spool().attempt(&job.hook, result);
    let (request_id, hook, attempt, detail) =
        (job.request_id.as_str(), job.hook.as_str(), number as u64, detail.as_str());
    match moved_from {
        None => log::info!(
            target: "hookgate::spool",
            request_id = request_id, hook = hook, attempt = attempt, outcome = result, upstream = upstream,
            detail = detail;
            "delivery attempt"
        ),
        Some(moved_from) => log::info!(
            target: "hookgate::spool",
            request_id = request_id, hook = hook, attempt = attempt, outcome = result, upstream = upstream,
            detail = detail, moved_from = moved_from;
            "delivery attempt"
        ),
    }
}

/// Whether an attempt's end pauses the whole backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Pause {
    None,
    For(Duration),
}

/// What becomes of a job after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub settle: Settle,
    pub pause: Pause,
}

/// The table of docs/spool.md: 2xx delivered; 429 waits its `Retry-After` and pauses the
/// backend as long; 400, 403, 404 and 413 will never be taken, so the job is dead at once; 5xx,
/// no connection, a timeout or a TLS failure retry after a backoff doubling from `retry_initial`
/// to `retry_max`, scaled by `jitter` (0.8 to 1.2).
pub fn decide(
    failure: Option<&Undelivered>,
    parts_done: usize,
    attempts: u32,
    settings: &SpoolSettings,
    jitter: f64,
) -> Outcome {
    let now_ms = job::now_ms(SystemTime::now());
    let retry = |wait: Duration, error: String| Settle::Retry {
        parts_done,
        attempts,
        next_ms: now_ms + wait.as_millis() as u64,
        error,
    };
    let Some(failure) = failure else { return Outcome { settle: Settle::Delivered, pause: Pause::None } };
    match failure {
        Undelivered::RateLimited { retry_after } => {
            let wait = Duration::from_secs(*retry_after);
            Outcome { settle: retry(wait, failure.to_string()), pause: Pause::For(wait) }
        }
        Undelivered::Refused | Undelivered::Forbidden | Undelivered::NotFound | Undelivered::TooLarge => {
            Outcome { settle: Settle::Dead { parts_done, attempts, reason: failure.to_string() }, pause: Pause::None }
        }
        Undelivered::Error(_) | Undelivered::Unavailable(_) | Undelivered::PartlyDelivered { .. } => {
            let doubled = settings.retry_initial.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
            let wait = doubled.min(settings.retry_max).mul_f64(jitter);
            Outcome { settle: retry(wait, failure.to_string()), pause: Pause::None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kind::Failure;

    #[test]
    fn attempts_end_as_the_contract_table_says() {
        let settings = SpoolSettings {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            ..SpoolSettings::new(std::path::Path::new("."))
        };
        let wait = |o: &Outcome| match &o.settle {
            Settle::Retry { next_ms, .. } => Some(next_ms.saturating_sub(job::now_ms(SystemTime::now()))),
            _ => None,
        };
        let delivered = decide(None, 2, 1, &settings, 1.0);
        assert_eq!(delivered, Outcome { settle: Settle::Delivered, pause: Pause::None });

        let limited = decide(Some(&Undelivered::RateLimited { retry_after: 2 }), 0, 1, &settings, 1.0);
        assert_eq!(limited.pause, Pause::For(Duration::from_secs(2)));
        assert!((1_900..=2_000).contains(&wait(&limited).unwrap()), "{limited:?}");

        for permanent in [Undelivered::Refused, Undelivered::Forbidden, Undelivered::NotFound, Undelivered::TooLarge] {
            let dead = decide(Some(&permanent), 1, 3, &settings, 1.0);
            assert_eq!(dead.settle, Settle::Dead { parts_done: 1, attempts: 3, reason: permanent.to_string() });
        }

        // Backoff: 1 s, 2 s, 4 s, ... capped at retry_max, scaled by the jitter.
        let cases = [
            (1, 1.0, 1_000),
            (2, 1.0, 2_000),
            (3, 1.0, 4_000),
            (10, 1.0, 300_000),
            (40, 1.0, 300_000),
            (2, 0.8, 1_600),
        ];
        for (attempts, jitter, want_ms) in cases {
            for failure in [Undelivered::Error(500), Undelivered::Unavailable(Failure::Timeout)] {
                let outcome = decide(Some(&failure), 0, attempts, &settings, jitter);
                let got = wait(&outcome).unwrap();
                assert!((want_ms - 100..=want_ms).contains(&got), "attempt {attempts}: waits {got} ms, want {want_ms}");
                assert_eq!(outcome.pause, Pause::None);
            }
        }
    }
}
