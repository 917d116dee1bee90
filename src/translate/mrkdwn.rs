//! Text translation: Slack mrkdwn to Markdown (`slack`), and Mattermost's own conversions
//! (`mattermost`) for hooks whose senders already write Markdown (contract sections 5 and 9).

use super::SlackMaps;
use regex::{Captures, Regex};
use std::sync::LazyLock;

/// What happens to Slack's style characters (`*bold*`, `_italic_`, `~strike~`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Styles {
    /// Converted to Markdown at word boundaries, as Slack parses them.
    Convert,
    /// Escaped so they render literally (`mrkdwn: false`, members not in `mrkdwn_in`).
    Escape,
    /// Left as they are (titles: links, mentions and entities only).
    Keep,
}

/// Slack mrkdwn to Markdown. Links, mentions, dates and entities always convert; styles as
/// `styles` says. Inside inline code and code blocks only the three entities are decoded.
pub fn slack(text: &str, maps: &SlackMaps, styles: Styles) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while !rest.is_empty() {
        let (plain, code, after) = next_code(rest);
        convert_plain(plain, maps, styles, &mut out);
        out.push_str(&decode_entities(code));
        rest = after;
    }
    out
}

/// Splits `text` at its first code region: (text before, the code with its backticks, rest).
fn next_code(text: &str) -> (&str, &str, &str) {
    let mut search = 0;
    while let Some(i) = text[search..].find('`').map(|i| i + search) {
        let (fence, multiline) = if text[i..].starts_with("```") { ("```", true) } else { ("`", false) };
        let body = i + fence.len();
        if let Some(end) = text[body..].find(fence).map(|e| e + body) {
            if multiline || !text[body..end].contains('\n') && end > body {
                let close = end + fence.len();
                return (&text[..i], &text[i..close], &text[close..]);
            }
        }
        search = body;
    }
    (text, "", "")
}

pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// A piece of plain text: a character that styles may apply to, or converted output that they
/// must not touch (a link, a mention).
#[derive(Clone, Copy)]
enum Unit {
    Char(char),
    /// A character decoded from an entity: text, never a marker or the start of a link.
    Literal(char),
    /// Converted output (a link, a mention), by index into the atoms list.
    Atom(usize),
}

fn convert_plain(text: &str, maps: &SlackMaps, styles: Styles, out: &mut String) {
    // Most text has nothing to convert; it is copied as it is.
    let special: &[char] = match styles {
        Styles::Escape => &['<', '&', '*', '_', '~', '`', '\\'],
        _ => &['<', '&', '*', '_', '~'],
    };
    if !text.contains(special) {
        out.push_str(text);
        return;
    }
    let mut units = Vec::with_capacity(text.len());
    let mut atoms = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(end) = rest[1..].find(['>', '<', '\n']).map(|e| e + 1) {
                if rest.as_bytes()[end] == b'>' {
                    if let Some(atom) = angle(&rest[1..end], maps) {
                        units.push(Unit::Atom(atoms.len()));
                        atoms.push(atom);
                        rest = &rest[end + 1..];
                        continue;
                    }
                }
            }
        }
        if c == '&' {
            let decoded = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')].into_iter().find(|(e, _)| rest.starts_with(e));
            if let Some((entity, ch)) = decoded {
                units.push(Unit::Literal(ch));
                rest = &rest[entity.len()..];
                continue;
            }
        }
        units.push(Unit::Char(c));
        rest = &rest[c.len_utf8()..];
    }
    let replacements = match styles {
        Styles::Convert => style_pairs(&units),
        _ => Vec::new(),
    };
    for (i, unit) in units.iter().enumerate() {
        match *unit {
            Unit::Atom(a) => out.push_str(&atoms[a]),
            Unit::Literal(c) => out.push(c),
            Unit::Char(c) => {
                if let Some(r) = replacements.get(i).copied().flatten() {
                    out.push_str(r);
                } else if styles == Styles::Escape && matches!(c, '*' | '_' | '~' | '`' | '\\') {
                    out.push('\\');
                    out.push(c);
                } else {
                    out.push(c);
                }
            }
        }
    }
}

/// For each unit, the Markdown that replaces it when it is one side of a Slack style pair.
fn style_pairs(units: &[Unit]) -> Vec<Option<&'static str>> {
    // Plain characters only; links, mentions and decoded entities are `None` and match nothing.
    let chars: Vec<Option<char>> = units.iter().map(|u| if let Unit::Char(c) = u { Some(*c) } else { None }).collect();
    let is = |i: usize, f: &dyn Fn(char) -> bool| chars.get(i).copied().flatten().is_some_and(f);
    let mut out = vec![None; units.len()];
    for (marker, markdown) in [('*', "**"), ('_', "_"), ('~', "~~")] {
        if !chars.contains(&Some(marker)) {
            continue;
        }
        let mut i = 0;
        while i < units.len() {
            let opens = is(i, &|c| c == marker)
                && out[i].is_none()
                && (i == 0 || is(i - 1, &|c| c.is_whitespace() || (!c.is_alphanumeric() && c != marker)))
                && !is(i + 1, &|c| c.is_whitespace() || c == marker)
                && i + 1 < units.len();
            if !opens {
                i += 1;
                continue;
            }
            let mut close = None;
            for j in i + 2..units.len() {
                if is(j, &|c| c == '\n') {
                    break;
                }
                let closes = is(j, &|c| c == marker)
                    && !is(j - 1, &|c| c.is_whitespace())
                    && (j + 1 == units.len() || is(j + 1, &|c| !c.is_alphanumeric()));
                if closes {
                    close = Some(j);
                    break;
                }
            }
            match close {
                Some(j) => {
                    out[i] = Some(markdown);
                    out[j] = Some(markdown);
                    i = j + 1;
                }
                None => i += 1,
            }
        }
    }
    out
}

/// Converts the inside of a `<...>` sequence; `None` leaves the sequence as it was.
fn angle(inner: &str, maps: &SlackMaps) -> Option<String> {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) if !l.is_empty() => (t, Some(decode_entities(l))),
        Some((t, _)) => (t, None),
        None => (inner, None),
    };
    if let Some(id) = target.strip_prefix('@') {
        if id.is_empty() {
            return None;
        }
        let name = maps.users.get(id).cloned().or_else(|| label.map(|l| l.trim_start_matches('@').to_owned()));
        return Some(format!("@{}", name.as_deref().unwrap_or(id)));
    }
    if let Some(id) = target.strip_prefix('#') {
        if id.is_empty() {
            return None;
        }
        let name = maps.channels.get(id).cloned().or_else(|| label.map(|l| l.trim_start_matches('#').to_owned()));
        return Some(format!("~{}", name.as_deref().unwrap_or(id)));
    }
    if let Some(special) = target.strip_prefix('!') {
        return special_command(special, label);
    }
    if target.is_empty() || target.contains(char::is_whitespace) || !target.contains(':') {
        return None;
    }
    let url = decode_entities(target);
    Some(match label {
        Some(label) => format!("[{label}]({url})"),
        None => url,
    })
}

/// `<!here>`, `<!subteam^S1|@team>`, `<!date^TS^FORMAT|fallback>` and friends.
fn special_command(command: &str, label: Option<String>) -> Option<String> {
    match command {
        "channel" | "group" => return Some("@channel".into()),
        "here" => return Some("@here".into()),
        "everyone" | "all" => return Some("@all".into()),
        _ => {}
    }
    if let Some(id) = command.strip_prefix("subteam^") {
        return Some(match label {
            Some(l) if l.starts_with('@') => l,
            Some(l) => format!("@{l}"),
            None => format!("@{id}"),
        });
    }
    if let Some(rest) = command.strip_prefix("date^") {
        return label.or_else(|| {
            let ts: u64 = rest.split('^').next()?.parse().ok()?;
            let when = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts));
            let when = when.to_string();
            Some(format!("{} {} UTC", &when[..10], &when[11..16]))
        });
    }
    label
}

static USER_MENTION: LazyLock<Regex> = LazyLock::new(|| Regex::new("<@([A-Za-z0-9]+)>").expect("valid regex"));
/// Mattermost's link pattern for message text: single-line, no `|` in the label.
static TEXT_LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<([^\n<|>]+)\|([^|\n>]+)>").expect("valid regex"));
/// Mattermost's looser pattern for attachment text, pretext and field values.
static ATTACHMENT_LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<([^<|]+)\|([^>]+)>").expect("valid regex"));

/// Which of Mattermost's link patterns applies to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Message text.
    Text,
    /// Attachment pretext, text and field values.
    Attachment,
    /// Attachment titles: no link conversion.
    None,
}

/// Mattermost's own conversions, as Mattermost makes them: `<!channel>`, `<!here>`, `<!all>`,
/// `<@ID>` for users the map knows, and labelled links. No code awareness, no styles.
pub fn mattermost(text: &str, maps: &SlackMaps, links: Links) -> String {
    if !text.contains('<') {
        return text.to_owned();
    }
    // Attachments have their links converted first, as Mattermost does when it decodes them.
    let text = if links == Links::Attachment {
        ATTACHMENT_LINK.replace_all(text, "[$2]($1)").into_owned()
    } else {
        text.to_owned()
    };
    let text = text.replace("<!channel>", "@channel").replace("<!here>", "@here").replace("<!all>", "@all");
    let text = USER_MENTION.replace_all(&text, |caps: &Captures| match maps.users.get(&caps[1]) {
        Some(name) => format!("@{name}"),
        None => caps[0].to_owned(),
    });
    match links {
        Links::Text => TEXT_LINK.replace_all(&text, "[$2]($1)").into_owned(),
        _ => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn maps() -> SlackMaps {
        SlackMaps {
            users: [("U024BE7LH", "alice"), ("U1", "bob")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            channels: [("C024BE91L", "town-square")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// Slack's formatting reference, case by case: input mrkdwn -> Markdown.
    const SLACK_CASES: &[(&str, &str)] = &[
        // links
        ("<https://x.io|label>", "[label](https://x.io)"),
        ("<https://x.io>", "https://x.io"),
        ("see <https://x.io/a_b_c|the *docs*> now", "see [the *docs*](https://x.io/a_b_c) now"),
        ("<mailto:a@b.c|a>", "[a](mailto:a@b.c)"),
        ("<mailto:a@b.c>", "mailto:a@b.c"),
        ("<https://x.io/?a=1&amp;b=2|q&amp;a>", "[q&a](https://x.io/?a=1&b=2)"),
        ("<http://a|b|c>", "[b|c](http://a)"),
        ("a <not a link> b", "a <not a link> b"),
        ("< | \n|\n>", "< | \n|\n>"),
        ("<>", "<>"),
        // announcements
        ("<!channel>", "@channel"),
        ("<!here>", "@here"),
        ("<!everyone>", "@all"),
        ("<!all>", "@all"),
        ("<!group>", "@channel"),
        ("<!here|here> hi", "@here hi"),
        ("<!channel|@channel> deploy", "@channel deploy"),
        ("<!here> bar <!here>", "@here bar @here"),
        // users
        ("<@U024BE7LH> hello", "@alice hello"),
        ("<@U024BE7LH|someone>", "@alice"),
        ("<@U999|carol>", "@carol"),
        ("<@U999|@carol>", "@carol"),
        ("<@U999>", "@U999"),
        ("<@>", "<@>"),
        // channels
        ("<#C024BE91L|general>", "~town-square"),
        ("<#C024BE91L>", "~town-square"),
        ("<#C999|random>", "~random"),
        ("<#C999>", "~C999"),
        // user groups and dates
        ("<!subteam^S1|@team>", "@team"),
        ("<!subteam^S1|team>", "@team"),
        ("<!subteam^S1>", "@S1"),
        ("<!date^1392734382^{date_short}|Feb 18>", "Feb 18"),
        ("<!date^1392734382^{date_short} at {time}^https://x.io|Feb 18 at 6:39 AM>", "Feb 18 at 6:39 AM"),
        ("<!date^1392734382^{date_short}>", "2014-02-18 14:39 UTC"),
        ("<!unknowncommand>", "<!unknowncommand>"),
        ("<!unknowncommand|shown>", "shown"),
        // styles
        ("*bold*", "**bold**"),
        ("_italic_", "_italic_"),
        ("~strike~", "~~strike~~"),
        ("*bold* and _it_ and ~gone~", "**bold** and _it_ and ~~gone~~"),
        ("*bold _nested_ text*", "**bold _nested_ text**"),
        ("(*bold*)", "(**bold**)"),
        ("*bold*.", "**bold**."),
        ("snake_case_name", "snake_case_name"),
        ("2*3*4", "2*3*4"),
        ("* not bold *", "* not bold *"),
        ("*unclosed", "*unclosed"),
        ("**", "**"),
        ("*two\nlines*", "*two\nlines*"),
        ("a*b* c", "a*b* c"),
        ("*<https://x.io|link>*", "**[link](https://x.io)**"),
        ("*<@U1>*", "**@bob**"),
        ("~*both*~", "~~**both**~~"),
        ("_ünïcode_", "_ünïcode_"),
        // entities
        ("&amp; &lt; &gt;", "& < >"),
        ("a &lt;b&gt; c", "a <b> c"),
        ("&lt;https://x.io|no&gt;", "<https://x.io|no>"),
        ("&amp;lt;", "&lt;"),
        ("&quot; &#39;", "&quot; &#39;"),
        ("*&amp;*", "**&**"),
        // code is left alone but for the entities
        ("`*not bold*`", "`*not bold*`"),
        ("`<https://x.io|x>`", "`<https://x.io|x>`"),
        ("`a &amp;&amp; b`", "`a && b`"),
        ("```\n*code* <!here>\n```", "```\n*code* <!here>\n```"),
        ("```if a &lt; b```", "```if a < b```"),
        ("*bold* `*code*` *bold*", "**bold** `*code*` **bold**"),
        ("`unclosed *bold*", "`unclosed **bold**"),
        ("`a\nb` *x*", "`a\nb` **x**"),
        ("``", "``"),
        // more from Slack's formatting reference
        ("Hello <@U024BE7LH|alice>, see <#C024BE91L|general>", "Hello @alice, see ~town-square"),
        (
            "<https://example.com/path?q=a_b*c|*not* styled> *but this*",
            "[*not* styled](https://example.com/path?q=a_b*c) **but this**",
        ),
        ("Watch out for <!here|@here>!", "Watch out for @here!"),
        ("_Italic at end._", "_Italic at end._"),
        ("~strike~,*bold*;_it_", "~~strike~~,**bold**;_it_"),
        ("multi *word bold* text", "multi **word bold** text"),
        (
            "*bold*
_italic_
~strike~",
            "**bold**
_italic_
~~strike~~",
        ),
        ("> *quoted bold*", "> **quoted bold**"),
        ("• item with <https://x.io|link>", "• item with [link](https://x.io)"),
        (
            "```
multi
line &gt; code
```
after *bold*",
            "```
multi
line > code
```
after **bold**",
        ),
        // text without Slack markup is unchanged
        ("plain text, nothing to do.", "plain text, nothing to do."),
        ("[already](markdown) **bold**", "[already](markdown) **bold**"),
        ("line one\nline two\n> quote\n• bullet", "line one\nline two\n> quote\n• bullet"),
        ("emoji :tada: stays", "emoji :tada: stays"),
        ("", ""),
    ];

    #[test]
    fn slack_mode_table() {
        for (input, want) in SLACK_CASES {
            assert_eq!(slack(input, &maps(), Styles::Convert), *want, "{input:?}");
        }
    }

    #[test]
    fn literal_styles_escape_and_titles_keep() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "*bold* <@U1> &amp; <https://x.io|x>",
                "\\*bold\\* @bob & [x](https://x.io)",
                "*bold* @bob & [x](https://x.io)",
            ),
            ("snake_case ~x~ `c`", "snake\\_case \\~x\\~ `c`", "snake_case ~x~ `c`"),
            ("a\\b", "a\\\\b", "a\\b"),
        ];
        for (input, escaped, kept) in cases {
            assert_eq!(slack(input, &maps(), Styles::Escape), *escaped, "{input:?}");
            assert_eq!(slack(input, &maps(), Styles::Keep), *kept, "{input:?}");
        }
    }

    /// Mattermost's own conversions (`markdown` mode), from its tests.
    #[test]
    fn markdown_mode_table() {
        let cases: &[(&str, Links, &str)] = &[
            ("<https://mattermost.com|Mattermost>", Links::Text, "[Mattermost](https://mattermost.com)"),
            ("`<>|<>|`", Links::Text, "`<>|<>|`"),
            ("< | \n|\n>", Links::Text, "< | \n|\n>"),
            (
                "`if(status_int < QUERY_UNKNOWN || status_int >= QUERY_STATUS_MAX)`",
                Links::Text,
                "`if(status_int < QUERY_UNKNOWN || status_int >= QUERY_STATUS_MAX)`",
            ),
            ("<http://a|b|c>", Links::Text, "<http://a|b|c>"),
            ("<#C123|general>", Links::Text, "[general](#C123)"),
            ("Author: foo <foo@example.org>", Links::Text, "Author: foo <foo@example.org>"),
            ("`<https://x.io|in code>`", Links::Text, "`[in code](https://x.io)`"),
            ("<!here> bar <!here>", Links::Text, "@here bar @here"),
            ("<!all> bar <!all>", Links::Text, "@all bar @all"),
            ("<!channel> x", Links::Text, "@channel x"),
            ("<!everyone> <!group>", Links::Text, "<!everyone> <!group>"),
            ("<@U1> hello", Links::Text, "@bob hello"),
            ("<@nobodyid123> hi", Links::Text, "<@nobodyid123> hi"),
            ("*bold* &amp;", Links::Text, "*bold* &amp;"),
            ("<http://x.example|X>", Links::Attachment, "[X](http://x.example)"),
            ("<http://a|b|c>", Links::Attachment, "[b|c](http://a)"),
            ("<http://a\n|two\nlines>", Links::Attachment, "[two\nlines](http://a\n)"),
            ("<http://t.example|T>", Links::None, "<http://t.example|T>"),
            ("<!channel> title <@U1>", Links::None, "@channel title @bob"),
            ("no markup", Links::Text, "no markup"),
        ];
        for (input, links, want) in cases {
            assert_eq!(mattermost(input, &maps(), *links), *want, "{input:?} {links:?}");
        }
    }
}
