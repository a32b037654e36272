//! A call's conversations and blind transfers as a pure machine (issue 13
//! §1; CTI issue §3 "transfer"; issue 12 item 5): the call once someone
//! answered it. The caller talks with whoever answered; when that party
//! blind-transfers the caller, fresh ports are made for the next party and
//! the target is rung; when it is not reached (busy, no answer, not
//! registered, nobody of the group signed in, trunk failure) the caller is
//! not hung up but goes back:
//!
//! 1. to the agent who transferred — their phone rings again — when their
//!    phone is registered and the ACD has them idle or in after-call work
//!    (or does not know them: a phone rung directly);
//! 2. otherwise, or when they do not answer, to the queue of the call's
//!    group at the place the call had: its first queue entry's priority and
//!    arrival time, so callers who came later stay behind it (an IVR
//!    flow's queue keeps the flow's wait: its timeout hands the caller back
//!    to the flow);
//! 3. a call that never queued and whose agent cannot be reached ends with
//!    nobody to talk to (the owner hangs up, or its flow goes on).
//!
//! The caller hears music on hold while the target and the agent ring
//! (a group's queue plays its own media instead). The record tells the
//! story: [`Output::TransferFailed`] (why, the target's SIP status, where
//! the caller went), then whatever the ringing records as usual. A
//! transfer to a skill group that queues is the group's from then on: its
//! own wait, overflow and timeout steps apply, as for any caller.
//!
//! An IVR flow's connection starts here too ([`Conversations::dial`]):
//! its destination (a queue, an agent, a number) is rung first, and a
//! destination not reached hands the caller back to the flow.
//!
//! Sans-IO in the style of [`crate::call::flow::core::FlowCore`]: the
//! shell (`call::converse`) carries out each [`Output`] (answer, talk,
//! ring, music, a question to the ACD) and feeds its result back as an
//! [`Input`]; the machine holds every decision and no IO. Registrations and
//! job numbers are read through [`Roster`], a lookup in memory. Scenario
//! tests drive it with scripted results (`core_tests.rs`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::acd::AgentState;
use crate::call::flow::core::Dest;
use crate::call::Outcome;
use crate::events::model::{TransferFailureReason, TransferKind, TransferReturn};
use crate::ivr::{QueueOutcome, TransferTarget};

/// The registrations and job numbers the decisions read.
pub trait Roster: Send + Sync {
    /// Whether phone `device` is registered.
    fn registered(&self, device: &str) -> bool;
    /// The job number of phone `device` (the device itself if unknown).
    fn agent_id_of(&self, device: &str) -> String;
}

/// Who answered: the party the caller talks with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// The ACD's agent id, or the SIP user of a phone rung directly.
    pub agent: Option<String>,
    /// The SIP user of their phone.
    pub device: Option<String>,
}

/// What the shell rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ring {
    /// The transfer's target agent (their phone's SIP user).
    Agent(String),
    /// A flow's queue: `group` at `priority`, waiting at most `max_wait`
    /// (else the group's longest wait) before the flow goes on.
    Queue {
        /// The group.
        group: String,
        /// 0-255, higher first.
        priority: u8,
        /// The flow's longest wait.
        max_wait: Option<std::time::Duration>,
    },
    /// The transfer's skill group, through its queue (with the flow's
    /// wait when the call came from a flow).
    Group(String),
    /// An outside number through `trunk` (then its backups).
    Number {
        /// The number.
        number: String,
        /// The first trunk.
        trunk: String,
    },
    /// The transferring agent's phone again.
    Back(String),
    /// The queue, at the place the call first had.
    QueueAtPlace,
}

/// What the machine asks the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// Is anyone of group `0` signed in? ([`Answer::Staffed`]; a switch
    /// without an ACD says no one is)
    Staffed(String),
    /// What is agent `0` doing? ([`Answer::AgentState`])
    AgentState(String),
    /// Which group's queue did the call first wait in? ([`Answer::QueuePlace`])
    QueuePlace,
}

/// The shell's answer to a [`Question`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `None`: the ACD does not know (or there is none).
    Staffed(Option<bool>),
    /// `None`: the ACD does not know the agent (or there is none).
    AgentState(Option<AgentState>),
    /// The group of the call's first queue entry, if it queued.
    QueuePlace(Option<String>),
}

/// How a [`Ring`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rang {
    /// Someone answered.
    Answered(Party),
    /// The caller hung up.
    CallerGone,
    /// Nobody answered (`NotAnswered(status)`), or a queue let go of the
    /// caller (`QueueEnded`, …).
    Failed(Outcome),
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// How answering the caller went ([`Output::AnswerCaller`]).
    Answered(bool),
    /// The conversation is over: the party transferred the caller to
    /// `transfer`, and the caller is still on the line when
    /// `caller_continues`.
    Talked {
        /// A blind transfer's target.
        transfer: Option<TransferTarget>,
        /// The caller is still on the line.
        caller_continues: bool,
    },
    /// Whether fresh ports for the next party were had ([`Output::FreshPorts`]).
    Ports(bool),
    /// An answer to [`Output::Ask`].
    Answer(Answer),
    /// A [`Ring`] ended.
    Rang(Rang),
}

/// A failed transfer, for the record (`call.transfer_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTransfer {
    /// The job number of the agent who transferred.
    pub transferor: Option<String>,
    /// The target's kind.
    pub kind: TransferKind,
    /// The target (agents by job number).
    pub name: String,
    /// Why it was not reached.
    pub reason: TransferFailureReason,
    /// The target's final SIP status, if it sent one.
    pub sip_code: Option<u16>,
    /// Where the caller goes.
    pub back_to: TransferReturn,
    /// The agent's job number or the group.
    pub back_to_id: Option<String>,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the caller's leg; say how it went with [`Input::Answered`].
    AnswerCaller,
    /// The caller left as the party answered: hang up the party's leg and
    /// release them (the call is over).
    DropAnswer,
    /// Bridge the caller with the party who answered until the
    /// conversation is over ([`Input::Talked`]).
    Talk,
    /// New ports and an offer for the next party ([`Input::Ports`]).
    FreshPorts,
    /// Music on hold to the caller.
    MusicOn,
    /// The music stops (the caller's media is taken back).
    MusicOff,
    /// Ask the ACD ([`Input::Answer`]).
    Ask(Question),
    /// Ring ([`Input::Rang`]).
    Ring(Ring),
    /// A transfer failed: the record's fact.
    TransferFailed(FailedTransfer),
    /// The caller hung up while ringing: their leg is done with.
    ForgetCaller,
}

/// How the conversations ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The caller hung up (the call is over).
    CallerGone,
    /// The caller, waiting in a flow's queue, chose to be called back
    /// (the call is over).
    CallbackRequested,
    /// Nobody took the caller: their owner (the flow, or the call) goes on.
    Failed(QueueOutcome),
    /// The last conversation is over; the caller is still on the line when
    /// `caller_continues`.
    Talked {
        /// Whom the caller last talked with.
        who: String,
        /// The caller is still on the line.
        caller_continues: bool,
    },
}

/// Where the machine is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for [`Input::Ports`] before ringing a flow's destination.
    Dialing(Dest),
    /// Waiting for [`Answer::Staffed`] of a flow's queue.
    DialStaffing(Dest),
    /// Ringing a flow's destination.
    DialRinging(Dest),
    /// Waiting for [`Input::Answered`].
    Answering,
    /// Waiting for [`Input::Talked`].
    Talking,
    /// Waiting for [`Input::Ports`] before ringing the target.
    Preparing(TransferTarget),
    /// Waiting for [`Answer::Staffed`] of the target group.
    Staffing(TransferTarget),
    /// Ringing the target (agent or number).
    Reaching(TransferTarget),
    /// Ringing the target group's queue.
    Queueing(TransferTarget),
    /// The target was not reached; waiting for [`Answer::AgentState`] of
    /// the transferring agent.
    AskingAgent(Miss),
    /// Waiting for [`Answer::QueuePlace`].
    AskingPlace(Miss),
    /// The transferring agent's phone rings; then the queue at the
    /// call's place, if it has one.
    RingingBack(TransferTarget, Option<String>),
    /// The caller is back in the queue at their place.
    Requeued(TransferTarget),
    /// Over ([`Conversations::end`]).
    Done,
}

/// A target not reached, while the way back is found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Miss {
    target: TransferTarget,
    reason: TransferFailureReason,
    sip_code: Option<u16>,
    /// The transferring agent's (id, phone), when they can take the
    /// caller back.
    back: Option<(String, String)>,
}

/// The conversations of one call after its first answer.
pub struct Conversations {
    roster: Arc<dyn Roster>,
    tenant_trunk: Option<String>,
    state: State,
    answered: bool,
    music: bool,
    /// The party of the conversation in progress (or the last one): who
    /// transfers.
    party: Party,
    /// Whom the caller talks with, as the log names them.
    who: String,
    out: VecDeque<Output>,
    end: Option<End>,
}

/// Why a target that did not answer was not reached, from the final
/// status the caller would have got; the status is kept when the target
/// sent it (not for a ring timeout).
pub fn failure_of(outcome: &Outcome) -> (TransferFailureReason, Option<u16>) {
    match outcome {
        Outcome::NotAnswered(c @ (486 | 600 | 603)) => (TransferFailureReason::Busy, Some(*c)),
        Outcome::NotAnswered(408 | 480) => (TransferFailureReason::NoAnswer, None),
        Outcome::NotAnswered(c) | Outcome::Rejected(c) => (TransferFailureReason::Failed, Some(*c)),
        _ => (TransferFailureReason::Failed, None),
    }
}

/// How the log names a transfer's target.
fn named(target: &TransferTarget) -> String {
    match target {
        TransferTarget::Agent(a) => a.clone(),
        TransferTarget::Group(g) => format!("group {g}"),
        TransferTarget::Number { number, .. } => number.clone(),
    }
}

/// How the log names a flow's destination.
fn dest_named(dest: &Dest) -> String {
    match dest {
        Dest::Queue { group, .. } => format!("group {group}"),
        Dest::Agent(a) => a.clone(),
        Dest::Number { number, .. } => number.clone(),
    }
}

/// What a queue's end means for the owner.
fn queue_end(outcome: &Outcome) -> QueueOutcome {
    match outcome {
        Outcome::QueueEnded { full: true } => QueueOutcome::Overflow,
        _ => QueueOutcome::Timeout,
    }
}

impl Conversations {
    /// The caller is connected with `party` (named `who` in the log unless
    /// the party names an agent); `answered` when the caller's leg is.
    /// Outside numbers are transferred through `tenant_trunk` unless the
    /// target names a trunk.
    pub fn start(
        roster: Arc<dyn Roster>,
        tenant_trunk: Option<String>,
        party: Party,
        who: String,
        answered: bool,
    ) -> Self {
        let mut c = Conversations {
            roster,
            tenant_trunk,
            state: State::Done,
            answered,
            music: false,
            party: Party::default(),
            who,
            out: VecDeque::new(),
            end: None,
        };
        c.connect(party);
        c
    }

    /// An IVR flow connects the caller to `dest`: fresh ports, then
    /// `dest` is rung (a queue only when someone of its group is signed
    /// in; a number through the flow's or the tenant's trunk), and
    /// whoever answers talks with the caller; a destination not reached
    /// hands the caller back to the flow (no way back to an agent: nobody
    /// transferred).
    pub fn dial(
        roster: Arc<dyn Roster>,
        tenant_trunk: Option<String>,
        dest: Dest,
        answered: bool,
    ) -> Self {
        let mut c = Conversations {
            roster,
            tenant_trunk,
            state: State::Dialing(dest.clone()),
            answered,
            music: false,
            party: Party::default(),
            who: dest_named(&dest),
            out: VecDeque::new(),
            end: None,
        };
        c.out.push_back(Output::FreshPorts);
        c
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Feed what happened. An input the machine does not wait for is
    /// ignored (the shell only sends what was asked).
    pub fn handle_input(&mut self, input: Input) {
        let state = std::mem::replace(&mut self.state, State::Done);
        match (state, input) {
            (State::Dialing(_), Input::Ports(false)) => {
                self.finish(End::Failed(QueueOutcome::Overflow));
            }
            (State::Dialing(dest), Input::Ports(true)) => self.dial_ring(dest),
            (State::DialStaffing(dest), Input::Answer(Answer::Staffed(staffed))) => {
                if staffed == Some(false) {
                    self.finish(End::Failed(QueueOutcome::Closed));
                } else if let Dest::Queue {
                    group,
                    priority,
                    max_wait,
                } = &dest
                {
                    self.out.push_back(Output::Ring(Ring::Queue {
                        group: group.clone(),
                        priority: *priority,
                        max_wait: *max_wait,
                    }));
                    self.state = State::DialRinging(dest);
                }
            }
            (State::DialRinging(dest), Input::Rang(rang)) => match rang {
                Rang::Answered(party) => {
                    self.who = dest_named(&dest);
                    self.connect(party);
                }
                Rang::CallerGone => self.finish(End::CallerGone),
                Rang::Failed(Outcome::CallbackRequested) => self.finish(End::CallbackRequested),
                Rang::Failed(outcome) => self.finish(End::Failed(queue_end(&outcome))),
            },
            (State::Answering, Input::Answered(true)) => {
                self.answered = true;
                self.talk();
            }
            (State::Answering, Input::Answered(false)) => {
                self.out.push_back(Output::DropAnswer);
                self.finish(End::CallerGone);
            }
            (
                State::Talking,
                Input::Talked {
                    transfer,
                    caller_continues,
                },
            ) => match (transfer, caller_continues) {
                (None, _) => self.finish(End::Talked {
                    who: self.who.clone(),
                    caller_continues,
                }),
                (Some(_), false) => self.finish(End::CallerGone),
                (Some(target), true) => {
                    self.state = State::Preparing(target);
                    self.out.push_back(Output::FreshPorts);
                }
            },
            (State::Preparing(_), Input::Ports(false)) => {
                self.finish(End::Failed(QueueOutcome::Overflow));
            }
            (State::Preparing(target), Input::Ports(true)) => self.reach(target),
            (State::Staffing(target), Input::Answer(Answer::Staffed(staffed))) => {
                if staffed == Some(false) {
                    self.not_reached(target, TransferFailureReason::Unreachable, None);
                } else if let TransferTarget::Group(group) = &target {
                    // The queue plays its own media.
                    self.music_off();
                    self.out.push_back(Output::Ring(Ring::Group(group.clone())));
                    self.state = State::Queueing(target);
                }
            }
            (State::Reaching(target), Input::Rang(rang)) => match rang {
                Rang::Answered(party) => self.reached(&target, party),
                Rang::CallerGone => self.caller_gone(),
                Rang::Failed(outcome) => {
                    let (reason, code) = failure_of(&outcome);
                    self.not_reached(target, reason, code);
                }
            },
            (State::Queueing(target) | State::Requeued(target), Input::Rang(rang)) => match rang {
                Rang::Answered(party) => self.reached(&target, party),
                Rang::CallerGone => self.caller_gone(),
                Rang::Failed(outcome) => self.finish(End::Failed(queue_end(&outcome))),
            },
            (State::AskingAgent(mut miss), Input::Answer(Answer::AgentState(state))) => {
                if !matches!(
                    state,
                    None | Some(AgentState::Idle | AgentState::AfterCallWork)
                ) {
                    miss.back = None;
                }
                self.state = State::AskingPlace(miss);
                self.out.push_back(Output::Ask(Question::QueuePlace));
            }
            (State::AskingPlace(miss), Input::Answer(Answer::QueuePlace(place))) => {
                self.go_back(miss, place);
            }
            (State::RingingBack(target, place), Input::Rang(rang)) => match rang {
                Rang::Answered(party) => self.reached(&target, party),
                Rang::CallerGone => self.caller_gone(),
                Rang::Failed(_) => {
                    self.music_off();
                    self.requeue_or_end(target, place);
                }
            },
            (state, _) => self.state = state,
        }
    }

    /// Ring a flow's destination (the ports made).
    fn dial_ring(&mut self, dest: Dest) {
        match &dest {
            Dest::Queue { group, .. } => {
                self.out
                    .push_back(Output::Ask(Question::Staffed(group.clone())));
                self.state = State::DialStaffing(dest);
            }
            Dest::Agent(agent) => {
                self.out.push_back(Output::Ring(Ring::Agent(agent.clone())));
                self.state = State::DialRinging(dest);
            }
            Dest::Number { number, trunk } => match self.number_ring(number, trunk) {
                Some(ring) => {
                    self.out.push_back(Output::Ring(ring));
                    self.state = State::DialRinging(dest);
                }
                None => self.finish(End::Failed(QueueOutcome::Closed)),
            },
        }
    }

    /// How an outside number is rung: through the `trunk` named, else the
    /// tenant's; `None` with neither.
    fn number_ring(&self, number: &str, trunk: &Option<String>) -> Option<Ring> {
        let trunk = trunk.clone().or_else(|| self.tenant_trunk.clone())?;
        Some(Ring::Number {
            number: number.to_string(),
            trunk,
        })
    }

    /// The caller is connected with `party`: answered first if need be,
    /// then they talk.
    fn connect(&mut self, party: Party) {
        if let Some(agent) = &party.agent {
            self.who = agent.clone();
        }
        self.party = party;
        if self.answered {
            self.talk();
        } else {
            self.state = State::Answering;
            self.out.push_back(Output::AnswerCaller);
        }
    }

    fn talk(&mut self) {
        self.state = State::Talking;
        self.out.push_back(Output::Talk);
    }

    /// Ring a blind transfer's target, the caller hearing music.
    fn reach(&mut self, target: TransferTarget) {
        self.music_on();
        match &target {
            TransferTarget::Agent(device) => {
                if self.roster.registered(device) {
                    self.out
                        .push_back(Output::Ring(Ring::Agent(device.clone())));
                    self.state = State::Reaching(target);
                } else {
                    self.not_reached(target, TransferFailureReason::Unreachable, None);
                }
            }
            TransferTarget::Group(group) => {
                self.out
                    .push_back(Output::Ask(Question::Staffed(group.clone())));
                self.state = State::Staffing(target);
            }
            TransferTarget::Number { number, trunk } => match self.number_ring(number, trunk) {
                Some(ring) => {
                    self.out.push_back(Output::Ring(ring));
                    self.state = State::Reaching(target);
                }
                None => self.not_reached(target, TransferFailureReason::Unreachable, None),
            },
        }
    }

    /// `party` answered for `target` (the target itself, the agent taking
    /// the caller back, or the queue's agent): they talk.
    fn reached(&mut self, target: &TransferTarget, party: Party) {
        self.music_off();
        self.who = named(target);
        self.connect(party);
    }

    /// The caller hung up while someone rang.
    fn caller_gone(&mut self) {
        self.music_off();
        self.out.push_back(Output::ForgetCaller);
        self.finish(End::CallerGone);
    }

    /// The target was not reached: can the transferring agent take the
    /// caller back? (Their phone registered, then their ACD state.)
    fn not_reached(
        &mut self,
        target: TransferTarget,
        reason: TransferFailureReason,
        sip_code: Option<u16>,
    ) {
        let device = self
            .party
            .device
            .clone()
            .filter(|d| self.roster.registered(d));
        let back = device.map(|device| {
            let agent = self
                .party
                .agent
                .clone()
                .unwrap_or_else(|| self.roster.agent_id_of(&device));
            (agent, device)
        });
        let ask = back.as_ref().map(|(agent, _)| agent.clone());
        let miss = Miss {
            target,
            reason,
            sip_code,
            back,
        };
        match ask {
            Some(agent) => {
                self.out.push_back(Output::Ask(Question::AgentState(agent)));
                self.state = State::AskingAgent(miss);
            }
            None => {
                self.out.push_back(Output::Ask(Question::QueuePlace));
                self.state = State::AskingPlace(miss);
            }
        }
    }

    /// The record learns where the caller goes, and they go: the agent's
    /// phone rings again (the music going on), or the queue.
    fn go_back(&mut self, miss: Miss, place: Option<String>) {
        let (back_to, back_to_id) = match (&miss.back, &place) {
            (Some((agent, _)), _) => (TransferReturn::Agent, Some(agent.clone())),
            (None, Some(group)) => (TransferReturn::Queue, Some(group.clone())),
            (None, None) => (TransferReturn::None, None),
        };
        let (kind, name) = match &miss.target {
            TransferTarget::Agent(device) => (TransferKind::Agent, self.roster.agent_id_of(device)),
            TransferTarget::Group(g) => (TransferKind::Group, g.clone()),
            TransferTarget::Number { number, .. } => (TransferKind::Number, number.clone()),
        };
        let transferor = self
            .party
            .agent
            .as_deref()
            .map(|a| self.roster.agent_id_of(a));
        self.out.push_back(Output::TransferFailed(FailedTransfer {
            transferor,
            kind,
            name,
            reason: miss.reason,
            sip_code: miss.sip_code,
            back_to,
            back_to_id,
        }));
        match miss.back {
            Some((_, device)) => {
                self.out.push_back(Output::Ring(Ring::Back(device)));
                self.state = State::RingingBack(miss.target, place);
            }
            None => {
                self.music_off();
                self.requeue_or_end(miss.target, place);
            }
        }
    }

    /// Back to the queue at the call's place, if it has one; else nobody
    /// takes the caller.
    fn requeue_or_end(&mut self, target: TransferTarget, place: Option<String>) {
        if place.is_some() {
            self.out.push_back(Output::Ring(Ring::QueueAtPlace));
            self.state = State::Requeued(target);
        } else {
            self.finish(End::Failed(QueueOutcome::Timeout));
        }
    }

    fn music_on(&mut self) {
        if !self.music {
            self.music = true;
            self.out.push_back(Output::MusicOn);
        }
    }

    fn music_off(&mut self) {
        if self.music {
            self.music = false;
            self.out.push_back(Output::MusicOff);
        }
    }

    fn finish(&mut self, end: End) {
        self.music_off();
        self.state = State::Done;
        self.end = Some(end);
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
