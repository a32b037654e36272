//! Issue 7 §2: "`kill -9` at any moment loses nothing". A child process
//! (this test binary, re-run) appends events one transaction at a time and
//! prints each id once `append` returned; the parent SIGKILLs it mid-stream
//! and checks every acknowledged id is in the reopened outbox.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hotline::events::backoff::RetryPolicy;
use hotline::events::outbox::{NewEvent, OutboxConfig};

/// The data directory the child appends in (its `events.db`, or its
/// PostgreSQL database when the suite runs on PostgreSQL).
const CHILD_ENV: &str = "OUTBOX_KILL9_CHILD_DATA";

/// The child's half: does nothing unless run by `kill_9_loses_no_acknowledged_append`.
#[test]
fn kill9_child() {
    let Ok(data) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ob = common::open_outbox(std::path::Path::new(&data), OutboxConfig::default());
    ob.register_sink("webhook", RetryPolicy::default())
        .expect("register");
    // Bounded: the parent kills it long before the end.
    for i in 0..200_000u32 {
        let id = format!("k{i}");
        ob.append(&[NewEvent {
            id: id.clone(),
            call_id: Some(format!("c{}", i % 17)),
            kind: "call.step".into(),
            body_json: format!(r#"{{"i":{i}}}"#),
        }])
        .expect("append");
        println!("acked {id}");
    }
}

#[test]
fn kill_9_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child");
        if let Some(id) = line.strip_prefix("acked ") {
            acked.push(id.to_string());
            if acked.len() == 2_000 {
                child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
                break;
            }
        }
    }
    let _ = child.wait();
    assert_eq!(acked.len(), 2_000, "child stopped early");

    let ob = common::open_outbox(data, OutboxConfig::default());
    ob.register_sink("webhook", RetryPolicy::default())
        .expect("register");
    let st = ob.stats(0).expect("stats");
    let stored = st[0].pending + st[0].in_backoff;
    assert!(
        stored >= acked.len() as u64,
        "{stored} stored < {} acked",
        acked.len()
    );
    // Every acknowledged id is there (and deliverable): ack them all.
    let ids: Vec<&str> = acked.iter().map(String::as_str).collect();
    assert_eq!(ob.ack_many("webhook", &ids).expect("ack"), acked.len());
}
