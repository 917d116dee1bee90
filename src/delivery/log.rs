//! The `log` kind: each message as one JSON line on stdout. It needs no chat server, so
//! `make run` works anywhere, and it shows exactly what a Mattermost backend would receive.

use super::kind::{Deliver, Exchange, Failure, Outgoing, Placed, Undelivered, Upstream};
use crate::pipeline::json::write_string;
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
    fn hook(
        &self,
        hook: &KindTable,
        _backend: &Arc<dyn KindConfig>,
        findings: &mut Findings,
    ) -> Option<Arc<dyn KindConfig>> {
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
        written(write(&post.body))
    }

    /// Web API messages are shown by their operations, so threads are too.
    fn threads(&self, _backend: &()) -> bool {
        true
    }

    /// The id of the message's one post is its `ts`.
    async fn post(
        &self,
        _backend: &(),
        _target: &(),
        post: Outgoing<'_>,
        placed: &Placed<'_>,
    ) -> (Exchange, Option<String>) {
        (written(write(&operation("post", placed, Some(&post.body)))), Some(placed.ts.to_string()))
    }

    async fn edit(&self, _: &(), _: &(), _id: &str, post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange> {
        Some(written(write(&operation("update", placed, Some(&post.body)))))
    }

    async fn remove(&self, _: &(), _: &(), _id: &str, _post: Outgoing<'_>, placed: &Placed<'_>) -> Option<Exchange> {
        Some(written(write(&operation("delete", placed, None))))
    }
}

/// One Web API operation as its line (docs/webapi.md, "Backends"): `op`, `ts`, `channel`,
/// `thread_ts` and, but for a delete, the canonical payload.
fn operation(op: &str, placed: &Placed<'_>, payload: Option<&[u8]>) -> Vec<u8> {
    let mut line = b"{\"op\":".to_vec();
    write_string(&mut line, op);
    line.extend_from_slice(b",\"ts\":");
    write_string(&mut line, &placed.ts.to_string());
    line.extend_from_slice(b",\"channel\":");
    write_string(&mut line, placed.channel);
    line.extend_from_slice(b",\"thread_ts\":");
    match placed.thread_ts {
        Some(ts) => write_string(&mut line, &ts.to_string()),
        None => line.extend_from_slice(b"null"),
    }
    if let Some(payload) = payload {
        line.extend_from_slice(b",\"payload\":");
        line.extend_from_slice(payload);
    }
    line.push(b'}');
    line
}

fn written(result: std::io::Result<()>) -> Exchange {
    match result {
        Ok(()) => Exchange { upstream: Upstream::Logged, result: Ok(()) },
        Err(_) => {
            Exchange { upstream: Upstream::Failed(Failure::Io), result: Err(Undelivered::Unavailable(Failure::Io)) }
        }
    }
}

fn write(payload: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(payload)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webapi::ts::Ts;

    #[test]
    fn operations_are_one_line_each() {
        let placed = Placed { ts: Ts(2_000_001), channel: "alerts", thread_ts: None, root_id: None };
        let line = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        assert_eq!(
            line(operation("post", &placed, Some(br#"{"text":"hi"}"#))),
            r#"{"op":"post","ts":"2.000001","channel":"alerts","thread_ts":null,"payload":{"text":"hi"}}"#
        );
        let reply = Placed { thread_ts: Some(Ts(1_000_000)), root_id: Some("1.000000"), ..placed };
        assert_eq!(
            line(operation("delete", &reply, None)),
            r#"{"op":"delete","ts":"2.000001","channel":"alerts","thread_ts":"1.000000"}"#
        );
    }
}
