//! The spool's admin API (docs/spool.md), JSON on the admin listener: status per hook,
//! dead letters, replay and drop; and `DELETE /spool/{hook}`, to drop an orphaned hook's messages,
//! which no other request can reach.

use crate::rules::Rules;
use crate::spool::{HookStatus, Seq, Spool};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The answer to a `/spool` request: a status and a JSON body.
pub type JsonReply = (StatusCode, Value);

fn not_found(what: String) -> JsonReply {
    (StatusCode::NOT_FOUND, json!({ "error": what }))
}

fn failed(e: impl std::fmt::Display) -> JsonReply {
    (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": e.to_string() }))
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Serves `method path?query` under `/spool`.
pub async fn answer(spool: Option<&dyn Spool>, rules: &Rules, method: &Method, path: &str, query: &str) -> JsonReply {
    let Some(spool) = spool else { return not_found("no hook uses the spool".into()) };
    let parts: Vec<&str> = path.trim_start_matches("/spool").split('/').filter(|p| !p.is_empty()).collect();
    let status = match spool.status().await {
        Ok(status) => status,
        Err(e) => return failed(e),
    };
    let known = |hook: &str| rules.hook_named(hook).is_some() || status.iter().any(|(h, _)| h == hook);
    match (method, parts.as_slice()) {
        (&Method::GET, []) => (StatusCode::OK, overview(rules, &status)),
        (_, [hook, ..]) if !known(hook) => not_found(format!("no hook `{hook}` in the rules or the spool")),
        (&Method::GET, [hook, "dead"]) => match spool.dead(hook).await {
            Ok(letters) => {
                let with_payload = query.split('&').any(|p| p == "payload=1");
                let dead: Vec<Value> = letters
                    .iter()
                    .map(|l| {
                        let mut v = json!({
                            "id": l.seq.to_string(),
                            "request_id": l.job.request_id,
                            "received_at": rfc3339(l.job.received_ms),
                            "attempts": l.attempts,
                            "reason": l.reason,
                        });
                        if with_payload {
                            let posts: Vec<Value> = l
                                .job
                                .posts
                                .iter()
                                .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.clone())))
                                .collect();
                            v["payload"] = Value::Array(posts);
                        }
                        v
                    })
                    .collect();
                (StatusCode::OK, json!({ "dead": dead }))
            }
            Err(e) => failed(e),
        },
        (&Method::POST, [hook, "replay"]) => match spool.replay(hook, None).await {
            Ok(n) => (StatusCode::OK, json!({ "ok": true, "replayed": n })),
            Err(e) => failed(e),
        },
        (&Method::POST, [hook, "dead", id, "replay"]) => {
            let Ok(seq) = id.parse::<Seq>() else { return not_found(format!("no dead letter `{id}`")) };
            match spool.replay(hook, Some(seq)).await {
                Ok(0) => not_found(format!("no dead letter `{id}` for hook `{hook}`")),
                Ok(_) => (StatusCode::OK, json!({ "ok": true })),
                Err(e) => failed(e),
            }
        }
        (&Method::DELETE, [hook, "dead", id]) => {
            let Ok(seq) = id.parse::<Seq>() else { return not_found(format!("no dead letter `{id}`")) };
            match spool.drop_dead(hook, seq).await {
                Ok(false) => not_found(format!("no dead letter `{id}` for hook `{hook}`")),
                Ok(true) => (StatusCode::OK, json!({ "ok": true })),
                Err(e) => failed(e),
            }
        }
        // Only an orphaned hook's queue can go whole: a hook in the rules may be mid-delivery, and
        // its messages were acknowledged to clients that still expect them.
        (&Method::DELETE, [hook]) if rules.hook_named(hook).is_some() => (
            StatusCode::CONFLICT,
            json!({ "error": format!("hook `{hook}` is in the rules; only an orphaned hook's messages can be dropped whole") }),
        ),
        (&Method::DELETE, [hook]) => match spool.drop_hook(hook).await {
            Ok(n) => (StatusCode::OK, json!({ "ok": true, "dropped": n })),
            Err(e) => failed(e),
        },
        _ => not_found(format!("no {method} {path}")),
    }
}

/// `GET /spool`: every hook with something stored.
fn overview(rules: &Rules, status: &[(String, HookStatus)]) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut hooks = Map::new();
    for (hook, s) in status {
        hooks.insert(
            hook.clone(),
            json!({
                "pending": s.pending,
                "dead": s.dead,
                "orphaned": rules.hook_named(hook).is_none(),
                "oldest_pending_age_seconds": s.oldest_pending_ms.map(|t| now.saturating_sub(t) as f64 / 1000.0),
                "next_attempt_at": s.next_attempt_ms.map(|t| rfc3339(t.max(now))),
                "last_error": s.last_error,
            }),
        );
    }
    json!({ "hooks": hooks })
}
