//! One queue per skill group whichever node holds the caller (issue 15
//! §2–3, docs/ha.md §3): two `hotline serve` nodes sharing one PostgreSQL
//! store and one NATS server (`[store] nats`), a SIPp agent phone
//! registered on node A and SIPp carriers calling node B. Checked:
//!
//! - the first node up takes the ACD lease and leads; the second follows;
//! - agent A01 signs in by registering on A; node B's API sees A01 idle
//!   (B asks the leader);
//! - a caller queued on B is offered to A01 by the leader: B rings the
//!   phone and the call connects;
//! - A01 goes not ready (a feature code taken by B); two callers queue on
//!   B, one after the other; then the leader is killed (`kill -9`): B takes
//!   the lease (epoch 2), rebuilds the queue from its own waiting callers
//!   and keeps A01 not ready as the last leader kept them; A01 ready again
//!   is offered the caller who arrived first, then the second.
//!
//! Times are printed, never asserted. Node A on `127.56.0.1`, node B on
//! `127.57.0.1`; the phone on `127.56.0.21`, the callers on `127.57.0.10`
//! and `.11`. Needs the `nats` feature (`./scripts/test` runs it so).

#![cfg(feature = "nats")]
#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::time::{Duration, Instant};

use common::{register, Hotline, Net, Sipp};

const NET_A: Net = Net(56);
const NET_B: Net = Net(57);
const T: Duration = Duration::from_secs(60);

/// A node on `net` in the cluster (`node` its name); callers from any
/// address of `net`'s /24 are its carrier.
fn start_node(net: Net, node: &str, url: &str, nats: &str) -> Hotline {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "{}\n[store]\nurl = \"{url}\"\nnode = \"{node}\"\nnats = \"{nats}\"\n",
        common::general_queue(5, 1, &[("2001", "A01")])
    );
    let text = common::config(net, &dir.path().join("var"), &extra);
    let carrier = format!("\"{}/32\"", net.carrier());
    assert!(text.contains(&carrier), "the test config's trunk changed");
    let text = text.replace(&carrier, &format!("\"{}/24\"", net.ip(0)));
    Hotline::start_with(net, dir, &text)
}

/// Node A, leading the ACD once it is up, then node B following it; the
/// time A took to lead after it answered.
fn start_pair(net_a: Net, net_b: Net, url: &str, nats: &str) -> (Hotline, Hotline, Duration) {
    let a = start_node(net_a, "a", url, nats);
    let took = wait_log(&a, "node A to lead the ACD", "this node leads the ACD");
    let b = start_node(net_b, "b", url, nats);
    wait_log(&b, "node B to follow", "one ACD for every node");
    (a, b, took)
}

/// The line in which `h` says it took the lead (its epoch, the calls it
/// queued again).
fn lead_line(h: &Hotline) -> String {
    h.log()
        .lines()
        .find(|l| l.contains("this node leads the ACD"))
        .map(str::to_string)
        .unwrap_or_default()
}

fn wait_log(h: &Hotline, what: &str, needle: &str) -> Duration {
    let t0 = Instant::now();
    common::wait_until(what, T, || h.log().contains(needle).then_some(()));
    t0.elapsed()
}

/// A01's state as node `h`'s API tells it.
fn a01(h: &Hotline) -> String {
    h.agent_state("A01")["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn wait_state(h: &Hotline, state: &str) {
    common::wait_until(&format!("A01 {state} on node {:?}", h.net.0), T, || {
        (a01(h) == state).then_some(())
    });
}

fn feature_code(h: &Hotline, ip: &str, code: &str) {
    // The code goes to `h` wherever the phone is (digest, not address).
    let sip = h.net.sip();
    Sipp::start(
        "agent_feature_code.xml",
        ip,
        &[
            "-s", code, "-key", "agent", "2001", "-au", "2001", "-ap", "pass2001", "-m", "1", &sip,
        ],
    )
    .wait(T)
    .assert_ok(h);
}

fn caller(b: &Hotline, ip: &str) -> Sipp {
    let sip = b.net.sip();
    Sipp::start(
        "carrier_queue_call.xml",
        ip,
        &["-s", "12399", "-m", "1", &sip],
    )
}

fn waiting(h: &Hotline) -> u64 {
    let body = h.acd_stats().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["stats"]["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "general"))
        .and_then(|g| g["calls_waiting"].as_u64())
        .unwrap_or(0)
}

/// Events of `kind` in the shared outbox.
fn events(url: &str, kind: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("store");
    c.query_one(
        "SELECT count(*) FROM outbox_event WHERE kind = $1",
        &[&kind],
    )
    .expect("count")
    .get(0)
}

/// `agent.state` events told twice (the same agent and seq).
fn repeated_agent_states(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("store");
    c.query(
        "SELECT body::text FROM outbox_event WHERE kind = 'agent.state' ORDER BY seq",
        &[],
    )
    .expect("agent.state events")
    .iter()
    .map(|r| r.get::<_, String>(0))
    .fold(
        (Vec::new(), std::collections::HashSet::new()),
        |(mut dup, mut seen), body| {
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let key = format!("{}#{}", v["data"]["agent_id"], v["seq"]);
            assert!(!v["seq"].is_null(), "agent.state carries its seq: {body}");
            if !seen.insert(key) {
                dup.push(body);
            }
            (dup, seen)
        },
    )
    .0
}

fn metric(h: &Hotline, name: &str) -> Option<f64> {
    let (_, body) = common::http_send(
        &format!("{}:8080", h.net.ip(1)),
        "GET",
        "/metrics",
        None,
        None,
    )?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_caller_on_one_node_reaches_an_agent_on_the_other_and_the_queue_survives_the_leader() {
    let Some(url) = common::shared_store_url("acd_cluster") else {
        return;
    };
    let Some(nats) = common::nats::Nats::start() else {
        return;
    };
    let (mut a, b, took) = start_pair(NET_A, NET_B, &url, &nats.url);
    println!("node A leads the ACD {took:?} after it answered /healthz");
    assert_eq!(metric(&a, "hotline_acd_leader"), Some(1.0));
    assert_eq!(metric(&b, "hotline_acd_leader"), Some(0.0));

    // 1. A01 signs in on A; B sees it (asking the leader).
    register(&a, "2001", &NET_A.agent(0));
    wait_state(&b, "idle");
    // An admin adds an agent through B, which does not lead: B's answer
    // names what changed, and the leader's ACD has the agent (it follows
    // the shared roster).
    let (code, body) = common::http_send(
        &format!("{}:8080", NET_B.ip(1)),
        "PUT",
        "/api/v1/admin/agents/A02",
        Some(&b.ops_token()),
        Some(r#"{"user":"2002","password":"pass2002","skills":{"general":5}}"#),
    )
    .expect("PUT agent");
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["acd"]["agents_added"][0], "A02", "{v}");
    common::wait_until("the leader's ACD to know A02", T, || {
        (a.agent_state("A02")["state"] == "logged_out").then_some(())
    });

    // 2. A caller on B reaches A01, whose phone B rings.
    let phone = Sipp::start("agent_answer.xml", &NET_A.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    caller(&b, &NET_B.carrier()).wait(T).assert_ok(&b);
    phone.wait(T).assert_ok(&b);
    println!(
        "a caller on B answered by A01 (signed in on A) in {:?}",
        t0.elapsed()
    );
    assert_eq!(a.counter("/calls/started"), 0, "the call was B's");
    wait_state(&b, "idle");
    // B's record of it closes once A01's after-call work (the leader's)
    // ends: B hears the agent's states too.
    common::wait_until("B's call.ended", T, || {
        (events(&url, "call.ended") == 1).then_some(())
    });

    // 3. A01 not ready (B takes the code); two callers queue on B.
    feature_code(&b, &NET_B.ip(40), "*14");
    wait_state(&b, "not_ready");
    let mut first = caller(&b, &NET_B.ip(10));
    common::wait_until("the first caller waiting", T, || {
        (waiting(&b) == 1).then_some(())
    });
    let mut second = caller(&b, &NET_B.ip(11));
    common::wait_until("both callers waiting", T, || {
        (waiting(&b) == 2).then_some(())
    });

    // 4. The leader dies; B takes over with the queue as it was.
    let killed = Instant::now();
    a.kill9();
    let lead = wait_log(&b, "node B to lead the ACD", "this node leads the ACD");
    println!(
        "node B leads {:?} after the kill -9 of A ({lead:?} of polling)",
        killed.elapsed()
    );
    let line = lead_line(&b);
    assert!(
        line.contains("epoch=2") && line.contains("waiting=2"),
        "B leads at epoch 2 with both callers queued again: {line}"
    );
    assert_eq!(waiting(&b), 2, "both callers still wait");
    assert_eq!(a01(&b), "not_ready", "A01 as the last leader kept them");
    assert_eq!(metric(&b, "hotline_acd_leader"), Some(1.0));
    assert_eq!(metric(&b, "hotline_acd_lease_epoch"), Some(2.0));
    assert!(
        !first.finished() && !second.finished(),
        "both still on the line"
    );

    // 5. A01 ready: the first caller first, then the second.
    let phone = Sipp::start("agent_answer.xml", &NET_A.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    feature_code(&b, &NET_B.ip(40), "*13");
    phone.wait(T).assert_ok(&b);
    first.wait(T).assert_ok(&b);
    assert!(
        !second.finished(),
        "the caller who arrived second is still waiting:\n{}",
        b.tail_log()
    );
    let phone = Sipp::start("agent_answer.xml", &NET_A.agent(0), &["-m", "1"]);
    phone.wait(T).assert_ok(&b);
    second.wait(T).assert_ok(&b);
    println!(
        "both callers answered in arrival order {:?} after the kill -9",
        killed.elapsed()
    );
    common::wait_until("every call.ended", T, || {
        (events(&url, "call.ended") == 3).then_some(())
    });
    assert_eq!(events(&url, "call.started"), 3);
    let repeated = repeated_agent_states(&url);
    assert!(repeated.is_empty(), "agent.state told twice: {repeated:#?}");
    println!("agent.state events: {}", events(&url, "agent.state"));
}

/// Rolling upgrade of the leader: SIGTERM to node A gives the lease up at
/// once, node B leads without waiting for it to expire and keeps its
/// waiting caller, A exits cleanly. Nodes on `127.63.0.1` and `127.64.0.1`.
#[test]
fn a_draining_leader_hands_the_acd_over_at_once() {
    let Some(url) = common::shared_store_url("acd_cluster_drain") else {
        return;
    };
    let Some(nats) = common::nats::Nats::start() else {
        return;
    };
    let (net_a, net_b) = (Net(63), Net(64));
    let (mut a, b, _) = start_pair(net_a, net_b, &url, &nats.url);
    register(&b, "2001", &net_b.agent(0));
    wait_state(&b, "idle");
    feature_code(&b, &net_b.ip(40), "*14");
    wait_state(&b, "not_ready");
    let waiting_caller = caller(&b, &net_b.carrier());
    common::wait_until("the caller waiting", T, || (waiting(&b) == 1).then_some(()));

    let termed = Instant::now();
    a.sigterm();
    let lead = wait_log(&b, "node B to lead the ACD", "this node leads the ACD");
    println!(
        "SIGTERM to the leader -> B leads after {:?} ({lead:?} of polling)",
        termed.elapsed()
    );
    assert!(
        a.log().contains("the ACD leader's lease is given up"),
        "{}",
        a.tail_log()
    );
    let line = lead_line(&b);
    assert!(
        line.contains("epoch=2") && line.contains("waiting=1"),
        "{line}"
    );
    assert!(a.wait_exit(T).success(), "A exits cleanly");

    let phone = Sipp::start("agent_answer.xml", &net_b.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    feature_code(&b, &net_b.ip(40), "*13");
    phone.wait(T).assert_ok(&b);
    waiting_caller.wait(T).assert_ok(&b);
}

/// NATS away while a caller arrives on the node that does not lead: the
/// enqueue finds no leader; once NATS is back the node hands the waiting
/// caller to the leader again, which offers it to the agent signed in on
/// the other node. Nodes on `127.65.0.1` and `127.66.0.1`.
#[test]
fn a_caller_queued_while_nats_is_away_reaches_the_leader_when_it_is_back() {
    let Some(url) = common::shared_store_url("acd_cluster_nats_away") else {
        return;
    };
    let Some(mut nats) = common::nats::Nats::start() else {
        return;
    };
    let (net_a, net_b) = (Net(65), Net(66));
    let (a, b, _) = start_pair(net_a, net_b, &url, &nats.url);
    register(&a, "2001", &net_a.agent(0));
    wait_state(&b, "idle");
    let phone = Sipp::start("agent_answer.xml", &net_a.agent(0), &["-m", "1"]);

    nats.stop();
    let away = Instant::now();
    let waiting_caller = caller(&b, &net_b.carrier());
    common::wait_until("B to find no leader for the caller", T, || {
        b.log()
            .contains("the ACD leader did not take a request")
            .then_some(())
    });
    nats.restart();
    println!("NATS away for {:?}", away.elapsed());
    let back = Instant::now();
    let r = phone.wait(T);
    if r.code != 0 {
        for (n, h) in [("A", &a), ("B", &b)] {
            for l in h.log().lines().filter(|l| {
                (l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR "))
                    && !l.contains("SELECT")
            }) {
                eprintln!("{n}: {l}");
            }
        }
    }
    r.assert_ok(&b);
    waiting_caller.wait(T).assert_ok(&b);
    println!(
        "the caller answered {:?} after NATS came back",
        back.elapsed()
    );
    assert!(
        b.log()
            .contains("a waiting call handed to the ACD leader again"),
        "{}",
        b.tail_log()
    );
}
