//! Sending one post: the `PUT` of its event with the txnId that makes a retry harmless, the
//! room's alias resolved once, joining a room that refuses a user not yet in it, and what the
//! homeserver's answers mean.

use super::{Config, Post, Target, POST_FORMAT};
use crate::delivery::http::answer::Answer;
use crate::delivery::http::endpoint::encode;
use crate::delivery::kind::{Exchange, Outgoing, Undelivered, Upstream};

/// One call to the homeserver's client API with the backend's token: its answer, or the
/// exchange that says why there is none.
pub(super) async fn call(
    post: &Outgoing<'_>,
    config: &Config,
    method: &str,
    path: &[&str],
    body: &[u8],
) -> Result<Answer, Exchange> {
    config.endpoint.call(post, &config.authorization, method, path, body).await
}

/// A call made on the way to an event (registering a user, naming it, resolving an alias) that
/// did not succeed. A 4xx there says the backend is set up wrong (a token or user prefix outside
/// the application service's namespace), not that the message is bad, so only 429 and 404
/// keep their meaning.
pub(super) fn failed(answer: Answer) -> Exchange {
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
    pub(super) fn room_for(&self, channel: &str) -> &str {
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

/// What an event is to another, for the Web API (docs/webapi.md, "Backends").
#[derive(Debug, Clone, Copy)]
pub(super) enum Relation<'a> {
    /// A plain event, as every webhook's.
    Plain,
    /// A reply in the thread of the event `root`.
    Thread { root: &'a str },
    /// New content for the event `original`.
    Replace { original: &'a str },
}

/// Sends one stored post as its event; see the module's comment.
pub(super) async fn send(config: &Config, target: &Target, post: Outgoing<'_>) -> Exchange {
    event(config, target, &post, Relation::Plain).await.0
}

/// Sends one stored post as an event related as `relation` says; the event's id when the
/// homeserver took it.
pub(super) async fn event(
    config: &Config,
    target: &Target,
    post: &Outgoing<'_>,
    relation: Relation<'_>,
) -> (Exchange, Option<String>) {
    // A post this release cannot read, or of a newer format, is never guessed at.
    let Some(stored) = serde_json::from_slice::<Post>(&post.body).ok().filter(|p| p.v <= POST_FORMAT) else {
        return (Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Refused) }, None);
    };
    // Only a post rendered for an application service names a user. Stored posts can outlive
    // a change of identity in the rules: then the bot posts it (without a name prefix), or
    // the service's own sender user does.
    let mut as_user = String::new();
    let mut sender = None;
    if let (Some(app), Some(localpart)) = (&config.app_service, &stored.user) {
        let user_id = format!("@{localpart}:{}", config.server_name);
        let name = stored.name.as_deref().unwrap_or(localpart);
        if let Err(exchange) = app.ensure(post, config, &user_id, localpart, name).await {
            return (exchange, None);
        }
        as_user = format!("?user_id={}", encode(&user_id));
        sender = Some(user_id);
    }
    let room = match target.room_id(post, config, target.room_for(&stored.channel)).await {
        Ok(room) => encode(&room),
        Err(exchange) => return (exchange, None),
    };
    let related;
    let content = match relation {
        Relation::Plain => stored.content.get().as_bytes(),
        relation => {
            related = relate(stored.content.get(), relation);
            related.as_bytes()
        }
    };
    let txn = encode(&format!("{}-{}", post.request_id, post.part));
    let path = ["/_matrix/client/v3/rooms/", &room, "/send/m.room.message/", &txn, &as_user];
    let taken = |answer| taken(answer, sender.as_deref());
    let sent = match call(post, config, "PUT", &path, content).await {
        Ok(answer) => taken(answer),
        Err(exchange) => return (exchange, None),
    };
    if sent.0.result != Err(Undelivered::Forbidden) {
        return sent;
    }
    // Not in the room yet: join it (anyone may join a public room) and send again. When the
    // join is refused too, the room's 403 stands.
    let join = ["/_matrix/client/v3/join/", &room, &as_user];
    match call(post, config, "POST", &join, b"{}").await {
        Ok(answer) if (200..300).contains(&answer.status) => {}
        Ok(answer) if matches!(answer.status, 429 | 500..) => return (failed(answer), None),
        Ok(_) => return sent,
        Err(exchange) => return (exchange, None),
    }
    match call(post, config, "PUT", &path, content).await {
        Ok(answer) => taken(answer),
        Err(exchange) => (exchange, None),
    }
}

/// Redacts the post `id` in the room of `channel`, as the user who sent it: anyone may redact
/// their own events, whatever their power in the room.
pub(super) async fn redact(config: &Config, target: &Target, post: &Outgoing<'_>, channel: &str, id: &str) -> Exchange {
    let room = match target.room_id(post, config, target.room_for(channel)).await {
        Ok(room) => encode(&room),
        Err(exchange) => return exchange,
    };
    let (event, sender) = event_of(id);
    let as_user = sender.map_or(String::new(), |user| format!("?user_id={}", encode(user)));
    let txn = encode(&format!("{}-{}", post.request_id, post.part));
    let path = ["/_matrix/client/v3/rooms/", &room, "/redact/", &encode(event), "/", &txn, &as_user];
    match call(post, config, "PUT", &path, b"{}").await {
        Ok(answer) => taken(answer, None).0,
        Err(exchange) => exchange,
    }
}

/// An answer to a send, and the post id it makes: the event id, followed by a space and the
/// sender when an application-service user sent it (event ids hold no spaces).
fn taken(answer: crate::delivery::http::answer::Answer, sender: Option<&str>) -> (Exchange, Option<String>) {
    let event = answer
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v["event_id"].as_str().map(str::to_owned));
    let id = event.map(|event| match sender {
        Some(user) => format!("{event} {user}"),
        None => event,
    });
    (Exchange { upstream: Upstream::Status(answer.status), result: classify(answer) }, id)
}

/// A post id's event id and sender (`taken`).
pub(super) fn event_of(id: &str) -> (&str, Option<&str>) {
    match id.split_once(' ') {
        Some((event, sender)) => (event, Some(sender)),
        None => (id, None),
    }
}

/// The content of an event related to another: a thread reply carries `m.relates_to` with its
/// thread's root (and, for clients without threads, a reply to it); an edit carries the new
/// content under `m.new_content` and a `* `-prefixed fallback. See
/// docs/matrix.md, "Threads, edits and deletes".
pub(super) fn relate(content: &str, relation: Relation<'_>) -> String {
    let Ok(serde_json::Value::Object(mut content)) = serde_json::from_str::<serde_json::Value>(content) else {
        return content.to_owned();
    };
    match relation {
        Relation::Plain => {}
        Relation::Thread { root } => {
            content.insert(
                "m.relates_to".into(),
                serde_json::json!({"rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                    "m.in_reply_to": {"event_id": root}}),
            );
        }
        Relation::Replace { original } => {
            let new_content = serde_json::Value::Object(content.clone());
            for member in ["body", "formatted_body"] {
                if let Some(serde_json::Value::String(text)) = content.get_mut(member) {
                    text.insert_str(0, "* ");
                }
            }
            content.insert("m.new_content".into(), new_content);
            content.insert("m.relates_to".into(), serde_json::json!({"rel_type": "m.replace", "event_id": original}));
        }
    }
    serde_json::Value::Object(content).to_string()
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
