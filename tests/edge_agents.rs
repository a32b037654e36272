//! Agents behind the edge (issue 15 §2, docs/ha.md §2): two `hotline
//! serve` nodes sharing one PostgreSQL store, Kamailio running the shipped
//! `deploy/kamailio/kamailio.cfg` in front of them, a SIPp agent phone and
//! a SIPp carrier that know only the edge. Checked:
//!
//! - the phone registers through the edge (digest challenge and answer,
//!   each REGISTER handed to the next node, the edge adding its Path); the
//!   binding, with its Path, is known to both nodes: the node that did not
//!   take the REGISTER hears it from the store (`LISTEN`/`NOTIFY`);
//! - the phone dials a feature code through the edge: it goes to the node
//!   its REGISTERs went to (the edge hashes both over the From URI), which
//!   authenticates and applies it;
//! - carrier calls for a number that rings agent 1001 are taken by both
//!   nodes, and each node rings the phone through the Path (the edge
//!   relays to the phone's address and record-routes): the phone answers,
//!   the carrier's BYE reaches it through the edge;
//! - another phone behind the edge guessing passwords gets its own
//!   address blocked (read from the Path the edge wrote), not the edge's:
//!   the first phone still registers through the edge;
//! - the phone's unregistration, taken by one node, empties both.
//!
//! Which node takes which request is printed, never assumed beyond "both,
//! eventually". Addresses: node A and the edge (`.5`), carrier (`.10`),
//! agent (`.21`) on `127.22.0.0/24`; node B on `127.23.0.1`.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::time::Duration;

use common::kamailio::{edge_ip, Kamailio};
use common::{Hotline, Net, Sipp};

const NET_A: Net = Net(22);
const NET_B: Net = Net(23);
const T: Duration = Duration::from_secs(60);

fn node_uri(net: Net) -> String {
    format!("sip:{}:5060", net.ip(1))
}

/// A node on `net` sharing the store at `url`, whose carrier trunk admits
/// only the edge (on `NET_A`).
fn start_node(net: Net, url: &str) -> Hotline {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(
        net,
        &dir.path().join("var"),
        &format!("[store]\nurl = \"{url}\"\n"),
    );
    let carrier = format!("\"{}/32\"", net.carrier());
    assert!(text.contains(&carrier), "the test config's trunk changed");
    let text = text
        .replace(&carrier, &format!("\"{}/32\"", edge_ip(NET_A)))
        .replace(
            "min_expires = 60",
            "min_expires = 60\nauth_failures_before_block = 2",
        );
    Hotline::start_with(net, dir, &text)
}

fn registrations(h: &Hotline) -> u64 {
    h.counter("/registrations")
}

/// The phone at `NET_A.agent(0)` runs `scenario` for 1001 against the edge.
fn phone(scenario: &str, edge: &Kamailio, nodes: &[&Hotline]) {
    let r = Sipp::start(
        scenario,
        &NET_A.agent(0),
        &["-s", "1001", "-ap", "pass1001", "-m", "1", &edge.addr],
    )
    .wait(T);
    assert_eq!(
        r.code,
        0,
        "{scenario} through the edge failed:\n{}\n--- edge ---\n{}\n--- nodes ---\n{}",
        r.errors,
        edge.tail(),
        nodes
            .iter()
            .map(|h| h.tail_log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
}

/// The edge's REGISTER lines after the first `skip`: the node each went to.
fn register_hops(edge: &Kamailio, skip: usize) -> Vec<String> {
    edge.edge_lines()
        .into_iter()
        .skip(skip)
        .filter(|l| l.starts_with("edge: REGISTER"))
        .filter_map(|l| l.rsplit(" to ").next().map(str::to_string))
        .collect()
}

#[test]
fn agents_register_through_the_edge_and_either_node_rings_them_through_its_path() {
    let Some(url) = common::shared_store_url("edge_agents") else {
        return;
    };
    let a = start_node(NET_A, &url);
    let b = start_node(NET_B, &url);
    let nodes = [&a, &b];
    let edge = Kamailio::start(
        NET_A,
        &[node_uri(NET_A), node_uri(NET_B)],
        &[NET_A.carrier()],
    );

    // 1. The phone registers through the edge; both nodes know it.
    let skip = edge.edge_lines().len();
    phone("agent_register.xml", &edge, &nodes);
    let hops = register_hops(&edge, skip);
    println!("REGISTER (challenge, then answer) went to: {hops:?}");
    assert_eq!(hops.len(), 2, "{}", edge.tail());
    for h in nodes {
        common::wait_until("both nodes to know the phone", T, || {
            (registrations(h) == 1).then_some(())
        });
    }
    let stored: String = postgres::Client::connect(&url, postgres::NoTls)
        .expect("store")
        .query_one("SELECT path FROM registration WHERE aor = '1001'", &[])
        .expect("the binding is stored")
        .get(0);
    println!("stored Path: {stored}");
    assert!(
        stored.contains(&edge_ip(NET_A)) && stored.contains("received="),
        "the binding keeps the edge's Path with the phone's address: {stored:?}"
    );

    // 1b. A feature code from the phone: to the REGISTER's node.
    let skip = edge.edge_lines().len();
    let r = Sipp::start(
        "edge_agent_feature_code.xml",
        &NET_A.agent(0),
        &[
            "-s", "*11", "-key", "agent", "1001", "-au", "1001", "-ap", "pass1001", "-m", "1",
            &edge.addr,
        ],
    )
    .wait(T);
    assert_eq!(
        r.code,
        0,
        "feature code through the edge:\n{}\n--- edge ---\n{}\n--- A ---\n{}\n--- B ---\n{}",
        r.errors,
        edge.tail(),
        a.tail_log(),
        b.tail_log()
    );
    let code_hops: Vec<String> = edge
        .edge_lines()
        .into_iter()
        .skip(skip)
        .filter(|l| l.starts_with("edge: feature code"))
        .filter_map(|l| l.rsplit(" to ").next().map(str::to_string))
        .collect();
    println!("feature code went to: {code_hops:?}");
    assert!(
        !code_hops.is_empty() && code_hops.iter().all(|h| *h == hops[0]),
        "the feature code goes where the REGISTERs went ({hops:?}): {code_hops:?}"
    );

    // 2. Calls ring the phone from both nodes, through the edge.
    let mut rounds = 0;
    while a.counter("/calls/started") == 0 || b.counter("/calls/started") == 0 {
        rounds += 1;
        assert!(rounds <= 4, "both nodes should have taken a call by now");
        let skip = edge.edge_lines().len();
        let agent = Sipp::start(
            "agent_answer.xml",
            &NET_A.agent(0),
            &["-s", "1001", "-m", "1", &edge.addr],
        );
        let carrier = Sipp::start(
            "edge_carrier_call.xml",
            &NET_A.carrier(),
            &["-s", "12345", "-m", "1", "-d", "1500", &edge.addr],
        );
        for (who, r) in [("carrier", carrier.wait(T)), ("agent", agent.wait(T))] {
            assert_eq!(
                r.code,
                0,
                "{who} SIPp failed:\n{}\n--- edge ---\n{}\n--- A ---\n{}\n--- B ---\n{}",
                r.errors,
                edge.tail(),
                a.tail_log(),
                b.tail_log()
            );
        }
        let to_phone: Vec<String> = edge
            .edge_lines()
            .into_iter()
            .skip(skip)
            .filter(|l| l.contains("from node") && l.contains("to phone"))
            .collect();
        println!("call {rounds}: {to_phone:?}");
        assert_eq!(to_phone.len(), 1, "{}", edge.tail());
    }
    println!(
        "calls taken: node A {}, node B {}",
        a.counter("/calls/started"),
        b.counter("/calls/started")
    );

    // 3. Another phone guesses 1002's password through the edge: its own
    // address is blocked on the node(s) it met, never the edge's; the
    // first phone registers again through the edge.
    let guesser = NET_A.agent(1);
    let _ = Sipp::start(
        "agent_register_wrong.xml",
        &guesser,
        &["-s", "1002", "-ap", "wrong", "-m", "6", &edge.addr],
    )
    .wait(T);
    let blocked = |ip: &str| {
        nodes
            .iter()
            .filter(|h| {
                h.log()
                    .lines()
                    .any(|l| l.contains("address blocked") && l.contains(&format!("ip={ip}")))
            })
            .count()
    };
    assert!(
        blocked(&guesser) >= 1,
        "the guesser's own address is blocked:\n{}\n---\n{}",
        a.tail_log(),
        b.tail_log()
    );
    assert_eq!(
        blocked(&edge_ip(NET_A)),
        0,
        "the edge's address is never blocked"
    );
    phone("agent_register.xml", &edge, &nodes);

    // 4. Unregistered through the edge: gone from both nodes.
    phone("agent_unregister.xml", &edge, &nodes);
    for h in nodes {
        common::wait_until("both nodes to forget the phone", T, || {
            (registrations(h) == 0).then_some(())
        });
    }
}
