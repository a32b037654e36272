//! Agents' states: moving an agent between logged out, idle, not ready,
//! ringing, talking and after-call work, keeping the group tables, idle
//! sets and time in state right and emitting the agent event.

use super::{Engine, Release, Timer};
use crate::acd::model::{AgentState, CallId, Output};
use crate::time::Time;

impl Engine {
    /// Move an agent to `state`, keeping the group tables, idle sets and
    /// time-in-state right, and emit the event. `fresh_idle` restarts the
    /// idle-since clock; otherwise the old one is kept (withdrawn offers).
    pub(super) fn set_agent(
        &mut self,
        ai: usize,
        state: AgentState,
        reason: Option<String>,
        call: Option<CallId>,
        now: Time,
        fresh_idle: bool,
    ) {
        let a = &mut self.agents[ai];
        let old = a.state;
        a.time_in_state[old.index()] += now.saturating_duration_since(a.since.max(self.day_start));
        for &gi in &a.skills {
            let g = &mut self.groups[gi];
            if old == AgentState::Idle {
                g.idle.remove(&(a.idle_since, ai));
            }
            g.by_state[old.index()] = g.by_state[old.index()].saturating_sub(1);
            g.by_state[state.index()] += 1;
        }
        if state == AgentState::Idle {
            if fresh_idle {
                a.idle_since = now;
            }
            for &gi in &a.skills {
                self.groups[gi].idle.insert((a.idle_since, ai));
            }
        }
        a.state = state;
        a.reason.clone_from(&reason);
        a.call = call;
        a.since = now;
        let agent = a.cfg.id.clone();
        self.note_agent(ai);
        self.out.push_back(Output::AgentState {
            agent,
            state,
            reason,
            call,
            at: now,
        });
    }

    /// Before logout / not ready: end after-call work, or withdraw a ringing
    /// offer (the agent takes the state `how` says).
    pub(super) fn leave_current(&mut self, ai: usize, how: Release<'_>, now: Time) {
        match self.agents[ai].state {
            AgentState::AfterCallWork => self.leave_acw(ai, now),
            AgentState::Ringing => {
                if let Some(call) = self.agents[ai].call {
                    self.release_one(call, ai, how, now);
                }
            }
            _ => {}
        }
    }

    pub(super) fn leave_acw(&mut self, ai: usize, now: Time) {
        let a = &mut self.agents[ai];
        if let Some(until) = a.acw_until.take() {
            self.timers.remove(&(until, Timer::Acw(ai)));
        }
        let spent = now.saturating_duration_since(a.acw_started);
        a.counters.acw_total += spent;
        if let Some(gi) = a.acw_group.take() {
            let c = &mut self.groups[gi].counters;
            c.acw_total += spent;
            c.acw_count += 1;
            self.note_group(gi);
        }
        self.note_agent(ai);
    }
}
