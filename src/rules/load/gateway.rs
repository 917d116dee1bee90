//! `[gateway]`: the listeners, their TLS certificate, limits and timeouts.

use super::parts::Part;
use super::{positive, Merger};
use crate::rules::schema::RawGateway;
use crate::rules::{Findings, GatewaySettings, Location, ServedCertificate, TlsListener};
use crate::tls::identity::{Identity, IdentityError};
use std::net::SocketAddr;
use std::time::Duration;
use toml::Spanned;

impl Merger<'_> {
    pub(super) fn add_gateway(&mut self, file: &Part, raw: &Spanned<RawGateway>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.gateway {
            findings.error(at, format!("[gateway] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let mut gateway = GatewaySettings::default();
        for (field, target) in
            [("listen", &raw.listen), ("listen_tls", &raw.listen_tls), ("admin_listen", &raw.admin_listen)]
        {
            if let Some(addr) = target {
                if addr.get_ref().parse::<SocketAddr>().is_err() {
                    findings.error(file.at(addr), format!("{field} {:?} is not an IP:PORT address", addr.get_ref()));
                }
            }
        }
        if let Some(listen) = &raw.listen {
            gateway.listen = Some(listen.get_ref().clone());
        } else if raw.listen_tls.is_some() {
            gateway.listen = None;
        }
        gateway.tls = self.tls_listener(file, &at, raw, findings);
        if let Some(admin) = &raw.admin_listen {
            gateway.admin_listen = admin.get_ref().clone();
        }
        if let Some(max) = &raw.max_body_bytes {
            match positive(file, max, "max_body_bytes", 64 << 20, findings) {
                Some(v) => gateway.max_body_bytes = v,
                None => return,
            }
        }
        if let Some(errors) = raw.errors {
            gateway.errors = errors;
        }
        let ms = |v: &Option<Spanned<i64>>, field, default: Duration, findings: &mut Findings| {
            v.as_ref().map_or(Some(default), |v| {
                positive(file, v, field, 3_600_000, findings).map(|n| Duration::from_millis(n as u64))
            })
        };
        let defaults = GatewaySettings::default();
        let header =
            ms(&raw.client_header_timeout_ms, "client_header_timeout_ms", defaults.client_header_timeout, findings);
        let body = ms(&raw.client_body_timeout_ms, "client_body_timeout_ms", defaults.client_body_timeout, findings);
        let connections = raw
            .max_connections
            .as_ref()
            .map_or(Some(defaults.max_connections), |v| positive(file, v, "max_connections", 1_000_000, findings));
        let (Some(header), Some(body), Some(connections)) = (header, body, connections) else { return };
        gateway.client_header_timeout = header;
        gateway.client_body_timeout = body;
        gateway.max_connections = connections;
        gateway.per_hook_metrics = raw.per_hook_metrics.unwrap_or(true);
        gateway.admin_listen_public = raw.admin_listen_public.unwrap_or(false);
        if let (Some(admin), Err(e)) = (&raw.admin_listen, gateway.check_admin_listen()) {
            if admin.get_ref().parse::<SocketAddr>().is_ok() {
                findings.error(file.at(admin), e);
            }
        }
        self.gateway = Some((gateway, at));
    }

    /// `listen_tls` and the certificates it serves: `tls_cert` with `tls_key`, then each of
    /// `tls_certs`. Each pair's files must hold a key matching a leaf that has not expired, and
    /// no DNS name may be covered by two of them, or which one a client gets would be a guess.
    fn tls_listener(
        &self,
        file: &Part,
        gateway_at: &Location,
        raw: &RawGateway,
        findings: &mut Findings,
    ) -> Option<TlsListener> {
        let mut pairs = Vec::new();
        match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), Some(key)) => pairs.push((cert, key)),
            (None, None) => {}
            (cert, key) => {
                let at = cert.as_ref().or(key.as_ref()).map_or(gateway_at.clone(), |k| file.at(k));
                findings.error(at, "tls_cert and tls_key go together".into());
                return None;
            }
        }
        pairs.extend(raw.tls_certs.iter().flatten().map(|pair| (&pair.get_ref().cert, &pair.get_ref().key)));
        let listen = match (&raw.listen_tls, pairs.first()) {
            (None, None) => return None,
            (Some(listen), Some(_)) => listen,
            (Some(listen), None) => {
                findings.error(file.at(listen), "listen_tls needs tls_cert and tls_key, or tls_certs".into());
                return None;
            }
            (None, Some((cert, _))) => {
                findings.error(file.at(*cert), "tls_cert, tls_key and tls_certs are only read with listen_tls".into());
                return None;
            }
        };
        let now = std::time::SystemTime::now();
        let mut certificates: Vec<ServedCertificate> = Vec::new();
        let mut failed = false;
        for (cert, key) in pairs {
            let Some(identity) = self.identity(file, cert, key, now, findings) else {
                failed = true;
                continue;
            };
            for name in &identity.names {
                let earlier = certificates.iter().find(|c| c.identity.names.contains(name));
                if let Some(earlier) = earlier {
                    findings.error(
                        file.at(cert),
                        format!(
                            "{name} is covered by both {} and {}: a client asking for it would get either",
                            earlier.cert,
                            cert.get_ref()
                        ),
                    );
                    failed = true;
                }
            }
            certificates.push(ServedCertificate { cert: cert.get_ref().clone(), identity });
        }
        (!failed).then(|| TlsListener { listen: listen.get_ref().clone(), certificates })
    }

    /// One certificate and its key, read and checked; problems reported at the key that has them.
    fn identity(
        &self,
        file: &Part,
        cert: &Spanned<String>,
        key: &Spanned<String>,
        now: std::time::SystemTime,
        findings: &mut Findings,
    ) -> Option<Identity> {
        let (cert_at, key_at) = (file.at(cert), file.at(key));
        match Identity::load(&self.dir.join(cert.get_ref()), &self.dir.join(key.get_ref()), now) {
            Ok(identity) => {
                if identity.expires_soon(now) {
                    findings.warn(
                        cert_at,
                        format!(
                            "the certificate in {} expires at {}, within 14 days",
                            cert.get_ref(),
                            identity.expiry()
                        ),
                    );
                }
                Some(identity)
            }
            Err(e) => {
                let at = match &e {
                    IdentityError::NoKey(_) | IdentityError::BadKey { .. } | IdentityError::Mismatch { .. } => key_at,
                    IdentityError::Read { path, .. } if path.ends_with(key.get_ref()) => key_at,
                    _ => cert_at,
                };
                findings.error(at, e.to_string());
                None
            }
        }
    }
}
