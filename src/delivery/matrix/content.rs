//! One post as the content of an `m.room.message` event (docs/matrix.md): `body` the
//! Markdown text a Mattermost backend would receive, with attachments as plain lines after it;
//! `formatted_body` that Markdown as HTML, with attachments as HTML blocks; `@channel`, `@here`
//! and `@all` as `@room` with `"m.mentions": {"room": true}`.

use super::html::{self, escape, render, render_inline};
use crate::pipeline::incoming::Attachment;
use crate::pipeline::message::Message;
use regex::Regex;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Mattermost's channel-wide mentions, not inside a word or an address.
static ROOM_MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^\w@.])@(channel|here|all)\b").expect("a valid pattern"));

/// Slack's colour names, as Slack shows them.
fn colour(name: &str) -> Option<String> {
    let named = match name {
        "good" => Some("#2eb886"),
        "warning" => Some("#daa038"),
        "danger" => Some("#a30200"),
        _ => None,
    };
    if let Some(hex) = named {
        return Some(hex.to_owned());
    }
    let hex = name.strip_prefix('#')?;
    (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("#{}", hex.to_ascii_lowercase()))
}

/// `text` with channel-wide mentions as `@room`; whether there was one.
fn room_mentions(text: &str) -> (String, bool) {
    let replaced = ROOM_MENTION.replace_all(text, "${1}@room");
    let found = matches!(replaced, std::borrow::Cow::Owned(_));
    (replaced.into_owned(), found)
}

/// The event content of one post. `prefix` is the username put before the text when every hook
/// posts as one bot user.
pub fn content(message: &Message, msgtype: &str, prefix: Option<&str>) -> Value {
    let (text, mut room) = room_mentions(&message.text);
    let mut body = String::new();
    let mut formatted = String::new();
    if let Some(name) = prefix.filter(|n| !n.is_empty()) {
        body.push_str(&format!("**{name}**: "));
        formatted.push_str(&format!("<strong>{}</strong>: ", escape(name)));
    }
    body.push_str(&text);
    let rendered = render(&text);
    // A prefix belongs on the text's first line, not above its paragraph.
    match (prefix.is_some(), rendered.strip_prefix("<p>")) {
        (true, Some(rest)) => {
            formatted.insert_str(0, "<p>");
            formatted.push_str(rest);
        }
        _ => formatted.push_str(&rendered),
    }
    for attachment in &message.attachments {
        let (plain, html, mentioned) = attachment_parts(attachment);
        room |= mentioned;
        if !body.is_empty() && !plain.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str(&plain);
        formatted.push_str(&html);
    }
    let mut content = json!({
        "msgtype": msgtype,
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
    });
    if room {
        content["m.mentions"] = json!({ "room": true });
    }
    content
}

/// An attachment as plain lines for `body`, as an HTML block for `formatted_body`, and whether
/// it mentions the room.
fn attachment_parts(a: &Attachment) -> (String, String, bool) {
    let mut room = false;
    let mut mention = |text: &str| {
        let (text, found) = room_mentions(text);
        room |= found;
        text
    };
    let (pretext, text, footer) = (mention(&a.pretext), mention(&a.text), mention(&a.footer));
    let fields: Vec<(String, String)> =
        a.fields.iter().map(|f| (f.title.clone(), mention(f.value.as_deref().unwrap_or_default()))).collect();

    let mut plain: Vec<String> = Vec::new();
    let mut html = String::new();
    if !pretext.is_empty() {
        plain.push(pretext.clone());
        html.push_str(&render(&pretext));
    }
    let mut inner = String::new();
    if !a.author_name.is_empty() {
        plain.push(a.author_name.clone());
        inner.push_str(&format!("<p>{}</p>", link(&a.author_name, &a.author_link)));
    }
    if !a.title.is_empty() {
        plain.push(if a.title_link.is_empty() { a.title.clone() } else { format!("{} ({})", a.title, a.title_link) });
        inner.push_str(&format!("<p><b>{}</b></p>", link(&a.title, &a.title_link)));
    }
    if !text.is_empty() {
        plain.push(text.clone());
        inner.push_str(&render(&text));
    }
    if !fields.is_empty() {
        let lines: Vec<String> = fields
            .iter()
            .map(|(title, value)| match title.is_empty() {
                true => render_inline(value),
                false => format!("<b>{}</b>: {}", escape(title), render_inline(value)),
            })
            .collect();
        inner.push_str(&format!("<p>{}</p>", lines.join("<br />")));
        plain.extend(fields.iter().map(|(title, value)| match title.is_empty() {
            true => value.clone(),
            false => format!("{title}: {value}"),
        }));
    }
    for url in [&a.image_url, &a.thumb_url] {
        if !url.is_empty() {
            plain.push(url.clone());
            inner.push_str(&format!("<p>{}</p>", link(url, url)));
        }
    }
    if !footer.is_empty() {
        plain.push(footer.clone());
        inner.push_str(&format!("<p><sub>{}</sub></p>", render_inline(&footer)));
    }
    if !inner.is_empty() {
        // The colour Slack draws as a bar at the attachment's side, as a coloured mark.
        let mark =
            colour(&a.color).map(|c| format!("<font data-mx-color=\"{c}\">\u{2503}</font> ")).unwrap_or_default();
        html.push_str(&format!("<blockquote>{mark}{inner}</blockquote>"));
    }
    (plain.join("\n"), html, room)
}

/// `text` linked to `url` when the spec allows the link, escaped either way.
fn link(text: &str, url: &str) -> String {
    if html::allowed_url(url) {
        format!("<a href=\"{}\">{}</a>", escape(url), escape(text))
    } else {
        escape(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::incoming::Field;

    fn message(text: &str, attachments: Vec<Attachment>) -> Message {
        Message { text: text.into(), attachments, ..Message::default() }
    }

    #[test]
    fn text_mentions_and_prefix() {
        let cases: &[(&str, Option<&str>, Value)] = &[
            (
                "Deploy *done*",
                None,
                json!({"msgtype": "m.notice", "body": "Deploy *done*", "format": "org.matrix.custom.html",
                       "formatted_body": "<p>Deploy <em>done</em></p>"}),
            ),
            (
                "@channel disk full on db1, @here too",
                None,
                json!({"msgtype": "m.notice", "body": "@room disk full on db1, @room too", "format": "org.matrix.custom.html",
                       "formatted_body": "<p>@room disk full on db1, @room too</p>", "m.mentions": {"room": true}}),
            ),
            (
                "mail ops@all.example and @alliance",
                None,
                json!({"msgtype": "m.notice", "body": "mail ops@all.example and @alliance", "format": "org.matrix.custom.html",
                       "formatted_body": "<p>mail ops@all.example and @alliance</p>"}),
            ),
            (
                "build <failed>",
                Some("jenkins <ci>"),
                json!({"msgtype": "m.notice", "body": "**jenkins <ci>**: build <failed>", "format": "org.matrix.custom.html",
                       "formatted_body": "<p><strong>jenkins &lt;ci&gt;</strong>: build &lt;failed&gt;</p>"}),
            ),
        ];
        for (text, prefix, want) in cases {
            assert_eq!(content(&message(text, vec![]), "m.notice", *prefix), *want, "{text:?}");
        }
    }

    #[test]
    fn attachments_render_as_html_blocks_and_plain_lines() {
        let attachment = Attachment {
            color: "danger".into(),
            pretext: "Alert from *prometheus*".into(),
            title: "DiskFull <db1>".into(),
            title_link: "https://grafana.example/d/1".into(),
            text: "Only 2% left, @channel".into(),
            fields: vec![
                Field { title: "Host".into(), value: Some("`db1`".into()), short: true },
                Field { title: String::new(), value: Some("untitled".into()), short: false },
            ],
            footer: "alertmanager".into(),
            ..Attachment::default()
        };
        let got = content(&message("", vec![attachment]), "m.text", None);
        assert_eq!(
            got["body"],
            "Alert from *prometheus*\nDiskFull <db1> (https://grafana.example/d/1)\nOnly 2% left, @room\nHost: `db1`\nuntitled\nalertmanager"
        );
        assert_eq!(
            got["formatted_body"],
            "<p>Alert from <em>prometheus</em></p><blockquote><font data-mx-color=\"#a30200\">\u{2503}</font> \
             <p><b><a href=\"https://grafana.example/d/1\">DiskFull &lt;db1&gt;</a></b></p><p>Only 2% left, @room</p>\
             <p><b>Host</b>: <code>db1</code><br />untitled</p><p><sub>alertmanager</sub></p></blockquote>"
        );
        assert_eq!(got["m.mentions"], json!({"room": true}));
        assert_eq!(got["msgtype"], "m.text");
    }

    #[test]
    fn colours_are_slack_names_or_hex() {
        let cases =
            [("good", Some("#2eb886")), ("#36A64F", Some("#36a64f")), ("red", None), ("#12345", None), ("", None)];
        for (name, want) in cases {
            assert_eq!(colour(name).as_deref(), want, "{name}");
        }
    }
}
