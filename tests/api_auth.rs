//! No endpoint answers without credentials (issue 14 §1; REQUIREMENTS §9):
//! every route of the API router is in the OpenAPI document, and every
//! operation the document lists refuses an anonymous request with 401 —
//! so a new route cannot ship open. The ACD's figures and callbacks (once
//! open on the HTTP port: anyone could make the switch dial any number)
//! are tenant-scoped and role-checked, and a callback is audited.

mod common;

use std::collections::BTreeSet;

use common::api::{code, Api};
use common::{Hotline, Net};
use serde_json::Value;

const SETUP: &str = r#"
[[tenant]]
id = "a"
outbound_caller_id = "12345"
outbound_trunk = "carrier"
[[tenant]]
id = "b"

[[group]]
id = "general"
tenant = "a"

[[group]]
id = "other"
tenant = "b"

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
tenant = "a"
skills = { general = 5 }

[[agent]]
user = "2002"
password = "pass2002"
job_number = "B01"
tenant = "b"
skills = { other = 5 }

[[user]]
username = "agent-a"
role = "agent"
agent_id = "A01"
tenant = "a"
password = "agent-a-password"

[[user]]
username = "agent-b"
role = "agent"
agent_id = "B01"
tenant = "b"
password = "agent-b-password"

[[user]]
username = "sup-a"
role = "supervisor"
tenant = "a"
password = "sup-a-password"

[[user]]
username = "sup-b"
role = "supervisor"
tenant = "b"
password = "sup-b-password"
"#;

/// Operations anybody may call: logging in and reading the document.
const PUBLIC: [(&str, &str); 2] = [("POST", "/api/v1/login"), ("GET", "/api/v1/openapi.json")];

/// The paths the router serves, read from its source (`.route("…"`),
/// with axum's `{*rest}` written as OpenAPI's `{rest}`.
fn routed_paths() -> BTreeSet<String> {
    let src = include_str!("../src/api/mod.rs");
    src.split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .map(|p| p.replace("{*", "{"))
        .collect()
}

#[test]
fn every_route_is_documented_and_refuses_anonymous_callers() {
    let net = Net(211);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let (s, doc) = api.get("/api/v1/openapi.json", "");
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    let routed = routed_paths();
    assert!(
        routed.len() > 30,
        "the router's routes were read: {routed:?}"
    );
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    let mut checked = 0;
    for (path, ops) in paths {
        for method in ops.as_object().expect("operations").keys() {
            let method = method.to_uppercase();
            if PUBLIC.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            // Path parameters: any value; the refusal comes first.
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let body = if method == "GET" || method == "DELETE" {
                ""
            } else {
                "{}"
            };
            let (s, v) = api.send(&method, &concrete, "", body);
            assert_eq!(
                s, 401,
                "{method} {concrete} answered an anonymous caller: {v}"
            );
            assert_eq!(code(&v), "unauthorized", "{method} {concrete}: {v}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} operations checked");
    drop(h);
}

fn groups(stats: &Value) -> Vec<String> {
    stats["stats"]["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|g| g["group"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_acd_s_figures_and_callbacks_are_tenant_scoped_role_checked_and_audited() {
    let net = Net(212);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let agent_a = api.login("agent-a", "agent-a-password");
    let agent_b = api.login("agent-b", "agent-b-password");
    let sup_a = api.login("sup-a", "sup-a-password");
    let sup_b = api.login("sup-b", "sup-b-password");

    // Figures: supervisors only, their own centre only.
    let (s, v) = api.get("/api/v1/acd/stats", &agent_a);
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = api.get("/api/v1/acd/stats", &sup_a);
    assert_eq!(s, 200, "{v}");
    assert_eq!(groups(&v), ["general"], "{v}");
    assert!(
        v["stats"].get("sl20").is_none(),
        "no switch-wide totals for a centre: {v}"
    );
    let (_, v) = api.get("/api/v1/acd/stats", &sup_b);
    assert_eq!(groups(&v), ["other"], "{v}");
    let all: Value = serde_json::from_str(&h.acd_stats().expect("stats")).expect("json");
    assert_eq!(
        groups(&all).len(),
        2,
        "a global admin sees every centre: {all}"
    );

    // Callbacks: another centre's group is unknown, an agent only in their
    // own group, numbers only.
    let body = r#"{"group":"general","number":"13800138000"}"#;
    let (s, v) = api.post("/api/v1/acd/callbacks", &sup_b, body);
    assert_eq!((s, code(&v)), (404, "unknown_group"), "{v}");
    let (s, v) = api.post("/api/v1/acd/callbacks", &agent_b, body);
    assert_eq!((s, code(&v)), (404, "unknown_group"), "{v}");
    let (s, v) = api.post(
        "/api/v1/acd/callbacks",
        &agent_a,
        r#"{"group":"general","number":"sip:attacker@192.0.2.1"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_number"), "{v}");
    let (s, v) = api.post("/api/v1/acd/callbacks", &agent_a, body);
    assert_eq!(s, 202, "an agent of the group: {v}");
    let (s, v) = api.post(
        "/api/v1/acd/callbacks",
        &sup_a,
        r#"{"group":"general","number":"+8613900139000","priority":3}"#,
    );
    assert_eq!(s, 202, "{v}");
    let (_, audit) = api.get("/api/v1/admin/audit", &sup_a);
    let scheduled: Vec<&Value> = audit["audit"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["action"] == "callback.schedule")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(scheduled.len(), 2, "both callbacks audited: {audit}");
    let (_, audit_b) = api.get("/api/v1/admin/audit", &sup_b);
    assert!(
        !audit_b.to_string().contains("callback.schedule"),
        "another centre's audit log does not show them: {audit_b}"
    );
}

/// A raw HTTP/1.0 request with extra header lines; `(status, head)`.
fn raw(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok();
    s.write_all(request.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).ok();
    let head = out
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head)
}

/// The ticket platform's pages may call the API from the browser (CORS)
/// when their origin is configured, and only then; a preflight is
/// answered without a token, the call itself still needs one.
#[test]
fn only_the_configured_origin_may_call_the_api_from_a_browser() {
    let net = Net(214);
    let dir = tempfile::tempdir().unwrap();
    let text = common::config(net, &dir.path().join("var"), SETUP).replacen(
        "[http]\n",
        "[http]\ncors_origins = [\"https://tickets.example.gov.cn\"]\n",
        1,
    );
    let h = Hotline::start_with(net, dir, &text);
    let addr = format!("{}:8080", net.ip(1));
    let token = h.ops_token();
    let preflight = |origin: &str| {
        raw(
            &addr,
            &format!(
                "OPTIONS /api/v1/calls HTTP/1.0\r\nHost: x\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: GET\r\n\
                 Access-Control-Request-Headers: authorization\r\n\r\n"
            ),
        )
    };
    let (code, head) = preflight("https://tickets.example.gov.cn");
    assert_eq!(code, 204, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://tickets.example.gov.cn"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization, content-type"),
        "{head}"
    );
    let (_, head) = preflight("https://evil.example");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // The call itself: the allowed origin is named, with a token; a
    // stranger's page gets no CORS header (the browser keeps it out).
    let get = |origin: &str| {
        raw(
            &addr,
            &format!(
                "GET /api/v1/calls HTTP/1.0\r\nHost: x\r\nOrigin: {origin}\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            ),
        )
    };
    let (code, head) = get("https://tickets.example.gov.cn");
    assert_eq!(code, 200, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://tickets.example.gov.cn"),
        "{head}"
    );
    let (code, head) = get("https://evil.example");
    assert_eq!(code, 200, "same-origin tools still work: {head}");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // No token, allowed origin: still 401.
    let (code, _) = raw(
        &addr,
        "GET /api/v1/calls HTTP/1.0\r\nHost: x\r\nOrigin: https://tickets.example.gov.cn\r\n\r\n",
    );
    assert_eq!(code, 401);
}
