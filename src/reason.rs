//! Every way a request can end other than `ok`, described once: status, Slack code, metric
//! reason, Mattermost's error id and message, `Retry-After`, extra headers and whether the
//! connection closes. The response writer, the metric label lists and the log line all read this
//! table; nothing else decides them.

/// Why a request was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidMethod,
    UnknownHook,
    TooLarge,
    InvalidPayload,
    NoText,
    TooManyAttachments,
    /// The hook's policy refuses the requested channel.
    PolicyChannel,
    /// The hook's policy refuses another requested field.
    PolicyField,
    BackendForbidden,
    ChannelNotFound,
    RateLimited,
    BackendRateLimited,
    BackendError,
    PartlyDelivered,
    BackendUnavailable,
    Overloaded,
    /// The HTTP parser refused the request (lengths, chunks, transfer codings, header syntax).
    BadRequest,
    /// The request head is larger than the parser takes.
    HeadTooLarge,
    /// A spooled hook's message would take the spool past `max_bytes`.
    SpoolFull,
    /// A spooled hook's message could not be stored.
    SpoolFailed,
}

/// A request that ended other than `ok`: its row, the wait it carries and Mattermost's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending<'a> {
    pub reason: Reason,
    pub retry_after: Option<u64>,
    pub detail: Option<&'a str>,
}

/// When a client is told to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    Never,
    /// After the seconds the refusal carries (a bucket's or a backend's wait).
    Given,
    /// After this many seconds.
    After(u64),
}

/// When the client connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Kept open; a small unread body is read and dropped first.
    Never,
    /// Closed when the body was not read whole: it is too large to drain.
    UnreadBody,
    Always,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub status: u16,
    /// The Slack error code, which is the whole body in the `slack` dialect.
    pub code: &'static str,
    /// The `reason` label of `hookgate_rejections_total`.
    pub metric: &'static str,
    /// Mattermost's error id and message for the `mattermost` dialect.
    pub mattermost: (&'static str, &'static str),
    pub retry: Retry,
    pub headers: &'static [(&'static str, &'static str)],
    pub close: Close,
}

/// Seconds a client is asked to wait when the backend could not be reached.
pub const BACKEND_RETRY_AFTER_SECS: u64 = 5;

const fn row(status: u16, code: &'static str, metric: &'static str, mattermost: (&'static str, &'static str)) -> Spec {
    Spec { status, code, metric, mattermost, retry: Retry::Never, headers: &[], close: Close::Never }
}

impl Reason {
    pub const ALL: [Reason; 20] = [
        Reason::InvalidMethod,
        Reason::UnknownHook,
        Reason::TooLarge,
        Reason::InvalidPayload,
        Reason::NoText,
        Reason::TooManyAttachments,
        Reason::PolicyChannel,
        Reason::PolicyField,
        Reason::BackendForbidden,
        Reason::ChannelNotFound,
        Reason::RateLimited,
        Reason::BackendRateLimited,
        Reason::BackendError,
        Reason::PartlyDelivered,
        Reason::BackendUnavailable,
        Reason::Overloaded,
        Reason::BadRequest,
        Reason::HeadTooLarge,
        Reason::SpoolFull,
        Reason::SpoolFailed,
    ];

    pub const fn spec(self) -> Spec {
        use Reason::*;
        match self {
            InvalidMethod => Spec {
                headers: &[("Allow", "POST")],
                ..row(405, "invalid_method", "invalid_method", ("hookgate.invalid_method", "Only POST is accepted."))
            },
            UnknownHook => {
                row(404, "no_service", "unknown_hook", ("web.incoming_webhook.invalid.app_error", "Invalid webhook."))
            }
            TooLarge => Spec {
                close: Close::UnreadBody,
                ..row(
                    413,
                    "request_too_large",
                    "too_large",
                    ("api.context.request_body_too_large.app_error", "The request body is too large."),
                )
            },
            InvalidPayload => row(
                400,
                "invalid_payload",
                "invalid_payload",
                ("web.incoming_webhook.decode.app_error", "Unable to parse incoming data."),
            ),
            NoText => row(400, "no_text", "no_text", ("web.incoming_webhook.text.app_error", "No text specified.")),
            TooManyAttachments => row(
                400,
                "too_many_attachments",
                "too_many_attachments",
                ("hookgate.too_many_attachments", "More than 100 attachments."),
            ),
            PolicyChannel => row(
                403,
                "action_prohibited",
                "policy",
                (
                    "web.incoming_webhook.channel_locked.app_error",
                    "This webhook is not permitted to post to the requested channel.",
                ),
            ),
            PolicyField => row(
                403,
                "action_prohibited",
                "policy",
                ("hookgate.override_prohibited", "This webhook is not permitted to override this field."),
            ),
            BackendForbidden => row(
                403,
                "action_prohibited",
                "backend_forbidden",
                ("web.incoming_webhook.permissions.app_error", "This webhook is not permitted to perform this action."),
            ),
            ChannelNotFound => row(
                404,
                "channel_not_found",
                "channel_not_found",
                ("web.incoming_webhook.channel.app_error", "Couldn't find the channel."),
            ),
            RateLimited => Spec {
                retry: Retry::Given,
                ..row(429, "rate_limited", "rate_limited", ("hookgate.rate_limited", "Too many requests."))
            },
            BackendRateLimited => Spec {
                retry: Retry::Given,
                ..row(429, "rate_limited", "backend_rate_limited", ("hookgate.rate_limited", "Too many requests."))
            },
            BackendError => row(
                502,
                "backend_error",
                "backend_error",
                ("hookgate.backend_error", "The chat server failed to accept the message."),
            ),
            PartlyDelivered => row(
                502,
                "backend_error",
                "partly_delivered",
                ("hookgate.partly_delivered", "The chat server failed part-way through a split message."),
            ),
            BackendUnavailable => Spec {
                retry: Retry::After(BACKEND_RETRY_AFTER_SECS),
                ..row(
                    503,
                    "backend_unavailable",
                    "backend_unavailable",
                    ("hookgate.backend_unavailable", "The chat server is unavailable."),
                )
            },
            SpoolFull => Spec {
                retry: Retry::After(BACKEND_RETRY_AFTER_SECS),
                ..row(503, "overloaded", "spool_full", ("hookgate.spool_full", "The spool is full."))
            },
            SpoolFailed => Spec {
                retry: Retry::After(BACKEND_RETRY_AFTER_SECS),
                ..row(
                    503,
                    "backend_unavailable",
                    "spool_error",
                    ("hookgate.spool_error", "The message could not be stored."),
                )
            },
            Overloaded => Spec {
                retry: Retry::After(1),
                close: Close::Always,
                ..row(503, "overloaded", "overloaded", ("hookgate.overloaded", "Too many connections."))
            },
            BadRequest => Spec {
                close: Close::Always,
                ..row(
                    400,
                    "invalid_request",
                    "bad_request",
                    ("hookgate.bad_request", "The request is not valid HTTP/1.1."),
                )
            },
            HeadTooLarge => Spec {
                close: Close::Always,
                ..row(
                    431,
                    "request_header_fields_too_large",
                    "head_too_large",
                    ("hookgate.head_too_large", "The request head is too large."),
                )
            },
        }
    }

    /// Every status the gateway answers with, `200` first, once each.
    pub fn statuses() -> Vec<u16> {
        let mut statuses = vec![200];
        for reason in Reason::ALL {
            if !statuses.contains(&reason.spec().status) {
                statuses.push(reason.spec().status);
            }
        }
        statuses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_reason_once() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(Reason::ALL.iter().position(|r| r == reason), Some(i), "{reason:?} listed twice");
        }
        // A new variant fails to compile in `spec` until it has a row, and is then counted here.
        let count = Reason::ALL.iter().filter(|r| r.spec().status >= 400).count();
        assert_eq!(count, Reason::ALL.len());
    }

    #[test]
    fn every_status_once() {
        assert_eq!(Reason::statuses(), [200, 405, 404, 413, 400, 403, 429, 502, 503, 431]);
    }
}
