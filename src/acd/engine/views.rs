//! What the ACD shows without changing anything (REQUIREMENTS §3 wall-board,
//! §8 answer rates): the missed-call list, a group's queue, an agent's
//! state, a call's view, the live [`Stats`] of every group and agent.

use super::{CallTimer, Engine, Phase};
use crate::acd::error::AcdError;
use crate::acd::model::{
    AgentState, AgentView, CallId, CallPhase, CallView, MissedCall, QueueEntryView,
};
use crate::acd::stats::{AgentStats, GroupStats, ServiceLevel, Stats};
use crate::time::Time;

impl Engine {
    /// Every abandoned call, in order, for the callback KPI.
    pub fn missed_calls(&self) -> &[MissedCall] {
        &self.missed
    }

    /// A group's queue in order (callback places included).
    pub fn queue_snapshot(&self, group: &str) -> Result<Vec<QueueEntryView>, AcdError> {
        let gi = self.group_index(group)?;
        Ok(self.groups[gi]
            .queue
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let c = self.calls.get(&k.call)?;
                Some(QueueEntryView {
                    position: i + 1,
                    call: k.call,
                    priority: k.priority(),
                    arrived: k.arrived,
                    entered_group: c.entered_group,
                    callback: !c.live(),
                })
            })
            .collect())
    }

    /// An agent's state and since when.
    pub fn agent_state(&self, agent: &str) -> Option<(AgentState, Time)> {
        let a = &self.agents[*self.agent_ix.get(agent)?];
        Some((a.state, a.since))
    }

    /// An agent's state in detail.
    pub fn agent_view(&self, agent: &str) -> Option<AgentView> {
        let a = &self.agents[*self.agent_ix.get(agent)?];
        Some(AgentView {
            agent: a.cfg.id.clone(),
            state: a.state,
            reason: a.reason.clone(),
            since: a.since,
            idle_since: a.idle_since,
            call: a.call,
            acw_until: a.acw_until,
        })
    }

    /// A call the engine still holds.
    pub fn call_view(&self, call: CallId) -> Option<CallView> {
        let c = self.calls.get(&call)?;
        let name = |ai: &usize| self.agents[*ai].cfg.id.clone();
        let phase = match &c.phase {
            Phase::Waiting => CallPhase::Waiting,
            Phase::Offered { agents, kind } => CallPhase::Ringing {
                agents: agents.iter().map(name).collect(),
                kind: *kind,
            },
            Phase::Talking { agent, .. } => CallPhase::Talking { agent: name(agent) },
            Phase::Dialing { agent } => CallPhase::Dialing { agent: name(agent) },
            Phase::RetryWait => CallPhase::RetryWait {
                at: c.timers[CallTimer::Retry.slot()].unwrap_or_default(),
            },
        };
        Some(CallView {
            call: c.id,
            group: self.groups[c.group].cfg.id.clone(),
            caller: c.caller.clone(),
            priority: c.priority,
            arrived: c.arrived,
            entered_group: c.entered_group,
            callback: !c.live(),
            phase,
        })
    }

    /// Calls the engine holds (waiting, ringing, talking, callbacks).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Live statistics per group and agent at `now`.
    pub fn stats(&self, now: Time) -> Stats {
        let groups: Vec<GroupStats> = self
            .groups
            .iter()
            .filter(|g| !g.retired)
            .map(|g| GroupStats {
                group: g.cfg.id.clone(),
                calls_waiting: g.queue.live_len(),
                callbacks_pending: g.callbacks_pending,
                longest_wait: g
                    .queue
                    .oldest_live_arrival()
                    .map(|a| now.saturating_duration_since(a)),
                agents_by_state: AgentState::ALL
                    .iter()
                    .map(|s| (*s, g.by_state[s.index()]))
                    .collect(),
                answer_rate_20: g.counters.sl20.rate(),
                answer_rate_30: g.counters.sl30.rate(),
                asa: g.counters.asa(),
                aht: g.counters.aht(),
                average_acw: g.counters.average_acw(),
                counters: g.counters.clone(),
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .filter(|a| !a.retired)
            .map(|a| {
                let mut tis = a.time_in_state;
                tis[a.state.index()] += now.saturating_duration_since(a.since.max(self.day_start));
                AgentStats {
                    agent: a.cfg.id.clone(),
                    state: a.state,
                    reason: a.reason.clone(),
                    in_state_for: now.saturating_duration_since(a.since),
                    time_in_state: AgentState::ALL
                        .iter()
                        .map(|s| (*s, tis[s.index()]))
                        .collect(),
                    counters: a.counters.clone(),
                }
            })
            .collect();
        let mut sl20 = ServiceLevel::default();
        let mut sl30 = ServiceLevel::default();
        for g in &groups {
            for (total, part) in [(&mut sl20, &g.counters.sl20), (&mut sl30, &g.counters.sl30)] {
                total.asked += part.asked;
                total.answered_within += part.answered_within;
                total.short_abandons += part.short_abandons;
            }
        }
        Stats {
            at: now,
            groups,
            agents,
            sl20,
            sl30,
        }
    }
}
