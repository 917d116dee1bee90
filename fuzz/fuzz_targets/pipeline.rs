//! The whole pure pipeline on fixed rules: any request gets a payload or a rejection, never a
//! panic, and the payload stays within a bound of the body's size.
#![no_main]

use hookgate::rules::{ChannelMap, Defaults, Hook, Markup, Mode, Policy};
use hookgate::rules::SlackMaps;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};

static HOOKS: LazyLock<[Hook; 2]> = LazyLock::new(|| {
    let slack = Arc::new(SlackMaps { users: [("U1".to_owned(), "alice".to_owned())].into(), ..SlackMaps::default() });
    let policy = Policy {
        defaults: Defaults { channel: "alerts-general".into(), ..Defaults::default() },
        username: Mode::Ignore,
        channel: Mode::Allow,
        channels: Some(vec![regex::Regex::new("^alerts-").unwrap(), regex::Regex::new("^@").unwrap()]),
        channel_map: vec![ChannelMap { pattern: regex::Regex::new("^#?ops-(.*)$").unwrap(), to: "alerts-$1".into() }],
        ..Policy::default()
    };
    let base = Hook { name: "fuzz".into(), slack, policy, ..Hook::default() };
    [Hook { markup: Markup::Markdown, ..base.clone() }, Hook { markup: Markup::Slack, ..base }]
});

const CONTENT_TYPES: &[&[u8]] = &[b"", b"application/json", b"application/x-www-form-urlencoded", b"multipart/form-data; boundary=B"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let hook = &HOOKS[usize::from(pick & 1)];
    let content_type = CONTENT_TYPES[usize::from(pick >> 1) % CONTENT_TYPES.len()];
    if let Ok(message) = hookgate::pipeline::process(hook, content_type, body).result {
        let size = message.to_json().len();
        assert!(size <= 16 * body.len() + 4096, "{size} bytes out of {} in", body.len());
    }
});
