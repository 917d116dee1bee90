//! The HTTPS webhook listener's side: pingora's rustls acceptor asks `ServingCertificate` for
//! the certificate at every handshake, so a reload that swaps it in reaches the next handshake
//! while connections already open keep theirs.

use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::ALPN;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// The certificate new handshakes get.
#[derive(Debug)]
pub struct ServingCertificate(ArcSwap<CertifiedKey>);

impl ServingCertificate {
    pub fn new(key: Arc<CertifiedKey>) -> ServingCertificate {
        ServingCertificate(ArcSwap::new(key))
    }

    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.0.store(key);
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// pingora's settings for a listener serving `certificate`: TLS 1.2 and 1.3 (all rustls
/// speaks), HTTP/1.1 offered by ALPN.
pub fn settings(certificate: Arc<ServingCertificate>) -> TlsSettings {
    // Paths are not used once a resolver is set; `intermediate` is the constructor that takes none
    // of the other options.
    let mut settings = TlsSettings::intermediate("", "").expect("no files are read here");
    settings.set_cert_resolver(certificate);
    settings.set_alpn(ALPN::H1);
    settings
}
