//! Prometheus metrics (docs/metrics.md): one registry, one event per hop, recorded where the
//! hop ends. Label values are resolved once per rule set (`RuleHandles`), so recording a request
//! touches pre-built counters and allocates nothing.

use crate::delivery::kind::Upstream;
use crate::pipeline::incoming::DROPPED_MEMBERS;
use crate::pipeline::policy::{Action, ActionKind};
use crate::pipeline::translate::blocks;
use crate::pipeline::Timings;
use crate::reason::Reason;
use crate::rules::{Overridable, Rules};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;
use std::time::Duration;

/// From 50 µs (a pipeline stage) to 30 s (a stalled backend).
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Rule sets with at most this many hooks get every hook's series up front.
pub const EAGER_HOOKS: usize = 1_000;

/// The (field, action) pairs a policy decision can produce.
const OVERRIDES: &[(Overridable, ActionKind)] = &[
    (Overridable::Username, ActionKind::Applied),
    (Overridable::Username, ActionKind::Ignored),
    (Overridable::Username, ActionKind::Rejected),
    (Overridable::Icon, ActionKind::Applied),
    (Overridable::Icon, ActionKind::Ignored),
    (Overridable::Icon, ActionKind::Rejected),
    (Overridable::Channel, ActionKind::Applied),
    (Overridable::Channel, ActionKind::Ignored),
    (Overridable::Channel, ActionKind::Rejected),
    (Overridable::Channel, ActionKind::Mapped),
    (Overridable::Type, ActionKind::Applied),
];
/// Backend answers that get a pre-built counter; others are resolved when they happen.
const UPSTREAM_CODES: &[&str] = &[
    "200",
    "201",
    "400",
    "403",
    "404",
    "413",
    "429",
    "500",
    "502",
    "503",
    "connect_error",
    "tls_error",
    "timeout",
    "io_error",
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    rejections: IntCounterVec,
    api_calls: IntCounterVec,
    overrides: IntCounterVec,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    dropped: IntCounterVec,
    /// One counter per field name that can be dropped, built up front.
    dropped_fields: Vec<(&'static str, IntCounter)>,
    inflight: IntGauge,
    reloads: IntCounterVec,
    tls_cert_expiry: IntGaugeVec,
    shared_ratelimit_errors: IntCounter,
    spool: SpoolMetrics,
    hooks: IntGauge,
    stage_decode: Histogram,
    stage_translate: Histogram,
    stage_policy: Histogram,
    stage_upstream: Histogram,
    stage_total: Histogram,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("metric registered once");
    vec
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let vec =
        HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("metric registered once");
    vec
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("metric registered once");
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let stages =
            histogram_vec(&r, "hookgate_stage_duration_seconds", "Time spent in each stage of a request.", &["stage"]);
        let build_info =
            IntGaugeVec::new(Opts::new("hookgate_build_info", "The running hookgate version."), &["version"])
                .expect("valid metric");
        r.register(Box::new(build_info.clone())).expect("metric registered once");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let reloads = counter_vec(&r, "hookgate_rules_reloads_total", "Rule reloads, by result.", &["result"]);
        for result in ["ok", "error"] {
            reloads.with_label_values(&[result]);
        }
        let dropped = counter_vec(
            &r,
            "hookgate_dropped_fields_total",
            "Slack members and blocks that have no equivalent and were dropped.",
            &["field"],
        );
        let dropped_fields =
            DROPPED_MEMBERS.iter().chain(blocks::DROPPED).map(|f| (*f, dropped.with_label_values(&[f]))).collect();
        Metrics {
            dropped,
            dropped_fields,
            requests: counter_vec(
                &r,
                "hookgate_requests_total",
                "Webhook requests answered, by hook and status.",
                &["hook", "code"],
            ),
            rejections: counter_vec(
                &r,
                "hookgate_rejections_total",
                "Webhook requests not delivered, by hook and reason.",
                &["hook", "reason"],
            ),
            api_calls: counter_vec(
                &r,
                "hookgate_api_calls_total",
                "Slack Web API calls answered, by hook, method and result (ok or Slack's error code).",
                &["hook", "method", "result"],
            ),
            overrides: counter_vec(
                &r,
                "hookgate_overrides_total",
                "Override decisions taken by hook policy, by field and action.",
                &["hook", "field", "action"],
            ),
            upstream_requests: counter_vec(
                &r,
                "hookgate_upstream_requests_total",
                "Exchanges with backends, by backend and answer (status, connect_error, tls_error, timeout, io_error).",
                &["backend", "code"],
            ),
            upstream_duration: histogram_vec(
                &r,
                "hookgate_upstream_duration_seconds",
                "Time of one exchange with a backend.",
                &["backend"],
            ),
            inflight: gauge(&r, "hookgate_inflight_requests", "Webhook requests being handled now."),
            hooks: gauge(&r, "hookgate_hooks", "Hooks in the active rule set."),
            reloads,
            tls_cert_expiry: {
                let help = "Unix time at which each of the TLS listener's certificates ends, by listen_tls and \
                            the certificate file as written.";
                let labels = &["listener", "certificate"];
                let vec = IntGaugeVec::new(Opts::new("hookgate_tls_cert_expiry_seconds", help), labels)
                    .expect("valid metric");
                r.register(Box::new(vec.clone())).expect("registered once");
                vec
            },
            shared_ratelimit_errors: {
                let help = "Requests whose shared rate limit could not be asked of Redis (an error, a timeout, or \
                            Redis resting after one), so the local bucket decided alone.";
                let c = IntCounter::new("hookgate_ratelimit_shared_errors_total", help).expect("valid metric");
                r.register(Box::new(c.clone())).expect("metric registered once");
                c
            },
            spool: SpoolMetrics {
                messages: gauge_vec(
                    &r,
                    "hookgate_spool_messages",
                    "Messages in the spool, by hook and state (pending, dead).",
                    &["hook", "state"],
                ),
                oldest: {
                    let help = "Age of each hook's oldest pending message.";
                    let vec = GaugeVec::new(Opts::new("hookgate_spool_oldest_pending_age_seconds", help), &["hook"])
                        .expect("valid metric");
                    r.register(Box::new(vec.clone())).expect("metric registered once");
                    vec
                },
                attempts: counter_vec(
                    &r,
                    "hookgate_spool_attempts_total",
                    "Spool delivery attempts, by hook and result (delivered, retry, dead).",
                    &["hook", "result"],
                ),
                discarded: counter_vec(
                    &r,
                    "hookgate_spool_discarded_total",
                    "Stored messages discarded undelivered, by hook and reason (stored_after_refusal: the \
                     store took it after its request was answered 503).",
                    &["hook", "reason"],
                ),
                commits: histogram_vec(&r, "hookgate_spool_commit_duration_seconds", "Time of one spool commit.", &[])
                    .with_label_values::<&str>(&[]),
                bytes: gauge(&r, "hookgate_spool_bytes", "Payload bytes stored in the spool, pending and dead."),
                shown: std::sync::Mutex::new(Vec::new()),
            },
            stage_decode: stages.with_label_values(&["decode"]),
            stage_translate: stages.with_label_values(&["translate"]),
            stage_policy: stages.with_label_values(&["policy"]),
            stage_upstream: stages.with_label_values(&["upstream"]),
            stage_total: stages.with_label_values(&["total"]),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding metrics gathered from our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// Label handles for a rule set; build once per load, use for every request. A hook's series are made when it first answers a request, not here: with 100,000 hooks,
    /// making all of them up front took seconds and gigabytes for series most hooks never use.
    pub fn handles(&self, rules: &Rules) -> RuleHandles {
        self.hooks.set(rules.hooks.len() as i64);
        let vecs = HookVecs {
            requests: self.requests.clone(),
            rejections: self.rejections.clone(),
            overrides: self.overrides.clone(),
        };
        let per_hook = rules.gateway.per_hook_metrics;
        let handles = RuleHandles {
            hooks: if per_hook { rules.hooks.iter().map(|_| OnceLock::new()).collect() } else { Vec::new() },
            all: (!per_hook).then(|| vecs.handles("all", true)),
            // No policy runs for a key that matched nothing.
            unknown: vecs.handles("unknown", false),
            backends: rules.backends.iter().map(|b| self.backend_handles(&b.name)).collect(),
            vecs,
        };
        if rules.hooks.len() <= EAGER_HOOKS {
            for i in 0..rules.hooks.len() {
                handles.hook(rules, Some(i));
            }
        }
        handles
    }

    fn backend_handles(&self, name: &str) -> BackendHandles {
        BackendHandles {
            name: name.to_owned(),
            codes: UPSTREAM_CODES.iter().map(|c| (*c, self.upstream_requests.with_label_values(&[name, c]))).collect(),
            duration: self.upstream_duration.with_label_values(&[name]),
        }
    }

    /// The serving certificates' notAfter, set at start and at each reload; a certificate the
    /// rules no longer name loses its series.
    pub(crate) fn tls_cert_expiry(&self, listener: &crate::rules::TlsListener) {
        self.tls_cert_expiry.reset();
        for served in &listener.certificates {
            self.tls_cert_expiry.with_label_values(&[&listener.listen, &served.cert]).set(served.identity.not_after);
        }
    }

    pub fn shared_ratelimit_errors(&self) -> IntCounter {
        self.shared_ratelimit_errors.clone()
    }

    pub fn spool(&self) -> &SpoolMetrics {
        &self.spool
    }

    pub fn rules_reloaded(&self, ok: bool) {
        self.reloads.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn inflight(&self) -> InflightGuard<'_> {
        self.inflight.inc();
        InflightGuard(&self.inflight)
    }

    /// The pipeline's stages that ran.
    pub fn stages(&self, timings: &Timings) {
        for (histogram, took) in [
            (&self.stage_decode, timings.decode),
            (&self.stage_translate, timings.translate),
            (&self.stage_policy, timings.policy),
        ] {
            if let Some(took) = took {
                histogram.observe(took.as_secs_f64());
            }
        }
    }

    pub fn upstream_stage(&self, took: Duration) {
        self.stage_upstream.observe(took.as_secs_f64());
    }

    pub fn total_stage(&self, took: Duration) {
        self.stage_total.observe(took.as_secs_f64());
    }

    pub fn dropped(&self, fields: &[&str]) {
        for field in fields {
            match self.dropped_fields.iter().find(|(f, _)| f == field) {
                Some((_, counter)) => counter.inc(),
                None => self.dropped.with_label_values(&[field]).inc(),
            }
        }
    }
}

pub struct InflightGuard<'a>(&'a IntGauge);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The per-hook counter families, to make a hook's series from.
struct HookVecs {
    requests: IntCounterVec,
    rejections: IntCounterVec,
    overrides: IntCounterVec,
}

impl HookVecs {
    fn handles(&self, label: &str, with_policy: bool) -> HookHandles {
        let overrides = if with_policy { OVERRIDES } else { &[] };
        HookHandles {
            label: label.to_owned(),
            requests: Reason::statuses()
                .into_iter()
                .map(|c| (c, self.requests.with_label_values(&[label, &c.to_string()])))
                .collect(),
            // One handle per row of the reason table; rows that share a label share its counter.
            rejections: Reason::ALL
                .iter()
                .map(|r| (*r, self.rejections.with_label_values(&[label, r.spec().metric])))
                .collect(),
            overrides: overrides
                .iter()
                .map(|&(f, a)| (f, a, self.overrides.with_label_values(&[label, f.as_str(), a.as_str()])))
                .collect(),
            posted: OnceLock::new(),
        }
    }
}

/// Handles for one rule set: per hook (by position, made on first use) and per backend, plus
/// unknown keys.
pub struct RuleHandles {
    vecs: HookVecs,
    hooks: Vec<OnceLock<HookHandles>>,
    /// Every hook's handles when `per_hook_metrics = false`.
    all: Option<HookHandles>,
    unknown: HookHandles,
    backends: Vec<BackendHandles>,
}

impl RuleHandles {
    /// The handles of the hook at `index` in `rules`, the rule set these were made for; `None`
    /// is a request whose key matched no hook.
    pub fn hook(&self, rules: &Rules, index: Option<usize>) -> &HookHandles {
        if let Some(all) = &self.all {
            return if index.is_some() { all } else { &self.unknown };
        }
        match index.and_then(|i| Some((self.hooks.get(i)?, rules.hooks.get(i)?))) {
            Some((cell, hook)) => cell.get_or_init(|| self.vecs.handles(&hook.name, true)),
            None => &self.unknown,
        }
    }

    pub fn backend(&self, index: usize) -> &BackendHandles {
        &self.backends[index]
    }
}

pub struct HookHandles {
    label: String,
    requests: Vec<(u16, IntCounter)>,
    rejections: Vec<(Reason, IntCounter)>,
    overrides: Vec<(Overridable, ActionKind, IntCounter)>,
    /// `hookgate_api_calls_total` for a `chat.postMessage` answered `ok`, the call made most: a
    /// lookup by labels hashes them every time (docs/performance.md).
    posted: OnceLock<IntCounter>,
}

impl HookHandles {
    /// The response sent: its status, and its reason when the request was not delivered.
    pub fn answered(&self, metrics: &Metrics, status: u16, reason: Option<Reason>) {
        match self.requests.iter().find(|(c, _)| *c == status) {
            Some((_, counter)) => counter.inc(),
            None => metrics.requests.with_label_values(&[&self.label, &status.to_string()]).inc(),
        }
        if let Some((_, counter)) = reason.and_then(|reason| self.rejections.iter().find(|(r, _)| *r == reason)) {
            counter.inc();
        }
    }

    /// A Web API call answered: `result` is `ok` or the error code.
    pub fn api_call(&self, metrics: &Metrics, method: &str, result: &str) {
        let labels = [self.label.as_str(), method, result];
        if (method, result) == ("chat.postMessage", "ok") {
            self.posted.get_or_init(|| metrics.api_calls.with_label_values(&labels)).inc();
        } else {
            metrics.api_calls.with_label_values(&labels).inc();
        }
    }

    pub fn overrides(&self, actions: &[Action]) {
        for action in actions {
            if let Some((_, _, counter)) =
                self.overrides.iter().find(|(f, a, _)| *f == action.field && *a == action.kind)
            {
                counter.inc();
            }
        }
    }
}

pub struct BackendHandles {
    name: String,
    codes: Vec<(&'static str, IntCounter)>,
    duration: Histogram,
}

impl BackendHandles {
    /// One exchange with the backend and how it ended. The log backend has no exchange to count.
    pub fn exchange(&self, metrics: &Metrics, upstream: Upstream, took: Duration) {
        let code = match upstream {
            Upstream::Logged | Upstream::Spooled => return,
            Upstream::Status(status) => {
                let mut buf = [0u8; 3];
                let text = status_text(status, &mut buf);
                match self.codes.iter().find(|(c, _)| *c == text) {
                    Some((_, counter)) => counter.inc(),
                    None => metrics.upstream_requests.with_label_values(&[&self.name, text]).inc(),
                }
                self.duration.observe(took.as_secs_f64());
                return;
            }
            Upstream::Failed(failure) => failure.label(),
        };
        if let Some((_, counter)) = self.codes.iter().find(|(c, _)| *c == code) {
            counter.inc();
        }
        self.duration.observe(took.as_secs_f64());
    }
}

/// A three-digit status as text without allocating.
fn status_text(status: u16, buf: &mut [u8; 3]) -> &str {
    let status = status.min(999);
    buf[0] = b'0' + (status / 100) as u8;
    buf[1] = b'0' + (status / 10 % 10) as u8;
    buf[2] = b'0' + (status % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("000")
}

/// The `reason` of a message the store took after its request was answered 503
/// (docs/spool.md, "A refused message is never delivered later"), discarded by the worker that finds it.
pub const STORED_AFTER_REFUSAL: &str = "stored_after_refusal";

/// The spool's series (docs/spool.md).
pub struct SpoolMetrics {
    messages: IntGaugeVec,
    oldest: GaugeVec,
    attempts: IntCounterVec,
    discarded: IntCounterVec,
    commits: Histogram,
    bytes: IntGauge,
    /// The hooks the gauges show now.
    shown: std::sync::Mutex<Vec<String>>,
}

impl SpoolMetrics {
    pub fn committed(&self, took: Duration) {
        self.commits.observe(took.as_secs_f64());
    }

    /// Makes a spooled hook's attempt counters, at 0, so `rate()` sees its first attempt.
    pub fn known(&self, hook: &str) {
        for result in ["delivered", "retry", "dead"] {
            self.attempts.with_label_values(&[hook, result]);
        }
        self.discarded.with_label_values(&[hook, STORED_AFTER_REFUSAL]);
    }

    /// A stored message of `hook` thrown away undelivered, for `reason`.
    pub fn discarded(&self, hook: &str, reason: &str) {
        self.discarded.with_label_values(&[hook, reason]).inc();
    }

    /// One delivery attempt of `hook`: `delivered`, `retry` or `dead`.
    pub fn attempt(&self, hook: &str, result: &str) {
        self.attempts.with_label_values(&[hook, result]).inc();
    }

    /// The store as it is now: per hook, pending and dead messages and the oldest pending age in
    /// seconds. Series are set in place and only a hook no longer listed loses its own, so a scrape
    /// never sees the gauges empty between two updates.
    pub fn stored(&self, hooks: &[(&str, u64, u64, f64)], bytes: u64) {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        for gone in shown.iter().filter(|h| !hooks.iter().any(|(hook, ..)| *hook == h.as_str())) {
            for state in ["pending", "dead"] {
                let _ = self.messages.remove_label_values(&[gone.as_str(), state]);
            }
            let _ = self.oldest.remove_label_values(&[gone.as_str()]);
        }
        shown.clear();
        for (hook, pending, dead, oldest) in hooks {
            self.messages.with_label_values(&[hook, "pending"]).set(*pending as i64);
            self.messages.with_label_values(&[hook, "dead"]).set(*dead as i64);
            self.oldest.with_label_values(&[hook]).set(*oldest);
            shown.push((*hook).to_owned());
        }
        self.bytes.set(bytes as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the policy can take has a pre-built counter.
    #[test]
    fn every_policy_action_has_a_counter() {
        use crate::pipeline::incoming::Incoming;
        use crate::pipeline::policy::decide;
        use crate::rules::{ChannelMap, Mode, Policy};
        let modes = [Mode::Allow, Mode::Ignore, Mode::Reject];
        let map = vec![ChannelMap { pattern: regex::Regex::new("^a").unwrap(), to: "b".into() }];
        let some = |v: &str| Some(v.to_owned());
        let combos: Vec<(Mode, Mode, Mode)> =
            modes.iter().flat_map(|&u| modes.iter().flat_map(move |&i| modes.map(move |c| (u, i, c)))).collect();
        for (u, i, c) in combos {
            let policy = Policy { username: u, icon: i, channel: c, channel_map: map.clone(), ..Policy::default() };
            for channel in ["a1", "x"] {
                for (field, value) in [("username", "n"), ("icon", ":e:"), ("channel", channel), ("type", "custom_t")] {
                    let mut req = Incoming { text: some("t"), ..Incoming::default() };
                    match field {
                        "username" => req.username = some(value),
                        "icon" => req.icon_emoji = some(value),
                        "channel" => req.channel = some(value),
                        _ => req.kind = some(value),
                    }
                    for action in decide(&policy, req).actions {
                        assert!(OVERRIDES.contains(&(action.field, action.kind)), "{action:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn status_text_is_three_digits() {
        let mut buf = [0u8; 3];
        assert_eq!(status_text(200, &mut buf), "200");
        assert_eq!(status_text(503, &mut buf), "503");
        assert_eq!(status_text(1200, &mut buf), "999");
    }
}
