//! Backends and hooks: each backend table read by its kind, each hook with its key, policy and
//! the keys its backend's kind reads.

use super::parts::Part;
use super::{one_of, positive, Merger};
use crate::rules::hook::{ChannelMap, Defaults, Delivery, Hook, Policy, RateLimit, DEFAULT_BURST, DEFAULT_RATE};
use crate::rules::keys::{self, Digest};
use crate::rules::kind::{KindRules, KindTable, Value, Written};
use crate::rules::schema::{Item, RawBackend, RawHook, HOOK_KEYS};
use crate::rules::{Backend, Findings};
use regex::Regex;
use std::sync::Arc;
use toml::Spanned;

impl Merger<'_> {
    /// A backend table: `kind` picks the kind, which reads the rest. A key another kind reads has
    /// no meaning here; a key no kind reads is unknown.
    pub(super) fn add_backend(&mut self, file: &Part, name: &str, raw: &Spanned<RawBackend>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = self.backend_seen.get(name) {
            findings.error(at, format!("backend `{name}` is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let Some(kind_value) = raw.get("kind") else {
            findings.error(at, format!("backend `{name}`: missing field `kind`"));
            return;
        };
        let names: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        let Some(kind) = kind_value.get_ref().as_str().and_then(|k| self.kinds.iter().find(|kind| kind.name() == k))
        else {
            let written = kind_value.get_ref().written();
            findings.error(file.at(kind_value), format!("unknown variant `{written}`, expected {}", one_of(&names)));
            return;
        };
        let before = findings.problems.len();
        let entries = raw.iter().filter(|(key, _)| *key != "kind");
        let keys = self.kind_keys(file, Place::Backend, name, Some(*kind), entries, findings);
        if findings.problems.len() > before {
            return;
        }
        let table = KindTable {
            what: Place::Backend.what(),
            name: name.to_owned(),
            at: at.clone(),
            dir: self.dir.to_owned(),
            keys,
        };
        if let Some(config) = kind.backend(&table, findings) {
            self.backend_seen.insert(name.to_owned(), (self.backends.len(), at));
            self.backends.push(Backend { name: name.to_owned(), kind: kind.name(), config });
        }
    }

    /// The keys of a backend table or a hook beyond the common ones, sorted: those `kind` reads
    /// there are kept for it; one another kind reads has no meaning here; one no kind reads is
    /// unknown. `kind` is `None` for a hook whose backend is missing (already reported): only
    /// keys no kind reads are reported then.
    fn kind_keys<'a>(
        &self,
        file: &Part,
        place: Place,
        name: &str,
        kind: Option<&dyn KindRules>,
        entries: impl IntoIterator<Item = (&'a String, &'a Spanned<Item>)>,
        findings: &mut Findings,
    ) -> Vec<(String, Written<Value>)> {
        let mut keys = Vec::new();
        for (key, value) in entries {
            let at = file.at(value);
            let anyone = self.kinds.iter().any(|k| place.reads(*k, key));
            match kind {
                Some(kind) if place.reads(kind, key) => keys.push((key.clone(), file.located(value))),
                Some(kind) if anyone => {
                    let what = place.what();
                    findings.error(at, format!("{what} `{name}`: {key} has no meaning for a {} backend", kind.name()));
                }
                None if anyone => {}
                _ => {
                    let own = kind.map_or_else(Vec::new, |kind| place.keys(kind));
                    let known: Vec<&str> = place.common().iter().copied().chain(own).collect();
                    findings.error(at, format!("unknown field `{key}`, expected {}", one_of(&known)));
                }
            }
        }
        keys
    }

    pub(super) fn add_hook(&mut self, file: &Part, raw: &Spanned<RawHook>, findings: &mut Findings) {
        let hook = raw.get_ref();
        let at = file.at(&hook.name);
        let name = hook.name.get_ref();
        let before = findings.problems.len();
        if !valid_name(name) {
            findings.error(
                at.clone(),
                format!("hook name {name:?} must be 1-64 characters of A-Z a-z 0-9 _ . - and not `unknown` or `all`"),
            );
        }
        if let Some(first) = self.hook_names.get(name) {
            findings.error(at.clone(), format!("hook `{name}` is defined twice; first at {first}"));
        }
        if hook.key.is_none() && hook.bot_token.is_none() {
            findings.error(at.clone(), format!("hook `{name}` needs a key, a bot_token, or both"));
        }
        let digest = hook.key.as_ref().map(|key| self.secret(file, name, "key", key, findings));
        let token = hook.bot_token.as_ref().map(|token| self.secret(file, name, "bot_token", token, findings));
        if let Some(token) = &hook.bot_token {
            self.bot_needs(file, name, token, hook, findings);
        }
        let backend = self.backend_seen.get(hook.backend.get_ref()).map(|(i, _)| &self.backends[*i]);
        let target = match backend {
            None => {
                findings.error(
                    file.at(&hook.backend),
                    format!("hook `{name}` names backend `{}`, which is not defined", hook.backend.get_ref()),
                );
                self.kind_keys(file, Place::Hook, name, None, hook.kind_keys.iter().map(|(k, v)| (k, v)), findings);
                None
            }
            Some(backend) => {
                let kind = self.kinds.iter().copied().find(|k| k.name() == backend.kind);
                let keys =
                    self.kind_keys(file, Place::Hook, name, kind, hook.kind_keys.iter().map(|(k, v)| (k, v)), findings);
                let table = KindTable {
                    what: Place::Hook.what(),
                    name: name.clone(),
                    at: at.clone(),
                    dir: self.dir.to_owned(),
                    keys,
                };
                kind.and_then(|kind| kind.hook(&table, &backend.config, findings))
            }
        };
        let policy = hook_policy(file, name, hook, findings);
        let rate = match &hook.rate {
            None => Some(DEFAULT_RATE),
            Some(r) if r.get_ref().is_finite() && (0.0..=1e6).contains(r.get_ref()) => Some(*r.get_ref()),
            Some(r) => {
                findings
                    .error(file.at(r), format!("rate must be between 0 (unlimited) and 1000000, not {}", r.get_ref()));
                None
            }
        };
        let burst = match &hook.burst {
            None => Some(DEFAULT_BURST as usize),
            Some(b) => positive(file, b, "burst", 1_000_000, findings),
        };
        if findings.problems.len() > before {
            return;
        }
        let (Some(target), Some(policy), Some(rate), Some(burst)) = (target, policy, rate, burst) else {
            return;
        };
        // A secret that could not be read was reported above, so none is missing here.
        let (digest, token) = (digest.flatten(), token.flatten());
        self.hook_names.insert(name.clone(), at.clone());
        if let Some(digest) = digest {
            self.hook_keys.insert(digest, (name.clone(), at.clone()));
        }
        if let Some(token) = token {
            self.hook_tokens.insert(token, (name.clone(), at.clone()));
        }
        self.hooks.push((
            Hook {
                name: name.clone(),
                backend: hook.backend.get_ref().clone(),
                target,
                markup: hook.markup,
                policy,
                slack: Arc::default(),
                limit: RateLimit { rate, burst: burst as u32 },
                delivery: hook.delivery,
            },
            digest,
            token,
        ));
    }

    /// The digest of a hook's `key` or `bot_token` as written (a `sha256:` digest, or the plain
    /// secret, which warns), checked against every hook's of the same kind. `None` inside when it
    /// cannot be used (reported).
    fn secret(
        &self,
        file: &Part,
        name: &str,
        what: &str,
        written: &Spanned<String>,
        findings: &mut Findings,
    ) -> Option<Digest> {
        let at = file.at(written);
        let digest = match keys::parse_rule_key(written.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                let what = if what == "key" { String::new() } else { format!("{what}: ") };
                findings.error(at, format!("hook `{name}`: {what}{e}"));
                return None;
            }
        };
        if !written.get_ref().starts_with("sha256:") {
            findings.warn(
                at.clone(),
                format!(
                    "hook `{name}` stores its {what} in plain text; store the output of `hookgate hash-key` instead"
                ),
            );
        }
        let seen = if what == "key" { &self.hook_keys } else { &self.hook_tokens };
        if let Some((other, first)) = seen.get(&digest) {
            findings.error(at, format!("hook `{name}` has the same {what} as hook `{other}` at {first}"));
            return None;
        }
        Some(digest)
    }

    /// What a hook with a `bot_token` needs: a spool to keep its messages' `ts` in
    /// (docs/webapi.md, "Rules"), `[spool]` or the one `delivery = "spool"` opens.
    fn bot_needs(&self, file: &Part, name: &str, token: &Spanned<String>, hook: &RawHook, findings: &mut Findings) {
        if self.spool.is_none() && hook.delivery != Delivery::Spool {
            findings.error(
                file.at(token),
                format!("hook `{name}` has a bot_token, which needs [spool] to keep the ts of its messages"),
            );
        }
    }
}

/// A hook's defaults, overrides, channel rules and props limit, with every regex compiled.
fn hook_policy(file: &Part, name: &str, hook: &RawHook, findings: &mut Findings) -> Option<Policy> {
    let before = findings.problems.len();
    let regex = |written: &Spanned<String>, what: &str, findings: &mut Findings| match Regex::new(written.get_ref()) {
        Ok(r) => Some(r),
        Err(e) => {
            findings.error(file.at(written), format!("hook `{name}`: invalid {what} regex: {e}"));
            None
        }
    };
    let mut policy = Policy {
        defaults: Defaults {
            channel: hook.channel.clone(),
            username: hook.username.clone(),
            icon_url: hook.icon_url.clone(),
        },
        ..Policy::default()
    };
    if let Some(overrides) = &hook.overrides {
        policy.username = overrides.username;
        policy.icon = overrides.icon;
        policy.channel = overrides.channel;
        policy.channels = overrides
            .channels
            .as_ref()
            .map(|patterns| patterns.iter().filter_map(|p| regex(p, "channels", findings)).collect());
    }
    for rule in &hook.channel_map {
        if let Some(pattern) = regex(&rule.pattern, "channel_map match", findings) {
            if let Err(e) = check_replacement(&pattern, rule.to.get_ref()) {
                findings.error(file.at(&rule.to), format!("hook `{name}`: channel_map to: {e}"));
            }
            policy.channel_map.push(ChannelMap { pattern, to: rule.to.get_ref().clone() });
        }
    }
    if let Some(max) = &hook.max_props_bytes {
        policy.max_props_bytes = positive(file, max, "max_props_bytes", 1 << 26, findings)?;
    }
    (findings.problems.len() == before).then_some(policy)
}

/// Refuses `$N`, `${N}` and `${name}` references to groups the pattern does not have: the regex
/// crate would silently replace them with nothing.
fn check_replacement(pattern: &Regex, to: &str) -> Result<(), String> {
    let names: Vec<&str> = pattern.capture_names().flatten().collect();
    let mut rest = to;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        }
        let (group, tail) = match rest.strip_prefix('{') {
            Some(braced) => match braced.split_once('}') {
                Some((group, tail)) => (group, tail),
                None => return Err(format!("unclosed ${{ in {to:?}")),
            },
            None => {
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let known = match group.parse::<usize>() {
            Ok(n) => n < pattern.captures_len(),
            Err(_) => names.contains(&group),
        };
        if !known {
            return Err(format!(
                "{to:?} refers to group {group:?}, which the pattern does not have (write $$ for a literal $)"
            ));
        }
        rest = tail;
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "unknown"
        && name != "all"
}

/// Where a kind's keys are written: a backend table, or a hook of one of its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Backend,
    Hook,
}

impl Place {
    /// As messages name it.
    fn what(self) -> &'static str {
        match self {
            Place::Backend => "backend",
            Place::Hook => "hook",
        }
    }

    /// The keys every table of this place has, whatever its kind.
    fn common(self) -> &'static [&'static str] {
        match self {
            Place::Backend => &["kind"],
            Place::Hook => HOOK_KEYS,
        }
    }

    /// Whether `kind` reads `key` here.
    fn reads(self, kind: &dyn KindRules, key: &str) -> bool {
        match self {
            Place::Backend => kind.keys().iter().any(|group| group.contains(&key)),
            Place::Hook => kind.hook_keys().contains(&key),
        }
    }

    /// Every key `kind` reads here, in the order it lists them.
    fn keys(self, kind: &dyn KindRules) -> Vec<&'static str> {
        match self {
            Place::Backend => kind.keys().concat(),
            Place::Hook => kind.hook_keys().to_vec(),
        }
    }
}
