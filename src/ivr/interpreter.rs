//! The per-call IVR state machine: pure and deterministic.
//!
//! Requirement: a call walks its flow (prompts, menus, digit collection,
//! office hours, queues, transfers, voicemail, survey, subflows) exactly as
//! the flow file says, and the walk is testable with virtual time. The
//! interpreter does no I/O and never reads the clock: the shell feeds it
//! [`Event`]s with the current [`Time`] and an [`Environment`] (calendars,
//! area lookup, block list, time zone) and carries out the [`Action`]s it
//! returns, in order.
//!
//! # Contract with the shell
//!
//! - [`Interpreter::start`] once, then [`Interpreter::handle`] per event.
//!   Events before `start` are ignored (except [`Event::CallerHungUp`]).
//! - [`Action::Answer`] comes once, before the first prompt or recording.
//!   Queue, transfer and a prompt-less hangup do not answer.
//! - [`Action::Play`] starts playback; the shell reports its end with
//!   [`Event::PromptFinished`] (or [`Event::PromptInterrupted`] if the media
//!   side cut it; both mean "over"). A playback stopped by
//!   [`Action::StopPlayback`] must not be reported; reports while nothing
//!   plays are ignored.
//! - At most one timer is live. [`Action::StartTimer`] carries a fresh
//!   [`TimerId`]; the interpreter emits [`Action::CancelTimer`] for a timer it
//!   abandons, and ignores [`Event::Timer`] for any id but the live one, so a
//!   late timer is harmless.
//! - Keys (`0`-`9`, `*`, `#`; others are ignored) may arrive at any time.
//!   While a prompt plays they are kept as type-ahead (up to 32) for the
//!   next menu or collect; an interruptible `play`, and menu, collect and
//!   survey prompts, stop at a key. Keys in queue, transfer, voicemail and
//!   hangup are ignored, and those nodes drop the type-ahead.
//! - [`Action::Step`] is emitted on entering every node.
//! - After [`Action::Hangup`], after [`Event::CallerHungUp`], and after a
//!   successful transfer ([`Event::TransferResult`] with `ok`, the call then
//!   belongs to the bridge) the interpreter is finished and returns no more
//!   actions.
//! - More than [`MAX_STEPS`] nodes entered without waiting (a loop that
//!   validation should have refused) ends the call with
//!   [`HangupReason::Error`]; so does a subflow nesting deeper than
//!   [`MAX_DEPTH`] or a transition to a missing node.
//!
//! # Files
//!
//! This file holds the contract's types, the interpreter's state and its
//! public surface; the work is in `impl Interpreter` blocks beside it:
//! `interpreter/walk.rs` (entering nodes, conditions, templates),
//! `interpreter/events.rs` (events while a node waits) and
//! `interpreter/dialogs.rs` (menus, digit collection, surveys),
//! `interpreter/lookup.rs` (the `http` and `say` nodes: IVR lookups).
//!
//! An `http` node emits [`Action::HttpRequest`] and waits for
//! [`Event::HttpResult`] with the same id (others are ignored); the shell
//! sends the request with its timeout and retries. The interpreter's own
//! timer ([`crate::ivr::lookup::Http::deadline_secs`]) takes the timeout
//! branch should the shell never answer. Keys pressed meanwhile are kept
//! as type-ahead.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::flow::TransferTarget;
use super::lookup::{HttpOutcome, HttpRequest};
use super::validate::FlowSet;
use crate::time::Time;

mod dialogs;
mod events;
mod lookup;
mod walk;

/// Nodes entered in a row without waiting before the call is ended.
pub const MAX_STEPS: u32 = 1000;
/// Deepest subflow nesting.
pub const MAX_DEPTH: usize = 16;
/// Type-ahead keys kept.
pub const MAX_TYPEAHEAD: usize = 32;

/// Identifies one timer; ids are never reused within a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// Facts about the call known when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// Calling number.
    pub caller: String,
    /// Called number.
    pub called: String,
    /// Tenant the call belongs to (for the block list).
    pub tenant: String,
}

/// What the interpreter asks of the world, synchronously and without side
/// effects.
pub trait Environment {
    /// Whether the named calendar is open at this instant.
    fn is_open(&self, schedule: &str, at: Time) -> bool;
    /// The caller's area: (area code, region name), if known.
    fn area_of(&self, caller: &str) -> Option<(String, String)>;
    /// Whether the caller is on the tenant's block list.
    fn is_blocked(&self, tenant: &str, caller: &str) -> bool;
    /// Local time offset from UTC in minutes (China: +480).
    fn utc_offset_minutes(&self) -> i32;
}

/// How a queue wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutcome {
    /// An agent answered.
    Answered {
        /// The agent's SIP user.
        agent: String,
    },
    /// The maximum wait passed.
    Timeout,
    /// The queue was full.
    Overflow,
    /// Nobody is logged in to the group.
    Closed,
}

/// Something that happened to the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The current playback ended.
    PromptFinished,
    /// The current playback was cut by the media side.
    PromptInterrupted,
    /// The caller pressed a key.
    Key(char),
    /// A timer fired.
    Timer(TimerId),
    /// The queue wait ended.
    QueueResult(QueueOutcome),
    /// The agent hung up; the caller is still on the line.
    AgentHungUp,
    /// A transfer succeeded (call bridged) or failed.
    TransferResult {
        /// Whether the transfer succeeded.
        ok: bool,
    },
    /// A voicemail was recorded.
    VoicemailSaved {
        /// Where the shell stored it.
        path: String,
        /// Its length.
        secs: u32,
    },
    /// The caller left no message.
    VoicemailEmpty,
    /// How an [`Action::HttpRequest`] ended.
    HttpResult {
        /// The request's id.
        id: u64,
        /// What came back.
        outcome: HttpOutcome,
    },
    /// The caller hung up.
    CallerHungUp,
}

/// Why the interpreter hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    /// A `hangup` node, or the agent hung up with no `after_agent`.
    Normal,
    /// The caller is on the block list.
    Blocked,
    /// The top-level flow ran out of nodes (a node without `next`).
    FlowEnd,
    /// A menu or collect ran out of retries and has no `fallback`.
    NoInput,
    /// A queue or transfer failed and the flow says nothing about it.
    Unavailable,
    /// The flow is broken or looped (see the module docs).
    Error,
}

impl HangupReason {
    /// Stable text for logs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupReason::Normal => "normal",
            HangupReason::Blocked => "blocked",
            HangupReason::FlowEnd => "flow-end",
            HangupReason::NoInput => "no-input",
            HangupReason::Unavailable => "unavailable",
            HangupReason::Error => "error",
        }
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the call (once).
    Answer,
    /// Play prompts (sound names) in order.
    Play {
        /// Prompt names.
        prompts: Vec<String>,
        /// Whether a key stops it (the interpreter sends `StopPlayback`).
        interruptible: bool,
    },
    /// Stop the current playback (do not report it).
    StopPlayback,
    /// Start a timer; report [`Event::Timer`] when it fires.
    StartTimer {
        /// Its id.
        id: TimerId,
        /// Delay.
        after_ms: u64,
    },
    /// Forget a timer.
    CancelTimer(TimerId),
    /// Put the caller in a group's queue.
    Enqueue {
        /// Skill group id.
        group: String,
        /// 0-255, higher first.
        priority: u8,
        /// Override of the group's maximum wait.
        max_wait_secs: Option<u32>,
    },
    /// Transfer the call.
    Transfer(TransferTarget),
    /// Record a voicemail.
    RecordVoicemail {
        /// Beep first.
        beep: bool,
        /// Longest message.
        max_secs: u32,
        /// Silence that ends it.
        silence_secs: u32,
    },
    /// A survey answer.
    SurveyScore {
        /// What was scored.
        dimension: String,
        /// The score.
        score: u8,
        /// The key pressed.
        key: char,
    },
    /// The caller is on the block list (log it).
    Blocked,
    /// Send a request; report [`Event::HttpResult`] with its id.
    HttpRequest(HttpRequest),
    /// A node was entered (becomes an `ivr.step` event).
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
    /// Hang up; the interpreter is finished.
    Hangup {
        /// Why.
        reason: HangupReason,
    },
}

/// Why an interpreter cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpreterError {
    /// No flow of that name in the set.
    #[error("no IVR flow named \"{0}\"")]
    UnknownFlow(String),
}

/// What the current node waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    NotStarted,
    Play { interruptible: bool },
    BlockedPrompt,
    Menu,
    Collect,
    Survey,
    Queue,
    Connected,
    Transfer,
    VoicemailPrompt,
    Recording,
    HangupPrompt,
    Http,
    Done,
}

/// Sub-state of menu, collect and survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Main prompts playing.
    Prompt,
    /// Prompts over, timer running.
    Waiting,
    /// Invalid/timeout notice playing.
    Notice,
    /// Survey intro playing.
    Intro,
    /// Survey thanks playing.
    Thanks,
}

/// What to do after handling something.
enum Next {
    /// Stay; wait for events.
    Wait,
    /// Go to a node of the current flow (`None`: end of the flow).
    Go(Option<String>),
    /// The interpreter finished.
    Stop,
}

/// Why collect input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollectEnd {
    Terminator,
    Max,
    Timeout,
}

/// A subflow's return address.
#[derive(Debug, Clone)]
struct Frame {
    flow: String,
    resume: Option<String>,
}

/// One call's walk through its flows.
#[derive(Debug, Clone)]
pub struct Interpreter {
    set: Arc<FlowSet>,
    facts: CallFacts,
    flow: String,
    node: String,
    frames: Vec<Frame>,
    wait: Wait,
    phase: Phase,
    offer: u32,
    digits: String,
    question: usize,
    replayed: bool,
    vars: BTreeMap<String, String>,
    path: Vec<String>,
    scores: BTreeMap<String, u8>,
    typeahead: VecDeque<char>,
    answered: bool,
    playing: bool,
    timer: Option<TimerId>,
    next_timer: u64,
    request: Option<u64>,
    next_request: u64,
    finished: bool,
    out: Vec<Action>,
}

impl Interpreter {
    /// An interpreter for `flow` of `set`; nothing happens until
    /// [`Interpreter::start`].
    pub fn new(set: Arc<FlowSet>, flow: &str, facts: CallFacts) -> Result<Self, InterpreterError> {
        if set.get(flow).is_none() {
            return Err(InterpreterError::UnknownFlow(flow.to_string()));
        }
        let mut vars = BTreeMap::new();
        vars.insert("caller".to_string(), facts.caller.clone());
        vars.insert("called".to_string(), facts.called.clone());
        Ok(Self {
            set,
            facts,
            flow: flow.to_string(),
            node: String::new(),
            frames: Vec::new(),
            wait: Wait::NotStarted,
            phase: Phase::Prompt,
            offer: 0,
            digits: String::new(),
            question: 0,
            replayed: false,
            vars,
            path: Vec::new(),
            scores: BTreeMap::new(),
            typeahead: VecDeque::new(),
            answered: false,
            playing: false,
            timer: None,
            next_timer: 1,
            request: None,
            next_request: 1,
            finished: false,
            out: Vec::new(),
        })
    }

    /// Enters the flow's entry node.
    pub fn start(&mut self, now: Time, env: &dyn Environment) -> Vec<Action> {
        if self.wait != Wait::NotStarted || self.finished {
            return Vec::new();
        }
        let entry = self.set.get(&self.flow).map(|f| f.entry.clone());
        match entry {
            Some(entry) => self.goto(Some(entry), now, env),
            None => self.finish(HangupReason::Error),
        }
        std::mem::take(&mut self.out)
    }

    /// Handles one event.
    pub fn handle(&mut self, event: Event, now: Time, env: &dyn Environment) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        if event == Event::CallerHungUp {
            self.finished = true;
            self.wait = Wait::Done;
            self.timer = None;
            self.playing = false;
            return Vec::new();
        }
        if self.wait == Wait::NotStarted {
            return Vec::new();
        }
        let next = match event {
            Event::Key(k) if k.is_ascii_digit() || k == '*' || k == '#' => self.on_key(k),
            Event::Key(_) => Next::Wait,
            Event::PromptFinished | Event::PromptInterrupted => {
                if self.playing {
                    self.playing = false;
                    self.on_prompt_end()
                } else {
                    Next::Wait
                }
            }
            Event::Timer(id) => {
                if self.timer == Some(id) {
                    self.timer = None;
                    self.on_timer()
                } else {
                    Next::Wait
                }
            }
            Event::QueueResult(outcome) => self.on_queue(outcome),
            Event::AgentHungUp => self.on_agent_hung_up(),
            Event::TransferResult { ok } => self.on_transfer(ok),
            Event::VoicemailSaved { path, secs } => {
                if self.wait == Wait::Recording {
                    self.vars.insert("voicemail_path".into(), path);
                    self.vars.insert("voicemail_secs".into(), secs.to_string());
                    self.after_voicemail()
                } else {
                    Next::Wait
                }
            }
            Event::VoicemailEmpty => {
                if self.wait == Wait::Recording {
                    self.after_voicemail()
                } else {
                    Next::Wait
                }
            }
            Event::HttpResult { id, outcome } => self.on_http(id, outcome),
            Event::CallerHungUp => Next::Stop,
        };
        if let Next::Go(target) = next {
            self.goto(target, now, env);
        }
        std::mem::take(&mut self.out)
    }

    /// Variables: `caller`, `called`, `area_code`/`area_name` (after
    /// `area`), collected digits, `set` variables, `menu_NODE` (last key
    /// chosen), `agent` (after a queue answered), `voicemail_path`/
    /// `voicemail_secs`, `http_status` and the fields an `http` node
    /// mapped.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// Nodes entered, in order; nodes of subflows as `flow/node`.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The flow being walked (a subflow while in one).
    pub fn current_flow(&self) -> &str {
        &self.flow
    }

    /// The current node (empty before `start`).
    pub fn current_node(&self) -> &str {
        &self.node
    }

    /// Version of the current flow.
    pub fn version(&self) -> &str {
        self.set
            .get(&self.flow)
            .map(|f| f.version.as_str())
            .unwrap_or("")
    }

    /// Whether the interpreter is done (no more actions).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Survey answers: dimension → score.
    pub fn survey_scores(&self) -> &BTreeMap<String, u8> {
        &self.scores
    }

    // ----- primitives -------------------------------------------------

    fn answer(&mut self) {
        if !self.answered {
            self.answered = true;
            self.out.push(Action::Answer);
        }
    }

    fn play(&mut self, prompts: Vec<String>, interruptible: bool) {
        self.answer();
        self.stop_playback();
        self.out.push(Action::Play {
            prompts,
            interruptible,
        });
        self.playing = true;
    }

    fn stop_playback(&mut self) {
        if self.playing {
            self.playing = false;
            self.out.push(Action::StopPlayback);
        }
    }

    fn start_timer(&mut self, secs: u32) {
        self.cancel_timer();
        let id = TimerId(self.next_timer);
        self.next_timer += 1;
        self.timer = Some(id);
        self.out.push(Action::StartTimer {
            id,
            after_ms: u64::from(secs) * 1000,
        });
    }

    fn cancel_timer(&mut self) {
        if let Some(id) = self.timer.take() {
            self.out.push(Action::CancelTimer(id));
        }
    }

    fn finish(&mut self, reason: HangupReason) {
        self.cancel_timer();
        self.playing = false;
        self.out.push(Action::Hangup { reason });
        self.finished = true;
        self.wait = Wait::Done;
    }

    fn push_typeahead(&mut self, key: char) {
        if self.typeahead.len() < MAX_TYPEAHEAD {
            self.typeahead.push_back(key);
        }
    }
}

#[cfg(test)]
#[path = "interpreter_tests.rs"]
mod tests;
