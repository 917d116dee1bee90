//! The gateway's own refusals: admission, the HTTP parser and the pipeline. A backend's answers
//! are `delivery::kind::Undelivered`; both end in the one table of `reason.rs`.

use crate::reason::{Ending, Reason};
use crate::rules::Overridable;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
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
    Prohibited(Overridable),
    /// The hook is over its `rate`; the bucket has a token again in `retry_after` seconds.
    #[error("hook over its rate")]
    RateLimited { retry_after: u64 },
    /// The gateway has `max_connections` open and refuses another.
    #[error("too many connections")]
    Overloaded,
    /// The HTTP parser refused the request.
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    /// The request head is over the size or header-line limit.
    #[error("request head too large")]
    HeadTooLarge,
    /// The spool holds `max_bytes` already.
    #[error("the spool is full")]
    SpoolFull,
    /// The spool could not store the message; nothing was stored.
    #[error("the spool could not store the message")]
    SpoolFailed,
}

impl Refusal {
    pub(crate) fn ending(&self) -> Ending<'_> {
        Ending { reason: self.reason(), retry_after: self.retry_after(), detail: self.detail() }
    }

    pub(crate) fn reason(&self) -> Reason {
        match self {
            Refusal::InvalidMethod => Reason::InvalidMethod,
            Refusal::NoService => Reason::UnknownHook,
            Refusal::TooLarge => Reason::TooLarge,
            Refusal::InvalidPayload(_) => Reason::InvalidPayload,
            Refusal::NoText => Reason::NoText,
            Refusal::TooManyAttachments => Reason::TooManyAttachments,
            Refusal::Prohibited(Overridable::Channel) => Reason::PolicyChannel,
            Refusal::Prohibited(_) => Reason::PolicyField,
            Refusal::RateLimited { .. } => Reason::RateLimited,
            Refusal::Overloaded => Reason::Overloaded,
            Refusal::BadRequest(_) => Reason::BadRequest,
            Refusal::HeadTooLarge => Reason::HeadTooLarge,
            Refusal::SpoolFull => Reason::SpoolFull,
            Refusal::SpoolFailed => Reason::SpoolFailed,
        }
    }

    /// The Slack error code it is answered with.
    pub fn code(&self) -> &'static str {
        self.reason().spec().code
    }

    /// The wait this refusal carries, for reasons whose `Retry-After` is given.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// What Mattermost's `detailed_error` says.
    pub(crate) fn detail(&self) -> Option<&str> {
        match self {
            Refusal::InvalidPayload(why) => Some(why),
            _ => None,
        }
    }
}
