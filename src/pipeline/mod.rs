//! The pure pipeline, in request order: `admit` (method, key, rate, size) before the body is read,
//! then `process`: decode -> translate (blocks first, so a blocks-only message has text) ->
//! content checks -> policy, ending in the `Message` every backend kind renders from. No I/O, so
//! tests, benches and fuzzers reach every decision without a socket.

pub(crate) mod admit;
pub mod decode;
pub(crate) mod incoming;
pub mod json;
pub mod message;
pub(crate) mod policy;
pub(crate) mod ratelimit;
pub mod translate;

use crate::refusal::Refusal;
use crate::rules::Hook;
use incoming::{Incoming, MAX_ATTACHMENTS};
use message::Message;
use policy::Action;
use std::time::{Duration, Instant};

/// What the pipeline made of a body: the message or the refusal, and what happened on the way
/// either way (for the metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub result: Result<Message, Refusal>,
    /// Slack-only members present in the request and not forwarded.
    pub dropped: Vec<&'static str>,
    /// Override actions the hook's policy took, up to a refusal.
    pub actions: Vec<Action>,
    pub(crate) timings: Timings,
}

/// How long each stage took; `None` for stages that did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Timings {
    pub decode: Option<Duration>,
    pub translate: Option<Duration>,
    pub policy: Option<Duration>,
}

impl Timings {
    /// The time of the stages that ran.
    pub(crate) fn total(&self) -> Duration {
        [self.decode, self.translate, self.policy].into_iter().flatten().sum()
    }
}

pub fn process(hook: &Hook, content_type: &[u8], body: &[u8]) -> Processed {
    let started = Instant::now();
    let decoded = decode::decode(content_type, body);
    let decoded_at = Instant::now();
    let timings = Timings { decode: Some(decoded_at - started), ..Timings::default() };
    match decoded {
        Ok(req) => shape(hook, req, timings, decoded_at),
        Err(refusal) => Processed { result: Err(refusal), dropped: Vec::new(), actions: Vec::new(), timings },
    }
}

/// The stages after decoding, for a request read by either dialect: translation, the content
/// checks and the hook's policy; `started` is when decoding ended. Each stage ends where the
/// next begins, one clock read apiece (a webhook reads the clock about thirty times).
pub(crate) fn shape(hook: &Hook, mut req: Incoming, mut timings: Timings, started: Instant) -> Processed {
    translate::translate(&mut req, hook.markup, &hook.slack);
    let translated = Instant::now();
    timings.translate = Some(translated - started);
    let dropped = std::mem::take(&mut req.dropped);
    let (result, actions) = match check_content(&req) {
        Err(refusal) => (Err(refusal), Vec::new()),
        Ok(()) => {
            let decision = policy::decide(&hook.policy, req);
            (decision.result, decision.actions)
        }
    };
    timings.policy = Some(translated.elapsed());
    Processed { result, dropped, actions, timings }
}

/// Content checks, in the order docs/webhooks.md gives: `no_text`, then `too_many_attachments`, then `type`.
fn check_content(req: &Incoming) -> Result<(), Refusal> {
    if req.text.as_deref().unwrap_or("").is_empty() && req.attachments.is_empty() {
        return Err(Refusal::NoText);
    }
    if req.attachments.len() > MAX_ATTACHMENTS {
        return Err(Refusal::TooManyAttachments);
    }
    match req.kind.as_deref() {
        None | Some("") => Ok(()),
        Some(t) if t.starts_with("custom_") => Ok(()),
        Some(_) => Err(Refusal::InvalidPayload("`type` must be empty or start with custom_".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Hook {
        Hook::default()
    }

    fn run(body: &str) -> Result<String, Refusal> {
        process(&hook(), b"application/json", body.as_bytes()).result.map(|m| m.to_json())
    }

    #[test]
    fn content_checks() {
        let many = format!(r#"{{"attachments":[{}]}}"#, vec!["{}"; 101].join(","));
        let hundred = format!(r#"{{"attachments":[{}]}}"#, vec!["{}"; 100].join(","));
        let many_with_nulls = format!(r#"{{"attachments":[{},null,null]}}"#, vec!["{}"; 100].join(","));
        let cases: Vec<(&str, Result<&str, Refusal>)> = vec![
            (r#"{"text":"hi"}"#, Ok(r#"{"text":"hi"}"#)),
            (r#"{"text":"  "}"#, Ok(r#"{"text":"  "}"#)),
            (r#"{"text":""}"#, Err(Refusal::NoText)),
            (r#"{}"#, Err(Refusal::NoText)),
            (r#"{"attachments":[]}"#, Err(Refusal::NoText)),
            (r#"{"attachments":[null]}"#, Err(Refusal::NoText)),
            (r#"{"attachments":[{}]}"#, Ok(r#"{"attachments":[{}]}"#)),
            (&many, Err(Refusal::TooManyAttachments)),
            (r#"{"text":"x","type":"custom_poll"}"#, Ok(r#"{"text":"x","type":"custom_poll"}"#)),
            (r#"{"text":"x","type":""}"#, Ok(r#"{"text":"x"}"#)),
            (
                r#"{"text":"x","type":"system_join"}"#,
                Err(Refusal::InvalidPayload("`type` must be empty or start with custom_".into())),
            ),
            (
                r#"{"attachments":[{}],"type":"slack_attachment"}"#,
                Err(Refusal::InvalidPayload("`type` must be empty or start with custom_".into())),
            ),
            (r#"{"text":"","type":"bad"}"#, Err(Refusal::NoText)),
            (r#"{"text":"x","thread_ts":"1.2","blocks":[]}"#, Ok(r#"{"text":"x"}"#)),
            (r#"{"blocks":[{"type":"divider"}]}"#, Ok(r#"{"text":"---"}"#)),
            (r#"{"text":"fallback","blocks":[{"type":"actions","elements":[]}]}"#, Ok(r#"{"text":"fallback"}"#)),
            (r#"{"blocks":[{"type":"actions","elements":[]}]}"#, Err(Refusal::NoText)),
        ];
        for (body, want) in cases {
            assert_eq!(run(body), want.map(str::to_owned), "{body}");
        }
        assert!(run(&hundred).is_ok());
        assert!(run(&many_with_nulls).is_ok(), "null entries are dropped before counting");
    }

    #[test]
    fn dropped_members_are_reported() {
        let p = process(&hook(), b"", br#"{"text":"x","thread_ts":"1.2","unfurl_media":false}"#);
        assert!(p.result.is_ok());
        assert_eq!(p.dropped, vec!["thread_ts", "unfurl_media"]);
    }
}
