//! Block Kit to Markdown, so messages built from blocks arrive with their content
//! (docs/translation.md). Interactive blocks (actions, inputs) have no Markdown form: they are dropped and
//! reported.

use super::mrkdwn::{self, Styles};
use crate::pipeline::json::Json;
use crate::rules::SlackMaps;

/// Names reported for what has no Markdown form.
pub(crate) const DROPPED: &[&str] = &["blocks_actions", "blocks_input", "blocks_accessory", "blocks_unknown"];

/// Renders a `blocks` array. Returns the Markdown (blocks joined by a blank line) and the name of
/// every dropped block or element, for counting.
pub fn render(blocks: &Json, maps: &SlackMaps) -> (String, Vec<&'static str>) {
    let mut dropped = Vec::new();
    let rendered: Vec<String> = blocks
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|block| block_markdown(block, maps, &mut dropped))
        .filter(|s| !s.trim().is_empty())
        .collect();
    (rendered.join("\n\n"), dropped)
}

fn block_markdown(block: &Json, maps: &SlackMaps, dropped: &mut Vec<&'static str>) -> Option<String> {
    match block.str_member("type").unwrap_or("") {
        "header" => text_object(block.member("text")?, maps).map(|t| format!("#### {}", t.replace('\n', " "))),
        "section" => Some(section(block, maps, dropped)),
        "context" => {
            let parts: Vec<String> = block
                .member("elements")?
                .as_array()?
                .iter()
                .filter_map(|e| if e.str_member("type") == Some("image") { image(e) } else { text_object(e, maps) })
                .collect();
            Some(parts.join(" "))
        }
        "divider" => Some("---".into()),
        "image" => image(block),
        "rich_text" => Some(rich_text(block, maps)),
        "markdown" => block.str_member("text").map(str::to_owned),
        "actions" => {
            dropped.push("blocks_actions");
            None
        }
        "input" => {
            dropped.push("blocks_input");
            None
        }
        _ => {
            dropped.push("blocks_unknown");
            None
        }
    }
}

fn section(block: &Json, maps: &SlackMaps, dropped: &mut Vec<&'static str>) -> String {
    let mut lines: Vec<String> = block.member("text").and_then(|t| text_object(t, maps)).into_iter().collect();
    if let Some(fields) = block.member("fields").and_then(Json::as_array) {
        lines.extend(fields.iter().filter_map(|f| text_object(f, maps)));
    }
    if let Some(accessory) = block.member("accessory") {
        match accessory.str_member("type") {
            Some("image") => lines.extend(image(accessory)),
            _ => dropped.push("blocks_accessory"),
        }
    }
    lines.join("\n")
}

/// A composition text object: `mrkdwn` is Slack mrkdwn; `plain_text` shows literally.
fn text_object(object: &Json, maps: &SlackMaps) -> Option<String> {
    let text = object.str_member("text")?;
    Some(if object.str_member("type") == Some("plain_text") {
        escape(text)
    } else {
        mrkdwn::slack(text, maps, Styles::Convert)
    })
}

/// Plain text rendered literally in Markdown.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '_' | '~' | '`' | '\\' | '[' | ']' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn image(block: &Json) -> Option<String> {
    let url = block.str_member("image_url").or_else(|| block.str_member("url"))?;
    let alt = block.str_member("alt_text").filter(|a| !a.is_empty());
    let title = block.member("title").and_then(|t| t.str_member("text"));
    Some(format!("![{}]({url})", alt.or(title).unwrap_or("image").replace(['[', ']'], "")))
}

fn rich_text(block: &Json, maps: &SlackMaps) -> String {
    let elements = block.member("elements").and_then(Json::as_array).unwrap_or_default();
    let parts: Vec<String> = elements.iter().map(|e| rich_element(e, maps)).filter(|s| !s.is_empty()).collect();
    parts.join("\n")
}

fn rich_element(element: &Json, maps: &SlackMaps) -> String {
    let inner = || element.member("elements").and_then(Json::as_array).unwrap_or_default();
    match element.str_member("type").unwrap_or("") {
        "rich_text_section" => inline(inner(), maps),
        "rich_text_quote" => inline(inner(), maps).lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n"),
        "rich_text_preformatted" => {
            let code: String = inner().iter().map(|e| raw_text(e, maps)).collect();
            format!("```\n{}\n```", code.trim_end_matches('\n'))
        }
        "rich_text_list" => {
            let ordered = element.str_member("style") == Some("ordered");
            let indent = element.member("indent").and_then(|i| i.as_number()?.parse().ok());
            let pad = "  ".repeat(indent.unwrap_or(0usize).min(8));
            let offset = element.member("offset").and_then(|i| i.as_number()?.parse().ok());
            inner()
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let bullet = if ordered { format!("{}.", offset.unwrap_or(0usize) + i + 1) } else { "-".into() };
                    format!("{pad}{bullet} {}", rich_element(item, maps))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => String::new(),
    }
}

/// Inline rich-text elements with their styles.
fn inline(elements: &[Json], maps: &SlackMaps) -> String {
    elements.iter().map(|e| styled(e, raw_text(e, maps))).collect()
}

/// An inline element's text before styling.
fn raw_text(element: &Json, maps: &SlackMaps) -> String {
    let get = |k| element.str_member(k).unwrap_or("");
    match get("type") {
        "text" => get("text").to_owned(),
        "link" => {
            let url = get("url");
            match element.str_member("text").filter(|t| !t.is_empty()) {
                Some(text) => format!("[{text}]({url})"),
                None => url.to_owned(),
            }
        }
        "user" => format!("@{}", maps.users.get(get("user_id")).map_or(get("user_id"), String::as_str)),
        "channel" => format!("~{}", maps.channels.get(get("channel_id")).map_or(get("channel_id"), String::as_str)),
        "usergroup" => format!("@{}", get("usergroup_id")),
        "emoji" => format!(":{}:", get("name")),
        "broadcast" => match get("range") {
            "everyone" => "@all".into(),
            range => format!("@{range}"),
        },
        "date" => element.str_member("fallback").map(str::to_owned).unwrap_or_else(|| {
            mrkdwn::slack(&format!("<!date^{}^x>", raw_number(element.member("timestamp"))), maps, Styles::Keep)
        }),
        "color" => get("value").to_owned(),
        _ => String::new(),
    }
}

fn raw_number(value: Option<&Json>) -> String {
    match value {
        Some(Json::String(s)) => s.to_string(),
        Some(value) => value.as_number().unwrap_or_default().to_owned(),
        None => String::new(),
    }
}

/// Wraps text in the element's styles, keeping surrounding spaces outside the markers
/// (Markdown does not close `**bold **`).
fn styled(element: &Json, text: String) -> String {
    let Some(style) = element.member("style") else { return text };
    let on = |k| style.member(k).is_some_and(|v| *v == Json::Bool(true));
    let core = text.trim();
    if core.is_empty() {
        return text;
    }
    let lead = &text[..text.len() - text.trim_start().len()];
    let trail = &text[text.trim_end().len()..];
    let mut out = core.to_owned();
    if on("code") {
        out = format!("`{out}`");
    }
    if on("strike") {
        out = format!("~~{out}~~");
    }
    if on("italic") {
        out = format!("_{out}_");
    }
    if on("bold") {
        out = format!("**{out}**");
    }
    format!("{lead}{out}{trail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::json::parse;

    fn maps() -> SlackMaps {
        SlackMaps {
            users: [("U1".to_owned(), "alice".to_owned())].into(),
            channels: [("C1".to_owned(), "town-square".to_owned())].into(),
        }
    }

    fn run(blocks: &str) -> (String, Vec<&'static str>) {
        render(&parse(blocks.as_bytes()).unwrap(), &maps())
    }

    #[test]
    fn block_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            (r#"[{"type":"header","text":{"type":"plain_text","text":"Deploy *done*"}}]"#, "#### Deploy \\*done\\*", &[]),
            (r#"[{"type":"section","text":{"type":"mrkdwn","text":"*Build* <https://ci|#42> by <@U1>"}}]"#, "**Build** [#42](https://ci) by @alice", &[]),
            (r#"[{"type":"section","text":{"type":"plain_text","text":"a_b"}}]"#, "a\\_b", &[]),
            (
                r#"[{"type":"section","fields":[{"type":"mrkdwn","text":"*Env:* prod"},{"type":"mrkdwn","text":"*By:* ci"}]}]"#,
                "**Env:** prod\n**By:** ci",
                &[],
            ),
            (
                r#"[{"type":"section","text":{"type":"mrkdwn","text":"t"},"accessory":{"type":"image","image_url":"http://i/a.png","alt_text":"logo"}}]"#,
                "t\n![logo](http://i/a.png)",
                &[],
            ),
            (
                r#"[{"type":"section","text":{"type":"mrkdwn","text":"t"},"accessory":{"type":"button","text":{"type":"plain_text","text":"Go"}}}]"#,
                "t",
                &["blocks_accessory"],
            ),
            (
                r#"[{"type":"context","elements":[{"type":"image","image_url":"http://i/u.png","alt_text":"u"},{"type":"mrkdwn","text":"by _ci_"}]}]"#,
                "![u](http://i/u.png) by _ci_",
                &[],
            ),
            (r#"[{"type":"divider"}]"#, "---", &[]),
            (r#"[{"type":"image","image_url":"http://i/g.png","alt_text":"graph"}]"#, "![graph](http://i/g.png)", &[]),
            (r#"[{"type":"image","image_url":"http://i/g.png","alt_text":"","title":{"type":"plain_text","text":"CPU"}}]"#, "![CPU](http://i/g.png)", &[]),
            (r#"[{"type":"markdown","text":"**already** markdown"}]"#, "**already** markdown", &[]),
            (r#"[{"type":"actions","elements":[{"type":"button"}]}]"#, "", &["blocks_actions"]),
            (r#"[{"type":"input","element":{}}]"#, "", &["blocks_input"]),
            (r#"[{"type":"video"}]"#, "", &["blocks_unknown"]),
            (
                r#"[{"type":"header","text":{"type":"plain_text","text":"H"}},{"type":"actions"},{"type":"divider"},{"type":"section","text":{"type":"mrkdwn","text":"S"}}]"#,
                "#### H\n\n---\n\nS",
                &["blocks_actions"],
            ),
            (
                r#"[{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[
                    {"type":"text","text":"Hello "},{"type":"text","text":"bold ","style":{"bold":true}},
                    {"type":"text","text":"it","style":{"italic":true}},{"type":"text","text":" "},
                    {"type":"text","text":"x","style":{"strike":true}},{"type":"text","text":" "},
                    {"type":"text","text":"c","style":{"code":true}},{"type":"text","text":" "},
                    {"type":"link","url":"https://x.io","text":"site"},{"type":"text","text":" "},
                    {"type":"link","url":"https://y.io"},{"type":"text","text":" "},
                    {"type":"user","user_id":"U1"},{"type":"text","text":" "},{"type":"user","user_id":"U9"},{"type":"text","text":" "},
                    {"type":"channel","channel_id":"C1"},{"type":"text","text":" "},
                    {"type":"usergroup","usergroup_id":"S1"},{"type":"text","text":" "},
                    {"type":"emoji","name":"tada"},{"type":"text","text":" "},
                    {"type":"broadcast","range":"here"},{"type":"text","text":" "},{"type":"broadcast","range":"everyone"},
                    {"type":"text","text":" "},{"type":"date","timestamp":1392734382,"format":"{date_short}","fallback":"Feb 18"},
                    {"type":"text","text":" "},{"type":"date","timestamp":1392734382,"format":"{date_short}"}
                ]}]}]"#,
                "Hello **bold** _it_ ~~x~~ `c` [site](https://x.io) https://y.io @alice @U9 ~town-square @S1 :tada: @here @all Feb 18 2014-02-18 14:39 UTC",
                &[],
            ),
            (
                r#"[{"type":"rich_text","elements":[
                    {"type":"rich_text_list","style":"bullet","elements":[
                        {"type":"rich_text_section","elements":[{"type":"text","text":"one"}]},
                        {"type":"rich_text_section","elements":[{"type":"text","text":"two"}]}]},
                    {"type":"rich_text_list","style":"bullet","indent":1,"elements":[
                        {"type":"rich_text_section","elements":[{"type":"text","text":"nested"}]}]},
                    {"type":"rich_text_list","style":"ordered","offset":2,"elements":[
                        {"type":"rich_text_section","elements":[{"type":"text","text":"third"}]}]},
                    {"type":"rich_text_quote","elements":[{"type":"text","text":"quoted\nlines"}]},
                    {"type":"rich_text_preformatted","elements":[{"type":"text","text":"let a = *b;\n"}]}
                ]}]"#,
                "- one\n- two\n  - nested\n3. third\n> quoted\n> lines\n```\nlet a = *b;\n```",
                &[],
            ),
            (r#"[{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"  ","style":{"bold":true}}]}]}]"#, "", &[]),
            (r#"[{"type":"section"}]"#, "", &[]),
            (r#"[null, 5, "x", {"no":"type"}]"#, "", &["blocks_unknown", "blocks_unknown", "blocks_unknown", "blocks_unknown"]),
            ("[]", "", &[]),
        ];
        for (blocks, want, dropped) in cases {
            let (text, got_dropped) = run(blocks);
            assert_eq!(text, *want, "{blocks}");
            assert_eq!(got_dropped, *dropped, "{blocks}");
        }
    }
}
