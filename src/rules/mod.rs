//! Rules: the rules directory read into validated, typed values, at the bottom of the house.
//!
//! `load` is the only way in; `hookgate check`, `serve` and reloads all go through it, so every
//! place that sees a `Rules` can trust it. Nothing here imports a stage: the stages import the
//! parts of a hook they need, and backend kinds are handed to the loader (`kind.rs`).

mod hook;
pub mod keys;
mod kind;
mod load;
mod schema;

pub(crate) use hook::Overridable;
pub use hook::{
    ChannelMap, Defaults, Delivery, Hook, Markup, Mode, Policy, RateLimit, SlackMaps, DEFAULT_MAX_PROPS_BYTES,
};
pub use kind::KindConfig;
pub(crate) use kind::{KindRules, KindTable, Written};
pub(crate) use load::load;
pub(crate) use schema::ErrorDialect;

use crate::tls::identity::Identity;
use keys::{Digest, KeyTable};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A validated rule set.
#[derive(Debug)]
pub struct Rules {
    pub(crate) gateway: GatewaySettings,
    pub backends: Vec<Backend>,
    pub hooks: Vec<Hook>,
    /// Set when `[spool]` is written or a hook has `delivery = "spool"`.
    pub(crate) spool: Option<SpoolSettings>,
    /// Set when `[ratelimit]` names a Redis.
    pub(crate) shared_ratelimit: Option<SharedRateLimit>,
    keys: KeyTable,
    /// The `bot_token` digests of the hooks that have one.
    tokens: KeyTable,
    backend_names: HashMap<String, usize>,
    /// Hook positions by name, made on first use: only the spool looks hooks up by name, and
    /// 100,000 hooks need not pay for the map otherwise.
    hook_names: std::sync::OnceLock<HashMap<Box<str>, usize>>,
    /// Things that work but deserve attention (keys stored in plain text).
    pub warnings: Vec<Problem>,
}

impl Rules {
    /// The hook whose key has this digest.
    pub fn hook_by_digest(&self, digest: &Digest) -> Option<&Hook> {
        self.hook_index(digest).map(|i| &self.hooks[i])
    }

    /// The position in `hooks` of the hook whose key has this digest: valid for this rule set only.
    pub(crate) fn hook_index(&self, digest: &Digest) -> Option<usize> {
        self.keys.find(digest)
    }

    /// The position in `hooks` of the hook whose `bot_token` has this digest.
    pub(crate) fn hook_of_token(&self, digest: &Digest) -> Option<usize> {
        self.tokens.find(digest)
    }

    /// The position in `backends` of the backend with this name.
    pub(crate) fn backend_index(&self, name: &str) -> Option<usize> {
        self.backend_names.get(name).copied()
    }

    /// The position in `hooks` of the hook named `name`: valid for this rule set only.
    pub(crate) fn hook_named(&self, name: &str) -> Option<usize> {
        let names = self
            .hook_names
            .get_or_init(|| self.hooks.iter().enumerate().map(|(i, h)| (h.name.as_str().into(), i)).collect());
        names.get(name).copied()
    }
}

/// Where webhooks are served when the rules name no listener.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8065";

/// `listen_tls` with its certificates (`tls_cert` and `tls_key`, then each of `tls_certs`), read
/// and checked.
#[derive(Debug, Clone)]
pub(crate) struct TlsListener {
    /// As written: the `listener` label of `hookgate_tls_cert_expiry_seconds`.
    pub listen: String,
    /// At least one; the first serves clients whose SNI name no certificate is for.
    pub certificates: Vec<ServedCertificate>,
}

/// One certificate of the HTTPS listener.
#[derive(Debug, Clone)]
pub(crate) struct ServedCertificate {
    /// Its `cert` as written: the `certificate` label of `hookgate_tls_cert_expiry_seconds`.
    pub cert: String,
    pub identity: Identity,
}

impl TlsListener {
    /// The set new handshakes choose from.
    pub fn serving(&self) -> Option<crate::tls::listener::Certificates> {
        let identities: Vec<&Identity> = self.certificates.iter().map(|c| &c.identity).collect();
        crate::tls::listener::Certificates::new(&identities)
    }
}

/// `[spool]` with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpoolSettings {
    pub engine: SpoolEngine,
    /// The store's directory, resolved against the rules directory.
    pub path: std::path::PathBuf,
    /// Stored payload bytes past which spooled requests are refused.
    pub max_bytes: u64,
    /// A message not delivered by then becomes a dead letter.
    pub max_age: Duration,
    /// How long the Web API's message map remembers a `ts` (docs/webapi.md).
    pub message_max_age: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl SpoolSettings {
    /// The defaults, with the store in `spool/` beside the rules.
    pub(crate) fn new(rules_dir: &std::path::Path) -> SpoolSettings {
        SpoolSettings {
            engine: SpoolEngine::Embedded,
            path: rules_dir.join("spool"),
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(72 * 3600),
            message_max_age: Duration::from_secs(30 * 24 * 3600),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
        }
    }
}

/// Where the spool keeps its jobs: `[spool] engine`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SpoolEngine {
    /// SQLite in `path`, on this machine.
    Embedded,
    /// A JetStream stream that several instances share.
    Nats(NatsSettings),
}

/// `[spool] engine = "nats"`: the servers and the stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NatsSettings {
    pub urls: Vec<String>,
    /// The work-queue stream; dead letters go to `{stream}_DEAD`.
    pub stream: String,
    pub replicas: usize,
}

/// `[ratelimit]`: where the shared buckets live and how long a request waits for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedRateLimit {
    pub redis_url: String,
    /// Past it, the local bucket decides alone.
    pub timeout: Duration,
}

/// `redis_timeout_ms` when unset: a small part of a webhook's usual answer time.
pub(crate) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// The `[gateway]` table with defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct GatewaySettings {
    /// The plain HTTP listener; none when only `listen_tls` is written.
    pub listen: Option<String>,
    /// The HTTPS listener and the certificate it serves.
    pub tls: Option<TlsListener>,
    pub admin_listen: String,
    pub max_body_bytes: usize,
    pub errors: ErrorDialect,
    /// Label metrics by hook name; false collapses every hook to `hook="all"`.
    pub per_hook_metrics: bool,
    /// Allow `admin_listen` on an address other than loopback.
    pub admin_listen_public: bool,
    /// Longest wait for a request head, idle keep-alive time included.
    pub client_header_timeout: Duration,
    /// Longest time to receive a whole body once the head has arrived.
    pub client_body_timeout: Duration,
    /// Client connections open at once; more are answered 503 `overloaded`.
    pub max_connections: usize,
}

impl GatewaySettings {
    /// The webhook listeners' addresses, plain first.
    pub(crate) fn webhook_listeners(&self) -> impl Iterator<Item = &str> {
        self.listen.as_deref().into_iter().chain(self.tls.as_ref().map(|t| t.listen.as_str()))
    }

    /// The admin listener serves metrics without authentication, so it stays on loopback unless
    /// the rules say otherwise.
    pub(crate) fn check_admin_listen(&self) -> Result<(), String> {
        let addr: std::net::SocketAddr = self
            .admin_listen
            .parse()
            .map_err(|_| format!("admin_listen {:?} is not an IP:PORT address", self.admin_listen))?;
        if addr.ip().is_loopback() || self.admin_listen_public {
            Ok(())
        } else {
            Err(format!(
                "admin_listen {} is not a loopback address; set admin_listen_public = true to serve metrics there",
                self.admin_listen
            ))
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            listen: Some(DEFAULT_LISTEN.into()),
            tls: None,
            admin_listen: "127.0.0.1:9465".into(),
            max_body_bytes: 300_000,
            errors: ErrorDialect::Slack,
            per_hook_metrics: true,
            admin_listen_public: false,
            client_header_timeout: Duration::from_secs(60),
            client_body_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// A `[backends.NAME]` table, read by its kind.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    /// The kind's name, as written in `kind = "..."`.
    pub kind: &'static str,
    pub(crate) config: Arc<dyn KindConfig>,
}

/// Problems and warnings found while loading, each with its place.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Findings {
    pub(crate) fn error(&mut self, at: Location, message: String) {
        self.problems.push(Problem::at(at, message));
    }

    /// A warning; its message starts with `warning:`.
    pub(crate) fn warn(&mut self, at: Location, message: String) {
        self.warnings.push(Problem::at(at, format!("warning: {message}")));
    }

    /// `n` when it is between 1 and `max`; reported otherwise.
    pub(crate) fn positive(&mut self, at: &Location, field: &str, n: i64, max: i64) -> Option<i64> {
        if n < 1 || n > max {
            self.error(at.clone(), format!("{field} must be between 1 and {max}, not {n}"));
            return None;
        }
        Some(n)
    }
}

/// Where something is written: `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One thing wrong with the rules, located where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    pub at: Option<Location>,
    /// The file or directory when there is no line to point at.
    pub path: String,
    pub message: String,
}

impl Problem {
    /// A problem at a line of a file.
    pub(crate) fn at(at: Location, message: String) -> Problem {
        Problem { path: at.file.to_string(), at: Some(at), message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}
