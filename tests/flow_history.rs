//! Flow changes you can review (issue 18 §4), driven from outside: a
//! running hotline keeps every flow version it accepts; calls go through
//! the menu; an edit that moves option 2 to another queue is replayed
//! against those calls before it goes live (`hotline flow replay`), then
//! goes live by the file; `hotline flow history` and `flow diff` show both
//! versions; the admin API lists, diffs and rolls back (audited, scoped to
//! the flow's tenant), and the rolled-back version is live again. The
//! calls are SIPp's (`carrier_info_key.xml`: the key as SIP INFO).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::api::{code, Api};
use common::flows::setup;
use common::{Hotline, Net};
use serde_json::Value;

const NET: Net = Net(74);

const V1: &str = r#"
name = "hist-line"
dids = ["12399"]
entry = "welcome"
[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
interruptible = true
next = "menu"
[nodes.menu]
kind = "menu"
prompts = ["ivr_12345_menu"]
timeout_secs = 3
retries = 1
fallback = "bye"
[nodes.menu.options]
"1" = "consult"
"2" = "complaint"
[nodes.consult]
kind = "queue"
group = "general"
[nodes.complaint]
kind = "queue"
group = "general"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

fn v2() -> String {
    V1.replace(
        "[nodes.complaint]\nkind = \"queue\"\ngroup = \"general\"",
        "[nodes.complaint]\nkind = \"queue\"\ngroup = \"water\"",
    )
}

fn extra(dir: &Path) -> String {
    format!(
        r#"
[[group]]
id = "general"
max_wait_secs = 2

[[group]]
id = "water"
max_wait_secs = 2

[[user]]
username = "other-admin"
role = "admin"
tenant = "other"
password = "other-admin-password"

[ivr]
flows_dir = "{flows}"
calendars_dir = "{cal}"
reload_check_secs = 1
"#,
        flows = dir.join("flows").display(),
        cal = dir.join("cal").display(),
    )
}

/// `hotline flow ARGS --config` of the running hotline: (success, stdout, stderr).
fn flow(h: &Hotline, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("flow")
        .args(args)
        .arg("--config")
        .arg(h.dir.path().join("hotline.toml"))
        .output()
        .expect("hotline flow");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The live version of `hist-line` on `/healthz`.
fn live_version(h: &Hotline) -> String {
    h.healthz()["ivr"]["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "hist-line")
        .and_then(|f| f["version"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn wait_live(h: &Hotline, version: &str) {
    h.wait_for(
        &format!("hist-line version {version} live"),
        Duration::from_secs(20),
        |hz| {
            hz["ivr"]["flows"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["name"] == "hist-line" && f["version"] == version)
        },
    );
}

/// A SIPp carrier call to 12399 pressing `key` (SIP INFO) 1.5 s after the
/// answer, during the interruptible welcome (type-ahead for the menu); the
/// queue has nobody signed in, so hotline hangs up (the scenario expects
/// its BYE).
fn call_pressing(h: &Hotline, key: &str) {
    common::Sipp::start(
        "carrier_info_key.xml",
        &NET.carrier(),
        &["-s", "12399", "-key", "key", key, "-m", "1", &NET.sip()],
    )
    .wait(Duration::from_secs(40))
    .assert_ok(h);
}

#[test]
fn flow_versions_are_kept_diffed_replayed_and_rolled_back() {
    let dir = setup(&[("line.toml", V1)]);
    let flow_file: PathBuf = dir.path().join("flows/line.toml");
    let edited: PathBuf = dir.path().join("line-edited.toml");
    let data = dir.path().join("var");
    let text = common::config(NET, &data, &extra(dir.path()));
    let h = Hotline::start_with(NET, dir, &text);
    let v1 = live_version(&h);
    assert_eq!(v1.len(), 12, "{}", h.healthz());

    // Three calls through the menu: two press 2 (complaint), one 1.
    for key in ["2", "2", "1"] {
        call_pressing(&h, key);
    }
    let api = Api::new(NET);
    let ops = h.ops_token();
    let calls = common::wait_until("three call records", Duration::from_secs(30), || {
        let (status, body) = api.get("/api/v1/calls?limit=10", &ops);
        (status == 200 && body["count"].as_u64() == Some(3)).then_some(body)
    });
    let paths: Vec<String> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["ivr_path"].to_string())
        .collect();
    assert_eq!(
        paths.iter().filter(|p| p.contains("\"complaint\"")).count(),
        2,
        "{calls}"
    );

    // The edit, replayed before it goes live.
    std::fs::write(&edited, v2()).expect("edited file");
    let (ok, report, err) = flow(
        &h,
        &["replay", edited.to_str().expect("path"), "--since", "1d"],
    );
    assert!(ok, "replay failed: {err}");
    println!("$ hotline flow replay line-edited.toml --since 1d\n{report}");
    assert!(report.contains("3 recorded call(s) replayed"), "{report}");
    assert!(
        report.contains(
            "1 call(s) end where they ended, 2 would now end elsewhere, 0 could not be replayed"
        ),
        "{report}"
    );
    assert!(
        report.contains("complaint: 2 call(s) now go to queue water instead of queue general"),
        "{report}"
    );
    let (ok, json, err) = flow(
        &h,
        &[
            "replay",
            edited.to_str().expect("path"),
            "--since",
            "1d",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let json: Value = serde_json::from_str(&json).expect("replay JSON");
    assert_eq!(json["moved"][0]["calls"], 2, "{json}");
    assert_eq!(json["moved"][0]["before"], "queue general");
    assert_eq!(json["moved"][0]["after"], "queue water");
    assert_eq!(json["unchanged"], 1);

    // Clear errors: a bad file, an unknown flow, no recorded calls.
    let bad = h.dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"hist-line\"\nentry = \"nowhere\"\n").expect("bad");
    let (ok, _, err) = flow(&h, &["replay", bad.to_str().expect("path")]);
    assert!(!ok && err.contains("bad.toml"), "{err}");
    let other = h.dir.path().join("other.toml");
    std::fs::write(
        &other,
        V1.replace("hist-line", "other-line")
            .replace("12399", "12398"),
    )
    .expect("other");
    let (ok, _, err) = flow(&h, &["replay", other.to_str().expect("path")]);
    assert!(
        !ok && err.contains("no flow \"other-line\" in the flow history"),
        "{err}"
    );
    let (ok, _, err) = flow(
        &h,
        &["replay", edited.to_str().expect("path"), "--since", "1s"],
    );
    assert!(!ok, "no calls in the last second expected");
    assert!(
        err.contains("no recorded call entered flow \"hist-line\""),
        "{err}"
    );

    // The edit goes live by the file.
    std::fs::write(&flow_file, v2()).expect("edit");
    h.wait_for("the edit live", Duration::from_secs(20), |hz| {
        hz["ivr"]["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["name"] == "hist-line" && f["version"] != v1.as_str())
    });
    let v2v = live_version(&h);

    let (ok, history, err) = flow(&h, &["history", "hist-line"]);
    assert!(ok, "{err}");
    println!("$ hotline flow history hist-line\n{history}");
    assert!(
        history.contains(&format!("flow \"hist-line\": 2 version(s), live {v2v}")),
        "{history}"
    );
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[2].contains(&v1) && lines[2].contains("file"),
        "{history}"
    );
    assert!(
        lines[3].contains(&v2v) && lines[3].ends_with("(live)"),
        "{history}"
    );

    let (ok, diff, err) = flow(&h, &["diff", "hist-line"]);
    assert!(ok, "{err}");
    println!("$ hotline flow diff hist-line\n{diff}");
    assert!(
        diff.starts_with(&format!("--- hist-line@{v1}\n+++ hist-line@{v2v}\n")),
        "{diff}"
    );
    assert!(
        diff.contains("\n-group = \"general\"\n+group = \"water\"\n"),
        "{diff}"
    );

    // The admin API: history and diff.
    let (status, body) = api.get("/api/v1/admin/flows/hist-line/history", &ops);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["live"], v2v.as_str());
    assert_eq!(body["versions"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(body["versions"][0]["version"], v1.as_str());
    assert_eq!(body["versions"][0]["saved_by"], "file");
    assert_eq!(body["versions"][1]["live"], true);
    let (status, body) = api.get(
        &format!("/api/v1/admin/flows/hist-line/diff?from={v2v}&to={v1}"),
        &ops,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["diff"]
            .as_str()
            .is_some_and(|d| d.contains("\n-group = \"water\"\n+group = \"general\"\n")),
        "{body}"
    );

    // Tenant-scoped: another tenant's admin does not see the flow.
    let other_admin = api.login("other-admin", "other-admin-password");
    let (status, body) = api.get("/api/v1/admin/flows/hist-line/history", &other_admin);
    assert_eq!((status, code(&body)), (404, "unknown_flow"), "{body}");
    let (status, body) = api.post(
        "/api/v1/admin/flows/hist-line/rollback",
        &other_admin,
        &format!(r#"{{"version":"{v1}"}}"#),
    );
    assert_eq!((status, code(&body)), (404, "unknown_flow"), "{body}");
    let (status, body) = api.get("/api/v1/admin/flows/nope/history", &ops);
    assert_eq!((status, code(&body)), (404, "unknown_flow"), "{body}");
    assert!(
        body["error"]["message_zh"]
            .as_str()
            .is_some_and(|m| m.contains("流程")),
        "{body}"
    );

    // Rollback through the API: audited, and the old version is live again.
    let (status, body) = api.post(
        "/api/v1/admin/flows/hist-line/rollback",
        &ops,
        &format!(r#"{{"version":"{}"}}"#, &v1[..6]),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["version"], v1.as_str());
    assert_eq!(body["from"], v2v.as_str());
    wait_live(&h, &v1);
    assert_eq!(std::fs::read_to_string(&flow_file).expect("file"), V1);
    let (status, audit) = api.get("/api/v1/admin/audit?limit=20", &ops);
    assert_eq!(status, 200, "{audit}");
    let line = audit["audit"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["action"] == "flow.rollback")
        .unwrap_or_else(|| panic!("no flow.rollback audit line: {audit}"));
    assert_eq!(line["target"], "hist-line", "{line}");
    assert_eq!(line["actor"], common::OPS_USER, "{line}");
    assert!(line.to_string().contains(&v1), "{line}");
    let (_, body) = api.get("/api/v1/admin/flows/hist-line/history", &ops);
    assert_eq!(body["live"], v1.as_str(), "{body}");
    assert_eq!(body["versions"][0]["live_by"], common::OPS_USER, "{body}");

    // Rolling back to what the file holds is refused; so is an unknown version.
    let (status, body) = api.post(
        "/api/v1/admin/flows/hist-line/rollback",
        &ops,
        &format!(r#"{{"version":"{v1}"}}"#),
    );
    assert_eq!((status, code(&body)), (409, "already_live"), "{body}");
    let (status, body) = api.post(
        "/api/v1/admin/flows/hist-line/rollback",
        &ops,
        r#"{"version":"ffffffffffff"}"#,
    );
    assert_eq!((status, code(&body)), (404, "unknown_version"), "{body}");

    // And through the CLI: back to the edit.
    let (ok, out, err) = flow(&h, &["rollback", "hist-line", &v2v]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("rolled back to version {v2v}")),
        "{out}"
    );
    wait_live(&h, &v2v);
    let (ok, _, err) = flow(&h, &["rollback", "hist-line", "zzzz"]);
    assert!(
        !ok && err.contains("has no stored version \"zzzz\""),
        "{err}"
    );
}
