//! Parse and validation tests: exact messages, lines and "all at once".

use super::*;
use crate::ivr::testkit::{flow, parse_errors, sample_set, AllCatalog, PickyCatalog, MAIN, SURVEY};

fn messages(flows: &[Flow]) -> Vec<String> {
    validate(flows, &PickyCatalog)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn sample_flows_are_valid_and_versioned() {
    let set = sample_set();
    let main = set.get("12345").unwrap();
    assert_eq!(main.version.len(), 12);
    assert!(main.version.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(main.nodes["welcome"].line, 8);
    assert_eq!(main.path, std::path::Path::new("ivr-flows/12345.toml"));
    assert_eq!(set.for_did("057112345").unwrap().name, "12345");
    let other = flow("12345", &format!("{MAIN}\n# changed\n"));
    assert_ne!(other.version, main.version);
}

#[test]
fn structural_errors_are_all_reported_with_lines() {
    let text = r#"name = "x"
entry = "a"
colour = "red"

[nodes.a]
kind = "play"
prompts = ["hello"]
interuptible = true

[nodes.b]
kind = "dance"

[nodes.m]
kind = "menu"
prompts = ["m"]
timeout_secs = 0
[nodes.m.options]
"1" = "a"
"12" = "b"

[nodes.c]
kind = "collect"
prompts = ["c"]
var = "id"
min_digits = 9
max_digits = 4
pattern = "([0-9]"

[nodes.s]
kind = "switch"
default = "a"
[[nodes.s.case]]
time = "08:00-08:00"
next = "a"
[[nodes.s.case]]
var = "x"
next = "a"

[nodes.q]
kind = "queue"
priority = 300
"#;
    assert_eq!(
        parse_errors("x", text),
        [
            r#"ivr-flows/x.toml:3: unknown key "colour" (expected one of: description, dids, entry, name, nodes, tenant)"#,
            r#"ivr-flows/x.toml:8: node "a": unknown key "interuptible" (expected one of: interruptible, kind, next, prompts)"#,
            r#"ivr-flows/x.toml:11: node "b": unknown node kind "dance" (expected one of: play, blacklist, area, hours, menu, collect, switch, set, queue, transfer, voicemail, survey, subflow, hangup, http, say)"#,
            r#"ivr-flows/x.toml:16: node "m": "timeout_secs" = 0 is out of range (1..=300)"#,
            r#"ivr-flows/x.toml:19: node "m": option "12" is not one of the keys 0-9, * or #"#,
            r#"ivr-flows/x.toml:25: node "c": min_digits = 9 is greater than max_digits = 4"#,
            r#"ivr-flows/x.toml:27: node "c": pattern "([0-9]" is not a valid regular expression: unclosed group"#,
            r#"ivr-flows/x.toml:33: node "s": time "08:00-08:00" is an empty range (start equals end)"#,
            r#"ivr-flows/x.toml:35: node "s": case 2 needs exactly one condition (var + equals, var + prefix, caller_prefix, called, time or weekdays), found var"#,
            r#"ivr-flows/x.toml:39: node "q": missing required key "group""#,
            r#"ivr-flows/x.toml:41: node "q": "priority" = 300 is out of range (0..=255)"#,
        ]
    );
}

#[test]
fn syntax_error_names_the_line() {
    let errors = parse_errors(
        "s",
        "name = \"x\"\nentry = \"a\"\n[nodes.a]\nkind = \"play\n",
    );
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("ivr-flows/s.toml:4: TOML syntax error: "),
        "{}",
        errors[0]
    );
}

#[test]
fn missing_top_level_keys() {
    assert_eq!(
        parse_errors("e", "description = \"d\"\n"),
        [
            r#"ivr-flows/e.toml: missing required key "name""#,
            r#"ivr-flows/e.toml: missing required key "entry""#,
            r#"ivr-flows/e.toml: missing required key "nodes""#,
        ]
    );
}

#[test]
fn more_value_checks() {
    let text = r#"name = "v"
dids = ["12a"]
entry = "t"
[nodes.t]
kind = "transfer"
agent = "1"
group = "g"
[nodes.t2]
kind = "transfer"
agent = "1"
trunk = "x"
[nodes.set]
kind = "set"
vars = { caller = "x", ok = "{nope}" }
[nodes.sv]
kind = "survey"
[[nodes.sv.question]]
prompt = "a"
keys = { "1" = 500 }
[[nodes.sv.question]]
dimension = "attitude"
prompt = "b"
keys = { "x" = 1 }
[[nodes.sv.question]]
prompt = "c"
keys = { "1" = 1 }
[[nodes.sv.question]]
prompt = "d"
keys = { "1" = 1 }
[nodes."a.b"]
kind = "hangup"
[nodes.w]
kind = "switch"
default = "t"
[[nodes.w.case]]
weekdays = ["mon", "funday"]
next = "t"
[nodes.p]
kind = "play"
prompts = ["../etc/passwd"]
"#;
    assert_eq!(
        parse_errors("v", text),
        [
            r#"ivr-flows/v.toml:2: DID "12a" must be digits, optionally after a +"#,
            r#"ivr-flows/v.toml:4: node "t": transfer needs exactly one of "number", "agent" or "group", found agent, group"#,
            r#"ivr-flows/v.toml:11: node "t2": "trunk" only applies to a transfer to a "number""#,
            r#"ivr-flows/v.toml:14: node "set": variable "caller" is read-only"#,
            r#"ivr-flows/v.toml:14: node "set": value "{nope}" has a bad placeholder (use {caller}, {called} or {var:NAME})"#,
            r#"ivr-flows/v.toml:19: node "sv": "keys.1" = 500 is out of range (0..=100)"#,
            r#"ivr-flows/v.toml:21: node "sv": dimension "attitude" is asked twice"#,
            r#"ivr-flows/v.toml:23: node "sv": survey key "x" is not one of the keys 0-9, * or #"#,
            r#"ivr-flows/v.toml:27: node "sv": question 4 needs a "dimension" (only the first three default to attitude, efficiency, resolution)"#,
            r#"ivr-flows/v.toml:30: node "a.b": node name "a.b" may only contain A-Z, a-z, 0-9, _ and -"#,
            r#"ivr-flows/v.toml:36: node "w": weekday "funday" is not one of mon, tue, wed, thu, fri, sat, sun"#,
            r#"ivr-flows/v.toml:40: node "p": prompt name "../etc/passwd" may only contain A-Z, a-z, 0-9, _ and -"#,
        ]
    );
}

const BROKEN: &str = r#"name = "main"
dids = ["12345", "12345"]
entry = "welcome"

[nodes.welcome]
kind = "play"
prompts = ["hello", "missing_hello"]
next = "menu"

[nodes.menu]
kind = "menu"
prompts = ["menu"]
fallback = "nowhere"
[nodes.menu.options]
"1" = "loop_a"
"7" = "complain"
"2" = "hours"
"3" = "sub"
"4" = "police"
"5" = "q"

[nodes.loop_a]
kind = "set"
vars = { x = "1" }
next = "loop_b"

[nodes.loop_b]
kind = "switch"
default = "loop_a"
[[nodes.loop_b.case]]
caller_prefix = "1"
next = "menu"

[nodes.hours]
kind = "hours"
schedule = "missing_cal"
open = "menu"
closed = "menu"

[nodes.sub]
kind = "subflow"
flow = "child"
next = "menu"

[nodes.police]
kind = "transfer"
number = "110"
trunk = "missing_trunk"
on_fail = "gone"

[nodes.q]
kind = "queue"
group = "missing_group"
on_timeout = "x"

[nodes.orphan]
kind = "hangup"

[nodes.s2]
kind = "subflow"
flow = "nope"
"#;

const CHILD: &str = r#"name = "child"
dids = ["12345"]
entry = "c"
[nodes.c]
kind = "subflow"
flow = "main"
next = "c2"
[nodes.c2]
kind = "transfer"
agent = "missing_agent"
"#;

const DUP: &str = r#"name = "child"
entry = "nowhere"
[nodes.x]
kind = "area"
"#;

#[test]
fn cross_checks_report_everything() {
    let flows = [flow("main", BROKEN), flow("child", CHILD), flow("dup", DUP)];
    assert_eq!(
        messages(&flows),
        [
            r#"ivr-flows/child.toml:2: DID "12345" is also claimed by flow "main" (ivr-flows/main.toml)"#,
            r#"ivr-flows/child.toml:6: node "c": subflow recursion: main -> child -> main"#,
            r#"ivr-flows/child.toml:10: node "c2": unknown agent "missing_agent""#,
            r#"ivr-flows/dup.toml:1: flow name "child" is also used by ivr-flows/child.toml"#,
            r#"ivr-flows/dup.toml:2: entry "nowhere" is not a node"#,
            r#"ivr-flows/main.toml:2: DID "12345" is listed twice"#,
            r#"ivr-flows/main.toml:7: node "welcome": prompt "missing_hello" has no sound file"#,
            r#"ivr-flows/main.toml:13: node "menu": fallback goes to unknown node "nowhere""#,
            r#"ivr-flows/main.toml:16: node "menu": option "7" goes to unknown node "complain""#,
            r#"ivr-flows/main.toml:22: node "loop_a": loops without waiting for the caller: loop_a -> loop_b -> loop_a"#,
            r#"ivr-flows/main.toml:36: node "hours": unknown schedule "missing_cal""#,
            r#"ivr-flows/main.toml:48: node "police": unknown trunk "missing_trunk""#,
            r#"ivr-flows/main.toml:49: node "police": on_fail goes to unknown node "gone""#,
            r#"ivr-flows/main.toml:53: node "q": unknown group "missing_group""#,
            r#"ivr-flows/main.toml:54: node "q": on_timeout goes to unknown node "x""#,
            r#"ivr-flows/main.toml:56: node "orphan": is never reached from entry "welcome""#,
            r#"ivr-flows/main.toml:59: node "s2": is never reached from entry "welcome""#,
            r#"ivr-flows/main.toml:61: node "s2": subflow calls unknown flow "nope""#,
        ]
    );
}

#[test]
fn silent_loop_through_a_silent_subflow() {
    let main = flow(
        "a",
        r#"name = "a"
entry = "x"
[nodes.x]
kind = "subflow"
flow = "b"
next = "y"
[nodes.y]
kind = "hours"
schedule = "s"
open = "x"
closed = "z"
[nodes.z]
kind = "hangup"
"#,
    );
    let silent = flow(
        "b",
        "name = \"b\"\nentry = \"v\"\n[nodes.v]\nkind = \"set\"\nvars = { k = \"v\" }\n",
    );
    assert_eq!(
        messages(&[main.clone(), silent]),
        [r#"ivr-flows/a.toml:3: node "x": loops without waiting for the caller: x -> y -> x"#]
    );
    let waits = flow(
        "b",
        "name = \"b\"\nentry = \"v\"\n[nodes.v]\nkind = \"play\"\nprompts = [\"p\"]\n",
    );
    assert!(messages(&[main, waits]).is_empty());
}

#[test]
fn set_refuses_invalid_flows_and_load_reports_files() {
    let err = FlowSet::new(vec![flow("main", BROKEN)], &AllCatalog).unwrap_err();
    assert!(err.len() > 3);
    let err = FlowSet::load(
        &[std::path::PathBuf::from("/nonexistent/ivr/x.toml")],
        &AllCatalog,
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0]
        .to_string()
        .starts_with("/nonexistent/ivr/x.toml: cannot read: "));
    let survey = flow("survey", SURVEY);
    assert_eq!(survey.nodes["ask"].line, 6);
}
