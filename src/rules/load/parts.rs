//! A rules file cut into parts parsed one by one, and the places of what they hold.

use crate::rules::kind::{Value, Written};
use crate::rules::schema::{Item, RawFile};
use crate::rules::Location;
use std::sync::Arc;
use toml::Spanned;

/// One part of a rules file, parsed on its own (see `parts`).
pub(super) struct SourceFile {
    pub(super) name: Arc<str>,
    pub(super) lines: Arc<LineIndex>,
    /// Where the part starts in its file.
    pub(super) offset: usize,
    pub(super) raw: RawFile,
}

impl SourceFile {
    pub(super) fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        Location { file: self.name.clone(), line: self.lines.line(self.offset + spanned.span().start) }
    }

    /// A value as written, each part with its `FILE:LINE`.
    pub(super) fn located(&self, item: &Spanned<Item>) -> Written<Value> {
        let value = match item.get_ref() {
            Item::String(s) => Value::String(s.clone()),
            Item::Integer(n) => Value::Integer(*n),
            Item::Boolean(b) => Value::Boolean(*b),
            Item::Float(_) | Item::Array(_) => Value::Other,
            Item::Table(entries) => Value::Table(entries.iter().map(|(k, i)| (k.clone(), self.located(i))).collect()),
        };
        Written { value, at: self.at(item) }
    }
}

/// A file cut before each top-level `[[hooks]]` header, as (start, end) byte ranges. Each part is
/// a TOML document of its own (a hook's sub-tables follow its header), and parsing them one by
/// one keeps one hook's parse tree in memory instead of the whole file's: 301 MB for a file of
/// 100,000 hooks. Headers are found with TOML's own lexer, so a string or a comment that holds
/// `[[hooks]]` is never taken for one.
pub(super) fn parts(text: &str) -> Vec<(usize, usize)> {
    use toml_parser::lexer::TokenKind;
    /// How far into `[[hooks]]` the tokens at the start of a line have got.
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        LineStart,
        Elsewhere,
        Open(usize),
        OpenOpen(usize),
        Name(usize),
        Close(usize),
    }
    let mut cuts = vec![0];
    let mut seen = Seen::LineStart;
    for token in toml_parser::Source::new(text).lex() {
        let span = token.span();
        let kind = token.kind();
        seen = match (seen, kind) {
            (_, TokenKind::Newline) => Seen::LineStart,
            (Seen::LineStart, TokenKind::Whitespace) => Seen::LineStart,
            (Seen::LineStart, TokenKind::LeftSquareBracket) => Seen::Open(span.start()),
            (Seen::Open(at), TokenKind::LeftSquareBracket) => Seen::OpenOpen(at),
            (Seen::OpenOpen(_) | Seen::Name(_), TokenKind::Whitespace) => seen,
            (Seen::OpenOpen(at), TokenKind::Atom) if &text[span.start()..span.end()] == "hooks" => Seen::Name(at),
            (Seen::Name(at), TokenKind::RightSquareBracket) => Seen::Close(at),
            (Seen::Close(at), TokenKind::RightSquareBracket) => {
                if at > 0 {
                    cuts.push(at);
                }
                Seen::Elsewhere
            }
            _ => Seen::Elsewhere,
        };
    }
    cuts.push(text.len());
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Where each line of a text starts, to turn a byte offset into a line number by binary search.
pub(super) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(super) fn new(text: &str) -> LineIndex {
        LineIndex(std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect())
    }

    /// 1-based line of a byte offset.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}
