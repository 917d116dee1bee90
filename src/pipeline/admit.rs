//! Admission: what the request head alone decides, before any body is read, in the order
//! docs/webhooks.md gives: method, key, rate, declared size.

use super::ratelimit::Limiters;
use crate::refusal::Refusal;
use crate::rules::{keys, Rules};

/// The parts of a request head admission looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    /// `Content-Length`, when given and readable.
    pub content_length: Option<usize>,
}

/// The hook the key matched (its position in this rule set), and whether the body may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub hook: Option<usize>,
    pub result: Result<(), Refusal>,
}

pub fn admit(head: RequestHead, rules: &Rules, limiters: &Limiters) -> Admission {
    if head.method != http::Method::POST {
        return Admission { hook: None, result: Err(Refusal::InvalidMethod) };
    }
    let Some(index) = find_hook(rules, head.path) else {
        return Admission { hook: None, result: Err(Refusal::NoService) };
    };
    let result = match limiters.check(index) {
        Err(retry_after) => Err(Refusal::RateLimited { retry_after }),
        Ok(()) if head.content_length.is_some_and(|n| n > rules.gateway.max_body_bytes) => Err(Refusal::TooLarge),
        Ok(()) => Ok(()),
    };
    Admission { hook: Some(index), result }
}

/// The hook named by `/hooks/{key}` or `/services/{key with slashes}`. The key is hashed before
/// lookup whatever it is, so an unknown key costs what a known one does.
fn find_hook(rules: &Rules, path: &str) -> Option<usize> {
    let key = path.strip_prefix("/hooks/").or_else(|| path.strip_prefix("/services/"))?;
    rules.hook_index(&keys::digest(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_in_the_contracts_order() {
        let rules = crate::delivery::rules_from_text(
            "[gateway]\nmax_body_bytes = 100\n[backends.c]\nkind = \"log\"\n\
             [[hooks]]\nname = \"a\"\nkey = \"T/B/X\"\nbackend = \"c\"\nrate = 1\nburst = 1\n",
        );
        let limiters = Limiters::new(&rules, None);
        let head = |method: &'static http::Method, path: &'static str, length| RequestHead {
            method,
            path,
            content_length: length,
        };
        let (post, get) = (&http::Method::POST, &http::Method::GET);
        let cases = [
            (head(get, "/services/T/B/X", None), None, Err(Refusal::InvalidMethod)),
            (head(post, "/services/T/B/Y", None), None, Err(Refusal::NoService)),
            (head(post, "/other/T/B/X", None), None, Err(Refusal::NoService)),
            // Too large, but the size is only looked at once the bucket gave a token.
            (head(post, "/services/T/B/X", Some(101)), Some(0), Err(Refusal::TooLarge)),
            (head(post, "/hooks/T/B/X", Some(100)), Some(0), Err(Refusal::RateLimited { retry_after: 1 })),
        ];
        for (head, hook, result) in cases {
            assert_eq!(admit(head, &rules, &limiters), Admission { hook, result }, "{head:?}");
        }
    }
}
