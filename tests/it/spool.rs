//! The spool (contract section 11) on the real binary: acknowledged messages survive a backend
//! outage and `kill -9` of the gateway, arrive in order, wait out a 429's Retry-After, become
//! dead letters on a permanent refusal (then replayed or dropped through the admin API), and
//! `max_bytes` and an unusable store are refused rather than acknowledged. The recording backend
//! stands in for the chat server; it can be stopped and told what to answer.

use crate::common;

use common::{GatewayProcess, RecordingBackend, WAIT};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rules with one spooled hook (`key-spool`) and one direct hook (`key-direct`) on `backend_url`,
/// the store in `spool_dir`.
fn rules(backend_url: &str, spool_dir: &std::path::Path, spool_extra: &str) -> String {
    format!(
        r#"
[spool]
path = "{}"
retry_initial = "100ms"
retry_max = "400ms"
{spool_extra}
{}
[[hooks]]
name = "limited"
key = "key-limited"
backend = "chat"
backend_key = "mmlimited"
delivery = "spool"
rate = 0.001
burst = 1
"#,
        spool_dir.display(),
        common::spooled_alerts(backend_url)
    )
}

fn post(gateway: &GatewayProcess, key: &str, text: &str) -> (u16, String) {
    let body = format!(r#"{{"text":"{text}"}}"#);
    let response = gateway.post(&format!("/hooks/{key}"), Some("application/json"), body.as_bytes());
    (response.status, response.text())
}

/// Waits until the backend has received `count` requests.
fn wait_received(backend: &RecordingBackend, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while backend.received().len() < count {
        assert!(Instant::now() < deadline, "{} of {count} delivered", backend.received().len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn admin_json(gateway: &GatewayProcess, method: &str, path: &str) -> (u16, serde_json::Value) {
    let response = common::Conn::open(gateway.admin).request(method, path, &[], b"");
    (response.status, serde_json::from_str(&response.text()).unwrap_or(serde_json::Value::Null))
}

#[test]
fn an_outage_of_the_backend_loses_nothing_and_keeps_the_order() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), ""));
    for i in 0..200 {
        assert_eq!(post(&gateway, "key-spool", &format!("m{i}")), (200, "ok".into()), "message {i}");
    }
    let (_, status) = admin_json(&gateway, "GET", "/spool");
    assert_eq!(status["hooks"]["alerts"]["pending"], 200, "{status}");
    assert_eq!(status["hooks"]["alerts"]["orphaned"], false);
    assert!(status["hooks"]["alerts"]["last_error"].as_str().is_some_and(|e| e.contains("unavailable")), "{status}");
    let line = gateway.wait_for_log("outcome=retry");
    assert!(line.contains("hook=alerts") && line.contains("attempt="), "{line}");

    backend.restart();
    wait_received(&backend, 200, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let want: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(backend.texts(), want, "each once, in the order acknowledged");
    assert!(backend.received().iter().all(|r| r.path == "/hooks/mmalerts"));
    let pending = gateway.wait_for_metric(r#"hookgate_spool_messages{hook="alerts",state="pending"}"#, 0.0);
    assert_eq!(pending, Some(0.0), "the pending gauge never fell to 0");
    assert_eq!(gateway.metric(r#"hookgate_spool_attempts_total{hook="alerts",result="delivered"}"#), Some(200.0));
    let request_line = gateway.wait_for_log("upstream=spool");
    assert!(request_line.contains("status=200"), "{request_line}");
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_message() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    let rules = rules(&backend.url(), spool.path(), "");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut next = 0usize;
    let rounds = 20;
    for round in 0..rounds {
        let gateway = GatewayProcess::start(&rules);
        let stop = Arc::new(AtomicBool::new(false));
        // Four clients posting numbered messages until the gateway dies under them.
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, acknowledged, addr) = (stop.clone(), acknowledged.clone(), gateway.addr);
                let first = next + c * 10_000;
                std::thread::spawn(move || {
                    for n in first..first + 10_000 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let body = format!(r#"{{"text":"n{n}"}}"#);
                        // The gateway may have been killed already.
                        let Ok(mut conn) = common::Conn::try_open(addr) else { return };
                        let sent = conn.try_send(
                            format!(
                                "POST /hooks/key-spool HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        );
                        if sent.is_err() {
                            return;
                        }
                        match conn.read_response() {
                            Some(r) if r.status == 200 => acknowledged.lock().unwrap().push(format!("n{n}")),
                            Some(r) => panic!("message n{n} answered {} {}", r.status, r.text()),
                            None => return,
                        }
                    }
                })
            })
            .collect();
        next += 40_000;
        // Every other round the backend is down, so the gateway dies with a backlog.
        if round % 2 == 1 {
            backend.stop();
        }
        let pause = 50 + (round * 37 % 250) as u64;
        std::thread::sleep(Duration::from_millis(pause));
        drop(gateway); // SIGKILL
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.join().unwrap();
        }
        if round % 2 == 1 {
            backend.restart();
        }
    }
    // A last gateway on the same store delivers what is left.
    let gateway = GatewayProcess::start(&rules);
    gateway.wait_for_log("spool: resuming messages");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 100, "only {} messages were acknowledged", acknowledged.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: std::collections::HashSet<String> = backend.texts().into_iter().collect();
        let missing: Vec<&String> = acknowledged.iter().filter(|m| !delivered.contains(*m)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged messages never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for text in backend.texts() {
        *seen.entry(text).or_default() += 1;
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "{rounds} kill -9 rounds: {} acknowledged, {} delivered, {duplicates} duplicates (each a kill between a \
         backend's acceptance and its removal being committed)",
        acknowledged.len(),
        seen.len()
    );
    // At most the job in flight at each kill can be sent again.
    assert!(duplicates <= rounds, "{duplicates} duplicates in {rounds} kills");
}

#[test]
fn a_429_waits_its_retry_after_and_a_404_becomes_a_dead_letter() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.set_retry_after(2);
    backend.script(&[429]);
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), ""));
    assert_eq!(post(&gateway, "key-spool", "limited once"), (200, "ok".into()));
    wait_received(&backend, 2, Duration::from_secs(10));
    let got = backend.received();
    let waited = got[1].at.duration_since(got[0].at);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, before the 2 s Retry-After");
    assert_eq!(backend.texts(), ["limited once", "limited once"]);

    // A 404: dead at once; the hook's later messages still flow.
    backend.script(&[404]);
    assert_eq!(post(&gateway, "key-spool", "to a missing channel"), (200, "ok".into()));
    wait_received(&backend, 3, WAIT);
    assert_eq!(post(&gateway, "key-spool", "after it"), (200, "ok".into()));
    wait_received(&backend, 4, WAIT);
    assert_eq!(backend.texts()[2..], ["to a missing channel", "after it"]);
    let (status, dead) = admin_json(&gateway, "GET", "/spool/alerts/dead?payload=1");
    assert_eq!(status, 200, "{dead}");
    let letters = dead["dead"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(letters[0]["attempts"], 1);
    assert!(letters[0]["reason"].as_str().unwrap().contains("does not know the channel"), "{dead}");
    assert_eq!(letters[0]["payload"][0]["text"], "to a missing channel");
    let id = letters[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(gateway.metric(r#"hookgate_spool_attempts_total{hook="alerts",result="dead"}"#), Some(1.0));

    // The backend is fixed: replay delivers it.
    assert_eq!(admin_json(&gateway, "POST", &format!("/spool/alerts/dead/{id}/replay")).0, 200);
    wait_received(&backend, 5, WAIT);
    assert_eq!(backend.texts()[4], "to a missing channel");
    assert_eq!(admin_json(&gateway, "POST", &format!("/spool/alerts/dead/{id}/replay")).0, 404, "no longer dead");

    // Another dead letter, dropped.
    backend.script(&[403]);
    assert_eq!(post(&gateway, "key-spool", "forbidden"), (200, "ok".into()));
    wait_received(&backend, 6, WAIT);
    let deadline = Instant::now() + WAIT;
    let id = loop {
        let (_, dead) = admin_json(&gateway, "GET", "/spool/alerts/dead");
        if let Some(letter) = dead["dead"].as_array().and_then(|l| l.first()) {
            break letter["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no dead letter listed");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The command line lists and drops it through the admin listener.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("spool")
            .args(args)
            .args(["--admin", &gateway.admin.to_string()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, listed) = cli(&["dead", "alerts"]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(listed.contains(&format!("\"id\": \"{id}\"")) && listed.contains("backend refused the action"), "{listed}");
    let (code, status) = cli(&["status"]);
    assert!(code == Some(0) && status.contains("\"dead\": 1"), "{status}");
    assert_eq!(cli(&["drop", "alerts", &id]).0, Some(0));
    assert_eq!(cli(&["drop", "alerts", &id]).0, Some(1), "gone");
    assert_eq!(admin_json(&gateway, "DELETE", &format!("/spool/alerts/dead/{id}")).0, 404);
    assert_eq!(admin_json(&gateway, "GET", "/spool/nosuchhook/dead").0, 404);
    let (_, dead) = admin_json(&gateway, "GET", "/spool/alerts/dead");
    assert_eq!(dead["dead"].as_array().unwrap().len(), 0);
}

#[test]
fn a_full_spool_refuses_with_retry_after_and_keeps_what_it_holds() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.stop();
    // Room for two of these messages, not three.
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), "max_bytes = 40"));
    assert_eq!(post(&gateway, "key-spool", "first"), (200, "ok".into()));
    assert_eq!(post(&gateway, "key-spool", "second"), (200, "ok".into()));
    let response = gateway.post("/hooks/key-spool", Some("application/json"), br#"{"text":"third"}"#);
    assert_eq!((response.status, response.text().as_str()), (503, "overloaded"));
    assert_eq!(response.header("Retry-After"), Some("5"));
    assert_eq!(gateway.metric(r#"hookgate_rejections_total{hook="alerts",reason="spool_full"}"#), Some(1.0));
    backend.restart();
    wait_received(&backend, 2, Duration::from_secs(10));
    assert_eq!(backend.texts(), ["first", "second"]);
    // Delivered messages free their room.
    let deadline = Instant::now() + WAIT;
    while post(&gateway, "key-spool", "third") != (200, "ok".into()) {
        assert!(Instant::now() < deadline, "room never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_received(&backend, 3, WAIT);
}

#[test]
fn refused_requests_are_never_stored() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), ""));
    assert_eq!(post(&gateway, "key-limited", "within the burst").0, 200);
    assert_eq!(post(&gateway, "key-limited", "over the rate").0, 429);
    let bad = gateway.post("/hooks/key-spool", Some("application/json"), b"{\"text\":");
    assert_eq!(bad.status, 400);
    assert_eq!(gateway.post("/hooks/key-spool", Some("application/json"), b"{}").status, 400);
    assert_eq!(post(&gateway, "no-such-key", "unknown").0, 404);
    let (_, status) = admin_json(&gateway, "GET", "/spool");
    assert_eq!(status["hooks"]["limited"]["pending"], 1, "{status}");
    assert!(status["hooks"].get("alerts").is_none(), "{status}");
}

#[test]
fn a_store_that_cannot_be_opened_stops_the_gateway_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    std::fs::write(dir.path().join("rules.toml"), rules("http://127.0.0.1:9", &file.join("spool"), "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--rules"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the spool cannot be used, not starting: spool store: cannot create"), "{stderr}");
}

/// A store on a filesystem that fills up: requests are answered 503 while it is full, nothing
/// answered `ok` is lost, and delivery goes on once room is made. Mounting the small filesystem
/// needs root; anyone else gets a printed reason and the test does nothing.
#[test]
fn a_full_disk_is_answered_503_and_loses_nothing_acknowledged() {
    let root = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
    if !root {
        println!("skipped: mounting a small tmpfs for the store needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&mount).status().unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(&backend.url(), &mount.join("spool"), ""));
    let filler = "x".repeat(2_000);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..5_000 {
        match post(&gateway, "key-spool", &format!("m{i} {filler}")) {
            (200, _) => acknowledged.push(format!("m{i}")),
            (503, body) => {
                assert_eq!(body, "backend_unavailable");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert!(refused >= 5, "the disk never filled: {} acknowledged", acknowledged.len());
    assert!(!acknowledged.is_empty());
    gateway.wait_for_log("spool commit failed");
    assert!(gateway.metric(r#"hookgate_rejections_total{hook="alerts",reason="spool_error"}"#) >= Some(5.0));

    backend.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: std::collections::HashSet<String> =
            backend.texts().iter().map(|t| t.split(' ').next().unwrap_or_default().to_owned()).collect();
        let missing = acknowledged.iter().filter(|m| !delivered.contains(*m)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged messages never delivered", acknowledged.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sent = backend.texts().len();
    println!("full disk: {} acknowledged, {refused} refused with 503, {sent} posts for them", acknowledged.len());
    assert_eq!(sent, acknowledged.len(), "each acknowledged message once");
    // With the backlog delivered there is room again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while post(&gateway, "key-spool", "after") != (200, "ok".into()) {
        assert!(Instant::now() < deadline, "no room after the backlog was delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A reload that removes a spooled hook keeps its messages, listed as orphaned; they go out once a
/// hook of that name is back, or an operator drops them.
#[test]
fn a_hook_removed_by_a_reload_leaves_its_messages_orphaned_until_it_returns_or_is_dropped() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.stop();
    let with_hooks = rules(&backend.url(), spool.path(), "");
    let gateway = GatewayProcess::start(&with_hooks);
    for i in 0..3 {
        assert_eq!(post(&gateway, "key-spool", &format!("kept {i}")), (200, "ok".into()));
    }
    assert_eq!(post(&gateway, "key-limited", "dropped"), (200, "ok".into()));
    let without = |rules: &str, name: &str| {
        let cut = rules.find(&format!("[[hooks]]\nname = \"{name}\"")).unwrap();
        let end = rules[cut..].find("\n\n[[hooks]]").map_or(rules.len(), |e| cut + e + 2);
        format!("{}{}", &rules[..cut], &rules[end..])
    };
    gateway.write_rules(&without(&without(&with_hooks, "alerts"), "limited"));
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    backend.restart();
    assert_eq!(post(&gateway, "key-spool", "gone").0, 404);
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(backend.received().is_empty(), "an orphaned hook's messages wait");
    let (_, status) = admin_json(&gateway, "GET", "/spool");
    for (hook, pending) in [("alerts", 3), ("limited", 1)] {
        assert_eq!(status["hooks"][hook]["orphaned"], true, "{status}");
        assert_eq!(status["hooks"][hook]["pending"], pending, "{status}");
    }

    // An orphaned hook's queue is dropped whole, from the command line.
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["spool", "drop", "limited", "--admin", &gateway.admin.to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("\"dropped\": 1"), "{said}");
    let (_, status) = admin_json(&gateway, "GET", "/spool");
    assert!(status["hooks"].get("limited").is_none(), "{status}");

    gateway.write_rules(&with_hooks);
    gateway.signal("HUP");
    wait_received(&backend, 3, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backend.texts(), ["kept 0", "kept 1", "kept 2"], "the dropped message never went out");
    // A hook in the rules cannot be dropped whole.
    assert_eq!(post(&gateway, "key-limited", "kept").0, 200);
    let (code, answer) = admin_json(&gateway, "DELETE", "/spool/limited");
    assert_eq!(code, 409, "{answer}");
}

/// A message the backend keeps refusing becomes a dead letter once older than `max_age`, and the
/// hook's next message still goes out.
#[test]
fn a_message_older_than_max_age_becomes_a_dead_letter() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.set_status(500);
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), "max_age = \"2s\""));
    let sent = Instant::now();
    assert_eq!(post(&gateway, "key-spool", "too old"), (200, "ok".into()));
    let deadline = sent + WAIT;
    let letter = loop {
        let (_, dead) = admin_json(&gateway, "GET", "/spool/alerts/dead");
        if let Some(letter) = dead["dead"].as_array().and_then(|l| l.first()) {
            break letter.clone();
        }
        assert!(Instant::now() < deadline, "no dead letter after max_age");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(sent.elapsed() >= Duration::from_secs(2), "dead before max_age: {:?}", sent.elapsed());
    assert_eq!(letter["reason"], "older than max_age", "{letter}");
    assert!(letter["attempts"].as_u64().unwrap() >= 2, "retried meanwhile: {letter}");
    backend.set_status(200);
    assert_eq!(post(&gateway, "key-spool", "fresh"), (200, "ok".into()));
    let deadline = Instant::now() + WAIT;
    while backend.texts().last().map(String::as_str) != Some("fresh") {
        assert!(Instant::now() < deadline, "the next message never went out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Rules with one spooled hook `alerts` on the backend `name`, defined by `backend` (its table),
/// the store in `spool`.
fn moving_rules(spool: &std::path::Path, backend: &str, name: &str, hook_keys: &str) -> String {
    format!(
        r#"
[spool]
path = "{}"
retry_initial = "100ms"
retry_max = "400ms"

{backend}

[[hooks]]
name = "alerts"
key = "key-spool"
backend = "{name}"
delivery = "spool"
rate = 0
username = "ops"
{hook_keys}
"#,
        spool.display()
    )
}

fn mattermost(name: &str, url: &str) -> String {
    format!("[backends.{name}]\nkind = \"mattermost\"\nurl = \"{url}\"\nconnect_timeout_ms = 200\ntimeout_ms = 2000")
}

/// Spools three messages for `alerts` on a Mattermost backend that is down, then reloads the
/// rules with the hook on the backend `name` (its table `backend`); returns the gateway and
/// the canonical payloads posted.
fn spool_then_move(
    spool: &std::path::Path,
    backend: &str,
    name: &str,
    hook_keys: &str,
) -> (GatewayProcess, Vec<String>) {
    let down = RecordingBackend::start();
    down.stop();
    let old = mattermost("old", &down.url());
    let gateway = GatewayProcess::start(&moving_rules(spool, &old, "old", "backend_key = \"mmold\""));
    let bodies = [
        r#"{"text":"first"}"#,
        r#"{"text":"second *bold*","attachments":[{"title":"build","text":"green","color":"good"}]}"#,
        r#"{"text":"a third message, long enough to be split in two by a small backend"}"#,
    ];
    for body in bodies {
        let response = gateway.post("/hooks/key-spool", Some("application/json"), body.as_bytes());
        assert_eq!((response.status, response.text()), (200, "ok".into()));
    }
    // At least one attempt failed against the old backend before the move.
    let deadline = Instant::now() + WAIT;
    while admin_json(&gateway, "GET", "/spool").1["hooks"]["alerts"]["last_error"].is_null() {
        assert!(Instant::now() < deadline, "no attempt was made");
        std::thread::sleep(Duration::from_millis(20));
    }
    gateway.write_rules(&moving_rules(spool, backend, name, hook_keys));
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    let canonical = [
        r#"{"text":"first","username":"ops"}"#,
        r#"{"text":"second *bold*","username":"ops","attachments":[{"color":"good","title":"build","text":"green"}]}"#,
        r#"{"text":"a third message, long enough to be split in two by a small backend","username":"ops"}"#,
    ];
    (gateway, canonical.map(String::from).to_vec())
}

/// A reload that moves a spooled hook to a backend of another kind (contract section 17): the
/// stored messages follow it, rendered for the `log` kind from the stored message, and each
/// attempt's line says where they came from.
#[test]
fn stored_messages_follow_their_hook_to_a_log_backend() {
    let spool = tempfile::tempdir().unwrap();
    let (gateway, canonical) = spool_then_move(spool.path(), "[backends.console]\nkind = \"log\"", "console", "");
    let lines = gateway.wait_for_stdout(3);
    assert_eq!(lines, canonical, "the canonical payloads, in order");
    let moved = gateway.wait_for_log("moved_from=old");
    assert!(moved.contains("outcome=delivered") && moved.contains("upstream=log"), "{moved}");
    let status = admin_json(&gateway, "GET", "/spool").1;
    assert!(status["hooks"].get("alerts").is_none(), "nothing left stored: {status}");
}

/// Within one kind: a hook moved to another Mattermost backend (another server, another
/// webhook id, a smaller post size) sends its stored messages there, rendered for its limits.
#[test]
fn stored_messages_follow_their_hook_to_another_mattermost() {
    let spool = tempfile::tempdir().unwrap();
    let target = RecordingBackend::start();
    let backend = format!("{}\nmax_message_chars = 40", mattermost("new", &target.url()));
    let (gateway, canonical) = spool_then_move(spool.path(), &backend, "new", "backend_key = \"mmnew\"");
    wait_received(&target, 4, WAIT);
    let received = target.received();
    assert!(
        received.iter().all(|r| r.path == "/hooks/mmnew"),
        "{:?}",
        received.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let texts = target.texts();
    assert_eq!(&texts[..2], ["first", "second *bold*"]);
    assert!(texts.len() > 3 && texts.iter().all(|t| t.chars().count() <= 40), "split for the new backend: {texts:?}");
    let third: serde_json::Value = serde_json::from_str(&canonical[2]).unwrap();
    assert_eq!(texts[2..].concat(), third["text"].as_str().unwrap());
    assert!(gateway.wait_for_log("moved_from=old").contains("outcome=delivered"));
}

/// The gauges show the backlog while the backend is down (contract section 17):
/// `hookgate_spool_messages` is never more than 2 seconds behind `GET /spool`.
#[test]
fn the_pending_gauge_keeps_up_with_the_store_while_the_backend_is_down() {
    let spool = tempfile::tempdir().unwrap();
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(&backend.url(), spool.path(), ""));
    let gauge = r#"hookgate_spool_messages{hook="alerts",state="pending"}"#;
    let posting = AtomicBool::new(true);
    let samples: Vec<(Instant, u64, u64)> = std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..40 {
                assert_eq!(post(&gateway, "key-spool", &format!("m{i}")).0, 200);
                std::thread::sleep(Duration::from_millis(75));
            }
            posting.store(false, Ordering::Release);
        });
        let mut samples = Vec::new();
        let mut quiet_since = None;
        while quiet_since.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(2_500)) {
            let stored = admin_json(&gateway, "GET", "/spool").1["hooks"]["alerts"]["pending"].as_u64().unwrap_or(0);
            let shown = gateway.metric(gauge).unwrap_or(0.0) as u64;
            samples.push((Instant::now(), stored, shown));
            if quiet_since.is_none() && !posting.load(Ordering::Acquire) {
                quiet_since = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    for &(at, _, shown) in &samples {
        let due = samples.iter().take_while(|(t, ..)| *t + Duration::from_secs(2) <= at).last();
        if let Some(&(_, stored_then, _)) = due {
            assert!(shown >= stored_then, "the gauge showed {shown}, the store held {stored_then} two seconds before");
        }
    }
    assert_eq!(samples.last().map(|s| (s.1, s.2)), Some((40, 40)), "both show the whole backlog at the end");
}
