//! Receiver statistics for one SSRC (RFC 3550 Appendix A.1, A.3, A.8):
//! sequence validation with probation and restart on a large jump,
//! expected/lost and fraction lost, interarrival jitter, and the reception
//! report block they make.

use std::time::Duration;

use super::rtcp::{duration_to_units_65536, ntp_middle, ReportBlock};
use super::stream::{MAX_DROPOUT, MAX_MISORDER};

/// Consecutive packets needed before a source is valid (A.1).
const MIN_SEQUENTIAL: u32 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiveStats::on_packet`] made of a sequence number (A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// In sequence (or a tolerated loss, duplicate or reorder): counted.
    Valid,
    /// The source is still on probation (fewer than 2 sequential packets).
    Probation,
    /// A very large jump: not counted; a second packet continuing from it
    /// restarts the statistics.
    BadJump,
    /// The sender restarted (two packets in sequence after a large jump):
    /// statistics were reset and this packet counted.
    Restarted,
}

/// Receiver statistics for one SSRC (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: u32,
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<u32>,
    jitter_q4: u32,
    last_sr: Option<(u32, Duration)>,
}

impl ReceiveStats {
    /// Statistics for `ssrc`, whose RTP clock is `clock_rate` Hz.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        ReceiveStats {
            ssrc,
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    /// The SSRC these statistics are about.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
        self.jitter_q4 = 0;
    }

    /// A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> SeqStatus {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqStatus::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqStatus::Probation;
        }
        let mut status = SeqStatus::Valid;
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                status = SeqStatus::Restarted;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqStatus::BadJump;
            }
        }
        // else: duplicate or reordered packet, counted.
        self.received = self.received.wrapping_add(1);
        status
    }

    /// Records an arriving RTP packet: `arrival` is the shell's receive
    /// time, `seq`/`rtp_timestamp` from the header. Counted packets also
    /// update the interarrival jitter (§6.4.1, A.8).
    pub fn on_packet(&mut self, arrival: Duration, seq: u16, rtp_timestamp: u32) -> SeqStatus {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let status = self.update_seq(seq);
        if matches!(status, SeqStatus::Valid | SeqStatus::Restarted) {
            let arrival_ts =
                (arrival.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
            let transit = arrival_ts.wrapping_sub(rtp_timestamp);
            if let Some(prev) = self.transit {
                let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
                // J += (|D| - J) / 16, kept as J * 16 (A.8).
                self.jitter_q4 = self
                    .jitter_q4
                    .wrapping_add(d)
                    .wrapping_sub((self.jitter_q4 + 8) >> 4);
            }
            self.transit = Some(transit);
        }
        status
    }

    /// Records an SR from this source for LSR/DLSR (§6.4.1).
    pub fn on_sender_report(&mut self, arrival: Duration, ntp: u64) {
        self.last_sr = Some((ntp_middle(ntp), arrival));
    }

    /// Packets received and counted.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Extended highest sequence number (A.3).
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected (A.3); 0 while on probation.
    pub fn expected(&self) -> u32 {
        if !self.started || self.probation > 0 {
            return 0;
        }
        self.extended_highest_seq()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Cumulative packets lost, clamped to 24-bit signed (A.3).
    pub fn cumulative_lost(&self) -> i32 {
        let lost = i64::from(self.expected()) - i64::from(self.received);
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// Interarrival jitter in timestamp units (A.8).
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Interarrival jitter as time.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.jitter()) * 1_000_000_000 / u64::from(self.clock_rate))
    }

    /// Builds the report block for this source at `now`, and starts a new
    /// interval for the fraction lost (A.3).
    pub fn report_block(&mut self, now: Duration) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (
                lsr,
                duration_to_units_65536(now.checked_sub(at).unwrap_or_default()),
            ),
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost(),
            highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}
