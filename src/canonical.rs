//! The canonical payload: Mattermost's incoming-webhook JSON, which every backend receives.
//! Only non-empty members are written (contract section 4).

use crate::incoming::Attachment;
use crate::json::{AsValue, Json};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Canonical {
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
    pub props: Option<Props>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value>,
}

/// `props` as the compact JSON they are forwarded as: written once, when the policy measures
/// them, and copied as text into every post of a split message.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Props(Box<RawValue>);

impl Props {
    /// The props object written as compact JSON, as serde_json's ordered map would write it.
    pub fn new(props: &Json) -> Props {
        // Serialising parsed JSON cannot fail: keys are strings and numbers are finite.
        Props(serde_json::value::to_raw_value(&AsValue(props)).expect("props serialise"))
    }

    /// Bytes of compact JSON.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }
}

impl PartialEq for Props {
    fn eq(&self, other: &Props) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Canonical {
    /// The JSON body sent to a backend.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings, maps and values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_empty_members_are_written_in_contract_order() {
        assert_eq!(Canonical::default().to_json(), b"{}");
        let c = Canonical {
            text: "t".into(),
            channel: "c".into(),
            username: "u".into(),
            icon_url: "i".into(),
            icon_emoji: ":e:".into(),
            kind: "custom_x".into(),
            attachments: vec![Attachment { text: "a".into(), ..Attachment::default() }],
            props: Some(Props::new(&crate::json::parse(br#"{"k":1}"#).unwrap())),
            priority: Some(serde_json::json!({"priority": "urgent"})),
        };
        assert_eq!(
            String::from_utf8(c.to_json()).unwrap(),
            r#"{"text":"t","channel":"c","username":"u","icon_url":"i","icon_emoji":":e:","type":"custom_x","attachments":[{"text":"a"}],"props":{"k":1},"priority":{"priority":"urgent"}}"#
        );
    }
}
