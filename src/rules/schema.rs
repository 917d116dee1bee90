//! The rule files as written: strict serde structs, one per TOML table.
//!
//! Unknown keys are errors (`deny_unknown_fields`) so a typo never passes silently. Values that
//! need checking beyond their type are checked in `validate`, which turns these into `Rules`.

use super::hook::{Delivery, Markup, Mode};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// One rules file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub gateway: Option<Spanned<RawGateway>>,
    #[serde(default)]
    pub backends: BTreeMap<String, Spanned<RawBackend>>,
    #[serde(default)]
    pub hooks: Vec<Spanned<RawHook>>,
    pub slack: Option<RawSlack>,
    pub spool: Option<Spanned<RawSpool>>,
    pub ratelimit: Option<Spanned<RawRateLimit>>,
}

/// `[ratelimit]`: a Redis that every instance asks, so they share each hook's bucket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub redis_url: Option<Spanned<String>>,
    pub redis_timeout_ms: Option<Spanned<i64>>,
}

/// `[spool]`: where the embedded store lives, how much it holds, how long and how often it tries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSpool {
    pub engine: Option<Spanned<String>>,
    pub nats_urls: Option<Spanned<Vec<String>>>,
    pub stream: Option<Spanned<String>>,
    pub replicas: Option<Spanned<i64>>,
    pub path: Option<Spanned<String>>,
    pub max_bytes: Option<Spanned<i64>>,
    pub max_age: Option<Spanned<String>>,
    pub retry_initial: Option<Spanned<String>>,
    pub retry_max: Option<Spanned<String>>,
}

/// `[slack.users]` and `[slack.channels]`: Slack ids to backend names, for mentions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlack {
    #[serde(default)]
    pub users: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub listen: Option<Spanned<String>>,
    pub listen_tls: Option<Spanned<String>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub errors: Option<ErrorDialect>,
    pub per_hook_metrics: Option<bool>,
    pub admin_listen_public: Option<bool>,
    pub client_header_timeout_ms: Option<Spanned<i64>>,
    pub client_body_timeout_ms: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
}

/// Which body an error response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ErrorDialect {
    /// `text/plain`, the Slack error code alone.
    #[default]
    Slack,
    /// Mattermost's JSON error object.
    Mattermost,
}

/// A backend table: `kind` and the keys that kind reads, each with its place. Which keys a
/// kind takes is its own business (`rules/kind.rs`), so they are kept as written here.
pub(crate) type RawBackend = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    pub name: Spanned<String>,
    pub key: Spanned<String>,
    pub backend: Spanned<String>,
    pub backend_key: Option<Spanned<String>>,
    pub room: Option<Spanned<String>>,
    #[serde(default)]
    pub rooms: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub icon_url: String,
    #[serde(default)]
    pub markup: Markup,
    #[serde(default)]
    pub delivery: Delivery,
    pub max_props_bytes: Option<Spanned<i64>>,
    pub rate: Option<Spanned<f64>>,
    pub burst: Option<Spanned<i64>>,
    pub overrides: Option<RawOverrides>,
    #[serde(default)]
    pub channel_map: Vec<RawChannelMap>,
}

/// `[hooks.overrides]`: per field, `allow`, `ignore` or `reject`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverrides {
    #[serde(default)]
    pub username: Mode,
    #[serde(default)]
    pub icon: Mode,
    #[serde(default)]
    pub channel: Mode,
    pub channels: Option<Vec<Spanned<String>>>,
}

/// One `[[hooks.channel_map]]` rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannelMap {
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    pub to: Spanned<String>,
}
