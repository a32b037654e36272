//! Readiness follows the shared store (issue 15 §4, docs/ha.md §6): a node
//! on PostgreSQL whose database goes away answers `GET /readyz` with 503
//! naming the store (never its password) while `GET /livez` stays 200,
//! and is ready again once the database is back, without a restart.
//!
//! Needs the throw-away PostgreSQL server `./scripts/test` starts
//! (`HOTLINE_TEST_PG_URL`); without it the test says so and passes, unless
//! `HOTLINE_TEST_PG_REQUIRED` is set.

#![allow(clippy::disallowed_methods)] // the test is a shell: it reads the clock

mod common;

use std::time::{Duration, Instant};

use common::{Hotline, Net};

#[test]
fn a_node_whose_store_goes_away_is_not_ready_until_it_is_back() {
    let Some(admin_url) = common::pg_admin_url() else {
        return;
    };
    let net = Net(54);
    let db = format!("readiness_{}", std::process::id());
    let url = common::pg_fresh_database(&admin_url, &db);
    let h = Hotline::start(net, &format!("[store]\nurl = \"{url}\"\n"));
    let http = format!("{}:8080", net.ip(1));
    let probe = |path: &str| {
        let (code, body) = common::http_send(&http, "GET", path, None, None).expect(path);
        (
            code,
            serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        )
    };
    let wait_ready = |want: u16, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, body) = probe("/readyz");
            if code == want {
                return body;
            }
            assert!(Instant::now() < deadline, "{what}: /readyz {code} {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let ready = wait_ready(200, "ready at start");
    assert_eq!(ready["checks"]["store"], "ok", "{ready}");

    // The database goes away under the node.
    let gone = Instant::now();
    common::pg_admin(&admin_url, &format!("DROP DATABASE {db} WITH (FORCE)"));
    let not_ready = wait_ready(503, "not ready without its store");
    println!("store gone -> /readyz 503 in {:?}", gone.elapsed());
    let why = not_ready["checks"]["store"].as_str().unwrap_or_default();
    assert!(
        why.contains("127.0.0.1") && why.contains(&db),
        "{not_ready}"
    );
    assert_eq!(not_ready["checks"]["draining"], "ok", "{not_ready}");
    assert_eq!(probe("/livez").0, 200, "alive all along");

    // Back: ready again, the same process.
    common::pg_admin(&admin_url, &format!("CREATE DATABASE {db}"));
    let back = Instant::now();
    wait_ready(200, "ready again once the database is back");
    println!("store back -> /readyz 200 in {:?}", back.elapsed());
    assert!(h.healthz()["uptime_secs"].is_u64());
    drop(h);
    common::pg_admin(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
}
