//! Observation: Prometheus metrics, the log format and request ids.

pub mod logging;
pub mod metrics;
pub mod request_id;
