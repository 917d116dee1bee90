//! The Web API's argument reader (docs/webapi.md, "Arguments") on any query string, content type
//! and body: arguments or one of Slack's error codes, never a panic; and any `ts` it yields reads
//! back as it is written.
#![no_main]

use hookgate::webapi::args;
use hookgate::webapi::ts::Ts;
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&[u8]] = &[
    b"",
    b"application/json; charset=utf-8",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=B",
    b"text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    // The query string is the first line, the body the rest.
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (&rest[..0], rest),
    };
    let query = String::from_utf8_lossy(query);
    let Ok(arguments) = args::read(&query, content_type, body) else { return };
    for name in ["ts", "thread_ts"] {
        if let Some(ts) = arguments.text(name).and_then(Ts::parse) {
            assert_eq!(Ts::parse(&ts.to_string()), Some(ts));
        }
    }
});
