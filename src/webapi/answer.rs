//! The Web API's answers (docs/webapi.md, "Answers"): Slack's `{"ok":false,"error":CODE}` for
//! every way a call can end other than `ok`, with its HTTP status and `Retry-After`. It is this
//! dialect's table: the gateway's refusals and a backend's answers are read into it here, beside
//! the webhook dialect's table in `reason.rs`.

use crate::delivery::kind::Undelivered;
use crate::pipeline::json::write_string;
use crate::pipeline::message::Message;
use crate::reason::{Reason, BACKEND_RETRY_AFTER_SECS};
use crate::refusal::Refusal;
use crate::rules::Overridable;
use crate::webapi::ts::Ts;
use serde::Serialize;

/// Why a Web API call did not succeed: one of Slack's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    NotAuthed,
    InvalidAuth,
    UnknownMethod,
    InvalidJson,
    JsonNotObject,
    InvalidFormData,
    /// An argument of the wrong type (`text` a number, say).
    InvalidArguments,
    InvalidBlocks,
    InvalidAttachments,
    ChannelNotFound,
    NotInChannel,
    /// `username` or an icon the hook's policy refuses.
    MissingScope,
    NoText,
    MsgTooLong,
    TooManyAttachments,
    MessageNotFound,
    CantUpdateMessage,
    CantDeleteMessage,
    RateLimited {
        retry_after: u64,
    },
    InternalError,
    /// Anything temporary: a backend down or overloaded, the store unavailable.
    ServiceUnavailable {
        retry_after: u64,
    },
}

impl ApiError {
    /// Slack's code, the `error` member and the `result` label of `hookgate_api_calls_total`.
    pub fn code(self) -> &'static str {
        match self {
            ApiError::NotAuthed => "not_authed",
            ApiError::InvalidAuth => "invalid_auth",
            ApiError::UnknownMethod => "unknown_method",
            ApiError::InvalidJson => "invalid_json",
            ApiError::JsonNotObject => "json_not_object",
            ApiError::InvalidFormData => "invalid_form_data",
            ApiError::InvalidArguments => "invalid_arguments",
            ApiError::InvalidBlocks => "invalid_blocks",
            ApiError::InvalidAttachments => "invalid_attachments",
            ApiError::ChannelNotFound => "channel_not_found",
            ApiError::NotInChannel => "not_in_channel",
            ApiError::MissingScope => "missing_scope",
            ApiError::NoText => "no_text",
            ApiError::MsgTooLong => "msg_too_long",
            ApiError::TooManyAttachments => "too_many_attachments",
            ApiError::MessageNotFound => "message_not_found",
            ApiError::CantUpdateMessage => "cant_update_message",
            ApiError::CantDeleteMessage => "cant_delete_message",
            ApiError::RateLimited { .. } => "ratelimited",
            ApiError::InternalError => "internal_error",
            ApiError::ServiceUnavailable { .. } => "service_unavailable",
        }
    }

    /// HTTP 200 as Slack answers errors, but 429 and 503 so that clients' retry handlers retry.
    pub fn status(self) -> u16 {
        match self {
            ApiError::RateLimited { .. } => 429,
            ApiError::ServiceUnavailable { .. } => 503,
            _ => 200,
        }
    }

    pub fn retry_after(self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::ServiceUnavailable { retry_after } => Some(retry_after),
            _ => None,
        }
    }

    /// The row of the webhook table the request metrics count this under, where one fits.
    pub fn reason(self) -> Option<Reason> {
        Some(match self {
            ApiError::NotAuthed | ApiError::InvalidAuth => Reason::UnknownHook,
            ApiError::InvalidJson
            | ApiError::JsonNotObject
            | ApiError::InvalidFormData
            | ApiError::InvalidArguments
            | ApiError::InvalidBlocks
            | ApiError::InvalidAttachments => Reason::InvalidPayload,
            ApiError::ChannelNotFound => Reason::ChannelNotFound,
            ApiError::NotInChannel => Reason::PolicyChannel,
            ApiError::MissingScope => Reason::PolicyField,
            ApiError::NoText => Reason::NoText,
            ApiError::MsgTooLong => Reason::TooLarge,
            ApiError::TooManyAttachments => Reason::TooManyAttachments,
            ApiError::RateLimited { .. } => Reason::RateLimited,
            ApiError::InternalError => Reason::BackendError,
            ApiError::ServiceUnavailable { .. } => Reason::BackendUnavailable,
            ApiError::UnknownMethod
            | ApiError::MessageNotFound
            | ApiError::CantUpdateMessage
            | ApiError::CantDeleteMessage => return None,
        })
    }

    /// The answer's body.
    pub fn body(self) -> String {
        match self {
            ApiError::MissingScope => {
                r#"{"ok":false,"error":"missing_scope","needed":"chat:write.customize","provided":"chat:write"}"#.into()
            }
            _ => format!(r#"{{"ok":false,"error":"{}"}}"#, self.code()),
        }
    }

    /// A refusal of the gateway's pipeline, as this dialect says it.
    pub fn of_refusal(refusal: &Refusal) -> ApiError {
        match refusal {
            Refusal::InvalidMethod | Refusal::BadRequest(_) | Refusal::InvalidPayload(_) => ApiError::InvalidArguments,
            Refusal::NoService => ApiError::InvalidAuth,
            Refusal::TooLarge | Refusal::HeadTooLarge => ApiError::MsgTooLong,
            Refusal::NoText => ApiError::NoText,
            Refusal::TooManyAttachments => ApiError::TooManyAttachments,
            Refusal::Prohibited(Overridable::Channel) => ApiError::NotInChannel,
            Refusal::Prohibited(_) => ApiError::MissingScope,
            Refusal::RateLimited { retry_after } => ApiError::RateLimited { retry_after: *retry_after },
            Refusal::Overloaded | Refusal::SpoolFull | Refusal::SpoolFailed => {
                ApiError::ServiceUnavailable { retry_after: 1 }
            }
        }
    }

    /// A backend's answer, as this dialect says it: what the backend refuses for good is the
    /// channel's or an `internal_error`; what may pass is `ratelimited` or `service_unavailable`.
    pub fn of_undelivered(undelivered: &Undelivered) -> ApiError {
        match undelivered {
            Undelivered::NotFound => ApiError::ChannelNotFound,
            Undelivered::Forbidden => ApiError::NotInChannel,
            Undelivered::TooLarge => ApiError::MsgTooLong,
            Undelivered::RateLimited { retry_after } => ApiError::RateLimited { retry_after: *retry_after },
            Undelivered::Unavailable(_) => ApiError::ServiceUnavailable { retry_after: BACKEND_RETRY_AFTER_SECS },
            Undelivered::Refused | Undelivered::Error(_) | Undelivered::PartlyDelivered { .. } => {
                ApiError::InternalError
            }
        }
    }
}

/// Stable ids for what Slack names by id, so a client that checks them sees the same each time:
/// `prefix` and ten hex digits of the name's 64-bit FNV-1a hash (an id, not a secret).
pub fn stable_id(prefix: char, name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let hex = (0..10).rev().map(|digit| char::from(b"0123456789ABCDEF"[(hash >> (24 + 4 * digit)) as usize & 15]));
    std::iter::once(prefix).chain(hex).collect()
}

/// What `chat.postMessage`'s answer shows of the message, kept when the message goes to the
/// backend.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    pub text: String,
    pub username: String,
}

impl Shown {
    pub fn of(message: &Message) -> Shown {
        Shown { text: message.text.clone(), username: message.username.clone() }
    }
}

/// `chat.postMessage`'s answer: where the message went, its `ts`, and the message's text and
/// name as posted (the hook's name when it sets none). Written by hand, member names as they are:
/// serialized from structs, the names cost as much as the text (docs/performance.md).
pub fn posted(hook: &str, channel: &str, ts: Ts, thread_ts: Option<Ts>, shown: &Shown) -> String {
    let username = if shown.username.is_empty() { hook } else { &shown.username };
    // Sized for the text once escaped, so the answer is written without growing.
    let mut out = Vec::with_capacity(shown.text.len() + channel.len() + username.len() + 256);
    out.extend_from_slice(br#"{"ok":true,"channel":"#);
    write_string(&mut out, channel);
    // A `ts` and an id are digits, a dot and hex digits: nothing to escape.
    out.extend_from_slice(br#","ts":""#);
    ts.write(&mut out);
    out.extend_from_slice(br#"","message":{"type":"message","subtype":"bot_message","text":"#);
    write_string(&mut out, &shown.text);
    out.extend_from_slice(br#","username":"#);
    write_string(&mut out, username);
    out.extend_from_slice(br#","bot_id":""#);
    out.extend_from_slice(stable_id('B', hook).as_bytes());
    out.extend_from_slice(br#"","ts":""#);
    ts.write(&mut out);
    if let Some(thread_ts) = thread_ts {
        out.extend_from_slice(br#"","thread_ts":""#);
        thread_ts.write(&mut out);
    }
    out.extend_from_slice(br#""}}"#);
    String::from_utf8(out).unwrap_or_default()
}

/// `chat.update`'s and `chat.delete`'s answer (`text` for an update only).
#[derive(Serialize)]
struct Changed<'a> {
    ok: bool,
    channel: &'a str,
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// `chat.update`'s answer.
pub fn updated(channel: &str, ts: Ts, text: &str) -> String {
    serde_json::to_string(&Changed { ok: true, channel, ts: ts.text(), text: Some(text) }).unwrap_or_default()
}

/// `chat.delete`'s answer.
pub fn deleted(channel: &str, ts: Ts) -> String {
    serde_json::to_string(&Changed { ok: true, channel, ts: ts.text(), text: None }).unwrap_or_default()
}

/// `auth.test`'s answer: the backend as the team, the hook as the bot user. `url` is where the
/// client reached hookgate.
pub fn authenticated(url: &str, hook: &str, backend: &str) -> String {
    serde_json::json!({
        "ok": true,
        "url": url,
        "team": backend,
        "user": hook,
        "team_id": stable_id('T', backend),
        "user_id": stable_id('U', hook),
        "bot_id": stable_id('B', hook),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kind::Failure;

    #[test]
    fn success_answers() {
        let message = Message { text: "hi".into(), username: "ci".into(), ..Message::default() };
        let answer: serde_json::Value =
            serde_json::from_str(&posted("bot", "alerts", Ts(2_000_001), Some(Ts(1_000_000)), &Shown::of(&message)))
                .unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"ok": true, "channel": "alerts", "ts": "2.000001", "message": {
                "type": "message", "subtype": "bot_message", "text": "hi", "username": "ci",
                "bot_id": stable_id('B', "bot"), "ts": "2.000001", "thread_ts": "1.000000"}})
        );
        // Written by hand: what needs escaping is escaped, and a message with no thread has no
        // `thread_ts`.
        let message = Message { text: "say \"hi\"\n\\ \u{1} é 🚀".into(), ..Message::default() };
        let answer: serde_json::Value =
            serde_json::from_str(&posted("b\"ot", "al\"erts", Ts(3_000_000), None, &Shown::of(&message))).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"ok": true, "channel": "al\"erts", "ts": "3.000000", "message": {
                "type": "message", "subtype": "bot_message", "text": "say \"hi\"\n\\ \u{1} é 🚀", "username": "b\"ot",
                "bot_id": stable_id('B', "b\"ot"), "ts": "3.000000"}})
        );
        let auth: serde_json::Value = serde_json::from_str(&authenticated("http://h/", "bot", "chat")).unwrap();
        assert_eq!((auth["user"].as_str(), auth["team"].as_str()), (Some("bot"), Some("chat")));
        assert_eq!(auth["user_id"], stable_id('U', "bot"));
        assert!(stable_id('B', "bot").starts_with('B') && stable_id('B', "bot").len() == 11);
        let hash =
            "bot".bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        assert_eq!(stable_id('B', "bot"), format!("B{:010X}", hash >> 24));
        assert_ne!(stable_id('B', "bot"), stable_id('B', "other"));
    }

    #[test]
    fn every_error_has_its_code_status_and_wait() {
        let cases = [
            (ApiError::NotAuthed, "not_authed", 200, None),
            (ApiError::MissingScope, "missing_scope", 200, None),
            (ApiError::RateLimited { retry_after: 7 }, "ratelimited", 429, Some(7)),
            (ApiError::ServiceUnavailable { retry_after: 5 }, "service_unavailable", 503, Some(5)),
            (ApiError::InternalError, "internal_error", 200, None),
        ];
        for (error, code, status, wait) in cases {
            assert_eq!((error.code(), error.status(), error.retry_after()), (code, status, wait));
            let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
            assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some(code)));
        }
        let scope: serde_json::Value = serde_json::from_str(&ApiError::MissingScope.body()).unwrap();
        assert_eq!(scope["needed"], "chat:write.customize");
    }

    #[test]
    fn refusals_and_backend_answers_read_into_slacks_codes() {
        let refusals = [
            (Refusal::NoText, "no_text"),
            (Refusal::TooLarge, "msg_too_long"),
            (Refusal::Prohibited(Overridable::Channel), "not_in_channel"),
            (Refusal::Prohibited(Overridable::Username), "missing_scope"),
            (Refusal::InvalidPayload("`text` must be a string".into()), "invalid_arguments"),
            (Refusal::SpoolFull, "service_unavailable"),
        ];
        for (refusal, code) in refusals {
            assert_eq!(ApiError::of_refusal(&refusal).code(), code, "{refusal:?}");
        }
        let answers = [
            (Undelivered::NotFound, "channel_not_found", 200),
            (Undelivered::Forbidden, "not_in_channel", 200),
            (Undelivered::Refused, "internal_error", 200),
            (Undelivered::Error(500), "internal_error", 200),
            (Undelivered::RateLimited { retry_after: 3 }, "ratelimited", 429),
            (Undelivered::Unavailable(Failure::Connect), "service_unavailable", 503),
        ];
        for (answer, code, status) in answers {
            let error = ApiError::of_undelivered(&answer);
            assert_eq!((error.code(), error.status()), (code, status), "{answer:?}");
        }
    }
}
