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

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::durable::Change;
use super::error::AcdError;
use super::model::{
    AcdConfig, AgentConfig, AgentState, AgentView, CallId, CallPhase, CallView, CallbackPolicy,
    CancelReason, GroupConfig, Input, MissedCall, MissedWhere, NextStep, OfferKind, Output,
    OverflowReason, PreviousServiceConfig, QueueEntryView, QueueEvent, QueueEventKind, Strategy,
    TimeoutReason, REASON_BUSY, REASON_NO_ANSWER, REASON_UNREACHABLE,
};
use super::queue::{effective_priority, next_boost, next_tick, GroupQueue, QueueKey};
use super::stats::{
    AgentCounters, AgentStats, Disposition, GroupCounters, GroupStats, ServiceLevel, Stats,
};
use super::strategy::{self, MemberInfo};

mod durable;
mod reconfigure;

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

type Timers = BTreeSet<(Duration, Timer)>;

struct Group {
    cfg: GroupConfig,
    members: Vec<usize>,
    levels: HashMap<usize, u8>,
    queue: GroupQueue,
    /// Idle members by (idle since, agent): longest idle first.
    idle: BTreeSet<(Duration, usize)>,
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
    since: Duration,
    idle_since: Duration,
    call: Option<CallId>,
    acw_until: Option<Duration>,
    acw_started: Duration,
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
    Talking { agent: usize, answered_at: Duration },
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
    arrived: Duration,
    entered_group: Duration,
    seq: u64,
    attempts: u32,
    phase: Phase,
    timers: [Option<Duration>; 6],
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
        arrived: Duration,
        now: Duration,
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

fn set_timer(timers: &mut Timers, call: &mut Call, kind: CallTimer, at: Duration) {
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
    last_served: HashMap<String, (usize, Duration)>,
    missed: Vec<MissedCall>,
    missed_open: HashMap<String, Vec<usize>>,
    seq: u64,
    day_start: Duration,
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
    fn fresh(cfg: AgentConfig, now: Duration) -> AgentRec {
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
    pub fn new(cfg: AcdConfig, now: Duration) -> Result<Self, AcdError> {
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
    pub fn handle(&mut self, now: Duration, input: Input) -> Result<(), AcdError> {
        self.apply(now, input)?;
        self.dispatch(now);
        Ok(())
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest deadline; call [`Engine::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fire every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
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
        at: Duration,
    ) -> Result<(), AcdError> {
        let ai = self.agent_index(agent)?;
        self.last_served.insert(caller.to_owned(), (ai, at));
        Ok(())
    }

    /// Every abandoned call, in order, for the callback KPI.
    pub fn missed_calls(&self) -> &[MissedCall] {
        &self.missed
    }

    /// A group's queue in order (callback places included).
    pub fn queue_snapshot(&self, group: &str) -> Result<Vec<QueueEntryView>, AcdError> {
        let gi = self.group_index(group)?;
        Ok(self.groups[gi]
            .queue
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let c = self.calls.get(&k.call)?;
                Some(QueueEntryView {
                    position: i + 1,
                    call: k.call,
                    priority: k.priority(),
                    arrived: k.arrived,
                    entered_group: c.entered_group,
                    callback: !c.live(),
                })
            })
            .collect())
    }

    /// An agent's state and since when.
    pub fn agent_state(&self, agent: &str) -> Option<(AgentState, Duration)> {
        let a = &self.agents[*self.agent_ix.get(agent)?];
        Some((a.state, a.since))
    }

    /// An agent's state in detail.
    pub fn agent_view(&self, agent: &str) -> Option<AgentView> {
        let a = &self.agents[*self.agent_ix.get(agent)?];
        Some(AgentView {
            agent: a.cfg.id.clone(),
            state: a.state,
            reason: a.reason.clone(),
            since: a.since,
            idle_since: a.idle_since,
            call: a.call,
            acw_until: a.acw_until,
        })
    }

    /// A call the engine still holds.
    pub fn call_view(&self, call: CallId) -> Option<CallView> {
        let c = self.calls.get(&call)?;
        let name = |ai: &usize| self.agents[*ai].cfg.id.clone();
        let phase = match &c.phase {
            Phase::Waiting => CallPhase::Waiting,
            Phase::Offered { agents, kind } => CallPhase::Ringing {
                agents: agents.iter().map(name).collect(),
                kind: *kind,
            },
            Phase::Talking { agent, .. } => CallPhase::Talking { agent: name(agent) },
            Phase::Dialing { agent } => CallPhase::Dialing { agent: name(agent) },
            Phase::RetryWait => CallPhase::RetryWait {
                at: c.timers[CallTimer::Retry.slot()].unwrap_or_default(),
            },
        };
        Some(CallView {
            call: c.id,
            group: self.groups[c.group].cfg.id.clone(),
            caller: c.caller.clone(),
            priority: c.priority,
            arrived: c.arrived,
            entered_group: c.entered_group,
            callback: !c.live(),
            phase,
        })
    }

    /// Calls the engine holds (waiting, ringing, talking, callbacks).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Live statistics per group and agent at `now`.
    pub fn stats(&self, now: Duration) -> Stats {
        let groups: Vec<GroupStats> = self
            .groups
            .iter()
            .filter(|g| !g.retired)
            .map(|g| GroupStats {
                group: g.cfg.id.clone(),
                calls_waiting: g.queue.live_len(),
                callbacks_pending: g.callbacks_pending,
                longest_wait: g.queue.oldest_live_arrival().map(|a| now.saturating_sub(a)),
                agents_by_state: AgentState::ALL
                    .iter()
                    .map(|s| (*s, g.by_state[s.index()]))
                    .collect(),
                answer_rate_20: g.counters.sl20.rate(),
                answer_rate_30: g.counters.sl30.rate(),
                asa: g.counters.asa(),
                aht: g.counters.aht(),
                average_acw: g.counters.average_acw(),
                counters: g.counters.clone(),
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .filter(|a| !a.retired)
            .map(|a| {
                let mut tis = a.time_in_state;
                tis[a.state.index()] += now.saturating_sub(a.since.max(self.day_start));
                AgentStats {
                    agent: a.cfg.id.clone(),
                    state: a.state,
                    reason: a.reason.clone(),
                    in_state_for: now.saturating_sub(a.since),
                    time_in_state: AgentState::ALL
                        .iter()
                        .map(|s| (*s, tis[s.index()]))
                        .collect(),
                    counters: a.counters.clone(),
                }
            })
            .collect();
        let mut sl20 = ServiceLevel::default();
        let mut sl30 = ServiceLevel::default();
        for g in &groups {
            for (total, part) in [(&mut sl20, &g.counters.sl20), (&mut sl30, &g.counters.sl30)] {
                total.asked += part.asked;
                total.answered_within += part.answered_within;
                total.short_abandons += part.short_abandons;
            }
        }
        Stats {
            at: now,
            groups,
            agents,
            sl20,
            sl30,
        }
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

    // ----- inputs -----------------------------------------------------------

    fn apply(&mut self, now: Duration, input: Input) -> Result<(), AcdError> {
        use AgentState as S;
        match input {
            Input::Login { agent } => {
                let ai = self.expect_agent(&agent, &[S::LoggedOut], "log in")?;
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::Logout { agent } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::NotReady, S::AfterCallWork, S::Ringing],
                    "log out",
                )?;
                self.leave_current(ai, Release::LoggedOut, now);
                if self.agents[ai].state != S::LoggedOut {
                    self.set_agent(ai, S::LoggedOut, None, None, now, false);
                }
            }
            Input::Ready { agent } => {
                let ai = self.expect_agent(&agent, &[S::NotReady, S::AfterCallWork], "go idle")?;
                if self.agents[ai].state == S::AfterCallWork {
                    self.leave_acw(ai, now);
                }
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::NotReady { agent, reason } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::NotReady, S::AfterCallWork, S::Ringing],
                    "go not ready",
                )?;
                if !self.reasons.contains(&reason) {
                    return Err(AcdError::UnknownReason { agent, reason });
                }
                self.leave_current(
                    ai,
                    Release::NotReady(&reason, Some(CancelReason::AgentWithdrew)),
                    now,
                );
                if self.agents[ai].state != S::NotReady
                    || self.agents[ai].reason.as_deref() != Some(&reason)
                {
                    self.set_agent(ai, S::NotReady, Some(reason), None, now, false);
                }
            }
            Input::Enqueue {
                call,
                group,
                priority,
                caller,
                arrived,
                max_wait,
                on_timeout,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        max_wait,
                        on_timeout,
                        ..Call::waiting(call, caller, gi, priority, arrived.min(now), now, seq)
                    },
                );
                match self.previous_agent(call, gi, now) {
                    Some((ai, ring)) => {
                        self.groups[gi].counters.entered += 1;
                        self.note_group(gi);
                        self.emit_entered(call, gi, None, now);
                        self.offer(call, vec![ai], OfferKind::PreviousService, ring, now);
                    }
                    None => self.enter_group(call, gi, None, now, &mut Vec::new()),
                }
            }
            Input::Consult {
                call,
                group,
                priority,
                caller,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let g = &self.groups[gi];
                if g.queue.live_len() >= g.cfg.max_queue {
                    return Err(AcdError::QueueFull(group));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        on_timeout: Some(NextStep::Hangup),
                        consultation: true,
                        ..Call::waiting(call, caller, gi, priority, now, now, seq)
                    },
                );
                self.arm_waiting(call, now);
            }
            Input::DirectAnswered {
                call,
                agent,
                caller,
            } => {
                let ai = self.expect_agent(
                    &agent,
                    &[S::Idle, S::AfterCallWork],
                    "take a call put through to them",
                )?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let Some(&gi) = self.agents[ai].skills.first() else {
                    return Err(AcdError::Config(format!(
                        "agent {agent:?} has no skill group to take after-call work from"
                    )));
                };
                // A caller put back through to the agent in after-call work
                // (a transfer that failed): the work ends here.
                if self.agents[ai].state == S::AfterCallWork {
                    self.leave_acw(ai, now);
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call {
                        consultation: true,
                        ..Call::waiting(call, caller, gi, 0, now, now, seq)
                    },
                );
                self.answer(call, ai, now);
            }
            Input::CallerHungUp { call } => {
                let c = self.call_ref(call)?;
                match (&c.phase, c.live()) {
                    (Phase::Talking { .. }, _) => self.end_conversation(call, now),
                    // A consultation given up: the citizen is still served.
                    (Phase::Waiting, _) if c.consultation => {
                        self.disarm_waiting(call);
                        self.calls.remove(&call);
                    }
                    (Phase::Offered { .. }, _) if c.consultation => {
                        self.release_all(call, Release::Restore(CancelReason::CallerHungUp), now);
                        self.calls.remove(&call);
                    }
                    (Phase::Waiting, true) => {
                        self.disarm_waiting(call);
                        self.abandon(call, false, now);
                    }
                    (Phase::Offered { .. }, true) => {
                        self.release_all(call, Release::Restore(CancelReason::CallerHungUp), now);
                        self.abandon(call, true, now);
                    }
                    _ => {
                        return Err(AcdError::WrongCallState {
                            call,
                            state: c.state_name(),
                            action: "hang up the caller",
                        })
                    }
                }
            }
            Input::OfferAnswered { call, agent } => {
                let ai = self.offered_agent(call, &agent, "answer")?;
                self.answer(call, ai, now);
            }
            Input::OfferRejected { call, agent } => {
                let ai = self.offered_agent(call, &agent, "reject")?;
                self.agents[ai].counters.rejected += 1;
                self.release_one(call, ai, Release::NotReady(REASON_BUSY, None), now);
            }
            Input::OfferFailed { call, agent } => {
                let ai = self.offered_agent(call, &agent, "fail the offer")?;
                self.release_one(call, ai, Release::NotReady(REASON_UNREACHABLE, None), now);
            }
            Input::CallEnded { call } => {
                let c = self.call_ref(call)?;
                if !matches!(c.phase, Phase::Talking { .. }) {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "end the conversation",
                    });
                }
                self.end_conversation(call, now);
            }
            Input::Hold { agent } => {
                let ai = self.expect_agent(&agent, &[S::Talking], "hold")?;
                let call = self.agents[ai].call;
                self.set_agent(ai, S::OnHold, None, call, now, false);
            }
            Input::Resume { agent } => {
                let ai = self.expect_agent(&agent, &[S::OnHold], "resume")?;
                let call = self.agents[ai].call;
                self.set_agent(ai, S::Talking, None, call, now, false);
            }
            Input::ExtendAcw { agent, by } => {
                let ai =
                    self.expect_agent(&agent, &[S::AfterCallWork], "extend after-call work")?;
                if let Some(until) = self.agents[ai].acw_until {
                    self.timers.remove(&(until, Timer::Acw(ai)));
                    let until = until + by;
                    self.agents[ai].acw_until = Some(until);
                    self.timers.insert((until, Timer::Acw(ai)));
                    self.note_agent(ai);
                }
            }
            Input::CompleteAcw { agent } => {
                let ai =
                    self.expect_agent(&agent, &[S::AfterCallWork], "complete after-call work")?;
                self.leave_acw(ai, now);
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::RequestCallback { call, number } => {
                let c = self.call_ref(call)?;
                let ok = c.live() && matches!(c.phase, Phase::Waiting | Phase::Offered { .. });
                if !ok {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "request a callback",
                    });
                }
                let number = number.unwrap_or_else(|| c.caller.clone());
                let (gi, wait) = (c.group, now.saturating_sub(c.arrived));
                if matches!(c.phase, Phase::Waiting) {
                    self.disarm_waiting(call);
                } else {
                    self.release_all(call, Release::Restore(CancelReason::CallbackRequested), now);
                }
                self.groups[gi].counters.callback_requested += 1;
                self.groups[gi]
                    .counters
                    .finish(wait, Disposition::CallerLeft);
                self.note_group(gi);
                self.emit_queue(call, QueueEventKind::CallbackRequested, now);
                self.make_callback(call, number);
                self.arm_waiting(call, now);
            }
            Input::ScheduleCallback {
                call,
                group,
                number,
                priority,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let seq = self.next_seq();
                self.calls.insert(
                    call,
                    Call::waiting(call, number.clone(), gi, priority, now, now, seq),
                );
                self.make_callback(call, number);
                self.groups[gi].counters.callbacks_scheduled += 1;
                self.note_group(gi);
                self.emit_entered(call, gi, None, now);
                self.arm_waiting(call, now);
            }
            Input::CallbackResult { call, answered } => {
                let c = self.call_ref(call)?;
                let Phase::Dialing { agent: ai } = c.phase else {
                    return Err(AcdError::WrongCallState {
                        call,
                        state: c.state_name(),
                        action: "report a callback result",
                    });
                };
                self.callback_result(call, ai, answered, now);
            }
            Input::AbandonedInIvr {
                call,
                caller,
                group,
                asked_at,
            } => {
                let gi = self.group_index(&group)?;
                if self.calls.contains_key(&call) {
                    return Err(AcdError::DuplicateCall(call));
                }
                let asked_at = asked_at.min(now);
                let wait = now.saturating_sub(asked_at);
                let g = &mut self.groups[gi];
                g.counters.abandoned_in_ivr += 1;
                g.counters.finish(wait, Disposition::CallerLeft);
                self.note_group(gi);
                self.out.push_back(Output::Queue(QueueEvent {
                    call,
                    group,
                    kind: QueueEventKind::AbandonedInIvr,
                    arrived: asked_at,
                    at: now,
                }));
                self.add_missed(call, caller, gi, asked_at, MissedWhere::Ivr, now);
            }
            Input::StartOutbound { agent } => {
                let ai =
                    self.expect_agent(&agent, &[S::Idle, S::NotReady], "start an outbound call")?;
                self.set_agent(ai, S::Outbound, None, None, now, false);
            }
            Input::EndOutbound { agent } => {
                let ai = self.agent_index(&agent)?;
                let a = &self.agents[ai];
                if a.state != S::Outbound || a.call.is_some() {
                    return Err(self.wrong_agent(ai, "end an outbound call"));
                }
                self.set_agent(ai, S::Idle, None, None, now, true);
            }
            Input::NewDay => self.new_day(now),
        }
        Ok(())
    }

    /// The agent index if `call` is ringing `agent`.
    fn offered_agent(
        &self,
        call: CallId,
        agent: &str,
        action: &'static str,
    ) -> Result<usize, AcdError> {
        let ai = self.agent_index(agent)?;
        let c = self.call_ref(call)?;
        match &c.phase {
            Phase::Offered { agents, .. } if agents.contains(&ai) => Ok(ai),
            Phase::Offered { .. } => Err(AcdError::NotOfferedTo {
                call,
                agent: agent.to_owned(),
            }),
            _ => Err(AcdError::WrongCallState {
                call,
                state: c.state_name(),
                action,
            }),
        }
    }

    /// A new day begins at `now`: every counter and time in state starts
    /// from zero; missed calls already called back leave the list (those
    /// still waiting for a callback stay); services older than the
    /// previous-service window are forgotten.
    fn new_day(&mut self, now: Duration) {
        for (gi, g) in self
            .groups
            .iter_mut()
            .enumerate()
            .filter(|(_, g)| !g.retired)
        {
            g.counters = GroupCounters::default();
            if self.tracking {
                self.changed_groups.insert(gi);
            }
        }
        for (ai, a) in self
            .agents
            .iter_mut()
            .enumerate()
            .filter(|(_, a)| !a.retired)
        {
            a.counters = AgentCounters::default();
            a.time_in_state = [Duration::ZERO; 8];
            if self.tracking {
                self.changed_agents.insert(ai);
            }
        }
        self.day_start = now;
        self.record(|_| Some(Change::Day(now)));
        let (done, open): (Vec<MissedCall>, Vec<MissedCall>) = std::mem::take(&mut self.missed)
            .into_iter()
            .partition(|m| m.called_back_at.is_some());
        for m in done {
            self.record(|_| Some(Change::MissedGone(m.call)));
        }
        self.missed_open.clear();
        for m in open {
            self.push_missed(m);
        }
        if let Some(ps) = self.previous_service {
            self.last_served
                .retain(|_, (_, at)| now.saturating_sub(*at) <= ps.within);
        }
    }

    // ----- agent state --------------------------------------------------------

    /// Move an agent to `state`, keeping the group tables, idle sets and
    /// time-in-state right, and emit the event. `fresh_idle` restarts the
    /// idle-since clock; otherwise the old one is kept (withdrawn offers).
    fn set_agent(
        &mut self,
        ai: usize,
        state: AgentState,
        reason: Option<String>,
        call: Option<CallId>,
        now: Duration,
        fresh_idle: bool,
    ) {
        let a = &mut self.agents[ai];
        let old = a.state;
        a.time_in_state[old.index()] += now.saturating_sub(a.since.max(self.day_start));
        for &gi in &a.skills {
            let g = &mut self.groups[gi];
            if old == AgentState::Idle {
                g.idle.remove(&(a.idle_since, ai));
            }
            g.by_state[old.index()] = g.by_state[old.index()].saturating_sub(1);
            g.by_state[state.index()] += 1;
        }
        if state == AgentState::Idle {
            if fresh_idle {
                a.idle_since = now;
            }
            for &gi in &a.skills {
                self.groups[gi].idle.insert((a.idle_since, ai));
            }
        }
        a.state = state;
        a.reason.clone_from(&reason);
        a.call = call;
        a.since = now;
        let agent = a.cfg.id.clone();
        self.note_agent(ai);
        self.out.push_back(Output::AgentState {
            agent,
            state,
            reason,
            call,
            at: now,
        });
    }

    /// Before logout / not ready: end after-call work, or withdraw a ringing
    /// offer (the agent takes the state `how` says).
    fn leave_current(&mut self, ai: usize, how: Release<'_>, now: Duration) {
        match self.agents[ai].state {
            AgentState::AfterCallWork => self.leave_acw(ai, now),
            AgentState::Ringing => {
                if let Some(call) = self.agents[ai].call {
                    self.release_one(call, ai, how, now);
                }
            }
            _ => {}
        }
    }

    fn leave_acw(&mut self, ai: usize, now: Duration) {
        let a = &mut self.agents[ai];
        if let Some(until) = a.acw_until.take() {
            self.timers.remove(&(until, Timer::Acw(ai)));
        }
        let spent = now.saturating_sub(a.acw_started);
        a.counters.acw_total += spent;
        if let Some(gi) = a.acw_group.take() {
            let c = &mut self.groups[gi].counters;
            c.acw_total += spent;
            c.acw_count += 1;
            self.note_group(gi);
        }
        self.note_agent(ai);
    }

    // ----- queue ------------------------------------------------------------

    fn emit_queue(&mut self, call: CallId, kind: QueueEventKind, now: Duration) {
        if let Some(c) = self.calls.get(&call) {
            self.out.push_back(Output::Queue(QueueEvent {
                call,
                group: self.groups[c.group].cfg.id.clone(),
                kind,
                arrived: c.arrived,
                at: now,
            }));
        }
    }

    fn emit_entered(&mut self, call: CallId, gi: usize, from: Option<usize>, now: Duration) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let kind = QueueEventKind::Entered {
            priority: c.base_priority,
            callback: !c.live(),
            from: from.map(|f| self.groups[f].cfg.id.clone()),
        };
        self.out.push_back(Output::Queue(QueueEvent {
            call,
            group: self.groups[gi].cfg.id.clone(),
            kind,
            arrived: c.arrived,
            at: now,
        }));
    }

    /// The caller's previous agent, if previous-service routing applies.
    fn previous_agent(&self, call: CallId, gi: usize, now: Duration) -> Option<(usize, Duration)> {
        let ps = self.previous_service?;
        let caller = &self.calls.get(&call)?.caller;
        let &(ai, at) = self.last_served.get(caller)?;
        let a = self.agents.get(ai)?;
        let fits = now.saturating_sub(at) <= ps.within
            && !a.retired
            && a.state == AgentState::Idle
            && a.cfg.tenant == self.groups[gi].cfg.tenant;
        fits.then_some((ai, ps.ring_for))
    }

    /// A caller arrives in group `gi` (first time or by overflow).
    fn enter_group(
        &mut self,
        call: CallId,
        gi: usize,
        from: Option<usize>,
        now: Duration,
        visited: &mut Vec<usize>,
    ) {
        visited.push(gi);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.group = gi;
        c.entered_group = now;
        let g = &mut self.groups[gi];
        g.counters.entered += 1;
        if from.is_some() {
            g.counters.overflowed_in += 1;
        }
        self.note_group(gi);
        self.emit_entered(call, gi, from, now);
        if self.groups[gi].queue.live_len() >= self.groups[gi].cfg.max_queue {
            self.next_step(call, TimeoutReason::QueueFull, now, visited);
        } else {
            self.arm_waiting(call, now);
        }
    }

    /// Put a call (back) in its group's queue with its key and timers.
    fn arm_waiting(&mut self, call: CallId, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let g = &mut self.groups[c.group];
        let boosts = &g.cfg.priority_boost;
        c.priority = effective_priority(c.base_priority, now.saturating_sub(c.arrived), boosts);
        c.phase = Phase::Waiting;
        g.queue.insert(c.key(), c.live());
        if let Some(at) = next_boost(c.base_priority, c.arrived, now, boosts) {
            set_timer(&mut self.timers, c, CallTimer::Boost, at);
        }
        if c.live() && !c.consultation {
            if let Some((after, _)) = g.overflow {
                set_timer(
                    &mut self.timers,
                    c,
                    CallTimer::Overflow,
                    (c.entered_group + after).max(now),
                );
            }
            let max_wait = (c.entered_group + c.max_wait.unwrap_or(g.cfg.max_wait)).max(now);
            set_timer(&mut self.timers, c, CallTimer::MaxWait, max_wait);
            if let Some(every) = g.cfg.announce_every {
                set_timer(
                    &mut self.timers,
                    c,
                    CallTimer::Announce,
                    next_tick(c.entered_group, every, now),
                );
            }
        }
    }

    /// Take a waiting call out of its queue and stop its waiting timers.
    fn disarm_waiting(&mut self, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        self.groups[c.group].queue.remove(&c.key());
        for kind in [
            CallTimer::Overflow,
            CallTimer::MaxWait,
            CallTimer::Boost,
            CallTimer::Announce,
        ] {
            clear_timer(&mut self.timers, c, kind);
        }
    }

    /// The group's queue limit was hit (call already out of the queue).
    fn next_step(
        &mut self,
        call: CallId,
        reason: TimeoutReason,
        now: Duration,
        visited: &mut Vec<usize>,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let gi = c.group;
        let wait = now.saturating_sub(c.arrived);
        let overridden = c.on_timeout.clone();
        let mut next = overridden
            .clone()
            .unwrap_or_else(|| self.groups[gi].cfg.on_max_wait.clone());
        if let (Some(to), None) = (self.groups[gi].next_group, &overridden) {
            if !visited.contains(&to) {
                let why = match reason {
                    TimeoutReason::MaxWait => OverflowReason::MaxWait,
                    TimeoutReason::QueueFull => OverflowReason::QueueFull,
                };
                self.overflow(call, gi, to, why, now, visited);
                return;
            }
            // Every group on the way is full: let the caller leave a message.
            next = NextStep::Voicemail;
        }
        let g = &mut self.groups[gi];
        g.counters.timed_out += 1;
        g.counters.finish(wait, Disposition::SystemEnded);
        self.note_group(gi);
        let g = &self.groups[gi];
        self.out.push_back(Output::QueueTimeout {
            call,
            group: g.cfg.id.clone(),
            reason,
            next: next.clone(),
        });
        self.emit_queue(call, QueueEventKind::TimedOut { reason }, now);
        if next == NextStep::Callback {
            let number = self
                .calls
                .get(&call)
                .map(|c| c.caller.clone())
                .unwrap_or_default();
            self.make_callback(call, number);
            self.arm_waiting(call, now);
        } else if let Some(c) = self.calls.remove(&call) {
            self.add_missed(call, c.caller, gi, c.arrived, MissedWhere::TimedOut, now);
        }
    }

    fn overflow(
        &mut self,
        call: CallId,
        from: usize,
        to: usize,
        reason: OverflowReason,
        now: Duration,
        visited: &mut Vec<usize>,
    ) {
        self.groups[from].counters.overflowed_out += 1;
        self.note_group(from);
        self.out.push_back(Output::Overflowed {
            call,
            from: self.groups[from].cfg.id.clone(),
            to: self.groups[to].cfg.id.clone(),
            reason,
        });
        self.emit_queue(
            call,
            QueueEventKind::OverflowedOut {
                to: self.groups[to].cfg.id.clone(),
            },
            now,
        );
        self.enter_group(call, to, Some(from), now, visited);
    }

    fn make_callback(&mut self, call: CallId, number: String) {
        if let Some(c) = self.calls.get_mut(&call) {
            if c.callback_number.is_none() {
                self.groups[c.group].callbacks_pending += 1;
            }
            c.callback_number = Some(number);
        }
        self.record(|e| e.callback_record(call).map(Change::Callback));
    }

    /// The caller hung up before an agent answered (call out of the queue).
    fn abandon(&mut self, call: CallId, while_ringing: bool, now: Duration) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let (gi, wait) = (c.group, now.saturating_sub(c.arrived));
        let g = &mut self.groups[gi];
        g.counters.abandoned += 1;
        g.counters.finish(wait, Disposition::CallerLeft);
        self.note_group(gi);
        self.emit_queue(call, QueueEventKind::Abandoned { while_ringing }, now);
        if let Some(mut c) = self.calls.remove(&call) {
            clear_timer(&mut self.timers, &mut c, CallTimer::Ring);
            let place = if while_ringing {
                MissedWhere::Ringing
            } else {
                MissedWhere::Queue
            };
            self.add_missed(call, c.caller, gi, c.arrived, place, now);
        }
    }

    fn add_missed(
        &mut self,
        call: CallId,
        caller: String,
        gi: usize,
        arrived: Duration,
        place: MissedWhere,
        now: Duration,
    ) {
        let missed = MissedCall {
            call,
            caller,
            group: self.groups[gi].cfg.id.clone(),
            arrived,
            at: now,
            wait: now.saturating_sub(arrived),
            place,
            called_back_at: None,
        };
        self.record(|_| Some(Change::Missed(missed.clone())));
        self.push_missed(missed);
    }

    /// Append to the missed-call list; one not yet called back waits for
    /// a callback to its number.
    pub(super) fn push_missed(&mut self, missed: MissedCall) {
        if missed.called_back_at.is_none() {
            self.missed_open
                .entry(missed.caller.clone())
                .or_default()
                .push(self.missed.len());
        }
        self.missed.push(missed);
    }

    // ----- offers -----------------------------------------------------------

    /// Hand idle agents the best waiting calls until no group has both.
    fn dispatch(&mut self, now: Duration) {
        loop {
            let mut best: Option<(QueueKey, usize)> = None;
            for (gi, g) in self.groups.iter().enumerate() {
                if g.retired || g.idle.is_empty() {
                    continue;
                }
                if let Some(head) = g.queue.head() {
                    if best.as_ref().is_none_or(|(b, _)| head < b) {
                        best = Some((*head, gi));
                    }
                }
            }
            let Some((key, gi)) = best else {
                return;
            };
            let g = &mut self.groups[gi];
            let info = Info {
                agents: &self.agents,
                levels: &g.levels,
            };
            let chosen =
                strategy::select(g.cfg.strategy, &g.idle, &g.members, &mut g.rr_next, &info);
            if chosen.is_empty() {
                return; // unreachable: the idle set was not empty
            }
            let kind = if g.cfg.strategy == Strategy::RingAll {
                OfferKind::RingAll
            } else {
                OfferKind::Queue
            };
            let ring = g.cfg.ring_timeout;
            self.disarm_waiting(key.call);
            self.offer(key.call, chosen, kind, ring, now);
        }
    }

    /// Ring `agents` (all idle) with `call` (out of the queue).
    fn offer(
        &mut self,
        call: CallId,
        agents: Vec<usize>,
        kind: OfferKind,
        ring: Duration,
        now: Duration,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let gi = c.group;
        let number = c.callback_number.clone();
        let attempt = c.attempts + 1;
        c.phase = Phase::Offered {
            agents: agents.clone(),
            kind,
        };
        set_timer(&mut self.timers, c, CallTimer::Ring, now + ring);
        for ai in agents {
            self.groups[gi].counters.offers += 1;
            self.note_group(gi);
            let a = &mut self.agents[ai];
            a.counters.offered += 1;
            let (agent, device) = (a.cfg.id.clone(), a.cfg.device.clone());
            self.out.push_back(match &number {
                None => Output::Offer {
                    call,
                    agent,
                    device,
                    kind,
                },
                Some(number) => Output::OfferCallback {
                    call,
                    agent,
                    device,
                    number: number.clone(),
                    attempt,
                },
            });
            self.set_agent(ai, AgentState::Ringing, None, Some(call), now, false);
        }
    }

    /// Take one agent off a ringing call; requeue the call when nobody is
    /// left ringing.
    fn release_one(&mut self, call: CallId, ai: usize, how: Release<'_>, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Offered { agents, .. } = &mut c.phase else {
            return;
        };
        agents.retain(|a| *a != ai);
        let empty = agents.is_empty();
        if empty {
            clear_timer(&mut self.timers, c, CallTimer::Ring);
        }
        self.release_agent(call, ai, how, now);
        if empty {
            self.arm_waiting(call, now);
        }
    }

    /// Take every agent off a ringing call (the call itself is dealt with by
    /// the caller of this function).
    fn release_all(&mut self, call: CallId, how: Release<'_>, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        clear_timer(&mut self.timers, c, CallTimer::Ring);
        let agents = match &mut c.phase {
            Phase::Offered { agents, .. } => std::mem::take(agents),
            _ => Vec::new(),
        };
        for ai in agents {
            self.release_agent(call, ai, how, now);
        }
    }

    fn release_agent(&mut self, call: CallId, ai: usize, how: Release<'_>, now: Duration) {
        let cancel = match how {
            Release::Restore(r) => Some(r),
            Release::NotReady(_, r) => r,
            Release::LoggedOut => Some(CancelReason::AgentWithdrew),
        };
        if let Some(reason) = cancel {
            self.out.push_back(Output::CancelOffer {
                call,
                agent: self.agents[ai].cfg.id.clone(),
                reason,
            });
        }
        match how {
            Release::Restore(_) => self.set_agent(ai, AgentState::Idle, None, None, now, false),
            Release::NotReady(reason, _) => self.set_agent(
                ai,
                AgentState::NotReady,
                Some(reason.to_owned()),
                None,
                now,
                false,
            ),
            Release::LoggedOut => self.set_agent(ai, AgentState::LoggedOut, None, None, now, false),
        }
    }

    fn answer(&mut self, call: CallId, ai: usize, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        clear_timer(&mut self.timers, c, CallTimer::Ring);
        let others: Vec<usize> = match &mut c.phase {
            Phase::Offered { agents, .. } => std::mem::take(agents),
            _ => Vec::new(),
        };
        let (gi, live, wait) = (c.group, c.live(), now.saturating_sub(c.arrived));
        let consultation = c.consultation;
        if live {
            c.phase = Phase::Talking {
                agent: ai,
                answered_at: now,
            };
        } else {
            c.phase = Phase::Dialing { agent: ai };
        }
        for other in others.into_iter().filter(|a| *a != ai) {
            self.release_agent(
                call,
                other,
                Release::Restore(CancelReason::AnsweredElsewhere),
                now,
            );
        }
        if live {
            if !consultation {
                let g = &mut self.groups[gi].counters;
                g.answered += 1;
                g.answer_wait_total += wait;
                g.finish(wait, Disposition::Answered);
                self.note_group(gi);
                let agent = self.agents[ai].cfg.id.clone();
                self.emit_queue(call, QueueEventKind::Answered { agent }, now);
            }
            self.agents[ai].counters.answered += 1;
            self.set_agent(ai, AgentState::Talking, None, Some(call), now, false);
        } else {
            self.set_agent(ai, AgentState::Outbound, None, Some(call), now, false);
        }
    }

    fn callback_result(&mut self, call: CallId, ai: usize, answered: bool, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let gi = c.group;
        if answered {
            c.phase = Phase::Talking {
                agent: ai,
                answered_at: now,
            };
            let number = c.callback_number.clone().unwrap_or_default();
            let g = &mut self.groups[gi];
            g.counters.callbacks_answered += 1;
            g.callbacks_pending = g.callbacks_pending.saturating_sub(1);
            self.note_group(gi);
            self.agents[ai].counters.callbacks_answered += 1;
            self.record(|_| Some(Change::CallbackGone(call)));
            if let Some(open) = self.missed_open.remove(&number) {
                for i in open {
                    if let Some(m) = self.missed.get_mut(i) {
                        m.called_back_at = Some(now);
                        let m = m.clone();
                        self.record(|_| Some(Change::Missed(m)));
                    }
                }
            }
            let agent = self.agents[ai].cfg.id.clone();
            self.emit_queue(call, QueueEventKind::CallbackAnswered { agent }, now);
            self.set_agent(ai, AgentState::Talking, None, Some(call), now, false);
            return;
        }
        c.attempts += 1;
        let attempts = c.attempts;
        if attempts < self.callback.max_attempts {
            c.phase = Phase::RetryWait;
            let at = now + self.callback.retry_interval;
            set_timer(&mut self.timers, c, CallTimer::Retry, at);
            self.record(|e| e.callback_record(call).map(Change::Callback));
        } else {
            let g = &mut self.groups[gi];
            g.counters.callbacks_failed += 1;
            g.callbacks_pending = g.callbacks_pending.saturating_sub(1);
            self.note_group(gi);
            self.emit_queue(call, QueueEventKind::CallbackFailed { attempts }, now);
            self.calls.remove(&call);
            self.record(|_| Some(Change::CallbackGone(call)));
        }
        self.set_agent(ai, AgentState::Idle, None, None, now, true);
    }

    /// The conversation is over: account it and send the agent to ACW.
    fn end_conversation(&mut self, call: CallId, now: Duration) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        let Phase::Talking {
            agent: ai,
            answered_at,
        } = c.phase
        else {
            self.calls.insert(call, c);
            return;
        };
        let talk = now.saturating_sub(answered_at);
        let gi = c.group;
        if !c.consultation {
            let g = &mut self.groups[gi].counters;
            g.handled += 1;
            g.talk_total += talk;
            self.note_group(gi);
        }
        self.agents[ai].counters.talk_total += talk;
        self.record(|e| {
            Some(Change::Served(crate::acd::durable::ServiceRecord {
                caller: c.caller.clone(),
                agent: e.agents[ai].cfg.id.clone(),
                at: now,
            }))
        });
        self.last_served.insert(c.caller, (ai, now));
        let acw = self.groups[gi].cfg.acw;
        if acw.is_zero() {
            self.set_agent(ai, AgentState::Idle, None, None, now, true);
            return;
        }
        let until = now + acw;
        let a = &mut self.agents[ai];
        a.acw_until = Some(until);
        a.acw_started = now;
        a.acw_group = Some(gi);
        self.timers.insert((until, Timer::Acw(ai)));
        self.set_agent(ai, AgentState::AfterCallWork, None, Some(call), now, false);
    }

    // ----- timers -------------------------------------------------------------

    fn fire(&mut self, timer: Timer, now: Duration) {
        let (call, kind) = match timer {
            Timer::Acw(ai) => {
                if self.agents[ai].state == AgentState::AfterCallWork {
                    self.leave_acw(ai, now);
                    self.set_agent(ai, AgentState::Idle, None, None, now, true);
                }
                return;
            }
            Timer::Call(call, kind) => (call, kind),
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.timers[kind.slot()] = None;
        let waiting_live = c.phase == Phase::Waiting && c.live();
        let gi = c.group;
        match kind {
            CallTimer::Ring => {
                let agents = match &mut c.phase {
                    Phase::Offered { agents, .. } => std::mem::take(agents),
                    _ => return,
                };
                for ai in agents {
                    self.agents[ai].counters.no_answer += 1;
                    self.release_agent(
                        call,
                        ai,
                        Release::NotReady(REASON_NO_ANSWER, Some(CancelReason::NoAnswer)),
                        now,
                    );
                }
                self.arm_waiting(call, now);
            }
            CallTimer::Overflow if waiting_live => {
                if let Some((_, to)) = self.groups[gi].overflow {
                    self.disarm_waiting(call);
                    self.overflow(call, gi, to, OverflowReason::Timer, now, &mut vec![gi]);
                }
            }
            CallTimer::MaxWait if waiting_live => {
                self.disarm_waiting(call);
                self.next_step(call, TimeoutReason::MaxWait, now, &mut vec![gi]);
            }
            CallTimer::Boost if c.phase == Phase::Waiting => {
                self.disarm_waiting(call);
                self.arm_waiting(call, now);
            }
            CallTimer::Retry if c.phase == Phase::RetryWait => {
                self.arm_waiting(call, now);
                self.record(|e| e.callback_record(call).map(Change::Callback));
            }
            _ => {}
        }
    }

    /// Tell a waiting caller their place and estimated wait.
    fn announce(&mut self, call: CallId, now: Duration) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.phase != Phase::Waiting || !c.live() {
            return;
        }
        let g = &self.groups[c.group];
        let Some(every) = g.cfg.announce_every else {
            return;
        };
        let Some(position) = g.queue.position(&c.key()) else {
            return;
        };
        let staffed = g
            .members
            .len()
            .saturating_sub(g.by_state[AgentState::LoggedOut.index()]);
        let aht = g.counters.aht().unwrap_or(DEFAULT_HANDLE_TIME);
        let estimated_wait = u32::try_from(staffed)
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| u32::try_from(position).ok().map(|p| aht * p / n));
        set_timer(&mut self.timers, c, CallTimer::Announce, now + every);
        self.out.push_back(Output::Announce {
            call,
            position,
            estimated_wait,
        });
    }
}
