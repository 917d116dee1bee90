//! The listener's certificate chain and private key, read from PEM files and checked before
//! anything serves with them: both files there, the key the certificate's own, the leaf in date.

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A leaf closer than this to its end is worth a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// A chain and its key, ready to serve.
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: Arc<CertifiedKey>,
    /// The leaf's notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
    /// The DNS names the leaf is for (its subjectAltName entries, lowercase; `*.` for a
    /// wildcard): what clients' SNI is matched against (`listener.rs`).
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {}: {error}", .path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{} holds no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key (PKCS#8, RSA or EC)", .0.display())]
    NoKey(PathBuf),
    #[error("the certificate in {} cannot be read: {reason}", .path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("the private key in {} cannot be used: {reason}", .path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key in {} does not match the certificate in {}", .key.display(), .cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} expired at {}", .path.display(), date(*.not_after))]
    Expired { path: PathBuf, not_after: i64 },
}

impl Identity {
    /// Reads and checks `cert` (the chain, leaf first) and `key`.
    pub fn load(cert: &Path, key: &Path, now: SystemTime) -> Result<Identity, IdentityError> {
        let chain = certificates(cert)?;
        let key_pem = read(key)?;
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| IdentityError::NoKey(key.to_owned()))?;
        let signing = default_provider()
            .key_provider
            .load_private_key(private)
            .map_err(|e| IdentityError::BadKey { path: key.to_owned(), reason: e.to_string() })?;
        let certified = CertifiedKey::new(chain, signing);
        if certified.keys_match().is_err() {
            return Err(IdentityError::Mismatch { cert: cert.to_owned(), key: key.to_owned() });
        }
        let (not_after, names) = leaf_facts(&certified.cert[0])
            .map_err(|reason| IdentityError::BadCertificate { path: cert.to_owned(), reason })?;
        if not_after <= unix(now) {
            return Err(IdentityError::Expired { path: cert.to_owned(), not_after });
        }
        Ok(Identity { key: Arc::new(certified), not_after, names })
    }

    /// True when the leaf ends within `EXPIRY_WARNING` of `now`.
    pub fn expires_soon(&self, now: SystemTime) -> bool {
        self.not_after - unix(now) < EXPIRY_WARNING.as_secs() as i64
    }

    /// The leaf's end, written as a UTC date and time.
    pub fn expiry(&self) -> String {
        date(self.not_after)
    }
}

/// Every certificate in a PEM file, in order.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let pem = read(path)?;
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| IdentityError::BadCertificate { path: path.to_owned(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(IdentityError::NoCertificate(path.to_owned()));
    }
    Ok(chain)
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|error| IdentityError::Read { path: path.to_owned(), error })
}

/// A DNS name as names are compared here, in leaves, SNI and `tls internal-ca`: lowercase,
/// without the root's trailing dot.
pub fn dns_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The leaf's notAfter and DNS names.
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(i64, Vec<String>), String> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
    let alt_names = parsed.subject_alternative_name().map_err(|e| e.to_string())?;
    let mut names: Vec<String> = alt_names
        .into_iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns_name(dns)),
            _ => None,
        })
        .collect();
    names.dedup();
    Ok((parsed.validity().not_after.timestamp(), names))
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn date(unix_seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
