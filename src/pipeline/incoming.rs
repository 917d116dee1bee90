//! The decoded request: what a Slack- or Mattermost-style client asked for, typed and checked,
//! before any translation or policy.
//!
//! Member names match without regard to case and the last duplicate wins, as in Go's decoder, so
//! the same request sent with `Channel` or twice-written keys reads the same. A member of the wrong
//! type is refused; `null` counts as absent.

use crate::pipeline::json::{write_member, write_string, write_value, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Slack members hookgate does not forward and cannot express for the backend; each one present
/// is reported so it can be counted.
pub const DROPPED_MEMBERS: &[&str] = &[
    "thread_ts",
    "reply_broadcast",
    "link_names",
    "unfurl_links",
    "unfurl_media",
    "parse",
    "response_type",
    "replace_original",
    "delete_original",
    "as_user",
    "metadata",
];

/// Slack's limit on attachments per message.
pub const MAX_ATTACHMENTS: usize = 100;

/// Client-supplied props that only the server may set (docs/webhooks.md, "What the backend receives").
const RESERVED_PROPS: &[&str] =
    &["from_webhook", "override_username", "override_icon_url", "override_icon_emoji", "webhook_display_name"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Incoming {
    pub text: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub icon_url: Option<String>,
    pub icon_emoji: Option<String>,
    pub kind: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The `props` object, reserved props removed; `None` when nothing is left.
    pub props: Option<Json>,
    pub priority: Option<Value>,
    /// `mrkdwn`: whether text is formatted; `None` when the client did not say.
    pub mrkdwn: Option<bool>,
    /// Block Kit blocks, rendered by translation.
    pub blocks: Option<Json>,
    /// Slack-only members that were present and dropped.
    pub dropped: Vec<&'static str>,
}

/// A message attachment as Mattermost stores it, with the member order of its model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Value>,
    /// Which members Slack formats; read by translation, never forwarded.
    #[serde(skip)]
    pub mrkdwn_in: Option<Vec<String>>,
    /// Block Kit blocks inside the attachment, rendered by translation.
    #[serde(skip)]
    pub blocks: Option<Json>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Field {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub short: bool,
}

impl Attachment {
    /// Appends the attachment's JSON as its derived serialisation writes it, written by hand:
    /// serde's machinery per member cost more than the text, and a body of thousands of empty
    /// fields made that most of its cost (docs/performance.md, "Reading requests ourselves").
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        let object = out.len();
        out.push(b'{');
        let strings = |out: &mut Vec<u8>, members: &[(&'static str, &String)]| {
            for (name, value) in members.iter().filter(|(_, value)| !value.is_empty()) {
                write_member(out, object, name);
                write_string(out, value);
            }
        };
        if let Some(id) = &self.id {
            write_member(out, object, "id");
            write_value(out, id);
        }
        strings(
            out,
            &[
                ("fallback", &self.fallback),
                ("color", &self.color),
                ("pretext", &self.pretext),
                ("author_name", &self.author_name),
                ("author_link", &self.author_link),
                ("author_icon", &self.author_icon),
                ("title", &self.title),
                ("title_link", &self.title_link),
                ("text", &self.text),
            ],
        );
        if !self.fields.is_empty() {
            write_member(out, object, "fields");
            out.push(b'[');
            for (i, field) in self.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                field.write_json(out);
            }
            out.push(b']');
        }
        strings(
            out,
            &[
                ("image_url", &self.image_url),
                ("thumb_url", &self.thumb_url),
                ("footer", &self.footer),
                ("footer_icon", &self.footer_icon),
            ],
        );
        for (name, value) in [("ts", &self.ts), ("actions", &self.actions)] {
            if let Some(value) = value {
                write_member(out, object, name);
                write_value(out, value);
            }
        }
        out.push(b'}');
    }
}

impl Field {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if !self.title.is_empty() {
            out.extend_from_slice(br#""title":"#);
            write_string(out, &self.title);
            out.push(b',');
        }
        if let Some(value) = &self.value {
            out.extend_from_slice(br#""value":"#);
            write_string(out, value);
            out.push(b',');
        }
        out.extend_from_slice(if self.short { br#""short":true}"# } else { br#""short":false}"# });
    }
}

/// Why a JSON document is not a valid webhook request.
pub type Invalid = String;

impl Incoming {
    /// Reads a webhook request from a parsed JSON document.
    pub fn from_json(doc: Json) -> Result<Incoming, Invalid> {
        let Json::Object(members) = doc else {
            return Err("the payload must be a JSON object".into());
        };
        let mut req = Incoming::default();
        for (key, value) in members.into_vec() {
            let key = &*key;
            let is = |name: &str| key.eq_ignore_ascii_case(name);
            if is("text") {
                req.text = opt_string(value, "text")?;
            } else if is("channel") {
                req.channel = opt_string(value, "channel")?;
            } else if is("username") {
                req.username = opt_string(value, "username")?;
            } else if is("icon_url") {
                req.icon_url = opt_string(value, "icon_url")?;
            } else if is("icon_emoji") {
                req.icon_emoji = opt_string(value, "icon_emoji")?;
            } else if is("type") {
                req.kind = opt_string(value, "type")?;
            } else if is("attachments") {
                req.attachments = attachments(value)?;
            } else if is("props") {
                req.props = props(value)?;
            } else if is("priority") {
                req.priority = priority(&value)?;
            } else if is("blocks") {
                // Slack-only, so not type-checked: anything but an array is simply no blocks.
                req.blocks = matches!(value, Json::Array(_)).then_some(value);
            } else if is("mrkdwn") {
                // Slack-only members are never type-checked: an odd value is simply not `true`.
                req.mrkdwn = (value != Json::Null).then(|| lenient_bool(&value));
            } else if let Some(name) = DROPPED_MEMBERS.iter().find(|name| is(name)) {
                if value != Json::Null && !req.dropped.contains(name) {
                    req.dropped.push(name);
                }
            }
        }
        Ok(req)
    }
}

fn opt_string(value: Json, name: &str) -> Result<Option<String>, Invalid> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.into())),
        _ => Err(format!("`{name}` must be a string")),
    }
}

/// Slack's booleans: `true`/`false`, `1`/`0` and their strings in any case; anything else is false.
pub fn lenient_bool(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::Number(_) | Json::LongNumber(_) => value.as_number() == Some("1"),
        Json::String(s) => s.eq_ignore_ascii_case("true") || &**s == "1",
        _ => false,
    }
}

fn attachments(value: Json) -> Result<Vec<Attachment>, Invalid> {
    let items = match value {
        Json::Null => return Ok(Vec::new()),
        Json::Array(items) => items,
        _ => return Err("`attachments` must be an array".into()),
    };
    // Every attachment is checked, but no more than one past Slack's limit is kept: that is
    // enough for the request to be refused for having too many. The rest are read into one
    // scratch attachment for their errors only, so thousands of empty attachments cost what
    // their bytes do, not a full attachment each.
    let mut kept: Vec<Attachment> = Vec::new();
    let mut scratch = Attachment::default();
    for (i, item) in items.into_vec().into_iter().filter(|item| *item != Json::Null).enumerate() {
        let target = if kept.len() <= MAX_ATTACHMENTS {
            kept.push(Attachment::default());
            kept.last_mut().expect("just pushed")
        } else {
            &mut scratch
        };
        read_attachment(item, target).map_err(|e| format!("attachment {i}: {e}"))?;
    }
    Ok(kept)
}

/// Reads an attachment's members into `a`.
fn read_attachment(value: Json, a: &mut Attachment) -> Result<(), Invalid> {
    let Json::Object(members) = value else {
        return Err("must be an object".into());
    };
    for (key, value) in members.into_vec() {
        let key = &*key;
        let text_member = match () {
            _ if key.eq_ignore_ascii_case("fallback") => Some(&mut a.fallback),
            _ if key.eq_ignore_ascii_case("color") => Some(&mut a.color),
            _ if key.eq_ignore_ascii_case("pretext") => Some(&mut a.pretext),
            _ if key.eq_ignore_ascii_case("author_name") => Some(&mut a.author_name),
            _ if key.eq_ignore_ascii_case("author_link") => Some(&mut a.author_link),
            _ if key.eq_ignore_ascii_case("author_icon") => Some(&mut a.author_icon),
            _ if key.eq_ignore_ascii_case("title") => Some(&mut a.title),
            _ if key.eq_ignore_ascii_case("title_link") => Some(&mut a.title_link),
            _ if key.eq_ignore_ascii_case("text") => Some(&mut a.text),
            _ if key.eq_ignore_ascii_case("image_url") => Some(&mut a.image_url),
            _ if key.eq_ignore_ascii_case("thumb_url") => Some(&mut a.thumb_url),
            _ if key.eq_ignore_ascii_case("footer") => Some(&mut a.footer),
            _ if key.eq_ignore_ascii_case("footer_icon") => Some(&mut a.footer_icon),
            _ => None,
        };
        if let Some(target) = text_member {
            *target = opt_string(value, &key.to_ascii_lowercase())?.unwrap_or_default();
        } else if key.eq_ignore_ascii_case("id") {
            a.id = match &value {
                Json::Null => None,
                _ if value.as_number().is_some_and(|n| n.parse::<i64>().is_ok()) => Some(value.to_value()),
                _ => return Err("`id` must be an integer".into()),
            };
        } else if key.eq_ignore_ascii_case("ts") {
            a.ts = (value != Json::Null).then(|| value.to_value());
        } else if key.eq_ignore_ascii_case("fields") {
            a.fields = fields(value)?;
        } else if key.eq_ignore_ascii_case("actions") {
            a.actions = match &value {
                Json::Null => None,
                Json::Array(items) if items.is_empty() => None,
                Json::Array(_) => Some(value.to_value()),
                _ => return Err("`actions` must be an array".into()),
            };
        } else if key.eq_ignore_ascii_case("blocks") {
            a.blocks = matches!(value, Json::Array(_)).then_some(value);
        } else if key.eq_ignore_ascii_case("mrkdwn_in") {
            a.mrkdwn_in = match value {
                Json::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(|i| if let Json::String(s) = i { Some(s.to_ascii_lowercase()) } else { None })
                        .collect(),
                ),
                _ => None,
            };
        }
    }
    Ok(())
}

fn fields(value: Json) -> Result<Vec<Field>, Invalid> {
    let items = match value {
        Json::Null => return Ok(Vec::new()),
        Json::Array(items) => items,
        _ => return Err("`fields` must be an array".into()),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_vec().into_iter().filter(|item| *item != Json::Null).enumerate() {
        let Json::Object(members) = item else {
            return Err(format!("field {i} must be an object"));
        };
        let mut f = Field::default();
        for (key, value) in members.into_vec() {
            if key.eq_ignore_ascii_case("title") {
                f.title = opt_string(value, "title").map_err(|e| format!("field {i}: {e}"))?.unwrap_or_default();
            } else if key.eq_ignore_ascii_case("value") {
                f.value = field_value(value);
            } else if key.eq_ignore_ascii_case("short") {
                f.short = lenient_bool(&value);
            }
        }
        out.push(f);
    }
    Ok(out)
}

/// Field values of any JSON type become text: strings as they are, numbers exactly as sent,
/// booleans as words, objects and arrays as compact JSON; `null` removes the value.
fn field_value(value: Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.into()),
        Json::Number(_) | Json::LongNumber(_) => value.as_number().map(str::to_owned),
        Json::Bool(b) => Some(b.to_string()),
        Json::Array(_) | Json::Object(_) => Some(value.to_compact()),
    }
}

/// The props object without the reserved props, when any are left. It stays as parsed: the
/// policy writes it once, as the JSON it is forwarded as.
fn props(value: Json) -> Result<Option<Json>, Invalid> {
    match value {
        Json::Null => Ok(None),
        Json::Object(members) => {
            let mut members = members.into_vec();
            members.retain(|(k, _)| !RESERVED_PROPS.iter().any(|r| k.eq_ignore_ascii_case(r)));
            Ok((!members.is_empty()).then_some(Json::Object(members.into())))
        }
        _ => Err("`props` must be an object".into()),
    }
}

/// Mattermost's post priority: an object whose `priority` member is a string.
fn priority(value: &Json) -> Result<Option<Value>, Invalid> {
    match value {
        Json::Null => Ok(None),
        Json::Object(_) => {
            let mut out = Map::new();
            match value.member("priority") {
                Some(Json::String(p)) => out.insert("priority".into(), Value::String(p.to_string())),
                _ => return Err("`priority.priority` must be a string".into()),
            };
            for flag in ["requested_ack", "persistent_notifications"] {
                if let Some(v) = value.member(flag).filter(|v| **v != Json::Null) {
                    out.insert(flag.into(), Value::Bool(lenient_bool(v)));
                }
            }
            Ok(Some(Value::Object(out)))
        }
        _ => Err("`priority` must be an object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::json::parse;
    use serde_json::json;

    fn read(body: &str) -> Result<Incoming, Invalid> {
        Incoming::from_json(parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn members_match_without_case_and_the_last_wins() {
        let cases = [
            (r#"{"text":"a"}"#, Some("a")),
            (r#"{"TEXT":"a"}"#, Some("a")),
            (r#"{"Text":"a","text":"b"}"#, Some("b")),
            (r#"{"text":"b","Text":"a"}"#, Some("a")),
            (r#"{"text":"a","Text":"b","text":"c"}"#, Some("c")),
            (r#"{"text":null}"#, None),
            (r#"{"text":"a","text":null}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(read(body).unwrap().text.as_deref(), want, "{body}");
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let cases = [
            (r#"{"text":5}"#, "`text` must be a string"),
            (r#"{"channel":["a"]}"#, "`channel` must be a string"),
            (r#"{"type":true}"#, "`type` must be a string"),
            (r#"{"attachments":{}}"#, "`attachments` must be an array"),
            (r#"{"attachments":[1]}"#, "attachment 0: must be an object"),
            (r#"{"attachments":[{"title":3}]}"#, "attachment 0: `title` must be a string"),
            (r#"{"attachments":[{"id":"x"}]}"#, "attachment 0: `id` must be an integer"),
            (r#"{"attachments":[{"fields":{}}]}"#, "attachment 0: `fields` must be an array"),
            (r#"{"attachments":[null,{"fields":[{"title":3}]}]}"#, "attachment 0: field 0: `title` must be a string"),
            (r#"{"props":[]}"#, "`props` must be an object"),
            (r#"{"priority":"high"}"#, "`priority` must be an object"),
            (r#"{"priority":{"requested_ack":true}}"#, "`priority.priority` must be a string"),
            ("[]", "the payload must be a JSON object"),
            ("null", "the payload must be a JSON object"),
            ("\"text\"", "the payload must be a JSON object"),
        ];
        for (body, want) in cases {
            assert_eq!(read(body).unwrap_err(), want, "{body}");
        }
    }

    #[test]
    fn slack_only_members_are_dropped_without_type_checks() {
        let req =
            read(r#"{"text":"a","thread_ts":5,"unfurl_links":"yes","Blocks":{},"mrkdwn":"0","parse":null}"#).unwrap();
        assert_eq!(req.dropped, vec!["thread_ts", "unfurl_links"]);
        assert_eq!(req.blocks, None, "blocks that are not an array are no blocks");
        assert_eq!(req.mrkdwn, Some(false));
    }

    #[test]
    fn attachments_past_the_limit_are_checked_but_not_kept() {
        let many = |extra: &str| format!(r#"{{"attachments":[{}{extra}]}}"#, vec![r#"{"text":"a"}"#; 5_000].join(","));
        assert_eq!(read(&many("")).unwrap().attachments.len(), MAX_ATTACHMENTS + 1);
        assert_eq!(read(&many(r#","x""#)).unwrap_err(), "attachment 5000: must be an object");
        assert_eq!(read(&many(r#",{"id":"x"}"#)).unwrap_err(), "attachment 5000: `id` must be an integer");
    }

    #[test]
    fn attachments_are_normalised() {
        let req = read(
            r#"{"attachments":[null,{"Title":"t","fields":[null,
                {"title":"n","value":1000000,"short":"TRUE"},
                {"title":"f","value":3.50,"short":1},
                {"title":"b","value":false,"short":"no"},
                {"title":"o","value":{"a":[1,"x"]}},
                {"title":"z","value":null}],
              "ts":123,"id":7,"mrkdwn_in":["Text"],"actions":[],"unknown":1}]}"#,
        )
        .unwrap();
        assert_eq!(req.attachments.len(), 1);
        let a = &req.attachments[0];
        assert_eq!(a.mrkdwn_in, Some(vec!["text".to_string()]));
        assert_eq!(
            serde_json::to_value(a).unwrap(),
            json!({
                "id": 7,
                "title": "t",
                "fields": [
                    {"title": "n", "value": "1000000", "short": true},
                    {"title": "f", "value": "3.50", "short": true},
                    {"title": "b", "value": "false", "short": false},
                    {"title": "o", "value": "{\"a\":[1,\"x\"]}", "short": false},
                    {"title": "z", "short": false}
                ],
                "ts": 123
            })
        );
        assert!(read(r#"{"attachments":[]}"#).unwrap().attachments.is_empty());
        assert!(read(r#"{"attachments":[null]}"#).unwrap().attachments.is_empty());
        assert_eq!(read(r#"{"attachments":[{}]}"#).unwrap().attachments.len(), 1);
    }

    #[test]
    fn reserved_props_are_removed() {
        let req = read(
            r#"{"props":{"from_webhook":"false","Override_Username":"x","override_icon_url":"u",
                "override_icon_emoji":"e","webhook_display_name":"w","card":"kept","n":1}}"#,
        )
        .unwrap();
        assert_eq!(req.props.map(|p| p.to_value()), Some(json!({"card": "kept", "n": 1})));
    }

    #[test]
    fn priority_is_kept_in_mattermost_shape() {
        let req = read(r#"{"priority":{"Priority":"urgent","requested_ack":"true","persistent_notifications":false}}"#)
            .unwrap();
        assert_eq!(
            req.priority,
            Some(json!({"priority": "urgent", "requested_ack": true, "persistent_notifications": false}))
        );
    }

    #[test]
    fn lenient_booleans() {
        for (v, want) in [
            (Json::Bool(true), true),
            (Json::number("1"), true),
            (Json::number("0"), false),
            (Json::String("True".into()), true),
            (Json::String("1".into()), true),
            (Json::String("yes".into()), false),
            (Json::Null, false),
        ] {
            assert_eq!(lenient_bool(&v), want, "{v:?}");
        }
    }
}
