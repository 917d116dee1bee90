//! The command line as a user meets it: `check`, `hash-key`, `--help`, and JSON logs from `serve`.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn hookgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_accepts_the_shipped_rules() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let out = hookgate(&["check", "--rules", rules], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The demo hooks' key and token are plain on purpose (so the curl lines of README.md and
    // docs/webapi.md work); check says so.
    assert_eq!(
        stdout(&out),
        format!(
            "{rules}/demo-bot.toml:15: warning: hook `demo-bot` stores its bot_token in plain text; store the output of `hookgate hash-key` instead\n\
             {rules}/gateway.toml:27: warning: hook `demo` stores its key in plain text; store the output of `hookgate hash-key` instead\n\
             {rules}: ok, 3 hooks, 2 backends\n"
        )
    );
}

/// The shipped Matrix example, with the spool it asks for, is a valid rule set.
#[test]
fn check_accepts_the_matrix_example() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/examples/matrix.toml")).unwrap();
    std::fs::write(dir.path().join("matrix.toml"), example).unwrap();
    let spool = format!("[spool]\npath = \"{}\"\n", dir.path().join("spool").display());
    std::fs::write(dir.path().join("spool.toml"), spool).unwrap();
    let out = hookgate(&["check", "--rules", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with(": ok, 1 hooks, 1 backends\n"), "{}", stdout(&out));
}

#[test]
fn check_lists_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "[gateway]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n").unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[backends.c]\nkind = \"log\"\n\n[[hooks]]\nname = \"x\"\nkey = \"k\"\nbackend = \"missing\"\n",
    )
    .unwrap();
    let out = hookgate(&["check", "--rules", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let d = dir.path().display();
    assert_eq!(
        stdout(&out),
        format!(
            "{d}/a.toml:3: unknown field `lisen`, expected one of `listen`, `listen_tls`, `tls_cert`, `tls_key`, `tls_certs`, `admin_listen`, `max_body_bytes`, `errors`, `per_hook_metrics`, `admin_listen_public`, `client_header_timeout_ms`, `client_body_timeout_ms`, `max_connections`\n\
             {d}/b.toml:7: hook `x` names backend `missing`, which is not defined\n"
        )
    );
}

#[test]
fn serve_refuses_invalid_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "[gateway]\nmax_body_bytes = -1\n").unwrap();
    let out = hookgate(&["serve", "--rules", dir.path().to_str().unwrap(), "--listen", "127.0.0.1:0"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.toml:2: max_body_bytes must be between 1 and 67108864, not -1"), "{err}");
}

#[test]
fn hash_key_from_argument_and_stdin() {
    let want = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n";
    assert_eq!(stdout(&hookgate(&["hash-key", "test"], None)), want);
    assert_eq!(stdout(&hookgate(&["hash-key"], Some("test\n"))), want);
    let empty = hookgate(&["hash-key"], Some(""));
    assert_eq!(empty.status.code(), Some(2));
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["serve", "--help"], &["check", "--help"], &["hash-key", "--help"]] {
        let out = hookgate(args, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage: hookgate"), "{args:?}: {}", stdout(&out));
    }
}

#[test]
fn json_log_lines() {
    let backend = common::RecordingBackend::start();
    let gateway = common::GatewayProcess::start_with(&common::rules(&backend.url(), ""), &["--log-format", "json"]);
    gateway.post("/hooks/demokey", Some("application/json"), br#"{"text":"hi"}"#).assert(200, "text/plain", "ok");
    let line = gateway.wait_for_log("\"hookgate::request\"");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["hook"], "demo");
    assert_eq!(v["status"], 200);
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["upstream"], "log");
    assert_eq!(v["request_id"].as_str().map(str::len), Some(32));
    assert!(v["total_us"].is_u64());
}
