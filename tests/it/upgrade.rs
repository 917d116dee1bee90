//! pingora's graceful upgrade: a new hookgate takes over the listening sockets of a running one
//! (`serve --upgrade`, then `SIGQUIT` to the old process), and no request fails across the switch.

use crate::common;

use common::{Conn, RecordingBackend, WAIT};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hookgate serve` with these arguments; returns it and a channel of its stderr lines.
fn start(args: &[String]) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Proc(child), rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect(needle);
        if line.contains(needle) {
            return;
        }
    }
}

/// `serve` arguments for the rules in `dir` on a free port, with the pid file and the upgrade
/// socket there too; and the webhook listener's address.
fn serve_args(dir: &std::path::Path) -> (SocketAddr, Vec<String>) {
    let (listen, admin) = (free_port(), free_port());
    let args = vec![
        "--rules".into(),
        dir.display().to_string(),
        "--listen".into(),
        listen.to_string(),
        "--admin-listen".into(),
        admin.to_string(),
        "--pid-file".into(),
        dir.join("hookgate.pid").display().to_string(),
        "--upgrade-sock".into(),
        dir.join("upgrade.sock").display().to_string(),
    ];
    (listen, args)
}

/// Waits for the first process's `listening` line and for its listener to accept.
fn wait_accepting(log: &mpsc::Receiver<String>, listen: SocketAddr) {
    wait_for(log, "listening");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(Instant::now() < deadline, "the first process never accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_upgrade_hands_over_the_sockets_without_failing_a_request() {
    let backend = RecordingBackend::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = format!(
        "[backends.chat]\nkind = \"mattermost\"\nurl = \"{}\"\n\n[[hooks]]\nname = \"ci\"\nkey = \"cikey\"\nbackend = \"chat\"\nbackend_key = \"mm\"\nrate = 0\n",
        backend.url()
    );
    std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    let (listen, args) = serve_args(dir.path());
    let (mut old, old_log) = start(&args);
    wait_accepting(&old_log, listen);
    // A fresh connection per request: a refused connect across the switch would panic here.
    let post = |i: usize| {
        let mut conn = Conn::open(listen);
        conn.post("/hooks/cikey", Some("application/json"), format!(r#"{{"text":"{i}"}}"#).as_bytes()).status
    };
    for i in 0..20 {
        assert_eq!(post(i), 200);
    }
    let mut upgrade_args = args.clone();
    upgrade_args.push("--upgrade".into());
    let (new, new_log) = start(&upgrade_args);
    // Give the new process a moment to wait on the upgrade socket, then hand over.
    std::thread::sleep(Duration::from_millis(300));
    let quit = Command::new("kill").arg("-QUIT").arg(old.0.id().to_string()).status().unwrap();
    assert!(quit.success());
    let mut i = 20;
    let switched = Instant::now();
    while switched.elapsed() < Duration::from_secs(3) {
        assert_eq!(post(i), 200, "request {i} across the upgrade");
        i += 1;
    }
    wait_for(&new_log, "listening");
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = old.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the old process did not exit after handing over");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exited.success() || exited.code().is_none(), "{exited:?}");
    for _ in 0..20 {
        assert_eq!(post(i), 200);
        i += 1;
    }
    assert_eq!(backend.received().len(), i, "every request answered 200 was delivered");
    drop(new);
}

/// With a spooled hook, the new process delivers once the old one has let go of the store: every
/// acknowledged message arrives once, in order, though both processes ran at the same time.
#[test]
fn an_upgrade_hands_the_spool_over_without_loss_or_a_second_send() {
    let backend = RecordingBackend::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = format!(
        "[spool]\npath = \"spool\"\nretry_initial = \"100ms\"\nretry_max = \"200ms\"\n\n\
         [backends.chat]\nkind = \"mattermost\"\nurl = \"{}\"\n\n\
         [[hooks]]\nname = \"ci\"\nkey = \"cikey\"\nbackend = \"chat\"\nbackend_key = \"mm\"\nrate = 0\ndelivery = \"spool\"\n",
        backend.url()
    );
    std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    let (listen, args) = serve_args(dir.path());
    let (old, old_log) = start(&args);
    wait_accepting(&old_log, listen);
    let post = |i: usize| {
        let mut conn = Conn::open(listen);
        conn.post("/hooks/cikey", Some("application/json"), format!(r#"{{"text":"{i}"}}"#).as_bytes()).status
    };
    let mut i = 0;
    for _ in 0..50 {
        assert_eq!(post(i), 200);
        i += 1;
    }
    let mut upgrade_args = args.clone();
    upgrade_args.push("--upgrade".into());
    let (new, new_log) = start(&upgrade_args);
    std::thread::sleep(Duration::from_millis(300));
    let quit = Command::new("kill").arg("-QUIT").arg(old.0.id().to_string()).status().unwrap();
    assert!(quit.success());
    let switched = Instant::now();
    while switched.elapsed() < Duration::from_secs(3) {
        assert_eq!(post(i), 200, "request {i} across the upgrade");
        i += 1;
    }
    wait_for(&new_log, "listening");
    let deadline = Instant::now() + Duration::from_secs(30);
    while backend.received().len() < i {
        assert!(Instant::now() < deadline, "{} of {i} delivered", backend.received().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let texts: Vec<String> = backend
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (0..i).map(|n| n.to_string()).collect();
    assert_eq!(texts, want, "each acknowledged message once, in order");
    drop((old, new));
}
