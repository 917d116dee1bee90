//! The backend trait: what delivery asks of a kind, and the backend-neutral shapes of its
//! answers. A kind is a folder beside this file that implements `Kind`, registered by one line
//! in `KINDS` (`delivery/mod.rs`).

use super::http::pool::Pool;
use crate::pipeline::message::Message;
use crate::reason::{Ending, Reason};
use crate::rules::{Hook, KindConfig, KindRules};
use crate::tls::client::TlsFailure;
use async_trait::async_trait;
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;

/// What a kind does with the typed configs its own readers (`KindRules`) made: render a message
/// as its posts and send one. Every kind implements this; the registry holds it as `Kind`. It is
/// never a trait object, so `send` is a plain async function: the one boxed future per post is
/// `Bound::send`'s.
pub trait Deliver: KindRules + Sized + 'static {
    /// What `KindRules::backend` makes.
    type Backend: KindConfig;
    /// What `KindRules::hook` makes: the hook's part of this kind's keys.
    type Target: KindConfig;
    /// One message for `hook` as the posts this backend takes, in order: rendered, and split
    /// within its limits.
    fn render(&self, backend: &Self::Backend, hook: &Hook, message: Message) -> Vec<String>;
    /// The message's members this backend has no place for, to be counted as dropped.
    fn unsupported(&self, _backend: &Self::Backend, _message: &Message) -> Vec<&'static str> {
        Vec::new()
    }
    /// Sends one post and classifies the answer.
    fn send(
        &self,
        backend: &Self::Backend,
        target: &Self::Target,
        post: Outgoing<'_>,
    ) -> impl std::future::Future<Output = Exchange> + Send;
}

/// A backend kind as the registry (`KINDS`) holds it.
pub trait Kind: KindRules {
    /// This kind bound to one backend and one hook of it, from the configs its readers made.
    /// `None` only for configs another kind made, which the loader never pairs with this kind.
    fn bind(&'static self, backend: &Arc<dyn KindConfig>, target: &Arc<dyn KindConfig>) -> Option<Arc<dyn Bound>>;
}

/// The one place a kind's configs are read back as their own types.
impl<K: Deliver> Kind for K {
    fn bind(&'static self, backend: &Arc<dyn KindConfig>, target: &Arc<dyn KindConfig>) -> Option<Arc<dyn Bound>> {
        let backend = backend.clone().into_any().downcast::<K::Backend>().ok()?;
        let target = target.clone().into_any().downcast::<K::Target>().ok()?;
        Some(Arc::new(Binding { kind: self, backend, target }))
    }
}

/// A kind bound to one backend and one hook: all delivery needs, resolved once per rule set
/// (`delivery/route.rs`).
#[async_trait]
pub trait Bound: Send + Sync {
    fn render(&self, hook: &Hook, message: Message) -> Vec<String>;
    fn unsupported(&self, message: &Message) -> Vec<&'static str>;
    async fn send(&self, post: Outgoing<'_>) -> Exchange;
}

struct Binding<K: Deliver> {
    kind: &'static K,
    backend: Arc<K::Backend>,
    target: Arc<K::Target>,
}

#[async_trait]
impl<K: Deliver> Bound for Binding<K> {
    fn render(&self, hook: &Hook, message: Message) -> Vec<String> {
        self.kind.render(&self.backend, hook, message)
    }

    fn unsupported(&self, message: &Message) -> Vec<&'static str> {
        self.kind.unsupported(&self.backend, message)
    }

    async fn send(&self, post: Outgoing<'_>) -> Exchange {
        self.kind.send(&self.backend, &self.target, post).await
    }
}

/// One post on its way to a backend.
pub struct Outgoing<'a> {
    pub body: Bytes,
    pub request_id: &'a str,
    /// Which post of its job this is, from 0: with the request id, it names the post to a
    /// backend that deduplicates.
    pub part: usize,
    pub pool: &'a Pool,
}

/// How one exchange with a backend ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub upstream: Upstream,
    pub result: Result<(), Undelivered>,
}

/// What came back, for the upstream metric and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The backend answered with this status.
    Status(u16),
    /// No answer.
    Failed(Failure),
    /// Written locally (the log backend): nothing to count upstream.
    Logged,
    /// Stored by the spool for later delivery.
    Spooled,
}

impl Upstream {
    /// As the `upstream` field of log lines: the status, the failure's label, `log` or `spool`.
    pub fn label(self) -> Cow<'static, str> {
        match self {
            Upstream::Status(code) => Cow::Owned(code.to_string()),
            Upstream::Failed(failure) => Cow::Borrowed(failure.label()),
            Upstream::Logged => Cow::Borrowed("log"),
            Upstream::Spooled => Cow::Borrowed("spool"),
        }
    }
}

/// Why there is no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Connect,
    /// The TLS handshake failed; nothing was sent.
    Tls(TlsFailure),
    Timeout,
    /// The connection failed after the request may have been sent.
    Io,
}

impl Failure {
    /// As it appears in logs and in the `code` label of `hookgate_upstream_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect_error",
            Failure::Tls(_) => "tls_error",
            Failure::Timeout => "timeout",
            Failure::Io => "io_error",
        }
    }
}

/// Why a backend did not take a post (docs/webhooks.md, "Responses"), whichever kind it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undelivered {
    /// The backend refused the payload as invalid (400).
    #[error("the backend refused the payload")]
    Refused,
    /// The backend refused the action (403).
    #[error("backend refused the action")]
    Forbidden,
    /// The backend does not know the channel or hook (404).
    #[error("backend does not know the channel or hook")]
    NotFound,
    /// The backend found the post too large (413).
    #[error("backend found the post too large")]
    TooLarge,
    /// The backend answered 429, with its own `Retry-After` when it sent one.
    #[error("backend rate limit")]
    RateLimited { retry_after: u64 },
    /// The backend answered 5xx, a redirect, or a 4xx that says nothing about the request.
    #[error("backend answered {0}")]
    Error(u16),
    /// No connection could be made, or the backend did not answer in time.
    #[error("backend unavailable: {}", .0.label())]
    Unavailable(Failure),
    /// A split message failed after `delivered` of its `parts` posts were accepted.
    #[error("backend failed after {delivered} of {parts} posts")]
    PartlyDelivered { delivered: usize, parts: usize },
}

impl Undelivered {
    pub fn ending(&self) -> Ending<'static> {
        Ending { reason: self.reason(), retry_after: self.retry_after(), detail: self.detail() }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Undelivered::Refused => Reason::InvalidPayload,
            Undelivered::Forbidden => Reason::BackendForbidden,
            Undelivered::NotFound => Reason::ChannelNotFound,
            Undelivered::TooLarge => Reason::TooLarge,
            Undelivered::RateLimited { .. } => Reason::BackendRateLimited,
            Undelivered::Error(_) => Reason::BackendError,
            Undelivered::Unavailable(_) => Reason::BackendUnavailable,
            Undelivered::PartlyDelivered { .. } => Reason::PartlyDelivered,
        }
    }

    /// The backend's own wait, for reasons whose `Retry-After` is given.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Undelivered::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// What Mattermost's `detailed_error` says.
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            Undelivered::Refused => Some("the backend refused the payload"),
            _ => None,
        }
    }
}
