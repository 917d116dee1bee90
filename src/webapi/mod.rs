//! Slack's Web API, the second dialect at the edges (docs/webapi.md): `/api/{method}` calls read
//! by their own argument reader (`args.rs`), made into a typed call by the same translation and
//! policy webhooks go through (`call.rs`), and answered from their own table of Slack's
//! `ok:false` codes (`answer.rs`). What a call does to a backend is `delivery/operation.rs`.

pub mod answer;
pub mod args;
pub(crate) mod call;
pub mod ts;

/// A Web API method hookgate answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PostMessage,
    Update,
    Delete,
    AuthTest,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::PostMessage, Method::Update, Method::Delete, Method::AuthTest];

    /// Slack's name for it, as in `/api/{name}` and the `method` label.
    pub fn name(self) -> &'static str {
        match self {
            Method::PostMessage => "chat.postMessage",
            Method::Update => "chat.update",
            Method::Delete => "chat.delete",
            Method::AuthTest => "auth.test",
        }
    }

    /// The method a request path names: `None` for a path that is not `/api/{method}` (Slack's
    /// method names hold no `/`, so Mattermost's `/api/v4/...` is not one), `Some(None)` for a
    /// method hookgate does not answer.
    pub fn of_path(path: &str) -> Option<Option<Method>> {
        let name = path.strip_prefix("/api/").filter(|name| !name.contains('/'))?;
        Some(Method::ALL.into_iter().find(|m| m.name() == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_methods() {
        let cases = [
            ("/api/chat.postMessage", Some(Some(Method::PostMessage))),
            ("/api/chat.update", Some(Some(Method::Update))),
            ("/api/chat.delete", Some(Some(Method::Delete))),
            ("/api/auth.test", Some(Some(Method::AuthTest))),
            ("/api/conversations.list", Some(None)),
            ("/api/", Some(None)),
            ("/api/chat.postmessage", Some(None)),
            ("/hooks/abc", None),
            ("/api/v4/posts", None),
            ("/apix/chat.postMessage", None),
        ];
        for (path, want) in cases {
            assert_eq!(Method::of_path(path), want, "{path}");
        }
    }
}
