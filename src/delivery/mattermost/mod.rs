//! The `mattermost` kind: its keys (the endpoint's, `max_message_chars`, and each hook's
//! `backend_key`), its post size (split by `delivery/split.rs`), its POST to
//! `{url}/hooks/{backend_key}` and its table of answers (docs/webhooks.md, "Responses").

use super::http::answer::Answer;
use super::http::endpoint::{self, Endpoint, Request};
use super::kind::{Deliver, Exchange, Outgoing, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{BackendTable, Findings, Hook, HookKeys, KindConfig, KindRules};
use std::sync::Arc;

pub struct Mattermost;

/// A mattermost backend, read from its table.
#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// Longest post text, in code points; longer text is split.
    pub max_message_chars: usize,
}

/// A hook's part: the backend's own id for the webhook.
#[derive(Debug)]
pub struct Target {
    pub backend_key: String,
}

const KEYS: &[&str] =
    &["url", "timeout_ms", "connect_timeout_ms", "max_message_chars", "ca_file", "tls_server_name", "tls_verify"];

impl KindRules for Mattermost {
    fn name(&self) -> &'static str {
        "mattermost"
    }

    fn keys(&self) -> &'static [&'static str] {
        KEYS
    }

    fn backend(&self, table: &BackendTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let endpoint = endpoint::from_table(table, "mattermost", findings);
        let max_message_chars = table.positive("max_message_chars", 16_383, 1 << 24, findings);
        Some(Arc::new(Config { endpoint: endpoint?, max_message_chars: max_message_chars? }))
    }

    fn hook(&self, hook: &HookKeys, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        if !hook.no_rooms("mattermost", findings) {
            return None;
        }
        let name = hook.name;
        match &hook.backend_key {
            Some(key) if valid_backend_key(key.value) => Some(Arc::new(Target { backend_key: key.value.to_owned() })),
            Some(key) => {
                findings.error(
                    key.at.clone(),
                    format!("hook `{name}`: backend_key must be 1-128 characters of A-Z a-z 0-9 _ -"),
                );
                None
            }
            None => {
                findings
                    .error(hook.at.clone(), format!("hook `{name}` uses a mattermost backend and needs a backend_key"));
                None
            }
        }
    }
}

/// Backend keys go into a URL path, so they are held to the characters ids are made of.
fn valid_backend_key(key: &str) -> bool {
    (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

impl Deliver for Mattermost {
    type Backend = Config;
    type Target = Target;

    fn render(&self, config: &Config, _hook: &Hook, message: Message) -> Vec<String> {
        crate::delivery::split::split(message, config.max_message_chars).iter().map(Message::to_json).collect()
    }

    async fn send(&self, config: &Config, target: &Target, post: Outgoing<'_>) -> Exchange {
        let request = Request {
            method: "POST",
            path: &["/hooks/", &target.backend_key],
            headers: &[],
            body: &post.body,
            request_id: post.request_id,
            keep_body: false,
        };
        match config.endpoint.send(post.pool, &request).await {
            Ok(answer) => Exchange { upstream: Upstream::Status(answer.status), result: classify(answer) },
            Err(failure) => {
                Exchange { upstream: Upstream::Failed(failure), result: Err(Undelivered::Unavailable(failure)) }
            }
        }
    }
}

/// Mattermost's answers in the table of docs/webhooks.md ("Responses"). 4xx statuses that say nothing about
/// the client's request (401, 405, ...) mean the gateway or backend is misconfigured.
pub fn classify(answer: Answer) -> Result<(), Undelivered> {
    match answer.status {
        200..=299 => Ok(()),
        400 => Err(Undelivered::Refused),
        403 => Err(Undelivered::Forbidden),
        404 => Err(Undelivered::NotFound),
        413 => Err(Undelivered::TooLarge),
        429 => Err(Undelivered::RateLimited { retry_after: answer.retry_after.unwrap_or(1).max(1) }),
        status => Err(Undelivered::Error(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_answers_map_to_the_contract_table() {
        let a = |status, retry_after| Answer { status, retry_after, body: None };
        let cases = [
            (a(200, None), Ok(())),
            (a(201, None), Ok(())),
            (a(400, None), Err(Undelivered::Refused)),
            (a(403, None), Err(Undelivered::Forbidden)),
            (a(404, None), Err(Undelivered::NotFound)),
            (a(413, None), Err(Undelivered::TooLarge)),
            (a(429, Some(30)), Err(Undelivered::RateLimited { retry_after: 30 })),
            (a(429, None), Err(Undelivered::RateLimited { retry_after: 1 })),
            (a(429, Some(0)), Err(Undelivered::RateLimited { retry_after: 1 })),
            (a(401, None), Err(Undelivered::Error(401))),
            (a(301, None), Err(Undelivered::Error(301))),
            (a(500, None), Err(Undelivered::Error(500))),
            (a(501, None), Err(Undelivered::Error(501))),
        ];
        for (answer, want) in cases {
            assert_eq!(classify(answer.clone()), want, "{answer:?}");
        }
    }
}
