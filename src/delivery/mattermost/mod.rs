//! The `mattermost` kind: its keys (the endpoint's, `max_message_chars`, `api_token` with `team`,
//! and each hook's `backend_key`), its post size (split by `delivery/split.rs`), and its two ways
//! in: an incoming webhook, a POST to `{url}/hooks/{backend_key}` with its table of answers
//! (docs/webhooks.md, "Responses"), or with `api_token` the REST API as a bot account
//! (`api.rs`), whose posts can be threaded, updated and deleted (docs/webapi.md, "Backends").

mod api;

use super::http::endpoint::{self, Endpoint, Request};
use super::kind::{Deliver, Exchange, Outgoing, Placed, Undelivered, Upstream};
use crate::pipeline::message::Message;
use crate::rules::{Findings, Hook, KindConfig, KindRules, KindTable};
use api::Api;
use std::sync::Arc;

pub struct Mattermost;

/// A mattermost backend, read from its table.
#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// Longest post text, in code points; longer text is split.
    pub max_message_chars: usize,
    /// Set with `api_token` and `team`: every post goes through the REST API.
    api: Option<Api>,
}

/// A hook's part: the backend's own id for the webhook, which a backend with `api_token` does
/// not need.
#[derive(Debug)]
pub struct Target {
    pub backend_key: Option<String>,
}

impl KindRules for Mattermost {
    fn name(&self) -> &'static str {
        "mattermost"
    }

    fn keys(&self) -> &'static [&'static [&'static str]] {
        &[endpoint::KEYS, &["max_message_chars", "api_token", "team"]]
    }

    fn hook_keys(&self) -> &'static [&'static str] {
        &["backend_key"]
    }

    fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let endpoint = endpoint::from_table(table, "mattermost", findings);
        let max_message_chars = table.positive("max_message_chars", 16_383, 1 << 24, findings);
        let api = api_keys(table, findings);
        Some(Arc::new(Config { endpoint: endpoint?, max_message_chars: max_message_chars?, api: api? }))
    }

    fn hook(
        &self,
        hook: &KindTable,
        backend: &Arc<dyn KindConfig>,
        findings: &mut Findings,
    ) -> Option<Arc<dyn KindConfig>> {
        let name = &hook.name;
        let api = backend.clone().into_any().downcast::<Config>().ok().is_some_and(|c| c.api.is_some());
        match hook.string("backend_key", findings).ok()? {
            Some(key) if api => {
                findings.warn(
                    key.at.clone(),
                    format!("hook `{name}`: backend_key is not used on a backend with api_token and is ignored"),
                );
                Some(Arc::new(Target { backend_key: None }))
            }
            Some(key) if valid_backend_key(&key.value) => Some(Arc::new(Target { backend_key: Some(key.value) })),
            Some(key) => {
                findings.error(
                    key.at.clone(),
                    format!("hook `{name}`: backend_key must be 1-128 characters of A-Z a-z 0-9 _ -"),
                );
                None
            }
            None if api => Some(Arc::new(Target { backend_key: None })),
            None => {
                findings
                    .error(hook.at.clone(), format!("hook `{name}` uses a mattermost backend and needs a backend_key"));
                None
            }
        }
    }
}

/// `api_token` and `team`, both or neither: `Some(None)` for neither.
fn api_keys(table: &KindTable, findings: &mut Findings) -> Option<Option<Api>> {
    let name = &table.name;
    let (token, team) = (table.string("api_token", findings), table.string("team", findings));
    match (token.ok()?, team.ok()?) {
        (None, None) => Some(None),
        (Some(token), Some(team)) => {
            let mut fine = true;
            if token.value.is_empty() || !token.value.bytes().all(|b| b.is_ascii_graphic()) {
                findings.error(token.at, format!("backend `{name}`: api_token must be printable ASCII without spaces"));
                fine = false;
            }
            if team.value.is_empty() {
                findings.error(team.at, format!("backend `{name}`: team must name the team whose channels are used"));
                fine = false;
            }
            fine.then(|| Some(Api::new(&token.value, team.value)))
        }
        (Some(written), None) | (None, Some(written)) => {
            let message = format!("backend `{name}`: api_token and team go together (the bot's token and its team)");
            findings.error(written.at, message);
            None
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
        match (&config.api, &target.backend_key) {
            (Some(api), _) => api.create(&config.endpoint, &post, None).await.0,
            (None, Some(key)) => webhook(config, key, &post).await,
            // The loader gives every hook of a webhook backend its key.
            (None, None) => Exchange { upstream: Upstream::Status(0), result: Err(Undelivered::NotFound) },
        }
    }

    /// Only posts made through the REST API have ids to reply to.
    fn threads(&self, config: &Config) -> bool {
        config.api.is_some()
    }

    async fn post(
        &self,
        config: &Config,
        target: &Target,
        post: Outgoing<'_>,
        placed: &Placed<'_>,
    ) -> (Exchange, Option<String>) {
        match &config.api {
            Some(api) => api.create(&config.endpoint, &post, placed.root_id).await,
            None => (self.send(config, target, post).await, None),
        }
    }

    async fn edit(
        &self,
        config: &Config,
        _: &Target,
        id: &str,
        post: Outgoing<'_>,
        _: &Placed<'_>,
    ) -> Option<Exchange> {
        Some(config.api.as_ref()?.patch(&config.endpoint, &post, id).await)
    }

    async fn remove(
        &self,
        config: &Config,
        _: &Target,
        id: &str,
        post: Outgoing<'_>,
        _: &Placed<'_>,
    ) -> Option<Exchange> {
        Some(config.api.as_ref()?.delete(&config.endpoint, &post, id).await)
    }
}

/// One post to the incoming webhook `key`.
async fn webhook(config: &Config, key: &str, post: &Outgoing<'_>) -> Exchange {
    let request = Request {
        method: "POST",
        path: &["/hooks/", key],
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
