//! The ACD's domain model (REQUIREMENTS §3 "Queues and agents"): tenants,
//! skill groups, agents and their states, the configuration the engine is
//! built from, and the inputs and outputs of the sans-IO [`Engine`]
//! (DESIGN.md "shape of a sans-IO core").
//!
//! Instants are [`Time`]s (the pure cores' one time type) given by the
//! shell, lengths of time [`Duration`]s; the model never reads a clock.
//!
//! [`Engine`]: super::Engine

use std::fmt;
use std::time::Duration;

use crate::time::Time;
use serde::{Deserialize, Serialize};

/// An agent's job number (工号), unique across tenants.
pub type AgentId = String;
/// A skill group's (技能组) id.
pub type GroupId = String;

/// A call (or a virtual callback place) as the call room names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// The queue order (REQUIREMENTS §3 "emergency (Level I) calls get a
/// dedicated lane"), served first to last:
///
/// 1. the **emergency lane**: callers queued with a priority of
///    [`EMERGENCY_PRIORITY_MIN`] (200) to 255 — Level I (紧急求助); higher
///    first, then by arrival;
/// 2. **consultations** of the group ([`Input::Consult`], an agent's
///    attended transfer; the agent and a citizen on hold wait), whatever
///    their priority number (the shell gives them all
///    [`CONSULT_PRIORITY`]), by arrival;
/// 3. **ordinary callers**: priorities 0 to [`ORDINARY_PRIORITY_MAX`] (199),
///    higher first, then by arrival. A group's `priority_boost` raises a
///    waiting caller within this band only: waiting long never makes a
///    caller an emergency.
///
/// So a consultation never overtakes an emergency caller and always goes
/// before an ordinary one.
pub const EMERGENCY_PRIORITY_MIN: u8 = 200;

/// The highest priority of an ordinary caller (and of a boost).
pub const ORDINARY_PRIORITY_MAX: u8 = EMERGENCY_PRIORITY_MIN - 1;

/// The priority flows and numbers give Level I emergency callers: the
/// top of the emergency lane.
pub const EMERGENCY_PRIORITY: u8 = u8::MAX;

/// The priority number consultations carry; their own lane, between the
/// emergency lane and ordinary callers, ranks them, not this number.
pub const CONSULT_PRIORITY: u8 = ORDINARY_PRIORITY_MAX;

/// A call's lane in the queue order (see [`EMERGENCY_PRIORITY_MIN`]);
/// earlier lanes are served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Level I emergency callers (priority 200–255).
    Emergency,
    /// Agents' consultations of the group.
    Consultation,
    /// Everyone else (priority 0–199).
    Ordinary,
}

impl Lane {
    /// The lane of a call with `priority`, a consultation or not.
    pub fn of(priority: u8, consultation: bool) -> Lane {
        if consultation {
            Lane::Consultation
        } else if priority >= EMERGENCY_PRIORITY_MIN {
            Lane::Emergency
        } else {
            Lane::Ordinary
        }
    }
}

/// Not-ready reason set by the engine when an offer rings out unanswered.
pub const REASON_NO_ANSWER: &str = "no answer";
/// Not-ready reason set when an agent declines an offer or the device is busy.
pub const REASON_BUSY: &str = "busy";
/// Not-ready reason set when the agent's device cannot be reached.
pub const REASON_UNREACHABLE: &str = "unreachable";

/// How a skill group picks among its idle agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest (fair share of work).
    LongestIdle,
    /// The agent with the fewest answered calls since the last `NewDay`;
    /// ties go to the longest idle.
    FewestCalls,
    /// The agent with the highest skill level in the group (1..=10);
    /// ties go to the longest idle.
    SkillWeighted,
    /// Members in configured order, starting after the last one offered.
    RoundRobin,
    /// Every idle member rings at once; the first answer wins (small groups).
    RingAll,
}

/// What happens to a caller when a queue is full or the wait is too long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// The shell sends the caller to leave a message (客户留言).
    Voicemail,
    /// The caller leaves the line and keeps a virtual place for a callback.
    Callback,
    /// The call moves to another skill group, keeping its arrival time.
    Group(GroupId),
    /// The shell plays a goodbye and hangs up.
    Hangup,
}

/// One skill group (技能组).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    pub id: GroupId,
    pub name: String,
    pub tenant: String,
    pub strategy: Strategy,
    /// How long one offer rings before the agent counts as not answering.
    pub ring_timeout: Duration,
    /// After-call work (话后整理) length; it ends by itself after this.
    pub acw: Duration,
    /// Most callers allowed on the line in this queue (at least 1).
    pub max_queue: usize,
    /// Longest wait in this group, counted from entering it.
    pub max_wait: Duration,
    /// Next step when the queue is full or `max_wait` passes.
    pub on_max_wait: NextStep,
    /// Move waiting callers to another group after this long in this one.
    pub overflow_after: Option<(Duration, GroupId)>,
    /// Play position and estimated wait this often while waiting.
    pub announce_every: Option<Duration>,
    /// After waiting `d` since arrival, a call's priority is at least `p`.
    pub priority_boost: Vec<(Duration, u8)>,
}

/// One agent (坐席).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Job number (工号).
    pub id: AgentId,
    pub name: String,
    pub tenant: String,
    /// The SIP user the agent's phone registers as.
    pub device: String,
    /// Skill groups and the agent's level in each (1..=10).
    pub skills: Vec<(GroupId, u8)>,
}

/// Previous-service routing (首问负责制): a repeat caller rings the agent who
/// served them last first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousServiceConfig {
    /// How far back a service counts ("called within X days").
    pub within: Duration,
    /// How long the previous agent rings before the call falls back to the
    /// queue ("for Y seconds").
    pub ring_for: Duration,
}

/// Retry policy for callbacks the engine hands to agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackPolicy {
    /// Attempts to reach the citizen before giving up (at least 1).
    pub max_attempts: u32,
    /// Wait between unanswered attempts.
    pub retry_interval: Duration,
}

/// Everything the engine is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcdConfig {
    pub groups: Vec<GroupConfig>,
    pub agents: Vec<AgentConfig>,
    /// Not-ready reason codes agents may pick (break, training, ticket writing …).
    pub not_ready_reasons: Vec<String>,
    pub previous_service: Option<PreviousServiceConfig>,
    pub callback: CallbackPolicy,
}

/// What [`Engine::reconfigure`] did, by id, in configuration order (removed
/// ones in the order the engine held them). "Changed" means the entry's
/// configuration differs from before; live state is kept either way.
///
/// [`Engine::reconfigure`]: super::Engine::reconfigure
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconfigured {
    pub agents_added: Vec<AgentId>,
    pub agents_changed: Vec<AgentId>,
    pub agents_removed: Vec<AgentId>,
    pub groups_added: Vec<GroupId>,
    pub groups_changed: Vec<GroupId>,
    pub groups_removed: Vec<GroupId>,
}

/// An agent's state. Details (reason, call) travel alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    LoggedOut,
    Idle,
    /// Busy (示忙), with a reason code.
    NotReady,
    /// Reserved for an offer; the device is ringing.
    Ringing,
    Talking,
    OnHold,
    /// After-call work (话后整理).
    AfterCallWork,
    /// An outbound call, including dialing a citizen for a callback.
    Outbound,
}

impl AgentState {
    /// Every state, in a fixed order (for per-state tables).
    pub const ALL: [AgentState; 8] = [
        AgentState::LoggedOut,
        AgentState::Idle,
        AgentState::NotReady,
        AgentState::Ringing,
        AgentState::Talking,
        AgentState::OnHold,
        AgentState::AfterCallWork,
        AgentState::Outbound,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            AgentState::LoggedOut => 0,
            AgentState::Idle => 1,
            AgentState::NotReady => 2,
            AgentState::Ringing => 3,
            AgentState::Talking => 4,
            AgentState::OnHold => 5,
            AgentState::AfterCallWork => 6,
            AgentState::Outbound => 7,
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            AgentState::LoggedOut => "logged out",
            AgentState::Idle => "idle",
            AgentState::NotReady => "not ready",
            AgentState::Ringing => "ringing",
            AgentState::Talking => "talking",
            AgentState::OnHold => "on hold",
            AgentState::AfterCallWork => "after-call work",
            AgentState::Outbound => "outbound",
        };
        f.write_str(s)
    }
}

/// What the call room and the CTI tell the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Sign in (签入): the agent becomes idle.
    Login {
        agent: AgentId,
    },
    /// Sign out (签出): from idle, not ready, after-call work or ringing.
    Logout {
        agent: AgentId,
    },
    /// Idle (示闲): from not ready or after-call work.
    Ready {
        agent: AgentId,
    },
    /// Busy (示忙) with a configured reason; a ringing offer is withdrawn.
    NotReady {
        agent: AgentId,
        reason: String,
    },
    /// A caller asks for an agent of `group`. `arrived` is the original
    /// arrival, kept across overflow; higher `priority` is served first.
    Enqueue {
        call: CallId,
        group: GroupId,
        priority: u8,
        caller: String,
        arrived: Time,
        /// This call's longest wait, overriding the group's (an IVR
        /// `queue` node's `max_wait_secs`).
        max_wait: Option<Duration>,
        /// What happens when this call's wait ends unanswered, overriding
        /// the group's `on_timeout` and overflow chain (an IVR flow that
        /// routes the caller on; the shell then gets `QueueTimeout` with
        /// this step).
        on_timeout: Option<NextStep>,
    },
    /// An agent on a call consults `group` (attended transfer to a skill
    /// group, 咨询转): the consultation waits in the group's queue and is
    /// offered by the group's strategy like a caller (ring timeout, the
    /// next agent …), but it is no citizen waiting: no time limit, no
    /// overflow, no previous-service routing, not in the group's service
    /// figures, and ending unanswered (`CallerHungUp`) is neither
    /// abandoned nor missed. Refused when the queue is full. Once answered
    /// it is the answering agent's call (`CallEnded` starts their
    /// after-call work).
    Consult {
        call: CallId,
        group: GroupId,
        priority: u8,
        /// The citizen's number (shown to the agent offered).
        caller: String,
    },
    /// An idle agent answered a call put through to them without the
    /// queue (a number that rings agents, a transfer or a consultation
    /// naming them): they are talking on it, so no queued call is offered
    /// to them meanwhile. It counts for the agent, not for any group;
    /// `CallEnded` starts their after-call work (their first skill
    /// group's). An agent in after-call work may take one too (a caller
    /// whose blind transfer failed, put back through to them): the work
    /// ends there. Refused for an agent in any other state or with no
    /// skill group (the shell then has nothing to keep them from).
    DirectAnswered {
        call: CallId,
        agent: AgentId,
        /// The citizen's number (for previous-service routing).
        caller: String,
    },
    /// The caller hung up (waiting, ringing, or talking); for a
    /// consultation, the consulting agent gave it up.
    CallerHungUp {
        call: CallId,
    },
    /// The agent picked up the offer (for a callback: the shell now dials).
    OfferAnswered {
        call: CallId,
        agent: AgentId,
    },
    /// The agent declined or the device was busy.
    OfferRejected {
        call: CallId,
        agent: AgentId,
    },
    /// The agent's device could not be reached.
    OfferFailed {
        call: CallId,
        agent: AgentId,
    },
    /// The conversation is over; the agent enters after-call work.
    CallEnded {
        call: CallId,
    },
    Hold {
        agent: AgentId,
    },
    Resume {
        agent: AgentId,
    },
    ExtendAcw {
        agent: AgentId,
        by: Duration,
    },
    CompleteAcw {
        agent: AgentId,
    },
    /// The waiting caller chose a callback: they leave the line but keep
    /// their place. `number` overrides the caller's number.
    RequestCallback {
        call: CallId,
        number: Option<String>,
    },
    /// A supervisor (or the missed-call worker) schedules a callback, placed
    /// in the queue as if it arrived now.
    ScheduleCallback {
        call: CallId,
        group: GroupId,
        number: String,
        priority: u8,
        /// Attempts for this callback (a follow-up campaign redials on
        /// its own schedule: 1); `None`: the callback policy's.
        max_attempts: Option<u32>,
    },
    /// The shell dialled the citizen for a callback the agent accepted.
    CallbackResult {
        call: CallId,
        answered: bool,
    },
    /// The caller asked for an agent in the IVR (at `asked_at`) but hung up
    /// before reaching the queue.
    AbandonedInIvr {
        call: CallId,
        caller: String,
        group: GroupId,
        asked_at: Time,
    },
    StartOutbound {
        agent: AgentId,
    },
    EndOutbound {
        agent: AgentId,
    },
    /// A new working day: "calls today" and the counters start from zero.
    NewDay,
}

/// How an offer came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// The head of the queue, to the agent the group's strategy chose.
    Queue,
    /// Previous-service routing to the caller's last agent.
    PreviousService,
    /// One of several simultaneous rings of a ring-all group.
    RingAll,
}

/// Why a ringing offer stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    CallerHungUp,
    /// Ring-all: another agent answered first.
    AnsweredElsewhere,
    /// Ring timeout.
    NoAnswer,
    /// The caller chose a callback while the agent was ringing.
    CallbackRequested,
    /// The agent went not ready or logged out while ringing.
    AgentWithdrew,
}

/// Why a call moved to another group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowReason {
    /// `overflow_after` passed.
    Timer,
    /// `max_wait` passed and the next step is another group.
    MaxWait,
    /// The queue was full and the next step is another group.
    QueueFull,
}

/// Why a call left the queue without an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutReason {
    MaxWait,
    QueueFull,
}

/// What the engine asks of the call room, and the events it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Ring the agent's device with this call.
    Offer {
        call: CallId,
        agent: AgentId,
        device: String,
        kind: OfferKind,
    },
    /// Ring the agent for a callback; once answered the shell dials `number`.
    OfferCallback {
        call: CallId,
        agent: AgentId,
        device: String,
        number: String,
        attempt: u32,
    },
    /// Stop ringing this agent now.
    CancelOffer {
        call: CallId,
        agent: AgentId,
        reason: CancelReason,
    },
    /// Tell the waiting caller their position and estimated wait; an offer
    /// being answered interrupts it.
    Announce {
        call: CallId,
        position: usize,
        estimated_wait: Option<Duration>,
    },
    /// The call now waits in `to` (the engine already moved it).
    Overflowed {
        call: CallId,
        from: GroupId,
        to: GroupId,
        reason: OverflowReason,
    },
    /// The call left the queue; the shell carries out `next` (for
    /// `Callback` the engine already keeps the virtual place).
    QueueTimeout {
        call: CallId,
        group: GroupId,
        reason: TimeoutReason,
        next: NextStep,
    },
    /// An agent's state changed at `at`.
    AgentState {
        agent: AgentId,
        state: AgentState,
        reason: Option<String>,
        call: Option<CallId>,
        at: Time,
    },
    /// A queue event: the raw log the service-level figures come from.
    Queue(QueueEvent),
}

/// One entry of the queue log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEvent {
    pub call: CallId,
    pub group: GroupId,
    pub kind: QueueEventKind,
    /// Original arrival (or when the caller asked for an agent).
    pub arrived: Time,
    pub at: Time,
}

/// What happened in a [`QueueEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueEventKind {
    /// A caller (or, with `callback`, a scheduled callback) entered the group;
    /// `from` names the group it overflowed from.
    Entered {
        priority: u8,
        callback: bool,
        from: Option<GroupId>,
    },
    /// An agent answered the caller.
    Answered { agent: AgentId },
    /// The caller hung up before an agent answered.
    Abandoned { while_ringing: bool },
    /// The caller left the line for a callback, keeping the place.
    CallbackRequested,
    /// The caller was sent to the group's next step.
    TimedOut { reason: TimeoutReason },
    /// The call moved on to `to`.
    OverflowedOut { to: GroupId },
    /// The caller hung up in the IVR after asking for an agent.
    AbandonedInIvr,
    /// The citizen picked up a callback.
    CallbackAnswered { agent: AgentId },
    /// A callback was given up after `attempts` unanswered attempts.
    CallbackFailed { attempts: u32 },
}

/// Where a missed call was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedWhere {
    Queue,
    /// While an agent's phone rang.
    Ringing,
    Ivr,
    /// Sent to voicemail or hung up by the system after the queue limit.
    TimedOut,
}

/// One entry of the missed-call list (漏接, for the 100 % callback KPI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedCall {
    pub call: CallId,
    pub caller: String,
    pub group: GroupId,
    pub arrived: Time,
    pub at: Time,
    pub wait: Duration,
    pub place: MissedWhere,
    /// When a callback to this number was answered.
    pub called_back_at: Option<Time>,
}

/// One queue entry, in queue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntryView {
    /// 1-based.
    pub position: usize,
    pub call: CallId,
    /// Effective priority (after boosts).
    pub priority: u8,
    pub arrived: Time,
    pub entered_group: Time,
    /// A virtual place held for a callback (no caller on the line).
    pub callback: bool,
}

/// Where a call is in the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallPhase {
    Waiting,
    Ringing {
        agents: Vec<AgentId>,
        kind: OfferKind,
    },
    Talking {
        agent: AgentId,
    },
    /// The agent accepted a callback; the shell is dialling the citizen.
    Dialing {
        agent: AgentId,
    },
    /// A callback waits for its next attempt at `at`.
    RetryWait {
        at: Time,
    },
}

/// A call the engine still holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub call: CallId,
    pub group: GroupId,
    pub caller: String,
    pub priority: u8,
    pub arrived: Time,
    pub entered_group: Time,
    pub callback: bool,
    pub phase: CallPhase,
}

/// An agent as the engine sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent: AgentId,
    pub state: AgentState,
    pub reason: Option<String>,
    pub since: Time,
    /// Since when the agent counts as idle (kept across withdrawn offers).
    pub idle_since: Time,
    pub call: Option<CallId>,
    pub acw_until: Option<Time>,
}
