//! Reads every `*.toml` in the rules directory (in name order), merges them and validates the
//! result, collecting every problem rather than stopping at the first.
//!
//! Loading is linear in the size of the rules: places come from each file's index of line
//! starts, and duplicates are found through maps, so no hook is compared with every other.

mod gateway;
mod hooks;
mod parts;
mod spool;
#[cfg(test)]
mod tests;

use super::hook::{Hook, SlackMaps};
use super::keys::{Digest, KeyTable};
use super::kind::KindRules;
use super::schema::RawSlack;
use super::{Backend, Delivery, Findings, GatewaySettings, Location, Problem, Rules, SharedRateLimit, SpoolSettings};
use parts::{Hooks, Parsed, Part};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// Loads and validates the rules directory, reading backend tables with `kinds`. On failure,
/// every problem found is returned.
pub(crate) fn load(dir: &Path, kinds: &[&dyn KindRules]) -> Result<Rules, Vec<Problem>> {
    let mut parsed = Parsed::default();
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
            Err(e) => parsed.unreadable(problem_at_path(&name, format!("cannot read: {e}"))),
            Ok(text) => parsed.file(name.into(), text),
        }
    }
    let merged = Merger::new(kinds, dir).merge(&mut parsed, &mut findings);
    let mut problems = parsed.errors();
    problems.append(&mut findings.problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    merged.ok_or_else(|| vec![problem_at_path(&dir_text, "no rules were loaded".into())])
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
    hooks: Vec<LoadedHook>,
    /// Where each hook name and key digest was first written.
    hook_names: HashMap<String, Location>,
    hook_keys: HashMap<Digest, (String, Location)>,
    hook_tokens: HashMap<Digest, (String, Location)>,
}

/// A hook with the digests of its key and its `bot_token`, as written.
type LoadedHook = (Hook, Option<Digest>, Option<Digest>);

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
            hook_tokens: HashMap::new(),
        }
    }

    fn merge(mut self, parsed: &mut Parsed, findings: &mut Findings) -> Option<Rules> {
        for (file, raw) in std::mem::take(&mut parsed.sections).iter() {
            if let Some(gateway) = &raw.gateway {
                self.add_gateway(file, gateway, findings);
            }
            for (name, backend) in &raw.backends {
                self.add_backend(file, name, backend, findings);
            }
            if let Some(slack) = &raw.slack {
                self.add_slack(file, slack, findings);
            }
            if let Some(spool) = &raw.spool {
                self.add_spool(file, spool, findings);
            }
            if let Some(ratelimit) = &raw.ratelimit {
                self.add_ratelimit(file, ratelimit, findings);
            }
        }
        // Hooks refer to backends from any file, so they are read once every backend is known.
        // Counted first: doubling as they come would hold up to twice the room at the peak.
        self.hooks.reserve_exact(parsed.hooks.len());
        for hooks in std::mem::take(&mut parsed.hooks) {
            match hooks {
                Hooks::Read(part, hook) => self.add_hook(&part, &hook, findings),
                Hooks::Later { part, text, end, number } => {
                    for hook in parsed.later(&part, text, end, number) {
                        self.add_hook(&part, &hook, findings);
                    }
                }
            }
        }
        if !findings.problems.is_empty() || !parsed.errors.is_empty() {
            return None;
        }
        let spooled = self.hooks.iter().any(|(hook, _, _)| hook.delivery == Delivery::Spool);
        let spool = self.spool.map(|(s, _)| s).or_else(|| spooled.then(|| SpoolSettings::new(self.dir)));
        let table = |pick: fn(&LoadedHook) -> Option<Digest>| {
            KeyTable::new(self.hooks.iter().enumerate().filter_map(|(i, hook)| Some((pick(hook)?, i))).collect())
        };
        let (keys, tokens) = (table(|h| h.1), table(|h| h.2));
        let slack = Arc::new(self.slack);
        let mut hooks: Vec<Hook> = self
            .hooks
            .into_iter()
            .map(|(mut hook, _, _)| {
                hook.slack = slack.clone();
                hook
            })
            .collect();
        // The list is made in the room of the one with the digests (304 bytes a hook against
        // 232) and keeps it all; it is held as long as the rules are.
        hooks.shrink_to_fit();
        Some(Rules {
            gateway: self.gateway.map(|(g, _)| g).unwrap_or_default(),
            backend_names: self.backend_seen.into_iter().map(|(name, (i, _))| (name, i)).collect(),
            backends: self.backends,
            hooks,
            spool,
            shared_ratelimit: self.ratelimit.map(|(r, _)| r),
            keys,
            tokens,
            hook_names: std::sync::OnceLock::new(),
            warnings: std::mem::take(&mut findings.warnings),
        })
    }

    fn add_slack(&mut self, file: &Part, raw: &RawSlack, findings: &mut Findings) {
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

fn positive(file: &Part, v: &Spanned<i64>, field: &str, max: i64, findings: &mut Findings) -> Option<usize> {
    findings.positive(&file.at(v), field, *v.get_ref(), max).map(|n| n as usize)
}
