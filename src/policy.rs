//! Policy: what the hook's rules make of a decoded request. For now every requested value is
//! allowed and the hook's defaults fill what the request left out (contract section 9).

use crate::canonical::Canonical;
use crate::incoming::Incoming;
use crate::rules::Hook;

/// Builds the canonical payload from a checked request and its hook's defaults.
pub fn apply(hook: &Hook, req: Incoming) -> Canonical {
    let requested = |v: Option<String>| v.filter(|s| !s.is_empty());
    let icon_emoji = requested(req.icon_emoji).unwrap_or_default();
    let icon_url = requested(req.icon_url).unwrap_or_else(|| {
        // An emoji the client chose wins over the hook's default picture.
        if icon_emoji.is_empty() {
            hook.icon_url.clone()
        } else {
            String::new()
        }
    });
    Canonical {
        text: req.text.unwrap_or_default(),
        channel: requested(req.channel).unwrap_or_else(|| hook.channel.clone()),
        username: requested(req.username).unwrap_or_else(|| hook.username.clone()),
        icon_url,
        icon_emoji,
        kind: req.kind.unwrap_or_default(),
        attachments: req.attachments,
        props: req.props,
        priority: req.priority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Markup;

    fn hook() -> Hook {
        Hook {
            name: "h".into(),
            backend: 0,
            backend_key: String::new(),
            channel: "town-square".into(),
            username: "bot".into(),
            icon_url: "http://default/icon.png".into(),
            markup: Markup::Markdown,
        }
    }

    #[test]
    fn defaults_fill_absent_members() {
        let s = |v: &str| Some(v.to_owned());
        // (request channel, username, icon_url, icon_emoji) -> (channel, username, icon_url, icon_emoji)
        let cases = [
            ((None, None, None, None), ("town-square", "bot", "http://default/icon.png", "")),
            ((s(""), s(""), s(""), s("")), ("town-square", "bot", "http://default/icon.png", "")),
            ((s("#ops"), s("ci"), s("http://x"), None), ("#ops", "ci", "http://x", "")),
            ((s("@alice"), None, None, s(":tada:")), ("@alice", "bot", "", ":tada:")),
            ((None, None, s("http://x"), s(":tada:")), ("town-square", "bot", "http://x", ":tada:")),
        ];
        for ((channel, username, icon_url, icon_emoji), want) in cases {
            let req = Incoming { text: s("hi"), channel, username, icon_url, icon_emoji, ..Incoming::default() };
            let out = apply(&hook(), req.clone());
            assert_eq!(
                (out.channel.as_str(), out.username.as_str(), out.icon_url.as_str(), out.icon_emoji.as_str()),
                want,
                "{req:?}"
            );
            assert_eq!(out.text, "hi");
        }
    }
}
