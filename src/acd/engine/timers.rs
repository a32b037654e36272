//! Timers firing: ring timeouts, longest wait, overflow, priority boosts,
//! the end of after-call work, callback retries and the position
//! announcements to waiting callers.

use super::{set_timer, CallTimer, Engine, Phase, Release, Timer, DEFAULT_HANDLE_TIME};
use crate::acd::durable::Change;
use crate::acd::model::{
    AgentState, CallId, CancelReason, Output, OverflowReason, TimeoutReason, REASON_NO_ANSWER,
};
use crate::time::Time;

impl Engine {
    pub(super) fn fire(&mut self, timer: Timer, now: Time) {
        let (call, kind) = match timer {
            Timer::Acw(ai) => {
                if self.agents[ai].state == AgentState::AfterCallWork {
                    self.leave_acw(ai, now);
                    self.set_agent(ai, AgentState::Idle, None, None, now, true);
                }
                return;
            }
            Timer::Call(call, kind) => (call, kind),
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.timers[kind.slot()] = None;
        let waiting_live = c.phase == Phase::Waiting && c.live();
        let gi = c.group;
        match kind {
            CallTimer::Ring => {
                let agents = match &mut c.phase {
                    Phase::Offered { agents, .. } => std::mem::take(agents),
                    _ => return,
                };
                for ai in agents {
                    self.agents[ai].counters.no_answer += 1;
                    self.release_agent(
                        call,
                        ai,
                        Release::NotReady(REASON_NO_ANSWER, Some(CancelReason::NoAnswer)),
                        now,
                    );
                }
                self.arm_waiting(call, now);
            }
            CallTimer::Overflow if waiting_live => {
                if let Some((_, to)) = self.groups[gi].overflow {
                    self.disarm_waiting(call);
                    self.overflow(call, gi, to, OverflowReason::Timer, now, &mut vec![gi]);
                }
            }
            CallTimer::MaxWait if waiting_live => {
                self.disarm_waiting(call);
                self.next_step(call, TimeoutReason::MaxWait, now, &mut vec![gi]);
            }
            CallTimer::Boost if c.phase == Phase::Waiting => {
                self.disarm_waiting(call);
                self.arm_waiting(call, now);
            }
            CallTimer::Retry if c.phase == Phase::RetryWait => {
                self.arm_waiting(call, now);
                self.record(|e| e.callback_record(call).map(Change::Callback));
            }
            _ => {}
        }
    }

    /// Tell a waiting caller their place and estimated wait.
    pub(super) fn announce(&mut self, call: CallId, now: Time) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.phase != Phase::Waiting || !c.live() {
            return;
        }
        let g = &self.groups[c.group];
        let Some(every) = g.cfg.announce_every else {
            return;
        };
        let Some(position) = g.queue.position(&c.key()) else {
            return;
        };
        let staffed = g
            .members
            .len()
            .saturating_sub(g.by_state[AgentState::LoggedOut.index()]);
        let aht = g.counters.aht().unwrap_or(DEFAULT_HANDLE_TIME);
        let estimated_wait = u32::try_from(staffed)
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| u32::try_from(position).ok().map(|p| aht * p / n));
        set_timer(&mut self.timers, c, CallTimer::Announce, now + every);
        self.out.push_back(Output::Announce {
            call,
            position,
            estimated_wait,
        });
    }
}
