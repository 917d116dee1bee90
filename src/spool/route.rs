//! Where a stored job goes now (docs/spool.md, "The spool's promises under faults"). A job names its hook and the backend it was
//! accepted for; since then a reload may have removed the hook (the job waits for it, orphaned)
//! or pointed it at another backend, of the same kind or another: then the job follows the hook,
//! rendered anew for that backend's kind from the message it carries, never re-judged.

use crate::active::Active;
use crate::delivery::{job::Job, job::FORMAT};
use crate::rules::Rules;
use std::borrow::Cow;

/// Where a job goes, before anything is rendered.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// The hook is not in the rules: the job waits until a hook of that name returns.
    Orphaned,
    /// Written by a newer release (a graceful upgrade or a rolling one is under way): left for it.
    Newer,
    /// To this hook (its position in the rules) and along its route.
    To { hook: usize },
}

/// What is sent for a job.
#[derive(Debug, PartialEq)]
pub struct Posts<'a> {
    pub posts: Cow<'a, [String]>,
    /// The backend the job was accepted for, when that is not where it goes.
    pub moved_from: Option<&'a str>,
}

/// Where `job` goes under `rules`.
pub fn target(job: &Job, rules: &Rules) -> Target {
    if job.v > FORMAT {
        return Target::Newer;
    }
    rules.hook_named(&job.hook).map_or(Target::Orphaned, |hook| Target::To { hook })
}

/// The posts `job` sends along the route of `hook` (its position, from `target`): the stored
/// ones, or, when the hook has moved, the job rendered anew for its backend. `Err` says why this
/// job can never go there: it becomes a dead letter.
pub fn posts<'a>(job: &'a Job, active: &Active, hook: usize) -> Result<Posts<'a>, String> {
    let route = active.routes.of(hook);
    let target = &active.rules.backends[route.backend];
    if target.name == job.backend {
        return Ok(Posts { posts: Cow::Borrowed(&job.posts), moved_from: job.moved_from.as_deref() });
    }
    let Some(messages) = job.messages() else {
        return Err(format!(
            "stored for backend `{}` by a release before spool format 1, without its message: it cannot be \
             rendered for backend `{}`; point the hook back to replay it",
            job.backend, target.name
        ));
    };
    let hook = &active.rules.hooks[hook];
    let posts = messages.into_iter().flat_map(|m| route.bound.render(hook, m)).collect();
    Ok(Posts { posts: Cow::Owned(posts), moved_from: Some(&job.backend) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::rules_from_text as rules;
    use crate::observe::metrics::Metrics;
    use crate::pipeline::message::Message;

    const BACKENDS: &str = r#"
[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:1"

[backends.small]
kind = "mattermost"
url = "http://127.0.0.1:2"
max_message_chars = 4

[backends.console]
kind = "log"

[backends.room]
kind = "matrix"
url = "http://127.0.0.1:3"
server_name = "example.org"
access_token = "t"
"#;

    fn hook_on(backend: &str) -> Active {
        let keys = match backend {
            "room" => "room = \"#ops:example.org\"",
            "console" => "",
            _ => "backend_key = \"mm\"",
        };
        let text = format!("{BACKENDS}\n[[hooks]]\nname = \"alerts\"\nkey = \"k\"\nbackend = \"{backend}\"\n{keys}\n");
        Active::new(rules(&text), &Metrics::new(), None).unwrap()
    }

    /// A job as `delivery::accept` makes it for a spooled hook on `chat`.
    fn stored(text: &str) -> Job {
        let message = Message { text: text.into(), username: "ci".into(), ..Message::default() };
        Job { message: Some(message.clone()), ..Job::new("alerts", "chat", "r1", 1, vec![message.to_json()]) }
    }

    /// Where the job goes and what it sends, or why it is held.
    fn route<'a>(job: &'a Job, active: &Active) -> Result<Posts<'a>, String> {
        match target(job, &active.rules) {
            Target::To { hook } => posts(job, active, hook),
            held => Err(format!("{held:?}")),
        }
    }

    #[test]
    fn a_job_goes_where_its_hook_points_now() {
        let job = stored("hello");
        let on_chat = hook_on("chat");
        let Target::To { hook } = target(&job, &on_chat.rules) else { panic!() };
        assert_eq!(on_chat.rules.backends[on_chat.routes.of(hook).backend].name, "chat");
        let Posts { posts, moved_from } = route(&job, &on_chat).unwrap();
        assert_eq!((posts.as_ref(), moved_from), (job.posts.as_slice(), None), "unmoved: the stored posts");

        // Within one kind, rendered for the new backend's own limits.
        let on_small = hook_on("small");
        let Posts { posts, moved_from } = route(&job, &on_small).unwrap();
        assert_eq!(moved_from, Some("chat"));
        assert_eq!(posts.len(), 2, "split at the new backend's max_message_chars: {posts:?}");

        // To the log kind: the canonical payload, one line.
        let posts = route(&job, &hook_on("console")).unwrap().posts;
        assert_eq!(posts.as_ref(), [r#"{"text":"hello","username":"ci"}"#]);

        // To Matrix: a Matrix event with the username prefixing the text (bot-user mode).
        let Posts { posts, moved_from } = route(&job, &hook_on("room")).unwrap();
        assert_eq!(moved_from, Some("chat"));
        let post: serde_json::Value = serde_json::from_str(&posts[0]).unwrap();
        assert_eq!(post["content"]["body"], "**ci**: hello", "{post}");
    }

    #[test]
    fn orphaned_newer_and_unrenderable_jobs_are_not_sent() {
        let job = stored("hello");
        let other = rules(&format!("{BACKENDS}\n[[hooks]]\nname = \"other\"\nkey = \"k\"\nbackend = \"console\"\n"));
        assert_eq!(target(&job, &other), Target::Orphaned);

        let newer = Job { v: FORMAT + 1, ..job.clone() };
        assert_eq!(target(&newer, &hook_on("chat").rules), Target::Newer);

        // A version 0 Matrix job has no message and its posts are not canonical messages.
        let matrix = r#"{"hook":"alerts","backend":"room","request_id":"r","received_ms":1,"posts":["{\"channel\":\"\",\"content\":{\"body\":\"x\"}}"]}"#;
        let matrix: Job = serde_json::from_str(matrix).unwrap();
        assert!(route(&matrix, &hook_on("chat")).is_err_and(|reason| reason.contains("`room`")));
        assert_eq!(route(&matrix, &hook_on("room")).unwrap().moved_from, None, "unmoved, it goes");

        // A version 0 Mattermost job follows through its posts.
        let v0 = Job { v: 0, message: None, ..job };
        let posts = route(&v0, &hook_on("console")).unwrap().posts;
        assert_eq!(posts.as_ref(), [r#"{"text":"hello","username":"ci"}"#]);
    }
}
