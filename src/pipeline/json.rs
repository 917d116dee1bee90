//! A lenient JSON reader for webhook bodies.
//!
//! Real integrations send JSON that strict parsers refuse: raw newlines and tabs inside strings,
//! invalid UTF-8, trailing bytes after the document. Mattermost accepts all of these, so hookgate
//! must too. The reader also keeps what a typed decoder would lose: every object member in order
//! (so duplicate and differently-cased keys resolve exactly as Go's decoder resolves them, the last
//! one winning) and each number's text exactly as sent (so `1000000` is forwarded as `"1000000"`).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Nesting deeper than this is refused: no real payload comes close, and it bounds the stack.
pub const MAX_DEPTH: usize = 64;

/// A parsed JSON value that keeps member order, duplicates and number text.
///
/// 24 bytes a value (a test holds it there): a body of many small values is mostly values, and
/// writing, reading and freeing their memory is most of what reading it costs
/// (docs/performance.md, "Values of 24 bytes"). So strings and lists are boxed slices, not
/// growable ones, and a number is kept inside the value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number's text exactly as it appeared in the input, when it fits in the value (nearly
    /// every number sent): no allocation, and nothing to free.
    Number(ShortNumber),
    /// A longer number's text.
    LongNumber(Box<str>),
    String(Box<str>),
    Array(Box<[Json]>),
    /// Members in input order, duplicates included.
    Object(Box<[(Box<str>, Json)]>),
}

/// A number's text of at most `ShortNumber::MAX` bytes, held in place: its bytes, then zeros,
/// then its length in the last byte. Aligned as a word, so that it is written as two words.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct ShortNumber {
    bytes: [u8; 16],
}

impl ShortNumber {
    /// What fits in the 16 bytes `Json`'s boxed variants take anyway, with the length.
    pub const MAX: usize = 15;

    /// The number of the first `len` bytes of `from`, ASCII text; `None` when it is too long.
    fn copied(from: &[u8], len: usize) -> Option<ShortNumber> {
        if len > ShortNumber::MAX {
            return None;
        }
        // Read as one 16-byte word where the input has that much: copying `len` bytes was a
        // call per number, and its bytes, stored one by one, stalled the reads that moved the
        // value after.
        let mut window = [0; 16];
        match from.get(..16) {
            Some(sixteen) => window.copy_from_slice(sixteen),
            None => window[..len].copy_from_slice(&from[..len]),
        }
        let mask = if len == 0 { 0 } else { u128::MAX >> (128 - 8 * len) };
        let text = u128::from_le_bytes(window) & mask;
        Some(ShortNumber { bytes: (text | (len as u128) << 120).to_le_bytes() })
    }

    pub fn as_str(&self) -> &str {
        // Made only from ASCII number text (`copied`).
        std::str::from_utf8(self.text()).unwrap_or_default()
    }

    fn text(&self) -> &[u8] {
        &self.bytes[..self.bytes[15] as usize]
    }

    /// What `as_str().parse::<i64>()` gives, without checking the text is UTF-8: props write
    /// every number through this.
    fn integer(&self) -> Option<i64> {
        let (negative, digits) = match self.text() {
            [b'-', rest @ ..] => (true, rest),
            text => (false, text),
        };
        if digits.is_empty() {
            return None;
        }
        let mut value: i64 = 0;
        for &digit in digits {
            if !digit.is_ascii_digit() {
                return None;
            }
            let digit = i64::from(digit - b'0');
            value = value.checked_mul(10)?.checked_add(if negative { -digit } else { digit })?;
        }
        Some(value)
    }
}

impl PartialEq for ShortNumber {
    fn eq(&self, other: &ShortNumber) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for ShortNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// Why a body is not JSON, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct JsonError {
    pub what: &'static str,
    pub offset: usize,
}

/// Parses the first JSON value of `input`. A UTF-8 byte order mark and surrounding whitespace are
/// skipped; bytes after the first value are ignored, as Mattermost's streaming decoder ignores them.
pub fn parse(input: &[u8]) -> Result<Json, JsonError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // Checked once as a whole (the common case), so its strings need no check each.
    let text = std::str::from_utf8(input).ok();
    let mut reader = Reader { input, text, pos: 0 };
    reader.skip_ws();
    if reader.pos == input.len() {
        return Err(reader.error("empty body"));
    }
    let mut value = Json::Null;
    reader.value(0, &mut value)?;
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    /// The input, when it is valid UTF-8.
    text: Option<&'a str>,
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> JsonError {
        JsonError { what, offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &'static [u8], value: Json, slot: &mut Json) -> Result<(), JsonError> {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            fill(slot, value);
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Reads a value into `slot`, the place in its array or object where it stays. Returning
    /// each value instead cost a copy the processor cannot forward from the stores that built
    /// it: a stall per value, most of the time of a body of many small values.
    fn value(&mut self, depth: usize, slot: &mut Json) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth, slot),
            Some(b'[') => self.array(depth, slot),
            Some(b'"') => {
                fill(slot, Json::String(self.string()?));
                Ok(())
            }
            Some(b't') => self.expect_literal(b"true", Json::Bool(true), slot),
            Some(b'f') => self.expect_literal(b"false", Json::Bool(false), slot),
            Some(b'n') => self.expect_literal(b"null", Json::Null, slot),
            Some(b'-' | b'0'..=b'9') => self.number(slot),
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize, slot: &mut Json) -> Result<(), JsonError> {
        self.pos += 1;
        let mut members: Vec<(Box<str>, Json)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            fill(slot, Json::Object(Box::default()));
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_ws();
            members.push((key, Json::Null));
            let (_, value) = members.last_mut().expect("just pushed");
            self.value(depth + 1, value)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    fill(slot, Json::Object(members.into_boxed_slice()));
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize, slot: &mut Json) -> Result<(), JsonError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            fill(slot, Json::Array(Box::default()));
            return Ok(());
        }
        loop {
            self.skip_ws();
            items.push(Json::Null);
            self.value(depth + 1, items.last_mut().expect("just pushed"))?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    fill(slot, Json::Array(items.into_boxed_slice()));
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self, slot: &mut Json) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        // The grammar above admits ASCII only, so the text needs no check.
        fill(slot, Json::number_at(&self.input[start..], self.pos - start));
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// Reads a string. Raw control characters are kept as the characters they are (the repair
    /// Mattermost applies to newlines and tabs, for every key); invalid UTF-8 becomes U+FFFD.
    fn string(&mut self) -> Result<Box<str>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes before the closing quote.
        if let Some(i) = memchr::memchr2(b'"', b'\\', &self.input[start..]) {
            self.pos = start + i;
            if self.input[self.pos] == b'"' {
                let end = self.pos;
                self.pos += 1;
                // Both ends are next to a quote, so on character boundaries.
                return Ok(match self.text {
                    Some(text) => text[start..end].into(),
                    None => lossy_string(self.input[start..end].to_vec()).into(),
                });
            }
        } else {
            self.pos = self.input.len();
        }
        let mut out: Vec<u8> = self.input[start..self.pos].to_vec();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(lossy_string(out).into()),
                b'\\' => self.escape(&mut out)?,
                _ => out.push(b),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.unicode_escape()?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(self.error("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.input.get(self.pos..self.pos + 4).ok_or_else(|| self.error("invalid \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Decodes `\uXXXX`, joining surrogate pairs; a lone surrogate becomes U+FFFD as in Go.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.input[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.pos = save;
        }
        Ok(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }
}

/// Puts a value read into its place. The place holds the `Json::Null` pushed for it, which owns
/// nothing: forgetting it rather than dropping it saves a call per value.
fn fill(slot: &mut Json, value: Json) {
    std::mem::forget(std::mem::replace(slot, value));
}

impl Json {
    /// A number of text `text`.
    pub fn number(text: &str) -> Json {
        Json::number_at(text.as_bytes(), text.len())
    }

    /// The number of the first `len` bytes of `from`, ASCII text: in the value when it fits.
    fn number_at(from: &[u8], len: usize) -> Json {
        ShortNumber::copied(from, len)
            .map_or_else(|| Json::LongNumber(String::from_utf8_lossy(&from[..len]).into()), Json::Number)
    }

    /// A number's text, when the value is a number.
    pub(crate) fn as_number(&self) -> Option<&str> {
        match self {
            Json::Number(short) => Some(short.as_str()),
            Json::LongNumber(text) => Some(text),
            _ => None,
        }
    }

    /// The value of the last member named `name`, compared without regard to ASCII case.
    pub(crate) fn member(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The string value of member `name`, when it is a string.
    pub(crate) fn str_member(&self, name: &str) -> Option<&str> {
        self.member(name).and_then(Json::as_str)
    }

    /// Converts to a `serde_json::Value` for forwarding: duplicate keys keep the last value and
    /// numbers keep their value (not necessarily their spelling).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(_) | Json::LongNumber(_) => number_value(self.as_number().unwrap_or_default()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for (k, v) in members {
                    map.insert(k.to_string(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// Compact JSON text, numbers exactly as they were sent.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(_) | Json::LongNumber(_) => out.push_str(self.as_number().unwrap_or_default()),
            Json::String(s) => out.push_str(&Value::String(s.to_string()).to_string()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.to_string()).to_string());
                    out.push(':');
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }
}

/// Serialises a value exactly as its `to_value()` would serialise, without building it: objects
/// keep a key where it first appears with the value it last had (serde_json's ordered map) and
/// numbers are written as `Value` writes them. For values that are only written, such as props.
pub(crate) struct AsValue<'a>(pub &'a Json);

impl Serialize for AsValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            // Integers, nearly every number sent, without building a Value on the way.
            Json::Number(short) => match short.integer() {
                Some(i) => serializer.serialize_i64(i),
                None => number_value(short.as_str()).serialize(serializer),
            },
            Json::LongNumber(text) => number_value(text).serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => serializer.collect_seq(items.iter().map(AsValue)),
            Json::Object(members) => {
                let mut last: HashMap<&str, &Json> = HashMap::with_capacity(members.len());
                for (k, v) in members {
                    last.insert(&**k, v);
                }
                let mut map = serializer.serialize_map(Some(last.len()))?;
                for (k, _) in members {
                    if let Some(v) = last.remove(&**k) {
                        map.serialize_entry(k, &AsValue(v))?;
                    }
                }
                map.end()
            }
        }
    }
}

fn number_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::Number(u.into());
    }
    text.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
}

/// Appends `s` to `out` as a JSON string, escaped byte for byte as serde_json escapes it: for
/// output written by hand (the message's JSON, log lines, the Web API's answers). Eight bytes are
/// checked at a time, as most text has nothing to escape; serde_json looks each byte up.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(eight) = bytes.get(i..i + 8) {
            if !any_to_escape(u64::from_le_bytes(eight.try_into().expect("eight bytes"))) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        i += 1;
        let escape = match b {
            b'"' | b'\\' => b,
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i - 1]);
        out.extend_from_slice(&[b'\\', escape]);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Starts a member `name` of the object begun (with its `{`) at `object` in `out`: a comma
/// first unless it is the object's first. Names are the schema's own (letters and `_`), so they
/// are written as they are, not escaped.
pub(crate) fn write_member(out: &mut Vec<u8>, object: usize, name: &'static str) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{name}");
    if out.len() > object + 1 {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends a value as serde_json writes it.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &impl Serialize) {
    // Into a Vec, only a map with non-string keys can fail; the values written here have none.
    serde_json::to_writer(out, value).expect("values serialise");
}

/// Whether any of eight bytes is a control character, `"` or `\`. `x - n·0x01… & !x & 0x80…`
/// is non-zero exactly when some byte of `x` is below `n` (for `n` up to 0x80; a byte of 0x80
/// or more never counts): once for the controls, and for a zero byte after `x ^ '"'…` and
/// `x ^ '\'…`.
fn any_to_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & (ONES * 0x80);
    below(word, 0x20) | below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) != 0
}

/// `bytes` as text, invalid UTF-8 as U+FFFD. Valid text is checked by std's validation, much
/// faster than the lossy one, and kept without a copy.
pub(crate) fn lossy_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(
            any_text in any::<String>(),
            mixed in r#"[\x00-\x21"\\a~\x7f é\u{2028}]{0,40}"#,
        ) {
            for s in [&any_text, &mixed] {
                prop_assert_eq!(escaped(s), serde_json::to_string(s).unwrap());
            }
        }
    }

    #[test]
    fn every_byte_that_needs_escaping_is_found_in_every_place() {
        for b in 0..=0x7fu8 {
            for at in 0..9 {
                let mut nine = *b"abcdefghi";
                nine[at] = b;
                let text = std::str::from_utf8(&nine).unwrap();
                assert_eq!(escaped(text), serde_json::to_string(text).unwrap(), "{b:#x} at {at}");
            }
        }
    }

    /// Trees with the duplicates, cases and number spellings that to_value resolves.
    #[rustfmt::skip] // kept as a table; one piece a line would run to forty lines
    fn tree() -> impl Strategy<Value = Json> {
        let number = proptest::sample::select(vec![
            "0", "-0", "7", "-12", "1.50", "1e2", "1E+2", "2.5e-3", "9223372036854775807", "9223372036854775808",
            "18446744073709551616", "-9223372036854775809", "1e400", "0.1",
        ]);
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            number.prop_map(Json::number),
            "[a-c\"\\\n é]{0,4}".prop_map(|s| Json::String(s.into())),
        ];
        let key = proptest::sample::select(vec!["a", "b", "A", "from_webhook", "é", "\"q\"", ""]);
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(|items| Json::Array(items.into())),
                proptest::collection::vec((key.clone().prop_map(Box::from), inner), 0..6).prop_map(|m| Json::Object(m.into())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn as_value_writes_what_to_value_writes(json in tree()) {
            let direct = serde_json::to_string(&AsValue(&json)).unwrap();
            prop_assert_eq!(direct, serde_json::to_string(&json.to_value()).unwrap());
        }
    }

    fn s(v: &str) -> Json {
        Json::String(v.into())
    }

    #[test]
    fn parses_documents() {
        let cases: &[(&[u8], Json)] = &[
            (b"{}", Json::Object(Box::default())),
            (
                b" [1, -2.5e3, true, false, null] ",
                Json::Array(Box::new([
                    Json::number("1"),
                    Json::number("-2.5e3"),
                    Json::Bool(true),
                    Json::Bool(false),
                    Json::Null,
                ])),
            ),
            (b"{\"a\":\"x\",\"a\":\"y\"}", Json::Object(Box::new([("a".into(), s("x")), ("a".into(), s("y"))]))),
            (b"\"line\nbreak\ttab\rcr\"", s("line\nbreak\ttab\rcr")),
            (b"\"\\u00e9\\ud83d\\ude00\\n\\\"\"", s("é😀\n\"")),
            (b"\"\\ud800x\"", s("\u{FFFD}x")),
            (b"\"bad \xff utf8\"", s("bad \u{FFFD} utf8")),
            // One bad string leaves the others as they are.
            (
                b"{\"a\":\"\xc3\",\"b\":\"\xc3\xa9\"}",
                Json::Object(Box::new([("a".into(), s("\u{FFFD}")), ("b".into(), s("\u{e9}"))])),
            ),
            (b"\xEF\xBB\xBF{\"t\":1}", Json::Object(Box::new([("t".into(), Json::number("1"))]))),
            (b"{\"t\":\"a\"} trailing junk", Json::Object(Box::new([("t".into(), s("a"))]))),
            (b"1000000", Json::number("1000000")),
        ];
        for (input, want) in cases {
            assert_eq!(&parse(input).unwrap(), want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn refuses_malformed_documents() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"[1,]",
            b"{,}",
            b"\"open",
            b"tru",
            b"01x",
            b"-",
            b"1.",
            b"1e",
            b"{'a':1}",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"payload={}",
        ];
        for input in cases {
            // "01x" parses as 0 with trailing bytes ignored; everything else must fail.
            if *input == b"01x" {
                assert_eq!(parse(input).unwrap(), Json::number("0"));
                continue;
            }
            assert!(parse(input).is_err(), "accepted {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn bounds_nesting() {
        let deep = "[".repeat(10_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err().what, "nesting too deep");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn member_lookup_ignores_case_and_takes_the_last() {
        let doc = parse(br#"{"Text":"a","text":"b","TEXT":"c","other":1}"#).unwrap();
        assert_eq!(doc.member("text"), Some(&s("c")));
        assert_eq!(doc.member("missing"), None);
    }

    #[test]
    fn compact_keeps_number_text() {
        let doc = parse(br#"{ "n" : 1.50e1 , "a" : [ "x\n" , null ] }"#).unwrap();
        assert_eq!(doc.to_compact(), r#"{"n":1.50e1,"a":["x\n",null]}"#);
    }

    #[test]
    fn numbers_of_any_length_keep_their_text() {
        let longest_short = "-1234567890.125";
        assert_eq!(longest_short.len(), ShortNumber::MAX);
        for text in [longest_short, "-1234567890.123456789e12", "123456789012345678901234567890123", "0", "-0.5E-7"] {
            let doc = parse(format!("[{text}, {{\"n\": {text}}}]").as_bytes()).unwrap();
            assert_eq!(doc.to_compact(), format!("[{text},{{\"n\":{text}}}]"));
            assert_eq!(doc.as_array().unwrap()[0].as_number(), Some(text));
            let long = text.len() > ShortNumber::MAX;
            assert_eq!(matches!(doc.as_array().unwrap()[0], Json::LongNumber(_)), long, "{text}");
        }
    }

    #[test]
    fn short_numbers_read_as_integers_as_parse_reads_them() {
        for text in ["0", "-0", "7", "-12", "999999999999999", "-99999999999999", "1.5", "1e2", "-", "", "1.0"] {
            let Some(short) = ShortNumber::copied(text.as_bytes(), text.len()) else { panic!("{text} is short") };
            assert_eq!(short.integer(), text.parse::<i64>().ok(), "{text:?}");
        }
    }

    #[test]
    fn a_value_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Json>(), 24);
    }
}
