//! TLS towards backends: whom to trust (the system's roots, plus a `ca_file`), which name to
//! verify and send as SNI, and why a handshake failed. One rustls config per backend, made at
//! load, so every connection shares its roots and its session cache.

use super::identity::{certificates, IdentityError};
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::tls::client::handshake;
use pingora::protocols::Stream;
use pingora::tls::TlsConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring::default_provider, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// How a backend's certificate is checked.
pub struct TrustOptions<'a> {
    /// A PEM file of CA certificates trusted in addition to the system's.
    pub ca_file: Option<&'a Path>,
    /// The name verified and sent as SNI; the URL's host when `None`.
    pub server_name: Option<&'a str>,
    /// False accepts any certificate (the handshake's signatures are still checked).
    pub verify: bool,
}

/// A backend's TLS client.
#[derive(Clone)]
pub struct BackendTls {
    connector: TlsConnector,
    /// The name as rustls parses it (an IP address or a DNS name), checked at load.
    server_name: String,
}

impl fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendTls").field("server_name", &self.server_name).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("ca_file: {0}")]
    CaFile(IdentityError),
    #[error("ca_file {path}: {reason}")]
    BadCa { path: String, reason: String },
    #[error("{0:?} is not a DNS name or IP address to verify")]
    BadName(String),
}

impl BackendTls {
    /// The client for a backend whose URL names `host`.
    pub fn new(host: &str, options: &TrustOptions<'_>) -> Result<BackendTls, TrustError> {
        let name = options.server_name.unwrap_or(host);
        // `[::1]` in a URL is the address `::1`.
        let name = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        ServerName::try_from(name).map_err(|_| TrustError::BadName(name.to_owned()))?;
        let provider = Arc::new(default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .expect("ring supports TLS 1.2 and 1.3");
        let mut config = if options.verify {
            let mut roots = RootCertStore::clone(system_roots());
            if let Some(path) = options.ca_file {
                for ca in certificates(path).map_err(TrustError::CaFile)? {
                    roots
                        .add(ca)
                        .map_err(|e| TrustError::BadCa { path: path.display().to_string(), reason: e.to_string() })?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(BackendTls { connector: TlsConnector::from(Arc::new(config)), server_name: name.to_owned() })
    }

    /// The handshake over a TCP connection made by pingora's connector; on failure, the reason
    /// and rustls' words for it.
    pub async fn handshake(&self, stream: Stream) -> Result<Stream, (TlsFailure, String)> {
        // The connector boxes its TCP stream; rustls needs it by type.
        let Ok(tcp) = stream.into_any().downcast::<TcpStream>() else {
            return Err((TlsFailure::Handshake, "not a TCP connection".into()));
        };
        match handshake(&self.connector, &self.server_name, *tcp).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(e) => {
                let text = e.to_string();
                Err((TlsFailure::from_text(&text), text))
            }
        }
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }
}

/// The system's roots, read once per process (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).
/// Unreadable ones are skipped: a backend behind a `ca_file` does not need them.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        match pingora::tls::load_native_certs() {
            Ok(certs) => {
                roots.add_parsable_certificates(certs);
            }
            Err(e) => log::warn!(target: "hookgate", "cannot read the system's CA certificates: {e}"),
        }
        roots
    })
}

/// Why a backend handshake failed, as the log line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The chain does not lead to a trusted root.
    Untrusted,
    /// The certificate is not for the name verified.
    NameMismatch,
    /// The certificate is out of its validity period.
    Expired,
    /// Anything else: an alert, no shared version or cipher, a broken record.
    Handshake,
}

impl TlsFailure {
    pub fn label(self) -> &'static str {
        match self {
            TlsFailure::Untrusted => "untrusted",
            TlsFailure::NameMismatch => "name_mismatch",
            TlsFailure::Expired => "expired",
            TlsFailure::Handshake => "handshake",
        }
    }

    /// Reads the reason from pingora's handshake error. pingora keeps only the text of the rustls
    /// error it wraps, so the reason is read from rustls' own wording of each case.
    fn from_text(text: &str) -> TlsFailure {
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        if has(&["NotValidForName", "not valid for name"]) {
            TlsFailure::NameMismatch
        } else if has(&["certificate expired", "certificate not valid yet", "Expired", "NotValidYet"])
            && !text.contains("RevocationList")
        {
            TlsFailure::Expired
        } else if has(&["invalid peer certificate"]) {
            TlsFailure::Untrusted
        } else {
            TlsFailure::Handshake
        }
    }
}

/// `tls_verify = false`: any certificate is taken; what the peer signs in the handshake is still
/// checked against the certificate it sent.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{AlertDescription, CertificateError as C, Error};

    /// Each reason as rustls words it, wrapped as pingora's handshake wraps it.
    #[test]
    fn reasons_from_rustls_errors() {
        let name = ServerName::try_from("chat.internal").unwrap().to_owned();
        let cases = [
            (Error::InvalidCertificate(C::UnknownIssuer), TlsFailure::Untrusted),
            (Error::InvalidCertificate(C::BadSignature), TlsFailure::Untrusted),
            (Error::InvalidCertificate(C::BadEncoding), TlsFailure::Untrusted),
            (Error::InvalidCertificate(C::NotValidForName), TlsFailure::NameMismatch),
            (
                Error::InvalidCertificate(C::NotValidForNameContext { expected: name, presented: vec!["x".into()] }),
                TlsFailure::NameMismatch,
            ),
            (Error::InvalidCertificate(C::Expired), TlsFailure::Expired),
            (
                Error::InvalidCertificate(C::ExpiredContext {
                    time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(20)),
                    not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(10)),
                }),
                TlsFailure::Expired,
            ),
            (Error::InvalidCertificate(C::NotValidYet), TlsFailure::Expired),
            (Error::InvalidCertificate(C::ExpiredRevocationList), TlsFailure::Untrusted),
            (Error::AlertReceived(AlertDescription::ProtocolVersion), TlsFailure::Handshake),
            (Error::HandshakeNotComplete, TlsFailure::Handshake),
        ];
        for (error, want) in cases {
            let text = format!("TLS connect() failed: tls connect error, cause: {error}, SNI: chat.internal");
            assert_eq!(TlsFailure::from_text(&text), want, "{text}");
        }
    }
}
