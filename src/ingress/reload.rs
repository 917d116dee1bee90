//! `SIGHUP` reloads the rules (docs/operations.md). pingora does not handle the signal, so this
//! background service does: a valid new rule set is swapped in atomically for new requests
//! (requests in flight finish on the set they started with); an invalid one is logged with
//! `FILE:LINE` and the old set keeps serving.

use crate::active::Active;
use crate::delivery;
use crate::observe::metrics::Metrics;
use crate::rules::{GatewaySettings, TlsListener};
use crate::tls::listener::ServingCertificate;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

pub struct Reloader {
    dir: PathBuf,
    active: Arc<ArcSwap<Active>>,
    metrics: Arc<Metrics>,
    /// The HTTPS listener's certificate, when there is one: a reload swaps in the new files'.
    serving: Option<Arc<ServingCertificate>>,
    /// Rule sets swapped out while requests still held them. They are let go here, once the
    /// last request is done: dropping 100,000 hooks on the request thread stalled requests.
    retired: Mutex<Vec<Arc<Active>>>,
}

/// How often retired rule sets are looked at.
const RETIRE_EVERY: Duration = Duration::from_millis(100);

impl Reloader {
    pub fn new(
        dir: PathBuf,
        active: Arc<ArcSwap<Active>>,
        metrics: Arc<Metrics>,
        serving: Option<Arc<ServingCertificate>>,
    ) -> Reloader {
        Reloader { dir, active, metrics, serving, retired: Mutex::new(Vec::new()) }
    }

    /// Drops the retired rule sets no request holds any more.
    fn release_retired(&self) {
        let mut retired = self.retired.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        retired.retain(|active| Arc::strong_count(active) > 1);
    }

    /// Loads the rules again and swaps them in when valid. Returns whether they were.
    pub fn reload(&self) -> bool {
        let started = std::time::Instant::now();
        let current = self.active.load_full();
        match delivery::load_rules(&self.dir) {
            Ok(new) if current.rules.spool.is_none() && new.spool.is_some() => {
                log::error!(
                    target: "hookgate",
                    "rules not reloaded: they now need a spool (a hook with delivery = \"spool\" or a bot_token) and none is running; restart to open it"
                );
                self.metrics.rules_reloaded(false);
                false
            }
            Ok(mut rules) => {
                if current.rules.spool.is_some() && rules.spool != current.rules.spool {
                    log::warn!(target: "hookgate", "[spool] settings keep their running values until a restart or --upgrade");
                }
                self.keep_listeners(&current.rules.gateway, &mut rules.gateway);
                let hooks = rules.hooks.len() as u64;
                let active = match Active::new(rules, &self.metrics, Some(&current)) {
                    Ok(active) => active,
                    Err(e) => {
                        log::error!(target: "hookgate", "rules not reloaded: {e}; the previous rules keep serving");
                        self.metrics.rules_reloaded(false);
                        return false;
                    }
                };
                self.active.store(Arc::new(active));
                self.retired.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(current);
                self.metrics.rules_reloaded(true);
                let took_ms = started.elapsed().as_millis() as u64;
                log::info!(target: "hookgate", hooks = hooks, took_ms = took_ms; "rules reloaded");
                true
            }
            Err(problems) => {
                for p in &problems {
                    log::error!(target: "hookgate", "{p}");
                }
                self.metrics.rules_reloaded(false);
                log::error!(target: "hookgate", problems = problems.len() as u64; "rules not reloaded; the previous rules keep serving");
                false
            }
        }
    }
}

impl Reloader {
    /// Listeners are bound once, so their addresses keep their running values until a restart or
    /// an upgrade; the HTTPS listener's certificate is the part a reload does change.
    fn keep_listeners(&self, running: &GatewaySettings, new: &mut GatewaySettings) {
        let addresses =
            |g: &GatewaySettings| (g.listen.clone(), g.tls.as_ref().map(|t| t.listen.clone()), g.admin_listen.clone());
        if addresses(running) != addresses(new) {
            log::warn!(
                target: "hookgate",
                "listen, listen_tls and admin_listen keep their running values until a restart or --upgrade"
            );
        }
        new.listen = running.listen.clone();
        new.admin_listen = running.admin_listen.clone();
        match (&self.serving, &running.tls, new.tls.take()) {
            (Some(serving), Some(listener), Some(loaded)) => {
                let loaded = TlsListener { listen: listener.listen.clone(), certificates: loaded.certificates };
                if let Some(certificates) = loaded.serving() {
                    serving.replace(certificates);
                }
                self.metrics.tls_cert_expiry(&loaded);
                new.tls = Some(loaded);
            }
            // The running listener keeps its certificate; one that is not running cannot start.
            _ => new.tls = running.tls.clone(),
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!(target: "hookgate", "cannot listen for SIGHUP, reload is off: {e}");
                return;
            }
        };
        let mut retire = tokio::time::interval(RETIRE_EVERY);
        loop {
            tokio::select! {
                _ = hangups.recv() => { self.reload(); }
                _ = retire.tick() => self.release_retired(),
                _ = shutdown.changed() => return,
            }
        }
    }
}
