//! The IVR phase of an inbound call as a pure machine (issue 13 §1, IVR
//! issue §3): the call's side of the flow [`Interpreter`]. It decides when
//! the caller's leg is answered, which prompts play, when the player is
//! started and given back, which key a prompt or a menu reads, where the
//! caller is connected (queue, agent, number) and what the flow hears back,
//! how the call hangs up, and which facts the call's record gets.
//!
//! Sans-IO in the style of the connected call's [`crate::call::fsm::Fsm`]:
//! inputs are what happened (a player's news, a key sent by SIP INFO, the
//! caller hanging up, the result of a connection, shutdown, the answer),
//! time is an input ([`FlowCore::handle_timeout`] when
//! [`FlowCore::poll_timeout`] is due) and the outputs are read with
//! [`FlowCore::poll_output`]. The shell (`call::flow::drive`) turns the
//! outputs into SIP and media and feeds the results back; it holds no flow
//! logic. Scenario tests run it in virtual time (`core_tests.rs`).
//!
//! Two rules the first wave learnt from outside:
//! - one press is one key: news of a player that was given back (a key
//!   pressed just before the caller was connected, a prompt's end) is
//!   dropped, never read by the next player's prompts (the survey);
//! - the answer is waited for: an output that needs the caller's leg
//!   answered (a prompt, a voicemail) follows [`Output::Answer`] only once
//!   the shell has said how the answer went ([`Input::Answered`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::call::Outcome;
use crate::ivr::{
    Action, Environment, Event, HangupReason, HttpOutcome, HttpRequest, Interpreter, QueueOutcome,
    TimerId, TransferTarget,
};
use crate::media::dtmf::DtmfKey;
use crate::media::player::PlayerEvent;
use crate::time::Time;

/// Which prompts can be played (the snapshot's decoded library).
pub trait Prompts: Send + Sync {
    /// Whether the prompt `name` is loaded.
    fn has(&self, name: &str) -> bool;
}

impl Prompts for crate::media::prompts::PromptLibrary {
    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Where the flow connects the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A skill group's queue.
    Queue {
        /// The group.
        group: String,
        /// 0-255, higher first.
        priority: u8,
        /// The flow's longest wait (else the group's).
        max_wait: Option<Duration>,
    },
    /// One agent.
    Agent(String),
    /// An external number, through the flow's trunk (`None`: the
    /// tenant's).
    Number {
        /// The number.
        number: String,
        /// The trunk the flow names.
        trunk: Option<String>,
    },
}

/// A fact for the call's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A flow node was entered.
    Step {
        /// Flow name.
        flow: String,
        /// Flow version.
        version: String,
        /// Node name.
        node: String,
        /// Node kind.
        kind: &'static str,
    },
    /// The caller is on the block list.
    Blocked,
    /// A survey answer.
    Survey {
        /// What was scored.
        dimension: String,
        /// The score.
        score: u8,
        /// The key pressed.
        key: char,
    },
    /// The caller asked for (or the flow sent them to) an agent.
    AgentRequested,
    /// What the flow learnt so far (the agent's screen pop shows it).
    IvrVars(BTreeMap<String, String>),
    /// A voicemail was saved at `path`, `secs` long.
    Voicemail {
        /// The saved file.
        path: String,
        /// Its length.
        secs: u32,
    },
    /// The call ended by shutdown; `refused` is the status a caller not
    /// yet answered got.
    Shutdown {
        /// The final status sent, when the leg was not answered.
        refused: Option<u16>,
    },
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the caller's leg; say how it went with [`Input::Answered`].
    Answer,
    /// Start the caller's prompt player.
    StartPlayer,
    /// Play these prompts (all loaded) in order, `interruptible` by a key.
    Play {
        /// Prompt names.
        prompts: Vec<String>,
        /// A key cuts them.
        interruptible: bool,
    },
    /// Stop what plays (not reported).
    StopPlayback,
    /// A key from SIP INFO, for the player to read as pressed.
    InfoKey(DtmfKey),
    /// Record a voicemail.
    RecordVoicemail {
        /// Beep first.
        beep: bool,
        /// Longest message.
        max_secs: u32,
        /// Silence that ends it.
        silence_secs: u32,
    },
    /// Give the player back (the caller's media goes idle); report the
    /// news it left behind (a voicemail finished as it stopped).
    EndPlay,
    /// Connect the caller to `dest` (the player was given back); say how
    /// it went with [`Input::Connected`].
    Connect {
        /// Where.
        dest: Dest,
        /// The caller stays on the line when the agent hangs up (the flow
        /// goes on: a survey).
        keep_caller: bool,
    },
    /// Say BYE to the caller.
    Bye,
    /// Refuse the unanswered call with this status.
    Reject(u16),
    /// Release the caller's leg.
    Forget,
    /// Tell the call's record.
    Record(Fact),
    /// Send an `http` node's request (IVR lookups) without holding up the
    /// call; say how it ended with [`Input::Lookup`].
    Lookup(HttpRequest),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    /// The caller hung up.
    CallerGone,
    /// The caller chose to be called back (the call is over).
    CallbackRequested,
    /// Nobody was reached: the flow goes on.
    Failed(QueueOutcome),
    /// `agent` talked with the caller; the caller is still on the line
    /// when `caller_continues`.
    Talked {
        /// Who answered.
        agent: String,
        /// The caller stays (the flow goes on).
        caller_continues: bool,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The result of [`Output::Answer`]: `false`, the caller left first.
    Answered(bool),
    /// The player's news (keys, prompts over, a voicemail).
    Player(PlayerEvent),
    /// A key the caller's phone sent by SIP INFO.
    InfoKey(DtmfKey),
    /// The caller hung up.
    CallerHungUp,
    /// The result of [`Output::Connect`].
    Connected(Connected),
    /// The process is shutting down.
    Shutdown,
    /// How an [`Output::Lookup`] ended.
    Lookup {
        /// The request's id.
        id: u64,
        /// What came back.
        outcome: HttpOutcome,
    },
}

/// What the machine waits for before it reads the flow's next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Nothing: actions are carried out as they come.
    Nothing,
    /// The answer's result.
    Answer,
    /// The connection's result.
    Connection,
}

/// What a connection was for: what the flow hears when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connecting {
    /// A `queue` node (the caller stays for the flow after the agent).
    Queue,
    /// A `transfer` node.
    Transfer,
}

/// One call's IVR phase.
pub struct FlowCore {
    interp: Interpreter,
    env: Arc<dyn Environment + Send + Sync>,
    prompts: Arc<dyn Prompts>,
    /// The caller's leg is answered.
    answered: bool,
    /// A player runs on the caller's media.
    playing: bool,
    /// Prompts of the current batch still to finish.
    left: usize,
    timer: Option<(TimerId, Time)>,
    waiting: Waiting,
    connecting: Option<Connecting>,
    /// The flow's actions not carried out yet.
    pending: VecDeque<Action>,
    outputs: VecDeque<Output>,
    outcome: Option<Outcome>,
}

impl FlowCore {
    /// The flow `interp` starts at `now` for a caller whose leg is
    /// `answered` already (or not).
    pub fn start(
        interp: Interpreter,
        env: Arc<dyn Environment + Send + Sync>,
        prompts: Arc<dyn Prompts>,
        answered: bool,
        now: Time,
    ) -> Self {
        let mut core = FlowCore {
            interp,
            env,
            prompts,
            answered,
            playing: false,
            left: 0,
            timer: None,
            waiting: Waiting::Nothing,
            connecting: None,
            pending: VecDeque::new(),
            outputs: VecDeque::new(),
            outcome: None,
        };
        let actions = core.interp.start(whole_secs(now), core.env.as_ref());
        core.pending.extend(actions);
        core.run(now);
        core
    }

    /// The interpreter (its path, variables and survey, for the log).
    pub fn interpreter(&self) -> &Interpreter {
        &self.interp
    }

    /// How the call ended, once it did.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Time> {
        match (&self.outcome, self.waiting) {
            (None, Waiting::Nothing) => self.timer.map(|(_, at)| at),
            _ => None,
        }
    }

    /// Time passed: the flow's timer fires when due.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.poll_timeout().is_none_or(|at| now < at) {
            return;
        }
        if let Some((id, _)) = self.timer.take() {
            self.feed(Event::Timer(id), now);
        }
    }

    /// Something happened.
    pub fn handle_input(&mut self, now: Time, input: Input) {
        if self.outcome.is_some() {
            // Over: only a voicemail the player finished as it was given
            // back is still told.
            if let Input::Player(PlayerEvent::Voicemail {
                path: Some(path),
                secs,
            }) = input
            {
                self.push(Output::Record(Fact::Voicemail { path, secs }));
            }
            return;
        }
        match input {
            Input::Answered(ok) => {
                if self.waiting != Waiting::Answer {
                    return;
                }
                self.waiting = Waiting::Nothing;
                if !ok {
                    // The caller left before the flow answered.
                    self.pending.clear();
                    self.push(Output::Forget);
                    self.outcome = Some(Outcome::CallerCancelled);
                    return;
                }
                self.answered = true;
                self.run(now);
            }
            Input::Player(event) => self.player_news(event, now),
            Input::InfoKey(key) => {
                if self.playing {
                    self.push(Output::InfoKey(key));
                }
            }
            Input::CallerHungUp => {
                // What the flow would do now is moot: the leg is gone.
                let _ = self
                    .interp
                    .handle(Event::CallerHungUp, whole_secs(now), self.env.as_ref());
                self.pending.clear();
                self.give_back_player();
                self.push(Output::Forget);
                self.outcome = Some(Outcome::CallerCancelled);
            }
            Input::Connected(result) => {
                if self.waiting != Waiting::Connection {
                    return;
                }
                self.waiting = Waiting::Nothing;
                self.connected(result, now);
            }
            Input::Lookup { id, outcome } => {
                // Told even while the answer is awaited (a hold prompt
                // waits for it): what the flow does next queues behind.
                self.feed(Event::HttpResult { id, outcome }, now);
            }
            Input::Shutdown => {
                self.pending.clear();
                self.give_back_player();
                let refused = (!self.answered).then_some(503);
                self.push(Output::Record(Fact::Shutdown { refused }));
                self.push(match refused {
                    Some(code) => Output::Reject(code),
                    None => Output::Bye,
                });
                self.push(Output::Forget);
                self.outcome = Some(Outcome::CallerCancelled);
            }
        }
    }

    fn player_news(&mut self, event: PlayerEvent, now: Time) {
        if let PlayerEvent::Voicemail { path, secs } = event {
            // Reported however the player ended (a voicemail outlives it).
            let event = match path {
                Some(path) => {
                    self.push(Output::Record(Fact::Voicemail {
                        path: path.clone(),
                        secs,
                    }));
                    Event::VoicemailSaved { path, secs }
                }
                None => Event::VoicemailEmpty,
            };
            if self.waiting == Waiting::Nothing {
                self.feed(event, now);
            }
            return;
        }
        if !self.playing || self.waiting != Waiting::Nothing {
            // A given-back player's news: one press is one key.
            return;
        }
        let event = match event {
            PlayerEvent::Key(k) => Some(Event::Key(k)),
            PlayerEvent::Finished(_) => {
                self.left = self.left.saturating_sub(1);
                (self.left == 0).then_some(Event::PromptFinished)
            }
            PlayerEvent::Interrupted(_) => {
                self.left = 0;
                Some(Event::PromptInterrupted)
            }
            PlayerEvent::Voicemail { .. } => None,
        };
        if let Some(event) = event {
            self.feed(event, now);
        }
    }

    fn connected(&mut self, result: Connected, now: Time) {
        match result {
            Connected::CallerGone => {
                self.pending.clear();
                self.push(Output::Forget);
                self.outcome = Some(Outcome::CallerCancelled);
            }
            Connected::CallbackRequested => {
                self.pending.clear();
                self.push(Output::Forget);
                self.outcome = Some(Outcome::CallbackRequested);
            }
            Connected::Failed(q) => {
                let event = match self.connecting.take() {
                    Some(Connecting::Transfer) => Event::TransferResult { ok: false },
                    _ => Event::QueueResult(q),
                };
                self.feed(event, now);
            }
            Connected::Talked {
                agent,
                caller_continues,
            } => {
                let queued = matches!(self.connecting.take(), Some(Connecting::Queue));
                if caller_continues && queued {
                    // The flow hears the agent answered, then left.
                    self.feed(Event::QueueResult(QueueOutcome::Answered { agent }), now);
                    self.feed(Event::AgentHungUp, now);
                } else {
                    self.pending.clear();
                    self.outcome = Some(Outcome::Answered);
                }
            }
        }
    }

    /// Tell the interpreter, and carry out what it answers.
    fn feed(&mut self, event: Event, now: Time) {
        let actions = self
            .interp
            .handle(event, whole_secs(now), self.env.as_ref());
        self.pending.extend(actions);
        self.run(now);
    }

    /// Carry out the flow's actions until one needs an answer, the flow
    /// ends, or none is left.
    fn run(&mut self, now: Time) {
        while self.outcome.is_none() && self.waiting == Waiting::Nothing {
            let Some(action) = self.pending.pop_front() else {
                if self.interp.is_finished() {
                    // Finished without hanging up (a transfer took the
                    // call).
                    self.give_back_player();
                    self.outcome = Some(Outcome::Answered);
                }
                return;
            };
            self.action(action, now);
        }
    }

    fn action(&mut self, action: Action, now: Time) {
        match action {
            Action::Answer => {
                if self.ensure_answered(Action::Answer) {
                    self.ensure_player();
                }
            }
            Action::Play {
                prompts,
                interruptible,
            } => {
                let again = Action::Play {
                    prompts: prompts.clone(),
                    interruptible,
                };
                if !self.ensure_answered(again) {
                    return;
                }
                self.ensure_player();
                let loaded: Vec<String> = prompts
                    .into_iter()
                    .filter(|n| {
                        let ok = self.prompts.has(n);
                        if !ok {
                            tracing::warn!(prompt = %n, "prompt not loaded: skipped");
                        }
                        ok
                    })
                    .collect();
                if loaded.is_empty() {
                    // Nothing to play (a file deleted since validation).
                    self.left = 0;
                    self.feed(Event::PromptFinished, now);
                    return;
                }
                self.left = loaded.len();
                self.push(Output::Play {
                    prompts: loaded,
                    interruptible,
                });
            }
            Action::StopPlayback => {
                self.left = 0;
                if self.playing {
                    self.push(Output::StopPlayback);
                }
            }
            Action::StartTimer { id, after_ms } => {
                self.timer = Some((id, now + Duration::from_millis(after_ms)));
            }
            Action::CancelTimer(id) => {
                if self.timer.is_some_and(|(t, _)| t == id) {
                    self.timer = None;
                }
            }
            Action::Step {
                flow,
                version,
                node,
                kind,
            } => self.push(Output::Record(Fact::Step {
                flow,
                version,
                node,
                kind,
            })),
            Action::Blocked => self.push(Output::Record(Fact::Blocked)),
            Action::HttpRequest(request) => self.push(Output::Lookup(request)),
            Action::SurveyScore {
                dimension,
                score,
                key,
            } => self.push(Output::Record(Fact::Survey {
                dimension,
                score,
                key,
            })),
            Action::Enqueue {
                group,
                priority,
                max_wait_secs,
            } => {
                self.push(Output::Record(Fact::AgentRequested));
                self.push(Output::Record(Fact::IvrVars(self.interp.vars().clone())));
                let dest = Dest::Queue {
                    group,
                    priority,
                    max_wait: max_wait_secs.map(|s| Duration::from_secs(u64::from(s))),
                };
                self.connect(dest, Connecting::Queue);
            }
            Action::Transfer(target) => {
                let dest = match target {
                    TransferTarget::Agent(a) => Dest::Agent(a),
                    TransferTarget::Group(group) => Dest::Queue {
                        group,
                        priority: 0,
                        max_wait: None,
                    },
                    TransferTarget::Number { number, trunk } => Dest::Number { number, trunk },
                };
                if !matches!(dest, Dest::Number { .. }) {
                    self.push(Output::Record(Fact::AgentRequested));
                }
                self.connect(dest, Connecting::Transfer);
            }
            Action::RecordVoicemail {
                beep,
                max_secs,
                silence_secs,
            } => {
                let again = Action::RecordVoicemail {
                    beep,
                    max_secs,
                    silence_secs,
                };
                if !self.ensure_answered(again) {
                    return;
                }
                self.ensure_player();
                self.push(Output::RecordVoicemail {
                    beep,
                    max_secs,
                    silence_secs,
                });
            }
            Action::Hangup { reason } => {
                self.pending.clear();
                self.give_back_player();
                self.push(if self.answered {
                    Output::Bye
                } else {
                    // Not answered yet (a blocked caller, a closed line
                    // without prompts): refused rather than answered just
                    // to hang up.
                    Output::Reject(if reason == HangupReason::Blocked {
                        603
                    } else {
                        480
                    })
                });
                self.push(Output::Forget);
                self.outcome = Some(Outcome::FlowEnded(reason.as_str().to_string()));
            }
        }
    }

    /// Answered already: `true`. Otherwise ask for the answer and carry
    /// out `action` again once it is in.
    fn ensure_answered(&mut self, action: Action) -> bool {
        if self.answered {
            return true;
        }
        self.pending.push_front(action);
        self.push(Output::Answer);
        self.waiting = Waiting::Answer;
        false
    }

    fn ensure_player(&mut self) {
        if !self.playing {
            self.playing = true;
            self.push(Output::StartPlayer);
        }
    }

    fn give_back_player(&mut self) {
        self.left = 0;
        if self.playing {
            self.playing = false;
            self.push(Output::EndPlay);
        }
    }

    fn connect(&mut self, dest: Dest, how: Connecting) {
        self.give_back_player();
        let keep_caller = how == Connecting::Queue;
        self.connecting = Some(how);
        self.waiting = Waiting::Connection;
        self.push(Output::Connect { dest, keep_caller });
    }

    fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }
}

/// The interpreter reads time in whole seconds, as it always has.
fn whole_secs(now: Time) -> Time {
    Time::from_unix_secs(now.unix_secs())
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
