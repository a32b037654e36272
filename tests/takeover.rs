//! A node dies, a survivor closes its calls (issue 15 §3 (d), docs/ha.md
//! §4): two real `hotline serve` nodes share one PostgreSQL store; a call
//! is up on node A (a SIPp carrier and a SIPp agent phone, both waiting
//! for hotline's BYE). First the store goes away for both nodes for longer
//! than the dead time and comes back: nobody is taken for dead, the call
//! stays up. Then A is killed with `kill -9`. Node B, which never saw
//! the call, finds A's heartbeat stale, takes A's legs from the store and
//! sends each its BYE from the saved dialog state: the carrier leg is not
//! left billing, and closes the call's record in the shared outbox
//! (`call.ended`, a system fault, `node-failure`). Times are printed, not
//! asserted.
//!
//! SIPp answers the BYE to the address it was started against (the dead
//! node), not to the BYE's Via (RFC 3261 §18.2.2) as a carrier's SBC or
//! Kamailio does; so the survivor's BYE transactions end at timer F and
//! the legs leave the store then.
//!
//! Needs the throw-away PostgreSQL server `./scripts/test` starts
//! (`HOTLINE_TEST_PG_URL`); without it the test says so and passes, unless
//! `HOTLINE_TEST_PG_REQUIRED` is set.
#![allow(clippy::disallowed_methods)] // the test is a shell: it reads the clock

mod common;

use std::time::{Duration, Instant};

use common::{register, Hotline, Net, Sipp};

const A: Net = Net(26);
const B: Net = Net(27);

const DID: &str = r#"
[[did]]
number = "12370"
ring = "sequential"
agents = ["1001"]
"#;

fn sql(url: &str, sql: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connection");
    c.query_one(sql, &[]).expect(sql).get(0)
}

#[test]
fn a_store_outage_hangs_up_nothing_and_a_survivor_closes_a_killed_nodes_call() {
    let Some(admin) = common::pg_admin_url() else {
        return;
    };
    let db = format!("takeover_{}", std::process::id());
    let url = common::pg_fresh_database(&admin, &db);
    let store = format!("{DID}\n[store]\nurl = \"{url}\"\n");

    let mut a = Hotline::start(A, &store);
    let b = Hotline::start(B, &store);
    register(&a, "1001", &A.agent(0));
    let agent = Sipp::start(
        "agent_answer_cut_off.xml",
        &A.agent(0),
        &["-m", "1", "-timeout", "120s"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let carrier = Sipp::start(
        "carrier_call_cut_off.xml",
        &A.carrier(),
        &["-s", "12370", "-m", "1", "-timeout", "120s", &A.sip()],
    );
    // Both legs confirmed and in the store, owned by A.
    let owned_by_a = format!(
        "SELECT COUNT(*) FROM dialog_leg WHERE owner = '{}'",
        A.sip()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while sql(&url, &owned_by_a) < 2 {
        assert!(
            Instant::now() < deadline,
            "the call's two legs in the store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));

    // First the store goes away for both nodes (8 s, longer than the dead
    // time): when it is back, neither takes the other for dead; the call
    // on A stays up and its legs stay A's.
    common::pg_admin(
        &admin,
        &format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ),
    );
    std::thread::sleep(Duration::from_secs(8));
    common::pg_admin(
        &admin,
        &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"),
    );
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(
        a.healthz()["calls"]["active"],
        1,
        "the call on A is still up"
    );
    assert_eq!(sql(&url, &owned_by_a), 2, "A still owns its legs");
    assert!(
        !b.log().contains("a node sharing the store is dead"),
        "no take-over after a store outage: {}",
        b.tail_log()
    );

    let killed = Instant::now();
    a.kill9();
    carrier.wait(Duration::from_secs(90)).assert_ok(&b);
    println!(
        "kill -9 -> carrier leg closed by the survivor in {:?}",
        killed.elapsed()
    );
    agent.wait(Duration::from_secs(90)).assert_ok(&b);
    println!(
        "kill -9 -> agent leg closed by the survivor in {:?}",
        killed.elapsed()
    );
    let log = b.log();
    assert!(
        log.contains("a node sharing the store is dead"),
        "{}",
        b.tail_log()
    );
    // Nothing left: the survivor removed the legs it closed. (SIPp answers
    // a BYE to the peer it was started against, the dead node, not to the
    // BYE's Via as RFC 3261 §18.2.2 asks; so the survivor's BYE
    // transactions end at timer F, 32 s, and only then are the legs gone.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while sql(&url, "SELECT COUNT(*) FROM dialog_leg") > 0 {
        assert!(Instant::now() < deadline, "the closed legs removed");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "kill -9 -> the dead node's legs gone from the store in {:?}",
        killed.elapsed()
    );
    assert_eq!(
        b.healthz()["calls"]["active"],
        0,
        "B had no call of its own"
    );
    drop(b);
    drop(a);
    common::pg_admin(
        &admin,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
}
