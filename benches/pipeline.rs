//! The pure pipeline (decode, translate, checks, policy, the message as JSON) on typical webhook bodies,
//! with a `slack`-markup hook. Throughput (`thrpt`) is messages per second on one core: criterion
//! runs the pipeline on a single thread.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

// The allocator the hookgate binary runs with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use hookgate::pipeline::process;
use hookgate::rules::{Defaults, Hook, Policy};

fn hook() -> Hook {
    let defaults = Defaults { channel: "town-square".into(), username: "ci-bot".into(), ..Defaults::default() };
    Hook {
        name: "bench".into(),
        markup: hookgate::rules::Markup::Slack,
        policy: Policy { defaults, ..Policy::default() },
        ..Hook::default()
    }
}

const TEXT_JSON: &str = r#"{"text":"Build #4521 of hookgate/main passed in 3m12s. 214 tests, 0 failures, coverage 87.3%. Deployed to staging by the release pipeline; see the build log for details and artifacts.","username":"ci","channel":"builds","icon_emoji":":white_check_mark:"}"#;

/// The same size of message with Slack markup: bold, a mention and a labelled link.
const MRKDWN_JSON: &str = r#"{"text":"Build *#4521* of hookgate/main passed in 3m12s by <@U024BE7LH>: 214 tests, 0 failures. <https://ci.example/builds/4521|Build log> and artifacts are ready.","username":"ci","icon_emoji":":white_check_mark:","channel":"builds"}"#;

const ALERT: &str = r##"{"attachments":[{"color":"danger","fallback":"[FIRING:1] HighLatency api (critical)","title":"[FIRING:1] HighLatency api (critical)","title_link":"http://alertmanager.local/#/alerts?receiver=chat","text":"*Alert:* p99 latency above 500ms - `critical`\n*Description:* api p99 latency is 734ms on instance api-3\n*Details:*\n  • *alertname:* `HighLatency`\n  • *instance:* `api-3:9100`\n  • *job:* `api`\n  • *severity:* `critical`","fields":[{"title":"Instance","value":"api-3:9100","short":true},{"title":"Value","value":734,"short":true}],"footer":"Alertmanager","ts":1764230400}],"username":"alertmanager","channel":"#alerts"}"##;

/// A GitHub-style release note of 40 blocks: headers, sections with fields, context, dividers,
/// rich text lists and an actions block.
fn blocks_40() -> String {
    let mut blocks = Vec::new();
    for i in 0..8 {
        blocks.push(format!(r#"{{"type":"header","text":{{"type":"plain_text","text":"Release 2.{i}"}}}}"#));
        blocks.push(format!(
            r#"{{"type":"section","text":{{"type":"mrkdwn","text":"*<https://github.com/acme/api/pull/{i}|#{i} Fix retry storm>* by <@U024BE7LH>"}},"fields":[{{"type":"mrkdwn","text":"*Base:* main"}},{{"type":"mrkdwn","text":"*Checks:* 14 passed"}}]}}"#
        ));
        blocks.push(r#"{"type":"context","elements":[{"type":"mrkdwn","text":"acme/api · _merged_"}]}"#.to_owned());
        blocks.push(r#"{"type":"rich_text","elements":[{"type":"rich_text_list","style":"bullet","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"faster retries","style":{"bold":true}}]},{"type":"rich_text_section","elements":[{"type":"link","url":"https://x.io","text":"docs"}]}]}]}"#.to_owned());
        blocks.push(if i % 2 == 0 {
            r#"{"type":"divider"}"#.to_owned()
        } else {
            r#"{"type":"actions","elements":[]}"#.to_owned()
        });
    }
    format!(r#"{{"text":"release notes","blocks":[{}]}}"#, blocks.join(","))
}

fn bench(c: &mut Criterion) {
    let hook = hook();
    let blocks = blocks_40();
    // Percent-encoded, as clients send it.
    let form = format!("payload={}", form_urlencoded::byte_serialize(TEXT_JSON.as_bytes()).collect::<String>());
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(300_000 - 11));
    let cases: [(&str, &[u8], &[u8]); 6] = [
        ("text_json_250b", b"application/json", TEXT_JSON.as_bytes()),
        ("mrkdwn_json_250b", b"application/json", MRKDWN_JSON.as_bytes()),
        ("text_form_payload", b"application/x-www-form-urlencoded", form.as_bytes()),
        ("alertmanager_attachment", b"application/json", ALERT.as_bytes()),
        ("block_kit_40_blocks", b"application/json", blocks.as_bytes()),
        ("json_300kb", b"application/json", big.as_bytes()),
    ];
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    for (name, content_type, body) in cases {
        assert!(process(&hook, content_type, body).result.is_ok(), "{name} must be accepted");
        group.bench_function(name, |b| {
            b.iter(|| process(black_box(&hook), black_box(content_type), black_box(body)).result.map(|m| m.to_json()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
