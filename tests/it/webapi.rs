//! Slack's Web API (docs/webapi.md): `chat.postMessage`, `chat.update`, `chat.delete` and
//! `auth.test` against the real binary, on the `log` backend (whose `{"op": ...}` lines show each
//! operation) and on a recording Mattermost incoming webhook; the message map across a `kill -9`;
//! and the real `slack_sdk.WebClient`.

use crate::common;

use common::{GatewayProcess, RecordingBackend, Response};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TOKEN: &str = "xoxb-test-token";
const BEARER: &str = "Bearer xoxb-test-token";

/// A bot hook on the log backend (`bot`), one on a Mattermost incoming webhook (`mmbot`, token
/// `xoxb-mm`), one over its rate (`slow`), and a webhook-only hook; the spool's store in `spool`.
fn rules(spool: &std::path::Path, backend_url: &str) -> String {
    format!(
        r#"
[gateway]
max_body_bytes = 2000

[spool]
path = "{}"

[backends.console]
kind = "log"

[backends.chat]
kind = "mattermost"
url = "{backend_url}"
connect_timeout_ms = 300

[slack.channels]
C0ALERTS = "alerts"

[[hooks]]
name = "bot"
bot_token = "{TOKEN}"
backend = "console"
username = "hookgate"
rate = 0
[hooks.overrides]
username = "reject"
channels = ["^alerts$", "^ops-"]

[[hooks]]
name = "mmbot"
bot_token = "xoxb-mm"
key = "mmkey"
backend = "chat"
backend_key = "mmbot"
rate = 0

[[hooks]]
name = "slow"
bot_token = "xoxb-slow"
backend = "console"
rate = 0.001
burst = 1

[[hooks]]
name = "quick"
bot_token = "xoxb-quick"
backend = "console"
# Its second call within 2 s is refused, a window no busy machine misses between two calls.
rate = 0.5
burst = 1

[[hooks]]
name = "alertmanager"
bot_token = "xoxb-am"
backend = "console"
rate = 0

[[hooks]]
name = "webhook-only"
key = "plainkey"
backend = "console"
"#,
        spool.display()
    )
}

fn call(gateway: &GatewayProcess, method: &str, headers: &[(&str, &str)], body: &str) -> Response {
    gateway.connect().request("POST", &format!("/api/{method}"), headers, body.as_bytes())
}

fn json(gateway: &GatewayProcess, method: &str, body: Value) -> Response {
    call(gateway, method, &[("Authorization", BEARER), ("Content-Type", "application/json")], &body.to_string())
}

fn read(response: &Response) -> Value {
    assert_eq!(response.header("content-type"), Some("application/json; charset=utf-8"), "{response:?}");
    serde_json::from_slice(&response.body).unwrap_or_else(|e| panic!("{e}: {response:?}"))
}

/// The answer's `error`, or `ok`.
fn result(response: &Response) -> String {
    let answer = read(response);
    match answer["ok"].as_bool() {
        Some(true) => "ok".into(),
        _ => answer["error"].as_str().unwrap_or("(none)").into(),
    }
}

#[test]
fn post_reply_update_and_delete_on_the_log_backend() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));

    let root = json(&gateway, "chat.postMessage", serde_json::json!({"channel": "#alerts", "text": "*deploying*"}));
    assert_eq!(root.status, 200);
    let answer = read(&root);
    let ts = answer["ts"].as_str().unwrap().to_owned();
    assert_eq!(answer["channel"], "alerts");
    assert_eq!(answer["message"]["ts"], ts.as_str());
    assert_eq!(answer["message"]["username"], "hookgate");
    assert!(ts.len() == 17 && ts.as_bytes()[10] == b'.', "SECONDS.MICROS: {ts}");

    // A form with the channel's Slack id, in the thread of the root.
    let form = format!("channel=C0ALERTS&text=reply&thread_ts={ts}");
    let reply = call(
        &gateway,
        "chat.postMessage",
        &[("Authorization", BEARER), ("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    let reply_ts = read(&reply)["ts"].as_str().unwrap().to_owned();
    assert_eq!(read(&reply)["message"]["thread_ts"], ts.as_str());
    // A reply to the reply is in the root's thread.
    let nested = json(
        &gateway,
        "chat.postMessage",
        serde_json::json!({"channel": "alerts", "text": "again", "thread_ts": reply_ts}),
    );
    assert_eq!(read(&nested)["message"]["thread_ts"], ts.as_str());

    let updated = json(&gateway, "chat.update", serde_json::json!({"channel": "alerts", "ts": ts, "text": "deployed"}));
    assert_eq!(read(&updated), serde_json::json!({"ok": true, "channel": "alerts", "ts": ts, "text": "deployed"}));
    // The token in the query string, as scripts pass it.
    let delete =
        gateway.connect().request("POST", &format!("/api/chat.delete?token={TOKEN}&channel=alerts&ts={ts}"), &[], b"");
    assert_eq!(read(&delete), serde_json::json!({"ok": true, "channel": "alerts", "ts": ts}));
    let again = json(&gateway, "chat.delete", serde_json::json!({"channel": "alerts", "ts": ts}));
    assert_eq!(result(&again), "message_not_found");

    let lines = gateway.wait_for_stdout(5);
    let want = [
        format!(
            r#"{{"op":"post","ts":"{ts}","channel":"alerts","thread_ts":null,"payload":{{"text":"*deploying*","channel":"alerts","username":"hookgate"}}}}"#
        ),
        format!(
            r#"{{"op":"post","ts":"{reply_ts}","channel":"alerts","thread_ts":"{ts}","payload":{{"text":"reply","channel":"alerts","username":"hookgate"}}}}"#
        ),
    ];
    assert_eq!(lines[..2], want, "{lines:#?}");
    let ops: Vec<(String, String, Value)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["op"].as_str().unwrap().to_owned(), v["ts"].as_str().unwrap().to_owned(), v["thread_ts"].clone())
        })
        .collect();
    assert_eq!(ops[2].2, Value::String(ts.clone()), "{lines:#?}");
    assert_eq!((ops[3].0.as_str(), ops[3].1.as_str()), ("update", ts.as_str()));
    assert_eq!((ops[4].0.as_str(), ops[4].1.as_str()), ("delete", ts.as_str()));
    assert!(lines[4].ends_with(r#""thread_ts":null}"#), "a delete has no payload: {}", lines[4]);

    let log = gateway.wait_for_log("method=chat.delete");
    assert!(log.contains(&format!("ts={ts}")) && log.contains("hook=bot"), "{log}");
    assert!(!gateway.stderr_lines().iter().any(|l| l.contains(TOKEN)), "the token is never logged");
    assert_eq!(
        gateway.metric(r#"hookgate_api_calls_total{hook="bot",method="chat.postMessage",result="ok"}"#),
        Some(3.0)
    );
    assert_eq!(
        gateway.metric(r#"hookgate_api_calls_total{hook="bot",method="chat.delete",result="message_not_found"}"#),
        Some(1.0)
    );
}

#[test]
fn every_bad_call_gets_its_slack_error_and_the_gateway_keeps_serving() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));
    let posted = json(&gateway, "chat.postMessage", serde_json::json!({"channel": "alerts", "text": "x"}));
    let ts = read(&posted)["ts"].as_str().unwrap().to_owned();
    let auth = [("Authorization", BEARER)];
    let as_json = [("Authorization", BEARER), ("Content-Type", "application/json")];
    let form = [("Authorization", BEARER), ("Content-Type", "application/x-www-form-urlencoded")];
    let mm = [("Authorization", "Bearer xoxb-mm"), ("Content-Type", "application/json")];
    let big = format!(r#"{{"channel":"alerts","text":"{}"}}"#, "x".repeat(3000));
    // Method, headers, body and the error it gets.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], String, &'a str);
    let cases: Vec<Case> = vec![
        (
            "chat.postMessage",
            &[("Content-Type", "application/json")],
            r#"{"channel":"alerts","text":"x"}"#.into(),
            "not_authed",
        ),
        // Slack reads no token from a JSON body.
        (
            "chat.postMessage",
            &[("Content-Type", "application/json")],
            format!(r#"{{"token":"{TOKEN}","channel":"alerts","text":"x"}}"#),
            "not_authed",
        ),
        ("chat.postMessage", &[("Authorization", "Bearer xoxb-wrong")], "channel=alerts&text=x".into(), "invalid_auth"),
        ("conversations.list", &auth, String::new(), "unknown_method"),
        ("chat.postMessage", &as_json, r#"{"channel":"alerts","#.into(), "invalid_json"),
        ("chat.postMessage", &as_json, "[1]".into(), "json_not_object"),
        (
            "chat.postMessage",
            &[("Authorization", BEARER), ("Content-Type", "multipart/form-data")],
            "x".into(),
            "invalid_form_data",
        ),
        ("chat.postMessage", &form, "text=x".into(), "channel_not_found"),
        ("chat.postMessage", &form, "channel=random&text=x".into(), "not_in_channel"),
        ("chat.postMessage", &form, "channel=alerts&text=x&username=root".into(), "missing_scope"),
        ("chat.postMessage", &form, "channel=alerts".into(), "no_text"),
        ("chat.postMessage", &form, "channel=alerts&blocks=%7B%7D".into(), "invalid_blocks"),
        ("chat.postMessage", &form, "channel=alerts&attachments=nope".into(), "invalid_attachments"),
        ("chat.postMessage", &as_json, big, "msg_too_long"),
        ("chat.update", &form, "channel=alerts&ts=1.000001&text=x".into(), "message_not_found"),
        ("chat.update", &form, format!("channel=ops-x&ts={ts}&text=x"), "message_not_found"),
        ("chat.delete", &mm, format!(r#"{{"channel":"alerts","ts":"{ts}"}}"#), "cant_delete_message"),
        ("chat.update", &mm, format!(r#"{{"channel":"alerts","ts":"{ts}","text":"x"}}"#), "cant_update_message"),
    ];
    let mut conn = gateway.connect();
    for (method, headers, body, want) in cases {
        let response = conn.request("POST", &format!("/api/{method}"), headers, body.as_bytes());
        assert_eq!((response.status, result(&response)), (200, want.to_owned()), "{method} {body}: {response:?}");
        if want == "msg_too_long" {
            conn = gateway.connect();
        }
    }
    // Over its rate: 429 with Retry-After, as clients' retry handlers expect.
    let slow = [("Authorization", "Bearer xoxb-slow")];
    let first = call(&gateway, "chat.postMessage", &slow, "channel=a&text=1");
    assert_eq!(result(&first), "ok");
    let limited = call(&gateway, "chat.postMessage", &slow, "channel=a&text=2");
    assert_eq!((limited.status, result(&limited)), (429, "ratelimited".to_owned()), "{limited:?}");
    assert!(limited.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "{limited:?}");
    // Webhooks on the same listener are untouched.
    gateway.post("/hooks/plainkey", Some("application/json"), br#"{"text":"still"}"#).assert(200, "text/plain", "ok");
}

#[test]
fn a_mattermost_webhook_backend_posts_but_cannot_thread_or_edit() {
    let store = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(store.path(), &backend.url()));
    let mm = [("Authorization", "Bearer xoxb-mm"), ("Content-Type", "application/json")];
    let posted = call(&gateway, "chat.postMessage", &mm, r#"{"channel":"town-square","text":"*hi*"}"#);
    let ts = read(&posted)["ts"].as_str().unwrap().to_owned();
    let reply = call(
        &gateway,
        "chat.postMessage",
        &mm,
        &format!(r#"{{"channel":"town-square","text":"in thread","thread_ts":"{ts}"}}"#),
    );
    assert_eq!(read(&reply)["message"].get("thread_ts"), None, "no thread on an incoming webhook");
    let received = backend.received();
    let bodies: Vec<String> = received.iter().map(|r| r.body_text()).collect();
    assert_eq!(
        bodies,
        [r#"{"text":"*hi*","channel":"town-square"}"#, r#"{"text":"in thread","channel":"town-square"}"#]
    );
    assert_eq!(received[0].path, "/hooks/mmbot");
    assert_eq!(gateway.metric(r#"hookgate_dropped_fields_total{field="thread_ts"}"#), Some(1.0));
    let update = call(&gateway, "chat.update", &mm, &format!(r#"{{"channel":"town-square","ts":"{ts}","text":"x"}}"#));
    assert_eq!(result(&update), "cant_update_message");

    // The backend's answers, as Slack's codes.
    backend.script(&[404]);
    let missing = call(&gateway, "chat.postMessage", &mm, r#"{"channel":"nowhere","text":"x"}"#);
    assert_eq!((missing.status, result(&missing)), (200, "channel_not_found".to_owned()));
    backend.stop();
    let down = call(&gateway, "chat.postMessage", &mm, r#"{"channel":"town-square","text":"x"}"#);
    assert_eq!((down.status, result(&down)), (503, "service_unavailable".to_owned()), "{down:?}");
    assert!(down.header("retry-after").is_some(), "{down:?}");
}

#[test]
fn the_message_map_survives_a_kill_9() {
    let store = tempfile::tempdir().unwrap();
    let rules = rules(store.path(), "http://127.0.0.1:9");
    let first = GatewayProcess::start(&rules);
    let posted = json(&first, "chat.postMessage", serde_json::json!({"channel": "alerts", "text": "before"}));
    let ts = read(&posted)["ts"].as_str().unwrap().to_owned();
    drop(first); // SIGKILL: no shutdown of any kind.
    let second = GatewayProcess::start(&rules);
    let updated = json(&second, "chat.update", serde_json::json!({"channel": "alerts", "ts": ts, "text": "after"}));
    assert_eq!(result(&updated), "ok", "{updated:?}");
    let next = json(&second, "chat.postMessage", serde_json::json!({"channel": "alerts", "text": "new"}));
    assert!(read(&next)["ts"].as_str().unwrap() > ts.as_str(), "a new ts comes after every stored one");
    let deleted = json(&second, "chat.delete", serde_json::json!({"channel": "alerts", "ts": ts}));
    assert_eq!(result(&deleted), "ok");
    let lines = second.wait_for_stdout(3);
    assert!(lines[0].starts_with(&format!(r#"{{"op":"update","ts":"{ts}""#)), "{lines:#?}");
}

/// The real `slack_sdk.WebClient`, told only `base_url`: post, reply, update, delete,
/// `auth.test`, a bad token, and a 429 its retry handler waits out.
#[test]
fn slack_sdk_web_client() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));
    let script = format!("{ROOT}/tests/clients/slack_web_client.py");
    let out = std::process::Command::new(format!("{ROOT}/.venv/bin/python"))
        .args([&script, &format!("http://{}/api/", gateway.addr), TOKEN, "xoxb-quick"])
        .output()
        .expect("python (make test installs slack_sdk)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ts = results[0]["ts"].as_str().unwrap();
    let want = serde_json::json!([
        {"call": "post", "ok": true, "ts": ts, "channel": "alerts"},
        {"call": "reply", "ok": true, "thread_ts": ts},
        {"call": "update", "ok": true, "text": "done"},
        {"call": "delete", "ok": true},
        {"call": "auth_test", "ok": true, "user": "bot", "team": "console"},
        {"call": "bad_token", "error": "invalid_auth"},
        {"call": "rate_limited", "ok": true},
    ]);
    assert_eq!(Value::Array(results), want, "{stdout}");
    // The second quick call was refused once, then retried by the client's handler.
    let quick = |result: &str| {
        gateway
            .metric(&format!(r#"hookgate_api_calls_total{{hook="quick",method="chat.postMessage",result="{result}"}}"#))
    };
    assert_eq!((quick("ok"), quick("ratelimited")), (Some(2.0), Some(1.0)));
    let lines = gateway.wait_for_stdout(6);
    let ops: Vec<String> = lines[..4]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["op"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops, ["post", "post", "update", "delete"], "{lines:#?}");
}

/// The real `@slack/web-api` WebClient, told only `slackApiUrl`: blocks and attachments as its
/// form encoding sends them, a reply, an update, a delete, `auth.test`, a bad token, and a 429 its
/// default retry policy waits out.
#[test]
fn node_slack_web_api_client() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));
    let script = format!("{ROOT}/tests/clients/slack_web_api_client.js");
    let out = std::process::Command::new("node")
        .args([&script, &format!("http://{}/api/", gateway.addr), TOKEN, "xoxb-quick"])
        .output()
        .expect("node (make test installs @slack/web-api)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = serde_json::json!([
        {"call": "post", "ok": true, "channel": "alerts"},
        {"call": "reply", "ok": true, "in_thread": true},
        {"call": "update", "ok": true, "text": "deployed"},
        {"call": "delete", "ok": true},
        {"call": "auth_test", "ok": true, "user": "bot"},
        {"call": "bad_token", "error": "invalid_auth"},
        {"call": "rate_limited", "ok": true},
    ]);
    assert_eq!(Value::Array(results), want, "{stdout}");
    let lines = gateway.wait_for_stdout(6);
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        first["payload"],
        serde_json::json!({"text": "**Deploying** v2", "channel": "alerts", "username": "hookgate",
            "attachments": [{"color": "good", "text": "stage 1"}]}),
        "blocks and attachments arrive as JSON strings in the form and are translated: {lines:#?}"
    );
    let quick = |result: &str| {
        gateway
            .metric(&format!(r#"hookgate_api_calls_total{{hook="quick",method="chat.postMessage",result="{result}"}}"#))
    };
    assert_eq!((quick("ok"), quick("ratelimited")), (Some(2.0), Some(1.0)));
}

/// Debian's Alertmanager in Slack-app mode, as docs/webapi.md migrates it: `api_url` ending in
/// `chat.postMessage` and the bot token in `http_config.authorization`. An alert fires, then
/// resolves; both notifications arrive as posts in `#alerts`.
#[test]
fn alertmanager_in_slack_app_mode() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
route:
  receiver: chat
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: chat
    slack_configs:
      - api_url: http://{}/api/chat.postMessage
        channel: '#alerts'
        send_resolved: true
        title: '{{{{ .Status }}}}: {{{{ .CommonLabels.alertname }}}}'
        text: 'on {{{{ .CommonLabels.instance }}}}'
        http_config:
          authorization: {{ credentials: xoxb-am }}
"#,
        gateway.addr
    );
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = common::free_port();
    let child = std::process::Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", dir.path().join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("prometheus-alertmanager (make test installs it)");
    let alertmanager = Stopped(child);
    let alert = |ends: &str| {
        format!(
            r#"[{{"labels":{{"alertname":"HighLatency","instance":"api-3"}},"startsAt":"2026-01-01T00:00:00Z"{ends}}}]"#
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let send = |body: String| loop {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let sent = common::Conn::try_open(address).ok().map(|mut conn| {
            conn.request("POST", "/api/v2/alerts", &[("Content-Type", "application/json")], body.as_bytes()).status
        });
        if sent == Some(200) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "alertmanager never took the alert: {sent:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    send(alert(""));
    let firing = wait_for_op(&gateway, 1, deadline);
    send(alert(r#","endsAt":"2026-01-01T00:00:01Z""#));
    let resolved = wait_for_op(&gateway, 2, deadline);
    drop(alertmanager);
    let title = |line: &str| {
        let op: Value = serde_json::from_str(line).unwrap();
        assert_eq!((op["op"].as_str(), op["channel"].as_str()), (Some("post"), Some("alerts")), "{line}");
        op["payload"]["attachments"][0]["title"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(title(&firing), "firing: HighLatency");
    assert_eq!(title(&resolved), "resolved: HighLatency");
    let calls = r#"hookgate_api_calls_total{hook="alertmanager",method="chat.postMessage",result="ok"}"#;
    assert_eq!(gateway.wait_for_metric(calls, 2.0), Some(2.0));
}

/// The `n`th line hookgate printed, waiting until `deadline`.
fn wait_for_op(gateway: &GatewayProcess, n: usize, deadline: std::time::Instant) -> String {
    loop {
        if let Some(line) = gateway.stdout_lines().get(n - 1) {
            return line.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no operation {n} within the time; stderr {:?}",
            gateway.stderr_lines()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A child process killed and reaped when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fake of Mattermost's REST API v4 that answers as its API reference says: channels
/// `town-square` and `alerts` of team `eng`, user `alice`, posts numbered as they are created,
/// 404 for anything unknown, and one 429 with `X-Ratelimit-Reset` when `limit` is set.
fn mattermost_api(backend: &RecordingBackend, limit: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = std::sync::Arc::new(AtomicUsize::new(0));
    backend.answer_with(std::sync::Arc::new(move |request: &common::Recorded| {
        let json = |status: u16, body: Value| Some((status, Vec::new(), body.to_string()));
        let not_found = || {
            json(404, serde_json::json!({"id": "app.channel.get_by_name.missing.app_error", "message": "Channel does not exist.", "status_code": 404}))
        };
        if request.header("authorization") != Some("Bearer mm-bot-token") {
            return json(401, serde_json::json!({"id": "api.context.session_expired.app_error", "status_code": 401}));
        }
        if limit.swap(false, Ordering::SeqCst) {
            let headers = vec![("X-Ratelimit-Limit".into(), "10".into()), ("X-Ratelimit-Reset".into(), "2".into())];
            return Some((429, headers, r#"{"id":"api.context.rate_limit","status_code":429}"#.into()));
        }
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("GET", "/api/v4/teams/name/eng/channels/name/town-square") => json(200, serde_json::json!({"id": "ch-town"})),
            ("GET", "/api/v4/teams/name/eng/channels/name/alerts") => json(200, serde_json::json!({"id": "ch-alerts"})),
            ("GET", "/api/v4/users/username/alice") => json(200, serde_json::json!({"id": "u-alice"})),
            ("GET", "/api/v4/users/me") => json(200, serde_json::json!({"id": "u-bot"})),
            ("POST", "/api/v4/channels/direct") => json(201, serde_json::json!({"id": "dm-alice"})),
            ("POST", "/api/v4/posts") => {
                let sent: Value = serde_json::from_slice(&request.body).unwrap();
                let id = format!("post{}", posts.fetch_add(1, Ordering::SeqCst) + 1);
                json(201, serde_json::json!({"id": id, "channel_id": sent["channel_id"], "root_id": sent["root_id"]}))
            }
            ("PUT", _) if path.starts_with("/api/v4/posts/") && path.ends_with("/patch") => {
                json(200, serde_json::json!({"id": path.trim_start_matches("/api/v4/posts/").trim_end_matches("/patch")}))
            }
            ("DELETE", _) if path.starts_with("/api/v4/posts/") => json(200, serde_json::json!({"status": "OK"})),
            _ => not_found(),
        }
    }));
}

/// A mattermost backend with `api_token` and `team`: posts, replies, updates and deletes go
/// through the REST API as docs/webapi.md says, with exactly these calls; a channel Mattermost
/// does not know is `channel_not_found`, its 429 is `ratelimited` with the reset as
/// `Retry-After`, and a webhook on the same backend posts through the API too.
#[test]
fn a_mattermost_backend_with_an_api_token_threads_updates_and_deletes() {
    let store = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    let limit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    mattermost_api(&backend, limit.clone());
    let rules = format!(
        r#"
[spool]
path = "{}"

[backends.api]
kind = "mattermost"
url = "{}"
api_token = "mm-bot-token"
team = "eng"

[[hooks]]
name = "deploys"
bot_token = "xoxb-deploys"
key = "deploykey"
backend = "api"
channel = "town-square"
rate = 0
"#,
        store.path().display(),
        backend.url()
    );
    let gateway = GatewayProcess::start(&rules);
    let bot = [("Authorization", "Bearer xoxb-deploys"), ("Content-Type", "application/json")];
    let send = |method: &str, body: Value| call(&gateway, method, &bot, &body.to_string());
    let root = send(
        "chat.postMessage",
        serde_json::json!({"channel": "#alerts", "text": "deploying", "username": "ci",
        "attachments": [{"color": "good", "text": "stage 1"}]}),
    );
    let ts = read(&root)["ts"].as_str().unwrap().to_owned();
    let reply = send("chat.postMessage", serde_json::json!({"channel": "alerts", "text": "step", "thread_ts": ts}));
    assert_eq!(read(&reply)["message"]["thread_ts"], ts.as_str());
    let nested = send(
        "chat.postMessage",
        serde_json::json!({"channel": "alerts", "text": "again", "thread_ts": read(&reply)["ts"]}),
    );
    assert_eq!(result(&nested), "ok");
    assert_eq!(
        result(&send("chat.update", serde_json::json!({"channel": "alerts", "ts": ts, "text": "deployed"}))),
        "ok"
    );
    assert_eq!(result(&send("chat.delete", serde_json::json!({"channel": "alerts", "ts": read(&reply)["ts"]}))), "ok");
    assert_eq!(result(&send("chat.postMessage", serde_json::json!({"channel": "@alice", "text": "psst"}))), "ok");
    let missing = send("chat.postMessage", serde_json::json!({"channel": "nowhere", "text": "x"}));
    assert_eq!(result(&missing), "channel_not_found");
    limit.store(true, std::sync::atomic::Ordering::SeqCst);
    let limited = send("chat.postMessage", serde_json::json!({"channel": "alerts", "text": "x"}));
    assert_eq!((limited.status, result(&limited)), (429, "ratelimited".to_owned()));
    assert_eq!(limited.header("retry-after"), Some("2"));
    gateway.post("/hooks/deploykey", Some("application/json"), br#"{"text":"from a webhook"}"#).assert(
        200,
        "text/plain",
        "ok",
    );

    let calls: Vec<(String, String, Value)> = backend
        .received()
        .iter()
        .map(|r| {
            assert_eq!(r.header("authorization"), Some("Bearer mm-bot-token"), "{} {}", r.method, r.path);
            (r.method.clone(), r.path.clone(), serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        })
        .collect();
    let want: Vec<(&str, &str, Value)> = vec![
        ("GET", "/api/v4/teams/name/eng/channels/name/alerts", Value::Null),
        (
            "POST",
            "/api/v4/posts",
            serde_json::json!({"channel_id": "ch-alerts", "message": "deploying",
            "props": {"attachments": [{"color": "good", "text": "stage 1"}], "override_username": "ci"}}),
        ),
        (
            "POST",
            "/api/v4/posts",
            serde_json::json!({"channel_id": "ch-alerts", "message": "step", "props": {}, "root_id": "post1"}),
        ),
        (
            "POST",
            "/api/v4/posts",
            serde_json::json!({"channel_id": "ch-alerts", "message": "again", "props": {}, "root_id": "post1"}),
        ),
        ("PUT", "/api/v4/posts/post1/patch", serde_json::json!({"message": "deployed", "props": {}})),
        ("DELETE", "/api/v4/posts/post2", Value::Null),
        ("GET", "/api/v4/users/username/alice", Value::Null),
        ("GET", "/api/v4/users/me", Value::Null),
        ("POST", "/api/v4/channels/direct", serde_json::json!(["u-bot", "u-alice"])),
        ("POST", "/api/v4/posts", serde_json::json!({"channel_id": "dm-alice", "message": "psst", "props": {}})),
        ("GET", "/api/v4/teams/name/eng/channels/name/nowhere", Value::Null),
        ("POST", "/api/v4/posts", Value::Null),
        ("GET", "/api/v4/teams/name/eng/channels/name/town-square", Value::Null),
        (
            "POST",
            "/api/v4/posts",
            serde_json::json!({"channel_id": "ch-town", "message": "from a webhook", "props": {}}),
        ),
    ];
    let want: Vec<(String, String, Value)> =
        want.into_iter().map(|(m, p, b)| (m.to_owned(), p.to_owned(), b)).collect();
    // The rate-limited post's body is whatever it was; only its place in the order matters.
    let mut calls = calls;
    calls[11].2 = Value::Null;
    assert_eq!(calls, want);
}

/// curl as scripts use it, as docs/webapi.md shows: a form body with the token in the header,
/// then the token in the query string with the arguments there too.
#[test]
fn curl_forms_and_query_tokens() {
    let store = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&rules(store.path(), "http://127.0.0.1:9"));
    let curl = |args: &[&str]| -> Value {
        let out =
            std::process::Command::new("curl").args(["-s", "--max-time", "10"]).args(args).output().expect("curl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let base = format!("http://{}/api", gateway.addr);
    let posted = curl(&[
        "-H",
        &format!("Authorization: {BEARER}"),
        "-d",
        "channel=alerts",
        "--data-urlencode",
        "text=disk *full* on db-1 & db-2",
        &format!("{base}/chat.postMessage"),
    ]);
    assert_eq!(posted["ok"], true, "{posted}");
    let ts = posted["ts"].as_str().unwrap();
    let deleted = curl(&["-X", "POST", &format!("{base}/chat.delete?token={TOKEN}&channel=alerts&ts={ts}")]);
    assert_eq!(deleted, serde_json::json!({"ok": true, "channel": "alerts", "ts": ts}));
    let lines = gateway.wait_for_stdout(2);
    assert_eq!(
        lines[0],
        format!(
            r#"{{"op":"post","ts":"{ts}","channel":"alerts","thread_ts":null,"payload":{{"text":"disk *full* on db-1 & db-2","channel":"alerts","username":"hookgate"}}}}"#
        )
    );
}

/// A hook with `delivery = "spool"` (docs/webapi.md, "Delivery"): while the backend is down each
/// call is answered once stored, with its `ts`; when it is back, the spool applies them in the
/// hook's order: the post, its update, a reply in its thread; a message deleted before it was
/// posted never is; a delete of a posted message deletes it.
#[test]
fn a_spooled_hook_stores_calls_and_applies_them_in_order() {
    let store = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    mattermost_api(&backend, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let rules = format!(
        r#"
[spool]
path = "{}"
retry_initial = "100ms"
retry_max = "300ms"

[backends.api]
kind = "mattermost"
url = "{}"
api_token = "mm-bot-token"
team = "eng"
connect_timeout_ms = 200

[[hooks]]
name = "queued"
bot_token = "xoxb-queued"
backend = "api"
delivery = "spool"
rate = 0
"#,
        store.path().display(),
        backend.url()
    );
    let gateway = GatewayProcess::start(&rules);
    let bot = [("Authorization", "Bearer xoxb-queued"), ("Content-Type", "application/json")];
    let send = |method: &str, body: Value| {
        let answer = read(&call(&gateway, method, &bot, &body.to_string()));
        assert_eq!(answer["ok"], true, "{method} {body}: {answer}");
        answer
    };
    backend.stop();
    let root = send("chat.postMessage", serde_json::json!({"channel": "alerts", "text": "deploying"}));
    let ts = root["ts"].as_str().unwrap().to_owned();
    send("chat.update", serde_json::json!({"channel": "alerts", "ts": ts, "text": "deployed"}));
    let reply = send("chat.postMessage", serde_json::json!({"channel": "alerts", "text": "log", "thread_ts": ts}));
    assert_eq!(reply["message"]["thread_ts"], ts.as_str());
    let doomed = send("chat.postMessage", serde_json::json!({"channel": "alerts", "text": "never"}));
    send("chat.delete", serde_json::json!({"channel": "alerts", "ts": doomed["ts"]}));
    let gone = call(
        &gateway,
        "chat.update",
        &bot,
        &serde_json::json!({"channel": "alerts", "ts": doomed["ts"], "text": "x"}).to_string(),
    );
    assert_eq!(result(&gone), "message_not_found");
    backend.restart();

    let calls = |backend: &RecordingBackend| -> Vec<(String, String, Value)> {
        backend
            .received()
            .iter()
            .map(|r| (r.method.clone(), r.path.clone(), serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
            .collect()
    };
    let wait_for = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = calls(&backend);
            if got.len() >= n {
                return got;
            }
            assert!(std::time::Instant::now() < deadline, "{} of {n} calls: {got:#?}", got.len());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let got = wait_for(4);
    let want: Vec<(String, String, Value)> = vec![
        ("GET".into(), "/api/v4/teams/name/eng/channels/name/alerts".into(), Value::Null),
        (
            "POST".into(),
            "/api/v4/posts".into(),
            serde_json::json!({"channel_id": "ch-alerts", "message": "deploying", "props": {}}),
        ),
        ("PUT".into(), "/api/v4/posts/post1/patch".into(), serde_json::json!({"message": "deployed", "props": {}})),
        (
            "POST".into(),
            "/api/v4/posts".into(),
            serde_json::json!({"channel_id": "ch-alerts", "message": "log", "props": {}, "root_id": "post1"}),
        ),
    ];
    assert_eq!(got, want);
    send("chat.delete", serde_json::json!({"channel": "alerts", "ts": ts}));
    let got = wait_for(5);
    assert_eq!((got[4].0.as_str(), got[4].1.as_str()), ("DELETE", "/api/v4/posts/post1"), "{got:#?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(calls(&backend).len(), 5, "the deleted message was never posted");
    let after = call(
        &gateway,
        "chat.update",
        &bot,
        &serde_json::json!({"channel": "alerts", "ts": ts, "text": "x"}).to_string(),
    );
    assert_eq!(result(&after), "message_not_found");
}
