//! The `matrix` kind (contract section 13) against a real Synapse homeserver on loopback: Slack
//! messages posted through hookgate arrive as formatted events, read back through the client API.

use crate::common;

use common::servers::Synapse;
use common::GatewayProcess;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn rules(synapse: &Synapse) -> String {
    format!(
        r##"
[backends.matrix]
kind = "matrix"
url = "{}"
server_name = "localhost"
access_token = "{}"

[[hooks]]
name = "ci"
key = "T000/B000/XXXX"
backend = "matrix"
room = "{}"
markup = "slack"
username = "CI"
rate = 0

[[hooks]]
name = "lobby"
key = "lobbykey"
backend = "matrix"
room = "#lobby:localhost"
rate = 0

[[hooks]]
name = "lost"
key = "lostkey"
backend = "matrix"
room = "#nowhere:localhost"
rate = 0
"##,
        synapse.url(),
        synapse.bot_token,
        synapse.room_id,
    )
}

#[test]
fn slack_messages_arrive_as_formatted_matrix_events() {
    let synapse = Synapse::start();
    let gateway = GatewayProcess::start(&rules(&synapse));
    let slack = json!({
        "text": "Build *passed* for <https://ci.example/42|build 42> <!channel>",
        "attachments": [{
            "color": "good",
            "title": "Deploy <prod>",
            "title_link": "https://ci.example/deploy/42",
            "text": "took _3m_",
            "fields": [{"title": "Env", "value": "prod", "short": true}]
        }]
    });
    let curl = Command::new("curl")
        .args(["-s", "-H", "Content-Type: application/json", "-H", "X-Request-Id: curl-1", "-d", &slack.to_string()])
        .arg(format!("http://{}/services/T000/B000/XXXX", gateway.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "ok");

    let events = wait_room(&synapse, &synapse.room_id, 1, Duration::from_secs(10));
    let event = &events[0];
    assert_eq!(event["sender"], "@bridgebot:localhost");
    let content = &event["content"];
    assert_eq!(content["msgtype"], "m.notice");
    assert_eq!(
        content["body"],
        "**CI**: Build **passed** for [build 42](https://ci.example/42) @room\n\n\
         Deploy <prod> (https://ci.example/deploy/42)\ntook _3m_\nEnv: prod"
    );
    assert_eq!(content["format"], "org.matrix.custom.html");
    assert_eq!(
        content["formatted_body"],
        "<p><strong>CI</strong>: Build <strong>passed</strong> for <a href=\"https://ci.example/42\">build 42</a> @room</p>\
         <blockquote><font data-mx-color=\"#2eb886\">\u{2503}</font> \
         <p><b><a href=\"https://ci.example/deploy/42\">Deploy &lt;prod&gt;</a></b></p><p>took <em>3m</em></p>\
         <p><b>Env</b>: prod</p></blockquote>"
    );
    assert_eq!(content["m.mentions"], json!({"room": true}));

    // The same request again (a client retry with its request id): the same txnId, no new event.
    let again = Command::new("curl")
        .args(["-s", "-H", "Content-Type: application/json", "-H", "X-Request-Id: curl-1", "-d", &slack.to_string()])
        .arg(format!("http://{}/services/T000/B000/XXXX", gateway.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), "ok");

    // slack_sdk's WebhookClient, unchanged but for the URL.
    let script = format!(
        "from slack_sdk.webhook import WebhookClient\n\
         r = WebhookClient('http://{}/services/T000/B000/XXXX').send(text='from *slack_sdk*', blocks=[\
         {{'type': 'section', 'text': {{'type': 'mrkdwn', 'text': 'block with `code`'}}}}])\n\
         print(r.status_code, r.body)\n",
        gateway.addr
    );
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let sdk = Command::new(python).args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&sdk.stdout).trim(), "200 ok", "{}", String::from_utf8_lossy(&sdk.stderr));
    let events = wait_room(&synapse, &synapse.room_id, 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let events = if synapse.messages().len() > events.len() { synapse.messages() } else { events };
    assert_eq!(events.len(), 2, "the repeated request made no second event: {events:#?}");
    let sdk_content = &events[1]["content"];
    let body = sdk_content["body"].as_str().unwrap();
    assert!(body.starts_with("**CI**: ") && body.contains("block with `code`"), "{body}");
    assert!(sdk_content["formatted_body"].as_str().unwrap().contains("<code>code</code>"), "{sdk_content}");

    // A public room the bot is not in yet: it joins, then posts.
    let lobby = gateway.post("/hooks/lobbykey", Some("application/json"), br#"{"text":"hello lobby"}"#);
    assert_eq!((lobby.status, lobby.text()), (200, "ok".into()));
    let in_lobby = synapse.messages_in(&synapse.room("#lobby:localhost"));
    assert_eq!(
        (&in_lobby[0]["sender"], &in_lobby[0]["content"]["body"]),
        (&json!("@bridgebot:localhost"), &json!("hello lobby"))
    );

    // An alias the homeserver does not know: 404 channel_not_found.
    let lost = gateway.post("/hooks/lostkey", Some("application/json"), br#"{"text":"x"}"#);
    assert_eq!((lost.status, lost.text()), (404, "channel_not_found".into()));
}

/// The bot user is held to Synapse's own message rate (10 at once by default): past it, the
/// client gets 429 `rate_limited` with Synapse's `Retry-After`, and nothing is lost silently.
#[test]
fn synapse_rate_limit_reaches_the_client_as_429() {
    let synapse = Synapse::start();
    let gateway = GatewayProcess::start(&rules(&synapse));
    let answers: Vec<(u16, Option<String>)> = (0..20)
        .map(|i| {
            let body = format!(r#"{{"text":"burst {i}"}}"#);
            let r = gateway.post("/services/T000/B000/XXXX", Some("application/json"), body.as_bytes());
            (r.status, r.header("retry-after").map(str::to_owned))
        })
        .collect();
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "Synapse limited none of 20: {answers:?}");
    assert!(limited.iter().all(|(_, r)| r.as_deref().is_some_and(|s| s.parse::<u64>().unwrap() >= 1)), "{answers:?}");
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(answers.iter().all(|(s, _)| matches!(s, 200 | 429)), "{answers:?}");
    assert_eq!(
        wait_room(&synapse, &synapse.room_id, accepted, Duration::from_secs(10)).len(),
        accepted,
        "each 200 is one event"
    );
}

/// The application service's rules: hook `ci` posts as `@hook_ci` (or a user per allowed
/// username) into `#alerts`, channel `ops` into `#ops`; hook `secret` aims at an invite-only room.
fn app_service_rules(synapse: &Synapse, spool: Option<&std::path::Path>) -> String {
    let (spool_table, delivery) = match spool {
        Some(dir) => {
            (format!("[spool]\npath = \"{}\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n", dir.display()), "spool")
        }
        None => (String::new(), "direct"),
    };
    format!(
        r##"
{spool_table}
[backends.matrix]
kind = "matrix"
url = "{url}"
server_name = "localhost"
as_token = "{token}"
user_prefix = "hook_"
connect_timeout_ms = 300
timeout_ms = 3000

[[hooks]]
name = "ci"
key = "T000/B000/XXXX"
backend = "matrix"
room = "#alerts:localhost"
markup = "slack"
username = "CI"
delivery = "{delivery}"
rate = 0
overrides = {{ username = "allow", icon = "allow", channel = "allow" }}
[hooks.rooms]
ops = "{ops}"

[[hooks]]
name = "secret"
key = "secretkey"
backend = "matrix"
room = "#private:localhost"
rate = 0

[backends.outside]
kind = "matrix"
url = "{url}"
server_name = "localhost"
as_token = "{token}"
user_prefix = "other_"

[[hooks]]
name = "stray"
key = "straykey"
backend = "outside"
room = "#alerts:localhost"
rate = 0
"##,
        url = synapse.url(),
        token = synapse.as_token,
        ops = synapse.ops_room_id,
    )
}

/// Waits until `room` holds `count` messages.
fn wait_room(synapse: &Synapse, room: &str, count: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let events = synapse.messages_in(room);
        if events.len() >= count {
            return events;
        }
        assert!(Instant::now() < deadline, "{} of {count} events in {room}", events.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn application_service_users_post_under_their_own_names() {
    let synapse = Synapse::start();
    let gateway = GatewayProcess::start(&app_service_rules(&synapse, None));
    let url = format!("http://{}/services/T000/B000/XXXX", gateway.addr);

    // slack_sdk as a Slack integration sends it: the hook's own user, named by its username.
    let script = format!(
        "from slack_sdk.webhook import WebhookClient\n\
         r = WebhookClient('{url}').send_dict({{'text': 'Deploy *done* <!here>', 'icon_emoji': ':rocket:'}})\n\
         print(r.status_code, r.body)\n"
    );
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let sdk = Command::new(python).args(["-c", &script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&sdk.stdout).trim(), "200 ok", "{}", String::from_utf8_lossy(&sdk.stderr));
    let events = wait_room(&synapse, &synapse.room_id, 1, Duration::from_secs(10));
    assert_eq!(events[0]["sender"], "@hook_ci:localhost");
    let content = &events[0]["content"];
    assert_eq!(content["body"], "Deploy **done** @room", "no name prefix: the sender carries the name");
    assert_eq!(content["formatted_body"], "<p>Deploy <strong>done</strong> @room</p>");
    assert_eq!(content["m.mentions"], json!({"room": true}));
    assert_eq!(synapse.display_names("@hook_ci:localhost", &synapse.room_id), (json!("CI"), json!("CI")));
    assert_eq!(gateway.metric(r#"hookgate_dropped_fields_total{field="icon_emoji"}"#), Some(1.0));

    // An allowed username override gets a user of its own; curl sends it twice with one request
    // id, and the second send is the same event.
    let jenkins = json!({"text": "from jenkins", "username": "Jenkins CI"}).to_string();
    for _ in 0..2 {
        let curl = Command::new("curl")
            .args(["-s", "-H", "Content-Type: application/json", "-H", "X-Request-Id: as-1", "-d", &jenkins, &url])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&curl.stdout), "ok");
    }
    let events = wait_room(&synapse, &synapse.room_id, 2, Duration::from_secs(10));
    assert_eq!(events[1]["sender"], "@hook_ci_jenkins_ci:localhost");
    assert_eq!(events[1]["content"]["body"], "from jenkins");
    assert_eq!(
        synapse.display_names("@hook_ci_jenkins_ci:localhost", &synapse.room_id),
        (json!("Jenkins CI"), json!("Jenkins CI"))
    );

    // A requested channel mapped to a second room, which the hook's user joins on first use.
    let ops =
        gateway.post("/services/T000/B000/XXXX", Some("application/json"), br##"{"text":"to ops","channel":"#ops"}"##);
    assert_eq!((ops.status, ops.text()), (200, "ok".into()));
    let in_ops = wait_room(&synapse, &synapse.ops_room_id, 1, Duration::from_secs(10));
    assert_eq!((&in_ops[0]["sender"], &in_ops[0]["content"]["body"]), (&json!("@hook_ci:localhost"), &json!("to ops")));

    // The application service's users are exempt from Synapse's message rate: 30 at once all pass.
    for i in 0..30 {
        let body = format!(r#"{{"text":"quick {i}"}}"#);
        let r = gateway.post("/services/T000/B000/XXXX", Some("application/json"), body.as_bytes());
        assert_eq!((r.status, r.text()), (200, "ok".into()), "message {i}");
    }
    let events = wait_room(&synapse, &synapse.room_id, 32, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(synapse.messages().len(), 32, "the repeated request id made no second event: {events:#?}");

    // An invite-only room refuses a user nobody invited: 403 action_prohibited, nothing posted.
    let secret = gateway.post("/hooks/secretkey", Some("application/json"), br#"{"text":"x"}"#);
    assert_eq!((secret.status, secret.text()), (403, "action_prohibited".into()));
    // A user_prefix outside the registration's namespace cannot register its users: that is the
    // gateway's set-up, so 502 backend_error, not the client's fault.
    let stray = gateway.post("/hooks/straykey", Some("application/json"), br#"{"text":"x"}"#);
    assert_eq!((stray.status, stray.text()), (502, "backend_error".into()));

    // Invited by a member, the hook's user joins and posts.
    let private = synapse.invite("#private:localhost", "@hook_secret:localhost");
    let secret = gateway.post("/hooks/secretkey", Some("application/json"), br#"{"text":"now invited"}"#);
    assert_eq!((secret.status, secret.text()), (200, "ok".into()));
    let events = wait_room(&synapse, &private, 1, Duration::from_secs(10));
    assert_eq!(
        (&events[0]["sender"], &events[0]["content"]["body"]),
        (&json!("@hook_secret:localhost"), &json!("now invited"))
    );
    assert_eq!(synapse.display_names("@hook_secret:localhost", &private), (json!("secret"), json!("secret")));
}

/// A spooled hook on a bot user: Synapse's 429s make the spool wait and try again, so every
/// message answered `ok` arrives, in order, even past the bot's message rate (Synapse's default
/// lets 10 through at once, then one each 5 s).
#[test]
fn spool_mode_delivers_later_what_synapse_rate_limited() {
    let synapse = Synapse::start();
    let spool = tempfile::tempdir().unwrap();
    let rules = rules(&synapse).replace("rate = 0\n", "rate = 0\ndelivery = \"spool\"\n");
    let rules = format!(
        "[spool]\npath = \"{}\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n{rules}",
        spool.path().display()
    );
    let gateway = GatewayProcess::start(&rules);
    let total = 14;
    for i in 0..total {
        let body = format!(r#"{{"text":"burst {i}"}}"#);
        let r = gateway.post("/services/T000/B000/XXXX", Some("application/json"), body.as_bytes());
        assert_eq!((r.status, r.text()), (200, "ok".into()), "message {i}");
    }
    let events = wait_room(&synapse, &synapse.room_id, total, Duration::from_secs(90));
    let bodies: Vec<&str> = events.iter().map(|e| e["content"]["body"].as_str().unwrap()).collect();
    let want: Vec<String> = (0..total).map(|i| format!("**CI**: burst {i}")).collect();
    assert_eq!(bodies, want);
    let limited = gateway.metric(r#"hookgate_upstream_requests_total{backend="matrix",code="429"}"#);
    assert!(limited.unwrap_or(0.0) >= 1.0, "Synapse limited none of {total}: {limited:?}");
}

/// Synapse killed with `kill -9` in the middle of a spooled stream and started again: every
/// message answered `ok` arrives once the homeserver is back, in order. A send whose answer was
/// lost may post twice (the application service's transaction ids do not outlive a restart);
/// the test counts and reports such duplicates.
#[test]
fn a_killed_synapse_loses_nothing_spooled() {
    let mut synapse = Synapse::start();
    let spool = tempfile::tempdir().unwrap();
    let gateway = GatewayProcess::start(&app_service_rules(&synapse, Some(spool.path())));
    let total = 60;
    for i in 0..total {
        if i == 20 {
            synapse.kill();
        }
        if i == 40 {
            synapse.restart();
        }
        let body = format!(r#"{{"text":"stream {i}"}}"#);
        let r = gateway.post("/services/T000/B000/XXXX", Some("application/json"), body.as_bytes());
        assert_eq!((r.status, r.text()), (200, "ok".into()), "message {i}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let bodies = loop {
        let events = synapse.messages();
        let bodies: Vec<String> = events.iter().map(|e| e["content"]["body"].as_str().unwrap().to_owned()).collect();
        let mut distinct = bodies.clone();
        distinct.dedup();
        if distinct.len() >= total {
            break bodies;
        }
        assert!(Instant::now() < deadline, "{} of {total} messages arrived", distinct.len());
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut distinct = bodies.clone();
    distinct.dedup();
    let want: Vec<String> = (0..total).map(|i| format!("stream {i}")).collect();
    assert_eq!(distinct, want, "every acknowledged message, in order");
    let duplicates = bodies.len() - distinct.len();
    eprintln!("a_killed_synapse_loses_nothing_spooled: {total} delivered, {duplicates} duplicates");
    assert!(duplicates <= 1, "a duplicate only for the send in flight when Synapse died: {duplicates}");
}

/// A reload that moves a spooled hook from a Mattermost backend that is down to this Synapse
/// (contract section 17): the stored messages follow it, rendered as Matrix events from the
/// stored message (HTML, attachment, the username prefixing the text), in order.
#[test]
fn spooled_messages_follow_their_hook_from_mattermost_to_matrix() {
    let synapse = Synapse::start();
    let spool = tempfile::tempdir().unwrap();
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let hook = |backend: &str, keys: &str| {
        format!(
            "[spool]\npath = \"{}\"\nretry_initial = \"100ms\"\nretry_max = \"400ms\"\n\n\
             [backends.chat]\nkind = \"mattermost\"\nurl = \"http://{down}\"\nconnect_timeout_ms = 200\n\n\
             [backends.matrix]\nkind = \"matrix\"\nurl = \"{}\"\nserver_name = \"localhost\"\naccess_token = \"{}\"\n\n\
             [[hooks]]\nname = \"moving\"\nkey = \"movingkey\"\nbackend = \"{backend}\"\n{keys}\ndelivery = \"spool\"\n\
             username = \"CI\"\nrate = 0\n",
            spool.path().display(),
            synapse.url(),
            synapse.bot_token
        )
    };
    let gateway = GatewayProcess::start(&hook("chat", "backend_key = \"mmci\""));
    for body in
        [r#"{"text":"moved *one*"}"#, r#"{"text":"moved two","attachments":[{"title":"Deploy","text":"done"}]}"#]
    {
        let r = gateway.post("/hooks/movingkey", Some("application/json"), body.as_bytes());
        assert_eq!((r.status, r.text()), (200, "ok".into()));
    }
    gateway.wait_for_log("outcome=retry");
    gateway.write_rules(&hook("matrix", &format!("room = \"{}\"", synapse.room_id)));
    gateway.signal("HUP");
    let events = wait_room(&synapse, &synapse.room_id, 2, Duration::from_secs(30));
    let content = |i: usize| &events[i]["content"];
    assert_eq!(content(0)["body"], "**CI**: moved *one*");
    assert!(content(0)["formatted_body"].as_str().unwrap().contains("<em>one</em>"), "{}", content(0));
    assert!(content(1)["body"].as_str().unwrap().starts_with("**CI**: moved two"), "{}", content(1));
    assert!(content(1)["formatted_body"].as_str().unwrap().contains("Deploy"), "{}", content(1));
    assert!(gateway.wait_for_log("moved_from=chat").contains("outcome=delivered"));
}

/// A Web API call to the gateway (docs/webapi.md), with a JSON body; the answer.
fn api(gateway: &GatewayProcess, method: &str, token: &str, body: Value) -> Value {
    let headers = [("Authorization", format!("Bearer {token}")), ("Content-Type", "application/json".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = gateway.connect().request("POST", &format!("/api/{method}"), &headers, body.to_string().as_bytes());
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(answer["ok"], true, "{method} {body}: {answer}");
    answer
}

/// One event of `#alerts` as alice reads it.
fn event(synapse: &Synapse, id: &str) -> Value {
    let path = format!("/_matrix/client/v3/rooms/{}/event/{}", synapse.room_id, id.replace('$', "%24"));
    let (status, event) = common::servers::matrix_call(synapse.port, "GET", &path, Some(&synapse.alice_token), "");
    assert_eq!(status, 200, "{event}");
    event
}

/// The Web API on a real Synapse, through a bot user and through an application service: a reply
/// is in its root's thread, an update is an `m.replace` edit the server aggregates on the root, a
/// delete redacts; the map outlives a `kill -9` of hookgate between the post and the update.
#[test]
fn web_api_threads_edits_and_deletes_on_synapse() {
    let synapse = Synapse::start();
    let store = tempfile::tempdir().unwrap();
    let rules = format!(
        r##"
[spool]
path = "{store}"

[backends.bot]
kind = "matrix"
url = "{url}"
server_name = "localhost"
access_token = "{bot}"

[backends.service]
kind = "matrix"
url = "{url}"
server_name = "localhost"
as_token = "{service}"
user_prefix = "hook_"

[[hooks]]
name = "bot"
bot_token = "xoxb-bot"
backend = "bot"
room = "{room}"
rate = 0

[[hooks]]
name = "service"
bot_token = "xoxb-service"
backend = "service"
room = "{room}"
username = "CI"
rate = 0
"##,
        store = store.path().display(),
        url = synapse.url(),
        bot = synapse.bot_token,
        service = synapse.as_token,
        room = synapse.room_id,
    );
    for token in ["xoxb-bot", "xoxb-service"] {
        let gateway = GatewayProcess::start(&rules);
        let root =
            api(&gateway, "chat.postMessage", token, json!({"channel": "alerts", "text": format!("root {token}")}));
        let ts = root["ts"].as_str().unwrap().to_owned();
        let reply = api(
            &gateway,
            "chat.postMessage",
            token,
            json!({"channel": "alerts", "text": format!("reply {token}"), "thread_ts": ts}),
        );
        assert_eq!(reply["message"]["thread_ts"], ts.as_str());
        drop(gateway); // SIGKILL between the posts and the update.
        let gateway = GatewayProcess::start(&rules);
        api(&gateway, "chat.update", token, json!({"channel": "alerts", "ts": ts, "text": format!("edited {token}")}));
        let find = |events: &[Value], body: &str| -> Value {
            let found = events.iter().find(|e| e["content"]["body"].as_str().is_some_and(|b| b.ends_with(body)));
            found.cloned().unwrap_or_else(|| panic!("no event ending {body:?} in {events:#?}"))
        };
        let events = wait_room(&synapse, &synapse.room_id, 1, Duration::from_secs(10));
        let (root_event, reply_event) =
            (find(&events, &format!("root {token}")), find(&events, &format!("reply {token}")));
        let root_id = root_event["event_id"].as_str().unwrap();
        let reply_id = reply_event["event_id"].as_str().unwrap().to_owned();
        assert_eq!(
            reply_event["content"]["m.relates_to"],
            json!({"rel_type": "m.thread", "event_id": root_id, "is_falling_back": true,
                "m.in_reply_to": {"event_id": root_id}})
        );
        let path =
            format!("/_matrix/client/v1/rooms/{}/relations/{}/m.thread", synapse.room_id, root_id.replace('$', "%24"));
        let (_, thread) = common::servers::matrix_call(synapse.port, "GET", &path, Some(&synapse.alice_token), "");
        assert_eq!(thread["chunk"][0]["event_id"], reply_id.as_str(), "{thread}");
        let edit = find(&events, &format!("* edited {token}"));
        assert_eq!(edit["content"]["m.new_content"]["body"], format!("edited {token}"));
        assert_eq!(edit["content"]["m.relates_to"], json!({"rel_type": "m.replace", "event_id": root_id}));
        assert_eq!(edit["sender"], root_event["sender"], "an edit comes from the sender of the original");
        let replaced = &event(&synapse, root_id)["unsigned"]["m.relations"]["m.replace"];
        assert_eq!(replaced["event_id"], edit["event_id"], "Synapse shows the edit as the root's content");

        api(&gateway, "chat.delete", token, json!({"channel": "alerts", "ts": reply["ts"]}));
        let redacted = event(&synapse, &reply_id);
        assert_eq!(redacted["content"], json!({}), "{redacted}");
        assert!(redacted["unsigned"]["redacted_because"].is_object(), "{redacted}");
    }
}
