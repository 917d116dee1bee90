//! A battery of hostile inputs, each sent raw on its own connection: each gets its 4xx or a
//! closed connection, a well-formed request right after still succeeds, and no key ever shows in
//! the logs or on /metrics.

use crate::common;

use common::{GatewayProcess, RecordingBackend};
use std::io::Write;

const KEY: &str = "s3cr3t-hook-key-f00d";

#[derive(Debug, Clone, Copy)]
enum Want {
    /// This status and Slack error body.
    Code(u16, &'static str),
    /// The protocol is broken: a 4xx or a closed connection, never anything else.
    FourXxOrClosed,
    /// No answer at all: the connection is closed.
    Closed,
}

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw =
        format!("POST {path} HTTP/1.1\r\nHost: g\r\n{headers}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn json(body: &[u8]) -> Vec<u8> {
    post(&format!("/hooks/{KEY}"), "Content-Type: application/json\r\n", body)
}

fn raw(text: &str) -> Vec<u8> {
    text.replace("{KEY}", KEY).into_bytes()
}

fn cases() -> Vec<(&'static str, Vec<u8>, Want)> {
    use Want::*;
    let bad = Code(400, "invalid_payload");
    let deep = format!("{{\"text\":\"x\",\"props\":{{\"a\":{}{}}}}}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_form: String =
        form_urlencoded::byte_serialize(format!("{{\"text\":{}}}", "[".repeat(5_000)).as_bytes()).collect();
    let many_attachments = format!("{{\"attachments\":[{}]}}", vec!["{}"; 10_000].join(","));
    let many_fields: String = (0..10_000).map(|i| format!("f{i}=v&")).collect();
    let flood: String = (0..10_000).map(|i| format!("X-Flood-{i}: y\r\n")).collect();
    let long_header = format!("X-Long: {}\r\n", "a".repeat(1 << 20));
    let long_uri = format!("/hooks/{}", "k".repeat(100_000));
    let ten_mb = vec![b'a'; 10 << 20];
    let mut chunked_10mb = raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..160 {
        chunked_10mb.extend_from_slice(b"10000\r\n");
        chunked_10mb.extend_from_slice(&[b'a'; 0x10000]);
        chunked_10mb.extend_from_slice(b"\r\n");
    }
    chunked_10mb.extend_from_slice(b"0\r\n\r\n");
    let mut ten_mb_post = raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 10485760\r\n\r\n");
    ten_mb_post.extend_from_slice(&ten_mb[..65_536]);
    let mp = "Content-Type: multipart/form-data; boundary=B\r\n";
    vec![
        // Bodies that are not webhook JSON.
        ("invalid UTF-8 outside strings", json(b"{\"text\":\xff\xfe}"), bad),
        ("invalid UTF-8 as a member name with a bad value", json(b"{\"\xff\":1,\"text\":5}"), bad),
        ("NUL bytes", json(b"\0\0\0\0"), bad),
        ("NUL in a string of the wrong member type", json(b"{\"text\":\"a\0b\",\"type\":5}"), bad),
        ("10,000-deep nesting", json(deep.as_bytes()), bad),
        ("10,000-deep nesting in a form payload", post(&format!("/hooks/{KEY}"), "", format!("payload={deep_form}").as_bytes()), bad),
        ("duplicate keys, the last of the wrong type", json(br#"{"text":"a","text":5}"#), bad),
        ("duplicate keys, the last empty", json(br#"{"text":"a","TEXT":""}"#), Code(400, "no_text")),
        ("bad percent escapes", post(&format!("/hooks/{KEY}"), "Content-Type: application/x-www-form-urlencoded\r\n", b"payload=%ZZ%7B%"), bad),
        ("a form of 10,000 fields and no payload", post(&format!("/hooks/{KEY}"), "Content-Type: application/x-www-form-urlencoded\r\n", many_fields.as_bytes()), bad),
        ("10,000 attachments", json(many_attachments.as_bytes()), Code(400, "too_many_attachments")),
        ("attachments of the wrong type", json(br#"{"attachments":"all of them"}"#), bad),
        ("a number too large for anything", json(br#"{"text":1e99999}"#), bad),
        ("lone surrogates and a bad type", json(br#"{"text":"\ud800\udfff\ud800","type":"system_x"}"#), bad),
        ("a NUL escape in a member name", json(br#"{"te\u0000xt":"a"}"#), Code(400, "no_text")),
        ("a top-level array", json(b"[1,2,3]"), bad),
        ("null", json(b"null"), bad),
        ("an empty body", json(b""), bad),
        ("whitespace only", json(b" \r\n\t "), bad),
        ("a BOM then garbage", json(b"\xEF\xBB\xBFgarbage"), bad),
        ("text as an array", json(br#"{"text":["a"]}"#), bad),
        ("channel as a number", json(br#"{"text":"a","channel":5}"#), bad),
        ("props as an array", json(br#"{"text":"a","props":[]}"#), bad),
        ("priority as a string", json(br#"{"text":"a","priority":"urgent"}"#), bad),
        ("a system post type", json(br#"{"text":"a","type":"system_join_channel"}"#), bad),
        ("fields of the wrong type", json(br#"{"attachments":[{"fields":"x"}]}"#), bad),
        ("unterminated string", json(br#"{"text":"abc"#), bad),
        ("multipart without a terminator", post(&format!("/hooks/{KEY}"), mp, b"--B\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi"), bad),
        ("multipart without a boundary", post(&format!("/hooks/{KEY}"), "Content-Type: multipart/form-data\r\n", b"--B--"), bad),
        ("multipart with a broken payload", post(&format!("/hooks/{KEY}"), mp, b"--B\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{nope\r\n--B--\r\n"), bad),
        // Sizes.
        ("10 MB declared", ten_mb_post, Code(413, "request_too_large")),
        ("10 MB chunked", chunked_10mb, Code(413, "request_too_large")),
        ("10 MB declared with Expect", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nExpect: 100-continue\r\nContent-Length: 10485760\r\n\r\n"), Code(413, "request_too_large")),
        // Paths and methods.
        ("an unknown method", raw("FOO /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\n\r\n"), Code(405, "invalid_method")),
        ("GET with a body", raw("GET /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n\r\n{}"), Code(405, "invalid_method")),
        ("path traversal", post(&format!("/hooks/../hooks/{KEY}"), "", b"{\"text\":\"a\"}"), Code(404, "no_service")),
        ("a percent-encoded key", post("/hooks/s3cr3t%2Dhook-key-f00d", "", b"{\"text\":\"a\"}"), Code(404, "no_service")),
        ("an empty key", post("/hooks/", "", b"{\"text\":\"a\"}"), Code(404, "no_service")),
        ("an empty slack key", post("/services/", "", b"{\"text\":\"a\"}"), Code(404, "no_service")),
        ("a key with a NUL escape", post("/hooks/%00", "", b"{\"text\":\"a\"}"), Code(404, "no_service")),
        ("a raw UTF-8 key", post("/hooks/\u{43a}\u{43b}\u{44e}\u{447}", "", b"{\"text\":\"a\"}"), FourXxOrClosed),
        ("a 100 kB URI", post(&long_uri, "", b"{\"text\":\"a\"}"), FourXxOrClosed),
        ("a NUL in the path", raw("POST /hooks/\0 HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\n\r\n"), FourXxOrClosed),
        // Framing and protocol.
        ("Content-Length and Transfer-Encoding together", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), FourXxOrClosed),
        ("two different Content-Lengths", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\nContent-Length: 12\r\n\r\n{}"), FourXxOrClosed),
        ("a list Content-Length", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 2, 2\r\n\r\n{}"), FourXxOrClosed),
        ("a negative Content-Length", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: -1\r\n\r\n"), FourXxOrClosed),
        ("a Content-Length that is not a number", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: ten\r\n\r\n"), FourXxOrClosed),
        ("an invalid chunk size", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), FourXxOrClosed),
        ("an overflowing chunk size", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), FourXxOrClosed),
        ("an unsupported transfer coding", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip\r\n\r\nxx"), FourXxOrClosed),
        ("a garbage request line", raw("HELLO THERE\r\n\r\n"), FourXxOrClosed),
        ("HTTP/0.9", raw("GET /\r\n"), FourXxOrClosed),
        ("an obsolete folded header", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n"), FourXxOrClosed),
        ("a header without a colon", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost g\r\nContent-Length: 0\r\n\r\n"), FourXxOrClosed),
        ("a flood of 10,000 headers", post(&format!("/hooks/{KEY}"), &flood, b"{}"), FourXxOrClosed),
        ("a 1 MB header", post(&format!("/hooks/{KEY}"), &long_header, b"{}"), FourXxOrClosed),
        ("a body shorter than declared, then hang-up", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 100\r\n\r\n{\"text\":"), Closed),
        ("slowloris: a head that never ends", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nX-Slow: "), Closed),
        ("a smuggled second request", raw("POST /hooks/{KEY} HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\n\r\nGET /admin HTTP/1.1\r\nHost: g\r\n\r\n"), Code(400, "invalid_payload")),
    ]
}

#[test]
fn hostile_inputs_are_refused_and_the_gateway_keeps_serving() {
    let backend = RecordingBackend::start();
    let rules = format!(
        r#"
[gateway]
client_header_timeout_ms = 500
client_body_timeout_ms = 500

[backends.chat]
kind = "mattermost"
url = "{}"

[[hooks]]
name = "ci"
key = "{KEY}"
backend = "chat"
backend_key = "mmci"
rate = 0
"#,
        backend.url()
    );
    let gateway = GatewayProcess::start(&rules);
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (i, (name, bytes, want)) in cases.iter().enumerate() {
        let mut conn = gateway.connect();
        // The peer may close before everything is written; what it answered is what counts.
        let _ = conn.try_send(bytes);
        if matches!(want, Want::Closed) && name.contains("hang-up") {
            conn.shutdown_write();
        }
        let got = conn.read_response();
        match (want, &got) {
            (Want::Code(status, body), Some(r)) => r.assert(*status, "text/plain", body),
            (Want::FourXxOrClosed, Some(r)) => assert!((400..500).contains(&r.status), "{name}: {}", r.status),
            (Want::FourXxOrClosed | Want::Closed, None) => {}
            (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
        }
        let fine = serde_json::json!({ "text": format!("after case {i}") }).to_string();
        gateway.post(&format!("/hooks/{KEY}"), Some("application/json"), fine.as_bytes()).assert(
            200,
            "text/plain",
            "ok",
        );
    }
    let forwarded: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(forwarded.len(), cases.len(), "only the well-formed requests were forwarded: {forwarded:?}");

    // The key shows nowhere: not in logs, not in metrics.
    let (_, metrics) = gateway.admin_get("/metrics");
    assert!(!metrics.contains(KEY), "the key is on /metrics");
    for line in gateway.stderr_lines().iter().chain(gateway.stdout_lines().iter()) {
        assert!(!line.contains(KEY), "the key leaked: {line}");
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{} hostile cases refused", cases.len());
}
