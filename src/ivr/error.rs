//! Errors in IVR flow files, as admins read them.
//!
//! Requirement: every problem in `ivr-flows/*.toml` names the file, the line
//! and the node at fault, and all problems are reported at once. A
//! [`FlowError`] displays as
//!
//! ```text
//! ivr-flows/12345.toml:42: node "menu": option "7" goes to unknown node "complain"
//! ```
//!
//! (`file:line: ` then `node "NAME": ` when the problem is inside a node, then
//! the [`Problem`]). The message texts are stable: they are listed in
//! `docs/ivr.md`.

use std::fmt;
use std::path::PathBuf;

/// One problem in one flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    /// File at fault.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Node at fault, when the problem is inside a node.
    pub node: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        if let Some(node) = &self.node {
            write!(f, " node \"{node}\":")?;
        }
        write!(f, " {}", self.problem)
    }
}

impl std::error::Error for FlowError {}

/// What is wrong; the text after `file:line: node "x": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(String),
    /// TOML syntax error (the line is in the [`FlowError`]).
    #[error("TOML syntax error: {0}")]
    Syntax(String),
    /// A key the format does not know (usually a typo).
    #[error("unknown key \"{key}\" (expected one of: {expected})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Comma-separated keys allowed here.
        expected: String,
    },
    /// `kind` names no node kind.
    #[error("unknown node kind \"{kind}\" (expected one of: {expected})")]
    UnknownKind {
        /// The kind as written.
        kind: String,
        /// Comma-separated kinds.
        expected: String,
    },
    /// A required key is absent.
    #[error("missing required key \"{0}\"")]
    MissingKey(String),
    /// A key has the wrong TOML type.
    #[error("\"{key}\" must be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// E.g. "a string", "a list of strings".
        expected: &'static str,
    },
    /// A list or table that must have entries is empty.
    #[error("\"{0}\" must not be empty")]
    Empty(String),
    /// A number outside its range.
    #[error("\"{key}\" = {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value as written.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A flow or node name with characters outside `[A-Za-z0-9_-]`.
    #[error("{what} \"{name}\" may only contain A-Z, a-z, 0-9, _ and -")]
    BadName {
        /// "flow name" or "node name".
        what: &'static str,
        /// The name as written.
        name: String,
    },
    /// A variable name with characters outside `[A-Za-z0-9_]`.
    #[error("variable name \"{0}\" may only contain A-Z, a-z, 0-9 and _")]
    BadVarName(String),
    /// A flow tries to set `caller` or `called`.
    #[error("variable \"{0}\" is read-only")]
    ReadOnlyVar(String),
    /// A `set` value with a placeholder other than `{caller}`, `{called}`, `{var:NAME}`.
    #[error(
        "value \"{value}\" has a bad placeholder (use {{caller}}, {{called}} or {{var:NAME}})"
    )]
    BadPlaceholder {
        /// The value as written.
        value: String,
    },
    /// A called number that is not digits (with an optional leading `+`).
    #[error("DID \"{0}\" must be digits, optionally after a +")]
    BadDid(String),
    /// A key (menu option, terminator, survey key) that is not one DTMF key.
    #[error("{what} \"{key}\" is not one of the keys 0-9, * or #")]
    BadDtmf {
        /// "option", "terminator", "survey key".
        what: &'static str,
        /// The key as written.
        key: String,
    },
    /// `min_digits` above `max_digits`.
    #[error("min_digits = {min} is greater than max_digits = {max}")]
    MinOverMax {
        /// min_digits.
        min: i64,
        /// max_digits.
        max: i64,
    },
    /// A collect `pattern` that does not compile.
    #[error("pattern \"{pattern}\" is not a valid regular expression: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// The regex crate's complaint, on one line.
        reason: String,
    },
    /// A switch `time` that is not `HH:MM-HH:MM`.
    #[error("time \"{0}\" is not a range HH:MM-HH:MM")]
    BadTime(String),
    /// A switch `time` whose start equals its end.
    #[error("time \"{0}\" is an empty range (start equals end)")]
    EmptyTime(String),
    /// A weekday other than mon..sun.
    #[error("weekday \"{0}\" is not one of mon, tue, wed, thu, fri, sat, sun")]
    BadWeekday(String),
    /// A switch case with zero or several conditions.
    #[error("case {index} needs exactly one condition (var + equals, var + prefix, caller_prefix, called, time or weekdays), found {found}")]
    CaseCondition {
        /// 1-based case number.
        index: usize,
        /// What was found, e.g. "none" or "time, weekdays".
        found: String,
    },
    /// A transfer with zero or several targets.
    #[error("transfer needs exactly one of \"number\", \"agent\" or \"group\", found {0}")]
    TransferTarget(String),
    /// `trunk` given for a transfer that is not to a number.
    #[error("\"trunk\" only applies to a transfer to a \"number\"")]
    TrunkWithoutNumber,
    /// A survey question without a dimension, past the three defaults.
    #[error("question {0} needs a \"dimension\" (only the first three default to attitude, efficiency, resolution)")]
    NoDimension(usize),
    /// Two survey questions score the same dimension.
    #[error("dimension \"{0}\" is asked twice")]
    DuplicateDimension(String),
    /// `entry` names no node.
    #[error("entry \"{0}\" is not a node")]
    EntryUnknown(String),
    /// A transition to a node that does not exist.
    #[error("{via} goes to unknown node \"{target}\"")]
    Dangling {
        /// Which transition, e.g. `option "7"`, `next`, `on_timeout`.
        via: String,
        /// The missing node.
        target: String,
    },
    /// A node no path from `entry` reaches.
    #[error("is never reached from entry \"{0}\"")]
    Unreachable(String),
    /// A cycle of nodes none of which waits for the caller.
    #[error("loops without waiting for the caller: {0}")]
    SilentLoop(String),
    /// A prompt with no sound file.
    #[error("prompt \"{0}\" has no sound file")]
    UnknownPrompt(String),
    /// A group the configuration does not define.
    #[error("unknown group \"{0}\"")]
    UnknownGroup(String),
    /// A trunk the configuration does not define.
    #[error("unknown trunk \"{0}\"")]
    UnknownTrunk(String),
    /// A schedule (calendar) that does not exist.
    #[error("unknown schedule \"{0}\"")]
    UnknownSchedule(String),
    /// An agent the configuration does not define.
    #[error("unknown agent \"{0}\"")]
    UnknownAgent(String),
    /// A subflow naming no flow.
    #[error("subflow calls unknown flow \"{0}\"")]
    UnknownFlow(String),
    /// Flows that call each other in a circle.
    #[error("subflow recursion: {0}")]
    Recursion(String),
    /// A DID answered by two flows.
    #[error("DID \"{did}\" is also claimed by flow \"{other}\" ({other_path})")]
    DuplicateDid {
        /// The number.
        did: String,
        /// The other flow.
        other: String,
        /// The other flow's file.
        other_path: String,
    },
    /// A DID listed twice in one flow.
    #[error("DID \"{0}\" is listed twice")]
    RepeatedDid(String),
    /// Two files with the same flow `name`.
    #[error("flow name \"{name}\" is also used by {other_path}")]
    DuplicateFlow {
        /// The name.
        name: String,
        /// The other file.
        other_path: String,
    },
    /// An `http` URL that is refused.
    #[error("url \"{url}\": {reason}")]
    BadUrl {
        /// The URL as written.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// An `http` method other than GET or POST.
    #[error("method \"{0}\" is not GET or POST")]
    BadMethod(String),
    /// A `body` on a GET.
    #[error("\"body\" needs method = \"POST\" (a GET sends no body)")]
    BodyWithGet,
    /// A header name that is not an HTTP token.
    #[error("header name \"{0}\" is not a token (letters, digits and -)")]
    BadHeaderName(String),
    /// A mapped field's path that is malformed.
    #[error(
        "\"{path}\" is not a JSON path like data.status (names or array indexes, dot-separated)"
    )]
    BadJsonPath {
        /// The path as written.
        path: String,
    },
    /// An `on_status` key that is no status.
    #[error("on_status key \"{0}\" is not a status 200-599 or a class 2xx-5xx")]
    BadStatus(String),
    /// A branch that no answer can take.
    #[error("{via} is never taken: {because}")]
    NeverTaken {
        /// Which transition.
        via: String,
        /// Why not.
        because: String,
    },
    /// A `say` form that does not exist.
    #[error("as = \"{0}\" is not one of digits, number, date, amount")]
    BadSayAs(String),
    /// A literal `say` value that cannot be read.
    #[error("value \"{value}\" cannot be read as {how}")]
    Unspeakable {
        /// The value.
        value: String,
        /// The form.
        how: &'static str,
    },
}
