//! Keeping the ACD across a restart (issue 12 item 3): the changes the
//! shell writes to its store ([`Engine::take_changes`]) and seeding a fresh
//! engine from what it read back ([`Engine::restore`]). The types and the
//! rules are in [`crate::acd::durable`].

use std::time::Duration;

use super::{set_timer, Call, CallTimer, Engine, Phase, Timer};
use crate::acd::durable::{
    resume, AgentRecord, CallbackRecord, Change, GroupRecord, Resumed, ServiceRecord, Snapshot,
};
use crate::acd::error::AcdError;
use crate::acd::model::AgentState;
use crate::time::Time;

impl Engine {
    /// Record every change the shell must keep, for
    /// [`Engine::take_changes`]. Off by default (simulations and
    /// benchmarks keep nothing).
    pub fn track_changes(&mut self) {
        self.tracking = true;
    }

    /// What changed since the last call, in the order to apply it: other
    /// changes first, then each changed agent's and group's record as it is
    /// now. Empty unless [`Engine::track_changes`] was called.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut out = std::mem::take(&mut self.changes);
        for ai in std::mem::take(&mut self.changed_agents) {
            if let Some(r) = self.agent_record(ai) {
                out.push(Change::Agent(r));
            }
        }
        for gi in std::mem::take(&mut self.changed_groups) {
            if let Some(g) = self.groups.get(gi).filter(|g| !g.retired) {
                out.push(Change::Group(GroupRecord {
                    group: g.cfg.id.clone(),
                    counters: g.counters.clone(),
                }));
            }
        }
        out
    }

    /// Everything [`Engine::take_changes`] keeps, as it is now, computed
    /// afresh from the engine's state (lists in id order): what a store
    /// that applied every change in order holds.
    pub fn snapshot(&self) -> Snapshot {
        let mut callbacks: Vec<CallbackRecord> = self
            .calls
            .keys()
            .filter_map(|c| self.callback_record(*c))
            .collect();
        callbacks.sort_by_key(|c| c.call);
        let mut served: Vec<ServiceRecord> = self
            .last_served
            .iter()
            .filter_map(|(caller, (ai, at))| {
                let a = self.agents.get(*ai).filter(|a| !a.retired)?;
                Some(ServiceRecord {
                    caller: caller.clone(),
                    agent: a.cfg.id.clone(),
                    at: *at,
                })
            })
            .collect();
        served.sort_by(|a, b| a.caller.cmp(&b.caller));
        let mut agents: Vec<AgentRecord> = (0..self.agents.len())
            .filter_map(|ai| self.agent_record(ai))
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        let mut groups: Vec<GroupRecord> = self
            .groups
            .iter()
            .filter(|g| !g.retired)
            .map(|g| GroupRecord {
                group: g.cfg.id.clone(),
                counters: g.counters.clone(),
            })
            .collect();
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        let mut missed = self.missed.clone();
        missed.sort_by_key(|m| m.call);
        Snapshot {
            day_start: Some(self.day_start),
            agents,
            groups,
            callbacks,
            missed,
            served,
        }
    }

    /// When the current day began (the last `NewDay`, the restored day, or
    /// the engine's start).
    pub fn day_start(&self) -> Time {
        self.day_start
    }

    /// The SIP user of an agent's phone.
    pub fn agent_device(&self, agent: &str) -> Option<&str> {
        let ai = *self.agent_ix.get(agent)?;
        Some(self.agents[ai].cfg.device.as_str())
    }

    /// Seed a fresh engine (every agent logged out, no call) at `now` from
    /// what was kept. `today` is when the current day began (local
    /// midnight): counters and times in state kept for a day that began
    /// before it are not restored, and the day is started afresh (a
    /// `NewDay` at `today`). `registered(device)` says whether an agent's
    /// phone is registered now.
    ///
    /// Agents signed in before are signed in again as they were (idle,
    /// not ready with the same reason, after-call work until the same
    /// time), unless their phone is not registered: then they are signed
    /// out. Work the stop cut short ends: a ringing offer (idle again), a
    /// call (after-call work from now, their first group's), after-call
    /// work that ran out meanwhile (idle). Each such change comes out as
    /// an agent state output; an agent as before gives none.
    ///
    /// Pending callbacks go back to their place in their group's queue
    /// (or wait for their next attempt); missed calls (in the order given:
    /// the order they were missed in) and previous-service records are
    /// restored. Then idle agents are handed waiting callbacks.
    ///
    /// Entries naming an agent or group no longer configured, a call kept
    /// twice, or an agent not logged out are refused one by one; the rest
    /// is restored. The refusals are returned for the shell to log.
    pub fn restore(
        &mut self,
        now: Time,
        today: Time,
        snapshot: Snapshot,
        registered: impl Fn(&str) -> bool,
    ) -> Vec<AcdError> {
        let mut refused = Vec::new();
        let same_day = snapshot.day_start.is_some_and(|d| d >= today);
        if same_day {
            for g in &snapshot.groups {
                match self.group_index(&g.group) {
                    Ok(gi) => self.groups[gi].counters = g.counters.clone(),
                    Err(e) => refused.push(e),
                }
            }
        }
        for record in snapshot.agents {
            if let Err(e) = self.restore_agent(now, record, same_day, &registered) {
                refused.push(e);
            }
        }
        for m in snapshot.missed {
            self.push_missed(m);
        }
        for s in snapshot.served {
            if let Some(&ai) = self.agent_ix.get(&s.agent) {
                let newer = self
                    .last_served
                    .get(&s.caller)
                    .is_none_or(|(_, at)| *at < s.at);
                if newer {
                    self.last_served.insert(s.caller, (ai, s.at));
                }
            }
        }
        let mut callbacks = snapshot.callbacks;
        callbacks.sort_by_key(|c| (c.arrived, c.call));
        for c in callbacks {
            if let Err(e) = self.restore_callback(now, c) {
                refused.push(e);
            }
        }
        match snapshot.day_start.filter(|_| same_day) {
            Some(d) => self.day_start = d,
            None => self.new_day(today),
        }
        self.dispatch(now);
        refused
    }

    fn restore_agent(
        &mut self,
        now: Time,
        r: AgentRecord,
        same_day: bool,
        registered: &impl Fn(&str) -> bool,
    ) -> Result<(), AcdError> {
        let ai = self.agent_index(&r.agent)?;
        let a = &self.agents[ai];
        if a.state != AgentState::LoggedOut || a.call.is_some() {
            return Err(self.wrong_agent(ai, "be restored"));
        }
        let phone = registered(&a.cfg.device);
        let a = &mut self.agents[ai];
        if same_day {
            a.counters = r.counters.clone();
            for (state, spent) in &r.time_in_state {
                a.time_in_state[state.index()] = *spent;
            }
        }
        let how = resume(r.state, r.acw_until, phone, now);
        // Back in the kept state, silently, …
        self.place(ai, r.state, r.reason.clone(), r.since, r.idle_since);
        if r.state == AgentState::AfterCallWork {
            if let Some(until) = r.acw_until.filter(|_| how == Resumed::AsBefore) {
                let acw_group = r.acw_group.as_deref().and_then(|g| self.group_ix.get(g));
                let a = &mut self.agents[ai];
                a.acw_until = Some(until);
                a.acw_started = r.since;
                a.acw_group = acw_group.copied();
                self.timers.insert((until, Timer::Acw(ai)));
            }
        }
        // … then what the stop changed, from now.
        match how {
            Resumed::AsBefore => {}
            Resumed::LoggedOut => {
                self.agents[ai].since = now;
                self.set_agent(ai, AgentState::LoggedOut, None, None, now, false);
            }
            Resumed::Idle => {
                self.agents[ai].since = now;
                let fresh = r.state != AgentState::Ringing;
                self.set_agent(ai, AgentState::Idle, None, None, now, fresh);
            }
            Resumed::AfterCallWork => {
                self.agents[ai].since = now;
                let first = self.agents[ai].skills.first().copied();
                let acw = first.map_or(Duration::ZERO, |gi| self.groups[gi].cfg.acw);
                match first.filter(|_| !acw.is_zero()) {
                    None => self.set_agent(ai, AgentState::Idle, None, None, now, true),
                    Some(gi) => {
                        let until = now + acw;
                        let a = &mut self.agents[ai];
                        a.acw_until = Some(until);
                        a.acw_started = now;
                        a.acw_group = Some(gi);
                        self.timers.insert((until, Timer::Acw(ai)));
                        self.set_agent(ai, AgentState::AfterCallWork, None, None, now, false);
                    }
                }
            }
        }
        Ok(())
    }

    /// Put a logged-out agent in `state` without an event or time
    /// accounting (restoring), keeping the group tables right.
    fn place(
        &mut self,
        ai: usize,
        state: AgentState,
        reason: Option<String>,
        since: Time,
        idle_since: Time,
    ) {
        let a = &mut self.agents[ai];
        let old = a.state;
        for &gi in &a.skills {
            let g = &mut self.groups[gi];
            if old == AgentState::Idle {
                g.idle.remove(&(a.idle_since, ai));
            }
            g.by_state[old.index()] = g.by_state[old.index()].saturating_sub(1);
            g.by_state[state.index()] += 1;
            if state == AgentState::Idle {
                g.idle.insert((idle_since, ai));
            }
        }
        a.state = state;
        a.reason = reason;
        a.since = since;
        a.idle_since = idle_since;
    }

    fn restore_callback(&mut self, now: Time, r: CallbackRecord) -> Result<(), AcdError> {
        let gi = self.group_index(&r.group)?;
        if self.calls.contains_key(&r.call) {
            return Err(AcdError::DuplicateCall(r.call));
        }
        let seq = self.next_seq();
        let call = Call {
            callback_number: Some(r.number),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            ..Call::waiting(
                r.call,
                r.caller,
                gi,
                r.priority,
                r.arrived.min(now),
                now,
                seq,
            )
        };
        self.calls.insert(r.call, call);
        self.groups[gi].callbacks_pending += 1;
        match r.retry_at.filter(|at| *at > now) {
            Some(at) => {
                if let Some(c) = self.calls.get_mut(&r.call) {
                    c.phase = Phase::RetryWait;
                    set_timer(&mut self.timers, c, CallTimer::Retry, at);
                }
            }
            None => self.arm_waiting(r.call, now),
        }
        Ok(())
    }

    /// The agent as it is kept (`None` for a retired one).
    pub(super) fn agent_record(&self, ai: usize) -> Option<AgentRecord> {
        let a = self.agents.get(ai).filter(|a| !a.retired)?;
        Some(AgentRecord {
            agent: a.cfg.id.clone(),
            state: a.state,
            reason: a.reason.clone(),
            since: a.since,
            idle_since: a.idle_since,
            acw_until: a.acw_until,
            acw_group: a.acw_group.map(|gi| self.groups[gi].cfg.id.clone()),
            counters: a.counters.clone(),
            time_in_state: AgentState::ALL
                .iter()
                .map(|s| (*s, a.time_in_state[s.index()]))
                .collect(),
        })
    }

    /// A pending callback as it is kept (`None` once answered).
    pub(super) fn callback_record(&self, call: crate::acd::CallId) -> Option<CallbackRecord> {
        let c = self.calls.get(&call)?;
        if matches!(c.phase, Phase::Talking { .. }) {
            return None;
        }
        let number = c.callback_number.clone()?;
        Some(CallbackRecord {
            call,
            group: self.groups[c.group].cfg.id.clone(),
            caller: c.caller.clone(),
            number,
            priority: c.base_priority,
            arrived: c.arrived,
            attempts: c.attempts,
            retry_at: match c.phase {
                Phase::RetryWait => c.timers[CallTimer::Retry.slot()],
                _ => None,
            },
            max_attempts: c.max_attempts,
        })
    }

    pub(super) fn note_agent(&mut self, ai: usize) {
        if self.tracking {
            self.changed_agents.insert(ai);
        }
    }

    pub(super) fn note_group(&mut self, gi: usize) {
        if self.tracking {
            self.changed_groups.insert(gi);
        }
    }

    /// Keep the change `make` builds, when tracking.
    pub(super) fn record(&mut self, make: impl FnOnce(&Self) -> Option<Change>) {
        if self.tracking {
            if let Some(c) = make(self) {
                self.changes.push(c);
            }
        }
    }
}
