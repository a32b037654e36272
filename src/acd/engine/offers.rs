//! Offers: handing idle agents the best waiting calls, ringing, taking
//! agents off a ringing call, the answer, a callback's result and the end
//! of a conversation (after-call work).

use std::time::Duration;

use super::{clear_timer, set_timer, CallTimer, Engine, Info, Phase, Release, Timer};
use crate::acd::durable::Change;
use crate::acd::model::{
    AgentState, CallId, CancelReason, OfferKind, Output, QueueEventKind, Strategy,
};
use crate::acd::queue::QueueKey;
use crate::acd::stats::Disposition;
use crate::acd::strategy;
use crate::time::Time;

impl Engine {
    /// Hand idle agents the best waiting calls until no group has both.
    pub(super) fn dispatch(&mut self, now: Time) {
        loop {
            let mut best: Option<(QueueKey, usize)> = None;
            for (gi, g) in self.groups.iter().enumerate() {
                if g.retired || g.idle.is_empty() {
                    continue;
                }
                if let Some(head) = g.queue.head() {
                    if best.as_ref().is_none_or(|(b, _)| head < b) {
                        best = Some((*head, gi));
                    }
                }
            }
            let Some((key, gi)) = best else {
                return;
            };
            let g = &mut self.groups[gi];
            let info = Info {
                agents: &self.agents,
                levels: &g.levels,
            };
            let chosen =
                strategy::select(g.cfg.strategy, &g.idle, &g.members, &mut g.rr_next, &info);
            if chosen.is_empty() {
                return; // unreachable: the idle set was not empty
            }
            let kind = if g.cfg.strategy == Strategy::RingAll {
                OfferKind::RingAll
            } else {
                OfferKind::Queue
            };
            let ring = g.cfg.ring_timeout;
            self.disarm_waiting(key.call);
            self.offer(key.call, chosen, kind, ring, now);
        }
    }

    /// Ring `agents` (all idle) with `call` (out of the queue).
    pub(super) fn offer(
        &mut self,
        call: CallId,
        agents: Vec<usize>,
        kind: OfferKind,
        ring: Duration,
        now: Time,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let gi = c.group;
        let number = c.callback_number.clone();
        let attempt = c.attempts + 1;
        c.phase = Phase::Offered {
            agents: agents.clone(),
            kind,
        };
        set_timer(&mut self.timers, c, CallTimer::Ring, now + ring);
        for ai in agents {
            self.groups[gi].counters.offers += 1;
            self.note_group(gi);
            let a = &mut self.agents[ai];
            a.counters.offered += 1;
            let (agent, device) = (a.cfg.id.clone(), a.cfg.device.clone());
            self.out.push_back(match &number {
                None => Output::Offer {
                    call,
                    agent,
                    device,
                    kind,
                },
                Some(number) => Output::OfferCallback {
                    call,
                    agent,
                    device,
                    number: number.clone(),
                    attempt,
                },
            });
            self.set_agent(ai, AgentState::Ringing, None, Some(call), now, false);
        }
    }

    /// Take one agent off a ringing call; requeue the call when nobody is
    /// left ringing.
    pub(super) fn release_one(&mut self, call: CallId, ai: usize, how: Release<'_>, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Offered { agents, .. } = &mut c.phase else {
            return;
        };
        agents.retain(|a| *a != ai);
        let empty = agents.is_empty();
        if empty {
            clear_timer(&mut self.timers, c, CallTimer::Ring);
        }
        self.release_agent(call, ai, how, now);
        if empty {
            self.arm_waiting(call, now);
        }
    }

    /// Take every agent off a ringing call (the call itself is dealt with by
    /// the caller of this function).
    pub(super) fn release_all(&mut self, call: CallId, how: Release<'_>, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        clear_timer(&mut self.timers, c, CallTimer::Ring);
        let agents = match &mut c.phase {
            Phase::Offered { agents, .. } => std::mem::take(agents),
            _ => Vec::new(),
        };
        for ai in agents {
            self.release_agent(call, ai, how, now);
        }
    }

    pub(super) fn release_agent(&mut self, call: CallId, ai: usize, how: Release<'_>, now: Time) {
        let cancel = match how {
            Release::Restore(r) => Some(r),
            Release::NotReady(_, r) => r,
            Release::LoggedOut => Some(CancelReason::AgentWithdrew),
        };
        if let Some(reason) = cancel {
            self.out.push_back(Output::CancelOffer {
                call,
                agent: self.agents[ai].cfg.id.clone(),
                reason,
            });
        }
        match how {
            Release::Restore(_) => self.set_agent(ai, AgentState::Idle, None, None, now, false),
            Release::NotReady(reason, _) => self.set_agent(
                ai,
                AgentState::NotReady,
                Some(reason.to_owned()),
                None,
                now,
                false,
            ),
            Release::LoggedOut => self.set_agent(ai, AgentState::LoggedOut, None, None, now, false),
        }
    }

    pub(super) fn answer(&mut self, call: CallId, ai: usize, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        clear_timer(&mut self.timers, c, CallTimer::Ring);
        let others: Vec<usize> = match &mut c.phase {
            Phase::Offered { agents, .. } => std::mem::take(agents),
            _ => Vec::new(),
        };
        let (gi, live, wait) = (c.group, c.live(), now.saturating_duration_since(c.arrived));
        let consultation = c.consultation;
        if live {
            c.phase = Phase::Talking {
                agent: ai,
                answered_at: now,
            };
        } else {
            c.phase = Phase::Dialing { agent: ai };
        }
        for other in others.into_iter().filter(|a| *a != ai) {
            self.release_agent(
                call,
                other,
                Release::Restore(CancelReason::AnsweredElsewhere),
                now,
            );
        }
        if live {
            if !consultation {
                let g = &mut self.groups[gi].counters;
                g.answered += 1;
                g.answer_wait_total += wait;
                g.finish(wait, Disposition::Answered);
                self.note_group(gi);
                let agent = self.agents[ai].cfg.id.clone();
                self.emit_queue(call, QueueEventKind::Answered { agent }, now);
            }
            self.agents[ai].counters.answered += 1;
            self.set_agent(ai, AgentState::Talking, None, Some(call), now, false);
        } else {
            self.set_agent(ai, AgentState::Outbound, None, Some(call), now, false);
        }
    }

    pub(super) fn callback_result(&mut self, call: CallId, ai: usize, answered: bool, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let gi = c.group;
        if answered {
            c.phase = Phase::Talking {
                agent: ai,
                answered_at: now,
            };
            let number = c.callback_number.clone().unwrap_or_default();
            let g = &mut self.groups[gi];
            g.counters.callbacks_answered += 1;
            g.callbacks_pending = g.callbacks_pending.saturating_sub(1);
            self.note_group(gi);
            self.agents[ai].counters.callbacks_answered += 1;
            self.record(|_| Some(Change::CallbackGone(call)));
            if let Some(open) = self.missed_open.remove(&number) {
                for i in open {
                    if let Some(m) = self.missed.get_mut(i) {
                        m.called_back_at = Some(now);
                        let m = m.clone();
                        self.record(|_| Some(Change::Missed(m)));
                    }
                }
            }
            let agent = self.agents[ai].cfg.id.clone();
            self.emit_queue(call, QueueEventKind::CallbackAnswered { agent }, now);
            self.set_agent(ai, AgentState::Talking, None, Some(call), now, false);
            return;
        }
        c.attempts += 1;
        let attempts = c.attempts;
        if attempts < c.max_attempts.unwrap_or(self.callback.max_attempts) {
            c.phase = Phase::RetryWait;
            let at = now + self.callback.retry_interval;
            set_timer(&mut self.timers, c, CallTimer::Retry, at);
            self.record(|e| e.callback_record(call).map(Change::Callback));
        } else {
            let g = &mut self.groups[gi];
            g.counters.callbacks_failed += 1;
            g.callbacks_pending = g.callbacks_pending.saturating_sub(1);
            self.note_group(gi);
            self.emit_queue(call, QueueEventKind::CallbackFailed { attempts }, now);
            self.calls.remove(&call);
            self.record(|_| Some(Change::CallbackGone(call)));
        }
        self.set_agent(ai, AgentState::Idle, None, None, now, true);
    }

    /// The conversation is over: account it and send the agent to ACW.
    pub(super) fn end_conversation(&mut self, call: CallId, now: Time) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        let Phase::Talking {
            agent: ai,
            answered_at,
        } = c.phase
        else {
            self.calls.insert(call, c);
            return;
        };
        let talk = now.saturating_duration_since(answered_at);
        let gi = c.group;
        if !c.consultation {
            let g = &mut self.groups[gi].counters;
            g.handled += 1;
            g.talk_total += talk;
            self.note_group(gi);
        }
        self.agents[ai].counters.talk_total += talk;
        self.record(|e| {
            Some(Change::Served(crate::acd::durable::ServiceRecord {
                caller: c.caller.clone(),
                agent: e.agents[ai].cfg.id.clone(),
                at: now,
            }))
        });
        self.last_served.insert(c.caller, (ai, now));
        let acw = self.groups[gi].cfg.acw;
        if acw.is_zero() {
            self.set_agent(ai, AgentState::Idle, None, None, now, true);
            return;
        }
        let until = now + acw;
        let a = &mut self.agents[ai];
        a.acw_until = Some(until);
        a.acw_started = now;
        a.acw_group = Some(gi);
        self.timers.insert((until, Timer::Acw(ai)));
        self.set_agent(ai, AgentState::AfterCallWork, None, Some(call), now, false);
    }
}
