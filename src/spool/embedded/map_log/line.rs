//! One write of the map log (docs/webapi.md, "The message map"), as bytes:
//!
//! `\n<ts> <n> <check> <entry>`: the `ts` in microseconds, the write's order among the changes
//! of one message (0 for its first write), a check of 8 hex digits over all of it, and the entry's
//! JSON or `-` for a forgotten message. Every write starts with a newline, so one cut short by a
//! `kill -9` or a power cut, or a reserved range never written (zeros), spoils only itself: the
//! reader splits at newlines, trims zeros and skips a piece whose check fails.

/// The first bytes of every segment; a newer format is never guessed at.
pub const HEADER: &[u8] = b"hookgate-messages 1\n";
/// The longest write: a message of many parts has many ids, but not this many.
pub const MAX: usize = 64 * 1024;

/// A write read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub ts: u64,
    pub n: u64,
    /// The entry's JSON; `None` for a forgotten message.
    pub entry: Option<&'a str>,
}

/// Appends a write of message `ts` to `out`: the entry `write_entry` appends, or none.
pub fn write(out: &mut Vec<u8>, ts: u64, n: u64, write_entry: Option<impl FnOnce(&mut Vec<u8>)>) {
    let mut digits = itoa::Buffer::new();
    out.push(b'\n');
    out.extend_from_slice(digits.format(ts).as_bytes());
    out.push(b' ');
    out.extend_from_slice(digits.format(n).as_bytes());
    out.push(b' ');
    let check_at = out.len();
    out.extend_from_slice(b"-------- ");
    let body = out.len();
    match write_entry {
        Some(write_entry) => write_entry(out),
        None => out.push(b'-'),
    }
    let check = hex(check(ts, n, &out[body..]));
    out[check_at..check_at + 8].copy_from_slice(&check);
}

fn hex(value: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[(value >> (28 - 4 * i) & 0xf) as usize];
    }
    out
}

/// A check over the whole write, word by word: it catches torn and zeroed bytes, not forgery.
fn check(ts: u64, n: u64, body: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut h = mix(mix(body.len() as u64, ts), n);
    let mut words = body.chunks_exact(8);
    for word in &mut words {
        h = mix(h, u64::from_le_bytes(word.try_into().unwrap_or_default()));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = mix(h, u64::from_le_bytes(tail));
    (h ^ h >> 32) as u32
}

/// The write in `piece` (the bytes between two newlines, zeros trimmed), if it is whole.
pub fn read(piece: &[u8]) -> Option<Line<'_>> {
    let mut fields = piece.splitn(4, |b| *b == b' ');
    let number = |field: &[u8]| -> Option<u64> {
        (!field.is_empty() && field.len() <= 20 && field.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(field).ok()?.parse().ok())?
    };
    let ts = number(fields.next()?)?;
    let n = number(fields.next()?)?;
    let written = fields.next()?;
    let body = fields.next()?;
    if written.len() != 8 || written != hex(check(ts, n, body)) {
        return None;
    }
    let entry = match body {
        b"-" => None,
        json => Some(std::str::from_utf8(json).ok()?),
    };
    Some(Line { ts, n, entry })
}

/// Each piece of `bytes` that holds something, with its offset: split at newlines, zeros trimmed
/// from both ends.
pub fn pieces(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = 0;
    bytes.split(|b| *b == b'\n').filter_map(move |piece| {
        let start = at;
        at += piece.len() + 1;
        let lead = piece.iter().take_while(|b| **b == 0).count();
        let trail = piece[lead..].iter().rev().take_while(|b| **b == 0).count();
        let piece = &piece[lead..piece.len() - trail];
        (!piece.is_empty()).then_some((start + lead, piece))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(line: &Line) -> Vec<u8> {
        let mut out = Vec::new();
        let entry = line.entry.map(|entry| |out: &mut Vec<u8>| out.extend_from_slice(entry.as_bytes()));
        write(&mut out, line.ts, line.n, entry);
        out
    }

    #[test]
    fn writes_read_back() {
        let cases = [
            Line { ts: 1_733_500_000_000_100, n: 0, entry: Some(r#"{"v":1,"hook":"bot"}"#) },
            Line { ts: 1, n: 7, entry: None },
            Line { ts: u64::MAX, n: u64::MAX, entry: Some("{}") },
            Line { ts: 5, n: 0, entry: Some(r#"{"channel":"a b c"}"#) },
        ];
        for line in cases {
            let bytes = written(&line);
            assert_eq!(bytes[0], b'\n');
            let got: Vec<_> = pieces(&bytes).map(|(at, p)| (at, read(p))).collect();
            assert_eq!(got, vec![(1, Some(line))], "{:?}", String::from_utf8_lossy(&bytes));
        }
    }

    /// What a crash leaves: a write cut short, a reserved range still zeros, a byte changed. Each
    /// spoils only itself; the writes around it read back.
    #[test]
    fn torn_and_zeroed_writes_spoil_only_themselves() {
        let one = written(&Line { ts: 10, n: 0, entry: Some(r#"{"a":1}"#) });
        let two = written(&Line { ts: 11, n: 0, entry: Some(r#"{"b":2}"#) });
        let three = written(&Line { ts: 12, n: 3, entry: None });
        let read_all =
            |bytes: &[u8]| -> Vec<u64> { pieces(bytes).filter_map(|(_, p)| read(p)).map(|l| l.ts).collect() };
        for cut in 1..two.len() {
            let bytes = [&one[..], &two[..cut], &[0; 40], &three[..]].concat();
            assert_eq!(read_all(&bytes), vec![10, 12], "cut at {cut}");
            let bytes = [&one[..], &two[..cut], &three[..]].concat();
            assert_eq!(read_all(&bytes), vec![10, 12], "cut at {cut}, followed at once");
        }
        for at in 1..two.len() {
            let mut spoiled = two.clone();
            spoiled[at] ^= 0x04;
            let bytes = [&one[..], &spoiled[..], &three[..]].concat();
            assert_eq!(read_all(&bytes), vec![10, 12], "byte {at} changed");
        }
        let bytes = [&[0; 9][..], &one[..], &[0; 100], &three[..], &[0; 4096]].concat();
        assert_eq!(read_all(&bytes), vec![10, 12]);
    }
}
