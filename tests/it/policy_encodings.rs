//! Property: a hook's decision cannot be changed by how a request is encoded. The same request sent
//! as JSON, with keys in other letter cases, with duplicate keys, as a form `payload=`, as
//! multipart (payload field or plain fields) or with no content type gets the same forwarded
//! payload or the same rejection, and the same override actions.

use hookgate::pipeline::process;
use hookgate::rules::Hook;
use hookgate::rules::{ChannelMap, Defaults, Mode, Policy};
use proptest::prelude::*;
use regex::Regex;

#[derive(Debug, Clone)]
struct Request {
    /// (member name, value) for text, channel, username, icon_url, icon_emoji.
    members: Vec<(&'static str, String)>,
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("town-square".to_owned()),
        Just("bot".to_owned()),
        Just("#ops-db".to_owned()),
        Just("@alice".to_owned()),
        Just("alerts-web".to_owned()),
        Just(":tada:".to_owned()),
        Just("http://icons.example/a.png".to_owned()),
        "[a-z#@:/. -]{1,12}",
        "\\PC{0,16}",
        Just("a & b + c = 100% \"quoted\"\nnew line\ttab".to_owned()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let names = ["text", "channel", "username", "icon_url", "icon_emoji"];
    (value(), proptest::collection::vec(proptest::option::of(value()), 4)).prop_map(move |(text, rest)| {
        let mut members = vec![("text", if text.is_empty() { "x".to_owned() } else { text })];
        for (name, v) in names[1..].iter().zip(rest) {
            if let Some(v) = v {
                members.push((name, v));
            }
        }
        Request { members }
    })
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Allow), Just(Mode::Ignore), Just(Mode::Reject)]
}

fn hook() -> impl Strategy<Value = Hook> {
    (mode(), mode(), mode(), any::<bool>()).prop_map(|(username, icon, channel, with_rules)| Hook {
        name: "h".into(),
        policy: Policy {
            defaults: Defaults {
                channel: "town-square".into(),
                username: "bot".into(),
                icon_url: "http://default/icon.png".into(),
            },
            username,
            icon,
            channel,
            channels: with_rules.then(|| vec![Regex::new("^alerts-").unwrap(), Regex::new("^@").unwrap()]),
            channel_map: if with_rules {
                vec![ChannelMap { pattern: Regex::new("^#?ops-(.*)$").unwrap(), to: "alerts-$1".into() }]
            } else {
                Vec::new()
            },
            ..Policy::default()
        },
        ..Hook::default()
    })
}

fn json(members: &[(&str, String)], case: &[bool]) -> String {
    let body: Vec<String> = members
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let key: String =
                if case.get(i).copied().unwrap_or(false) { k.to_ascii_uppercase() } else { k.to_string() };
            format!("{}:{}", serde_json::to_string(&key).unwrap(), serde_json::to_string(v).unwrap())
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Every encoding of the request: (label, content type, body).
fn encodings(req: &Request, case: &[bool]) -> Vec<(&'static str, String, Vec<u8>)> {
    let plain = json(&req.members, &[]);
    let encoded: String = form_urlencoded::byte_serialize(plain.as_bytes()).collect();
    // A decoy value for every member first: the last occurrence wins.
    let mut with_decoys: Vec<(&str, String)> = req.members.iter().map(|(k, _)| (*k, "decoy".to_owned())).collect();
    with_decoys.extend(req.members.iter().cloned());
    let boundary = "hookgate-test-boundary-7f3a";
    let part = |name: &str, value: &str| {
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let multipart_payload = format!("{}--{boundary}--\r\n", part("payload", &plain));
    let multipart_fields: String =
        req.members.iter().map(|(k, v)| part(k, v)).collect::<String>() + &format!("--{boundary}--\r\n");
    let mp = format!("multipart/form-data; boundary={boundary}");
    vec![
        ("json", "application/json".into(), plain.clone().into_bytes()),
        ("json, keys in other cases", "application/json; charset=utf-8".into(), json(&req.members, case).into_bytes()),
        ("json, duplicate keys", "application/json".into(), json(&with_decoys, &[]).into_bytes()),
        ("form payload=", "application/x-www-form-urlencoded".into(), format!("payload={encoded}").into_bytes()),
        ("form-labelled json", "application/x-www-form-urlencoded".into(), plain.clone().into_bytes()),
        ("no content type, payload=", String::new(), format!("payload={encoded}").into_bytes()),
        ("no content type, json", String::new(), plain.into_bytes()),
        ("multipart payload", mp.clone(), multipart_payload.into_bytes()),
        ("multipart fields", mp, multipart_fields.into_bytes()),
    ]
}

type Seen = (Result<String, &'static str>, Vec<(&'static str, &'static str)>);

fn decide(hook: &Hook, content_type: &str, body: &[u8]) -> Seen {
    let processed = process(hook, content_type.as_bytes(), body);
    let actions = processed.actions.iter().map(|a| (a.field.as_str(), a.kind.as_str())).collect();
    match processed.result {
        Ok(message) => (Ok(message.to_json()), actions),
        Err(r) => (Err(r.code()), actions),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_decision_does_not_depend_on_the_encoding(
        hook in hook(),
        req in request(),
        case in proptest::collection::vec(any::<bool>(), 5),
    ) {
        let all = encodings(&req, &case);
        let (_, ct, body) = &all[0];
        let baseline = decide(&hook, ct, body);
        prop_assert!(baseline.0.is_ok() || baseline.0 == Err("action_prohibited"), "baseline {:?}", baseline);
        for (label, ct, body) in &all[1..] {
            let seen = decide(&hook, ct, body);
            prop_assert_eq!(&seen, &baseline, "{} differs for {:?}", label, req);
        }
    }
}
