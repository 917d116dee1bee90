//! A Web API call made typed (docs/webapi.md): its channel resolved by the hook's channel rules,
//! its content through the same translation, checks and policy as a webhook's
//! (`pipeline::shape`), its `ts` read. Pure, like the pipeline it uses.

use super::answer::ApiError;
use super::args::Args;
use super::ts::Ts;
use super::Method;
use crate::pipeline::incoming::Incoming;
use crate::pipeline::json::Json;
use crate::pipeline::message::Message;
use crate::pipeline::policy::{self, Action};
use crate::pipeline::{self, Processed, Timings};
use crate::rules::Hook;
use std::time::Instant;

/// What a call asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// A new message, in the thread of `thread_ts` when it names one.
    Post {
        channel: String,
        thread_ts: Option<String>,
        message: Message,
    },
    /// New content for the message `ts`.
    Update {
        channel: String,
        ts: Ts,
        message: Message,
    },
    Delete {
        channel: String,
        ts: Ts,
    },
    AuthTest,
}

/// The call, or why it cannot be made, and what happened on the way, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Made {
    pub call: Result<Call, ApiError>,
    /// Slack-only members present and not forwarded.
    pub dropped: Vec<&'static str>,
    pub actions: Vec<Action>,
    pub timings: Timings,
}

/// Arguments that are not content: they say where, not what.
const PLACE_ARGUMENTS: &[&str] = &["channel", "ts", "thread_ts"];

pub(crate) fn make(method: Method, hook: &Hook, args: Args) -> Made {
    let mut made = Made {
        call: Err(ApiError::InternalError),
        dropped: Vec::new(),
        actions: Vec::new(),
        timings: Timings::default(),
    };
    made.call = match method {
        Method::AuthTest => Ok(Call::AuthTest),
        Method::PostMessage => channel(hook, &args, &mut made.actions).and_then(|channel| {
            let thread_ts = args.text("thread_ts").map(str::to_owned);
            let message = Message { channel: channel.clone(), ..content(hook, args, &mut made)? };
            Ok(Call::Post { channel, thread_ts, message })
        }),
        Method::Update => channel(hook, &args, &mut made.actions).and_then(|channel| {
            let ts = ts(&args)?;
            let message = Message { channel: channel.clone(), ..content(hook, args, &mut made)? };
            Ok(Call::Update { channel, ts, message })
        }),
        Method::Delete => {
            channel(hook, &args, &mut made.actions).and_then(|channel| Ok(Call::Delete { channel, ts: ts(&args)? }))
        }
    };
    made
}

/// The channel the call names, as the hook takes it: a leading `#` dropped, a Slack id of
/// `[slack.channels]` replaced by its name, then the hook's `channel_map` and allow-list.
fn channel(hook: &Hook, args: &Args, actions: &mut Vec<Action>) -> Result<String, ApiError> {
    let written = args.text("channel").ok_or(ApiError::ChannelNotFound)?;
    let name = written.strip_prefix('#').unwrap_or(written);
    let name = hook.slack.channels.get(name).map_or(name, String::as_str);
    if name.is_empty() {
        return Err(ApiError::ChannelNotFound);
    }
    let (result, action) = policy::bot_channel(&hook.policy, name.to_owned());
    actions.push(action);
    result.map_err(|refusal| ApiError::of_refusal(&refusal))
}

/// The `ts` of the message an update or delete names; one hookgate cannot have minted names
/// no message.
fn ts(args: &Args) -> Result<Ts, ApiError> {
    args.text("ts").and_then(Ts::parse).ok_or(ApiError::MessageNotFound)
}

/// The message the content arguments make, through the webhook stages.
fn content(hook: &Hook, args: Args, made: &mut Made) -> Result<Message, ApiError> {
    if let Some(blocks) = args.get("blocks") {
        check_blocks(blocks)?;
    }
    let mut members = args.members;
    members.retain(|(name, _)| !PLACE_ARGUMENTS.contains(&&**name));
    let document = Json::Object(members.into());
    let req = Incoming::from_json(document).map_err(|why| {
        if why.starts_with("attachment") || why.starts_with("`attachments`") {
            ApiError::InvalidAttachments
        } else {
            ApiError::InvalidArguments
        }
    })?;
    let Processed { result, dropped, actions, timings } =
        pipeline::shape(hook, req, Timings::default(), Instant::now());
    made.dropped = dropped;
    made.actions.extend(actions);
    made.timings = timings;
    result.map_err(|refusal| ApiError::of_refusal(&refusal))
}

/// Blocks are an array of objects, each with a string `type`; `null` is none.
fn check_blocks(blocks: &Json) -> Result<(), ApiError> {
    let valid = match blocks {
        Json::Null => true,
        Json::Array(items) => items.iter().all(|block| block.str_member("type").is_some()),
        _ => false,
    };
    valid.then_some(()).ok_or(ApiError::InvalidBlocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webapi::args;

    fn hook() -> Hook {
        let rules = crate::delivery::rules_from_text(
            r#"
[spool]
[backends.c]
kind = "log"
[slack.channels]
C0123 = "alerts"
[[hooks]]
name = "bot"
bot_token = "xoxb-test"
backend = "c"
username = "hookgate"
[hooks.overrides]
username = "reject"
channels = ["^alerts$", "^ops-"]
[[hooks.channel_map]]
match = "^operations-(.*)$"
to = "ops-$1"
"#,
        );
        rules.hooks[0].clone()
    }

    fn call(method: Method, body: &str) -> Result<Call, ApiError> {
        let args = args::read("", b"application/json", body.as_bytes()).unwrap();
        make(method, &hook(), args).call
    }

    fn post(channel: &str, text: &str, thread_ts: Option<&str>) -> Result<Call, ApiError> {
        let message =
            Message { text: text.into(), channel: channel.into(), username: "hookgate".into(), ..Message::default() };
        Ok(Call::Post { channel: channel.into(), thread_ts: thread_ts.map(str::to_owned), message })
    }

    #[test]
    fn calls_and_their_errors() {
        use Method::*;
        let cases = [
            (PostMessage, r#"{"channel":"alerts","text":"hi"}"#, post("alerts", "hi", None)),
            (PostMessage, r##"{"channel":"#alerts","text":"hi"}"##, post("alerts", "hi", None)),
            (PostMessage, r#"{"channel":"C0123","text":"hi"}"#, post("alerts", "hi", None)),
            (
                PostMessage,
                r#"{"channel":"operations-db","text":"hi","thread_ts":"1.000001"}"#,
                post("ops-db", "hi", Some("1.000001")),
            ),
            (PostMessage, r#"{"channel":"random","text":"hi"}"#, Err(ApiError::NotInChannel)),
            (PostMessage, r#"{"text":"hi"}"#, Err(ApiError::ChannelNotFound)),
            (PostMessage, r##"{"channel":"#","text":"hi"}"##, Err(ApiError::ChannelNotFound)),
            (PostMessage, r#"{"channel":"alerts"}"#, Err(ApiError::NoText)),
            (PostMessage, r#"{"channel":"alerts","text":"hi","username":"other"}"#, Err(ApiError::MissingScope)),
            (PostMessage, r#"{"channel":"alerts","text":7}"#, Err(ApiError::InvalidArguments)),
            (PostMessage, r#"{"channel":"alerts","attachments":[1]}"#, Err(ApiError::InvalidAttachments)),
            (PostMessage, r#"{"channel":"alerts","blocks":{"type":"divider"}}"#, Err(ApiError::InvalidBlocks)),
            (PostMessage, r#"{"channel":"alerts","blocks":[{"text":"no type"}]}"#, Err(ApiError::InvalidBlocks)),
            (PostMessage, r#"{"channel":"alerts","blocks":[{"type":"divider"}]}"#, post("alerts", "---", None)),
            (
                Update,
                r#"{"channel":"alerts","ts":"1.000002","text":"new"}"#,
                Ok(Call::Update {
                    channel: "alerts".into(),
                    ts: Ts(1_000_002),
                    message: Message {
                        text: "new".into(),
                        channel: "alerts".into(),
                        username: "hookgate".into(),
                        ..Message::default()
                    },
                }),
            ),
            (Update, r#"{"channel":"alerts","ts":"yesterday","text":"new"}"#, Err(ApiError::MessageNotFound)),
            (Update, r#"{"channel":"alerts","ts":"1.000002"}"#, Err(ApiError::NoText)),
            (
                Delete,
                r#"{"channel":"alerts","ts":"1.000002"}"#,
                Ok(Call::Delete { channel: "alerts".into(), ts: Ts(1_000_002) }),
            ),
            (Delete, r#"{"channel":"alerts"}"#, Err(ApiError::MessageNotFound)),
            (Delete, r#"{"ts":"1.000002"}"#, Err(ApiError::ChannelNotFound)),
            (AuthTest, r#"{}"#, Ok(Call::AuthTest)),
        ];
        for (method, body, want) in cases {
            assert_eq!(call(method, body), want, "{} {body}", method.name());
        }
    }

    #[test]
    fn slack_only_members_are_reported_and_channels_counted() {
        let args =
            args::read("", b"application/json", br#"{"channel":"operations-x","text":"t","unfurl_links":false}"#)
                .unwrap();
        let made = make(Method::PostMessage, &hook(), args);
        assert!(made.call.is_ok());
        assert_eq!(made.dropped, ["unfurl_links"]);
        assert_eq!(
            made.actions[0],
            Action { field: crate::rules::Overridable::Channel, kind: policy::ActionKind::Mapped }
        );
    }
}
