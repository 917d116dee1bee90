//! The accepted job: everything delivery needs, by name, with the posts already rendered for the
//! backend. It is what a spool stores, so it serialises and reads back losslessly, and it holds
//! no position in a rule set: a reload or a restart can come between acceptance and delivery.
//!
//! Stored jobs carry a format version (`v`, docs/spool.md "Formats"): 0 (absent) is what
//! releases before versions wrote, without `message`; 1 adds `v`, `message`, `moved_from` and
//! `give_up_ms`; 2 adds `op`, a Web API operation (docs/webapi.md, "Delivery"). Webhook jobs are
//! still written as 1, so a release that reads 1 delivers them; one of a newer version than
//! `FORMAT` is left alone, never guessed at.

use crate::pipeline::message::Message;
use crate::webapi::ts::Ts;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The newest job format this build reads, and writes for Web API operations.
pub const FORMAT: u32 = 2;
/// The format of webhook jobs, which carry no `op`.
pub const PLAIN_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    #[serde(default)]
    pub v: u32,
    pub hook: String,
    pub backend: String,
    pub request_id: String,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    /// The bodies to send, in order, as the backend's kind rendered them.
    pub posts: Vec<String>,
    /// The canonical message the posts were rendered from: when a reload points the hook at
    /// another backend, the job is rendered anew from it for that backend's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The backend the job was accepted for, once it has followed its hook elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// When the request that stored this job stopped waiting for the store, in milliseconds
    /// since the Unix epoch. A job the store took after that moment was answered 503 and is
    /// discarded, never delivered (`spool/nats`, docs/spool.md, "The spool's promises under faults").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_ms: Option<u64>,
    /// A Web API call's operation on the message `ts`; none for a webhook's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Operation>,
}

/// A Web API operation as the spool keeps it, applied in its hook's order (docs/webapi.md,
/// "Delivery").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub method: Op,
    pub ts: Ts,
    /// The channel as the call named it, after the hook's channel rules.
    pub channel: String,
    /// A post's thread: the `ts` of its root message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<Ts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Post,
    Update,
    Delete,
}

impl Job {
    /// A webhook's job, of the plain format.
    pub fn new(hook: &str, backend: &str, request_id: &str, received_ms: u64, posts: Vec<String>) -> Job {
        Job {
            v: PLAIN_FORMAT,
            hook: hook.to_owned(),
            backend: backend.to_owned(),
            request_id: request_id.to_owned(),
            received_ms,
            posts,
            message: None,
            moved_from: None,
            give_up_ms: None,
            op: None,
        }
    }

    /// This job as the Web API operation `op`, of this build's format.
    pub fn operation(self, op: Operation) -> Job {
        Job { v: FORMAT, op: Some(op), ..self }
    }

    /// The canonical messages this job can be rendered anew from: its `message`, or for a
    /// version 0 job (stored without one) its posts, when they are canonical messages as the
    /// `mattermost` and `log` kinds render them. `None` when neither holds.
    pub fn messages(&self) -> Option<Vec<Message>> {
        if let Some(message) = &self.message {
            return Some(vec![message.clone()]);
        }
        self.posts.iter().map(|post| canonical(post)).collect()
    }
}

/// A post read as a canonical message: a JSON object of the canonical payload's members only.
/// A Matrix post (`channel` and `content`) is not one.
fn canonical(post: &str) -> Option<Message> {
    const MEMBERS: &[&str] =
        &["text", "channel", "username", "icon_url", "icon_emoji", "type", "attachments", "props", "priority"];
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(post).ok()?;
    if !value.keys().all(|k| MEMBERS.contains(&k.as_str())) {
        return None;
    }
    serde_json::from_str(post).ok()
}

/// Milliseconds since the Unix epoch, for `received_ms`.
pub fn now_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn job() -> impl Strategy<Value = Job> {
        let text = || proptest::string::string_regex("(?s).{0,40}").unwrap();
        (text(), text(), text(), any::<u64>(), proptest::collection::vec(text(), 0..5), text(), any::<Option<u64>>())
            .prop_map(|(hook, backend, request_id, received_ms, posts, said, give_up_ms)| Job {
                message: Some(Message { text: said, ..Message::default() }),
                give_up_ms,
                ..Job::new(&hook, &backend, &request_id, received_ms, posts)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// Whatever a job holds (any Unicode, quotes, control characters, empty posts), it reads
        /// back as it was written.
        #[test]
        fn a_job_reads_back_as_written(job in job()) {
            let stored = serde_json::to_vec(&job).unwrap();
            let read: Job = serde_json::from_slice(&stored).unwrap();
            prop_assert_eq!(read, job);
        }
    }

    /// Jobs as the release before format versions stored them (tests/data/spool-v0 holds whole
    /// stores of them) read as version 0, and their posts give back the canonical messages.
    #[test]
    fn version_0_jobs_read_and_give_their_messages() {
        let mattermost = r#"{"hook":"alerts","backend":"chat","request_id":"v0-alerts-2","received_ms":1796599247710,"posts":["{\"text\":\"a second message, lo\"}","{\"text\":\"ng enough to be spli\"}"]}"#;
        let job: Job = serde_json::from_str(mattermost).unwrap();
        assert_eq!((job.v, job.message.is_none(), job.give_up_ms), (0, true, None));
        let texts: Vec<String> = job.messages().unwrap().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["a second message, lo", "ng enough to be spli"]);

        let attachment = r##"{"hook":"alerts","backend":"chat","request_id":"r","received_ms":1,"posts":["{\"text\":\"third\",\"username\":\"ci\",\"attachments\":[{\"color\":\"#00ff00\",\"title\":\"build\",\"text\":\"green\",\"fields\":[{\"title\":\"a\",\"value\":\"b\",\"short\":true}]}],\"props\":{\"k\":[1,2]}}"]}"##;
        let messages = serde_json::from_str::<Job>(attachment).unwrap().messages().unwrap();
        assert_eq!(
            messages[0].to_json(),
            r##"{"text":"third","username":"ci","attachments":[{"color":"#00ff00","title":"build","text":"green","fields":[{"title":"a","value":"b","short":true}]}],"props":{"k":[1,2]}}"##,
            "read back, the message writes the same canonical payload"
        );

        let matrix = r#"{"hook":"rooms","backend":"room","request_id":"v0-rooms-1","received_ms":1796599247747,"posts":["{\"channel\":\"\",\"content\":{\"msgtype\":\"m.notice\",\"body\":\"to the **room**\"}}"]}"#;
        let job: Job = serde_json::from_str(matrix).unwrap();
        assert_eq!(job.messages(), None, "a Matrix post is not a canonical message");
    }

    #[test]
    fn a_job_of_this_format_carries_its_message_and_version() {
        let job = Job {
            message: Some(Message { text: "hi".into(), ..Message::default() }),
            ..Job::new("h", "b", "r", 5, vec!["post".into()])
        };
        let stored = serde_json::to_string(&job).unwrap();
        assert!(stored.starts_with(r#"{"v":1,"hook":"h""#), "{stored}");
        assert_eq!(job.messages().unwrap()[0].text, "hi", "the message, not the rendered posts");
    }

    /// A Web API operation's job is of format 2 and reads back whole; a webhook's stays 1, so
    /// the release before still delivers it.
    #[test]
    fn operation_jobs_are_format_2_and_webhook_jobs_stay_1() {
        let op = Operation { method: Op::Update, ts: Ts(1_000_002), channel: "alerts".into(), thread_ts: Some(Ts(1)) };
        let job = Job::new("h", "b", "r", 5, vec!["post".into()]).operation(op);
        let stored = serde_json::to_string(&job).unwrap();
        assert!(stored.starts_with(r#"{"v":2,"#), "{stored}");
        assert!(
            stored.ends_with(r#""op":{"method":"update","ts":1000002,"channel":"alerts","thread_ts":1}}"#),
            "{stored}"
        );
        assert_eq!(serde_json::from_str::<Job>(&stored).unwrap(), job);
        let plain = serde_json::to_string(&Job::new("h", "b", "r", 5, Vec::new())).unwrap();
        assert!(plain.starts_with(r#"{"v":1,"#) && !plain.contains("op"), "{plain}");
    }

    #[test]
    fn received_time_is_milliseconds_since_the_epoch() {
        assert_eq!(now_ms(UNIX_EPOCH + std::time::Duration::from_millis(1_234)), 1_234);
        assert_eq!(now_ms(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }
}
