//! The rule set in force: the rules with the metric handles and rate buckets built for them,
//! swapped as one on reload. Requests and the spool's worker each hold the set they started with.

use crate::observe::metrics::{Metrics, RuleHandles};
use crate::pipeline::ratelimit::Limiters;
use crate::rules::Rules;

pub struct Active {
    pub rules: Rules,
    pub handles: RuleHandles,
    pub limiters: Limiters,
}

impl Active {
    /// `previous` lends its rate buckets to hooks whose limits did not change.
    pub fn new(rules: Rules, metrics: &Metrics, previous: Option<&Active>) -> Active {
        let handles = metrics.handles(&rules);
        let limiters = Limiters::new(&rules, previous.map(|p| &p.limiters));
        Active { rules, handles, limiters }
    }
}
