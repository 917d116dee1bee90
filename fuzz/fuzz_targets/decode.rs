//! Decoding any body under any of the content types clients send never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&[u8]] = &[
    b"",
    b"application/json",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=B",
    b"text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let _ = hookgate::pipeline::decode::decode(content_type, body);
});
