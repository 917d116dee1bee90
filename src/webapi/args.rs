//! A Web API call's arguments (docs/webapi.md, "Arguments"): the query string's, then the
//! body's, so that the body wins. A body is `application/json` (an object),
//! `application/x-www-form-urlencoded` or `multipart/form-data`; in a form, `attachments` and
//! `blocks` are JSON written as strings, and so they may be in JSON too.

use super::answer::ApiError;
use crate::pipeline::decode::{form, multipart};
use crate::pipeline::json::{self, Json};

/// Arguments as JSON members, in the order read; the last of a name wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    pub members: Vec<(Box<str>, Json)>,
    /// A `token` argument from the query string or a form. Slack does not read one from JSON.
    pub token: Option<String>,
}

impl Args {
    /// The last value of argument `name`.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.members.iter().rev().find(|(k, _)| &**k == name).map(|(_, v)| v)
    }

    /// Argument `name` as text: a string, or a number as written; `None` when absent, `null`,
    /// empty or of another type.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Json::String(s) if !s.is_empty() => Some(s),
            value => value.as_number(),
        }
    }
}

/// Reads the arguments of a call from its query string (without the `?`), content type (the
/// raw header, empty when absent) and body.
pub fn read(query: &str, content_type: &[u8], body: &[u8]) -> Result<Args, ApiError> {
    let mut args = Args::default();
    add_strings(&mut args, form::pairs(query.as_bytes()))?;
    let content_type = String::from_utf8_lossy(content_type);
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match media.as_str() {
        _ if body.iter().all(u8::is_ascii_whitespace) => {}
        "multipart/form-data" => {
            let boundary = multipart::boundary(&content_type).ok_or(ApiError::InvalidFormData)?;
            let parts = multipart::parts(body, boundary).map_err(|_| ApiError::InvalidFormData)?;
            let pairs = parts.into_iter().map(|p| (p.name, String::from_utf8_lossy(p.content).into_owned()));
            add_strings(&mut args, pairs.collect())?;
        }
        "application/x-www-form-urlencoded" if !starts_as_object => add_strings(&mut args, form::pairs(body))?,
        "application/json" => add_json(&mut args, body)?,
        // No or another content type: JSON when it looks like an object, else a form.
        _ if starts_as_object => add_json(&mut args, body)?,
        _ => add_strings(&mut args, form::pairs(body))?,
    }
    Ok(args)
}

fn add_json(args: &mut Args, body: &[u8]) -> Result<(), ApiError> {
    let Json::Object(members) = json::parse(body).map_err(|_| ApiError::InvalidJson)? else {
        return Err(ApiError::JsonNotObject);
    };
    for (name, value) in members.into_vec() {
        let value = match value {
            Json::String(text) => structured(&name, text.into())?,
            value => value,
        };
        if &*name != "token" {
            args.members.push((name, value));
        }
    }
    Ok(())
}

fn add_strings(args: &mut Args, pairs: Vec<(String, String)>) -> Result<(), ApiError> {
    for (name, value) in pairs {
        if name == "token" {
            args.token = Some(value);
            continue;
        }
        let value = structured(&name, value)?;
        args.members.push((name.into(), value));
    }
    Ok(())
}

/// The JSON an `attachments` or `blocks` string holds; any other argument stays a string. An
/// empty string is no value.
fn structured(name: &str, text: String) -> Result<Json, ApiError> {
    let error = match name {
        "attachments" => ApiError::InvalidAttachments,
        "blocks" => ApiError::InvalidBlocks,
        _ => return Ok(Json::String(text.into())),
    };
    if text.trim().is_empty() {
        return Ok(Json::Null);
    }
    match json::parse(text.as_bytes()) {
        Ok(value @ Json::Array(_)) => Ok(value),
        _ => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    const JSON: &[u8] = b"application/json; charset=utf-8";

    fn texts(args: &Args, names: &[&str]) -> Vec<Option<String>> {
        names.iter().map(|n| args.text(n).map(str::to_owned)).collect()
    }

    #[test]
    fn query_form_json_and_multipart() {
        let names = ["channel", "text", "ts"];
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], Result<[Option<&'a str>; 3], ApiError>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("channel=q&text=from+query", b"", b"", Ok([Some("q"), Some("from query"), None]), None),
            ("channel=q", FORM, b"channel=%23body&text=a+b", Ok([Some("#body"), Some("a b"), None]), None),
            ("token=xoxb-1", FORM, b"channel=c&ts=1.000002", Ok([Some("c"), None, Some("1.000002")]), Some("xoxb-1")),
            ("", FORM, b"token=xoxb-2&channel=c", Ok([Some("c"), None, None]), Some("xoxb-2")),
            ("", JSON, br#"{"channel":"c","text":"t","ts":1.5}"#, Ok([Some("c"), Some("t"), Some("1.5")]), None),
            ("", JSON, br#"{"token":"xoxb-3","channel":"c"}"#, Ok([Some("c"), None, None]), None),
            ("channel=q", b"", br#"{"channel":"json"}"#, Ok([Some("json"), None, None]), None),
            ("", b"text/plain", b"channel=c", Ok([Some("c"), None, None]), None),
            ("", JSON, b"{\"channel\":", Err(ApiError::InvalidJson), None),
            ("", JSON, b"not json", Err(ApiError::InvalidJson), None),
            ("", JSON, b"[1,2]", Err(ApiError::JsonNotObject), None),
            ("", JSON, b"  ", Ok([None, None, None]), None),
            ("", b"multipart/form-data", b"--B\r\n", Err(ApiError::InvalidFormData), None),
            ("", b"multipart/form-data; boundary=B", b"garbage", Err(ApiError::InvalidFormData), None),
            (
                "",
                b"multipart/form-data; boundary=B",
                b"--B\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nmp\r\n\
--B\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nxoxb-4\r\n--B--\r\n",
                Ok([Some("mp"), None, None]),
                Some("xoxb-4"),
            ),
        ];
        for (query, content_type, body, want, token) in cases {
            let label = format!("{query:?} {:?}", String::from_utf8_lossy(body));
            match (read(query, content_type, body), want) {
                (Ok(args), Ok(want)) => {
                    let want: Vec<Option<String>> = want.iter().map(|w| w.map(str::to_owned)).collect();
                    assert_eq!(texts(&args, &names), want, "{label}");
                    assert_eq!(args.token.as_deref(), token, "{label}");
                }
                (got, want) => assert_eq!(got.map(|_| ()), want.map(|_| ()), "{label}"),
            }
        }
    }

    #[test]
    fn attachments_and_blocks_are_json_in_strings() {
        let args = read("", FORM, b"attachments=%5B%7B%22text%22%3A%22a%22%7D%5D&blocks=").unwrap();
        assert!(matches!(args.get("attachments"), Some(Json::Array(items)) if items.len() == 1));
        assert_eq!(args.get("blocks"), Some(&Json::Null));
        let args = read("", JSON, br#"{"blocks":"[{\"type\":\"divider\"}]"}"#).unwrap();
        assert!(matches!(args.get("blocks"), Some(Json::Array(_))));
        let cases: [(&[u8], &[u8], ApiError); 4] = [
            (FORM, b"attachments=%7B", ApiError::InvalidAttachments),
            (FORM, b"blocks=%7B%7D", ApiError::InvalidBlocks),
            (JSON, br#"{"blocks":"nope"}"#, ApiError::InvalidBlocks),
            (JSON, br#"{"attachments":"{}"}"#, ApiError::InvalidAttachments),
        ];
        for (content_type, body, error) in cases {
            assert_eq!(read("", content_type, body), Err(error), "{:?}", String::from_utf8_lossy(body));
        }
    }
}
