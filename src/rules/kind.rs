//! What the loader asks of a backend kind: its name, the keys it owns and how it reads them.
//!
//! The kinds themselves live in `delivery/`, one folder each. The loader is handed the list of
//! kinds, so `rules` never imports one: a kind reads its own keys into a typed config of its own,
//! kept here behind `KindConfig` and read back by the same kind when a hook's route is built
//! (`delivery/kind.rs`, `Kind::bind`).

use super::{Findings, Location};
use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A backend kind as the rules loader sees it.
pub(crate) trait KindRules: Sync {
    /// As written in `kind = "..."`.
    fn name(&self) -> &'static str;
    /// The backend table keys it reads, besides `kind`.
    fn keys(&self) -> &'static [&'static str];
    /// Reads and checks a backend table of this kind; every problem goes to `findings`.
    fn backend(&self, table: &BackendTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>>;
    /// Reads and checks the keys of a hook that belong to this kind (`backend_key`).
    fn hook(&self, hook: &HookKeys, findings: &mut Findings) -> Option<Arc<dyn KindConfig>>;
}

/// A kind's own typed configuration of a backend or a hook. Only the kind that made one reads
/// it, through `into_any`.
pub trait KindConfig: fmt::Debug + Send + Sync + 'static {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: fmt::Debug + Send + Sync + 'static> KindConfig for T {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// One value as written, with its place.
#[derive(Debug, Clone)]
pub(crate) struct Written<T> {
    pub value: T,
    pub at: Location,
}

/// A backend table as written: its name, its place, and every key but `kind`.
#[derive(Debug)]
pub(crate) struct BackendTable {
    pub name: String,
    pub at: Location,
    /// The rules directory, which file names in the table are relative to.
    pub dir: PathBuf,
    pub keys: Vec<(String, Written<toml::Value>)>,
}

impl BackendTable {
    fn get(&self, key: &str) -> Option<&Written<toml::Value>> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string key; `Err` when it is there but not a string.
    pub(crate) fn string(&self, key: &str, findings: &mut Findings) -> Result<Option<Written<String>>, Reported> {
        match self.get(key) {
            None => Ok(None),
            Some(Written { value: toml::Value::String(s), at }) => {
                Ok(Some(Written { value: s.clone(), at: at.clone() }))
            }
            Some(Written { at, .. }) => {
                findings.error(at.clone(), format!("backend `{}`: {key} must be a string", self.name));
                Err(Reported)
            }
        }
    }

    /// A boolean key; `Err` when it is there but not a boolean.
    pub(crate) fn boolean(&self, key: &str, findings: &mut Findings) -> Result<Option<Written<bool>>, Reported> {
        match self.get(key) {
            None => Ok(None),
            Some(Written { value: toml::Value::Boolean(b), at }) => Ok(Some(Written { value: *b, at: at.clone() })),
            Some(Written { at, .. }) => {
                findings.error(at.clone(), format!("backend `{}`: {key} must be true or false", self.name));
                Err(Reported)
            }
        }
    }

    /// An integer key between 1 and `max`, `default` when absent; `None` when invalid (reported).
    pub(crate) fn positive(&self, key: &str, default: usize, max: i64, findings: &mut Findings) -> Option<usize> {
        match self.get(key) {
            None => Some(default),
            Some(Written { value: toml::Value::Integer(n), at }) => {
                findings.positive(at, key, *n, max).map(|n| n as usize)
            }
            Some(Written { at, .. }) => {
                findings.error(at.clone(), format!("backend `{}`: {key} must be an integer", self.name));
                None
            }
        }
    }
}

/// A value was refused and the problem is already in the findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;

/// A hook's keys that belong to its backend's kind, as written.
#[derive(Debug)]
pub(crate) struct HookKeys<'a> {
    pub name: &'a str,
    /// Where the hook's name is written.
    pub at: Location,
    pub backend_key: Option<Written<&'a str>>,
    /// A Matrix room: `!id:server` or `#alias:server`.
    pub room: Option<Written<&'a str>>,
    /// `[hooks.rooms]`: requested channel to room.
    pub rooms: Vec<(&'a str, Written<&'a str>)>,
}

impl HookKeys<'_> {
    /// Reports `room` and `[hooks.rooms]` on a hook whose backend has no rooms; false if any.
    pub(crate) fn no_rooms(&self, kind: &str, findings: &mut Findings) -> bool {
        let at = self.room.as_ref().map(|r| &r.at).or(self.rooms.first().map(|(_, r)| &r.at));
        if let Some(at) = at {
            let message = format!("hook `{}`: room and rooms are for matrix backends, not {kind}", self.name);
            findings.error(at.clone(), message);
        }
        at.is_none()
    }
}
