//! The `log` kind: each message as one JSON line on stdout. It needs no chat server, so
//! `make run` works anywhere, and it shows exactly what a Mattermost backend would receive.

use super::kind::{Deliver, Exchange, Failure, Outgoing, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{Findings, Hook, KindConfig, KindRules, KindTable};
use std::io::Write;
use std::sync::Arc;

pub struct Log;

impl KindRules for Log {
    fn name(&self) -> &'static str {
        "log"
    }

    fn keys(&self) -> &'static [&'static [&'static str]] {
        &[]
    }

    /// Only to warn about it.
    fn hook_keys(&self) -> &'static [&'static str] {
        &["backend_key"]
    }

    fn backend(&self, _table: &KindTable, _findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        Some(Arc::new(()))
    }

    /// A `backend_key` is a warning, not an error (docs/rules.md): a hook can be pointed at
    /// the log backend for a while without removing its key.
    fn hook(&self, hook: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        if let Some(key) = hook.string("backend_key", findings).ok()? {
            findings.warn(
                key.at.clone(),
                format!("hook `{}`: backend_key has no meaning for a log backend and is ignored", hook.name),
            );
        }
        Some(Arc::new(()))
    }
}

impl Deliver for Log {
    type Backend = ();
    type Target = ();

    /// One line, however long: there is no post size to respect.
    fn render(&self, _backend: &(), _hook: &Hook, message: Message) -> Vec<String> {
        vec![message.to_json()]
    }

    async fn send(&self, _backend: &(), _target: &(), post: Outgoing<'_>) -> Exchange {
        match write(&post.body) {
            Ok(()) => Exchange { upstream: Upstream::Logged, result: Ok(()) },
            Err(_) => {
                Exchange { upstream: Upstream::Failed(Failure::Io), result: Err(Undelivered::Unavailable(Failure::Io)) }
            }
        }
    }
}

fn write(payload: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(payload)?;
    out.write_all(b"\n")?;
    out.flush()
}
