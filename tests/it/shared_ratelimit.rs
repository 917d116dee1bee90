//! Shared rate limits (contract section 12): two gateway instances asking one real Redis share
//! each hook's bucket; when Redis is down or hangs, each local bucket decides alone, nothing is
//! refused because of Redis, and the errors metric counts it; when Redis is back, sharing resumes.

use crate::common;

use common::servers::Redis;
use common::GatewayProcess;
use std::time::{Duration, Instant};

const ERRORS: &str = "hookgate_ratelimit_shared_errors_total";

fn rules(redis_url: &str) -> String {
    let hook = |name: &str, rate: &str, burst: u32| {
        format!("[[hooks]]\nname = \"{name}\"\nkey = \"key-{name}\"\nbackend = \"console\"\nrate = {rate}\nburst = {burst}\n\n")
    };
    format!(
        "[ratelimit]\nredis_url = \"{redis_url}\"\nredis_timeout_ms = 100\n\n[backends.console]\nkind = \"log\"\n\n{}{}{}{}{}",
        hook("shared", "0.001", 5),
        hook("down", "0.001", 3),
        hook("hung", "0.001", 2),
        hook("back", "0.001", 2),
        hook("probe", "1000", 1000),
    )
}

/// Posts to `hook` on `gateway`: the status, the Retry-After header and how long it took.
fn post(gateway: &GatewayProcess, hook: &str) -> (u16, Option<String>, Duration) {
    let started = Instant::now();
    let response = gateway.post(&format!("/hooks/key-{hook}"), Some("application/json"), br#"{"text":"x"}"#);
    (response.status, response.header("retry-after").map(str::to_owned), started.elapsed())
}

fn errors(gateway: &GatewayProcess) -> f64 {
    gateway.metric(ERRORS).unwrap_or(0.0)
}

/// Posts to the `probe` hook until a request goes by without a Redis error: the gateway's
/// connection is back (the gateway leaves a failed Redis alone for a second).
fn wait_shared(gateway: &GatewayProcess) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let before = errors(gateway);
        assert_eq!(post(gateway, "probe").0, 200);
        if errors(gateway) == before {
            return;
        }
        assert!(Instant::now() < deadline, "the gateway never asked Redis again");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_instances_share_each_bucket_and_outlive_redis_failures() {
    let mut redis = Redis::start();
    let rules = rules(&redis.url());
    let gateways = [GatewayProcess::start(&rules), GatewayProcess::start(&rules)];

    // Shared: exactly `burst` accepted across both instances, though each local bucket holds 5.
    let answers: Vec<_> = (0..12).map(|i| post(&gateways[i % 2], "shared")).collect();
    let accepted = answers.iter().filter(|a| a.0 == 200).count();
    assert_eq!(accepted, 5, "{answers:?}");
    for (status, retry_after, _) in answers.iter().filter(|a| a.0 != 200) {
        assert_eq!(*status, 429, "{answers:?}");
        let secs: u64 = retry_after.as_deref().expect("Retry-After").parse().unwrap();
        assert!(secs >= 1, "{answers:?}");
    }
    assert!(gateways.iter().all(|g| errors(g) == 0.0), "no Redis errors while it runs");
    // The bucket is named by the hook, never by its secret key.
    let keys = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--scan", "--pattern", "hookgate:*"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&keys.stdout).trim(), "hookgate:rl:shared");

    // Redis hangs: each request waits at most the timeout, and the local bucket decides.
    redis.pause();
    let answers: Vec<_> = (0..3).map(|_| post(&gateways[0], "hung")).collect();
    redis.resume();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 429], "the local bucket's burst of 2: {answers:?}");
    assert!(answers.iter().all(|a| a.2 < Duration::from_secs(2)), "{answers:?}");
    assert!(errors(&gateways[0]) >= 1.0);
    let warned = gateways[0].wait_for_log("local buckets decide alone");
    assert!(warned.contains(&redis.url()) && warned.contains("timed out"), "{warned}");

    // Redis down: the same, and nothing answered 5xx because of it.
    redis.kill();
    let before = errors(&gateways[1]);
    let answers: Vec<_> = (0..4).map(|_| post(&gateways[1], "down")).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "the local bucket's burst of 3: {answers:?}");
    assert!(errors(&gateways[1]) >= before + 3.0, "each request decided alone is counted");

    // Redis back (empty: it keeps nothing): sharing resumes.
    redis.restart();
    for gateway in &gateways {
        wait_shared(gateway);
    }
    let answers: Vec<_> = (0..6).map(|i| post(&gateways[i % 2], "back")).collect();
    assert_eq!(answers.iter().filter(|a| a.0 == 200).count(), 2, "{answers:?}");
}
