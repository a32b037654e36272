//! The ACD's durable state as rows (issue 12 item 3, "a restart loses
//! nothing the centre relies on"; issue 12 item 7, the figures of the day):
//! one row per agent (state, reason, since-when, after-call work, the last
//! `agent.state` seq, the day's counters), per skill group (the day's
//! counters), per pending callback, per missed call (in the order they were
//! missed), per caller last served (previous-service routing), and two
//! numbers: when the current day began and the next ACD call id.
//!
//! Times are wall-clock Unix milliseconds. The ACD actor (`call::queue`)
//! writes each batch of changes in one transaction before anything outside
//! hears of them, and reads everything back once at start. Each backend
//! maps these rows to its tables.

pub(crate) const DAY_START: &str = "day_start_ms";
pub(crate) const NEXT_CALL: &str = "next_call";

/// An agent's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdAgentRow {
    pub agent: String,
    /// The state's name (`idle`, `not_ready` …).
    pub state: String,
    pub reason: Option<String>,
    pub since_ms: i64,
    pub idle_since_ms: i64,
    pub acw_until_ms: Option<i64>,
    pub acw_group: Option<String>,
    /// The `seq` of the agent's last `agent.state` event.
    pub event_seq: u32,
    /// The day's counters and time in state (JSON).
    pub day: String,
}

/// A skill group's row: the day's counters (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdGroupRow {
    pub group: String,
    pub counters: String,
}

/// A pending callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdCallbackRow {
    pub call: u64,
    pub group: String,
    pub caller: String,
    pub number: String,
    pub priority: u8,
    pub arrived_ms: i64,
    pub attempts: u32,
    pub retry_at_ms: Option<i64>,
    /// Its own most attempts (a follow-up campaign's: 1).
    pub max_attempts: Option<u32>,
}

/// A missed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdMissedRow {
    pub call: u64,
    pub caller: String,
    pub group: String,
    pub arrived_ms: i64,
    pub at_ms: i64,
    /// Where it was lost (`queue`, `ringing` …).
    pub place: String,
    pub called_back_ms: Option<i64>,
}

/// The agent who last served a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdServedRow {
    pub caller: String,
    pub agent: String,
    pub at_ms: i64,
}

/// Everything stored, as read at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcdRows {
    pub day_start_ms: Option<i64>,
    pub next_call: Option<u64>,
    pub agents: Vec<AcdAgentRow>,
    pub groups: Vec<AcdGroupRow>,
    pub callbacks: Vec<AcdCallbackRow>,
    /// In the order they were missed.
    pub missed: Vec<AcdMissedRow>,
    pub served: Vec<AcdServedRow>,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdWrite {
    Agent(AcdAgentRow),
    Group(AcdGroupRow),
    Callback(AcdCallbackRow),
    CallbackGone(u64),
    /// Added (kept in its place) or updated (called back).
    Missed(AcdMissedRow),
    MissedGone(u64),
    Served(AcdServedRow),
    /// Forget services before this time.
    ServedBefore(i64),
    DayStart(i64),
    NextCall(u64),
}

pub(crate) fn id(call: u64) -> i64 {
    i64::try_from(call).unwrap_or(i64::MAX)
}

pub(crate) fn call_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
