//! Web API operations delivered while the client waits (docs/webapi.md, "Delivery"): a post
//! (maybe in a thread), an update or a delete, each ending with the message map brought in step.
//! A post is `ok` only once the backend made it and the map holds it.

use super::kind::{Exchange, Outgoing, Placed, Upstream};
use super::route::Route;
use super::Direct;
use crate::pipeline::message::Message;
use crate::rules::Hook;
use crate::spool::messages::{self, Entry, MessageMap};
use crate::spool::StoreError;
use crate::webapi::answer::ApiError;
use crate::webapi::ts::Ts;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// What an operation works with.
pub(crate) struct Context<'a> {
    pub hook: &'a Hook,
    pub route: &'a Route,
    /// The route's backend, by name.
    pub backend: &'a str,
    pub map: &'a dyn MessageMap,
    pub request_id: &'a str,
}

/// The message an operation was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub ts: Ts,
    /// The root of the thread the message is in.
    pub thread_ts: Option<Ts>,
}

/// How an operation ended, for the answer, the metrics and the log line.
#[derive(Debug)]
pub(crate) struct Operated {
    pub result: Result<Applied, ApiError>,
    /// Arguments not honoured (`thread_ts` naming nothing, or on a backend without threads).
    pub dropped: Vec<&'static str>,
    /// What the last exchange brought back; `None` when nothing was sent.
    pub upstream: Option<Upstream>,
    /// Exchanges the backend took, out of `parts`.
    pub delivered: usize,
    pub parts: usize,
    pub took: Duration,
}

/// The store could not be asked: come back later.
fn unavailable(e: StoreError) -> ApiError {
    log::error!(target: "hookgate", "message map: {e}");
    ApiError::ServiceUnavailable { retry_after: 1 }
}

impl Direct {
    /// A new message in `channel`, in the thread of `thread_ts` when that names a message of
    /// this backend and channel that the backend can reply to.
    pub(crate) async fn post_message(
        &self,
        cx: &Context<'_>,
        channel: &str,
        thread_ts: Option<&str>,
        message: Message,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Operated {
        let started = Instant::now();
        let mut run = Run::new(started);
        let thread = match thread_ts {
            None => None,
            Some(written) => match self.thread(cx, channel, written).await {
                Ok(Some(thread)) if cx.route.bound.threads() => Some(thread),
                Ok(_) => {
                    run.dropped.push("thread_ts");
                    None
                }
                Err(e) => return run.ended(Err(unavailable(e))),
            },
        };
        let ts = cx.map.mint();
        let placed = Placed {
            ts,
            channel,
            thread_ts: thread.as_ref().map(|(root, _)| *root),
            root_id: thread.as_ref().map(|(_, id)| id.as_str()),
        };
        let posts = cx.route.bound.render(cx.hook, message);
        run.parts = posts.len();
        let mut ids = Vec::new();
        for (part, post) in posts.into_iter().enumerate() {
            let sent = Instant::now();
            let outgoing = self.outgoing(cx, post, part);
            let (exchange, id) = cx.route.bound.post(outgoing, &placed).await;
            if let Err(error) = run.took(exchange, sent, observe) {
                if run.delivered > 0 {
                    log::warn!(target: "hookgate", request_id = cx.request_id; "{} of {} posts of {ts} were made before the backend failed", run.delivered, run.parts);
                }
                return run.ended(Err(error));
            }
            ids.extend(id);
        }
        let entry = Entry {
            v: messages::FORMAT,
            hook: cx.hook.name.clone(),
            backend: cx.backend.to_owned(),
            channel: channel.to_owned(),
            thread_ts: placed.thread_ts,
            parts: run.parts,
            ids,
        };
        let thread_ts = placed.thread_ts;
        let recorded = cx.map.record(ts, entry).await.map_err(unavailable);
        run.ended(recorded.map(|ts| Applied { ts, thread_ts }))
    }

    /// New content for the message `ts`: each post replaced in place, surplus posts deleted.
    pub(crate) async fn update_message(
        &self,
        cx: &Context<'_>,
        channel: &str,
        ts: Ts,
        message: Message,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Operated {
        let mut run = Run::new(Instant::now());
        let mut entry = match self.entry(cx, channel, ts, ApiError::CantUpdateMessage).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        let placed = Placed { ts, channel, thread_ts: entry.thread_ts, root_id: None };
        let posts = cx.route.bound.render(cx.hook, message);
        run.parts = entry.parts;
        if posts.len() > entry.parts {
            return run.ended(Err(ApiError::MsgTooLong));
        }
        let kept = posts.len();
        for (part, post) in posts.into_iter().enumerate() {
            let sent = Instant::now();
            let outgoing = self.outgoing(cx, post, part);
            let Some(exchange) = cx.route.bound.edit(&entry.ids[part], outgoing, &placed).await else {
                return run.ended(Err(ApiError::CantUpdateMessage));
            };
            if let Err(error) = run.took(exchange, sent, observe) {
                return run.ended(Err(error));
            }
        }
        for part in kept..entry.parts {
            if let Err(error) = self.remove_post(cx, &entry.ids[part], part, &placed, &mut run, observe).await {
                return run.ended(Err(error));
            }
        }
        entry.parts = kept;
        entry.ids.truncate(kept);
        let kept = cx.map.keep(ts, entry).await.map_err(unavailable);
        run.ended(kept.map(|()| Applied { ts, thread_ts: placed.thread_ts }))
    }

    /// Deletes every post of the message `ts`.
    pub(crate) async fn delete_message(
        &self,
        cx: &Context<'_>,
        channel: &str,
        ts: Ts,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Operated {
        let mut run = Run::new(Instant::now());
        let entry = match self.entry(cx, channel, ts, ApiError::CantDeleteMessage).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        let placed = Placed { ts, channel, thread_ts: entry.thread_ts, root_id: None };
        run.parts = entry.parts;
        for (part, id) in entry.ids.iter().enumerate() {
            if let Err(error) = self.remove_post(cx, id, part, &placed, &mut run, observe).await {
                return run.ended(Err(error));
            }
        }
        let forgotten = cx.map.forget(ts).await.map_err(unavailable);
        run.ended(forgotten.map(|()| Applied { ts, thread_ts: placed.thread_ts }))
    }

    async fn remove_post(
        &self,
        cx: &Context<'_>,
        id: &str,
        part: usize,
        placed: &Placed<'_>,
        run: &mut Run,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Result<(), ApiError> {
        let sent = Instant::now();
        let outgoing = self.outgoing(cx, String::new(), part);
        let exchange = cx.route.bound.remove(id, outgoing, placed).await.ok_or(ApiError::CantDeleteMessage)?;
        run.took(exchange, sent, observe)
    }

    fn outgoing<'a>(&'a self, cx: &Context<'a>, post: String, part: usize) -> Outgoing<'a> {
        Outgoing { body: Bytes::from(post), request_id: cx.request_id, part, pool: &self.pool }
    }

    /// The root of the thread `written` names: the message itself, or the root of the thread it
    /// is in (Mattermost replies only to a thread's root), with its first post's id. `None` when
    /// it names no message of this backend and channel, or one without ids.
    async fn thread(&self, cx: &Context<'_>, channel: &str, written: &str) -> Result<Option<(Ts, String)>, StoreError> {
        let Some(ts) = Ts::parse(written) else { return Ok(None) };
        let Some(entry) = cx.map.find(ts).await? else { return Ok(None) };
        if entry.backend != cx.backend || entry.channel != channel {
            return Ok(None);
        }
        let (root, entry) = match entry.thread_ts {
            None => (ts, entry),
            Some(root) => match cx.map.find(root).await? {
                Some(entry) => (root, entry),
                None => return Ok(None),
            },
        };
        Ok(entry.ids.into_iter().next().map(|id| (root, id)))
    }

    /// The message `ts` of this hook in `channel`, when its posts can be changed; `cannot` names
    /// the refusal for a message of another hook or backend, or without ids.
    async fn entry(&self, cx: &Context<'_>, channel: &str, ts: Ts, cannot: ApiError) -> Result<Entry, ApiError> {
        let entry = cx.map.find(ts).await.map_err(unavailable)?.ok_or(ApiError::MessageNotFound)?;
        if entry.channel != channel {
            return Err(ApiError::MessageNotFound);
        }
        if entry.hook != cx.hook.name || entry.backend != cx.backend || entry.ids.len() < entry.parts {
            return Err(cannot);
        }
        Ok(entry)
    }
}

/// An operation under way: what it has sent so far.
struct Run {
    started: Instant,
    dropped: Vec<&'static str>,
    upstream: Option<Upstream>,
    delivered: usize,
    parts: usize,
}

impl Run {
    fn new(started: Instant) -> Run {
        Run { started, dropped: Vec::new(), upstream: None, delivered: 0, parts: 0 }
    }

    /// Records an exchange; its refusal, as the Web API says it.
    fn took(
        &mut self,
        exchange: Exchange,
        sent: Instant,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Result<(), ApiError> {
        observe(exchange.upstream, sent.elapsed());
        self.upstream = Some(exchange.upstream);
        exchange.result.map_err(|undelivered| ApiError::of_undelivered(&undelivered))?;
        self.delivered += 1;
        Ok(())
    }

    fn ended(self, result: Result<Applied, ApiError>) -> Operated {
        Operated {
            result,
            dropped: self.dropped,
            upstream: self.upstream,
            delivered: self.delivered,
            parts: self.parts,
            took: self.started.elapsed(),
        }
    }
}
