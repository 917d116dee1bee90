//! A message's `ts`, as hookgate mints it: `SECONDS.MICROS` (`1733500000.000100`), the time of
//! the post in microseconds since the Unix epoch. Clients hold it as an opaque string and pass
//! it back as `ts` or `thread_ts`; hookgate reads back only what it writes.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Stored as its microseconds (`spool/messages.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Ts(pub u64);

impl Ts {
    /// Microseconds since the Unix epoch at `now`.
    pub fn at(now: SystemTime) -> Ts {
        Ts(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64))
    }

    /// The first `ts` after both `now` and `last`: the clock, unless it stands still or went back.
    pub fn next(now: Ts, last: Ts) -> Ts {
        Ts(now.0.max(last.0 + 1))
    }

    /// A `ts` as written by `Display`: digits, a dot, six digits.
    pub fn parse(text: &str) -> Option<Ts> {
        let (seconds, micros) = text.split_once('.')?;
        let digits = |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(seconds, 12) || micros.len() != 6 || !digits(micros, 6) {
            return None;
        }
        let seconds: u64 = seconds.parse().ok()?;
        let micros: u64 = micros.parse().ok()?;
        Some(Ts(seconds * 1_000_000 + micros))
    }
}

impl Ts {
    /// As `Display` writes it, without the formatting machinery: every Web API answer writes a
    /// `ts` or two (docs/performance.md).
    pub fn text(self) -> String {
        let mut out = Vec::with_capacity(20);
        self.write(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the text to `buffer`: the seconds, then the micros written after a leading 1
    /// (so the zeros before them are written too), that 1 replaced by the dot.
    pub fn write(self, buffer: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        buffer.extend_from_slice(digits.format(self.0 / 1_000_000).as_bytes());
        let at = buffer.len();
        buffer.extend_from_slice(digits.format(1_000_000 + self.0 % 1_000_000).as_bytes());
        buffer[at] = b'.';
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_read_back() {
        let cases = [
            (Ts(1_733_500_000_000_100), "1733500000.000100"),
            (Ts(1), "0.000001"),
            (Ts(0), "0.000000"),
            (Ts(1_000_000), "1.000000"),
            (Ts(999_999_999_999_999_999), "999999999999.999999"),
        ];
        for (ts, text) in cases {
            assert_eq!(ts.to_string(), text);
            assert_eq!(ts.text(), format!("{}.{:06}", ts.0 / 1_000_000, ts.0 % 1_000_000));
            assert_eq!(Ts::parse(text), Some(ts));
        }
        for bad in ["", "1", "1.", ".000001", "1.00001", "1.0000001", "a.000001", "1.00000a", "-1.000001", "1733500000"]
        {
            assert_eq!(Ts::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_never_repeats_or_goes_back() {
        assert_eq!(Ts::next(Ts(10), Ts(5)), Ts(10));
        assert_eq!(Ts::next(Ts(10), Ts(10)), Ts(11));
        assert_eq!(Ts::next(Ts(3), Ts(10)), Ts(11));
    }
}
