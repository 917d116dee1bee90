//! Stored formats across releases (contract section 17): what the release before format
//! versions stored, in the embedded store and in JetStream streams, is read and delivered by this
//! one; a store or stream of a newer format than this release knows stops it at start, naming
//! the file (the stream) and the version.
//!
//! The fixtures in tests/data/spool-v0 were written by that release (commit 7cef4c9) with the
//! backends down (tests/data/spool-v0/make.sh says how): hook `alerts` on a Mattermost backend with
//! `max_message_chars = 20` (three messages, the second split in three posts), hook `rooms` on a
//! Matrix backend (one message), and hook `gone`, whose backend answered 404 (one dead letter).

use crate::common;

use common::servers::Nats;
use common::{GatewayProcess, RecordingBackend, WAIT};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/spool-v0").join(part)
}

/// The fixture's hooks, every backend on `url`; `spool` is the `[spool]` table's settings.
fn rules(spool: &str, url: &str) -> String {
    format!(
        r#"
[spool]
{spool}
# The fixture's messages were received in December 2026.
max_age = "87600h"
retry_initial = "100ms"
retry_max = "400ms"

[backends.chat]
kind = "mattermost"
url = "{url}"
max_message_chars = 20

[backends.refusing]
kind = "mattermost"
url = "{url}"

[backends.room]
kind = "matrix"
url = "{url}"
server_name = "localhost"
access_token = "token"

[[hooks]]
name = "alerts"
key = "key-alerts"
backend = "chat"
backend_key = "mmalerts"
delivery = "spool"

[[hooks]]
name = "rooms"
key = "key-rooms"
backend = "room"
room = "!room:localhost"
delivery = "spool"

[[hooks]]
name = "gone"
key = "key-gone"
backend = "refusing"
backend_key = "mmgone"
delivery = "spool"
"#
    )
}

/// Waits for the fixture's pending messages and checks each as that release rendered it; then
/// lists its dead letter, replays it and sees it delivered.
fn delivers_what_the_fixture_holds(gateway: &GatewayProcess, backend: &RecordingBackend) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend.received().len() < 6 {
        assert!(Instant::now() < deadline, "{} of 6 posts arrived", backend.received().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    let received = backend.received();
    let alerts: Vec<String> = received
        .iter()
        .filter(|r| r.path == "/hooks/mmalerts")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(
        alerts,
        [
            r#"{"text":"first"}"#,
            r#"{"text":"a second message, lo"}"#,
            r#"{"text":"ng enough to be spli"}"#,
            r#"{"text":"t in two"}"#,
            r##"{"text":"third","username":"ci","attachments":[{"color":"#00ff00","title":"build","text":"green"}]}"##,
        ]
    );
    let room = received.iter().find(|r| r.path.starts_with("/_matrix/")).expect("the Matrix event");
    assert!(room.path.contains("/send/m.room.message/v0-rooms-1"), "{}", room.path);
    let content: serde_json::Value = serde_json::from_slice(&room.body).unwrap();
    assert_eq!(content["formatted_body"], "<p>to the <strong>room</strong></p>", "{content}");

    let (_, dead) = gateway.admin_get("/spool/gone/dead");
    let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
    let letter = &dead["dead"][0];
    assert_eq!(letter["request_id"], "v0-gone-1", "{dead}");
    let replay = format!("/spool/gone/dead/{}/replay", letter["id"].as_str().unwrap());
    assert_eq!(common::Conn::open(gateway.admin).request("POST", &replay, &[], b"").status, 200);
    let deadline = Instant::now() + WAIT;
    while !backend.received().iter().any(|r| r.path == "/hooks/mmgone") {
        assert!(Instant::now() < deadline, "the replayed dead letter never went out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn user_version(file: &Path, set: Option<u32>) -> String {
    let statement = match set {
        Some(v) => format!("c.execute('PRAGMA user_version = {v}'); c.commit()"),
        None => "print(c.execute('PRAGMA user_version').fetchone()[0])".into(),
    };
    let script = format!("import sqlite3; c = sqlite3.connect({:?}); {statement}", file.display().to_string());
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_embedded_store_of_the_release_before_formats_is_delivered() {
    let spool = tempfile::tempdir().unwrap();
    let file = spool.path().join("spool.sqlite3");
    std::fs::copy(fixture("embedded/spool.sqlite3"), &file).unwrap();
    assert_eq!(user_version(&file, None), "0", "the fixture is of the release before formats");
    let backend = RecordingBackend::start();
    let gateway =
        GatewayProcess::start(&rules(&format!("path = {:?}", spool.path().display().to_string()), &backend.url()));
    delivers_what_the_fixture_holds(&gateway, &backend);
    assert_eq!(user_version(&file, None), "1", "marked with this release's format");
}

/// Runs `hookgate serve` on `rules`, which must stop it at start; returns what it said.
fn serve_refuses(rules: &str) -> String {
    let rules_dir = tempfile::tempdir().unwrap();
    std::fs::write(rules_dir.path().join("rules.toml"), rules).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--rules"])
        .arg(rules_dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a gateway with a store of a newer format kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

#[test]
fn an_embedded_store_of_a_newer_format_stops_the_gateway_at_start() {
    let spool = tempfile::tempdir().unwrap();
    let file = spool.path().join("spool.sqlite3");
    std::fs::copy(fixture("embedded/spool.sqlite3"), &file).unwrap();
    user_version(&file, Some(7));
    let spool_line = format!("path = {:?}", spool.path().display().to_string());
    let stderr = serve_refuses(&rules(&spool_line, "http://127.0.0.1:1"));
    assert!(stderr.contains(&file.display().to_string()) && stderr.contains("format 7"), "{stderr}");
    assert_eq!(user_version(&file, None), "7", "the store is left as it was");
}

#[test]
fn the_jetstream_streams_of_the_release_before_formats_are_delivered() {
    let node = Nats::start_on_copy_of(&fixture("nats-js"));
    let backend = RecordingBackend::start();
    let spool = format!("engine = \"nats\"\nnats_urls = [{:?}]", node.url());
    let gateway = GatewayProcess::start(&rules(&spool, &backend.url()));
    delivers_what_the_fixture_holds(&gateway, &backend);
}

/// One request to a NATS server's JetStream API over the plain protocol (CONNECT, SUB, PUB), the
/// way a tool would: returns the JSON answer.
fn jetstream_api(port: u16, subject: &str, body: &str) -> serde_json::Value {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.formats 1\r\nPUB {subject} _INBOX.formats {}\r\n{body}\r\n",
        body.len()
    );
    conn.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "NATS closed the connection");
        // MSG <subject> <sid> <bytes>
        if let Some(size) = line.strip_prefix("MSG ").and_then(|rest| rest.split_whitespace().nth(2)) {
            let mut payload = vec![0; size.parse::<usize>().unwrap() + 2];
            reader.read_exact(&mut payload).unwrap();
            return serde_json::from_slice(&payload[..payload.len() - 2]).unwrap();
        }
        assert!(!line.starts_with("-ERR"), "{line}");
    }
}

#[test]
fn a_jetstream_stream_of_a_newer_format_stops_the_gateway_at_start() {
    let node = Nats::start();
    let backend = RecordingBackend::start();
    let spool = format!("engine = \"nats\"\nnats_urls = [{:?}]", node.url());
    let rules = rules(&spool, &backend.url());
    drop(GatewayProcess::start(&rules));
    let port = node.port;
    let info = jetstream_api(port, "$JS.API.STREAM.INFO.HOOKGATE", "");
    assert_eq!(info["config"]["description"], "hookgate spool, format 2", "{info}");
    let mut config = info["config"].clone();
    config["description"] = "hookgate spool, format 9".into();
    let updated = jetstream_api(port, "$JS.API.STREAM.UPDATE.HOOKGATE", &config.to_string());
    assert_eq!(updated["config"]["description"], "hookgate spool, format 9", "{updated}");

    let stderr = serve_refuses(&rules);
    assert!(stderr.contains("JetStream stream HOOKGATE is in spool format 9"), "{stderr}");
}
