//! A mattermost backend with `api_token` and `team` (docs/webapi.md, "Backends"): posts go
//! through Mattermost's REST API as a bot account, so each post has an id that can be replied
//! to, patched and deleted. Channel names are the team's, looked up once and cached; `@user` is
//! the direct channel between the bot and that user.

use crate::delivery::http::answer::Answer;
use crate::delivery::http::endpoint::{encode, Endpoint};
use crate::delivery::kind::{Exchange, Outgoing, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::spool::lock;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The REST API's part of a backend.
#[derive(Debug)]
pub struct Api {
    /// `Bearer {api_token}`.
    pub(super) authorization: String,
    /// The team whose channel names calls use.
    pub(super) team: String,
    /// Channel ids by the name a message gave (`town-square`, `@alice`).
    channels: Mutex<HashMap<String, String>>,
    /// The bot's own user id, for direct channels.
    me: Mutex<Option<String>>,
}

impl Api {
    pub(super) fn new(token: &str, team: String) -> Api {
        Api {
            authorization: format!("Bearer {token}"),
            team,
            channels: Mutex::new(HashMap::new()),
            me: Mutex::new(None),
        }
    }

    /// One call with the bot's token.
    async fn call(
        &self,
        endpoint: &Endpoint,
        post: &Outgoing<'_>,
        method: &str,
        path: &[&str],
        body: &[u8],
    ) -> Result<Answer, Exchange> {
        endpoint.call(post, &self.authorization, method, path, body).await
    }

    /// Creates one post from a canonical message, in the thread of `root_id` when given; the
    /// post's id.
    pub(super) async fn create(
        &self,
        endpoint: &Endpoint,
        post: &Outgoing<'_>,
        root_id: Option<&str>,
    ) -> (Exchange, Option<String>) {
        let Ok(message) = serde_json::from_slice::<Message>(&post.body) else {
            return (Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Refused) }, None);
        };
        let channel_id = match self.channel_id(endpoint, post, &message.channel).await {
            Ok(id) => id,
            Err(exchange) => return (exchange, None),
        };
        let mut body = json!({"channel_id": channel_id, "message": message.text, "props": props(&message)});
        if let Some(root) = root_id {
            body["root_id"] = root.into();
        }
        match self.call(endpoint, post, "POST", &["/api/v4/posts"], body.to_string().as_bytes()).await {
            Ok(answer) => {
                let id = string_member(&answer, "id");
                (exchange(answer), id)
            }
            Err(exchange) => (exchange, None),
        }
    }

    /// Replaces the text and props of the post `id` with a canonical message's.
    pub(super) async fn patch(&self, endpoint: &Endpoint, post: &Outgoing<'_>, id: &str) -> Exchange {
        let Ok(message) = serde_json::from_slice::<Message>(&post.body) else {
            return Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::Refused) };
        };
        let body = json!({"message": message.text, "props": props(&message)}).to_string();
        let path = ["/api/v4/posts/", &encode(id), "/patch"];
        match self.call(endpoint, post, "PUT", &path, body.as_bytes()).await {
            Ok(answer) => exchange(answer),
            Err(exchange) => exchange,
        }
    }

    pub(super) async fn delete(&self, endpoint: &Endpoint, post: &Outgoing<'_>, id: &str) -> Exchange {
        match self.call(endpoint, post, "DELETE", &["/api/v4/posts/", &encode(id)], b"").await {
            Ok(answer) => exchange(answer),
            Err(exchange) => exchange,
        }
    }

    /// The id of the channel a message names: a channel of the team by name, or `@user`'s direct
    /// channel with the bot. Found once, then cached.
    async fn channel_id(&self, endpoint: &Endpoint, post: &Outgoing<'_>, name: &str) -> Result<String, Exchange> {
        let name = name.strip_prefix('#').unwrap_or(name);
        if let Some(id) = lock(&self.channels).get(name) {
            return Ok(id.clone());
        }
        let id = match name.strip_prefix('@') {
            Some(user) => self.direct_channel(endpoint, post, user).await?,
            None => {
                // An empty name (a webhook that named none, on a hook without `channel`) is
                // asked for too: Mattermost's 404 says it best.
                let path = ["/api/v4/teams/name/", &encode(&self.team), "/channels/name/", &encode(name)];
                self.found(self.call(endpoint, post, "GET", &path, b"").await?, "id")?
            }
        };
        lock(&self.channels).insert(name.to_owned(), id.clone());
        Ok(id)
    }

    async fn direct_channel(&self, endpoint: &Endpoint, post: &Outgoing<'_>, user: &str) -> Result<String, Exchange> {
        let path = ["/api/v4/users/username/", &encode(user)];
        let other = self.found(self.call(endpoint, post, "GET", &path, b"").await?, "id")?;
        let known = lock(&self.me).clone();
        let me = match known {
            Some(me) => me,
            None => {
                let me = self.found(self.call(endpoint, post, "GET", &["/api/v4/users/me"], b"").await?, "id")?;
                *lock(&self.me) = Some(me.clone());
                me
            }
        };
        let members = json!([me, other]).to_string();
        self.found(self.call(endpoint, post, "POST", &["/api/v4/channels/direct"], members.as_bytes()).await?, "id")
    }

    /// The string `member` of a successful answer; the answer's meaning as an exchange otherwise.
    fn found(&self, answer: Answer, member: &str) -> Result<String, Exchange> {
        let status = answer.status;
        match (status, string_member(&answer, member)) {
            (200..=299, Some(value)) => Ok(value),
            (200..=299, None) => {
                Err(Exchange { upstream: Upstream::Status(status), result: Err(Undelivered::Error(status)) })
            }
            _ => Err(exchange(answer)),
        }
    }
}

/// What an answer means, by the table every HTTP kind shares.
fn exchange(answer: Answer) -> Exchange {
    Exchange {
        upstream: Upstream::Status(answer.status),
        result: Undelivered::from_status(answer.status, answer.retry_after),
    }
}

fn string_member(answer: &Answer, member: &str) -> Option<String> {
    let body: Value = serde_json::from_slice(answer.body.as_deref()?).ok()?;
    body[member].as_str().map(str::to_owned)
}

/// A post's props as an incoming webhook would set them: the message's own props, its
/// attachments, and the name and icon it asks for (shown when the server allows overrides).
fn props(message: &Message) -> Value {
    let mut props = message
        .props
        .as_ref()
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| if let Value::Object(map) = v { Some(map) } else { None })
        .unwrap_or_default();
    if !message.attachments.is_empty() {
        props.insert("attachments".into(), serde_json::to_value(&message.attachments).unwrap_or_default());
    }
    for (key, value) in [
        ("override_username", &message.username),
        ("override_icon_url", &message.icon_url),
        ("override_icon_emoji", &message.icon_emoji),
    ] {
        if !value.is_empty() {
            props.insert(key.into(), value.as_str().into());
        }
    }
    Value::Object(props)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::incoming::Attachment;

    #[test]
    fn props_carry_attachments_and_overrides() {
        let message = Message {
            text: "t".into(),
            username: "ci".into(),
            icon_emoji: ":robot:".into(),
            attachments: vec![Attachment { text: "a".into(), ..Attachment::default() }],
            ..Message::default()
        };
        assert_eq!(
            props(&message),
            json!({"attachments": [{"text": "a"}], "override_username": "ci", "override_icon_emoji": ":robot:"})
        );
        assert_eq!(props(&Message::default()), json!({}));
    }
}
