//! Follow-up campaigns (回访, issue 18 §3) driven from outside: a real
//! `hotline serve`, an agent phone and a carrier trunk played by SIPp, the
//! campaign API. Asserts the dialling order (the emergency first), the
//! redial of a busy number after the spacing (by order and attempt
//! counts, never by timing), that an item outside its calling window is
//! not dialled, the items' states and each attempt's call record; and
//! that campaigns are tenant-scoped, role-checked and audited.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{http_send, Hotline, Net, Sipp};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("write");
}

/// Open every minute of every day.
const ALWAYS: &str = "utc_offset_minutes = 480\n\n[weekly]\nmon = [\"00:00-24:00\"]\ntue = [\"00:00-24:00\"]\nwed = [\"00:00-24:00\"]\nthu = [\"00:00-24:00\"]\nfri = [\"00:00-24:00\"]\nsat = [\"00:00-24:00\"]\nsun = [\"00:00-24:00\"]\n";
/// Never open.
const NEVER: &str = "utc_offset_minutes = 480\n\n[weekly]\n";

fn get(h: &Hotline, path: &str) -> (u16, Value) {
    let addr = format!("{}:8080", h.net.ip(1));
    let token = h.ops_token();
    let (code, body) = http_send(&addr, "GET", path, Some(&token), None).expect("answer");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(h: &Hotline, path: &str, json: &str) -> (u16, Value) {
    let (code, body) = h.post_as_ops(path, json).expect("answer");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The callback number of an attempt's record (`callback-N-1`).
fn callback_of(record: &Value) -> u64 {
    record
        .as_str()
        .and_then(|r| r.strip_prefix("callback-"))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a callback record: {record}"))
}

#[test]
fn follow_ups_dial_emergencies_first_redial_the_busy_and_keep_to_the_window() {
    let net = Net(78);
    let dir = tempfile::tempdir().expect("tempdir");
    let calendars = dir.path().join("calendars");
    write(&calendars.join("schedules/always.toml"), ALWAYS);
    write(&calendars.join("schedules/never.toml"), NEVER);
    let data = dir.path().join("var");
    let extra = format!(
        "[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n\n[[tenant]]\nid = \"default\"\noutbound_caller_id = \"12345\"\noutbound_trunk = \"carrier\"\n{}",
        data.join("no-flows").display(),
        calendars.display(),
        common::general_queue(5, 0, &[("2001", "A01")]),
    );
    let text = common::config(net, &data, &extra);
    let h = Hotline::start_with(net, dir, &text);
    common::register(&h, "2001", &net.agent(0));
    // Three calls reach the agent (each attempt rings the agent first) and
    // the carrier: busy once, then answered twice.
    let agent = Sipp::start("agent_answer_preview.xml", &net.agent(0), &["-m", "3"]);
    let trunk = Sipp::start("trunk_busy_then_answer.xml", &net.carrier(), &["-m", "3"]);
    std::thread::sleep(Duration::from_millis(500));

    // Refused: an unknown window, a bad number.
    let (code, body) = post(
        &h,
        "/api/v1/campaigns",
        r#"{"group":"general","schedule":"nope","items":[]}"#,
    );
    assert_eq!(
        (code, &body["error"]["code"]),
        (400, &Value::from("unknown_schedule")),
        "{body}"
    );
    assert!(body["error"]["message_zh"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let (code, body) = post(
        &h,
        "/api/v1/campaigns",
        r#"{"group":"general","schedule":"always","items":[{"number":"13x","ticket_id":"T0"}]}"#,
    );
    assert_eq!(
        (code, &body["error"]["code"]),
        (400, &Value::from("bad_number")),
        "{body}"
    );

    // Outside its window: never dialled.
    let (code, closed) = post(
        &h,
        "/api/v1/campaigns",
        r#"{"group":"general","schedule":"never","items":[{"number":"13800000009","ticket_id":"T9"}]}"#,
    );
    assert_eq!(code, 201, "{closed}");
    let closed_id = closed["id"].as_str().expect("id").to_string();

    // The emergency is listed last but dialled first; one at a time.
    let (code, open) = post(
        &h,
        "/api/v1/campaigns",
        r#"{"group":"general","schedule":"always","concurrency":1,
            "redial":{"attempts":3,"spacing_secs":2},
            "items":[{"number":"13800000002","ticket_id":"T-ORDINARY"},
                     {"number":"13800000001","ticket_id":"T-URGENT","emergency":true}]}"#,
    );
    assert_eq!(code, 201, "{open}");
    assert_eq!(open["counts"]["waiting"], 2, "{open}");
    let open_id = open["id"].as_str().expect("id").to_string();

    let path = format!("/api/v1/campaigns/{open_id}");
    let done = common::wait_until("both follow-ups answered", T, || {
        let (code, v) = get(&h, &path);
        (code == 200 && v["counts"]["answered"] == 2).then_some(v)
    });
    agent.wait(T).assert_ok(&h);
    trunk.wait(T).assert_ok(&h);

    let item = |ticket: &str| -> Value {
        done["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["ticket_id"] == ticket).cloned())
            .unwrap_or_else(|| panic!("{ticket} in {done}"))
    };
    let (urgent, ordinary) = (item("T-URGENT"), item("T-ORDINARY"));
    assert_eq!(urgent["state"], "answered", "{done}");
    assert_eq!(
        urgent["attempts"], 2,
        "busy, then answered on the redial: {done}"
    );
    assert_eq!(urgent["outcomes"][0]["answered"], false, "{done}");
    assert_eq!(urgent["outcomes"][1]["answered"], true, "{done}");
    assert_eq!(ordinary["state"], "answered", "{done}");
    assert_eq!(ordinary["attempts"], 1, "{done}");
    assert_eq!(done["active"], false, "{done}");
    // The order of the dialling: the emergency, then the ordinary ticket
    // while the emergency waits out its spacing, then the redial.
    let first = callback_of(&urgent["outcomes"][0]["record"]);
    let second = callback_of(&ordinary["outcomes"][0]["record"]);
    let third = callback_of(&urgent["outcomes"][1]["record"]);
    assert!(first < second && second < third, "{done}");
    // Every attempt the agent took is a call record of its own.
    for record in [
        &urgent["outcomes"][0]["record"],
        &ordinary["outcomes"][0]["record"],
        &urgent["outcomes"][1]["record"],
    ] {
        let id = record.as_str().expect("record id");
        let v = common::wait_until("the attempt's record", T, || {
            let (code, v) = get(&h, &format!("/api/v1/calls/{id}"));
            (code == 200).then_some(v)
        });
        assert!(v.to_string().contains("1380000000"), "{v}");
    }

    // The closed window's item was never dialled; cancelling ends it.
    let (code, still) = get(&h, &format!("/api/v1/campaigns/{closed_id}"));
    assert_eq!(code, 200, "{still}");
    assert_eq!(still["items"][0]["state"], "waiting", "{still}");
    assert_eq!(still["items"][0]["attempts"], 0, "{still}");
    let (code, cancelled) = post(&h, &format!("/api/v1/campaigns/{closed_id}/cancel"), "{}");
    assert_eq!(code, 200, "{cancelled}");
    assert_eq!(cancelled["items"][0]["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["active"], false, "{cancelled}");
    let (code, body) = post(
        &h,
        &format!("/api/v1/campaigns/{closed_id}/items"),
        r#"{"items":[{"number":"13800000008","ticket_id":"T8"}]}"#,
    );
    assert_eq!(
        (code, &body["error"]["code"]),
        (409, &Value::from("campaign_cancelled")),
        "{body}"
    );
    let (code, body) = get(&h, "/api/v1/campaigns/fu-nope");
    assert_eq!(
        (code, &body["error"]["code"]),
        (404, &Value::from("unknown_campaign")),
        "{body}"
    );
    h.wait_for("the switch to be idle", T, |v| {
        v["media"]["rtp_port_pairs_in_use"] == 0
    });
}

/// Campaigns are a supervisor's tool of their own centre: an agent is
/// refused, another centre's group and campaign answer as unknown ones,
/// and each change is in the centre's own audit log.
#[test]
fn campaigns_are_tenant_scoped_role_checked_and_audited() {
    use common::api::{code, Api};
    let net = Net(79);
    let dir = tempfile::tempdir().expect("tempdir");
    let calendars = dir.path().join("calendars");
    write(&calendars.join("schedules/never.toml"), NEVER);
    let data = dir.path().join("var");
    let extra = format!(
        r#"[ivr]
flows_dir = "{}"
calendars_dir = "{}"

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
skills = {{ general = 5 }}

[[user]]
username = "agent-a"
role = "agent"
agent_id = "A01"
tenant = "a"
password = "agent-a-password"
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
"#,
        data.join("no-flows").display(),
        calendars.display(),
    );
    let text = common::config(net, &data, &extra);
    let _h = Hotline::start_with(net, dir, &text);
    let api = Api::new(net);
    let agent_a = api.login("agent-a", "agent-a-password");
    let sup_a = api.login("sup-a", "sup-a-password");
    let sup_b = api.login("sup-b", "sup-b-password");
    let body = r#"{"group":"general","schedule":"never","items":[{"number":"13800138000","ticket_id":"T1"}]}"#;

    let (s, v) = api.post("/api/v1/campaigns", &agent_a, body);
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = api.post("/api/v1/campaigns", &sup_b, body);
    assert_eq!((s, code(&v)), (404, "unknown_group"), "{v}");
    let (s, v) = api.post(
        "/api/v1/campaigns",
        &sup_a,
        r#"{"group":"general","schedule":"never","redial":{"attempts":0,"spacing_secs":5},"items":[]}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_redial"), "{v}");
    let (s, v) = api.post("/api/v1/campaigns", &sup_a, body);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tenant"], "a", "{v}");
    let id = v["id"].as_str().expect("id").to_string();

    let path = format!("/api/v1/campaigns/{id}");
    let (s, v) = api.get(&path, &sup_b);
    assert_eq!((s, code(&v)), (404, "unknown_campaign"), "{v}");
    let (s, v) = api.post(&format!("{path}/cancel"), &sup_b, "{}");
    assert_eq!((s, code(&v)), (404, "unknown_campaign"), "{v}");
    let (s, v) = api.post(
        &format!("{path}/items"),
        &sup_b,
        r#"{"items":[{"number":"13800138001","ticket_id":"T2"}]}"#,
    );
    assert_eq!((s, code(&v)), (404, "unknown_campaign"), "{v}");
    let (s, v) = api.get(&path, &agent_a);
    assert_eq!((s, code(&v)), (403, "forbidden"), "{v}");

    let (s, v) = api.post(
        &format!("{path}/items"),
        &sup_a,
        r#"{"items":[{"number":"13800138001","ticket_id":"T2","emergency":true}]}"#,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["counts"]["waiting"], 2, "{v}");
    let (s, v) = api.post(&format!("{path}/cancel"), &sup_a, "{}");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["counts"]["cancelled"], 2, "{v}");

    let (_, audit) = api.get("/api/v1/admin/audit", &sup_a);
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for action in ["campaign.create", "campaign.add_items", "campaign.cancel"] {
        assert!(actions.contains(&action), "{action} audited: {audit}");
    }
    let (_, audit_b) = api.get("/api/v1/admin/audit", &sup_b);
    assert!(
        !audit_b.to_string().contains("campaign."),
        "another centre's audit log does not show them: {audit_b}"
    );
}

/// An agent dials a feature code from `ip` (authenticated by digest).
fn feature_code(h: &Hotline, user: &str, ip: &str, code: &str) {
    let pass = format!("pass{user}");
    let sip = h.net.sip();
    Sipp::start(
        "agent_feature_code.xml",
        ip,
        &[
            "-s", code, "-key", "agent", user, "-au", user, "-ap", &pass, "-m", "1", &sip,
        ],
    )
    .wait(T)
    .assert_ok(h);
}

/// A restart (kill -9) neither loses nor redials a follow-up: the item
/// handed to the ACD (its one agent on a break) is still `dialling` with the
/// same callback afterwards, the ACD holds that one callback (also when it
/// had not kept it: the campaign hands it over again), and once the agent
/// is back it is dialled once and answered. (Embedded store: the test
/// removes the ACD's row from hotline.db.)
#[test]
fn a_follow_up_under_way_survives_a_kill9_and_is_dialled_once() {
    let net = Net(80);
    let dir = tempfile::tempdir().expect("tempdir");
    let calendars = dir.path().join("calendars");
    write(&calendars.join("schedules/always.toml"), ALWAYS);
    let data = dir.path().join("var");
    let extra = format!(
        "[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n\n[[tenant]]\nid = \"default\"\noutbound_caller_id = \"12345\"\noutbound_trunk = \"carrier\"\n{}",
        data.join("no-flows").display(),
        calendars.display(),
        common::general_queue(5, 0, &[("2001", "A01")]),
    );
    let text = common::config(net, &data, &extra);
    let mut h = Hotline::start_with(net, dir, &text);
    // The only agent is signed in but on a break (*14).
    common::register(&h, "2001", &net.agent(0));
    feature_code(&h, "2001", &net.ip(40), "*14");
    let (code, v) = post(
        &h,
        "/api/v1/campaigns",
        r#"{"group":"general","schedule":"always","redial":{"attempts":2,"spacing_secs":1},
            "items":[{"number":"13800000003","ticket_id":"T-KEPT"}]}"#,
    );
    assert_eq!(code, 201, "{v}");
    let path = format!("/api/v1/campaigns/{}", v["id"].as_str().expect("id"));
    let before = common::wait_until("the item handed to the ACD", T, || {
        let (_, v) = get(&h, &path);
        (v["items"][0]["state"] == "dialling").then_some(v)
    });
    let record = before["items"][0]["dialling_record"].clone();
    assert!(record.is_string(), "{before}");
    // The ACD has kept its callback (its figures answer once kept).
    common::wait_until("the ACD to hold the callback", T, || {
        let stats: Value = serde_json::from_str(&h.acd_stats()?).ok()?;
        (stats["stats"]["groups"][0]["callbacks_pending"] == 1).then_some(())
    });

    // Twice: as kept; then as if the crash had come before the ACD kept
    // its callback (its row gone): handed to the ACD again, once.
    for lose_the_acd_s_row in [false, true] {
        h.kill9();
        let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
        drop(h);
        if lose_the_acd_s_row {
            rusqlite::Connection::open(data.join("hotline.db"))
                .expect("hotline.db")
                .execute("DELETE FROM acd_callback", [])
                .map(|rows| assert_eq!(rows, 1, "the ACD's callback row"))
                .expect("delete");
        }
        h = Hotline::start_with(net, dir, &text);
        let (code, after) = get(&h, &path);
        assert_eq!(code, 200, "{after}");
        assert_eq!(after["items"][0]["state"], "dialling", "{after}");
        assert_eq!(after["items"][0]["attempts"], 0, "{after}");
        assert_eq!(
            after["items"][0]["dialling_record"], record,
            "not released again: {after}"
        );
        let stats: Value = serde_json::from_str(&h.acd_stats().expect("stats")).expect("JSON");
        assert_eq!(
            stats["stats"]["groups"][0]["callbacks_pending"], 1,
            "one callback, not two nor none: {stats}"
        );
    }

    let agent = Sipp::start("agent_answer_then_bye.xml", &net.agent(0), &["-m", "1"]);
    let citizen = Sipp::start("agent_answer.xml", &net.carrier(), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    // Back from the break (*13): the follow-up rings the agent.
    feature_code(&h, "2001", &net.ip(40), "*13");
    agent.wait(T).assert_ok(&h);
    citizen.wait(T).assert_ok(&h);
    let done = common::wait_until("the follow-up answered", T, || {
        let (_, v) = get(&h, &path);
        (v["items"][0]["state"] == "answered").then_some(v)
    });
    assert_eq!(done["items"][0]["attempts"], 1, "{done}");
    assert_eq!(done["items"][0]["outcomes"][0]["record"], record, "{done}");
}
