//! Real servers the tests start on loopback (Debian's `redis-server`), each in a
//! directory of its own, on a free port, stopped by its PID when the test ends.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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
