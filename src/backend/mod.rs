//! Backends: where a canonical payload goes. One file per kind; this file delivers a payload to
//! whichever kind a hook names and turns the backend's answer into success or a `Rejection`.

pub mod answer;
pub mod log;
pub mod mattermost;
pub mod pool;

use crate::canonical::Canonical;
use crate::rejection::Rejection;
use crate::rules::{Backend, BackendKind, Hook};
use crate::split;
use bytes::Bytes;
use pool::Pool;
use std::time::{Duration, Instant};

/// How one exchange with the backend ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The backend answered with this status.
    Status(u16),
    /// No answer: connect error, timeout or a broken connection.
    Failed(mattermost::Failure),
    /// Written to the log backend.
    Logged,
}

/// What a delivery did, for the request's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The last exchange with the backend.
    pub upstream: Upstream,
    /// Posts accepted by the backend, out of `parts`.
    pub delivered: usize,
    pub parts: usize,
}

/// Delivers a payload, split into several posts when the backend's post size requires, each
/// sent in order. `Ok` only when the backend accepted every post; a failure after the first is
/// `PartlyDelivered`, since what was posted stays posted.
/// `observe` sees every exchange with the backend and how long it took.
pub async fn deliver(
    backend: &Backend,
    hook: &Hook,
    pool: &Pool,
    payload: Canonical,
    request_id: &str,
    observe: &mut (dyn FnMut(Upstream, Duration) + Send),
) -> (Delivery, Result<(), Rejection>) {
    let posts = match &backend.kind {
        BackendKind::Mattermost(mm) => split::split(payload, mm.max_message_chars),
        BackendKind::Log => vec![payload],
    };
    let mut delivery = Delivery { upstream: Upstream::Logged, delivered: 0, parts: posts.len() };
    for post in &posts {
        let started = Instant::now();
        let (upstream, result) = deliver_one(backend, hook, pool, Bytes::from(post.to_json()), request_id).await;
        observe(upstream, started.elapsed());
        delivery.upstream = upstream;
        if let Err(rejection) = result {
            return match delivery.delivered {
                0 => (delivery, Err(rejection)),
                delivered => (delivery, Err(Rejection::PartlyDelivered { delivered, parts: delivery.parts })),
            };
        }
        delivery.delivered += 1;
    }
    (delivery, Ok(()))
}

async fn deliver_one(
    backend: &Backend,
    hook: &Hook,
    pool: &Pool,
    payload: Bytes,
    request_id: &str,
) -> (Upstream, Result<(), Rejection>) {
    match &backend.kind {
        BackendKind::Log => match log::write(&payload) {
            Ok(()) => (Upstream::Logged, Ok(())),
            Err(_) => (Upstream::Failed(mattermost::Failure::Io), Err(Rejection::BackendUnavailable("stdout"))),
        },
        BackendKind::Mattermost(mm) => match mm.post(pool, &hook.backend_key, payload, request_id).await {
            Ok(answer) => (Upstream::Status(answer.status), classify(answer)),
            Err(failure) => (Upstream::Failed(failure), Err(Rejection::BackendUnavailable(failure.label()))),
        },
    }
}

/// The contract's table for backend answers (section 6). 4xx statuses that say nothing about the
/// client's request (401, 405, ...) mean the gateway or backend is misconfigured: `backend_error`.
pub fn classify(answer: answer::Answer) -> Result<(), Rejection> {
    match answer.status {
        200..=299 => Ok(()),
        400 => Err(Rejection::InvalidPayload("the backend refused the payload".into())),
        403 => Err(Rejection::ActionProhibited),
        404 => Err(Rejection::ChannelNotFound),
        413 => Err(Rejection::TooLarge),
        429 => Err(Rejection::BackendRateLimited { retry_after: answer.retry_after.unwrap_or(1).max(1) }),
        status => Err(Rejection::BackendError(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use answer::Answer;

    #[test]
    fn backend_answers_map_to_the_contract_table() {
        let a = |status, retry_after| Answer { status, retry_after };
        let cases = [
            (a(200, None), Ok(())),
            (a(201, None), Ok(())),
            (a(400, None), Err(Rejection::InvalidPayload("the backend refused the payload".into()))),
            (a(403, None), Err(Rejection::ActionProhibited)),
            (a(404, None), Err(Rejection::ChannelNotFound)),
            (a(413, None), Err(Rejection::TooLarge)),
            (a(429, Some(30)), Err(Rejection::BackendRateLimited { retry_after: 30 })),
            (a(429, None), Err(Rejection::BackendRateLimited { retry_after: 1 })),
            (a(429, Some(0)), Err(Rejection::BackendRateLimited { retry_after: 1 })),
            (a(401, None), Err(Rejection::BackendError(401))),
            (a(301, None), Err(Rejection::BackendError(301))),
            (a(500, None), Err(Rejection::BackendError(500))),
            (a(501, None), Err(Rejection::BackendError(501))),
        ];
        for (answer, want) in cases {
            assert_eq!(classify(answer), want, "{answer:?}");
        }
    }
}
