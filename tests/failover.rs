//! A node dies, the hotline goes on (issue 15 §3, docs/ha.md §3–4): the
//! shipped Kamailio edge in front of two `hotline serve` nodes that share
//! one PostgreSQL store and one NATS server (`[store] nats`: one ACD), a
//! webhook receiver for the events, SIPp agent phones registered through
//! the edge and SIPp carriers calling the edge. Node A leads the ACD.
//!
//! Before: agents A01 and A02 talk to callers, one call held by each node;
//! two more callers wait in the queue, one on each node. Then `kill -9` of
//! node A, and:
//!
//! - (a) two new carrier calls sent at once, one of them first routed to
//!   the dead node, are taken by node B (Kamailio's probe and the failover
//!   of the INVITE in progress);
//! - (b) node B takes the ACD lease (epoch 2) and rebuilds the queue: the
//!   caller waiting on B keeps its place ahead of the new calls;
//! - (c) A02, talking on B's call, stays talking; A01, whose call died with
//!   A, stays signed in (after-call work or idle, not signed out);
//! - (d) B closes A's talking call with BYE to both legs (carrier and agent
//!   phone, through the edge) and its `call.ended` says `node-failure`;
//! - (e) every event in the shared outbox reaches the webhook receiver;
//!   none lost (duplicates, if an acknowledgement was cut off by the kill,
//!   carry the same id and are counted);
//! - (f) node A, started again on its data, is probed back into the
//!   rotation and takes a call; B keeps the lease, nothing else restarted.
//!
//! Times are printed, never asserted. Addresses: node A, the edge (`.5`),
//! carriers (`.10`–`.16`), phones (`.21`, `.22`) on `127.59.0.0/24`; node B
//! on `127.60.0.1`. Needs the `nats` feature (`./scripts/test` runs it so).

#![cfg(feature = "nats")]
#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;
#[path = "events_support/mod.rs"]
mod events_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::kamailio::{edge_ip, Kamailio};
use common::{Hotline, Net, Sipp};
use events_support::{Receiver, Server};

const NET_A: Net = Net(59);
const NET_B: Net = Net(60);
const T: Duration = Duration::from_secs(90);

fn node_uri(net: Net) -> String {
    format!("sip:{}:5060", net.ip(1))
}

/// Node `name` on `net`: the edge is its only carrier; the shared store,
/// NATS and the webhook.
fn node_config(net: Net, name: &str, dir: &std::path::Path, shared: &Shared) -> String {
    let extra = format!(
        "{}\n[store]\nurl = \"{}\"\nnode = \"{name}\"\nnats = \"{}\"\n\n[[webhook]]\nname = \"tickets\"\nurl = \"{}\"\nsecret = \"s3cret\"\ntimeout_secs = 2\nretry_base_ms = 200\nretry_cap_secs = 2\n",
        common::general_queue(6, 6, &[("2001", "A01"), ("2002", "A02")]),
        shared.url,
        shared.nats,
        shared.hook
    );
    let text = common::config(net, &dir.join("var"), &extra);
    let carrier = format!("\"{}/32\"", net.carrier());
    assert!(text.contains(&carrier), "the test config's trunk changed");
    // The SIPp legs send no RTP: the talking calls last until hung up.
    assert!(text.contains("rtp_timeout_secs = 20"));
    text.replace(&carrier, &format!("\"{}/32\"", edge_ip(NET_A)))
        .replace("rtp_timeout_secs = 20", "rtp_timeout_secs = 300")
}

struct Shared {
    url: String,
    nats: String,
    hook: String,
}

fn sql(url: &str, q: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("store");
    c.query_one(q, &[]).expect(q).get(0)
}

fn state(h: &Hotline, agent: &str) -> String {
    h.agent_state(agent)["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn waiting(h: &Hotline) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&h.acd_stats().unwrap_or_default()).unwrap_or_default();
    v["stats"]["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "general"))
        .and_then(|g| g["calls_waiting"].as_u64())
        .unwrap_or(0)
}

fn active(h: &Hotline) -> u64 {
    h.counter("/calls/active")
}

/// A carrier call from `ip` through the edge with `scenario`.
fn call(edge: &Kamailio, ip: &str, scenario: &str) -> Sipp {
    Sipp::start(
        scenario,
        ip,
        &["-s", "12399", "-m", "1", "-timeout", "120s", &edge.addr],
    )
}

fn phone(edge: &Kamailio, i: u8, scenario: &str, calls: &str) -> Sipp {
    Sipp::start(
        scenario,
        &NET_A.agent(i),
        &["-m", calls, "-timeout", "120s", &edge.addr],
    )
}

fn ok(what: &str, s: Sipp, edge: &Kamailio, nodes: &[&Hotline]) {
    let r = s.wait(T);
    assert_eq!(
        r.code,
        0,
        "{what} failed:\n{}\n--- edge ---\n{}\n--- nodes ---\n{}",
        r.errors,
        edge.tail(),
        nodes
            .iter()
            .map(|h| h.tail_log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

#[test]
fn kill_9_of_the_leading_node_keeps_calls_queues_agents_and_events() {
    let Some(url) = common::shared_store_url("failover") else {
        return;
    };
    let Some(nats) = common::nats::Nats::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let receiver = Receiver::new(b"s3cret");
    let server = rt.block_on(Server::start(receiver.clone()));
    let shared = Shared {
        url: url.clone(),
        nats: nats.url.clone(),
        hook: server.url(),
    };
    let dir_a = tempfile::tempdir().expect("tempdir");
    let config_a = node_config(NET_A, "a", dir_a.path(), &shared);
    let mut a = Hotline::start_with(NET_A, dir_a, &config_a);
    common::wait_until("node A to lead the ACD", T, || {
        a.log().contains("this node leads the ACD").then_some(())
    });
    let dir_b = tempfile::tempdir().expect("tempdir");
    let config_b = node_config(NET_B, "b", dir_b.path(), &shared);
    let b = Hotline::start_with(NET_B, dir_b, &config_b);
    let carriers: Vec<String> = (10..=16).map(|h| NET_A.ip(h)).collect();
    let edge = Kamailio::start(NET_A, &[node_uri(NET_A), node_uri(NET_B)], &carriers);

    // Agents register through the edge (either node takes it).
    for (i, user) in [(0, "2001"), (1, "2002")] {
        let pass = format!("pass{user}");
        let r = Sipp::start(
            "agent_register.xml",
            &NET_A.agent(i),
            &["-s", user, "-ap", &pass, "-m", "1", &edge.addr],
        );
        ok("an agent's REGISTER through the edge", r, &edge, &[&a, &b]);
    }
    for agent in ["A01", "A02"] {
        common::wait_until(&format!("{agent} idle"), T, || {
            (state(&b, agent) == "idle").then_some(())
        });
    }

    // Two talking calls, one per node (the edge takes turns).
    let phones = [
        phone(&edge, 0, "agent_answer_cut_off.xml", "1"),
        phone(&edge, 1, "agent_answer_cut_off.xml", "1"),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let talk_1 = call(&edge, &carriers[0], "carrier_call_cut_off.xml");
    common::wait_until("the first call talking", T, || {
        (active(&a) + active(&b) == 1 && waiting(&b) == 0).then_some(())
    });
    let talk_2 = call(&edge, &carriers[1], "carrier_call_cut_off.xml");
    common::wait_until("both calls talking", T, || {
        (state(&b, "A01") == "talking" && state(&b, "A02") == "talking").then_some(())
    });
    assert_eq!(
        (active(&a), active(&b)),
        (1, 1),
        "the edge gave each node one call:\n{}",
        edge.tail()
    );
    // Which agent talks on A's call: the one whose phone's leg A owns.
    let on_a = if sql(
        &url,
        "SELECT count(*) FROM dialog_leg WHERE owner = 'a' AND remote_party LIKE '%sip:2001@%'",
    ) > 0
    {
        "A01"
    } else {
        "A02"
    };
    let leg_owners = sql(&url, "SELECT count(DISTINCT owner) FROM dialog_leg");
    assert_eq!(leg_owners, 2, "each node owns its call's legs");

    // Two callers wait, one on each node.
    let mut queued_b = None;
    let mut queued_all = Vec::new();
    for ip in &carriers[2..4] {
        let before = b.counter("/calls/started");
        let s = call(&edge, ip, "carrier_queue_call.xml");
        common::wait_until("a caller waiting", T, || {
            (waiting(&b) as usize == queued_all.len() + 1).then_some(())
        });
        if b.counter("/calls/started") > before {
            queued_b = Some(queued_all.len());
        }
        queued_all.push(s);
    }
    let queued_b = queued_b.expect("one waiting caller on node B");
    let mut waiting_on_b = queued_all.swap_remove(queued_b);
    let waiting_on_a = queued_all.pop().expect("one waiting caller on node A");

    // kill -9 the leader.
    let b_started = b.counter("/calls/started");
    a.kill9();
    let killed = Instant::now();
    let skip = edge.edge_lines().len();
    let mut new_calls = vec![
        call(&edge, &carriers[4], "carrier_queue_call.xml"),
        call(&edge, &carriers[5], "carrier_queue_call.xml"),
    ];
    // (a) both reach B, one after the edge gave up on A.
    let taken = common::wait_until("B to take both new calls", T, || {
        (b.counter("/calls/started") == b_started + 2).then(|| killed.elapsed())
    });
    let failed_over = edge
        .edge_lines()
        .into_iter()
        .skip(skip)
        .filter(|l| l.contains("failed over from"))
        .count();
    println!(
        "(a) kill -9 -> both new calls on B after {taken:?} ({failed_over} failed over from A)"
    );

    // (b) B leads at epoch 2 with B's caller and the new ones queued.
    let lead = common::wait_until("B to lead the ACD", T, || {
        b.log()
            .lines()
            .find(|l| l.contains("this node leads the ACD"))
            .map(|l| (l.to_string(), killed.elapsed()))
    });
    println!("(b) kill -9 -> B leads after {:?}: {}", lead.1, lead.0);
    assert!(lead.0.contains("epoch=2"), "{}", lead.0);
    common::wait_until("three callers waiting on B", T, || {
        (waiting(&b) == 3).then_some(())
    });
    assert!(
        !waiting_on_b.finished(),
        "B's waiting caller is still there"
    );

    // (c) A02 or A01, whichever talks on B's call, still talks; the other
    // stays signed in.
    let on_b = if on_a == "A01" { "A02" } else { "A01" };
    assert_eq!(state(&b, on_b), "talking", "{on_b} talks on B's call");
    let freed = state(&b, on_a);
    assert!(
        freed != "logged_out" && !freed.is_empty(),
        "{on_a}, whose call died with A, stays signed in: {freed}"
    );
    println!("(c) after the kill: {on_b} talking, {on_a} {freed}");

    // (d) A's talking call: BYE to the carrier and to the phone.
    let (talk_on_a, talk_on_b) = if on_a == "A01" {
        (talk_1, talk_2)
    } else {
        (talk_2, talk_1)
    };
    let [phone_1, phone_2] = phones;
    let (phone_on_a, phone_on_b) = if on_a == "A01" {
        (phone_1, phone_2)
    } else {
        (phone_2, phone_1)
    };
    ok(
        "the carrier leg of A's call closed by B",
        talk_on_a,
        &edge,
        &[&b],
    );
    println!(
        "(d) kill -9 -> carrier leg of A's call closed after {:?}",
        killed.elapsed()
    );
    ok(
        "the agent leg of A's call closed by B",
        phone_on_a,
        &edge,
        &[&b],
    );
    println!(
        "(d) kill -9 -> agent leg of A's call closed after {:?}",
        killed.elapsed()
    );
    common::wait_until("A's call.ended (node-failure)", T, || {
        (sql(
            &url,
            "SELECT count(*) FROM outbox_event WHERE kind = 'call.ended'
             AND body::text LIKE '%node-failure%'",
        ) >= 1)
            .then_some(())
    });

    // (b) continued: the freed agent, out of its after-call work (6 s
    // from B's lead), takes B's waiting caller first.
    let agent_index = if on_a == "A01" { 0 } else { 1 };
    let answering = phone(&edge, agent_index, "agent_answer.xml", "3");
    common::wait_until("B's waiting caller answered", T, || {
        waiting_on_b.finished().then_some(())
    });
    assert!(
        new_calls.iter_mut().all(|c| !c.finished()),
        "a caller who came after the kill was served before B's waiting caller"
    );
    ok("B's waiting caller", waiting_on_b, &edge, &[&b]);
    for c in new_calls {
        ok("a caller after the kill", c, &edge, &[&b]);
    }
    ok("the freed agent's phone", answering, &edge, &[&b]);
    println!("(b) B's waiting caller, then the two new ones, answered by {on_a}");

    // The call on B ends by the API (a supervisor's force-release).
    let (code, body) = b
        .post_as_ops(
            "/api/v1/agent/call/hangup",
            &format!("{{\"agent_id\": \"{on_b}\"}}"),
        )
        .expect("hangup");
    let calls_now = common::http_send(
        &format!("{}:8080", NET_B.ip(1)),
        "GET",
        "/api/v1/calls/active",
        Some(&b.ops_token()),
        None,
    );
    assert_eq!(
        code,
        200,
        "{body}\nB's calls: {calls_now:?}\n{}",
        b.tail_log()
    );
    ok("B's talking call (carrier)", talk_on_b, &edge, &[&b]);
    ok("B's talking call (phone)", phone_on_b, &edge, &[&b]);
    // The rebuilt ACD let the agent go with the call.
    common::wait_until(&format!("{on_b} done talking"), T, || {
        (state(&b, on_b) != "talking").then_some(())
    });
    drop(waiting_on_a);

    // (f) A comes back and rejoins.
    let skip = edge.edge_lines().len();
    let restarting = Instant::now();
    let dir = std::mem::replace(&mut a.dir, tempfile::tempdir().expect("tempdir"));
    drop(a);
    let a = Hotline::start_with(NET_A, dir, &config_a);
    edge.wait_line("A back in the rotation", skip, T, |l| {
        l.contains(&format!("node {} up", node_uri(NET_A)))
    });
    let mut rounds = 0;
    while a.counter("/calls/started") == 0 {
        rounds += 1;
        assert!(
            rounds <= 4,
            "the restarted node gets no call:\n{}",
            edge.tail()
        );
        // Either agent may take it: both phones answer.
        let phones = [
            phone(&edge, 0, "agent_answer.xml", "1"),
            phone(&edge, 1, "agent_answer.xml", "1"),
        ];
        std::thread::sleep(Duration::from_millis(300));
        ok(
            "a call after A's return",
            call(&edge, &carriers[6], "carrier_queue_call.xml"),
            &edge,
            &[&a, &b],
        );
        let mut phones = phones;
        common::wait_until("an agent's phone done with the call", T, || {
            phones.iter_mut().any(|p| p.finished()).then_some(())
        });
    }
    println!(
        "(f) A restarted: a call on it {:?} after the restart ({rounds} round(s))",
        restarting.elapsed()
    );
    // B keeps the lease: A, back, follows (its log holds its first run's
    // lines too: the store says who leads).
    assert_eq!(sql(&url, "SELECT epoch FROM acd_lease"), 2);
    assert_eq!(
        sql(&url, "SELECT count(*) FROM acd_lease WHERE holder = 'b'"),
        1,
        "B keeps the lease"
    );

    // Every call that started ends once: those the kill cut off (A's
    // talking and waiting callers) closed by B as node failures, the last
    // ones once their after-call work is over.
    let started = sql(
        &url,
        "SELECT count(*) FROM outbox_event WHERE kind = 'call.started'",
    );
    common::wait_until("a call.ended for every call", T, || {
        (sql(
            &url,
            "SELECT count(DISTINCT call_id) FROM outbox_event WHERE kind = 'call.ended'",
        ) == started)
            .then_some(())
    });
    assert_eq!(
        sql(
            &url,
            "SELECT count(*) FROM outbox_event WHERE kind = 'call.ended'"
        ),
        started,
        "one call.ended per call"
    );
    let failures = sql(
        &url,
        "SELECT count(*) FROM outbox_event WHERE kind = 'call.ended' AND body::text LIKE '%node-failure%'",
    );
    println!("(e) {started} calls, each with one call.ended ({failures} closed by B for dead A)");
    // (e) Every event reached the receiver.
    let ids: Vec<String> = {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("store");
        c.query("SELECT id FROM outbox_event ORDER BY seq", &[])
            .expect("ids")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let delivered = common::wait_until("every event delivered", T, || {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in receiver.receipts() {
            *seen.entry(r.id).or_default() += 1;
        }
        ids.iter().all(|id| seen.contains_key(id)).then_some(seen)
    });
    let twice = delivered.values().filter(|n| **n > 1).count();
    println!(
        "(e) {} events, all delivered; {twice} delivered again after the kill (same id)",
        ids.len()
    );
    drop(server);
}
