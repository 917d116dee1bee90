//! Mattermost's own test cases (`tests/data/mattermost-reference.json`, a copy of the shared
//! vectors) run through hookgate's pure pipeline. Every vector is accounted for: a decode case
//! the contract agrees with must give Mattermost's result; a case where the contract deliberately
//! differs must give the contract's result; the rest belong to later stages and are named so.

use hookgate::pipeline::message::Message;
use hookgate::pipeline::process;
use hookgate::refusal::Refusal;
use hookgate::rules::Hook;
use hookgate::rules::SlackMaps;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Decode cases where hookgate behaves as Mattermost does.
const AGREES: &[&str] = &[
    "wt_form_basic",
    "wt_form_empty_text",
    "wt_json_basic",
    "wt_json_channel_name",
    "wt_json_channel_hash",
    "wt_form_payload_compact",
    "wt_form_raw_newline_tab",
    "wt_form_ct_charset_no_space",
    "wt_form_ct_charset_space",
    "wt_json_long_text_8200",
    "wt_multipart_username_text",
    "wt_last_used_at_updated",
    "wt_attachments_full_slack_example",
    "at_attachments_and_core_props",
    "at_priority_empty_string",
    "at_priority_urgent_persistent",
    "code_priority_without_priority_key",
    "mt_control_char_fallback_2",
    "mt_control_char_fallback_3",
    "mt_control_char_fallback_5",
    "mt_control_char_fallback_6",
    "mt_root_id_decoded",
    "sc_short_true_variants",
    "sat_empty_attachments_no_text",
    "code_text_plain_is_json",
    "code_json_invalid_media_parameter",
    "code_media_type_without_slash_is_json",
    "code_trailing_garbage_ignored",
    "code_duplicate_keys_last_wins",
    "code_type_mismatch_rejected",
    "code_fields_object_instead_of_array_rejected",
    "code_empty_body",
    "code_whitespace_text_accepted",
    "code_attachments_force_type",
    "code_reserved_props_filtered",
    "code_props_attachments_dropped_without_top_level",
    "code_multipart_channelname_field",
    "code_form_plus_becomes_space",
    "code_form_properly_urlencoded",
];

/// Translation cases (`markup = "markdown"`: Mattermost's own conversions): the message and every
/// attachment member the vector lists must match.
const TRANSLATION: &[&str] = &[
    "at_text_backticks_pipes_unchanged",
    "at_text_angle_pipe_newlines_unchanged",
    "at_links_if_statement_unchanged",
    "at_links_angle_bracket_link",
    "st_announcement_here",
    "st_announcement_all",
    "st_attachment_announcements_and_mentions",
    "st_attachment_nil_entries",
    "code_link_with_extra_pipe_unchanged",
    "code_unknown_user_id_unchanged",
    "code_attachment_link_conversion_scope",
];

/// Decode cases where the contract chose otherwise, with hookgate's result and the reason.
const DIFFERS: &[(&str, Result<&str, &str>, &str)] = &[
    ("wt_form_ct_raw_json_body", Ok("a"), "§3: a form-labelled raw JSON object is JSON (curl -d)"),
    (
        "wt_unknown_media_type_falls_back_to_json",
        Ok("this is a \"test\"\n\tthat"),
        "§9: payload= is a form body whatever the header",
    ),
    (
        "code_no_content_type_with_payload_prefix",
        Ok("Hello, this is some text\nThis is more text. :tada:"),
        "§3: no content type and payload= is a form body",
    ),
    ("code_raw_cr_not_repaired", Ok("line1\r\nline2"), "§9: every raw control character is repaired"),
    ("code_short_null_rejects_request", Ok("x"), "§9: any other short value is false"),
    ("code_short_yes_rejects_request", Ok("x"), "§9: any other short value is false"),
    ("code_invalid_type_is_500", Err("invalid_payload"), "§2: a type other than custom_* is 400 invalid_payload"),
    ("code_multipart_channel_field_rejected", Ok("hi"), "§3: multipart plain fields include channel"),
    ("code_form_bad_percent_escape", Ok("100%"), "accept what clients send: a stray % stays literal"),
];

/// Vectors about later stages or server state, not decoding.
const ELSEWHERE: &[(&str, &str)] = &[
    ("wt_form_unknown_hook", "hook lookup: 404 no_service"),
    ("ae_unknown_hook", "hook lookup: 404 no_service"),
    ("code_unknown_hook_with_empty_text_reports_text", "order of checks: the key is checked first"),
    ("wt_locked_form_default_channel", "channel policy"),
    ("wt_locked_json_same_channel", "channel policy"),
    ("ae_locked_other_channel", "channel policy"),
    ("ae_locked_unknown_channel_checked_before_lock", "backend channel resolution"),
    ("wt_disabled", "backend configuration"),
    ("ae_disabled_checked_before_hook_lookup", "backend configuration"),
    ("code_username_from_hook", "override policy"),
    ("code_username_request_wins", "override policy"),
    ("code_icon_url_override", "override policy"),
    ("code_icon_emoji_override", "override policy"),
    ("code_private_channel_not_member", "backend channel resolution"),
    ("code_public_channel_no_membership_needed", "backend channel resolution"),
    ("code_channel_name_case_sensitive", "backend channel resolution"),
    ("code_dm_by_channel_name", "backend channel resolution"),
    ("unit_split_long_post", "message splitting"),
    ("unit_split_unsplittable_props", "message splitting"),
    ("unit_split_no_split", "message splitting"),
    ("unit_split_into_3", "message splitting"),
    ("unit_split_into_3_mm24644", "message splitting"),
    ("code_split_at_max_post_size", "message splitting"),
    ("code_no_split_at_exactly_max", "message splitting"),
];

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mattermost-reference.json"))
        .expect("vectors file");
    serde_json::from_str(&text).expect("vectors are JSON")
}

/// The vectors' fixture user `user1`, whose id they write as `{user1_id}`.
const USER1_ID: &str = "user1id";

fn hook() -> Hook {
    let slack = SlackMaps { users: [(USER1_ID.to_owned(), "user1".to_owned())].into(), ..SlackMaps::default() };
    Hook { name: "hook1".into(), slack: Arc::new(slack), ..Hook::default() }
}

/// The vector's request through the pipeline: the forwarded payload, or the rejection.
fn forward(vector: &Value) -> Result<Message, Refusal> {
    let request = &vector["request"];
    let content_type = request["content_type"].as_str().unwrap_or("");
    let body = request["body"].as_str().expect("request body").replace("{user1_id}", USER1_ID);
    process(&hook(), content_type.as_bytes(), body.as_bytes()).result
}

/// The forwarded text, or the rejection.
fn run(vector: &Value) -> Result<String, Refusal> {
    forward(vector).map(|c| c.text)
}

#[test]
fn every_vector_is_accounted_for_once() {
    let mut named = BTreeSet::new();
    let all = AGREES
        .iter()
        .copied()
        .chain(TRANSLATION.iter().copied())
        .chain(DIFFERS.iter().map(|d| d.0))
        .chain(ELSEWHERE.iter().map(|e| e.0));
    for name in all {
        assert!(named.insert(name), "{name} is listed twice");
    }
    let vectors = vectors();
    let present: BTreeSet<&str> = vectors.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(present, named);
}

#[test]
fn decode_cases_match_mattermost() {
    let vectors = vectors();
    for name in AGREES {
        let vector = vectors.iter().find(|v| v["name"] == *name).unwrap();
        let expect = &vector["expect"];
        let got = run(vector);
        match expect["status"].as_u64() {
            Some(200) => {
                let message = expect["posts"][0]["message"].as_str().expect("one post");
                assert_eq!(got.as_deref(), Ok(message), "{name}");
            }
            Some(400) => {
                let want = if expect["error_id"] == "web.incoming_webhook.text.app_error" {
                    "no_text"
                } else {
                    "invalid_payload"
                };
                assert_eq!(got.map_err(|r| r.code()), Err(want), "{name}");
            }
            other => panic!("{name}: unexpected status {other:?} in an agreeing vector"),
        }
    }
}

#[test]
fn deliberate_differences_follow_the_contract() {
    let vectors = vectors();
    for (name, want, why) in DIFFERS {
        let vector = vectors.iter().find(|v| v["name"] == *name).unwrap();
        let got = run(vector);
        match want {
            Ok(prefix) => {
                let text = got.unwrap_or_else(|e| panic!("{name} ({why}): refused with {e:?}"));
                assert!(text.starts_with(prefix), "{name} ({why}): {text:?}");
            }
            Err(code) => assert_eq!(got.map_err(|r| r.code()), Err(*code), "{name} ({why})"),
        }
    }
}

#[test]
fn translation_cases_match_mattermost() {
    let vectors = vectors();
    for name in TRANSLATION {
        let vector = vectors.iter().find(|v| v["name"] == *name).unwrap();
        let post = &vector["expect"]["posts"][0];
        let got = forward(vector).unwrap_or_else(|e| panic!("{name}: refused with {e:?}"));
        assert_eq!(got.text, post["message"].as_str().unwrap(), "{name}");
        let Some(want) = post["props"]["attachments"].as_array() else { continue };
        let got = serde_json::to_value(&got.attachments).unwrap();
        assert_eq!(got.as_array().unwrap().len(), want.len(), "{name}");
        for (got, want) in got.as_array().unwrap().iter().zip(want) {
            // The vectors list the members they assert; every one of them must match.
            for (member, value) in want.as_object().unwrap() {
                if member == "fields" {
                    for (gf, wf) in got["fields"].as_array().unwrap().iter().zip(value.as_array().unwrap()) {
                        for (k, v) in wf.as_object().unwrap() {
                            assert_eq!(&gf[k], v, "{name}: field {k}");
                        }
                    }
                } else {
                    assert_eq!(&got[member], value, "{name}: {member}");
                }
            }
        }
    }
}
