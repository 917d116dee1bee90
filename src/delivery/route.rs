//! Each hook's way to its backend, resolved once per rule set and kept in `Active` beside the
//! metric handles: the backend's position and its kind bound to the backend's and the hook's
//! typed configs. Requests and both spool workers take the route; none looks a kind up by name.

use super::kind::Bound;
use super::KINDS;
use crate::rules::Rules;
use std::sync::Arc;

/// A hook's way to its backend.
pub struct Route {
    /// The backend's position in the rules, for its name and metric handles.
    pub backend: usize,
    pub bound: Arc<dyn Bound>,
}

/// The routes of a rule set, by hook position.
pub struct Routes(Vec<Route>);

impl Routes {
    /// Every hook's route. The loader only builds hooks of existing backends, with configs their
    /// own kind read, so an `Err` here is a fault in a kind, reported rather than served.
    pub fn build(rules: &Rules) -> Result<Routes, String> {
        let route = |hook: &crate::rules::Hook| {
            let backend = rules.backend_index(&hook.backend)?;
            let config = &rules.backends[backend];
            let kind = KINDS.iter().find(|k| k.name() == config.kind)?;
            Some(Route { backend, bound: kind.bind(&config.config, &hook.target)? })
        };
        let routes = rules.hooks.iter().map(|hook| {
            route(hook).ok_or_else(|| format!("hook `{}`: no route to backend `{}`", hook.name, hook.backend))
        });
        Ok(Routes(routes.collect::<Result<_, _>>()?))
    }

    /// The route of the hook at `hook` in the rules these routes were built for.
    pub fn of(&self, hook: usize) -> &Route {
        &self.0[hook]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::rules_from_text;

    #[test]
    fn every_kind_binds_its_hooks() {
        let rules = rules_from_text(
            r#"
[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:1"

[backends.console]
kind = "log"

[backends.room]
kind = "matrix"
url = "http://127.0.0.1:2"
access_token = "secret"
server_name = "example.org"

[[hooks]]
name = "a"
key = "key-a"
backend = "chat"
backend_key = "abc"

[[hooks]]
name = "b"
key = "key-b"
backend = "console"

[[hooks]]
name = "c"
key = "key-c"
backend = "room"
room = "!opaque:example.org"
"#,
        );
        let routes = Routes::build(&rules).unwrap();
        let names: Vec<_> = (0..3).map(|i| rules.backends[routes.of(i).backend].name.as_str()).collect();
        assert_eq!(names, ["chat", "console", "room"]);
    }
}
