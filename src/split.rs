//! Splitting: text longer than the backend's post size becomes several posts, cut at code-point
//! boundaries and preferably at a line break near the limit. Attachments ride on the last post.

use crate::canonical::Canonical;

/// How far back from the limit a line break is looked for, as a fraction of the limit.
const LINE_BREAK_WINDOW: usize = 4;

/// The posts to send, in order. A text of at most `max_chars` code points is one post.
pub fn split(payload: Canonical, max_chars: usize) -> Vec<Canonical> {
    let max_chars = max_chars.max(1);
    if payload.text.chars().count() <= max_chars {
        return vec![payload];
    }
    let mut chunks = Vec::new();
    let mut rest = payload.text.as_str();
    while rest.chars().count() > max_chars {
        // Byte offset just past the limit's last code point.
        let limit = rest.char_indices().nth(max_chars).map_or(rest.len(), |(i, _)| i);
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
    let last = chunks.len() - 1;
    let mut template = payload.clone();
    template.attachments = Vec::new();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut post = if i == last { payload.clone() } else { template.clone() };
            post.text = chunk.to_owned();
            post
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::Attachment;

    fn post(text: &str) -> Canonical {
        Canonical {
            text: text.into(),
            channel: "c".into(),
            attachments: vec![Attachment { text: "att".into(), ..Attachment::default() }],
            ..Canonical::default()
        }
    }

    fn texts(posts: &[Canonical]) -> Vec<String> {
        posts.iter().map(|p| p.text.clone()).collect()
    }

    #[test]
    fn splits_at_code_points_and_prefers_line_breaks() {
        let cases: Vec<(String, usize, Vec<String>)> = vec![
            ("abc".into(), 3, vec!["abc".into()]),
            ("abcdef".into(), 3, vec!["abc".into(), "def".into()]),
            ("abcdefg".into(), 3, vec!["abc".into(), "def".into(), "g".into()]),
            ("本本本本本".into(), 2, vec!["本本".into(), "本本".into(), "本".into()]),
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
