//! Web API operations (docs/webapi.md, "Delivery"): a post (maybe in a thread), an update or a
//! delete, each ending with the message map brought in step. Delivered while the client waits
//! (`Direct`: a post is `ok` only once the backend made it and the map holds it), or from the
//! spool, in the hook's order (`queued`).

use super::http::pool::Pool;
use super::job::{Job, Op, Operation};
use super::kind::{Outgoing, Placed, Upstream};
use super::route::Route;
use super::{Direct, Sent};
use crate::pipeline::message::Message;
use crate::rules::Hook;
use crate::spool::messages::{self, Entry, MessageMap};
use crate::spool::{Refused, Spool, StoreError};
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
        let mut run = Run::new(Instant::now());
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
        let ids = self.link(cx).post_parts(&placed, posts, 0, &mut run.sent, observe).await;
        if let Some(failure) = &run.sent.failure {
            if run.sent.delivered > 0 {
                log::warn!(target: "hookgate", request_id = cx.request_id; "{} of {} posts of {ts} were made before the backend failed", run.sent.delivered, run.parts);
            }
            let error = ApiError::of_undelivered(failure);
            return run.ended(Err(error));
        }
        let entry = Entry {
            v: messages::FORMAT,
            hook: cx.hook.name.clone(),
            backend: cx.backend.to_owned(),
            channel: channel.to_owned(),
            thread_ts: placed.thread_ts,
            parts: run.parts,
            ids,
            pending: false,
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
        let entry = match changeable(cx, channel, ts, ApiError::CantUpdateMessage, false).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        let posts = cx.route.bound.render(cx.hook, message);
        run.parts = entry.parts;
        if posts.len() > entry.parts {
            return run.ended(Err(ApiError::MsgTooLong));
        }
        self.change(cx, Op::Update, ts, channel, entry, posts, run, observe).await
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
        let entry = match changeable(cx, channel, ts, ApiError::CantDeleteMessage, false).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        run.parts = entry.parts;
        self.change(cx, Op::Delete, ts, channel, entry, Vec::new(), run, observe).await
    }

    /// An update (`posts` in place of the first posts, the rest deleted) or a delete (no
    /// `posts`), then the map brought in step.
    #[allow(clippy::too_many_arguments)]
    async fn change(
        &self,
        cx: &Context<'_>,
        op: Op,
        ts: Ts,
        channel: &str,
        entry: Entry,
        posts: Vec<String>,
        mut run: Run,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Operated {
        let placed = Placed { ts, channel, thread_ts: entry.thread_ts, root_id: None };
        let parts = posts.len();
        let link = self.link(cx);
        let changed = link.change_parts(&placed, &entry.ids[..entry.parts], posts, 0, &mut run.sent, observe);
        if let Err(cannot) = changed.await {
            return run.ended(Err(cannot.refusal()));
        }
        if let Some(failure) = &run.sent.failure {
            let error = ApiError::of_undelivered(failure);
            return run.ended(Err(error));
        }
        let applied = Applied { ts, thread_ts: entry.thread_ts };
        let kept = changed_in_map(cx.map, op, ts, entry, parts).await.map_err(unavailable);
        run.ended(kept.map(|()| applied))
    }

    fn link<'a>(&'a self, cx: &Context<'a>) -> Link<'a> {
        Link { route: cx.route, request_id: cx.request_id, pool: &self.pool }
    }

    /// The root of the thread `written` names, with its first post's id. `None` when it names
    /// no message of this backend and channel, or one without ids.
    async fn thread(&self, cx: &Context<'_>, channel: &str, written: &str) -> Result<Option<(Ts, String)>, StoreError> {
        let Some((root, entry)) = thread_root(cx, channel, written).await? else { return Ok(None) };
        let entry = match entry {
            Some(entry) => Some(entry),
            None => cx.map.find(root).await?,
        };
        Ok(entry.and_then(|entry| entry.ids.into_iter().next()).map(|id| (root, id)))
    }
}

/// The message `ts` of this hook in `channel`, when its posts can be changed; `cannot` names the
/// refusal for a message of another hook or backend, or one without ids. With `pending_ok` (a
/// spooled call, applied after the post), a message the spool has not posted yet counts too.
async fn changeable(
    cx: &Context<'_>,
    channel: &str,
    ts: Ts,
    cannot: ApiError,
    pending_ok: bool,
) -> Result<Entry, ApiError> {
    let entry = cx.map.find(ts).await.map_err(unavailable)?.ok_or(ApiError::MessageNotFound)?;
    if entry.channel != channel {
        return Err(ApiError::MessageNotFound);
    }
    let without_ids = entry.ids.len() < entry.parts && !(pending_ok && entry.pending);
    if entry.hook != cx.hook.name || entry.backend != cx.backend || without_ids {
        return Err(cannot);
    }
    Ok(entry)
}

/// The root of the thread `written` names: the message itself, or the root of the thread it is
/// in (Mattermost replies only to a thread's root), with the root's entry when that is the one
/// `written` names. `None` when it names no message of this backend and channel.
async fn thread_root(
    cx: &Context<'_>,
    channel: &str,
    written: &str,
) -> Result<Option<(Ts, Option<Entry>)>, StoreError> {
    let Some(ts) = Ts::parse(written) else { return Ok(None) };
    let Some(entry) = cx.map.find(ts).await? else { return Ok(None) };
    if entry.backend != cx.backend || entry.channel != channel {
        return Ok(None);
    }
    Ok(Some(match entry.thread_ts {
        None => (ts, Some(entry)),
        Some(root) => (root, None),
    }))
}

/// The map after an update (the message is now its first `parts` posts) or a delete.
async fn changed_in_map(
    map: &dyn MessageMap,
    op: Op,
    ts: Ts,
    mut entry: Entry,
    parts: usize,
) -> Result<(), StoreError> {
    if op == Op::Delete {
        return map.forget(ts).await;
    }
    entry.parts = parts;
    entry.ids.truncate(parts);
    map.keep(ts, entry).await
}

/// The way an operation's posts go: the route, the request they are part of, the connections.
struct Link<'a> {
    route: &'a Route,
    request_id: &'a str,
    pool: &'a Pool,
}

/// An operation the backend cannot do.
#[derive(Debug, Clone, Copy)]
enum Cannot {
    Update,
    Delete,
}

impl Cannot {
    fn refusal(self) -> ApiError {
        match self {
            Cannot::Update => ApiError::CantUpdateMessage,
            Cannot::Delete => ApiError::CantDeleteMessage,
        }
    }
}

impl Link<'_> {
    fn outgoing(&self, body: String, part: usize) -> Outgoing<'_> {
        Outgoing { body: Bytes::from(body), request_id: self.request_id, part, pool: self.pool }
    }

    /// Posts `posts`, the first as part `first`, placed as `placed`, stopping at the first the
    /// backend does not take (its answer in `sent`); the ids the backend gave.
    async fn post_parts(
        &self,
        placed: &Placed<'_>,
        posts: Vec<String>,
        first: usize,
        sent: &mut Sent,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for (part, post) in (first..).zip(posts) {
            let started = Instant::now();
            let (exchange, id) = self.route.bound.post(self.outgoing(post, part), placed).await;
            if !sent.took(exchange, started, observe) {
                break;
            }
            ids.extend(id);
        }
        ids
    }

    /// Changes the message whose posts have `ids`, from part `first` on: `posts` replace the
    /// posts from there, then every post after them is deleted. Stops at the first exchange
    /// the backend does not take (its answer in `sent`); `Err` when the backend cannot.
    async fn change_parts(
        &self,
        placed: &Placed<'_>,
        ids: &[String],
        posts: Vec<String>,
        first: usize,
        sent: &mut Sent,
        observe: &mut (dyn FnMut(Upstream, Duration) + Send),
    ) -> Result<(), Cannot> {
        let deleted_from = first + posts.len();
        for (part, post) in (first..).zip(posts) {
            let started = Instant::now();
            let exchange = self.route.bound.edit(&ids[part], self.outgoing(post, part), placed).await;
            if !sent.took(exchange.ok_or(Cannot::Update)?, started, observe) {
                return Ok(());
            }
        }
        for (part, id) in ids.iter().enumerate().skip(deleted_from) {
            let started = Instant::now();
            let exchange = self.route.bound.remove(id, self.outgoing(String::new(), part), placed).await;
            if !sent.took(exchange.ok_or(Cannot::Delete)?, started, observe) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// An operation under way: what it has sent so far.
struct Run {
    started: Instant,
    dropped: Vec<&'static str>,
    sent: Sent,
    parts: usize,
}

impl Run {
    fn new(started: Instant) -> Run {
        Run { started, dropped: Vec::new(), sent: Sent::new(), parts: 0 }
    }

    fn ended(self, result: Result<Applied, ApiError>) -> Operated {
        Operated {
            result,
            dropped: self.dropped,
            upstream: self.sent.upstream,
            delivered: self.sent.delivered,
            parts: self.parts,
            took: self.started.elapsed(),
        }
    }
}

/// How a stored operation's attempt ended (`spool/attempt.rs` decides what becomes of it).
#[derive(Debug)]
pub(crate) enum Queued {
    /// What was sent, as for a webhook's posts.
    Sent(Sent),
    /// Nothing to do: the message was deleted (a delete of a message not yet posted cancels
    /// it) or forgotten.
    Skipped(&'static str),
    /// It can never be applied.
    Dead(String),
    /// The message map could not be read or written: try again later.
    Store(StoreError),
}

/// What a stored operation works with.
pub(crate) struct Stored<'a> {
    pub op: &'a Operation,
    /// The route's backend, by name.
    pub backend: &'a str,
    pub request_id: &'a str,
    pub route: &'a Route,
    pub map: &'a dyn MessageMap,
    pub pool: &'a Pool,
    /// How many posts the job has (an update's new content; none for a delete).
    pub parts: usize,
}

/// A Web API operation the spool kept, sent from part `done` on; `posts` are the job's posts from
/// there (docs/webapi.md, "Delivery"). A post records each post's id as it goes, so a retry goes
/// on where the last attempt stopped; an update edits the message's posts in place, then deletes
/// those past its new end; a delete deletes each post, then forgets the message.
pub(crate) async fn queued(
    stored: &Stored<'_>,
    posts: Vec<String>,
    done: usize,
    dropped: &mut Vec<&'static str>,
    observe: &mut (dyn FnMut(Upstream, Duration) + Send),
) -> Queued {
    let Stored { op, map, route, .. } = *stored;
    let mut entry = match map.find(op.ts).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Queued::Skipped("the message was deleted or forgotten"),
        Err(e) => return Queued::Store(e),
    };
    if entry.backend != stored.backend && op.method != Op::Post {
        return Queued::Dead(format!("the message is on backend `{}`, not on this hook's", entry.backend));
    }
    let link = Link { route, request_id: stored.request_id, pool: stored.pool };
    let mut sent = Sent::new();
    match op.method {
        Op::Post => {
            let root = match op.thread_ts {
                Some(root) if route.bound.threads() => match map.find(root).await {
                    Ok(found) => found.and_then(|root| root.ids.into_iter().next()),
                    Err(e) => return Queued::Store(e),
                },
                _ => None,
            };
            if op.thread_ts.is_some() && root.is_none() && done == 0 {
                dropped.push("thread_ts");
            }
            let placed = Placed {
                ts: op.ts,
                channel: &op.channel,
                thread_ts: root.as_ref().and(op.thread_ts),
                root_id: root.as_deref(),
            };
            let ids = link.post_parts(&placed, posts, done, &mut sent, observe).await;
            entry.ids.extend(ids);
            entry.backend = stored.backend.to_owned();
            entry.thread_ts = placed.thread_ts;
            entry.pending = done + sent.delivered < entry.parts;
            if let Err(e) = map.keep(op.ts, entry).await {
                return Queued::Store(e);
            }
        }
        Op::Update | Op::Delete => {
            if entry.pending {
                return Queued::Dead("the message was never posted".into());
            }
            if entry.ids.len() < entry.parts {
                return Queued::Dead("the backend gave no ids for the message's posts".into());
            }
            let placed = Placed { ts: op.ts, channel: &op.channel, thread_ts: entry.thread_ts, root_id: None };
            let changed = link.change_parts(&placed, &entry.ids[..entry.parts], posts, done, &mut sent, observe);
            match changed.await {
                Err(Cannot::Update) => return Queued::Dead("the backend cannot update messages".into()),
                Err(Cannot::Delete) => return Queued::Dead("the backend cannot delete messages".into()),
                Ok(()) if sent.failure.is_some() => return Queued::Sent(sent),
                Ok(()) => {}
            }
            if let Err(e) = changed_in_map(map, op.method, op.ts, entry, stored.parts).await {
                return Queued::Store(e);
            }
        }
    }
    Queued::Sent(sent)
}

/// Web API calls on a hook with `delivery = "spool"` (docs/webapi.md, "Delivery"): checked
/// against the map now, stored as jobs, answered `ok` once stored, and applied by the spool in
/// the hook's order (`queued`).
pub(crate) struct Queue<'a> {
    pub cx: &'a Context<'a>,
    pub spool: &'a dyn Spool,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_ms: u64,
}

impl Queue<'_> {
    /// Stores a new message, recorded in the map as pending until the spool has posted it.
    pub(crate) async fn post_message(&self, channel: &str, thread_ts: Option<&str>, message: Message) -> Operated {
        let cx = self.cx;
        let mut run = Run::new(Instant::now());
        let root = match thread_ts {
            None => None,
            Some(written) => match self.root(channel, written).await {
                Ok(Some(root)) if cx.route.bound.threads() => Some(root),
                Ok(_) => {
                    run.dropped.push("thread_ts");
                    None
                }
                Err(e) => return run.ended(Err(unavailable(e))),
            },
        };
        let posts = cx.route.bound.render(cx.hook, message.clone());
        run.parts = posts.len();
        let entry = Entry {
            v: messages::FORMAT,
            hook: cx.hook.name.clone(),
            backend: cx.backend.to_owned(),
            channel: channel.to_owned(),
            thread_ts: root,
            parts: posts.len(),
            ids: Vec::new(),
            pending: true,
        };
        let ts = match cx.map.record(cx.map.mint(), entry).await {
            Ok(ts) => ts,
            Err(e) => return run.ended(Err(unavailable(e))),
        };
        let job = Job { message: Some(message), ..self.job(posts) };
        let op = Operation { method: Op::Post, ts, channel: channel.to_owned(), thread_ts: root };
        let stored = self.store(job.operation(op), &mut run).await;
        if stored.is_err() {
            // Never answered `ok`, so never to be posted.
            let _ = cx.map.forget(ts).await;
        }
        run.ended(stored.map(|()| Applied { ts, thread_ts: root }))
    }

    /// Stores new content for the message `ts`, applied after whatever its hook stored before.
    pub(crate) async fn update_message(&self, channel: &str, ts: Ts, message: Message) -> Operated {
        let cx = self.cx;
        let mut run = Run::new(Instant::now());
        let entry = match changeable(cx, channel, ts, ApiError::CantUpdateMessage, true).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        let posts = cx.route.bound.render(cx.hook, message);
        run.parts = posts.len();
        if posts.len() > entry.parts {
            return run.ended(Err(ApiError::MsgTooLong));
        }
        let op = Operation { method: Op::Update, ts, channel: channel.to_owned(), thread_ts: entry.thread_ts };
        let stored = self.store(self.job(posts).operation(op), &mut run).await;
        run.ended(stored.map(|()| Applied { ts, thread_ts: entry.thread_ts }))
    }

    /// Deletes the message `ts` by a job after whatever its hook stored before. A message not
    /// posted yet is forgotten at once as well, so its post is skipped; if the spool was
    /// sending it right then, the job deletes what it posted.
    pub(crate) async fn delete_message(&self, channel: &str, ts: Ts) -> Operated {
        let cx = self.cx;
        let mut run = Run::new(Instant::now());
        let entry = match changeable(cx, channel, ts, ApiError::CantDeleteMessage, true).await {
            Ok(entry) => entry,
            Err(error) => return run.ended(Err(error)),
        };
        let applied = Applied { ts, thread_ts: entry.thread_ts };
        if entry.pending {
            if let Err(e) = cx.map.forget(ts).await {
                return run.ended(Err(unavailable(e)));
            }
        }
        let op = Operation { method: Op::Delete, ts, channel: channel.to_owned(), thread_ts: entry.thread_ts };
        let stored = self.store(self.job(Vec::new()).operation(op), &mut run).await;
        run.ended(stored.map(|()| applied))
    }

    fn job(&self, posts: Vec<String>) -> Job {
        Job::new(&self.cx.hook.name, self.cx.backend, self.cx.request_id, self.received_ms, posts)
    }

    async fn store(&self, job: Job, run: &mut Run) -> Result<(), ApiError> {
        run.sent.upstream = Some(Upstream::Spooled);
        match self.spool.append(job).await {
            Ok(()) => Ok(()),
            Err(Refused::Full) => Err(ApiError::ServiceUnavailable { retry_after: 1 }),
            Err(Refused::Store(e)) => Err(unavailable(e)),
        }
    }

    /// The root of the thread `written` names, by `ts` only: its posts may not be made yet.
    async fn root(&self, channel: &str, written: &str) -> Result<Option<Ts>, StoreError> {
        Ok(thread_root(self.cx, channel, written).await?.map(|(root, _)| root))
    }
}
