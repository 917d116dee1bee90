//! Every way a request can fail, as one typed value. `respond` turns it into exactly one response.

use crate::policy::Field;

/// Seconds a client is asked to wait when the backend could not be reached.
pub const BACKEND_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("method not allowed")]
    InvalidMethod,
    #[error("no hook has this key")]
    NoService,
    #[error("body larger than max_body_bytes")]
    TooLarge,
    /// The body cannot be read as a webhook payload; the detail says why (never quoting a key).
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    #[error("nothing to post")]
    NoText,
    #[error("more than 100 attachments")]
    TooManyAttachments,
    /// The hook's policy refuses the requested value of this field.
    #[error("policy refuses the requested {}", .0.as_str())]
    Prohibited(Field),
    /// The backend answered 403.
    #[error("backend refused the action")]
    ActionProhibited,
    /// The backend answered 404.
    #[error("backend does not know the channel or hook")]
    ChannelNotFound,
    /// The hook is over its `rate`; the bucket has a token again in `retry_after` seconds.
    #[error("hook over its rate")]
    RateLimited { retry_after: u64 },
    /// The backend answered 429, with its own `Retry-After` when it sent one.
    #[error("backend rate limit")]
    BackendRateLimited { retry_after: u64 },
    /// The backend answered 5xx, a redirect, or a 4xx that says nothing about the request.
    #[error("backend answered {0}")]
    BackendError(u16),
    /// A split message failed after `delivered` of its `parts` posts were accepted.
    #[error("backend failed after {delivered} of {parts} posts")]
    PartlyDelivered { delivered: usize, parts: usize },
    /// The gateway has `max_connections` open and refuses another.
    #[error("too many connections")]
    Overloaded,
    /// No connection could be made, or the backend did not answer in time.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(&'static str),
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::InvalidMethod => 405,
            Rejection::NoService | Rejection::ChannelNotFound => 404,
            Rejection::TooLarge => 413,
            Rejection::InvalidPayload(_) | Rejection::NoText | Rejection::TooManyAttachments => 400,
            Rejection::Prohibited(_) | Rejection::ActionProhibited => 403,
            Rejection::RateLimited { .. } | Rejection::BackendRateLimited { .. } => 429,
            Rejection::BackendError(_) | Rejection::PartlyDelivered { .. } => 502,
            Rejection::BackendUnavailable(_) | Rejection::Overloaded => 503,
        }
    }

    /// The Slack error code, which is also the whole body in the `slack` dialect.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidMethod => "invalid_method",
            Rejection::NoService => "no_service",
            Rejection::TooLarge => "request_too_large",
            Rejection::InvalidPayload(_) => "invalid_payload",
            Rejection::NoText => "no_text",
            Rejection::TooManyAttachments => "too_many_attachments",
            Rejection::Prohibited(_) | Rejection::ActionProhibited => "action_prohibited",
            Rejection::ChannelNotFound => "channel_not_found",
            Rejection::RateLimited { .. } | Rejection::BackendRateLimited { .. } => "rate_limited",
            Rejection::BackendError(_) | Rejection::PartlyDelivered { .. } => "backend_error",
            Rejection::BackendUnavailable(_) => "backend_unavailable",
            Rejection::Overloaded => "overloaded",
        }
    }

    /// The `reason` label of `hookgate_rejections_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::InvalidMethod => "invalid_method",
            Rejection::NoService => "unknown_hook",
            Rejection::TooLarge => "too_large",
            Rejection::InvalidPayload(_) => "invalid_payload",
            Rejection::NoText => "no_text",
            Rejection::TooManyAttachments => "too_many_attachments",
            Rejection::Prohibited(_) => "policy",
            Rejection::ActionProhibited => "backend_forbidden",
            Rejection::ChannelNotFound => "channel_not_found",
            Rejection::RateLimited { .. } => "rate_limited",
            Rejection::BackendRateLimited { .. } => "backend_rate_limited",
            Rejection::BackendError(_) => "backend_error",
            Rejection::PartlyDelivered { .. } => "partly_delivered",
            Rejection::BackendUnavailable(_) => "backend_unavailable",
            Rejection::Overloaded => "overloaded",
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Rejection::RateLimited { retry_after } | Rejection::BackendRateLimited { retry_after } => {
                Some(*retry_after)
            }
            Rejection::BackendUnavailable(_) => Some(BACKEND_RETRY_AFTER_SECS),
            Rejection::Overloaded => Some(1),
            _ => None,
        }
    }

    /// Mattermost's error id and message for the `mattermost` dialect, where Mattermost has one.
    pub fn mattermost_id(&self) -> (&'static str, &'static str) {
        match self {
            Rejection::InvalidMethod => ("hookgate.invalid_method", "Only POST is accepted."),
            Rejection::NoService => ("web.incoming_webhook.invalid.app_error", "Invalid webhook."),
            Rejection::TooLarge => ("api.context.request_body_too_large.app_error", "The request body is too large."),
            Rejection::InvalidPayload(_) => ("web.incoming_webhook.decode.app_error", "Unable to parse incoming data."),
            Rejection::NoText => ("web.incoming_webhook.text.app_error", "No text specified."),
            Rejection::TooManyAttachments => ("hookgate.too_many_attachments", "More than 100 attachments."),
            Rejection::Prohibited(Field::Channel) => (
                "web.incoming_webhook.channel_locked.app_error",
                "This webhook is not permitted to post to the requested channel.",
            ),
            Rejection::Prohibited(_) => {
                ("hookgate.override_prohibited", "This webhook is not permitted to override this field.")
            }
            Rejection::ActionProhibited => {
                ("web.incoming_webhook.permissions.app_error", "This webhook is not permitted to perform this action.")
            }
            Rejection::ChannelNotFound => ("web.incoming_webhook.channel.app_error", "Couldn't find the channel."),
            Rejection::RateLimited { .. } | Rejection::BackendRateLimited { .. } => {
                ("hookgate.rate_limited", "Too many requests.")
            }
            Rejection::BackendError(_) => ("hookgate.backend_error", "The chat server failed to accept the message."),
            Rejection::PartlyDelivered { .. } => {
                ("hookgate.partly_delivered", "The chat server failed part-way through a split message.")
            }
            Rejection::BackendUnavailable(_) => ("hookgate.backend_unavailable", "The chat server is unavailable."),
            Rejection::Overloaded => ("hookgate.overloaded", "Too many connections."),
        }
    }
}
