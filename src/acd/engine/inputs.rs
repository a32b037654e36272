//! Applying one [`Input`] (REQUIREMENTS §3 "Queues and agents"): agents
//! signing in and out, ready/not ready, calls arriving, offers answered or
//! refused, hang-ups, callbacks, transfers and consultations, the new day.
//! Each input is checked against the state first: one in the wrong state is
//! an [`AcdError`] and changes nothing.

use std::time::Duration;

use super::{Call, Engine, Phase, Release, Timer};
use crate::acd::durable::Change;
use crate::acd::error::AcdError;
use crate::acd::model::{
    AgentState, CallId, CancelReason, Input, MissedCall, MissedWhere, NextStep, OfferKind, Output,
    QueueEvent, QueueEventKind, REASON_BUSY, REASON_UNREACHABLE,
};
use crate::acd::stats::{AgentCounters, Disposition, GroupCounters};
use crate::time::Time;

impl Engine {
    pub(super) fn apply(&mut self, now: Time, input: Input) -> Result<(), AcdError> {
        use AgentState as S;
        match input {
            Input::Login { agent } => {
                let ai = self.expect_agent(&agent, &[S::LoggedOut], "log in")?;
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::Logout { agent } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::NotReady, S::AfterCallWork, S::Ringing],
                    "log out",
                )?;
                self.leave_current(ai, Release::LoggedOut, now);
                if self.agents[ai].state != S::LoggedOut {
                    self.set_agent(ai, S::LoggedOut, None, None, now, false);
                }
            }
            Input::Ready { agent } => {
                let ai = self.expect_agent(&agent, &[S::NotReady, S::AfterCallWork], "go idle")?;
                if self.agents[ai].state == S::AfterCallWork {
                    self.leave_acw(ai, now);
                }
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::NotReady { agent, reason } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::NotReady, S::AfterCallWork, S::Ringing],
                    "go not ready",
                )?;
                if !self.reasons.contains(&reason) {
                    return Err(AcdError::UnknownReason { agent, reason });
                }
                self.leave_current(
                    ai,
                    Release::NotReady(&reason, Some(CancelReason::AgentWithdrew)),
                    now,
                );
                if self.agents[ai].state != S::NotReady
                    || self.agents[ai].reason.as_deref() != Some(&reason)
                {
                    self.set_agent(ai, S::NotReady, Some(reason), None, now, false);
                }
            }
            Input::Enqueue {
                call,
                group,
                priority,
                caller,
                arrived,
                max_wait,
                on_timeout,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        max_wait,
                        on_timeout,
                        ..Call::waiting(call, caller, gi, priority, arrived.min(now), now, seq)
                    },
                );
                match self.previous_agent(call, gi, now) {
                    Some((ai, ring)) => {
                        self.groups[gi].counters.entered += 1;
                        self.note_group(gi);
                        self.emit_entered(call, gi, None, now);
                        self.offer(call, vec![ai], OfferKind::PreviousService, ring, now);
                    }
                    None => self.enter_group(call, gi, None, now, &mut Vec::new()),
                }
            }
            Input::Consult {
                call,
                group,
                priority,
                caller,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let g = &self.groups[gi];
                if g.queue.live_len() >= g.cfg.max_queue {
                    return Err(AcdError::QueueFull(group));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        on_timeout: Some(NextStep::Hangup),
                        consultation: true,
                        ..Call::waiting(call, caller, gi, priority, now, now, seq)
                    },
                );
                self.arm_waiting(call, now);
            }
            Input::DirectAnswered {
                call,
                agent,
                caller,
            } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::AfterCallWork],
                    "take a call put through to them",
                )?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let Some(&gi) = self.agents[ai].skills.first() else {
                    return Err(AcdError::Config(format!(
                        "agent {agent:?} has no skill group to take after-call work from"
                    )));
                };
                // A caller put back through to the agent in after-call work
                // (a transfer that failed): the work ends here.
                if self.agents[ai].state == S::AfterCallWork {
                    self.leave_acw(ai, now);
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        consultation: true,
                        ..Call::waiting(call, caller, gi, 0, now, now, seq)
                    },
                );
                self.answer(call, ai, now);
            }
            Input::CallerHungUp { call } => {
                let c = self.call_ref(call)?;
                match (&c.phase, c.live()) {
                    (Phase::Talking { .. }, _) => self.end_conversation(call, now),
                    // A consultation given up: the citizen is still served.
                    (Phase::Waiting, _) if c.consultation => {
                        self.disarm_waiting(call);
                        self.calls.remove(&call);
                    }
                    (Phase::Offered { .. }, _) if c.consultation => {
                        self.release_all(call, Release::Restore(CancelReason::CallerHungUp), now);
                        self.calls.remove(&call);
                    }
                    (Phase::Waiting, true) => {
                        self.disarm_waiting(call);
                        self.abandon(call, false, now);
                    }
                    (Phase::Offered { .. }, true) => {
                        self.release_all(call, Release::Restore(CancelReason::CallerHungUp), now);
                        self.abandon(call, true, now);
                    }
                    _ => {
                        return Err(AcdError::WrongCallState {
                            call,
                            state: c.state_name(),
                            action: "hang up the caller",
                        })
                    }
                }
            }
            Input::OfferAnswered { call, agent } => {
                let ai = self.offered_agent(call, &agent, "answer")?;
                self.answer(call, ai, now);
            }
            Input::OfferRejected { call, agent } => {
                let ai = self.offered_agent(call, &agent, "reject")?;
                self.agents[ai].counters.rejected += 1;
                self.release_one(call, ai, Release::NotReady(REASON_BUSY, None), now);
            }
            Input::OfferFailed { call, agent } => {
                let ai = self.offered_agent(call, &agent, "fail the offer")?;
                self.release_one(call, ai, Release::NotReady(REASON_UNREACHABLE, None), now);
            }
            Input::CallEnded { call } => {
                let c = self.call_ref(call)?;
                if !matches!(c.phase, Phase::Talking { .. }) {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "end the conversation",
                    });
                }
                self.end_conversation(call, now);
            }
            Input::Hold { agent } => {
                let ai = self.expect_agent(&agent, &[S::Talking], "hold")?;
                let call = self.agents[ai].call;
                self.set_agent(ai, S::OnHold, None, call, now, false);
            }
            Input::Resume { agent } => {
                let ai = self.expect_agent(&agent, &[S::OnHold], "resume")?;
                let call = self.agents[ai].call;
                self.set_agent(ai, S::Talking, None, call, now, false);
            }
            Input::ExtendAcw { agent, by } => {
                let ai =
                    self.expect_agent(&agent, &[S::AfterCallWork], "extend after-call work")?;
                if let Some(until) = self.agents[ai].acw_until {
                    self.timers.remove(&(until, Timer::Acw(ai)));
                    let until = until + by;
                    self.agents[ai].acw_until = Some(until);
                    self.timers.insert((until, Timer::Acw(ai)));
                    self.note_agent(ai);
                }
            }
            Input::CompleteAcw { agent } => {
                let ai =
                    self.expect_agent(&agent, &[S::AfterCallWork], "complete after-call work")?;
                self.leave_acw(ai, now);
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::RequestCallback { call, number } => {
                let c = self.call_ref(call)?;
                let ok = c.live() && matches!(c.phase, Phase::Waiting | Phase::Offered { .. });
                if !ok {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "request a callback",
                    });
                }
                let number = number.unwrap_or_else(|| c.caller.clone());
                let (gi, wait) = (c.group, now.saturating_duration_since(c.arrived));
                if matches!(c.phase, Phase::Waiting) {
                    self.disarm_waiting(call);
                } else {
                    self.release_all(call, Release::Restore(CancelReason::CallbackRequested), now);
                }
                self.groups[gi].counters.callback_requested += 1;
                self.groups[gi]
                    .counters
                    .finish(wait, Disposition::CallerLeft);
                self.note_group(gi);
                self.emit_queue(call, QueueEventKind::CallbackRequested, now);
                self.make_callback(call, number);
                self.arm_waiting(call, now);
            }
            Input::ScheduleCallback {
                call,
                group,
                number,
                priority,
                max_attempts,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        max_attempts: max_attempts.map(|n| n.max(1)),
                        ..Call::waiting(call, number.clone(), gi, priority, now, now, seq)
                    },
                );
                self.make_callback(call, number);
                self.groups[gi].counters.callbacks_scheduled += 1;
                self.note_group(gi);
                self.emit_entered(call, gi, None, now);
                self.arm_waiting(call, now);
            }
            Input::CallbackResult { call, answered } => {
                let c = self.call_ref(call)?;
                let Phase::Dialing { agent: ai } = c.phase else {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "report a callback result",
                    });
                };
                self.callback_result(call, ai, answered, now);
            }
            Input::AbandonedInIvr {
                call,
                caller,
                group,
                asked_at,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let asked_at = asked_at.min(now);
                let wait = now.saturating_duration_since(asked_at);
                let g = &mut self.groups[gi];
                g.counters.abandoned_in_ivr += 1;
                g.counters.finish(wait, Disposition::CallerLeft);
                self.note_group(gi);
                self.out.push_back(Output::Queue(QueueEvent {
                    call,
                    group,
                    kind: QueueEventKind::AbandonedInIvr,
                    arrived: asked_at,
                    at: now,
                }));
                self.add_missed(call, caller, gi, asked_at, MissedWhere::Ivr, now);
            }
            Input::StartOutbound { agent } => {
                let ai =
                    self.expect_agent(&agent, &[S::Idle, S::NotReady], "start an outbound call")?;
                self.set_agent(ai, S::Outbound, None, None, now, false);
            }
            Input::EndOutbound { agent } => {
                let ai = self.agent_index(&agent)?;
                let a = &self.agents[ai];
                if a.state != S::Outbound || a.call.is_some() {
                    return Err(self.wrong_agent(ai, "end an outbound call"));
                }
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::NewDay => self.new_day(now),
        }
        Ok(())
    }

    /// The agent index if `call` is ringing `agent`.
    pub(super) fn offered_agent(
        &self,
        call: CallId,
        agent: &str,
        action: &'static str,
    ) -> Result<usize, AcdError> {
        let ai = self.agent_index(agent)?;
        let c = self.call_ref(call)?;
        match &c.phase {
            Phase::Offered { agents, .. } if agents.contains(&ai) => Ok(ai),
            Phase::Offered { .. } => Err(AcdError::NotOfferedTo {
                call,
                agent: agent.to_owned(),
            }),
            _ => Err(AcdError::WrongCallState {
                call,
                state: c.state_name(),
                action,
            }),
        }
    }

    /// A new day begins at `now`: every counter and time in state starts
    /// from zero; missed calls already called back leave the list (those
    /// still waiting for a callback stay); services older than the
    /// previous-service window are forgotten.
    pub(super) fn new_day(&mut self, now: Time) {
        for (gi, g) in self
            .groups
            .iter_mut()
            .enumerate()
            .filter(|(_, g)| !g.retired)
        {
            g.counters = GroupCounters::default();
            if self.tracking {
                self.changed_groups.insert(gi);
            }
        }
        for (ai, a) in self
            .agents
            .iter_mut()
            .enumerate()
            .filter(|(_, a)| !a.retired)
        {
            a.counters = AgentCounters::default();
            a.time_in_state = [Duration::ZERO; 8];
            if self.tracking {
                self.changed_agents.insert(ai);
            }
        }
        self.day_start = now;
        self.record(|_| Some(Change::Day(now)));
        let (done, open): (Vec<MissedCall>, Vec<MissedCall>) = std::mem::take(&mut self.missed)
            .into_iter()
            .partition(|m| m.called_back_at.is_some());
        for m in done {
            self.record(|_| Some(Change::MissedGone(m.call)));
        }
        self.missed_open.clear();
        for m in open {
            self.push_missed(m);
        }
        if let Some(ps) = self.previous_service {
            self.last_served
                .retain(|_, (_, at)| now.saturating_duration_since(*at) <= ps.within);
        }
    }
}
