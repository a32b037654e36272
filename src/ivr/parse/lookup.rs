//! The keys of the IVR-lookup nodes (issue 18 §2): `http` (a web service
//! asked with the call's variables) and `say` (a figure read aloud), as
//! [`crate::ivr::flow`] documents them; every problem is recorded in the
//! file's [`Ctx`] with its line, including branches no answer can take.

use std::collections::BTreeMap;

use super::fields::{is_var, template_parts, Ctx, Fields};
use crate::ivr::error::Problem;
use crate::ivr::flow::{NodeKind, Say};
use crate::ivr::lookup::{is_path, url_problem, Http, HttpMethod, StatusMatch};
use crate::ivr::say::{speak, SayAs};

/// The string values of a table key, each with its dotted key.
fn string_table(
    cx: &mut Ctx<'_>,
    f: &mut Fields<'_>,
    key: &'static str,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Some(table) = f.table(cx, key) else {
        return out;
    };
    for (name, item) in table.iter() {
        let full = format!("{key}.{name}");
        cx.line(&f.full(&full));
        match item.as_str() {
            Some(v) => out.push((name.to_string(), v.to_string(), full)),
            None => f.err(
                cx,
                &full,
                Problem::WrongType {
                    key: full.clone(),
                    expected: "a string",
                },
            ),
        }
    }
    out
}

/// A template (`{caller}`, `{called}`, `{var:NAME}`), or an error.
fn template(cx: &mut Ctx<'_>, f: &Fields<'_>, key: &str, value: &str) -> bool {
    let ok = template_parts(value).is_some();
    if !ok {
        f.err(
            cx,
            key,
            Problem::BadPlaceholder {
                value: value.to_string(),
            },
        );
    }
    ok
}

/// An HTTP token (RFC 9110) for a header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn parse_http(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let url = f.req_string(cx, "url").unwrap_or_default();
    if !url.is_empty() && template(cx, f, "url", &url) {
        if let Some(reason) = url_problem(&url) {
            f.err(
                cx,
                "url",
                Problem::BadUrl {
                    url: url.clone(),
                    reason,
                },
            );
        }
    }
    let method = match f.string(cx, "method").as_deref() {
        None | Some("GET") => Some(HttpMethod::Get),
        Some("POST") => Some(HttpMethod::Post),
        Some(other) => {
            f.err(cx, "method", Problem::BadMethod(other.to_string()));
            None
        }
    };
    let mut headers = BTreeMap::new();
    for (name, value, full) in string_table(cx, f, "headers") {
        if !is_token(&name) {
            f.err(cx, &full, Problem::BadHeaderName(name));
        } else if template(cx, f, &full, &value) {
            headers.insert(name, value);
        }
    }
    let body_given = f.table.get("body").is_some_and(|i| !i.is_none());
    let mut body = BTreeMap::new();
    for (name, value, full) in string_table(cx, f, "body") {
        if template(cx, f, &full, &value) {
            body.insert(name, value);
        }
    }
    if body_given && method == Some(HttpMethod::Get) {
        f.err(cx, "body", Problem::BodyWithGet);
    }
    let mut set = BTreeMap::new();
    for (var, path, full) in string_table(cx, f, "set") {
        if !is_var(&var) {
            f.err(cx, &full, Problem::BadVarName(var));
        } else if var == "caller" || var == "called" {
            f.err(cx, &full, Problem::ReadOnlyVar(var));
        } else if !is_path(&path) {
            f.err(cx, &full, Problem::BadJsonPath { path });
        } else {
            set.insert(var, path);
        }
    }
    let mut on_status = BTreeMap::new();
    for (key, target, full) in string_table(cx, f, "on_status") {
        match StatusMatch::parse(&key) {
            None => f.err(cx, &full, Problem::BadStatus(key)),
            Some(_) if target.is_empty() => f.err(cx, &full, Problem::Empty(full.clone())),
            Some(m) => {
                on_status.insert(m, target);
            }
        }
    }
    let next = f.target(cx, "next");
    if next.is_some() && on_status.contains_key(&StatusMatch::Class(2)) {
        f.err(
            cx,
            "next",
            Problem::NeverTaken {
                via: "next".into(),
                because: "on_status \"2xx\" takes every 2xx answer".into(),
            },
        );
    }
    NodeKind::Http(Http {
        method: method.unwrap_or(HttpMethod::Get),
        url,
        headers,
        body,
        timeout_secs: f.u32_or(cx, "timeout_secs", 3, 1, 30),
        retries: f.u32_or(cx, "retries", 1, 0, 3),
        set,
        hold_prompt: f.prompt(cx, "hold_prompt"),
        next,
        on_status,
        on_timeout: f.target(cx, "on_timeout"),
        on_error: f.target(cx, "on_error"),
    })
}

pub(super) fn parse_say(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let value = f.req_string(cx, "value").unwrap_or_default();
    let how_name = f.req_string(cx, "as");
    let how = match how_name.as_deref().map(SayAs::from_name) {
        Some(Some(how)) => how,
        Some(None) => {
            f.err(cx, "as", Problem::BadSayAs(how_name.unwrap_or_default()));
            SayAs::Digits
        }
        None => SayAs::Digits,
    };
    let before = f.prompts(cx, "before", false);
    let after = f.prompts(cx, "after", false);
    let interruptible = f.bool_or(cx, "interruptible", false);
    let next = f.target(cx, "next");
    let on_invalid = f.target(cx, "on_invalid");
    let literal = template_parts(&value).map(|parts| {
        parts
            .iter()
            .all(|p| matches!(p, super::fields::TemplatePart::Text(_)))
    });
    match literal {
        None if !value.is_empty() => {
            template(cx, f, "value", &value);
        }
        Some(true) if !value.is_empty() => {
            if speak(&value, how).is_none() {
                f.err(
                    cx,
                    "value",
                    Problem::Unspeakable {
                        value: value.clone(),
                        how: how.name(),
                    },
                );
            } else if on_invalid.is_some() {
                f.err(
                    cx,
                    "on_invalid",
                    Problem::NeverTaken {
                        via: "on_invalid".into(),
                        because: "the value is a literal that can be read".into(),
                    },
                );
            }
        }
        _ => {}
    }
    NodeKind::Say(Say {
        value,
        how,
        before,
        after,
        interruptible,
        next,
        on_invalid,
    })
}
