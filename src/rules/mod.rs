//! Rules: the rules directory read into validated, typed values.
//!
//! `load` is the only way in; `hookgate check`, `serve` and reloads all go through it, so every
//! place that sees a `Rules` can trust it.

mod load;
mod schema;

pub use load::load;
pub use schema::{ErrorDialect, Markup};

use crate::backend::mattermost::MattermostBackend;
use crate::keys::{Digest, KeyTable};
use crate::policy::HookPolicy;
use crate::translate::SlackMaps;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A validated rule set.
#[derive(Debug)]
pub struct Rules {
    pub gateway: Gateway,
    pub backends: Vec<Backend>,
    pub hooks: Vec<Hook>,
    keys: KeyTable,
    /// Things that work but deserve attention (keys stored in plain text).
    pub warnings: Vec<Problem>,
}

impl Rules {
    /// The hook whose key has this digest.
    pub fn hook_by_digest(&self, digest: &Digest) -> Option<&Hook> {
        self.hook_index(digest).map(|i| &self.hooks[i])
    }

    /// The index in `hooks` of the hook whose key has this digest.
    pub fn hook_index(&self, digest: &Digest) -> Option<usize> {
        self.keys.find(digest)
    }

    pub fn backend(&self, hook: &Hook) -> &Backend {
        &self.backends[hook.backend]
    }
}

/// The `[gateway]` table with defaults applied.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub listen: String,
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

impl Gateway {
    /// The admin listener serves metrics without authentication, so it stays on loopback unless
    /// the rules say otherwise.
    pub fn check_admin_listen(&self) -> Result<(), String> {
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

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            listen: "127.0.0.1:8065".into(),
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

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub kind: BackendKind,
}

#[derive(Debug)]
pub enum BackendKind {
    Mattermost(MattermostBackend),
    Log,
}

/// One `[[hooks]]` entry.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    /// Index into `Rules::backends`.
    pub backend: usize,
    /// The backend's own hook id (mattermost backends); empty for `log`.
    pub backend_key: String,
    pub channel: String,
    pub username: String,
    pub icon_url: String,
    pub markup: Markup,
    pub policy: HookPolicy,
    /// The rules' `[slack.users]` and `[slack.channels]`, shared by every hook.
    pub slack: Arc<SlackMaps>,
    /// Sustained messages per second; 0 is unlimited.
    pub rate: f64,
    /// Messages allowed at once before `rate` applies.
    pub burst: u32,
}

impl Default for Hook {
    fn default() -> Self {
        Hook {
            name: String::new(),
            backend: 0,
            backend_key: String::new(),
            channel: String::new(),
            username: String::new(),
            icon_url: String::new(),
            markup: Markup::default(),
            policy: HookPolicy::default(),
            slack: Arc::default(),
            rate: crate::ratelimit::DEFAULT_RATE,
            burst: crate::ratelimit::DEFAULT_BURST,
        }
    }
}

/// Where something is written: `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
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

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}
