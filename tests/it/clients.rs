//! "Migrate Slack integrations unchanged", proven with the clients integrations really use:
//! Python's slack_sdk, Node's @slack/webhook, curl, and apprise's Mattermost client, each pointed
//! at the gateway by changing only the host. `make test` installs them into `.venv` and
//! `tests/clients/node_modules`. Every client talks through a relay that records its exact bytes,
//! printed when an assertion fails.

use crate::common;

use common::{GatewayProcess, RecordingBackend};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A TCP relay in front of the gateway that records what clients send.
struct Relay {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(target) else { continue };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_read, mut c_write) = (server, client);
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n @ 1..) = c_read.read(&mut buf) {
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay { addr, sent }
    }

    /// Everything clients sent so far, as text (bodies here are JSON and forms).
    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

fn rules(backend_url: &str, dead_url: &str) -> String {
    format!(
        r#"
[backends.chat]
kind = "mattermost"
url = "{backend_url}"

[backends.dead]
kind = "mattermost"
url = "{dead_url}"
connect_timeout_ms = 300

[[hooks]]
name = "slack"
key = "T000/B000/XXXX"
backend = "chat"
backend_key = "mmslack"
markup = "slack"
rate = 0

[[hooks]]
name = "mm"
key = "mmkey"
backend = "chat"
backend_key = "mmmm"
rate = 0

[[hooks]]
name = "limited"
key = "limitedkey"
backend = "chat"
backend_key = "mmlimited"
rate = 0.001
burst = 1

[[hooks]]
name = "down"
key = "downkey"
backend = "dead"
backend_key = "mmdown"
"#
    )
}

struct Setup {
    backend: RecordingBackend,
    _gateway: GatewayProcess,
    relay: Relay,
}

fn setup() -> Setup {
    let backend = RecordingBackend::start();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gateway = GatewayProcess::start(&rules(&backend.url(), &format!("http://{dead}")));
    let relay = Relay::start(gateway.addr);
    Setup { backend, _gateway: gateway, relay }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.relay.addr)
    }

    /// Runs a client; returns its stdout lines, failing with everything it sent if it fails.
    fn run(&self, program: &str, args: &[&str]) -> Vec<String> {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (make test installs it)"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\nstdout: {stdout}\nwhat it sent:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.relay.sent()
        );
        stdout.lines().map(str::to_owned).collect()
    }

    /// The bodies the backend received, as text.
    fn forwarded(&self) -> Vec<String> {
        self.backend.received().iter().map(|r| r.body_text()).collect()
    }

    fn check(&self, what: &str, got: impl PartialEq<Vec<String>> + std::fmt::Debug, want: Vec<String>) {
        assert!(got == want, "{what}: got {got:?}, want {want:?}\nwhat the clients sent:\n{}", self.relay.sent());
    }
}

fn python() -> String {
    format!("{ROOT}/.venv/bin/python")
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn slack_sdk_webhook_client_on_both_paths() {
    let s = setup();
    let script = format!("{ROOT}/tests/clients/slack_sdk_client.py");
    for path in ["/services/T000/B000/XXXX", "/hooks/T000/B000/XXXX"] {
        let before = s.forwarded().len();
        let results = s.run(&python(), &[&script, "send", &s.url(path)]);
        let seen: Vec<String> = results
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["call"].as_str().unwrap(), v["status"], v["body"].as_str().unwrap())
            })
            .collect();
        s.check(
            &format!("slack_sdk on {path}"),
            seen,
            lines(&["text 200 ok", "attachments 200 ok", "blocks 200 ok", "send_dict 200 ok"]),
        );
        s.check(
            &format!("forwarded from slack_sdk on {path}"),
            s.forwarded()[before..].to_vec(),
            lines(&[
                r#"{"text":"Deploy finished **now** :tada:"}"#,
                r##"{"text":"Build","attachments":[{"color":"#36a64f","title":"Build 42","text":"All tests passed","fields":[{"title":"Env","value":"prod","short":true}]}]}"##,
                r#"{"text":"**hello** from blocks"}"#,
                r##"{"text":"hi","channel":"#builds","username":"ci-bot","icon_emoji":":robot_face:"}"##,
            ]),
        );
    }
}

#[test]
fn slack_sdk_sees_the_error_paths() {
    let s = setup();
    let script = format!("{ROOT}/tests/clients/slack_sdk_client.py");
    let call = |path: &str| {
        let out = s.run(&python(), &[&script, "one", &s.url(path)]);
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        (
            v["status"].as_u64().unwrap(),
            v["body"].as_str().unwrap().to_owned(),
            v["retry_after"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(call("/services/T000/B000/nope"), (404, "no_service".into(), None));
    assert_eq!(call("/hooks/limitedkey"), (200, "ok".into(), None));
    let (status, body, retry_after) = call("/hooks/limitedkey");
    assert_eq!((status, body.as_str()), (429, "rate_limited"));
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=1000).contains(&wait));
    let (status, body, retry_after) = call("/hooks/downkey");
    assert_eq!((status, body.as_str(), retry_after.as_deref()), (503, "backend_unavailable", Some("5")));
    s.check("forwarded", s.forwarded(), lines(&[r#"{"text":"one message"}"#]));
}

#[test]
fn node_slack_webhook_never_throws() {
    let s = setup();
    let script = format!("{ROOT}/tests/clients/slack_webhook_client.js");
    let results = s.run("node", &[&script, &s.url("/services/T000/B000/XXXX")]);
    s.check(
        "@slack/webhook results",
        results,
        lines(&[
            r#"{"call":"text","result":{"text":"ok"}}"#,
            r#"{"call":"attachments","result":{"text":"ok"}}"#,
            r#"{"call":"blocks","result":{"text":"ok"}}"#,
        ]),
    );
    s.check(
        "forwarded from @slack/webhook",
        s.forwarded(),
        lines(&[
            r#"{"text":"plain string message"}"#,
            r#"{"text":"Hello from @slack/webhook","attachments":[{"color":"good","title":"Attachment","text":"att _text_","fields":[{"title":"k","value":"v","short":true}]}]}"#,
            r#####"{"text":"#### Release 2.3\n\n**Shipped** to prod"}"#####,
        ]),
    );
}

#[test]
fn curl_in_the_three_shapes_people_use() {
    let s = setup();
    let url = s.url("/services/T000/B000/XXXX");
    let runs: [&[&str]; 3] = [
        &["-sS", "-H", "Content-Type: application/json", "--data", r#"{"text":"json with header"}"#, &url],
        &["-sS", "--data-urlencode", r#"payload={"text":"a & b = c? 100%"}"#, &url],
        &["-sS", "-d", r#"{"text":"json, no header"}"#, &url],
    ];
    for args in runs {
        s.check(&format!("curl {args:?}"), s.run("curl", args), lines(&["ok"]));
    }
    s.check(
        "forwarded from curl",
        s.forwarded(),
        lines(&[r#"{"text":"json with header"}"#, r#"{"text":"a & b = c? 100%"}"#, r#"{"text":"json, no header"}"#]),
    );
}

#[test]
fn mattermost_style_clients() {
    let s = setup();
    // apprise's Mattermost plugin, as a Mattermost integration would be configured.
    let target = format!("mmost://apprise-bot@{}/mmkey?channel=town-square&image=no", s.relay.addr);
    s.run(&format!("{ROOT}/.venv/bin/apprise"), &["-t", "Disk full", "-b", "on db-1", &target]);
    // A client that sends null for members it leaves unset.
    let url = s.url("/hooks/mmkey");
    let body = r#"{"text":"with a null icon","icon_url":null,"channel":"town-square"}"#;
    s.check("curl", s.run("curl", &["-sS", "-H", "Content-Type: application/json", "-d", body, &url]), lines(&["ok"]));
    s.check(
        "forwarded from Mattermost-style clients",
        s.forwarded(),
        lines(&[
            r#"{"text":"Disk full\r\non db-1","channel":"town-square","username":"apprise-bot"}"#,
            r#"{"text":"with a null icon","channel":"town-square"}"#,
        ]),
    );
}
