//! Application-service identities (`as_token`): each hook posts as its own Matrix user,
//! `@{user_prefix}{hook}:{server_name}`, or `@{user_prefix}{hook}_{username}` for an allowed
//! username override, registered and given its display name the first time it is needed.

use super::send::{call, failed};
use super::Config;
use crate::delivery::kind::{Exchange, Outgoing};
use crate::rules::Hook;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// A Matrix user id is at most 255 bytes; `@` and `:` take two of them.
const MAX_USER_ID: usize = 255;

/// The application service's side of a matrix backend.
#[derive(Debug)]
pub struct AppService {
    pub user_prefix: String,
    /// Users registered and named since the rules were loaded, with the name they were given.
    named: Mutex<HashMap<String, String>>,
}

/// Whether `c` may stand in a localpart as hookgate writes them.
pub fn localpart_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-')
}

impl AppService {
    pub fn new(user_prefix: String) -> AppService {
        AppService { user_prefix, named: Mutex::new(HashMap::new()) }
    }

    /// The localpart of the user that posts `username` for `hook`: the hook's own user, or, when
    /// an allowed override names someone else, a user for that name. Lowercased, every other
    /// character replaced by `_`, and cut to fit a user id on `server_name`.
    pub fn localpart(&self, hook: &Hook, username: &str, server_name: &str) -> String {
        let overridden = !username.is_empty() && username != hook.policy.defaults.username;
        let raw = if overridden {
            format!("{}{}_{username}", self.user_prefix, hook.name)
        } else {
            format!("{}{}", self.user_prefix, hook.name)
        };
        let room = MAX_USER_ID.saturating_sub(2 + server_name.len());
        raw.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if localpart_char(c) { c } else { '_' })
            .take(room)
            .collect()
    }

    /// Registers `user_id` (an existing user is fine) and sets its display name to `name`,
    /// once for each name while these rules are loaded. Synapse carries a new display name
    /// into the member events of every room the user is in.
    pub async fn ensure(
        &self,
        post: &Outgoing<'_>,
        config: &Config,
        user_id: &str,
        localpart: &str,
        name: &str,
    ) -> Result<(), Exchange> {
        let known = self.named.lock().unwrap_or_else(|p| p.into_inner()).get(user_id).is_some_and(|n| n == name);
        if known {
            return Ok(());
        }
        let register = json!({"type": "m.login.application_service", "username": localpart, "inhibit_login": true});
        let answer =
            call(post, config, "POST", &["/_matrix/client/v3/register"], register.to_string().as_bytes()).await?;
        let registered = (200..300).contains(&answer.status) || errcode(&answer.body) == Some("M_USER_IN_USE");
        if !registered {
            return Err(failed(answer));
        }
        let user = crate::delivery::http::endpoint::encode(user_id);
        let path = ["/_matrix/client/v3/profile/", &user, "/displayname?user_id=", &user];
        let display = json!({ "displayname": name }).to_string();
        let answer = call(post, config, "PUT", &path, display.as_bytes()).await?;
        if !(200..300).contains(&answer.status) {
            return Err(failed(answer));
        }
        self.named.lock().unwrap_or_else(|p| p.into_inner()).insert(user_id.to_owned(), name.to_owned());
        Ok(())
    }
}

/// The `errcode` of a Matrix error answer.
pub fn errcode(body: &Option<Vec<u8>>) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Error<'a> {
        errcode: &'a str,
    }
    body.as_deref().and_then(|b| serde_json::from_slice::<Error>(b).ok()).map(|e| e.errcode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Defaults, Policy};

    #[test]
    fn a_user_per_hook_and_per_allowed_username() {
        let app = AppService::new("hook_".into());
        let hook = Hook {
            name: "ci".into(),
            policy: Policy { defaults: Defaults { username: "CI".into(), ..Defaults::default() }, ..Policy::default() },
            ..Hook::default()
        };
        let cases = [
            ("", "hook_ci"),
            ("CI", "hook_ci"),
            ("jenkins", "hook_ci_jenkins"),
            ("Jenkins Bot", "hook_ci_jenkins_bot"),
            ("Grüße/ops", "hook_ci_gr__e_ops"),
            ("a.b=c-d_e", "hook_ci_a.b=c-d_e"),
        ];
        for (username, want) in cases {
            assert_eq!(app.localpart(&hook, username, "example.org"), want, "{username:?}");
        }
        let long = "x".repeat(400);
        let user_id = format!("@{}:example.org", app.localpart(&hook, &long, "example.org"));
        assert_eq!(user_id.len(), MAX_USER_ID);
    }

    #[test]
    fn errcodes_are_read_from_error_answers() {
        let body = |s: &str| Some(s.as_bytes().to_vec());
        assert_eq!(errcode(&body(r#"{"errcode":"M_USER_IN_USE","error":"taken"}"#)), Some("M_USER_IN_USE"));
        assert_eq!(errcode(&body("not json")), None);
        assert_eq!(errcode(&None), None);
    }
}
