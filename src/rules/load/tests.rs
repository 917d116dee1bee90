//! The loader's tests: valid rules, every problem with its FILE:LINE, TLS files, policy rules.

use super::*;
use crate::delivery::load_rules as load;
use crate::delivery::mattermost::Target;
use crate::rules::{keys, Mode, DEFAULT_REDIS_TIMEOUT};

fn load_files(files: &[(&str, &str)]) -> Result<Rules, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    load(dir.path())
        .map_err(|ps| ps.iter().map(|p| p.to_string().replace(&format!("{}/", dir.path().display()), "")).collect())
}

fn backend<'a>(rules: &'a Rules, name: &str) -> &'a Backend {
    &rules.backends[rules.backend_index(name).expect("a backend of that name")]
}

/// The backend_key a mattermost hook was loaded with.
fn target(hook: &Hook) -> String {
    let target = hook.target.clone().into_any().downcast::<Target>().expect("a mattermost hook");
    target.backend_key.clone().unwrap_or_default()
}

const BACKENDS: &str = r#"
[backends.chat]
kind = "mattermost"
url = "http://127.0.0.1:8066"

[backends.console]
kind = "log"
"#;

#[test]
fn valid_rules_load() {
    let rules = load_files(&[
        ("00-backends.toml", BACKENDS),
        (
            "10-hooks.toml",
            r#"
[gateway]
listen = "127.0.0.1:9000"
max_body_bytes = 1000
errors = "mattermost"

[[hooks]]
name = "ci"
key = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
backend = "chat"
backend_key = "abc123"
channel = "town-square"
username = "ci-bot"
markup = "slack"

[[hooks]]
name = "demo"
key = "plain-token"
backend = "console"
"#,
        ),
    ])
    .unwrap();
    assert_eq!(rules.gateway.listen.as_deref(), Some("127.0.0.1:9000"));
    assert_eq!(rules.gateway.admin_listen, "127.0.0.1:9465");
    assert_eq!(rules.gateway.max_body_bytes, 1000);
    assert_eq!(rules.gateway.errors, super::super::ErrorDialect::Mattermost);
    assert_eq!(rules.hooks.len(), 2);
    let ci = rules.hook_by_digest(&keys::digest("test")).unwrap();
    assert_eq!((ci.name.as_str(), target(ci).as_str(), ci.markup), ("ci", "abc123", super::super::Markup::Slack));
    assert_eq!(backend(&rules, &ci.backend).name, "chat");
    let demo = rules.hook_by_digest(&keys::digest("plain-token")).unwrap();
    assert_eq!(backend(&rules, &demo.backend).name, "console");
    let warnings: Vec<String> =
        rules.warnings.iter().map(|w| w.to_string().rsplit('/').next().unwrap().to_owned()).collect();
    assert_eq!(
        warnings,
        vec!["10-hooks.toml:18: warning: hook `demo` stores its key in plain text; store the output of `hookgate hash-key` instead"]
    );
    assert!(rules.hook_by_digest(&keys::digest("nope")).is_none());
}

/// Hooks read with their part, and parts of one hook read after the backends, keep the order
/// written, across files, whichever file defines their backend.
#[test]
fn hooks_keep_their_order_however_their_parts_are_read() {
    let hook = |name: &str| format!("[[hooks]]\nname = \"{name}\"\nkey = \"key-{name}\"\nbackend = \"late\"\n");
    let rules = load_files(&[
        (
            "a.toml",
            &format!(
                "{}[hooks.overrides]\nicon = \"ignore\"\n{}[backends.early]\nkind = \"log\"\n{}{}",
                hook("one"),
                hook("two"),
                hook("three"),
                hook("four")
            ),
        ),
        ("b.toml", &format!("{}\n[backends.late]\nkind = \"log\"\n", hook("five"))),
    ])
    .unwrap();
    let names: Vec<&str> = rules.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["one", "two", "three", "four", "five"]);
    assert_eq!(rules.hooks[0].policy.icon, Mode::Ignore);
    assert_eq!(rules.hook_by_digest(&keys::digest("key-four")).map(|h| h.name.as_str()), Some("four"));
}

#[test]
fn backend_key_on_a_log_hook_is_a_warning() {
    let hook = "[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"console\"\nbackend_key = \"x\"\n";
    let rules = load_files(&[("a.toml", &format!("{BACKENDS}{hook}"))]).unwrap();
    assert_eq!(rules.hooks.len(), 1);
    let warnings: Vec<String> = rules.warnings.iter().map(|w| w.to_string()).collect();
    let want = "a.toml:12: warning: hook `ci`: backend_key has no meaning for a log backend and is ignored";
    assert!(warnings.iter().any(|w| w.ends_with(want)), "{warnings:?}");
}

/// On a backend with `api_token` a hook needs no `backend_key`, and one written is a warning.
#[test]
fn a_hook_of_an_api_backend_needs_no_backend_key() {
    let backends = "[backends.api]\nkind = \"mattermost\"\nurl = \"http://h\"\napi_token = \"t\"\nteam = \"eng\"\n";
    let hooks = "[[hooks]]\nname = \"a\"\nkey = \"k1\"\nbackend = \"api\"\n\
                 [[hooks]]\nname = \"b\"\nkey = \"k2\"\nbackend = \"api\"\nbackend_key = \"x\"\n";
    let rules = load_files(&[("a.toml", &format!("{backends}{hooks}"))]).unwrap();
    assert_eq!(rules.hooks.iter().map(target).collect::<Vec<_>>(), ["", ""]);
    let warnings: Vec<String> = rules.warnings.iter().map(|w| w.to_string()).collect();
    let want = "a.toml:14: warning: hook `b`: backend_key is not used on a backend with api_token and is ignored";
    assert!(warnings.iter().any(|w| w.ends_with(want)), "{warnings:?}");
}

#[test]
fn defaults_apply_without_a_gateway_table() {
    let rules = load_files(&[("a.toml", BACKENDS)]).unwrap();
    assert_eq!(rules.gateway.listen.as_deref(), Some("127.0.0.1:8065"));
    assert_eq!(rules.gateway.max_body_bytes, 300_000);
    assert_eq!(rules.gateway.errors, super::super::ErrorDialect::Slack);
}

#[test]
fn problems_name_file_and_line() {
    let hook = |name: &str, key: &str, backend: &str, extra: &str| {
        format!("[[hooks]]\nname = \"{name}\"\nkey = \"{key}\"\nbackend = \"{backend}\"\n{extra}\n")
    };
    // Files and their text, and the problems loading them must report.
    type Case<'a> = (Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("a.toml", "[gateway]\nlisten = \"127.0.0.1:1\"\ntypo = 1\n".into())],
            vec!["a.toml:3: unknown field `typo`, expected one of `listen`, `listen_tls`, `tls_cert`, `tls_key`, `tls_certs`, `admin_listen`, `max_body_bytes`, `errors`, `per_hook_metrics`, `admin_listen_public`, `client_header_timeout_ms`, `client_body_timeout_ms`, `max_connections`"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "colour = \"red\"")))],
            vec!["a.toml:12: unknown field `colour`, expected one of `name`, `key`, `bot_token`, `backend`, `channel`, `username`, `icon_url`, `markup`, `delivery`, `max_props_bytes`, `rate`, `burst`, `overrides`, `channel_map`, `backend_key`"],
        ),
        (
            vec![("a.toml", "[gateway\n".into())],
            vec!["a.toml:1: unclosed table, expected `]`"],
        ),
        (
            vec![("a.toml", "[gateway]\n".into()), ("b.toml", "\n[gateway]\n".into())],
            vec!["b.toml:2: [gateway] is defined twice; first at a.toml:1"],
        ),
        (
            vec![("a.toml", BACKENDS.into()), ("b.toml", "[backends.chat]\nkind = \"log\"\n".into())],
            vec!["b.toml:1: backend `chat` is defined twice; first at a.toml:2"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}{}", hook("ci", "k1", "console", ""), hook("ci", "k2", "console", "")))],
            vec!["a.toml:14: hook `ci` is defined twice; first at a.toml:9"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("a", "same", "console", ""))), ("b.toml", hook("b", "same", "console", ""))],
            vec!["b.toml:3: hook `b` has the same key as hook `a` at a.toml:9"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "nowhere", "")))],
            vec!["a.toml:11: hook `ci` names backend `nowhere`, which is not defined"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "")))],
            vec!["a.toml:9: hook `ci` uses a mattermost backend and needs a backend_key"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "backend_key = \"../x\"")))],
            vec!["a.toml:12: hook `ci`: backend_key must be 1-128 characters of A-Z a-z 0-9 _ -"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("unknown", "k", "console", "")))],
            vec!["a.toml:9: hook name \"unknown\" must be 1-64 characters of A-Z a-z 0-9 _ . - and not `unknown` or `all`"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "sha256:12", "console", "")))],
            vec!["a.toml:10: hook `ci`: a sha256: key needs exactly 64 hex digits after the prefix"],
        ),
        (
            vec![("a.toml", "[gateway]\nlisten = \"localhost\"\nmax_body_bytes = 0\n".into())],
            vec![
                "a.toml:2: listen \"localhost\" is not an IP:PORT address",
                "a.toml:3: max_body_bytes must be between 1 and 67108864, not 0",
            ],
        ),
        (
            vec![("a.toml", "[gateway]\nadmin_listen = \"0.0.0.0:9465\"\n".into())],
            vec!["a.toml:2: admin_listen 0.0.0.0:9465 is not a loopback address; set admin_listen_public = true to serve metrics there"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "rate = -1.0\nburst = 0")))],
            vec![
                "a.toml:12: rate must be between 0 (unlimited) and 1000000, not -1",
                "a.toml:13: burst must be between 1 and 1000000, not 0",
            ],
        ),
        (
            vec![("a.toml", "[gateway]\nerrors = \"xml\"\n".into())],
            vec!["a.toml:2: unknown variant `xml`, expected `slack` or `mattermost`"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"ftp://chat.example\"\n".into())],
            vec!["a.toml:3: backend `x`: url must start with http:// or https://"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1:1\"\ntimeout_ms = -5\n".into())],
            vec!["a.toml:4: timeout_ms must be between 1 and 600000, not -5"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"carrier-pigeon\"\n".into())],
            vec!["a.toml:2: unknown variant `carrier-pigeon`, expected one of `mattermost`, `matrix`, `log`"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"log\"\nurl = \"http://x\"\n".into())],
            vec!["a.toml:3: backend `x`: url has no meaning for a log backend"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\n".into())],
            vec!["a.toml:1: backend `x` of kind mattermost needs a url"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"log\"\ntypo = 1\n".into())],
            vec!["a.toml:3: unknown field `typo`, expected `kind`"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://h\"\ntimeout = 1\n".into())],
            vec!["a.toml:4: unknown field `timeout`, expected one of `kind`, `url`, `timeout_ms`, `connect_timeout_ms`, `ca_file`, `tls_server_name`, `tls_verify`, `max_message_chars`, `api_token`, `team`"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = 8066\nmax_message_chars = \"many\"\n".into())],
            vec!["a.toml:3: backend `x`: url must be a string", "a.toml:4: backend `x`: max_message_chars must be an integer"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"mattermost\"\nurl = \"http://h\"\nmax_message_chars = \"many\"\n".into())],
            vec!["a.toml:4: backend `x`: max_message_chars must be an integer"],
        ),
        (
            vec![("a.toml", "[backends.x]\nurl = \"http://h\"\n".into())],
            vec!["a.toml:1: backend `x`: missing field `kind`"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nchannels = [\"^ok$\", \"(unclosed\"]")))],
            vec!["a.toml:13: hook `ci`: invalid channels regex: regex parse error:\n    (unclosed\n    ^\nerror: unclosed group"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[[hooks.channel_map]]\nmatch = \"*\"\nto = \"x\"")))],
            vec!["a.toml:13: hook `ci`: invalid channel_map match regex: regex parse error:\n    *\n    ^\nerror: repetition operator missing expression"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[[hooks.channel_map]]\nmatch = \"^ops-(.*)$\"\nto = \"alerts-$2\"")))],
            vec!["a.toml:14: hook `ci`: channel_map to: \"alerts-$2\" refers to group \"2\", which the pattern does not have (write $$ for a literal $)"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nusername = \"deny\"")))],
            vec!["a.toml:13: unknown variant `deny`, expected one of `allow`, `ignore`, `reject`"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "[hooks.overrides]\nicons = \"allow\"")))],
            vec!["a.toml:13: unknown field `icons`, expected one of `username`, `icon`, `channel`, `channels`"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "console", "max_props_bytes = 0")))],
            vec!["a.toml:12: max_props_bytes must be between 1 and 67108864, not 0"],
        ),
        (
            vec![("a.toml", "[spool]\nengine = \"kafka\"\n".into())],
            vec!["a.toml:2: engine \"kafka\" is not a spool engine; use \"embedded\" or \"nats\""],
        ),
        (
            vec![("a.toml", "[spool]\nstream = \"HOOKGATE\"\n".into())],
            vec!["a.toml:2: stream is for engine = \"nats\"; this spool is embedded"],
        ),
        (
            vec![(
                "a.toml",
                "[spool]\nengine = \"nats\"\nnats_urls = [\"127.0.0.1:4222\"]\nstream = \"a.b\"\nreplicas = 7\n".into(),
            )],
            vec![
                "a.toml:3: nats_urls: \"127.0.0.1:4222\" is not a nats://HOST:PORT address",
                "a.toml:4: stream \"a.b\" must be 1-32 of A-Z a-z 0-9 _ -",
                "a.toml:5: replicas must be between 1 and 5, not 7",
            ],
        ),
        (
            vec![("a.toml", "\n[ratelimit]\nredis_timeout_ms = 20\n".into())],
            vec!["a.toml:2: [ratelimit] needs redis_url, the Redis the instances share"],
        ),
        (
            vec![("a.toml", "[ratelimit]\nredis_url = \"http://127.0.0.1:6379\"\nredis_timeout_ms = 0\n".into())],
            vec![
                "a.toml:2: redis_url \"http://127.0.0.1:6379\" is not a Redis URL: Redis URL did not parse - InvalidClientConfig",
                "a.toml:3: redis_timeout_ms must be between 1 and 10000, not 0",
            ],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\nas_token = \"b\"\n".into())],
            vec!["a.toml:6: backend `m`: access_token and as_token exclude each other; pick one"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\nas_token = \"b\"\n".into())],
            vec!["a.toml:5: backend `m`: as_token needs a user_prefix for the hooks' users"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\nas_token = \"b\"\nuser_prefix = \"Hook \"\n".into())],
            vec!["a.toml:6: backend `m`: user_prefix \"Hook \" must be one or more of a-z 0-9 . _ = -"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\nuser_prefix = \"hook_\"\n".into())],
            vec!["a.toml:6: backend `m`: user_prefix is only read with an as_token"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\n".into())],
            vec!["a.toml:1: backend `m` of kind matrix needs an access_token, or an as_token with a user_prefix"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\naccess_token = \"a b\"\n".into())],
            vec!["a.toml:1: backend `m` of kind matrix needs a server_name"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a b\"\nmsgtype = \"m.emote\"\n".into())],
            vec![
                "a.toml:5: backend `m`: the token must be printable ASCII without spaces",
                "a.toml:6: backend `m`: msgtype \"m.emote\" must be \"m.notice\" or \"m.text\"",
            ],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"ci\"\n".into())],
            vec!["a.toml:10: hook `ci`: \"ci\" is not a room id (!id:server, or !id from room version 12) or alias (#name:server)"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"#ci:h\"\n[hooks.rooms]\nops = \"#ops:h\"\ndev = 5\nqa = \"qa\"\n".into())],
            vec!["a.toml:13: hook `ci`: rooms.dev must be a string"],
        ),
        (
            vec![("a.toml", "[backends.x]\nkind = \"matrix\"\nurl = \"http://h\"\nserver_name = \"h\"\naccess_token = \"a\"\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"x\"\nroom = \"#ci:h\"\n[hooks.rooms]\nops = \"#ops:h\"\nqa = \"qa\"\n".into())],
            vec!["a.toml:13: hook `ci`: \"qa\" is not a room id (!id:server, or !id from room version 12) or alias (#name:server)"],
        ),
        (
            vec![("a.toml", format!("{BACKENDS}{}", hook("ci", "k", "chat", "backend_key = \"abc\"\nroom = \"#ci:h\"")))],
            vec!["a.toml:13: hook `ci`: room has no meaning for a mattermost backend"],
        ),
        (
            vec![("a.toml", "[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"gone\"\nroom = \"#ci:h\"\nshade = 1\n".into())],
            vec![
                "a.toml:4: hook `ci` names backend `gone`, which is not defined",
                "a.toml:6: unknown field `shade`, expected one of `name`, `key`, `bot_token`, `backend`, `channel`, `username`, `icon_url`, `markup`, `delivery`, `max_props_bytes`, `rate`, `burst`, `overrides`, `channel_map`",
            ],
        ),
        (
            vec![("a.toml", "[backends.c]\nkind = \"log\"\n[[hooks]]\nname = \"ci\"\nbackend = \"c\"\n".into())],
            vec!["a.toml:4: hook `ci` needs a key, a bot_token, or both"],
        ),
        (
            vec![("a.toml", "[backends.c]\nkind = \"log\"\n[[hooks]]\nname = \"ci\"\nbot_token = \"t\"\nbackend = \"c\"\n".into())],
            vec!["a.toml:5: hook `ci` has a bot_token, which needs [spool] to keep the ts of its messages"],
        ),
        (
            vec![("a.toml", "[spool]\n[backends.c]\nkind = \"log\"\n[[hooks]]\nname = \"a\"\nbot_token = \"t\"\nbackend = \"c\"\n[[hooks]]\nname = \"b\"\nkey = \"t\"\nbot_token = \"t\"\nbackend = \"c\"\n".into())],
            vec!["a.toml:11: hook `b` has the same bot_token as hook `a` at a.toml:5"],
        ),
        (
            vec![("a.toml", "[spool]\n[backends.c]\nkind = \"log\"\n[[hooks]]\nname = \"a\"\nbot_token = \"sha256:12\"\nbackend = \"c\"\ndelivery = \"spool\"\n".into())],
            vec!["a.toml:6: hook `a`: bot_token: a sha256: key needs exactly 64 hex digits after the prefix"],
        ),
        (
            vec![("a.toml", "[backends.m]\nkind = \"mattermost\"\nurl = \"http://h\"\napi_token = \"t\"\n".into())],
            vec!["a.toml:4: backend `m`: api_token and team go together (the bot's token and its team)"],
        ),
        // A hook's part read after every file's backends: its parse error is still reported
        // before the problems found in the files after it.
        (
            vec![
                ("a.toml", format!("{}{}", hook("a", "k1", "later", ""), hook("b", "k2", "later", "bad = = 1"))),
                ("b.toml", "[backends.later]\nkind = \"log\"\nurl = \"http://h\"\n".into()),
            ],
            vec![
                "a.toml:10: extra `=`, expected nothing",
                "b.toml:3: backend `later`: url has no meaning for a log backend",
                "a.toml:4: hook `a` names backend `later`, which is not defined",
            ],
        ),
        (
            vec![("a.toml", "[ratelimit]\nredis_url = \"redis://127.0.0.1\"\nredis = 1\n".into())],
            vec!["a.toml:3: unknown field `redis`, expected `redis_url` or `redis_timeout_ms`"],
        ),
    ];
    for (files, want) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let got = load_files(&files).expect_err("rules should be refused");
        assert_eq!(got, want, "files {files:?}");
    }
}

/// A self-signed certificate for `localhost` ending `days` from now, and its key, as PEM.
fn certificate(days: i64) -> (String, String) {
    certificate_for(&["localhost"], days)
}

/// A self-signed certificate for `names` ending `days` from now, and its key, as PEM.
fn certificate_for(names: &[&str], days: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[test]
fn tls_files_are_checked_at_load() {
    let (cert, key) = certificate(90);
    let (soon, soon_key) = certificate(10);
    let (expired, expired_key) = certificate(-1);
    let (_, other_key) = certificate(90);
    let gateway = |cert: &str, key: &str| {
        format!("[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n")
    };
    let files = |rules: String, pems: &[(&str, &str)]| {
        let mut all = vec![("a.toml".to_owned(), rules)];
        all.extend(pems.iter().map(|(n, t)| (n.to_string(), t.to_string())));
        all
    };
    let run = |all: Vec<(String, String)>| {
        let refs: Vec<(&str, &str)> = all.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        load_files(&refs)
    };

    let good = run(files(gateway("c.pem", "k.pem"), &[("c.pem", &cert), ("k.pem", &key)])).unwrap();
    assert_eq!(good.gateway.listen, None, "listen_tls alone serves HTTPS only");
    assert_eq!(good.gateway.tls.as_ref().unwrap().listen, "127.0.0.1:8443");
    assert!(good.warnings.is_empty(), "{:?}", good.warnings);

    let warned = run(files(gateway("c.pem", "k.pem"), &[("c.pem", &soon), ("k.pem", &soon_key)])).unwrap();
    let warnings: Vec<String> = warned.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("a.toml:3: warning: the certificate in c.pem expires at"), "{warnings:?}");

    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (files(gateway("none.pem", "k.pem"), &[("k.pem", &key)]), "a.toml:3: cannot read none.pem: No such file"),
        (files(gateway("c.pem", "none.pem"), &[("c.pem", &cert)]), "a.toml:4: cannot read none.pem: No such file"),
        (
            files(gateway("c.pem", "k.pem"), &[("c.pem", &cert), ("k.pem", &other_key)]),
            "a.toml:4: the private key in k.pem does not match the certificate in c.pem",
        ),
        (
            files(gateway("c.pem", "k.pem"), &[("c.pem", &expired), ("k.pem", &expired_key)]),
            "a.toml:3: the certificate in c.pem expired at",
        ),
        (files(gateway("k.pem", "k.pem"), &[("k.pem", &key)]), "a.toml:3: k.pem holds no PEM certificate"),
        (files(gateway("c.pem", "c.pem"), &[("c.pem", &cert)]), "a.toml:4: c.pem holds no PEM private key"),
        (
            files("[gateway]\nlisten_tls = \"127.0.0.1:8443\"\n".into(), &[]),
            "a.toml:2: listen_tls needs tls_cert and tls_key",
        ),
        (files("[gateway]\ntls_cert = \"c.pem\"\n".into(), &[]), "a.toml:2: tls_cert and tls_key go together"),
        (
            files(
                "[gateway]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n".into(),
                &[("c.pem", &cert), ("k.pem", &key)],
            ),
            "a.toml:2: tls_cert, tls_key and tls_certs are only read with listen_tls",
        ),
        (
            files(
                "[backends.chat]\nkind = \"mattermost\"\nurl = \"http://127.0.0.1\"\nca_file = \"c.pem\"\n".into(),
                &[],
            ),
            "a.toml:4: backend `chat`: ca_file, tls_server_name and tls_verify need an https:// url",
        ),
        (
            files(
                "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\nca_file = \"none.pem\"\n".into(),
                &[],
            ),
            "a.toml:4: backend `chat`: ca_file: cannot read none.pem: No such file",
        ),
        (
            files(
                "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\ntls_verify = \"no\"\n".into(),
                &[],
            ),
            "a.toml:4: backend `chat`: tls_verify must be true or false",
        ),
    ];
    for (files, want) in cases {
        let got = run(files.clone()).expect_err("rules should be refused");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(want), "{got:?} does not start with {want:?} for {files:?}");
    }

    let unverified = "[backends.chat]\nkind = \"mattermost\"\nurl = \"https://127.0.0.1\"\ntls_verify = false\n";
    let rules = run(files(unverified.into(), &[])).unwrap();
    let warnings: Vec<String> = rules.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("a.toml:4: warning: backend `chat`: tls_verify = false"), "{warnings:?}");
}

#[test]
fn policy_rules_load() {
    let rules = load_files(&[(
        "a.toml",
        &format!(
            "{BACKENDS}\n[[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"console\"\nmax_props_bytes = 10\n\
             [hooks.overrides]\nusername = \"ignore\"\nicon = \"reject\"\nchannels = [\"^a\", \"^@\"]\n\
             [[hooks.channel_map]]\nmatch = \"^#?(?P<n>.*)$\"\nto = \"${{n}}-x $$1\"\n"
        ),
    )])
    .unwrap();
    let p = &rules.hooks[0].policy;
    assert_eq!((p.username, p.icon, p.channel), (Mode::Ignore, Mode::Reject, Mode::Allow));
    assert_eq!(p.channels.as_ref().map(Vec::len), Some(2));
    assert_eq!(p.channel_map[0].to, "${n}-x $$1");
    assert_eq!(p.max_props_bytes, 10);
    let default = load_files(&[(
        "a.toml",
        &format!("{BACKENDS}\n[[hooks]]\nname = \"d\"\nkey = \"k\"\nbackend = \"console\"\n"),
    )])
    .unwrap();
    let p = &default.hooks[0].policy;
    assert_eq!((p.username, p.icon, p.channel, p.max_props_bytes), (Mode::Allow, Mode::Allow, Mode::Allow, 65_536));
    assert!(p.channels.is_none() && p.channel_map.is_empty());
}

/// Host names are resolved when connecting, so checking rules needs no DNS: a name that
/// resolves nowhere loads.
#[test]
fn backend_host_names_are_not_resolved_at_load() {
    let rules = load_files(&[(
        "a.toml",
        "[backends.chat]\nkind = \"mattermost\"\nurl = \"http://chat.invalid:8065/mm\"\n\n\
         [[hooks]]\nname = \"ci\"\nkey = \"k\"\nbackend = \"chat\"\nbackend_key = \"abc\"\n",
    )])
    .unwrap();
    assert_eq!(backend(&rules, "chat").kind, "mattermost");
    assert_eq!(target(&rules.hooks[0]), "abc");
}

#[test]
fn ratelimit_names_the_shared_redis() {
    let unset = load_files(&[("a.toml", BACKENDS)]).unwrap();
    assert_eq!(unset.shared_ratelimit, None);
    let rules =
        load_files(&[("a.toml", &format!("{BACKENDS}\n[ratelimit]\nredis_url = \"redis://127.0.0.1:6390/2\"\n"))])
            .unwrap();
    let want = SharedRateLimit { redis_url: "redis://127.0.0.1:6390/2".into(), timeout: DEFAULT_REDIS_TIMEOUT };
    assert_eq!(rules.shared_ratelimit, Some(want));
}

#[test]
fn shipped_rules_are_valid() {
    let rules = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let demo = rules.hook_by_digest(&keys::digest("hookgate-demo-key")).unwrap();
    assert_eq!(backend(&rules, &demo.backend).kind, "log");
    let ci = rules.hook_by_digest(&keys::digest("T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX")).unwrap();
    assert_eq!(backend(&rules, &ci.backend).kind, "mattermost");
    assert_eq!(target(ci), "abc123generatedkey");
}

/// Each part, and whether it holds one hook and nothing else (read after the backends).
#[test]
fn files_are_cut_before_each_top_level_hooks_header() {
    fn cut(text: &str) -> Vec<(&str, bool)> {
        parts::parts(text).into_iter().map(|c| (&text[c.start..c.end], c.one_hook)).collect()
    }
    let cases: &[(&str, &[(&str, bool)])] = &[
        ("", &[("", false)]),
        // The first part is always read at once.
        ("[[hooks]]\nname = \"a\"\n", &[("[[hooks]]\nname = \"a\"\n", false)]),
        (
            "[backends.x]\nkind = \"log\"\n[[hooks]]\nname = \"a\"\n[hooks.overrides]\nicon = \"ignore\"\n\n  [[ hooks ]]\nname = \"b\"\n[[hooks . channel_map]]\nmatch = \"x\"\n",
            &[
                ("[backends.x]\nkind = \"log\"\n", false),
                ("[[hooks]]\nname = \"a\"\n[hooks.overrides]\nicon = \"ignore\"\n\n  ", true),
                ("[[ hooks ]]\nname = \"b\"\n[[hooks . channel_map]]\nmatch = \"x\"\n", true),
            ],
        ),
        // Not headers: inside strings and comments, sub-tables, other arrays of tables; the
        // last makes its part more than a hook.
        (
            "[[hooks]]\nname = \"\"\"\n[[hooks]]\n\"\"\"\n# [[hooks]]\nkey = '''\n[[hooks]]'''\n[[hooks.channel_map]]\n[[hookses]]\n",
            &[("[[hooks]]\nname = \"\"\"\n[[hooks]]\n\"\"\"\n# [[hooks]]\nkey = '''\n[[hooks]]'''\n[[hooks.channel_map]]\n[[hookses]]\n", false)],
        ),
        // After a hook: another table, a quoted or spaced header, `[hooks]`, an array's line
        // starting with `[`: that part is read at once, and only that part.
        (
            "[gateway]\n[[hooks]]\n[backends.y]\n[[hooks]]\n[\"hooks\".overrides]\n[[hooks]]\n[ hooks.overrides]\n[[hooks]]\n[hooks]\n[[hooks]]\nx = [\n[1],\n]\n[[hooks]]\nname = \"z\"\n",
            &[
                ("[gateway]\n", false),
                ("[[hooks]]\n[backends.y]\n", false),
                ("[[hooks]]\n[\"hooks\".overrides]\n", false),
                ("[[hooks]]\n[ hooks.overrides]\n", false),
                ("[[hooks]]\n[hooks]\n", false),
                ("[[hooks]]\nx = [\n[1],\n]\n", false),
                ("[[hooks]]\nname = \"z\"\n", true),
            ],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(cut(text), *want, "{text:?}");
    }
}

#[test]
fn a_directory_without_rules_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let got = load(dir.path()).unwrap_err();
    assert_eq!(got[0].message, "no *.toml rule files");
    let missing = load(&dir.path().join("missing")).unwrap_err();
    assert!(missing[0].message.starts_with("cannot read rules directory"));
}

/// `tls_certs`: several certificates on the HTTPS listener, chosen by SNI name
/// (docs/slack-hosts.md); each entry checked like the single pair, at its own line, and no name
/// served by two of them.
#[test]
fn tls_certs_load_with_their_names_and_refuse_a_name_twice() {
    let (hooks, hooks_key) = certificate_for(&["hooks.slack.com"], 90);
    let (slack, slack_key) = certificate_for(&["slack.com", "*.slack.com"], 90);
    let (again, again_key) = certificate_for(&["other.test", "SLACK.com"], 90);
    let (_, stray_key) = certificate_for(&["x.test"], 90);
    let pems = [
        ("h.pem", hooks.as_str()),
        ("h.key", hooks_key.as_str()),
        ("s.pem", slack.as_str()),
        ("s.key", slack_key.as_str()),
        ("a.pem", again.as_str()),
        ("a.key", again_key.as_str()),
        ("x.key", stray_key.as_str()),
    ];
    let load = |gateway: &str| {
        let mut all = vec![("a.toml", gateway)];
        all.extend(pems);
        load_files(&all)
    };
    let good = load(
        "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = [\n  { cert = \"h.pem\", key = \"h.key\" },\n  \
         { cert = \"s.pem\", key = \"s.key\" },\n]\n",
    )
    .unwrap();
    let tls = good.gateway.tls.as_ref().unwrap();
    let served: Vec<(&str, &[String])> =
        tls.certificates.iter().map(|c| (c.cert.as_str(), c.identity.names.as_slice())).collect();
    assert_eq!(
        served,
        [
            ("h.pem", &["hooks.slack.com".to_owned()][..]),
            ("s.pem", &["slack.com".to_owned(), "*.slack.com".to_owned()][..])
        ]
    );
    // The single pair is the first, the default for clients without SNI.
    let both = load(
        "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_cert = \"h.pem\"\ntls_key = \"h.key\"\n\
         tls_certs = [{ cert = \"s.pem\", key = \"s.key\" }]\n",
    )
    .unwrap();
    let certs: Vec<&str> = both.gateway.tls.as_ref().unwrap().certificates.iter().map(|c| c.cert.as_str()).collect();
    assert_eq!(certs, ["h.pem", "s.pem"]);

    let cases = [
        (
            "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = [\n  { cert = \"s.pem\", key = \"s.key\" },\n  \
             { cert = \"a.pem\", key = \"a.key\" },\n]\n",
            "a.toml:5: slack.com is covered by both s.pem and a.pem",
        ),
        (
            "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = [\n  { cert = \"h.pem\", key = \"h.key\" },\n  \
             { cert = \"none.pem\", key = \"s.key\" },\n]\n",
            "a.toml:5: cannot read none.pem",
        ),
        (
            "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = [\n  { cert = \"h.pem\", key = \"x.key\" },\n]\n",
            "a.toml:4: the private key in x.key does not match the certificate in h.pem",
        ),
        (
            "[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = [{ cert = \"h.pem\", key = \"h.key\", chain = \"c\" }]\n",
            "a.toml:3: unknown field `chain`, expected `cert` or `key`",
        ),
        ("[gateway]\ntls_certs = [{ cert = \"h.pem\", key = \"h.key\" }]\n", "a.toml:2: tls_cert, tls_key and tls_certs are only read"),
        ("[gateway]\nlisten_tls = \"127.0.0.1:8443\"\ntls_certs = []\n", "a.toml:2: listen_tls needs tls_cert and tls_key, or tls_certs"),
    ];
    for (rules, want) in cases {
        let got = load(rules).expect_err("rules should be refused");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].to_string().starts_with(want), "{got:?} does not start with {want:?} for {rules}");
    }
}
