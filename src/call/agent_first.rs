//! Agent-first calls as a pure machine (issue 13 §1; CTI issue §3 outbound
//! calls, ACD issue §7 callbacks, REQUIREMENTS §1 "instant switch-over" to
//! the backup trunk): ring the agent's phone (every registration at once),
//! and once the agent answers dial the citizen through the tenant's trunk
//! and its backups in order, each trunk given up early when it sends no
//! provisional response in time and passed over on 408 or 5xx (the
//! trunk's fault), never on the citizen's own answer (486, 603 …). Both
//! attempts are [`Forks`]; this machine sequences them and says how the
//! call got on. Time is an input; the shell (`call::callback::reach`) keeps
//! the legs, reads the answers' SDP and sends what this machine decides.

use std::collections::VecDeque;
use std::time::Duration;

use super::forks::{Forks, Outcome as ForkOutcome, Output as ForkOutput, Response};
use super::fsm::Now;

/// One trunk to try for the citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTry {
    /// Its name.
    pub name: String,
    /// How long it has to send a provisional response.
    pub provisional_within: Duration,
}

/// What the shell does for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<K> {
    /// Stop this fork (CANCEL; BYE when its 200 crossed the CANCEL).
    Cancel(K),
    /// The agent answered on this fork: read its answer, then call
    /// [`AgentFirst::agent_ready`] (or hang it up and call
    /// [`AgentFirst::agent_unusable`]).
    AgentAnswered(K),
    /// Send the citizen's INVITE through this trunk, then call
    /// [`AgentFirst::citizen_sent`] (or [`AgentFirst::citizen_not_sent`]).
    DialTrunk(String),
    /// The citizen answered on this fork: read its answer, bridge (or hang
    /// it up and call [`AgentFirst::citizen_unusable`]).
    CitizenAnswered(K),
    /// Hang up the agent's answered leg (the citizen was not reached).
    ByeAgent,
}

/// How the attempt ended, when it did not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReached {
    /// The agent's phone did not take the call: the last SIP status (486,
    /// 600, 603: the agent refused it).
    Agent(u16),
    /// Given up before the agent answered (the ACD withdrew the
    /// reservation, shutdown).
    Withdrawn,
    /// No trunk to dial the citizen through.
    NoTrunk,
    /// The citizen was not reached (or the agent hung up meanwhile): the
    /// last SIP status.
    Citizen(u16),
}

#[derive(Debug)]
enum Phase<K> {
    /// Ringing the agent's phone.
    Agent(Forks<K>),
    /// The agent answered; its answer is being read.
    AgentAnswered,
    /// Dialling the citizen through `trunks[0]`.
    Citizen(Forks<K>),
    /// The citizen answered: the call is the session's now.
    Connected,
    Over(NotReached),
}

/// One agent-first call's ringing. See the module docs.
#[derive(Debug)]
pub struct AgentFirst<K> {
    phase: Phase<K>,
    trunks: VecDeque<TrunkTry>,
    ring_timeout: Duration,
    /// The last status the citizen's trunks gave.
    last: u16,
    /// The agent hung up (nothing left to hang up).
    agent_gone: bool,
    outputs: VecDeque<Output<K>>,
}

impl<K: Clone + PartialEq> AgentFirst<K> {
    /// Start at `now`: the agent's phone is rung for `ring_timeout` (the
    /// shell sends its INVITEs and reports them with [`Self::agent_sent`],
    /// then [`Self::agent_started`]); the citizen is dialled through
    /// `trunks` in order.
    pub fn new(now: Now, ring_timeout: Duration, trunks: Vec<TrunkTry>) -> Self {
        AgentFirst {
            phase: Phase::Agent(Forks::new(now, ring_timeout, None)),
            trunks: trunks.into(),
            ring_timeout,
            last: 480,
            agent_gone: false,
            outputs: VecDeque::new(),
        }
    }

    /// An INVITE to one of the agent's registrations went out.
    pub fn agent_sent(&mut self, key: K) {
        if let Phase::Agent(f) = &mut self.phase {
            f.sent(key, None);
        }
    }

    /// Every INVITE to the agent was sent: ring (or give up at once when
    /// none could be).
    pub fn agent_started(&mut self, now: Now) {
        if let Phase::Agent(f) = &mut self.phase {
            f.started();
        }
        self.settle(now);
    }

    /// A fork (of whichever attempt runs) answered at `now`.
    pub fn handle_response(&mut self, now: Now, key: &K, response: Response) {
        match &mut self.phase {
            Phase::Agent(f) | Phase::Citizen(f) => f.handle_response(key, response),
            _ => return,
        }
        self.settle(now);
    }

    /// The agent's answer is usable: dial the citizen through the first
    /// trunk (from `now`).
    pub fn agent_ready(&mut self, now: Now) {
        if matches!(self.phase, Phase::AgentAnswered) {
            self.next_trunk(now);
        }
    }

    /// The agent's answer was unusable (no common codec; the shell hung
    /// that leg up): the agent did not take the call.
    pub fn agent_unusable(&mut self) {
        if matches!(self.phase, Phase::AgentAnswered) {
            self.phase = Phase::Over(NotReached::Agent(488));
        }
    }

    /// The citizen's INVITE through the current trunk went out.
    pub fn citizen_sent(&mut self, key: K) {
        if let Phase::Citizen(f) = &mut self.phase {
            f.sent(key, None);
            f.started();
        }
    }

    /// The citizen's INVITE could not be sent through the current trunk:
    /// the next one is tried (from `now`).
    pub fn citizen_not_sent(&mut self, now: Now) {
        if let Phase::Citizen(f) = &mut self.phase {
            f.not_sent();
            f.started();
        }
        self.settle(now);
    }

    /// The citizen's answer was unusable (the shell hung that leg up): the
    /// agent's leg is hung up too.
    pub fn citizen_unusable(&mut self) {
        if matches!(self.phase, Phase::Connected) {
            self.end_citizen(488);
        }
    }

    /// The ACD withdrew the reservation, or the switch shuts down: given
    /// up (before the citizen answered).
    pub fn withdraw(&mut self, now: Now) {
        match &mut self.phase {
            Phase::Agent(f) | Phase::Citizen(f) => f.caller_gone(),
            Phase::AgentAnswered => {
                self.end_citizen(self.last);
                return;
            }
            _ => return,
        }
        self.settle(now);
    }

    /// The agent hung up while the citizen was being dialled.
    pub fn agent_left(&mut self, now: Now) {
        self.agent_gone = true;
        match &mut self.phase {
            Phase::Citizen(f) => f.caller_gone(),
            Phase::AgentAnswered => {
                self.phase = Phase::Over(NotReached::Citizen(self.last));
                return;
            }
            _ => return,
        }
        self.settle(now);
    }

    /// When the machine next needs [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Now> {
        match &self.phase {
            Phase::Agent(f) | Phase::Citizen(f) => f.poll_timeout(),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Now) {
        match &mut self.phase {
            Phase::Agent(f) | Phase::Citizen(f) => f.handle_timeout(now),
            _ => return,
        }
        self.settle(now);
    }

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output<K>> {
        self.outputs.pop_front()
    }

    /// How it ended when it did not connect (`None` while it runs or once
    /// connected).
    pub fn not_reached(&self) -> Option<&NotReached> {
        match &self.phase {
            Phase::Over(n) => Some(n),
            _ => None,
        }
    }

    /// The citizen answered: the call is connected.
    pub fn connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    /// The agent's attempt is still ringing (a 2xx on `key` is its answer).
    pub fn is_ringing(&self, key: &K) -> bool {
        match &self.phase {
            Phase::Agent(f) | Phase::Citizen(f) => f.is_ringing(key),
            _ => false,
        }
    }

    /// Pass the running attempt's outputs on and move on when it ended
    /// (the next trunk's attempt starts at `now`).
    fn settle(&mut self, now: Now) {
        let (Phase::Agent(f) | Phase::Citizen(f)) = &mut self.phase else {
            return;
        };
        while let Some(out) = f.poll_output() {
            if let ForkOutput::Cancel(k) = out {
                self.outputs.push_back(Output::Cancel(k));
            }
        }
        let Some(outcome) = f.outcome().cloned() else {
            return;
        };
        let last_code = f.codes().last().copied();
        let heard = f.heard();
        let code = match &outcome {
            ForkOutcome::NoProvisional => 408,
            ForkOutcome::NoAnswer if heard => 480,
            _ => last_code.unwrap_or(480),
        };
        if matches!(self.phase, Phase::Agent(_)) {
            self.phase = match outcome {
                ForkOutcome::Answered(k) => {
                    self.outputs.push_back(Output::AgentAnswered(k));
                    Phase::AgentAnswered
                }
                ForkOutcome::CallerGone => Phase::Over(NotReached::Withdrawn),
                _ => Phase::Over(NotReached::Agent(code)),
            };
            return;
        }
        match outcome {
            ForkOutcome::Answered(k) => {
                self.outputs.push_back(Output::CitizenAnswered(k));
                self.phase = Phase::Connected;
            }
            ForkOutcome::CallerGone => self.end_citizen(self.last),
            outcome => {
                // Nothing went out through this trunk: as much its fault
                // as a 5xx.
                let not_sent = last_code.is_none() && matches!(outcome, ForkOutcome::Failed(_));
                if !not_sent {
                    self.last = code;
                }
                self.trunks.pop_front();
                if not_sent || crate::sip::trunk::fails_over(code) {
                    self.next_trunk(now);
                } else {
                    self.end_citizen(code);
                }
            }
        }
    }

    /// Dial through the next trunk from `now`, or end.
    fn next_trunk(&mut self, now: Now) {
        match self.trunks.front() {
            Some(t) => {
                let forks = Forks::new(now, self.ring_timeout, Some(t.provisional_within));
                self.outputs.push_back(Output::DialTrunk(t.name.clone()));
                self.phase = Phase::Citizen(forks);
            }
            None if matches!(self.phase, Phase::AgentAnswered) => {
                self.end_citizen(self.last);
                self.phase = Phase::Over(NotReached::NoTrunk);
            }
            None => self.end_citizen(self.last),
        }
    }

    /// The citizen was not reached (`code`): the agent's leg, if still up,
    /// is hung up.
    fn end_citizen(&mut self, code: u16) {
        if !self.agent_gone {
            self.outputs.push_back(Output::ByeAgent);
        }
        self.phase = Phase::Over(NotReached::Citizen(code));
    }
}

#[cfg(test)]
#[path = "agent_first_tests.rs"]
mod tests;
