//! Power loss (contract section 17): every message answered `ok` by a spooled hook is delivered
//! after the machine loses power at any moment. `kill -9` cannot show it, since the page cache
//! outlives the process; here the store lives on a filesystem that keeps only what was made
//! durable (`common/lazyfs.rs`), and each round kills the gateway under concurrent load at a
//! random moment, cuts the power, checks the store with SQLite's own integrity check, and starts
//! the gateway again on what is left.
//!
//! The message map of the Web API (docs/webapi.md) keeps a direct post's entry without waiting
//! for the disk and syncs it soon after (`spool/embedded/syncer.rs`): a cut a few seconds after
//! the last post keeps every entry.
//!
//! It needs root and /dev/fuse; elsewhere it says why and passes without running.

use crate::common;
use crate::common::lazyfs;

use common::{GatewayProcess, RecordingBackend};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An even number: the last round has the backend up.
const ROUNDS: usize = 16;
const CLIENTS: usize = 4;

fn rules(spool: &Path, backend_url: &str) -> String {
    format!(
        r#"
[spool]
path = "{}"
retry_initial = "50ms"
retry_max = "200ms"
{}"#,
        spool.display(),
        common::spooled_alerts(backend_url)
    )
}

/// One spooled post on a connection of its own; `Some(true)` for `200 ok`, `Some(false)` for
/// another answer, `None` when the gateway died before answering.
fn post(addr: SocketAddr, text: &str) -> Option<bool> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = format!(r#"{{"text":"{text}"}}"#);
    let request = format!(
        "POST /hooks/key-spool HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    answer.split(' ').nth(1)?;
    Some(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nok"))
}

/// A small generator for the moments of the cuts; its seed is printed so a failure can be
/// replayed.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// SQLite's own check of the store as the cut left it.
fn integrity(db: &Path) -> String {
    let script = format!(
        "import sqlite3; c = sqlite3.connect({:?}); print(c.execute('PRAGMA integrity_check').fetchone()[0])",
        db.display().to_string()
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr).trim())
}

/// The power-loss filesystem mounted at `mountpoint`, or why it cannot be (printed).
fn mount(mountpoint: &Path) -> Option<lazyfs::LazyFs> {
    std::fs::create_dir(mountpoint).unwrap();
    if !Path::new("/dev/fuse").exists() {
        println!("skipped: /dev/fuse is missing, so the power-loss filesystem cannot be mounted");
        return None;
    }
    lazyfs::LazyFs::mount(mountpoint).map_err(|why| println!("skipped: {why} (it needs root and /dev/fuse)")).ok()
}

#[test]
fn every_message_answered_ok_survives_power_cuts_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("disk");
    let Some(mut disk) = mount(&mountpoint) else { return };
    let spool = mountpoint.join("spool");
    let backend = RecordingBackend::start();
    let seed = std::env::var("POWER_LOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1);
    println!("power-loss seed: {seed} (POWER_LOSS_SEED={seed} replays these moments)");
    let mut moments = Moments(seed);
    let acknowledged = Mutex::new(Vec::<String>::new());
    let mut refused = 0;
    for round in 0..ROUNDS {
        // Half the rounds with the backend down, so the store grows; half with it up, so
        // deliveries remove messages while others are appended.
        if round % 2 == 0 {
            backend.stop();
        } else {
            backend.restart();
        }
        let gateway = GatewayProcess::start(&rules(&spool, &backend.url()));
        let stop = AtomicBool::new(false);
        let cut_after = Duration::from_millis(50 + moments.next(600));
        let answers: Vec<(usize, usize)> = std::thread::scope(|scope| {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|client| {
                    let (stop, acknowledged, addr) = (&stop, &acknowledged, gateway.addr);
                    scope.spawn(move || {
                        let (mut ok, mut not_ok) = (0, 0);
                        for n in 0.. {
                            if stop.load(Ordering::Acquire) {
                                break;
                            }
                            let text = format!("p{round}-c{client}-{n}");
                            match post(addr, &text) {
                                Some(true) => {
                                    acknowledged.lock().unwrap().push(text);
                                    ok += 1;
                                }
                                Some(false) => not_ok += 1,
                                None => break,
                            }
                        }
                        (ok, not_ok)
                    })
                })
                .collect();
            std::thread::sleep(cut_after);
            // The power goes: the gateway stops where it is, then everything not made durable
            // is gone.
            gateway.signal("KILL");
            stop.store(true, Ordering::Release);
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        drop(gateway);
        disk.cut_power().unwrap_or_else(|e| panic!("round {round}: {e}"));
        refused += answers.iter().map(|(_, n)| n).sum::<usize>();
        let check = integrity(&spool.join("spool.sqlite3"));
        assert_eq!(check, "ok", "round {round}: the store after the cut");
    }
    // Power back for good, and the backend up (the last round had it up): everything answered
    // ok arrives.
    let gateway = GatewayProcess::start(&rules(&spool, &backend.url()));
    let acknowledged = acknowledged.into_inner().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let arrived: HashSet<String> = backend.texts().into_iter().collect();
        let missing: Vec<&String> = acknowledged.iter().filter(|t| !arrived.contains(*t)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<_>>();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (writes, fsyncs) = disk.counts();
    println!(
        "power loss: {ROUNDS} cuts, {} messages answered ok, {refused} refused, {} posts delivered, {writes} writes \
         and {fsyncs} fsyncs to the disk",
        acknowledged.len(),
        backend.received().len()
    );
    drop(gateway);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(acknowledged.len() >= ROUNDS, "too little was acknowledged to show anything: {}", acknowledged.len());
}

/// Direct `chat.postMessage` calls on the log backend, then, after the syncer's gathering, a
/// `kill -9` and a power cut: every `ts` answered can still be updated.
#[test]
fn the_message_map_reaches_the_disk_soon_after_a_direct_post() {
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("disk");
    let Some(mut disk) = mount(&mountpoint) else { return };
    let rules = format!(
        r#"
[spool]
path = "{}"

[backends.console]
kind = "log"

[[hooks]]
name = "bot"
bot_token = "xoxb-power"
backend = "console"
rate = 0
"#,
        mountpoint.join("spool").display()
    );
    let call = |gateway: &GatewayProcess, method: &str, body: String| {
        let headers = [("Authorization", "Bearer xoxb-power"), ("Content-Type", "application/json")];
        let answer = gateway.connect().request("POST", &format!("/api/{method}"), &headers, body.as_bytes());
        serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    };
    let gateway = GatewayProcess::start(&rules);
    let posted: Vec<String> = (0..20)
        .map(|n| {
            let answer = call(&gateway, "chat.postMessage", format!(r#"{{"channel":"c","text":"m{n}"}}"#));
            answer["ts"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
        })
        .collect();
    // The syncer gathers for half a second; three seconds leave room for a slow disk and a busy
    // machine.
    std::thread::sleep(Duration::from_secs(3));
    gateway.signal("KILL");
    drop(gateway);
    disk.cut_power().unwrap();
    assert_eq!(integrity(&mountpoint.join("spool").join("spool.sqlite3")), "ok");
    let gateway = GatewayProcess::start(&rules);
    for ts in &posted {
        let answer = call(&gateway, "chat.update", format!(r#"{{"channel":"c","ts":"{ts}","text":"edited"}}"#));
        assert_eq!(answer["ok"], true, "ts {ts} after the power cut: {answer}");
    }
}
