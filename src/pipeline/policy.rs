//! Policy: what a hook's rules make of a decoded request (docs/rules.md, docs/webhooks.md, "Responses", docs/webhooks.md).
//!
//! For `username`, `icon` (icon_url and icon_emoji together) and `channel` a hook says `allow`,
//! `ignore` (drop the requested value, use the hook's default) or `reject` (403). Under `allow`, a
//! requested channel is first rewritten by `channel_map` (first match wins) and must then match
//! the `channels` allow-list when one is given. A requested value equal to the hook's default is
//! not an override and always passes. The hook's defaults then fill what is still absent.
//!
//! `decide` is a pure function and returns every action it took, so each can be counted.

use super::incoming::Incoming;
use super::message::{Message, Props};
use crate::refusal::Refusal;
use crate::rules::{ChannelMap, Mode, Overridable, Policy};

/// What happened to a requested value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Forwarded as requested.
    Applied,
    /// Dropped; the hook's default is used.
    Ignored,
    /// Refused: the request is answered 403.
    Rejected,
    /// Rewritten by `channel_map`, then forwarded.
    Mapped,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Applied => "applied",
            ActionKind::Ignored => "ignored",
            ActionKind::Rejected => "rejected",
            ActionKind::Mapped => "mapped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Action {
    pub field: Overridable,
    pub kind: ActionKind,
}

/// The payload to forward or the rejection, and every override action taken on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub result: Result<Message, Refusal>,
    pub actions: Vec<Action>,
}

pub fn decide(policy: &Policy, req: Incoming) -> Decision {
    let mut actions = Vec::new();
    let result = enforce(policy, req, &mut actions);
    Decision { result, actions }
}

fn enforce(policy: &Policy, req: Incoming, actions: &mut Vec<Action>) -> Result<Message, Refusal> {
    let own = &policy.defaults;
    let mut act = |field, kind| actions.push(Action { field, kind });
    let requested = |v: Option<String>| v.filter(|s| !s.is_empty());

    let mut username = requested(req.username);
    if username.as_ref().is_some_and(|u| *u != own.username) {
        match policy.username {
            Mode::Allow => act(Overridable::Username, ActionKind::Applied),
            Mode::Ignore => {
                act(Overridable::Username, ActionKind::Ignored);
                username = None;
            }
            Mode::Reject => {
                act(Overridable::Username, ActionKind::Rejected);
                return Err(Refusal::Prohibited(Overridable::Username));
            }
        }
    }

    let mut icon_url = requested(req.icon_url);
    let mut icon_emoji = requested(req.icon_emoji);
    if icon_emoji.is_some() || icon_url.as_ref().is_some_and(|u| *u != own.icon_url) {
        match policy.icon {
            Mode::Allow => act(Overridable::Icon, ActionKind::Applied),
            Mode::Ignore => {
                act(Overridable::Icon, ActionKind::Ignored);
                (icon_url, icon_emoji) = (None, None);
            }
            Mode::Reject => {
                act(Overridable::Icon, ActionKind::Rejected);
                return Err(Refusal::Prohibited(Overridable::Icon));
            }
        }
    }

    let mut channel = requested(req.channel);
    if let Some(wanted) = channel.take() {
        channel = if wanted == own.channel {
            Some(wanted)
        } else {
            match policy.channel {
                Mode::Allow => {
                    let (name, mapped) = map_channel(&policy.channel_map, wanted);
                    if !channel_allowed(policy, &name) {
                        act(Overridable::Channel, ActionKind::Rejected);
                        return Err(Refusal::Prohibited(Overridable::Channel));
                    }
                    act(Overridable::Channel, if mapped { ActionKind::Mapped } else { ActionKind::Applied });
                    Some(name)
                }
                Mode::Ignore => {
                    act(Overridable::Channel, ActionKind::Ignored);
                    None
                }
                Mode::Reject => {
                    act(Overridable::Channel, ActionKind::Rejected);
                    return Err(Refusal::Prohibited(Overridable::Channel));
                }
            }
        };
    }

    let kind = req.kind.unwrap_or_default();
    if !kind.is_empty() {
        act(Overridable::Type, ActionKind::Applied);
    }

    let props = req.props.as_ref().map(Props::new);
    if let Some(size) = props.as_ref().map(Props::len).filter(|&size| size > policy.max_props_bytes) {
        return Err(Refusal::InvalidPayload(format!(
            "props are {size} bytes, more than this hook's max_props_bytes {}",
            policy.max_props_bytes
        )));
    }

    // Defaults fill only what is still absent; a chosen emoji keeps the default picture out.
    let icon_url = icon_url.unwrap_or_else(|| if icon_emoji.is_none() { own.icon_url.clone() } else { String::new() });
    Ok(Message {
        text: req.text.unwrap_or_default(),
        channel: channel.unwrap_or_else(|| own.channel.clone()),
        username: username.unwrap_or_else(|| own.username.clone()),
        icon_url,
        icon_emoji: icon_emoji.unwrap_or_default(),
        kind,
        attachments: req.attachments,
        props,
        priority: req.priority,
    })
}

/// The channel a Web API call names, as the hook takes it (docs/webapi.md, "Channels"): rewritten
/// by `channel_map`, then held to the `channels` allow-list. The `channel` override mode does not
/// apply: a bot names its channel on every call.
pub(crate) fn bot_channel(policy: &Policy, wanted: String) -> (Result<String, Refusal>, Action) {
    let (name, mapped) = map_channel(&policy.channel_map, wanted);
    let kind = match () {
        _ if !channel_allowed(policy, &name) => ActionKind::Rejected,
        _ if mapped => ActionKind::Mapped,
        _ => ActionKind::Applied,
    };
    let action = Action { field: Overridable::Channel, kind };
    match kind {
        ActionKind::Rejected => (Err(Refusal::Prohibited(Overridable::Channel)), action),
        _ => (Ok(name), action),
    }
}

/// Applies the first `channel_map` rule whose pattern matches; true when one did.
fn map_channel(rules: &[ChannelMap], channel: String) -> (String, bool) {
    match rules.iter().find(|m| m.pattern.is_match(&channel)) {
        Some(m) => (m.pattern.replace(&channel, m.to.as_str()).into_owned(), true),
        None => (channel, false),
    }
}

/// A channel passes when it is the hook's default or matches the allow-list (if any).
fn channel_allowed(policy: &Policy, channel: &str) -> bool {
    channel == policy.defaults.channel
        || policy.channels.as_ref().is_none_or(|patterns| patterns.iter().any(|p| p.is_match(channel)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::json::Json;
    use crate::rules::Defaults;
    use regex::Regex;
    use ActionKind::*;
    use Overridable::*;

    fn hook(policy: Policy) -> Policy {
        Policy {
            defaults: Defaults {
                channel: "town-square".into(),
                username: "bot".into(),
                icon_url: "http://default/icon.png".into(),
            },
            max_props_bytes: 100,
            ..policy
        }
    }

    fn modes(username: Mode, icon: Mode, channel: Mode) -> Policy {
        Policy { username, icon, channel, ..Policy::default() }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    fn req(
        channel: Option<String>,
        username: Option<String>,
        icon_url: Option<String>,
        icon_emoji: Option<String>,
    ) -> Incoming {
        Incoming { text: s("hi"), channel, username, icon_url, icon_emoji, ..Incoming::default() }
    }

    /// (channel, username, icon_url, icon_emoji) forwarded, or the field that was refused.
    type Want = Result<(&'static str, &'static str, &'static str, &'static str), Overridable>;

    #[test]
    fn every_mode_and_field() {
        use Mode::{Allow as A, Ignore as I, Reject as R};
        type Case = (Policy, Incoming, Want, Vec<(Overridable, ActionKind)>);
        let cases: Vec<Case> = vec![
            // Nothing requested: defaults everywhere, in every mode.
            (
                modes(R, R, R),
                req(None, None, None, None),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![],
            ),
            // Empty strings are nothing requested.
            (
                modes(R, R, R),
                req(s(""), s(""), s(""), s("")),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![],
            ),
            // Values equal to the defaults are not overrides, even under reject.
            (
                modes(R, R, R),
                req(s("town-square"), s("bot"), s("http://default/icon.png"), None),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![],
            ),
            // allow
            (
                modes(A, A, A),
                req(s("dev"), s("ci"), s("http://x/i.png"), None),
                Ok(("dev", "ci", "http://x/i.png", "")),
                vec![(Username, Applied), (Icon, Applied), (Channel, Applied)],
            ),
            (
                modes(A, A, A),
                req(None, None, None, s(":tada:")),
                Ok(("town-square", "bot", "", ":tada:")),
                vec![(Icon, Applied)],
            ),
            (
                modes(A, A, A),
                req(None, None, s("http://default/icon.png"), s(":tada:")),
                Ok(("town-square", "bot", "http://default/icon.png", ":tada:")),
                vec![(Icon, Applied)],
            ),
            // ignore
            (
                modes(I, I, I),
                req(s("dev"), s("ci"), s("http://x/i.png"), s(":tada:")),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![(Username, Ignored), (Icon, Ignored), (Channel, Ignored)],
            ),
            (
                modes(I, A, A),
                req(None, s("ci"), None, None),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![(Username, Ignored)],
            ),
            (
                modes(A, I, A),
                req(None, None, None, s(":x:")),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![(Icon, Ignored)],
            ),
            (
                modes(A, A, I),
                req(s("@alice"), None, None, None),
                Ok(("town-square", "bot", "http://default/icon.png", "")),
                vec![(Channel, Ignored)],
            ),
            // reject: the first refused field wins, in username, icon, channel order.
            (modes(R, A, A), req(None, s("ci"), None, None), Err(Username), vec![(Username, Rejected)]),
            (modes(A, R, A), req(None, None, s("http://x"), None), Err(Icon), vec![(Icon, Rejected)]),
            (modes(A, R, A), req(None, None, None, s(":x:")), Err(Icon), vec![(Icon, Rejected)]),
            (modes(A, A, R), req(s("#dev"), None, None, None), Err(Channel), vec![(Channel, Rejected)]),
            (
                modes(I, A, R),
                req(s("#dev"), s("ci"), None, None),
                Err(Channel),
                vec![(Username, Ignored), (Channel, Rejected)],
            ),
            (modes(R, R, R), req(s("#dev"), s("ci"), s("http://x"), None), Err(Username), vec![(Username, Rejected)]),
        ];
        for (i, (policy, request, want, actions)) in cases.into_iter().enumerate() {
            let decision = decide(&hook(policy), request);
            let got = decision.result.map(|c| (c.channel, c.username, c.icon_url, c.icon_emoji)).map_err(|r| match r {
                Refusal::Prohibited(field) => field,
                other => panic!("case {i}: unexpected {other:?}"),
            });
            let want = want.map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()));
            assert_eq!(got, want, "case {i}");
            let kinds: Vec<(Overridable, ActionKind)> = decision.actions.iter().map(|a| (a.field, a.kind)).collect();
            assert_eq!(kinds, actions, "case {i}");
        }
    }

    fn channel_rules() -> Policy {
        Policy {
            channels: Some(vec![Regex::new("^alerts-[a-z0-9-]+$").unwrap(), Regex::new("^@").unwrap()]),
            channel_map: vec![
                ChannelMap { pattern: Regex::new("^#?ops-(.*)$").unwrap(), to: "alerts-$1".into() },
                ChannelMap { pattern: Regex::new("^#?(?P<team>[a-z]+)-alerts$").unwrap(), to: "alerts-${team}".into() },
                ChannelMap { pattern: Regex::new("^#?ops-never$").unwrap(), to: "unreachable".into() },
            ],
            ..Policy::default()
        }
    }

    #[test]
    fn channel_map_then_allow_list() {
        type Case<'a> = (&'a str, Result<&'a str, ()>, Vec<(Overridable, ActionKind)>);
        let cases: Vec<Case> = vec![
            ("alerts-db", Ok("alerts-db"), vec![(Channel, Applied)]),
            ("#ops-db", Ok("alerts-db"), vec![(Channel, Mapped)]),
            ("ops-never", Ok("alerts-never"), vec![(Channel, Mapped)]),
            ("web-alerts", Ok("alerts-web"), vec![(Channel, Mapped)]),
            ("@alice", Ok("@alice"), vec![(Channel, Applied)]),
            ("town-square", Ok("town-square"), vec![]),
            ("general", Err(()), vec![(Channel, Rejected)]),
            ("#alerts-db", Err(()), vec![(Channel, Rejected)]),
            ("ops-", Err(()), vec![(Channel, Rejected)]),
            ("ALERTS-db", Err(()), vec![(Channel, Rejected)]),
        ];
        for (channel, want, actions) in cases {
            let decision = decide(&hook(channel_rules()), req(s(channel), None, None, None));
            let got = decision.result.map(|c| c.channel).map_err(|r| assert_eq!(r, Refusal::Prohibited(Channel)));
            assert_eq!(got, want.map(str::to_owned), "{channel}");
            let kinds: Vec<(Overridable, ActionKind)> = decision.actions.iter().map(|a| (a.field, a.kind)).collect();
            assert_eq!(kinds, actions, "{channel}");
        }
    }

    #[test]
    fn the_map_never_touches_ignored_or_default_channels() {
        let policy = Policy { channel: Mode::Ignore, ..channel_rules() };
        let d = decide(&hook(policy), req(s("#ops-db"), None, None, None));
        assert_eq!(d.result.unwrap().channel, "town-square");
        let mut h = hook(channel_rules());
        h.defaults.channel = "ops-main".into();
        let d = decide(&h, req(None, None, None, None));
        assert_eq!(d.result.unwrap().channel, "ops-main", "the default is never mapped");
        let d = decide(&h, req(s("ops-main"), None, None, None));
        assert_eq!(d.result.unwrap().channel, "ops-main", "a requested default skips map and allow-list");
    }

    #[test]
    fn type_and_props() {
        let mut r = req(None, None, None, None);
        r.kind = s("custom_poll");
        let d = decide(&hook(Policy::default()), r);
        assert_eq!(d.actions, vec![Action { field: Type, kind: Applied }]);
        assert_eq!(d.result.unwrap().kind, "custom_poll");

        let mut r = req(None, None, None, None);
        r.props = Some(Json::Object(Box::new([("k".into(), Json::String("v".repeat(100).into()))])));
        let d = decide(&hook(Policy::default()), r);
        assert!(
            matches!(&d.result, Err(Refusal::InvalidPayload(why)) if why.starts_with("props are 108 bytes")),
            "{:?}",
            d.result
        );
        let mut r = req(None, None, None, None);
        r.props = Some(Json::Object(Box::new([("k".into(), Json::String("v".repeat(90).into()))])));
        assert!(decide(&hook(Policy::default()), r).result.is_ok());
    }
}
