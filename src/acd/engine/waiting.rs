//! Queue entries: a caller entering a group (first time or by overflow),
//! waiting with its timers, overflow and the group's next step at the
//! queue limit, the caller becoming a callback, abandoning, and the
//! missed-call list (REQUIREMENTS §3, §8 callback KPI).

use std::time::Duration;

use super::{clear_timer, set_timer, CallTimer, Engine, Phase};
use crate::acd::durable::Change;
use crate::acd::model::{
    AgentState, CallId, MissedCall, MissedWhere, NextStep, Output, OverflowReason, QueueEvent,
    QueueEventKind, TimeoutReason,
};
use crate::acd::queue::{effective_priority, next_boost, next_tick};
use crate::acd::stats::Disposition;
use crate::time::Time;

impl Engine {
    pub(super) fn emit_queue(&mut self, call: CallId, kind: QueueEventKind, now: Time) {
        if let Some(c) = self.calls.get(&call) {
            self.out.push_back(Output::Queue(QueueEvent {
                call,
                group: self.groups[c.group].cfg.id.clone(),
                kind,
                arrived: c.arrived,
                at: now,
            }));
        }
    }

    pub(super) fn emit_entered(&mut self, call: CallId, gi: usize, from: Option<usize>, now: Time) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let kind = QueueEventKind::Entered {
            priority: c.base_priority,
            callback: !c.live(),
            from: from.map(|f| self.groups[f].cfg.id.clone()),
        };
        self.out.push_back(Output::Queue(QueueEvent {
            call,
            group: self.groups[gi].cfg.id.clone(),
            kind,
            arrived: c.arrived,
            at: now,
        }));
    }

    /// The caller's previous agent, if previous-service routing applies.
    pub(super) fn previous_agent(
        &self,
        call: CallId,
        gi: usize,
        now: Time,
    ) -> Option<(usize, Duration)> {
        let ps = self.previous_service?;
        let caller = &self.calls.get(&call)?.caller;
        let &(ai, at) = self.last_served.get(caller)?;
        let a = self.agents.get(ai)?;
        let fits = now.saturating_duration_since(at) <= ps.within
            && !a.retired
            && a.state == AgentState::Idle
            && a.cfg.tenant == self.groups[gi].cfg.tenant;
        fits.then_some((ai, ps.ring_for))
    }

    /// A caller arrives in group `gi` (first time or by overflow).
    pub(super) fn enter_group(
        &mut self,
        call: CallId,
        gi: usize,
        from: Option<usize>,
        now: Time,
        visited: &mut Vec<usize>,
    ) {
        visited.push(gi);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.group = gi;
        c.entered_group = now;
        let g = &mut self.groups[gi];
        g.counters.entered += 1;
        if from.is_some() {
            g.counters.overflowed_in += 1;
        }
        self.note_group(gi);
        self.emit_entered(call, gi, from, now);
        if self.groups[gi].queue.live_len() >= self.groups[gi].cfg.max_queue {
            self.next_step(call, TimeoutReason::QueueFull, now, visited);
        } else {
            self.arm_waiting(call, now);
        }
    }

    /// Put a call (back) in its group's queue with its key and timers.
    pub(super) fn arm_waiting(&mut self, call: CallId, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let g = &mut self.groups[c.group];
        let boosts = &g.cfg.priority_boost;
        c.priority = effective_priority(
            c.base_priority,
            now.saturating_duration_since(c.arrived),
            boosts,
        );
        c.phase = Phase::Waiting;
        g.queue.insert(c.key(), c.live());
        if let Some(at) = next_boost(c.base_priority, c.arrived, now, boosts) {
            set_timer(&mut self.timers, c, CallTimer::Boost, at);
        }
        if c.live() && !c.consultation {
            if let Some((after, _)) = g.overflow {
                set_timer(
                    &mut self.timers,
                    c,
                    CallTimer::Overflow,
                    (c.entered_group + after).max(now),
                );
            }
            let max_wait = (c.entered_group + c.max_wait.unwrap_or(g.cfg.max_wait)).max(now);
            set_timer(&mut self.timers, c, CallTimer::MaxWait, max_wait);
            if let Some(every) = g.cfg.announce_every {
                set_timer(
                    &mut self.timers,
                    c,
                    CallTimer::Announce,
                    next_tick(c.entered_group, every, now),
                );
            }
        }
    }

    /// Take a waiting call out of its queue and stop its waiting timers.
    pub(super) fn disarm_waiting(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        self.groups[c.group].queue.remove(&c.key());
        for kind in [
            CallTimer::Overflow,
            CallTimer::MaxWait,
            CallTimer::Boost,
            CallTimer::Announce,
        ] {
            clear_timer(&mut self.timers, c, kind);
        }
    }

    /// The group's queue limit was hit (call already out of the queue).
    pub(super) fn next_step(
        &mut self,
        call: CallId,
        reason: TimeoutReason,
        now: Time,
        visited: &mut Vec<usize>,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let gi = c.group;
        let wait = now.saturating_duration_since(c.arrived);
        let overridden = c.on_timeout.clone();
        let mut next = overridden
            .clone()
            .unwrap_or_else(|| self.groups[gi].cfg.on_max_wait.clone());
        if let (Some(to), None) = (self.groups[gi].next_group, &overridden) {
            if !visited.contains(&to) {
                let why = match reason {
                    TimeoutReason::MaxWait => OverflowReason::MaxWait,
                    TimeoutReason::QueueFull => OverflowReason::QueueFull,
                };
                self.overflow(call, gi, to, why, now, visited);
                return;
            }
            // Every group on the way is full: let the caller leave a message.
            next = NextStep::Voicemail;
        }
        let g = &mut self.groups[gi];
        g.counters.timed_out += 1;
        g.counters.finish(wait, Disposition::SystemEnded);
        self.note_group(gi);
        let g = &self.groups[gi];
        self.out.push_back(Output::QueueTimeout {
            call,
            group: g.cfg.id.clone(),
            reason,
            next: next.clone(),
        });
        self.emit_queue(call, QueueEventKind::TimedOut { reason }, now);
        if next == NextStep::Callback {
            let number = self
                .calls
                .get(&call)
                .map(|c| c.caller.clone())
                .unwrap_or_default();
            self.make_callback(call, number);
            self.arm_waiting(call, now);
        } else if let Some(c) = self.calls.remove(&call) {
            self.add_missed(call, c.caller, gi, c.arrived, MissedWhere::TimedOut, now);
        }
    }

    pub(super) fn overflow(
        &mut self,
        call: CallId,
        from: usize,
        to: usize,
        reason: OverflowReason,
        now: Time,
        visited: &mut Vec<usize>,
    ) {
        self.groups[from].counters.overflowed_out += 1;
        self.note_group(from);
        self.out.push_back(Output::Overflowed {
            call,
            from: self.groups[from].cfg.id.clone(),
            to: self.groups[to].cfg.id.clone(),
            reason,
        });
        self.emit_queue(
            call,
            QueueEventKind::OverflowedOut {
                to: self.groups[to].cfg.id.clone(),
            },
            now,
        );
        self.enter_group(call, to, Some(from), now, visited);
    }

    pub(super) fn make_callback(&mut self, call: CallId, number: String) {
        if let Some(c) = self.calls.get_mut(&call) {
            if c.callback_number.is_none() {
                self.groups[c.group].callbacks_pending += 1;
            }
            c.callback_number = Some(number);
        }
        self.record(|e| e.callback_record(call).map(Change::Callback));
    }

    /// The caller hung up before an agent answered (call out of the queue).
    pub(super) fn abandon(&mut self, call: CallId, while_ringing: bool, now: Time) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let (gi, wait) = (c.group, now.saturating_duration_since(c.arrived));
        let g = &mut self.groups[gi];
        g.counters.abandoned += 1;
        g.counters.finish(wait, Disposition::CallerLeft);
        self.note_group(gi);
        self.emit_queue(call, QueueEventKind::Abandoned { while_ringing }, now);
        if let Some(mut c) = self.calls.remove(&call) {
            clear_timer(&mut self.timers, &mut c, CallTimer::Ring);
            let place = if while_ringing {
                MissedWhere::Ringing
            } else {
                MissedWhere::Queue
            };
            self.add_missed(call, c.caller, gi, c.arrived, place, now);
        }
    }

    pub(super) fn add_missed(
        &mut self,
        call: CallId,
        caller: String,
        gi: usize,
        arrived: Time,
        place: MissedWhere,
        now: Time,
    ) {
        let missed = MissedCall {
            call,
            caller,
            group: self.groups[gi].cfg.id.clone(),
            arrived,
            at: now,
            wait: now.saturating_duration_since(arrived),
            place,
            called_back_at: None,
        };
        self.record(|_| Some(Change::Missed(missed.clone())));
        self.push_missed(missed);
    }

    /// Append to the missed-call list; one not yet called back waits for
    /// a callback to its number.
    pub(super) fn push_missed(&mut self, missed: MissedCall) {
        if missed.called_back_at.is_none() {
            self.missed_open
                .entry(missed.caller.clone())
                .or_default()
                .push(self.missed.len());
        }
        self.missed.push(missed);
    }
}
