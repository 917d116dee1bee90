//! The `matrix` kind (docs/matrix.md): each post becomes an `m.room.message` event, sent with
//! `PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`, the txnId made of the
//! request id and the part number so a retried send never posts twice.
//!
//! Backend keys: the endpoint's (`url`, timeouts, TLS), `server_name`, `msgtype`,
//! `max_message_chars`, and one identity: `access_token` (one bot user posts for every hook;
//! the effective username prefixes the text) or `as_token` with `user_prefix` (an application
//! service: a user per hook, `users.rs`). Hook keys: `room` (an id or an alias, resolved once and
//! cached) and `[hooks.rooms]` (requested channel to room). A user not yet in a room joins it
//! when the room refuses its first event. `html.rs` and `content.rs` make the event.

pub mod content;
pub mod html;
pub mod users;

use super::http::answer::Answer;
use super::http::endpoint::{self, Endpoint, Request};
use super::kind::{Deliver, Exchange, Outgoing, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{Findings, Hook, KindConfig, KindRules, KindTable};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use users::AppService;

pub struct Matrix;

/// A matrix backend, read from its table.
#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// `Authorization` header value: `Bearer {access_token or as_token}`.
    authorization: String,
    server_name: String,
    /// Set with `as_token`: each hook posts as its own user.
    app_service: Option<AppService>,
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

/// The format of the posts this release stores: 1 added `v`.
const POST_FORMAT: u32 = 1;

/// A whole event's content must stay under Matrix's 64 KiB event limit, with room for the rest.
const MAX_CONTENT_BYTES: usize = 60_000;

const KEYS: &[&str] = &["server_name", "access_token", "as_token", "user_prefix", "msgtype", "max_message_chars"];

/// One post as stored in a job: the channel it asks for, with an application service the user
/// that posts it and that user's display name, and the event content.
#[derive(Serialize, Deserialize)]
struct Post<'a> {
    /// The post's format (docs/spool.md "Formats"): 0 when absent, as the release before
    /// versions wrote it.
    #[serde(default)]
    v: u32,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: &'a RawValue,
}

/// Whether `room` is a room id or an alias (`#name:server`). Room ids are `!opaque:server` up
/// to room version 11 and `!opaque` from version 12, which Synapse creates by default.
fn valid_room(room: &str) -> bool {
    let named =
        |rest: &str| rest.split_once(':').is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
    let well_formed = match room.split_at_checked(1) {
        Some(("!", id)) => named(id) || (!id.is_empty() && !id.contains(':')),
        Some(("#", alias)) => named(alias),
        _ => false,
    };
    well_formed && !room.chars().any(char::is_whitespace)
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

    fn keys(&self) -> &'static [&'static [&'static str]] {
        &[endpoint::KEYS, KEYS]
    }

    /// `backend_key` only to warn about it.
    fn hook_keys(&self) -> &'static [&'static str] {
        &["room", "rooms", "backend_key"]
    }

    fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = &table.name;
        let endpoint = endpoint::from_table(table, "matrix", findings);
        let max_message_chars = table.positive("max_message_chars", 30_000, 1 << 20, findings);
        let server_name = table.string("server_name", findings);
        let access_token = table.string("access_token", findings);
        let as_token = table.string("as_token", findings);
        let user_prefix = table.string("user_prefix", findings);
        let msgtype = table.string("msgtype", findings);
        let (Ok(server_name), Ok(access_token), Ok(as_token), Ok(user_prefix), Ok(msgtype)) =
            (server_name, access_token, as_token, user_prefix, msgtype)
        else {
            return None;
        };
        let Some(server_name) = server_name else {
            findings.error(table.at.clone(), format!("backend `{name}` of kind matrix needs a server_name"));
            return None;
        };
        let (token, app_service) = match (access_token, as_token, user_prefix) {
            (Some(token), None, None) => (token, None),
            (None, Some(token), Some(prefix)) => {
                let valid = !prefix.value.is_empty() && prefix.value.chars().all(users::localpart_char);
                if !valid {
                    let message = format!(
                        "backend `{name}`: user_prefix {:?} must be one or more of a-z 0-9 . _ = -",
                        prefix.value
                    );
                    findings.error(prefix.at.clone(), message);
                    return None;
                }
                (token, Some(AppService::new(prefix.value)))
            }
            (Some(_), Some(written), _) => {
                let message = format!("backend `{name}`: access_token and as_token exclude each other; pick one");
                findings.error(written.at.clone(), message);
                return None;
            }
            (None, Some(written), None) => {
                let message = format!("backend `{name}`: as_token needs a user_prefix for the hooks' users");
                findings.error(written.at.clone(), message);
                return None;
            }
            (_, None, Some(written)) => {
                let message = format!("backend `{name}`: user_prefix is only read with an as_token");
                findings.error(written.at.clone(), message);
                return None;
            }
            (None, None, None) => {
                let message =
                    format!("backend `{name}` of kind matrix needs an access_token, or an as_token with a user_prefix");
                findings.error(table.at.clone(), message);
                return None;
            }
        };
        let token_ok = !token.value.is_empty() && token.value.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            findings
                .error(token.at.clone(), format!("backend `{name}`: the token must be printable ASCII without spaces"));
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
        if !token_ok {
            return None;
        }
        Some(Arc::new(Config {
            endpoint: endpoint?,
            authorization: format!("Bearer {}", token.value),
            server_name: server_name.value,
            app_service,
            msgtype,
            max_message_chars: max_message_chars?,
        }))
    }

    fn hook(&self, hook: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = &hook.name;
        if let Some(key) = hook.string("backend_key", findings).ok()? {
            findings
                .warn(key.at, format!("hook `{name}`: backend_key has no meaning for a matrix backend and is ignored"));
        }
        let (room, rooms) = (hook.string("room", findings), hook.strings("rooms", findings));
        let (Ok(room), Ok(rooms)) = (room, rooms) else { return None };
        let Some(room) = room else {
            findings.error(hook.at.clone(), format!("hook `{name}` uses a matrix backend and needs a room"));
            return None;
        };
        let mut valid = true;
        for written in std::iter::once(&room).chain(rooms.iter().map(|(_, r)| r)) {
            if !valid_room(&written.value) {
                let message =
                    format!("hook `{name}`: {:?} is not a room id (!id:server, or !id from room version 12) or alias (#name:server)", written.value);
                findings.error(written.at.clone(), message);
                valid = false;
            }
        }
        valid.then(|| {
            Arc::new(Target {
                room: room.value,
                rooms: rooms.into_iter().map(|(channel, room)| (channel, room.value)).collect(),
                resolved: Mutex::new(HashMap::new()),
            }) as Arc<dyn KindConfig>
        })
    }
}

/// Each post's content within `MAX_CONTENT_BYTES`: text split at `max_chars`, then at half that
/// while the HTML makes an event too large. With an application service, the post names its
/// user and display name; with a bot user, the username prefixes the text.
fn render_posts(message: Message, hook: &Hook, config: &Config) -> Vec<String> {
    let user = config.app_service.as_ref().map(|app| app.localpart(hook, &message.username, &config.server_name));
    let name = user.as_ref().map(|_| if message.username.is_empty() { &hook.name } else { &message.username });
    let prefix = (user.is_none() && !message.username.is_empty()).then_some(message.username.as_str());
    let mut max_chars = config.max_message_chars;
    loop {
        // Serialising parsed JSON cannot fail: keys are strings and numbers are finite.
        let contents: Vec<Box<RawValue>> = crate::delivery::split::split(message.clone(), max_chars)
            .iter()
            .map(|m| serde_json::value::to_raw_value(&content::content(m, config.msgtype, prefix)).expect("JSON"))
            .collect();
        if contents.iter().all(|c| c.get().len() < MAX_CONTENT_BYTES) || max_chars < 1_000 {
            return contents
                .iter()
                .map(|content| {
                    let post = Post {
                        v: POST_FORMAT,
                        channel: Cow::Borrowed(&message.channel),
                        user: user.as_deref().map(Cow::Borrowed),
                        name: name.map(|n| Cow::Borrowed(n.as_str())),
                        content,
                    };
                    serde_json::to_string(&post).unwrap_or_default()
                })
                .collect();
        }
        max_chars /= 2;
    }
}

/// One call to the homeserver's client API with the backend's token: its answer, or the
/// exchange that says why there is none.
async fn call(
    post: &Outgoing<'_>,
    config: &Config,
    method: &str,
    path: &[&str],
    body: &[u8],
) -> Result<Answer, Exchange> {
    let request = Request {
        method,
        path,
        headers: &[("Authorization", &config.authorization)],
        body,
        request_id: post.request_id,
        keep_body: true,
    };
    config.endpoint.send(post.pool, &request).await.map_err(unavailable)
}

fn unavailable(failure: super::kind::Failure) -> Exchange {
    Exchange { upstream: Upstream::Failed(failure), result: Err(Undelivered::Unavailable(failure)) }
}

/// A call made on the way to an event (registering a user, naming it, resolving an alias) that
/// did not succeed. A 4xx there says the backend is set up wrong (a token or user prefix outside
/// the application service's namespace), not that the message is bad, so only 429 and 404
/// keep their meaning.
fn failed(answer: Answer) -> Exchange {
    let status = answer.status;
    let result = match classify(answer) {
        Err(limited @ Undelivered::RateLimited { .. }) => Err(limited),
        Err(Undelivered::NotFound) => Err(Undelivered::NotFound),
        _ => Err(Undelivered::Error(status)),
    };
    Exchange { upstream: Upstream::Status(status), result }
}

impl Target {
    /// The room a post goes to: the requested channel's, when `[hooks.rooms]` maps it (Slack
    /// clients write `#ops` for the channel `ops`), else the hook's.
    fn room_for(&self, channel: &str) -> &str {
        let mapped = self.rooms.get(channel).or_else(|| self.rooms.get(channel.strip_prefix('#')?));
        mapped.map_or(self.room.as_str(), String::as_str)
    }

    /// The room id for `room`: itself, or what its alias resolved to (cached).
    async fn room_id(&self, post: &Outgoing<'_>, config: &Config, room: &str) -> Result<String, Exchange> {
        if room.starts_with('!') {
            return Ok(room.to_owned());
        }
        if let Some(id) = self.resolved.lock().unwrap_or_else(|p| p.into_inner()).get(room) {
            return Ok(id.clone());
        }
        let alias = encode(room);
        let answer = call(post, config, "GET", &["/_matrix/client/v3/directory/room/", &alias], b"").await?;
        let status = answer.status;
        let room_id = answer
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| v["room_id"].as_str().map(str::to_owned));
        match (status, room_id) {
            (200, Some(id)) => {
                self.resolved.lock().unwrap_or_else(|p| p.into_inner()).insert(room.to_owned(), id.clone());
                Ok(id)
            }
            (200, None) => Err(Exchange { upstream: Upstream::Status(200), result: Err(Undelivered::Error(200)) }),
            _ => Err(failed(answer)),
        }
    }
}

impl Deliver for Matrix {
    type Backend = Config;
    type Target = Target;

    fn render(&self, config: &Config, hook: &Hook, message: Message) -> Vec<String> {
        render_posts(message, hook, config)
    }

    /// An event has no icon: a user's avatar would need the image uploaded to the homeserver.
    fn unsupported(&self, _config: &Config, message: &Message) -> Vec<&'static str> {
        [("icon_url", &message.icon_url), ("icon_emoji", &message.icon_emoji)]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(field, _)| field)
            .collect()
    }

    async fn send(&self, config: &Config, target: &Target, post: Outgoing<'_>) -> Exchange {
        // A post this release cannot read, or of a newer format, is never guessed at.
        let Some(stored) = serde_json::from_slice::<Post>(&post.body).ok().filter(|p| p.v <= POST_FORMAT) else {
            return Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Refused) };
        };
        // Only a post rendered for an application service names a user. Stored posts can outlive
        // a change of identity in the rules: then the bot posts it (without a name prefix), or
        // the service's own sender user does.
        let mut as_user = String::new();
        if let (Some(app), Some(localpart)) = (&config.app_service, &stored.user) {
            let user_id = format!("@{localpart}:{}", config.server_name);
            let name = stored.name.as_deref().unwrap_or(localpart);
            if let Err(exchange) = app.ensure(&post, config, &user_id, localpart, name).await {
                return exchange;
            }
            as_user = format!("?user_id={}", encode(&user_id));
        }
        let room = match target.room_id(&post, config, target.room_for(&stored.channel)).await {
            Ok(room) => encode(&room),
            Err(exchange) => return exchange,
        };
        let txn = encode(&format!("{}-{}", post.request_id, post.part));
        let path = ["/_matrix/client/v3/rooms/", &room, "/send/m.room.message/", &txn, &as_user];
        let content = stored.content.get().as_bytes();
        let sent = match call(&post, config, "PUT", &path, content).await {
            Ok(answer) => Exchange { upstream: Upstream::Status(answer.status), result: classify(answer) },
            Err(exchange) => return exchange,
        };
        if sent.result != Err(Undelivered::Forbidden) {
            return sent;
        }
        // Not in the room yet: join it (anyone may join a public room) and send again. When the
        // join is refused too, the room's 403 stands.
        let join = ["/_matrix/client/v3/join/", &room, &as_user];
        match call(&post, config, "POST", &join, b"{}").await {
            Ok(answer) if (200..300).contains(&answer.status) => {}
            Ok(answer) if matches!(answer.status, 429 | 500..) => return failed(answer),
            Ok(_) => return sent,
            Err(exchange) => return exchange,
        }
        match call(&post, config, "PUT", &path, content).await {
            Ok(answer) => Exchange { upstream: Upstream::Status(answer.status), result: classify(answer) },
            Err(exchange) => exchange,
        }
    }
}

/// Synapse's answers in the table every HTTP kind shares (`Undelivered::from_status`); a 429
/// waits its `Retry-After`, or else the body's `retry_after_ms` rounded up to seconds.
pub fn classify(answer: Answer) -> Result<(), Undelivered> {
    let from_body = || {
        let body = serde_json::from_slice::<serde_json::Value>(answer.body.as_deref()?).ok()?;
        Some(body["retry_after_ms"].as_u64()?.div_ceil(1000))
    };
    Undelivered::from_status(answer.status, answer.retry_after.or_else(from_body))
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
            ("!SYhKiJXDAjpf0DMR6eZD47jRl8vUIpcZceC_f4eV9hs", true),
            ("!", false),
            ("!abc:", false),
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

    fn config(app_service: Option<AppService>) -> Config {
        let trust = crate::tls::client::TrustOptions { ca_file: None, server_name: None, verify: true };
        Config {
            endpoint: Endpoint::new("m", "http://127.0.0.1:1", 1000, 1000, &trust).unwrap(),
            authorization: "Bearer t".into(),
            server_name: "example.org".into(),
            app_service,
            msgtype: "m.notice",
            max_message_chars: 30_000,
        }
    }

    /// A post's channel, user, name and body.
    type Parts = (String, Option<String>, Option<String>, String);

    /// The posts' parts, and the largest content in bytes.
    fn rendered(posts: &[String]) -> (Vec<Parts>, usize) {
        let mut largest = 0;
        let parts = posts
            .iter()
            .map(|p| {
                let post: Post = serde_json::from_str(p).unwrap();
                largest = largest.max(post.content.get().len());
                let content: serde_json::Value = serde_json::from_str(post.content.get()).unwrap();
                let body = content["body"].as_str().unwrap().to_owned();
                (post.channel.into_owned(), post.user.map(Cow::into_owned), post.name.map(Cow::into_owned), body)
            })
            .collect();
        (parts, largest)
    }

    #[test]
    fn stored_posts_carry_their_format_and_older_ones_read() {
        let hook = Hook { name: "ci".into(), ..Hook::default() };
        let posts = render_posts(Message { text: "hi".into(), ..Message::default() }, &hook, &config(None));
        assert!(posts[0].starts_with(r#"{"v":1,"channel":"#), "{}", posts[0]);
        // As the release before versions stored it (tests/data/spool-v0).
        let v0 = r#"{"channel":"","content":{"msgtype":"m.notice","body":"to the **room**"}}"#;
        let post: Post = serde_json::from_str(v0).unwrap();
        assert_eq!((post.v, post.channel.as_ref()), (0, ""));
    }

    #[test]
    fn posts_name_their_user_or_prefix_the_username() {
        let hook = Hook { name: "ci".into(), ..Hook::default() };
        let message = Message {
            text: "hi".into(),
            channel: "#ops".into(),
            username: "Jenkins \"CI\"".into(),
            ..Message::default()
        };
        let bot = render_posts(message.clone(), &hook, &config(None));
        let want = vec![("#ops".to_owned(), None, None, "**Jenkins \"CI\"**: hi".to_owned())];
        assert_eq!(rendered(&bot).0, want);
        let app = render_posts(message, &hook, &config(Some(AppService::new("hook_".into()))));
        let want = vec![(
            "#ops".to_owned(),
            Some("hook_ci_jenkins__ci_".to_owned()),
            Some("Jenkins \"CI\"".to_owned()),
            "hi".to_owned(),
        )];
        assert_eq!(rendered(&app).0, want);
        let unnamed = render_posts(Message { text: "x".into(), ..Message::default() }, &hook, &config(None));
        assert_eq!(rendered(&unnamed).0, vec![(String::new(), None, None, "x".to_owned())]);
    }

    #[test]
    fn html_that_outgrows_an_event_splits_the_text_further() {
        let hook = Hook { name: "ci".into(), ..Hook::default() };
        // Each `<` is four bytes of HTML (`&lt;`) and one of body: 30,000 of them make 150 kB.
        let text = "<".repeat(30_000);
        let message = Message { text: text.clone(), ..Message::default() };
        let (parts, largest) = rendered(&render_posts(message, &hook, &config(None)));
        assert!(largest < MAX_CONTENT_BYTES, "{largest}");
        assert!(parts.len() >= 3, "{}", parts.len());
        let joined: String = parts.iter().map(|(_, _, _, body)| body.as_str()).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn the_channel_picks_a_mapped_room() {
        let target = Target {
            room: "#ci:x".into(),
            rooms: HashMap::from([("town-square".into(), "!town:x".into())]),
            resolved: Mutex::new(HashMap::new()),
        };
        assert_eq!(target.room_for("town-square"), "!town:x");
        assert_eq!(target.room_for("#town-square"), "!town:x");
        assert_eq!(target.room_for("elsewhere"), "#ci:x");
        assert_eq!(target.room_for(""), "#ci:x");
    }
}
