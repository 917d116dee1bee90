//! The `mattermost` kind: its keys (the endpoint's, `max_message_chars`, and each hook's
//! `backend_key`), its post size (split by `delivery/split.rs`), its POST to
//! `{url}/hooks/{backend_key}` and its table of answers (docs/webhooks.md, "Responses").

use super::http::endpoint::{self, Endpoint, Request};
use super::kind::{Deliver, Exchange, Outgoing, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{Findings, Hook, KindConfig, KindRules, KindTable};
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

impl KindRules for Mattermost {
    fn name(&self) -> &'static str {
        "mattermost"
    }

    fn keys(&self) -> &'static [&'static [&'static str]] {
        &[endpoint::KEYS, &["max_message_chars"]]
    }

    fn hook_keys(&self) -> &'static [&'static str] {
        &["backend_key"]
    }

    fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let endpoint = endpoint::from_table(table, "mattermost", findings);
        let max_message_chars = table.positive("max_message_chars", 16_383, 1 << 24, findings);
        Some(Arc::new(Config { endpoint: endpoint?, max_message_chars: max_message_chars? }))
    }

    fn hook(&self, hook: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = &hook.name;
        match hook.string("backend_key", findings).ok()? {
            Some(key) if valid_backend_key(&key.value) => Some(Arc::new(Target { backend_key: key.value })),
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
            Ok(answer) => Exchange {
                upstream: Upstream::Status(answer.status),
                result: Undelivered::from_status(answer.status, answer.retry_after),
            },
            Err(failure) => {
                Exchange { upstream: Upstream::Failed(failure), result: Err(Undelivered::Unavailable(failure)) }
            }
        }
    }
}
