//! Issue 7 "done when": a real HTTP server on loopback receives every event
//! exactly once per event id (duplicates only on retry), in per-call order,
//! while it fails (500s, timeouts, connection refused) and recovers; a
//! crash (no graceful close) and restart delivers the rest.

mod common;
#[path = "events_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hotline::events::backoff::RetryPolicy;
use hotline::events::outbox::{NewEvent, Outbox, OutboxConfig};
use hotline::events::webhook::WebhookSink;
use support::{check_delivery, event, wait_for, Receiver, Server, FAIL_500, OK, SLOW};
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"test-secret";
const SINK: &str = "webhook";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base_ms: 20,
        cap_ms: 300,
        max_attempts: 10_000,
    }
}

/// The outbox in `data` (`events.db`, or PostgreSQL when the suite runs
/// on it: `common::open_outbox`).
fn open(data: &std::path::Path, policy: RetryPolicy) -> Arc<Outbox> {
    let ob = common::open_outbox(
        data,
        OutboxConfig {
            lease_ms: 5_000,
            ..OutboxConfig::default()
        },
    );
    ob.register_sink(SINK, policy).expect("register");
    Arc::new(ob)
}

fn sink(url: String) -> WebhookSink {
    let mut s = WebhookSink::new(SINK, url, SECRET);
    s.timeout = Duration::from_millis(300);
    s.concurrency = 8;
    s.idle_poll = Duration::from_millis(100);
    s
}

fn append_step(ob: &Outbox, calls: usize, seqs: std::ops::Range<u32>) {
    // Interleaved like real traffic: every call's event n, then n+1, …
    for seq in seqs {
        let evs: Vec<NewEvent> = (0..calls).map(|c| event(c, seq)).collect();
        for chunk in evs.chunks(7) {
            ob.append(chunk).expect("append");
        }
    }
}

fn stat(ob: &Outbox) -> hotline::events::outbox::SinkStats {
    ob.stats(i64::MAX / 2)
        .expect("stats")
        .into_iter()
        .find(|s| s.sink == SINK)
        .expect("sink stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_once_in_order_through_500s_timeouts_and_refusals() {
    const CALLS: usize = 200;
    const PER_CALL: u32 = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = open(dir.path(), fast_policy());
    let rx = Receiver::new(SECRET);
    rx.fail_after.store(150, Ordering::SeqCst);
    let mut server = Server::start(Arc::clone(&rx)).await;

    append_step(&ob, CALLS, 0..3);
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(server.url()).run(Arc::clone(&ob), stop.clone()));

    // Phase 1: the receiver switches itself to 500s after 150 receipts.
    assert!(
        wait_for(Duration::from_secs(10), || rx.mode.load(Ordering::SeqCst)
            == FAIL_500)
        .await,
        "receiver never reached 150 receipts"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Phase 2: answers come after the sender's timeout.
    rx.mode.store(SLOW, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Phase 3: down, port closed; the calls go on producing events.
    server.stop().await;
    let refused = tokio::net::TcpStream::connect(server.addr).await.is_err();
    assert!(refused, "port still open");
    append_step(&ob, CALLS, 3..PER_CALL);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Phase 4: recovery.
    rx.mode.store(OK, Ordering::SeqCst);
    server.restart().await;

    let total = (CALLS as u64) * u64::from(PER_CALL);
    let done = wait_for(Duration::from_secs(15), || stat(&ob).delivered == total).await;
    stop.cancel();
    run.await.expect("join").expect("webhook run");
    server.stop().await;
    assert!(done, "not all delivered: {:?}", stat(&ob));

    let receipts = rx.receipts();
    let dups = check_delivery(&receipts, CALLS, PER_CALL);
    let st = stat(&ob);
    assert_eq!(
        (
            st.pending,
            st.in_backoff,
            st.in_flight,
            st.dead,
            st.delivered
        ),
        (0, 0, 0, 0, total)
    );
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    let requests = rx.requests.load(Ordering::Relaxed);
    assert!(requests > total, "the failures caused no retry?");
    eprintln!(
        "chaos: {} receipts for {total} events ({dups} duplicates), {requests} requests",
        receipts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_without_close_then_restart_delivers_the_rest() {
    const CALLS: usize = 50;
    const PER_CALL: u32 = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    let rx = Receiver::new(SECRET);
    let mut server = Server::start(Arc::clone(&rx)).await;

    let ob = open(path, fast_policy());
    append_step(&ob, CALLS, 0..PER_CALL);
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(server.url()).run(Arc::clone(&ob), stop.clone()));
    assert!(wait_for(Duration::from_secs(10), || rx.receipts().len() >= 60).await);
    // "kill -9": no shutdown, no close, no checkpoint. Abort the loop (its
    // in-flight requests go with it) and leak the outbox's connections.
    run.abort();
    let _ = run.await;
    std::mem::forget(ob);
    common::store_sessions_died(path);
    let before = rx.receipts().len();

    let ob = open(path, fast_policy());
    let st = stat(&ob);
    assert!(st.delivered > 0 && st.delivered < 200, "{st:?}");
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(server.url()).run(Arc::clone(&ob), stop.clone()));
    let total = (CALLS as u64) * u64::from(PER_CALL);
    let done = wait_for(Duration::from_secs(10), || {
        stat(&ob).pending == 0 && stat(&ob).in_flight == 0
    })
    .await;
    stop.cancel();
    run.await.expect("join").expect("webhook run");
    server.stop().await;
    assert!(done, "{:?}", stat(&ob));
    let receipts = rx.receipts();
    let dups = check_delivery(&receipts, CALLS, PER_CALL);
    assert!(receipts.len() > before);
    assert!(receipts.len() as u64 >= total);
    eprintln!("restart: {} receipts, {dups} duplicates", receipts.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_event_is_dead_lettered_the_call_goes_on_and_replay_delivers_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = open(dir.path(), fast_policy());
    let rx = Receiver::new(SECRET);
    rx.refuse.lock().expect("refuse").insert("c1-e1".into());
    let mut server = Server::start(Arc::clone(&rx)).await;
    append_step(&ob, 3, 0..3);
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(server.url()).run(Arc::clone(&ob), stop.clone()));

    assert!(
        wait_for(Duration::from_secs(10), || {
            let s = stat(&ob);
            s.delivered == 8 && s.dead == 1
        })
        .await,
        "{:?}",
        stat(&ob)
    );
    let dead = ob.dead_letters(SINK, 10).expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "c1-e1");
    assert_eq!(dead[0].attempts, 1, "a 400 is not retried");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("HTTP 400"),
        "{:?}",
        dead[0].last_error
    );
    // The call went on past its dead letter.
    assert!(rx.receipts().iter().any(|r| r.id == "c1-e2"));

    rx.refuse.lock().expect("refuse").clear();
    assert!(ob.replay(SINK, "c1-e1").expect("replay"));
    assert!(wait_for(Duration::from_secs(10), || stat(&ob).delivered == 9).await);
    stop.cancel();
    run.await.expect("join").expect("webhook run");
    server.stop().await;
    let replayed: Vec<_> = rx
        .receipts()
        .into_iter()
        .filter(|r| r.id == "c1-e1")
        .collect();
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0].replay);
    let st = stat(&ob);
    assert_eq!((st.dead, st.pending, st.delivered), (0, 0, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_fails_verification_and_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = open(dir.path(), fast_policy());
    let rx = Receiver::new(b"the receiver's secret");
    let mut server = Server::start(Arc::clone(&rx)).await;
    ob.append(&[event(0, 0)]).expect("append");
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(server.url()).run(Arc::clone(&ob), stop.clone()));
    assert!(wait_for(Duration::from_secs(10), || stat(&ob).dead == 1).await);
    stop.cancel();
    run.await.expect("join").expect("webhook run");
    server.stop().await;
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 1);
    assert!(rx.receipts().is_empty());
    let dead = ob.dead_letters(SINK, 10).expect("dead letters");
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .starts_with("HTTP 401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_out_into_a_dead_letter_while_the_receiver_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = RetryPolicy {
        base_ms: 5,
        cap_ms: 20,
        max_attempts: 3,
    };
    let ob = open(dir.path(), policy);
    let rx = Receiver::new(SECRET);
    let mut server = Server::start(Arc::clone(&rx)).await;
    let url = server.url();
    server.stop().await; // nothing listens: connection refused
    ob.append(&[event(0, 0), event(0, 1)]).expect("append");
    let stop = CancellationToken::new();
    let run = tokio::spawn(sink(url).run(Arc::clone(&ob), stop.clone()));
    assert!(
        wait_for(Duration::from_secs(10), || stat(&ob).dead == 2).await,
        "{:?}",
        stat(&ob)
    );
    stop.cancel();
    run.await.expect("join").expect("webhook run");
    let dead = ob.dead_letters(SINK, 10).expect("dead letters");
    assert_eq!(
        dead.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["c0-e0", "c0-e1"]
    );
    assert!(dead.iter().all(|d| d.attempts == 3));
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("cannot connect"),
        "{:?}",
        dead[0].last_error
    );
}
