//! The backend trait: what delivery asks of a kind, and the backend-neutral shapes of its
//! answers. A kind is a folder beside this file that implements `Kind`, registered by one line
//! in `KINDS` (`delivery/mod.rs`).

use super::http::pool::Pool;
use crate::pipeline::message::Message;
use crate::reason::{Ending, Reason};
use crate::rules::{Hook, KindConfig, KindRules};
use crate::tls::client::TlsFailure;
use crate::webapi::ts::Ts;
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

    /// Whether a Web API post can go into a thread here (docs/webapi.md, "Backends"); when not,
    /// `thread_ts` is dropped and counted.
    fn threads(&self, _backend: &Self::Backend) -> bool {
        false
    }

    /// Sends one post of a Web API message, placed as `placed` says, and returns the backend's
    /// id for it when it gives one: only posts with ids can be updated and deleted. Unless a
    /// kind says otherwise, a post is sent as a webhook's is and has no id.
    fn post(
        &self,
        backend: &Self::Backend,
        target: &Self::Target,
        post: Outgoing<'_>,
        _placed: &Placed<'_>,
    ) -> impl std::future::Future<Output = (Exchange, Option<String>)> + Send {
        async move { (self.send(backend, target, post).await, None) }
    }

    /// Replaces the content of the post `id` by `post`; `None` when this backend cannot.
    fn edit(
        &self,
        _backend: &Self::Backend,
        _target: &Self::Target,
        _id: &str,
        _post: Outgoing<'_>,
        _placed: &Placed<'_>,
    ) -> impl std::future::Future<Output = Option<Exchange>> + Send {
        async { None }
    }

    /// Deletes the post `id`; `None` when this backend cannot.
    fn remove(
        &self,
        _backend: &Self::Backend,
        _target: &Self::Target,
        _id: &str,
        _post: Outgoing<'_>,
        _placed: &Placed<'_>,
    ) -> impl std::future::Future<Output = Option<Exchange>> + Send {
        async { None }
    }
}

/// Where a Web API message is (docs/webapi.md): its `ts`, its channel as the call named it, and
/// the thread it is in.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    pub ts: Ts,
    pub channel: &'a str,
    /// The `ts` of the thread's root message.
    pub thread_ts: Option<Ts>,
    /// The backend's id of the root's first post, for a new post in the thread.
    pub root_id: Option<&'a str>,
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
    fn threads(&self) -> bool;
    async fn post(&self, post: Outgoing<'_>, placed: &Placed<'_>) -> (Exchange, Option<String>);
    async fn edit(&self, id: &str, post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange>;
    async fn remove(&self, id: &str, post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange>;
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

    fn threads(&self) -> bool {
        self.kind.threads(&self.backend)
    }

    async fn post(&self, post: Outgoing<'_>, placed: &Placed<'_>) -> (Exchange, Option<String>) {
        self.kind.post(&self.backend, &self.target, post, placed).await
    }

    async fn edit(&self, id: &str, post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange> {
        self.kind.edit(&self.backend, &self.target, id, post, placed).await
    }

    async fn remove(&self, id: &str, post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange> {
        self.kind.remove(&self.backend, &self.target, id, post, placed).await
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
    /// The table every HTTP kind reads a backend's status by (docs/webhooks.md, "Responses"):
    /// 2xx taken; 400, 403, 404 and 413 refused for good; 429 waits `retry_after` seconds (at
    /// least 1, and 1 when the backend gave none); any other status (5xx, a redirect, or a 4xx
    /// that says nothing about the request, such as 401: a misconfigured gateway) is the
    /// backend's error.
    pub(crate) fn from_status(status: u16, retry_after: Option<u64>) -> Result<(), Undelivered> {
        match status {
            200..=299 => Ok(()),
            400 => Err(Undelivered::Refused),
            403 => Err(Undelivered::Forbidden),
            404 => Err(Undelivered::NotFound),
            413 => Err(Undelivered::TooLarge),
            429 => Err(Undelivered::RateLimited { retry_after: retry_after.unwrap_or(1).max(1) }),
            status => Err(Undelivered::Error(status)),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Findings, KindTable};

    /// A kind written for this test alone, registered nowhere: a backend key and a hook key of
    /// its own, read by itself. Nothing under `rules/` knows of it.
    struct Shout;

    #[derive(Debug)]
    struct Volume(usize);

    #[derive(Debug)]
    struct Prefix(String);

    impl KindRules for Shout {
        fn name(&self) -> &'static str {
            "shout"
        }

        fn keys(&self) -> &'static [&'static [&'static str]] {
            &[&["volume"]]
        }

        fn hook_keys(&self) -> &'static [&'static str] {
            &["prefix"]
        }

        fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
            Some(Arc::new(Volume(table.positive("volume", 1, 5, findings)?)))
        }

        fn hook(
            &self,
            hook: &KindTable,
            _backend: &Arc<dyn KindConfig>,
            findings: &mut Findings,
        ) -> Option<Arc<dyn KindConfig>> {
            match hook.string("prefix", findings).ok()? {
                Some(prefix) => Some(Arc::new(Prefix(prefix.value))),
                None => {
                    findings.error(hook.at.clone(), format!("hook `{}` needs a prefix", hook.name));
                    None
                }
            }
        }
    }

    impl Deliver for Shout {
        type Backend = Volume;
        type Target = Prefix;

        fn render(&self, volume: &Volume, _hook: &Hook, message: Message) -> Vec<String> {
            vec![format!("{}{}", message.text.to_uppercase(), "!".repeat(volume.0))]
        }

        async fn send(&self, _volume: &Volume, _prefix: &Prefix, _post: Outgoing<'_>) -> Exchange {
            Exchange { upstream: Upstream::Logged, result: Ok(()) }
        }
    }

    static SHOUT: Shout = Shout;

    fn load(text: &str) -> Result<crate::rules::Rules, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), text).unwrap();
        let kinds: [&dyn KindRules; 2] = [&crate::delivery::mattermost::Mattermost, &SHOUT];
        crate::rules::load(dir.path(), &kinds).map_err(|problems| problems.iter().map(|p| p.message.clone()).collect())
    }

    const BACKENDS: &str = "[backends.loud]\nkind = \"shout\"\nvolume = 3\n\
        [backends.chat]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1:1\"\n";

    #[test]
    fn statuses_map_to_the_table_of_every_http_kind() {
        let cases = [
            (200, None, Ok(())),
            (201, None, Ok(())),
            (400, None, Err(Undelivered::Refused)),
            (403, None, Err(Undelivered::Forbidden)),
            (404, None, Err(Undelivered::NotFound)),
            (413, None, Err(Undelivered::TooLarge)),
            (429, Some(30), Err(Undelivered::RateLimited { retry_after: 30 })),
            (429, None, Err(Undelivered::RateLimited { retry_after: 1 })),
            (429, Some(0), Err(Undelivered::RateLimited { retry_after: 1 })),
            (401, None, Err(Undelivered::Error(401))),
            (301, None, Err(Undelivered::Error(301))),
            (500, None, Err(Undelivered::Error(500))),
            (501, None, Err(Undelivered::Error(501))),
        ];
        for (status, retry_after, want) in cases {
            assert_eq!(Undelivered::from_status(status, retry_after), want, "{status} {retry_after:?}");
        }
    }

    #[test]
    fn a_kind_reads_its_own_hook_keys_and_no_file_of_rules_knows_it() {
        let rules =
            load(&format!("{BACKENDS}[[hooks]]\nname = \"a\"\nkey = \"k\"\nbackend = \"loud\"\nprefix = \">\"\n"))
                .unwrap();
        let (backend, hook) = (&rules.backends[rules.backend_index("loud").unwrap()], &rules.hooks[0]);
        assert_eq!(backend.kind, "shout");
        let prefix = hook.target.clone().into_any().downcast::<Prefix>().expect("the hook's part is the kind's own");
        assert_eq!(prefix.0, ">");
        let bound = SHOUT.bind(&backend.config, &hook.target).expect("its own configs bind");
        let message = Message { text: "deploy done".into(), ..Message::default() };
        assert_eq!(bound.render(hook, message), ["DEPLOY DONE!!!"]);

        // Its keys are its own: on another kind's hook they mean nothing, and the other way round.
        let other = "[[hooks]]\nname = \"b\"\nkey = \"k2\"\nbackend = \"chat\"\nbackend_key = \"x\"\nprefix = \">\"\n";
        assert_eq!(
            load(&format!("{BACKENDS}{other}")).unwrap_err(),
            ["hook `b`: prefix has no meaning for a mattermost backend"]
        );
        let wrong = "[[hooks]]\nname = \"a\"\nkey = \"k\"\nbackend = \"loud\"\nprefix = \">\"\nbackend_key = \"x\"\n";
        assert_eq!(
            load(&format!("{BACKENDS}{wrong}")).unwrap_err(),
            ["hook `a`: backend_key has no meaning for a shout backend"]
        );
        let missing = "[[hooks]]\nname = \"a\"\nkey = \"k\"\nbackend = \"loud\"\n";
        assert_eq!(load(&format!("{BACKENDS}{missing}")).unwrap_err(), ["hook `a` needs a prefix"]);
        let loud = "[backends.loud]\nkind = \"shout\"\nvolume = 9\n";
        assert_eq!(load(loud).unwrap_err(), ["volume must be between 1 and 5, not 9"]);
    }
}
