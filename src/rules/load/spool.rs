//! `[spool]` and `[ratelimit]`: where spooled jobs are kept and where shared rate limits live.

use super::parts::Part;
use super::{positive, Merger};
use crate::rules::schema::{RawRateLimit, RawSpool};
use crate::rules::{Findings, NatsSettings, SharedRateLimit, SpoolEngine, SpoolSettings, DEFAULT_REDIS_TIMEOUT};
use std::time::Duration;
use toml::Spanned;

impl Merger<'_> {
    pub(super) fn add_spool(&mut self, file: &Part, raw: &Spanned<RawSpool>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.spool {
            findings.error(at, format!("[spool] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let mut spool = SpoolSettings::new(self.dir);
        spool.engine = spool_engine(file, raw, findings);
        if let Some(path) = &raw.path {
            if path.get_ref().is_empty() {
                findings.error(file.at(path), "spool path must not be empty".into());
            }
            spool.path = self.dir.join(path.get_ref());
        }
        if let Some(max) = &raw.max_bytes {
            spool.max_bytes = positive(file, max, "max_bytes", i64::MAX, findings).unwrap_or(0) as u64;
        }
        for (field, value, target) in [
            ("max_age", &raw.max_age, &mut spool.max_age),
            ("message_max_age", &raw.message_max_age, &mut spool.message_max_age),
            ("retry_initial", &raw.retry_initial, &mut spool.retry_initial),
            ("retry_max", &raw.retry_max, &mut spool.retry_max),
        ] {
            let Some(value) = value else { continue };
            match humantime::parse_duration(value.get_ref()) {
                Ok(d) if !d.is_zero() => *target = d,
                _ => findings.error(
                    file.at(value),
                    format!("{field} {:?} is not a duration such as 500ms, 1s, 5m or 72h", value.get_ref()),
                ),
            }
        }
        if spool.retry_initial > spool.retry_max {
            let at = raw.retry_initial.as_ref().map_or(at.clone(), |v| file.at(v));
            findings.error(at, "retry_initial must not be longer than retry_max".into());
        }
        self.spool = Some((spool, at));
    }

    pub(super) fn add_ratelimit(&mut self, file: &Part, raw: &Spanned<RawRateLimit>, findings: &mut Findings) {
        let at = file.at(raw);
        if let Some((_, first)) = &self.ratelimit {
            findings.error(at, format!("[ratelimit] is defined twice; first at {first}"));
            return;
        }
        let raw = raw.get_ref();
        let Some(url) = &raw.redis_url else {
            findings.error(at, "[ratelimit] needs redis_url, the Redis the instances share".into());
            return;
        };
        // Checked by the client that will use it, so what passes here also connects there.
        if let Err(e) = redis::Client::open(url.get_ref().as_str()) {
            findings.error(file.at(url), format!("redis_url {:?} is not a Redis URL: {e}", url.get_ref()));
        }
        let timeout = match &raw.redis_timeout_ms {
            Some(ms) => positive(file, ms, "redis_timeout_ms", 10_000, findings)
                .map_or(DEFAULT_REDIS_TIMEOUT, |ms| Duration::from_millis(ms as u64)),
            None => DEFAULT_REDIS_TIMEOUT,
        };
        self.ratelimit = Some((SharedRateLimit { redis_url: url.get_ref().clone(), timeout }, at));
    }
}

/// `engine` and the keys of the NATS engine, which only it may have.
fn spool_engine(file: &Part, raw: &RawSpool, findings: &mut Findings) -> SpoolEngine {
    let engine = raw.engine.as_ref().map_or("embedded", |e| e.get_ref().as_str());
    let nats_keys = [
        ("nats_urls", raw.nats_urls.as_ref().map(|v| file.at(v))),
        ("stream", raw.stream.as_ref().map(|v| file.at(v))),
        ("replicas", raw.replicas.as_ref().map(|v| file.at(v))),
    ];
    match engine {
        "embedded" => {
            for (key, at) in nats_keys {
                if let Some(at) = at {
                    findings.error(at, format!("{key} is for engine = \"nats\"; this spool is embedded"));
                }
            }
            SpoolEngine::Embedded
        }
        "nats" => {
            let mut nats =
                NatsSettings { urls: vec!["nats://127.0.0.1:4222".into()], stream: "HOOKGATE".into(), replicas: 1 };
            if let Some(urls) = &raw.nats_urls {
                if urls.get_ref().is_empty() {
                    findings.error(file.at(urls), "nats_urls must name at least one server".into());
                }
                for url in urls.get_ref() {
                    if !url.starts_with("nats://") || url.len() == "nats://".len() {
                        findings.error(file.at(urls), format!("nats_urls: {url:?} is not a nats://HOST:PORT address"));
                    }
                }
                nats.urls = urls.get_ref().clone();
            }
            if let Some(stream) = &raw.stream {
                let name = stream.get_ref();
                let valid = (1..=32).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    findings.error(file.at(stream), format!("stream {name:?} must be 1-32 of A-Z a-z 0-9 _ -"));
                }
                nats.stream = name.clone();
            }
            if let Some(replicas) = &raw.replicas {
                nats.replicas = positive(file, replicas, "replicas", 5, findings).unwrap_or(1);
            }
            SpoolEngine::Nats(nats)
        }
        other => {
            // Only a written engine can name another.
            if let Some(written) = &raw.engine {
                let message = format!("engine {other:?} is not a spool engine; use \"embedded\" or \"nats\"");
                findings.error(file.at(written), message);
            }
            SpoolEngine::Embedded
        }
    }
}
