//! How long the store's calls take, as a process-wide histogram for
//! `/metrics` (issue 15 §4: "store latency"): every call of [`super::Store`]
//! from its start to its answer, queueing on the connection included — what
//! a caller of the store waits.

use std::sync::LazyLock;

use prometheus_client::metrics::histogram::Histogram;

/// Seconds: 0.25 ms … 2.5 s.
const BUCKETS: [f64; 10] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

static LATENCY: LazyLock<Histogram> = LazyLock::new(|| Histogram::new(BUCKETS));

/// The histogram (a clone shares its counts).
pub fn histogram() -> &'static Histogram {
    &LATENCY
}

/// Run `f`, counting how long it took.
pub(super) fn timed<T>(f: impl FnOnce() -> T) -> T {
    let start = tokio::time::Instant::now();
    let out = f();
    LATENCY.observe(start.elapsed().as_secs_f64());
    out
}
