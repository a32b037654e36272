//! The sending side: ONE shared ticker task sends, every 20 ms, one PCMA
//! packet (a 400 Hz tone from callers, 1 kHz from agents) for every active
//! stream, the streams spread over sub-ticks of the period.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hotline::media::codec::{Codec, G711};
use hotline::media::rtp::{write_rtp, RtpFields};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::shared::{
    Clock, SendTimes, Shared, Side, TickerStats, PACKET, PTIME, SAMPLES, TONE_FRAMES,
};

pub(crate) struct SendStream {
    pub(crate) id: u64,
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) remote: SocketAddr,
    pub(crate) side: Side,
    pub(crate) ssrc: u32,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) pt: u8,
    pub(crate) frame: usize,
    pub(crate) sent: u64,
    pub(crate) errors: u64,
    pub(crate) times: Arc<SendTimes>,
    /// The leg's SRTP, when it settled on it.
    pub(crate) crypto: Option<Box<hotline::media::srtp::LegCrypto>>,
}

pub(crate) enum Cmd {
    Add(Box<SendStream>),
    Remove(u64),
    Stop,
}

pub(crate) fn tone(hz: f32, law: G711) -> Vec<[u8; SAMPLES]> {
    let pcm: Vec<i16> = (0..SAMPLES * TONE_FRAMES)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 10_000.0) as i16)
        .collect();
    pcm.chunks(SAMPLES)
        .map(|c| {
            let mut out = Vec::with_capacity(SAMPLES);
            law.encode(c, &mut out);
            let mut f = [0u8; SAMPLES];
            f.copy_from_slice(&out);
            f
        })
        .collect()
}

/// The one 20 ms ticker: a packet for every active stream every 20 ms. The
/// 20 ms are cut into `phases` sub-ticks and each stream belongs to one
/// (the least loaded when it starts), so packets go out spread over the
/// period like independent phones' would, not in one burst per 20 ms.
pub(crate) async fn ticker(
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
    clock: Clock,
    phases: usize,
) {
    let caller_tone = tone(400.0, G711::Alaw);
    let agent_tone = tone(1000.0, G711::Alaw);
    let phases = phases.clamp(1, 20);
    let mut groups: Vec<Vec<SendStream>> = (0..phases).map(|_| Vec::new()).collect();
    let mut stats = TickerStats {
        phases,
        ..Default::default()
    };
    let mut interval = tokio::time::interval(PTIME / phases as u32);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut packet = [0u8; PACKET];
    let mut stopping = false;
    let mut phase = 0usize;
    loop {
        let scheduled = interval.tick().await;
        let lag = scheduled.elapsed();
        stats.ticks += 1;
        let lag_ms = lag.as_secs_f64() * 1000.0;
        stats.max_lag_ms = stats.max_lag_ms.max(lag_ms);
        if lag_ms > 5.0 {
            stats.ticks_late_5ms += 1;
        }
        if lag_ms > 20.0 {
            stats.ticks_late_20ms += 1;
        }
        loop {
            match cmds.try_recv() {
                Ok(Cmd::Add(s)) => {
                    let g = (0..phases).min_by_key(|&g| groups[g].len()).unwrap_or(0);
                    groups[g].push(*s);
                }
                Ok(Cmd::Remove(id)) => {
                    for g in groups.iter_mut() {
                        if let Some(i) = g.iter().position(|s| s.id == id) {
                            let s = g.swap_remove(i);
                            let d = shared.dir(s.side);
                            d.sent.fetch_add(s.sent, Ordering::Relaxed);
                            d.send_errors.fetch_add(s.errors, Ordering::Relaxed);
                            shared.send_times.remove(&s.ssrc);
                            break;
                        }
                    }
                }
                Ok(Cmd::Stop) => stopping = true,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    stopping = true;
                    break;
                }
            }
        }
        if stopping {
            for s in groups.iter_mut().flat_map(|g| g.drain(..)) {
                let d = shared.dir(s.side);
                d.sent.fetch_add(s.sent, Ordering::Relaxed);
                d.send_errors.fetch_add(s.errors, Ordering::Relaxed);
            }
            break;
        }
        let batch = Instant::now();
        stats.max_streams = stats
            .max_streams
            .max(groups.iter().map(Vec::len).sum::<usize>());
        for s in &mut groups[phase] {
            let payload = match s.side {
                Side::Caller => &caller_tone[s.frame],
                Side::Agent => &agent_tone[s.frame],
            };
            let fields = RtpFields {
                marker: s.sent == 0 && s.errors == 0,
                payload_type: s.pt,
                sequence: s.seq,
                timestamp: s.ts,
                ssrc: s.ssrc,
            };
            if let Ok(n) = write_rtp(&mut packet, &fields, payload) {
                s.times.store(s.seq, clock.ns());
                let protected = s
                    .crypto
                    .as_mut()
                    .and_then(|c| c.protect_rtp(&packet[..n]).ok());
                let wire = protected.as_deref().unwrap_or(&packet[..n]);
                match s.socket.try_send_to(wire, s.remote) {
                    Ok(_) => s.sent += 1,
                    Err(_) => s.errors += 1,
                }
            }
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(SAMPLES as u32);
            s.frame = (s.frame + 1) % TONE_FRAMES;
        }
        phase = (phase + 1) % phases;
        let b = batch.elapsed().as_secs_f64() * 1000.0;
        stats.max_batch_ms = stats.max_batch_ms.max(b);
        if stats.ticks.is_multiple_of(50) {
            *shared.ticker.lock().unwrap() = stats.clone();
        }
    }
    *shared.ticker.lock().unwrap() = stats;
}
