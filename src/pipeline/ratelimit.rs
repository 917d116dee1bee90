//! Per-hook rate limits: a token bucket (governor's GCRA) per hook, `rate` tokens a second up to
//! `burst`. Every request with a valid key takes a token before its body is read. Buckets start
//! full and survive a reload for hooks whose name and limits did not change.

use crate::rules::{Hook, RateLimit, Rules};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

struct Bucket {
    name: String,
    limit: RateLimit,
    limiter: DefaultDirectRateLimiter,
}

/// One bucket per hook of a rule set, by hook index; `None` for hooks without a limit.
pub struct Limiters {
    buckets: Vec<Option<Arc<Bucket>>>,
    clock: DefaultClock,
}

impl Limiters {
    /// Buckets for `rules`, reusing `previous` ones whose hook kept its name and limits.
    pub fn new(rules: &Rules, previous: Option<&Limiters>) -> Limiters {
        // One clock for every bucket: making one calibrates it, about 30 us each, which with
        // 100,000 hooks held the start for seconds.
        let clock = previous.map_or_else(DefaultClock::default, |p| p.clock.clone());
        // By name, so a reload of many hooks costs one lookup per hook.
        let kept: HashMap<&str, &Arc<Bucket>> =
            previous.map(|p| p.buckets.iter().flatten().map(|b| (b.name.as_str(), b)).collect()).unwrap_or_default();
        let reuse = |hook: &Hook| kept.get(hook.name.as_str()).filter(|b| b.limit == hook.limit).map(|b| Arc::clone(b));
        let buckets = rules
            .hooks
            .iter()
            .map(|hook| {
                if hook.limit.rate == 0.0 {
                    return None;
                }
                Some(reuse(hook).unwrap_or_else(|| Arc::new(bucket(hook, &clock))))
            })
            .collect();
        Limiters { buckets, clock }
    }

    /// Takes a token for the hook; `Err(seconds)` until one is available (at least 1).
    pub fn check(&self, hook: usize) -> Result<(), u64> {
        let Some(Some(bucket)) = self.buckets.get(hook) else { return Ok(()) };
        bucket.limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
        })
    }
}

fn bucket(hook: &Hook, clock: &DefaultClock) -> Bucket {
    let period = Duration::from_secs_f64(1.0 / hook.limit.rate);
    let burst = NonZeroU32::new(hook.limit.burst).unwrap_or(NonZeroU32::MIN);
    // Validation keeps rate within (0, 1e6], so the period is never zero.
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX)).allow_burst(burst);
    Bucket { name: hook.name.clone(), limit: hook.limit, limiter: RateLimiter::direct_with_clock(quota, clock.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(hooks: &str) -> Rules {
        crate::delivery::rules_from_text(&format!("[backends.c]\nkind = \"log\"\n{hooks}"))
    }

    fn hook(name: &str, limits: &str) -> String {
        format!("[[hooks]]\nname = \"{name}\"\nkey = \"{name}\"\nbackend = \"c\"\n{limits}\n")
    }

    #[test]
    fn buckets_start_full_and_refuse_past_the_burst() {
        let r = rules(&(hook("a", "rate = 0.5\nburst = 3") + &hook("b", "rate = 0") + &hook("c", "")));
        let limiters = Limiters::new(&r, None);
        for _ in 0..3 {
            assert_eq!(limiters.check(0), Ok(()));
        }
        // One token every two seconds: the wait is rounded up to whole seconds, at least 1.
        let wait = limiters.check(0).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        for _ in 0..1000 {
            assert_eq!(limiters.check(1), Ok(()), "rate = 0 is unlimited");
        }
        let allowed = (0..100).filter(|_| limiters.check(2).is_ok()).count();
        assert_eq!(allowed, 25, "Slack's burst when unset");
    }

    #[test]
    fn reload_keeps_buckets_of_unchanged_hooks() {
        let before = rules(&(hook("a", "rate = 1\nburst = 2") + &hook("b", "rate = 1\nburst = 2")));
        let old = Limiters::new(&before, None);
        assert!(old.check(0).is_ok() && old.check(0).is_ok() && old.check(0).is_err());
        assert!(old.check(1).is_ok() && old.check(1).is_ok() && old.check(1).is_err());
        let after = rules(&(hook("b", "rate = 1\nburst = 3") + &hook("a", "rate = 1\nburst = 2")));
        let new = Limiters::new(&after, Some(&old));
        assert!(new.check(1).is_err(), "a kept its (empty) bucket");
        assert!(new.check(0).is_ok(), "b changed its limits and starts full");
    }
}
