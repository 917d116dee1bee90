//! Markdown (as a Mattermost backend receives it) to the HTML of a Matrix event's
//! `formatted_body`, through pulldown-cmark, limited to what the Matrix spec lets clients show:
//! HTML written in the payload is escaped as text, images become links (an `<img>` needs an
//! `mxc://` source), links keep only the schemes the spec allows, and table cells carry no style.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// Link schemes the Matrix spec allows in `href`.
const SCHEMES: &[&str] = &["https://", "http://", "ftp://", "mailto:", "magnet:"];

pub fn allowed_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    SCHEMES.iter().any(|s| lower.starts_with(s))
}

/// The Markdown as Matrix HTML. A single newline is a line break, as Mattermost shows it.
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    // Whether each open link or image was kept, to drop its end with it.
    let mut kept: Vec<bool> = Vec::new();
    let events = parser.filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::SoftBreak => Some(Event::HardBreak),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let keep = allowed_url(&dest_url);
            kept.push(keep);
            keep.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        // An image shows as a link to it; its alt text is the link's text.
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let keep = allowed_url(&dest_url);
            kept.push(keep);
            keep.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => kept.pop().unwrap_or(false).then_some(Event::End(TagEnd::Link)),
        Event::Start(Tag::Table(alignments)) => {
            Some(Event::Start(Tag::Table(alignments.iter().map(|_| pulldown_cmark::Alignment::None).collect())))
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out.trim_end().to_owned()
}

/// As `render`, without the paragraph around a text that is one paragraph: for a field's value
/// or a title inside a line.
pub fn render_inline(markdown: &str) -> String {
    let html = render(markdown);
    match html.strip_prefix("<p>").and_then(|h| h.strip_suffix("</p>")) {
        Some(inner) if !inner.contains("<p>") => inner.to_owned(),
        _ => html,
    }
}

/// Text put into HTML as text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_the_html_matrix_clients_show() {
        let cases: &[(&str, &str)] = &[
            ("plain", "<p>plain</p>"),
            ("**bold** _it_ ~~gone~~ `x < y`", "<p><strong>bold</strong> <em>it</em> <del>gone</del> <code>x &lt; y</code></p>"),
            ("line one\nline two", "<p>line one<br />\nline two</p>"),
            ("[build 42](https://ci.example/42)", "<p><a href=\"https://ci.example/42\">build 42</a></p>"),
            ("<https://ci.example/42>", "<p><a href=\"https://ci.example/42\">https://ci.example/42</a></p>"),
            ("[mail](mailto:ops@example.org)", "<p><a href=\"mailto:ops@example.org\">mail</a></p>"),
            // Schemes the spec does not allow keep their text only.
            ("[run](javascript:alert(1))", "<p>run</p>"),
            ("[rel](/relative/path)", "<p>rel</p>"),
            // HTML in the payload is text.
            ("<b>hi</b> <script>x()</script>", "<p>&lt;b&gt;hi&lt;/b&gt; &lt;script&gt;x()&lt;/script&gt;</p>"),
            // Quotes stay: in text, only & < > need escaping.
            ("<div onclick=\"x()\">\nblock\n</div>", "&lt;div onclick=\"x()\"&gt;\nblock\n&lt;/div&gt;"),
            ("a & b \"q\"", "<p>a &amp; b \"q\"</p>"),
            // Images are links: an <img> would need an mxc:// source.
            ("![graph](https://grafana.example/g.png)", "<p><a href=\"https://grafana.example/g.png\">graph</a></p>"),
            ("![x](data:image/png;base64,AAAA)", "<p>x</p>"),
            ("```rust\nfn main() {}\n```", "<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"),
            ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
            ("3. three\n4. four", "<ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>"),
            ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
            ("### Title", "<h3>Title</h3>"),
            (
                "| a | b |\n|:--|--:|\n| 1 | 2 |",
                "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody>\n<tr><td>1</td><td>2</td></tr>\n</tbody></table>",
            ),
        ];
        for (markdown, want) in cases {
            assert_eq!(render(markdown), *want, "{markdown:?}");
        }
    }

    #[test]
    fn inline_rendering_drops_the_single_paragraph() {
        assert_eq!(render_inline("*up* 3 days"), "<em>up</em> 3 days");
        assert_eq!(render_inline("one\n\ntwo"), "<p>one</p>\n<p>two</p>");
        assert_eq!(render_inline(""), "");
    }

    #[test]
    fn escaping_covers_every_html_special_character() {
        assert_eq!(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
