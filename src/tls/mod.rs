//! TLS on both sides (docs/operations.md, "TLS on both sides"), with rustls through pingora's `rustls` feature:
//! the listener's certificate and its checks (`identity`), swapping it for new handshakes
//! (`listener`), and backend connections (`client`).

pub mod client;
pub mod identity;
pub mod listener;
