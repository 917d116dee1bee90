//! The message the pipeline makes of a request: the canonical payload, in the schema
//! of Mattermost's incoming-webhook JSON. Each backend kind renders its posts from it. Only
//! non-empty members are written (docs/webhooks.md, "What the backend receives").

use crate::pipeline::incoming::Attachment;
use crate::pipeline::json::{write_member, write_string, write_value, AsValue, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_emoji: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) props: Option<Props>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value>,
}

/// `props` as the compact JSON they are forwarded as: written once, when the policy measures
/// them, and copied as text into every post of a split message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Props(Box<RawValue>);

impl Props {
    /// The props object written as compact JSON, as serde_json's ordered map would write it.
    pub(crate) fn new(props: &Json) -> Props {
        // Serialising parsed JSON cannot fail: keys are strings and numbers are finite.
        Props(serde_json::value::to_raw_value(&AsValue(props)).expect("props serialise"))
    }

    /// Bytes of compact JSON.
    pub(crate) fn len(&self) -> usize {
        self.0.get().len()
    }
}

impl PartialEq for Props {
    fn eq(&self, other: &Props) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Message {
    /// The message as Mattermost's incoming-webhook JSON.
    pub fn to_json(&self) -> String {
        // Sized for the common message up front: grown from nothing, the buffer was reallocated
        // three or four times a message.
        let strings = [&self.text, &self.channel, &self.username, &self.icon_url, &self.icon_emoji, &self.kind];
        let guess = strings.iter().map(|s| s.len()).sum::<usize>() + self.props.as_ref().map_or(0, Props::len) + 128;
        let mut out = Vec::with_capacity(guess);
        // Written by hand, in the derived order: serde's string escaping cost more than the rest
        // of the message's JSON (docs/performance.md, "Reading requests ourselves").
        out.push(b'{');
        let names = ["text", "channel", "username", "icon_url", "icon_emoji", "type"];
        for (name, value) in names.into_iter().zip(strings) {
            if !value.is_empty() {
                write_member(&mut out, 0, name);
                write_string(&mut out, value);
            }
        }
        if !self.attachments.is_empty() {
            write_member(&mut out, 0, "attachments");
            out.push(b'[');
            for (i, attachment) in self.attachments.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                attachment.write_json(&mut out);
            }
            out.push(b']');
        }
        if let Some(props) = &self.props {
            write_member(&mut out, 0, "props");
            out.extend_from_slice(props.0.get().as_bytes());
        }
        if let Some(priority) = &self.priority {
            write_member(&mut out, 0, "priority");
            write_value(&mut out, priority);
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_empty_members_are_written_in_contract_order() {
        assert_eq!(Message::default().to_json(), "{}");
        let c = Message {
            text: "t".into(),
            channel: "c".into(),
            username: "u".into(),
            icon_url: "i".into(),
            icon_emoji: ":e:".into(),
            kind: "custom_x".into(),
            attachments: vec![Attachment { text: "a".into(), ..Attachment::default() }],
            props: Some(Props::new(&crate::pipeline::json::parse(br#"{"k":1}"#).unwrap())),
            priority: Some(serde_json::json!({"priority": "urgent"})),
        };
        assert_eq!(
            c.to_json(),
            r#"{"text":"t","channel":"c","username":"u","icon_url":"i","icon_emoji":":e:","type":"custom_x","attachments":[{"text":"a"}],"props":{"k":1},"priority":{"priority":"urgent"}}"#
        );
    }

    /// Attachments with any of their members set, fields included.
    fn attachment() -> impl proptest::strategy::Strategy<Value = Attachment> {
        use proptest::prelude::*;
        let text = || proptest::option::of(r#"[\x00-\x21"\\a\x7f é]{0,6}"#).prop_map(Option::unwrap_or_default);
        let value =
            || proptest::option::of(prop_oneof![Just(serde_json::json!(1)), Just(serde_json::json!({"a": ["\n"]}))]);
        let field = (text(), proptest::option::of(text()), any::<bool>())
            .prop_map(|(title, value, short)| crate::pipeline::incoming::Field { title, value, short });
        (proptest::array::uniform13(text()), proptest::collection::vec(field, 0..3), value(), value(), value()).prop_map(
            |(s, fields, id, ts, actions)| {
                let [fallback, color, pretext, author_name, author_link, author_icon, title, title_link, text, image_url, thumb_url, footer, footer_icon] = s;
                Attachment {
                    id, fallback, color, pretext, author_name, author_link, author_icon, title, title_link, text, fields,
                    image_url, thumb_url, footer, footer_icon, ts, actions, ..Attachment::default()
                }
            },
        )
    }

    proptest::proptest! {
        /// The hand-written JSON is what the derived serialisation writes, whichever members are set.
        #[test]
        fn the_json_is_what_serde_writes(
            strings in proptest::array::uniform6(proptest::option::of(r#"[\x00-\x21"\\a\x7f é]{0,12}"#)),
            attachments in proptest::collection::vec(attachment(), 0..3),
            props in proptest::bool::ANY,
            priority in proptest::bool::ANY,
        ) {
            let [text, channel, username, icon_url, icon_emoji, kind] = strings.map(Option::unwrap_or_default);
            let message = Message {
                text, channel, username, icon_url, icon_emoji, kind, attachments,
                props: props.then(|| Props::new(&crate::pipeline::json::parse(br#"{"a":[1,"\n"]}"#).unwrap())),
                priority: priority.then(|| serde_json::json!({"priority": "urgent"})),
            };
            proptest::prop_assert_eq!(message.to_json(), serde_json::to_string(&message).unwrap());
        }
    }
}
