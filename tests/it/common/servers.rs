//! Real servers the tests start on loopback: Debian's `redis-server` and `nats-server`, each in a
//! directory of its own, on a free port, stopped by its PID when the test ends.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::free_port;

/// Panics with how to install `program` when it is missing: `make test` installs it.
fn require(program: &str, package: &str) {
    let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output().unwrap();
    assert!(found.status.success(), "{program} is missing: `make test` installs it (apt-get install {package})");
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
}

/// One process, restartable on the same port and directory.
struct Server {
    child: Option<Child>,
    start: Box<dyn Fn() -> Child + Send + Sync>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` with nothing persisted: rate state needs no durability.
pub struct Redis {
    pub port: u16,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        require("redis-server", "redis-server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = dir.path().to_owned();
        let start = move || {
            Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&path)
                .args(["--logfile", "redis.log"])
                .stdout(Stdio::null())
                .spawn()
                .expect("start redis-server")
        };
        let server = Server { child: Some(start()), start: Box::new(start) };
        wait_listening(port, "redis-server");
        Redis { port, server, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    pub fn restart(&mut self) {
        self.server.kill();
        self.server.child = Some((self.server.start)());
        wait_listening(self.port, "redis-server");
    }

    /// SIGSTOP: connections stay open and nothing is answered, as with a Redis that hangs.
    pub fn pause(&self) {
        signal(self.server.pid(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.server.pid(), "CONT");
    }
}

/// A `nats-server` with JetStream, alone or as one node of a cluster.
pub struct Nats {
    pub port: u16,
    pub monitor_port: u16,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Nats {
    /// A single JetStream server.
    pub fn start() -> Nats {
        Nats::start_node(None, None)
    }

    /// A single JetStream server on a copy of a JetStream store directory (a test fixture).
    pub fn start_on_copy_of(store: &Path) -> Nats {
        Nats::start_node(None, Some(store))
    }

    /// A cluster of three JetStream servers on loopback, each knowing the others' routes.
    pub fn cluster() -> Vec<Nats> {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes: Vec<Nats> = (0..3).map(|i| Nats::start_node(Some((i, routes.clone())), None)).collect();
        // Healthy once the JetStream meta group has a leader and the node is current with it.
        for node in &nodes {
            node.wait_ready(Duration::from_secs(30));
        }
        nodes
    }

    fn start_node(cluster: Option<(usize, Vec<u16>)>, store: Option<&Path>) -> Nats {
        require("nats-server", "nats-server");
        let dir = tempfile::tempdir().unwrap();
        let (port, monitor_port) = (free_port(), free_port());
        let path = dir.path().to_owned();
        if let Some(store) = store {
            super::copy_tree(store, &path.join("js"));
        }
        let config = path.join("nats.conf");
        let mut text = format!(
            "listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\njetstream {{ store_dir: {:?} }}\n",
            path.join("js")
        );
        if let Some((i, routes)) = &cluster {
            let others: Vec<String> = routes.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
            text.push_str(&format!(
                "server_name: n{i}\ncluster {{ name: hookgate\n listen: 127.0.0.1:{}\n routes: [{}] }}\n",
                routes[*i],
                others.join(", ")
            ));
        }
        std::fs::write(&config, text).unwrap();
        let log = path.join("nats.log");
        let start = move || {
            Command::new("nats-server")
                .arg("-c")
                .arg(&config)
                .arg("-l")
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server")
        };
        let server = Server { child: Some(start()), start: Box::new(start) };
        wait_listening(port, "nats-server");
        let node = Nats { port, monitor_port, server, _dir: dir };
        if cluster.is_none() {
            node.wait_ready(Duration::from_secs(10));
        }
        node
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Waits until this server says it is healthy.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !healthy(self.monitor_port) {
            assert!(Instant::now() < deadline, "nats-server on {} never became ready", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    pub fn restart(&mut self) {
        self.server.kill();
        self.server.child = Some((self.server.start)());
        wait_listening(self.port, "nats-server");
    }

    /// SIGSTOP: connections stay open and nothing is answered or stored until `resume`.
    pub fn pause(&self) {
        signal(self.server.pid(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.server.pid(), "CONT");
    }
}

/// `GET /healthz` answered 200: JetStream is enabled and, in a cluster, current with its
/// meta leader.
fn healthy(monitor_port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", monitor_port)) else { return false };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if conn.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// A Synapse homeserver from the project's `.venv` (PyPI `matrix-synapse`, SQLite), with a bot
/// user (`@bridgebot:localhost`, logged in on device `HOOKGATE`), a reader (`@alice:localhost`),
/// an application service (`as_token`, users `@hook_*:localhost`, not rate limited) and four
/// rooms alice is in: public `#alerts:localhost` and `#ops:localhost`, which the bot made, and
/// invite-only `#private:localhost` and public `#lobby:localhost`, which alice made.
pub struct Synapse {
    pub port: u16,
    pub bot_token: String,
    pub alice_token: String,
    pub as_token: String,
    pub room_id: String,
    pub ops_room_id: String,
    server: Server,
    _dir: tempfile::TempDir,
}

fn venv(program: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin").join(program)
}

impl Synapse {
    pub fn start() -> Synapse {
        let python = venv("python");
        let installed = Command::new(&python).args(["-c", "import synapse"]).output().map(|o| o.status.success());
        assert!(installed.unwrap_or(false), "matrix-synapse is missing from .venv: `make test` installs it");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = dir.path().to_owned();
        let secret = |n: u32| format!("hookgate-test-secret-{n}-{}", std::process::id());
        let config = path.join("homeserver.yaml");
        std::fs::write(
            &config,
            format!(
                "server_name: localhost\npid_file: {p}/homeserver.pid\n\
                 listeners:\n  - {{port: {port}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{{names: [client], compress: false}}]}}\n\
                 database: {{name: sqlite3, args: {{database: {p}/homeserver.db}}}}\n\
                 media_store_path: {p}/media_store\nsigning_key_path: {p}/localhost.signing.key\n\
                 registration_shared_secret: {}\nmacaroon_secret_key: {}\nform_secret: {}\n\
                 report_stats: false\nenable_registration: false\ntrusted_key_servers: []\n\
                 suppress_key_server_warning: true\nfederation_domain_whitelist: []\nurl_preview_enabled: false\n\
                 presence: {{enabled: false}}\napp_service_config_files: [{p}/hookgate-as.yaml]\n",
                secret(1),
                secret(2),
                secret(3),
                p = path.display()
            ),
        )
        .unwrap();
        let as_token = secret(4);
        std::fs::write(
            path.join("hookgate-as.yaml"),
            format!(
                "id: hookgate\nurl: null\nas_token: {as_token}\nhs_token: {}\nsender_localpart: hookgate\n\
                 rate_limited: false\nnamespaces: {{users: [{{exclusive: true, regex: '@hook_.*:localhost'}}], aliases: [], rooms: []}}\n",
                secret(5)
            ),
        )
        .unwrap();
        let generated = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config)
            .arg("--generate-keys")
            .output()
            .unwrap();
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
        let log = path.join("synapse.log");
        let start = move || {
            let log = std::fs::File::create(&log).unwrap();
            Command::new(&python)
                .args(["-m", "synapse.app.homeserver", "-c"])
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start synapse")
        };
        let server = Server { child: Some(start()), start: Box::new(start) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while matrix_call(port, "GET", "/health", None, "").0 != 200 {
            assert!(Instant::now() < deadline, "synapse never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
        for (user, password, admin) in
            [("bridgebot", "botpass123", "--no-admin"), ("alice", "alicepass123", "--no-admin")]
        {
            let made = Command::new(venv("register_new_matrix_user"))
                .arg("-c")
                .arg(path.join("homeserver.yaml"))
                .args(["-u", user, "-p", password, admin, &format!("http://127.0.0.1:{port}")])
                .output()
                .unwrap();
            assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        }
        let login = |user: &str, password: &str, device: &str| -> String {
            let body = serde_json::json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
                                          "password": password, "device_id": device});
            let (status, answer) = matrix_call(port, "POST", "/_matrix/client/v3/login", None, &body.to_string());
            assert_eq!(status, 200, "{answer}");
            answer["access_token"].as_str().unwrap().to_owned()
        };
        let bot_token = login("bridgebot", "botpass123", "HOOKGATE");
        let alice_token = login("alice", "alicepass123", "ALICE");
        let create = |token: &str, alias: &str, preset: &str| -> String {
            let room = serde_json::json!({"name": alias, "room_alias_name": alias, "preset": preset});
            let (status, made) =
                matrix_call(port, "POST", "/_matrix/client/v3/createRoom", Some(token), &room.to_string());
            assert_eq!(status, 200, "{made}");
            made["room_id"].as_str().unwrap().to_owned()
        };
        let room_id = create(&bot_token, "alerts", "public_chat");
        let ops_room_id = create(&bot_token, "ops", "public_chat");
        create(&alice_token, "private", "private_chat");
        create(&alice_token, "lobby", "public_chat");
        for room in [&room_id, &ops_room_id] {
            let join = format!("/_matrix/client/v3/join/{}", encode(room));
            assert_eq!(matrix_call(port, "POST", &join, Some(&alice_token), "{}").0, 200);
        }
        Synapse { port, bot_token, alice_token, as_token, room_id, ops_room_id, server, _dir: dir }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts it again on the same port and database, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.server.kill();
        self.server.child = Some((self.server.start)());
        let deadline = Instant::now() + Duration::from_secs(60);
        while matrix_call(self.port, "GET", "/health", None, "").0 != 200 {
            assert!(Instant::now() < deadline, "synapse never became healthy again");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The id of the room `alias` names.
    pub fn room(&self, alias: &str) -> String {
        let path = format!("/_matrix/client/v3/directory/room/{}", encode(alias));
        let (status, found) = matrix_call(self.port, "GET", &path, Some(&self.alice_token), "");
        assert_eq!(status, 200, "{found}");
        found["room_id"].as_str().unwrap().to_owned()
    }

    /// Alice invites `user` into the room `alias` names; returns the room's id.
    pub fn invite(&self, alias: &str, user: &str) -> String {
        let room = self.room(alias);
        let path = format!("/_matrix/client/v3/rooms/{}/invite", encode(&room));
        let body = serde_json::json!({ "user_id": user }).to_string();
        let (status, answer) = matrix_call(self.port, "POST", &path, Some(&self.alice_token), &body);
        assert_eq!(status, 200, "{answer}");
        room
    }

    /// `user`'s display name: its profile's, and its member event's in `room`.
    pub fn display_names(&self, user: &str, room: &str) -> (serde_json::Value, serde_json::Value) {
        let path = format!("/_matrix/client/v3/profile/{}/displayname", encode(user));
        let (_, profile) = matrix_call(self.port, "GET", &path, Some(&self.alice_token), "");
        let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.member/{}", encode(room), encode(user));
        let (_, member) = matrix_call(self.port, "GET", &path, Some(&self.alice_token), "");
        (profile["displayname"].clone(), member["displayname"].clone())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `#alerts`' `m.room.message` events as alice reads them, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.messages_in(&self.room_id)
    }

    /// A room's `m.room.message` events as alice reads them, oldest first (the last 1,000).
    pub fn messages_in(&self, room: &str) -> Vec<serde_json::Value> {
        let filter = "%7B%22types%22%3A%5B%22m.room.message%22%5D%7D";
        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000&filter={filter}", encode(room));
        let (status, answer) = matrix_call(self.port, "GET", &path, Some(&self.alice_token), "");
        assert_eq!(status, 200, "{answer}");
        let mut events = answer["chunk"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }
}

/// An id or alias as a path part.
fn encode(id: &str) -> String {
    id.replace('!', "%21").replace('#', "%23").replace(':', "%3A").replace('@', "%40")
}

/// One request to a Matrix client API on loopback: the status and the JSON answer. HTTP/1.0,
/// so the answer is never chunked.
pub fn matrix_call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { return (0, serde_json::Value::Null) };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if conn.write_all(request.as_bytes()).is_err() {
        return (0, serde_json::Value::Null);
    }
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}
