//! Reading any bytes as a backend's HTTP answer, with and without its body, never panics, and
//! what it returns stays within the reader's limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::future::Future;
use std::task::{Context, Poll, Waker};

fuzz_target!(|data: &[u8]| {
    for keep_body in [false, true] {
        let mut stream = data;
        let mut reading = std::pin::pin!(hookgate::delivery::http::answer::read(&mut stream, keep_body));
        // A slice never makes a read wait: the first poll finishes.
        let Poll::Ready(read) = reading.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("reading a slice waited");
        };
        if let Ok((answer, _)) = read {
            assert!((100..=999).contains(&answer.status), "status {}", answer.status);
            assert!(answer.body.as_ref().is_none_or(|b| b.len() <= 64 * 1024));
            assert!(keep_body || answer.body.is_none());
        }
    }
});
