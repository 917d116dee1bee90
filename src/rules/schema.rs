//! The rule files as written: strict serde structs, one per TOML table.
//!
//! Unknown keys are errors (`deny_unknown_fields`) so a typo never passes silently. A backend
//! table and a hook keep the keys that belong to a kind as written (`Item`), for the loader to
//! hand to the kind that reads them (`rules/kind.rs`); the loader reports the keys no kind reads.
//! Values that need checking beyond their type are checked in `load.rs`, which turns these into
//! `Rules`.

use super::hook::{Delivery, Markup, Mode};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// One rules file, or one part of it (`load/parts.rs`). The sections a file has once are boxed:
/// a part parsed at once (one with other sections, or one the cutter is unsure of) is kept until
/// the hooks are read, and inline they made each such part 968 bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub gateway: Option<Box<Spanned<RawGateway>>>,
    #[serde(default)]
    pub backends: BTreeMap<String, Spanned<RawBackend>>,
    #[serde(default)]
    pub hooks: Vec<Spanned<RawHook>>,
    pub slack: Option<Box<RawSlack>>,
    pub spool: Option<Box<Spanned<RawSpool>>>,
    pub ratelimit: Option<Box<Spanned<RawRateLimit>>>,
}

/// A part of a file holding hooks and nothing else (`load/parts.rs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    pub hooks: Vec<Spanned<RawHook>>,
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
    pub message_max_age: Option<Spanned<String>>,
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
    pub tls_certs: Option<Vec<Spanned<RawCertPair>>>,
    pub admin_listen: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub errors: Option<ErrorDialect>,
    pub per_hook_metrics: Option<bool>,
    pub admin_listen_public: Option<bool>,
    pub client_header_timeout_ms: Option<Spanned<i64>>,
    pub client_body_timeout_ms: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
}

/// One entry of `tls_certs`: a certificate chain and its key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertPair {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
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
pub(crate) type RawBackend = BTreeMap<String, Spanned<Item>>;

/// A TOML value as written, with the place of each of its parts: the entries of a kind's table
/// keep their own lines, which `toml::Value` would lose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Array(Vec<Spanned<Item>>),
    Table(Vec<(String, Spanned<Item>)>),
}

impl Item {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Item::String(s) => Some(s),
            _ => None,
        }
    }

    /// As a message quotes it: a string as it is, a number or boolean as written, a list or
    /// table by what it is.
    pub(crate) fn written(&self) -> String {
        match self {
            Item::String(s) => s.clone(),
            Item::Integer(n) => n.to_string(),
            Item::Float(x) => x.to_string(),
            Item::Boolean(b) => b.to_string(),
            Item::Array(_) => "an array".into(),
            Item::Table(_) => "a table".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Item, E> {
        Ok(Item::Boolean(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Item, E> {
        Ok(Item::Integer(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Item, E> {
        i64::try_from(n).map(Item::Integer).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Item, E> {
        Ok(Item::Float(x))
    }

    fn visit_str<E>(self, s: &str) -> Result<Item, E> {
        Ok(Item::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Item, E> {
        Ok(Item::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Item::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Item::Table(entries))
    }
}

/// A `[[hooks]]` entry: the keys every hook has, typed, and the rest kept as written for the
/// hook's backend kind (`kind_keys`).
#[derive(Debug)]
pub(crate) struct RawHook {
    pub name: Spanned<String>,
    /// The webhook key; a hook has a key, a `bot_token`, or both.
    pub key: Option<Spanned<String>>,
    /// The Web API's bearer token (docs/webapi.md).
    pub bot_token: Option<Spanned<String>>,
    pub backend: Spanned<String>,
    pub channel: String,
    pub username: String,
    pub icon_url: String,
    pub markup: Markup,
    pub delivery: Delivery,
    pub max_props_bytes: Option<Spanned<i64>>,
    pub rate: Option<Spanned<f64>>,
    pub burst: Option<Spanned<i64>>,
    pub overrides: Option<RawOverrides>,
    pub channel_map: Vec<RawChannelMap>,
    /// Every other key, in the order written: a kind's, or unknown.
    pub kind_keys: Vec<(String, Spanned<Item>)>,
}

/// The keys every hook has, whatever its backend's kind.
pub(crate) const HOOK_KEYS: &[&str] = &[
    "name",
    "key",
    "bot_token",
    "backend",
    "channel",
    "username",
    "icon_url",
    "markup",
    "delivery",
    "max_props_bytes",
    "rate",
    "burst",
    "overrides",
    "channel_map",
];

impl<'de> Deserialize<'de> for RawHook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawHook, D::Error> {
        deserializer.deserialize_map(HookVisitor)
    }
}

struct HookVisitor;

impl<'de> Visitor<'de> for HookVisitor {
    type Value = RawHook;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a hook table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHook, A::Error> {
        let (mut name, mut key, mut bot_token, mut backend) = (None, None, None, None);
        let (mut channel, mut username, mut icon_url, mut markup, mut delivery) = (None, None, None, None, None);
        let (mut max_props_bytes, mut rate, mut burst, mut overrides, mut channel_map) = (None, None, None, None, None);
        let mut kind_keys = Vec::new();
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                "name" => name = Some(map.next_value()?),
                "key" => key = Some(map.next_value()?),
                "bot_token" => bot_token = Some(map.next_value()?),
                "backend" => backend = Some(map.next_value()?),
                "channel" => channel = Some(map.next_value()?),
                "username" => username = Some(map.next_value()?),
                "icon_url" => icon_url = Some(map.next_value()?),
                "markup" => markup = Some(map.next_value()?),
                "delivery" => delivery = Some(map.next_value()?),
                "max_props_bytes" => max_props_bytes = Some(map.next_value()?),
                "rate" => rate = Some(map.next_value()?),
                "burst" => burst = Some(map.next_value()?),
                "overrides" => overrides = Some(map.next_value()?),
                "channel_map" => channel_map = Some(map.next_value()?),
                _ => kind_keys.push((field, map.next_value()?)),
            }
        }
        // A hook parsed with its part is kept until every part is read: its one or two kind
        // keys, not the four a first push makes room for.
        kind_keys.shrink_to_fit();
        Ok(RawHook {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            key,
            bot_token,
            backend: backend.ok_or_else(|| de::Error::missing_field("backend"))?,
            channel: channel.unwrap_or_default(),
            username: username.unwrap_or_default(),
            icon_url: icon_url.unwrap_or_default(),
            markup: markup.unwrap_or_default(),
            delivery: delivery.unwrap_or_default(),
            max_props_bytes,
            rate,
            burst,
            overrides,
            channel_map: channel_map.unwrap_or_default(),
            kind_keys,
        })
    }
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
