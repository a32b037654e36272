//! The ACD end to end: agents log in from their phones with feature codes,
//! a burst of callers queues in one skill group, every call is answered by
//! one of the agents, an agent who never answers is set not-ready without
//! any caller losing their place, and the statistics match the calls.

mod common;

use std::time::Duration;

use common::{register, Hotline, Net, Sipp};

fn queue_config(agents: usize) -> String {
    let mut s = String::from(
        r#"
[[group]]
id = "general"
name = "General enquiries"
ring_timeout_secs = 3
acw_secs = 1
max_wait_secs = 300

[[did]]
number = "12399"
queue = "general"
"#,
    );
    for i in 1..=agents {
        s.push_str(&format!(
            "\n[[agent]]\nuser = \"20{i:02}\"\npassword = \"pass20{i:02}\"\njob_number = \"A{i:02}\"\nskills = {{ general = 5 }}\n"
        ));
    }
    s
}

fn feature_code(h: &Hotline, user: &str, ip: &str, code: &str) {
    let pass = format!("pass{user}");
    let sip = h.net.sip();
    Sipp::start(
        "agent_feature_code.xml",
        ip,
        &[
            "-s", code, "-key", "agent", user, "-au", user, "-ap", &pass, "-m", "1", &sip,
        ],
    )
    .wait(Duration::from_secs(20))
    .assert_ok(h);
}

fn acd_stats(h: &Hotline) -> serde_json::Value {
    let body = h.acd_stats().expect("ACD stats");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn burst_of_thirty_callers_to_five_agents_all_answered_and_a_silent_agent_is_set_not_ready() {
    let net = Net(81);
    let h = Hotline::start(net, &queue_config(6));
    // Agents 2001–2005 answer; 2006 rings and never answers.
    for i in 0..6u8 {
        let user = format!("20{:02}", i + 1);
        register(&h, &user, &net.agent(i));
        feature_code(&h, &user, &net.agent(i), "*11");
    }
    let answering: Vec<Sipp> = (0..5u8)
        .map(|i| Sipp::start("agent_answer.xml", &net.agent(i), &["-m", "30"]))
        .collect();
    let silent = Sipp::start("agent_noanswer.xml", &net.agent(5), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(500));

    let sip = net.sip();
    let callers = Sipp::start(
        "carrier_queue_call.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "30", "-r", "30", "-l", "30", &sip],
    );
    callers.wait(Duration::from_secs(180)).assert_ok(&h);
    silent.wait(Duration::from_secs(30)).assert_ok(&h);
    drop(answering);

    let v = h.wait_for("the calls to end", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0
    });
    assert_eq!(v["calls"]["answered"], 30, "{v}");
    let stats = acd_stats(&h);
    let group = &stats["stats"]["groups"][0];
    let counters = &group["counters"];
    // Every caller accounted for: all 30 answered, none abandoned or lost,
    // and the ACD's figures match the switch's call records.
    assert_eq!(counters["entered"], 30, "{stats:#}");
    assert_eq!(counters["answered"], v["calls"]["answered"], "{stats:#}");
    assert_eq!(counters["abandoned"], 0, "{stats:#}");
    assert_eq!(counters["timed_out"], 0, "{stats:#}");
    assert_eq!(group["calls_waiting"], 0, "{stats:#}");
    assert_eq!(
        stats["missed_calls"].as_array().map(Vec::len),
        Some(0),
        "{stats:#}"
    );
    assert!(group["answer_rate_30"].as_f64().is_some(), "{stats:#}");
    assert!(group["asa"].as_f64().is_some(), "ASA in seconds: {stats:#}");

    let agents = stats["stats"]["agents"].as_array().unwrap();
    let agent = |id: &str| {
        agents
            .iter()
            .find(|a| a["agent"] == id)
            .unwrap_or_else(|| panic!("agent {id}"))
    };
    // The silent agent rang once, was set not ready ("no answer") and was
    // never offered another call.
    let silent = agent("A06");
    assert_eq!(silent["state"], "not_ready", "{silent:#}");
    assert_eq!(silent["reason"], "no answer", "{silent:#}");
    assert_eq!(silent["counters"]["offered"], 1, "{silent:#}");
    assert_eq!(silent["counters"]["answered"], 0, "{silent:#}");
    // The work was shared: every answering agent took calls, 30 in all.
    let answered: Vec<u64> = (1..=5)
        .map(|i| {
            agent(&format!("A{i:02}"))["counters"]["answered"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(answered.iter().sum::<u64>(), 30, "{answered:?}");
    assert!(
        answered.iter().all(|n| *n >= 3),
        "longest-idle spreads the calls: {answered:?}"
    );
}

#[test]
fn auto_login_follows_the_phone_registration() {
    let net = Net(82);
    let extra = r#"
[[group]]
id = "general"

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true
"#;
    let h = Hotline::start(net, extra);
    let state = |h: &Hotline| {
        let stats = acd_stats(h);
        let agents = stats["stats"]["agents"].as_array().unwrap().clone();
        agents.into_iter().find(|a| a["agent"] == "A01").unwrap()["state"].clone()
    };
    assert_eq!(state(&h), "logged_out");
    register(&h, "2001", &net.agent(0));
    assert_eq!(state(&h), "idle");
    let sip = net.sip();
    Sipp::start(
        "agent_unregister.xml",
        &net.agent(0),
        &["-s", "2001", "-ap", "pass2001", "-m", "1", &sip],
    )
    .wait(Duration::from_secs(20))
    .assert_ok(&h);
    assert_eq!(state(&h), "logged_out");
}

#[test]
fn scheduled_callback_rings_the_agent_first_then_dials_the_citizen() {
    let net = Net(83);
    let extra = r#"
[[tenant]]
id = "default"
outbound_caller_id = "12345"
outbound_trunk = "carrier"

[[group]]
id = "general"
ring_timeout_secs = 5

[[agent]]
user = "2001"
password = "pass2001"
job_number = "A01"
skills = { general = 5 }
auto_login = true
"#;
    let h = Hotline::start(net, extra);
    // Bad requests are refused with a JSON error, not a 500.
    let (code, body) = h.post_as_ops("/api/v1/acd/callbacks", "{not json").unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("bad_json"), "{body}");
    let (code, body) = h
        .post_as_ops(
            "/api/v1/acd/callbacks",
            r#"{"group":"nope","number":"13800138000"}"#,
        )
        .unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = h
        .post_as_ops(
            "/api/v1/acd/callbacks",
            r#"{"group":"general","number":"13800138000; rm -rf"}"#,
        )
        .unwrap();
    assert_eq!(code, 400, "{body}");

    register(&h, "2001", &net.agent(0));
    // The agent answers, talks 3 s and hangs up; the citizen (reached
    // through the carrier trunk) answers and waits for the BYE.
    let agent = Sipp::start("agent_answer_then_bye.xml", &net.agent(0), &["-m", "1"]);
    let citizen = Sipp::start("agent_answer.xml", &net.carrier(), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = h
        .post_as_ops(
            "/api/v1/acd/callbacks",
            r#"{"group":"general","number":"13800138000"}"#,
        )
        .unwrap();
    assert_eq!(code, 202, "{body}");
    agent.wait(Duration::from_secs(60)).assert_ok(&h);
    citizen.wait(Duration::from_secs(60)).assert_ok(&h);
    let log = h.log();
    let agent_first = log
        .find("callback: ringing the agent first")
        .expect("agent rung");
    let connected = log.find("callback connected").expect("citizen reached");
    assert!(agent_first < connected, "{}", h.tail_log());
    let stats = acd_stats(&h);
    let counters = &stats["stats"]["groups"][0]["counters"];
    assert_eq!(counters["callbacks_answered"], 1, "{stats:#}");
    h.wait_for("the switch to be idle", Duration::from_secs(10), |v| {
        v["media"]["rtp_port_pairs_in_use"] == 0
    });
}
