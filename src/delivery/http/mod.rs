//! HTTP/1.1 towards backends, for the kinds that speak it: the endpoint (a backend's URL and
//! trust, one request at a time), the keep-alive pool and the answer reader.

pub mod answer;
pub(crate) mod endpoint;
pub(crate) mod pool;
