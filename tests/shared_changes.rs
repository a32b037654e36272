//! Nodes hear each other's changes (issue 15 §2, docs/ha.md §1): two
//! `hotline serve` nodes sharing one PostgreSQL store. What an admin
//! changes through one node's API is in force on the other as it commits
//! (PostgreSQL `LISTEN`/`NOTIFY`, `switch::follow`), with no restart:
//!
//! - a new agent created on node A: node B lists it, and its phone
//!   registers with node B with the new password;
//! - that registration, taken by node B, is known to node A;
//! - a block-list entry added on node A is on node B's list (the IVR's);
//!   removed on node A, it is gone from node B's;
//! - a recording made on one node is downloaded from the other, whole and
//!   by range, byte for byte (the node asks the one that has it);
//! - each node's `/metrics` counts the other as alive and says it hears
//!   its changes.
//!
//! Addresses: node A on `127.24.0.1`, node B on `127.25.0.1`; the phone on
//! `127.25.0.21`. The recording test: `127.29.0.1` and `127.30.0.1`.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::time::Duration;

use common::api::Api;
use common::recorded::{get, header, one_call, recorded_call};
use common::{Hotline, Net};

const A: Net = Net(24);
const B: Net = Net(25);
const T: Duration = Duration::from_secs(30);

#[test]
fn an_admins_change_on_one_node_is_in_force_on_the_other() {
    let Some(url) = common::shared_store_url("shared_changes") else {
        return;
    };
    let store = format!("[store]\nurl = \"{url}\"\n");
    let a = Hotline::start(A, &store);
    let b = Hotline::start(B, &store);
    let (api_a, api_b) = (Api::new(A), Api::new(B));
    // One login: tokens are shared rows too.
    let token = a.ops_token();

    // A new agent on node A ...
    let (s, v) = api_a.put(
        "/api/v1/admin/agents/1005",
        &token,
        r#"{"user":"1005","password":"pass1005","name":"新坐席","tenant":"default"}"#,
    );
    assert_eq!(s, 201, "{v}");
    // ... is node B's too: listed, and its phone registers there.
    common::wait_until("node B to list the new agent", T, || {
        (api_b
            .get("/api/v1/admin/agents/1005?tenant=default", &token)
            .0
            == 200)
            .then_some(())
    });
    common::register(&b, "1005", &B.agent(0));
    common::wait_until("node A to know the phone registered with node B", T, || {
        (a.counter("/registrations") == 1).then_some(())
    });

    // A block-list entry added on node A is on node B's list ...
    let (s, v) = api_a.post(
        "/api/v1/admin/blacklist",
        &token,
        r#"{"number":"13900000007","reason":"骚扰","tenant":"default"}"#,
    );
    assert_eq!(s, 201, "{v}");
    let listed = |api: &Api| {
        let (s, v) = api.get("/api/v1/admin/blacklist?tenant=default", &token);
        assert_eq!(s, 200, "{v}");
        v.to_string().contains("13900000007")
    };
    common::wait_until("node B to block the number", T, || {
        listed(&api_b).then_some(())
    });
    // ... and removed there, gone from node B's.
    let (s, v) = api_a.delete("/api/v1/admin/blacklist/13900000007?tenant=default", &token);
    assert_eq!(s, 204, "{v}");
    common::wait_until("node B to drop the number", T, || {
        (!listed(&api_b)).then_some(())
    });
    for h in [&a, &b] {
        let http = format!("{}:8080", h.net.ip(1));
        common::wait_until("/metrics to count the other node", T, || {
            let (code, text) = common::http_send(&http, "GET", "/metrics", None, None)?;
            (code == 200
                && text.lines().any(|l| l == "hotline_cluster_peers 1")
                && text.lines().any(|l| l == "hotline_store_following 1"))
            .then_some(())
        });
        assert!(
            !h.log().contains("panicked"),
            "no panic on either node:\n{}",
            h.tail_log()
        );
    }
}

#[test]
fn a_recording_made_on_one_node_is_downloaded_from_the_other() {
    let Some(url) = common::shared_store_url("shared_recording") else {
        return;
    };
    let store = format!("[store]\nurl = \"{url}\"\n");
    let (na, nb) = (Net(29), Net(30));
    let a = Hotline::start(na, &store);
    let b = Hotline::start(nb, &store);
    one_call(&a, "3");
    let (api_a, api_b) = (Api::new(na), Api::new(nb));
    let token = a.ops_token();
    // The record is a shared row: node B lists it.
    let record = recorded_call(&api_b, &token);
    let id = record["recording"]["id"].as_str().expect("recording id");
    let path = format!("/api/v1/recordings/{id}");
    assert!(
        b.data_files(".wav").is_empty(),
        "the file is on node A only"
    );

    let on_a = get(&api_a, &path, Some(&token), None);
    assert_eq!(on_a.status, 200);
    let via_b = get(&api_b, &path, Some(&token), None);
    assert_eq!(
        via_b.status,
        200,
        "{}\n--- B ---\n{}",
        String::from_utf8_lossy(&via_b.body),
        b.tail_log()
    );
    assert_eq!(via_b.body, on_a.body, "byte for byte");
    assert_eq!(
        header(&via_b, "content-type"),
        header(&on_a, "content-type")
    );
    assert_eq!(header(&via_b, "accept-ranges"), "bytes");
    let len = on_a.body.len();
    let part = get(&api_b, &path, Some(&token), Some("bytes=100-1099"));
    assert_eq!(part.status, 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 100-1099/{len}")
    );
    assert_eq!(part.body, on_a.body[100..1100]);

    // Node B checks the token itself; what no node has is 404.
    assert_eq!(get(&api_b, &path, None, None).status, 401);
    let missing = "/api/v1/recordings/default/2020/01/01/nobody";
    assert_eq!(get(&api_b, missing, Some(&token), None).status, 404);
}
