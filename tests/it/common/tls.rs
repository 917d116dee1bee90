//! Certificates made fresh for each test (a CA and leaves it signs, with rcgen), rustls server
//! configs for TLS backends, and a rustls client that shows what the gateway's listener offers.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use time::{Duration as Days, OffsetDateTime};

/// A certificate authority for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate, PEM: what clients are told to trust.
    pub pem: String,
}

/// A leaf certificate and its key.
pub struct Leaf {
    /// The leaf followed by the CA certificate, PEM.
    pub chain: String,
    pub key: String,
    pub der: Vec<u8>,
    /// notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = OffsetDateTime::now_utc() - Days::days(1);
        params.not_after = OffsetDateTime::now_utc() + Days::days(3650);
        let cert = params.self_signed(&key).unwrap();
        let pem = cert.pem();
        TestCa { cert, key, pem }
    }

    /// A leaf for `names` (DNS names or IP addresses) valid from `from_days` to `to_days` from now.
    pub fn leaf_between(&self, names: &[&str], from_days: i64, to_days: i64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let not_after = OffsetDateTime::now_utc() + Days::days(to_days);
        params.not_before = OffsetDateTime::now_utc() + Days::days(from_days);
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            chain: format!("{}{}", cert.pem(), self.pem),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
            not_after: not_after.unix_timestamp(),
        }
    }

    /// A leaf for `names`, valid for 90 days.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_between(names, -1, 90)
    }
}

/// A rustls server config serving this chain and key.
pub fn server_config(chain_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// What one HTTPS exchange with the gateway showed.
pub struct Exchange {
    pub status: u16,
    pub body: String,
    /// The leaf certificate the server presented.
    pub leaf: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<rustls::ProtocolVersion>,
}

/// A rustls client trusting `ca_pem`, offering h2 and http/1.1. Sessions are not resumed, so
/// every connection shows the certificate the server serves now.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// POSTs `body` to `path` over a new TLS connection to `addr`, verified as `name`.
pub fn post(config: &Arc<rustls::ClientConfig>, addr: SocketAddr, name: &str, path: &str, body: &str) -> Exchange {
    try_post(config, addr, name, path, body).unwrap_or_else(|e| panic!("HTTPS POST to {addr}: {e}"))
}

/// As `post`, returning the error a handshake or exchange ran into.
pub fn try_post(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    name: &str,
    path: &str,
    body: &str,
) -> std::io::Result<Exchange> {
    let server = ServerName::try_from(name.to_owned()).unwrap();
    let session = rustls::ClientConnection::new(config.clone(), server).unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(super::WAIT))?;
    let mut stream = rustls::StreamOwned::new(session, tcp);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let session = &reader.get_ref().conn;
    Ok(Exchange {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        leaf: session.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default(),
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        version: session.protocol_version(),
    })
}
