//! The `matrix` kind (contract section 13): each post becomes an `m.room.message` event, sent with
//! `PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`, the txnId made of the
//! request id and the part number so a retried send never posts twice.
//!
//! Backend keys: the endpoint's (`url`, timeouts, TLS), `server_name`, `access_token` (one bot
//! user posts for every hook; the effective username prefixes the text), `msgtype`,
//! `max_message_chars`. Hook keys: `room` (an id or an alias, resolved once and cached) and
//! `[hooks.rooms]` (requested channel to room). `html.rs` and `content.rs` make the event.
//! Application-service identities (`as_token`, a user per hook) are not built yet.

pub mod content;
pub mod html;

use super::http::answer::Answer;
use super::http::endpoint::{self, Endpoint, Request};
use super::kind::{Exchange, Kind, Send, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{BackendTable, Findings, HookKeys, KindConfig, KindRules, Written};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Matrix;

/// A matrix backend, read from its table.
#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// `Authorization` header value: `Bearer {access_token}`.
    authorization: String,
    pub msgtype: &'static str,
    pub max_message_chars: usize,
}

/// A hook's rooms, with the room ids its aliases resolved to.
#[derive(Debug)]
pub struct Target {
    room: String,
    rooms: HashMap<String, String>,
    resolved: Mutex<HashMap<String, String>>,
}

/// A whole event's content must stay under Matrix's 64 KiB event limit, with room for the rest.
const MAX_CONTENT_BYTES: usize = 60_000;

const KEYS: &[&str] = &[
    "url",
    "timeout_ms",
    "connect_timeout_ms",
    "ca_file",
    "tls_server_name",
    "tls_verify",
    "server_name",
    "access_token",
    "as_token",
    "user_prefix",
    "msgtype",
    "max_message_chars",
];

/// One post as stored in a job: the channel it asks for and the event content.
#[derive(Serialize, Deserialize)]
struct Post<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow)]
    content: &'a RawValue,
}

/// Whether `room` is a room id (`!opaque:server`) or an alias (`#name:server`).
fn valid_room(room: &str) -> bool {
    (room.starts_with('!') || room.starts_with('#'))
        && room[1..].split_once(':').is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
        && !room.chars().any(char::is_whitespace)
}

/// A path part as the Matrix API reads it: everything but unreserved characters percent-encoded.
fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len() * 3);
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl KindRules for Matrix {
    fn name(&self) -> &'static str {
        "matrix"
    }

    fn keys(&self) -> &'static [&'static str] {
        KEYS
    }

    fn backend(&self, table: &BackendTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = &table.name;
        let endpoint = endpoint::from_table(table, "matrix", findings);
        let max_message_chars = table.positive("max_message_chars", 30_000, 1 << 20, findings);
        let strings: Vec<Result<Option<Written<String>>, _>> =
            ["server_name", "access_token", "as_token", "user_prefix", "msgtype"]
                .iter()
                .map(|k| table.string(k, findings))
                .collect();
        let [Ok(server_name), Ok(access_token), Ok(as_token), Ok(user_prefix), Ok(msgtype)] =
            <[_; 5]>::try_from(strings).ok()?
        else {
            return None;
        };
        if server_name.is_none() {
            findings.error(table.at.clone(), format!("backend `{name}` of kind matrix needs a server_name"));
        }
        if let Some(w) = as_token.as_ref().or(user_prefix.as_ref()) {
            findings.error(
                w.at.clone(),
                format!("backend `{name}`: as_token and user_prefix (a user per hook) are not supported yet; use access_token"),
            );
            return None;
        }
        let Some(token) = access_token else {
            findings.error(table.at.clone(), format!("backend `{name}` of kind matrix needs an access_token"));
            return None;
        };
        let token_ok = !token.value.is_empty() && token.value.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            findings.error(
                token.at.clone(),
                format!("backend `{name}`: access_token must be printable ASCII without spaces"),
            );
        }
        let msgtype = match msgtype.as_ref().map(|m| m.value.as_str()) {
            None | Some("m.notice") => "m.notice",
            Some("m.text") => "m.text",
            Some(other) => {
                let at = msgtype.as_ref().map_or(table.at.clone(), |m| m.at.clone());
                findings.error(at, format!("backend `{name}`: msgtype {other:?} must be \"m.notice\" or \"m.text\""));
                return None;
            }
        };
        if server_name.is_none() || !token_ok {
            return None;
        }
        Some(Arc::new(Config {
            endpoint: endpoint?,
            authorization: format!("Bearer {}", token.value),
            msgtype,
            max_message_chars: max_message_chars?,
        }))
    }

    fn hook(&self, hook: &HookKeys, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = hook.name;
        if let Some(key) = &hook.backend_key {
            findings.warn(
                key.at.clone(),
                format!("hook `{name}`: backend_key has no meaning for a matrix backend and is ignored"),
            );
        }
        let Some(room) = &hook.room else {
            findings.error(hook.at.clone(), format!("hook `{name}` uses a matrix backend and needs a room"));
            return None;
        };
        let mut valid = true;
        for written in std::iter::once(room).chain(hook.rooms.iter().map(|(_, r)| r)) {
            if !valid_room(written.value) {
                let message =
                    format!("hook `{name}`: {:?} is not a room id (!id:server) or alias (#name:server)", written.value);
                findings.error(written.at.clone(), message);
                valid = false;
            }
        }
        valid.then(|| {
            Arc::new(Target {
                room: room.value.to_owned(),
                rooms: hook.rooms.iter().map(|(c, r)| ((*c).to_owned(), r.value.to_owned())).collect(),
                resolved: Mutex::new(HashMap::new()),
            }) as Arc<dyn KindConfig>
        })
    }
}

/// Each post's content within `MAX_CONTENT_BYTES`: text split at `max_chars`, then at half that
/// while the HTML makes an event too large.
fn render_posts(message: Message, config: &Config) -> Vec<String> {
    let prefix = (!message.username.is_empty()).then(|| message.username.clone());
    let channel = message.channel.clone();
    let mut max_chars = config.max_message_chars;
    loop {
        let contents: Vec<String> = crate::delivery::split::split(message.clone(), max_chars)
            .iter()
            .map(|m| content::content(m, config.msgtype, prefix.as_deref()).to_string())
            .collect();
        if contents.iter().all(|c| c.len() < MAX_CONTENT_BYTES) || max_chars < 1_000 {
            return contents
                .iter()
                .map(|c| {
                    let content = RawValue::from_string(c.clone()).expect("content is JSON");
                    serde_json::to_string(&Post { channel: &channel, content: &content }).unwrap_or_default()
                })
                .collect();
        }
        max_chars /= 2;
    }
}

impl Target {
    /// The room a post goes to: the requested channel's, when `[hooks.rooms]` maps it, else the
    /// hook's.
    fn room_for(&self, channel: &str) -> &str {
        self.rooms.get(channel).map_or(self.room.as_str(), String::as_str)
    }
}

impl Matrix {
    /// The room id for `room`: itself, or what its alias resolved to (cached).
    async fn room_id(&self, post: &Send<'_>, config: &Config, target: &Target, room: &str) -> Result<String, Exchange> {
        if room.starts_with('!') {
            return Ok(room.to_owned());
        }
        if let Some(id) = target.resolved.lock().unwrap_or_else(|p| p.into_inner()).get(room) {
            return Ok(id.clone());
        }
        let alias = encode(room);
        let request = Request {
            method: "GET",
            path: &["/_matrix/client/v3/directory/room/", &alias],
            headers: &[("Authorization", &config.authorization)],
            body: b"",
            request_id: post.request_id,
            keep_body: true,
        };
        let answer = config.endpoint.send(post.pool, &request).await.map_err(unavailable)?;
        let status = answer.status;
        let room_id = answer
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v["room_id"].as_str().map(str::to_owned));
        match (status, room_id) {
            (200, Some(id)) => {
                target.resolved.lock().unwrap_or_else(|p| p.into_inner()).insert(room.to_owned(), id.clone());
                Ok(id)
            }
            (200, None) => Err(Exchange { upstream: Upstream::Status(200), result: Err(Undelivered::Error(200)) }),
            _ => Err(Exchange { upstream: Upstream::Status(status), result: classify(answer) }),
        }
    }
}

fn unavailable(failure: super::kind::Failure) -> Exchange {
    Exchange { upstream: Upstream::Failed(failure), result: Err(Undelivered::Unavailable(failure)) }
}

#[async_trait]
impl Kind for Matrix {
    fn render(&self, backend: &dyn KindConfig, message: Message) -> Vec<String> {
        match backend.as_any().downcast_ref::<Config>() {
            Some(config) => render_posts(message, config),
            None => Vec::new(),
        }
    }

    async fn send(&self, post: Send<'_>) -> Exchange {
        let (Some(config), Some(target)) =
            (post.backend.as_any().downcast_ref::<Config>(), post.hook.as_any().downcast_ref::<Target>())
        else {
            // Rules are only built by this kind's own readers, so this cannot happen.
            return Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Error(0)) };
        };
        let Ok(stored) = serde_json::from_slice::<Post>(&post.body) else {
            return Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Refused) };
        };
        let room = match self.room_id(&post, config, target, target.room_for(stored.channel)).await {
            Ok(room) => room,
            Err(exchange) => return exchange,
        };
        let (room, txn) = (encode(&room), encode(&format!("{}-{}", post.request_id, post.part)));
        let request = Request {
            method: "PUT",
            path: &["/_matrix/client/v3/rooms/", &room, "/send/m.room.message/", &txn],
            headers: &[("Authorization", &config.authorization)],
            body: stored.content.get().as_bytes(),
            request_id: post.request_id,
            keep_body: true,
        };
        match config.endpoint.send(post.pool, &request).await {
            Ok(answer) => Exchange { upstream: Upstream::Status(answer.status), result: classify(answer) },
            Err(failure) => unavailable(failure),
        }
    }
}

/// Synapse's answers in the contract's table (section 13): 429 waits its `Retry-After`, or
/// `retry_after_ms` rounded up; 401 (a bad token) is the gateway's misconfiguration.
pub fn classify(answer: Answer) -> Result<(), Undelivered> {
    match answer.status {
        200..=299 => Ok(()),
        400 => Err(Undelivered::Refused),
        403 => Err(Undelivered::Forbidden),
        404 => Err(Undelivered::NotFound),
        413 => Err(Undelivered::TooLarge),
        429 => {
            let from_body = answer
                .body
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["retry_after_ms"].as_u64())
                .map(|ms| ms.div_ceil(1000));
            Err(Undelivered::RateLimited { retry_after: answer.retry_after.or(from_body).unwrap_or(1).max(1) })
        }
        status => Err(Undelivered::Error(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synapse_answers_map_to_the_contract_table() {
        let a = |status, retry_after, body: &str| Answer {
            status,
            retry_after,
            body: (!body.is_empty()).then(|| body.as_bytes().to_vec()),
        };
        let cases = [
            (a(200, None, r#"{"event_id":"$x"}"#), Ok(())),
            (a(400, None, r#"{"errcode":"M_NOT_JSON"}"#), Err(Undelivered::Refused)),
            (a(401, None, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#), Err(Undelivered::Error(401))),
            (a(403, None, r#"{"errcode":"M_FORBIDDEN"}"#), Err(Undelivered::Forbidden)),
            (a(404, None, ""), Err(Undelivered::NotFound)),
            (a(413, None, r#"{"errcode":"M_TOO_LARGE"}"#), Err(Undelivered::TooLarge)),
            (a(429, Some(1), r#"{"retry_after_ms":777}"#), Err(Undelivered::RateLimited { retry_after: 1 })),
            (a(429, None, r#"{"retry_after_ms":2001}"#), Err(Undelivered::RateLimited { retry_after: 3 })),
            (a(429, None, ""), Err(Undelivered::RateLimited { retry_after: 1 })),
            (a(502, None, ""), Err(Undelivered::Error(502))),
        ];
        for (answer, want) in cases {
            assert_eq!(classify(answer.clone()), want, "{answer:?}");
        }
    }

    #[test]
    fn rooms_and_path_parts() {
        for (room, valid) in [
            ("!abc:example.org", true),
            ("#ci:example.org", true),
            ("#ci", false),
            ("!:x", false),
            ("ci:example.org", false),
            ("#c i:x", false),
        ] {
            assert_eq!(valid_room(room), valid, "{room}");
        }
        assert_eq!(encode("#ci:example.org"), "%23ci%3Aexample.org");
        assert_eq!(encode("r1-0"), "r1-0");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn the_channel_picks_a_mapped_room() {
        let target = Target {
            room: "#ci:x".into(),
            rooms: HashMap::from([("town-square".into(), "!town:x".into())]),
            resolved: Mutex::new(HashMap::new()),
        };
        assert_eq!(target.room_for("town-square"), "!town:x");
        assert_eq!(target.room_for("elsewhere"), "#ci:x");
        assert_eq!(target.room_for(""), "#ci:x");
    }
}
