//! The IVR flow model and its file format (`ivr-flows/*.toml`).
//!
//! Requirement: call flows (welcome, block list, area, office hours, menus,
//! digit collection, queues, transfers, voicemail, satisfaction survey) are
//! described by admins in readable files, one flow per file, and every
//! mistake is reported with file, line and node.
//!
//! # Format
//!
//! One flow per file. Top-level keys:
//!
//! | key           | type            | required | meaning |
//! |---------------|-----------------|----------|---------|
//! | `name`        | string          | yes      | unique flow name, `[A-Za-z0-9_-]+` (subflows refer to it) |
//! | `description` | string          | no       | free text (shown in the graph) |
//! | `dids`        | list of strings | no       | called numbers this flow answers (digits, optional leading `+`); a subflow-only file has none |
//! | `tenant`      | string          | no       | owning operations centre (default `default`): whose block list, voicemail folder and outbound trunk the flow's calls use |
//! | `entry`       | string          | yes      | first node |
//! | `nodes`       | table           | yes      | `[nodes.NAME]` tables, names `[A-Za-z0-9_-]+` |
//!
//! Every node has `kind`; the other keys depend on it. "→" marks a
//! transition (the name of another node in the same flow). A node whose
//! optional `next` is absent *ends* the flow: a subflow returns to its
//! caller, a top-level flow hangs up (reason `flow-end`). Unknown keys are
//! errors. Timeouts are whole seconds. Keys are `0`-`9`, `*`, `#`.
//!
//! | kind        | keys (default) | waits for |
//! |-------------|----------------|-----------|
//! | `play`      | `prompts` (required, non-empty), `interruptible` (false), `next` → | the prompts to end |
//! | `blacklist` | `prompt` (none), `next` → | — (blocked callers hear `prompt` and are hung up, reason `blocked`) |
//! | `area`      | `next` → | — (sets `area_code`, `area_name` when the caller's area is known) |
//! | `hours`     | `schedule` (required), `open` → (required), `closed` → (required) | — |
//! | `menu`      | `prompts` (required), `options` (required table key → node), `timeout_secs` (5), `retries` (3, offers in total, 1-10), `invalid_prompt`, `timeout_prompt`, `fallback` → | a key |
//! | `collect`   | `prompts` (required), `var` (required), `min_digits` (1), `max_digits` (20, 1-64), `terminator` ("#"; "" for none), `timeout_secs` (5, first and inter-digit), `pattern` (regex on the digits), `retries` (3), `invalid_prompt`, `timeout_prompt`, `next` →, `fallback` → | keys |
//! | `switch`    | `case` (list of tables, required), `default` → (required) | — |
//! | `set`       | `vars` (required table name → string), `next` → | — |
//! | `queue`     | `group` (required), `priority` (0, 0-255, higher first), `max_wait_secs` (group's), `on_timeout` →, `on_overflow` →, `on_closed` →, `after_agent` → | the queue |
//! | `transfer`  | exactly one of `number` (with optional `trunk`), `agent`, `group`; `on_fail` → | the transfer |
//! | `voicemail` | `prompts` (none), `beep` (true), `max_secs` (120, 1-3600), `silence_secs` (5, 1-60), `next` → | the recording |
//! | `survey`    | `question` (list of tables, required), `intro`, `thanks`, `timeout_secs` (5), `next` → | keys |
//! | `subflow`   | `flow` (required), `next` → | the called flow |
//! | `http`      | `url` (required), `method` ("GET"), `headers`, `body` (POST), `timeout_secs` (3, 1-30), `retries` (1, 0-3), `set` (var → JSON path), `hold_prompt`, `next` → (2xx), `on_status` (status or class → node), `on_timeout` →, `on_error` → | the web service ([`super::lookup`]) |
//! | `say`       | `value` (required template), `as` (required: digits, number, date, amount), `before`, `after` (prompts), `interruptible` (false), `next` →, `on_invalid` → | the spoken figure ([`super::say`]) |
//! | `hangup`    | `prompt` (none) | the prompt |
//!
//! Transitions without a target hang up: a menu or collect whose retries are
//! used up without `fallback` hangs up (reason `no-input`); a queue ending
//! without the matching `on_*` or a failed transfer without `on_fail` hangs
//! up (reason `unavailable`); after the agent hangs up without `after_agent`
//! the call ends (reason `normal`).
//!
//! Menu `options` keys are single keys (`"1" = "consult"`). A menu offers its
//! prompts, waits `timeout_secs` after they end; an unknown key plays
//! `invalid_prompt`, silence plays `timeout_prompt`, then the menu is offered
//! again, `retries` offers in total, then → `fallback`. The last choice is
//! stored in variable `menu_NODE`.
//!
//! Collect stores the digits (without terminator) in `var`. Input ends on
//! the terminator, on `max_digits`, or when `timeout_secs` pass without a
//! key; it is valid with at least `min_digits` and, if given, a full match
//! of `pattern` (write `^…$` anchors yourself).
//!
//! Switch `case` tables are tried in order, the first match wins; each has
//! `next` → and exactly one condition:
//! `var` + `equals` (variable equals the string), `var` + `prefix`
//! (variable starts with it), `caller_prefix`, `called` (the called number
//! equals), `time = "HH:MM-HH:MM"` (local time of day, end exclusive, may
//! wrap midnight, e.g. `"22:00-06:00"`), `weekdays = ["sat", "sun"]`
//! (`mon` … `sun`, local). An unset variable matches nothing.
//!
//! Set values are literal strings in which `{caller}`, `{called}` and
//! `{var:NAME}` are replaced (an unset variable becomes empty). Variable
//! names are `[A-Za-z0-9_]+`; `caller` and `called` are read-only.
//!
//! Survey `question` tables: `dimension` (the first three default to
//! `attitude`, `efficiency`, `resolution`), `prompt` (required), `keys`
//! (required table key → score 0-100). A known key scores, an unknown key
//! replays the question once, silence skips the dimension.
//!
//! Keys pressed while a prompt plays are kept (type-ahead, up to 32) for
//! the next menu or collect, which then skips its prompt; an
//! `interruptible` play stops at the first key. Menu, collect and survey
//! prompts are always interruptible. Queue, transfer, voicemail, survey and
//! hangup nodes drop the type-ahead.
//!
//! The flow's `version` is the first 12 hex digits of the SHA-256 of the file.
//!
//! This file defines the model only; [`super::parse`] reads the format into
//! it ([`Flow::parse`], [`Flow::load`]) and this file imports nothing from
//! there.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{FlowError, Problem};
use super::lookup::{Http, StatusMatch};
use super::say::SayAs;

/// One IVR flow (one file).
#[derive(Debug, Clone)]
pub struct Flow {
    /// Unique flow name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Called numbers this flow answers.
    pub dids: Vec<String>,
    /// Owning tenant, if given.
    pub tenant: Option<String>,
    /// First node.
    pub entry: String,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// First 12 hex digits of the SHA-256 of the file bytes.
    pub version: String,
    /// The file this came from.
    pub path: PathBuf,
    /// Line of every dotted key seen while parsing (`nodes.menu.options.1`).
    pub(crate) lines: BTreeMap<String, usize>,
}

impl Flow {
    /// 1-based line of a dotted key (`nodes.menu.options.1`), falling back
    /// to the nearest enclosing key that was seen.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let mut key = key;
        loop {
            if let Some(line) = self.lines.get(key) {
                return Some(*line);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }

    /// An error in this flow, located at `key` (dotted) inside `node`.
    pub(crate) fn error(&self, node: Option<&str>, key: &str, problem: Problem) -> FlowError {
        FlowError {
            path: self.path.clone(),
            line: self.line_of(key),
            node: node.map(str::to_string),
            problem,
        }
    }

    /// Nodes in file order (by line, then name).
    pub fn nodes_in_file_order(&self) -> Vec<(&str, &Node)> {
        let mut out: Vec<(&str, &Node)> = self.nodes.iter().map(|(k, v)| (k.as_str(), v)).collect();
        out.sort_by_key(|(name, node)| (node.line, *name));
        out
    }
}

/// One node of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line of the node's table.
    pub line: usize,
    /// What the node does.
    pub kind: NodeKind,
}

/// A node's behaviour; one variant per `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `play`
    Play(Play),
    /// `blacklist`
    Blacklist(Blacklist),
    /// `area`
    Area(Area),
    /// `hours`
    Hours(Hours),
    /// `menu`
    Menu(Menu),
    /// `collect`
    Collect(Collect),
    /// `switch`
    Switch(Switch),
    /// `set`
    Set(SetVars),
    /// `queue`
    Queue(Queue),
    /// `transfer`
    Transfer(Transfer),
    /// `voicemail`
    Voicemail(Voicemail),
    /// `survey`
    Survey(Survey),
    /// `subflow`
    Subflow(Subflow),
    /// `hangup`
    Hangup(Hangup),
    /// `http` (issue 18 §2)
    Http(Http),
    /// `say` (issue 18 §2)
    Say(Say),
}

/// The `kind` names, in documentation order.
pub const KINDS: [&str; 16] = [
    "play",
    "blacklist",
    "area",
    "hours",
    "menu",
    "collect",
    "switch",
    "set",
    "queue",
    "transfer",
    "voicemail",
    "survey",
    "subflow",
    "hangup",
    "http",
    "say",
];

/// `play`: prompts, then next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// Prompt names.
    pub prompts: Vec<String>,
    /// A key stops the prompts (and is kept as type-ahead).
    pub interruptible: bool,
    /// Next node; none ends the flow.
    pub next: Option<String>,
}

/// `blacklist`: blocked callers hear `prompt` and are hung up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blacklist {
    /// Played to blocked callers before hanging up.
    pub prompt: Option<String>,
    /// Next node for callers not blocked.
    pub next: Option<String>,
}

/// `area`: sets `area_code` and `area_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    /// Next node.
    pub next: Option<String>,
}

/// `hours`: branch on a named calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Calendar name.
    pub schedule: String,
    /// While open.
    pub open: String,
    /// While closed.
    pub closed: String,
}

/// `menu`: one key chooses an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// Prompts offering the options.
    pub prompts: Vec<String>,
    /// Key → node.
    pub options: BTreeMap<char, String>,
    /// Seconds to wait after the prompts.
    pub timeout_secs: u32,
    /// Offers in total.
    pub retries: u32,
    /// Played on an unknown key.
    pub invalid_prompt: Option<String>,
    /// Played on silence.
    pub timeout_prompt: Option<String>,
    /// After the last offer failed; none hangs up.
    pub fallback: Option<String>,
}

/// A compiled `pattern`, compared by its source text.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// `collect`: digits into a variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    /// Prompts asking for the digits.
    pub prompts: Vec<String>,
    /// Variable receiving the digits.
    pub var: String,
    /// Fewest digits accepted.
    pub min_digits: u32,
    /// Input ends at this many digits.
    pub max_digits: u32,
    /// Key ending input early, if any.
    pub terminator: Option<char>,
    /// First-digit and inter-digit timeout.
    pub timeout_secs: u32,
    /// The digits must match.
    pub pattern: Option<Pattern>,
    /// Offers in total.
    pub retries: u32,
    /// Played on invalid input.
    pub invalid_prompt: Option<String>,
    /// Played when nothing was entered.
    pub timeout_prompt: Option<String>,
    /// On success; none ends the flow.
    pub next: Option<String>,
    /// After the last offer failed; none hangs up.
    pub fallback: Option<String>,
}

/// `switch`: first matching case wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Cases in order.
    pub cases: Vec<Case>,
    /// When no case matches.
    pub default: String,
}

/// One switch case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The test.
    pub condition: Condition,
    /// Where a match goes.
    pub next: String,
}

/// A switch condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Variable equals the value.
    VarEquals {
        /// Variable.
        var: String,
        /// Value.
        value: String,
    },
    /// Variable starts with the prefix.
    VarPrefix {
        /// Variable.
        var: String,
        /// Prefix.
        prefix: String,
    },
    /// Caller number starts with the prefix.
    CallerPrefix(String),
    /// Called number equals.
    Called(String),
    /// Local time of day in `[start, end)` minutes after midnight (wraps
    /// midnight when `start > end`).
    Time {
        /// Minutes after midnight, inclusive.
        start: u16,
        /// Minutes after midnight, exclusive.
        end: u16,
    },
    /// Local weekday in the set (0 = Monday … 6 = Sunday).
    Weekdays(Vec<u8>),
}

impl Condition {
    /// Short human text, e.g. `area_code = 0571`, `time 08:00-12:00`.
    pub fn describe(&self) -> String {
        match self {
            Condition::VarEquals { var, value } => format!("{var} = {value}"),
            Condition::VarPrefix { var, prefix } => format!("{var} starts {prefix}"),
            Condition::CallerPrefix(p) => format!("caller starts {p}"),
            Condition::Called(c) => format!("called = {c}"),
            Condition::Time { start, end } => format!(
                "time {:02}:{:02}-{:02}:{:02}",
                start / 60,
                start % 60,
                end / 60,
                end % 60
            ),
            Condition::Weekdays(days) => {
                let names: Vec<&str> = days
                    .iter()
                    .filter_map(|d| WEEKDAYS.get(usize::from(*d)).copied())
                    .collect();
                format!("weekdays {}", names.join(","))
            }
        }
    }
}

/// Weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `set`: assign variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetVars {
    /// Name → template (with `{caller}`, `{called}`, `{var:NAME}`).
    pub vars: BTreeMap<String, String>,
    /// Next node.
    pub next: Option<String>,
}

/// `queue`: wait for an agent of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Skill group id.
    pub group: String,
    /// 0-255, higher first.
    pub priority: u8,
    /// Override of the group's maximum wait.
    pub max_wait_secs: Option<u32>,
    /// Wait ended unanswered.
    pub on_timeout: Option<String>,
    /// Queue full.
    pub on_overflow: Option<String>,
    /// Nobody logged in.
    pub on_closed: Option<String>,
    /// After the agent hung up, caller still on line.
    pub after_agent: Option<String>,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    /// An agent (SIP user).
    Agent(String),
    /// A skill group (queued with default settings).
    Group(String),
    /// An external number, through a trunk (none: the tenant's default).
    Number {
        /// Number to dial.
        number: String,
        /// Trunk name.
        trunk: Option<String>,
    },
}

/// A number hotline may dial for an agent, a callback or a phone's
/// transfer key: digits, with an optional leading `+`, at most 32
/// characters.
pub fn dialable(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    !digits.is_empty() && n.len() <= 32 && digits.chars().all(|c| c.is_ascii_digit())
}

/// `transfer`: hand the call over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Target.
    pub target: TransferTarget,
    /// When the transfer fails; none hangs up.
    pub on_fail: Option<String>,
}

/// `voicemail`: record a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voicemail {
    /// Played before recording.
    pub prompts: Vec<String>,
    /// Beep before recording.
    pub beep: bool,
    /// Longest message.
    pub max_secs: u32,
    /// Silence that ends the message.
    pub silence_secs: u32,
    /// Afterwards; none hangs up.
    pub next: Option<String>,
}

/// `survey`: satisfaction questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Played first.
    pub intro: Option<String>,
    /// Played last.
    pub thanks: Option<String>,
    /// Wait per question after its prompt.
    pub timeout_secs: u32,
    /// Questions in order.
    pub questions: Vec<Question>,
    /// Afterwards; none ends the flow.
    pub next: Option<String>,
}

/// One survey question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// What is scored.
    pub dimension: String,
    /// The question.
    pub prompt: String,
    /// Key → score.
    pub keys: BTreeMap<char, u8>,
}

/// `subflow`: run another flow, then come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subflow {
    /// Flow name.
    pub flow: String,
    /// After the subflow returns.
    pub next: Option<String>,
}

/// `hangup`: optional prompt, then hang up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    /// Played first.
    pub prompt: Option<String>,
}

/// `say`: read a figure aloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    /// Template of the value (`{var:ticket_no}`, or a literal).
    pub value: String,
    /// How it is read.
    pub how: SayAs,
    /// Played first.
    pub before: Vec<String>,
    /// Played after the figure.
    pub after: Vec<String>,
    /// A key stops it (and is kept as type-ahead).
    pub interruptible: bool,
    /// Afterwards; none ends the flow.
    pub next: Option<String>,
    /// When the value cannot be read that way (else `next`, silently).
    pub on_invalid: Option<String>,
}

/// Which transition an [`Edge`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    /// `next`
    Next,
    /// Menu option key.
    Option(char),
    /// `fallback`
    Fallback,
    /// Hours open.
    Open,
    /// Hours closed.
    Closed,
    /// Switch case (0-based index).
    Case(usize, Condition),
    /// Switch default.
    Default,
    /// Queue wait ended.
    OnTimeout,
    /// Queue full.
    OnOverflow,
    /// Queue closed.
    OnClosed,
    /// Transfer failed.
    OnFail,
    /// After the agent hung up.
    AfterAgent,
    /// An `http` answer with this status or class.
    Status(StatusMatch),
    /// An `http` request that failed.
    OnError,
    /// A `say` value that cannot be read.
    OnInvalid,
}

impl EdgeKind {
    /// The transition as named in error messages (`option "1"`, `next`).
    pub fn describe(&self) -> String {
        match self {
            EdgeKind::Option(k) => format!("option \"{k}\""),
            EdgeKind::Case(i, _) => format!("case {}", i + 1),
            EdgeKind::Status(m) => format!("on_status \"{}\"", m.key()),
            other => other.key(),
        }
    }

    /// Dotted key relative to the node (`options.1`, `case[0].next`).
    pub fn key(&self) -> String {
        match self {
            EdgeKind::Next => "next".into(),
            EdgeKind::Option(k) => format!("options.{k}"),
            EdgeKind::Fallback => "fallback".into(),
            EdgeKind::Open => "open".into(),
            EdgeKind::Closed => "closed".into(),
            EdgeKind::Case(i, _) => format!("case[{i}].next"),
            EdgeKind::Default => "default".into(),
            EdgeKind::OnTimeout => "on_timeout".into(),
            EdgeKind::OnOverflow => "on_overflow".into(),
            EdgeKind::OnClosed => "on_closed".into(),
            EdgeKind::OnFail => "on_fail".into(),
            EdgeKind::AfterAgent => "after_agent".into(),
            EdgeKind::Status(m) => format!("on_status.{}", m.key()),
            EdgeKind::OnError => "on_error".into(),
            EdgeKind::OnInvalid => "on_invalid".into(),
        }
    }

    /// Short graph label (`1`, `open`, `after agent`).
    pub fn label(&self) -> String {
        match self {
            EdgeKind::Next => String::new(),
            EdgeKind::Option(k) => k.to_string(),
            EdgeKind::Fallback => "fallback".into(),
            EdgeKind::Open => "open".into(),
            EdgeKind::Closed => "closed".into(),
            EdgeKind::Case(_, c) => c.describe(),
            EdgeKind::Default => "default".into(),
            EdgeKind::OnTimeout => "timeout".into(),
            EdgeKind::OnOverflow => "overflow".into(),
            EdgeKind::OnClosed => "closed".into(),
            EdgeKind::OnFail => "fail".into(),
            EdgeKind::AfterAgent => "after agent".into(),
            EdgeKind::Status(m) => m.key(),
            EdgeKind::OnError => "error".into(),
            EdgeKind::OnInvalid => "invalid".into(),
        }
    }
}

/// One transition out of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<'a> {
    /// Which transition.
    pub kind: EdgeKind,
    /// Target node name.
    pub target: &'a str,
}

impl NodeKind {
    /// The `kind` string.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Play(_) => "play",
            NodeKind::Blacklist(_) => "blacklist",
            NodeKind::Area(_) => "area",
            NodeKind::Hours(_) => "hours",
            NodeKind::Menu(_) => "menu",
            NodeKind::Collect(_) => "collect",
            NodeKind::Switch(_) => "switch",
            NodeKind::Set(_) => "set",
            NodeKind::Queue(_) => "queue",
            NodeKind::Transfer(_) => "transfer",
            NodeKind::Voicemail(_) => "voicemail",
            NodeKind::Survey(_) => "survey",
            NodeKind::Subflow(_) => "subflow",
            NodeKind::Hangup(_) => "hangup",
            NodeKind::Http(_) => "http",
            NodeKind::Say(_) => "say",
        }
    }

    /// Whether entering this node waits for the caller or the network
    /// (so a loop through it cannot spin). `subflow` is judged by the
    /// called flow, in validation; `say` does not count (a value it
    /// cannot read goes on at once).
    pub fn waits(&self) -> bool {
        !matches!(
            self,
            NodeKind::Blacklist(_)
                | NodeKind::Area(_)
                | NodeKind::Hours(_)
                | NodeKind::Switch(_)
                | NodeKind::Set(_)
                | NodeKind::Subflow(_)
                | NodeKind::Say(_)
        )
    }

    /// Every transition, in a stable order.
    pub fn edges(&self) -> Vec<Edge<'_>> {
        fn opt<'a>(out: &mut Vec<Edge<'a>>, kind: EdgeKind, target: &'a Option<String>) {
            if let Some(t) = target {
                out.push(Edge { kind, target: t });
            }
        }
        let mut out = Vec::new();
        match self {
            NodeKind::Play(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Blacklist(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Area(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Hours(n) => {
                out.push(Edge {
                    kind: EdgeKind::Open,
                    target: &n.open,
                });
                out.push(Edge {
                    kind: EdgeKind::Closed,
                    target: &n.closed,
                });
            }
            NodeKind::Menu(n) => {
                for (k, t) in &n.options {
                    out.push(Edge {
                        kind: EdgeKind::Option(*k),
                        target: t,
                    });
                }
                opt(&mut out, EdgeKind::Fallback, &n.fallback);
            }
            NodeKind::Collect(n) => {
                opt(&mut out, EdgeKind::Next, &n.next);
                opt(&mut out, EdgeKind::Fallback, &n.fallback);
            }
            NodeKind::Switch(n) => {
                for (i, c) in n.cases.iter().enumerate() {
                    out.push(Edge {
                        kind: EdgeKind::Case(i, c.condition.clone()),
                        target: &c.next,
                    });
                }
                out.push(Edge {
                    kind: EdgeKind::Default,
                    target: &n.default,
                });
            }
            NodeKind::Set(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Queue(n) => {
                opt(&mut out, EdgeKind::OnTimeout, &n.on_timeout);
                opt(&mut out, EdgeKind::OnOverflow, &n.on_overflow);
                opt(&mut out, EdgeKind::OnClosed, &n.on_closed);
                opt(&mut out, EdgeKind::AfterAgent, &n.after_agent);
            }
            NodeKind::Transfer(n) => opt(&mut out, EdgeKind::OnFail, &n.on_fail),
            NodeKind::Voicemail(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Survey(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Subflow(n) => opt(&mut out, EdgeKind::Next, &n.next),
            NodeKind::Hangup(_) => {}
            NodeKind::Http(n) => {
                opt(&mut out, EdgeKind::Next, &n.next);
                for (m, t) in &n.on_status {
                    out.push(Edge {
                        kind: EdgeKind::Status(*m),
                        target: t,
                    });
                }
                opt(&mut out, EdgeKind::OnTimeout, &n.on_timeout);
                opt(&mut out, EdgeKind::OnError, &n.on_error);
            }
            NodeKind::Say(n) => {
                opt(&mut out, EdgeKind::Next, &n.next);
                opt(&mut out, EdgeKind::OnInvalid, &n.on_invalid);
            }
        }
        out
    }

    /// Every prompt name the node plays, with its dotted key relative to the
    /// node (`prompts[0]`, `question[1].prompt`).
    pub fn prompts(&self) -> Vec<(String, &str)> {
        fn list<'a>(out: &mut Vec<(String, &'a str)>, key: &str, ps: &'a [String]) {
            for (i, p) in ps.iter().enumerate() {
                out.push((format!("{key}[{i}]"), p));
            }
        }
        fn one<'a>(out: &mut Vec<(String, &'a str)>, key: &str, p: &'a Option<String>) {
            if let Some(p) = p {
                out.push((key.to_string(), p));
            }
        }
        let mut out = Vec::new();
        match self {
            NodeKind::Play(n) => list(&mut out, "prompts", &n.prompts),
            NodeKind::Blacklist(n) => one(&mut out, "prompt", &n.prompt),
            NodeKind::Menu(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "timeout_prompt", &n.timeout_prompt);
            }
            NodeKind::Collect(n) => {
                list(&mut out, "prompts", &n.prompts);
                one(&mut out, "invalid_prompt", &n.invalid_prompt);
                one(&mut out, "timeout_prompt", &n.timeout_prompt);
            }
            NodeKind::Voicemail(n) => list(&mut out, "prompts", &n.prompts),
            NodeKind::Survey(n) => {
                one(&mut out, "intro", &n.intro);
                for (i, q) in n.questions.iter().enumerate() {
                    out.push((format!("question[{i}].prompt"), &q.prompt));
                }
                one(&mut out, "thanks", &n.thanks);
            }
            NodeKind::Hangup(n) => one(&mut out, "prompt", &n.prompt),
            NodeKind::Http(n) => one(&mut out, "hold_prompt", &n.hold_prompt),
            NodeKind::Say(n) => {
                list(&mut out, "before", &n.before);
                for p in n.how.prompts() {
                    out.push(("as".to_string(), p));
                }
                list(&mut out, "after", &n.after);
            }
            NodeKind::Area(_)
            | NodeKind::Hours(_)
            | NodeKind::Switch(_)
            | NodeKind::Set(_)
            | NodeKind::Queue(_)
            | NodeKind::Transfer(_)
            | NodeKind::Subflow(_) => {}
        }
        out
    }
}
