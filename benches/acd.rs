//! ACD routing decisions under load: 1,000 agents, 10,000 waiting calls.
//! One decision = an agent ends a call, becomes free, is offered the best
//! waiting call across its groups and answers; a new caller arrives.
//! Run: `cargo bench --bench acd`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::acd::{bench_fixture, bench_step};

fn decisions(c: &mut Criterion) {
    let (agents, waiting) = (1_000, 10_000);
    let (mut engine, now) = bench_fixture(agents, waiting);
    let mut step = 0usize;
    let mut g = c.benchmark_group("acd");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decision_1000_agents_10000_waiting", |b| {
        b.iter(|| {
            step += 1;
            black_box(bench_step(&mut engine, now, agents, waiting, step))
        })
    });
    g.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
