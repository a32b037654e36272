//! Replay tests: a menu option moved, a new menu, silence and hang-ups,
//! unknown versions and paths the recorded version does not walk.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::ivr::testkit::{set_of, TestEnv};

const OLD: &str = r#"
name = "main"
dids = ["12345"]
entry = "welcome"

[nodes.welcome]
kind = "play"
prompts = ["hello"]
next = "menu"

[nodes.menu]
kind = "menu"
prompts = ["menu"]
options = { "1" = "consult", "2" = "complaint" }
fallback = "vm"

[nodes.consult]
kind = "queue"
group = "general"

[nodes.complaint]
kind = "queue"
group = "general"

[nodes.vm]
kind = "voicemail"
"#;

fn new_with(complaint: &str) -> Arc<FlowSet> {
    set_of(&[(
        "main",
        &OLD.replace(
            "[nodes.complaint]\nkind = \"queue\"\ngroup = \"general\"",
            complaint,
        ),
    )])
}

fn call(id: &str, version: &str, path: &[&str], vars: &[(&str, &str)]) -> RecordedCall {
    RecordedCall {
        call_id: id.into(),
        caller: "13900000000".into(),
        called: "12345".into(),
        tenant: "default".into(),
        started_at: Time::from_unix_secs(1_717_380_000),
        version: version.into(),
        path: path.iter().map(|s| s.to_string()).collect(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        caller_hung_up: false,
        hangup_reason: None,
    }
}

fn run(calls: &[RecordedCall], new: &Arc<FlowSet>) -> Report {
    let old = set_of(&[("main", OLD)]);
    let version = old.get("main").expect("main").version.clone();
    let sets = BTreeMap::from([(version, old)]);
    replay("main", &sets, new, calls, &TestEnv::default())
}

fn old_version() -> String {
    set_of(&[("main", OLD)])
        .get("main")
        .expect("main")
        .version
        .clone()
}

#[test]
fn a_moved_option_moves_the_calls_that_chose_it_and_no_others() {
    let v = old_version();
    let calls = [
        call(
            "c1",
            &v,
            &["welcome", "menu", "complaint"],
            &[("menu_menu", "2")],
        ),
        call(
            "c2",
            &v,
            &["welcome", "menu", "complaint"],
            &[("menu_menu", "2")],
        ),
        call(
            "c3",
            &v,
            &["welcome", "menu", "consult"],
            &[("menu_menu", "1")],
        ),
        call("c4", &v, &["welcome", "menu", "vm"], &[]),
    ];
    let new = new_with("[nodes.complaint]\nkind = \"queue\"\ngroup = \"water\"");
    let report = run(&calls, &new);
    assert_eq!(report.calls, 4);
    assert_eq!(report.unchanged, 2, "{}", report.to_text());
    assert_eq!(
        report.counts(),
        BTreeMap::from([(
            (
                "complaint".to_string(),
                None,
                "queue general".to_string(),
                "queue water".to_string()
            ),
            2
        )])
    );
    assert!(report.unreplayable.is_empty());
    assert!(
        report
            .to_text()
            .contains("complaint: 2 call(s) now go to queue water instead of queue general"),
        "{}",
        report.to_text()
    );
}

#[test]
fn the_key_is_inferred_from_the_path_when_the_variable_is_missing() {
    let v = old_version();
    // No `menu_menu`: the key is the one whose option the path took.
    let calls = [call("c1", &v, &["welcome", "menu", "complaint"], &[])];
    let new = set_of(&[(
        "main",
        &OLD.replace(
            "\"2\" = \"complaint\"",
            "\"2\" = \"vm\", \"3\" = \"complaint\"",
        ),
    )]);
    let report = run(&calls, &new);
    assert_eq!(
        report.counts(),
        BTreeMap::from([(
            (
                "menu".to_string(),
                Some("key 2".to_string()),
                "queue general".to_string(),
                "voicemail at vm".to_string()
            ),
            1
        )])
    );
}

#[test]
fn silent_callers_stay_silent_and_a_new_menu_cannot_be_guessed() {
    let v = old_version();
    let calls = [
        call("quiet", &v, &["welcome", "menu", "vm"], &[]),
        call(
            "c2",
            &v,
            &["welcome", "menu", "complaint"],
            &[("menu_menu", "2")],
        ),
    ];
    let new = new_with(
        "[nodes.complaint]\nkind = \"menu\"\nprompts = [\"which\"]\noptions = { \"1\" = \"consult\" }",
    );
    let report = run(&calls, &new);
    assert_eq!(report.unchanged, 1, "{}", report.to_text());
    assert_eq!(report.unreplayable.len(), 1);
    assert_eq!(
        report.unreplayable[0].reason,
        "the edited flow asks for input at complaint where the call gave none"
    );
    assert_eq!(report.unreplayable[0].examples, ["c2"]);
}

#[test]
fn unknown_versions_and_unwalked_paths_are_reported_not_guessed() {
    let v = old_version();
    let calls = [
        call("gone", "0123456789ab", &["welcome"], &[]),
        call("odd", &v, &["welcome", "elsewhere"], &[]),
    ];
    let report = run(&calls, &set_of(&[("main", OLD)]));
    assert_eq!(report.calls, 2);
    assert_eq!(report.unchanged, 0);
    let reasons: Vec<&str> = report
        .unreplayable
        .iter()
        .map(|u| u.reason.as_str())
        .collect();
    assert!(
        reasons.contains(&"version 0123456789ab is not in the flow history"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with(&format!("the recorded path is not walked by version {v}"))),
        "{reasons:?}"
    );
}

#[test]
fn a_caller_who_hung_up_in_the_menu_hangs_up_there_again() {
    let v = old_version();
    let mut c = call("gone", &v, &["welcome", "menu"], &[]);
    c.caller_hung_up = true;
    let new = new_with("[nodes.complaint]\nkind = \"queue\"\ngroup = \"water\"");
    let report = run(&[c], &new);
    assert_eq!(report.unchanged, 1, "{}", report.to_text());
}

#[test]
fn an_unchanged_flow_moves_nobody() {
    let v = old_version();
    let calls = [
        call(
            "c1",
            &v,
            &["welcome", "menu", "complaint"],
            &[("menu_menu", "2")],
        ),
        call(
            "c3",
            &v,
            &["welcome", "menu", "consult"],
            &[("menu_menu", "1")],
        ),
        call("c4", &v, &["welcome", "menu", "vm"], &[]),
    ];
    let report = run(&calls, &set_of(&[("main", OLD)]));
    assert_eq!(
        (report.calls, report.unchanged),
        (3, 3),
        "{}",
        report.to_text()
    );
}
