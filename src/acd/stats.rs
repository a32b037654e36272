//! Live statistics per group and agent, kept incrementally (issue "Live
//! statistics"; REQUIREMENTS §7 monitoring and §8 quality targets).
//!
//! Service level (§8 "20 s answer rate"): every call that asked for an agent
//! and has left the queue counts once, in the group where it left:
//! answered, hung up (in the queue, while ringing, or in the IVR after
//! asking for an agent), left for a callback, or sent on by the queue limit.
//! The rate is `answered within T / (asked − left on their own within T)`;
//! "within" includes T itself, waits count from the original arrival, and
//! calls sent on by the system stay in the denominator.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{AgentId, AgentState, GroupId};
use crate::time::Time;

/// The 20 s threshold of REQUIREMENTS §8.
pub const SL_20: Duration = Duration::from_secs(20);
/// The 30 s threshold of REQUIREMENTS §8.
pub const SL_30: Duration = Duration::from_secs(30);

/// How a call that asked for an agent left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    /// Hung up, or chose a callback: the caller's own choice.
    CallerLeft,
    /// Voicemail, hang-up or callback forced by `max_wait`/`max_queue`.
    SystemEnded,
}

/// Counters for one answer-rate threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLevel {
    /// Calls that asked for an agent and have left the queue.
    pub asked: u64,
    /// Of which answered by an agent within the threshold.
    pub answered_within: u64,
    /// Of which left on their own within the threshold (excluded).
    pub short_abandons: u64,
}

impl ServiceLevel {
    /// Count one finished call.
    pub fn record(&mut self, threshold: Duration, wait: Duration, how: Disposition) {
        self.asked += 1;
        match how {
            Disposition::Answered if wait <= threshold => self.answered_within += 1,
            Disposition::CallerLeft if wait <= threshold => self.short_abandons += 1,
            _ => {}
        }
    }

    /// The rate in 0..=1, or `None` before any call counts.
    pub fn rate(&self) -> Option<f64> {
        let denominator = self.asked.checked_sub(self.short_abandons)?;
        (denominator > 0).then(|| self.answered_within as f64 / denominator as f64)
    }
}

/// Cumulative counters of one group since the start or the last `NewDay`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounters {
    /// Callers who entered this group (first entry or overflow).
    pub entered: u64,
    pub overflowed_in: u64,
    pub overflowed_out: u64,
    /// Offers made (one per agent rung).
    pub offers: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub abandoned_in_ivr: u64,
    pub callback_requested: u64,
    pub timed_out: u64,
    pub callbacks_scheduled: u64,
    pub callbacks_answered: u64,
    pub callbacks_failed: u64,
    /// Sum of waits (arrival → answer) of answered calls.
    pub answer_wait_total: Duration,
    /// Conversations finished (for AHT).
    pub handled: u64,
    /// Talk time (hold included) of finished conversations.
    pub talk_total: Duration,
    /// Completed after-call work.
    pub acw_total: Duration,
    pub acw_count: u64,
    pub sl20: ServiceLevel,
    pub sl30: ServiceLevel,
}

impl GroupCounters {
    pub(crate) fn finish(&mut self, wait: Duration, how: Disposition) {
        self.sl20.record(SL_20, wait, how);
        self.sl30.record(SL_30, wait, how);
    }

    /// Average speed of answer.
    pub fn asa(&self) -> Option<Duration> {
        average(self.answer_wait_total, self.answered)
    }

    /// Average handle time: talk (with hold) plus after-call work.
    pub fn aht(&self) -> Option<Duration> {
        let acw = average(self.acw_total, self.acw_count).unwrap_or_default();
        average(self.talk_total, self.handled).map(|t| t + acw)
    }

    pub fn average_acw(&self) -> Option<Duration> {
        average(self.acw_total, self.acw_count)
    }
}

pub(crate) fn average(total: Duration, n: u64) -> Option<Duration> {
    let n = u32::try_from(n).ok().filter(|n| *n > 0)?;
    Some(total / n)
}

/// Cumulative counters of one agent since the start or the last `NewDay`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCounters {
    pub offered: u64,
    /// Calls answered ("calls today" for the fewest-calls strategy).
    pub answered: u64,
    pub no_answer: u64,
    pub rejected: u64,
    pub callbacks_answered: u64,
    pub talk_total: Duration,
    pub acw_total: Duration,
}

/// A snapshot of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub group: GroupId,
    /// Callers on the line in the queue (ringing ones not counted).
    pub calls_waiting: usize,
    /// Callbacks not yet answered or given up (waiting, ringing, dialing, retrying).
    pub callbacks_pending: usize,
    pub longest_wait: Option<Duration>,
    /// Members by state.
    pub agents_by_state: Vec<(AgentState, usize)>,
    pub counters: GroupCounters,
    pub answer_rate_20: Option<f64>,
    pub answer_rate_30: Option<f64>,
    pub asa: Option<Duration>,
    pub aht: Option<Duration>,
    pub average_acw: Option<Duration>,
}

/// A snapshot of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStats {
    pub agent: AgentId,
    pub state: AgentState,
    pub reason: Option<String>,
    pub in_state_for: Duration,
    /// Total time in each state since the start or the last `NewDay`.
    pub time_in_state: Vec<(AgentState, Duration)>,
    pub counters: AgentCounters,
}

/// Everything at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub at: Time,
    pub groups: Vec<GroupStats>,
    pub agents: Vec<AgentStats>,
    /// All groups together.
    pub sl20: ServiceLevel,
    pub sl30: ServiceLevel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_table() {
        let s = Duration::from_secs;
        let mut sl = ServiceLevel::default();
        let rows = [
            (s(5), Disposition::Answered),    // within
            (s(20), Disposition::Answered),   // within (inclusive)
            (s(21), Disposition::Answered),   // late
            (s(3), Disposition::CallerLeft),  // excluded
            (s(25), Disposition::CallerLeft), // counts against
            (s(10), Disposition::SystemEnded),
        ];
        for (wait, how) in rows {
            sl.record(SL_20, wait, how);
        }
        assert_eq!(sl.asked, 6);
        assert_eq!(sl.answered_within, 2);
        assert_eq!(sl.short_abandons, 1);
        assert_eq!(sl.rate(), Some(2.0 / 5.0));
        assert_eq!(ServiceLevel::default().rate(), None);
    }
}
