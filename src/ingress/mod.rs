//! Ingress: everything pingora touches. The webhook listener (`server`), the reply it writes
//! (`respond`), the admin listener (`admin`) and rule reloads on `SIGHUP` (`reload`).

pub mod admin;
pub mod reload;
pub mod respond;
pub mod server;
