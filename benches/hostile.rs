//! Hostile bodies: the shapes that once made translation or decoding grow faster than the body
//! (an unclosed style opener repeated, and its relatives), each at 30 kB and 300 kB, against a
//! plain-text body of the same size. Each case is the whole CPU work a request costs before the
//! network: decode, translate, checks, policy, the split into posts and each post's JSON.
//!
//! After criterion's runs, a table gives each shape's time as a multiple of plain text of the same
//! size; the target is at most 10x, and the benchmark exits non-zero when a shape misses it.

use criterion::{black_box, BenchmarkId, Criterion};
use hookgate::delivery::split::split;
use hookgate::pipeline::message::Message;
use hookgate::pipeline::process;
use hookgate::refusal::Refusal;
use hookgate::rules::SlackMaps;
use hookgate::rules::{ChannelMap, Defaults, Hook, Markup, Policy, DEFAULT_MAX_PROPS_BYTES};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

// The allocator the hookgate binary runs with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SIZES: [(&str, usize); 2] = [("30kB", 30_000), ("300kB", 300_000)];
/// Mattermost's post size, the default `max_message_chars`.
const MAX_MESSAGE_CHARS: usize = 16_383;
/// The most a shape may cost, as a multiple of plain text of the same size.
const TARGET_RATIO: f64 = 10.0;
const JSON: &[u8] = b"application/json";

fn hook() -> Hook {
    let slack = SlackMaps {
        users: [("U1".to_owned(), "alice".to_owned())].into(),
        channels: [("C1".to_owned(), "general".to_owned())].into(),
    };
    let policy = Policy {
        defaults: Defaults { channel: "town-square".into(), ..Defaults::default() },
        channel_map: vec![ChannelMap { pattern: regex::Regex::new("^#?ops-(.*)$").unwrap(), to: "alerts-$1".into() }],
        channels: Some(vec![regex::Regex::new("^alerts-").unwrap()]),
        ..Policy::default()
    };
    Hook { name: "bench".into(), markup: Markup::Slack, slack: Arc::new(slack), policy, ..Hook::default() }
}

/// `unit` repeated to make `wrap(text)` about `size` bytes of JSON.
fn repeat_to(size: usize, unit: &str, wrap: impl Fn(String) -> Value) -> Vec<u8> {
    let overhead = serde_json::to_vec(&wrap(String::new())).unwrap().len();
    let unit_len = serde_json::to_string(unit).unwrap().len() - 2;
    let text = unit.repeat(size.saturating_sub(overhead) / unit_len);
    serde_json::to_vec(&wrap(text)).unwrap()
}

fn text(size: usize, unit: &str) -> Vec<u8> {
    repeat_to(size, unit, |t| json!({ "text": t }))
}

/// The opener in the text, an attachment's text and a field's value, a third of the body each.
fn everywhere(size: usize, unit: &str) -> Vec<u8> {
    let third = repeat_to(size / 3 - 40, unit, Value::String);
    let t: String = serde_json::from_slice(&third).unwrap();
    serde_json::to_vec(&json!({
        "text": t,
        "attachments": [{ "text": t, "fields": [{ "title": "f", "value": t }] }],
    }))
    .unwrap()
}

/// `item` repeated in a JSON array under `key`, as many as fit in `size`, beside a fallback text.
fn array_of(size: usize, key: &str, item: Value) -> Vec<u8> {
    let one = serde_json::to_vec(&item).unwrap().len() + 1;
    let items = vec![item; (size - key.len() - 32) / one];
    serde_json::to_vec(&json!({ "text": "fallback", key: items })).unwrap()
}

/// Rich-text lists nested as deep as the JSON reader allows, the text at the bottom.
fn nested_lists(size: usize) -> Vec<u8> {
    let mut element = json!({ "type": "rich_text_section", "elements": [{ "type": "text", "text": "" }] });
    // Each list is two levels (object and its array); the top object, the blocks array, the
    // rich_text block and its array are four more, the section, its array and the text three.
    for _ in 0..(hookgate::pipeline::json::MAX_DEPTH - 7) / 2 {
        element = json!({ "type": "rich_text_list", "style": "bullet", "elements": [element] });
    }
    let overhead = serde_json::to_vec(&element).unwrap().len() + 60;
    let words = "nested list item ".repeat(size.saturating_sub(overhead) / 17);
    let body = serde_json::to_string(&json!({ "blocks": [{ "type": "rich_text", "elements": [element] }] })).unwrap();
    body.replacen(r#""text":"""#, &format!(r#""text":"{words}""#), 1).into_bytes()
}

/// Multipart parts whose headers end in bare line feeds.
fn multipart_lf(size: usize) -> Vec<u8> {
    let part = "--B\nContent-Disposition: form-data; name=\"x\"\n\nv\n";
    let mut body = part.repeat(size.saturating_sub(60) / part.len());
    body.push_str("--B\nContent-Disposition: form-data; name=\"text\"\n\nhello\n--B--\n");
    body.into_bytes()
}

struct Shape {
    name: &'static str,
    content_type: &'static [u8],
    body: fn(usize) -> Vec<u8>,
}

const MULTIPART: &[u8] = b"multipart/form-data; boundary=B";

/// The baseline is first; every other shape is compared with it.
const SHAPES: &[Shape] = &[
    Shape { name: "plain_text", content_type: JSON, body: |n| text(n, "The build passed and was deployed. ") },
    Shape { name: "italic_openers", content_type: JSON, body: |n| text(n, "_a ") },
    Shape { name: "bold_openers", content_type: JSON, body: |n| text(n, "*a ") },
    Shape { name: "strike_openers", content_type: JSON, body: |n| text(n, "~a ") },
    Shape { name: "all_openers", content_type: JSON, body: |n| text(n, "*_~a ") },
    Shape { name: "openers_text_attachment_field", content_type: JSON, body: |n| everywhere(n, "_a ") },
    Shape { name: "openers_across_lines", content_type: JSON, body: |n| text(n, "_a\n") },
    Shape { name: "bold_pairs", content_type: JSON, body: |n| text(n, "*a* ") },
    Shape { name: "backtick_openers", content_type: JSON, body: |n| text(n, "`a\n") },
    Shape { name: "fence_openers", content_type: JSON, body: |n| text(n, "```a ") },
    Shape { name: "angle_openers", content_type: JSON, body: |n| text(n, "<a ") },
    Shape { name: "links", content_type: JSON, body: |n| text(n, "<https://x.io/a|label> ") },
    Shape { name: "mentions", content_type: JSON, body: |n| text(n, "<@U1> <#C1> <!here> ") },
    Shape { name: "entities", content_type: JSON, body: |n| text(n, "&amp; &lt; &gt; ") },
    Shape { name: "inline_code", content_type: JSON, body: |n| text(n, "`*a*` ") },
    Shape {
        name: "form_italic_openers",
        content_type: b"application/x-www-form-urlencoded",
        body: |n| {
            let json = text(n - 64, "_a ");
            let mut body = b"payload=".to_vec();
            body.extend(form_urlencoded::byte_serialize(&json).flat_map(str::bytes));
            body
        },
    },
    Shape {
        name: "section_blocks",
        content_type: JSON,
        body: |n| array_of(n, "blocks", json!({"type":"section","text":{"type":"mrkdwn","text":"*a* _b_"}})),
    },
    Shape { name: "dropped_blocks", content_type: JSON, body: |n| array_of(n, "blocks", json!({"type":"actions"})) },
    Shape { name: "nested_lists", content_type: JSON, body: nested_lists },
    Shape { name: "empty_attachments", content_type: JSON, body: |n| array_of(n, "attachments", json!({})) },
    Shape { name: "null_attachments", content_type: JSON, body: |n| array_of(n, "attachments", Value::Null) },
    Shape { name: "number_blocks", content_type: JSON, body: |n| array_of(n, "blocks", json!(0)) },
    Shape { name: "unknown_member_numbers", content_type: JSON, body: |n| array_of(n, "unknown", json!(0)) },
    Shape { name: "unknown_member_objects", content_type: JSON, body: |n| array_of(n, "unknown", json!({})) },
    Shape { name: "unknown_member_strings", content_type: JSON, body: |n| array_of(n, "unknown", json!("")) },
    Shape {
        name: "empty_fields",
        content_type: JSON,
        body: |n| {
            let fields: Value = serde_json::from_slice(&array_of(n - 32, "fields", json!({}))).unwrap();
            serde_json::to_vec(&json!({ "attachments": [fields] })).unwrap()
        },
    },
    Shape {
        name: "props_numbers",
        content_type: JSON,
        body: |n| {
            let props: Value = serde_json::from_slice(&array_of(n - 32, "a", json!(0))).unwrap();
            serde_json::to_vec(&json!({ "text": "x", "props": props })).unwrap()
        },
    },
    Shape {
        name: "props_on_every_post",
        content_type: JSON,
        body: |n| {
            // Props just under the default limit ride on each post of a long text.
            let props = vec![0; (n / 5).min(DEFAULT_MAX_PROPS_BYTES * 9 / 10) / 2];
            let text = "The build passed and was deployed.\n".repeat((n - props.len() * 2 - 64) / 36);
            serde_json::to_vec(&json!({ "text": text, "props": { "a": props } })).unwrap()
        },
    },
    Shape {
        name: "fields",
        content_type: JSON,
        body: |n| {
            let one = json!({"title": "t", "value": "_a", "short": true});
            let fields = array_of(n - 32, "fields", one);
            let fields: Value = serde_json::from_slice(&fields).unwrap();
            serde_json::to_vec(&json!({ "attachments": [fields] })).unwrap()
        },
    },
    Shape { name: "multipart_parts", content_type: MULTIPART, body: multipart_lf },
    Shape {
        name: "mapped_channel",
        content_type: JSON,
        body: |n| {
            serde_json::to_vec(&json!({ "text": "x", "channel": format!("ops-{}", "a".repeat(n - 40)) })).unwrap()
        },
    },
];

/// The CPU work of one request before the network.
fn handle(hook: &Hook, content_type: &[u8], body: &[u8]) -> usize {
    match process(hook, content_type, body).result {
        Ok(message) => split(message, MAX_MESSAGE_CHARS).iter().map(|post| Message::to_json(post).len()).sum(),
        Err(refused) => refused.to_string().len(),
    }
}

fn bench(c: &mut Criterion, hook: &Hook) {
    let mut group = c.benchmark_group("hostile");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for shape in SHAPES {
        for (label, size) in SIZES {
            let body = (shape.body)(size);
            group.bench_with_input(BenchmarkId::new(shape.name, label), &body, |b, body| {
                b.iter(|| handle(black_box(hook), black_box(shape.content_type), black_box(body)))
            });
        }
    }
    group.finish();
}

/// Criterion's median for one case, from the estimates it wrote: steadier than the mean on a
/// shared machine, where a few slow samples pull the mean up.
fn median_ns(shape: &str, label: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{target}/criterion/hostile/{shape}/{label}/new/estimates.json");
    let estimates: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn report() -> bool {
    println!("\n{:<32} {:>8} {:>12} {:>10}", "shape", "size", "median", "x plain");
    let mut within = true;
    for (label, _) in SIZES {
        let Some(plain) = median_ns(SHAPES[0].name, label) else { continue };
        for shape in SHAPES {
            let Some(median) = median_ns(shape.name, label) else { continue };
            let ratio = median / plain;
            let verdict = if ratio > TARGET_RATIO { "  over the 10x target" } else { "" };
            within &= ratio <= TARGET_RATIO;
            println!("{:<32} {label:>8} {:>9.1} µs {ratio:>9.2}x{verdict}", shape.name, median / 1e3);
        }
    }
    within
}

fn main() {
    let hook = hook();
    for shape in SHAPES {
        for (_, size) in SIZES {
            let body = (shape.body)(size);
            assert!(body.len() <= size, "{} makes {} bytes, over {size}", shape.name, body.len());
            assert!(body.len() >= size * 9 / 10, "{} makes {} bytes, under {size}", shape.name, body.len());
            // Only too many attachments and props over the default limit are refused.
            let refused = process(&hook, shape.content_type, &body).result.err();
            let expected = match shape.name {
                "empty_attachments" => Some(Refusal::TooManyAttachments),
                "props_numbers" if size > DEFAULT_MAX_PROPS_BYTES => Some(Refusal::InvalidPayload(String::new())),
                _ => None,
            };
            let kind = |r: &Option<Refusal>| r.as_ref().map(std::mem::discriminant);
            assert_eq!(kind(&refused), kind(&expected), "{} at {size} bytes: {refused:?}", shape.name);
        }
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &hook);
    criterion.final_summary();
    if !report() {
        std::process::exit(1);
    }
}
