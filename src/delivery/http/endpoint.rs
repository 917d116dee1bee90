//! A backend's HTTP endpoint: one request at a time (a kind's JSON body to a path under the
//! backend's URL) over pooled keep-alive connections (`pool.rs`), and the answer's status, its
//! `Retry-After` and, when asked for, its body (`answer.rs`).
//!
//! The exchange is made here, not through pingora's proxy loop, so the body can be any size up to
//! `max_body_bytes` and a message is sent at most once: the only retry is after a failed connect,
//! when the backend cannot have received anything.

use crate::delivery::http::answer::{self, Answer};
use crate::delivery::http::pool::Pool;
use crate::delivery::kind::{Exchange, Failure, Outgoing, Undelivered, Upstream};
use crate::rules::{Findings, KindTable, Written};
use crate::tls::client::{BackendTls, TlsFailure, TrustError, TrustOptions};
use pingora::protocols::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora_timeout::fast_timeout::fast_timeout;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Where a backend is reached. A host name is resolved when a new connection is made,
/// never at load, so `hookgate check` needs no DNS and a changed address is followed by the next
/// connection.
pub struct Endpoint {
    /// The backend's name, for log lines.
    backend: String,
    /// `HOST:PORT`, resolved when connecting.
    address: String,
    /// The key of its idle connections in the pool: the address, and for `https://` what the
    /// connection was verified against, so no connection is shared across trust settings.
    pool_key: Arc<str>,
    /// The peer, built once, when the host is an IP address.
    literal: Option<HttpPeer>,
    connect_timeout: Duration,
    /// Set for `https://` URLs.
    tls: Option<BackendTls>,
    /// `Host` header: the URL's authority as written.
    host: String,
    /// The URL's path without a trailing `/`, prefixed to every request's path.
    base_path: String,
    pub timeout: Duration,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("pool_key", &self.pool_key)
            .field("host", &self.host)
            .field("base_path", &self.base_path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One request: `path` is the parts written one after another below the URL's path.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a [&'a str],
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub request_id: &'a str,
    /// Whether the answer's body is wanted (up to 64 KiB).
    pub keep_body: bool,
}

/// Why a backend's URL or TLS keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{0}")]
    Url(String),
    #[error("{0}")]
    Trust(#[from] TrustError),
}

impl Endpoint {
    /// `trust` is read for `https://` URLs only.
    pub fn new(
        backend: &str,
        url: &str,
        timeout_ms: u64,
        connect_timeout_ms: u64,
        trust: &TrustOptions<'_>,
    ) -> Result<Self, EndpointError> {
        let malformed = || {
            EndpointError::Url(format!("url {url:?} must be http[s]://HOST[:PORT][/PATH] without credentials or query"))
        };
        let (rest, default_port, secure) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, "80", false),
            (_, Some(rest)) => (rest, "443", true),
            _ => return Err(EndpointError::Url("url must start with http:// or https://".into())),
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(malformed());
        }
        let address = if authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:{default_port}")
        };
        let (host, port) = address.rsplit_once(':').unwrap_or((&address, default_port));
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(malformed());
        }
        let tls = if secure { Some(BackendTls::new(host, trust)?) } else { None };
        let pool_key = match &tls {
            None => address.clone(),
            Some(tls) => format!(
                "https://{address} name={} ca={} verify={}",
                tls.server_name(),
                trust.ca_file.map_or("system".into(), |p| p.display().to_string()),
                trust.verify
            ),
        };
        let connect_timeout = Duration::from_millis(connect_timeout_ms);
        let literal = address.parse::<SocketAddr>().ok().map(|address| peer(address, connect_timeout));
        let base_path = path.trim_end_matches('/');
        Ok(Endpoint {
            backend: backend.to_owned(),
            pool_key: pool_key.into(),
            address,
            literal,
            connect_timeout,
            tls,
            host: authority.to_owned(),
            base_path: if base_path.is_empty() { String::new() } else { format!("/{base_path}") },
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// Sends one request within the backend's timeout.
    pub async fn send(&self, pool: &Pool, request: &Request<'_>) -> Result<Answer, Failure> {
        let exchange = async {
            // Connecting is boxed: pingora's connect future is about 8 KiB, and held inline it
            // would be copied with every request's future, though most reuse a connection.
            let stream = match pool.take(&self.pool_key) {
                Some(stream) => stream,
                None => match Box::pin(self.connect(pool)).await {
                    Ok(stream) => stream,
                    // Nothing was sent, so one more try cannot post twice. A failed handshake is
                    // not tried again: a certificate does not change in a millisecond.
                    Err(Failure::Connect) => Box::pin(self.connect(pool)).await?,
                    Err(failure) => return Err(failure),
                },
            };
            self.exchange(pool, stream, request).await
        };
        fast_timeout(self.timeout, exchange).await.unwrap_or(Err(Failure::Timeout))
    }

    /// One call to a REST API (Matrix's client API, Mattermost's) with `authorization`, its
    /// answer's body kept; or the exchange that says why there is no answer.
    pub(crate) async fn call(
        &self,
        post: &Outgoing<'_>,
        authorization: &str,
        method: &str,
        path: &[&str],
        body: &[u8],
    ) -> Result<Answer, Exchange> {
        let request = Request {
            method,
            path,
            headers: &[("Authorization", authorization)],
            body,
            request_id: post.request_id,
            keep_body: true,
        };
        self.send(post.pool, &request).await.map_err(|failure| Exchange {
            upstream: Upstream::Failed(failure),
            result: Err(Undelivered::Unavailable(failure)),
        })
    }

    /// A new connection, resolving the host first when it is a name, with its TLS handshake
    /// for `https://`.
    async fn connect(&self, pool: &Pool) -> Result<Stream, Failure> {
        let resolved;
        let peer = match &self.literal {
            Some(peer) => peer,
            None => {
                let mut addresses = tokio::net::lookup_host(&self.address).await.map_err(|_| Failure::Connect)?;
                let address = addresses.next().ok_or(Failure::Connect)?;
                resolved = peer(address, self.connect_timeout);
                &resolved
            }
        };
        let stream = pool.connect(peer).await.map_err(|_| Failure::Connect)?;
        let Some(tls) = &self.tls else { return Ok(stream) };
        let handshake = fast_timeout(self.connect_timeout, tls.handshake(stream));
        let (reason, detail) = match handshake.await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(failed)) => failed,
            Err(_) => (TlsFailure::Handshake, format!("no handshake within {} ms", self.connect_timeout.as_millis())),
        };
        log::warn!(
            target: "hookgate",
            backend = self.backend.as_str(),
            address = self.address.as_str(),
            server_name = tls.server_name(),
            reason = reason.label(),
            error = detail.as_str();
            "TLS handshake with the backend failed"
        );
        Err(Failure::Tls(reason))
    }

    /// The request head and body, written in one piece: a flushed head followed by a separate
    /// body write costs the kernel a second send per message.
    fn encode(&self, request: &Request<'_>) -> Vec<u8> {
        let Request { method, path, headers, body, request_id, .. } = request;
        let mut out = Vec::with_capacity(body.len() + 256);
        // Every part was validated at load (path parts, host, header values) or on arrival
        // (request id), or percent-encoded by its kind, so none can carry a line break into the
        // head. Appended piece by piece: `write!` cost about a thousand instructions a request.
        let mut put = |pieces: &[&str]| pieces.iter().for_each(|piece| out.extend_from_slice(piece.as_bytes()));
        put(&[method, " ", &self.base_path]);
        put(path);
        put(&[" HTTP/1.1\r\nHost: ", &self.host, "\r\n"]);
        if !body.is_empty() || *method != "GET" {
            let mut digits = itoa::Buffer::new();
            put(&["Content-Type: application/json\r\nContent-Length: ", digits.format(body.len()), "\r\n"]);
        }
        for (name, value) in headers.iter() {
            put(&[name, ": ", value, "\r\n"]);
        }
        put(&["X-Request-Id: ", request_id, "\r\nUser-Agent: hookgate/", env!("CARGO_PKG_VERSION"), "\r\n\r\n"]);
        out.extend_from_slice(body);
        out
    }

    async fn exchange(&self, pool: &Pool, mut stream: Stream, request: &Request<'_>) -> Result<Answer, Failure> {
        let encoded = self.encode(request);
        stream.write_all(&encoded).await.map_err(|_| Failure::Io)?;
        stream.flush().await.map_err(|_| Failure::Io)?;
        let (answer, reusable) = answer::read(&mut stream, request.keep_body).await.map_err(|_| Failure::Io)?;
        if reusable {
            pool.put(self.pool_key.clone(), stream);
        }
        Ok(answer)
    }
}

/// A path part as REST APIs read it (Matrix's, Mattermost's): everything but unreserved
/// characters percent-encoded, so a name from a request never changes the path's shape.
pub fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len() * 3);
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The backend keys of an HTTP endpoint, which every HTTP kind lists among its own.
pub const KEYS: &[&str] = &["url", "timeout_ms", "connect_timeout_ms", "ca_file", "tls_server_name", "tls_verify"];

/// The endpoint a backend table of a kind describes: `url`, `timeout_ms`, `connect_timeout_ms`
/// and, for `https://`, `ca_file`, `tls_server_name` and `tls_verify`. Problems go to `findings`.
pub fn from_table(table: &KindTable, kind: &str, findings: &mut Findings) -> Option<Endpoint> {
    let url = table.string("url", findings).ok()?;
    let Some(url) = url else {
        findings.error(table.at.clone(), format!("backend `{}` of kind {kind} needs a url", table.name));
        return None;
    };
    let timeout = table.positive("timeout_ms", 5_000, 600_000, findings);
    let connect = table.positive("connect_timeout_ms", 1_000, 600_000, findings);
    let ca_file = table.string("ca_file", findings);
    let server_name = table.string("tls_server_name", findings);
    let verify = table.boolean("tls_verify", findings);
    let (Some(timeout), Some(connect), Ok(ca_file), Ok(server_name), Ok(verify)) =
        (timeout, connect, ca_file, server_name, verify)
    else {
        return None;
    };
    let name = &table.name;
    let tls_keys =
        [ca_file.as_ref().map(|w| &w.at), server_name.as_ref().map(|w| &w.at), verify.as_ref().map(|w| &w.at)];
    if !url.value.starts_with("https://") {
        if let Some(at) = tls_keys.into_iter().flatten().next() {
            let message = format!("backend `{name}`: ca_file, tls_server_name and tls_verify need an https:// url");
            findings.error(at.clone(), message);
            return None;
        }
    } else if let Some(Written { value: false, at }) = &verify {
        findings.warn(
            at.clone(),
            format!("backend `{name}`: tls_verify = false accepts any certificate; anyone on the path can read the messages"),
        );
    }
    let ca_path = ca_file.as_ref().map(|f| table.dir.join(&f.value));
    let trust = TrustOptions {
        ca_file: ca_path.as_deref(),
        server_name: server_name.as_ref().map(|n| n.value.as_str()),
        verify: verify.is_none_or(|v| v.value),
    };
    match Endpoint::new(name, &url.value, timeout as u64, connect as u64, &trust) {
        Ok(endpoint) => Some(endpoint),
        Err(e) => {
            let at = match &e {
                EndpointError::Url(_) => url.at,
                EndpointError::Trust(TrustError::BadName(_)) => server_name.map_or(url.at, |n| n.at),
                EndpointError::Trust(_) => ca_file.map_or(url.at, |f| f.at),
            };
            findings.error(at, format!("backend `{name}`: {e}"));
            None
        }
    }
}

fn peer(address: SocketAddr, connect_timeout: Duration) -> HttpPeer {
    let mut peer = HttpPeer::new(address, false, String::new());
    peer.options.connection_timeout = Some(connect_timeout);
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let parts = |e: &Endpoint| (e.pool_key.to_string(), e.host.clone(), e.base_path.clone(), e.literal.is_some());
        let system = TrustOptions { ca_file: None, server_name: None, verify: true };
        let cases = [
            ("http://127.0.0.1:8066", ("127.0.0.1:8066", "127.0.0.1:8066", "", true)),
            ("http://127.0.0.1:9/chat/", ("127.0.0.1:9", "127.0.0.1:9", "/chat", true)),
            // A name is kept as written and resolved when connecting: no DNS at load.
            ("http://localhost", ("localhost:80", "localhost", "", false)),
            ("http://chat.invalid:8065/mm", ("chat.invalid:8065", "chat.invalid:8065", "/mm", false)),
            ("http://[::1]:8066/", ("[::1]:8066", "[::1]:8066", "", true)),
            (
                "https://chat.invalid/mm",
                ("https://chat.invalid:443 name=chat.invalid ca=system verify=true", "chat.invalid", "/mm", false),
            ),
            ("https://[::1]:8443", ("https://[::1]:8443 name=::1 ca=system verify=true", "[::1]:8443", "", true)),
        ];
        for (url, (key, host, base, literal)) in cases {
            let e = Endpoint::new("chat", url, 5000, 1000, &system).unwrap();
            assert_eq!(parts(&e), (key.to_owned(), host.to_owned(), base.to_owned(), literal), "{url}");
        }
        for bad in
            ["ftp://x", "http://", "https://", "http://u:p@host", "http://h/x?y=1", "127.0.0.1:80", "http://h:99999"]
        {
            assert!(Endpoint::new("chat", bad, 5000, 1000, &system).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn tls_server_name_replaces_the_host() {
        let named = TrustOptions { ca_file: None, server_name: Some("chat.internal"), verify: false };
        let e = Endpoint::new("chat", "https://127.0.0.1:8443", 5000, 1000, &named).unwrap();
        assert_eq!(&*e.pool_key, "https://127.0.0.1:8443 name=chat.internal ca=system verify=false");
        let bad = TrustOptions { ca_file: None, server_name: Some("not a name"), verify: true };
        assert!(matches!(
            Endpoint::new("chat", "https://127.0.0.1", 5000, 1000, &bad),
            Err(EndpointError::Trust(TrustError::BadName(_)))
        ));
    }

    /// Every request's future is moved into a box and through a timeout; pingora's connect
    /// future (about 8 KiB) stays out of it, boxed on the rare path that connects.
    #[test]
    fn a_request_future_stays_small() {
        let system = TrustOptions { ca_file: None, server_name: None, verify: true };
        let endpoint = Endpoint::new("x", "http://127.0.0.1:1", 1, 1, &system).unwrap();
        let pool = Pool::new(1);
        let request = Request { method: "POST", path: &[], headers: &[], body: b"", request_id: "r", keep_body: false };
        let size = std::mem::size_of_val(&endpoint.send(&pool, &request));
        assert!(size < 2048, "Endpoint::send's future is {size} bytes");
    }
}
