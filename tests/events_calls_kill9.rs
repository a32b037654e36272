//! Issue 7's "done when": a real HTTP server on loopback receives every
//! event of 200 SIPp calls, exactly once per event id (duplicates only on
//! retry), in per-call order, while it answers 500s, times out, is down
//! (connection refused) and recovers; and hotline itself is killed with
//! `kill -9` mid-run and restarted: the restart delivers the rest, and the
//! calls the crash cut off get their (incomplete) `call.ended`.
//!
//! The source of truth is hotline's own outbox (events.db): every event it
//! holds must have reached the receiver.

mod common;
mod events_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{Hotline, Net, Sipp};
use events_support::{Receiver, Server, FAIL_500, OK, SLOW};

const FLOW: &str = r#"
name = "kill-line"
dids = ["12399"]
entry = "welcome"
[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
next = "menu"
[nodes.menu]
kind = "menu"
prompts = ["ivr_12345_menu"]
timeout_secs = 10
retries = 1
fallback = "bye"
[nodes.menu.options]
"1" = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

#[test]
fn every_event_of_200_sipp_calls_arrives_through_webhook_failures_and_a_kill_9() {
    let net = Net(115);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rx = Arc::new(Receiver {
        slow: Duration::from_millis(1500),
        ..Arc::into_inner(Receiver::new(b"s3cret")).unwrap()
    });
    rx.mode.store(FAIL_500, Ordering::SeqCst);
    let mut server = rt.block_on(Server::start(rx.clone()));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(dir.path().join("flows/line.toml"), FLOW).unwrap();
    let data = dir.path().join("var");
    let extra = format!(
        r#"
[ivr]
flows_dir = "{flows}"

[[webhook]]
name = "tickets"
url = "{url}"
secret = "s3cret"
timeout_secs = 1
retry_base_ms = 200
retry_cap_secs = 2
max_attempts = 1000
"#,
        flows = dir.path().join("flows").display(),
        url = server.url(),
    );
    let text = common::config(net, &data, &extra);
    let mut h = Hotline::start_with(net, dir, &text);

    // 200 calls, 25 per second, each 3 s of RTP then BYE (the carrier).
    let sipp = Sipp::start(
        "carrier_call.xml",
        &net.carrier(),
        &[
            "-s",
            "12399",
            "-m",
            "200",
            "-r",
            "25",
            "-l",
            "100",
            &net.sip(),
        ],
    );
    // The platform misbehaves: 500s, then too slow (past the 1 s timeout),
    // then gone (connection refused) …
    std::thread::sleep(Duration::from_secs(2));
    rx.mode.store(SLOW, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    rt.block_on(server.stop());
    std::thread::sleep(Duration::from_millis(1500));
    // … and hotline crashes mid-run, with calls up.
    let active = h.counter("/calls/active");
    assert!(active > 0, "calls are up when hotline dies");
    h.kill9();
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    std::thread::sleep(Duration::from_millis(500));
    rt.block_on(server.restart());
    rx.mode.store(OK, Ordering::SeqCst);
    // SIPp goes on against the restarted hotline (calls cut off fail).
    let result = sipp.wait(Duration::from_secs(90));
    eprintln!(
        "sipp exit code {} (calls cut off by the crash fail)",
        result.code
    );
    h.wait_for("calls to end", Duration::from_secs(30), |v| {
        v["calls"]["active"] == 0
    });

    // Everything the outbox holds reaches the receiver (bounded wait).
    let data = h.dir.path().join("var");
    let db = data.join("events.db");
    let mut stored = common::stored_events(&data);
    for _ in 0..600 {
        stored = common::stored_events(&data);
        let got: HashSet<String> = rx.receipts().into_iter().map(|r| r.id).collect();
        if stored.iter().all(|(id, _, _)| got.contains(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let receipts = rx.receipts();
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    let got: HashSet<&str> = receipts.iter().map(|r| r.id.as_str()).collect();
    let missing: Vec<&(String, String, String)> = stored
        .iter()
        .filter(|(id, _, _)| !got.contains(id.as_str()))
        .collect();
    if !missing.is_empty() {
        std::fs::copy(&db, "/tmp/hotline-k9-events.db").ok();
        std::fs::copy(h.dir.path().join("hotline.log"), "/tmp/hotline-k9.log").ok();
        let log = h.log();
        for (id, call, _) in &missing {
            for l in log.lines().filter(|l| {
                l.contains(id.as_str()) || (l.contains(call.as_str()) && l.contains("WARN"))
            }) {
                eprintln!("{l}");
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} events never delivered: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let known: HashSet<&str> = stored.iter().map(|(id, _, _)| id.as_str()).collect();
    assert!(
        receipts.iter().all(|r| known.contains(r.id.as_str())),
        "only stored events arrive"
    );

    // Per call: first receipts in seq order 1, 2, 3 … without gaps; a
    // duplicate is always a repeat of an id already received.
    let mut first: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut dups = 0;
    for r in &receipts {
        if seen.insert(r.id.as_str()) {
            first.entry(r.call.as_str()).or_default().push(r.seq);
        } else {
            dups += 1;
        }
    }
    for (call, seqs) in &first {
        let want: Vec<u32> = (1..=seqs.len() as u32).collect();
        assert_eq!(seqs, &want, "first receipts of call {call}");
    }
    // Each call that started has exactly one call.ended, including those
    // the crash cut off (closed at the restart).
    let started: HashSet<&str> = stored
        .iter()
        .filter(|(_, _, k)| k == "call.started")
        .map(|(_, c, _)| c.as_str())
        .collect();
    let mut ended: HashMap<&str, u32> = HashMap::new();
    for (_, c, k) in &stored {
        if k == "call.ended" {
            *ended.entry(c.as_str()).or_default() += 1;
        }
    }
    assert!(
        started.len() >= 150,
        "most of the 200 calls reached hotline: {}",
        started.len()
    );
    for c in &started {
        assert_eq!(ended.get(c), Some(&1), "call {c} has one call.ended");
    }
    assert!(
        h.log()
            .contains("records of calls cut off by the last stop closed"),
        "the restart closed the cut-off calls"
    );
    check_cli(&h, started.len());
    eprintln!(
        "{} calls, {} events stored, {} receipts ({dups} duplicates), {} requests",
        started.len(),
        stored.len(),
        receipts.len(),
        rx.requests.load(Ordering::Relaxed)
    );
}

fn hotline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .output()
        .unwrap()
}

/// `hotline records` and `hotline report` read the same records.
fn check_cli(h: &Hotline, calls: usize) {
    let cfg = h.dir.path().join("hotline.toml");
    let cfg = cfg.to_str().unwrap();
    let out = hotline(&[
        "records", "--config", cfg, "--format", "json", "--limit", "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), calls);
    assert!(lines.iter().all(|c| c["called"] == "12399"));
    let cut_off = lines.iter().filter(|c| c["complete"] == false).count();
    assert!(cut_off > 0, "the calls cut off are marked incomplete");
    let out = hotline(&["records", "--config", cfg, "--outcome", "won"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown outcome"));
    let out = hotline(&["records", "--config", cfg, "--missed", "--format", "table"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 call(s)"));
    let xlsx = h.dir.path().join("report.xlsx");
    let out = hotline(&[
        "report",
        "--config",
        cfg,
        "--by",
        "day",
        "--format",
        "xlsx",
        "--out",
        xlsx.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    let text: Vec<String> = range.rows().flatten().map(|c| c.to_string()).collect();
    assert!(
        text.iter().any(|t| t == &calls.to_string()),
        "the total counts every call: {text:?}"
    );
    let out = hotline(&["report", "--config", cfg, "--by", "week"]);
    assert_eq!(out.status.code(), Some(2));
}
