//! Translation: Slack mrkdwn, mentions, attachments and Block Kit into the Markdown the backend
//! shows (docs/translation.md), so nothing arrives empty or garbled.
//!
//! - `markup = "markdown"`: only Mattermost's own conversions, as Mattermost makes them;
//! - `markup = "slack"`: the full mrkdwn table, code-aware, styles at word boundaries;
//! - blocks render in both modes and replace `text` when they render to anything.

pub mod blocks;
pub mod mrkdwn;

use super::incoming::{Attachment, Incoming};
use crate::rules::{Markup, SlackMaps};
use mrkdwn::{Links, Styles};

/// Translates a request's text, attachments and blocks in place; dropped blocks are added to
/// `req.dropped`.
pub(crate) fn translate(req: &mut Incoming, markup: Markup, maps: &SlackMaps) {
    if let Some(text) = &req.text {
        req.text = Some(match markup {
            Markup::Markdown => mrkdwn::mattermost(text, maps, Links::Text),
            // `mrkdwn: false` keeps links, mentions and entities but shows styles literally.
            Markup::Slack if req.mrkdwn == Some(false) => mrkdwn::slack(text, maps, Styles::Escape),
            Markup::Slack => mrkdwn::slack(text, maps, Styles::Convert),
        });
    }
    if let Some(blocks) = req.blocks.take() {
        let (rendered, dropped) = blocks::render(&blocks, maps);
        req.dropped.extend(dropped);
        if !rendered.is_empty() {
            req.text = Some(rendered);
        }
    }
    for attachment in &mut req.attachments {
        translate_attachment(attachment, markup, maps, &mut req.dropped);
    }
}

fn translate_attachment(a: &mut Attachment, markup: Markup, maps: &SlackMaps, dropped: &mut Vec<&'static str>) {
    let each = |s: &mut String, f: &dyn Fn(&str) -> String| {
        if !s.is_empty() {
            *s = f(s);
        }
    };
    match markup {
        Markup::Markdown => {
            each(&mut a.pretext, &|t| mrkdwn::mattermost(t, maps, Links::Attachment));
            each(&mut a.text, &|t| mrkdwn::mattermost(t, maps, Links::Attachment));
            each(&mut a.title, &|t| mrkdwn::mattermost(t, maps, Links::None));
            for field in &mut a.fields {
                if let Some(v) = &mut field.value {
                    each(v, &|t| mrkdwn::mattermost(t, maps, Links::Attachment));
                }
            }
        }
        Markup::Slack => {
            // Without `mrkdwn_in` every member is formatted; with it, only those it lists.
            let styles = |member: &str| match &a.mrkdwn_in {
                Some(listed) if !listed.iter().any(|m| m == member) => Styles::Escape,
                _ => Styles::Convert,
            };
            let (pretext, text, fields) = (styles("pretext"), styles("text"), styles("fields"));
            each(&mut a.pretext, &|t| mrkdwn::slack(t, maps, pretext));
            each(&mut a.text, &|t| mrkdwn::slack(t, maps, text));
            each(&mut a.title, &|t| mrkdwn::slack(t, maps, Styles::Keep));
            for field in &mut a.fields {
                each(&mut field.title, &|t| mrkdwn::slack(t, maps, Styles::Keep));
                if let Some(v) = &mut field.value {
                    each(v, &|t| mrkdwn::slack(t, maps, fields));
                }
            }
        }
    }
    if let Some(blocks) = a.blocks.take() {
        let (rendered, more) = blocks::render(&blocks, maps);
        dropped.extend(more);
        if !rendered.is_empty() {
            a.text = rendered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::json::parse;

    fn maps() -> SlackMaps {
        SlackMaps { users: [("U1".to_owned(), "alice".to_owned())].into(), channels: Default::default() }
    }

    fn run(body: &str, markup: Markup) -> Incoming {
        let mut req = Incoming::from_json(parse(body.as_bytes()).unwrap()).unwrap();
        translate(&mut req, markup, &maps());
        req
    }

    fn attachment_json(req: &Incoming) -> String {
        serde_json::to_string(&req.attachments).unwrap()
    }

    #[test]
    fn markdown_mode_attachments_follow_mattermost() {
        let req = run(
            r#"{"attachments":[{"title":"<http://t.example|T> <!here>","pretext":"<http://p.example|P>","text":"<http://x.example|X> <@U1>",
                "fallback":"<http://f.example|F>","fields":[{"title":"<http://ft.example|FT>","value":"<http://v.example|V> *b*"}]}]}"#,
            Markup::Markdown,
        );
        assert_eq!(
            attachment_json(&req),
            r#"[{"fallback":"<http://f.example|F>","pretext":"[P](http://p.example)","title":"<http://t.example|T> @here","text":"[X](http://x.example) @alice","fields":[{"title":"<http://ft.example|FT>","value":"[V](http://v.example) *b*","short":false}]}]"#
        );
    }

    #[test]
    fn slack_mode_attachments_honour_mrkdwn_in() {
        let body = |mrkdwn_in: &str| {
            format!(
                r#"{{"attachments":[{{"pretext":"*p*","text":"*t* <@U1>","title":"*T* <https://x.io|x>","fallback":"*f*",
                    "fields":[{{"title":"*ft*","value":"*v*"}}]{mrkdwn_in}}}]}}"#
            )
        };
        let cases = [
            (
                "",
                r#"[{"fallback":"*f*","pretext":"**p**","title":"*T* [x](https://x.io)","text":"**t** @alice","fields":[{"title":"*ft*","value":"**v**","short":false}]}]"#,
            ),
            (
                r#","mrkdwn_in":["text"]"#,
                r#"[{"fallback":"*f*","pretext":"\\*p\\*","title":"*T* [x](https://x.io)","text":"**t** @alice","fields":[{"title":"*ft*","value":"\\*v\\*","short":false}]}]"#,
            ),
            (
                r#","mrkdwn_in":["pretext","fields"]"#,
                r#"[{"fallback":"*f*","pretext":"**p**","title":"*T* [x](https://x.io)","text":"\\*t\\* @alice","fields":[{"title":"*ft*","value":"**v**","short":false}]}]"#,
            ),
            (
                r#","mrkdwn_in":[]"#,
                r#"[{"fallback":"*f*","pretext":"\\*p\\*","title":"*T* [x](https://x.io)","text":"\\*t\\* @alice","fields":[{"title":"*ft*","value":"\\*v\\*","short":false}]}]"#,
            ),
        ];
        for (mrkdwn_in, want) in cases {
            assert_eq!(attachment_json(&run(&body(mrkdwn_in), Markup::Slack)), want, "{mrkdwn_in}");
        }
    }

    #[test]
    fn top_level_text_modes() {
        let cases: &[(&str, Markup, &str)] = &[
            (r#"{"text":"*b* <@U1> <https://x.io|x>"}"#, Markup::Slack, "**b** @alice [x](https://x.io)"),
            (
                r#"{"text":"*b* <@U1> <https://x.io|x>","mrkdwn":false}"#,
                Markup::Slack,
                "\\*b\\* @alice [x](https://x.io)",
            ),
            (r#"{"text":"*b* <@U1> <https://x.io|x>","mrkdwn":"1"}"#, Markup::Slack, "**b** @alice [x](https://x.io)"),
            (r#"{"text":"*b* <@U1> <https://x.io|x>"}"#, Markup::Markdown, "*b* @alice [x](https://x.io)"),
            (r#"{"text":"*b* <@U1>","mrkdwn":false}"#, Markup::Markdown, "*b* @alice"),
        ];
        for (body, markup, want) in cases {
            assert_eq!(run(body, *markup).text.as_deref(), Some(*want), "{body} {markup:?}");
        }
    }

    #[test]
    fn blocks_replace_text_in_both_modes() {
        let blocks = r#""blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*from blocks*"}},{"type":"actions","elements":[]}]"#;
        for markup in [Markup::Markdown, Markup::Slack] {
            let req = run(&format!(r#"{{"text":"fallback",{blocks}}}"#), markup);
            assert_eq!(req.text.as_deref(), Some("**from blocks**"));
            assert_eq!(req.dropped, vec!["blocks_actions"]);
        }
        let only_actions = run(r#"{"text":"kept","blocks":[{"type":"actions"}]}"#, Markup::Slack);
        assert_eq!(only_actions.text.as_deref(), Some("kept"));
        let in_attachment = run(
            r#"{"attachments":[{"text":"old","blocks":[{"type":"header","text":{"type":"plain_text","text":"Alert"}}]}]}"#,
            Markup::Markdown,
        );
        assert_eq!(attachment_json(&in_attachment), "[{\"text\":\"#### Alert\"}]");
    }
}
