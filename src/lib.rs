//! hookgate: a gateway for Slack-style incoming webhooks in front of a Mattermost server.
//!
//! A request walks one corridor: `decode` (bytes to `Incoming`), `policy` (hook rules to the
//! `Canonical` payload), then a `backend` delivers it and `respond` answers the client. The stages
//! in between the network ends are pure functions; `pipeline::process` runs them in order.

pub mod admin;
pub mod backend;
pub mod canonical;
pub mod cli;
pub mod decode;
pub mod incoming;
pub mod json;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod rejection;
pub mod reload;
pub mod request_id;
pub mod respond;
pub mod rules;
pub mod server;
pub mod split;
pub mod translate;
