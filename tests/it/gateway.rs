//! The real gateway binary, a recording backend and raw HTTP: what arrives, what is forwarded and
//! exactly what the client is told.

use crate::common;

use common::{rules, Conn, GatewayProcess, RecordingBackend, CLOSE, HANG};

const JSON: Option<&str> = Some("application/json");
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn setup() -> (RecordingBackend, GatewayProcess) {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), ""));
    (backend, gateway)
}

#[test]
fn every_body_shape_is_forwarded_as_the_same_canonical_json() {
    let (backend, gateway) = setup();
    let multipart_payload = "--XyZ\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{\"text\":\"hi\",\"channel\":\"dev\"}\r\n--XyZ--\r\n";
    let multipart_fields = "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\ndev\r\n--XyZ--\r\n";
    let want = r#"{"text":"hi","channel":"dev"}"#;
    let cases: Vec<(&str, Option<&str>, &str, &str)> = vec![
        ("json with charset", Some("application/json; charset=utf-8"), r#"{"text":"hi","channel":"dev"}"#, want),
        ("form payload=", FORM, r#"payload={"text":"hi","channel":"dev"}"#, want),
        ("form payload= url-encoded", FORM, "payload=%7B%22text%22%3A%22hi%22%2C%22channel%22%3A%22dev%22%7D", want),
        ("form-labelled raw json", FORM, r#"{"text":"hi","channel":"dev"}"#, want),
        ("multipart payload field", Some("multipart/form-data; boundary=XyZ"), multipart_payload, want),
        ("multipart plain fields", Some("multipart/form-data; boundary=XyZ"), multipart_fields, want),
        ("no content type, json", None, r#"{"text":"hi","channel":"dev"}"#, want),
        ("no content type, payload=", None, r#"payload={"text":"hi","channel":"dev"}"#, want),
        ("keys in other cases", JSON, r#"{"TEXT":"hi","Channel":"dev"}"#, want),
        ("raw newline inside text", JSON, "{\"text\":\"line one\nline\ttwo\"}", r#"{"text":"line one\nline\ttwo"}"#),
        (
            "reserved props and slack-only members removed",
            JSON,
            r#"{"text":"hi","props":{"from_webhook":"false","k":"v"},"thread_ts":"1.5","unfurl_links":true}"#,
            r#"{"text":"hi","props":{"k":"v"}}"#,
        ),
        (
            "attachment fields stringified",
            JSON,
            r#"{"attachments":[null,{"title":"disk","fields":[{"title":"free","value":1000000,"short":"true"},null]}]}"#,
            r#"{"attachments":[{"title":"disk","fields":[{"title":"free","value":"1000000","short":true}]}]}"#,
        ),
    ];
    for (i, (name, content_type, body, want)) in cases.iter().enumerate() {
        let response = gateway.post("/hooks/cikey", *content_type, body.as_bytes());
        response.assert(200, "text/plain", "ok");
        let received = backend.received();
        assert_eq!(received.len(), i + 1, "{name}: one forwarded request per case");
        let got = &received[i];
        assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hooks/mmhook1"), "{name}");
        assert_eq!(got.header("content-type"), Some("application/json"), "{name}");
        assert_eq!(got.body_text(), *want, "{name}");
        assert_eq!(got.header("x-request-id"), response.header("x-request-id"), "{name}: same request id");
    }
}

#[test]
fn the_slack_path_and_hook_defaults() {
    let (backend, gateway) = setup();
    let response = gateway.post("/services/T000/B000/XXXX", JSON, br#"{"text":"from slack"}"#);
    response.assert(200, "text/plain", "ok");
    let got = &backend.received()[0];
    assert_eq!(got.path, "/hooks/mmhook2");
    assert_eq!(got.body_text(), r#"{"text":"from slack","channel":"town-square","username":"slack-bot"}"#);
}

#[test]
fn rejected_requests_get_their_code_and_reach_nothing() {
    let (backend, gateway) = setup();
    // What is wrong, the path, the content type, the body, and the status and code answered.
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed json", "/hooks/cikey", JSON, r#"{"text":"hi""#, 400, "invalid_payload"),
        ("wrong member type", "/hooks/cikey", JSON, r#"{"text":5}"#, 400, "invalid_payload"),
        ("form without payload", "/hooks/cikey", FORM, "text=hi", 400, "invalid_payload"),
        ("empty body", "/hooks/cikey", JSON, "", 400, "invalid_payload"),
        ("bad type", "/hooks/cikey", JSON, r#"{"text":"hi","type":"system_join"}"#, 400, "invalid_payload"),
        ("no text", "/hooks/cikey", JSON, r#"{"text":""}"#, 400, "no_text"),
        ("unknown key", "/hooks/nosuchkey", JSON, r#"{"text":"hi"}"#, 404, "no_service"),
        ("unknown slack path", "/services/T1/B1/nope", JSON, r#"{"text":"hi"}"#, 404, "no_service"),
        ("other path", "/api/v4/posts", JSON, r#"{"text":"hi"}"#, 404, "no_service"),
    ];
    for (name, path, content_type, body, status, code) in cases {
        let response = gateway.post(path, content_type, body.as_bytes());
        assert_eq!(response.status, status, "{name}");
        response.assert(status, "text/plain", code);
    }
    let get = gateway.connect().request("GET", "/hooks/cikey", &[], b"");
    get.assert(405, "text/plain", "invalid_method");
    assert_eq!(get.header("allow"), Some("POST"));
    let many = format!(r#"{{"attachments":[{}]}}"#, vec!["{}"; 101].join(","));
    gateway.post("/hooks/cikey", JSON, many.as_bytes()).assert(400, "text/plain", "too_many_attachments");
    assert!(backend.received().is_empty(), "nothing rejected was forwarded: {:?}", backend.received());
}

/// The text of the posts received in `range`, joined.
fn forwarded_text(backend: &RecordingBackend, range: std::ops::Range<usize>) -> String {
    backend.received()[range]
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"].as_str().unwrap().to_owned())
        .collect()
}

/// A JSON post to the `cikey` hook as raw bytes, with its `Content-Length`.
fn raw_json_post(body: &str) -> String {
    format!(
        "POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn text_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["text"].as_str().unwrap().to_owned()
}

/// A JSON body of exactly `len` bytes.
fn body_of(len: usize) -> Vec<u8> {
    let frame = r#"{"text":""}"#.len();
    format!(r#"{{"text":"{}"}}"#, "a".repeat(len - frame)).into_bytes()
}

#[test]
fn bodies_up_to_the_limit_pass_and_larger_ones_are_refused() {
    let (backend, gateway) = setup();
    let at_limit = body_of(300_000);
    assert_eq!(at_limit.len(), 300_000);
    gateway.post("/hooks/cikey", JSON, &at_limit).assert(200, "text/plain", "ok");
    // 299989 characters of text are more than one Mattermost post (16383): 19 posts, in order.
    let posts = backend.received().len();
    assert_eq!(posts, 19);
    assert_eq!(forwarded_text(&backend, 0..posts), text_of(&at_limit), "forwarded whole, in order");

    let over = body_of(300_001);
    let mut conn = gateway.connect();
    conn.post("/hooks/cikey", JSON, &over).assert(413, "text/plain", "request_too_large");
    assert_eq!(backend.received().len(), posts);

    // Chunked bodies declare no length: the limit is enforced while reading.
    for (len, status, body) in [(300_000, 200, "ok"), (300_001, 413, "request_too_large")] {
        let payload = body_of(len);
        let mut conn = gateway.connect();
        let mut raw = b"POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in payload.chunks(65_536) {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        conn.send(&raw);
        conn.read_response().unwrap().assert(status, "text/plain", body);
    }
    assert_eq!(backend.received().len(), 2 * posts);
    assert_eq!(forwarded_text(&backend, posts..2 * posts), text_of(&at_limit));
}

#[test]
fn expect_100_continue_is_answered() {
    let (backend, gateway) = setup();
    let body = body_of(200_000);
    let mut conn = gateway.connect();
    conn.send(
        format!(
            "POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    // The client waits for the interim answer before sending the body.
    assert_eq!(conn.read_response().unwrap().status, 100);
    conn.send(&body);
    conn.read_response().unwrap().assert(200, "text/plain", "ok");
    assert_eq!(forwarded_text(&backend, 0..backend.received().len()), text_of(&body));

    // Too large by its declared length: refused at once, without inviting the body.
    let mut conn = gateway.connect();
    conn.send(b"POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nExpect: 100-continue\r\nContent-Length: 300001\r\n\r\n");
    conn.read_response().unwrap().assert(413, "text/plain", "request_too_large");
}

#[test]
fn backend_failures_are_mapped() {
    let (backend, gateway) = setup();
    let cases = [
        (500, 502, "backend_error"),
        (503, 502, "backend_error"),
        (404, 404, "channel_not_found"),
        (403, 403, "action_prohibited"),
        (400, 400, "invalid_payload"),
        (413, 413, "request_too_large"),
        (401, 502, "backend_error"),
    ];
    for (backend_status, status, code) in cases {
        backend.set_status(backend_status);
        gateway.post("/hooks/cikey", JSON, br#"{"text":"hi"}"#).assert(status, "text/plain", code);
    }
    assert_eq!(backend.received().len(), cases.len(), "each was sent exactly once");
}

#[test]
fn backend_down_is_503_with_retry_after() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gateway = GatewayProcess::start(&rules(&format!("http://{closed}"), ""));
    let response = gateway.post("/hooks/cikey", JSON, br#"{"text":"hi"}"#);
    response.assert(503, "text/plain", "backend_unavailable");
    assert_eq!(response.header("retry-after"), Some("5"));
    let line = gateway.wait_for_log("status=503");
    assert!(line.contains("upstream=connect_error"), "{line}");
}

#[test]
fn keep_alive_survives_rejections() {
    let (backend, gateway) = setup();
    let mut conn: Conn = gateway.connect();
    conn.post("/hooks/cikey", JSON, b"{broken").assert(400, "text/plain", "invalid_payload");
    conn.post("/hooks/cikey", JSON, br#"{"text":""}"#).assert(400, "text/plain", "no_text");
    conn.post("/hooks/cikey", JSON, br#"{"text":"after"}"#).assert(200, "text/plain", "ok");
    conn.post("/hooks/nosuchkey", JSON, br#"{"text":"x"}"#).assert(404, "text/plain", "no_service");
    conn.post("/hooks/cikey", JSON, br#"{"text":"again"}"#).assert(200, "text/plain", "ok");
    let bodies: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(bodies, vec![r#"{"text":"after"}"#, r#"{"text":"again"}"#]);
}

#[test]
fn request_ids_are_kept_or_made() {
    let (backend, gateway) = setup();
    let mut conn = gateway.connect();
    let mine = conn.request("POST", "/hooks/cikey", &[("X-Request-Id", "my-id.1")], br#"{"text":"a"}"#);
    assert_eq!(mine.header("x-request-id"), Some("my-id.1"));
    assert_eq!(backend.received()[0].header("x-request-id"), Some("my-id.1"));
    let bad = conn.request("POST", "/hooks/cikey", &[("X-Request-Id", "has spaces")], br#"{"text":"b"}"#);
    let made = bad.header("x-request-id").unwrap();
    assert!(made.len() == 32 && made != "has spaces", "{made}");
    assert_eq!(backend.received()[1].header("x-request-id"), Some(made));
    let rejected = conn.request("POST", "/hooks/nokey", &[("X-Request-Id", "rej-1")], br#"{"text":"b"}"#);
    assert_eq!(rejected.header("x-request-id"), Some("rej-1"));
}

#[test]
fn the_log_backend_prints_one_json_line_and_the_log_line_has_no_key() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&rules(&backend.url(), ""));
    gateway.post("/hooks/demokey", FORM, br#"payload={"text":"hi"}"#).assert(200, "text/plain", "ok");
    gateway.post("/hooks/demokey", JSON, b"{\"text\":\"two\\nlines\"}").assert(200, "text/plain", "ok");
    assert_eq!(gateway.wait_for_stdout(2), vec![r#"{"text":"hi"}"#, r#"{"text":"two\nlines"}"#]);
    let line = gateway.wait_for_log("hook=demo ");
    for part in ["INFO hookgate::request request", "status=200", "reason=ok", "upstream=log", "total_us="] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    gateway.post("/hooks/cikey", JSON, br#"{"text":"x"}"#);
    gateway.post("/services/T000/B000/XXXX", JSON, br#"{"text":"x"}"#);
    gateway.wait_for_log("hook=slack ");
    for line in gateway.stderr_lines().iter().chain(gateway.stdout_lines().iter()) {
        for key in ["demokey", "cikey", "T000/B000/XXXX"] {
            assert!(!line.contains(key), "key {key} leaked into {line}");
        }
    }
}

#[test]
fn mattermost_error_dialect() {
    let backend = RecordingBackend::start();
    let gateway = GatewayProcess::start(&format!("[gateway]\nerrors = \"mattermost\"\n{}", rules(&backend.url(), "")));
    let mut conn = gateway.connect();
    let response = conn.request("POST", "/hooks/cikey", &[("X-Request-Id", "rid-7")], br#"{"text":""}"#);
    assert_eq!(response.status, 400);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "id": "web.incoming_webhook.text.app_error",
            "message": "No text specified.",
            "detailed_error": "",
            "request_id": "rid-7",
            "status_code": 400
        })
    );
    conn.post("/hooks/cikey", JSON, br#"{"text":"fine"}"#).assert(200, "text/plain", "ok");
}

#[test]
fn a_slow_backend_times_out_and_a_broken_one_is_not_resent() {
    let (backend, gateway) = setup();
    // rules() gives the backend timeout_ms = 5000.
    backend.set_status(HANG);
    let response = gateway.post("/hooks/cikey", JSON, br#"{"text":"slow"}"#);
    response.assert(503, "text/plain", "backend_unavailable");
    assert_eq!(response.header("retry-after"), Some("5"));
    assert!(gateway.wait_for_log("status=503").contains("upstream=timeout"));

    // The backend read the request and hung up: it may have posted it, so it is not sent again.
    backend.set_status(CLOSE);
    gateway.post("/hooks/cikey", JSON, br#"{"text":"cut"}"#).assert(503, "text/plain", "backend_unavailable");
    let texts: Vec<String> = backend.received().iter().map(|r| r.body_text()).collect();
    assert_eq!(texts, vec![r#"{"text":"slow"}"#, r#"{"text":"cut"}"#], "each sent exactly once");

    backend.set_status(200);
    gateway.post("/hooks/cikey", JSON, br#"{"text":"recovered"}"#).assert(200, "text/plain", "ok");
}

#[test]
fn backend_connections_are_reused() {
    let (backend, gateway) = setup();
    for i in 0..20 {
        gateway.post("/hooks/cikey", JSON, format!(r#"{{"text":"{i}"}}"#).as_bytes()).assert(200, "text/plain", "ok");
    }
    assert_eq!(backend.received().len(), 20);
    assert_eq!(backend.connections(), 1, "one pooled connection served every request");
}

/// Requests written in one go on one connection (HTTP/1.1 pipelining) are each answered, in
/// order, and each delivered (contract section 14).
#[test]
fn pipelined_requests_are_each_answered_in_order() {
    let (backend, gateway) = setup();
    let mut conn = gateway.connect();
    let post = raw_json_post;
    let chunked =
        "POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n{\"text\":\"4\"}\r\n0\r\n\r\n";
    let all = [
        post(r#"{"text":"1"}"#),
        post(r#"{"text":""}"#),
        "GET /hooks/cikey HTTP/1.1\r\nHost: g\r\n\r\n".to_owned(),
        post(r#"{"text":"2"}"#),
        post(r#"{"text":"3"}"#),
        chunked.to_owned(),
    ]
    .concat();
    conn.send(all.as_bytes());
    let want = [(200, "ok"), (400, "no_text"), (405, "invalid_method"), (200, "ok"), (200, "ok"), (200, "ok")];
    for (i, (status, body)) in want.into_iter().enumerate() {
        let response = conn.read_response().unwrap_or_else(|| panic!("answer {i} is missing"));
        response.assert(status, "text/plain", body);
    }
    assert_eq!(forwarded_text(&backend, 0..4), "1234");
    // The connection is still usable afterwards.
    conn.post("/hooks/cikey", JSON, br#"{"text":"5"}"#).assert(200, "text/plain", "ok");
}

/// The common request is read by hookgate's own HTTP/1.1 code, any other by pingora's session
/// (docs/performance.md, "Reading requests ourselves"): clients see the same answers from both,
/// bodies that arrive in pieces are read to their length and no further, and a client that
/// leaves half-way or asks to close is handled as before.
#[test]
fn both_request_readers_answer_alike() {
    let (backend, gateway) = setup();
    let mut conn = gateway.connect();
    let common = raw_json_post;
    let chunked = |body: &str| {
        format!(
            "POST /hooks/cikey HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    // The same answer, field for field (names, order, values but the request id and date).
    let fields = |response: &common::Response| -> Vec<(String, String)> {
        let varying = |name: &str| name.eq_ignore_ascii_case("x-request-id") || name.eq_ignore_ascii_case("date");
        response.headers.iter().map(|(n, v)| (n.clone(), if varying(n) { String::new() } else { v.clone() })).collect()
    };
    conn.send(common(r#"{"text":"1"}"#).as_bytes());
    let mine = conn.read_response().unwrap();
    conn.send(chunked(r#"{"text":"2"}"#).as_bytes());
    let pingoras = conn.read_response().unwrap();
    mine.assert(200, "text/plain", "ok");
    assert_eq!(fields(&mine), fields(&pingoras));
    let names: Vec<&str> = mine.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Content-Type", "Content-Length", "X-Request-Id", "Date", "Connection"]);
    conn.send(common(r#"{"text":""}"#).as_bytes());
    let refused = conn.read_response().unwrap();
    conn.send(chunked(r#"{"text":""}"#).as_bytes());
    assert_eq!(fields(&refused), fields(&conn.read_response().unwrap()));
    refused.assert(400, "text/plain", "no_text");

    // A body in three pieces, the last carrying the next request's head: each is read whole.
    let body_at = |request: &str| request.find("\r\n\r\n").unwrap() + 4;
    let (second, third) = (common(r#"{"text":"3"}"#), common(r#"{"text":"4"}"#));
    let (head, body) = third.split_at(body_at(&third));
    conn.send(&second.as_bytes()[..body_at(&second) + 5]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    conn.send([&second[body_at(&second) + 5..], head].concat().as_bytes());
    conn.read_response().unwrap().assert(200, "text/plain", "ok");
    std::thread::sleep(std::time::Duration::from_millis(50));
    conn.send(body.as_bytes());
    conn.read_response().unwrap().assert(200, "text/plain", "ok");
    assert_eq!(forwarded_text(&backend, 0..4), "1234");

    // Asked to close: answered, then closed.
    conn.send(common(r#"{"text":"5"}"#).replace("Host: g\r\n", "Host: g\r\nConnection: close\r\n").as_bytes());
    let last = conn.read_response().unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.is_closed());

    // A client that leaves half-way through its body gets nothing, and nothing is sent on.
    let mut gone = gateway.connect();
    gone.send(common(r#"{"text":"never"}"#).trim_end_matches(r#""never"}"#).as_bytes());
    gone.shutdown_write();
    assert!(gone.read_response().is_none());
    gateway.post("/hooks/cikey", JSON, br#"{"text":"6"}"#).assert(200, "text/plain", "ok");
    assert_eq!(forwarded_text(&backend, 0..backend.received().len()), "123456");
}

/// What the HTTP parser refuses is answered 400 (431 for an oversized head) and closed, never
/// forwarded; a head within the limits is served (contract section 14).
#[test]
fn requests_the_parser_refuses_are_answered_and_closed() {
    let (backend, gateway) = setup();
    let body = r#"{"text":"x"}"#;
    let head = |extra: &str| format!("POST /hooks/cikey HTTP/1.1\r\nHost: g\r\n{extra}\r\n");
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("two lengths", head("Content-Length: 12\r\nContent-Length: 13\r\n") + body, 400, "invalid_request"),
        ("a length that is no number", head("Content-Length: 1x\r\n") + body, 400, "invalid_request"),
        ("a bad chunk size", head("Transfer-Encoding: chunked\r\n") + "zz\r\nabc\r\n0\r\n\r\n", 400, "invalid_request"),
        ("an unknown transfer coding", head("Transfer-Encoding: gzip\r\n") + body, 400, "invalid_request"),
        (
            "101 header lines",
            head(&(many(100) + "Content-Length: 12\r\n")) + body,
            431,
            "request_header_fields_too_large",
        ),
        (
            "300 header lines",
            head(&(many(299) + "Content-Length: 12\r\n")) + body,
            431,
            "request_header_fields_too_large",
        ),
        (
            "a 70 KiB head",
            head(&format!("X-Big: {}\r\nContent-Length: 12\r\n", "a".repeat(70 * 1024))) + body,
            431,
            "request_header_fields_too_large",
        ),
        (
            "a 100 kB URL",
            format!(
                "POST /hooks/cikey?{} HTTP/1.1\r\nHost: g\r\nContent-Length: 12\r\n\r\n{body}",
                "a".repeat(100_000)
            ),
            431,
            "request_header_fields_too_large",
        ),
    ];
    for (what, raw, status, code) in cases {
        let mut conn = gateway.connect();
        conn.send(raw.as_bytes());
        let response = conn.read_response().unwrap_or_else(|| panic!("{what}: closed without an answer"));
        response.assert(status, "text/plain", code);
        assert!(conn.is_closed(), "{what}: the connection stays open");
    }
    assert!(backend.received().is_empty(), "nothing refused by the parser is forwarded");
    for (sample, want) in [
        (r#"hookgate_rejections_total{hook="unknown",reason="bad_request"}"#, 3.0),
        // The broken chunk is found once the head named its hook.
        (r#"hookgate_rejections_total{hook="ci",reason="bad_request"}"#, 1.0),
        (r#"hookgate_rejections_total{hook="unknown",reason="head_too_large"}"#, 4.0),
        (r#"hookgate_requests_total{code="431",hook="unknown"}"#, 4.0),
    ] {
        assert_eq!(gateway.metric(sample), Some(want), "{sample}");
    }
    let mut conn = gateway.connect();
    let within = head(&(many(98) + "Content-Length: 12\r\n")) + body;
    conn.send(within.as_bytes());
    conn.read_response().expect("an answer").assert(200, "text/plain", "ok");
    assert_eq!(backend.received().len(), 1);
}

/// The admin listener answers what it cannot serve, as the webhook listener does (contract
/// sections 14 and 17): a 100 kB URL or 300 header lines get 431, a head the parser refuses 400,
/// each before the connection closes; the listener keeps serving.
#[test]
fn the_admin_listener_answers_heads_it_refuses() {
    let (_backend, gateway) = setup();
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        ("a 100 kB URL", format!("GET /metrics?{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000)), 431),
        ("300 header lines", format!("GET /metrics HTTP/1.1\r\nHost: a\r\n{many}\r\n"), 431),
        (
            "a 70 KiB header",
            format!("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024)),
            431,
        ),
        ("two lengths", "POST /spool HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".into(), 400),
    ];
    for (what, raw, status) in cases {
        let mut conn = Conn::open(gateway.admin);
        conn.send(raw.as_bytes());
        let response = conn.read_response().unwrap_or_else(|| panic!("{what}: closed without an answer"));
        assert_eq!(response.status, status, "{what}: {}", response.text());
        assert!(conn.is_closed(), "{what}: the connection stays open");
    }
    let (status, metrics) = gateway.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("hookgate_requests_total"), "still serving");
    // Keep-alive still holds for ordinary requests.
    let mut conn = Conn::open(gateway.admin);
    for _ in 0..2 {
        assert_eq!(conn.request("GET", "/healthz", &[], b"").text(), "ok\n");
    }
}
