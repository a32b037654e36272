//! The records and admin API (`/api/v1`, events issue §4 and CTI issue §1,
//! §2) against a real hotline: every endpoint with success, bad input, a
//! wrong role and another tenant's access (each refused).
//!
//! The records are written to hotline's events database before it starts
//! (through the library's own outbox and call-record builder, as the call
//! room writes them), with one recording file on disk; a webhook sink that
//! cannot connect turns the stored events into dead letters.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Hotline, Net};
use hotline::events::model::RecordingInfo;
use hotline::events::outbox::{NewEvent, OutboxConfig};
use hotline::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};
use serde_json::{json, Value};

const USERS: &str = r#"
[[tenant]]
id = "a"
[[tenant]]
id = "b"

[[user]]
username = "root"
role = "admin"
tenant = "*"
password = "root-password-1"

[[user]]
username = "admin-a"
role = "admin"
tenant = "a"
password = "admin-a-password"

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

[[user]]
username = "agent-a"
role = "agent"
tenant = "a"
agent_id = "A01"
password = "agent-a-password"

[[user]]
username = "agent-b"
role = "agent"
tenant = "b"
agent_id = "B01"
password = "agent-b-password"

[[webhook]]
name = "tickets"
url = "http://127.0.0.1:9/hook"
secret = "s3cret"
timeout_secs = 1
retry_base_ms = 10
max_attempts = 1
"#;

const T0: i64 = 1_795_400_000_000; // 2026-11-24T…Z

fn rows(events: Vec<hotline::events::Event>) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|e| NewEvent {
            id: e.id.clone(),
            call_id: e.call_id.clone(),
            kind: e.kind().into(),
            body_json: serde_json::to_string(&e).unwrap(),
        })
        .collect()
}

fn start(call: &str, tenant: &str, caller: &str, confidential: bool) -> CallStart {
    CallStart {
        call_id: call.into(),
        serial: format!("serial-{call}"),
        tenant: tenant.into(),
        direction: hotline::events::model::Direction::Inbound,
        caller: caller.into(),
        called: "12345".into(),
        caller_area: None,
        confidential,
    }
}

/// Calls: a1 (tenant a, answered by A01, recorded, confidential caller),
/// a2 (tenant a, abandoned in the queue), b1 (tenant b, answered by B01).
fn store_calls(data: &std::path::Path) {
    std::fs::create_dir_all(data).unwrap();
    let outbox = common::open_outbox(data, OutboxConfig::default());
    outbox
        .register_sink("webhook:tickets", Default::default())
        .unwrap();
    let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("pre", 0));
    let mut all = Vec::new();
    let rec_rel = "a/2026/11/24/a1.wav";
    let (mut b, e) =
        CdrBuilder::started(ids.clone(), T0, start("a1", "a", "13800138000", true)).unwrap();
    all.push(e);
    all.extend(b.queued(T0 + 1_000, "general", None, 0).unwrap());
    all.extend(b.answered(T0 + 4_000, "A01").unwrap());
    b.recording_started("a/2026/11/24/a1", rec_rel).unwrap();
    all.extend(
        b.recording_ready(
            T0 + 60_000,
            RecordingInfo {
                id: "a/2026/11/24/a1".into(),
                path: rec_rel.into(),
                duration_ms: 56_000,
                bytes: 1000,
                sha256: "0".repeat(64),
                dropped_chunks: 0,
            },
        )
        .unwrap(),
    );
    all.extend(
        b.ended(T0 + 60_000, HangupParty::Caller, EndCause::default())
            .unwrap(),
    );
    all.extend(b.acw_ended(T0 + 70_000, "A01").unwrap());
    let (mut b, e) = CdrBuilder::started(
        ids.clone(),
        T0 + 100_000,
        start("a2", "a", "13900001111", false),
    )
    .unwrap();
    all.push(e);
    all.extend(b.queued(T0 + 101_000, "general", None, 0).unwrap());
    all.extend(
        b.ended(T0 + 140_000, HangupParty::Caller, EndCause::default())
            .unwrap(),
    );
    let (mut b, e) = CdrBuilder::started(
        ids.clone(),
        T0 + 200_000,
        start("b1", "b", "13800138000", false),
    )
    .unwrap();
    all.push(e);
    all.extend(b.queued(T0 + 201_000, "other", None, 0).unwrap());
    all.extend(b.answered(T0 + 203_000, "B01").unwrap());
    all.extend(
        b.ended(T0 + 260_000, HangupParty::Agent, EndCause::default())
            .unwrap(),
    );
    all.extend(b.acw_ended(T0 + 261_000, "B01").unwrap());
    outbox.append(&rows(all)).unwrap();
    let rec = data.join("recordings").join(rec_rel);
    std::fs::create_dir_all(rec.parent().unwrap()).unwrap();
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(rec, bytes).unwrap();
}

struct Api {
    base: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Api {
    fn new(h: &Hotline) -> Api {
        Api {
            base: format!("http://{}:8080", h.net.ip(1)),
            rt: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        range: Option<&str>,
    ) -> Reply {
        self.rt.block_on(async {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut r = self.client.request(m, format!("{}{path}", self.base));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            if let Some(range) = range {
                r = r.header("range", range);
            }
            let resp = r.send().await.unwrap();
            Reply {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
                body: resp.bytes().await.unwrap().to_vec(),
            }
        })
    }

    fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, None)
    }

    fn login(&self, user: &str, password: &str) -> String {
        let r = self.send(
            "POST",
            "/api/v1/login",
            None,
            Some(&json!({"username": user, "password": password}).to_string()),
            None,
        );
        assert_eq!(
            r.status,
            200,
            "login {user}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["token"].as_str().unwrap().to_string()
    }
}

fn call_ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap().to_string())
        .collect()
}

fn hotline_with_records(net: Net) -> Hotline {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    store_calls(&data);
    let text = common::config(net, &data, USERS);
    Hotline::start_with(net, dir, &text)
}

#[test]
fn login_logout_and_every_records_endpoint_checks_role_and_tenant() {
    let h = hotline_with_records(Net(116));
    let api = Api::new(&h);

    // --- login / me / logout -------------------------------------------
    let bad = api.send(
        "POST",
        "/api/v1/login",
        None,
        Some(r#"{"username":"sup-a","password":"wrong-password"}"#),
        None,
    );
    assert_eq!((bad.status, bad.code().as_str()), (401, "unauthorized"));
    let unknown = api.send(
        "POST",
        "/api/v1/login",
        None,
        Some(r#"{"username":"nobody","password":"wrong-password"}"#),
        None,
    );
    assert_eq!(
        unknown.body, bad.body,
        "an unknown user looks like a wrong password"
    );
    let garbage = api.send("POST", "/api/v1/login", None, Some("{not json"), None);
    assert_eq!((garbage.status, garbage.code().as_str()), (400, "bad_json"));
    let sup_a = api.login("sup-a", "sup-a-password");
    let me = api.get("/api/v1/me", &sup_a).json();
    assert_eq!(me["user"]["tenant"], "a");
    assert_eq!(me["user"]["role"], "supervisor");
    assert_eq!(
        me["user"]["display_name"], "sup-a",
        "no display name given: the username"
    );
    let none = api.send("GET", "/api/v1/me", None, None, None);
    assert_eq!((none.status, none.code().as_str()), (401, "unauthorized"));
    let forged = api.get("/api/v1/me", "00ff");
    assert_eq!(forged.status, 401);
    let temp = api.login("sup-a", "sup-a-password");
    assert_eq!(
        api.send("POST", "/api/v1/logout", Some(&temp), None, None)
            .status,
        204
    );
    assert_eq!(
        api.get("/api/v1/me", &temp).status,
        401,
        "a logged-out token is dead"
    );

    let sup_b = api.login("sup-b", "sup-b-password");
    let agent_a = api.login("agent-a", "agent-a-password");
    let root = api.login("root", "root-password-1");
    let admin_a = api.login("admin-a", "admin-a-password");

    // --- /calls ---------------------------------------------------------
    assert_eq!(call_ids(&api.get("/api/v1/calls", &sup_a)), ["a2", "a1"]);
    assert_eq!(call_ids(&api.get("/api/v1/calls", &sup_b)), ["b1"]);
    assert_eq!(
        call_ids(&api.get("/api/v1/calls", &root)),
        ["b1", "a2", "a1"]
    );
    assert_eq!(call_ids(&api.get("/api/v1/calls?tenant=b", &root)), ["b1"]);
    assert_eq!(
        call_ids(&api.get("/api/v1/calls?missed=true", &sup_a)),
        ["a2"]
    );
    assert_eq!(
        call_ids(&api.get("/api/v1/calls?caller=13800138000", &sup_a)),
        ["a1"]
    );
    assert_eq!(
        call_ids(&api.get("/api/v1/calls?outcome=answered", &sup_b)),
        ["b1"]
    );
    assert_eq!(
        call_ids(&api.get("/api/v1/calls?recorded=true", &sup_a)),
        ["a1"]
    );
    assert_eq!(
        call_ids(&api.get("/api/v1/calls?from=2026-11-25", &sup_a)),
        Vec::<String>::new()
    );
    // An agent sees the calls they took, masked when confidential.
    let mine = api.get("/api/v1/calls", &agent_a);
    assert_eq!(call_ids(&mine), ["a1"]);
    assert_eq!(mine.json()["calls"][0]["caller"], "138****8000");
    let raw = api.get("/api/v1/calls?caller=13800138000", &sup_a);
    assert_eq!(raw.json()["calls"][0]["caller"], "13800138000");
    let csv = api.get("/api/v1/calls?format=csv", &sup_a);
    assert_eq!(csv.status, 200);
    let csv = String::from_utf8_lossy(&csv.body).to_string();
    assert!(
        csv.contains("138****8000") && !csv.contains("13800138000"),
        "{csv}"
    );
    // Refused: another tenant, another agent, bad input.
    let r = api.get("/api/v1/calls?tenant=b", &sup_a);
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = api.get("/api/v1/calls?agent=B01", &agent_a);
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    for bad in [
        "/api/v1/calls?from=yesterday",
        "/api/v1/calls?outcome=won",
        "/api/v1/calls?bogus=1",
        "/api/v1/calls?limit=-3",
        "/api/v1/calls?format=pdf",
    ] {
        let r = api.get(bad, &sup_a);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "bad_query"),
            "{bad}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    // --- /calls/{id} ----------------------------------------------------
    let story = api.get("/api/v1/calls/a1", &sup_a).json();
    let kinds: Vec<&str> = story["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "call.started",
            "queue.entered",
            "agent.answered",
            "recording.ready",
            "call.ended"
        ]
    );
    assert_eq!(story["record"]["agent_id"], "A01");
    assert_eq!(api.get("/api/v1/calls/a1", &agent_a).status, 200);
    for (who, token) in [
        ("other tenant", &sup_b),
        ("agent who did not take it", &agent_a),
    ] {
        let path = if who == "other tenant" {
            "/api/v1/calls/a1"
        } else {
            "/api/v1/calls/a2"
        };
        let r = api.get(path, token);
        assert_eq!((r.status, r.code().as_str()), (404, "not_found"), "{who}");
    }
    assert_eq!(api.get("/api/v1/calls/nope", &root).status, 404);

    // --- /reports ---------------------------------------------------------
    let rep = api.get("/api/v1/reports?by=group", &sup_a).json();
    assert_eq!(rep["report"]["total"]["offered"], 2, "{rep}");
    assert_eq!(rep["report"]["total"]["answered"], 1, "{rep}");
    let rep_b = api.get("/api/v1/reports?by=group", &sup_b).json();
    assert_eq!(
        rep_b["report"]["total"]["offered"], 1,
        "tenant b sees its own: {rep_b}"
    );
    let xlsx = api.get("/api/v1/reports?by=day&format=xlsx", &sup_a);
    assert_eq!(xlsx.status, 200);
    assert_eq!(&xlsx.body[..2], b"PK", "an XLSX (zip) file");
    let r = api.get("/api/v1/reports?by=week", &sup_a);
    assert_eq!((r.status, r.code().as_str()), (400, "bad_query"));
    let r = api.get("/api/v1/reports", &agent_a);
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = api.get("/api/v1/reports?tenant=a", &sup_b);
    assert_eq!(r.status, 403);

    // --- /recordings (range requests, audited) ----------------------------
    let whole = api.get("/api/v1/recordings/a/2026/11/24/a1", &sup_a);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len(), 1000);
    assert_eq!(whole.headers["accept-ranges"], "bytes");
    let part = api.send(
        "GET",
        "/api/v1/recordings/a/2026/11/24/a1",
        Some(&sup_a),
        None,
        Some("bytes=100-199"),
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.headers["content-range"], "bytes 100-199/1000");
    assert_eq!(part.body, whole.body[100..200]);
    let tail = api.send(
        "GET",
        "/api/v1/recordings/a/2026/11/24/a1",
        Some(&sup_a),
        None,
        Some("bytes=-10"),
    );
    assert_eq!(tail.body, whole.body[990..]);
    let past = api.send(
        "GET",
        "/api/v1/recordings/a/2026/11/24/a1",
        Some(&sup_a),
        None,
        Some("bytes=5000-"),
    );
    assert_eq!((past.status, past.code().as_str()), (416, "bad_range"));
    assert_eq!(
        api.get("/api/v1/recordings/a/2026/11/24/a1", &sup_b).status,
        404,
        "other tenant"
    );
    assert_eq!(
        api.get("/api/v1/recordings/a/2026/11/24/a1", &agent_a)
            .status,
        403,
        "agents"
    );
    assert_eq!(
        api.get("/api/v1/recordings/a/2026/11/24/none", &sup_a)
            .status,
        404
    );
    assert_eq!(
        api.get("/api/v1/recordings/a/..%2F..%2Fevents.db", &root)
            .status,
        404,
        "no escape"
    );
    assert_eq!(
        api.get("/api/v1/voicemails/a/2026/x.wav", &sup_a).status,
        404
    );

    // --- audit log -----------------------------------------------------------
    let audit = api.get("/api/v1/admin/audit", &sup_a).json();
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions
            .iter()
            .filter(|a| **a == "recording.download")
            .count()
            >= 3,
        "{audit}"
    );
    let audit_b = api.get("/api/v1/admin/audit", &sup_b).json();
    assert!(
        audit_b["audit"].as_array().unwrap().is_empty(),
        "tenant b sees none of a's audit: {audit_b}"
    );
    assert_eq!(api.get("/api/v1/admin/audit", &agent_a).status, 403);

    // --- admin: users, storage, dead letters -------------------------------
    let users = api.get("/api/v1/admin/users", &admin_a).json();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert!(
        names.contains(&"sup-a") && !names.contains(&"sup-b"),
        "{users}"
    );
    assert!(
        !String::from_utf8_lossy(&api.get("/api/v1/admin/users", &admin_a).body).contains("argon2"),
        "no hashes"
    );
    assert_eq!(api.get("/api/v1/admin/users", &sup_a).status, 403);
    let storage = api.get("/api/v1/admin/storage", &root).json();
    assert_eq!(
        storage["tenants"]["a"]["recordings"]["bytes"], 1000,
        "{storage}"
    );
    let storage_a = api.get("/api/v1/admin/storage", &admin_a).json();
    assert!(storage_a["tenants"].get("b").is_none(), "{storage_a}");

    // The webhook cannot connect and gives up at once: dead letters.
    let mut dead = Value::Null;
    for _ in 0..100 {
        dead = api
            .get("/api/v1/admin/dead-letters?sink=webhook:tickets", &root)
            .json();
        if dead["dead_letters"].as_array().map_or(0, Vec::len) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let letters = dead["dead_letters"].as_array().unwrap();
    assert!(letters.len() >= 3, "{dead}");
    assert!(
        letters[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("connect"),
        "{dead}"
    );
    let id = letters[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.get("/api/v1/admin/dead-letters?sink=webhook:tickets", &admin_a)
            .status,
        403,
        "tenant admins cannot"
    );
    assert_eq!(
        api.get("/api/v1/admin/dead-letters?sink=nope", &root)
            .status,
        404
    );
    assert_eq!(
        api.get("/api/v1/admin/dead-letters", &root).code(),
        "bad_query"
    );
    let r = api.send(
        "POST",
        "/api/v1/admin/dead-letters/replay",
        Some(&root),
        Some(&json!({"sink": "webhook:tickets", "id": id}).to_string()),
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["replayed"], 1);
    let r = api.send(
        "POST",
        "/api/v1/admin/dead-letters/replay",
        Some(&root),
        Some(r#"{"sink": "webhook:tickets"}"#),
        None,
    );
    assert_eq!(r.code(), "bad_request");
    let r = api.send(
        "POST",
        "/api/v1/admin/dead-letters/replay",
        Some(&sup_a),
        Some(r#"{"sink": "webhook:tickets", "all": true}"#),
        None,
    );
    assert_eq!(r.status, 403);
    let audit = api.get("/api/v1/admin/audit", &root).json();
    assert!(audit.to_string().contains("dead_letters.replay"), "{audit}");

    // --- registrations (admins; per tenant) ------------------------------------
    let regs = api.get("/api/v1/admin/registrations", &root).json();
    let ids: Vec<&str> = regs["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    assert!(ids.contains(&"1001"), "{regs}");
    assert!(
        regs["agents"][0]["contacts"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "nobody registered: {regs}"
    );
    let regs_a = api.get("/api/v1/admin/registrations", &admin_a).json();
    assert!(
        regs_a["agents"].as_array().unwrap().is_empty(),
        "tenant a has no agents: {regs_a}"
    );
    assert_eq!(api.get("/api/v1/admin/registrations", &sup_a).status, 403);

    // --- the rest -----------------------------------------------------------
    let doc = api
        .send("GET", "/api/v1/openapi.json", None, None, None)
        .json();
    for p in [
        "/api/v1/login",
        "/api/v1/calls",
        "/api/v1/reports",
        "/api/v1/admin/dead-letters/replay",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
    let r = api.get("/api/v1/nothing-here", &root);
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
}

#[test]
fn repeated_wrong_passwords_lock_the_user_for_a_while() {
    let h = hotline_with_records(Net(117));
    let api = Api::new(&h);
    let body = r#"{"username":"sup-a","password":"wrong-password"}"#;
    let mut last = 0;
    for _ in 0..6 {
        last = api
            .send("POST", "/api/v1/login", None, Some(body), None)
            .status;
    }
    assert_eq!(last, 429);
    let r = api.send(
        "POST",
        "/api/v1/login",
        None,
        Some(r#"{"username":"sup-a","password":"sup-a-password"}"#),
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "locked"),
        "even the right password waits"
    );
    assert!(r.headers.get("retry-after").is_some());
}
