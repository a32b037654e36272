//! Floods and limits (issue 14 §5), attacked from outside with SIPp:
//! a trunk's concurrent-call cap (`max_calls`) refuses the call beyond it
//! with 503 + Retry-After while the calls it holds complete with RTP both
//! ways, and admits again once one ends; a calls-per-second cap
//! (`max_cps`) refuses a burst beyond it; a centre's cap counts its calls
//! over two trunks; a cancelled call and calls refused after admission
//! (480, 486) give their place back; failed digest attempts for one agent from several
//! addresses lock the agent's user name out (503 + Retry-After, the right
//! password too, audited once) until the configured lockout ends, then
//! the agent registers again.

mod common;

use std::time::Duration;

use common::api::Api;
use common::{register, Hotline, Net, Sipp};

const T: Duration = Duration::from_secs(60);

/// The test config of `net` with `extra`, the carrier trunk admitting
/// `127.N.0.8/29` (carriers on .10, .11, .12) and these `caps` on it.
fn start(net: Net, trunk_caps: &str, extra: &str) -> Hotline {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    let text = common::config(net, &data, extra).replace(
        &format!(
            "name = \"carrier\"\ninbound_cidrs = [\"{}/32\"]\n",
            net.carrier()
        ),
        &format!(
            "name = \"carrier\"\ninbound_cidrs = [\"{}/29\"]\n{trunk_caps}\n",
            net.ip(8)
        ),
    );
    assert!(text.contains(&net.ip(8)), "the trunk was rewritten");
    Hotline::start_with(net, dir, &text)
}

/// One figure of `/healthz` `caps` for `scope` (`trunk`/`tenant`) `name`.
fn cap_figure(v: &serde_json::Value, scope: &str, name: &str, field: &str) -> u64 {
    v["caps"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["scope"] == scope && c["name"] == name))
        .and_then(|c| c[field].as_u64())
        .unwrap_or(0)
}

fn carrier(h: &Hotline, host: u8, scenario: &str, number: &str, args: &[&str]) -> Sipp {
    let sip = h.net.sip();
    let mut all = vec!["-s", number, "-m", "1"];
    all.extend_from_slice(args);
    all.push(&sip);
    Sipp::start(scenario, &h.net.ip(host), &all)
}

fn idle(h: &Hotline) {
    h.wait_for("the switch to be idle", T, |v| {
        v["calls"]["active"] == 0
            && v["sip"]["dialogs"] == 0
            && v["media"]["rtp_port_pairs_in_use"] == 0
    });
}

const TWO_DIDS: &str = r#"
[[did]]
number = "5001"
agents = ["1001"]

[[did]]
number = "5002"
agents = ["1002"]
"#;

#[test]
fn a_trunk_at_max_calls_refuses_the_third_call_503_and_admits_again_after_one_ends() {
    let net = Net(225);
    let h = start(net, "max_calls = 2", TWO_DIDS);
    register(&h, "1001", &net.agent(0));
    register(&h, "1002", &net.agent(1));
    let agent_a = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    let agent_b = Sipp::start("agent_answer.xml", &net.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    // Two calls: the first holds 2 s after its audio, the second 12 s.
    let a = carrier(&h, 10, "carrier_call_hold.xml", "5001", &["-d", "2000"]);
    let b = carrier(&h, 11, "carrier_call_hold.xml", "5002", &["-d", "12000"]);
    h.wait_for("two calls on the trunk", T, |v| {
        cap_figure(v, "trunk", "carrier", "active") == 2
    });
    // The third, from another carrier address of the same trunk: 503 with
    // Retry-After and a Warning (the scenario checks both).
    carrier(&h, 12, "carrier_expect_503.xml", "5001", &[])
        .wait(T)
        .assert_ok(&h);
    let v = h.healthz();
    assert_eq!(
        cap_figure(&v, "trunk", "carrier", "refused_calls"),
        1,
        "{v}"
    );
    assert_eq!(cap_figure(&v, "trunk", "carrier", "admitted"), 2, "{v}");
    assert!(h.log().contains("INVITE beyond a cap: 503"));
    // The first call ends; its agent's phone is ready again; a new call is
    // admitted while the second still holds its place.
    a.wait(T).assert_ok(&h);
    agent_a.wait(T).assert_ok(&h);
    h.wait_for("one call on the trunk", T, |v| {
        cap_figure(v, "trunk", "carrier", "active") <= 1
    });
    let agent_c = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, 10, "carrier_call.xml", "5001", &[])
        .wait(T)
        .assert_ok(&h);
    agent_c.wait(T).assert_ok(&h);
    b.wait(T).assert_ok(&h);
    agent_b.wait(T).assert_ok(&h);
    idle(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 3, "{v}");
    assert_eq!(cap_figure(&v, "trunk", "carrier", "admitted"), 3, "{v}");
    assert_eq!(
        cap_figure(&v, "trunk", "carrier", "refused_calls"),
        1,
        "{v}"
    );
    // No slot leaked: nothing in progress on the trunk or the centre.
    assert_eq!(cap_figure(&v, "trunk", "carrier", "active"), 0, "{v}");
    assert_eq!(cap_figure(&v, "tenant", "default", "active"), 0, "{v}");
    // The calls held carried their audio both ways (three calls of 100
    // packets each way, a few lost to start-up at most).
    let up = v["rtp"]["caller_to_agent"].as_u64().unwrap_or(0);
    let down = v["rtp"]["agent_to_caller"].as_u64().unwrap_or(0);
    assert!(up >= 270, "caller→agent RTP packets: {up}\n{v}");
    assert!(down >= 270, "agent→caller RTP packets: {down}\n{v}");
}

#[test]
fn a_cps_cap_refuses_a_burst_beyond_it() {
    let net = Net(226);
    // 5009 rings agent 1004, never registered: an admitted call ends 480.
    let h = start(
        net,
        "max_cps = 2",
        "[[did]]\nnumber = \"5009\"\nagents = [\"1004\"]\n",
    );
    let sip = h.net.sip();
    // Twenty INVITEs back to back.
    Sipp::start(
        "carrier_burst.xml",
        &net.carrier(),
        &["-s", "5009", "-m", "20", "-l", "20", "-r", "1000", &sip],
    )
    .wait(T)
    .assert_ok(&h);
    idle(&h);
    let v = h.healthz();
    let admitted = cap_figure(&v, "trunk", "carrier", "admitted");
    let refused = cap_figure(&v, "trunk", "carrier", "refused_cps");
    assert_eq!(
        admitted + refused,
        20,
        "every INVITE admitted or refused: {v}"
    );
    eprintln!("a burst of 20 INVITEs at max_cps = 2: {admitted} admitted, {refused} refused 503");
    assert!(admitted >= 2, "the first two fit the window: {v}");
    assert!(refused >= 1, "a burst beyond 2 a second is refused: {v}");
    assert_eq!(v["calls"]["started"].as_u64(), Some(admitted), "{v}");
    assert_eq!(
        cap_figure(&v, "trunk", "carrier", "refused_calls"),
        0,
        "{v}"
    );
    // Logged once per run of refusals (each run follows an admitted call),
    // not once per INVITE.
    let lines = h.log().matches("INVITE beyond a cap: 503 (more").count() as u64;
    assert!(
        lines >= 1 && lines <= admitted,
        "{lines} log lines for {refused} refusals"
    );
    // The admitted calls, refused later (480), gave their places back.
    assert_eq!(cap_figure(&v, "trunk", "carrier", "active"), 0, "{v}");
    // Once the second of the burst has passed, a call is admitted again
    // (the window is one second of hotline's clock; the burst is over).
    std::thread::sleep(Duration::from_millis(1100));
    carrier(&h, 10, "carrier_expect_480.xml", "5009", &[])
        .wait(T)
        .assert_ok(&h);
}

#[test]
fn a_centre_cap_counts_its_calls_over_two_trunks() {
    let net = Net(227);
    let extra = format!(
        r#"
[[trunk]]
name = "carrier-b"
inbound_cidrs = ["{b}/31"]

[[tenant]]
id = "city"
max_calls = 2

[[did]]
number = "6001"
tenant = "city"
agents = ["1001"]

[[did]]
number = "6002"
tenant = "city"
agents = ["1002"]

[[did]]
number = "7001"
agents = ["1004"]
"#,
        b = net.ip(30)
    );
    // The carrier trunk admits .8–.15; carrier-b .30 and .31.
    let h = start(net, "", &extra);
    register(&h, "1001", &net.agent(0));
    register(&h, "1002", &net.agent(1));
    let agent_a = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    let agent_b = Sipp::start("agent_answer.xml", &net.agent(1), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let a = carrier(&h, 10, "carrier_call_hold.xml", "6001", &["-d", "8000"]);
    let b = carrier(&h, 30, "carrier_call_hold.xml", "6002", &["-d", "8000"]);
    h.wait_for("two calls for the centre", T, |v| {
        cap_figure(v, "tenant", "city", "active") == 2
    });
    let v = h.healthz();
    assert_eq!(cap_figure(&v, "trunk", "carrier", "active"), 1, "{v}");
    assert_eq!(cap_figure(&v, "trunk", "carrier-b", "active"), 1, "{v}");
    // A third call for the centre, through either trunk: 503.
    carrier(&h, 31, "carrier_expect_503.xml", "6001", &[])
        .wait(T)
        .assert_ok(&h);
    carrier(&h, 11, "carrier_expect_503.xml", "6002", &[])
        .wait(T)
        .assert_ok(&h);
    // Another centre's number on the same trunks is admitted (and ends 480:
    // its agent is not registered).
    carrier(&h, 12, "carrier_expect_480.xml", "7001", &[])
        .wait(T)
        .assert_ok(&h);
    a.wait(T).assert_ok(&h);
    b.wait(T).assert_ok(&h);
    agent_a.wait(T).assert_ok(&h);
    agent_b.wait(T).assert_ok(&h);
    idle(&h);
    let v = h.healthz();
    assert_eq!(cap_figure(&v, "tenant", "city", "refused_calls"), 2, "{v}");
    assert_eq!(cap_figure(&v, "tenant", "city", "admitted"), 2, "{v}");
    assert_eq!(cap_figure(&v, "tenant", "city", "active"), 0, "{v}");
    assert_eq!(cap_figure(&v, "tenant", "default", "admitted"), 1, "{v}");
    assert_eq!(v["calls"]["answered"], 2, "{v}");
}

/// The audit lines of action `action`.
fn audited(h: &Hotline, action: &str) -> Vec<serde_json::Value> {
    let api = Api::new(h.net);
    let (_, audit) = api.get("/api/v1/admin/audit", &h.ops_token());
    audit["audit"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["action"] == action)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn failed_passwords_from_several_addresses_lock_the_user_out_for_a_while() {
    let net = Net(228);
    // Four failures for one user within a minute lock it for 15 s (room
    // for the steps below on a busy machine); one address alone would need
    // ten to be blocked.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("var");
    let text = common::config(net, &data, "").replace(
        "[registrar]\n",
        "[registrar]\nuser_failures_before_lockout = 4\nuser_lockout_secs = 15\n",
    );
    let h = Hotline::start_with(net, dir, &text);
    let sip = h.net.sip();
    let attempt = |scenario: &str, host: u8, password: &str| {
        Sipp::start(
            scenario,
            &net.ip(host),
            &["-s", "1001", "-ap", password, "-m", "1", &sip],
        )
        .wait(T)
        .assert_ok(&h);
    };
    // A password-guessing botnet: one wrong guess from each address.
    for host in 31..=34 {
        attempt("agent_register_wrong.xml", host, "guess");
    }
    h.wait_for("the user to be locked out", T, |v| {
        v["sip"]["locked_out_users"] == 1
    });
    // During the lockout: the right password from a clean address is
    // refused 503 with Retry-After (not 403: no address is blocked), and
    // so is another guess; neither extends the lockout or audits again.
    attempt("agent_register_locked.xml", 40, "pass1001");
    attempt("agent_register_locked.xml", 35, "guess");
    // A feature code dialled with the agent's right credentials too.
    Sipp::start(
        "agent_feature_code_locked.xml",
        &net.ip(42),
        &[
            "-s", "*11", "-key", "agent", "1001", "-au", "1001", "-ap", "pass1001", "-m", "1", &sip,
        ],
    )
    .wait(T)
    .assert_ok(&h);
    assert_eq!(h.counter("/registrations"), 0);
    // Another agent is not affected.
    register(&h, "1002", &net.ip(41));
    // The lockout ends by itself; the agent registers again.
    h.wait_for("the lockout to end", T, |v| {
        v["sip"]["locked_out_users"] == 0
    });
    register(&h, "1001", &net.ip(40));
    assert_eq!(h.counter("/registrations"), 2);
    // Logged and audited once per lockout, not per packet.
    let log = h.log();
    assert_eq!(
        log.matches("user locked out").count(),
        1,
        "one log line per lockout"
    );
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = audited(&h, "sip.user_locked_out");
        if !lines.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["target"], "1001", "{lines:?}");
}

#[test]
fn cancelled_and_later_refused_calls_give_their_place_back() {
    let net = Net(229);
    // One call at a time: a place that leaked would refuse every next call.
    let h = start(net, "max_calls = 1", TWO_DIDS);
    register(&h, "1001", &net.agent(0));
    // The caller hangs up while the agent's phone rings (CANCEL).
    let ringing = Sipp::start("agent_noanswer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, 10, "carrier_cancel.xml", "5001", &[])
        .wait(T)
        .assert_ok(&h);
    ringing.wait(T).assert_ok(&h);
    idle(&h);
    // A call refused after admission (its agent, 1002, is not registered).
    carrier(&h, 10, "carrier_expect_480.xml", "5002", &[])
        .wait(T)
        .assert_ok(&h);
    idle(&h);
    // The agent's phone is busy: refused after admission with 486.
    let busy = Sipp::start("agent_busy.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, 10, "carrier_expect_486.xml", "5001", &[])
        .wait(T)
        .assert_ok(&h);
    busy.wait(T).assert_ok(&h);
    idle(&h);
    // And an answered call still fits.
    let answering = Sipp::start("agent_answer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    carrier(&h, 10, "carrier_call.xml", "5001", &[])
        .wait(T)
        .assert_ok(&h);
    answering.wait(T).assert_ok(&h);
    idle(&h);
    let v = h.healthz();
    assert_eq!(cap_figure(&v, "trunk", "carrier", "admitted"), 4, "{v}");
    assert_eq!(
        cap_figure(&v, "trunk", "carrier", "refused_calls"),
        0,
        "{v}"
    );
    assert_eq!(cap_figure(&v, "trunk", "carrier", "active"), 0, "{v}");
    assert_eq!(cap_figure(&v, "tenant", "default", "active"), 0, "{v}");
}
