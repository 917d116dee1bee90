//! Translating any text in every mode, and rendering any JSON as blocks, never panics.
#![no_main]

use hookgate::pipeline::translate::mrkdwn::{self, Links, Styles};
use hookgate::pipeline::translate::blocks;
use hookgate::rules::SlackMaps;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let maps = SlackMaps {
        users: [("U1".to_owned(), "alice".to_owned())].into(),
        channels: [("C1".to_owned(), "general".to_owned())].into(),
    };
    let text = String::from_utf8_lossy(data);
    for styles in [Styles::Convert, Styles::Escape, Styles::Keep] {
        let _ = mrkdwn::slack(&text, &maps, styles);
    }
    for links in [Links::Text, Links::Attachment, Links::None] {
        let _ = mrkdwn::mattermost(&text, &maps, links);
    }
    if let Ok(doc) = hookgate::pipeline::json::parse(data) {
        let _ = blocks::render(&doc, &maps);
    }
});
