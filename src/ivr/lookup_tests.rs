//! The IVR-lookup nodes (issue 18 §2) through the parser, the validator
//! and the interpreter: a ticket number collected, looked up over HTTP,
//! its status read back, and every branch of the answer.

use std::sync::Arc;

use super::interpreter::{Action, CallFacts, Event, HangupReason, Interpreter, TimerId};
use super::lookup::{HttpMethod, HttpOutcome, HttpRequest};
use super::testkit::{flow, parse_errors, set_of, TestEnv};
use super::validate::{validate, Catalog};
use crate::time::Time;

/// Collect a ticket number, look it up, read back the figures.
const LOOKUP: &str = r#"
name = "lookup"
dids = ["12366"]
entry = "ticket"

[nodes.ticket]
kind = "collect"
prompts = ["ivr_ticket_number"]
var = "ticket"
max_digits = 12
next = "ask"

[nodes.ask]
kind = "http"
url = "http://127.0.0.1:9000/tickets/{var:ticket}?from={caller}"
headers = { Authorization = "Bearer t0ken", X-Ticket = "{var:ticket}" }
timeout_secs = 2
retries = 1
hold_prompt = "ivr_please_wait"
set = { progress = "data.status", handler = "data.dept", due = "data.due", fee = "data.fee" }
next = "read_back"
on_status = { "404" = "unknown", "4xx" = "sorry" }
on_timeout = "busy"
on_error = "sorry"

[nodes.read_back]
kind = "say"
value = "{var:ticket}"
as = "digits"
before = ["ivr_your_ticket"]
after = ["ivr_is_handled"]
next = "due"

[nodes.due]
kind = "say"
value = "{var:due}"
as = "date"
next = "fee"

[nodes.fee]
kind = "say"
value = "{var:fee}"
as = "amount"
on_invalid = "bye"
next = "bye"

[nodes.unknown]
kind = "play"
prompts = ["ivr_ticket_unknown"]
next = "bye"

[nodes.busy]
kind = "play"
prompts = ["ivr_busy"]
next = "bye"

[nodes.sorry]
kind = "play"
prompts = ["ivr_sorry"]
next = "bye"

[nodes.bye]
kind = "hangup"
"#;

const T0: u64 = 1_717_380_000;

struct Call {
    it: Interpreter,
    env: TestEnv,
}

impl Call {
    fn start(text: &str) -> (Call, Vec<Action>) {
        let set = set_of(&[("lookup", text)]);
        let facts = CallFacts {
            caller: "+86 139".into(),
            called: "12366".into(),
            tenant: "default".into(),
        };
        let mut call = Call {
            it: Interpreter::new(Arc::clone(&set), "lookup", facts).expect("flow"),
            env: TestEnv::default(),
        };
        let out = call.it.start(Time::from_unix_secs(T0), &call.env);
        (call, out)
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        self.it.handle(event, Time::from_unix_secs(T0), &self.env)
    }

    /// Types the ticket number; the request that goes out.
    fn lookup(text: &str, keys: &str) -> (Call, HttpRequest) {
        let (call, request, _) = Call::lookup_timed(text, keys);
        (call, request)
    }

    /// [`Call::lookup`], with the interpreter's deadline (timer id, ms).
    fn lookup_timed(text: &str, keys: &str) -> (Call, HttpRequest, (TimerId, u64)) {
        let (mut call, _) = Call::start(text);
        call.send(Event::PromptFinished);
        let mut out = Vec::new();
        for k in keys.chars() {
            out = call.send(Event::Key(k));
        }
        let request = out
            .iter()
            .find_map(|a| match a {
                Action::HttpRequest(r) => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no request in {out:?}"));
        let deadline = out
            .iter()
            .find_map(|a| match a {
                Action::StartTimer { id, after_ms } => Some((*id, *after_ms)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no deadline in {out:?}"));
        (call, request, deadline)
    }

    fn answer(&mut self, id: u64, outcome: HttpOutcome) -> Vec<Action> {
        self.send(Event::HttpResult { id, outcome })
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.it.vars().get(name).map(String::as_str)
    }
}

fn played(out: &[Action]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::Play { prompts, .. } => Some(prompts.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn nodes(out: &[Action]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            Action::Step { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

fn ok(status: u16, body: &str) -> HttpOutcome {
    HttpOutcome::Response {
        status,
        body: body.into(),
    }
}

#[test]
fn the_request_carries_the_callers_variables_escaped() {
    let (_, r) = Call::lookup(LOOKUP, "2026000123#");
    assert_eq!(r.method, HttpMethod::Get);
    assert_eq!(
        r.url,
        "http://127.0.0.1:9000/tickets/2026000123?from=%2B86%20139"
    );
    assert_eq!(
        r.headers,
        vec![
            ("Authorization".to_string(), "Bearer t0ken".to_string()),
            ("X-Ticket".to_string(), "2026000123".to_string()),
        ]
    );
    assert_eq!(r.body, None);
    assert_eq!((r.timeout_secs, r.retries), (2, 1));
}

#[test]
fn an_answer_is_mapped_to_variables_and_read_back() {
    let (mut call, r) = Call::lookup(LOOKUP, "123#");
    let out = call.answer(
        r.id,
        ok(
            200,
            r#"{"data":{"status":"processing","dept":"市住建局","due":"2026-12-08","fee":12.5,"extra":[1]}}"#,
        ),
    );
    assert_eq!(call.var("http_status"), Some("200"));
    assert_eq!(call.var("progress"), Some("processing"));
    assert_eq!(call.var("handler"), Some("市住建局"));
    assert_eq!(call.var("due"), Some("2026-12-08"));
    assert_eq!(call.var("fee"), Some("12.5"));
    assert!(
        out.contains(&Action::StopPlayback),
        "the hold prompt stops: {out:?}"
    );
    assert_eq!(nodes(&out), ["read_back"]);
    assert_eq!(
        played(&out),
        [
            "ivr_your_ticket",
            "num_1",
            "num_2",
            "num_3",
            "ivr_is_handled"
        ]
    );
    let out = call.send(Event::PromptFinished);
    assert_eq!(nodes(&out), ["due"]);
    assert_eq!(
        played(&out),
        [
            "num_2",
            "num_0",
            "num_2",
            "num_6",
            "num_year",
            "num_10",
            "num_2",
            "num_month",
            "num_8",
            "num_day"
        ]
    );
    let out = call.send(Event::PromptFinished);
    assert_eq!(
        played(&out),
        ["num_10", "num_2", "num_yuan", "num_5", "num_jiao"]
    );
    let out = call.send(Event::PromptFinished);
    assert_eq!(
        out.last(),
        Some(&Action::Hangup {
            reason: HangupReason::Normal
        })
    );
}

#[test]
fn statuses_timeouts_and_errors_take_their_branches() {
    let cases: [(HttpOutcome, &str, &str); 6] = [
        (ok(404, "not json"), "unknown", "404"),
        (ok(403, "{}"), "sorry", "403"),
        (ok(503, ""), "sorry", "503"),
        (ok(302, ""), "sorry", "302"),
        (HttpOutcome::Timeout, "busy", "timeout"),
        (
            HttpOutcome::Failed("connection refused".into()),
            "sorry",
            "error",
        ),
    ];
    for (outcome, node, status) in cases {
        let (mut call, r) = Call::lookup(LOOKUP, "123#");
        let out = call.answer(r.id, outcome.clone());
        assert_eq!(nodes(&out), [node], "{outcome:?}");
        assert_eq!(call.var("http_status"), Some(status));
    }
}

#[test]
fn a_2xx_without_the_promised_json_is_an_error_and_fields_left_unset() {
    let (mut call, r) = Call::lookup(LOOKUP, "123#");
    let out = call.answer(r.id, ok(200, "<html>"));
    assert_eq!(nodes(&out), ["sorry"]);
    assert_eq!(call.var("progress"), None);
    // A field missing from good JSON unsets the variable; reading an
    // unset amount takes `on_invalid`.
    let (mut call, r) = Call::lookup(LOOKUP, "123#");
    call.answer(r.id, ok(200, r#"{"data":{"due":"2026-12-08"}}"#));
    assert_eq!(call.var("progress"), None);
    call.send(Event::PromptFinished);
    let out = call.send(Event::PromptFinished);
    assert_eq!(nodes(&out), ["fee", "bye"]);
}

#[test]
fn stale_answers_are_ignored_and_the_deadline_takes_the_timeout_branch() {
    let (mut call, r) = Call::lookup(LOOKUP, "123#");
    assert!(call.answer(r.id + 1, ok(200, "{}")).is_empty());
    // Keys while waiting are kept, not acted on.
    assert!(call.send(Event::Key('5')).is_empty());
    let (mut fresh, r, timer) = Call::lookup_timed(LOOKUP, "123#");
    // (timeout 2 s + 1) x 2 attempts + grace 2 s.
    assert_eq!(timer.1, 8_000);
    let out = fresh.send(Event::Timer(timer.0));
    assert_eq!(nodes(&out), ["busy"]);
    assert_eq!(fresh.var("http_status"), Some("timeout"));
    let late = fresh.answer(r.id, ok(200, "{}"));
    assert!(late.is_empty(), "{late:?}");
}

#[test]
fn post_sends_the_body_as_json_and_without_branches_a_failure_hangs_up() {
    let text = r#"
name = "lookup"
entry = "ask"
[nodes.ask]
kind = "http"
method = "POST"
url = "https://tickets.example.gov.cn/query"
body = { ticket = "{var:none}", caller = "{caller}\"\\" }
"#;
    let (mut call, out) = Call::start(text);
    let Some(Action::HttpRequest(r)) = out.iter().find(|a| matches!(a, Action::HttpRequest(_)))
    else {
        panic!("no request: {out:?}");
    };
    let body: serde_json::Value =
        serde_json::from_str(r.body.as_deref().unwrap_or("")).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"ticket": "", "caller": "+86 139\"\\"})
    );
    assert_eq!((r.timeout_secs, r.retries), (3, 1));
    let out = call.answer(r.id, HttpOutcome::Timeout);
    assert_eq!(
        out.last(),
        Some(&Action::Hangup {
            reason: HangupReason::Unavailable
        })
    );
}

#[test]
fn every_mistake_in_the_new_nodes_is_reported_with_its_line() {
    let text = r#"
name = "x"
entry = "a"
[nodes.a]
kind = "http"
url = "ftp://host/x"
method = "PUT"
body = { a = "b" }
timeout_secs = 60
retries = 9
set = { caller = "a", "bad-var" = "a", ok = "a..b" }
on_status = { "1xx" = "b", "200" = "" }
next = "b"
[nodes.b]
kind = "http"
url = "http://{var:host}/x"
method = "GET"
body = { a = "b" }
on_status = { "2xx" = "c" }
next = "c"
[nodes.c]
kind = "say"
value = "2026-13-01"
as = "date"
[nodes.d]
kind = "say"
value = "12"
as = "money"
[nodes.e]
kind = "say"
value = "12"
as = "number"
on_invalid = "c"
"#;
    assert_eq!(
        parse_errors("x", text),
        [
            r#"ivr-flows/x.toml:6: node "a": url "ftp://host/x": the scheme must be http:// or https://"#,
            r#"ivr-flows/x.toml:7: node "a": method "PUT" is not GET or POST"#,
            r#"ivr-flows/x.toml:9: node "a": "timeout_secs" = 60 is out of range (1..=30)"#,
            r#"ivr-flows/x.toml:10: node "a": "retries" = 9 is out of range (0..=3)"#,
            r#"ivr-flows/x.toml:11: node "a": variable "caller" is read-only"#,
            r#"ivr-flows/x.toml:11: node "a": variable name "bad-var" may only contain A-Z, a-z, 0-9 and _"#,
            r#"ivr-flows/x.toml:11: node "a": "a..b" is not a JSON path like data.status (names or array indexes, dot-separated)"#,
            r#"ivr-flows/x.toml:12: node "a": on_status key "1xx" is not a status 200-599 or a class 2xx-5xx"#,
            r#"ivr-flows/x.toml:12: node "a": "on_status.200" must not be empty"#,
            r#"ivr-flows/x.toml:16: node "b": url "http://{var:host}/x": placeholders may only follow the host"#,
            r#"ivr-flows/x.toml:18: node "b": "body" needs method = "POST" (a GET sends no body)"#,
            r#"ivr-flows/x.toml:20: node "b": next is never taken: on_status "2xx" takes every 2xx answer"#,
            r#"ivr-flows/x.toml:23: node "c": value "2026-13-01" cannot be read as date"#,
            r#"ivr-flows/x.toml:28: node "d": as = "money" is not one of digits, number, date, amount"#,
            r#"ivr-flows/x.toml:33: node "e": on_invalid is never taken: the value is a literal that can be read"#,
        ]
    );
}

/// Knows every prompt but the amount's units.
struct NoYuan;

impl Catalog for NoYuan {
    fn has_prompt(&self, name: &str) -> bool {
        name != "num_yuan"
    }
    fn has_group(&self, _: &str) -> bool {
        true
    }
    fn has_trunk(&self, _: &str) -> bool {
        true
    }
    fn has_schedule(&self, _: &str) -> bool {
        true
    }
    fn has_agent(&self, _: &str) -> bool {
        true
    }
}

#[test]
fn validation_checks_branch_targets_and_the_figures_prompts() {
    let text = LOOKUP
        .replace(r#""404" = "unknown""#, r#""404" = "unknwn""#)
        .replace(r#"on_error = "sorry""#, r#"on_error = "sory""#);
    let errors: Vec<String> = validate(&[flow("lookup", &text)], &NoYuan)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            r#"ivr-flows/lookup.toml:22: node "ask": on_status "404" goes to unknown node "unknwn""#,
            r#"ivr-flows/lookup.toml:24: node "ask": on_error goes to unknown node "sory""#,
            r#"ivr-flows/lookup.toml:43: node "fee": prompt "num_yuan" has no sound file"#,
            r#"ivr-flows/lookup.toml:47: node "unknown": is never reached from entry "ticket""#,
        ]
    );
}

#[test]
fn a_dot_segment_from_a_variable_is_never_sent() {
    let text = r#"
name = "lookup"
entry = "name"
[nodes.name]
kind = "set"
vars = { t = "..", q = ".." }
next = "ask"
[nodes.ask]
kind = "http"
url = "http://h/tickets/{var:t}/x?q={var:q}"
on_error = "bye"
[nodes.bye]
kind = "hangup"
"#;
    let (call, out) = Call::start(text);
    assert!(
        !out.iter().any(|a| matches!(a, Action::HttpRequest(_))),
        "{out:?}"
    );
    assert_eq!(nodes(&out), ["name", "ask", "bye"]);
    assert_eq!(call.var("http_status"), Some("error"));
    // In the query a dot is only a dot.
    let (_, out) = Call::start(&text.replace("tickets/{var:t}", "tickets"));
    let Some(Action::HttpRequest(r)) = out.iter().find(|a| matches!(a, Action::HttpRequest(_)))
    else {
        panic!("no request: {out:?}");
    };
    assert_eq!(r.url, "http://h/tickets/x?q=..");
}

#[test]
fn keys_pressed_during_a_lookup_go_to_the_next_collect() {
    let text = r#"
name = "lookup"
entry = "ask"
[nodes.ask]
kind = "http"
url = "http://h/menu"
next = "choose"
[nodes.choose]
kind = "collect"
prompts = ["ivr_choose"]
var = "choice"
max_digits = 1
next = "bye"
[nodes.bye]
kind = "hangup"
"#;
    let (mut call, out) = Call::start(text);
    let Some(Action::HttpRequest(r)) = out.iter().find(|a| matches!(a, Action::HttpRequest(_)))
    else {
        panic!("no request: {out:?}");
    };
    assert!(call.send(Event::Key('7')).is_empty());
    let out = call.answer(r.id, ok(204, ""));
    assert_eq!(nodes(&out), ["choose", "bye"], "{out:?}");
    assert_eq!(call.var("choice"), Some("7"));
    assert_eq!(call.var("http_status"), Some("204"));
}
