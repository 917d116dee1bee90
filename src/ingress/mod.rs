//! Ingress: everything pingora touches. The webhook listener (`server`), the reply it writes
//! (`respond`), reading a request head for both listeners (`head`), the admin listener
//! (`admin`) and rule reloads on `SIGHUP` (`reload`).

pub mod admin;
mod exchange;
mod h1;
pub mod head;
pub mod reload;
pub mod respond;
pub mod server;
pub mod webapi;
