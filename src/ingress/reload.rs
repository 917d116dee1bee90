//! `SIGHUP` reloads the rules (contract section 8). pingora does not handle the signal, so this
//! background service does: a valid new rule set is swapped in atomically for new requests
//! (requests in flight finish on the set they started with); an invalid one is logged with
//! `FILE:LINE` and the old set keeps serving.

use crate::delivery;
use crate::ingress::server::Active;
use crate::observe::metrics::Metrics;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

pub struct Reloader {
    pub dir: PathBuf,
    pub active: Arc<ArcSwap<Active>>,
    pub metrics: Arc<Metrics>,
}

impl Reloader {
    /// Loads the rules again and swaps them in when valid. Returns whether they were.
    pub fn reload(&self) -> bool {
        let current = self.active.load_full();
        match delivery::load_rules(&self.dir) {
            Ok(mut rules) => {
                // Listeners are bound once; moving them takes a restart or an upgrade.
                let running = &current.rules.gateway;
                if rules.gateway.listen != running.listen || rules.gateway.admin_listen != running.admin_listen {
                    log::warn!(
                        target: "hookgate",
                        "listen and admin_listen keep their running values until a restart or --upgrade"
                    );
                }
                rules.gateway.listen = running.listen.clone();
                rules.gateway.admin_listen = running.admin_listen.clone();
                let hooks = rules.hooks.len() as u64;
                self.active.store(Arc::new(Active::new(rules, &self.metrics, Some(&current))));
                self.metrics.rules_reloaded(true);
                log::info!(target: "hookgate", hooks = hooks; "rules reloaded");
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
        loop {
            tokio::select! {
                _ = hangups.recv() => { self.reload(); }
                _ = shutdown.changed() => return,
            }
        }
    }
}
