//! The ACD engine (REQUIREMENTS §3 "Queues and agents", §8 answer rates):
//! one sans-IO state machine for every skill group, agent and waiting call
//! (DESIGN.md "shape of a sans-IO core"). Inputs and timeouts go in with the
//! time injected; offers, cancellations, announcements and events come out
//! of [`Engine::poll_output`]; [`Engine::poll_timeout`] names the next
//! deadline. It never reads a clock and never panics on an input: an input
//! in the wrong state is an [`AcdError`] and changes nothing.
//!
//! Rules it keeps:
//! - no agent rings for, or handles, two calls at once; no call rings two
//!   agents except in a ring-all group, where the first answer wins;
//! - every offer goes to the head of the queue order (priority, then
//!   arrival) across the agent's groups; a call whose offer fails goes back
//!   to its old place (the head) with its key unchanged;
//! - ring timeout → the agent goes not ready ("no answer"); reject/busy →
//!   not ready ("busy"); unreachable → not ready ("unreachable"); each time
//!   the call is offered to the next agent;
//! - an agent whose offer is withdrawn for a reason not theirs (caller
//!   hung up, answered elsewhere, callback chosen) keeps their idle-since
//!   time, so longest-idle stays fair.
//!
//! With [`Engine::track_changes`] on, every change a restart must not lose
//! is recorded for the shell's store; [`Engine::restore`] seeds a fresh
//! engine from what was kept (both in `engine/durable.rs`).
//!
//! [`Engine::reconfigure`] (in `engine/reconfigure.rs`) applies a new
//! [`AcdConfig`] while calls are up: agents and skill groups are added,
//! changed or deleted without losing live state. Agents and groups are
//! referred to by index everywhere (calls, offers, timers, membership), so
//! indices never change: new ones are appended and deleted ones are kept as
//! *retired* entries that nothing reports or dispatches to.
//!
//! This file holds the engine's state, its construction and its public
//! surface (inputs, outputs, timeouts); the work is split by concern into
//! `impl Engine` blocks beside it:
//! - `engine/inputs.rs`: applying one [`Input`], and the new day;
//! - `engine/agents.rs`: agents' states (and leaving ringing / after-call work);
//! - `engine/waiting.rs`: queue entries: entering, waiting, overflow, the
//!   next step, callbacks, abandons and the missed-call list;
//! - `engine/offers.rs`: dispatch, offers, answers, the end of a conversation;
//! - `engine/timers.rs`: timers firing and position announcements;
//! - `engine/views.rs`: read-only views and live statistics;
//! - `engine/durable.rs`, `engine/reconfigure.rs`: as above.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::durable::Change;
use super::error::AcdError;
use super::model::{
    AcdConfig, AgentConfig, AgentState, CallId, CallbackPolicy, CancelReason, GroupConfig, Input,
    MissedCall, NextStep, OfferKind, Output, PreviousServiceConfig,
};
use super::queue::{GroupQueue, QueueKey};
use super::stats::{AgentCounters, GroupCounters};
use super::strategy::MemberInfo;
use crate::time::Time;

mod agents;
mod durable;
mod inputs;
mod offers;
mod reconfigure;
mod timers;
mod views;
mod waiting;

/// Handle time assumed for the estimated wait before a group has any.
pub const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CallTimer {
    Ring,
    Overflow,
    MaxWait,
    Boost,
    Announce,
    Retry,
}

impl CallTimer {
    fn slot(self) -> usize {
        match self {
            CallTimer::Ring => 0,
            CallTimer::Overflow => 1,
            CallTimer::MaxWait => 2,
            CallTimer::Boost => 3,
            CallTimer::Announce => 4,
            CallTimer::Retry => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Call(CallId, CallTimer),
    Acw(usize),
}

type Timers = BTreeSet<(Time, Timer)>;

struct Group {
    cfg: GroupConfig,
    members: Vec<usize>,
    levels: HashMap<usize, u8>,
    queue: GroupQueue,
    /// Idle members by (idle since, agent): longest idle first.
    idle: BTreeSet<(Time, usize)>,
    rr_next: usize,
    overflow: Option<(Duration, usize)>,
    next_group: Option<usize>,
    counters: GroupCounters,
    by_state: [usize; 8],
    callbacks_pending: usize,
    /// Deleted by a reconfiguration: out of `group_ix`, no members, no
    /// calls; kept only so indices stay stable. Never reported.
    retired: bool,
}

pub(crate) struct AgentRec {
    cfg: AgentConfig,
    skills: Vec<usize>,
    state: AgentState,
    reason: Option<String>,
    since: Time,
    idle_since: Time,
    call: Option<CallId>,
    acw_until: Option<Time>,
    acw_started: Time,
    acw_group: Option<usize>,
    counters: AgentCounters,
    time_in_state: [Duration; 8],
    /// Deleted by a reconfiguration: out of `agent_ix` and every group,
    /// logged out, no call; kept only so indices stay stable.
    retired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Waiting,
    Offered { agents: Vec<usize>, kind: OfferKind },
    Talking { agent: usize, answered_at: Time },
    Dialing { agent: usize },
    RetryWait,
}

struct Call {
    id: CallId,
    caller: String,
    /// `Some` once the call is a callback (the caller left the line).
    callback_number: Option<String>,
    group: usize,
    base_priority: u8,
    priority: u8,
    arrived: Time,
    entered_group: Time,
    seq: u64,
    attempts: u32,
    /// This callback's own most attempts (else the callback policy's).
    max_attempts: Option<u32>,
    phase: Phase,
    timers: [Option<Time>; 6],
    /// Per-call longest wait (else the group's).
    max_wait: Option<Duration>,
    /// Per-call next step on timeout (else the group's chain).
    on_timeout: Option<NextStep>,
    /// An agent's consultation of the group (attended transfer), or a
    /// call put through to an agent directly: not a citizen waiting in
    /// the queue: no time limit, overflow or previous-service routing, not
    /// in the group's service figures, never abandoned or missed.
    consultation: bool,
}

impl Call {
    /// A call waiting in group `group` since `arrived`: no per-call
    /// limits, not a consultation (struct update for the rest).
    fn waiting(
        id: CallId,
        caller: String,
        group: usize,
        priority: u8,
        arrived: Time,
        now: Time,
        seq: u64,
    ) -> Self {
        Call {
            id,
            caller,
            callback_number: None,
            group,
            base_priority: priority,
            priority,
            arrived,
            entered_group: now,
            seq,
            attempts: 0,
            max_attempts: None,
            phase: Phase::Waiting,
            timers: [None; 6],
            max_wait: None,
            on_timeout: None,
            consultation: false,
        }
    }

    fn key(&self) -> QueueKey {
        QueueKey::new(
            self.priority,
            self.consultation,
            self.arrived,
            self.seq,
            self.id,
        )
    }

    fn live(&self) -> bool {
        self.callback_number.is_none()
    }

    fn state_name(&self) -> &'static str {
        match (&self.phase, self.live()) {
            (Phase::Waiting, true) => "waiting",
            (Phase::Waiting, false) => "a callback waiting",
            (Phase::Offered { .. }, _) => "ringing",
            (Phase::Talking { .. }, _) => "talking",
            (Phase::Dialing { .. }, _) => "dialing a callback",
            (Phase::RetryWait, _) => "a callback waiting to retry",
        }
    }
}

fn set_timer(timers: &mut Timers, call: &mut Call, kind: CallTimer, at: Time) {
    clear_timer(timers, call, kind);
    call.timers[kind.slot()] = Some(at);
    timers.insert((at, Timer::Call(call.id, kind)));
}

fn clear_timer(timers: &mut Timers, call: &mut Call, kind: CallTimer) {
    if let Some(old) = call.timers[kind.slot()].take() {
        timers.remove(&(old, Timer::Call(call.id, kind)));
    }
}

struct Info<'a> {
    agents: &'a [AgentRec],
    levels: &'a HashMap<usize, u8>,
}

impl MemberInfo for Info<'_> {
    fn level(&self, agent: usize) -> u8 {
        self.levels.get(&agent).copied().unwrap_or(0)
    }
    fn calls_today(&self, agent: usize) -> u64 {
        self.agents.get(agent).map_or(0, |a| a.counters.answered)
    }
    fn is_idle(&self, agent: usize) -> bool {
        self.agents
            .get(agent)
            .is_some_and(|a| a.state == AgentState::Idle)
    }
}

/// How an agent leaves a ringing offer.
#[derive(Debug, Clone, Copy)]
enum Release<'r> {
    /// Back to idle with the old idle-since time; the device is told to stop.
    Restore(CancelReason),
    /// Not ready with `reason`; `cancel` tells the device to stop first.
    NotReady(&'r str, Option<CancelReason>),
    /// Logged out; the device is told to stop.
    LoggedOut,
}

/// The ACD: skill groups, agents, queues, timers and statistics.
pub struct Engine {
    groups: Vec<Group>,
    group_ix: HashMap<String, usize>,
    agents: Vec<AgentRec>,
    agent_ix: HashMap<String, usize>,
    reasons: HashSet<String>,
    previous_service: Option<PreviousServiceConfig>,
    callback: CallbackPolicy,
    calls: HashMap<CallId, Call>,
    timers: Timers,
    out: VecDeque<Output>,
    last_served: HashMap<String, (usize, Time)>,
    missed: Vec<MissedCall>,
    missed_open: HashMap<String, Vec<usize>>,
    seq: u64,
    day_start: Time,
    /// Record changes for the shell's store ([`Engine::track_changes`]).
    tracking: bool,
    /// Agents and groups whose record changed since the last
    /// [`Engine::take_changes`] (written once each, as they are then).
    changed_agents: BTreeSet<usize>,
    changed_groups: BTreeSet<usize>,
    /// Other changes, in order.
    changes: Vec<Change>,
}

/// A configuration checked on its own (no live state involved): the
/// group and agent indices are positions in the [`AcdConfig`]'s lists.
/// [`Engine::new`] and [`Engine::reconfigure`] both start from it, so the
/// two accept exactly the same configurations.
pub(super) struct Plan {
    /// Group id → position in `cfg.groups`.
    group_ix: HashMap<String, usize>,
    /// Per group: `overflow_after` and `on_max_wait` targets (positions).
    links: Vec<Links>,
    /// Agent id → position in `cfg.agents`.
    agent_ix: HashMap<String, usize>,
    /// Per agent: (group position, level) in configured order.
    skills: Vec<Vec<(usize, u8)>>,
}

/// A group's `overflow_after` (after, target) and `on_max_wait` target.
type Links = (Option<(Duration, usize)>, Option<usize>);

/// Check a configuration: limits, unique ids, overflow targets in the same
/// tenant, skill groups that exist in the agent's tenant, levels 1..=10.
pub(super) fn validate(cfg: &AcdConfig) -> Result<Plan, AcdError> {
    let AcdConfig {
        groups,
        agents,
        previous_service,
        callback,
        ..
    } = cfg;
    if callback.max_attempts == 0 {
        return Err(AcdError::Config(
            "callback.max_attempts must be at least 1".into(),
        ));
    }
    if let Some(ps) = previous_service {
        if ps.ring_for.is_zero() {
            return Err(AcdError::Config(
                "previous_service.ring_for must be more than zero".into(),
            ));
        }
    }
    let mut group_ix = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        if group_ix.insert(g.id.clone(), i).is_some() {
            return Err(AcdError::Config(format!(
                "group {:?} is defined twice",
                g.id
            )));
        }
        let bad = |field: &str, why: &str| {
            Err(AcdError::Config(format!("group {:?}: {field} {why}", g.id)))
        };
        if g.ring_timeout.is_zero() {
            return bad("ring_timeout", "must be more than zero");
        }
        if g.max_queue == 0 {
            return bad("max_queue", "must be at least 1");
        }
        if g.max_wait.is_zero() {
            return bad("max_wait", "must be more than zero");
        }
        if g.announce_every.is_some_and(|d| d.is_zero()) {
            return bad("announce_every", "must be more than zero");
        }
    }
    let mut links = Vec::with_capacity(groups.len());
    for g in groups {
        let resolve = |target: &String, field: &str| -> Result<usize, AcdError> {
            let unknown = || {
                AcdError::Config(format!(
                    "group {:?}: {field} names unknown group {target:?}",
                    g.id
                ))
            };
            let ti = *group_ix.get(target).ok_or_else(unknown)?;
            let other = groups.get(ti).ok_or_else(unknown)?;
            if other.tenant != g.tenant {
                return Err(AcdError::Config(format!(
                    "group {:?}: {field} group {target:?} belongs to another tenant",
                    g.id
                )));
            }
            if target == &g.id {
                return Err(AcdError::Config(format!(
                    "group {:?}: {field} names the group itself",
                    g.id
                )));
            }
            Ok(ti)
        };
        let overflow = match &g.overflow_after {
            Some((after, target)) => Some((*after, resolve(target, "overflow_after")?)),
            None => None,
        };
        let next_group = match &g.on_max_wait {
            NextStep::Group(target) => Some(resolve(target, "on_max_wait")?),
            _ => None,
        };
        links.push((overflow, next_group));
    }
    let mut agent_ix = HashMap::new();
    let mut skills = Vec::with_capacity(agents.len());
    for (ai, a) in agents.iter().enumerate() {
        if agent_ix.insert(a.id.clone(), ai).is_some() {
            return Err(AcdError::Config(format!(
                "agent {:?} is defined twice",
                a.id
            )));
        }
        let mut mine: Vec<(usize, u8)> = Vec::with_capacity(a.skills.len());
        for (gid, level) in &a.skills {
            let unknown = || {
                AcdError::Config(format!(
                    "agent {:?}: skill names unknown group {gid:?}",
                    a.id
                ))
            };
            let gi = *group_ix.get(gid).ok_or_else(unknown)?;
            let g = groups.get(gi).ok_or_else(unknown)?;
            if !(1..=10).contains(level) {
                return Err(AcdError::Config(format!(
                    "agent {:?}: skill level {level} in {gid:?} is outside 1..=10",
                    a.id
                )));
            }
            if g.tenant != a.tenant {
                return Err(AcdError::Config(format!(
                    "agent {:?}: group {gid:?} belongs to another tenant",
                    a.id
                )));
            }
            if mine.iter().any(|(seen, _)| *seen == gi) {
                return Err(AcdError::Config(format!(
                    "agent {:?}: group {gid:?} listed twice",
                    a.id
                )));
            }
            mine.push((gi, *level));
        }
        skills.push(mine);
    }
    Ok(Plan {
        group_ix,
        links,
        agent_ix,
        skills,
    })
}

impl Group {
    /// A fresh group: no members, an empty queue, zero counters.
    fn fresh(cfg: GroupConfig) -> Group {
        Group {
            cfg,
            members: Vec::new(),
            levels: HashMap::new(),
            queue: GroupQueue::default(),
            idle: BTreeSet::new(),
            rr_next: 0,
            overflow: None,
            next_group: None,
            counters: GroupCounters::default(),
            by_state: [0; 8],
            callbacks_pending: 0,
            retired: false,
        }
    }
}

impl AgentRec {
    /// A fresh agent, logged out since `now`, with no skills yet.
    fn fresh(cfg: AgentConfig, now: Time) -> AgentRec {
        AgentRec {
            cfg,
            skills: Vec::new(),
            state: AgentState::LoggedOut,
            reason: None,
            since: now,
            idle_since: now,
            call: None,
            acw_until: None,
            acw_started: now,
            acw_group: None,
            counters: AgentCounters::default(),
            time_in_state: [Duration::ZERO; 8],
            retired: false,
        }
    }
}

impl Engine {
    /// Build the engine; every agent starts logged out at `now`.
    pub fn new(cfg: AcdConfig, now: Time) -> Result<Self, AcdError> {
        let plan = validate(&cfg)?;
        let mut engine = Engine {
            groups: Vec::with_capacity(cfg.groups.len()),
            group_ix: HashMap::new(),
            agents: Vec::with_capacity(cfg.agents.len()),
            agent_ix: HashMap::new(),
            reasons: HashSet::new(),
            previous_service: None,
            callback: cfg.callback,
            calls: HashMap::new(),
            timers: BTreeSet::new(),
            out: VecDeque::new(),
            last_served: HashMap::new(),
            missed: Vec::new(),
            missed_open: HashMap::new(),
            seq: 0,
            day_start: now,
            tracking: false,
            changed_agents: BTreeSet::new(),
            changed_groups: BTreeSet::new(),
            changes: Vec::new(),
        };
        // An empty engine has no live state to refuse: installing the
        // configuration is exactly what a reconfiguration does.
        engine.install(now, cfg, &plan);
        engine.out.clear();
        Ok(engine)
    }

    // ----- public surface -------------------------------------------------

    /// Apply one input at `now`, then hand idle agents the calls that wait.
    pub fn handle(&mut self, now: Time, input: Input) -> Result<(), AcdError> {
        self.apply(now, input)?;
        self.dispatch(now);
        Ok(())
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline; call [`Engine::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fire every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        let mut due = Vec::new();
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Call(id, CallTimer::Announce) => {
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.timers[CallTimer::Announce.slot()] = None;
                        due.push(id);
                    }
                }
                _ => self.fire(timer, now),
            }
        }
        for id in due {
            self.announce(id, now);
        }
        self.dispatch(now);
    }

    /// Remember that `agent` served `caller` at `at` (e.g. loaded from the
    /// store at start-up) for previous-service routing.
    pub fn remember_service(
        &mut self,
        caller: &str,
        agent: &str,
        at: Time,
    ) -> Result<(), AcdError> {
        let ai = self.agent_index(agent)?;
        self.last_served.insert(caller.to_owned(), (ai, at));
        Ok(())
    }

    // ----- lookups ----------------------------------------------------------

    fn agent_index(&self, agent: &str) -> Result<usize, AcdError> {
        self.agent_ix
            .get(agent)
            .copied()
            .ok_or_else(|| AcdError::UnknownAgent(agent.to_owned()))
    }

    fn group_index(&self, group: &str) -> Result<usize, AcdError> {
        self.group_ix
            .get(group)
            .copied()
            .ok_or_else(|| AcdError::UnknownGroup(group.to_owned()))
    }

    fn call_ref(&self, call: CallId) -> Result<&Call, AcdError> {
        self.calls.get(&call).ok_or(AcdError::UnknownCall(call))
    }

    fn wrong_agent(&self, ai: usize, action: &'static str) -> AcdError {
        AcdError::WrongAgentState {
            agent: self.agents[ai].cfg.id.clone(),
            state: self.agents[ai].state,
            action,
        }
    }

    fn expect_agent(
        &self,
        agent: &str,
        allowed: &[AgentState],
        action: &'static str,
    ) -> Result<usize, AcdError> {
        let ai = self.agent_index(agent)?;
        if allowed.contains(&self.agents[ai].state) {
            Ok(ai)
        } else {
            Err(self.wrong_agent(ai, action))
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}
