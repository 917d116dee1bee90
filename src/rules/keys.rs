//! Hook keys: the secret path token of a webhook URL, held and compared only as a SHA-256 digest.
//!
//! A request's key is hashed once and looked up by digest, so the work done for an unknown key is
//! the same as for a known one, and the rules never need to hold the token itself.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

pub(crate) type Digest = [u8; 32];

const PREFIX: &str = "sha256:";

/// The digest of a key as presented in a request path.
pub fn digest(key: &str) -> Digest {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256:<64 lowercase hex>`, the form `hookgate hash-key` prints and rules accept.
pub fn format_digest(d: &Digest) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 64);
    out.push_str(PREFIX);
    for b in d {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A key as written in a rule: a `sha256:` digest, or the plain token.
pub(crate) fn parse_rule_key(written: &str) -> Result<Digest, String> {
    if written.is_empty() {
        return Err("key is empty".into());
    }
    let Some(hex) = written.strip_prefix(PREFIX) else {
        return Ok(digest(written));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a sha256: key needs exactly 64 hex digits after the prefix".into());
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(chunk).map_err(|e| e.to_string())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The hooks' key digests, for lookup by a request's digest. The table is indexed by the first
/// 8 bytes of a digest, so the lookup's timing depends only on the digest of what the client sent
/// (which tells it nothing about any stored key); candidates are then compared whole, in
/// constant time.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    /// Each digest with the position of the hook it belongs to.
    digests: Vec<(Digest, usize)>,
    by_prefix: HashMap<u64, Vec<usize>>,
}

fn prefix(d: &Digest) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first)
}

impl KeyTable {
    /// A table of digests, each found as the hook position it is given with.
    pub(crate) fn new(digests: Vec<(Digest, usize)>) -> KeyTable {
        let mut by_prefix: HashMap<u64, Vec<usize>> = HashMap::with_capacity(digests.len());
        for (i, (d, _)) in digests.iter().enumerate() {
            by_prefix.entry(prefix(d)).or_default().push(i);
        }
        KeyTable { digests, by_prefix }
    }

    /// The hook position of the digest equal to `d`.
    pub(crate) fn find(&self, d: &Digest) -> Option<usize> {
        let candidates = self.by_prefix.get(&prefix(d))?;
        let (_, hook) = candidates.iter().map(|&i| &self.digests[i]).find(|(stored, _)| bool::from(stored.ct_eq(d)))?;
        Some(*hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_test_matches_the_published_value() {
        assert_eq!(
            format_digest(&digest("test")),
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn key_table_finds_only_exact_digests() {
        let a = digest("a");
        let b = digest("b");
        let mut same_prefix = a;
        same_prefix[31] ^= 1;
        let table = KeyTable::new(vec![(a, 0), (b, 1), (same_prefix, 2)]);
        assert_eq!(table.find(&a), Some(0));
        assert_eq!(table.find(&b), Some(1));
        assert_eq!(table.find(&same_prefix), Some(2));
        assert_eq!(table.find(&digest("c")), None);
        let mut near = a;
        near[20] ^= 0x80;
        assert_eq!(table.find(&near), None);
    }

    #[test]
    fn rule_keys() {
        let plain = parse_rule_key("test").unwrap();
        let hashed = parse_rule_key("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08").unwrap();
        assert_eq!(plain, hashed);
        let upper = parse_rule_key("sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08").unwrap();
        assert_eq!(upper, hashed);
        for bad in ["", "sha256:", "sha256:abc", &format!("sha256:{}", "g".repeat(64))] {
            assert!(parse_rule_key(bad).is_err(), "accepted {bad:?}");
        }
    }
}
