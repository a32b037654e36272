//! The `http` node (issue 18 §2, IVR lookups: a caller checks a ticket's
//! progress by its number): its model, the request it makes from the
//! call's variables and what the answer does to the call. Pure: the
//! interpreter emits the [`HttpRequest`] and is fed the [`HttpOutcome`];
//! the shell (`call::flow`) sends it (timeout, retries, bounded body).
//!
//! The request/response contract is in `docs/integrations.md` (## IVR
//! lookups):
//!
//! - `url` is a template (`{caller}`, `{called}`, `{var:NAME}`); every
//!   substituted value is percent-encoded (RFC 3986 unreserved characters
//!   kept), and placeholders may only follow the host, so a variable
//!   cannot send the request elsewhere, and a value `.` or `..` in the
//!   path (resolved away by any URL parser) is not sent: `on_error`;
//! - `POST` sends `body`, a table of name → template, as one JSON object of
//!   strings (`Content-Type: application/json`); `headers` values are
//!   templates with control characters removed;
//! - the answer: 2xx → `next`; a status named in `on_status` (exact
//!   `"404"` first, then its class `"4xx"`) → that node; a timeout →
//!   `on_timeout` (else `on_error`); anything else (no connection, another
//!   status, a body too large, a 2xx whose body is not JSON while fields
//!   are mapped) → `on_error`; none of them set: hang up (`unavailable`);
//! - `set` maps JSON fields to variables by a dotted path (`data.status`,
//!   `items.0.name`): strings as they are, numbers and booleans as their
//!   JSON text, objects and arrays as compact JSON, at most
//!   [`MAX_VALUE_BYTES`]; a missing field or `null` unsets the variable.
//!   The variable `http_status` holds the status, or `timeout` / `error`.

use std::collections::BTreeMap;

/// `GET` or `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET` (no body).
    Get,
    /// `POST` with a JSON body.
    Post,
}

impl HttpMethod {
    /// `GET` / `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// A key of `on_status`: one status or a class of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusMatch {
    /// `"404"`: exactly this status (200-599).
    Code(u16),
    /// `"4xx"`: any status of the class (2-5).
    Class(u16),
}

impl StatusMatch {
    /// From the flow file's key; `None` unless `200`-`599` or `2xx`-`5xx`
    /// (1xx never ends a request).
    pub fn parse(key: &str) -> Option<StatusMatch> {
        let b = key.as_bytes();
        if b.len() != 3 || !(b'2'..=b'5').contains(&b[0]) {
            return None;
        }
        if &b[1..] == b"xx" {
            return Some(StatusMatch::Class(u16::from(b[0] - b'0')));
        }
        if b.iter().all(u8::is_ascii_digit) {
            return key.parse().ok().map(StatusMatch::Code);
        }
        None
    }

    /// As written in the flow file.
    pub fn key(self) -> String {
        match self {
            StatusMatch::Code(c) => c.to_string(),
            StatusMatch::Class(c) => format!("{c}xx"),
        }
    }
}

/// `http`: ask a web service, branch on the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// URL template.
    pub url: String,
    /// Header name → value template.
    pub headers: BTreeMap<String, String>,
    /// `POST` body: field → value template, sent as a JSON object.
    pub body: BTreeMap<String, String>,
    /// Each attempt's limit.
    pub timeout_secs: u32,
    /// Attempts after the first, on a timeout, no connection or a 5xx.
    pub retries: u32,
    /// Variable → JSON path in the answer.
    pub set: BTreeMap<String, String>,
    /// Played (once, not interruptible) while the request runs.
    pub hold_prompt: Option<String>,
    /// On 2xx; none ends the flow.
    pub next: Option<String>,
    /// Status or class → node.
    pub on_status: BTreeMap<StatusMatch, String>,
    /// No answer in time (else `on_error`).
    pub on_timeout: Option<String>,
    /// Anything else; none hangs up.
    pub on_error: Option<String>,
}

/// Longest variable value taken from an answer, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Slowest request the interpreter waits for beyond the shell's own
/// limits, per attempt, before it takes the timeout branch itself.
pub const GRACE_SECS: u32 = 2;

/// A request for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Identifies the answer ([`super::Event::HttpResult`]).
    pub id: u64,
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// The URL, values substituted and escaped.
    pub url: String,
    /// Headers, values substituted.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`POST`).
    pub body: Option<String>,
    /// Each attempt's limit.
    pub timeout_secs: u32,
    /// Attempts after the first.
    pub retries: u32,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The service answered.
    Response {
        /// HTTP status.
        status: u16,
        /// The body (lossy UTF-8), bounded by the shell.
        body: String,
    },
    /// No answer within the time (every attempt).
    Timeout,
    /// No answer at all (connection refused, a body too large …).
    Failed(String),
}

/// Which branch an answer takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpBranch {
    /// `next` (2xx).
    Next,
    /// `on_status` with this key.
    Status(StatusMatch),
    /// `on_timeout` (or `on_error` when unset).
    Timeout,
    /// `on_error`.
    Error,
}

impl Http {
    /// The branch for a status (fields aside).
    pub fn branch_for(&self, status: u16) -> HttpBranch {
        let exact = StatusMatch::Code(status);
        let class = StatusMatch::Class(status / 100);
        if self.on_status.contains_key(&exact) {
            HttpBranch::Status(exact)
        } else if self.on_status.contains_key(&class) {
            HttpBranch::Status(class)
        } else if (200..300).contains(&status) {
            HttpBranch::Next
        } else {
            HttpBranch::Error
        }
    }

    /// The node a branch goes to: `Some(None)` ends the flow (a 2xx
    /// without `next`), `None` hangs up (no branch for a failure).
    pub fn target(&self, branch: &HttpBranch) -> Option<Option<String>> {
        match branch {
            HttpBranch::Next => Some(self.next.clone()),
            HttpBranch::Status(m) => Some(self.on_status.get(m).cloned()),
            HttpBranch::Timeout => self
                .on_timeout
                .clone()
                .or_else(|| self.on_error.clone())
                .map(Some),
            HttpBranch::Error => self.on_error.clone().map(Some),
        }
    }

    /// How long the interpreter waits at most: every attempt, a second
    /// between attempts, and [`GRACE_SECS`].
    pub fn deadline_secs(&self) -> u32 {
        (self.timeout_secs + 1) * (self.retries + 1) + GRACE_SECS
    }
}

/// Percent-encodes a value for a URL (RFC 3986 unreserved kept).
pub fn url_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A header value: control characters (CR, LF …) removed.
pub fn header_value(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

/// The field at a dotted `path` (`data.items.0.name`) of `json`.
pub fn field<'a>(json: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut at = json;
    for segment in path.split('.') {
        at = match at {
            serde_json::Value::Object(map) => map.get(segment)?,
            serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// A JSON value as a variable: `None` for `null`.
pub fn as_var(value: &serde_json::Value) -> Option<String> {
    let mut text = match value {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.len() > MAX_VALUE_BYTES {
        let mut cut = MAX_VALUE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Some(text)
}

/// Whether a JSON path is well formed: dot-separated non-empty segments
/// of `[A-Za-z0-9_-]`.
pub fn is_path(path: &str) -> bool {
    path.split('.').all(|s| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Why a URL template is refused, if it is: the scheme must be `http` or
/// `https`, the host literal (placeholders only after it).
pub fn url_problem(url: &str) -> Option<&'static str> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return Some("the scheme must be http:// or https://");
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains(['{', '}']) {
        return Some("placeholders may only follow the host");
    }
    if authority.contains('@') {
        return Some("user names and passwords do not belong in the URL; use headers");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, rest)) => match rest.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Some("the host is not an address"),
            },
            None => return Some("the host is not an address"),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Some("no host");
    }
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Some("the port is not a number");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("spaces are not allowed (placeholders are escaped for you)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keys() {
        assert_eq!(StatusMatch::parse("404"), Some(StatusMatch::Code(404)));
        assert_eq!(StatusMatch::parse("5xx"), Some(StatusMatch::Class(5)));
        assert_eq!(StatusMatch::parse("2xx"), Some(StatusMatch::Class(2)));
        for bad in ["1xx", "100", "600", "4x", "40", "4XX", "abc", "", "4040"] {
            assert_eq!(StatusMatch::parse(bad), None, "{bad}");
        }
        assert_eq!(StatusMatch::Code(404).key(), "404");
        assert_eq!(StatusMatch::Class(4).key(), "4xx");
    }

    #[test]
    fn escaping() {
        assert_eq!(url_escape("2026-000123"), "2026-000123");
        assert_eq!(url_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(header_value("x\r\nInjected: 1"), "xInjected: 1");
    }

    #[test]
    fn fields_by_path() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"data":{"status":"办理中","n":3,"ok":true,"none":null,"items":[{"name":"a"}]}}"#,
        )
        .expect("json");
        let get = |p: &str| field(&json, p).and_then(as_var);
        assert_eq!(get("data.status").as_deref(), Some("办理中"));
        assert_eq!(get("data.n").as_deref(), Some("3"));
        assert_eq!(get("data.ok").as_deref(), Some("true"));
        assert_eq!(get("data.none"), None);
        assert_eq!(get("data.items.0.name").as_deref(), Some("a"));
        assert_eq!(get("data.items.1.name"), None);
        assert_eq!(get("data.missing"), None);
        assert_eq!(get("data.status.x"), None);
        let long = serde_json::Value::String("长".repeat(MAX_VALUE_BYTES));
        assert!(as_var(&long).is_some_and(|v| v.len() <= MAX_VALUE_BYTES));
        assert!(is_path("data.items.0.name"));
        for bad in ["", ".a", "a.", "a..b", "a b", "a[0]"] {
            assert!(!is_path(bad), "{bad}");
        }
    }

    #[test]
    fn urls() {
        for good in [
            "http://127.0.0.1:8080/tickets/{var:ticket}",
            "https://tickets.example.gov.cn/api?no={var:ticket}&from={caller}",
            "http://[::1]:80/x",
            "http://host",
        ] {
            assert_eq!(url_problem(good), None, "{good}");
        }
        for bad in [
            "ftp://host/x",
            "host/x",
            "http://{var:host}/x",
            "http:///x",
            "http://user:pw@host/x",
            "http://host:8o/x",
            "http://host/a b",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn branches() {
        let mut h = Http {
            method: HttpMethod::Get,
            url: "http://h/".into(),
            headers: BTreeMap::new(),
            body: BTreeMap::new(),
            timeout_secs: 3,
            retries: 1,
            set: BTreeMap::new(),
            hold_prompt: None,
            next: Some("found".into()),
            on_status: BTreeMap::new(),
            on_timeout: None,
            on_error: Some("sorry".into()),
        };
        h.on_status.insert(StatusMatch::Code(404), "unknown".into());
        h.on_status.insert(StatusMatch::Class(4), "bad".into());
        assert_eq!(h.branch_for(200), HttpBranch::Next);
        assert_eq!(h.branch_for(204), HttpBranch::Next);
        assert_eq!(
            h.branch_for(404),
            HttpBranch::Status(StatusMatch::Code(404))
        );
        assert_eq!(h.branch_for(403), HttpBranch::Status(StatusMatch::Class(4)));
        assert_eq!(h.branch_for(500), HttpBranch::Error);
        assert_eq!(h.branch_for(302), HttpBranch::Error);
        assert_eq!(h.target(&HttpBranch::Timeout), Some(Some("sorry".into())));
        h.on_error = None;
        assert_eq!(h.target(&HttpBranch::Error), None);
        assert_eq!(h.deadline_secs(), 4 * 2 + GRACE_SECS);
    }
}
