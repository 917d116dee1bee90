//! Reliability on loopback, each test bounded in time: rate limits, backend faults, reload under
//! load, slow and excess clients.

use crate::common;

use common::{GatewayProcess, RecordingBackend, BACKEND_RETRY_AFTER};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const JSON: Option<&str> = Some("application/json");

fn rules(backend_url: &str, gateway: &str, hooks: &str) -> String {
    format!(
        r#"
[gateway]
{gateway}

[backends.chat]
kind = "mattermost"
url = "{backend_url}"
timeout_ms = 2000
connect_timeout_ms = 300

{hooks}
"#
    )
}

fn hook(name: &str, extra: &str) -> String {
    format!(
        "[[hooks]]\nname = \"{name}\"\nkey = \"{name}-key\"\nbackend = \"chat\"\nbackend_key = \"mm{name}\"\n{extra}\n"
    )
}

#[test]
fn a_thousand_requests_over_the_limit() {
    let backend = RecordingBackend::start();
    // One token in 1000 seconds after a burst of 40: the allowed number is exactly the burst.
    let hooks = hook("limited", "rate = 0.001\nburst = 40") + &hook("other", "rate = 0.001\nburst = 40");
    let gateway = GatewayProcess::start(&rules(&backend.url(), "", &hooks));
    let mut conn = gateway.connect();
    let mut other = gateway.connect();
    let (mut ok, mut limited) = (0, 0);
    for i in 0..1000 {
        let response = conn.post("/hooks/limited-key", JSON, format!(r#"{{"text":"{i}"}}"#).as_bytes());
        match response.status {
            200 => ok += 1,
            429 => {
                response.assert(429, "text/plain", "rate_limited");
                let wait: u64 = response.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=1000).contains(&wait), "Retry-After {wait}");
                limited += 1;
            }
            status => panic!("request {i}: {status}"),
        }
        if i % 40 == 0 {
            other.post("/hooks/other-key", JSON, br#"{"text":"unaffected"}"#).assert(200, "text/plain", "ok");
        }
    }
    assert_eq!((ok, limited), (40, 960));
    let forwarded: Vec<_> = backend.received().into_iter().filter(|r| r.path == "/hooks/mmlimited").collect();
    assert_eq!(forwarded.len(), 40, "exactly the allowed number forwarded");
    assert_eq!(backend.received().iter().filter(|r| r.path == "/hooks/mmother").count(), 25);
    assert_eq!(gateway.metric(r#"hookgate_rejections_total{hook="limited",reason="rate_limited"}"#), Some(960.0));
}

#[test]
fn backend_429_passes_its_retry_after() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), "", &hook("ci", "")));
    backend.set_status(429);
    let response = gateway.post("/hooks/ci-key", JSON, br#"{"text":"x"}"#);
    response.assert(429, "text/plain", "rate_limited");
    assert_eq!(response.header("retry-after"), Some(BACKEND_RETRY_AFTER));
}

#[test]
fn backend_killed_mid_run_and_restarted() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), "", &hook("ci", "rate = 0")));
    let mut answered_ok = Vec::new();
    let mut statuses = Vec::new();
    let started = Instant::now();
    for i in 0..300 {
        if i == 100 {
            backend.stop();
        }
        if i == 200 {
            backend.restart();
        }
        let text = format!("message {i}");
        let body = serde_json::json!({ "text": text }).to_string();
        // A fresh connection each time: a client never waits on a dead one.
        let response = gateway.post("/hooks/ci-key", JSON, body.as_bytes());
        match response.status {
            200 => answered_ok.push(text),
            502 | 503 => {}
            status => panic!("request {i}: unexpected {status}"),
        }
        statuses.push(response.status);
    }
    assert!(started.elapsed() < Duration::from_secs(60), "no request hung");
    let delivered: HashSet<String> = backend
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    for text in &answered_ok {
        assert!(delivered.contains(text), "{text} was answered 200 but never delivered");
    }
    assert!(statuses[..100].iter().all(|s| *s == 200), "before the kill: {:?}", &statuses[..100]);
    assert!(statuses[100..200].iter().all(|s| *s == 503), "while down: {:?}", &statuses[100..200]);
    assert!(statuses[210..].iter().all(|s| *s == 200), "recovered without a restart: {:?}", &statuses[200..]);
}

#[test]
fn reload_under_a_steady_stream_of_requests() {
    let backend = RecordingBackend::start();
    let dir_rules =
        |username: &str| rules(&backend.url(), "", &hook("ci", &format!("rate = 0\nusername = \"{username}\"")));
    let gateway = GatewayProcess::start(&dir_rules("before"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop, failures, sent) = (gateway.addr, stop.clone(), failures.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut conn = common::Conn::open(addr);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
                    let response = conn.post("/hooks/ci-key", JSON, br#"{"text":"steady"}"#);
                    if response.status != 200 || response.body != b"ok" {
                        failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    if sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 4000 {
                        break;
                    }
                }
            })
        })
        .collect();
    let wait_for_sent = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "requests stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for_sent(500);
    // A broken rule set is refused and the old one keeps serving.
    gateway.write_rules("[[hooks]]\nname = \"broken\"\n");
    gateway.signal("HUP");
    let line = gateway.wait_for_log("rules.toml:1:");
    assert!(line.contains("missing field"), "{line}");
    wait_for_sent(1500);
    gateway.write_rules(&dir_rules("after"));
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    let reloaded_at = backend.received().len();
    wait_for_sent(3000);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failures.load(std::sync::atomic::Ordering::SeqCst), 0, "no request failed or was dropped");
    let total = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(total >= 3000, "{total}");
    let received = backend.received();
    // Requests finish on the rule set they started with, so allow the few in flight at the swap.
    let late = &received[reloaded_at + 8..];
    assert!(late.len() > 1000);
    for r in late {
        assert_eq!(r.body_text(), r#"{"text":"steady","username":"after"}"#);
    }
    assert!(received[..100].iter().all(|r| r.body_text() == r#"{"text":"steady","username":"before"}"#));
    assert_eq!(gateway.metric(r#"hookgate_rules_reloads_total{result="ok"}"#), Some(1.0));
    assert_eq!(gateway.metric(r#"hookgate_rules_reloads_total{result="error"}"#), Some(1.0));
}

#[test]
fn a_client_stalling_mid_body_is_cut_off() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(
        &backend.url(),
        "client_body_timeout_ms = 300\nclient_header_timeout_ms = 400",
        &hook("ci", ""),
    ));
    let mut stalled = gateway.connect();
    stalled.send(b"POST /hooks/ci-key HTTP/1.1\r\nHost: g\r\nContent-Length: 100\r\n\r\n{\"text\":");
    let mut slow_head = gateway.connect();
    slow_head.send(b"POST /hooks/ci-key HTTP/1.1\r\nHost: g\r\n");
    // Others are served meanwhile.
    gateway.post("/hooks/ci-key", JSON, br#"{"text":"fine"}"#).assert(200, "text/plain", "ok");
    let started = Instant::now();
    assert!(stalled.read_response().is_none(), "the stalled client gets no answer, only a closed connection");
    assert!(slow_head.read_response().is_none());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(backend.received().len(), 1);
}

#[test]
fn connections_over_the_limit_are_refused_clearly() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), "max_connections = 3", &hook("ci", "")));
    let mut held: Vec<_> = (0..3).map(|_| gateway.connect()).collect();
    for conn in &mut held {
        conn.post("/hooks/ci-key", JSON, br#"{"text":"held"}"#).assert(200, "text/plain", "ok");
    }
    let refused = gateway.post("/hooks/ci-key", JSON, br#"{"text":"one too many"}"#);
    refused.assert(503, "text/plain", "overloaded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    drop(held.pop());
    // The freed place is taken by the next client.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = gateway.post("/hooks/ci-key", JSON, br#"{"text":"room again"}"#);
        if response.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(backend.received().len(), 4);
}

/// Contract section 14: every answer, `overloaded` included, is in the configured dialect.
#[test]
fn the_overloaded_answer_speaks_the_configured_dialect() {
    let backend = RecordingBackend::start();
    let gateway =
        GatewayProcess::start(&rules(&backend.url(), "max_connections = 1\nerrors = \"mattermost\"", &hook("ci", "")));
    let mut held = gateway.connect();
    held.post("/hooks/ci-key", JSON, br#"{"text":"held"}"#).assert(200, "text/plain", "ok");
    let refused = gateway.post("/hooks/ci-key", JSON, br#"{"text":"one too many"}"#);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("content-type"), Some("application/json"), "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
    assert_eq!(body["id"], "hookgate.overloaded", "{body}");
    assert_eq!(body["status_code"], 503, "{body}");
    assert_eq!(body["request_id"].as_str(), refused.header("x-request-id"), "{body}");
}

#[test]
fn an_idle_keep_alive_connection_gets_the_rules_of_its_next_request() {
    let backend = RecordingBackend::start();
    let with = |username: &str| rules(&backend.url(), "", &hook("ci", &format!("rate = 0\nusername = \"{username}\"")));
    let gateway = GatewayProcess::start(&with("before"));
    let mut conn = gateway.connect();
    conn.post("/hooks/ci-key", JSON, br#"{"text":"one"}"#).assert(200, "text/plain", "ok");
    // The connection now waits for its next request while the rules change.
    gateway.write_rules(&with("after"));
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    conn.post("/hooks/ci-key", JSON, br#"{"text":"two"}"#).assert(200, "text/plain", "ok");
    let bodies: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(bodies, vec![r#"{"text":"one","username":"before"}"#, r#"{"text":"two","username":"after"}"#]);
}
