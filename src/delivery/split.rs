//! Splitting: text longer than the backend's post size becomes several posts, cut at code-point
//! boundaries and preferably at a line break near the limit. Attachments ride on the last post.

use crate::pipeline::message::Message;

/// How far back from the limit a line break is looked for, as a fraction of the limit.
const LINE_BREAK_WINDOW: usize = 4;

/// The posts to send, in order. A text of at most `max_chars` code points is one post.
/// Each post's cut is found by walking that post's code points only, so the work is linear in
/// the text whatever the number of posts.
pub fn split(mut payload: Message, max_chars: usize) -> Vec<Message> {
    let max_chars = max_chars.max(1);
    // Byte offset just past the limit's last code point, while more than the limit is left.
    let past_limit = |text: &str| text.char_indices().nth(max_chars).map(|(i, _)| i);
    // No more bytes than the limit means no more code points: most texts are not walked at all.
    if payload.text.len() <= max_chars || past_limit(&payload.text).is_none() {
        return vec![payload];
    }
    // Every post is the payload with its own text; only the last one has the attachments.
    let text = std::mem::take(&mut payload.text);
    let attachments = std::mem::take(&mut payload.attachments);
    let mut chunks = Vec::new();
    let mut rest = text.as_str();
    while let Some(limit) = past_limit(rest) {
        let window_start = rest.char_indices().nth(max_chars - max_chars / LINE_BREAK_WINDOW).map_or(0, |(i, _)| i);
        match rest[window_start..limit].rfind('\n').map(|i| i + window_start) {
            // The line break itself ends this post.
            Some(nl) if nl > 0 => {
                chunks.push(&rest[..nl]);
                rest = &rest[nl + 1..];
            }
            _ => {
                chunks.push(&rest[..limit]);
                rest = &rest[limit..];
            }
        }
    }
    chunks.push(rest);
    let mut posts: Vec<Message> =
        chunks.into_iter().map(|chunk| Message { text: chunk.to_owned(), ..payload.clone() }).collect();
    if let Some(last) = posts.last_mut() {
        last.attachments = attachments;
    }
    posts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::incoming::Attachment;

    fn post(text: &str) -> Message {
        Message {
            text: text.into(),
            channel: "c".into(),
            attachments: vec![Attachment { text: "att".into(), ..Attachment::default() }],
            ..Message::default()
        }
    }

    fn texts(posts: &[Message]) -> Vec<String> {
        posts.iter().map(|p| p.text.clone()).collect()
    }

    #[test]
    fn splits_at_code_points_and_prefers_line_breaks() {
        let cases: Vec<(String, usize, Vec<String>)> = vec![
            ("abc".into(), 3, vec!["abc".into()]),
            ("abcdef".into(), 3, vec!["abc".into(), "def".into()]),
            ("abcdefg".into(), 3, vec!["abc".into(), "def".into(), "g".into()]),
            ("本本本本本".into(), 2, vec!["本本".into(), "本本".into(), "本".into()]),
            // More bytes than the limit, no more code points: one post.
            ("本本本".into(), 3, vec!["本本本".into()]),
            ("aaaaaaaa\nbbbbbbbb\ncc".into(), 10, vec!["aaaaaaaa".into(), "bbbbbbbb".into(), "cc".into()]),
            // A line break too far from the limit is not worth a short post.
            ("a\nbbbbbbbbbbbbbbb".into(), 10, vec!["a\nbbbbbbbb".into(), "bbbbbbb".into()]),
            ("😀😀😀😀".into(), 3, vec!["😀😀😀".into(), "😀".into()]),
            ("\nabcdef".into(), 3, vec!["\nab".into(), "cde".into(), "f".into()]),
        ];
        for (text, max, want) in cases {
            let got = split(post(&text), max);
            assert_eq!(texts(&got), want, "{text:?} / {max}");
            for (i, p) in got.iter().enumerate() {
                assert!(p.text.chars().count() <= max);
                assert_eq!(p.channel, "c");
                assert_eq!(p.attachments.len(), usize::from(i == got.len() - 1), "attachments ride on the last post");
            }
        }
    }

    /// Mattermost's own split cases without attachments (`unit_split_*` in the vectors).
    #[test]
    fn mattermost_split_vectors() {
        let long = split(post(&"本".repeat(15_000)), 10_000);
        assert_eq!(long.iter().map(|p| p.text.chars().count()).collect::<Vec<_>>(), vec![10_000, 5_000]);
        let exact = split(post(&"a".repeat(16_383)), 16_383);
        assert_eq!(exact.len(), 1);
        let one_more = split(post(&"a".repeat(16_384)), 16_383);
        assert_eq!(texts(&one_more), vec!["a".repeat(16_383), "a".into()]);
    }
}
