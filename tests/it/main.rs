//! The integration tests, one binary: each module is one area, run against the real `hookgate`
//! binary (`CARGO_BIN_EXE_hookgate`), real clients and real servers on loopback, with the shared
//! harness in `common/`. One binary links pingora once; `docs/developing.md` says which modules
//! need Synapse, NATS, Redis or root, and how to run one test.

mod common;

mod cli;
mod clients;
mod deb;
mod docs;
mod formats;
mod gateway;
mod hostile;
mod imports;
mod matrix;
mod metrics;
mod nats;
mod policy;
mod policy_encodings;
mod power_loss;
mod reliability;
mod rules_scale;
mod shared_ratelimit;
mod slack_hosts;
mod spool;
mod tls;
mod translate;
mod translate_props;
mod upgrade;
mod vectors;
mod webapi;
