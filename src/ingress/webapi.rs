//! The Web API's side of the webhook listener (docs/webapi.md): `/api/{method}` read whole,
//! its token matched to a hook, its call made and delivered, and Slack's answer written. Like
//! `server.rs`, it only moves bytes and records; the decisions are in `webapi/` and
//! `delivery/operation.rs`.

use super::exchange::{Body, Exchange};
use super::respond::Reply;
use super::server::{Abort, ApiRecord, Record, WebhookService};
use crate::active::Active;
use crate::delivery::job;
use crate::delivery::operation::{Context, Operated, Queue};
use crate::delivery::Outcome;
use crate::pipeline::admit::Admission;
use crate::rules::{keys, Delivery};
use crate::webapi::answer::{self, ApiError, Shown};
use crate::webapi::args::{self, Args};
use crate::webapi::call::{self, Call};
use crate::webapi::Method;
use pingora_timeout::fast_timeout::fast_timeout;
use std::time::SystemTime;

impl WebhookService {
    /// A Web API call, from its head to its answer. `method` is `None` for a method hookgate
    /// does not answer.
    pub(super) async fn serve_api(
        &self,
        session: &mut impl Exchange,
        active: &Active,
        record: &mut Record,
        method: Option<Method>,
    ) -> Result<Reply, Abort> {
        let name = method.map_or("unknown", Method::name);
        record.api = Some(ApiRecord { method: name, ts: None, result: "ok" });
        let answer = self.answer_api(session, active, record, method).await?;
        let result = answer.as_ref().map_or_else(|e| e.code(), |_| "ok");
        if let Some(api) = &mut record.api {
            api.result = result;
        }
        active.handles.hook(&active.rules, record.hook).api_call(&self.metrics, name, result);
        Ok(Reply::api(answer))
    }

    async fn answer_api(
        &self,
        session: &mut impl Exchange,
        active: &Active,
        record: &mut Record,
        method: Option<Method>,
    ) -> Result<Result<String, ApiError>, Abort> {
        let rules = &active.rules;
        let received = SystemTime::now();
        let max = rules.gateway.max_body_bytes;
        // The body is read before anything is answered, so the connection stays usable.
        if session.declared_length().is_some_and(|n| n > max) {
            return Ok(Err(ApiError::MsgTooLong));
        }
        if session.expects_continue() && !session.write_continue().await {
            return Err(Abort("client_gone"));
        }
        let reading = fast_timeout(rules.gateway.client_body_timeout, session.read_body(max));
        let body = match reading.await.map_err(|_| Abort("client_body_timeout"))? {
            Body::Whole(body) => body,
            Body::TooLarge => return Ok(Err(ApiError::MsgTooLong)),
            Body::Malformed => return Ok(Err(ApiError::InvalidFormData)),
            Body::Broken => return Err(Abort("client_body_error")),
        };
        record.body_bytes = body.len();
        let Some(method) = method else { return Ok(Err(ApiError::UnknownMethod)) };
        let args = match args::read(session.query(), session.header("content-type"), &body) {
            Ok(args) => args,
            Err(error) => return Ok(Err(error)),
        };
        let token = token(session, &args).ok_or(ApiError::NotAuthed);
        // Hashed whatever it is, so an unknown token costs what a known one does (`rules/keys.rs`).
        let index = token.and_then(|token| rules.hook_of_token(&keys::digest(token)).ok_or(ApiError::InvalidAuth));
        let index = match index {
            Ok(index) => index,
            Err(error) => return Ok(Err(error)),
        };
        record.hook = Some(index);
        if let Err(error) = self.within_rate(active, index).await {
            return Ok(Err(error));
        }
        let hook = &rules.hooks[index];
        let made = call::make(method, hook, args);
        record.pipeline = made.timings.total();
        self.metrics.stages(&made.timings);
        self.metrics.dropped(&made.dropped);
        active.handles.hook(rules, Some(index)).overrides(&made.actions);
        let call = match made.call {
            Ok(call) => call,
            Err(error) => return Ok(Err(error)),
        };
        let route = active.routes.of(index);
        let backend = rules.backends[route.backend].name.as_str();
        let Some(map) = self.spool.as_ref().map(|spool| spool.messages()) else {
            // The loader requires [spool] for a bot_token and a reload cannot add one.
            log::error!(target: "hookgate", "hook `{}`: the Web API needs a running spool to keep its messages", hook.name);
            return Ok(Err(ApiError::ServiceUnavailable { retry_after: 1 }));
        };
        let cx = Context { hook, route, backend, map, request_id: &record.request_id };
        // A spooled hook's calls are stored and applied in its order (docs/webapi.md, "Delivery").
        let spool = self.spool.as_deref().filter(|_| hook.delivery == Delivery::Spool);
        let queue = spool.map(|spool| Queue { cx: &cx, spool, received_ms: job::now_ms(received) });
        let backend_metrics = active.handles.backend(route.backend);
        let mut observe = |upstream, took| backend_metrics.exchange(&self.metrics, upstream, took);
        let (operated, answer) = match call {
            Call::AuthTest => {
                // Where the client reached hookgate, as Slack answers with the team's own URL: a
                // client that called https://slack.com/api/ hears https://slack.com/.
                let host = std::str::from_utf8(session.header("host")).unwrap_or("").trim();
                let scheme = if session.is_tls() { "https" } else { "http" };
                let url = format!("{scheme}://{}/", if host.is_empty() { "localhost" } else { host });
                return Ok(Ok(answer::authenticated(&url, &hook.name, backend)));
            }
            Call::Post { channel, thread_ts, message } => {
                self.metrics.dropped(&route.bound.unsupported(&message));
                let shown = Shown::of(&message);
                let thread_ts = thread_ts.as_deref();
                let operated = match &queue {
                    Some(queue) => queue.post_message(&channel, thread_ts, message).await,
                    None => self.direct.post_message(&cx, &channel, thread_ts, message, &mut observe).await,
                };
                let answer = operated.result.map(|a| answer::posted(&hook.name, &channel, a.ts, a.thread_ts, &shown));
                (operated, answer)
            }
            Call::Update { channel, ts, message } => {
                record.api = Some(ApiRecord { method: method.name(), ts: Some(ts), result: "ok" });
                let text = message.text.clone();
                let operated = match &queue {
                    Some(queue) => queue.update_message(&channel, ts, message).await,
                    None => self.direct.update_message(&cx, &channel, ts, message, &mut observe).await,
                };
                let answer = operated.result.map(|a| answer::updated(&channel, a.ts, &text));
                (operated, answer)
            }
            Call::Delete { channel, ts } => {
                record.api = Some(ApiRecord { method: method.name(), ts: Some(ts), result: "ok" });
                let operated = match &queue {
                    Some(queue) => queue.delete_message(&channel, ts).await,
                    None => self.direct.delete_message(&cx, &channel, ts, &mut observe).await,
                };
                let answer = operated.result.map(|a| answer::deleted(&channel, a.ts));
                (operated, answer)
            }
        };
        self.metrics.upstream_stage(operated.took);
        self.metrics.dropped(&operated.dropped);
        record.delivery = Some(outcome(&operated));
        if let Ok(applied) = operated.result {
            record.api = Some(ApiRecord { method: method.name(), ts: Some(applied.ts), result: "ok" });
        }
        Ok(answer)
    }

    /// Whether the hook at `index` may make another call now, by its own bucket and, when
    /// `[ratelimit]` is set, the one the instances share.
    async fn within_rate(&self, active: &Active, index: usize) -> Result<(), ApiError> {
        if let Err(retry_after) = active.limiters.check(index) {
            return Err(ApiError::RateLimited { retry_after });
        }
        if let Some(shared) = &active.shared_limiter {
            let admission = shared.admit(Admission { hook: Some(index), result: Ok(()) }, &active.rules).await;
            if let Err(refusal) = admission.result {
                return Err(ApiError::of_refusal(&refusal));
            }
        }
        Ok(())
    }
}

/// The call's token: `Authorization: Bearer`, or a `token` argument of a form or query string.
fn token<'a>(session: &'a impl Exchange, args: &'a Args) -> Option<&'a str> {
    let header = std::str::from_utf8(session.header("authorization")).ok();
    let bearer = header.and_then(|h| {
        let (scheme, token) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or(args.token.as_deref()).filter(|t| !t.is_empty())
}

/// An operation as the log line reports deliveries.
fn outcome(operated: &Operated) -> Outcome {
    Outcome {
        result: Ok(()),
        upstream: operated.upstream,
        delivered: operated.delivered,
        parts: operated.parts,
        took: operated.took,
    }
}
