//! What the call events cost per call (issue 7: "the added cost of the
//! outbox per call"): a typical IVR → queue → agent → survey call's facts
//! through the real `CdrBuilder` (11 events: started, 3 IVR steps, queue,
//! offer, answer, recording, 2 survey answers, ended with the record),
//! serialised to JSON, and committed by the group-commit writer
//! (`Appender`) to a real SQLite outbox on disk with one sink registered.
//! Run: `cargo bench --bench events`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::events::appender::Appender;
use hotline::events::model::{Direction, RecordingInfo};
use hotline::events::outbox::{NewEvent, Outbox};
use hotline::events::{CallStart, CdrBuilder, EndCause, Event, HangupParty, IdGenerator, IdSource};

/// One call's events, as the call room produces them.
fn one_call(ids: &Arc<dyn IdSource>, n: u64, t0: i64) -> Vec<Event> {
    let start = CallStart {
        call_id: format!("bench-{n}"),
        serial: format!("20261123120000-{n:06}"),
        tenant: "default".into(),
        direction: Direction::Inbound,
        caller: "13800138000".into(),
        called: "12345".into(),
        caller_area: None,
        confidential: false,
    };
    let mut out = Vec::with_capacity(12);
    let Ok((mut b, e)) = CdrBuilder::started(ids.clone(), t0, start) else {
        return out;
    };
    out.push(e);
    let facts: [&dyn Fn(&mut CdrBuilder) -> hotline::events::builder::Emitted; 11] = [
        &|b| b.ivr_step(t0 + 10, "12345", "abc123", "welcome", "play"),
        &|b| b.ivr_step(t0 + 5_000, "12345", "abc123", "menu", "menu"),
        &|b| b.ivr_step(t0 + 9_000, "12345", "abc123", "queue", "queue"),
        &|b| b.queued(t0 + 9_000, "general", Some("综合"), 0),
        &|b| b.offered(t0 + 12_000, "A1001"),
        &|b| b.answered(t0 + 15_000, "A1001"),
        &|b| {
            b.recording_started("default/2026/11/23/bench", "default/2026/11/23/bench.wav")
                .map(|()| Vec::new())
        },
        &|b| b.agent_hung_up(t0 + 180_000),
        &|b| b.survey_result(t0 + 185_000, "attitude", 5, '1'),
        &|b| b.survey_result(t0 + 190_000, "efficiency", 5, '1'),
        &|b| {
            b.recording_ready(
                t0 + 180_100,
                RecordingInfo {
                    id: "default/2026/11/23/bench".into(),
                    path: "default/2026/11/23/bench.wav".into(),
                    duration_ms: 165_000,
                    bytes: 5_280_044,
                    sha256: "0".repeat(64),
                    dropped_chunks: 0,
                },
            )
        },
    ];
    for f in facts {
        if let Ok(evs) = f(&mut b) {
            out.extend(evs);
        }
    }
    if let Ok(evs) = b.ended(t0 + 191_000, HangupParty::System, EndCause::default()) {
        out.extend(evs);
    }
    if let Ok(evs) = b.acw_ended(t0 + 200_000, "A1001") {
        out.extend(evs);
    }
    out
}

fn rows(events: Vec<Event>) -> Vec<NewEvent> {
    events
        .into_iter()
        .filter_map(|e| {
            Some(NewEvent {
                id: e.id.clone(),
                call_id: e.call_id.clone(),
                kind: e.kind().into(),
                body_json: serde_json::to_string(&e).ok()?,
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("bench", 0));
    let t0 = 1_795_400_000_000;
    let sample = one_call(&ids, 0, t0);
    let bytes: usize = rows(sample.clone()).iter().map(|r| r.body_json.len()).sum();
    eprintln!("one call: {} events, {bytes} bytes of JSON", sample.len());

    let mut g = c.benchmark_group("events per call");
    g.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    g.bench_function("builder: facts to events", |b| {
        b.iter(|| {
            n += 1;
            black_box(one_call(&ids, n, t0))
        })
    });
    g.bench_function("builder + JSON", |b| {
        b.iter(|| {
            n += 1;
            black_box(rows(one_call(&ids, n, t0)))
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Arc::new(Outbox::open(&dir.path().join("events.db")).expect("outbox"));
    outbox
        .register_sink("webhook:bench", Default::default())
        .expect("sink");
    let appender = Appender::start(outbox).expect("appender");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // 100 calls sent by their tasks, then one flush: the writer commits in
    // groups as it would under load.
    g.throughput(Throughput::Elements(100));
    g.bench_function("builder + JSON + outbox commit (100 calls)", |b| {
        b.iter(|| {
            for _ in 0..100 {
                n += 1;
                appender.send(rows(one_call(&ids, n, t0)));
            }
            rt.block_on(appender.flush());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).sample_size(20);
    targets = bench
}
criterion_main!(benches);
