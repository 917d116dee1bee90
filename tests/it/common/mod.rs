//! Test harness: the real `hookgate` binary on a free loopback port, a recording HTTP backend,
//! and a raw HTTP/1.1 client that shows exactly what went over the wire.

pub mod lazyfs;
pub mod servers;
pub mod tls;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A loopback port for a server a test starts, free when handed out. Ports come from below
/// Linux's ephemeral range (32768 and up, where the kernel picks ports for port 0 and for
/// outgoing connections) and are never handed out twice in one test process. Binding port 0 and
/// letting go, as before, raced: two gateways started at once could be given the same port, and
/// a test waiting for its gateway's webhook listener found another gateway's admin listener
/// there (seen once in `make test`).
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Test binaries run one after another; starting each at its own place keeps a port one just
    // closed (TIME_WAIT) from being the next one's first.
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = u32::from(NEXT.fetch_add(1, Ordering::SeqCst));
        let port = (FIRST + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN);
}

/// A request as the recording backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request had been read whole.
    pub at: Instant,
}

/// A header's value, whatever the case of its name.
fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The declared body length of a message with these headers (0 when absent).
fn content_length(headers: &[(String, String)]) -> usize {
    find_header(headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("forwarded body is UTF-8")
    }
}

/// `set_status` values that are not HTTP statuses: what the backend does instead of answering.
pub const HANG: u16 = 0;
pub const CLOSE: u16 = 1;

/// The `Retry-After` the backend sends with a 429.
pub const BACKEND_RETRY_AFTER: &str = "17";

#[derive(Default)]
struct Shared {
    status: AtomicU16,
    /// The `Retry-After` sent with a 429; `BACKEND_RETRY_AFTER` when 0.
    retry_after: AtomicU16,
    received: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    script: Mutex<VecDeque<u16>>,
    /// Open client connections, to cut them when the backend is stopped.
    open: Mutex<Vec<TcpStream>>,
    stopped: std::sync::atomic::AtomicBool,
    /// Set for a backend that speaks HTTPS.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Answers a request in place of the status, when it returns one.
    responder: Mutex<Option<Responder>>,
}

/// A whole answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);
/// What a backend that answers as an API says to a request; `None` leaves it to the status.
pub type Responder = Arc<dyn Fn(&Recorded) -> Option<Answer> + Send + Sync>;

/// A loopback HTTP/1.1 server that records every request and answers with a settable status
/// (or, with `HANG` and `CLOSE`, reads the request and then never answers or hangs up). It can
/// be stopped and started again on the same port.
pub struct RecordingBackend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RecordingBackend {
    pub fn start() -> RecordingBackend {
        RecordingBackend::listen(None)
    }

    /// A backend that speaks HTTPS with this certificate chain and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> RecordingBackend {
        RecordingBackend::listen(Some(tls::server_config(cert_pem, key_pem)))
    }

    fn listen(tls: Option<Arc<rustls::ServerConfig>>) -> RecordingBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared { tls, ..Shared::default() });
        shared.status.store(200, Ordering::SeqCst);
        accept_loop(listener, shared.clone());
        RecordingBackend { addr, shared }
    }

    /// Stops listening and cuts every open connection, as a killed server would.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for conn in self.shared.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Listens again on the same address.
    pub fn restart(&self) {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot listen on {} again: {e}", self.addr);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.shared.stopped.store(false, Ordering::SeqCst);
        accept_loop(listener, self.shared.clone());
    }

    /// Answers the next requests with these statuses, in order, then with `set_status`'s.
    pub fn script(&self, statuses: &[u16]) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The `Retry-After` seconds sent with a 429 from now on.
    pub fn set_retry_after(&self, secs: u16) {
        self.shared.retry_after.store(secs, Ordering::SeqCst);
    }

    /// Answers each request as `responder` says, where it says anything (an API's fake).
    pub fn answer_with(&self, responder: Responder) {
        *self.shared.responder.lock().unwrap() = Some(responder);
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The `text` of each JSON body received, in order.
    pub fn texts(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                v["text"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if shared.stopped.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { return };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            if let Ok(copy) = conn.try_clone() {
                shared.open.lock().unwrap().push(copy);
            }
            let shared = shared.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(WAIT)).unwrap();
                match &shared.tls {
                    None => serve_recording(conn, &shared),
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config.clone()) else { return };
                        serve_recording(rustls::StreamOwned::new(session, conn), &shared)
                    }
                }
            });
        }
    });
}

fn serve_recording(conn: impl Read + Write, shared: &Shared) {
    let mut reader = BufReader::new(conn);
    // Keep-alive: one request after another on the same connection, as a real server would.
    loop {
        let Some((head, headers)) = read_head(&mut reader) else {
            return;
        };
        let mut parts = head.split(' ');
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let length = content_length(&headers);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let recorded = Recorded { method, path, headers, body, at: Instant::now() };
        let responder = shared.responder.lock().unwrap().clone();
        let answered = responder.and_then(|respond| respond(&recorded));
        shared.received.lock().unwrap().push(recorded);
        if let Some((status, headers, answer)) = answered {
            let headers: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            let conn = reader.get_mut();
            if conn.write_all(response.as_bytes()).and_then(|()| conn.flush()).is_err() {
                return;
            }
            continue;
        }
        let scripted = shared.script.lock().unwrap().pop_front();
        let status = scripted.unwrap_or_else(|| shared.status.load(Ordering::SeqCst));
        match status {
            HANG => {
                std::thread::sleep(WAIT);
                return;
            }
            CLOSE => return,
            _ => {}
        }
        let answer = if status == 200 { "ok" } else { "{\"id\":\"backend.error\"}" };
        let retry_after = match (status, shared.retry_after.load(Ordering::SeqCst)) {
            (429, 0) => format!("Retry-After: {BACKEND_RETRY_AFTER}\r\n"),
            (429, secs) => format!("Retry-After: {secs}\r\n"),
            _ => String::new(),
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n{retry_after}Content-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let conn = reader.get_mut();
        if conn.write_all(response.as_bytes()).and_then(|()| conn.flush()).is_err() {
            return;
        }
    }
}

/// Reads a request or status line and its headers.
fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    if reader.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some((first.trim_end().to_owned(), headers));
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
}

/// A running gateway process with its output captured.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    /// The HTTPS listener, when the rules have `listen_tls`.
    pub tls_addr: Option<SocketAddr>,
    /// The admin listener (metrics, health).
    pub admin: SocketAddr,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `hookgate serve` on `rules` (the text of one rules file) on a free port.
    pub fn start(rules: &str) -> GatewayProcess {
        GatewayProcess::start_with(rules, &[])
    }

    /// As `start`, with more command-line arguments.
    pub fn start_with(rules: &str, args: &[&str]) -> GatewayProcess {
        GatewayProcess::start_with_files(rules, &[], args)
    }

    /// As `start_with`, with more files (certificates) in the rules directory.
    pub fn start_with_files(rules: &str, files: &[(&str, &str)], args: &[&str]) -> GatewayProcess {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["serve", "--rules"])
            .arg(dir.path())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hookgate");
        let stdout = collect_lines(child.stdout.take().unwrap(), None);
        let (tx, rx) = mpsc::channel();
        let stderr = collect_lines(child.stderr.take().unwrap(), Some(tx));
        let deadline = Instant::now() + WAIT;
        let (addr, tls_addr, admin) = loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("gateway did not start; stderr: {:?}", stderr.lock().unwrap())
            });
            if let Some(addrs) = listen_addresses(&line) {
                break addrs;
            }
        };
        // The addresses are logged before pingora binds them: wait until they accept.
        for listener in [Some(addr), tls_addr, Some(admin)].into_iter().flatten() {
            while TcpStream::connect(listener).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "gateway never accepted on {listener}; stderr: {:?}",
                    stderr.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        GatewayProcess { addr, tls_addr, admin, child, stdout, stderr, dir }
    }

    /// The rules directory the gateway was started with.
    pub fn rules_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Replaces the rules file the gateway was started with (takes effect on `SIGHUP`).
    pub fn write_rules(&self, rules: &str) {
        std::fs::write(self.dir.path().join("rules.toml"), rules).unwrap();
    }

    /// Sends the gateway process a signal, e.g. `HUP`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr has a line containing `needle`, and returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.stderr_lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}: {:?}", self.stderr_lines());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stdout has `count` lines, and returns them.
    pub fn wait_for_stdout(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.stdout_lines();
            if lines.len() >= count {
                return lines;
            }
            assert!(Instant::now() < deadline, "stdout has {} lines, wanted {count}", lines.len());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `GET path` on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        let response = Conn::open(self.admin).request("GET", path, &[], b"");
        (response.status, response.text())
    }

    /// The value of one sample on `/metrics`, e.g. `hookgate_requests_total{hook="ci",code="200"}`.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let (_, text) = self.admin_get("/metrics");
        text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The sample's value once it is `want`, or its last value after `WAIT`: counters are bumped
    /// as a request ends, a moment after what a test waited for (a log line, an answer) happened.
    pub fn wait_for_metric(&self, sample: &str, want: f64) -> Option<f64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.metric(sample);
            if value == Some(want) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a fresh connection.
    pub fn post(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Response {
        self.connect().post(path, content_type, body)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The webhook and admin addresses in the `listening` log line, in text or JSON format.
fn listen_addresses(line: &str) -> Option<(SocketAddr, Option<SocketAddr>, SocketAddr)> {
    if !line.contains("listening") {
        return None;
    }
    let field = |name: &str| -> Option<SocketAddr> {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            return v[name].as_str()?.parse().ok();
        }
        let key = format!(" {name}=");
        let at = line.find(&key)?;
        line[at + key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("listen")?, field("listen_tls"), field("admin")?))
}

fn collect_lines(pipe: impl Read + Send + 'static, notify: Option<mpsc::Sender<String>>) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if let Some(tx) = &notify {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts status, content type and exact body bytes, and that a request id came back.
    pub fn assert(&self, status: u16, content_type: &str, body: &str) {
        assert_eq!((self.status, self.text().as_str()), (status, body), "{self:?}");
        assert_eq!(self.header("content-type"), Some(content_type), "{self:?}");
        assert_eq!(self.header("content-length"), Some(body.len().to_string().as_str()), "{self:?}");
        assert!(self.header("x-request-id").is_some_and(|id| !id.is_empty()), "{self:?}");
    }
}

/// A raw HTTP/1.1 client connection, reusable for keep-alive tests.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap()
    }

    /// As `open`, for a server that may be gone.
    pub fn try_open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(WAIT))?;
        Ok(Conn { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    /// Sends raw bytes (request line, headers and body, exactly as given).
    pub fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).unwrap();
    }

    /// As `send`, for peers that may close the connection part-way.
    pub fn try_send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(raw)
    }

    /// Closes the sending half, as a client that hangs up after writing.
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
    }

    /// Reads one response; `None` when the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Response> {
        let (head, headers) = read_head(&mut self.reader)?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let length = content_length(&headers);
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).ok()?;
        Some(Response { status, headers, body })
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: gateway\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        self.send(&raw);
        self.read_response().expect("a response")
    }

    pub fn post(&mut self, path: &str, content_type: Option<&str>, body: &[u8]) -> Response {
        let headers: Vec<(&str, &str)> = content_type.map(|ct| ("Content-Type", ct)).into_iter().collect();
        self.request("POST", path, &headers, body)
    }

    /// True when the server has closed this connection.
    pub fn is_closed(&mut self) -> bool {
        matches!(self.reader.fill_buf(), Ok([]))
    }
}

/// Copies a directory tree (a test fixture) to `to`.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The spool tests' hook `alerts` (key `key-spool`): spooled, without a rate limit, on the
/// mattermost backend `chat` at `backend_url` with short timeouts. A `[spool]` table goes first.
pub fn spooled_alerts(backend_url: &str) -> String {
    format!(
        r#"
[backends.chat]
kind = "mattermost"
url = "{backend_url}"
connect_timeout_ms = 200
timeout_ms = 2000

[[hooks]]
name = "alerts"
key = "key-spool"
backend = "chat"
backend_key = "mmalerts"
delivery = "spool"
rate = 0
"#
    )
}

/// Rules with one mattermost hook (`ci`, key `cikey`) on `backend_url` and one log hook (`demo`,
/// key `demokey`), plus whatever `extra` adds.
pub fn rules(backend_url: &str, extra: &str) -> String {
    format!(
        r#"
[backends.chat]
kind = "mattermost"
url = "{backend_url}"
timeout_ms = 5000
connect_timeout_ms = 2000

[backends.console]
kind = "log"

[[hooks]]
name = "ci"
key = "cikey"
backend = "chat"
backend_key = "mmhook1"

[[hooks]]
name = "slack"
key = "T000/B000/XXXX"
backend = "chat"
backend_key = "mmhook2"
channel = "town-square"
username = "slack-bot"

[[hooks]]
name = "demo"
key = "demokey"
backend = "console"
{extra}
"#
    )
}
