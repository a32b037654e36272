//! Driving a run: virtual time, inputs, and one random operation per
//! step (arrivals, hang-ups, answers, rejects, agent state changes,
//! callbacks).

use super::*;

impl Sim {
    /// Drop finished calls from the shadow once the engine is seen to have
    /// dropped them too.
    pub(super) fn prune(&mut self) {
        let done: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.st == St::Done)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            assert!(
                self.e.call_view(id).is_none(),
                "{id} finished but still held"
            );
            self.calls.remove(&id);
            self.finished.push(id);
        }
        for id in self.finished.drain(..) {
            assert!(self.e.call_view(id).is_none(), "{id} came back");
        }
    }

    // ----- driving ------------------------------------------------------------

    /// Fire every deadline up to `target`, one instant at a time.
    pub(super) fn advance(&mut self, target: Time) {
        while let Some(t) = self.e.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            let now = self.now;
            for c in self.calls.values_mut() {
                if matches!(c.st, St::Retry(at) if at <= now) {
                    c.st = St::Waiting;
                }
            }
            self.e.handle_timeout(now);
            self.process(true);
            self.check_all();
            self.prune();
        }
        self.now = self.now.max(target);
    }

    pub(super) fn apply(&mut self, input: Input) {
        let dbg = format!("{input:?}");
        let extend = match &input {
            Input::ExtendAcw { agent, by } => Some((agent.clone(), *by)),
            _ => None,
        };
        match self.e.handle(self.now, input) {
            Ok(()) => {
                if let Some((agent, by)) = extend {
                    let a = self.agents.get_mut(&agent).expect("agent");
                    a.acw_until = a.acw_until.map(|u| u + by);
                }
                self.process(false);
            }
            Err(err) => {
                self.errors += 1;
                assert!(!err.to_string().is_empty());
                assert!(self.e.poll_output().is_none(), "{dbg} failed with output");
            }
        }
    }

    pub(super) fn pick<F: Fn(&SCall) -> bool>(&self, n: u16, f: F) -> Option<CallId> {
        let v: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| f(c))
            .map(|(id, _)| *id)
            .collect();
        (!v.is_empty()).then(|| v[n as usize % v.len()])
    }

    /// Mostly an agent in one of `states` (so the run keeps moving),
    /// sometimes anyone.
    pub(super) fn agent_in(&self, a: u16, b: u16, states: &[AgentState]) -> Option<String> {
        if b.is_multiple_of(7) {
            return None;
        }
        let v: Vec<&String> = self
            .agent_names
            .iter()
            .filter(|n| states.contains(&self.agents[*n].state))
            .collect();
        (!v.is_empty()).then(|| v[a as usize % v.len()].clone())
    }

    pub(super) fn step(&mut self, (kind, a, b, d): (u8, u16, u16, u8)) {
        let dt = match d % 8 {
            0 | 1 => Duration::ZERO,
            2..=4 => Duration::from_millis(u64::from(a % 1000)),
            5 | 6 => s(u64::from(a % 5)),
            _ => Duration::from_millis(u64::from(a % 20_000)),
        };
        self.advance(self.now + dt);
        let now = self.now;
        let agent = self.agent_names[a as usize % self.agent_names.len()].clone();
        let groups = self.group_names.clone();
        let gname = groups[b as usize % groups.len()].to_string();
        let stray = CallId(u64::from(a) % (self.next_id + 2));
        let input = match kind % 27 {
            0..=3 => {
                self.next_id += 1;
                let prio = [0, 0, 0, 1, 2, 5, EMERGENCY_PRIORITY][b as usize % 7];
                Input::Enqueue {
                    call: CallId(self.next_id),
                    group: groups[a as usize % groups.len()].clone(),
                    priority: prio,
                    caller: format!("c{}", b % 12),
                    arrived: now - s(u64::from(b % 3)),
                    max_wait: None,
                    on_timeout: None,
                }
            }
            4 => Input::CallerHungUp {
                call: self
                    .pick(a, |c| c.st != St::Done && !c.callback)
                    .unwrap_or(stray),
            },
            5..=12 => match self.pick(a, |c| matches!(c.st, St::Offered { .. })) {
                Some(call) => {
                    let St::Offered { agents, .. } = &self.calls[&call].st else {
                        unreachable!()
                    };
                    let who = if b % 11 == 0 {
                        agent
                    } else {
                        agents[b as usize % agents.len()].clone()
                    };
                    match d % 9 {
                        0 => Input::OfferRejected { call, agent: who },
                        1 => Input::OfferFailed { call, agent: who },
                        _ => Input::OfferAnswered { call, agent: who },
                    }
                }
                None => Input::OfferAnswered { call: stray, agent },
            },
            13 | 14 => Input::CallEnded {
                call: self
                    .pick(a, |c| matches!(c.st, St::Talking(_)))
                    .unwrap_or(stray),
            },
            15 => Input::Login {
                agent: self
                    .agent_in(a, b, &[AgentState::LoggedOut])
                    .unwrap_or(agent),
            },
            16 => Input::Logout { agent },
            17..=19 => Input::Ready {
                agent: self
                    .agent_in(a, b, &[AgentState::NotReady, AgentState::AfterCallWork])
                    .unwrap_or(agent),
            },
            20 => Input::NotReady {
                agent,
                reason: ["break", "training", "ticket", "nap"][b as usize % 4].into(),
            },
            21 => match b % 2 {
                0 => Input::Hold { agent },
                _ => Input::Resume { agent },
            },
            22 => match b % 3 {
                0 => Input::ExtendAcw {
                    agent,
                    by: s(u64::from(b % 10)),
                },
                _ => Input::CompleteAcw { agent },
            },
            23 => Input::RequestCallback {
                call: self
                    .pick(a, |c| {
                        !c.callback && matches!(c.st, St::Waiting | St::Offered { .. })
                    })
                    .unwrap_or(stray),
                number: (b % 2 == 0).then(|| format!("n{b}")),
            },
            24 | 25 => Input::CallbackResult {
                call: self
                    .pick(a, |c| matches!(c.st, St::Dialing(_)))
                    .unwrap_or(stray),
                answered: b % 3 != 0,
            },
            _ => {
                self.next_id += 1;
                let call = CallId(self.next_id);
                match b % 4 {
                    0 => Input::AbandonedInIvr {
                        call,
                        caller: format!("c{}", a % 12),
                        group: gname,
                        asked_at: now - s(u64::from(a % 40)),
                    },
                    1 => Input::ScheduleCallback {
                        call,
                        group: gname,
                        number: format!("c{}", a % 12),
                        priority: (a % 3) as u8,
                        max_attempts: None,
                    },
                    2 => Input::StartOutbound { agent },
                    _ => Input::EndOutbound { agent },
                }
            }
        };
        self.apply(input);
        self.advance(self.now);
        self.check_all();
        self.prune();
    }
}
