//! The one place that decides what a client is told: `ok`, or a rejection in the hook's dialect.

use crate::rejection::Rejection;
use crate::rules::ErrorDialect;
use bytes::Bytes;

/// A complete response, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub retry_after: Option<u64>,
}

impl Reply {
    /// Slack's and Mattermost's success: 200, `text/plain`, exactly `ok`.
    pub fn ok() -> Reply {
        Reply { status: 200, content_type: "text/plain", body: Bytes::from_static(b"ok"), retry_after: None }
    }

    pub fn rejection(rejection: &Rejection, dialect: ErrorDialect, request_id: &str) -> Reply {
        let body = match dialect {
            ErrorDialect::Slack => Bytes::from_static(rejection.code().as_bytes()),
            ErrorDialect::Mattermost => {
                let (id, message) = rejection.mattermost_id();
                let detail = match rejection {
                    Rejection::InvalidPayload(why) => why.clone(),
                    _ => String::new(),
                };
                let value = serde_json::json!({
                    "id": id,
                    "message": message,
                    "detailed_error": detail,
                    "request_id": request_id,
                    "status_code": rejection.status(),
                });
                Bytes::from(value.to_string())
            }
        };
        let content_type = match dialect {
            ErrorDialect::Slack => "text/plain",
            ErrorDialect::Mattermost => "application/json",
        };
        Reply { status: rejection.status(), content_type, body, retry_after: rejection.retry_after() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_dialect_bodies_are_the_code_alone() {
        let cases = [
            (Rejection::InvalidMethod, 405, "invalid_method", None),
            (Rejection::NoService, 404, "no_service", None),
            (Rejection::TooLarge, 413, "request_too_large", None),
            (Rejection::InvalidPayload("x".into()), 400, "invalid_payload", None),
            (Rejection::NoText, 400, "no_text", None),
            (Rejection::TooManyAttachments, 400, "too_many_attachments", None),
            (Rejection::ActionProhibited, 403, "action_prohibited", None),
            (Rejection::Prohibited(crate::policy::Field::Channel), 403, "action_prohibited", None),
            (Rejection::ChannelNotFound, 404, "channel_not_found", None),
            (Rejection::RateLimited { retry_after: 7 }, 429, "rate_limited", Some(7)),
            (Rejection::BackendRateLimited { retry_after: 30 }, 429, "rate_limited", Some(30)),
            (Rejection::BackendError(500), 502, "backend_error", None),
            (Rejection::BackendUnavailable("refused"), 503, "backend_unavailable", Some(5)),
        ];
        for (rejection, status, body, retry_after) in cases {
            let reply = Reply::rejection(&rejection, ErrorDialect::Slack, "rid");
            assert_eq!(
                reply,
                Reply { status, content_type: "text/plain", body: Bytes::from_static(body.as_bytes()), retry_after },
                "{rejection:?}"
            );
        }
    }

    #[test]
    fn mattermost_dialect_is_a_json_error_object() {
        let reply = Reply::rejection(&Rejection::NoText, ErrorDialect::Mattermost, "abc");
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
    }
}
