//! TLS on both sides (docs/operations.md, "TLS on both sides"), with rustls through pingora's `rustls` feature:
//! the listener's certificates and their checks (`identity`), choosing one and swapping them for
//! new handshakes (`listener`), backend connections (`client`), and the admin's own CA for
//! Slack's host names (`internal_ca`).

pub mod client;
pub mod identity;
pub mod internal_ca;
pub mod listener;
