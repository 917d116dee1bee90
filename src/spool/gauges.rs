//! The spool's gauges, set the same way whatever the engine: every spooled hook of the rules (0
//! when it has nothing stored) and every hook the store holds messages of.

use super::HookStatus;
use crate::active::Active;
use crate::delivery::job;
use crate::observe::metrics::Metrics;
use crate::rules::Delivery;
use std::collections::BTreeMap;
use std::time::SystemTime;

pub fn set(metrics: &Metrics, active: &Active, status: &[(String, HookStatus)], bytes: u64) {
    let now_ms = job::now_ms(SystemTime::now());
    let mut hooks: BTreeMap<&str, (u64, u64, f64)> = active
        .rules
        .hooks
        .iter()
        .filter(|h| h.delivery == Delivery::Spool)
        .map(|h| (h.name.as_str(), (0, 0, 0.0)))
        .collect();
    for hook in hooks.keys() {
        metrics.spool().known(hook);
    }
    for (hook, s) in status {
        let age = s.oldest_pending_ms.map_or(0.0, |t| now_ms.saturating_sub(t) as f64 / 1000.0);
        hooks.insert(hook.as_str(), (s.pending, s.dead, age));
    }
    let rows: Vec<(&str, u64, u64, f64)> = hooks.into_iter().map(|(h, (p, d, a))| (h, p, d, a)).collect();
    metrics.spool().stored(&rows, bytes);
}
