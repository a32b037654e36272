//! BLF lamps on a supervisor's desk phone (issue 17 §4: "SUBSCRIBE/NOTIFY
//! for the dialog event package (RFC 4235) so supervisors' phones show
//! agents' BLF lamps, scoped by tenant"): the supervisor's phone subscribes
//! to agent A01's extension, a carrier's call queued through skill group
//! `general` rings A01, A01 answers, the caller hangs up, and the lamp
//! follows: free, ringing (`early`), talking (`confirmed`), free again,
//! each a NOTIFY with the next version; then the phone unsubscribes and
//! gets a last NOTIFY `terminated`. Another centre's agent is nobody to
//! this phone (404); another event package gets 489, a term below a
//! minute 423.
//!
//! Real clients: SIPp as the supervisor's phone (`supervisor_blf.xml`,
//! digest-authenticated like a REGISTER), the carrier and A01's phone.

mod common;

use std::time::Duration;

use common::{general_queue, headers, register, status, Hotline, Net, RawSip, Sipp};

const NET: Net = Net(68);
const T: Duration = Duration::from_secs(40);

fn setup() -> String {
    let mut text = general_queue(8, 1, &[("2001", "A01")]);
    text.push_str(
        "\n[[agent]]\nuser = \"2003\"\npassword = \"pass2003\"\njob_number = \"S01\"\nsupervisor = true\n\
         \n[[tenant]]\nid = \"default\"\n[[tenant]]\nid = \"other\"\n\
         \n[[agent]]\nuser = \"3001\"\npassword = \"pass3001\"\njob_number = \"B01\"\ntenant = \"other\"\n",
    );
    text
}

/// An unauthenticated SUBSCRIBE to A01's lamp for `event` with `expires`;
/// hotline's final response.
fn raw_subscribe(raw: &RawSip, event: &str, expires: u32) -> String {
    let (sip, local) = (&raw.to, raw.local());
    raw.send(
        format!(
            "SUBSCRIBE sip:2001@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{event}{expires}\r\n\
             From: <sip:2003@{sip}>;tag=a\r\nTo: <sip:2001@{sip}>\r\nCall-ID: {event}{expires}@test\r\n\
             CSeq: 1 SUBSCRIBE\r\nContact: <sip:2003@{local}>\r\nEvent: {event}\r\nExpires: {expires}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    raw.recv_final().expect("a response to SUBSCRIBE")
}

#[test]
fn a_supervisors_lamp_follows_an_agent_through_a_call_and_only_in_its_centre() {
    let h = Hotline::start(NET, &setup());
    register(&h, "2001", &NET.agent(0));
    let sip = NET.sip();
    let me = ["-s", "2003", "-au", "2003", "-ap", "pass2003", "-m", "1"];

    // Another centre's agent: 404 once authenticated.
    let mut args = me.to_vec();
    args.extend(["-key", "blf_target", "B01", &sip]);
    Sipp::start("supervisor_blf_404.xml", &NET.agent(1), &args)
        .wait(T)
        .assert_ok(&h);

    // Another event package: 489 naming the one served; a term below a
    // minute: 423 naming the shortest.
    let raw = RawSip::new(&NET.ip(31), &sip);
    let resp = raw_subscribe(&raw, "presence", 600);
    assert_eq!(status(&resp), 489, "{resp}");
    assert_eq!(headers(&resp, "Allow-Events"), ["dialog"], "{resp}");
    let resp = raw_subscribe(&raw, "dialog", 5);
    assert_eq!(status(&resp), 423, "{resp}");
    assert_eq!(headers(&resp, "Min-Expires"), ["60"], "{resp}");

    // The lamp through a call.
    let mut args = me.to_vec();
    args.extend(["-key", "blf_target", "2001", &sip]);
    let mut supervisor = Sipp::start("supervisor_blf.xml", &NET.agent(1), &args);
    common::wait_until("the subscription", Duration::from_secs(10), || {
        (h.log().contains("BLF subscription") || supervisor.finished()).then_some(())
    });
    if supervisor.finished() {
        supervisor.wait(T).assert_ok(&h);
        panic!("the supervisor's phone gave up before the call");
    }
    let agent = Sipp::start("agent_answer.xml", &NET.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let caller = Sipp::start(
        "carrier_call.xml",
        &NET.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    );
    caller.wait(T).assert_ok(&h);
    agent.wait(T).assert_ok(&h);
    supervisor.wait(T).assert_ok(&h);
    assert!(h.log().contains("user=2003 agent=A01"), "{}", h.tail_log());
}
