//! The rule set in force: the rules with the routes, metric handles and rate buckets built for
//! them, swapped as one on reload. Requests and the spool's worker each hold the set they started
//! with.

use crate::delivery::route::Routes;
use crate::observe::metrics::{Metrics, RuleHandles};
use crate::pipeline::ratelimit::Limiters;
use crate::rules::Rules;
use crate::shared_ratelimit::SharedLimiter;
use std::sync::Arc;

pub struct Active {
    pub rules: Rules,
    /// Each hook's way to its backend, by hook position.
    pub routes: Routes,
    pub handles: RuleHandles,
    pub limiters: Limiters,
    /// Set when `[ratelimit]` names a Redis.
    pub shared_limiter: Option<Arc<SharedLimiter>>,
}

impl Active {
    /// `previous` lends its rate buckets to hooks whose limits did not change, and its Redis
    /// connection when `[ratelimit]` did not change. `Err` when a hook cannot be routed
    /// (`delivery/route.rs`).
    pub fn new(rules: Rules, metrics: &Metrics, previous: Option<&Active>) -> Result<Active, String> {
        let routes = Routes::build(&rules)?;
        let handles = metrics.handles(&rules);
        let limiters = Limiters::new(&rules, previous.map(|p| &p.limiters));
        let shared_limiter = rules.shared_ratelimit.as_ref().and_then(|settings| {
            let previous = previous.and_then(|p| p.shared_limiter.as_ref());
            SharedLimiter::new(settings, metrics.shared_ratelimit_errors(), previous)
        });
        Ok(Active { rules, routes, handles, limiters, shared_limiter })
    }
}
