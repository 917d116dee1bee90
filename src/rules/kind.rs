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
    /// The backend table keys it reads, besides `kind`, in groups: the keys of an HTTP endpoint
    /// (`delivery/http/endpoint.rs`) are one group every HTTP kind lists.
    fn keys(&self) -> &'static [&'static [&'static str]];
    /// The keys it reads in a hook of one of its backends, besides those every hook has.
    fn hook_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// Reads and checks a backend table of this kind; every problem goes to `findings`.
    fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>>;
    /// Reads and checks a hook's keys that belong to this kind (`hook_keys`), for a hook of
    /// `backend`, a config this kind's `backend` made: which keys a hook needs may depend on it.
    fn hook(
        &self,
        hook: &KindTable,
        backend: &Arc<dyn KindConfig>,
        findings: &mut Findings,
    ) -> Option<Arc<dyn KindConfig>>;
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

/// A value as written, each part with its place. No kind reads a float or an array yet, so
/// those are only known to be something else.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Boolean(bool),
    Table(Vec<(String, Written<Value>)>),
    Other,
}

/// The keys of a backend table or of a hook that belong to a kind, as written, for that kind to
/// read: every key of a backend table but `kind`; a hook's keys in the kind's `hook_keys`.
#[derive(Debug)]
pub(crate) struct KindTable {
    /// `backend` or `hook`, for messages.
    pub what: &'static str,
    pub name: String,
    /// Where the table (or the hook's name) is written.
    pub at: Location,
    /// The rules directory, which file names in the table are relative to.
    pub dir: PathBuf,
    pub keys: Vec<(String, Written<Value>)>,
}

impl KindTable {
    fn get(&self, key: &str) -> Option<&Written<Value>> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn wrong(&self, at: &Location, key: &str, must: &str, findings: &mut Findings) -> Reported {
        findings.error(at.clone(), format!("{} `{}`: {key} must be {must}", self.what, self.name));
        Reported
    }

    /// A string key; `Err` when it is there but not a string.
    pub(crate) fn string(&self, key: &str, findings: &mut Findings) -> Result<Option<Written<String>>, Reported> {
        match self.get(key) {
            None => Ok(None),
            Some(Written { value: Value::String(s), at }) => Ok(Some(Written { value: s.clone(), at: at.clone() })),
            Some(Written { at, .. }) => Err(self.wrong(at, key, "a string", findings)),
        }
    }

    /// A table of strings, each with its place, empty when absent; `Err` when it is there but
    /// not a table of strings.
    pub(crate) fn strings(
        &self,
        key: &str,
        findings: &mut Findings,
    ) -> Result<Vec<(String, Written<String>)>, Reported> {
        let Some(Written { value, at }) = self.get(key) else { return Ok(Vec::new()) };
        let Value::Table(entries) = value else { return Err(self.wrong(at, key, "a table of strings", findings)) };
        let mut strings = Vec::with_capacity(entries.len());
        for (name, Written { value, at }) in entries {
            let Value::String(s) = value else {
                return Err(self.wrong(at, &format!("{key}.{name}"), "a string", findings));
            };
            strings.push((name.clone(), Written { value: s.clone(), at: at.clone() }));
        }
        Ok(strings)
    }

    /// A boolean key; `Err` when it is there but not a boolean.
    pub(crate) fn boolean(&self, key: &str, findings: &mut Findings) -> Result<Option<Written<bool>>, Reported> {
        match self.get(key) {
            None => Ok(None),
            Some(Written { value: Value::Boolean(b), at }) => Ok(Some(Written { value: *b, at: at.clone() })),
            Some(Written { at, .. }) => Err(self.wrong(at, key, "true or false", findings)),
        }
    }

    /// An integer key between 1 and `max`, `default` when absent; `None` when invalid (reported).
    pub(crate) fn positive(&self, key: &str, default: usize, max: i64, findings: &mut Findings) -> Option<usize> {
        match self.get(key) {
            None => Some(default),
            Some(Written { value: Value::Integer(n), at }) => findings.positive(at, key, *n, max).map(|n| n as usize),
            Some(Written { at, .. }) => {
                self.wrong(at, key, "an integer", findings);
                None
            }
        }
    }
}

/// A value was refused and the problem is already in the findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reported;
