//! Translation through the real gateway: Block Kit, Slack mrkdwn with mentions, and long texts
//! split into several posts, asserted on what the recording backend received.

use crate::common;

use common::{GatewayProcess, RecordingBackend};

const JSON: Option<&str> = Some("application/json");

fn rules(backend_url: &str) -> String {
    format!(
        r#"
[backends.chat]
kind = "mattermost"
url = "{backend_url}"
max_message_chars = 17

[backends.roomy]
kind = "mattermost"
url = "{backend_url}"

[[hooks]]
name = "github"
key = "githubkey"
backend = "roomy"
backend_key = "mmgithub"

[[hooks]]
name = "slack-ci"
key = "T1/B1/slackci"
backend = "roomy"
backend_key = "mmslack"
markup = "slack"

[[hooks]]
name = "small"
key = "smallkey"
backend = "chat"
backend_key = "mmsmall"

[slack.users]
U024BE7LH = "alice"

[slack.channels]
C024BE91L = "town-square"
"#
    )
}

#[test]
fn block_kit_arrives_as_markdown() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url()));
    let body = r#"{
        "text": "PR #12 merged",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Pull request merged"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*<https://github.com/o/r/pull/12|#12 Fix the thing>* by <@U024BE7LH>"},
             "accessory": {"type": "image", "image_url": "https://github.com/a.png", "alt_text": "avatar"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Base:*\nmain"}, {"type": "mrkdwn", "text": "*Files:*\n3"}]},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Merged in <#C024BE91L>"}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "View"}}]}
        ]
    }"#;
    gateway.post("/hooks/githubkey", JSON, body.as_bytes()).assert(200, "text/plain", "ok");
    let got: serde_json::Value = serde_json::from_slice(&backend.received()[0].body).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"text": "#### Pull request merged\n\n**[#12 Fix the thing](https://github.com/o/r/pull/12)** by @alice\n![avatar](https://github.com/a.png)\n\n**Base:**\nmain\n**Files:**\n3\n\n---\n\nMerged in ~town-square"})
    );
    // Only actions: nothing renders, so the text stays; nothing at all is no_text.
    gateway
        .post("/hooks/githubkey", JSON, br#"{"text":"fallback","blocks":[{"type":"actions","elements":[]}]}"#)
        .assert(200, "text/plain", "ok");
    assert_eq!(backend.received()[1].body_text(), r#"{"text":"fallback"}"#);
    gateway.post("/hooks/githubkey", JSON, br#"{"blocks":[{"type":"actions","elements":[]}]}"#).assert(
        400,
        "text/plain",
        "no_text",
    );
    assert_eq!(backend.received().len(), 2);
}

#[test]
fn slack_markup_and_mentions() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url()));
    let body = r#"{"text":"<!here> *deploy* of `api` by <@U024BE7LH> in <#C024BE91L|general> &amp; <https://ci.example/1|logs>","thread_ts":"1.2"}"#;
    gateway.post("/services/T1/B1/slackci", JSON, body.as_bytes()).assert(200, "text/plain", "ok");
    gateway.post("/hooks/githubkey", JSON, body.as_bytes()).assert(200, "text/plain", "ok");
    let got: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(
        got,
        vec![
            r#"{"text":"@here **deploy** of `api` by @alice in ~town-square & [logs](https://ci.example/1)"}"#,
            r#"{"text":"@here *deploy* of `api` by @alice in [general](#C024BE91L) &amp; [logs](https://ci.example/1)"}"#,
        ]
    );
}

#[test]
fn long_text_is_split_in_order_with_attachments_last() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url()));
    let body = r#"{"text":"first line ok\nsecond line here\nthird","channel":"dev","attachments":[{"text":"att"}]}"#;
    gateway.post("/hooks/smallkey", JSON, body.as_bytes()).assert(200, "text/plain", "ok");
    let got: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(
        got,
        vec![
            r#"{"text":"first line ok","channel":"dev"}"#,
            r#"{"text":"second line here","channel":"dev"}"#,
            r#"{"text":"third","channel":"dev","attachments":[{"text":"att"}]}"#,
        ]
    );
    let line = gateway.wait_for_log("posts=3");
    assert!(line.contains("posts_delivered=3"), "{line}");
}

#[test]
fn a_failure_part_way_is_502_and_logged_with_the_count() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url()));
    backend.script(&[200, 500]);
    let body = r#"{"text":"first line ok\nsecond line here\nthird"}"#;
    gateway.post("/hooks/smallkey", JSON, body.as_bytes()).assert(502, "text/plain", "backend_error");
    assert_eq!(backend.received().len(), 2, "the third post is not sent after the second failed");
    let line = gateway.wait_for_log("status=502");
    assert!(line.contains("posts_delivered=1 posts=3"), "{line}");
    // A failure on the first post is the backend's own answer.
    backend.script(&[404]);
    gateway.post("/hooks/smallkey", JSON, body.as_bytes()).assert(404, "text/plain", "channel_not_found");
}

/// The before/after examples of docs/translation.md (tests/data/examples), forwarded exactly as
/// that page shows them.
#[test]
fn translation_page_examples() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url()));
    let root = env!("CARGO_MANIFEST_DIR");
    let cases = [
        (
            "alertmanager",
            "/services/T1/B1/slackci",
            r#####"{"channel":"#alerts","username":"alertmanager","attachments":[{"fallback":"[FIRING:1] HighLatency api","color":"danger","title":"[FIRING:1] HighLatency api (critical)","title_link":"http://alertmanager.local/#/alerts?receiver=chat","text":"**Alert:** p99 latency above 500ms - `critical`\n**Description:** api p99 latency is 734ms on instance api-3\n**Details:**\n  • **alertname:** `HighLatency`\n  • **instance:** `api-3:9100`","fields":[{"title":"Value","value":"734","short":true},{"title":"Runbook","value":"[latency runbook](https://runbooks.local/latency)","short":true}],"footer":"Alertmanager"}]}"#####,
        ),
        (
            "github-blocks",
            "/hooks/githubkey",
            r#####"{"text":"#### Pull request merged\n\n**[#12 Fix retry storm](https://github.com/acme/api/pull/12)** by @alice\n![alice](https://avatars.example/alice.png)\n\n**Base:** main\n**Checks:** 14 passed\n\nacme/api · ~town-square"}"#####,
        ),
        (
            "mrkdwn-mentions",
            "/services/T1/B1/slackci",
            r#####"{"text":"@here deploy of **api** v2.3 to _prod_ by @alice finished ~~late~~ & green. Logs: [run 981](https://ci.example/run/981), channel ~town-square. Run `make deploy` to repeat."}"#####,
        ),
    ];
    for (i, (name, path, want)) in cases.iter().enumerate() {
        let body = std::fs::read(format!("{root}/tests/data/examples/{name}.json")).unwrap();
        gateway.post(path, JSON, &body).assert(200, "text/plain", "ok");
        assert_eq!(backend.received()[i].body_text(), *want, "{name}");
    }
}
