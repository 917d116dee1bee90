//! hookgate: a gateway for Slack-style incoming webhooks in front of a chat server.
//!
//! A request walks one corridor, in this order of modules:
//! `ingress` (pingora: bytes in, a reply out) -> `pipeline` (admit the head; decode, translate
//! and police the body into a `Message`) -> `delivery` (the message as a `Job` rendered by its
//! backend's kind, then sent) -> `ingress::respond` (every ending through the one table in
//! `reason`). `rules` is plain validated data at the bottom; `observe` counts and logs each hop;
//! `tls` holds certificates and backend trust for both sides; `spool` stores and delivers the
//! jobs of spooled hooks; `shared_ratelimit` asks Redis for the buckets several instances share.

pub(crate) mod active;
pub mod cli;
pub mod delivery;
pub(crate) mod ingress;
pub(crate) mod observe;
pub mod pipeline;
pub(crate) mod reason;
pub mod refusal;
pub mod rules;
pub(crate) mod shared_ratelimit;
pub(crate) mod spool;
pub(crate) mod tls;
pub mod webapi;
