//! Properties of translation: it never panics, whatever the input, and text without Slack markup
//! passes through unchanged.

use hookgate::pipeline::json::Json;
use hookgate::pipeline::process;
use hookgate::pipeline::translate::blocks;
use hookgate::pipeline::translate::mrkdwn::{self, Links, Styles};
use hookgate::rules::SlackMaps;
use hookgate::rules::{Hook, Markup};
use proptest::prelude::*;

fn maps() -> SlackMaps {
    SlackMaps {
        users: [("U1".to_owned(), "alice".to_owned())].into(),
        channels: [("C1".to_owned(), "general".to_owned())].into(),
    }
}

/// Text built from the pieces Slack markup is made of, so odd combinations are common.
fn markup_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("|".to_owned()),
        Just("*".to_owned()),
        Just("_".to_owned()),
        Just("~".to_owned()),
        Just("`".to_owned()),
        Just("```".to_owned()),
        Just("&amp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("<@U1>".to_owned()),
        Just("<!here>".to_owned()),
        Just("<!date^99999999999999999999^x>".to_owned()),
        Just("<!date^1^x>".to_owned()),
        Just("<!subteam^S1|".to_owned()),
        Just("<#C1|".to_owned()),
        Just("https://x.io".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        "\\PC{1,3}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn json_tree() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        "-?(0|[1-9][0-9]{0,3})".prop_map(|n| Json::number(&n)),
        prop_oneof![
            Just("section".to_owned()),
            Just("header".to_owned()),
            Just("rich_text".to_owned()),
            Just("rich_text_list".to_owned()),
            Just("rich_text_section".to_owned()),
            Just("rich_text_preformatted".to_owned()),
            Just("rich_text_quote".to_owned()),
            Just("context".to_owned()),
            Just("image".to_owned()),
            Just("text".to_owned()),
            Just("mrkdwn".to_owned()),
            Just("date".to_owned()),
            "\\PC{0,8}",
        ]
        .prop_map(|s| Json::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("text".to_owned()),
            Just("elements".to_owned()),
            Just("fields".to_owned()),
            Just("accessory".to_owned()),
            Just("style".to_owned()),
            Just("indent".to_owned()),
            Just("offset".to_owned()),
            Just("image_url".to_owned()),
            Just("timestamp".to_owned()),
            Just("bold".to_owned()),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|items| Json::Array(items.into())),
            proptest::collection::vec((key.prop_map(Box::from), inner), 0..6).prop_map(|m| Json::Object(m.into())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn text_translation_never_panics(text in markup_text()) {
        for styles in [Styles::Convert, Styles::Escape, Styles::Keep] {
            let _ = mrkdwn::slack(&text, &maps(), styles);
        }
        for links in [Links::Text, Links::Attachment, Links::None] {
            let _ = mrkdwn::mattermost(&text, &maps(), links);
        }
    }

    #[test]
    fn block_rendering_never_panics(tree in json_tree()) {
        let _ = blocks::render(&tree, &maps());
        let _ = blocks::render(&Json::Array(Box::new([tree])), &maps());
    }

    #[test]
    fn the_pipeline_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256), markup in prop_oneof![Just(Markup::Markdown), Just(Markup::Slack)]) {
        let hook = Hook { markup, ..Hook::default() };
        for content_type in [&b""[..], b"application/json", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=x"] {
            let _ = process(&hook, content_type, &body);
        }
    }

    /// Whatever arrives, the forwarded payload stays within a fixed multiple of the body's size:
    /// translation cannot be used to amplify a request.
    #[test]
    fn the_forwarded_payload_is_bounded_by_the_body(
        text in markup_text(),
        blocks in json_tree(),
        attachments in proptest::collection::vec(markup_text(), 0..4),
        markup in prop_oneof![Just(Markup::Markdown), Just(Markup::Slack)],
    ) {
        let body = serde_json::json!({
            "text": text,
            "blocks": [serde_json::from_str::<serde_json::Value>(&blocks.to_compact()).unwrap()],
            "attachments": attachments.iter().map(|t| serde_json::json!({"text": t, "pretext": t, "fields": [{"title": t, "value": t}]})).collect::<Vec<_>>(),
        })
        .to_string();
        let hook = Hook { markup, slack: std::sync::Arc::new(maps()), ..Hook::default() };
        if let Ok(message) = process(&hook, b"application/json", body.as_bytes()).result {
            let out = message.to_json().len();
            prop_assert!(out <= 16 * body.len() + 4096, "{} bytes out of {} in", out, body.len());
        }
    }

    #[test]
    fn text_without_slack_markup_is_unchanged_in_markdown_mode(text in "[^<]{0,64}") {
        for links in [Links::Text, Links::Attachment, Links::None] {
            prop_assert_eq!(mrkdwn::mattermost(&text, &maps(), links), text.clone());
        }
        let body = serde_json::json!({"text": text}).to_string();
        if !text.is_empty() {
            let message = process(&Hook::default(), b"application/json", body.as_bytes()).result.unwrap();
            prop_assert_eq!(message.text, text);
        }
    }

    #[test]
    fn text_without_slack_markup_is_unchanged_in_slack_mode(text in "[^<>&*_~`]{0,64}") {
        prop_assert_eq!(mrkdwn::slack(&text, &maps(), Styles::Convert), text.clone());
        prop_assert_eq!(mrkdwn::slack(&text, &maps(), Styles::Escape), text.replace('\\', "\\\\"));
    }
}
