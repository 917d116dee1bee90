//! The `mattermost` backend: POSTs the canonical JSON to `{url}/hooks/{backend_key}` over pooled
//! keep-alive connections (`pool.rs`) and reads the status from the answer (`answer.rs`).
//!
//! The exchange is made here, not through pingora's proxy loop, so the body can be any size up to
//! `max_body_bytes` and a message is sent at most once: the only retry is after a failed connect,
//! when the backend cannot have received anything.

use super::answer::{self, Answer};
use super::pool::Pool;
use bytes::Bytes;
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora_timeout::fast_timeout::fast_timeout;
use std::fmt;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct MattermostBackend {
    peer: HttpPeer,
    address: SocketAddr,
    /// `Host` header: the URL's authority as written.
    host: String,
    /// The URL's path without a trailing `/`, prefixed to `/hooks/{key}`.
    base_path: String,
    pub timeout: Duration,
    pub max_message_chars: usize,
}

impl fmt::Debug for MattermostBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MattermostBackend")
            .field("address", &self.peer._address)
            .field("host", &self.host)
            .field("base_path", &self.base_path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why there is no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Connect,
    Timeout,
    /// The connection failed after the request may have been sent.
    Io,
}

impl Failure {
    /// As it appears in logs and in the `code` label of `hookgate_upstream_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Connect => "connect_error",
            Failure::Timeout => "timeout",
            Failure::Io => "io_error",
        }
    }
}

impl MattermostBackend {
    pub fn new(url: &str, timeout_ms: u64, connect_timeout_ms: u64, max_message_chars: usize) -> Result<Self, String> {
        if url.starts_with("https://") {
            return Err("only http:// backend URLs are supported (this build has no TLS)".into());
        }
        let rest = url.strip_prefix("http://").ok_or("url must start with http://")?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(format!("url {url:?} must be http://HOST[:PORT][/PATH] without credentials or query"));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let address: SocketAddr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority:?} resolves to no address"))?;
        let mut peer = HttpPeer::new(address, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_millis(connect_timeout_ms));
        let base_path = path.trim_end_matches('/');
        Ok(MattermostBackend {
            peer,
            address,
            host: authority.to_owned(),
            base_path: if base_path.is_empty() { String::new() } else { format!("/{base_path}") },
            timeout: Duration::from_millis(timeout_ms),
            max_message_chars,
        })
    }

    /// POSTs one canonical payload within the backend's timeout.
    pub async fn post(&self, pool: &Pool, backend_key: &str, body: Bytes, request_id: &str) -> Result<Answer, Failure> {
        let exchange = async {
            let stream = match pool.get(&self.peer, self.address).await {
                Ok(stream) => stream,
                // Nothing was sent, so one more try cannot post twice.
                Err(_) => pool.get(&self.peer, self.address).await.map_err(|_| Failure::Connect)?,
            };
            self.exchange(pool, stream, backend_key, &body, request_id).await
        };
        fast_timeout(self.timeout, exchange).await.unwrap_or(Err(Failure::Timeout))
    }

    /// The request head and body, written in one piece: a flushed head followed by a separate
    /// body write costs the kernel a second send per message.
    fn request(&self, backend_key: &str, body: &[u8], request_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 256);
        // Every part was validated at load (backend_key, host) or on arrival (request id), so
        // none can carry a line break into the head.
        let _ = write!(
            out,
            "POST {}/hooks/{backend_key} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nX-Request-Id: {request_id}\r\nUser-Agent: hookgate/{}\r\n\r\n",
            self.base_path,
            self.host,
            body.len(),
            env!("CARGO_PKG_VERSION"),
        );
        out.extend_from_slice(body);
        out
    }

    async fn exchange(
        &self,
        pool: &Pool,
        mut stream: Stream,
        backend_key: &str,
        body: &[u8],
        request_id: &str,
    ) -> Result<Answer, Failure> {
        let request = self.request(backend_key, body, request_id);
        stream.write_all(&request).await.map_err(|_| Failure::Io)?;
        stream.flush().await.map_err(|_| Failure::Io)?;
        let (answer, reusable) = answer::read(&mut stream).await.map_err(|_| Failure::Io)?;
        if reusable {
            pool.put(self.address, stream);
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let b = MattermostBackend::new("http://127.0.0.1:8066", 5000, 1000, 16383).unwrap();
        assert_eq!((b.host.as_str(), b.base_path.as_str()), ("127.0.0.1:8066", ""));
        assert_eq!(b.peer._address.to_string(), "127.0.0.1:8066");
        let b = MattermostBackend::new("http://127.0.0.1:9/chat/", 5000, 1000, 16383).unwrap();
        assert_eq!((b.host.as_str(), b.base_path.as_str()), ("127.0.0.1:9", "/chat"));
        let b = MattermostBackend::new("http://localhost", 5000, 1000, 16383).unwrap();
        assert_eq!(b.peer._address.to_string(), "127.0.0.1:80");
        let b = MattermostBackend::new("http://[::1]:8066/", 5000, 1000, 16383).unwrap();
        assert_eq!(b.peer._address.to_string(), "[::1]:8066");
        for bad in ["https://x", "ftp://x", "http://", "http://u:p@host", "http://h/x?y=1", "127.0.0.1:80"] {
            assert!(MattermostBackend::new(bad, 5000, 1000, 16383).is_err(), "accepted {bad}");
        }
    }
}
