//! A matrix backend's keys and a hook's rooms, read and checked (docs/matrix.md).

use super::users::AppService;
use super::Matrix;
use crate::delivery::http::endpoint::{self, Endpoint};
use crate::rules::{Findings, KindConfig, KindRules, KindTable};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A matrix backend, read from its table.
#[derive(Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// `Authorization` header value: `Bearer {access_token or as_token}`.
    pub(super) authorization: String,
    pub(super) server_name: String,
    /// Set with `as_token`: each hook posts as its own user.
    pub(super) app_service: Option<AppService>,
    pub msgtype: &'static str,
    pub max_message_chars: usize,
}

/// A hook's rooms, with the room ids its aliases resolved to.
#[derive(Debug)]
pub struct Target {
    pub(super) room: String,
    pub(super) rooms: HashMap<String, String>,
    pub(super) resolved: Mutex<HashMap<String, String>>,
}

/// The backend keys a matrix backend reads besides an HTTP endpoint's.
pub(super) const KEYS: &[&str] =
    &["server_name", "access_token", "as_token", "user_prefix", "msgtype", "max_message_chars"];

/// Whether `room` is a room id or an alias (`#name:server`). Room ids are `!opaque:server` up
/// to room version 11 and `!opaque` from version 12, which Synapse creates by default.
pub(super) fn valid_room(room: &str) -> bool {
    let named =
        |rest: &str| rest.split_once(':').is_some_and(|(local, server)| !local.is_empty() && !server.is_empty());
    let well_formed = match room.split_at_checked(1) {
        Some(("!", id)) => named(id) || (!id.is_empty() && !id.contains(':')),
        Some(("#", alias)) => named(alias),
        _ => false,
    };
    well_formed && !room.chars().any(char::is_whitespace)
}

impl KindRules for Matrix {
    fn name(&self) -> &'static str {
        "matrix"
    }

    fn keys(&self) -> &'static [&'static [&'static str]] {
        &[endpoint::KEYS, KEYS]
    }

    /// `backend_key` only to warn about it.
    fn hook_keys(&self) -> &'static [&'static str] {
        &["room", "rooms", "backend_key"]
    }

    fn backend(&self, table: &KindTable, findings: &mut Findings) -> Option<Arc<dyn KindConfig>> {
        let name = &table.name;
        let endpoint = endpoint::from_table(table, "matrix", findings);
        let max_message_chars = table.positive("max_message_chars", 30_000, 1 << 20, findings);
        let server_name = table.string("server_name", findings);
        let access_token = table.string("access_token", findings);
        let as_token = table.string("as_token", findings);
        let user_prefix = table.string("user_prefix", findings);
        let msgtype = table.string("msgtype", findings);
        let (Ok(server_name), Ok(access_token), Ok(as_token), Ok(user_prefix), Ok(msgtype)) =
            (server_name, access_token, as_token, user_prefix, msgtype)
        else {
            return None;
        };
        let Some(server_name) = server_name else {
            findings.error(table.at.clone(), format!("backend `{name}` of kind matrix needs a server_name"));
            return None;
        };
        let (token, app_service) = match (access_token, as_token, user_prefix) {
            (Some(token), None, None) => (token, None),
            (None, Some(token), Some(prefix)) => {
                let valid = !prefix.value.is_empty() && prefix.value.chars().all(super::users::localpart_char);
                if !valid {
                    let message = format!(
                        "backend `{name}`: user_prefix {:?} must be one or more of a-z 0-9 . _ = -",
                        prefix.value
                    );
                    findings.error(prefix.at.clone(), message);
                    return None;
                }
                (token, Some(AppService::new(prefix.value)))
            }
            (Some(_), Some(written), _) => {
                let message = format!("backend `{name}`: access_token and as_token exclude each other; pick one");
                findings.error(written.at.clone(), message);
                return None;
            }
            (None, Some(written), None) => {
                let message = format!("backend `{name}`: as_token needs a user_prefix for the hooks' users");
                findings.error(written.at.clone(), message);
                return None;
            }
            (_, None, Some(written)) => {
                let message = format!("backend `{name}`: user_prefix is only read with an as_token");
                findings.error(written.at.clone(), message);
                return None;
            }
            (None, None, None) => {
                let message =
                    format!("backend `{name}` of kind matrix needs an access_token, or an as_token with a user_prefix");
                findings.error(table.at.clone(), message);
                return None;
            }
        };
        let token_ok = !token.value.is_empty() && token.value.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            findings
                .error(token.at.clone(), format!("backend `{name}`: the token must be printable ASCII without spaces"));
        }
        let msgtype = match msgtype.as_ref().map(|m| m.value.as_str()) {
            None | Some("m.notice") => "m.notice",
            Some("m.text") => "m.text",
            Some(other) => {
                let at = msgtype.as_ref().map_or(table.at.clone(), |m| m.at.clone());
                findings.error(at, format!("backend `{name}`: msgtype {other:?} must be \"m.notice\" or \"m.text\""));
                return None;
            }
        };
        if !token_ok {
            return None;
        }
        Some(Arc::new(Config {
            endpoint: endpoint?,
            authorization: format!("Bearer {}", token.value),
            server_name: server_name.value,
            app_service,
            msgtype,
            max_message_chars: max_message_chars?,
        }))
    }

    fn hook(
        &self,
        hook: &KindTable,
        _backend: &Arc<dyn KindConfig>,
        findings: &mut Findings,
    ) -> Option<Arc<dyn KindConfig>> {
        let name = &hook.name;
        if let Some(key) = hook.string("backend_key", findings).ok()? {
            findings
                .warn(key.at, format!("hook `{name}`: backend_key has no meaning for a matrix backend and is ignored"));
        }
        let (room, rooms) = (hook.string("room", findings), hook.strings("rooms", findings));
        let (Ok(room), Ok(rooms)) = (room, rooms) else { return None };
        let Some(room) = room else {
            findings.error(hook.at.clone(), format!("hook `{name}` uses a matrix backend and needs a room"));
            return None;
        };
        let mut valid = true;
        for written in std::iter::once(&room).chain(rooms.iter().map(|(_, r)| r)) {
            if !valid_room(&written.value) {
                let message =
                    format!("hook `{name}`: {:?} is not a room id (!id:server, or !id from room version 12) or alias (#name:server)", written.value);
                findings.error(written.at.clone(), message);
                valid = false;
            }
        }
        valid.then(|| {
            Arc::new(Target {
                room: room.value,
                rooms: rooms.into_iter().map(|(channel, room)| (channel, room.value)).collect(),
                resolved: Mutex::new(HashMap::new()),
            }) as Arc<dyn KindConfig>
        })
    }
}
