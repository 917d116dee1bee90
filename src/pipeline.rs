//! The pure pipeline: request bytes and a hook in, canonical payload or rejection out. No I/O, so
//! tests, benches and fuzzers reach every decision without a socket.
//!
//! decode -> translate (blocks first, so a blocks-only message has text) -> content checks ->
//! policy.

use crate::canonical::Canonical;
use crate::decode;
use crate::incoming::{Incoming, MAX_ATTACHMENTS};
use crate::policy::{self, Action};
use crate::rejection::Rejection;
use crate::rules::Hook;
use crate::translate;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub canonical: Canonical,
    /// Slack-only members present in the request and not forwarded.
    pub dropped: Vec<&'static str>,
    /// Override actions the hook's policy took.
    pub actions: Vec<Action>,
    pub timings: Timings,
}

/// How long each stage took; `None` for stages that did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub decode: Option<Duration>,
    pub translate: Option<Duration>,
    pub policy: Option<Duration>,
}

impl Timings {
    /// The time of the stages that ran.
    pub fn total(&self) -> Duration {
        [self.decode, self.translate, self.policy].into_iter().flatten().sum()
    }
}

/// A refused request, with the override actions taken before the refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub rejection: Rejection,
    pub actions: Vec<Action>,
    /// Slack-only members dropped before the refusal.
    pub dropped: Vec<&'static str>,
    pub timings: Timings,
}

pub fn process(hook: &Hook, content_type: &[u8], body: &[u8]) -> Result<Processed, Refused> {
    let mut timings = Timings::default();
    let refused = |rejection, actions, dropped, timings| Refused { rejection, actions, dropped, timings };
    let started = Instant::now();
    let decoded = decode::decode(content_type, body);
    timings.decode = Some(started.elapsed());
    let (mut req, _shape) = decoded.map_err(|r| refused(r, Vec::new(), Vec::new(), timings))?;
    let started = Instant::now();
    translate::translate(&mut req, hook.markup, &hook.slack);
    timings.translate = Some(started.elapsed());
    let dropped = std::mem::take(&mut req.dropped);
    let started = Instant::now();
    let checked = check_content(&req);
    let decision = checked.map(|()| policy::decide(hook, req));
    timings.policy = Some(started.elapsed());
    match decision {
        Err(rejection) => Err(refused(rejection, Vec::new(), dropped, timings)),
        Ok(decision) => match decision.result {
            Ok(canonical) => Ok(Processed { canonical, dropped, actions: decision.actions, timings }),
            Err(rejection) => Err(refused(rejection, decision.actions, dropped, timings)),
        },
    }
}

/// Content checks, in the contract's order: `no_text`, then `too_many_attachments`, then `type`.
fn check_content(req: &Incoming) -> Result<(), Rejection> {
    if req.text.as_deref().unwrap_or("").is_empty() && req.attachments.is_empty() {
        return Err(Rejection::NoText);
    }
    if req.attachments.len() > MAX_ATTACHMENTS {
        return Err(Rejection::TooManyAttachments);
    }
    match req.kind.as_deref() {
        None | Some("") => Ok(()),
        Some(t) if t.starts_with("custom_") => Ok(()),
        Some(_) => Err(Rejection::InvalidPayload("`type` must be empty or start with custom_".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Hook {
        Hook::default()
    }

    fn run(body: &str) -> Result<String, Rejection> {
        process(&hook(), b"application/json", body.as_bytes())
            .map(|p| String::from_utf8(p.canonical.to_json()).unwrap())
            .map_err(|r| r.rejection)
    }

    #[test]
    fn content_checks() {
        let many = format!(r#"{{"attachments":[{}]}}"#, vec!["{}"; 101].join(","));
        let hundred = format!(r#"{{"attachments":[{}]}}"#, vec!["{}"; 100].join(","));
        let many_with_nulls = format!(r#"{{"attachments":[{},null,null]}}"#, vec!["{}"; 100].join(","));
        let cases: Vec<(&str, Result<&str, Rejection>)> = vec![
            (r#"{"text":"hi"}"#, Ok(r#"{"text":"hi"}"#)),
            (r#"{"text":"  "}"#, Ok(r#"{"text":"  "}"#)),
            (r#"{"text":""}"#, Err(Rejection::NoText)),
            (r#"{}"#, Err(Rejection::NoText)),
            (r#"{"attachments":[]}"#, Err(Rejection::NoText)),
            (r#"{"attachments":[null]}"#, Err(Rejection::NoText)),
            (r#"{"attachments":[{}]}"#, Ok(r#"{"attachments":[{}]}"#)),
            (&many, Err(Rejection::TooManyAttachments)),
            (r#"{"text":"x","type":"custom_poll"}"#, Ok(r#"{"text":"x","type":"custom_poll"}"#)),
            (r#"{"text":"x","type":""}"#, Ok(r#"{"text":"x"}"#)),
            (
                r#"{"text":"x","type":"system_join"}"#,
                Err(Rejection::InvalidPayload("`type` must be empty or start with custom_".into())),
            ),
            (
                r#"{"attachments":[{}],"type":"slack_attachment"}"#,
                Err(Rejection::InvalidPayload("`type` must be empty or start with custom_".into())),
            ),
            (r#"{"text":"","type":"bad"}"#, Err(Rejection::NoText)),
            (r#"{"text":"x","thread_ts":"1.2","blocks":[]}"#, Ok(r#"{"text":"x"}"#)),
            (r#"{"blocks":[{"type":"divider"}]}"#, Ok(r#"{"text":"---"}"#)),
            (r#"{"text":"fallback","blocks":[{"type":"actions","elements":[]}]}"#, Ok(r#"{"text":"fallback"}"#)),
            (r#"{"blocks":[{"type":"actions","elements":[]}]}"#, Err(Rejection::NoText)),
        ];
        for (body, want) in cases {
            assert_eq!(run(body), want.map(str::to_owned), "{body}");
        }
        assert!(run(&hundred).is_ok());
        assert!(run(&many_with_nulls).is_ok(), "null entries are dropped before counting");
    }

    #[test]
    fn dropped_members_are_reported() {
        let p = process(&hook(), b"", br#"{"text":"x","thread_ts":"1.2","unfurl_media":false}"#).unwrap();
        assert_eq!(p.dropped, vec!["thread_ts", "unfurl_media"]);
    }
}
