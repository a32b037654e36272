//! Carrier trunks: outbound calls (a forwarded DID, a callback) fail over
//! from the primary trunk to its backup within the same attempt (503 from
//! the primary, or no answer at all), and hotline keeps itself registered
//! at a carrier that asks for it.

mod common;

use std::time::Duration;

use common::{Hotline, Net, Sipp};

const T: Duration = Duration::from_secs(60);

fn trunks(net: Net) -> String {
    format!(
        r#"
[[trunk]]
name = "primary"
proxy = "{p}:5060"
backup = "backup"
invite_timeout_secs = 1

[[trunk]]
name = "backup"
proxy = "{b}:5060"

[[did]]
number = "9110"
forward_to = "110"
forward_trunk = "primary"
"#,
        p = net.ip(30),
        b = net.ip(31)
    )
}

#[test]
fn primary_answering_503_fails_over_to_the_backup() {
    let net = Net(51);
    let h = Hotline::start(net, &trunks(net));
    let primary = Sipp::start("trunk_503.xml", &net.ip(30), &["-m", "1"]);
    let backup = Sipp::start("agent_answer.xml", &net.ip(31), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_call.xml",
        &net.carrier(),
        &["-s", "9110", "-m", "1", &sip],
    )
    .wait(T)
    .assert_ok(&h);
    primary.wait(T).assert_ok(&h);
    backup.wait(T).assert_ok(&h);
    // The call counts as answered when its task ends, just after the
    // phones are done with it.
    h.wait_for("the call to end answered", T, |v| {
        v["calls"]["answered"] == 1
    });
    assert!(
        h.log().contains("trunk failed; trying the backup"),
        "{}",
        h.tail_log()
    );
}

#[test]
fn unreachable_primary_fails_over_to_the_backup() {
    let net = Net(52);
    let h = Hotline::start(net, &trunks(net));
    // Nothing listens on the primary.
    let backup = Sipp::start("agent_answer.xml", &net.ip(31), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = net.sip();
    Sipp::start(
        "carrier_call.xml",
        &net.carrier(),
        &["-s", "9110", "-m", "1", &sip],
    )
    .wait(T)
    .assert_ok(&h);
    backup.wait(T).assert_ok(&h);
    assert!(
        h.log().contains("trunk did not respond; trying the backup"),
        "{}",
        h.tail_log()
    );
}

#[test]
fn registers_at_the_carrier_and_refreshes_before_expiry() {
    let net = Net(53);
    let extra = format!(
        r#"
[[trunk]]
name = "registered"
proxy = "{r}:5060"
[trunk.register]
username = "hotline"
password = "s3cret"
expires_secs = 10
"#,
        r = net.ip(32)
    );
    // The registrar must be up before hotline's first REGISTER.
    let registrar = Sipp::start(
        "carrier_registrar.xml",
        &net.ip(32),
        &["-s", "hotline", "-key", "pass", "s3cret", "-m", "1"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let h = Hotline::start(net, &extra);
    // Two successful exchanges: the registration and its refresh (due at
    // 80 % of the 10 s lifetime).
    registrar.wait(Duration::from_secs(30)).assert_ok(&h);
    assert!(
        h.log().contains("registered at the carrier"),
        "{}",
        h.tail_log()
    );
}

/// A callback reaches the citizen through the backup trunk when the
/// primary answers 503 (the agent rung first, as for every callback).
#[test]
fn a_callback_fails_over_to_the_backup_trunk() {
    let net = Net(210);
    let extra = format!(
        r#"
[[tenant]]
id = "default"
outbound_caller_id = "12345"
outbound_trunk = "primary"

[[group]]
id = "general"
ring_timeout_secs = 5

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = {{ general = 5 }}
auto_login = true
{}"#,
        trunks(net)
    );
    let h = Hotline::start(net, &extra);
    common::register(&h, "2001", &net.agent(0));
    let agent = Sipp::start("agent_answer_then_bye.xml", &net.agent(0), &["-m", "1"]);
    let primary = Sipp::start("trunk_503.xml", &net.ip(30), &["-m", "1"]);
    let backup = Sipp::start("agent_answer.xml", &net.ip(31), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = h
        .post_as_ops(
            "/api/v1/acd/callbacks",
            r#"{"group":"general","number":"13800138000"}"#,
        )
        .unwrap();
    assert_eq!(code, 202, "{body}");
    agent.wait(T).assert_ok(&h);
    primary.wait(T).assert_ok(&h);
    backup.wait(T).assert_ok(&h);
    let log = h.log();
    assert!(
        log.contains("trunk failed; trying the backup"),
        "{}",
        h.tail_log()
    );
    assert!(log.contains("callback connected"), "{}", h.tail_log());
    h.wait_for("the switch to be idle", T, |v| {
        v["media"]["rtp_port_pairs_in_use"] == 0
    });
}
