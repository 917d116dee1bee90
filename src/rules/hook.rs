//! A hook as the stages see it, and every default a hook takes when its rules say nothing.
//!
//! Each stage takes only its part: translation the `Markup` and the `SlackMaps`, the policy the
//! `Policy`, the rate limiter the `RateLimit`, delivery the backend name and the `target`.

use super::kind::KindConfig;
use regex::Regex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Slack's limits for incoming webhooks, used when a hook sets none.
pub(crate) const DEFAULT_RATE: f64 = 1.0;
pub(crate) const DEFAULT_BURST: u32 = 25;
/// `max_props_bytes` when a hook does not set it.
pub const DEFAULT_MAX_PROPS_BYTES: usize = 65_536;

/// One `[[hooks]]` entry.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    /// The name of the backend it posts to.
    pub backend: String,
    /// The hook's keys that belong to its backend's kind (Mattermost's `backend_key`), read and
    /// checked by that kind.
    pub target: Arc<dyn KindConfig>,
    pub markup: Markup,
    pub policy: Policy,
    /// The rules' `[slack.users]` and `[slack.channels]`, shared by every hook.
    pub slack: Arc<SlackMaps>,
    pub limit: RateLimit,
    pub delivery: Delivery,
}

impl Default for Hook {
    fn default() -> Self {
        Hook {
            name: String::new(),
            backend: String::new(),
            target: Arc::new(()),
            markup: Markup::default(),
            policy: Policy::default(),
            slack: Arc::default(),
            limit: RateLimit::default(),
            delivery: Delivery::default(),
        }
    }
}

/// What `200 ok` means for a hook (docs/spool.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The backend accepted the message while the client waited.
    #[default]
    Direct,
    /// The message is stored durably and will be delivered, in order, by the spool.
    Spool,
}

/// How a hook's text is read (docs/translation.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Markup {
    /// Text is Markdown already; only Mattermost's own conversions apply.
    #[default]
    Markdown,
    /// Text is Slack mrkdwn and is translated in full.
    Slack,
}

/// `[slack.users]` and `[slack.channels]`: Slack ids to backend names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackMaps {
    pub users: HashMap<String, String>,
    pub channels: HashMap<String, String>,
}

/// A hook's own values and its override rules, validated at load.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Used when a request sets none; a requested value equal to one is not an override.
    pub defaults: Defaults,
    pub username: Mode,
    pub icon: Mode,
    pub channel: Mode,
    /// Regexes an allowed channel must match, when given.
    pub channels: Option<Vec<Regex>>,
    /// Rewrites applied in order to a requested channel; the first that matches wins.
    pub channel_map: Vec<ChannelMap>,
    /// Largest accepted `props`, as compact JSON bytes.
    pub max_props_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            defaults: Defaults::default(),
            username: Mode::Allow,
            icon: Mode::Allow,
            channel: Mode::Allow,
            channels: None,
            channel_map: Vec::new(),
            max_props_bytes: DEFAULT_MAX_PROPS_BYTES,
        }
    }
}

/// The hook's `channel`, `username` and `icon_url`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    pub channel: String,
    pub username: String,
    pub icon_url: String,
}

/// What a hook does with a requested value that differs from its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Allow,
    Ignore,
    Reject,
}

#[derive(Debug, Clone)]
pub struct ChannelMap {
    pub pattern: Regex,
    /// Replacement in the regex crate's syntax (`$1`, `${name}`).
    pub to: String,
}

/// The request member an override rule concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overridable {
    Username,
    Icon,
    Channel,
    Type,
}

impl Overridable {
    pub fn as_str(self) -> &'static str {
        match self {
            Overridable::Username => "username",
            Overridable::Icon => "icon",
            Overridable::Channel => "channel",
            Overridable::Type => "type",
        }
    }
}

/// A hook's token bucket: `rate` messages a second, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained messages per second; 0 is unlimited.
    pub rate: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { rate: DEFAULT_RATE, burst: DEFAULT_BURST }
    }
}
