//! The spool on NATS JetStream (contract section 12), on real nats-server processes started on
//! loopback: gateway instances sharing one stream, a gateway or a NATS node killed mid-stream,
//! and nothing acknowledged lost.

use crate::common;

use common::servers::Nats;
use common::{GatewayProcess, RecordingBackend, WAIT};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Rules with one spooled hook (`key-spool`) on `backend_url`, the spool on these NATS servers.
fn rules(nodes: &[Nats], replicas: usize, backend_url: &str) -> String {
    let urls: Vec<String> = nodes.iter().map(|n| format!("{:?}", n.url())).collect();
    format!(
        r#"
[spool]
engine = "nats"
nats_urls = [{}]
replicas = {replicas}
retry_initial = "100ms"
retry_max = "400ms"
{}"#,
        urls.join(", "),
        common::spooled_alerts(backend_url)
    )
}

fn post(gateway: &GatewayProcess, text: &str) -> (u16, String) {
    let body = format!(r#"{{"text":"{text}"}}"#);
    let response = gateway.post("/hooks/key-spool", Some("application/json"), body.as_bytes());
    (response.status, response.text())
}

/// Waits until every acknowledged text arrived; returns what arrived.
fn wait_all(backend: &RecordingBackend, acknowledged: &[String], within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let got = backend.texts();
        if acknowledged.iter().all(|t| got.contains(t)) {
            return got;
        }
        let missing = acknowledged.iter().filter(|t| !got.contains(t)).count();
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged messages never arrived", acknowledged.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that the acknowledged messages arrived in the order they were acknowledged (first
/// arrivals), and returns how many arrived more than once.
fn in_order_with_duplicates(arrived: &[String], acknowledged: &[String]) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut first = Vec::new();
    for text in arrived {
        let n = seen.entry(text.as_str()).or_insert(0);
        *n += 1;
        if *n == 1 && acknowledged.contains(text) {
            first.push(text.clone());
        }
    }
    assert_eq!(first, acknowledged, "delivered in the order acknowledged");
    seen.values().map(|n| n - 1).sum()
}

#[test]
fn one_node_delivers_in_order_and_keeps_dead_letters() {
    let node = Nats::start();
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(std::slice::from_ref(&node), 1, &backend.url()));
    let acknowledged: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for text in &acknowledged {
        assert_eq!(post(&gateway, text), (200, "ok".into()));
    }
    let (_, status) = gateway.admin_get("/spool");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["hooks"]["alerts"]["pending"], 50, "{status}");
    backend.restart();
    let arrived = wait_all(&backend, &acknowledged, WAIT * 3);
    assert_eq!(in_order_with_duplicates(&arrived, &acknowledged), 0);

    // A 404 makes a dead letter, listed, replayed and dropped from the admin API.
    backend.set_status(404);
    assert_eq!(post(&gateway, "refused"), (200, "ok".into()));
    let deadline = Instant::now() + WAIT;
    let id = loop {
        let (_, dead) = gateway.admin_get("/spool/alerts/dead");
        let dead: serde_json::Value = serde_json::from_str(&dead).unwrap();
        if let Some(letter) = dead["dead"].as_array().and_then(|l| l.first()) {
            assert!(!letter["reason"].as_str().unwrap().is_empty(), "{letter}");
            break letter["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        std::thread::sleep(Duration::from_millis(50));
    };
    backend.set_status(200);
    let replayed = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["spool", "replay", "alerts", &id, "--admin", &gateway.admin.to_string()])
        .output()
        .unwrap();
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stdout));
    let deadline = Instant::now() + WAIT;
    while backend.texts().iter().filter(|t| *t == "refused").count() < 2 {
        assert!(Instant::now() < deadline, "the replayed message never went out");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, dead) = gateway.admin_get("/spool/alerts/dead");
    assert!(dead.contains("\"dead\":[]") || dead.contains("\"dead\": []"), "{dead}");
}

/// Posts `count` messages alternating between the gateways, one at a time, so the order they
/// were acknowledged in is one order; returns the acknowledged texts and how many were refused.
fn post_alternating(
    gateways: &[&GatewayProcess],
    prefix: &str,
    count: usize,
    mut between: impl FnMut(usize),
) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..count {
        between(i);
        let text = format!("{prefix}{i}");
        match post(gateways[i % gateways.len()], &text) {
            (200, _) => acknowledged.push(text),
            (503, _) => refused += 1,
            other => panic!("{text}: {other:?}"),
        }
    }
    (acknowledged, refused)
}

#[test]
fn a_killed_gateway_instance_loses_nothing_on_a_three_node_cluster() {
    let cluster = Nats::cluster();
    let backend = RecordingBackend::start();
    backend.stop();
    let rules = rules(&cluster, 3, &backend.url());
    let first = GatewayProcess::start(&rules);
    let second = GatewayProcess::start(&rules);
    let (acknowledged, refused) = post_alternating(&[&first, &second], "m", 200, |_| ());
    assert_eq!((acknowledged.len(), refused), (200, 0));
    // kill -9 of one instance, whatever it was doing.
    drop(first);
    backend.restart();
    let arrived = wait_all(&backend, &acknowledged, Duration::from_secs(60));
    let duplicates = in_order_with_duplicates(&arrived, &acknowledged);
    println!("killed gateway: {} acknowledged, {} posts, {duplicates} duplicates", acknowledged.len(), arrived.len());
    // The backend was down when the instance died: nothing it sent had been accepted.
    assert_eq!(duplicates, 0);
}

/// Two gateways on a three-node cluster take 150 messages in turn; after 50, the first server in
/// their `nats_urls` (where both connected first) is killed. With the backend down meanwhile, as
/// the issue asks, and with it up, so deliveries run through the failover too.
fn kill_a_nats_node_mid_stream(backend_down: bool) {
    let mut cluster = Nats::cluster();
    let backend = RecordingBackend::start();
    if backend_down {
        backend.stop();
    }
    let rules = rules(&cluster, 3, &backend.url());
    let first = GatewayProcess::start(&rules);
    let second = GatewayProcess::start(&rules);
    let mut killed = false;
    let (acknowledged, refused) = post_alternating(&[&first, &second], "n", 150, |i| {
        if i == 50 {
            cluster[0].kill();
            killed = true;
        }
    });
    assert!(killed);
    if backend_down {
        backend.restart();
    }
    let arrived = wait_all(&backend, &acknowledged, Duration::from_secs(60));
    let duplicates = in_order_with_duplicates(&arrived, &acknowledged);
    println!(
        "killed NATS node (backend {}): {} acknowledged, {refused} refused (503) during the failover, {} posts, \
         {duplicates} duplicates",
        if backend_down { "down" } else { "up" },
        acknowledged.len(),
        arrived.len()
    );
    assert!(acknowledged.len() >= 100, "the cluster kept taking messages: {}", acknowledged.len());
    // A resend needs an acknowledgement lost with the node, after the backend took the post.
    assert!(duplicates <= 2, "{duplicates} duplicates");
}

#[test]
fn a_killed_nats_node_loses_nothing_acknowledged_while_the_backend_is_down() {
    kill_a_nats_node_mid_stream(true);
}

#[test]
fn a_killed_nats_node_loses_nothing_acknowledged_while_delivering() {
    kill_a_nats_node_mid_stream(false);
}

#[test]
fn while_nats_is_down_nothing_is_acknowledged_and_the_gateway_reconnects() {
    let mut node = Nats::start();
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(std::slice::from_ref(&node), 1, &backend.url()));
    assert_eq!(post(&gateway, "before"), (200, "ok".into()));
    node.kill();
    let started = Instant::now();
    let (status, body) = post(&gateway, "during");
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(8), "answered within the publish wait: {:?}", started.elapsed());
    node.restart();
    let deadline = Instant::now() + WAIT * 2;
    let after = loop {
        match post(&gateway, "after") {
            (200, _) => break "after",
            (503, _) => assert!(Instant::now() < deadline, "the gateway never reconnected"),
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let arrived = wait_all(&backend, &["before".to_owned(), after.to_owned()], WAIT * 2);
    assert!(!arrived.contains(&"during".to_owned()), "a refused message was not stored: {arrived:?}");
}

/// The node is killed at several moments around publishes under way (contract section 17): a
/// client answered `ok` gets its message, a client answered 503 never does, whether the stream
/// lost the publish, took it in time with the answer lost, or took it after reconnecting.
#[test]
fn a_node_killed_around_a_publish_never_delivers_what_was_refused() {
    let mut node = Nats::start();
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(std::slice::from_ref(&node), 1, &backend.url()));
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    for (round, delay_ms) in [0u64, 1, 2, 5, 10, 20, 50, 100].into_iter().enumerate() {
        let answers: Vec<(String, u16)> = std::thread::scope(|scope| {
            let posts: Vec<_> = (0..4)
                .map(|i| {
                    let gateway = &gateway;
                    scope.spawn(move || {
                        let text = format!("r{round}-{i}");
                        let (status, body) = post(gateway, &text);
                        assert!(status == 200 || status == 503, "{text}: {status} {body}");
                        (text, status)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(delay_ms));
            node.kill();
            posts.into_iter().map(|p| p.join().unwrap()).collect()
        });
        for (text, status) in answers {
            if status == 200 {
                acknowledged.push(text)
            } else {
                refused.push(text)
            }
        }
        node.restart();
        node.wait_ready(Duration::from_secs(10));
    }
    // A last message, taken once the gateway is connected again: the hook's messages go out in
    // order, so once it has arrived every stored message before it was delivered or discarded.
    let deadline = Instant::now() + WAIT * 2;
    while post(&gateway, "last").0 != 200 {
        assert!(Instant::now() < deadline, "the gateway never reconnected");
        std::thread::sleep(Duration::from_millis(200));
    }
    acknowledged.push("last".into());
    let arrived = wait_all(&backend, &acknowledged, Duration::from_secs(60));
    let delivered_refused: Vec<&String> = refused.iter().filter(|t| arrived.contains(t)).collect();
    let discarded =
        gateway.metric(r#"hookgate_spool_discarded_total{hook="alerts",reason="stored_after_refusal"}"#).unwrap_or(0.0);
    println!(
        "kills around publishes: {} acknowledged, {} refused, {discarded} discarded after being stored late",
        acknowledged.len(),
        refused.len()
    );
    assert!(delivered_refused.is_empty(), "refused yet delivered: {delivered_refused:?}; arrived: {arrived:?}");
    assert!(!refused.is_empty(), "no publish was under way when the node died: the test shows nothing");
}

/// The case the discard rule is for, made certain: a NATS server that stops answering (SIGSTOP)
/// keeps the connection open, so the publish is written to it; the request is answered 503; the
/// server wakes and stores the message long after. The worker must discard it, count it and log
/// it, and deliver what came before and after.
#[test]
fn a_message_stored_after_its_request_was_refused_is_discarded() {
    let node = Nats::start();
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(std::slice::from_ref(&node), 1, &backend.url()));
    assert_eq!(post(&gateway, "before"), (200, "ok".into()));
    node.pause();
    let (status, body) = post(&gateway, "late");
    node.resume();
    assert_eq!(status, 503, "{body}");
    assert_eq!(post(&gateway, "after"), (200, "ok".into()));
    let arrived = wait_all(&backend, &["before".to_owned(), "after".to_owned()], WAIT * 2);
    assert_eq!(arrived, ["before", "after"], "the late message is not delivered");
    let sample = r#"hookgate_spool_discarded_total{hook="alerts",reason="stored_after_refusal"}"#;
    assert_eq!(gateway.metric(sample), Some(1.0), "counted once");
    let line = gateway.wait_for_log("discarded: the store took this message after its request was answered 503");
    assert!(line.contains("reason=stored_after_refusal") && line.contains("hook=alerts"), "{line}");
}

/// With the NATS engine too, a reload that moves a spooled hook to a backend of another kind
/// sends its stored messages there, rendered anew (contract section 17).
#[test]
fn stored_messages_follow_their_hook_to_a_log_backend() {
    let node = Nats::start();
    let backend = RecordingBackend::start();
    backend.stop();
    let gateway = GatewayProcess::start(&rules(std::slice::from_ref(&node), 1, &backend.url()));
    for text in ["m0", "m1", "m2"] {
        assert_eq!(post(&gateway, text), (200, "ok".into()));
    }
    gateway.wait_for_log("outcome=retry");
    let moved = rules(std::slice::from_ref(&node), 1, &backend.url())
        .replace("backend = \"chat\"", "backend = \"console\"")
        .replace("[backends.chat]", "[backends.console]\nkind = \"log\"\n\n[backends.chat]");
    gateway.write_rules(&moved);
    gateway.signal("HUP");
    let lines = gateway.wait_for_stdout(3);
    assert_eq!(lines, [r#"{"text":"m0"}"#, r#"{"text":"m1"}"#, r#"{"text":"m2"}"#]);
    assert!(gateway.wait_for_log("moved_from=chat").contains("outcome=delivered"));
}

/// The Web API's message map in a JetStream key-value bucket (docs/webapi.md): a message posted
/// through one instance is updated and deleted through another, and two instances minting at
/// once never hand out the same `ts`.
#[test]
fn the_message_map_is_shared_by_instances() {
    let nats = Nats::start();
    let rules = format!(
        r#"
[spool]
engine = "nats"
nats_urls = [{:?}]

[backends.console]
kind = "log"

[[hooks]]
name = "bot"
bot_token = "xoxb-shared"
backend = "console"
rate = 0
"#,
        nats.url()
    );
    let (first, second) = (GatewayProcess::start(&rules), GatewayProcess::start(&rules));
    let call = |gateway: &GatewayProcess, method: &str, body: serde_json::Value| -> serde_json::Value {
        let headers = [("Authorization", "Bearer xoxb-shared"), ("Content-Type", "application/json")];
        let response =
            gateway.connect().request("POST", &format!("/api/{method}"), &headers, body.to_string().as_bytes());
        serde_json::from_slice(&response.body).unwrap()
    };
    let posted = call(&first, "chat.postMessage", serde_json::json!({"channel": "ops", "text": "on the first"}));
    let ts = posted["ts"].as_str().unwrap().to_owned();
    let updated =
        call(&second, "chat.update", serde_json::json!({"channel": "ops", "ts": ts, "text": "by the second"}));
    assert_eq!(updated["ok"], true, "{updated}");
    let deleted = call(&second, "chat.delete", serde_json::json!({"channel": "ops", "ts": ts}));
    assert_eq!(deleted["ok"], true, "{deleted}");
    let again = call(&first, "chat.update", serde_json::json!({"channel": "ops", "ts": ts, "text": "x"}));
    assert_eq!(again["error"], "message_not_found", "{again}");
    let second_lines = second.wait_for_stdout(2);
    assert!(second_lines[0].starts_with(&format!(r#"{{"op":"update","ts":"{ts}""#)), "{second_lines:#?}");
    assert!(second_lines[1].starts_with(&format!(r#"{{"op":"delete","ts":"{ts}""#)), "{second_lines:#?}");

    // Both instances minting at once, 2 x 4 threads x 10 posts: every ts distinct.
    let minted: Vec<String> = std::thread::scope(|scope| {
        let tasks: Vec<_> = [&first, &second, &first, &second, &first, &second, &first, &second]
            .into_iter()
            .map(|gateway| {
                scope.spawn(move || {
                    (0..10)
                        .map(|n| {
                            let answer = call(
                                gateway,
                                "chat.postMessage",
                                serde_json::json!({"channel": "ops", "text": n.to_string()}),
                            );
                            answer["ts"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        tasks.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let distinct: std::collections::HashSet<&String> = minted.iter().collect();
    assert_eq!((minted.len(), distinct.len()), (80, 80));
}

/// Web API calls on a spooled hook with the NATS engine (docs/webapi.md, "Delivery"): stored in
/// the stream, applied by whichever instance delivers, in the hook's order.
#[test]
fn spooled_web_api_calls_are_applied_in_order_from_the_stream() {
    let nats = Nats::start();
    let rules = format!(
        r#"
[spool]
engine = "nats"
nats_urls = [{:?}]
retry_initial = "100ms"
retry_max = "400ms"

[backends.console]
kind = "log"

[[hooks]]
name = "bot"
bot_token = "xoxb-spooled"
backend = "console"
delivery = "spool"
rate = 0
"#,
        nats.url()
    );
    let gateway = GatewayProcess::start(&rules);
    let call = |method: &str, body: serde_json::Value| -> serde_json::Value {
        let headers = [("Authorization", "Bearer xoxb-spooled"), ("Content-Type", "application/json")];
        let response =
            gateway.connect().request("POST", &format!("/api/{method}"), &headers, body.to_string().as_bytes());
        let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(answer["ok"], true, "{method}: {answer}");
        answer
    };
    let ts = call("chat.postMessage", serde_json::json!({"channel": "ops", "text": "first"}))["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    // The update may come before or after the post is delivered: either way it applies after it.
    call("chat.update", serde_json::json!({"channel": "ops", "ts": ts, "text": "second"}));
    let lines = gateway.wait_for_stdout(2);
    let ops: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["op"].as_str().unwrap().to_owned(), v["payload"]["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(ops, [("post".to_owned(), "first".to_owned()), ("update".to_owned(), "second".to_owned())]);
    call("chat.delete", serde_json::json!({"channel": "ops", "ts": ts}));
    let lines = gateway.wait_for_stdout(3);
    assert!(lines[2].starts_with(&format!(r#"{{"op":"delete","ts":"{ts}""#)), "{lines:#?}");
}
