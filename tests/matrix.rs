//! The `matrix` kind (contract section 13) against a real Synapse homeserver on loopback: Slack
//! messages posted through hookgate arrive as formatted events, read back through the client API.

mod common;

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
room = "#alerts:localhost"
markup = "slack"
username = "CI"
rate = 0

[[hooks]]
name = "lost"
key = "lostkey"
backend = "matrix"
room = "#nowhere:localhost"
rate = 0
"##,
        synapse.url(),
        synapse.bot_token
    )
}

/// Waits until the room holds `count` messages.
fn wait_events(synapse: &Synapse, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = synapse.messages();
        if events.len() >= count {
            return events;
        }
        assert!(Instant::now() < deadline, "{} of {count} events in the room", events.len());
        std::thread::sleep(Duration::from_millis(100));
    }
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

    let events = wait_events(&synapse, 1);
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
    let events = wait_events(&synapse, 2);
    std::thread::sleep(Duration::from_millis(300));
    let events = if synapse.messages().len() > events.len() { synapse.messages() } else { events };
    assert_eq!(events.len(), 2, "the repeated request made no second event: {events:#?}");
    let sdk_content = &events[1]["content"];
    let body = sdk_content["body"].as_str().unwrap();
    assert!(body.starts_with("**CI**: ") && body.contains("block with `code`"), "{body}");
    assert!(sdk_content["formatted_body"].as_str().unwrap().contains("<code>code</code>"), "{sdk_content}");

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
    assert_eq!(wait_events(&synapse, accepted).len(), accepted, "each 200 is one event");
}
