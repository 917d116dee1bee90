//! Shared rate limits (docs/instances.md): each hook's bucket kept in a Redis that every
//! instance asks, so adding instances does not multiply a hook's rate. The local bucket
//! (`pipeline::ratelimit`) stays in front and Redis is asked only for what it let through; when
//! Redis fails or is slow, the local bucket's answer stands and the failure is counted.

use crate::pipeline::admit::Admission;
use crate::refusal::Refusal;
use crate::rules::{Hook, Rules, SharedRateLimit};
use prometheus::IntCounter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long Redis is left alone after it failed: while it is down, requests should not each
/// wait for a connection attempt.
const REST: Duration = Duration::from_secs(1);

pub struct SharedLimiter {
    settings: SharedRateLimit,
    client: redis::Client,
    /// Made on first use: the connection's tasks need the tokio runtime of the requests.
    connection: OnceLock<ConnectionManager>,
    script: redis::Script,
    errors: IntCounter,
    /// Milliseconds after `epoch` before which Redis is not asked.
    resting_until: AtomicU64,
    epoch: Instant,
}

impl SharedLimiter {
    /// `previous` is kept when the settings did not change, with its connection.
    pub fn new(
        settings: &SharedRateLimit,
        errors: IntCounter,
        previous: Option<&Arc<SharedLimiter>>,
    ) -> Option<Arc<SharedLimiter>> {
        if let Some(previous) = previous.filter(|p| &p.settings == settings) {
            return Some(previous.clone());
        }
        // The rules loader checked the URL with the same call.
        let client = redis::Client::open(settings.redis_url.as_str())
            .map_err(|e| log::error!(target: "hookgate", "shared rate limits are off: {e}"))
            .ok()?;
        Some(Arc::new(SharedLimiter {
            settings: settings.clone(),
            client,
            connection: OnceLock::new(),
            script: redis::Script::new(include_str!("gcra.lua")),
            errors,
            resting_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }))
    }

    /// Asks Redis for a token when the local bucket gave one; a refusal there turns the
    /// admission into 429. A request refused for its declared size took a local token before
    /// that check, so it takes a shared one too.
    pub async fn admit(&self, mut admission: Admission, rules: &Rules) -> Admission {
        let Some(index) = admission.hook else { return admission };
        if !matches!(admission.result, Ok(()) | Err(Refusal::TooLarge)) {
            return admission;
        }
        if let Err(retry_after) = self.check(&rules.hooks[index]).await {
            admission.result = Err(Refusal::RateLimited { retry_after });
        }
        admission
    }

    /// Takes a token from the hook's shared bucket; `Err(seconds)` when there is none. Any
    /// failure counts as an error and lets the request through.
    async fn check(&self, hook: &Hook) -> Result<(), u64> {
        if hook.limit.rate == 0.0 {
            return Ok(());
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.resting_until.load(Ordering::Relaxed) {
            self.errors.inc();
            return Ok(());
        }
        let asked = tokio::time::timeout(self.settings.timeout, self.ask(hook)).await;
        let failure = match asked {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(wait_us)) => return Err(wait_us.div_ceil(1_000_000).max(1)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("timed out after {} ms", self.settings.timeout.as_millis()),
        };
        self.errors.inc();
        let until = self.epoch.elapsed() + REST;
        // Logged once per rest, not per request.
        if self.resting_until.swap(until.as_millis() as u64, Ordering::Relaxed) <= now {
            log::warn!(target: "hookgate",
                "shared rate limit: Redis at {} failed ({failure}); local buckets decide alone for {} s",
                self.settings.redis_url, REST.as_secs());
        }
        Ok(())
    }

    async fn ask(&self, hook: &Hook) -> redis::RedisResult<u64> {
        let mut connection = self.connection().clone();
        let interval_us = 1_000_000.0 / hook.limit.rate;
        self.script
            .key(bucket_key(&hook.name))
            .arg(interval_us)
            .arg(hook.limit.burst.max(1))
            .invoke_async(&mut connection)
            .await
    }

    fn connection(&self) -> &ConnectionManager {
        self.connection.get_or_init(|| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.settings.timeout))
                .set_response_timeout(Some(self.settings.timeout))
                .set_number_of_retries(1);
            ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                .expect("a connection manager without push messages is always made")
        })
    }
}

/// The bucket's key: the hook's name, never its secret key.
fn bucket_key(hook: &str) -> String {
    format!("hookgate:rl:{hook}")
}
