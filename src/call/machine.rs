//! The call as one machine (issue 13 §1): every kind of call — a
//! carrier's INVITE run through an IVR flow or rung straight to agents, a
//! queue or a number; a callback the ACD reserved an agent for; an
//! outbound call from the phone bar — is a [`Machine`] whose states are
//! the call's phases. It decides how the call is set up and refused (488,
//! 503, the negotiation's status), which phase follows which, what the
//! ACD is told (offers answered, rejected or failed, a callback's result,
//! an outbound call's start and end), and how the call's record ends. The
//! phases are pure machines of their own, run by their shells inside the
//! call's one task (`call::task`):
//!
//! | phase | machine | shell |
//! |---|---|---|
//! | the IVR flow | [`crate::call::flow::core::FlowCore`] | `flow::drive` |
//! | ringing agents, numbers | [`crate::call::forks::Forks`] | `ringing` |
//! | a queue's wait | [`crate::call::queue_wait::QueueWait`] | `ringing::ring_queue_at` |
//! | agent first, then the citizen | [`crate::call::agent_first::AgentFirst`] | `reach` |
//! | conversations, blind transfers | [`crate::call::converse::core::Conversations`] | `converse` |
//! | the connected call | [`crate::call::fsm::Fsm`] | `session` |
//!
//! Sans-IO: the shell carries out each [`Output`] and feeds its result
//! back as an [`Input`]; [`Machine::outcome`] says how the call ended.
//! Scenario tests drive it with scripted results (`machine_tests.rs`).

use std::collections::VecDeque;

use crate::call::agent_first::NotReached;
use crate::call::Outcome;
use crate::ivr::QueueOutcome;

/// Which kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A carrier's INVITE run through an IVR flow.
    Flow,
    /// A carrier's INVITE rung straight to agents, a queue or a number.
    Direct,
    /// A callback: the ACD reserved an agent, who is rung first.
    Callback,
    /// An outbound call from the phone bar: the agent first.
    Outbound,
}

/// Why an inbound call could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupFailure {
    /// The carrier's SDP offer cannot be read.
    BadOffer,
    /// No RTP ports left.
    NoPorts,
    /// The offer and our media have nothing in common: the status to send.
    Negotiation(u16),
    /// The dialog could not be made (nothing can be sent back).
    NoDialog,
}

/// How a conversation phase ended (`converse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversed {
    /// The caller hung up.
    CallerGone,
    /// Nobody took the caller after a blind transfer.
    Failed(QueueOutcome),
    /// The conversation is over.
    Talked,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The ACD took the agent for an outbound call (`true`), or refused.
    AcdTook(bool),
    /// [`Output::Prepare`] done.
    Prepared(Result<(), SetupFailure>),
    /// The flow is over ([`Output::RunFlow`]).
    FlowOver(Outcome),
    /// Ringing a direct route ended ([`Output::Ring`]): `Ok` when someone
    /// answered.
    Rang {
        /// How it ended.
        result: Result<(), Outcome>,
        /// The caller's leg was answered meanwhile (a queue's media).
        answered: bool,
    },
    /// How answering the caller went ([`Output::AnswerCaller`]).
    Answered(bool),
    /// The conversations are over ([`Output::Converse`]).
    Conversed(Conversed),
    /// Agent first: the agent answered; the citizen is dialled next.
    AgentAnswered,
    /// Agent first: both answered (`Ok`), or who was not reached.
    Reached(Result<(), NotReached>),
    /// The connected call is over ([`Output::Talk`]).
    Talked,
}

/// What the ACD is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcdNews {
    /// The agent starts an outbound call (it may refuse: [`Input::AcdTook`]).
    StartOutbound,
    /// The outbound call is over.
    EndOutbound,
    /// The agent answered the callback's offer.
    OfferAnswered,
    /// The agent refused the callback's offer (486, 600, 603).
    OfferRejected,
    /// The agent's phone did not take the callback's offer.
    OfferFailed,
    /// Whether the citizen was reached.
    CallbackResult(bool),
    /// The callback's conversation is over.
    CallEnded,
}

/// How the call's record ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordEnd {
    /// The caller hung up.
    Caller,
    /// The system ended it.
    System {
        /// Why (`rejected`, `not-answered`, `no-trunk`, …).
        reason: String,
        /// The SIP status, when one was sent or got.
        code: Option<u16>,
        /// A failure of the switch, not of the parties.
        failure: bool,
    },
}

fn system(reason: &str, code: Option<u16>, failure: bool) -> RecordEnd {
    RecordEnd::System {
        reason: reason.to_string(),
        code,
        failure,
    }
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Set the call up: inbound, read the offer, reserve ports, answer
    /// the SDP, make the dialog; agent first, reserve ports
    /// ([`Input::Prepared`]).
    Prepare,
    /// Refuse the carrier's INVITE with this status.
    Reject(u16),
    /// The caller's leg is done with (no BYE owed).
    Forget,
    /// Run the IVR flow ([`Input::FlowOver`]).
    RunFlow,
    /// Ring the direct route ([`Input::Rang`]).
    Ring,
    /// Answer the caller's leg ([`Input::Answered`]).
    AnswerCaller,
    /// The caller left as the agent answered: hang up the agent's leg and
    /// release them.
    DropAnswer,
    /// The caller talks with whoever answered, and whoever a blind
    /// transfer reaches ([`Input::Conversed`]).
    Converse,
    /// Hang up the caller's leg.
    Bye,
    /// Tell the ACD.
    Acd(AcdNews),
    /// Open the call's record (a callback's, once its agent answered; an
    /// outbound call's, at once).
    StartRecord,
    /// Ring the agent, then the citizen ([`Input::AgentAnswered`],
    /// [`Input::Reached`]).
    Reach,
    /// Both sides answered: the record's `answered` fact.
    Connected,
    /// Bridge them until the call is over ([`Input::Talked`]).
    Talk,
    /// Finish the call's recording, if it is still open.
    EndRecording,
    /// How the record ends.
    EndRecord(RecordEnd),
    /// The record is complete: send it.
    Finish,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the ACD (an outbound call).
    Admitting,
    /// Waiting for [`Input::Prepared`].
    Preparing,
    /// Waiting for [`Input::FlowOver`].
    InFlow,
    /// Waiting for [`Input::Rang`].
    Ringing,
    /// Waiting for [`Input::Answered`].
    Answering,
    /// Waiting for [`Input::Conversed`].
    Conversing,
    /// Waiting for [`Input::Reached`] (and maybe [`Input::AgentAnswered`]).
    Reaching,
    /// Waiting for [`Input::Talked`].
    Talking,
    /// Over.
    Done,
}

/// One call, from its first message to its record.
#[derive(Debug)]
pub struct Machine {
    kind: Kind,
    state: State,
    /// The agent answered (agent first): the record is open.
    agent_answered: bool,
    /// The call got as far as its media (an inbound call's recording may
    /// be open).
    prepared: bool,
    out: VecDeque<Output>,
    outcome: Option<Outcome>,
}

impl Machine {
    /// A new call of `kind`.
    pub fn new(kind: Kind) -> Self {
        let mut m = Machine {
            kind,
            state: State::Preparing,
            agent_answered: false,
            prepared: false,
            out: VecDeque::new(),
            outcome: None,
        };
        if kind == Kind::Outbound {
            m.state = State::Admitting;
            m.out.push_back(Output::StartRecord);
            m.out.push_back(Output::Acd(AcdNews::StartOutbound));
        } else {
            m.out.push_back(Output::Prepare);
        }
        m
    }

    /// Which kind of call this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// How the call ended, once it has (an inbound call's; agent-first
    /// calls end with [`Outcome::Answered`] once connected, else with how
    /// they were not).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Feed what happened. An input the machine does not wait for is
    /// ignored.
    pub fn handle_input(&mut self, input: Input) {
        match (self.state, input) {
            (State::Admitting, Input::AcdTook(true)) => self.prepare(),
            (State::Admitting, Input::AcdTook(false)) => {
                self.out
                    .push_back(Output::EndRecord(system("agent-busy", None, false)));
                self.out.push_back(Output::Finish);
                self.done(Outcome::Rejected(486));
            }
            (State::Preparing, Input::Prepared(Ok(()))) => {
                self.prepared = true;
                match self.kind {
                    Kind::Flow => self.step(State::InFlow, Output::RunFlow),
                    Kind::Direct => self.step(State::Ringing, Output::Ring),
                    Kind::Callback | Kind::Outbound => self.step(State::Reaching, Output::Reach),
                }
            }
            (State::Preparing, Input::Prepared(Err(failure))) => self.setup_failed(failure),
            (State::InFlow, Input::FlowOver(outcome)) => self.end_inbound(outcome),
            (
                State::Ringing,
                Input::Rang {
                    result: Ok(()),
                    answered,
                },
            ) => {
                if answered {
                    self.step(State::Conversing, Output::Converse);
                } else {
                    self.step(State::Answering, Output::AnswerCaller);
                }
            }
            (
                State::Ringing,
                Input::Rang {
                    result: Err(outcome),
                    answered,
                },
            ) => {
                // A caller answered for the queue's media was told
                // goodbye by it.
                if let (Outcome::NotAnswered(code), false) = (&outcome, answered) {
                    self.out.push_back(Output::Reject(*code));
                }
                self.out.push_back(Output::Forget);
                self.end_inbound(outcome);
            }
            (State::Answering, Input::Answered(true)) => {
                self.step(State::Conversing, Output::Converse)
            }
            (State::Answering, Input::Answered(false)) => {
                self.out.push_back(Output::DropAnswer);
                self.end_inbound(Outcome::CallerCancelled);
            }
            (State::Conversing, Input::Conversed(how)) => {
                if let Conversed::Failed(why) = how {
                    // A blind transfer nobody took: the caller is hung up.
                    let no_ports = why == QueueOutcome::Overflow;
                    self.out.push_back(Output::EndRecord(system(
                        "transfer-failed",
                        None,
                        no_ports,
                    )));
                    self.out.push_back(Output::EndRecording);
                    self.out.push_back(Output::Bye);
                }
                self.end_inbound(Outcome::Answered);
            }
            (State::Reaching, Input::AgentAnswered) if !self.agent_answered => {
                self.agent_answered = true;
                if self.kind == Kind::Callback {
                    self.out.push_back(Output::Acd(AcdNews::OfferAnswered));
                    self.out.push_back(Output::StartRecord);
                }
            }
            (State::Reaching, Input::Reached(reached)) => self.reached(reached),
            (State::Talking, Input::Talked) => {
                self.out.push_back(Output::Acd(match self.kind {
                    Kind::Callback => AcdNews::CallEnded,
                    _ => AcdNews::EndOutbound,
                }));
                self.out.push_back(Output::Finish);
                self.done(Outcome::Answered);
            }
            _ => {}
        }
    }

    fn step(&mut self, state: State, output: Output) {
        self.state = state;
        self.out.push_back(output);
    }

    fn prepare(&mut self) {
        self.step(State::Preparing, Output::Prepare);
    }

    fn setup_failed(&mut self, failure: SetupFailure) {
        match self.kind {
            Kind::Flow | Kind::Direct => {
                let code = match failure {
                    SetupFailure::BadOffer => 488,
                    SetupFailure::NoPorts => 503,
                    SetupFailure::Negotiation(code) => code,
                    SetupFailure::NoDialog => 500,
                };
                if failure != SetupFailure::NoDialog {
                    self.out.push_back(Output::Reject(code));
                }
                self.end_inbound(Outcome::Rejected(code));
            }
            // Agent first: only ports can be missing.
            Kind::Callback => {
                self.out.push_back(Output::Acd(AcdNews::OfferFailed));
                self.done(Outcome::Rejected(503));
            }
            Kind::Outbound => {
                self.out
                    .push_back(Output::EndRecord(system("no-ports", None, true)));
                self.end_outbound(Outcome::Rejected(503));
            }
        }
    }

    /// An inbound call is over: its recording finished, its record told
    /// how it ended and sent.
    fn end_inbound(&mut self, outcome: Outcome) {
        if self.prepared {
            self.out.push_back(Output::EndRecording);
        }
        let end = match &outcome {
            Outcome::CallerCancelled => RecordEnd::Caller,
            Outcome::Rejected(code) => system("rejected", Some(*code), *code >= 500),
            Outcome::NotAnswered(code) => system("not-answered", Some(*code), false),
            Outcome::CallbackRequested => system("callback", None, false),
            Outcome::FlowEnded(reason) => system(reason, None, false),
            Outcome::QueueEnded { .. } => system("queue-ended", None, false),
            Outcome::Answered => system("normal", None, false),
        };
        self.out.push_back(Output::EndRecord(end));
        self.out.push_back(Output::Finish);
        self.done(outcome);
    }

    /// An outbound call that did not connect: the ACD frees the agent.
    fn end_outbound(&mut self, outcome: Outcome) {
        self.out.push_back(Output::Acd(AcdNews::EndOutbound));
        self.out.push_back(Output::Finish);
        self.done(outcome);
    }

    /// The agent-first ringing is over.
    fn reached(&mut self, reached: Result<(), NotReached>) {
        match (self.kind, reached) {
            (_, Ok(())) if self.agent_answered || self.kind == Kind::Outbound => {
                self.out.push_back(Output::Connected);
                if self.kind == Kind::Callback {
                    self.out
                        .push_back(Output::Acd(AcdNews::CallbackResult(true)));
                }
                self.step(State::Talking, Output::Talk);
            }
            (Kind::Callback, Err(NotReached::Agent(code))) if !self.agent_answered => {
                self.out
                    .push_back(Output::Acd(if matches!(code, 486 | 600 | 603) {
                        AcdNews::OfferRejected
                    } else {
                        AcdNews::OfferFailed
                    }));
                self.done(Outcome::NotAnswered(code));
            }
            (Kind::Callback, Err(NotReached::Withdrawn)) if !self.agent_answered => {
                self.done(Outcome::CallerCancelled);
            }
            (Kind::Callback, other) if self.agent_answered => {
                // The agent answered; the citizen was not reached.
                self.out.push_back(Output::EndRecord(match other {
                    Err(NotReached::NoTrunk) => system("no-trunk", None, true),
                    _ => system("not-answered", Some(480), false),
                }));
                self.out.push_back(Output::Finish);
                self.out
                    .push_back(Output::Acd(AcdNews::CallbackResult(false)));
                self.done(Outcome::NotAnswered(480));
            }
            (Kind::Callback, _) => {
                // Over before the agent's answer was heard (`reach` says
                // so only with `Agent` or `Withdrawn`): the offer failed.
                self.out.push_back(Output::Acd(AcdNews::OfferFailed));
                self.done(Outcome::NotAnswered(480));
            }
            (_, Err(not)) => {
                let (end, outcome) = match not {
                    NotReached::Agent(code) => (
                        system("agent-not-answered", Some(code), false),
                        Outcome::NotAnswered(code),
                    ),
                    NotReached::Withdrawn => {
                        (system("withdrawn", None, false), Outcome::CallerCancelled)
                    }
                    NotReached::NoTrunk => (system("no-trunk", None, true), Outcome::Rejected(503)),
                    NotReached::Citizen(code) => (
                        system("not-answered", Some(code), false),
                        Outcome::NotAnswered(code),
                    ),
                };
                self.out.push_back(Output::EndRecord(end));
                self.end_outbound(outcome);
            }
            // An inbound call never reaches agent first.
            (_, Ok(())) => {}
        }
    }

    fn done(&mut self, outcome: Outcome) {
        self.state = State::Done;
        self.outcome = Some(outcome);
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
