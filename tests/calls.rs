//! Whole calls through hotline over loopback, with SIPp as the carrier and
//! as the agents' phones: who hangs up, CANCEL while ringing, busy,
//! unregistered, unknown number, no common codec, hold/unhold, RTP both
//! ways (packet counts), and 100 calls in a row without leaks.

mod common;

use std::time::Duration;

use common::{register, Hotline, Net, Sipp};

const T: Duration = Duration::from_secs(60);

fn carrier(h: &Hotline, scenario: &str, number: &str) -> Sipp {
    let sip = h.net.sip();
    Sipp::start(scenario, &h.net.carrier(), &["-s", number, "-m", "1", &sip])
}

fn agent(h: &Hotline, i: u8, scenario: &str) -> Sipp {
    Sipp::start(scenario, &h.net.agent(i), &["-m", "1"])
}

/// Wait until no call, dialog, RTP port or relay is left (relays are not
/// tokio tasks: the media IO workers serve them, so the task count below
/// would not see one leak).
fn assert_idle(h: &Hotline) {
    h.wait_for("the switch to be idle", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0
            && v["sip"]["dialogs"] == 0
            && v["sip"]["legs_routed"] == 0
            && v["media"]["rtp_port_pairs_in_use"] == 0
            && v["media"]["sessions"] == 0
    });
}

#[test]
fn caller_hangs_up_and_rtp_flows_both_ways() {
    let h = Hotline::start(Net(11), "");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_answer.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_call.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 1, "{v}");
    // Both SIPp ends play ~3 s of 30 ms PCMA (100 packets) through the relay.
    let up = v["rtp"]["caller_to_agent"].as_u64().unwrap();
    let down = v["rtp"]["agent_to_caller"].as_u64().unwrap();
    assert!(up >= 90, "caller→agent RTP packets: {up}\n{v}");
    assert!(down >= 90, "agent→caller RTP packets: {down}\n{v}");
}

#[test]
fn agent_hangs_up() {
    let h = Hotline::start(Net(12), "");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_answer_then_bye.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_call_wait_bye.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_eq!(h.counter("/calls/answered"), 1);
}

#[test]
fn cancel_while_ringing_stops_the_agent_ringing() {
    let h = Hotline::start(Net(13), "");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_noanswer.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_cancel.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    // The agent's phone saw CANCEL (its scenario requires it).
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_eq!(h.counter("/calls/answered"), 0);
}

#[test]
fn busy_agent_gives_486() {
    let h = Hotline::start(Net(14), "[[did]]\nnumber = \"555\"\nagents = [\"1001\"]\n");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_busy.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_expect_486.xml", "555")
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
}

#[test]
fn unregistered_agents_give_480_and_unknown_number_404() {
    let h = Hotline::start(Net(15), "");
    carrier(&h, "carrier_expect_480.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    carrier(&h, "carrier_expect_404.xml", "99999")
        .wait(T)
        .assert_ok(&h);
    assert_idle(&h);
}

#[test]
fn no_common_codec_gives_488() {
    let h = Hotline::start(Net(16), "");
    register(&h, "1001", &h.net.agent(0));
    carrier(&h, "carrier_expect_488.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    assert_idle(&h);
}

#[test]
fn hold_and_unhold_are_reflected_on_the_agent_leg() {
    let h = Hotline::start(Net(17), "");
    register(&h, "1001", &h.net.agent(0));
    // The agent's scenario requires two re-INVITEs (sendonly, then
    // sendrecv) relayed by hotline and answers each.
    let a = agent(&h, 0, "agent_hold_aware.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_hold.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
}

#[test]
fn sequential_ringing_skips_a_dead_phone() {
    // 1001 is registered at an address where nothing answers: after
    // no_response_secs hotline moves on to 1002, who answers.
    let h = Hotline::start(Net(18), "");
    register(&h, "1001", &h.net.agent(0));
    register(&h, "1002", &h.net.agent(1));
    let b = agent(&h, 1, "agent_answer.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_call.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    b.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_eq!(h.counter("/calls/answered"), 1);
}

#[test]
fn simultaneous_ringing_first_answer_wins_and_the_other_is_cancelled() {
    let h = Hotline::start(Net(19), "");
    register(&h, "1001", &h.net.agent(0));
    register(&h, "1002", &h.net.agent(1));
    let ringer = agent(&h, 0, "agent_noanswer.xml");
    let answerer = agent(&h, 1, "agent_answer.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_call.xml", "12328")
        .wait(T)
        .assert_ok(&h);
    answerer.wait(T).assert_ok(&h);
    // The losing phone got CANCEL (its scenario requires it).
    ringer.wait(T).assert_ok(&h);
    assert_idle(&h);
}

#[test]
fn hundred_calls_in_a_row_leak_nothing() {
    let h = Hotline::start(Net(20), "");
    register(&h, "1001", &h.net.agent(0));
    let baseline = h.healthz();
    let sip = h.net.sip();
    let a = Sipp::start("agent_answer.xml", &h.net.agent(0), &["-m", "100"]);
    std::thread::sleep(Duration::from_millis(300));
    let c = Sipp::start(
        "carrier_call.xml",
        &h.net.carrier(),
        &["-s", "12345", "-m", "100", "-l", "10", "-r", "10", &sip],
    );
    c.wait(Duration::from_secs(900)).assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 100, "{v}");
    // Transactions linger for RFC 3261 Timer K/J (up to 32 s), then go.
    let v = h.wait_for("transactions to drain", Duration::from_secs(60), |v| {
        v["sip"]["transactions"] == 0
    });
    let tasks_before = baseline["tasks"].as_u64().unwrap();
    let tasks_after = v["tasks"].as_u64().unwrap();
    assert!(
        tasks_after <= tasks_before + 2,
        "tasks leaked: {tasks_before} → {tasks_after}\n{v}"
    );
    let rss_before = baseline["rss_bytes"].as_u64().unwrap();
    let rss_after = v["rss_bytes"].as_u64().unwrap();
    assert!(
        rss_after < rss_before + 16 * 1024 * 1024,
        "memory grew from {rss_before} to {rss_after} over 100 calls"
    );
}

#[test]
fn carrier_over_tcp_reaches_an_agent_over_udp() {
    let h = Hotline::start(Net(21), "");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_answer.xml");
    std::thread::sleep(Duration::from_millis(300));
    let sip = h.net.sip();
    Sipp::start(
        "carrier_call.xml",
        &h.net.carrier(),
        &["-t", "t1", "-s", "12345", "-m", "1", &sip],
    )
    .wait(T)
    .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 1, "{v}");
    assert!(v["rtp"]["caller_to_agent"].as_u64().unwrap() >= 90, "{v}");
}

#[test]
fn auto_answer_agents_get_the_auto_answer_headers_and_others_do_not() {
    let extra = r#"
[[agent]]
user = "2001"
password = "pass2001"
auto_answer = true

[[did]]
number = "12399"
agents = ["2001"]
"#;
    let h = Hotline::start(Net(127), extra);
    // 2001 asks its phone to answer by itself.
    register(&h, "2001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_answer_auto.xml");
    std::thread::sleep(Duration::from_millis(300));
    let c = carrier(&h, "carrier_call.xml", "12399").wait(T);
    a.wait(T).assert_ok(&h);
    c.assert_ok(&h);
    assert_idle(&h);
    // 1001 does not: the same check fails on its INVITE.
    register(&h, "1001", &h.net.agent(1));
    let b = agent(&h, 1, "agent_answer_auto.xml");
    std::thread::sleep(Duration::from_millis(300));
    let _ = carrier(&h, "carrier_call.xml", "12345").wait(T);
    let result = b.wait(T);
    assert_ne!(
        result.code, 0,
        "a phone without auto_answer got the headers"
    );
}

/// Issue 13: a pending re-INVITE is a state of the call, never an await.
/// The carrier holds, hotline reflects the hold to the agent, whose phone
/// only says 100 Trying; the carrier then hangs up. The BYE is answered,
/// the agent gets its BYE at once (its scenario waits 5 s for it, the
/// re-INVITE's own transaction would hold it for 32 s), the carrier's
/// pending re-INVITE is answered 487 (RFC 3261 §15.1.2), and nothing is
/// left over.
#[test]
fn a_bye_while_a_reinvite_to_the_agent_is_pending_releases_both_legs() {
    let h = Hotline::start(Net(200), "");
    register(&h, "1001", &h.net.agent(0));
    let a = agent(&h, 0, "agent_reinvite_unanswered.xml");
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, "carrier_hold_then_bye.xml", "12345")
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    assert_idle(&h);
    assert_eq!(h.counter("/calls/answered"), 1);
}
