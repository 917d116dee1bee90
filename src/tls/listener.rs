//! The HTTPS webhook listener's side: pingora's rustls acceptor asks `ServingCertificate` for
//! the certificate at every handshake, so a reload that swaps the set in reaches the next
//! handshake while connections already open keep theirs. With several certificates
//! (`tls_certs`), the client's SNI name chooses (docs/slack-hosts.md).

use super::identity::{dns_name, Identity};
use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::ALPN;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The certificates a listener serves, by the names they are for.
#[derive(Debug)]
pub struct Certificates {
    /// For a client that sends no name, or one no certificate is for.
    first: Arc<CertifiedKey>,
    /// Exact names, lowercase.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Wildcards, by the domain under the `*.`: `*.example.com` covers `a.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl Certificates {
    /// The set of `identities`, the first the default; a name covered twice goes to the first
    /// that covers it (the rules loader refuses that case, `rules/load/gateway.rs`).
    pub fn new(identities: &[&Identity]) -> Option<Certificates> {
        let first = identities.first()?.key.clone();
        let (mut exact, mut wildcard) = (HashMap::new(), HashMap::new());
        for identity in identities {
            for name in &identity.names {
                let table = match name.strip_prefix("*.") {
                    Some(domain) => wildcard.entry(domain.to_owned()),
                    None => exact.entry(name.clone()),
                };
                table.or_insert_with(|| identity.key.clone());
            }
        }
        Some(Certificates { first, exact, wildcard })
    }

    /// The certificate for a client that asked for `server_name` (SNI).
    pub fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name.map(dns_name) else {
            return self.first.clone();
        };
        let under_wildcard = || name.split_once('.').and_then(|(_, domain)| self.wildcard.get(domain));
        self.exact.get(&name).or_else(under_wildcard).unwrap_or(&self.first).clone()
    }
}

/// The certificates new handshakes choose from.
#[derive(Debug)]
pub struct ServingCertificate(ArcSwap<Certificates>);

impl ServingCertificate {
    pub fn new(certificates: Certificates) -> ServingCertificate {
        ServingCertificate(ArcSwap::from_pointee(certificates))
    }

    pub fn replace(&self, certificates: Certificates) {
        self.0.store(Arc::new(certificates));
    }
}

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().choose(hello.server_name()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;

    /// An identity for `names` whose key is told apart by its chain's one fake certificate.
    fn identity(tag: u8, names: &[&str]) -> Identity {
        let provider = rustls::crypto::ring::default_provider();
        let pkcs8 = rcgen::KeyPair::generate().unwrap().serialize_der();
        let signing = provider.key_provider.load_private_key(pkcs8.try_into().unwrap()).unwrap();
        let key = Arc::new(CertifiedKey::new(vec![CertificateDer::from(vec![tag])], signing));
        Identity { key, not_after: 0, names: names.iter().map(|n| n.to_string()).collect() }
    }

    #[test]
    fn the_client_name_chooses_and_the_first_is_the_default() {
        let (hooks, slack, wild) = (
            identity(1, &["hooks.slack.com"]),
            identity(2, &["slack.com", "www.slack.com"]),
            identity(3, &["*.example.org"]),
        );
        let set = Certificates::new(&[&hooks, &slack, &wild]).unwrap();
        let cases = [
            (None, 1),
            (Some("hooks.slack.com"), 1),
            (Some("slack.com"), 2),
            (Some("SLACK.com."), 2),
            (Some("www.slack.com"), 2),
            (Some("a.example.org"), 3),
            (Some("a.b.example.org"), 1),
            (Some("example.org"), 1),
            (Some("unknown.test"), 1),
        ];
        for (name, tag) in cases {
            assert_eq!(set.choose(name).cert[0].as_ref(), [tag], "{name:?}");
        }
        assert!(Certificates::new(&[]).is_none());
    }
}
