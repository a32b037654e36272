//! What the generator's tasks share: the packet format (20 ms PCMA), which
//! side sent a stream, the generator's clock, every stream's recent send
//! times (for transit), and the counters the summary is made from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

pub(crate) const PTIME: Duration = Duration::from_millis(20);
pub(crate) const SAMPLES: usize = 160;
pub(crate) const PACKET: usize = 12 + SAMPLES;
/// Frames of one second of tone (the tones have whole periods per frame).
pub(crate) const TONE_FRAMES: usize = 50;
/// Send-time slots remembered per stream (packets in flight at most).
pub(crate) const SEND_SLOTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Sent by a caller (carrier) leg, received by an agent.
    Caller,
    /// Sent by an agent leg, received by a caller.
    Agent,
}

/// Nanoseconds since the generator started (fits 48 bits for 78 h).
#[derive(Clone, Copy)]
pub(crate) struct Clock(pub(crate) Instant);

impl Clock {
    pub(crate) fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    pub(crate) fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// When each recent packet of one stream was sent: slot seq % SEND_SLOTS
/// holds `seq << 48 | ns`.
pub(crate) struct SendTimes {
    pub(crate) slots: Vec<AtomicU64>,
}

impl SendTimes {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SEND_SLOTS).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }
    pub(crate) fn store(&self, seq: u16, ns: u64) {
        self.slots[usize::from(seq) % SEND_SLOTS].store(
            (u64::from(seq) << 48) | (ns & 0xffff_ffff_ffff),
            Ordering::Relaxed,
        );
    }
    pub(crate) fn load(&self, seq: u16) -> Option<u64> {
        let v = self.slots[usize::from(seq) % SEND_SLOTS].load(Ordering::Relaxed);
        (v != u64::MAX && (v >> 48) as u16 == seq).then_some(v & 0xffff_ffff_ffff)
    }
}

/// Totals of one direction over all ended streams.
#[derive(Default)]
pub(crate) struct DirTotals {
    pub(crate) sent: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) recv: Mutex<RecvStats>,
}

/// Seconds of the late-packet timeline (the last slot takes the rest).
pub(crate) const LATE_SECONDS: usize = 900;

#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) caller_to_agent: DirTotals,
    pub(crate) agent_to_caller: DirTotals,
    pub(crate) attempted: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) failed: Mutex<BTreeMap<u16, u64>>,
    /// Calls the far end hung up before we did.
    pub(crate) dropped_early: AtomicU64,
    /// Agent-side INVITEs refused (cap) or unusable.
    pub(crate) agent_rejected: AtomicU64,
    pub(crate) agent_active: AtomicUsize,
    pub(crate) agent_answered: AtomicU64,
    pub(crate) setup_ms: Mutex<Vec<f64>>,
    /// Caller legs answered and not yet hung up.
    pub(crate) live: AtomicUsize,
    /// Setup attempts finished (answered or failed).
    pub(crate) settled: AtomicUsize,
    /// ssrc → send times of that stream.
    pub(crate) send_times: DashMap<u32, Arc<SendTimes>>,
    pub(crate) ticker: Mutex<TickerStats>,
    pub(crate) next_ssrc: AtomicU64,
    /// Late packets by second of arrival since the generator started.
    pub(crate) late_by_second: Vec<AtomicU64>,
}

impl Shared {
    pub(crate) fn dir(&self, sent_by: Side) -> &DirTotals {
        match sent_by {
            Side::Caller => &self.caller_to_agent,
            Side::Agent => &self.agent_to_caller,
        }
    }
    pub(crate) fn fail(&self, code: u16) {
        *self.failed.lock().unwrap().entry(code).or_default() += 1;
    }
}

#[derive(Default, Serialize, Clone)]
pub(crate) struct TickerStats {
    /// Sub-ticks per 20 ms.
    pub(crate) phases: usize,
    /// Sub-ticks run.
    pub(crate) ticks: u64,
    /// Worst delay of a tick behind its 20 ms schedule, ms.
    pub(crate) max_lag_ms: f64,
    /// Ticks that started more than 5 ms late.
    pub(crate) ticks_late_5ms: u64,
    /// Ticks that started more than 20 ms late.
    pub(crate) ticks_late_20ms: u64,
    /// Longest time to send one sub-tick's packets, ms.
    pub(crate) max_batch_ms: f64,
    /// Most streams sending at once.
    pub(crate) max_streams: usize,
}

#[derive(Default, Clone, Serialize)]
pub(crate) struct RecvStats {
    pub(crate) streams: u64,
    pub(crate) received: u64,
    pub(crate) expected: u64,
    pub(crate) lost: u64,
    pub(crate) out_of_order: u64,
    pub(crate) duplicates_or_old: u64,
    /// Packets more than `late_ms` behind their 20 ms slot.
    pub(crate) late: u64,
    pub(crate) late_5ms: u64,
    pub(crate) late_10ms: u64,
    pub(crate) late_40ms: u64,
    pub(crate) max_late_ms: f64,
    /// Packets whose send time was known.
    pub(crate) transit_samples: u64,
    pub(crate) transit_sum_ms: f64,
    pub(crate) max_transit_ms: f64,
    pub(crate) transit_over_late_ms: u64,
    pub(crate) foreign_ssrc: u64,
    pub(crate) not_rtp: u64,
}

impl RecvStats {
    pub(crate) fn merge(&mut self, o: &RecvStats) {
        self.streams += o.streams;
        self.received += o.received;
        self.expected += o.expected;
        self.lost += o.lost;
        self.out_of_order += o.out_of_order;
        self.duplicates_or_old += o.duplicates_or_old;
        self.late += o.late;
        self.late_5ms += o.late_5ms;
        self.late_10ms += o.late_10ms;
        self.late_40ms += o.late_40ms;
        self.max_late_ms = self.max_late_ms.max(o.max_late_ms);
        self.transit_samples += o.transit_samples;
        self.transit_sum_ms += o.transit_sum_ms;
        self.max_transit_ms = self.max_transit_ms.max(o.max_transit_ms);
        self.transit_over_late_ms += o.transit_over_late_ms;
        self.foreign_ssrc += o.foreign_ssrc;
        self.not_rtp += o.not_rtp;
    }
}
