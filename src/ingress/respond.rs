//! Replies: `ok`, or a row of the reason table (`reason.rs`) in the gateway's error dialect.
//! The transport only writes what is here.

use crate::reason::{Close, Ending, Reason, Retry};
use crate::rules::ErrorDialect;
use crate::webapi::answer::ApiError;
use bytes::Bytes;

/// A complete response, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub retry_after: Option<u64>,
    /// Headers besides the usual four.
    pub headers: &'static [(&'static str, &'static str)],
    pub close: Close,
    /// Why it is not `ok`.
    pub reason: Option<Reason>,
}

impl Reply {
    /// Slack's and Mattermost's success: 200, `text/plain`, exactly `ok`.
    pub fn ok() -> Reply {
        Reply {
            status: 200,
            content_type: "text/plain",
            body: Bytes::from_static(b"ok"),
            retry_after: None,
            headers: &[],
            close: Close::Never,
            reason: None,
        }
    }

    /// A Web API answer (docs/webapi.md, "Answers"): `{"ok":true,...}`, or an error of the Web
    /// API's table, as JSON.
    pub fn api(answer: Result<String, ApiError>) -> Reply {
        let (status, body, retry_after, reason, close) = match answer {
            Ok(body) => (200, body, None, None, Close::Never),
            Err(error) => {
                // Only a body declared too large to read is left unread.
                let close = if error == ApiError::MsgTooLong { Close::UnreadBody } else { Close::Never };
                (error.status(), error.body(), error.retry_after(), error.reason(), close)
            }
        };
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body: Bytes::from(body),
            retry_after,
            headers: &[],
            close,
            reason,
        }
    }

    pub fn refused(ending: Ending, dialect: ErrorDialect, request_id: &str) -> Reply {
        let spec = ending.reason.spec();
        let (content_type, body) = match dialect {
            ErrorDialect::Slack => ("text/plain", Bytes::from_static(spec.code.as_bytes())),
            ErrorDialect::Mattermost => {
                let (id, message) = spec.mattermost;
                let value = serde_json::json!({
                    "id": id,
                    "message": message,
                    "detailed_error": ending.detail.unwrap_or_default(),
                    "request_id": request_id,
                    "status_code": spec.status,
                });
                ("application/json", Bytes::from(value.to_string()))
            }
        };
        let retry_after = match spec.retry {
            Retry::Never => None,
            Retry::Given => ending.retry_after,
            Retry::After(secs) => Some(secs),
        };
        Reply {
            status: spec.status,
            content_type,
            body,
            retry_after,
            headers: spec.headers,
            close: spec.close,
            reason: Some(ending.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kind::{Failure, Undelivered};
    use crate::refusal::Refusal;

    fn of_refusal(r: &Refusal) -> Ending<'_> {
        r.ending()
    }

    fn of_undelivered(u: &Undelivered) -> Ending<'static> {
        u.ending()
    }

    #[test]
    fn slack_dialect_bodies_are_the_code_alone() {
        let invalid = Refusal::InvalidPayload("x".into());
        let cases = [
            (of_refusal(&Refusal::InvalidMethod), 405, "invalid_method", None),
            (of_refusal(&Refusal::NoService), 404, "no_service", None),
            (of_refusal(&Refusal::TooLarge), 413, "request_too_large", None),
            (of_refusal(&invalid), 400, "invalid_payload", None),
            (of_refusal(&Refusal::NoText), 400, "no_text", None),
            (of_refusal(&Refusal::TooManyAttachments), 400, "too_many_attachments", None),
            (of_undelivered(&Undelivered::Forbidden), 403, "action_prohibited", None),
            (of_refusal(&Refusal::Prohibited(crate::rules::Overridable::Channel)), 403, "action_prohibited", None),
            (of_undelivered(&Undelivered::NotFound), 404, "channel_not_found", None),
            (of_refusal(&Refusal::RateLimited { retry_after: 7 }), 429, "rate_limited", Some(7)),
            (of_undelivered(&Undelivered::RateLimited { retry_after: 30 }), 429, "rate_limited", Some(30)),
            (of_undelivered(&Undelivered::Error(500)), 502, "backend_error", None),
            (of_undelivered(&Undelivered::Unavailable(Failure::Connect)), 503, "backend_unavailable", Some(5)),
            (of_refusal(&Refusal::Overloaded), 503, "overloaded", Some(1)),
        ];
        for (ending, status, body, retry_after) in cases {
            let reply = Reply::refused(ending, ErrorDialect::Slack, "rid");
            assert_eq!(
                (reply.status, reply.content_type, reply.body, reply.retry_after),
                (status, "text/plain", Bytes::from_static(body.as_bytes()), retry_after),
                "{ending:?}"
            );
        }
        let method = Reply::refused(of_refusal(&Refusal::InvalidMethod), ErrorDialect::Slack, "rid");
        assert_eq!(method.headers, &[("Allow", "POST")]);
    }

    #[test]
    fn mattermost_dialect_is_a_json_error_object() {
        let reply = Reply::refused(of_refusal(&Refusal::NoText), ErrorDialect::Mattermost, "abc");
        assert_eq!(reply.status, 400);
        assert_eq!(reply.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "web.incoming_webhook.text.app_error",
                "message": "No text specified.",
                "detailed_error": "",
                "request_id": "abc",
                "status_code": 400
            })
        );
        let backend = Reply::refused(of_undelivered(&Undelivered::Refused), ErrorDialect::Mattermost, "abc");
        let v: serde_json::Value = serde_json::from_slice(&backend.body).unwrap();
        assert_eq!(v["detailed_error"], "the backend refused the payload");
    }
}
