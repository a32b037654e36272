//! A caller's first words after the answer reach the agent (REQUIREMENTS
//! §4: the whole call is carried and recorded). The caller's media session
//! drops what the caller sends while nobody listens (between prompts, so a
//! key already handled is never replayed); a direct call used to answer
//! the caller and only then bridge them to the agent, so a phone that
//! speaks the moment it has the 200 lost its first packet or two (found by
//! `tests/overload.rs`: 5 and 6 of 30 calls in two runs). The caller is now
//! bridged before the 200 goes out.
//!
//! Real clients: SIPp callers that play 100 PCMA packets the instant the
//! call is answered, and a SIPp agent phone echoing every packet back;
//! many calls at once so the window is hit if it exists. Every call must
//! carry all 100 packets each way (hotline's "call over" line: the relay's
//! counters) and `/healthz` must count them all.

mod common;

use std::time::Duration;

use common::{register, Hotline, Net, Sipp};

const NET: Net = Net(249);

/// Calls, all answered at once.
const CALLS: u64 = 20;

/// Packets each caller sends (`carrier_speaks_at_once.xml`).
const PACKETS: u64 = 100;

const EXTRA: &str = r#"
[[did]]
number = "5001"
agents = ["1001"]
"#;

#[test]
fn a_caller_who_speaks_at_the_answer_is_heard_from_the_first_packet() {
    let h = Hotline::start(NET, EXTRA);
    register(&h, "1001", &NET.agent(0));
    let calls = CALLS.to_string();
    let agent = Sipp::start(
        "agent_answer_echo.xml",
        &NET.agent(0),
        &["-m", &calls, "-rtp_echo"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let sip = NET.sip();
    let callers = Sipp::start(
        "carrier_speaks_at_once.xml",
        &NET.carrier(),
        &["-s", "5001", "-m", &calls, "-l", &calls, "-r", "1000", &sip],
    );
    callers.wait(Duration::from_secs(40)).assert_ok(&h);
    agent.wait(Duration::from_secs(20)).assert_ok(&h);
    h.wait_for("the switch to be idle", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0 && v["media"]["sessions"] == 0
    });

    let log = h.log();
    let whole =
        format!("rtp_caller_to_agent={PACKETS} rtp_agent_to_caller={PACKETS} rtp_dropped=0");
    let over: Vec<&str> = log.lines().filter(|l| l.contains("call over")).collect();
    assert_eq!(
        over.iter().filter(|l| l.contains(&whole)).count() as u64,
        CALLS,
        "every call carried all its packets from the first:\n{}",
        over.join("\n")
    );
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"].as_u64(), Some(CALLS), "{v}");
    assert_eq!(
        v["rtp"]["caller_to_agent"].as_u64(),
        Some(CALLS * PACKETS),
        "{v}"
    );
    assert_eq!(
        v["rtp"]["agent_to_caller"].as_u64(),
        Some(CALLS * PACKETS),
        "{v}"
    );
}
