//! The per-call IVR state machine: pure and deterministic.
//!
//! Requirement: a call walks its flow (prompts, menus, digit collection,
//! office hours, queues, transfers, voicemail, survey, subflows) exactly as
//! the flow file says, and the walk is testable with virtual time. The
//! interpreter does no I/O and never reads the clock: the shell feeds it
//! [`Event`]s with the current [`Moment`] and an [`Environment`] (calendars,
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

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::flow::{Collect, Condition, Menu, NodeKind, Survey, TransferTarget};
use super::parse::{template_parts, TemplatePart};
use super::validate::FlowSet;

/// Nodes entered in a row without waiting before the call is ended.
pub const MAX_STEPS: u32 = 1000;
/// Deepest subflow nesting.
pub const MAX_DEPTH: usize = 16;
/// Type-ahead keys kept.
pub const MAX_TYPEAHEAD: usize = 32;

/// Wall-clock time, given by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment {
    /// Seconds since the Unix epoch (UTC).
    pub unix_secs: i64,
}

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
    fn is_open(&self, schedule: &str, unix_secs: i64) -> bool;
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
#[derive(Debug)]
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
            finished: false,
            out: Vec::new(),
        })
    }

    /// Enters the flow's entry node.
    pub fn start(&mut self, now: Moment, env: &dyn Environment) -> Vec<Action> {
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
    pub fn handle(&mut self, event: Event, now: Moment, env: &dyn Environment) -> Vec<Action> {
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
    /// `voicemail_secs`.
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

    // ----- walking ----------------------------------------------------

    /// Leaves the current node for `target` (`None`: end of the current
    /// flow) and walks until a node waits.
    fn goto(&mut self, target: Option<String>, now: Moment, env: &dyn Environment) {
        self.cancel_timer();
        self.stop_playback();
        let set = Arc::clone(&self.set);
        let mut next = target;
        let mut steps = 0u32;
        loop {
            let Some(name) = next.take() else {
                match self.frames.pop() {
                    Some(frame) => {
                        self.flow = frame.flow;
                        next = frame.resume;
                        continue;
                    }
                    None => return self.finish(HangupReason::FlowEnd),
                }
            };
            steps += 1;
            if steps > MAX_STEPS {
                return self.finish(HangupReason::Error);
            }
            let Some(flow) = set.get(&self.flow) else {
                return self.finish(HangupReason::Error);
            };
            let Some(node) = flow.nodes.get(&name) else {
                return self.finish(HangupReason::Error);
            };
            self.out.push(Action::Step {
                flow: flow.name.clone(),
                version: flow.version.clone(),
                node: name.clone(),
                kind: node.kind.name(),
            });
            self.path.push(if self.frames.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", flow.name)
            });
            self.node = name;
            let step = self.enter(&node.kind, now, env);
            match step {
                Next::Go(t) => next = t,
                Next::Wait | Next::Stop => return,
            }
        }
    }

    /// Does what entering a node does.
    fn enter(&mut self, kind: &NodeKind, now: Moment, env: &dyn Environment) -> Next {
        match kind {
            NodeKind::Play(p) => {
                self.play(p.prompts.clone(), p.interruptible);
                self.wait = Wait::Play {
                    interruptible: p.interruptible,
                };
                Next::Wait
            }
            NodeKind::Blacklist(b) => {
                if !env.is_blocked(&self.facts.tenant, &self.facts.caller) {
                    return Next::Go(b.next.clone());
                }
                self.out.push(Action::Blocked);
                self.typeahead.clear();
                match &b.prompt {
                    Some(p) => {
                        self.play(vec![p.clone()], false);
                        self.wait = Wait::BlockedPrompt;
                        Next::Wait
                    }
                    None => {
                        self.finish(HangupReason::Blocked);
                        Next::Stop
                    }
                }
            }
            NodeKind::Area(a) => {
                if let Some((code, name)) = env.area_of(&self.facts.caller) {
                    self.vars.insert("area_code".into(), code);
                    self.vars.insert("area_name".into(), name);
                }
                Next::Go(a.next.clone())
            }
            NodeKind::Hours(h) => Next::Go(Some(if env.is_open(&h.schedule, now.unix_secs) {
                h.open.clone()
            } else {
                h.closed.clone()
            })),
            NodeKind::Menu(m) => {
                self.wait = Wait::Menu;
                self.menu_offer(m, 1)
            }
            NodeKind::Collect(c) => {
                self.wait = Wait::Collect;
                self.collect_offer(c, 1)
            }
            NodeKind::Switch(s) => {
                let target = s
                    .cases
                    .iter()
                    .find(|c| self.matches(&c.condition, now, env))
                    .map_or(&s.default, |c| &c.next);
                Next::Go(Some(target.clone()))
            }
            NodeKind::Set(s) => {
                let values: Vec<(String, String)> = s
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect();
                self.vars.extend(values);
                Next::Go(s.next.clone())
            }
            NodeKind::Queue(q) => {
                self.typeahead.clear();
                self.out.push(Action::Enqueue {
                    group: q.group.clone(),
                    priority: q.priority,
                    max_wait_secs: q.max_wait_secs,
                });
                self.wait = Wait::Queue;
                Next::Wait
            }
            NodeKind::Transfer(t) => {
                self.typeahead.clear();
                self.out.push(Action::Transfer(t.target.clone()));
                self.wait = Wait::Transfer;
                Next::Wait
            }
            NodeKind::Voicemail(v) => {
                self.typeahead.clear();
                if v.prompts.is_empty() {
                    self.record(v.beep, v.max_secs, v.silence_secs);
                } else {
                    self.play(v.prompts.clone(), false);
                    self.wait = Wait::VoicemailPrompt;
                }
                Next::Wait
            }
            NodeKind::Survey(s) => {
                self.typeahead.clear();
                self.wait = Wait::Survey;
                self.replayed = false;
                match &s.intro {
                    Some(intro) => {
                        self.question = 0;
                        self.phase = Phase::Intro;
                        self.play(vec![intro.clone()], false);
                        Next::Wait
                    }
                    None => self.survey_ask(s, 0),
                }
            }
            NodeKind::Subflow(s) => {
                if self.frames.len() >= MAX_DEPTH || self.set.get(&s.flow).is_none() {
                    self.finish(HangupReason::Error);
                    return Next::Stop;
                }
                let entry = self.set.get(&s.flow).map(|f| f.entry.clone());
                self.frames.push(Frame {
                    flow: std::mem::replace(&mut self.flow, s.flow.clone()),
                    resume: s.next.clone(),
                });
                Next::Go(entry)
            }
            NodeKind::Hangup(h) => {
                self.typeahead.clear();
                match &h.prompt {
                    Some(p) => {
                        self.play(vec![p.clone()], false);
                        self.wait = Wait::HangupPrompt;
                        Next::Wait
                    }
                    None => {
                        self.finish(HangupReason::Normal);
                        Next::Stop
                    }
                }
            }
        }
    }

    fn record(&mut self, beep: bool, max_secs: u32, silence_secs: u32) {
        self.answer();
        self.out.push(Action::RecordVoicemail {
            beep,
            max_secs,
            silence_secs,
        });
        self.wait = Wait::Recording;
    }

    fn matches(&self, condition: &Condition, now: Moment, env: &dyn Environment) -> bool {
        let local = now
            .unix_secs
            .saturating_add(i64::from(env.utc_offset_minutes()) * 60);
        match condition {
            Condition::VarEquals { var, value } => self.vars.get(var) == Some(value),
            Condition::VarPrefix { var, prefix } => self
                .vars
                .get(var)
                .is_some_and(|v| v.starts_with(prefix.as_str())),
            Condition::CallerPrefix(p) => self.facts.caller.starts_with(p.as_str()),
            Condition::Called(c) => self.facts.called == *c,
            Condition::Time { start, end } => {
                let minute = local.rem_euclid(86_400) / 60;
                let (start, end) = (i64::from(*start), i64::from(*end));
                if start < end {
                    (start..end).contains(&minute)
                } else {
                    minute >= start || minute < end
                }
            }
            Condition::Weekdays(days) => {
                // 1970-01-01 was a Thursday (3 with Monday = 0).
                let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
                days.iter().any(|d| i64::from(*d) == weekday)
            }
        }
    }

    fn substitute(&self, template: &str) -> String {
        let Some(parts) = template_parts(template) else {
            return template.to_string();
        };
        let mut out = String::new();
        for part in parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Caller => out.push_str(&self.facts.caller),
                TemplatePart::Called => out.push_str(&self.facts.called),
                TemplatePart::Var(name) => {
                    out.push_str(self.vars.get(name).map(String::as_str).unwrap_or(""));
                }
            }
        }
        out
    }

    // ----- events -----------------------------------------------------

    fn on_key(&mut self, key: char) -> Next {
        match self.wait {
            Wait::Play { interruptible } => {
                self.push_typeahead(key);
                if interruptible {
                    self.stop_playback();
                    self.with_node(|_, kind| match kind {
                        NodeKind::Play(p) => Next::Go(p.next.clone()),
                        _ => Next::Wait,
                    })
                } else {
                    Next::Wait
                }
            }
            Wait::Menu => self.with_node(|me, kind| match kind {
                NodeKind::Menu(m) => match me.phase {
                    Phase::Notice => {
                        me.push_typeahead(key);
                        me.stop_playback();
                        me.menu_after_notice(m)
                    }
                    _ => me.menu_choice(m, key),
                },
                _ => Next::Wait,
            }),
            Wait::Collect => self.with_node(|me, kind| match kind {
                NodeKind::Collect(c) => match me.phase {
                    Phase::Notice => {
                        me.push_typeahead(key);
                        me.stop_playback();
                        me.collect_after_notice(c)
                    }
                    _ => {
                        me.stop_playback();
                        me.collect_key(c, key, true)
                    }
                },
                _ => Next::Wait,
            }),
            Wait::Survey => self.with_node(|me, kind| match kind {
                NodeKind::Survey(s) if matches!(me.phase, Phase::Prompt | Phase::Waiting) => {
                    me.survey_answer(s, key)
                }
                _ => Next::Wait,
            }),
            Wait::NotStarted
            | Wait::BlockedPrompt
            | Wait::Queue
            | Wait::Connected
            | Wait::Transfer
            | Wait::VoicemailPrompt
            | Wait::Recording
            | Wait::HangupPrompt
            | Wait::Done => Next::Wait,
        }
    }

    /// Runs `f` with the current node's kind (a missing node ends the call).
    fn with_node(&mut self, f: impl FnOnce(&mut Self, &NodeKind) -> Next) -> Next {
        let set = Arc::clone(&self.set);
        match set.get(&self.flow).and_then(|fl| fl.nodes.get(&self.node)) {
            Some(n) => f(self, &n.kind),
            None => {
                self.finish(HangupReason::Error);
                Next::Stop
            }
        }
    }

    fn on_prompt_end(&mut self) -> Next {
        match self.wait {
            Wait::Play { .. } => self.with_node(|_, kind| match kind {
                NodeKind::Play(p) => Next::Go(p.next.clone()),
                _ => Next::Wait,
            }),
            Wait::BlockedPrompt => {
                self.finish(HangupReason::Blocked);
                Next::Stop
            }
            Wait::HangupPrompt => {
                self.finish(HangupReason::Normal);
                Next::Stop
            }
            Wait::VoicemailPrompt => self.with_node(|me, kind| {
                if let NodeKind::Voicemail(v) = kind {
                    me.record(v.beep, v.max_secs, v.silence_secs);
                }
                Next::Wait
            }),
            Wait::Menu => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Menu(m), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(m.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Menu(m), Phase::Notice) => me.menu_after_notice(m),
                _ => Next::Wait,
            }),
            Wait::Collect => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Collect(c), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(c.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Collect(c), Phase::Notice) => me.collect_after_notice(c),
                _ => Next::Wait,
            }),
            Wait::Survey => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Survey(s), Phase::Intro) => me.survey_ask(s, 0),
                (NodeKind::Survey(s), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(s.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Survey(s), Phase::Thanks) => Next::Go(s.next.clone()),
                _ => Next::Wait,
            }),
            Wait::NotStarted
            | Wait::Queue
            | Wait::Connected
            | Wait::Transfer
            | Wait::Recording
            | Wait::Done => Next::Wait,
        }
    }

    fn on_timer(&mut self) -> Next {
        match (self.wait, self.phase) {
            (Wait::Menu, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Menu(m) => me.menu_fail(m, m.timeout_prompt.clone()),
                _ => Next::Wait,
            }),
            (Wait::Collect, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Collect(c) => me.collect_done(c, CollectEnd::Timeout),
                _ => Next::Wait,
            }),
            (Wait::Survey, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Survey(s) => me.survey_ask(s, me.question + 1),
                _ => Next::Wait,
            }),
            _ => Next::Wait,
        }
    }

    fn on_queue(&mut self, outcome: QueueOutcome) -> Next {
        if self.wait != Wait::Queue {
            return Next::Wait;
        }
        self.with_node(|me, kind| {
            let NodeKind::Queue(q) = kind else {
                return Next::Wait;
            };
            let target = match outcome {
                QueueOutcome::Answered { agent } => {
                    me.vars.insert("agent".into(), agent);
                    me.wait = Wait::Connected;
                    return Next::Wait;
                }
                QueueOutcome::Timeout => &q.on_timeout,
                QueueOutcome::Overflow => &q.on_overflow,
                QueueOutcome::Closed => &q.on_closed,
            };
            match target {
                Some(t) => Next::Go(Some(t.clone())),
                None => {
                    me.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            }
        })
    }

    fn on_agent_hung_up(&mut self) -> Next {
        if self.wait != Wait::Connected {
            return Next::Wait;
        }
        self.with_node(|me, kind| match kind {
            NodeKind::Queue(q) => match &q.after_agent {
                Some(t) => Next::Go(Some(t.clone())),
                None => {
                    me.finish(HangupReason::Normal);
                    Next::Stop
                }
            },
            _ => Next::Wait,
        })
    }

    fn on_transfer(&mut self, ok: bool) -> Next {
        if self.wait != Wait::Transfer {
            return Next::Wait;
        }
        if ok {
            self.cancel_timer();
            self.finished = true;
            self.wait = Wait::Done;
            return Next::Stop;
        }
        self.with_node(|me, kind| match kind {
            NodeKind::Transfer(t) => match &t.on_fail {
                Some(target) => Next::Go(Some(target.clone())),
                None => {
                    me.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            },
            _ => Next::Wait,
        })
    }

    fn after_voicemail(&mut self) -> Next {
        self.with_node(|_, kind| match kind {
            NodeKind::Voicemail(v) => Next::Go(v.next.clone()),
            _ => Next::Wait,
        })
    }

    // ----- menu -------------------------------------------------------

    fn menu_offer(&mut self, m: &Menu, offer: u32) -> Next {
        self.offer = offer;
        self.answer();
        if let Some(key) = self.typeahead.pop_front() {
            return self.menu_choice(m, key);
        }
        self.phase = Phase::Prompt;
        self.play(m.prompts.clone(), true);
        Next::Wait
    }

    fn menu_choice(&mut self, m: &Menu, key: char) -> Next {
        self.cancel_timer();
        self.stop_playback();
        match m.options.get(&key) {
            Some(target) => {
                self.vars
                    .insert(format!("menu_{}", self.node), key.to_string());
                Next::Go(Some(target.clone()))
            }
            None => {
                self.typeahead.clear();
                self.menu_fail(m, m.invalid_prompt.clone())
            }
        }
    }

    fn menu_fail(&mut self, m: &Menu, notice: Option<String>) -> Next {
        match notice {
            Some(p) => {
                self.phase = Phase::Notice;
                self.play(vec![p], true);
                Next::Wait
            }
            None => self.menu_after_notice(m),
        }
    }

    fn menu_after_notice(&mut self, m: &Menu) -> Next {
        if self.offer >= m.retries {
            self.exhausted(m.fallback.clone())
        } else {
            self.menu_offer(m, self.offer + 1)
        }
    }

    fn exhausted(&mut self, fallback: Option<String>) -> Next {
        match fallback {
            Some(f) => Next::Go(Some(f)),
            None => {
                self.finish(HangupReason::NoInput);
                Next::Stop
            }
        }
    }

    // ----- collect ----------------------------------------------------

    fn collect_offer(&mut self, c: &Collect, offer: u32) -> Next {
        self.offer = offer;
        self.digits.clear();
        self.answer();
        if self.typeahead.is_empty() {
            self.phase = Phase::Prompt;
            self.play(c.prompts.clone(), true);
            return Next::Wait;
        }
        self.phase = Phase::Waiting;
        while let Some(key) = self.typeahead.pop_front() {
            match self.collect_key(c, key, false) {
                Next::Wait => {}
                other => return other,
            }
            if self.phase != Phase::Waiting {
                // Invalid input: a notice plays, or a new offer began.
                return Next::Wait;
            }
        }
        self.start_timer(c.timeout_secs);
        Next::Wait
    }

    /// One key of input; `arm` restarts the inter-digit timer.
    fn collect_key(&mut self, c: &Collect, key: char, arm: bool) -> Next {
        if Some(key) == c.terminator {
            return self.collect_done(c, CollectEnd::Terminator);
        }
        self.digits.push(key);
        if self.digits.chars().count() >= c.max_digits as usize {
            return self.collect_done(c, CollectEnd::Max);
        }
        self.phase = Phase::Waiting;
        if arm {
            self.start_timer(c.timeout_secs);
        }
        Next::Wait
    }

    fn collect_done(&mut self, c: &Collect, end: CollectEnd) -> Next {
        self.cancel_timer();
        self.stop_playback();
        let count = self.digits.chars().count();
        let valid = count >= c.min_digits as usize
            && count <= c.max_digits as usize
            && c.pattern
                .as_ref()
                .is_none_or(|p| p.0.is_match(&self.digits));
        if valid {
            let digits = std::mem::take(&mut self.digits);
            self.vars.insert(c.var.clone(), digits);
            return Next::Go(c.next.clone());
        }
        self.typeahead.clear();
        let notice = if end == CollectEnd::Timeout && self.digits.is_empty() {
            c.timeout_prompt
                .clone()
                .or_else(|| c.invalid_prompt.clone())
        } else {
            c.invalid_prompt.clone()
        };
        self.digits.clear();
        match notice {
            Some(p) => {
                self.phase = Phase::Notice;
                self.play(vec![p], true);
                Next::Wait
            }
            None => self.collect_after_notice(c),
        }
    }

    fn collect_after_notice(&mut self, c: &Collect) -> Next {
        if self.offer >= c.retries {
            self.exhausted(c.fallback.clone())
        } else {
            self.collect_offer(c, self.offer + 1)
        }
    }

    // ----- survey -----------------------------------------------------

    fn survey_ask(&mut self, s: &Survey, index: usize) -> Next {
        self.cancel_timer();
        self.replayed = false;
        self.question = index;
        match s.questions.get(index) {
            Some(q) => {
                self.phase = Phase::Prompt;
                self.play(vec![q.prompt.clone()], true);
                Next::Wait
            }
            None => match &s.thanks {
                Some(t) => {
                    self.phase = Phase::Thanks;
                    self.play(vec![t.clone()], false);
                    Next::Wait
                }
                None => Next::Go(s.next.clone()),
            },
        }
    }

    fn survey_answer(&mut self, s: &Survey, key: char) -> Next {
        self.cancel_timer();
        self.stop_playback();
        let Some(q) = s.questions.get(self.question) else {
            return Next::Go(s.next.clone());
        };
        if let Some(score) = q.keys.get(&key) {
            self.scores.insert(q.dimension.clone(), *score);
            self.out.push(Action::SurveyScore {
                dimension: q.dimension.clone(),
                score: *score,
                key,
            });
            return self.survey_ask(s, self.question + 1);
        }
        if self.replayed {
            return self.survey_ask(s, self.question + 1);
        }
        self.replayed = true;
        self.phase = Phase::Prompt;
        self.play(vec![q.prompt.clone()], true);
        Next::Wait
    }
}

#[cfg(test)]
#[path = "interpreter_tests.rs"]
mod tests;
