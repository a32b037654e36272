//! A desk phone's transfer key (issue 17 §4: "REFER (blind transfer from
//! the phone's key) … with NOTIFY sipfrag progress"): a carrier's call
//! queued through skill group `general` reaches agent A01's phone, whose
//! transfer key sends REFER to the extension 2002; hotline answers 202,
//! tells the phone with a NOTIFY (sipfrag 200, subscription terminated),
//! ends A01's leg and rings agent A02's phone, which answers and later
//! hangs up; the caller's call ends then. The record names both agents
//! and the transfer. A REFER that names nobody is refused 404 with a
//! Warning and the call goes on.
//!
//! Real clients: SIPp as the carrier and as both agents' phones
//! (`agent_refer.xml` sends the REFER as a phone's key does), and
//! Debian's baresip as the transferring agent, its `/transfer` command
//! typed on its console as a person presses the key.

mod common;

use std::time::Duration;

use common::api::Api;
use common::baresip::{write_tone, Baresip, Options, QUEUED_AGENT};
use common::{general_queue, register, wait_until, Hotline, Net, Sipp};
use serde_json::Value;

const NET: Net = Net(67);
const T: Duration = Duration::from_secs(40);

fn setup() -> String {
    let mut text = general_queue(8, 1, &[("2001", "A01")]);
    text.push_str("\n[[agent]]\nuser = \"2002\"\npassword = \"pass2002\"\njob_number = \"A02\"\n");
    text
}

/// A carrier's call to 12399 (queued in `general`) that the far end ends.
fn call_12399(net: Net) -> Sipp {
    let sip = net.sip();
    Sipp::start(
        "carrier_call_wait_bye.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &sip],
    )
}

/// The call records, once `n` are stored (bounded wait).
fn records(api: &Api, token: &str, n: u64) -> Value {
    for _ in 0..100 {
        let (_, v) = api.get("/api/v1/calls", token);
        if v["count"] == n {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    api.get("/api/v1/calls", token).1
}

#[test]
fn the_transfer_key_puts_the_caller_through_and_a_refer_to_nobody_is_refused() {
    let h = Hotline::start(NET, &setup());
    let api = Api::new(NET);
    let ops = h.ops_token();
    register(&h, "2001", &NET.agent(0));
    register(&h, "2002", &NET.agent(1));

    // 1. The key names extension 2002 (agent A02, outside the group).
    let first = Sipp::start(
        "agent_refer.xml",
        &NET.agent(0),
        &["-m", "1", "-key", "refer_to", "2002"],
    );
    let second = Sipp::start("agent_answer_then_bye.xml", &NET.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let caller = call_12399(NET);
    first.wait(T).assert_ok(&h);
    second.wait(T).assert_ok(&h);
    caller.wait(T).assert_ok(&h);
    let v = records(&api, &ops, 1);
    let record = &v["calls"][0];
    assert_eq!(record["agents"], serde_json::json!(["A01", "A02"]), "{v}");
    let transfer = &record["transfers"][0];
    assert_eq!(
        (
            &transfer["from_agent"],
            &transfer["target"],
            &transfer["mode"]
        ),
        (
            &Value::from("A01"),
            &Value::from("A02"),
            &Value::from("blind")
        ),
        "the record tells of the transfer: {v}"
    );
    assert!(transfer["failure"].is_null(), "{v}");
    assert!(h.log().contains("transfer key (REFER)"), "{}", h.tail_log());

    // 2. A key that names nobody: 404 with a Warning, the call goes on
    // until the agent hangs up.
    h.wait_for("A01 idle again", Duration::from_secs(20), |_| {
        h.agent_state("A01")["state"] == "idle"
    });
    let first = Sipp::start(
        "agent_refer_refused.xml",
        &NET.agent(0),
        &["-m", "1", "-key", "refer_to", "nobody"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let caller = call_12399(NET);
    first.wait(T).assert_ok(&h);
    caller.wait(T).assert_ok(&h);
    assert!(
        h.log().contains("transfer key (REFER) refused"),
        "{}",
        h.tail_log()
    );
    let v = records(&api, &ops, 2);
    assert_eq!(v["count"], 2, "{v}");
}

#[test]
fn baresips_transfer_command_puts_the_caller_through_to_another_agent() {
    let net = Net(69);
    let mut setup = QUEUED_AGENT.to_string();
    setup.push_str("\n[[agent]]\nuser = \"2002\"\npassword = \"pass2002\"\njob_number = \"A02\"\n");
    let h = Hotline::start(net, &setup);
    let api = Api::new(net);
    let ops = h.ops_token();
    let audio = tempfile::tempdir().unwrap();
    let tone = audio.path().join("agent-1000hz.wav");
    write_tone(&tone, 1000.0, 60);
    let phone = Baresip::start_opts(
        "1501",
        &net.agent(0),
        &net.ip(1),
        &tone,
        &Options {
            console: true,
            ..Options::default()
        },
    );
    wait_until("baresip signed in", Duration::from_secs(20), || {
        (h.agent_state("A1501")["state"] == "idle").then_some(())
    });
    register(&h, "2002", &net.agent(1));
    let second = Sipp::start("agent_answer_then_bye.xml", &net.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let caller = call_12399(net);
    wait_until("baresip on the call", Duration::from_secs(20), || {
        (h.agent_state("A1501")["state"] == "talking").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    phone.command(&net.agent(0), &format!("/transfer sip:2002@{}", net.ip(1)));
    second.wait(T).assert_ok(&h);
    caller.wait(T).assert_ok(&h);
    let v = records(&api, &ops, 1);
    let transfer = &v["calls"][0]["transfers"][0];
    assert_eq!(
        (&transfer["from_agent"], &transfer["target"]),
        (&Value::from("A1501"), &Value::from("A02")),
        "{v}\n--- baresip ---\n{}",
        phone.log()
    );
    assert!(h.log().contains("transfer key (REFER)"), "{}", h.tail_log());
    let said = phone.log();
    assert!(
        said.contains("transferring call") && !said.contains("transfer failure"),
        "{said}"
    );
}

/// Attended transfer with the desk phone's own keys (issue 17 §4, RFC 5589
/// §7): A01's phone (SIPp, `agent_attended_refer.xml`) holds the caller,
/// dials extension 2002 on its second line (407-challenged, then ringing
/// until A02 answers), talks with A02, and presses transfer: a REFER on the
/// held line whose `Replaces` names the second line. hotline answers 202,
/// NOTIFYs 100 then 200, ends both of the phone's dialogs, and the caller
/// talks with A02 (hotline's test phone, 1300 Hz), who heard the caller
/// (440 Hz) only then. The record names both agents and an attended
/// transfer. Before the call, the phone's dialling out of no call is
/// refused 403 with the reason.
#[test]
fn the_transfer_key_after_a_consultation_from_the_phone_hands_the_caller_over() {
    let net = Net(75);
    let h = Hotline::start(net, &setup());
    let api = Api::new(net);
    let ops = h.ops_token();
    register(&h, "2001", &net.agent(0));
    // Out of any call, the phone's dialling is refused with the reason.
    let sip = net.sip();
    Sipp::start(
        "agent_dial_refused.xml",
        &net.agent(0),
        &[
            "-s", "2002", "-key", "agent", "2001", "-au", "2001", "-ap", "pass2001", "-m", "1",
            &sip,
        ],
    )
    .wait(T)
    .assert_ok(&h);
    assert!(h.log().contains("a phone dialled out of no call"));
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, second_wav) = (wav.path().join("caller.wav"), wav.path().join("a02.wav"));
    let second = consulted_phone(&h, &second_wav, "8");
    let first = desk_phone(net, "agent_attended_refer.xml");
    std::thread::sleep(Duration::from_millis(300));
    let caller = common::citizen(net, "40", &caller_wav);
    first.wait(T).assert_ok(&h);
    let a02 = common::report(&second.wait_with_output().unwrap());
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(
        caller["ended_by"], "remote",
        "A02 hung up, then hotline ended the caller's call: {caller}"
    );
    assert_eq!(a02["ended_by"], "local", "{a02}");
    let log = h.log();
    assert!(
        log.contains("the phone consults from its second line")
            && log.contains("transfer key after a consultation from the phone"),
        "{}",
        h.tail_log()
    );
    // The caller heard A02; A02 heard the caller once the transfer was made.
    let heard = common::audio::channel(&caller_wav, 0, 1);
    assert!(
        common::audio::windows_with(&heard, 1300.0, 0.5) > 100,
        "the caller heard A02 after the transfer: {caller}"
    );
    let heard = common::audio::channel(&second_wav, 0, 1);
    assert!(
        common::audio::windows_with(&heard, 440.0, 0.5) > 100,
        "A02 heard the caller: {a02}"
    );
    // …only after the consultation (the phone talks for 1.5 s first): the
    // caller on hold was kept out of it.
    let first_caller = heard
        .chunks_exact(160)
        .position(|w| common::audio::windows_with(w, 440.0, 0.5) == 1);
    assert!(
        first_caller.is_some_and(|i| i >= 25),
        "A02 heard the caller from window {first_caller:?} (20 ms each), during the consultation"
    );
    let v = records(&api, &ops, 1);
    let record = &v["calls"][0];
    assert_eq!(record["agents"], serde_json::json!(["A01", "A02"]), "{v}");
    let transfer = &record["transfers"][0];
    assert_eq!(
        (
            &transfer["from_agent"],
            &transfer["target"],
            &transfer["mode"]
        ),
        (
            &Value::from("A01"),
            &Value::from("A02"),
            &Value::from("attended")
        ),
        "{v}"
    );
}

/// A02's phone (`hotline phone` as 2002, a 1300 Hz voice): answers at
/// once, hangs up after `secs`, records what it hears to `wav`.
fn consulted_phone(h: &Hotline, wav: &std::path::Path, secs: &str) -> std::process::Child {
    common::start_phone(
        h,
        1,
        "2002",
        &[
            "--tone",
            "1300",
            "--answer-after",
            "0.3",
            "--hangup-after",
            secs,
            "--record",
            wav.to_str().unwrap(),
        ],
    )
}

/// A01's desk phone (SIPp `scenario`) consulting 2002 from its second line.
fn desk_phone(net: Net, scenario: &str) -> Sipp {
    Sipp::start(
        scenario,
        &net.agent(0),
        &[
            "-m",
            "1",
            "-key",
            "agent",
            "2001",
            "-key",
            "consult",
            "2002",
            "-key",
            "hotline",
            &net.sip(),
            "-au",
            "2001",
            "-ap",
            "pass2001",
        ],
    )
}

/// The consultation given up from the phone: A01 hangs up the second line
/// after A02 answered (A02's phone gets hotline's BYE, never having heard
/// the caller), resumes the held line and stays with the caller until they
/// hang up. The record has A01 only, no transfer, and the hold.
#[test]
fn hanging_up_the_second_line_cancels_the_consultation_and_the_caller_stays() {
    let net = Net(76);
    let h = Hotline::start(net, &setup());
    let api = Api::new(net);
    let ops = h.ops_token();
    register(&h, "2001", &net.agent(0));
    let wav = tempfile::tempdir().unwrap();
    let (caller_wav, second_wav) = (wav.path().join("caller.wav"), wav.path().join("a02.wav"));
    let second = consulted_phone(&h, &second_wav, "30");
    let first = desk_phone(net, "agent_consult_cancel.xml");
    std::thread::sleep(Duration::from_millis(300));
    let caller = common::citizen(net, "12", &caller_wav);
    let a02 = common::report(&second.wait_with_output().unwrap());
    assert_eq!(
        a02["ended_by"], "remote",
        "hotline hung up the consulted phone: {a02}"
    );
    first.wait(T).assert_ok(&h);
    let caller = common::report(&caller.wait_with_output().unwrap());
    assert_eq!(caller["ended_by"], "local", "{caller}");
    assert!(
        h.log()
            .contains("the phone hung up its second line: consultation cancelled"),
        "{}",
        h.tail_log()
    );
    let heard = common::audio::channel(&second_wav, 0, 1);
    assert_eq!(
        common::audio::windows_with(&heard, 440.0, 0.5),
        0,
        "A02 never heard the caller"
    );
    let v = records(&api, &ops, 1);
    let record = &v["calls"][0];
    assert_eq!(record["agents"], serde_json::json!(["A01"]), "{v}");
    assert_eq!(record["transfers"], serde_json::json!([]), "{v}");
    assert!(record["hold_ms"].as_u64().unwrap_or(0) > 0, "{v}");
}
