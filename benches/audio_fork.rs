//! The live audio fork's cost (issue 18 §1): per 20 ms frame on the media
//! worker (the tap cutting drained samples into frames and offering them
//! to the bounded queue) and in the sender (the binary frame built), and,
//! with `HOTLINE_FORK_LOAD=N`, N forks at once against a local WebSocket
//! receiver for 10 s: the process's CPU and memory, the longest time one
//! 100 ms drain of all N taps took on the feeding thread (what a media
//! worker would spend), and frames dropped. Run:
//! `cargo bench --bench audio_fork` and
//! `HOTLINE_FORK_LOAD=500 cargo bench --bench audio_fork -- --test`.
#![allow(clippy::disallowed_methods)] // a bench reads the clock

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::StreamExt;
use hotline::media::fork::protocol::{encode_frame, CallMeta};
use hotline::media::fork::tap::{ForkTap, FRAME_LEN};
use hotline::media::fork::{self, ForkCounts, ForkTarget};

fn stereo(frames: usize) -> Vec<i16> {
    (0..frames * FRAME_LEN)
        .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
        .collect()
}

fn per_frame(c: &mut Criterion) {
    let drained = stereo(5); // one 100 ms drain
    let mut g = c.benchmark_group("audio_fork");
    g.throughput(Throughput::Elements(5));
    g.bench_function("tap_100ms_5_frames", |b| {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let mut tap = ForkTap::new(tx, Arc::new(ForkCounts::new(true)));
        b.iter(|| {
            tap.push_linear(black_box(&drained));
            while rx.try_recv().is_ok() {}
        })
    });
    g.bench_function("tap_100ms_5_frames_queue_full", |b| {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let mut tap = ForkTap::new(tx, Arc::new(ForkCounts::new(true)));
        b.iter(|| tap.push_linear(black_box(&drained)))
    });
    let alaw = vec![0x55u8; 5 * FRAME_LEN];
    g.bench_function("tap_100ms_5_frames_alaw", |b| {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let mut tap = ForkTap::new(tx, Arc::new(ForkCounts::new(true)));
        b.iter(|| {
            tap.push_alaw(black_box(&alaw));
            while rx.try_recv().is_ok() {}
        })
    });
    g.throughput(Throughput::Elements(1));
    let frame = stereo(1);
    g.bench_function("encode_frame", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            encode_frame(7, 1120, black_box(&frame), &mut out);
            out
        })
    });
    g.finish();
}

/// utime + stime of this process, in clock ticks (100 a second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// Resident memory, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The receiver: reads and discards.
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(s).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    let target = ForkTarget {
        url: format!("ws://{addr}/fork"),
        queue_frames: 50,
        max_attempts: 5,
        auto: true,
        results: None,
    };
    let rss0 = rss_kib();
    let mut taps: Vec<ForkTap> = {
        let _g = rt.enter();
        (0..n)
            .map(|i| {
                fork::start(
                    &target,
                    CallMeta {
                        call_id: format!("bench-{i}"),
                        ..CallMeta::default()
                    },
                    None,
                )
            })
            .collect()
    };
    std::thread::sleep(Duration::from_millis(500)); // connections up
    let drained = stereo(5);
    let (cpu0, t0) = (cpu_ticks(), Instant::now());
    let mut worst = Duration::ZERO;
    let ticks = 100; // 10 s of 100 ms drains
    for k in 0..ticks {
        let start = Instant::now();
        for tap in &mut taps {
            tap.push_linear(&drained);
        }
        worst = worst.max(start.elapsed());
        let next = t0 + Duration::from_millis(100 * (k + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let cpu = cpu_ticks() - cpu0;
    let secs = t0.elapsed().as_secs_f64();
    let rss1 = rss_kib();
    drop(taps);
    std::thread::sleep(Duration::from_millis(500));
    let s = fork::stats();
    println!(
        "{n} forks, {secs:.1} s: CPU {:.1} % of a core (feeder, senders and receiver), \
         {:.3} % per fork; RSS +{} KiB ({:.1} KiB per fork); longest 100 ms drain of all taps \
         {:.2} ms; frames sent {}, dropped {}, reconnects {}",
        cpu as f64 / secs,
        cpu as f64 / secs / n as f64,
        rss1.saturating_sub(rss0),
        rss1.saturating_sub(rss0) as f64 / n as f64,
        worst.as_secs_f64() * 1000.0,
        s.frames_sent,
        s.frames_dropped,
        s.reconnects,
    );
}

fn main() {
    if let Some(n) = std::env::var("HOTLINE_FORK_LOAD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        load(n);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    per_frame(&mut c);
    c.final_summary();
}
