//! `hookgate tls internal-ca` (docs/slack-hosts.md): a certificate authority of the admin's own
//! and a leaf it signs for the names hookgate answers as (Slack's, by default), so clients that
//! cannot be pointed elsewhere reach hookgate over HTTPS once the CA is trusted on their machines.
//!
//! The CA is made once and reused: its key is created with `O_EXCL`, so no run can replace it,
//! and a directory with only half a CA is refused rather than repaired. Keys are EC P-256 and
//! written mode 0600; the leaf is written whole or not at all (a temporary file renamed).

use super::identity::dns_name;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::pem::PemObject;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// The names a leaf is for when none are given.
pub const SLACK_NAMES: [&str; 2] = ["hooks.slack.com", "slack.com"];
/// How long a new CA lasts.
const CA_DAYS: i64 = 3650;
/// How long a leaf lasts: within the 398 days some clients accept from any CA; renewing is
/// running the command again (the CA is kept) and a SIGHUP.
const LEAF_DAYS: i64 = 397;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no names: give --names a comma-separated list of DNS names")]
    NoNames,
    #[error("{0:?} is not a DNS name")]
    BadName(String),
    #[error("{} exists without {}: a CA is reused whole or not at all, and never replaced; move it aside to make a new one", .present.display(), .missing.display())]
    HalfCa { present: PathBuf, missing: PathBuf },
    #[error("cannot write {}: {error}", .path.display())]
    Write { path: PathBuf, error: std::io::Error },
    #[error("cannot read the CA in {}: {reason}", .path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("cannot make the certificate: {0}")]
    Make(#[from] rcgen::Error),
}

/// What a run wrote.
#[derive(Debug)]
pub struct Issued {
    /// The CA certificate: what the clients' machines trust.
    pub ca_cert: PathBuf,
    /// Whether this run made the CA (false: an existing one signed).
    pub ca_made: bool,
    pub leaf_cert: PathBuf,
    pub leaf_key: PathBuf,
    pub names: Vec<String>,
    pub leaf_not_after: OffsetDateTime,
}

/// Makes (or reuses) the CA in `dir` and writes a leaf for `names` signed by it.
pub fn issue(dir: &Path, names: &[String], now: OffsetDateTime) -> Result<Issued, CaError> {
    let names = checked(names)?;
    std::fs::create_dir_all(dir).map_err(|error| CaError::Write { path: dir.to_owned(), error })?;
    let dir = dir.canonicalize().map_err(|error| CaError::Write { path: dir.to_owned(), error })?;
    let (ca_cert, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (issuer, issuer_key, ca_made) = match (ca_cert.exists(), ca_key.exists()) {
        (true, true) => {
            let (issuer, key) = read_ca(&ca_cert, &ca_key)?;
            (issuer, key, false)
        }
        (false, false) => {
            let (issuer, key) = make_ca(&ca_cert, &ca_key, now)?;
            (issuer, key, true)
        }
        (true, false) => return Err(CaError::HalfCa { present: ca_cert, missing: ca_key }),
        (false, true) => return Err(CaError::HalfCa { present: ca_key, missing: ca_cert }),
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, names[0].as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    let leaf_not_after = now + Duration::days(LEAF_DAYS);
    params.not_after = leaf_not_after;
    let leaf = params.signed_by(&key, &issuer, &issuer_key)?;
    let stem = file_stem(&names[0]);
    let (leaf_cert, leaf_key) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}.key")));
    replace(&leaf_key, key.serialize_pem().as_bytes(), 0o600)?;
    replace(&leaf_cert, leaf.pem().as_bytes(), 0o644)?;
    Ok(Issued { ca_cert, ca_made, leaf_cert, leaf_key, names, leaf_not_after })
}

/// The names as a leaf carries them: lowercase DNS names (a leading `*.` allowed), each once.
fn checked(names: &[String]) -> Result<Vec<String>, CaError> {
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|n| dns_name(n.trim())) {
        let labels = name.strip_prefix("*.").unwrap_or(&name);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.len() > 253 || !labels.split('.').all(label_ok) {
            return Err(CaError::BadName(name));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return Err(CaError::NoNames);
    }
    Ok(out)
}

/// A file name for a leaf named after `name`: `*` is not a character for file names.
fn file_stem(name: &str) -> String {
    name.replace('*', "wildcard")
}

fn make_ca(cert_path: &Path, key_path: &Path, now: OffsetDateTime) -> Result<(rcgen::Certificate, KeyPair), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let common_name =
        if host.is_empty() { "hookgate internal CA".to_owned() } else { format!("hookgate internal CA ({host})") };
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.distinguished_name.push(DnType::OrganizationName, "hookgate");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_DAYS);
    let cert = params.self_signed(&key)?;
    // The key first, and only if no key is there: a CA key is never overwritten.
    create_new(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    create_new(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok((cert, key))
}

/// The CA of an earlier run, as an issuer: its own certificate is not reissued.
fn read_ca(cert_path: &Path, key_path: &Path) -> Result<(rcgen::Certificate, KeyPair), CaError> {
    let bad = |path: &Path, reason: String| CaError::BadCa { path: path.to_owned(), reason };
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()));
    let key = KeyPair::from_pem(&read(key_path)?).map_err(|e| bad(key_path, e.to_string()))?;
    let pem = read(cert_path)?;
    let der =
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| bad(cert_path, e.to_string()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| bad(cert_path, e.to_string()))?;
    if parsed.public_key().raw != key.public_key_der().as_slice() {
        return Err(bad(key_path, format!("it is not the key of {}", cert_path.display())));
    }
    let params = CertificateParams::from_ca_cert_der(&der).map_err(|e| bad(cert_path, e.to_string()))?;
    // Signed again with the same subject, key and key identifier, it names the issuer exactly as
    // the stored certificate does, which is all a leaf takes from it; the stored one stays as is.
    let issuer = params.self_signed(&key)?;
    Ok((issuer, key))
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|error| CaError::Write { path: path.to_owned(), error })
}

/// Writes `path` whole: a temporary file beside it, renamed over it.
fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    create_new(&temporary, contents, mode)?;
    std::fs::rename(&temporary, path).map_err(|error| CaError::Write { path: path.to_owned(), error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    /// Whether a client trusting only `ca` accepts `leaf` for `name`, as rustls's verifier says.
    fn accepted(ca: &Path, leaf: &Path, name: &str) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let leaf = CertificateDer::from_pem_file(leaf).unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_ca_signs_a_leaf_for_slacks_names_and_is_reused_after() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("ca");
        let now = OffsetDateTime::now_utc();
        let first = issue(&dir, &names(&SLACK_NAMES), now).unwrap();
        assert!(first.ca_made);
        assert_eq!(first.names, ["hooks.slack.com", "slack.com"]);
        for name in SLACK_NAMES {
            accepted(&first.ca_cert, &first.leaf_cert, name).unwrap();
        }
        assert!(accepted(&first.ca_cert, &first.leaf_cert, "example.com").is_err(), "only its names");
        assert_eq!((mode(&dir.join("ca.key")), mode(&first.leaf_key)), (0o600, 0o600));
        let ca_key = std::fs::read(dir.join("ca.key")).unwrap();
        let ca_cert = std::fs::read(&first.ca_cert).unwrap();

        let second = issue(&dir, &names(&["Chat.Example.test.", "*.example.test"]), now).unwrap();
        assert!(!second.ca_made);
        assert_eq!(second.names, ["chat.example.test", "*.example.test"]);
        assert!(second.leaf_cert.ends_with("chat.example.test.pem"));
        accepted(&second.ca_cert, &second.leaf_cert, "chat.example.test").unwrap();
        accepted(&second.ca_cert, &second.leaf_cert, "a.example.test").unwrap();
        assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), ca_key, "the CA key is never rewritten");
        assert_eq!(std::fs::read(&second.ca_cert).unwrap(), ca_cert);
        // The first leaf is still trusted: clients keep one CA through renewals.
        accepted(&second.ca_cert, &first.leaf_cert, "slack.com").unwrap();
    }

    #[test]
    fn bad_directories_names_and_half_cas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = issue(&file.join("ca"), &names(&SLACK_NAMES), now).unwrap_err();
        assert!(matches!(err, CaError::Write { .. }), "{err}");

        for bad in [&["exa mple.com"][..], &["-a.com"], &["a..com"], &["*"], &["a.*.com"]] {
            let err = issue(dir.path(), &names(bad), now).unwrap_err();
            assert!(matches!(err, CaError::BadName(_)), "{bad:?}: {err}");
        }
        assert!(matches!(issue(dir.path(), &[], now).unwrap_err(), CaError::NoNames));
        assert!(!dir.path().join("ca.key").exists(), "nothing written for refused names");

        let half = dir.path().join("half");
        std::fs::create_dir(&half).unwrap();
        std::fs::write(half.join("ca.key"), "a key of someone's").unwrap();
        let err = issue(&half, &names(&SLACK_NAMES), now).unwrap_err();
        assert!(err.to_string().contains("ca.key exists without"), "{err}");
        assert_eq!(std::fs::read_to_string(half.join("ca.key")).unwrap(), "a key of someone's");

        // A CA whose key is another's.
        let mixed = dir.path().join("mixed");
        issue(&mixed, &names(&SLACK_NAMES), now).unwrap();
        let other = dir.path().join("other");
        issue(&other, &names(&SLACK_NAMES), now).unwrap();
        std::fs::copy(other.join("ca.key"), mixed.join("ca.key")).unwrap();
        let err = issue(&mixed, &names(&SLACK_NAMES), now).unwrap_err();
        assert!(err.to_string().contains("it is not the key of"), "{err}");
    }
}
