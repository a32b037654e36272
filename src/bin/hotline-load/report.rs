//! The summary's parts: CPU and RSS from /proc (this process and the
//! watched hotline), the steady window, per-direction packet totals and
//! percentiles.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::shared::{DirTotals, RecvStats};

pub(crate) fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(crate) fn proc_status(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Clock ticks per second of /proc times (USER_HZ: 100 on Linux).
pub(crate) const CLK_TCK: f64 = 100.0;

#[derive(Serialize, Default)]
pub(crate) struct Steady {
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    pub(crate) secs: f64,
    /// Caller legs up during the window (min over samples).
    pub(crate) live_calls_min: usize,
    pub(crate) live_calls_max: usize,
    pub(crate) hotline_cpu_pct_of_core: Option<f64>,
    pub(crate) hotline_cpu_pct_per_call: Option<f64>,
    /// Before the first call (agents registered).
    pub(crate) hotline_rss_kib_before: Option<u64>,
    pub(crate) hotline_rss_kib_start: Option<u64>,
    pub(crate) hotline_rss_kib_end: Option<u64>,
    pub(crate) hotline_threads: Option<u64>,
    pub(crate) generator_cpu_pct_of_core: f64,
    pub(crate) generator_rss_kib: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct DirSummary {
    pub(crate) sent: u64,
    pub(crate) send_errors: u64,
    #[serde(flatten)]
    pub(crate) recv: RecvStats,
    pub(crate) loss_pct: f64,
    pub(crate) mean_transit_ms: f64,
}

pub(crate) fn summarize(d: &DirTotals) -> DirSummary {
    let recv = d.recv.lock().unwrap().clone();
    let loss_pct = if recv.expected > 0 {
        recv.lost as f64 * 100.0 / recv.expected as f64
    } else {
        0.0
    };
    let mean_transit_ms = if recv.transit_samples > 0 {
        recv.transit_sum_ms / recv.transit_samples as f64
    } else {
        0.0
    };
    DirSummary {
        sent: d.sent.load(Ordering::Relaxed),
        send_errors: d.send_errors.load(Ordering::Relaxed),
        recv,
        loss_pct,
        mean_transit_ms,
    }
}

pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}
