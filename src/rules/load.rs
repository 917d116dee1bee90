//! Reads every `*.toml` in the rules directory (in name order), merges them and validates the
//! result, collecting every problem rather than stopping at the first.
//!
//! Loading is linear in the size of the rules: places come from each file's index of line
//! starts, and duplicates are found through maps, so no hook is compared with every other.

use super::hook::{ChannelMap, Defaults, Hook, Policy, RateLimit, SlackMaps, DEFAULT_BURST, DEFAULT_RATE};
use super::keys::{self, Digest, KeyTable};
use super::kind::{self, KindRules, KindTable, Value, Written};
use super::schema::{Item, RawBackend, RawFile, RawGateway, RawHook, RawRateLimit, RawSlack, RawSpool, HOOK_KEYS};
use super::{
    Backend, Delivery, Findings, GatewaySettings, Location, NatsSettings, Problem, Rules, SharedRateLimit, SpoolEngine,
    SpoolSettings, TlsListener, DEFAULT_REDIS_TIMEOUT,
};
use crate::tls::identity::{Identity, IdentityError};
use regex::Regex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// Loads and validates the rules directory, reading backend tables with `kinds`. On failure,
/// every problem found is returned.
pub(crate) fn load(dir: &Path, kinds: &[&dyn KindRules]) -> Result<Rules, Vec<Problem>> {
    let mut files = Vec::new();
    let mut findings = Findings::default();
    let dir_text = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(vec![problem_at_path(&dir_text, format!("cannot read rules directory: {e}"))]),
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![problem_at_path(&dir_text, "no *.toml rule files".into())]);
    }
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Err(e) => findings.problems.push(problem_at_path(&name, format!("cannot read: {e}"))),
            Ok(text) => {
                let lines = Arc::new(LineIndex::new(&text));
                let name: Arc<str> = name.into();
                for (start, end) in parts(&text) {
                    match toml::from_str::<RawFile>(&text[start..end]) {
                        Ok(raw) => {
                            files.push(SourceFile { name: name.clone(), lines: lines.clone(), offset: start, raw })
                        }
                        Err(e) => {
                            let line = lines.line(start + e.span().map_or(0, |s| s.start));
                            findings.error(Location { file: name.clone(), line }, e.message().trim_end().to_owned());
                        }
                    }
                }
            }
        }
    }
    let merged = Merger::new(kinds, dir).merge(&files, &mut findings);
    if !findings.problems.is_empty() {
        return Err(findings.problems);
    }
    merged.ok_or_else(|| vec![problem_at_path(&dir_text, "no rules were loaded".into())])
}

/// One part of a rules file, parsed on its own (see `parts`).
struct SourceFile {
    name: Arc<str>,
    lines: Arc<LineIndex>,
    /// Where the part starts in its file.
    offset: usize,
    raw: RawFile,
}

impl SourceFile {
    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        Location { file: self.name.clone(), line: self.lines.line(self.offset + spanned.span().start) }
    }

    /// A value as written, each part with its `FILE:LINE`.
    fn located(&self, item: &Spanned<Item>) -> Written<Value> {
        let value = match item.get_ref() {
            Item::String(s) => Value::String(s.clone()),
            Item::Integer(n) => Value::Integer(*n),
            Item::Boolean(b) => Value::Boolean(*b),
            Item::Float(_) | Item::Array(_) => Value::Other,
            Item::Table(entries) => Value::Table(entries.iter().map(|(k, i)| (k.clone(), self.located(i))).collect()),
        };
        Written { value, at: self.at(item) }
    }
}

/// A file cut before each top-level `[[hooks]]` header, as (start, end) byte ranges. Each part is
/// a TOML document of its own (a hook's sub-tables follow its header), and parsing them one by
/// one keeps one hook's parse tree in memory instead of the whole file's: 301 MB for a file of
/// 100,000 hooks. Headers are found with TOML's own lexer, so a string or a comment that holds
/// `[[hooks]]` is never taken for one.
fn parts(text: &str) -> Vec<(usize, usize)> {
    use toml_parser::lexer::TokenKind;
    /// How far into `[[hooks]]` the tokens at the start of a line have got.
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        LineStart,
        Elsewhere,
        Open(usize),
        OpenOpen(usize),
        Name(usize),
        Close(usize),
    }
    let mut cuts = vec![0];
    let mut seen = Seen::LineStart;
    for token in toml_parser::Source::new(text).lex() {
        let span = token.span();
        let kind = token.kind();
        seen = match (seen, kind) {
            (_, TokenKind::Newline) => Seen::LineStart,
            (Seen::LineStart, TokenKind::Whitespace) => Seen::LineStart,
            (Seen::LineStart, TokenKind::LeftSquareBracket) => Seen::Open(span.start()),
            (Seen::Open(at), TokenKind::LeftSquareBracket) => Seen::OpenOpen(at),
            (Seen::OpenOpen(_) | Seen::Name(_), TokenKind::Whitespace) => seen,
            (Seen::OpenOpen(at), TokenKind::Atom) if &text[span.start()..span.end()] == "hooks" => Seen::Name(at),
            (Seen::Name(at), TokenKind::RightSquareBracket) => Seen::Close(at),
            (Seen::Close(at), TokenKind::RightSquareBracket) => {
                if at > 0 {
                    cuts.push(at);
                }
                Seen::Elsewhere
            }
            _ => Seen::Elsewhere,
        };
    }
    cuts.push(text.len());
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Where each line of a text starts, to turn a byte offset into a line number by binary search.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        LineIndex(std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect())
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

fn problem_at_path(path: &str, message: String) -> Problem {
    Problem { at: None, path: path.to_owned(), message }
}

struct Merger<'k> {
    kinds: &'k [&'k dyn KindRules],
    /// The rules directory: file names in the rules are relative to it.
    dir: &'k Path,
    gateway: Option<(GatewaySettings, Location)>,
    spool: Option<(SpoolSettings, Location)>,
    ratelimit: Option<(SharedRateLimit, Location)>,
    slack: SlackMaps,
    /// Where each `[slack.users]` / `[slack.channels]` id was mapped, to name duplicates.
    slack_seen: HashMap<(&'static str, String), Location>,
    backends: Vec<Backend>,
    /// Each backend's position and place, by name.
    backend_seen: HashMap<String, (usize, Location)>,
    hooks: Vec<(Hook, Digest)>,
    /// Where each hook name and key digest was first written.
    hook_names: HashMap<String, Location>,
    hook_keys: HashMap<Digest, (String, Location)>,
}

impl<'k> Merger<'k> {
    fn new(kinds: &'k [&'k dyn KindRules], dir: &'k Path) -> Merger<'k> {
        Merger {
            kinds,
            dir,
            gateway: None,
            spool: None,
            ratelimit: None,
            slack: SlackMaps::default(),
            slack_seen: HashMap::new(),
            backends: Vec::new(),
            backend_seen: HashMap::new(),
            hooks: Vec::new(),
            hook_names: HashMap::new(),
            hook_keys: HashMap::new(),
        }
    }

    fn merge(mut self, files: &[SourceFile], findings: &mut Findings) -> Option<Rules> {
        for file in files {
            if let Some(gateway) = &file.raw.gateway {
                self.add_gateway(file, gateway, findings);
            }
            for (name, backend) in &file.raw.backends {
                self.add_backend(file, name, backend, findings);
            }
            if let Some(slack) = &file.raw.slack {
                self.add_slack(file, slack, findings);
            }
            if let Some(spool) = &file.raw.spool {
                self.add_spool(file, spool, findings);
            }
            if let Some(ratelimit) = &file.raw.ratelimit {
                self.add_ratelimit(file, ratelimit, findings);
            }
        }
        // Hooks refer to backends from any file, so they are read once every backend is known.
        for file in files {
            for hook in &file.raw.hooks {
                self.add_hook(file, hook, findings);
            }
        }
        if !findings.problems.is_empty() {
            return None;
        }
        let spooled = self.hooks.iter().any(|(hook, _)| hook.delivery == Delivery::Spool);
        let spool = self.spool.map(|(s, _)| s).or_else(|| spooled.then(|| SpoolSettings::new(self.dir)));
        let keys = KeyTable::new(self.hooks.iter().map(|(_, d)| *d).collect());
        let slack = Arc::new(self.slack);
        let hooks = self
            .hooks
            .into_iter()
            .map(|(mut hook, _)| {
                hook.slack = slack.clone();
                hook
            })
            .collect();
        Some(Rules {
            gateway: self.gateway.map(|(g, _)| g).unwrap_or_default(),
            backend_names: self.backend_seen.into_iter().map(|(name, (i, _))| (name, i)).collect(),
            backends: self.backends,
            hooks,
            spool,
            shared_ratelimit: self.ratelimit.map(|(r, _)| r),
            keys,
            hook_names: std::sync::OnceLock::new(),
            warnings: std::mem::take(&mut findings.warnings),
        })
    }

    fn add_slack(&mut self, file: &SourceFile, raw: &RawSlack, findings: &mut Findings) {
        for (table, entries, target) in
            [("users", &raw.users, &mut self.slack.users), ("channels", &raw.channels, &mut self.slack.channels)]
        {
            for (id, name) in entries {
                let at = file.at(name);
                if let Some(first) = self.slack_seen.get(&(table, id.clone())) {
                    findings.error(at, format!("[slack.{table}] maps `{id}` twice; first at {first}"));
                    continue;
                }
                if name.get_ref().is_empty() {
                    findings.error(at, format!("[slack.{table}] `{id}` maps to an empty name"));
                    continue;
                }
                self.slack_seen.insert((table, id.clone()), at);
                target.insert(id.clone(), name.get_ref().clone());
            }
        }
    }

    fn add_spool(&mut self, file: &SourceFile, raw: &Spanned<RawSpool>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.spool {
            findings.error(at, format!("[spool] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let mut spool = SpoolSettings::new(self.dir);
        spool.engine = spool_engine(file, raw, findings);
        if let Some(path) = &raw.path {
            if path.get_ref().is_empty() {
                findings.error(file.at(path), "spool path must not be empty".into());
            }
            spool.path = self.dir.join(path.get_ref());
        }
        if let Some(max) = &raw.max_bytes {
            spool.max_bytes = positive(file, max, "max_bytes", i64::MAX, findings).unwrap_or(0) as u64;
        }
        for (field, value, target) in [
            ("max_age", &raw.max_age, &mut spool.max_age),
            ("retry_initial", &raw.retry_initial, &mut spool.retry_initial),
            ("retry_max", &raw.retry_max, &mut spool.retry_max),
        ] {
            let Some(value) = value else { continue };
            match humantime::parse_duration(value.get_ref()) {
                Ok(d) if !d.is_zero() => *target = d,
                _ => findings.error(
                    file.at(value),
                    format!("{field} {:?} is not a duration such as 500ms, 1s, 5m or 72h", value.get_ref()),
                ),
            }
        }
        if spool.retry_initial > spool.retry_max {
            let at = raw.retry_initial.as_ref().map_or(at.clone(), |v| file.at(v));
            findings.error(at, "retry_initial must not be longer than retry_max".into());
        }
        self.spool = Some((spool, at));
    }

    fn add_ratelimit(&mut self, file: &SourceFile, raw: &Spanned<RawRateLimit>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.ratelimit {
            findings.error(at, format!("[ratelimit] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let Some(url) = &raw.redis_url else {
            findings.error(at, "[ratelimit] needs redis_url, the Redis the instances share".into());
            return;
        };
        // Checked by the client that will use it, so what passes here also connects there.
        if let Err(e) = redis::Client::open(url.get_ref().as_str()) {
            findings.error(file.at(url), format!("redis_url {:?} is not a Redis URL: {e}", url.get_ref()));
        }
        let timeout = match &raw.redis_timeout_ms {
            Some(ms) => positive(file, ms, "redis_timeout_ms", 10_000, findings)
                .map_or(DEFAULT_REDIS_TIMEOUT, |ms| Duration::from_millis(ms as u64)),
            None => DEFAULT_REDIS_TIMEOUT,
        };
        self.ratelimit = Some((SharedRateLimit { redis_url: url.get_ref().clone(), timeout }, at));
    }

    fn add_gateway(&mut self, file: &SourceFile, raw: &Spanned<RawGateway>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.gateway {
            findings.error(at, format!("[gateway] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let mut gateway = GatewaySettings::default();
        for (field, target) in
            [("listen", &raw.listen), ("listen_tls", &raw.listen_tls), ("admin_listen", &raw.admin_listen)]
        {
            if let Some(addr) = target {
                if addr.get_ref().parse::<SocketAddr>().is_err() {
                    findings.error(file.at(addr), format!("{field} {:?} is not an IP:PORT address", addr.get_ref()));
                }
            }
        }
        if let Some(listen) = &raw.listen {
            gateway.listen = Some(listen.get_ref().clone());
        } else if raw.listen_tls.is_some() {
            gateway.listen = None;
        }
        gateway.tls = self.tls_listener(file, &at, raw, findings);
        if let Some(admin) = &raw.admin_listen {
            gateway.admin_listen = admin.get_ref().clone();
        }
        if let Some(max) = &raw.max_body_bytes {
            match positive(file, max, "max_body_bytes", 64 << 20, findings) {
                Some(v) => gateway.max_body_bytes = v,
                None => return,
            }
        }
        if let Some(errors) = raw.errors {
            gateway.errors = errors;
        }
        let ms = |v: &Option<Spanned<i64>>, field, default: Duration, findings: &mut Findings| {
            v.as_ref().map_or(Some(default), |v| {
                positive(file, v, field, 3_600_000, findings).map(|n| Duration::from_millis(n as u64))
            })
        };
        let defaults = GatewaySettings::default();
        let header =
            ms(&raw.client_header_timeout_ms, "client_header_timeout_ms", defaults.client_header_timeout, findings);
        let body = ms(&raw.client_body_timeout_ms, "client_body_timeout_ms", defaults.client_body_timeout, findings);
        let connections = raw
            .max_connections
            .as_ref()
            .map_or(Some(defaults.max_connections), |v| positive(file, v, "max_connections", 1_000_000, findings));
        let (Some(header), Some(body), Some(connections)) = (header, body, connections) else { return };
        gateway.client_header_timeout = header;
        gateway.client_body_timeout = body;
        gateway.max_connections = connections;
        gateway.per_hook_metrics = raw.per_hook_metrics.unwrap_or(true);
        gateway.admin_listen_public = raw.admin_listen_public.unwrap_or(false);
        if let (Some(admin), Err(e)) = (&raw.admin_listen, gateway.check_admin_listen()) {
            if admin.get_ref().parse::<SocketAddr>().is_ok() {
                findings.error(file.at(admin), e);
            }
        }
        self.gateway = Some((gateway, at));
    }

    /// `listen_tls` and the certificate it serves: the three keys go together, and the files
    /// must hold a key matching a leaf that has not expired.
    fn tls_listener(
        &self,
        file: &SourceFile,
        gateway_at: &Location,
        raw: &RawGateway,
        findings: &mut Findings,
    ) -> Option<TlsListener> {
        let (listen, cert, key) = match (&raw.listen_tls, &raw.tls_cert, &raw.tls_key) {
            (None, None, None) => return None,
            (Some(listen), Some(cert), Some(key)) => (listen, cert, key),
            (Some(listen), _, _) => {
                findings.error(file.at(listen), "listen_tls needs tls_cert and tls_key".into());
                return None;
            }
            (None, cert, key) => {
                let at = cert.as_ref().or(key.as_ref()).map_or(gateway_at.clone(), |k| file.at(k));
                findings.error(at, "tls_cert and tls_key are only read with listen_tls".into());
                return None;
            }
        };
        let (cert_at, key_at) = (file.at(cert), file.at(key));
        let now = std::time::SystemTime::now();
        match Identity::load(&self.dir.join(cert.get_ref()), &self.dir.join(key.get_ref()), now) {
            Ok(identity) => {
                if identity.expires_soon(now) {
                    findings.warn(
                        cert_at,
                        format!(
                            "the certificate in {} expires at {}, within 14 days",
                            cert.get_ref(),
                            identity.expiry()
                        ),
                    );
                }
                Some(TlsListener { listen: listen.get_ref().clone(), identity })
            }
            Err(e) => {
                let at = match &e {
                    IdentityError::NoKey(_) | IdentityError::BadKey { .. } | IdentityError::Mismatch { .. } => key_at,
                    IdentityError::Read { path, .. } if path.ends_with(key.get_ref()) => key_at,
                    _ => cert_at,
                };
                findings.error(at, e.to_string());
                None
            }
        }
    }

    /// A backend table: `kind` picks the kind, which reads the rest. A key another kind reads has
    /// no meaning here; a key no kind reads is unknown.
    fn add_backend(&mut self, file: &SourceFile, name: &str, raw: &Spanned<RawBackend>, findings: &mut Findings) {
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
        let mut keys = Vec::with_capacity(raw.len());
        for (key, value) in raw.iter().filter(|(key, _)| *key != "kind") {
            let key_at = file.at(value);
            if kind::reads(*kind, key) {
                keys.push((key.clone(), file.located(value)));
            } else if self.kinds.iter().any(|k| kind::reads(*k, key)) {
                findings.error(key_at, format!("backend `{name}`: {key} has no meaning for a {} backend", kind.name()));
            } else {
                let known: Vec<&str> =
                    std::iter::once("kind").chain(kind.keys().iter().copied().flatten().copied()).collect();
                findings.error(key_at, format!("unknown field `{key}`, expected {}", one_of(&known)));
            }
        }
        if findings.problems.len() > before {
            return;
        }
        let table =
            KindTable { what: "backend", name: name.to_owned(), at: at.clone(), dir: self.dir.to_owned(), keys };
        if let Some(config) = kind.backend(&table, findings) {
            self.backend_seen.insert(name.to_owned(), (self.backends.len(), at));
            self.backends.push(Backend { name: name.to_owned(), kind: kind.name(), config });
        }
    }

    /// A hook's keys beyond those every hook has go to its backend's kind: a key another kind
    /// reads has no meaning here; a key no kind reads is unknown.
    fn kind_keys(
        &self,
        file: &SourceFile,
        hook: &RawHook,
        kind: Option<&dyn KindRules>,
        findings: &mut Findings,
    ) -> Vec<(String, Written<Value>)> {
        let name = hook.name.get_ref();
        let mut keys = Vec::new();
        for (key, value) in &hook.kind_keys {
            let at = file.at(value);
            let read_by = |k: &dyn KindRules| k.hook_keys().contains(&key.as_str());
            let anyone = self.kinds.iter().any(|k| read_by(*k));
            match kind {
                Some(kind) if read_by(kind) => keys.push((key.clone(), file.located(value))),
                Some(kind) if anyone => {
                    findings.error(at, format!("hook `{name}`: {key} has no meaning for a {} backend", kind.name()));
                }
                // Another kind's key on a hook whose backend is missing, which is reported.
                None if anyone => {}
                _ => {
                    let own = kind.map_or(&[][..], |kind| kind.hook_keys());
                    let known: Vec<&str> = HOOK_KEYS.iter().chain(own).copied().collect();
                    findings.error(at, format!("unknown field `{key}`, expected {}", one_of(&known)));
                }
            }
        }
        keys
    }

    fn add_hook(&mut self, file: &SourceFile, raw: &Spanned<RawHook>, findings: &mut Findings) {
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
        let digest = match keys::parse_rule_key(hook.key.get_ref()) {
            Ok(d) => {
                if !hook.key.get_ref().starts_with("sha256:") {
                    findings.warn(
                        file.at(&hook.key),
                        format!("hook `{name}` stores its key in plain text; store the output of `hookgate hash-key` instead"),
                    );
                }
                Some(d)
            }
            Err(e) => {
                findings.error(file.at(&hook.key), format!("hook `{name}`: {e}"));
                None
            }
        };
        if let Some(d) = digest {
            if let Some((other, first)) = self.hook_keys.get(&d) {
                findings
                    .error(file.at(&hook.key), format!("hook `{name}` has the same key as hook `{other}` at {first}"));
            }
        }
        let backend = self.backend_seen.get(hook.backend.get_ref()).map(|(i, _)| &self.backends[*i]);
        let target = match backend {
            None => {
                findings.error(
                    file.at(&hook.backend),
                    format!("hook `{name}` names backend `{}`, which is not defined", hook.backend.get_ref()),
                );
                self.kind_keys(file, hook, None, findings);
                None
            }
            Some(backend) => {
                let kind = self.kinds.iter().copied().find(|k| k.name() == backend.kind);
                let keys = self.kind_keys(file, hook, kind, findings);
                let table =
                    KindTable { what: "hook", name: name.clone(), at: at.clone(), dir: self.dir.to_owned(), keys };
                kind.and_then(|kind| kind.hook(&table, findings))
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
        let (Some(digest), Some(target), Some(policy), Some(rate), Some(burst)) = (digest, target, policy, rate, burst)
        else {
            return;
        };
        self.hook_names.insert(name.clone(), at.clone());
        self.hook_keys.insert(digest, (name.clone(), at.clone()));
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
        ));
    }
}

/// serde's wording for a list of expected values: "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// A hook's defaults, overrides, channel rules and props limit, with every regex compiled.
fn hook_policy(file: &SourceFile, name: &str, hook: &RawHook, findings: &mut Findings) -> Option<Policy> {
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

/// `engine` and the keys of the NATS engine, which only it may have.
fn spool_engine(file: &SourceFile, raw: &RawSpool, findings: &mut Findings) -> SpoolEngine {
    let engine = raw.engine.as_ref().map_or("embedded", |e| e.get_ref().as_str());
    let nats_keys = [
        ("nats_urls", raw.nats_urls.as_ref().map(|v| file.at(v))),
        ("stream", raw.stream.as_ref().map(|v| file.at(v))),
        ("replicas", raw.replicas.as_ref().map(|v| file.at(v))),
    ];
    match engine {
        "embedded" => {
            for (key, at) in nats_keys {
                if let Some(at) = at {
                    findings.error(at, format!("{key} is for engine = \"nats\"; this spool is embedded"));
                }
            }
            SpoolEngine::Embedded
        }
        "nats" => {
            let mut nats =
                NatsSettings { urls: vec!["nats://127.0.0.1:4222".into()], stream: "HOOKGATE".into(), replicas: 1 };
            if let Some(urls) = &raw.nats_urls {
                if urls.get_ref().is_empty() {
                    findings.error(file.at(urls), "nats_urls must name at least one server".into());
                }
                for url in urls.get_ref() {
                    if !url.starts_with("nats://") || url.len() == "nats://".len() {
                        findings.error(file.at(urls), format!("nats_urls: {url:?} is not a nats://HOST:PORT address"));
                    }
                }
                nats.urls = urls.get_ref().clone();
            }
            if let Some(stream) = &raw.stream {
                let name = stream.get_ref();
                let valid = (1..=32).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    findings.error(file.at(stream), format!("stream {name:?} must be 1-32 of A-Z a-z 0-9 _ -"));
                }
                nats.stream = name.clone();
            }
            if let Some(replicas) = &raw.replicas {
                nats.replicas = positive(file, replicas, "replicas", 5, findings).unwrap_or(1);
            }
            SpoolEngine::Nats(nats)
        }
        other => {
            // Only a written engine can name another.
            if let Some(written) = &raw.engine {
                let message = format!("engine {other:?} is not a spool engine; use \"embedded\" or \"nats\"");
                findings.error(file.at(written), message);
            }
            SpoolEngine::Embedded
        }
    }
}

fn positive(file: &SourceFile, v: &Spanned<i64>, field: &str, max: i64, findings: &mut Findings) -> Option<usize> {
    findings.positive(&file.at(v), field, *v.get_ref(), max).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::load_rules as load;
    use crate::delivery::mattermost::Target;
    use crate::rules::Mode;

    fn load_files(files: &[(&str, &str)]) -> Result<Rules, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        load(dir.path())
            .map_err(|ps| ps.iter().map(|p| p.to_string().replace(&format!("{}/", dir.path().display()), "")).collect())
    }

    fn backend<'a>(rules: &'a Rules, name: &str) -> &'a Backend {
        &rules.backends[rules.backend_index(name).expect("a backend of that name")]
    }

    /// The backend_key a mattermost hook was loaded with.
    fn target(hook: &Hook) -> String {
        hook.target.clone().into_any().downcast::<Target>().expect("a mattermost hook").backend_key.clone()
    }

    const BACKENDS: &str = r#"
[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:8066"

[backends.console]
kind = "log"
"#;

    #[test]
    fn valid_rules_load() {
        let rules = load_files(&[
            ("00-backends.toml", BACKENDS),
            (
                "10-hooks.toml",
                r#"
[gateway]
listen = "127.0.0.1:9000"
max_body_bytes = 1000
errors = "mattermost"

[[hooks]]
name = "ci"
key = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
backend = "chat"
backend_key = "abc123"
channel = "town-square"
username = "ci-bot"
markup = "slack"

[[hooks]]
name = "demo"
key = "plain-token"
backend = "console"
"#,
            ),
        ])
        .unwrap();
        assert_eq!(rules.gateway.listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(rules.gateway.admin_listen, "127.0.0.1:9465");
        assert_eq!(rules.gateway.max_body_bytes, 1000);
        assert_eq!(rules.gateway.errors, super::super::ErrorDialect::Mattermost);
        assert_eq!(rules.hooks.len(), 2);
        let ci = rules.hook_by_digest(&keys::digest("test")).unwrap();
        assert_eq!((ci.name.as_str(), target(ci).as_str(), ci.markup), ("ci", "abc123", super::super::Markup::Slack));
        assert_eq!(backend(&rules, &ci.backend).name, "chat");
        let demo = rules.hook_by_digest(&keys::digest("plain-token")).unwrap();
        assert_eq!(backend(&rules, &demo.backend).name, "console");
        let warnings: Vec<String> =
            rules.warnings.iter().map(|w| w.to_string().rsplit('/').next().unwrap().to_owned()).collect();
        assert_eq!(
            warnings,
            vec!["10-hooks.toml:18: warning: hook `demo` stores its key in plain text; store the output of `hookgate hash-key` instead"]
        );
        assert!(rules.hook_by_digest(&keys::digest("nope")).is_none());
    }

    #[test]
    fn backend_key_on_a_log_hook_is_a_warning() {
        let hook = "[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"console\"\nbackend_key = \"x\"\n";
        let rules = load_files(&[("a.toml", &format!("{BACKENDS}{hook}"))]).unwrap();
        assert_eq!(rules.hooks.len(), 1);
        let warnings: Vec<String> = rules.warnings.iter().map(|w| w.to_string()).collect();
        let want = "a.toml:12: warning: hook `ci`: backend_key has no meaning for a log backend and is ignored";
        assert!(warnings.iter().any(|w| w.ends_with(want)), "{warnings:?}");
    }

    #[test]
    fn defaults_apply_without_a_gateway_table() {
        let rules = load_files(&[("a.toml", BACKENDS)]).unwrap();
        assert_eq!(rules.gateway.listen.as_deref(), Some("127.0.0.1:8065"));
        assert_eq!(rules.gateway.max_body_bytes, 300_000);
        assert_eq!(rules.gateway.errors, super::super::ErrorDialect::Slack);
    }

    #[test]
    fn problems_name_file_and_line() {
        let hook = |name: &str, key: &str, backend: &str, extra: &str| {
            format!("[[hooks]]\nname = \"{name}\"\nkey = \"{key}\"\nbackend = \"{backend}\"\n{extra}\n")
        };
        // Files and their text, and the problems loading them must report.
        type Case<'a> = (Vec<(&'a str, String)>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                vec![("a.toml", "[gateway]\nlisten = \"127.0.0.1:1\"\ntypo = 1\n".into())],
                vec!["a.toml:3: unknown field `typo`, expected one of `listen`, `listen_tls`, `tls_cert`, `tls_key`, `admin_listen`, `max_body_bytes`, `errors`, `per_hook_metrics`, `admin_listen_public`, `client_header_timeout_ms`, `client_body_timeout_ms`, `max_connections`"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "colour = \"red\"")))],
                vec!["a.toml:12: unknown field `colour`, expected one of `name`, `key`, `backend`, `channel`, `username`, `icon_url`, `markup`, `delivery`, `max_props_bytes`, `rate`, `burst`, `overrides`, `channel_map`, `backend_key`"],
            ),
            (
                vec![("a.toml", "[gateway\n".into())],
                vec!["a.toml:1: unclosed table, expected `]`"],
            ),
            (
                vec![("a.toml", "[gateway]\n".into()), ("b.toml", "\n[gateway]\n".into())],
                vec!["b.toml:2: [gateway] is defined twice; first at a.toml:1"],
            ),
            (
                vec![("a.toml", BACKENDS.into()), ("b.toml", "[backends.chat]\nkind = \"log\"\n".into())],
                vec!["b.toml:1: backend `chat` is defined twice; first at a.toml:2"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}{}", hook("ci", "k1", "console", ""), hook("ci", "k2", "console", "")))],
                vec!["a.toml:14: hook `ci` is defined twice; first at a.toml:9"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("a", "same", "console", ""))), ("b.toml", hook("b", "same", "console", ""))],
                vec!["b.toml:3: hook `b` has the same key as hook `a` at a.toml:9"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "nowhere", "")))],
                vec!["a.toml:11: hook `ci` names backend `nowhere`, which is not defined"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "")))],
                vec!["a.toml:9: hook `ci` uses a mattermost backend and needs a backend_key"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "backend_key = \"../x\"")))],
                vec!["a.toml:12: hook `ci`: backend_key must be 1-128 characters of A-Z a-z 0-9 _ -"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("unknown", "k", "console", "")))],
                vec!["a.toml:9: hook name \"unknown\" must be 1-64 characters of A-Z a-z 0-9 _ . - and not `unknown` or `all`"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "sha256:12", "console", "")))],
                vec!["a.toml:10: hook `ci`: a sha256: key needs exactly 64 hex digits after the prefix"],
            ),
            (
                vec![("a.toml", "[gateway]\nlisten = \"localhost\"\nmax_body_bytes = 0\n".into())],
                vec![
                    "a.toml:2: listen \"localhost\" is not an IP:PORT address",
                    "a.toml:3: max_body_bytes must be between 1 and 67108864, not 0",
                ],
            ),
            (
                vec![("a.toml", "[gateway]\nadmin_listen = \"0.0.0.0:9465\"\n".into())],
                vec!["a.toml:2: admin_listen 0.0.0.0:9465 is not a loopback address; set admin_listen_public = true to serve metrics there"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "rate = -1.0\nburst = 0")))],
                vec![
                    "a.toml:12: rate must be between 0 (unlimited) and 1000000, not -1",
                    "a.toml:13: burst must be between 1 and 1000000, not 0",
                ],
            ),
            (
                vec![("a.toml", "[gateway]\nerrors = \"xml\"\n".into())],
                vec!["a.toml:2: unknown variant `xml`, expected `slack` or `mattermost`"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"ftp://chat.example\"\n".into())],
                vec!["a.toml:3: backend `x`: url must start with http:// or https://"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1:1\"\ntimeout_ms = -5\n".into())],
                vec!["a.toml:4: timeout_ms must be between 1 and 600000, not -5"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"carrier-pigeon\"\n".into())],
                vec!["a.toml:2: unknown variant `carrier-pigeon`, expected one of `mattermost`, `matrix`, `log`"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"log\"\nurl = \"http://x\"\n".into())],
                vec!["a.toml:3: backend `x`: url has no meaning for a log backend"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\n".into())],
                vec!["a.toml:1: backend `x` of kind mattermost needs a url"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"log\"\ntypo = 1\n".into())],
                vec!["a.toml:3: unknown field `typo`, expected `kind`"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://h\"\ntimeout = 1\n".into())],
                vec!["a.toml:4: unknown field `timeout`, expected one of `kind`, `url`, `timeout_ms`, `connect_timeout_ms`, `ca_file`, `tls_server_name`, `tls_verify`, `max_message_chars`"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = 8066\nmax_message_chars = \"many\"\n".into())],
                vec!["a.toml:3: backend `x`: url must be a string", "a.toml:4: backend `x`: max_message_chars must be an integer"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://h\"\nmax_message_chars = \"many\"\n".into())],
                vec!["a.toml:4: backend `x`: max_message_chars must be an integer"],
            ),
            (
                vec![("a.toml", "[backends.x]\nurl = \"http://h\"\n".into())],
                vec!["a.toml:1: backend `x`: missing field `kind`"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nchannels = [\"^ok$\", \"(unclosed\"]")))],
                vec!["a.toml:13: hook `ci`: invalid channels regex: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[[hooks.channel_map]]\nmatch = \"*\"\nto = \"x\"")))],
                vec!["a.toml:13: hook `ci`: invalid channel_map match regex: regex parse error:\n    *\n    ^\nerror: repetition operator missing expression"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[[hooks.channel_map]]\nmatch = \"^ops-(.*)$\"\nto = \"alerts-$2\"")))],
                vec!["a.toml:14: hook `ci`: channel_map to: \"alerts-$2\" refers to group \"2\", which the pattern does not have (write $$ for a literal $)"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nusername = \"deny\"")))],
                vec!["a.toml:13: unknown variant `deny`, expected one of `allow`, `ignore`, `reject`"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nicons = \"allow\"")))],
                vec!["a.toml:13: unknown field `icons`, expected one of `username`, `icon`, `channel`, `channels`"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "max_props_bytes = 0")))],
                vec!["a.toml:12: max_props_bytes must be between 1 and 67108864, not 0"],
            ),
            (
                vec![("a.toml", "[spool]\nengine = \"kafka\"\n".into())],
                vec!["a.toml:2: engine \"kafka\" is not a spool engine; use \"embedded\" or \"nats\""],
            ),
            (
                vec![("a.toml", "[spool]\nstream = \"HOOKGATE\"\n".into())],
                vec!["a.toml:2: stream is for engine = \"nats\"; this spool is embedded"],
            ),
            (
                vec![(
                    "a.toml",
                    "[spool]\nengine = \"nats\"\nnats_urls = [\"127.0.0.1:4222\"]\nstream = \"a.b\"\nreplicas = 7\n".into(),
                )],
                vec![
                    "a.toml:3: nats_urls: \"127.0.0.1:4222\" is not a nats://HOST:PORT address",
                    "a.toml:4: stream \"a.b\" must be 1-32 of A-Z a-z 0-9 _ -",
                    "a.toml:5: replicas must be between 1 and 5, not 7",
                ],
            ),
            (
                vec![("a.toml", "\n[ratelimit]\nredis_timeout_ms = 20\n".into())],
                vec!["a.toml:2: [ratelimit] needs redis_url, the Redis the instances share"],
            ),
            (
                vec![("a.toml", "[ratelimit]\nredis_url = \"http://127.0.0.1:6379\"\nredis_timeout_ms = 0\n".into())],
                vec![
                    "a.toml:2: redis_url \"http://127.0.0.1:6379\" is not a Redis URL: Redis URL did not parse - InvalidClientConfig",
                    "a.toml:3: redis_timeout_ms must be between 1 and 10000, not 0",
                ],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\nas_token = \"b\"\n".into())],
                vec!["a.toml:6: backend `m`: access_token and as_token exclude each other; pick one"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\nas_token = \"b\"\n".into())],
                vec!["a.toml:5: backend `m`: as_token needs a user_prefix for the hooks' users"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\nas_token = \"b\"\nuser_prefix = \"Hook \"\n".into())],
                vec!["a.toml:6: backend `m`: user_prefix \"Hook \" must be one or more of a-z 0-9 . _ = -"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\nuser_prefix = \"hook_\"\n".into())],
                vec!["a.toml:6: backend `m`: user_prefix is only read with an as_token"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\n".into())],
                vec!["a.toml:1: backend `m` of kind matrix needs an access_token, or an as_token with a user_prefix"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\naccess_token = \"a b\"\n".into())],
                vec!["a.toml:1: backend `m` of kind matrix needs a server_name"],
            ),
            (
                vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a b\"\nmsgtype = \"m.emote\"\n".into())],
                vec![
                    "a.toml:5: backend `m`: the token must be printable ASCII without spaces",
                    "a.toml:6: backend `m`: msgtype \"m.emote\" must be \"m.notice\" or \"m.text\"",
                ],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"ci\"\n".into())],
                vec!["a.toml:10: hook `ci`: \"ci\" is not a room id (!id:server, or !id from room version 12) or alias (#name:server)"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"#ci:h\"\n[hooks.rooms]\nops = \"#ops:h\"\ndev = 5\nqa = \"qa\"\n".into())],
                vec!["a.toml:13: hook `ci`: rooms.dev must be a string"],
            ),
            (
                vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"#ci:h\"\n[hooks.rooms]\nops = \"#ops:h\"\nqa = \"qa\"\n".into())],
                vec!["a.toml:13: hook `ci`: \"qa\" is not a room id (!id:server, or !id from room version 12) or alias (#name:server)"],
            ),
            (
                vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "backend_key = \"abc\"\nroom = \"#ci:h\"")))],
                vec!["a.toml:13: hook `ci`: room has no meaning for a mattermost backend"],
            ),
            (
                vec![("a.toml", "[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"gone\"\nroom = \"#ci:h\"\nshade = 1\n".into())],
                vec![
                    "a.toml:4: hook `ci` names backend `gone`, which is not defined",
                    "a.toml:6: unknown field `shade`, expected one of `name`, `key`, `backend`, `channel`, `username`, `icon_url`, `markup`, `delivery`, `max_props_bytes`, `rate`, `burst`, `overrides`, `channel_map`",
                ],
            ),
            (
                vec![("a.toml", "[ratelimit]\nredis_url = \"redis://127.0.0.1\"\nredis = 1\n".into())],
                vec!["a.toml:3: unknown field `redis`, expected `redis_url` or `redis_timeout_ms`"],
            ),
        ];
        for (files, want) in cases {
            let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
            let got = load_files(&files).expect_err("rules should be refused");
            assert_eq!(got, want, "files {files:?}");
        }
    }

    /// A self-signed certificate for `localhost` ending `days` from now, and its key, as PEM.
    fn certificate(days: i64) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn tls_files_are_checked_at_load() {
        let (cert, key) = certificate(90);
        let (soon, soon_key) = certificate(10);
        let (expired, expired_key) = certificate(-1);
        let (_, other_key) = certificate(90);
        let gateway = |cert: &str, key: &str| {
            format!("[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n")
        };
        let files = |rules: String, pems: &[(&str, &str)]| {
            let mut all = vec![("a.toml".to_owned(), rules)];
            all.extend(pems.iter().map(|(n, t)| (n.to_string(), t.to_string())));
            all
        };
        let run = |all: Vec<(String, String)>| {
            let refs: Vec<(&str, &str)> = all.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
            load_files(&refs)
        };

        let good = run(files(gateway("c.pem", "k.pem"), &[("c.pem", &cert), ("k.pem", &key)])).unwrap();
        assert_eq!(good.gateway.listen, None, "listen_tls alone serves HTTPS only");
        assert_eq!(good.gateway.tls.as_ref().unwrap().listen, "127.0.0.1:8443");
        assert!(good.warnings.is_empty(), "{:?}", good.warnings);

        let warned = run(files(gateway("c.pem", "k.pem"), &[("c.pem", &soon), ("k.pem", &soon_key)])).unwrap();
        let warnings: Vec<String> = warned.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("a.toml:3: warning: the certificate in c.pem expires at"), "{warnings:?}");

        let cases: Vec<(Vec<(String, String)>, &str)> = vec![
            (files(gateway("none.pem", "k.pem"), &[("k.pem", &key)]), "a.toml:3: cannot read none.pem: No such file"),
            (files(gateway("c.pem", "none.pem"), &[("c.pem", &cert)]), "a.toml:4: cannot read none.pem: No such file"),
            (
                files(gateway("c.pem", "k.pem"), &[("c.pem", &cert), ("k.pem", &other_key)]),
                "a.toml:4: the private key in k.pem does not match the certificate in c.pem",
            ),
            (
                files(gateway("c.pem", "k.pem"), &[("c.pem", &expired), ("k.pem", &expired_key)]),
                "a.toml:3: the certificate in c.pem expired at",
            ),
            (files(gateway("k.pem", "k.pem"), &[("k.pem", &key)]), "a.toml:3: k.pem holds no PEM certificate"),
            (files(gateway("c.pem", "c.pem"), &[("c.pem", &cert)]), "a.toml:4: c.pem holds no PEM private key"),
            (
                files("[gateway]\nlisten_tls = \"127.0.0.1:8443\"\n".into(), &[]),
                "a.toml:2: listen_tls needs tls_cert and tls_key",
            ),
            (
                files("[gateway]\ntls_cert = \"c.pem\"\n".into(), &[]),
                "a.toml:2: tls_cert and tls_key are only read with listen_tls",
            ),
            (
                files(
                    "[backends.chat]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1\"\nca_file = \"c.pem\"\n".into(),
                    &[],
                ),
                "a.toml:4: backend `chat`: ca_file, tls_server_name and tls_verify need an https:// url",
            ),
            (
                files(
                    "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\nca_file = \"none.pem\"\n"
                        .into(),
                    &[],
                ),
                "a.toml:4: backend `chat`: ca_file: cannot read none.pem: No such file",
            ),
            (
                files(
                    "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\ntls_verify = \"no\"\n".into(),
                    &[],
                ),
                "a.toml:4: backend `chat`: tls_verify must be true or false",
            ),
        ];
        for (files, want) in cases {
            let got = run(files.clone()).expect_err("rules should be refused");
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].starts_with(want), "{got:?} does not start with {want:?} for {files:?}");
        }

        let unverified = "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\ntls_verify = false\n";
        let rules = run(files(unverified.into(), &[])).unwrap();
        let warnings: Vec<String> = rules.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("a.toml:4: warning: backend `chat`: tls_verify = false"), "{warnings:?}");
    }

    #[test]
    fn policy_rules_load() {
        let rules = load_files(&[(
            "a.toml",
            &format!(
                "{BACKENDS}\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"console\"\nmax_props_bytes = 10\n\
                 [hooks.overrides]\nusername = \"ignore\"\nicon = \"reject\"\nchannels = [\"^a\", \"^@\"]\n\
                 [[hooks.channel_map]]\nmatch = \"^#?(?P<n>.*)$\"\nto = \"${{n}}-x $$1\"\n"
            ),
        )])
        .unwrap();
        let p = &rules.hooks[0].policy;
        assert_eq!((p.username, p.icon, p.channel), (Mode::Ignore, Mode::Reject, Mode::Allow));
        assert_eq!(p.channels.as_ref().map(Vec::len), Some(2));
        assert_eq!(p.channel_map[0].to, "${n}-x $$1");
        assert_eq!(p.max_props_bytes, 10);
        let default = load_files(&[(
            "a.toml",
            &format!("{BACKENDS}\n[[hooks]]\nname = \"d\"\nkey = \"k\"\nbackend = \"console\"\n"),
        )])
        .unwrap();
        let p = &default.hooks[0].policy;
        assert_eq!((p.username, p.icon, p.channel, p.max_props_bytes), (Mode::Allow, Mode::Allow, Mode::Allow, 65_536));
        assert!(p.channels.is_none() && p.channel_map.is_empty());
    }

    /// Host names are resolved when connecting, so checking rules needs no DNS: a name that
    /// resolves nowhere loads.
    #[test]
    fn backend_host_names_are_not_resolved_at_load() {
        let rules = load_files(&[(
            "a.toml",
            "[backends.chat]\nkind = \"mattermost\"\nurl = \"http://chat.invalid:8065/mm\"\n\n\
             [[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"chat\"\nbackend_key = \"abc\"\n",
        )])
        .unwrap();
        assert_eq!(backend(&rules, "chat").kind, "mattermost");
        assert_eq!(target(&rules.hooks[0]), "abc");
    }

    #[test]
    fn ratelimit_names_the_shared_redis() {
        let unset = load_files(&[("a.toml", BACKENDS)]).unwrap();
        assert_eq!(unset.shared_ratelimit, None);
        let rules =
            load_files(&[("a.toml", &format!("{BACKENDS}\n[ratelimit]\nredis_url = \"redis://127.0.0.1:6390/2\"\n"))])
                .unwrap();
        let want = SharedRateLimit { redis_url: "redis://127.0.0.1:6390/2".into(), timeout: DEFAULT_REDIS_TIMEOUT };
        assert_eq!(rules.shared_ratelimit, Some(want));
    }

    #[test]
    fn shipped_rules_are_valid() {
        let rules = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
        let demo = rules.hook_by_digest(&keys::digest("hookgate-demo-key")).unwrap();
        assert_eq!(backend(&rules, &demo.backend).kind, "log");
        let ci = rules.hook_by_digest(&keys::digest("T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX")).unwrap();
        assert_eq!(backend(&rules, &ci.backend).kind, "mattermost");
        assert_eq!(target(ci), "abc123generatedkey");
    }

    #[test]
    fn files_are_cut_before_each_top_level_hooks_header() {
        fn cut(text: &str) -> Vec<&str> {
            parts(text).into_iter().map(|(a, b)| &text[a..b]).collect()
        }
        let cases: &[(&str, &[&str])] = &[
            ("", &[""]),
            ("[[hooks]]\nname = \"a\"\n", &["[[hooks]]\nname = \"a\"\n"]),
            (
                "[backends.x]\nkind = \"log\"\n[[hooks]]\nname = \"a\"\n[hooks.overrides]\nicon = \"ignore\"\n\n  [[ hooks ]]\nname = \"b\"\n",
                &[
                    "[backends.x]\nkind = \"log\"\n",
                    "[[hooks]]\nname = \"a\"\n[hooks.overrides]\nicon = \"ignore\"\n\n  ",
                    "[[ hooks ]]\nname = \"b\"\n",
                ],
            ),
            // Not headers: inside strings and comments, sub-tables, other arrays of tables.
            (
                "[[hooks]]\nname = \"\"\"\n[[hooks]]\n\"\"\"\n# [[hooks]]\nkey = '''\n[[hooks]]'''\n[[hooks.channel_map]]\n[[hookses]]\n",
                &["[[hooks]]\nname = \"\"\"\n[[hooks]]\n\"\"\"\n# [[hooks]]\nkey = '''\n[[hooks]]'''\n[[hooks.channel_map]]\n[[hookses]]\n"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(cut(text), *want, "{text:?}");
        }
    }

    #[test]
    fn a_directory_without_rules_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let got = load(dir.path()).unwrap_err();
        assert_eq!(got[0].message, "no *.toml rule files");
        let missing = load(&dir.path().join("missing")).unwrap_err();
        assert!(missing[0].message.starts_with("cannot read rules directory"));
    }
}
