//! Text translation: Slack mrkdwn to Markdown (`slack`), and Mattermost's own conversions
//! (`mattermost`) for hooks whose senders already write Markdown (docs/translation.md).

use crate::rules::SlackMaps;
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
        push_decoded(code, &mut out);
        rest = after;
    }
    out
}

/// Splits `text` at its first code region: (text before, the code with its backticks, rest).
fn next_code(text: &str) -> (&str, &str, &str) {
    let mut search = 0;
    while let Some(i) = memchr::memchr(b'`', &text.as_bytes()[search..]).map(|i| i + search) {
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

/// Appends `text` with `&lt;`, `&gt;` and `&amp;` decoded, each once, left to right.
fn push_decoded(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(i) = memchr::memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match ENTITIES.iter().find(|(entity, _)| rest.starts_with(entity)) {
            Some((entity, c)) => {
                out.push(*c);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

const ENTITIES: [(&str, char); 3] = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')];

/// Plain text as a sequence of units, one `u32` each so the style scan stays cheap: a character
/// styles may apply to is its scalar value; the tags below mark the rest.
mod unit {
    /// A character decoded from an entity: text, never a marker or the start of a link.
    pub(crate) const LITERAL: u32 = 1 << 29;
    /// Converted output (a link, a mention): the low bits index the atoms list.
    pub(crate) const ATOM: u32 = 1 << 30;
    /// A style marker that pairs with another: written as Markdown. Set on a character unit,
    /// which still counts as that character for the rest of the scan.
    pub(crate) const STYLED: u32 = 1 << 31;

    /// The character of a plain-character unit.
    pub(crate) fn char_of(u: u32) -> Option<char> {
        let u = u & !STYLED;
        if u & (LITERAL | ATOM) == 0 {
            char::from_u32(u)
        } else {
            None
        }
    }
}

fn convert_plain(text: &str, maps: &SlackMaps, styles: Styles, out: &mut String) {
    // Most text has nothing to convert; it is copied as it is. The specials are ASCII, so bytes
    // are searched: a search by `char` decoded every character first.
    let escape = styles == Styles::Escape;
    let special = |&b: &u8| matches!(b, b'<' | b'&' | b'*' | b'_' | b'~') || escape && matches!(b, b'`' | b'\\');
    if !text.as_bytes().iter().any(special) {
        out.push_str(text);
        return;
    }
    let mut units = units(text, maps);
    if styles == Styles::Convert {
        let present = ['*', '_', '~'].map(|m| memchr::memchr(m as u8, text.as_bytes()).map(|_| m));
        mark_style_pairs(&mut units.units, present.iter().flatten().copied());
    }
    render(&units, styles == Styles::Escape, out);
}

/// Writes units as Markdown: styled markers doubled where Markdown needs it, atoms as converted,
/// and with `escape` the style characters escaped.
fn render(Units { units, atom_text, atom_ends }: &Units, escape: bool, out: &mut String) {
    out.reserve(units.len() + atom_text.len());
    for &u in units {
        if u < 0x80 && !(escape && b"*_~`\\".contains(&(u as u8))) {
            out.push(char::from(u as u8));
        } else if u & unit::ATOM != 0 {
            let a = (u & !unit::ATOM) as usize;
            let start = if a == 0 { 0 } else { atom_ends[a - 1] };
            out.push_str(&atom_text[start..atom_ends[a]]);
        } else if u & unit::LITERAL != 0 {
            out.push(char::from_u32(u & !unit::LITERAL).unwrap_or(char::REPLACEMENT_CHARACTER));
        } else if u & unit::STYLED != 0 {
            out.push_str(match unit::char_of(u) {
                Some('*') => "**",
                Some('~') => "~~",
                _ => "_",
            });
        } else if let Some(c) = unit::char_of(u) {
            if escape && matches!(c, '*' | '_' | '~' | '`' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

/// Plain text as units, and the converted text of its atoms.
struct Units {
    units: Vec<u32>,
    /// Converted text of every atom, one after another, and where each one ends.
    atom_text: String,
    atom_ends: Vec<usize>,
}

fn units(text: &str, maps: &SlackMaps) -> Units {
    let mut units: Vec<u32> = Vec::with_capacity(text.len());
    let mut atom_text = String::new();
    let mut atom_ends: Vec<usize> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // A run of plain ASCII goes in as it is, in one go.
        let stop = memchr::memchr2(b'<', b'&', &bytes[i..]).map_or(bytes.len(), |p| p + i);
        let run_end = if bytes[i..stop].is_ascii() {
            stop
        } else {
            bytes[i..stop].iter().position(|b| !b.is_ascii()).map_or(stop, |p| p + i)
        };
        units.extend(bytes[i..run_end].iter().map(|&b| u32::from(b)));
        i = run_end;
        let Some(&b) = bytes.get(i) else { break };
        if b == b'<' {
            // The next byte first: a run of `<` would pay memchr's set-up at every one of them.
            let after = &bytes[i + 1..];
            let found = match after.first() {
                Some(b'>' | b'<' | b'\n') => Some(0),
                _ => memchr::memchr3(b'>', b'<', b'\n', after),
            };
            if let Some(end) = found.map(|e| e + i + 1) {
                // Sized once for what is left: converted atoms are about as long as their source,
                // and growing from nothing took a reallocation or two a message.
                if atom_text.capacity() == 0 {
                    atom_text.reserve(text.len() - i);
                }
                let before = atom_text.len();
                if bytes[end] == b'>' && angle(&text[i + 1..end], maps, &mut atom_text) {
                    units.push(unit::ATOM | atom_ends.len() as u32);
                    atom_ends.push(atom_text.len());
                    i = end + 1;
                    continue;
                }
                atom_text.truncate(before);
            }
        } else if b == b'&' {
            if let Some((entity, c)) = ENTITIES.iter().find(|(e, _)| text[i..].starts_with(e)) {
                units.push(unit::LITERAL | *c as u32);
                i += entity.len();
                continue;
            }
        }
        let c = text[i..].chars().next().expect("i is on a character boundary");
        units.push(c as u32);
        i += c.len_utf8();
    }
    Units { units, atom_text, atom_ends }
}

/// Marks the units that are one side of a Slack style pair, as Slack pairs them: a marker opens
/// after whitespace or punctuation and before a non-space, and closes on the same line after a
/// non-space and before a non-alphanumeric character or the end. Links, mentions and decoded
/// entities are no characters and match nothing.
/// `markers` are the style characters the text holds at all.
///
/// Linear in the units, however many openers never close: an opener takes the first closer
/// after it, and whether a unit can close does not change while one marker is paired (styling a
/// unit keeps its character), so the next closer and the next line break are two cursors that
/// only move forward.
fn mark_style_pairs(units: &mut [u32], markers: impl Iterator<Item = char>) {
    let len = units.len();
    for marker in markers {
        let m = marker as u32;
        let opens = |units: &[u32], i: usize| {
            i + 1 < len
                && (i == 0 || is(units, i - 1, |c| c.is_whitespace() || (!c.is_alphanumeric() && c != marker)))
                && !is(units, i + 1, |c| c.is_whitespace() || c == marker)
        };
        let closes = |units: &[u32], j: usize| {
            units[j] == m
                && !is(units, j - 1, char::is_whitespace)
                && (j + 1 == len || is(units, j + 1, |c| !c.is_alphanumeric()))
        };
        // The first closer and the first line break at or after where each was last looked for.
        let (mut closer, mut line_end) = (0, 0);
        let mut i = 0;
        while let Some(found) = units[i..].iter().position(|&u| u == m) {
            i += found;
            if opens(units, i) {
                let from = i + 2;
                if closer < from {
                    closer = (from..len).find(|&j| closes(units, j)).unwrap_or(len);
                }
                if line_end < from {
                    line_end = (from..len).find(|&j| units[j] == '\n' as u32).unwrap_or(len);
                }
                if closer < line_end {
                    units[i] |= unit::STYLED;
                    units[closer] |= unit::STYLED;
                    i = closer + 1;
                    continue;
                }
            }
            i += 1;
        }
    }
}

/// Whether unit `i` is a character `f` accepts.
fn is(units: &[u32], i: usize, f: impl Fn(char) -> bool) -> bool {
    units.get(i).and_then(|&u| unit::char_of(u)).is_some_and(f)
}

/// Converts the inside of a `<...>` sequence into `out`; false leaves the sequence as it was
/// (and `out` may then hold a partial conversion for the caller to drop).
fn angle(inner: &str, maps: &SlackMaps, out: &mut String) -> bool {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) if !l.is_empty() => (t, Some(l)),
        Some((t, _)) => (t, None),
        None => (inner, None),
    };
    if let Some((sigil, prefix, names)) = match target.as_bytes().first() {
        Some(b'@') => Some(("@", '@', &maps.users)),
        Some(b'#') => Some(("~", '#', &maps.channels)),
        _ => None,
    } {
        let id = &target[1..];
        if id.is_empty() {
            return false;
        }
        out.push_str(sigil);
        match (names.get(id), label) {
            (Some(name), _) => out.push_str(name),
            (None, Some(label)) => push_decoded(label.trim_start_matches(prefix), out),
            (None, None) => out.push_str(id),
        }
        return true;
    }
    if let Some(special) = target.strip_prefix('!') {
        let label = label.map(|l| {
            let mut decoded = String::with_capacity(l.len());
            push_decoded(l, &mut decoded);
            decoded
        });
        return special_command(special, label).map(|s| out.push_str(&s)).is_some();
    }
    // Bytes first: most targets are ASCII, and a walk by `char` decodes every one.
    let spaced = if target.is_ascii() {
        target.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
    } else {
        target.contains(char::is_whitespace)
    };
    if target.is_empty() || spaced || memchr::memchr(b':', target.as_bytes()).is_none() {
        return false;
    }
    match label {
        Some(label) => {
            out.push('[');
            push_decoded(label, out);
            out.push_str("](");
            push_decoded(target, out);
            out.push(')');
        }
        None => push_decoded(target, out),
    }
    true
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
    use proptest::prelude::*;

    pub(crate) fn maps() -> SlackMaps {
        SlackMaps {
            users: [("U024BE7LH", "alice"), ("U1", "bob")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            channels: [("C024BE91L", "town-square")].into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The pairing rule as first written: each opener looks ahead along its line for a closer,
    /// which is quadratic in the length of a line of openers that never close. Kept as the
    /// reference the linear pairing is checked against.
    fn pairs_by_lookahead(units: &mut [u32], markers: impl Iterator<Item = char>) {
        let len = units.len();
        for marker in markers {
            let m = marker as u32;
            let mut i = 0;
            while let Some(found) = units[i..].iter().position(|&u| u == m) {
                i += found;
                let opens = i + 1 < len
                    && (i == 0 || is(units, i - 1, |c| c.is_whitespace() || (!c.is_alphanumeric() && c != marker)))
                    && !is(units, i + 1, |c| c.is_whitespace() || c == marker);
                let close = if opens {
                    (i + 2..len).take_while(|&j| units[j] != '\n' as u32).find(|&j| {
                        units[j] == m
                            && !is(units, j - 1, char::is_whitespace)
                            && (j + 1 == len || is(units, j + 1, |c| !c.is_alphanumeric()))
                    })
                } else {
                    None
                };
                match close {
                    Some(j) => {
                        units[i] |= unit::STYLED;
                        units[j] |= unit::STYLED;
                        i = j + 1;
                    }
                    None => i += 1,
                }
            }
        }
    }

    /// `slack(text, maps, Styles::Convert)` with the pairing as first written: the same code
    /// regions, units and rendering.
    fn slack_by_lookahead(text: &str, maps: &SlackMaps) -> String {
        let mut out = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (plain, code, after) = next_code(rest);
            let mut units = units(plain, maps);
            pairs_by_lookahead(&mut units.units, ['*', '_', '~'].into_iter());
            render(&units, false, &mut out);
            push_decoded(code, &mut out);
            rest = after;
        }
        out
    }

    /// Text rich in what pairing looks at: markers, code, angle brackets, entities, spaces and
    /// line breaks, letters, digits and punctuation, in more than one script.
    #[rustfmt::skip] // kept as a table; one piece a line would run to forty lines
    fn style_text() -> impl Strategy<Value = String> {
        let piece = proptest::sample::select(vec![
            "*", "_", "~", "*", "_", "~", "`", "```", "<", ">", "&", "&amp;", "&lt;", "&gt;", " ", " ", "\n", "\t",
            "\u{a0}", "a", "bc", "Z", "7", "é", "本", ".", ",", "(", ")", "|", ":", "<@U1>", "<#C1>", "<!here>",
            "<https://x.io|l>", "<https://x.io>",
        ]);
        proptest::collection::vec(piece, 0..80).prop_map(|pieces| pieces.concat())
    }

    /// Units as the pairing sees them, atoms and decoded entities among the characters.
    fn style_units() -> impl Strategy<Value = Vec<u32>> {
        let unit = proptest::sample::select(vec![
            '*' as u32,
            '_' as u32,
            '~' as u32,
            ' ' as u32,
            '\n' as u32,
            'a' as u32,
            '.' as u32,
            'é' as u32,
            unit::LITERAL | '*' as u32,
            unit::LITERAL | ' ' as u32,
            unit::ATOM,
        ]);
        proptest::collection::vec(unit, 0..64)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn linear_pairing_converts_as_lookahead_did(text in style_text()) {
            prop_assert_eq!(slack(&text, &maps(), Styles::Convert), slack_by_lookahead(&text, &maps()));
        }

        #[test]
        fn linear_pairing_marks_as_lookahead_did(units in style_units()) {
            let mut linear = units.clone();
            let mut reference = units;
            mark_style_pairs(&mut linear, ['*', '_', '~'].into_iter());
            pairs_by_lookahead(&mut reference, ['*', '_', '~'].into_iter());
            prop_assert_eq!(linear, reference);
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
        // whitespace of any kind in a target: not a link
        ("<http://a\u{b}b|x>", "<http://a\u{b}b|x>"),
        ("<http://a\tb>", "<http://a\tb>"),
        ("<http://é\u{a0}b|x>", "<http://é\u{a0}b|x>"),
        ("<http://é/b|x>", "[x](http://é/b)"),
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
