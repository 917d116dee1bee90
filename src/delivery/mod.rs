//! Delivery: an accepted `Job` taken to its backend, post by post, and the `Outcome` the answer
//! and the log line are made from. Each backend kind is a folder behind the `Kind` trait
//! (`kind.rs`), registered in `KINDS`.

pub mod http;
pub(crate) mod job;
pub(crate) mod kind;
pub(crate) mod log;
pub(crate) mod matrix;
pub(crate) mod mattermost;
pub(crate) mod operation;
pub(crate) mod route;
pub mod split;

use crate::pipeline::message::Message;
use crate::rules::{self, Delivery, Hook, KindRules, Problem, Rules};
use bytes::Bytes;
use http::pool::Pool;
use job::Job;
use kind::{Exchange, Kind, Outgoing, Undelivered, Upstream};
use route::Route;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Every backend kind. Adding one is a folder beside this file and a line here.
pub(crate) static KINDS: &[&dyn Kind] = &[&mattermost::Mattermost, &matrix::Matrix, &log::Log];

/// Loads the rules directory with every registered kind.
pub fn load_rules(dir: &Path) -> Result<Rules, Vec<Problem>> {
    let kinds: Vec<&dyn KindRules> = KINDS.iter().map(|k| *k as &dyn KindRules).collect();
    rules::load(dir, &kinds)
}

/// Rules from one file holding `text`, for unit tests; panics with the problems.
#[cfg(test)]
pub(crate) fn rules_from_text(text: &str) -> Rules {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("rules.toml"), text).expect("the rules file is written");
    load_rules(dir.path()).unwrap_or_else(|problems| panic!("{problems:?}"))
}

/// The job for a message accepted for `hook`, rendered by its route's kind for backend
/// `backend`. A spooled job keeps the message too, so it can follow its hook to another backend
/// (`spool/route.rs`).
pub(crate) fn accept(
    hook: &Hook,
    route: &Route,
    backend: &str,
    request_id: &str,
    received: SystemTime,
    message: Message,
) -> Job {
    let kept = (hook.delivery == Delivery::Spool).then(|| message.clone());
    let posts = route.bound.render(hook, message);
    Job { message: kept, ..Job::new(&hook.name, backend, request_id, job::now_ms(received), posts) }
}

/// How a job's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub result: Result<(), Undelivered>,
    /// What the last exchange brought back; `None` when nothing was sent.
    pub upstream: Option<Upstream>,
    /// Posts the backend accepted, out of `parts`.
    pub delivered: usize,
    pub parts: usize,
    pub took: Duration,
}

/// Sends jobs directly, while the client waits, over one pool of backend connections.
pub(crate) struct Direct {
    pool: Pool,
}

impl Direct {
    pub(crate) fn new(pool_size: usize) -> Direct {
        Direct { pool: Pool::new(pool_size) }
    }

    /// Sends each post of the job in order. `Ok` only when the backend accepted every post; a
    /// failure after the first is `PartlyDelivered`, since what was posted stays posted.
    /// `observe` sees every exchange and how long it took.
    pub(crate) async fn deliver(
        &self,
        job: Job,
        route: &Route,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Outcome {
        let started = Instant::now();
        let Job { posts, request_id, .. } = job;
        let parts = posts.len();
        let sent = send_posts(posts, 0, &request_id, route, &self.pool, observe).await;
        let result = match (sent.failure, sent.delivered) {
            (None, _) => Ok(()),
            (Some(undelivered), 0) => Err(undelivered),
            (Some(_), delivered) => Err(Undelivered::PartlyDelivered { delivered, parts }),
        };
        Outcome { result, upstream: sent.upstream, delivered: sent.delivered, parts, took: started.elapsed() }
    }
}

/// How sending a run of posts ended.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Posts the backend accepted, counted from the first.
    pub delivered: usize,
    /// What the last exchange brought back; `None` when nothing was sent.
    pub upstream: Option<Upstream>,
    /// The answer that stopped the run before its end.
    pub failure: Option<Undelivered>,
}

impl Sent {
    pub(crate) fn new() -> Sent {
        Sent { delivered: 0, upstream: None, failure: None }
    }

    /// Records one exchange, begun at `started`: `observe` sees it and how long it took, and it
    /// counts as delivered when the backend took it. False when it did not: its answer is kept
    /// as the failure, and the run stops there.
    pub(crate) fn took(
        &mut self,
        exchange: Exchange,
        started: Instant,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> bool {
        observe(exchange.upstream, started.elapsed());
        self.upstream = Some(exchange.upstream);
        match exchange.result {
            Ok(()) => {
                self.delivered += 1;
                true
            }
            Err(undelivered) => {
                self.failure = Some(undelivered);
                false
            }
        }
    }
}

/// Sends `posts` in order along `route` over `pool`, stopping at the first the backend does not
/// take; the first is part `first` of its job. `observe` sees every exchange and how long it took.
pub(crate) async fn send_posts(
    posts: impl IntoIterator<Item = String>,
    first: usize,
    request_id: &str,
    route: &Route,
    pool: &Pool,
    observe: &mut (dyn FnMut(Upstream, Duration) + Send),
) -> Sent {
    let mut sent = Sent::new();
    for (part, post) in (first..).zip(posts) {
        let started = Instant::now();
        let post = Outgoing { body: Bytes::from(post), request_id, part, pool };
        if !sent.took(route.bound.send(post).await, started, observe) {
            break;
        }
    }
    sent
}
