//! Idle keep-alive connections to backends, checked when taken rather than watched while idle.
//!
//! pingora's own pool starts a watcher task for every connection it is given back and asks the
//! kernel for the peer's address (`getpeername`) every time one is taken: per forwarded message,
//! a task, its wake-ups and a system call. Here a connection waits in a list; when it is taken,
//! the runtime's readiness for it tells, without a system call, whether the backend has closed it
//! or sent something unasked, in which case it is dropped. New connections are still made by
//! pingora's connector (connect timeout, socket options).

use pingora::connectors::TransportConnector;
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How long an idle backend connection is kept.
const IDLE: Duration = Duration::from_secs(60);

pub struct Pool {
    idle: Mutex<Vec<Idle>>,
    /// Idle connections kept at most, across backends; must exceed the concurrent requests to one
    /// backend for every request to find one.
    capacity: usize,
    connector: TransportConnector,
}

struct Idle {
    /// The backend's `HOST:PORT`.
    key: Arc<str>,
    stream: Stream,
    since: Instant,
}

impl Pool {
    pub fn new(capacity: usize) -> Pool {
        Pool { idle: Mutex::new(Vec::with_capacity(capacity)), capacity, connector: TransportConnector::new(None) }
    }

    /// The most recently used idle connection to `key` that is still open.
    pub fn take(&self, key: &str) -> Option<Stream> {
        while let Some(mut stream) = self.take_newest(key) {
            if quiet(&mut stream) {
                return Some(stream);
            }
        }
        None
    }

    /// A new connection to `peer`.
    pub async fn connect(&self, peer: &HttpPeer) -> pingora::Result<Stream> {
        self.connector.new_stream(peer).await
    }

    /// Keeps a connection left at the end of an answer for the next request to `key`.
    pub fn put(&self, key: Arc<str>, stream: Stream) {
        let mut idle = self.lock();
        if idle.len() >= self.capacity {
            idle.remove(0);
        }
        idle.push(Idle { key, stream, since: Instant::now() });
    }

    fn take_newest(&self, key: &str) -> Option<Stream> {
        let mut idle = self.lock();
        // Oldest first: connections idle too long are let go whichever backend they lead to.
        let now = Instant::now();
        let expired = idle.iter().take_while(|i| now.duration_since(i.since) >= IDLE).count();
        idle.drain(..expired);
        let newest = idle.iter().rposition(|i| *i.key == *key)?;
        Some(idle.remove(newest).stream)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The list stays consistent even if a holder panicked: every change is one Vec call.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// True when nothing is waiting to be read: the backend has neither closed the connection nor
/// sent anything. A connection that is not readable costs no system call to check; tokio's
/// budget is set aside so the check cannot be told "not now" instead.
fn quiet(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut read = std::pin::pin!(tokio::task::unconstrained(stream.read(&mut byte)));
    matches!(read.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A loopback listener standing in for a backend, its pool key and the peer that leads to it.
    async fn backend() -> (TcpListener, Arc<str>, HttpPeer) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        (listener, address.to_string().into(), HttpPeer::new(address, false, String::new()))
    }

    /// An idle connection when one is open, else a new one: what an endpoint does.
    async fn get(pool: &Pool, peer: &HttpPeer, key: &str) -> pingora::Result<Stream> {
        match pool.take(key) {
            Some(stream) => Ok(stream),
            None => pool.connect(peer).await,
        }
    }

    #[tokio::test]
    async fn reuses_open_connections_and_drops_closed_ones() {
        tokio::time::timeout(Duration::from_secs(10), reuse_and_drop()).await.expect("finished in time");
    }

    async fn reuse_and_drop() {
        let (listener, address, peer) = backend().await;
        let pool = Pool::new(4);

        let first = get(&pool, &peer, &address).await.unwrap();
        let (mut first_server, _) = listener.accept().await.unwrap();
        let first_id = first.id();
        pool.put(address.clone(), first);
        let again = get(&pool, &peer, &address).await.unwrap();
        assert_eq!(again.id(), first_id, "an open idle connection is reused");

        // The backend closes the idle connection: the next request gets a new one.
        pool.put(address.clone(), again);
        first_server.shutdown().await.unwrap();
        drop(first_server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (fresh, accepted) = tokio::join!(get(&pool, &peer, &address), listener.accept());
        let (mut fresh, mut server) = (fresh.unwrap(), accepted.unwrap().0);
        assert!(pool.lock().is_empty());

        // A backend that speaks first leaves the connection unusable too.
        fresh.write_all(b"x").await.unwrap();
        fresh.flush().await.unwrap();
        let mut got = [0u8; 1];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(b"unasked").await.unwrap();
        pool.put(address.clone(), fresh);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, accepted) = tokio::join!(get(&pool, &peer, &address), listener.accept());
        accepted.unwrap();
        assert!(pool.lock().is_empty());
    }

    #[tokio::test]
    async fn keeps_at_most_capacity_and_lets_old_ones_go() {
        tokio::time::timeout(Duration::from_secs(10), capacity_and_age()).await.expect("finished in time");
    }

    async fn capacity_and_age() {
        let (listener, address, peer) = backend().await;
        let pool = Pool::new(2);
        let mut servers = Vec::new();
        for _ in 0..3 {
            let (stream, accepted) = tokio::join!(pool.connector.new_stream(&peer), listener.accept());
            servers.push(accepted.unwrap().0);
            pool.put(address.clone(), stream.unwrap());
        }
        assert_eq!(pool.lock().len(), 2);

        {
            let oldest = &mut pool.lock()[0];
            oldest.since = oldest.since.checked_sub(IDLE).expect("the clock started over a minute ago");
        }
        assert!(pool.take_newest("127.0.0.1:9").is_none());
        assert_eq!(pool.lock().len(), 1, "the expired connection was let go");
    }
}
