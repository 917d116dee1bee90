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

mod config;
mod send;

use super::kind::{Deliver, Exchange, Outgoing, Placed};
use crate::pipeline::message::Message;
use crate::rules::Hook;
pub use config::{Config, Target};
use send::Relation;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

pub struct Matrix;

/// The format of the posts this release stores: 1 added `v`.
const POST_FORMAT: u32 = 1;

/// A whole event's content must stay under Matrix's 64 KiB event limit, with room for the rest.
const MAX_CONTENT_BYTES: usize = 60_000;

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
        send::send(config, target, post).await
    }

    fn threads(&self, _config: &Config) -> bool {
        true
    }

    async fn post(
        &self,
        config: &Config,
        target: &Target,
        post: Outgoing<'_>,
        placed: &Placed<'_>,
    ) -> (Exchange, Option<String>) {
        let relation = match placed.root_id {
            Some(root) => Relation::Thread { root: send::event_of(root).0 },
            None => Relation::Plain,
        };
        send::event(config, target, &post, relation).await
    }

    async fn edit(
        &self,
        config: &Config,
        target: &Target,
        id: &str,
        post: Outgoing<'_>,
        _: &Placed<'_>,
    ) -> Option<Exchange> {
        Some(send::event(config, target, &post, Relation::Replace { original: send::event_of(id).0 }).await.0)
    }

    async fn remove(
        &self,
        config: &Config,
        target: &Target,
        id: &str,
        post: Outgoing<'_>,
        placed: &Placed<'_>,
    ) -> Option<Exchange> {
        Some(send::redact(config, target, &post, placed.channel, id).await)
    }
}

#[cfg(test)]
mod tests {
    use super::config::valid_room;
    use super::send::classify;
    use super::users::AppService;
    use super::*;
    use crate::delivery::http::answer::Answer;
    use crate::delivery::http::endpoint::encode;
    use crate::delivery::http::endpoint::Endpoint;
    use crate::delivery::kind::Undelivered;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[test]
    fn replies_and_edits_carry_their_relation() {
        let content =
            r#"{"msgtype":"m.notice","body":"new","format":"org.matrix.custom.html","formatted_body":"<b>new</b>"}"#;
        let reply: serde_json::Value =
            serde_json::from_str(&send::relate(content, Relation::Thread { root: "$root" })).unwrap();
        assert_eq!(
            reply["m.relates_to"],
            serde_json::json!({"rel_type": "m.thread", "event_id": "$root", "is_falling_back": true,
                "m.in_reply_to": {"event_id": "$root"}})
        );
        assert_eq!(reply["body"], "new");
        let edit: serde_json::Value =
            serde_json::from_str(&send::relate(content, Relation::Replace { original: "$first" })).unwrap();
        assert_eq!((edit["body"].as_str(), edit["formatted_body"].as_str()), (Some("* new"), Some("* <b>new</b>")));
        assert_eq!(edit["m.new_content"], serde_json::from_str::<serde_json::Value>(content).unwrap());
        assert_eq!(edit["m.relates_to"], serde_json::json!({"rel_type": "m.replace", "event_id": "$first"}));
    }

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
