//! TLS on both sides (contract section 10): the HTTPS listener with real Slack clients, old
//! protocol versions refused, backends over TLS (trusted, untrusted, wrong name, unverified,
//! expired, reused), certificate problems at `check`, and a certificate rotated by SIGHUP while
//! requests keep coming. Every certificate is made by the test; everything runs on loopback.

use crate::common;

use common::tls::{self, TestCa};
use common::{GatewayProcess, RecordingBackend, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Rules serving HTTPS on a free port with `cert.pem` and `key.pem`, in front of `backend_url`
/// (with `backend_extra` keys).
fn https_rules(backend_url: &str, backend_extra: &str) -> String {
    format!(
        r#"
[gateway]
listen_tls = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"

[backends.chat]
kind = "mattermost"
url = "{backend_url}"
{backend_extra}

[[hooks]]
name = "slack"
key = "T000/B000/XXXX"
backend = "chat"
backend_key = "mmslack"
markup = "slack"
rate = 0
"#
    )
}

/// A gateway serving HTTPS with a leaf of `ca`; it trusts `ca` for TLS backends too.
fn https_gateway(ca: &TestCa, backend: &RecordingBackend) -> (GatewayProcess, tls::Leaf) {
    let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
    let extra = if backend.url().starts_with("https://") { "ca_file = \"ca.pem\"" } else { "" };
    let gateway = GatewayProcess::start_with_files(
        &https_rules(&backend.url(), extra),
        &[("cert.pem", &leaf.chain), ("key.pem", &leaf.key), ("ca.pem", &ca.pem)],
        &[],
    );
    (gateway, leaf)
}

#[test]
fn https_listener_serves_http_1_1_beside_the_plain_one() {
    let ca = TestCa::new("hookgate test CA");
    let backend = RecordingBackend::start();
    let (gateway, leaf) = https_gateway(&ca, &backend);
    let tls_addr = gateway.tls_addr.expect("listen_tls is logged");
    let client = tls::client_config(&ca.pem);

    let got = tls::post(&client, tls_addr, "127.0.0.1", "/services/T000/B000/XXXX", r#"{"text":"*deploy* done"}"#);
    assert_eq!((got.status, got.body.as_str()), (200, "ok"));
    assert_eq!(got.alpn.as_deref(), Some(&b"http/1.1"[..]), "h2 is offered by the client, http/1.1 chosen");
    assert_eq!(got.leaf, leaf.der);
    // The plain listener serves the same hook.
    gateway.post("/hooks/T000/B000/XXXX", Some("application/json"), br#"{"text":"plain"}"#).assert(
        200,
        "text/plain",
        "ok",
    );
    let bodies: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(bodies, [r#"{"text":"**deploy** done"}"#, r#"{"text":"plain"}"#]);

    // TLS 1.2 alone is taken too.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(ca_der(&ca))).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let got = tls::post(&Arc::new(tls12), tls_addr, "127.0.0.1", "/hooks/T000/B000/XXXX", r#"{"text":"1.2"}"#);
    assert_eq!((got.status, got.version), (200, Some(rustls::ProtocolVersion::TLSv1_2)));

    let expiry = gateway.metric(r#"hookgate_tls_cert_expiry_seconds{certificate="cert.pem",listener="127.0.0.1:0"}"#);
    assert_eq!(expiry, Some(leaf.not_after as f64));
}

fn ca_der(ca: &TestCa) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap().to_vec()
}

/// A ClientHello offering TLS 1.0 or 1.1 only. It lists signature algorithms the server's
/// certificate can sign with, so the version is the one thing it lacks.
fn old_client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![3, minor];
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0, 4, 0xc0, 0x2b, 0xc0, 0x09]); // ECDHE-ECDSA with AES-128-GCM and AES-128-CBC
    body.extend([1, 0]); // null compression
                         // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    let extension = [0x00, 0x0d, 0, 8, 0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01];
    body.extend([0, extension.len() as u8]);
    body.extend(extension);
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend(body);
    let mut record = vec![0x16, 3, 1, 0, handshake.len() as u8];
    record.extend(handshake);
    record
}

#[test]
fn tls_1_0_and_1_1_are_refused_with_a_protocol_version_alert() {
    let ca = TestCa::new("hookgate test CA");
    let backend = RecordingBackend::start();
    let (gateway, _) = https_gateway(&ca, &backend);
    for minor in [1, 2] {
        let mut conn = TcpStream::connect(gateway.tls_addr.unwrap()).unwrap();
        conn.set_read_timeout(Some(WAIT)).unwrap();
        conn.write_all(&old_client_hello(minor)).unwrap();
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        // An alert record: fatal (2), protocol_version (70); then the connection is closed.
        assert!(answer.len() >= 7, "TLS 1.{}: answer {answer:?}", minor - 1);
        assert_eq!((answer[0], answer[5], answer[6]), (0x15, 2, 70), "TLS 1.{}: answer {answer:?}", minor - 1);
    }
    assert!(backend.received().is_empty());
}

/// Runs a client program, asserting it succeeded; returns its stdout lines.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (make test installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{program} {args:?}: {}\nstdout: {stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(str::to_owned).collect()
}

/// The issue's "done": clients that changed only the host of their https:// URL, and a backend
/// that speaks nothing but TLS.
#[test]
fn slack_clients_post_over_https_by_changing_only_the_url() {
    let ca = TestCa::new("hookgate test CA");
    let backend_leaf = ca.leaf(&["127.0.0.1"]);
    let backend = RecordingBackend::start_tls(&backend_leaf.chain, &backend_leaf.key);
    let (gateway, _) = https_gateway(&ca, &backend);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let ca_file = ca_file.to_str().unwrap();
    let url = format!("https://127.0.0.1:{}/services/T000/B000/XXXX", gateway.tls_addr.unwrap().port());
    let forwarded = |from: usize| -> Vec<String> { backend.received()[from..].iter().map(|r| r.body_text()).collect() };

    let python = format!("{ROOT}/.venv/bin/python");
    let script = format!("{ROOT}/tests/clients/slack_sdk_client.py");
    let results = run(&python, &[&script, "send", &url], &[("HOOKGATE_CA", ca_file)]);
    let statuses: Vec<String> = results
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{} {} {}", v["call"].as_str().unwrap(), v["status"], v["body"].as_str().unwrap())
        })
        .collect();
    assert_eq!(statuses, ["text 200 ok", "attachments 200 ok", "blocks 200 ok", "send_dict 200 ok"]);
    assert_eq!(
        forwarded(0),
        [
            r#"{"text":"Deploy finished **now** :tada:"}"#,
            r##"{"text":"Build","attachments":[{"color":"#36a64f","title":"Build 42","text":"All tests passed","fields":[{"title":"Env","value":"prod","short":true}]}]}"##,
            r#"{"text":"**hello** from blocks"}"#,
            r##"{"text":"hi","channel":"#builds","username":"ci-bot","icon_emoji":":robot_face:"}"##,
        ]
    );

    let script = format!("{ROOT}/tests/clients/slack_webhook_client.js");
    let results = run("node", &[&script, &url], &[("NODE_EXTRA_CA_CERTS", ca_file)]);
    assert_eq!(
        results,
        [
            r#"{"call":"text","result":{"text":"ok"}}"#,
            r#"{"call":"attachments","result":{"text":"ok"}}"#,
            r#"{"call":"blocks","result":{"text":"ok"}}"#,
        ]
    );
    assert_eq!(
        forwarded(4),
        [
            r#"{"text":"plain string message"}"#,
            r#"{"text":"Hello from @slack/webhook","attachments":[{"color":"good","title":"Attachment","text":"att _text_","fields":[{"title":"k","value":"v","short":true}]}]}"#,
            r#####"{"text":"#### Release 2.3\n\n**Shipped** to prod"}"#####,
        ]
    );

    let out =
        run("curl", &["-sS", "--cacert", ca_file, "--data-urlencode", r#"payload={"text":"from *curl*"}"#, &url], &[]);
    assert_eq!(out, ["ok"]);
    assert_eq!(forwarded(7), [r#"{"text":"from **curl**"}"#]);
    assert!(backend.received().iter().all(|r| r.path == "/hooks/mmslack"));
    assert_eq!(gateway.metric(r#"hookgate_upstream_requests_total{backend="chat",code="200"}"#), Some(8.0));
}

/// The backends of `tls_backends`: each hook posts to one of them.
fn backend_rules(trusted: &str, wrong_name: &str, expired: &str) -> String {
    let mut rules = String::new();
    let backends = [
        ("trusted", trusted, "ca_file = \"ca.pem\""),
        ("system_roots", trusted, ""),
        ("wrong_name", wrong_name, "ca_file = \"ca.pem\""),
        ("named", wrong_name, "ca_file = \"ca.pem\"\ntls_server_name = \"chat.internal\""),
        ("unverified", trusted, "tls_verify = false"),
        ("expired", expired, "ca_file = \"ca.pem\""),
    ];
    for (name, url, extra) in backends {
        rules += &format!(
            "[backends.{name}]\nkind = \"mattermost\"\nurl = \"{url}\"\nconnect_timeout_ms = 2000\n{extra}\n\n\
             [[hooks]]\nname = \"{name}\"\nkey = \"key-{name}\"\nbackend = \"{name}\"\nbackend_key = \"mm{name}\"\nrate = 0\n\n"
        );
    }
    rules
}

#[test]
fn tls_backends_trusted_untrusted_named_unverified_expired_and_reused() {
    let ca = TestCa::new("hookgate test CA");
    let trusted_leaf = ca.leaf(&["127.0.0.1"]);
    let named_leaf = ca.leaf(&["chat.internal"]);
    let expired_leaf = ca.leaf_between(&["127.0.0.1"], -30, -1);
    let trusted = RecordingBackend::start_tls(&trusted_leaf.chain, &trusted_leaf.key);
    let named = RecordingBackend::start_tls(&named_leaf.chain, &named_leaf.key);
    let expired = RecordingBackend::start_tls(&expired_leaf.chain, &expired_leaf.key);
    let gateway = GatewayProcess::start_with_files(
        &backend_rules(&trusted.url(), &named.url(), &expired.url()),
        &[("ca.pem", &ca.pem)],
        &[],
    );
    gateway.wait_for_log("backend `unverified`: tls_verify = false accepts any certificate");
    let post = |hook: &str, text: &str| {
        gateway.post(
            &format!("/hooks/key-{hook}"),
            Some("application/json"),
            format!(r#"{{"text":"{text}"}}"#).as_bytes(),
        )
    };

    // Trusted through ca_file, five times over one kept-alive TLS connection.
    for i in 0..5 {
        post("trusted", &format!("trusted {i}")).assert(200, "text/plain", "ok");
    }
    assert_eq!(trusted.connections(), 1, "the TLS connection is reused");
    let paths: Vec<String> = trusted.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/hooks/mmtrusted".to_owned(); 5]);
    assert_eq!(trusted.received()[4].body_text(), r#"{"text":"trusted 4"}"#);

    // Not signed by anything the system trusts; a name the certificate is not for; expired.
    let failures = [("system_roots", "untrusted"), ("wrong_name", "name_mismatch"), ("expired", "expired")];
    for (hook, reason) in failures {
        post(hook, "refused").assert(503, "text/plain", "backend_unavailable");
        let line = gateway.wait_for_log(&format!("backend={hook} "));
        assert!(line.contains("TLS handshake with the backend failed"), "{line}");
        assert!(line.contains(&format!("reason={reason}")), "{line}");
        let sample = format!(r#"hookgate_upstream_requests_total{{backend="{hook}",code="tls_error"}}"#);
        assert_eq!(gateway.metric(&sample), Some(1.0), "{sample}");
        // The request's own line is written after its answer: wait for it too.
        gateway.wait_for_log(&format!("hook={hook} status=503"));
    }
    let request_lines: Vec<String> =
        gateway.stderr_lines().into_iter().filter(|l| l.contains(" upstream=tls_error ")).collect();
    assert_eq!(request_lines.len(), 3, "{request_lines:?}");
    // A failed handshake is not tried again: one TCP connection each.
    assert_eq!((trusted.connections(), named.connections(), expired.connections()), (2, 1, 1));

    // The same wrong-name backend, verified as the name it has; and one not verified at all.
    post("named", "by name").assert(200, "text/plain", "ok");
    post("unverified", "unverified").assert(200, "text/plain", "ok");
    assert_eq!(named.received().last().unwrap().body_text(), r#"{"text":"by name"}"#);
    assert_eq!(trusted.received().last().unwrap().body_text(), r#"{"text":"unverified"}"#);
    assert!(expired.received().is_empty() && named.received().len() == 1);
}

#[test]
fn check_reports_certificate_problems_with_file_and_line() {
    let ca = TestCa::new("hookgate test CA");
    let check = |leaf: &tls::Leaf| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), https_rules("http://127.0.0.1:9", "")).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &leaf.chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), &leaf.key).unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_hookgate")).arg("check").arg("--rules").arg(dir.path()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", dir.path().display()), "");
        (out.status.code(), text)
    };
    let (code, text) = check(&ca.leaf_between(&["127.0.0.1"], -30, -1));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("rules.toml:4: the certificate in"), "{text}");
    assert!(text.contains("cert.pem expired at"), "{text}");
    let (code, text) = check(&ca.leaf_between(&["127.0.0.1"], -30, 5));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("rules.toml:4: warning: the certificate in cert.pem expires at"), "{text}");
    assert!(text.contains("within 14 days"), "{text}");
}

#[test]
fn sighup_rotates_the_certificate_without_dropping_a_request() {
    let ca = TestCa::new("hookgate test CA");
    let backend = RecordingBackend::start();
    let (gateway, first) = https_gateway(&ca, &backend);
    let tls_addr = gateway.tls_addr.unwrap();
    let client = tls::client_config(&ca.pem);
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients, each a new TLS connection per request, as webhook senders are.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let body = format!(r#"{{"text":"client {c} message {}"}}"#, seen.len());
                    let got = tls::try_post(&client, tls_addr, "127.0.0.1", "/hooks/T000/B000/XXXX", &body)
                        .map(|e| (e.status, e.body, e.leaf));
                    seen.push(got.map_err(|e| e.to_string()));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let second = ca.leaf(&["127.0.0.1"]);
    std::fs::write(gateway.rules_dir().join("cert.pem"), &second.chain).unwrap();
    std::fs::write(gateway.rules_dir().join("key.pem"), &second.key).unwrap();
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let results: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();

    let failed: Vec<_> = results.iter().filter(|r| !matches!(r, Ok((200, body, _)) if body == "ok")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        results.len(),
        &failed[..failed.len().min(5)]
    );
    let with = |leaf: &tls::Leaf| results.iter().filter(|r| matches!(r, Ok((_, _, der)) if *der == leaf.der)).count();
    let (before, after) = (with(&first), with(&second));
    assert!(before > 0 && after > 0, "{before} handshakes with the first certificate, {after} with the second");
    assert_eq!(before + after, results.len());
    assert_eq!(backend.received().len(), results.len(), "every acknowledged request was forwarded");
    let expiry = gateway.metric(r#"hookgate_tls_cert_expiry_seconds{certificate="cert.pem",listener="127.0.0.1:0"}"#);
    assert_eq!(expiry, Some(second.not_after as f64));
    // A new connection gets the new certificate.
    let got = tls::post(&client, tls_addr, "127.0.0.1", "/hooks/T000/B000/XXXX", r#"{"text":"after"}"#);
    assert_eq!(got.leaf, second.der);
}

/// The Web API answers on the HTTPS listener too (docs/webapi.md): curl posts a message with a bot
/// token over TLS and gets its `ts`; the backend gets the canonical payload.
#[test]
fn the_web_api_answers_on_the_https_listener() {
    let ca = TestCa::new("hookgate test CA");
    let backend = RecordingBackend::start();
    let leaf = ca.leaf(&["127.0.0.1", "localhost"]);
    let store = tempfile::tempdir().unwrap();
    let rules = format!(
        "{}\n[spool]\npath = \"{}\"\n\n[[hooks]]\nname = \"bot\"\nbot_token = \"xoxb-tls\"\nbackend = \"chat\"\nbackend_key = \"mmbot\"\n",
        https_rules(&backend.url(), ""),
        store.path().display()
    );
    let gateway = GatewayProcess::start_with_files(&rules, &[("cert.pem", &leaf.chain), ("key.pem", &leaf.key)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let url = format!("https://127.0.0.1:{}/api/chat.postMessage", gateway.tls_addr.unwrap().port());
    let args =
        ["-sS", "--cacert", ca_file.to_str().unwrap(), "-H", "Authorization: Bearer xoxb-tls", "-d", "channel=ops"];
    let out = run("curl", &[&args[..], &["-d", "text=over *TLS*", &url]].concat(), &[]);
    let answer: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!((answer["ok"].as_bool(), answer["channel"].as_str()), (Some(true), Some("ops")), "{answer}");
    assert!(answer["ts"].as_str().is_some_and(|ts| ts.contains('.')), "{answer}");
    let received = backend.received();
    assert_eq!(received[0].body_text(), r#"{"text":"over *TLS*","channel":"ops"}"#);
    assert_eq!(received[0].path, "/hooks/mmbot");
}

/// `tls_certs` (docs/slack-hosts.md): the client's SNI name chooses the certificate, a client
/// without SNI gets the first; SIGHUP rotates one of them and drops one, and the expiry gauge has
/// one series per certificate served.
#[test]
fn sni_chooses_among_tls_certs_and_sighup_rotates_them() {
    let ca = TestCa::new("hookgate test CA");
    let backend = RecordingBackend::start();
    let (hooks, slack) = (ca.leaf(&["hooks.slack.com", "127.0.0.1"]), ca.leaf(&["slack.com"]));
    let other = ca.leaf(&["chat.example.test"]);
    let rules = |entries: &str| {
        https_rules(&backend.url(), "")
            .replace("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"", &format!("tls_certs = [\n{entries}]"))
    };
    let three =
        "  { cert = \"hooks.pem\", key = \"hooks.key\" },\n  { cert = \"slack.pem\", key = \"slack.key\" },\n  \
                 { cert = \"other.pem\", key = \"other.key\" },\n";
    let files = [
        ("hooks.pem", hooks.chain.as_str()),
        ("hooks.key", hooks.key.as_str()),
        ("slack.pem", slack.chain.as_str()),
        ("slack.key", slack.key.as_str()),
        ("other.pem", other.chain.as_str()),
        ("other.key", other.key.as_str()),
    ];
    let gateway = GatewayProcess::start_with_files(&rules(three), &files, &[]);
    let tls_addr = gateway.tls_addr.expect("listen_tls is logged");
    let client = tls::client_config(&ca.pem);
    let leaf_for = |name: &str| {
        let got = tls::post(&client, tls_addr, name, "/services/T000/B000/XXXX", r#"{"text":"hi"}"#);
        assert_eq!((got.status, got.body.as_str()), (200, "ok"), "{name}");
        got.leaf
    };
    assert_eq!(leaf_for("hooks.slack.com"), hooks.der);
    assert_eq!(leaf_for("slack.com"), slack.der);
    assert_eq!(leaf_for("chat.example.test"), other.der);
    // An IP address sends no SNI name: the first certificate.
    assert_eq!(leaf_for("127.0.0.1"), hooks.der);
    let expiry = |cert: &str| {
        gateway.metric(&format!(r#"hookgate_tls_cert_expiry_seconds{{certificate="{cert}",listener="127.0.0.1:0"}}"#))
    };
    assert_eq!(
        (expiry("hooks.pem"), expiry("slack.pem"), expiry("other.pem")),
        (Some(hooks.not_after as f64), Some(slack.not_after as f64), Some(other.not_after as f64))
    );

    // slack.com's certificate is renewed and the third one dropped.
    let renewed = ca.leaf_between(&["slack.com"], -1, 200);
    std::fs::write(gateway.rules_dir().join("slack.pem"), &renewed.chain).unwrap();
    std::fs::write(gateway.rules_dir().join("slack.key"), &renewed.key).unwrap();
    let two = "  { cert = \"hooks.pem\", key = \"hooks.key\" },\n  { cert = \"slack.pem\", key = \"slack.key\" },\n";
    std::fs::write(gateway.rules_dir().join("rules.toml"), rules(two)).unwrap();
    gateway.signal("HUP");
    gateway.wait_for_log("rules reloaded");
    assert_eq!(leaf_for("slack.com"), renewed.der);
    assert_eq!(leaf_for("hooks.slack.com"), hooks.der);
    let unknown = tls::try_post(&client, tls_addr, "chat.example.test", "/hooks/T000/B000/XXXX", "{}");
    assert!(unknown.is_err(), "a dropped certificate's name now gets the first, which the client refuses");
    assert_eq!((expiry("slack.pem"), expiry("other.pem")), (Some(renewed.not_after as f64), None));
}
