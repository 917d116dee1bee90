//! Slack's own host names (contract section 16, docs/slack-hosts.md): clients that are told no
//! address but Slack's reach hookgate with no change at all. Inside a network namespace and a
//! mount namespace of the test's own (`unshare --net --mount`), a hosts file maps
//! `hooks.slack.com` and `slack.com` to the namespace's loopback, where hookgate listens on 443
//! with a leaf of `hookgate tls internal-ca`; each client trusts only that CA, by the means its
//! runtime reads (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`, `--cacert`). Hookgate posts to the `log`
//! backend, whose lines (the canonical payloads, in order) are what the test checks.
//!
//! Namespaces need root (CI runs as root); elsewhere the test says why and passes without running.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HOOKGATE: &str = env!("CARGO_BIN_EXE_hookgate");

/// Whether this process may make the namespaces; `Err` says why not.
fn namespaces_allowed() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", "ip link set lo up && mount -t tmpfs none /mnt"])
        .output()
        .map_err(|e| format!("unshare cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("unshare --net --mount failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn rules(ca: &Path, spool: &Path) -> String {
    format!(
        r#"
[gateway]
listen = "127.0.0.1:80"
listen_tls = "127.0.0.1:443"
tls_certs = [{{ cert = "{ca}/hooks.slack.com.pem", key = "{ca}/hooks.slack.com.key" }}]

[spool]
path = "{spool}"

[backends.console]
kind = "log"

[[hooks]]
name = "curl"
key = "T4/B4/X4"
backend = "console"
markup = "slack"
rate = 0

[[hooks]]
name = "apprise"
key = "T1/B1/X1"
backend = "console"
markup = "slack"
rate = 0

[[hooks]]
name = "slack-sdk"
key = "T2/B2/X2"
backend = "console"
markup = "slack"
rate = 0

[[hooks]]
name = "slack-sdk-bot"
bot_token = "xoxb-hosts"
backend = "console"
markup = "slack"
rate = 0

[[hooks]]
name = "alertmanager"
key = "T3/B3/X3"
backend = "console"
markup = "slack"
rate = 0
"#,
        ca = ca.display(),
        spool = spool.display()
    )
}

const ALERTMANAGER: &str = r#"
route:
  receiver: chat
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: chat
    slack_configs:
      - api_url: https://hooks.slack.com/services/T3/B3/X3
        channel: '#alerts'
        title: '{{ .Status }}: {{ .CommonLabels.alertname }}'
        text: 'on {{ .CommonLabels.instance }}'
"#;

/// The script run inside the namespaces: loopback up, the hosts file, hookgate on 443, then each
/// client in turn, its exit code appended to `codes`. Every wait is bounded.
fn script(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
set -u
ip link set lo up
mount --bind {d}/hosts /etc/hosts
{HOOKGATE} serve --rules {d}/rules --admin-listen 127.0.0.1:9465 --pid-file {d}/hookgate.pid \
  --upgrade-sock {d}/hookgate.sock >{d}/hookgate.out 2>{d}/hookgate.err &
hookgate=$!
for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && break; sleep 0.1; done
lines() {{ wc -l < {d}/hookgate.out; }}
# wait_lines N: until hookgate printed N lines, at most 60 s.
wait_lines() {{ for _ in $(seq 1 600); do [ "$(lines)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }}

timeout 30 curl -sS --cacert {d}/ca/ca.pem -H 'Content-Type: application/json' \
  --data '{{"text":"from *curl*"}}' https://hooks.slack.com/services/T4/B4/X4 >{d}/curl.out 2>&1
echo "curl $?" >>{d}/codes
# Without the CA, the same request fails: the system's store does not know it.
timeout 30 curl -sS -o /dev/null --data 'payload={{"text":"x"}}' https://hooks.slack.com/services/T4/B4/X4 2>/dev/null
echo "untrusted $?" >>{d}/codes

REQUESTS_CA_BUNDLE={d}/ca/ca.pem timeout 60 {ROOT}/.venv/bin/apprise -t 'Disk full' -b 'on *db-1*' \
  'slack://T1/B1/X1/?footer=no&image=no' >{d}/apprise.out 2>&1
echo "apprise $?" >>{d}/codes

SSL_CERT_FILE={d}/ca/ca.pem timeout 60 {ROOT}/.venv/bin/python {ROOT}/tests/clients/slack_default_hosts.py \
  xoxb-hosts >{d}/sdk.out 2>{d}/sdk.err
echo "slack_sdk $?" >>{d}/codes

before=$(lines)
SSL_CERT_FILE={d}/ca/ca.pem prometheus-alertmanager --config.file={d}/alertmanager.yml \
  --storage.path={d}/alertmanager --web.listen-address=127.0.0.1:9093 --cluster.listen-address= \
  --web.external-url=http://alertmanager.test/ >{d}/alertmanager.log 2>&1 &
alertmanager=$!
alert='[{{"labels":{{"alertname":"DiskFull","instance":"db-1"}},"startsAt":"2026-01-01T00:00:00Z"}}]'
for _ in $(seq 1 300); do
  curl -sf -H 'Content-Type: application/json' --data "$alert" http://127.0.0.1:9093/api/v2/alerts >/dev/null && break
  sleep 0.1
done
wait_lines $((before + 1))
echo "alertmanager $?" >>{d}/codes
kill $alertmanager; wait $alertmanager 2>/dev/null

kill $hookgate; wait $hookgate 2>/dev/null
exit 0
"#
    )
}

/// The issue's "no change at all": Apprise with `slack://T/B/X`, slack_sdk's WebhookClient on
/// `https://hooks.slack.com/...` and WebClient with its default base URL, Alertmanager with the
/// real Slack URL, and curl, each producing the exact canonical payload.
#[test]
fn clients_told_only_slacks_host_names_reach_hookgate() {
    if let Err(why) = namespaces_allowed() {
        println!("skipped: {why} (it needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = Command::new(HOOKGATE).args(["tls", "internal-ca", "--dir"]).arg(d.join("ca")).output().unwrap();
    let printed = String::from_utf8_lossy(&made.stdout);
    assert!(made.status.success(), "{printed}{}", String::from_utf8_lossy(&made.stderr));
    assert!(printed.contains("tls_certs = [{ cert = "), "the rules lines are printed: {printed}");
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(d.join("rules/rules.toml"), rules(&d.join("ca"), &d.join("spool"))).unwrap();
    std::fs::write(d.join("hosts"), "127.0.0.1 localhost\n127.0.0.1 hooks.slack.com slack.com\n").unwrap();
    std::fs::write(d.join("alertmanager.yml"), ALERTMANAGER).unwrap();
    std::fs::write(d.join("codes"), "").unwrap();
    let run = Command::new("timeout")
        .args(["300", "unshare", "--net", "--mount", "bash", "-c", &script(d)])
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap_or_default();
    let context = format!(
        "script: {:?} {}\nhookgate stderr:\n{}\napprise:\n{}\nslack_sdk:\n{}{}\nalertmanager:\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr),
        read("hookgate.err"),
        read("apprise.out"),
        read("sdk.out"),
        read("sdk.err"),
        read("alertmanager.log").lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(read("codes"), "curl 0\nuntrusted 60\napprise 0\nslack_sdk 0\nalertmanager 0\n", "{context}");
    assert_eq!(read("curl.out"), "ok", "{context}");

    let sdk: Vec<serde_json::Value> = read("sdk.out").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        sdk,
        [
            serde_json::json!({"call": "webhook", "status": 200, "body": "ok"}),
            serde_json::json!({"call": "post", "ok": true, "channel": "deploys"}),
            serde_json::json!({"call": "update", "ok": true, "same_ts": true}),
            serde_json::json!({"call": "auth_test", "ok": true, "url": "https://slack.com/", "user": "slack-sdk-bot"}),
        ],
        "{context}"
    );

    let out = read("hookgate.out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}\n{context}");
    assert_eq!(lines[0], r#"{"text":"from **curl**"}"#);
    assert_eq!(lines[1], r##"{"attachments":[{"color":"#3AA3E3","title":"Disk full","text":"on **db-1**"}]}"##);
    assert_eq!(lines[2], r#"{"text":"Deploy of **api** finished"}"#);
    let op = |line: &str| -> serde_json::Value { serde_json::from_str(line).unwrap() };
    let (post, update) = (op(lines[3]), op(lines[4]));
    assert_eq!((post["op"].as_str(), update["op"].as_str()), (Some("post"), Some("update")));
    assert_eq!(post["ts"], update["ts"]);
    assert_eq!(post["payload"], serde_json::json!({"text": "deploying **api**", "channel": "deploys"}));
    assert_eq!(update["payload"], serde_json::json!({"text": "deployed **api**", "channel": "deploys"}));
    assert_eq!(
        lines[5],
        r##"{"channel":"#alerts","username":"Alertmanager","attachments":[{"fallback":"[FIRING:1]  (DiskFull db-1) | http://alertmanager.test/#/alerts?receiver=chat","color":"danger","title":"firing: DiskFull","title_link":"http://alertmanager.test/#/alerts?receiver=chat","text":"on db-1"}]}"##
    );
}
