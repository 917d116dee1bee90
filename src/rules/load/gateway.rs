//! `[gateway]`: the listeners, their TLS certificate, limits and timeouts.

use super::parts::SourceFile;
use super::{positive, Merger};
use crate::rules::schema::RawGateway;
use crate::rules::{Findings, GatewaySettings, Location, TlsListener};
use crate::tls::identity::{Identity, IdentityError};
use std::net::SocketAddr;
use std::time::Duration;
use toml::Spanned;

impl Merger<'_> {
    pub(super) fn add_gateway(&mut self, file: &SourceFile, raw: &Spanned<RawGateway>, findings: &mut Findings) {
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

    /// `listen_tls` and the certificate it serves: the three keys go together, and the files
    /// must hold a key matching a leaf that has not expired.
    fn tls_listener(
        &self,
        file: &SourceFile,
        gateway_at: &Location,
        raw: &RawGateway,
        findings: &mut Findings,
    ) -> Option<TlsListener> {
        let (listen, cert, key) = match (&raw.listen_tls, &raw.tls_cert, &raw.tls_key) {
            (None, None, None) => return None,
            (Some(listen), Some(cert), Some(key)) => (listen, cert, key),
            (Some(listen), _, _) => {
                findings.error(file.at(listen), "listen_tls needs tls_cert and tls_key".into());
                return None;
            }
            (None, cert, key) => {
                let at = cert.as_ref().or(key.as_ref()).map_or(gateway_at.clone(), |k| file.at(k));
                findings.error(at, "tls_cert and tls_key are only read with listen_tls".into());
                return None;
            }
        };
        let (cert_at, key_at) = (file.at(cert), file.at(key));
        let now = std::time::SystemTime::now();
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
                Some(TlsListener { listen: listen.get_ref().clone(), identity })
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
