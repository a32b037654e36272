//! Agents and skill groups changed while hotline runs (CTI issue §6
//! "Admin"): through the API, by reloading `hotline.toml` (API and SIGHUP),
//! against a real hotline, real phones (`hotline phone`) and a real caller
//! (`hotline dial`). A new agent's phone registers with the password given
//! to the API and answers a queued call after its skills change; an agent
//! who is signed in and a group a number routes to cannot be deleted;
//! deleting an agent drops its phone's registration; deletions and API
//! edits survive a restart and win over the file's seeds; wrong roles,
//! other tenants and bad bodies are refused.

mod common;

use std::time::Duration;

use common::api::{code, Api};
use common::{Hotline, Net};
use serde_json::Value;

const SETUP: &str = r#"
[[tenant]]
id = "a"
[[tenant]]
id = "b"

[[group]]
id = "general"
tenant = "a"
acw_secs = 1

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
tenant = "a"
skills = { general = 5 }

[[agent]]
user = "2009"
password = "pass2009"
job_number = "A09"
tenant = "a"

[[did]]
number = "12399"
tenant = "a"
queue = "general"

[[user]]
username = "root"
role = "admin"
tenant = "*"
password = "root-password"

[[user]]
username = "admin-a"
role = "admin"
tenant = "a"
password = "admin-a-password"

[[user]]
username = "admin-b"
role = "admin"
tenant = "b"
password = "admin-b-password"

[[user]]
username = "sup-a"
role = "supervisor"
tenant = "a"
password = "sup-a-password"
"#;

fn agent_ids(v: &Value) -> Vec<String> {
    v["agents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["agent_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn agents_and_groups_change_by_api_while_hotline_runs() {
    let net = Net(130);
    let mut h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let admin = api.login("admin-a", "admin-a-password");
    let admin_b = api.login("admin-b", "admin-b-password");
    let sup = api.login("sup-a", "sup-a-password");

    // Reading: supervisors see their tenant's agents, never secrets.
    let (s, v) = api.get("/api/v1/admin/agents", &sup);
    assert_eq!(s, 200, "{v}");
    assert_eq!(agent_ids(&v), ["A01", "A09"]);
    assert_eq!(v["agents"][0]["origin"], "config", "{v}");
    assert!(v["agents"][0].get("password").is_none(), "{v}");
    assert_eq!(
        agent_ids(&api.get("/api/v1/admin/agents", &admin_b).1),
        Vec::<String>::new()
    );
    assert_eq!(api.get("/api/v1/admin/agents/A01", &admin_b).0, 404);

    // A new group and a new agent in it.
    let (s, v) = api.put(
        "/api/v1/admin/groups/social",
        &admin,
        r#"{"name":"社保","acw_secs":1,"ring_timeout_secs":10}"#,
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tenant"], "a", "the admin's tenant by default: {v}");
    assert_eq!(v["acd"]["groups_added"][0], "social", "{v}");
    let new_agent = r#"{"user":"2002","password":"pass2002","name":"王芳","skills":{"social":5}}"#;
    // Wrong role, other tenant, bad bodies first.
    assert_eq!(api.put("/api/v1/admin/agents/A02", &sup, new_agent).0, 403);
    let (s, v) = api.put(
        "/api/v1/admin/agents/A02",
        &admin_b,
        r#"{"user":"2002","password":"pass2002","tenant":"a"}"#,
    );
    assert_eq!(s, 403, "another tenant: {v}");
    let (s, v) = api.put("/api/v1/admin/agents/A02", &admin, "{not json");
    assert_eq!((s, code(&v)), (400, "bad_json"), "{v}");
    let (s, v) = api.put(
        "/api/v1/admin/agents/A02",
        &admin,
        r#"{"user":"2002","password":"pass2002","colour":"red"}"#,
    );
    assert_eq!((s, code(&v)), (400, "bad_request"), "unknown field: {v}");
    let (s, v) = api.put("/api/v1/admin/agents/A02", &admin, r#"{"user":"2002"}"#);
    assert_eq!((s, code(&v)), (400, "bad_request"), "no credentials: {v}");
    let (s, v) = api.put(
        "/api/v1/admin/agents/A02",
        &admin,
        r#"{"user":"2002","password":"pass2002","skills":{"nowhere":5}}"#,
    );
    assert_eq!((s, code(&v)), (400, "invalid"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nowhere"),
        "{v}"
    );
    let (s, v) = api.put(
        "/api/v1/admin/agents/A02",
        &admin,
        r#"{"user":"2001","password":"pass2001"}"#,
    );
    assert_eq!((s, code(&v)), (409, "taken"), "2001 is A01's phone: {v}");
    let (s, v) = api.put("/api/v1/admin/agents/A02", &admin, new_agent);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["credentials"], "ha1", "stored hashed: {v}");
    assert_eq!(v["acd"]["agents_added"][0], "A02", "{v}");

    // The new agent's phone registers with that password, signs in by API,
    // and gets the general queue's call once the skill is added.
    let mut phone = common::start_phone(
        &h,
        0,
        "2002",
        &["--answer-after", "0.3", "--tone", "300", "--calls", "2"],
    );
    let (s, v) = api.post(
        "/api/v1/agent/state",
        &admin,
        r#"{"agent_id":"A02","state":"logged_in"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.put(
        "/api/v1/admin/agents/A02",
        &admin,
        r#"{"user":"2002","name":"王芳","skills":{"social":5,"general":3}}"#,
    );
    assert_eq!(s, 200, "replaced, credentials kept: {v}");
    assert_eq!(v["acd"]["agents_changed"][0], "A02", "{v}");
    let caller = common::dial(net, "12399", &["--tone", "1200", "--hangup-after", "2"])
        .output()
        .unwrap();
    let report = common::report(&caller);
    assert_eq!(report["status"], 200, "{report}\n{}", h.tail_log());

    // A signed-in agent and a group a number queues into stay.
    let (s, v) = api.delete("/api/v1/admin/agents/A02", &admin);
    assert_eq!((s, code(&v)), (409, "in_use"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("A02"),
        "{v}"
    );
    let (s, v) = api.delete("/api/v1/admin/groups/general", &admin);
    assert_eq!((s, code(&v)), (400, "invalid"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("did"),
        "{v}"
    );
    assert_eq!(api.delete("/api/v1/admin/groups/general", &admin_b).0, 404);

    // Signed out, the agent goes, and so does the phone's registration.
    h.wait_for(
        "A02's after-call work to end",
        Duration::from_secs(10),
        |_| api.board_state(&sup, "A02") == "idle",
    );
    let (s, v) = api.post(
        "/api/v1/agent/state",
        &admin,
        r#"{"agent_id":"A02","state":"logged_out"}"#,
    );
    assert_eq!(s, 200, "{v}");
    let before = h.counter("/registrations");
    assert_eq!(api.delete("/api/v1/admin/agents/A02", &admin).0, 204);
    assert_eq!(h.counter("/registrations"), before - 1);
    assert_eq!(api.get("/api/v1/admin/agents/A02", &admin).0, 404);
    phone.kill().ok();
    phone.wait().ok();
    // A seeded agent deleted by API, a seeded group edited by API.
    assert_eq!(api.delete("/api/v1/admin/agents/A09", &admin).0, 204);
    let (s, v) = api.put("/api/v1/admin/groups/general", &admin, r#"{"acw_secs":7}"#);
    assert_eq!(s, 200, "{v}");
    let (_, log) = api.get("/api/v1/admin/audit", &api.login("root", "root-password"));
    let actions: Vec<&str> = log["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "group.create",
        "agent.create",
        "agent.update",
        "agent.delete",
        "group.update",
    ] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }

    // After a restart: the API's edits win over the same file's seeds.
    h.kill9();
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let text = std::fs::read_to_string(dir.path().join("hotline.toml")).unwrap();
    let h = Hotline::start_with(net, dir, &text);
    let admin = api.login("admin-a", "admin-a-password");
    let (_, v) = api.get("/api/v1/admin/agents", &admin);
    assert_eq!(
        agent_ids(&v),
        ["A01"],
        "A09 stays deleted: {v}\n{}",
        h.tail_log()
    );
    let (_, v) = api.get("/api/v1/admin/groups", &admin);
    let general = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "general")
        .cloned()
        .unwrap();
    assert_eq!(general["acw_secs"], 7, "{v}");
    assert_eq!(general["origin"], "api", "{v}");
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == "social"),
        "{v}"
    );
}

#[test]
fn reloading_the_file_applies_agents_and_groups_and_names_what_needs_a_restart() {
    let net = Net(131);
    let h = Hotline::start(net, SETUP);
    let api = Api::new(net);
    let root = api.login("root", "root-password");
    let admin = api.login("admin-a", "admin-a-password");
    let path = h.dir.path().join("hotline.toml");
    let text = std::fs::read_to_string(&path).unwrap();

    // Tenant admins may not reload the shared file.
    assert_eq!(api.post("/api/v1/admin/reload", &admin, "").0, 403);

    // A new agent and a changed call timer in the file.
    let edited = text.replace("ring_timeout_secs = 8", "ring_timeout_secs = 9")
        + "\n[[agent]]\nuser = \"2003\"\npassword = \"pass2003\"\njob_number = \"A03\"\ntenant = \"a\"\nskills = { general = 2 }\n";
    std::fs::write(&path, &edited).unwrap();
    let (s, v) = api.post("/api/v1/admin/reload", &root, "");
    assert_eq!(s, 200, "{v}\n{}", h.tail_log());
    assert_eq!(v["roster"]["agents_added"][0], "A03", "{v}");
    assert_eq!(v["restart_needed"], serde_json::json!(["calls"]), "{v}");
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .contains("added from the config file"),
        "{v}"
    );
    // The new agent's phone registers at once.
    let mut phone = common::start_phone(&h, 0, "2003", &[]);
    phone.kill().ok();
    phone.wait().ok();

    // An invalid file changes nothing.
    std::fs::write(&path, edited.replace("general = 2", "nowhere = 2")).unwrap();
    let (s, v) = api.post("/api/v1/admin/reload", &root, "");
    assert_eq!((s, code(&v)), (409, "invalid_config"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nowhere"),
        "{v}"
    );
    assert_eq!(api.get("/api/v1/admin/agents/A03", &admin).0, 200);

    // SIGHUP reloads too: the agent leaves the file and goes.
    std::fs::write(&path, &text).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &h.pid().to_string()])
        .status()
        .unwrap();
    // The roster changes before the reload's own log line is written.
    h.wait_for("the reload by SIGHUP", Duration::from_secs(10), |_| {
        api.get("/api/v1/admin/agents/A03", &admin).0 == 404
            && h.log().contains("configuration reloaded")
    });
    assert!(
        h.log().contains("configuration reloaded") && h.log().contains("restart_needed=[]"),
        "back to the file it started with: {}",
        h.tail_log()
    );
}
