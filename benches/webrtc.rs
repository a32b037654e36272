//! What a browser agent's leg costs beyond a SIP leg's (issue 17
//! BENCHMARKS): its SRTP per packet is the same contexts as an SDES leg's
//! (`benches/media.rs` `srtp_20ms`); on top come hotline's side of the
//! DTLS handshake once per call, an ICE consent check every ~5 s, the
//! RFC 7983 demultiplexing of every datagram, and the leg's ICE/DTLS state
//! in memory.
//!
//! `cargo bench --bench webrtc` (the memory figure is printed first).

#![allow(clippy::disallowed_methods)] // a bench reads the clock

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use hotline::media::webrtc::peer::{check, handshake_timed, BrowserPeer};
use hotline::media::webrtc::WebRtcTransport;

/// Bytes allocated and not yet freed (the heap held by what a bench keeps).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the system allocator with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn hotline_addr() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

fn browser_addr() -> SocketAddr {
    "127.0.0.1:50000".parse().expect("addr")
}

/// A leg checked and armed for `browser`; the time hotline spent on the
/// handshake.
fn answered(browser: &mut BrowserPeer) -> (WebRtcTransport, Duration) {
    let mut leg = WebRtcTransport::new(hotline_addr());
    let c = check(leg.credentials(), true);
    let mut spent = Duration::ZERO;
    let t = Instant::now();
    leg.receive(t, browser_addr(), &c);
    leg.arm(t, browser.fingerprint).expect("armed");
    spent += t.elapsed();
    let (keys, rest) = handshake_timed(&mut leg, browser);
    assert!(keys.is_some(), "the handshake completed");
    (leg, spent + rest)
}

/// Heap per answered leg, from 200 legs kept alive once their peers are
/// gone (what is left is the legs' own).
fn memory() {
    let n = 200;
    let before = LIVE.load(Ordering::Relaxed);
    let mut peers: Vec<BrowserPeer> = (0..n)
        .map(|_| BrowserPeer::new(browser_addr(), hotline_addr()))
        .collect();
    let legs: Vec<WebRtcTransport> = peers.iter_mut().map(|p| answered(p).0).collect();
    drop(peers);
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "webrtc/memory: {} bytes of heap per answered leg (ICE + DTLS state, {n} legs)",
        held / n as isize
    );
    black_box(legs);
}

fn handshake(c: &mut Criterion) {
    memory();
    let mut g = c.benchmark_group("webrtc");
    g.bench_function("dtls_handshake_hotline_side", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // The browser's certificate and its own work are not ours.
                let mut browser = BrowserPeer::new(browser_addr(), hotline_addr());
                total += answered(&mut browser).1;
            }
            total
        })
    });
    let mut browser = BrowserPeer::new(browser_addr(), hotline_addr());
    let (mut leg, _) = answered(&mut browser);
    let consent = check(leg.credentials(), false);
    g.bench_function("ice_consent_check", |b| {
        b.iter(|| black_box(leg.receive(Instant::now(), browser_addr(), black_box(&consent))))
    });
    let mut rtp = vec![0x80, 0x08, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
    rtp.extend(std::iter::repeat_n(0xd5, 160));
    g.bench_function("demux_rtp", |b| {
        b.iter(|| black_box(leg.receive(Instant::now(), browser_addr(), black_box(&rtp))))
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
