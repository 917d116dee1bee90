//! HTTP/1.1 towards backends, for the kinds that speak it: the keep-alive pool and the answer
//! reader.

pub mod answer;
pub mod pool;
