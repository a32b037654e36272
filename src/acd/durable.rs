//! What of the ACD outlives the process (issue 12 item 3, "a restart loses
//! nothing the centre relies on"; REQUIREMENTS §3 callbacks and
//! previous-service routing, §7 wall-board, §8 the 100 % callback KPI).
//!
//! The engine stays pure: with [`Engine::track_changes`] on, it records
//! what changed and hands it out as [`Change`]s ([`Engine::take_changes`],
//! like the registrar's binding changes); the shell writes them to its
//! store before anyone outside hears of them. At the next start the shell
//! reads them back into a [`Snapshot`] and seeds a fresh engine with
//! [`Engine::restore`]. What is kept:
//! - every agent's state, reason, since-when, after-call work, and the
//!   counters and time in state of the day ([`AgentRecord`]);
//! - every skill group's counters of the day ([`GroupRecord`]);
//! - pending callbacks: their place (priority, arrival), number and
//!   attempts so far ([`CallbackRecord`]);
//! - the missed-call list ([`MissedCall`]);
//! - the last agent who served each caller ([`ServiceRecord`]);
//! - when the current day began ([`Change::Day`]).
//!
//! Calls on the line are not kept: a crash cuts them off (their records
//! are closed at the next start by `events::replay`).
//!
//! Times are the engine's [`Time`]s; the shell runs the engine on Unix
//! time, so they are wall-clock times and mean the same after a restart.
//!
//! [`Engine::track_changes`]: super::Engine::track_changes
//! [`Engine::take_changes`]: super::Engine::take_changes
//! [`Engine::restore`]: super::Engine::restore

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::{AgentId, AgentState, CallId, GroupId, MissedCall};
use super::stats::{AgentCounters, GroupCounters};
use crate::time::Time;

/// One agent as it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent: AgentId,
    pub state: AgentState,
    /// Not-ready reason.
    pub reason: Option<String>,
    /// In `state` since.
    pub since: Time,
    /// Counted as idle since (longest-idle order).
    pub idle_since: Time,
    /// End of after-call work.
    pub acw_until: Option<Time>,
    /// The skill group whose after-call work it is.
    pub acw_group: Option<GroupId>,
    /// Counters of the day.
    pub counters: AgentCounters,
    /// Time in each state this day, up to `since` (the current state's
    /// time runs on from `since`: after a restart the time hotline was
    /// down counts in the state the agent is signed in again with).
    pub time_in_state: Vec<(AgentState, Duration)>,
}

/// One skill group's counters of the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub group: GroupId,
    pub counters: GroupCounters,
}

/// A callback not yet answered or given up: a virtual place in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub call: CallId,
    pub group: GroupId,
    /// Who called (the caller's number, or the number scheduled).
    pub caller: String,
    /// The number to call back.
    pub number: String,
    /// Base priority (boosts are recomputed from `arrived`).
    pub priority: u8,
    /// The original arrival: the place in the queue.
    pub arrived: Time,
    /// Unanswered attempts so far.
    pub attempts: u32,
    /// Not offered again before this (waiting between attempts).
    pub retry_at: Option<Time>,
    /// Its own most attempts (else the callback policy's).
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// The last agent who served a caller (previous-service routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub caller: String,
    pub agent: AgentId,
    pub at: Time,
}

/// One change to keep, in the order it must be applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// The agent's whole record, as it is now.
    Agent(AgentRecord),
    /// The group's counters, as they are now.
    Group(GroupRecord),
    /// A callback became pending, or its attempts changed.
    Callback(CallbackRecord),
    /// The callback was answered or given up.
    CallbackGone(CallId),
    /// A missed call was added, or called back.
    Missed(MissedCall),
    /// A missed call left the list (called back, on a new day).
    MissedGone(CallId),
    /// A caller was served by an agent.
    Served(ServiceRecord),
    /// A new day began at this time: every counter is zero again.
    Day(Time),
}

/// Everything kept, read back at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the day of the kept counters began (`None`: never written).
    pub day_start: Option<Time>,
    pub agents: Vec<AgentRecord>,
    pub groups: Vec<GroupRecord>,
    pub callbacks: Vec<CallbackRecord>,
    pub missed: Vec<MissedCall>,
    pub served: Vec<ServiceRecord>,
}

impl Snapshot {
    /// Apply `changes` in order, as a store would (tests, and the shell's
    /// own check that what it wrote reads back the same).
    pub fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            match change.clone() {
                Change::Agent(r) => upsert(&mut self.agents, r, |a, b| a.agent == b.agent),
                Change::Group(r) => upsert(&mut self.groups, r, |a, b| a.group == b.group),
                Change::Callback(r) => upsert(&mut self.callbacks, r, |a, b| a.call == b.call),
                Change::CallbackGone(call) => self.callbacks.retain(|c| c.call != call),
                Change::Missed(m) => upsert(&mut self.missed, m, |a, b| a.call == b.call),
                Change::MissedGone(call) => self.missed.retain(|m| m.call != call),
                Change::Served(r) => upsert(&mut self.served, r, |a, b| a.caller == b.caller),
                Change::Day(at) => self.day_start = Some(at),
            }
        }
    }
}

fn upsert<T>(list: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match list.iter_mut().find(|x| same(x, &item)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

/// How one kept agent is signed in again at `now` (see [`Engine::restore`]).
///
/// [`Engine::restore`]: super::Engine::restore
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resumed {
    /// As they were: same state, reason and since-when; no event.
    AsBefore,
    /// Signed out at `now`: not signed in before, or nothing can reach
    /// their phone (its registration expired while hotline was down).
    LoggedOut,
    /// Idle at `now` (their ringing offer, or their after-call work, ended
    /// while hotline was down).
    Idle,
    /// In after-call work from `now` (the call they were on was cut off).
    AfterCallWork,
}

/// The rule for one agent kept in `state` (with after-call work until
/// `acw_until`) whose phone is, or is not, registered at `now`.
pub(crate) fn resume(
    state: AgentState,
    acw_until: Option<Time>,
    registered: bool,
    now: Time,
) -> Resumed {
    use AgentState as S;
    match state {
        S::LoggedOut => Resumed::AsBefore,
        _ if !registered => Resumed::LoggedOut,
        S::Idle | S::NotReady => Resumed::AsBefore,
        S::AfterCallWork if acw_until.is_some_and(|until| until > now) => Resumed::AsBefore,
        S::AfterCallWork | S::Ringing => Resumed::Idle,
        S::Talking | S::OnHold | S::Outbound => Resumed::AfterCallWork,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState as S;

    #[test]
    fn the_resume_table() {
        let s = Time::from_unix_secs;
        let now = s(100);
        let rows = [
            (S::LoggedOut, None, true, Resumed::AsBefore),
            (S::LoggedOut, None, false, Resumed::AsBefore),
            (S::Idle, None, true, Resumed::AsBefore),
            (S::Idle, None, false, Resumed::LoggedOut),
            (S::NotReady, None, true, Resumed::AsBefore),
            (S::NotReady, None, false, Resumed::LoggedOut),
            (S::AfterCallWork, Some(s(101)), true, Resumed::AsBefore),
            (S::AfterCallWork, Some(s(100)), true, Resumed::Idle),
            (S::AfterCallWork, None, true, Resumed::Idle),
            (S::AfterCallWork, Some(s(101)), false, Resumed::LoggedOut),
            (S::Ringing, None, true, Resumed::Idle),
            (S::Talking, None, true, Resumed::AfterCallWork),
            (S::OnHold, None, true, Resumed::AfterCallWork),
            (S::Outbound, None, true, Resumed::AfterCallWork),
            (S::Talking, None, false, Resumed::LoggedOut),
        ];
        for (state, until, registered, want) in rows {
            assert_eq!(
                resume(state, until, registered, now),
                want,
                "{state:?} {until:?} {registered}"
            );
        }
    }

    #[test]
    fn a_snapshot_applies_changes_in_order() {
        let s = Time::from_unix_secs;
        let cb = |attempts| CallbackRecord {
            call: CallId(7),
            group: "g".into(),
            caller: "1".into(),
            number: "1".into(),
            priority: 0,
            arrived: s(1),
            attempts,
            retry_at: None,
            max_attempts: None,
        };
        let mut snap = Snapshot::default();
        snap.apply(&[
            Change::Callback(cb(0)),
            Change::Callback(cb(1)),
            Change::Day(s(50)),
            Change::Served(ServiceRecord {
                caller: "1".into(),
                agent: "a".into(),
                at: s(2),
            }),
        ]);
        assert_eq!(snap.callbacks, vec![cb(1)]);
        assert_eq!(snap.day_start, Some(s(50)));
        assert_eq!(snap.served.len(), 1);
        snap.apply(&[Change::CallbackGone(CallId(7))]);
        assert!(snap.callbacks.is_empty());
    }
}
