//! Throughput figures for BENCHMARKS.md (issue 7 "done when"): appends per
//! second (and per-append latency) into the outbox, and events per second
//! delivered to a webhook on loopback and to the JSONL sink. Ignored by
//! default; run in release:
//! `cargo test --release --test throughput -- --ignored --nocapture`.
#![allow(clippy::disallowed_methods)] // a measurement reads the clock; nothing asserted on timings

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use hotline::events::backoff::RetryPolicy;
use hotline::events::jsonl::JsonlSink;
use hotline::events::outbox::{Durability, NewEvent, Outbox, OutboxConfig};
use hotline::events::webhook::WebhookSink;
use tokio_util::sync::CancellationToken;

const CALLS: usize = 2_000;
const PER_CALL: usize = 10;

fn events() -> Vec<NewEvent> {
    let mut v = Vec::with_capacity(CALLS * PER_CALL);
    for seq in 0..PER_CALL {
        for c in 0..CALLS {
            let id = format!("c{c}-e{seq}");
            // A body of CDR-like size (~600 bytes).
            let body = serde_json::json!({
                "id": id, "type": "call.step", "call_id": format!("c{c}"), "seq": seq,
                "at": "2025-01-01T08:00:00.000+08:00", "tenant": "t1", "caller": "13800138000",
                "called": "12345", "area": "0571", "flow": {"name": "main", "version": 7},
                "ivr_path": ["welcome", "menu", "1", "2", "queue"], "pad": "x".repeat(300),
            })
            .to_string();
            v.push(NewEvent {
                id,
                call_id: Some(format!("c{c}")),
                kind: "call.step".into(),
                body_json: body,
            });
        }
    }
    v
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn measure_appends(
    label: &str,
    durability: Durability,
    per_tx: usize,
) -> (tempfile::TempDir, Arc<Outbox>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open_with(
        &dir.path().join("events.db"),
        OutboxConfig {
            durability,
            ..OutboxConfig::default()
        },
    )
    .expect("open");
    ob.register_sink("webhook", RetryPolicy::default())
        .expect("register");
    ob.register_sink("jsonl", RetryPolicy::default())
        .expect("register");
    let evs = events();
    let mut lat = Vec::with_capacity(evs.len() / per_tx + 1);
    let t0 = Instant::now();
    for chunk in evs.chunks(per_tx) {
        let t = Instant::now();
        ob.append(chunk).expect("append");
        lat.push(t.elapsed());
    }
    let total = t0.elapsed();
    lat.sort();
    eprintln!(
        "append {label}: {} events, {} per tx, 2 sinks: {:.0} events/s; per append p50 {:?} p99 {:?} max {:?}",
        evs.len(),
        per_tx,
        evs.len() as f64 / total.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default(),
    );
    (dir, Arc::new(ob))
}

#[test]
#[ignore = "measurement: run in release with --ignored --nocapture"]
fn throughput() {
    let _ = measure_appends("synchronous=FULL", Durability::Full, 1);
    let _ = measure_appends("synchronous=NORMAL", Durability::Normal, 10);
    let (_dir, ob) = measure_appends("synchronous=NORMAL", Durability::Normal, 1);
    let total = (CALLS * PER_CALL) as u64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let hits = Arc::new(AtomicU64::new(0));
        let h2 = Arc::clone(&hits);
        let app = Router::new().route(
            "/hook",
            post(move || {
                let h = Arc::clone(&h2);
                async move {
                    h.fetch_add(1, Ordering::Relaxed);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        for concurrency in [8usize, 32] {
            let sink_name = format!("webhook{concurrency}");
            // A fresh copy of the events for each run: a new sink sees new events only.
            let dir = tempfile::tempdir().expect("tempdir");
            let ob2 = Arc::new(Outbox::open(&dir.path().join("e.db")).expect("open"));
            ob2.register_sink(&sink_name, RetryPolicy::default()).expect("register");
            for chunk in events().chunks(100) {
                ob2.append(chunk).expect("append");
            }
            let mut sink = WebhookSink::new(&sink_name, format!("http://{addr}/hook"), b"k".to_vec());
            sink.concurrency = concurrency;
            let stop = CancellationToken::new();
            let before = hits.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let run = tokio::spawn(sink.run(Arc::clone(&ob2), stop.clone()));
            for _ in 0..6_000 {
                let s = ob2.stats(0).expect("stats");
                if s[0].delivered == total {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let dt = t0.elapsed();
            stop.cancel();
            let _ = run.await;
            let delivered = ob2.stats(0).expect("stats")[0].delivered;
            eprintln!(
                "webhook, {concurrency} in flight: {delivered} events in {dt:?}: {:.0} events/s ({} requests)",
                delivered as f64 / dt.as_secs_f64(),
                hits.load(Ordering::Relaxed) - before,
            );
        }
        server.abort();

        let jdir = tempfile::tempdir().expect("tempdir");
        let sink = JsonlSink::new("jsonl", jdir.path());
        let stop = CancellationToken::new();
        let t0 = Instant::now();
        let run = tokio::spawn(sink.run(Arc::clone(&ob), stop.clone()));
        for _ in 0..6_000 {
            let s = ob.stats(0).expect("stats");
            if s.iter().any(|s| s.sink == "jsonl" && s.delivered == total) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let dt = t0.elapsed();
        stop.cancel();
        let _ = run.await;
        eprintln!(
            "jsonl (fsync per batch of up to 256, one event per call per batch): {total} events in {dt:?}: {:.0} events/s",
            total as f64 / dt.as_secs_f64()
        );
    });
}
