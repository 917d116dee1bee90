//! `hookgate spool status|dead|replay|drop`: the spool's admin API (docs/spool.md) from the
//! command line, over HTTP to the admin listener of a running gateway.

use clap::Subcommand;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Subcommand)]
pub enum Action {
    /// Per hook: pending and dead messages, the oldest pending age, the next attempt, the last error.
    Status,
    /// A hook's dead letters.
    Dead {
        hook: String,
        /// Include each message's payload.
        #[arg(long)]
        payload: bool,
    },
    /// Puts a hook's dead letters (or the one with ID) back at the end of its queue.
    Replay { hook: String, id: Option<String> },
    /// Removes one dead letter; without ID, every message of a hook the rules no longer have.
    Drop { hook: String, id: Option<String> },
}

/// Runs the action against the admin listener at `admin`; prints the JSON answer. Exit code 0
/// for a 2xx answer, 1 for any other, 2 when the gateway cannot be reached.
pub fn run(action: Action, admin: &str) -> i32 {
    let (method, path) = match &action {
        Action::Status => ("GET", "/spool".to_owned()),
        Action::Dead { hook, payload } => {
            ("GET", format!("/spool/{hook}/dead{}", if *payload { "?payload=1" } else { "" }))
        }
        Action::Replay { hook, id: None } => ("POST", format!("/spool/{hook}/replay")),
        Action::Replay { hook, id: Some(id) } => ("POST", format!("/spool/{hook}/dead/{id}/replay")),
        Action::Drop { hook, id: Some(id) } => ("DELETE", format!("/spool/{hook}/dead/{id}")),
        Action::Drop { hook, id: None } => ("DELETE", format!("/spool/{hook}")),
    };
    match request(admin, method, &path) {
        Ok((status, body)) => {
            print!("{body}");
            if (200..300).contains(&status) {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("hookgate: cannot ask the gateway at {admin}: {e}");
            2
        }
    }
}

/// One request on a new connection, read to its end: the admin listener closes after answering
/// `Connection: close`.
fn request(admin: &str, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut conn = TcpStream::connect(admin)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}
