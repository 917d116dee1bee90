//! Decoding: a request's content type and body into an `Incoming`, accepting every shape real
//! integrations send (docs/webhooks.md, "What it accepts").
//!
//! - `multipart/form-data`: a `payload` field holding JSON, or plain fields;
//! - `application/x-www-form-urlencoded`: JSON in `payload`, or a raw JSON object (`curl -d '{..}'`);
//! - anything else, including no or a malformed content type: JSON;
//! - whatever the content type, a body starting with `payload=` is a form body.

pub(crate) mod form;
pub(crate) mod multipart;

use crate::pipeline::incoming::Incoming;
use crate::pipeline::json;
use crate::refusal::Refusal;

/// Decodes a request body. `content_type` is the raw header value, empty when absent.
pub fn decode(content_type: &[u8], body: &[u8]) -> Result<Incoming, Refusal> {
    // A body starting with `payload=` is a form body whatever the header says.
    if body.starts_with(b"payload=") {
        return form_payload(body);
    }
    let content_type = String::from_utf8_lossy(content_type);
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "multipart/form-data" => decode_multipart(&content_type, body),
        "application/x-www-form-urlencoded" if !starts_with_object(body) => form_payload(body),
        _ => json_body(body),
    }
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::InvalidPayload(why.into())
}

fn starts_with_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn json_body(body: &[u8]) -> Result<Incoming, Refusal> {
    let doc = json::parse(body).map_err(|e| invalid(format!("not JSON: {e}")))?;
    Incoming::from_json(doc).map_err(invalid)
}

/// The first `payload` field of a standard form body (`+` is a space, `&` separates fields).
fn form_payload(body: &[u8]) -> Result<Incoming, Refusal> {
    let payload = form::field(body, "payload").ok_or_else(|| invalid("form body has no payload field"))?;
    json_body(payload.as_bytes())
}

fn decode_multipart(content_type: &str, body: &[u8]) -> Result<Incoming, Refusal> {
    let boundary =
        multipart::boundary(content_type).ok_or_else(|| invalid("multipart content type has no boundary"))?;
    let parts = multipart::parts(body, boundary).map_err(invalid)?;
    if let Some(payload) = parts.iter().find(|p| p.name.eq_ignore_ascii_case("payload")) {
        return json_body(payload.content);
    }
    let mut req = Incoming::default();
    for part in &parts {
        let value = Some(String::from_utf8_lossy(part.content).into_owned());
        // Both the JSON names and the Go field names Mattermost's form decoder matches.
        match part.name.to_ascii_lowercase().as_str() {
            "text" => req.text = value,
            "channel" | "channelname" => req.channel = value,
            "username" => req.username = value,
            "icon_url" | "iconurl" => req.icon_url = value,
            "icon_emoji" | "iconemoji" => req.icon_emoji = value,
            "type" => req.kind = value,
            _ => {}
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "application/x-www-form-urlencoded";

    /// Every content-type variant and leniency of docs/webhooks.md, "What it accepts": (content
    /// type, body, expected text or error detail prefix).
    #[test]
    fn content_type_table() {
        let mp = "multipart/form-data; boundary=B";
        // Content type, body, decoded text or error.
        type Case<'a> = (&'a str, Vec<u8>, Result<&'a str, &'a str>);
        let cases: Vec<Case> = vec![
            ("application/json", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("Application/JSON; charset=utf-8", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("application/json; charset", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            (FORM, br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            ("AppLicaTion/x-www-Form-urlencoded;charset=utf-8", br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            (FORM, b"payload=%7B%22text%22%3A%22a+b%26c%22%7D".to_vec(), Ok("a b&c")),
            (FORM, b"x=1&payload=%7B%22text%22%3A%221%22%7D&payload=%7B%7D".to_vec(), Ok("1")),
            (FORM, br#"{"text":"raw json"}"#.to_vec(), Ok("raw json")),
            (FORM, b"  \n{\"text\":\"spaced\"}".to_vec(), Ok("spaced")),
            (FORM, b"text=hello".to_vec(), Err("form body has no payload field")),
            (FORM, b"payload=not-json".to_vec(), Err("not JSON")),
            ("", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("", br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            ("text/plain", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("application/octet-stream", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("json", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("mimetype/wrong", br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            ("application/json", br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            (mp, br#"payload={"text":"a"}"#.to_vec(), Ok("a")),
            ("multipart/form-data", b"payload=%7B%22text%22%3A%22b%22%7D".to_vec(), Ok("b")),
            ("/json", br#"{"text":"a"}"#.to_vec(), Ok("a")),
            ("application/json", b"{\"text\":\"line\nbreak\ttab\"}".to_vec(), Ok("line\nbreak\ttab")),
            (FORM, b"payload={\"text\":\"cr\r\nlf\"}".to_vec(), Ok("cr\r\nlf")),
            ("application/json", b"".to_vec(), Err("not JSON")),
            ("application/json", b"null".to_vec(), Err("the payload must be a JSON object")),
            ("application/json", b"[1]".to_vec(), Err("the payload must be a JSON object")),
            ("application/json", br#"{"text":"a""#.to_vec(), Err("not JSON")),
            (
                mp,
                b"--B\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{\"text\":\"mp\"}\r\n--B--\r\n"
                    .to_vec(),
                Ok("mp"),
            ),
            (
                mp,
                b"--B\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nplain\r\n--B--\r\n".to_vec(),
                Ok("plain"),
            ),
            ("multipart/form-data", b"--B--".to_vec(), Err("multipart content type has no boundary")),
            (mp, b"garbage".to_vec(), Err("multipart body has no boundary line")),
        ];
        for (ct, body, want) in cases {
            let got = decode(ct.as_bytes(), &body);
            let label = format!("{ct:?} {:?}", String::from_utf8_lossy(&body));
            match (want, got) {
                (Ok(text), Ok(req)) => assert_eq!(req.text.as_deref(), Some(text), "{label}"),
                (Err(prefix), Err(Refusal::InvalidPayload(why))) => {
                    assert!(why.starts_with(prefix), "{label}: {why:?} does not start with {prefix:?}")
                }
                (want, got) => panic!("{label}: wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn multipart_plain_fields_use_json_and_go_names() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"Text\"\r\n\r\nt\r\n\
--B\r\nContent-Disposition: form-data; name=\"channelname\"\r\n\r\nc\r\n\
--B\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nu\r\n\
--B\r\nContent-Disposition: form-data; name=\"icon_url\"\r\n\r\nhttp://i\r\n\
--B\r\nContent-Disposition: form-data; name=\"iconemoji\"\r\n\r\n:e:\r\n\
--B\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\ncustom_x\r\n\
--B\r\nContent-Disposition: form-data; name=\"ignored\"\r\n\r\nz\r\n--B--\r\n";
        let req = decode(b"multipart/form-data; boundary=B", body).unwrap();
        assert_eq!(
            req,
            Incoming {
                text: Some("t".into()),
                channel: Some("c".into()),
                username: Some("u".into()),
                icon_url: Some("http://i".into()),
                icon_emoji: Some(":e:".into()),
                kind: Some("custom_x".into()),
                ..Incoming::default()
            }
        );
    }
}
