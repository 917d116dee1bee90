//! Request ids: the client's own when it is a sane token, otherwise a new random one. The same id
//! goes to the backend, into the log line and into every response.

const MAX_LEN: usize = 64;

pub fn choose(header: &[u8]) -> String {
    if acceptable(header) {
        // `acceptable` admits ASCII only.
        return String::from_utf8_lossy(header).into_owned();
    }
    let random = rand::random::<u128>();
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[(random >> ((31 - i) * 4)) as usize & 0xf];
    }
    // Filled in place: pushing character by character cost a few hundred instructions a request.
    String::from_utf8(id.to_vec()).expect("hex digits are ASCII")
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_client_ids_and_replaces_the_rest() {
        assert_eq!(choose(b"abc-123_x.y"), "abc-123_x.y");
        let max = "a".repeat(64);
        assert_eq!(choose(max.as_bytes()), max);
        for bad in [&b""[..], b"has space", b"semi;colon", &[b'a'; 65], b"\xff"] {
            let id = choose(bad);
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(choose(b""), choose(b""));
    }
}
