//! A rules file cut into parts parsed one by one, and the places of what they hold.

use crate::rules::kind::{Value, Written};
use crate::rules::schema::{Item, RawFile, RawHook, RawHooks};
use crate::rules::{Location, Problem};
use std::sync::Arc;
use toml::Spanned;

/// Where one part of a rules file (see `parts`) is, to give what it holds a `FILE:LINE`.
#[derive(Clone)]
pub(super) struct Part {
    pub(super) name: Arc<str>,
    pub(super) lines: Arc<LineIndex>,
    /// Where the part starts in its file.
    pub(super) offset: usize,
}

/// The rules as read: the parts holding more than a hook, parsed at once, and every hook in the
/// order written. A part holding one hook and nothing else is parsed only when the hooks are
/// read, after every backend is known (`Merger::merge`), and each hook is let go once read: kept
/// parsed until then, 100,000 hooks and their parts were most of a large rule set's peak memory,
/// and the text they come from is a fraction of that.
#[derive(Default)]
pub(super) struct Parsed {
    /// Each file's text, by the index its hooks to parse later give.
    texts: Vec<String>,
    pub(super) sections: Vec<(Part, RawFile)>,
    pub(super) hooks: Vec<Hooks>,
    /// Files that could not be read and parts that could not be parsed, each with the number of
    /// its part, so they are reported in the order written whenever they were found.
    pub(super) errors: Vec<(usize, Problem)>,
    /// Parts so far, in every file.
    count: usize,
}

/// Hooks as written, in order.
pub(super) enum Hooks {
    /// A hook of a part read with other sections; boxed, as the list is as long as the hooks.
    Read(Part, Box<Spanned<RawHook>>),
    /// A part holding one `[[hooks]]` entry (and its sub-tables), to parse when hooks are read:
    /// `texts[text][part.offset..end]`.
    Later { part: Part, text: usize, end: usize, number: usize },
}

impl Parsed {
    /// A file that could not be read.
    pub(super) fn unreadable(&mut self, problem: Problem) {
        self.errors.push((self.count, problem));
        self.count += 1;
    }

    /// A file's text, cut into parts: those holding more than a hook parsed now.
    pub(super) fn file(&mut self, name: Arc<str>, text: String) {
        let lines = Arc::new(LineIndex::new(&text));
        let cuts = parts(&text);
        self.hooks.reserve_exact(cuts.len());
        for cut in cuts {
            let part = Part { name: name.clone(), lines: lines.clone(), offset: cut.start };
            let number = self.count;
            self.count += 1;
            if cut.one_hook {
                self.hooks.push(Hooks::Later { part, text: self.texts.len(), end: cut.end, number });
                continue;
            }
            match toml::from_str::<RawFile>(&text[cut.start..cut.end]) {
                Ok(mut raw) => {
                    self.hooks.extend(
                        std::mem::take(&mut raw.hooks).into_iter().map(|h| Hooks::Read(part.clone(), Box::new(h))),
                    );
                    self.sections.push((part, raw));
                }
                Err(e) => self.errors.push((number, part.error(e))),
            }
        }
        self.texts.push(text);
    }

    /// The hooks of a part parsed later; a part that cannot be parsed is kept with the errors.
    pub(super) fn later(&mut self, part: &Part, text: usize, end: usize, number: usize) -> Vec<Spanned<RawHook>> {
        match toml::from_str::<RawHooks>(&self.texts[text][part.offset..end]) {
            Ok(raw) => raw.hooks,
            Err(e) => {
                self.errors.push((number, part.error(e)));
                Vec::new()
            }
        }
    }

    /// The errors, in the order of the parts they were found in.
    pub(super) fn errors(mut self) -> Vec<Problem> {
        self.errors.sort_by_key(|(number, _)| *number);
        self.errors.into_iter().map(|(_, problem)| problem).collect()
    }
}

impl Part {
    pub(super) fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        self.location(spanned.span().start)
    }

    /// The place of a byte offset within the part.
    fn location(&self, offset: usize) -> Location {
        Location { file: self.name.clone(), line: self.lines.line(self.offset + offset) }
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

    /// A parse error at its line.
    fn error(&self, e: toml::de::Error) -> Problem {
        Problem::at(self.location(e.span().map_or(0, |s| s.start)), e.message().trim_end().to_owned())
    }
}

/// Where a part of a file starts and ends, and whether it holds one hook and nothing else.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Cut {
    pub(super) start: usize,
    pub(super) end: usize,
    /// It starts with a `[[hooks]]` header and every other header in it is the hook's own
    /// (`[hooks.overrides]`, `[[hooks.channel_map]]`). When in doubt (a header quoted, spaced
    /// or of another table; a line of an array starting with `[`) it is not.
    pub(super) one_hook: bool,
}

/// A file cut before each top-level `[[hooks]]` header. Each part is a TOML document of its own
/// (a hook's sub-tables follow its header), and parsing them one by one keeps one hook's parse
/// tree in memory instead of the whole file's: 301 MB for a file of 100,000 hooks. Headers are
/// found with TOML's own lexer, so a string or a comment that holds `[[hooks]]` is never taken
/// for one.
pub(super) fn parts(text: &str) -> Vec<Cut> {
    use toml_parser::lexer::TokenKind;
    /// How far into a header the tokens at the start of a line have got.
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        LineStart,
        Elsewhere,
        Open(usize),
        OpenOpen(usize),
        /// `[hooks` or `[[hooks` (`double`).
        Name(usize, bool),
        Close(usize),
    }
    // (start, one hook): the part before the first header is read at once.
    let mut starts = vec![(0, false)];
    let mut seen = Seen::LineStart;
    for token in toml_parser::Source::new(text).lex() {
        let span = token.span();
        let kind = token.kind();
        let hooks = kind == TokenKind::Atom && &text[span.start()..span.end()] == "hooks";
        seen = match (seen, kind) {
            (_, TokenKind::Newline) => Seen::LineStart,
            (Seen::LineStart, TokenKind::Whitespace) => Seen::LineStart,
            (Seen::LineStart, TokenKind::LeftSquareBracket) => Seen::Open(span.start()),
            (Seen::Open(at), TokenKind::LeftSquareBracket) => Seen::OpenOpen(at),
            (Seen::OpenOpen(_) | Seen::Name(..), TokenKind::Whitespace) => seen,
            (Seen::Open(at), TokenKind::Atom) if hooks => Seen::Name(at, false),
            (Seen::OpenOpen(at), TokenKind::Atom) if hooks => Seen::Name(at, true),
            // A hook's sub-table.
            (Seen::Name(..), TokenKind::Dot) => Seen::Elsewhere,
            (Seen::Name(at, true), TokenKind::RightSquareBracket) => Seen::Close(at),
            (Seen::Close(at), TokenKind::RightSquareBracket) => {
                if at > 0 {
                    starts.push((at, true));
                }
                Seen::Elsewhere
            }
            // Any other header, or what may be one: this part is read at once.
            (Seen::Open(_) | Seen::OpenOpen(_) | Seen::Name(..) | Seen::Close(_), _) => {
                if let Some(last) = starts.last_mut() {
                    last.1 = false;
                }
                Seen::Elsewhere
            }
            _ => Seen::Elsewhere,
        };
    }
    let ends = starts.iter().skip(1).map(|(start, _)| *start).chain([text.len()]);
    starts.iter().zip(ends).map(|(&(start, one_hook), end)| Cut { start, end, one_hook }).collect()
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
