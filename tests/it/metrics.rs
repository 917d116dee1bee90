//! Metrics on the admin listener: exact counter values after a known mix of requests, Prometheus
//! lint with `promtool check metrics`, and a real Prometheus server scraping it.

use crate::common;

use common::{GatewayProcess, RecordingBackend};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JSON: Option<&str> = Some("application/json");

fn rules(backend_url: &str, gateway: &str) -> String {
    format!(
        r#"
[gateway]
{gateway}

[backends.chat]
kind = "mattermost"
url = "{backend_url}"

[backends.console]
kind = "log"

[[hooks]]
name = "ci"
key = "ci-secret-key"
backend = "chat"
backend_key = "mmci"

[[hooks]]
name = "locked"
key = "locked-secret-key"
backend = "chat"
backend_key = "mmlocked"
channel = "deploys"

[hooks.overrides]
username = "ignore"
channel = "reject"

[[hooks]]
name = "demo"
key = "demo-secret-key"
backend = "console"
"#
    )
}

/// Sends the mix whose counts `known_mix_gives_exact_counters` asserts.
fn drive_mix(gateway: &GatewayProcess, backend: &RecordingBackend) {
    let ok = |path: &str, body: &str| gateway.post(path, JSON, body.as_bytes()).assert(200, "text/plain", "ok");
    ok("/hooks/ci-secret-key", r#"{"text":"one"}"#);
    ok("/hooks/ci-secret-key", r#"{"text":"two","username":"jenkins"}"#);
    ok("/hooks/ci-secret-key", r#"{"text":"three","thread_ts":"1.2","blocks":[{"type":"actions"}]}"#);
    ok("/hooks/locked-secret-key", r#"{"text":"four","username":"someone"}"#);
    ok("/hooks/demo-secret-key", r#"{"text":"five"}"#);
    gateway.post("/hooks/ci-secret-key", JSON, b"{broken").assert(400, "text/plain", "invalid_payload");
    gateway.post("/hooks/ci-secret-key", JSON, br#"{"text":""}"#).assert(400, "text/plain", "no_text");
    gateway.post("/hooks/locked-secret-key", JSON, br#"{"text":"x","channel":"general"}"#).assert(
        403,
        "text/plain",
        "action_prohibited",
    );
    gateway.post("/hooks/not-a-key", JSON, br#"{"text":"x"}"#).assert(404, "text/plain", "no_service");
    gateway.post("/services/T/B/nope", JSON, br#"{"text":"x"}"#).assert(404, "text/plain", "no_service");
    gateway.connect().request("GET", "/hooks/ci-secret-key", &[], b"").assert(405, "text/plain", "invalid_method");
    let big = vec![b'x'; 300_001];
    gateway.post("/hooks/demo-secret-key", JSON, &big).assert(413, "text/plain", "request_too_large");
    backend.set_status(500);
    gateway.post("/hooks/ci-secret-key", JSON, br#"{"text":"six"}"#).assert(502, "text/plain", "backend_error");
    backend.set_status(200);
}

#[test]
fn known_mix_gives_exact_counters() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), ""));
    drive_mix(&gateway, &backend);
    let expected: &[(&str, f64)] = &[
        (r#"hookgate_requests_total{code="200",hook="ci"}"#, 3.0),
        (r#"hookgate_requests_total{code="400",hook="ci"}"#, 2.0),
        (r#"hookgate_requests_total{code="405",hook="unknown"}"#, 1.0),
        (r#"hookgate_requests_total{code="502",hook="ci"}"#, 1.0),
        (r#"hookgate_requests_total{code="200",hook="locked"}"#, 1.0),
        (r#"hookgate_requests_total{code="403",hook="locked"}"#, 1.0),
        (r#"hookgate_requests_total{code="200",hook="demo"}"#, 1.0),
        (r#"hookgate_requests_total{code="413",hook="demo"}"#, 1.0),
        (r#"hookgate_requests_total{code="404",hook="unknown"}"#, 2.0),
        (r#"hookgate_rejections_total{hook="ci",reason="invalid_payload"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="ci",reason="no_text"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="ci",reason="backend_error"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="locked",reason="policy"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="demo",reason="too_large"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="unknown",reason="unknown_hook"}"#, 2.0),
        (r#"hookgate_rejections_total{hook="unknown",reason="invalid_method"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="ci",reason="policy"}"#, 0.0),
        (r#"hookgate_overrides_total{action="applied",field="username",hook="ci"}"#, 1.0),
        (r#"hookgate_overrides_total{action="ignored",field="username",hook="locked"}"#, 1.0),
        (r#"hookgate_overrides_total{action="rejected",field="channel",hook="locked"}"#, 1.0),
        (r#"hookgate_overrides_total{action="applied",field="channel",hook="locked"}"#, 0.0),
        (r#"hookgate_upstream_requests_total{backend="chat",code="200"}"#, 4.0),
        (r#"hookgate_upstream_requests_total{backend="chat",code="500"}"#, 1.0),
        (r#"hookgate_upstream_duration_seconds_count{backend="chat"}"#, 5.0),
        (r#"hookgate_dropped_fields_total{field="thread_ts"}"#, 1.0),
        (r#"hookgate_dropped_fields_total{field="blocks_actions"}"#, 1.0),
        (r#"hookgate_stage_duration_seconds_count{stage="total"}"#, 13.0),
        (r#"hookgate_stage_duration_seconds_count{stage="upstream"}"#, 6.0),
        (r#"hookgate_stage_duration_seconds_count{stage="decode"}"#, 9.0),
        (r#"hookgate_stage_duration_seconds_count{stage="translate"}"#, 8.0),
        (r#"hookgate_inflight_requests"#, 0.0),
        (r#"hookgate_hooks"#, 3.0),
        (r#"hookgate_rules_reloads_total{result="ok"}"#, 0.0),
        (r#"hookgate_build_info{version=""#, 1.0),
    ];
    for (sample, want) in expected {
        let sample = sample.replace(r#"version=""#, &format!(r#"version="{}"}}"#, env!("CARGO_PKG_VERSION")));
        assert_eq!(gateway.metric(&sample), Some(*want), "{sample}");
    }
    let (_, text) = gateway.admin_get("/metrics");
    for key in ["ci-secret-key", "locked-secret-key", "demo-secret-key", "not-a-key", "T/B/nope"] {
        assert!(!text.contains(key), "a key appears on /metrics");
    }
}

#[test]
fn per_hook_metrics_can_collapse_to_all() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), "per_hook_metrics = false"));
    gateway.post("/hooks/ci-secret-key", JSON, br#"{"text":"a"}"#).assert(200, "text/plain", "ok");
    gateway.post("/hooks/demo-secret-key", JSON, br#"{"text":"b"}"#).assert(200, "text/plain", "ok");
    gateway.post("/hooks/nope", JSON, br#"{"text":"c"}"#).assert(404, "text/plain", "no_service");
    assert_eq!(gateway.metric(r#"hookgate_requests_total{code="200",hook="all"}"#), Some(2.0));
    assert_eq!(gateway.metric(r#"hookgate_requests_total{code="404",hook="unknown"}"#), Some(1.0));
    let (_, text) = gateway.admin_get("/metrics");
    assert!(!text.contains(r#"hook="ci""#) && !text.contains(r#"hook="demo""#));
}

#[test]
fn admin_endpoints() {
    let backend = RecordingBackend::start();
    // A spooled hook too, so the spool's series exist for the dashboard's panels.
    let spool = tempfile::tempdir().unwrap();
    let rules = format!(
        "{}\n[spool]\npath = \"{}\"\n\n[[hooks]]\nname = \"spooled\"\nkey = \"spooled-key\"\nbackend = \"chat\"\n\
         backend_key = \"mmspooled\"\ndelivery = \"spool\"\n",
        rules(&backend.url(), ""),
        spool.path().display()
    );
    let gateway = GatewayProcess::start(&rules);
    let deadline = std::time::Instant::now() + common::WAIT;
    while gateway.metric(r#"hookgate_spool_messages{hook="spooled",state="pending"}"#).is_none() {
        assert!(std::time::Instant::now() < deadline, "the spool's gauges never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A Web API call without a token, so the API's series exist too.
    let call = common::Conn::open(gateway.addr).request("POST", "/api/auth.test", &[], b"");
    assert_eq!(call.text(), r#"{"ok":false,"error":"not_authed"}"#);
    assert_eq!(gateway.admin_get("/healthz"), (200, "ok\n".into()));
    assert_eq!(gateway.admin_get("/readyz"), (200, "ready\n".into()));
    assert_eq!(gateway.admin_get("/nope").0, 404);
    let post = common::Conn::open(gateway.admin).request("POST", "/metrics", &[], b"x");
    assert_eq!(post.status, 405);
    let (status, dashboard) = gateway.admin_get("/dashboard.json");
    assert_eq!(status, 200);
    // Every metric the dashboard queries exists on /metrics.
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let (_, metrics) = gateway.admin_get("/metrics");
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "panel {} has a description",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("hookgate_"))
            {
                assert!(metrics.contains(&format!("\n{name}")), "dashboard queries {name}, which /metrics lacks");
                queried += 1;
            }
        }
    }
    assert!(queried >= 8);
}

#[test]
fn the_admin_listener_stays_on_loopback() {
    let backend = RecordingBackend::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.toml"), rules(&backend.url(), "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args([
            "serve",
            "--rules",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_listen 0.0.0.0:0 is not a loopback address"));
}

/// `promtool` from Debian's `prometheus` package, which `make test` installs.
fn tool(name: &str) -> String {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{name} is not installed: `make test` installs Debian's prometheus package");
    path
}

#[test]
fn promtool_finds_no_problems() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), ""));
    drive_mix(&gateway, &backend);
    let (_, text) = gateway.admin_get("/metrics");
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "promtool: {said}");
    assert!(said.trim().is_empty(), "promtool printed: {said}");
}

/// A Prometheus server on loopback, stopped when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hookgate\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus { child, addr, _dir: dir }
    }

    /// The first sample's value of an instant query, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let path =
            format!("/api/v1/query?query={}", form_urlencoded::byte_serialize(promql.as_bytes()).collect::<String>());
        let mut conn = std::net::TcpStream::connect(self.addr).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(conn, "GET {path} HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n").ok()?;
        let mut raw = String::new();
        std::io::Read::read_to_string(&mut conn, &mut raw).ok()?;
        let body = raw.split_once("\r\n\r\n")?.1;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

#[test]
fn a_real_prometheus_scrapes_the_admin_listener() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), ""));
    for i in 0..7 {
        gateway.post("/hooks/ci-secret-key", JSON, format!(r#"{{"text":"{i}"}}"#).as_bytes()).assert(
            200,
            "text/plain",
            "ok",
        );
    }
    let prometheus = Prometheus::start(gateway.admin);
    // The first scrape can take several seconds: poll, with a bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = r#"hookgate_requests_total{hook="ci",code="200"}"#;
    let value = loop {
        if let Some(v) = prometheus.query(query) {
            break v;
        }
        assert!(Instant::now() < deadline, "Prometheus never returned {query}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(value, 7.0);
    assert_eq!(prometheus.query(r#"up{job="hookgate"}"#), Some(1.0));
}
