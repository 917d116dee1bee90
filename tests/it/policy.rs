//! Override policy through the real gateway: refused requests never reach the backend, ignored
//! values are replaced by the hook's defaults, channel rules rewrite and narrow.

use crate::common;

use common::{rules, GatewayProcess, RecordingBackend};

const JSON: Option<&str> = Some("application/json");

const POLICY: &str = r#"
[[hooks]]
name = "locked"
key = "lockedkey"
backend = "chat"
backend_key = "mmlocked"
channel = "deploys"
username = "deploy-bot"
icon_url = "http://icons.example/deploy.png"

[hooks.overrides]
username = "reject"
icon = "ignore"
channel = "reject"

[[hooks]]
name = "alerts"
key = "alertskey"
backend = "chat"
backend_key = "mmalerts"
channel = "alerts-general"

[hooks.overrides]
username = "allow"
channel = "allow"
channels = ["^alerts-[a-z0-9-]+$", "^@"]

[[hooks.channel_map]]
match = "^#?ops-(.*)$"
to = "alerts-$1"
"#;

#[test]
fn refused_overrides_never_reach_the_backend() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), POLICY));
    let refused: &[(&str, &str)] = &[
        ("/hooks/lockedkey", r#"{"text":"x","channel":"general"}"#),
        ("/hooks/lockedkey", r#"{"text":"x","Channel":"general"}"#),
        ("/hooks/lockedkey", r#"{"text":"x","channel":"deploys","channel":"general"}"#),
        ("/hooks/lockedkey", r#"{"text":"x","username":"someone"}"#),
        ("/hooks/lockedkey", r#"{"attachments":[{"text":"a"}],"channel":"@alice"}"#),
        ("/hooks/alertskey", r#"{"text":"x","channel":"general"}"#),
        ("/hooks/alertskey", r##"{"text":"x","channel":"#alerts-db"}"##),
        ("/hooks/alertskey", r#"{"text":"x","channel":"ops-"}"#),
    ];
    for (path, body) in refused {
        gateway.post(path, JSON, body.as_bytes()).assert(403, "text/plain", "action_prohibited");
    }
    let form = gateway.post(
        "/hooks/lockedkey",
        Some("application/x-www-form-urlencoded"),
        br#"payload={"text":"x","channel":"general"}"#,
    );
    form.assert(403, "text/plain", "action_prohibited");
    assert!(backend.received().is_empty(), "refused requests were forwarded: {:?}", backend.received());
}

#[test]
fn allowed_ignored_and_mapped_values() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), POLICY));
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "the hook's own channel and username pass even under reject; the icon is ignored",
            "/hooks/lockedkey",
            r#"{"text":"x","channel":"deploys","username":"deploy-bot","icon_emoji":":rocket:"}"#,
            r#"{"text":"x","channel":"deploys","username":"deploy-bot","icon_url":"http://icons.example/deploy.png"}"#,
        ),
        (
            "defaults fill everything",
            "/hooks/lockedkey",
            r#"{"text":"x"}"#,
            r#"{"text":"x","channel":"deploys","username":"deploy-bot","icon_url":"http://icons.example/deploy.png"}"#,
        ),
        (
            "an allowed channel",
            "/hooks/alertskey",
            r#"{"text":"x","channel":"alerts-db"}"#,
            r#"{"text":"x","channel":"alerts-db"}"#,
        ),
        (
            "a mapped channel",
            "/hooks/alertskey",
            r##"{"text":"x","channel":"#ops-db"}"##,
            r#"{"text":"x","channel":"alerts-db"}"#,
        ),
        (
            "a direct message",
            "/hooks/alertskey",
            r#"{"text":"x","channel":"@alice"}"#,
            r#"{"text":"x","channel":"@alice"}"#,
        ),
        (
            "username allowed",
            "/hooks/alertskey",
            r#"{"text":"x","username":"grafana"}"#,
            r#"{"text":"x","channel":"alerts-general","username":"grafana"}"#,
        ),
    ];
    for (i, (name, path, body, want)) in cases.iter().enumerate() {
        gateway.post(path, JSON, body.as_bytes()).assert(200, "text/plain", "ok");
        assert_eq!(backend.received()[i].body_text(), *want, "{name}");
    }
}

#[test]
fn type_and_props_limits_are_enforced_before_forwarding() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), "max_props_bytes = 20\n"));
    // `demo` is the last hook in rules(), so the extra key lands on it.
    let cases: &[(&str, u16, &str)] = &[
        (r#"{"text":"x","type":"system_join"}"#, 400, "invalid_payload"),
        (r#"{"attachments":[{"text":"a"}],"type":"bogus"}"#, 400, "invalid_payload"),
        (r#"{"text":"x","props":{"k":"a long value that is over twenty bytes"}}"#, 400, "invalid_payload"),
    ];
    for (body, status, code) in cases {
        gateway.post("/hooks/demokey", JSON, body.as_bytes()).assert(*status, "text/plain", code);
    }
    gateway.post("/hooks/demokey", JSON, br#"{"text":"x","props":{"k":"v"},"type":"custom_a"}"#).assert(
        200,
        "text/plain",
        "ok",
    );
    assert_eq!(gateway.wait_for_stdout(1), vec![r#"{"text":"x","type":"custom_a","props":{"k":"v"}}"#]);
    assert!(backend.received().is_empty());
}

/// The worked example of docs/policy.md is a real file: it loads beside the shipped Mattermost
/// backend and decides as the page's table says.
#[test]
fn the_policy_page_migration_example_does_what_it_says() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/rules/examples/slack-migration.toml")).unwrap();
    let page = std::fs::read_to_string(format!("{root}/docs/policy.md")).unwrap();
    let body = example.split_once("\n\n").unwrap().1;
    assert!(page.contains(body), "docs/policy.md shows rules/examples/slack-migration.toml as it is");

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(format!("{root}/rules/mattermost.toml"), dir.path().join("a.toml")).unwrap();
    std::fs::write(dir.path().join("b.toml"), &example).unwrap();
    let rules = hookgate::delivery::load_rules(dir.path()).unwrap();
    let alerts = rules.hook_by_digest(&hookgate::rules::keys::digest("T0001/B0002/alerts000000000000000000")).unwrap();
    // The channel asked for, where it goes (or refused), and the override counters that moved.
    type Row<'a> = (&'a str, Result<&'a str, ()>, &'a [(&'a str, &'a str)]);
    let table: &[Row] = &[
        ("", Ok("alerts-general"), &[]),
        ("alerts-db", Ok("alerts-db"), &[("channel", "applied")]),
        ("#ops-db", Ok("alerts-db"), &[("channel", "mapped")]),
        ("@alice", Ok("@alice"), &[("channel", "applied")]),
        ("general", Err(()), &[("channel", "rejected")]),
    ];
    for (channel, want, actions) in table {
        let body = serde_json::json!({"text": "x", "channel": channel}).to_string();
        let processed = hookgate::pipeline::process(alerts, b"application/json", body.as_bytes());
        let (got, seen) = match processed.result {
            Ok(message) => (Ok(message.channel), processed.actions),
            Err(r) => {
                assert_eq!(r.code(), "action_prohibited");
                (Err(()), processed.actions)
            }
        };
        assert_eq!(got.as_deref().map_err(|_| ()), *want, "{channel}");
        let seen: Vec<(&str, &str)> = seen.iter().map(|a| (a.field.as_str(), a.kind.as_str())).collect();
        assert_eq!(seen, *actions, "{channel}");
    }
    let builds = rules.hook_by_digest(&hookgate::rules::keys::digest("T0001/B0001/builds0000000000000000000")).unwrap();
    let refused = hookgate::pipeline::process(builds, b"", br#"{"text":"x","channel":"general"}"#).result.unwrap_err();
    assert_eq!(refused.code(), "action_prohibited");
    let named =
        hookgate::pipeline::process(builds, b"", br#"{"text":"x","username":"Jenkins #412","icon_emoji":":x:"}"#)
            .result
            .unwrap();
    assert_eq!(named.to_json(), r#"{"text":"x","channel":"builds","username":"Jenkins #412"}"#);
}
