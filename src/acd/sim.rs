//! Deterministic simulation of the ACD in virtual time (issue "Done when"):
//! random arrivals, hang-ups, answers, rejects, agent state changes,
//! callbacks and timer expiries, driven by proptest (shrinkable operation
//! sequences) and by a seeded long run. A shadow model is rebuilt from the
//! engine's outputs alone, and after every step the invariants are checked
//! against both the shadow and the engine's public views:
//! - no call lost or duplicated: every call the shadow knows is in exactly
//!   one phase, and the engine holds exactly the unfinished ones;
//! - no agent rings for or handles two calls; no call rings two agents
//!   except ring-all;
//! - each offer goes to the best waiting call (priority with boosts, then
//!   arrival, then entry order) over all of the agent's groups, to the
//!   agent the group's strategy names (longest idle, fewest calls, skill);
//! - queue order equals the shadow's independent order (so ring-no-answer
//!   returns to the head and callbacks keep their place);
//! - timers are exact: ring timeouts and ACW end at their deadline to the
//!   nanosecond, nothing is overdue, overflow and max wait never early;
//! - the 20 s / 30 s answer-rate counters in `stats()` equal a recount from
//!   the raw queue-event log;
//! - every group's members-by-state in `stats()` equals the shadow's count
//!   (so the states sum to the member count), and `stats()` names exactly
//!   the live agents; deleted agents are unknown.
//!
//! The `*_with_reconfigures` runs also throw in [`Engine::reconfigure`]:
//! agents and groups added (ids re-used after deletion), deleted, given
//! other skills, strategies, ring and ACW times, overflow targets and
//! policies. The shadow predicts which ones the engine must refuse (a
//! signed-in agent, a group with a call or an agent in after-call work for
//! it) and checks a refusal changes nothing. Overflow and max-wait times of
//! kept groups are left alone: armed timers keep their old deadlines, which
//! the shadow does not model.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use proptest::prelude::{any, prop, proptest, ProptestConfig};

use super::tests::{agent, config, group, s};
use super::*;
use crate::time::Time;

#[derive(Debug, Clone, PartialEq)]
enum St {
    Waiting,
    Offered {
        agents: Vec<String>,
        kind: OfferKind,
        at: Time,
        ring: Duration,
    },
    Talking(String),
    Dialing(String),
    Retry(Time),
    Done,
}

#[derive(Debug, Clone)]
struct SCall {
    group: String,
    base: u8,
    arrived: Time,
    seq: u64,
    entered: Time,
    callback: bool,
    st: St,
}

#[derive(Debug, Clone)]
struct SAgent {
    index: usize,
    state: AgentState,
    call: Option<CallId>,
    idle_since: Time,
    acw_until: Option<Time>,
    answered: u64,
    restore: bool,
    /// The group of the after-call work in progress.
    acw_group: Option<String>,
}

struct Sim {
    e: Engine,
    cfg: AcdConfig,
    groups: HashMap<String, GroupConfig>,
    /// group → (agent, level) in configured order.
    members: HashMap<String, Vec<(String, u8)>>,
    skills: HashMap<String, Vec<String>>,
    /// Live agents and groups, in configured order.
    agent_names: Vec<String>,
    group_names: Vec<String>,
    /// Agent records the engine has made (the next agent's index).
    agents_made: usize,
    /// Deleted agent ids not added back.
    gone: Vec<String>,
    /// Reconfigurations applied and refused.
    reconfigs: (u64, u64),
    /// Agents and groups deleted by them.
    deleted: (u64, u64),
    now: Time,
    calls: BTreeMap<CallId, SCall>,
    agents: HashMap<String, SAgent>,
    ring_all_expect: HashMap<CallId, Vec<String>>,
    next_id: u64,
    seq: u64,
    /// Service-level recount from the raw log, per group: for 20 s then
    /// 30 s, (asked, answered within, short abandons).
    recount: HashMap<String, [u64; 6]>,
    /// Calls finished since the last whole-state check.
    finished: Vec<CallId>,
    missed: usize,
    offers: u64,
    answered: u64,
    errors: u64,
}

fn sim_config() -> AcdConfig {
    let mut a = group("a", Strategy::LongestIdle);
    a.ring_timeout = s(10);
    a.acw = s(5);
    a.max_queue = 6;
    a.max_wait = s(90);
    a.on_max_wait = NextStep::Group("c".into());
    a.overflow_after = Some((s(45), "b".into()));
    a.announce_every = Some(s(20));
    a.priority_boost = vec![(s(15), 3), (s(60), 6)];
    let mut b = group("b", Strategy::FewestCalls);
    b.ring_timeout = s(8);
    b.acw = Duration::ZERO;
    b.max_queue = 5;
    b.max_wait = s(60);
    b.on_max_wait = NextStep::Callback;
    // A boost configured into the emergency band stays ordinary (199).
    b.priority_boost = vec![(s(30), 4), (s(90), EMERGENCY_PRIORITY)];
    let mut c = group("c", Strategy::RingAll);
    c.ring_timeout = s(12);
    c.acw = s(7);
    c.max_queue = 4;
    c.max_wait = s(45);
    c.on_max_wait = NextStep::Voicemail;
    let mut d = group("d", Strategy::SkillWeighted);
    d.ring_timeout = s(10);
    d.acw = s(3);
    d.max_queue = 4;
    d.max_wait = s(50);
    d.on_max_wait = NextStep::Hangup;
    d.overflow_after = Some((s(20), "a".into()));
    let mut e = group("e", Strategy::RoundRobin);
    e.ring_timeout = s(9);
    e.acw = s(2);
    e.max_queue = 3;
    e.max_wait = s(40);
    e.on_max_wait = NextStep::Group("a".into());
    e.announce_every = Some(s(7));
    let mut cfg = config(
        vec![a, b, c, d, e],
        vec![
            agent("x0", &[("a", 5), ("b", 3)]),
            agent("x1", &[("a", 7)]),
            agent("x2", &[("b", 9), ("d", 2)]),
            agent("x3", &[("c", 1)]),
            agent("x4", &[("c", 5), ("e", 3)]),
            agent("x5", &[("d", 8), ("e", 6), ("a", 1)]),
            agent("x6", &[("e", 2)]),
            agent("x7", &[("b", 4)]),
            agent("x8", &[("b", 6), ("c", 2)]),
        ],
    );
    cfg.previous_service = Some(PreviousServiceConfig {
        within: s(600),
        ring_for: s(4),
    });
    cfg.callback = CallbackPolicy {
        max_attempts: 2,
        retry_interval: s(20),
    };
    cfg
}

/// The shadow's priority with boosts: a boost lifts a caller at most to
/// the top of the ordinary band.
fn eff(base: u8, waited: Duration, boosts: &[(Duration, u8)]) -> u8 {
    let mut p = base;
    for (after, q) in boosts {
        let q = (*q).min(ORDINARY_PRIORITY_MAX);
        if waited >= *after && q > p {
            p = q;
        }
    }
    p
}

impl Sim {
    fn new() -> Sim {
        let cfg = sim_config();
        let e = Engine::new(cfg.clone(), Time::UNIX_EPOCH).expect("sim config");
        let mut members: HashMap<String, Vec<(String, u8)>> = HashMap::new();
        let mut skills = HashMap::new();
        let mut agents = HashMap::new();
        for (i, a) in cfg.agents.iter().enumerate() {
            for (g, l) in &a.skills {
                members
                    .entry(g.clone())
                    .or_default()
                    .push((a.id.clone(), *l));
            }
            skills.insert(a.id.clone(), a.skills.iter().map(|x| x.0.clone()).collect());
            agents.insert(
                a.id.clone(),
                SAgent {
                    index: i,
                    state: AgentState::LoggedOut,
                    call: None,
                    idle_since: Time::UNIX_EPOCH,
                    acw_until: None,
                    answered: 0,
                    restore: false,
                    acw_group: None,
                },
            );
        }
        Sim {
            e,
            groups: cfg
                .groups
                .iter()
                .map(|g| (g.id.clone(), g.clone()))
                .collect(),
            agent_names: cfg.agents.iter().map(|a| a.id.clone()).collect(),
            group_names: cfg.groups.iter().map(|g| g.id.clone()).collect(),
            agents_made: cfg.agents.len(),
            gone: Vec::new(),
            reconfigs: (0, 0),
            deleted: (0, 0),
            cfg,
            members,
            skills,
            now: Time::UNIX_EPOCH,
            calls: BTreeMap::new(),
            agents,
            ring_all_expect: HashMap::new(),
            next_id: 1,
            seq: 0,
            recount: HashMap::new(),
            finished: Vec::new(),
            missed: 0,
            offers: 0,
            answered: 0,
            errors: 0,
        }
    }

    /// The shadow's queue order: the emergency lane (priority 200+)
    /// first, then priority, arrival, entry (no consultations here).
    fn key(&self, id: CallId) -> (bool, std::cmp::Reverse<u8>, Time, u64) {
        let c = &self.calls[&id];
        let g = &self.groups[&c.group];
        let p = eff(
            c.base,
            self.now.saturating_duration_since(c.arrived),
            &g.priority_boost,
        );
        (
            p < EMERGENCY_PRIORITY_MIN,
            std::cmp::Reverse(p),
            c.arrived,
            c.seq,
        )
    }

    fn waiting_in(&self, group: &str) -> Vec<CallId> {
        let mut v: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.group == group && c.st == St::Waiting)
            .map(|(id, _)| *id)
            .collect();
        v.sort_by_cached_key(|id| self.key(*id));
        v
    }

    fn idle_members(&self, group: &str) -> Vec<(String, u8)> {
        self.members
            .get(group)
            .map(|m| {
                m.iter()
                    .filter(|(a, _)| self.agents[a].state == AgentState::Idle)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn offered_remove(&mut self, call: CallId, agent: &str) {
        if let Some(c) = self.calls.get_mut(&call) {
            if let St::Offered { agents, .. } = &mut c.st {
                agents.retain(|a| a != agent);
                if agents.is_empty() {
                    c.st = St::Waiting;
                }
            }
        }
    }

    // ----- applying outputs to the shadow, with per-event checks -----------

    fn process(&mut self, in_timeout: bool) {
        let mut outs = Vec::new();
        while let Some(o) = self.e.poll_output() {
            outs.push(o);
        }
        for o in outs {
            self.apply_output(o, in_timeout);
        }
        for (call, left) in &self.ring_all_expect {
            assert!(left.is_empty(), "ring-all {call} missed agents {left:?}");
        }
        self.ring_all_expect.clear();
    }

    fn apply_output(&mut self, o: Output, in_timeout: bool) {
        let now = self.now;
        match o {
            Output::Queue(ev) => self.apply_queue_event(ev),
            Output::Overflowed {
                call, from, reason, ..
            } => {
                let c = &self.calls[&call];
                let g = &self.groups[&from];
                assert_eq!(c.group, from);
                match reason {
                    OverflowReason::Timer => {
                        let after = g.overflow_after.as_ref().map(|x| x.0).expect("overflow");
                        assert!(now >= c.entered + after, "{call} overflowed early");
                    }
                    OverflowReason::MaxWait => assert!(now >= c.entered + g.max_wait),
                    OverflowReason::QueueFull => {}
                }
            }
            Output::QueueTimeout {
                call,
                group,
                reason,
                next,
            } => {
                let c = self.calls.get_mut(&call).expect("known call");
                assert_eq!(c.group, group);
                if reason == TimeoutReason::MaxWait {
                    assert!(now >= c.entered + self.groups[&group].max_wait);
                }
                if next == NextStep::Callback {
                    c.callback = true;
                } else {
                    c.st = St::Done;
                    self.missed += 1;
                }
            }
            Output::Offer {
                call, agent, kind, ..
            } => {
                assert!(!self.calls[&call].callback, "live offer for a callback");
                self.check_offer(call, &agent, kind);
            }
            Output::OfferCallback { call, agent, .. } => {
                let c = &self.calls[&call];
                assert!(c.callback, "callback offer for a live call");
                let kind = if self.groups[&c.group].strategy == Strategy::RingAll {
                    OfferKind::RingAll
                } else {
                    OfferKind::Queue
                };
                self.check_offer(call, &agent, kind);
            }
            Output::CancelOffer {
                call,
                agent,
                reason,
            } => {
                let c = &self.calls[&call];
                let St::Offered {
                    agents, at, ring, ..
                } = &c.st
                else {
                    panic!("cancel for {call} not ringing: {:?}", c.st);
                };
                assert!(agents.contains(&agent));
                if reason == CancelReason::NoAnswer {
                    assert_eq!(now, *at + *ring, "ring timeout not exact");
                }
                self.agents.get_mut(&agent).expect("agent").restore = matches!(
                    reason,
                    CancelReason::CallerHungUp
                        | CancelReason::AnsweredElsewhere
                        | CancelReason::CallbackRequested
                );
            }
            Output::Announce { call, position, .. } => {
                let c = &self.calls[&call];
                assert!(c.st == St::Waiting && !c.callback);
                let order = self.waiting_in(&c.group.clone());
                let pos = order.iter().position(|x| *x == call).expect("in queue") + 1;
                assert_eq!(position, pos);
            }
            Output::AgentState {
                agent,
                state,
                call,
                at,
                ..
            } => self.apply_agent_state(agent, state, call, at, in_timeout),
        }
    }

    fn apply_queue_event(&mut self, ev: QueueEvent) {
        let now = self.now;
        assert_eq!(ev.at, now);
        self.recount_event(&ev);
        let id = ev.call;
        match ev.kind {
            QueueEventKind::Entered {
                priority,
                callback,
                from,
            } => match self.calls.get_mut(&id) {
                Some(c) => {
                    assert!(from.is_some(), "{id} entered twice");
                    assert_eq!(c.arrived, ev.arrived, "overflow changed the arrival");
                    assert_eq!(c.st, St::Waiting);
                    c.group = ev.group;
                    c.entered = now;
                }
                None => {
                    self.seq += 1;
                    self.calls.insert(
                        id,
                        SCall {
                            group: ev.group,
                            base: priority,
                            arrived: ev.arrived,
                            seq: self.seq,
                            entered: now,
                            callback,
                            st: St::Waiting,
                        },
                    );
                }
            },
            QueueEventKind::Answered { agent } => {
                let c = self.calls.get_mut(&id).expect("known");
                match &c.st {
                    St::Offered { agents, .. } => assert!(agents.contains(&agent)),
                    st => panic!("{id} answered while {st:?}"),
                }
                c.st = St::Talking(agent.clone());
                self.agents.get_mut(&agent).expect("agent").answered += 1;
                self.answered += 1;
            }
            QueueEventKind::Abandoned { .. } => {
                let c = self.calls.get_mut(&id).expect("known");
                assert_eq!(c.st, St::Waiting, "{id} abandoned");
                c.st = St::Done;
                self.missed += 1;
            }
            QueueEventKind::CallbackRequested => {
                let c = self.calls.get_mut(&id).expect("known");
                assert_eq!(c.st, St::Waiting);
                c.callback = true;
            }
            QueueEventKind::TimedOut { .. } | QueueEventKind::OverflowedOut { .. } => {
                assert!(self.calls.contains_key(&id));
            }
            QueueEventKind::AbandonedInIvr => self.missed += 1,
            QueueEventKind::CallbackAnswered { agent } => {
                let c = self.calls.get_mut(&id).expect("known");
                assert_eq!(c.st, St::Dialing(agent.clone()));
                c.st = St::Talking(agent);
            }
            QueueEventKind::CallbackFailed { .. } => {
                let c = self.calls.get_mut(&id).expect("known");
                assert!(matches!(c.st, St::Dialing(_)));
                c.st = St::Done;
            }
        }
    }

    fn check_offer(&mut self, call: CallId, agent: &str, kind: OfferKind) {
        self.offers += 1;
        let now = self.now;
        let a = &self.agents[agent];
        assert_eq!(
            a.state,
            AgentState::Idle,
            "{agent} offered {call} while {:?}",
            a.state
        );
        let c = self.calls[&call].clone();
        let g = self.groups[&c.group].clone();
        match &c.st {
            St::Waiting => {
                if kind != OfferKind::PreviousService {
                    // Best waiting call over all of the agent's groups.
                    let mine = self.key(call);
                    let groups = &self.skills[agent];
                    for (w, wc) in &self.calls {
                        if wc.st == St::Waiting && groups.contains(&wc.group) {
                            assert!(
                                self.key(*w) >= mine,
                                "{call} offered to {agent} before better {w}"
                            );
                        }
                    }
                    let idle = self.idle_members(&c.group);
                    let ix = |a: &str| self.agents[a].index;
                    let since = |a: &str| self.agents[a].idle_since;
                    let want = match g.strategy {
                        Strategy::LongestIdle => {
                            idle.iter().min_by_key(|(a, _)| (since(a), ix(a))).cloned()
                        }
                        Strategy::FewestCalls => idle
                            .iter()
                            .min_by_key(|(a, _)| (self.agents[a].answered, since(a), ix(a)))
                            .cloned(),
                        Strategy::SkillWeighted => idle
                            .iter()
                            .min_by_key(|(a, l)| (std::cmp::Reverse(*l), since(a), ix(a)))
                            .cloned(),
                        Strategy::RoundRobin => None,
                        Strategy::RingAll => {
                            assert_eq!(kind, OfferKind::RingAll);
                            let mut all: Vec<String> = idle.iter().map(|x| x.0.clone()).collect();
                            all.sort_by_key(|a| (since(a), ix(a)));
                            self.ring_all_expect.insert(call, all);
                            None
                        }
                    };
                    if let Some((w, _)) = want {
                        assert_eq!(w, agent, "{:?} picked the wrong agent", g.strategy);
                    }
                    if g.strategy == Strategy::RoundRobin {
                        assert!(idle.iter().any(|(a, _)| a == agent));
                    }
                }
                let ring = if kind == OfferKind::PreviousService {
                    self.cfg
                        .previous_service
                        .map(|p| p.ring_for)
                        .unwrap_or_default()
                } else {
                    g.ring_timeout
                };
                self.calls.get_mut(&call).expect("known").st = St::Offered {
                    agents: vec![agent.to_owned()],
                    kind,
                    at: now,
                    ring,
                };
            }
            St::Offered { kind: k, at, .. } => {
                assert_eq!(*k, OfferKind::RingAll, "{call} offered twice");
                assert_eq!(*at, now);
                if let St::Offered { agents, .. } = &mut self.calls.get_mut(&call).expect("k").st {
                    agents.push(agent.to_owned());
                }
            }
            st => panic!("{call} offered while {st:?}"),
        }
        if let Some(left) = self.ring_all_expect.get_mut(&call) {
            assert_eq!(left.first().map(String::as_str), Some(agent));
            left.remove(0);
        }
    }

    fn apply_agent_state(
        &mut self,
        agent: String,
        state: AgentState,
        call: Option<CallId>,
        at: Time,
        in_timeout: bool,
    ) {
        assert_eq!(at, self.now);
        let a = self.agents[&agent].clone();
        let prev = a.state;
        if prev == AgentState::Ringing {
            let c = a.call.expect("ringing has a call");
            match state {
                AgentState::Talking if call == Some(c) => {
                    assert_eq!(self.calls[&c].st, St::Talking(agent.clone()));
                }
                AgentState::Outbound if call == Some(c) => {
                    let sc = self.calls.get_mut(&c).expect("known");
                    assert!(sc.callback);
                    sc.st = St::Dialing(agent.clone());
                    self.answered += 1;
                }
                _ => self.offered_remove(c, &agent),
            }
        }
        if matches!(prev, AgentState::Talking | AgentState::OnHold)
            && matches!(state, AgentState::AfterCallWork | AgentState::Idle)
        {
            let c = a.call.expect("talking has a call");
            self.calls.get_mut(&c).expect("known").st = St::Done;
        }
        if prev == AgentState::Outbound && state == AgentState::Idle {
            if let Some(c) = a.call {
                let interval = self.cfg.callback.retry_interval;
                let sc = self.calls.get_mut(&c).expect("known");
                if sc.st != St::Done {
                    sc.st = St::Retry(self.now + interval);
                }
            }
        }
        if state == AgentState::Ringing {
            assert_eq!(prev, AgentState::Idle, "{agent} double-booked");
            assert!(call.is_some());
        }
        if prev == AgentState::AfterCallWork && state == AgentState::Idle && in_timeout {
            assert_eq!(Some(at), a.acw_until, "ACW did not end exactly");
        }
        let s = self.agents.get_mut(&agent).expect("agent");
        if state == AgentState::Idle && !(prev == AgentState::Ringing && s.restore) {
            s.idle_since = at;
        }
        s.acw_until = None;
        s.acw_group = None;
        if state == AgentState::AfterCallWork {
            let c = call.expect("acw names the call");
            let g = &self.calls[&c].group;
            s.acw_until = Some(at + self.groups[g].acw);
            s.acw_group = Some(g.clone());
        }
        s.state = state;
        s.call = call;
        s.restore = false;
    }

    // ----- whole-state invariants -------------------------------------------

    fn check_all(&self) {
        let now = self.now;
        let mut active = 0;
        let mut ringing: HashMap<&str, CallId> = HashMap::new();
        for (id, c) in &self.calls {
            let view = self.e.call_view(*id);
            if c.st == St::Done {
                assert!(view.is_none(), "{id} finished but still held");
                continue;
            }
            active += 1;
            let v = view.unwrap_or_else(|| panic!("{id} lost ({:?})", c.st));
            assert_eq!(v.group, c.group, "{id}");
            assert_eq!(v.callback, c.callback, "{id}");
            assert_eq!(v.arrived, c.arrived, "{id}");
            let g = &self.groups[&c.group];
            match (&c.st, &v.phase) {
                (St::Waiting, CallPhase::Waiting) => {
                    if !c.callback {
                        if let Some((after, _)) = &g.overflow_after {
                            assert!(now < c.entered + *after, "{id} overflow overdue");
                        }
                        assert!(now < c.entered + g.max_wait, "{id} max wait overdue");
                    }
                }
                (
                    St::Offered {
                        agents,
                        kind,
                        at,
                        ring,
                    },
                    CallPhase::Ringing {
                        agents: va,
                        kind: vk,
                    },
                ) => {
                    assert_eq!(agents, va, "{id}");
                    assert_eq!(kind, vk);
                    assert!(now < *at + *ring, "{id} ring overdue");
                    if *kind != OfferKind::RingAll {
                        assert_eq!(agents.len(), 1, "{id} rings several agents");
                    }
                    for a in agents {
                        assert!(ringing.insert(a, *id).is_none(), "{a} rings twice");
                        assert_eq!(self.agents[a].state, AgentState::Ringing);
                        assert_eq!(self.agents[a].call, Some(*id));
                    }
                }
                (St::Talking(a), CallPhase::Talking { agent }) => {
                    assert_eq!(a, agent);
                    assert!(matches!(
                        self.agents[a].state,
                        AgentState::Talking | AgentState::OnHold
                    ));
                    assert_eq!(self.agents[a].call, Some(*id));
                }
                (St::Dialing(a), CallPhase::Dialing { agent }) => {
                    assert_eq!(a, agent);
                    assert_eq!(self.agents[a].state, AgentState::Outbound);
                }
                (St::Retry(at), CallPhase::RetryWait { at: va }) => {
                    assert_eq!(at, va);
                    assert!(now < *at, "{id} retry overdue");
                }
                (st, ph) => panic!("{id}: shadow {st:?} vs engine {ph:?}"),
            }
        }
        assert_eq!(self.e.active_calls(), active, "phantom calls in the engine");
        // Agents agree, and nobody holds two calls.
        let mut holders: HashMap<CallId, &str> = HashMap::new();
        for (name, a) in &self.agents {
            let v = self.e.agent_view(name).expect("agent");
            assert_eq!(v.state, a.state, "{name}");
            assert_eq!(v.call, a.call, "{name}");
            if a.state == AgentState::Idle {
                assert_eq!(v.idle_since, a.idle_since, "{name} idle since");
            }
            if a.state == AgentState::AfterCallWork {
                assert_eq!(v.acw_until, a.acw_until, "{name} acw");
                assert!(a.acw_until.is_some_and(|u| now < u), "{name} ACW overdue");
            }
            if matches!(
                a.state,
                AgentState::Ringing | AgentState::Talking | AgentState::OnHold
            ) {
                let c = a.call.expect("busy agent has a call");
                if let Some(other) = holders.insert(c, name) {
                    let ring_all = matches!(
                        self.calls[&c].st,
                        St::Offered {
                            kind: OfferKind::RingAll,
                            ..
                        }
                    );
                    assert!(ring_all, "{c} held by {other} and {name}");
                }
            }
        }
        // Queue order and work conservation per group.
        for g in self.groups.keys() {
            let want = self.waiting_in(g);
            let snap = self.e.queue_snapshot(g).expect("group");
            let got: Vec<CallId> = snap.iter().map(|q| q.call).collect();
            assert_eq!(got, want, "queue order of {g}");
            for q in &snap {
                let c = &self.calls[&q.call];
                let p = eff(
                    c.base,
                    now.saturating_duration_since(c.arrived),
                    &self.groups[g].priority_boost,
                );
                assert_eq!(q.priority, p, "{} priority", q.call);
            }
            if !want.is_empty() {
                assert!(
                    self.idle_members(g).is_empty(),
                    "{g} has waiting calls and idle agents"
                );
            }
        }
        let sl = &self.recount;
        let stats = self.e.stats(now);
        let mut total = [0u64; 6];
        for gs in &stats.groups {
            let row = sl.get(&gs.group).copied().unwrap_or_default();
            let c = &gs.counters;
            let got = [
                c.sl20.asked,
                c.sl20.answered_within,
                c.sl20.short_abandons,
                c.sl30.asked,
                c.sl30.answered_within,
                c.sl30.short_abandons,
            ];
            assert_eq!(got, row, "service level of {}", gs.group);
            for i in 0..6 {
                total[i] += row[i];
            }
        }
        assert_eq!(
            [
                stats.sl20.asked,
                stats.sl20.answered_within,
                stats.sl20.short_abandons,
                stats.sl30.asked,
                stats.sl30.answered_within,
                stats.sl30.short_abandons
            ],
            total
        );
        assert_eq!(self.e.missed_calls().len(), self.missed, "missed-call list");
        // Members by state, and exactly the live agents.
        let mut live: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        live.sort_unstable();
        let mut named: Vec<&str> = stats.agents.iter().map(|a| a.agent.as_str()).collect();
        named.sort_unstable();
        assert_eq!(named, live, "agents in the stats");
        assert_eq!(stats.groups.len(), self.groups.len(), "groups in the stats");
        for gs in &stats.groups {
            let members = self.members.get(&gs.group).map_or(&[][..], Vec::as_slice);
            let total: usize = gs.agents_by_state.iter().map(|(_, n)| n).sum();
            assert_eq!(total, members.len(), "members of {}", gs.group);
            for (state, n) in &gs.agents_by_state {
                let want = members
                    .iter()
                    .filter(|(a, _)| self.agents[a].state == *state)
                    .count();
                assert_eq!(*n, want, "{} agents {state:?}", gs.group);
            }
        }
        for gone in &self.gone {
            assert!(
                self.e.agent_view(gone).is_none(),
                "deleted {gone} still known"
            );
        }
    }

    /// Count one raw queue event the way REQUIREMENTS §8 defines the rate.
    fn recount_event(&mut self, ev: &QueueEvent) {
        let wait = ev.at.saturating_duration_since(ev.arrived);
        let how = match &ev.kind {
            QueueEventKind::Answered { .. } => 0,
            QueueEventKind::Abandoned { .. }
            | QueueEventKind::CallbackRequested
            | QueueEventKind::AbandonedInIvr => 1,
            QueueEventKind::TimedOut { .. } => 2,
            _ => return,
        };
        let row = self.recount.entry(ev.group.clone()).or_default();
        for (i, limit) in [(0, s(20)), (3, s(30))] {
            row[i] += 1;
            if wait <= limit && how == 0 {
                row[i + 1] += 1;
            }
            if wait <= limit && how == 1 {
                row[i + 2] += 1;
            }
        }
    }

    /// Drop finished calls from the shadow once the engine is seen to have
    /// dropped them too.
    fn prune(&mut self) {
        let done: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.st == St::Done)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            assert!(
                self.e.call_view(id).is_none(),
                "{id} finished but still held"
            );
            self.calls.remove(&id);
            self.finished.push(id);
        }
        for id in self.finished.drain(..) {
            assert!(self.e.call_view(id).is_none(), "{id} came back");
        }
    }

    // ----- driving ------------------------------------------------------------

    /// Fire every deadline up to `target`, one instant at a time.
    fn advance(&mut self, target: Time) {
        while let Some(t) = self.e.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            let now = self.now;
            for c in self.calls.values_mut() {
                if matches!(c.st, St::Retry(at) if at <= now) {
                    c.st = St::Waiting;
                }
            }
            self.e.handle_timeout(now);
            self.process(true);
            self.check_all();
            self.prune();
        }
        self.now = self.now.max(target);
    }

    fn apply(&mut self, input: Input) {
        let dbg = format!("{input:?}");
        let extend = match &input {
            Input::ExtendAcw { agent, by } => Some((agent.clone(), *by)),
            _ => None,
        };
        match self.e.handle(self.now, input) {
            Ok(()) => {
                if let Some((agent, by)) = extend {
                    let a = self.agents.get_mut(&agent).expect("agent");
                    a.acw_until = a.acw_until.map(|u| u + by);
                }
                self.process(false);
            }
            Err(err) => {
                self.errors += 1;
                assert!(!err.to_string().is_empty());
                assert!(self.e.poll_output().is_none(), "{dbg} failed with output");
            }
        }
    }

    fn pick<F: Fn(&SCall) -> bool>(&self, n: u16, f: F) -> Option<CallId> {
        let v: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| f(c))
            .map(|(id, _)| *id)
            .collect();
        (!v.is_empty()).then(|| v[n as usize % v.len()])
    }

    /// Mostly an agent in one of `states` (so the run keeps moving),
    /// sometimes anyone.
    fn agent_in(&self, a: u16, b: u16, states: &[AgentState]) -> Option<String> {
        if b.is_multiple_of(7) {
            return None;
        }
        let v: Vec<&String> = self
            .agent_names
            .iter()
            .filter(|n| states.contains(&self.agents[*n].state))
            .collect();
        (!v.is_empty()).then(|| v[a as usize % v.len()].clone())
    }

    fn step(&mut self, (kind, a, b, d): (u8, u16, u16, u8)) {
        let dt = match d % 8 {
            0 | 1 => Duration::ZERO,
            2..=4 => Duration::from_millis(u64::from(a % 1000)),
            5 | 6 => s(u64::from(a % 5)),
            _ => Duration::from_millis(u64::from(a % 20_000)),
        };
        self.advance(self.now + dt);
        let now = self.now;
        let agent = self.agent_names[a as usize % self.agent_names.len()].clone();
        let groups = self.group_names.clone();
        let gname = groups[b as usize % groups.len()].to_string();
        let stray = CallId(u64::from(a) % (self.next_id + 2));
        let input = match kind % 27 {
            0..=3 => {
                self.next_id += 1;
                let prio = [0, 0, 0, 1, 2, 5, EMERGENCY_PRIORITY][b as usize % 7];
                Input::Enqueue {
                    call: CallId(self.next_id),
                    group: groups[a as usize % groups.len()].clone(),
                    priority: prio,
                    caller: format!("c{}", b % 12),
                    arrived: now - s(u64::from(b % 3)),
                    max_wait: None,
                    on_timeout: None,
                }
            }
            4 => Input::CallerHungUp {
                call: self
                    .pick(a, |c| c.st != St::Done && !c.callback)
                    .unwrap_or(stray),
            },
            5..=12 => match self.pick(a, |c| matches!(c.st, St::Offered { .. })) {
                Some(call) => {
                    let St::Offered { agents, .. } = &self.calls[&call].st else {
                        unreachable!()
                    };
                    let who = if b % 11 == 0 {
                        agent
                    } else {
                        agents[b as usize % agents.len()].clone()
                    };
                    match d % 9 {
                        0 => Input::OfferRejected { call, agent: who },
                        1 => Input::OfferFailed { call, agent: who },
                        _ => Input::OfferAnswered { call, agent: who },
                    }
                }
                None => Input::OfferAnswered { call: stray, agent },
            },
            13 | 14 => Input::CallEnded {
                call: self
                    .pick(a, |c| matches!(c.st, St::Talking(_)))
                    .unwrap_or(stray),
            },
            15 => Input::Login {
                agent: self
                    .agent_in(a, b, &[AgentState::LoggedOut])
                    .unwrap_or(agent),
            },
            16 => Input::Logout { agent },
            17..=19 => Input::Ready {
                agent: self
                    .agent_in(a, b, &[AgentState::NotReady, AgentState::AfterCallWork])
                    .unwrap_or(agent),
            },
            20 => Input::NotReady {
                agent,
                reason: ["break", "training", "ticket", "nap"][b as usize % 4].into(),
            },
            21 => match b % 2 {
                0 => Input::Hold { agent },
                _ => Input::Resume { agent },
            },
            22 => match b % 3 {
                0 => Input::ExtendAcw {
                    agent,
                    by: s(u64::from(b % 10)),
                },
                _ => Input::CompleteAcw { agent },
            },
            23 => Input::RequestCallback {
                call: self
                    .pick(a, |c| {
                        !c.callback && matches!(c.st, St::Waiting | St::Offered { .. })
                    })
                    .unwrap_or(stray),
                number: (b % 2 == 0).then(|| format!("n{b}")),
            },
            24 | 25 => Input::CallbackResult {
                call: self
                    .pick(a, |c| matches!(c.st, St::Dialing(_)))
                    .unwrap_or(stray),
                answered: b % 3 != 0,
            },
            _ => {
                self.next_id += 1;
                let call = CallId(self.next_id);
                match b % 4 {
                    0 => Input::AbandonedInIvr {
                        call,
                        caller: format!("c{}", a % 12),
                        group: gname,
                        asked_at: now - s(u64::from(a % 40)),
                    },
                    1 => Input::ScheduleCallback {
                        call,
                        group: gname,
                        number: format!("c{}", a % 12),
                        priority: (a % 3) as u8,
                    },
                    2 => Input::StartOutbound { agent },
                    _ => Input::EndOutbound { agent },
                }
            }
        };
        self.apply(input);
        self.advance(self.now);
        self.check_all();
        self.prune();
    }
}

// ----- reconfiguration ---------------------------------------------------------

/// Ids the reconfiguring runs draw new agents and groups from (so deleted
/// ids come back).
const AGENT_POOL: [&str; 14] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "y0", "y1", "y2", "y3", "y4",
];
const GROUP_POOL: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
const STRATEGIES: [Strategy; 5] = [
    Strategy::LongestIdle,
    Strategy::FewestCalls,
    Strategy::SkillWeighted,
    Strategy::RoundRobin,
    Strategy::RingAll,
];

impl Sim {
    /// Skills over the live groups chosen by the bits of `bits`.
    fn random_skills(&self, bits: u16, level: u8) -> Vec<(String, u8)> {
        self.group_names
            .iter()
            .enumerate()
            .filter(|(i, _)| bits >> (i % 16) & 1 == 1)
            .map(|(i, g)| (g.clone(), 1 + ((usize::from(level) + i) % 10) as u8))
            .collect()
    }

    /// Another live group than `not`, if there is one.
    fn other_group(&self, n: u16, not: &str) -> Option<String> {
        let v: Vec<&String> = self.group_names.iter().filter(|g| *g != not).collect();
        (!v.is_empty()).then(|| v[n as usize % v.len()].clone())
    }

    /// A new configuration: the current one with one random change. The
    /// second value says whether the engine must refuse it.
    fn mutate(&self, (m, a, b, d): (u8, u16, u16, u8)) -> (AcdConfig, bool) {
        let mut cfg = self.cfg.clone();
        let mut refuse = false;
        let live_call_in = |g: &str| {
            self.calls
                .values()
                .any(|c| c.st != St::Done && c.group == g)
        };
        match m % 9 {
            0 | 1 => {
                // New skills for an agent, whatever their state.
                let i = a as usize % cfg.agents.len();
                cfg.agents[i].skills = self.random_skills(b, d);
            }
            2 => {
                // Add an agent (possibly a deleted id).
                let free: Vec<&&str> = AGENT_POOL
                    .iter()
                    .filter(|id| !self.agents.contains_key(**id))
                    .collect();
                if let Some(id) = (!free.is_empty()).then(|| free[a as usize % free.len()]) {
                    let mut new = agent(id, &[]);
                    new.skills = self.random_skills(b | 1, d);
                    cfg.agents.insert(b as usize % (cfg.agents.len() + 1), new);
                }
            }
            3 => {
                // Delete an agent: mostly a logged-out one.
                let out: Vec<&String> = self
                    .agent_names
                    .iter()
                    .filter(|n| self.agents[*n].state == AgentState::LoggedOut)
                    .collect();
                let id = if b % 4 != 0 && !out.is_empty() {
                    out[a as usize % out.len()].clone()
                } else {
                    self.agent_names[a as usize % self.agent_names.len()].clone()
                };
                if cfg.agents.len() > 2 {
                    refuse = self.agents[&id].state != AgentState::LoggedOut;
                    cfg.agents.retain(|x| x.id != id);
                }
            }
            4 => {
                // Add a group (possibly a deleted id) and give it agents.
                let free: Vec<&&str> = GROUP_POOL
                    .iter()
                    .filter(|id| !self.groups.contains_key(**id))
                    .collect();
                if let Some(id) = (!free.is_empty()).then(|| free[a as usize % free.len()]) {
                    let mut g = group(id, STRATEGIES[b as usize % 5]);
                    g.ring_timeout = s(5 + u64::from(d % 10));
                    g.acw = s(u64::from(d % 6));
                    g.max_queue = 2 + a as usize % 5;
                    g.max_wait = s(30 + u64::from(b % 60));
                    g.on_max_wait = match d % 4 {
                        0 => NextStep::Voicemail,
                        1 => NextStep::Callback,
                        2 => NextStep::Hangup,
                        _ => self
                            .other_group(a, id)
                            .map_or(NextStep::Hangup, NextStep::Group),
                    };
                    g.overflow_after = (b % 3 == 0)
                        .then(|| self.other_group(b, id))
                        .flatten()
                        .map(|t| (s(15 + u64::from(a % 30)), t));
                    g.announce_every = (d % 5 == 0).then(|| s(10));
                    g.priority_boost = if b % 2 == 0 {
                        vec![(s(20), 4)]
                    } else {
                        Vec::new()
                    };
                    for (i, x) in cfg.agents.iter_mut().enumerate() {
                        if (a >> (i % 16)) & 1 == 1 {
                            x.skills
                                .push((id.to_string(), 1 + ((usize::from(d) + i) % 10) as u8));
                        }
                    }
                    cfg.groups.push(g);
                }
            }
            5 => {
                // Delete a group: mostly one with no call.
                let empty: Vec<&String> = self
                    .group_names
                    .iter()
                    .filter(|g| !live_call_in(g))
                    .collect();
                let id = if b % 4 != 0 && !empty.is_empty() {
                    empty[a as usize % empty.len()].clone()
                } else {
                    self.group_names[a as usize % self.group_names.len()].clone()
                };
                if cfg.groups.len() > 2 {
                    refuse = live_call_in(&id)
                        || self.agents.values().any(|x| {
                            x.state == AgentState::AfterCallWork
                                && x.acw_group.as_deref() == Some(id.as_str())
                        });
                    cfg.groups.retain(|g| g.id != id);
                    let others: Vec<String> = cfg.groups.iter().map(|g| g.id.clone()).collect();
                    for (i, g) in cfg.groups.iter_mut().enumerate() {
                        // Retarget (never add or re-time) overflow.
                        let pick = others
                            .iter()
                            .filter(|o| **o != g.id)
                            .nth((a as usize + i) % others.len().saturating_sub(1).max(1))
                            .cloned();
                        if let Some((_, t)) = &mut g.overflow_after {
                            if *t == id {
                                match pick.clone() {
                                    Some(p) => *t = p,
                                    None => g.overflow_after = None,
                                }
                            }
                        }
                        if g.on_max_wait == NextStep::Group(id.clone()) {
                            g.on_max_wait = pick.map_or(NextStep::Voicemail, NextStep::Group);
                        }
                    }
                    for x in &mut cfg.agents {
                        x.skills.retain(|(g, _)| *g != id);
                    }
                }
            }
            6 | 7 => {
                // Other settings for a kept group (not its overflow time,
                // max wait or boosts: armed timers keep theirs).
                let i = a as usize % cfg.groups.len();
                let id = cfg.groups[i].id.clone();
                let retarget = self.other_group(b, &id);
                let g = &mut cfg.groups[i];
                g.name = format!("renamed {d}");
                g.strategy = STRATEGIES[b as usize % 5];
                g.ring_timeout = s(4 + u64::from(d % 12));
                g.acw = s(u64::from(d % 8));
                g.max_queue = 1 + (a as usize / 7) % 6;
                if let (Some((_, t)), Some(r)) = (&mut g.overflow_after, retarget.clone()) {
                    *t = r;
                }
                if matches!(g.on_max_wait, NextStep::Group(_)) || d % 3 == 0 {
                    g.on_max_wait = match (d % 4, retarget) {
                        (0, _) => NextStep::Callback,
                        (1, _) => NextStep::Voicemail,
                        (_, Some(r)) => NextStep::Group(r),
                        (_, None) => NextStep::Hangup,
                    };
                }
            }
            _ => {
                // Policies: reasons, previous service, callbacks.
                cfg.not_ready_reasons = ["break", "training", "ticket", "nap"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (b >> i) & 1 == 1)
                    .map(|(_, r)| r.to_string())
                    .collect();
                cfg.previous_service = (d % 3 != 0).then(|| PreviousServiceConfig {
                    within: s(300 + u64::from(a % 600)),
                    ring_for: s(2 + u64::from(d % 5)),
                });
                cfg.callback = CallbackPolicy {
                    max_attempts: 1 + u32::from(d % 3),
                    retry_interval: s(5 + u64::from(a % 30)),
                };
            }
        }
        (cfg, refuse)
    }

    /// One random reconfiguration, checked against the shadow.
    fn reconfigure(&mut self, op: (u8, u16, u16, u8)) {
        let (cfg, refuse) = self.mutate(op);
        let now = self.now;
        let before = self.e.stats(now);
        let views: Vec<_> = self
            .agent_names
            .iter()
            .map(|a| self.e.agent_view(a))
            .collect();
        let deadline = self.e.poll_timeout();
        match self.e.reconfigure(now, cfg.clone()) {
            Err(err) => {
                assert!(refuse, "refused {err}");
                assert!(matches!(err, AcdError::InUse(_)), "{err}");
                self.reconfigs.1 += 1;
                assert!(self.e.poll_output().is_none(), "a refusal produced output");
                assert_eq!(self.e.stats(now), before, "a refusal changed the stats");
                let after: Vec<_> = self
                    .agent_names
                    .iter()
                    .map(|a| self.e.agent_view(a))
                    .collect();
                assert_eq!(after, views, "a refusal changed an agent");
                assert_eq!(self.e.poll_timeout(), deadline);
            }
            Ok(done) => {
                assert!(!refuse, "should have been refused");
                self.reconfigs.0 += 1;
                self.install_shadow(cfg, &done);
                self.process(false);
            }
        }
        self.advance(self.now);
        self.check_all();
        self.prune();
    }

    /// Bring the shadow's configuration up to `cfg`, checking the engine's
    /// account of what changed.
    fn install_shadow(&mut self, cfg: AcdConfig, done: &Reconfigured) {
        let old = &self.cfg;
        let old_agents: HashMap<&str, &AgentConfig> =
            old.agents.iter().map(|a| (a.id.as_str(), a)).collect();
        let old_groups: HashMap<&str, &GroupConfig> =
            old.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let mut want = Reconfigured::default();
        for a in &cfg.agents {
            match old_agents.get(a.id.as_str()) {
                None => want.agents_added.push(a.id.clone()),
                Some(o) if *o != a => want.agents_changed.push(a.id.clone()),
                Some(_) => {}
            }
        }
        let mut removed: Vec<&AgentConfig> = old
            .agents
            .iter()
            .filter(|o| !cfg.agents.iter().any(|a| a.id == o.id))
            .collect();
        removed.sort_by_key(|o| self.agents[&o.id].index);
        want.agents_removed = removed.iter().map(|o| o.id.clone()).collect();
        for g in &cfg.groups {
            match old_groups.get(g.id.as_str()) {
                None => want.groups_added.push(g.id.clone()),
                Some(o) if *o != g => want.groups_changed.push(g.id.clone()),
                Some(_) => {}
            }
        }
        let mut got = done.clone();
        want.groups_removed = old
            .groups
            .iter()
            .filter(|o| !cfg.groups.iter().any(|g| g.id == o.id))
            .map(|o| o.id.clone())
            .collect();
        want.groups_removed.sort();
        got.groups_removed.sort();
        assert_eq!(got, want, "what the reconfiguration reported");

        self.deleted.0 += want.agents_removed.len() as u64;
        self.deleted.1 += want.groups_removed.len() as u64;
        for id in &want.agents_removed {
            self.agents.remove(id);
            self.gone.push(id.clone());
        }
        for id in &want.agents_added {
            self.gone.retain(|g| g != id);
            self.agents.insert(
                id.clone(),
                SAgent {
                    index: self.agents_made,
                    state: AgentState::LoggedOut,
                    call: None,
                    idle_since: self.now,
                    acw_until: None,
                    answered: 0,
                    restore: false,
                    acw_group: None,
                },
            );
            self.agents_made += 1;
        }
        for id in &want.groups_removed {
            self.recount.remove(id);
        }
        self.members.clear();
        self.skills.clear();
        for a in &cfg.agents {
            for (g, l) in &a.skills {
                self.members
                    .entry(g.clone())
                    .or_default()
                    .push((a.id.clone(), *l));
            }
            self.skills
                .insert(a.id.clone(), a.skills.iter().map(|x| x.0.clone()).collect());
        }
        self.groups = cfg
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.clone()))
            .collect();
        self.agent_names = cfg.agents.iter().map(|a| a.id.clone()).collect();
        self.group_names = cfg.groups.iter().map(|g| g.id.clone()).collect();
        self.cfg = cfg;
    }
}

/// One operation of a reconfiguring run: mostly traffic, sometimes a
/// reconfiguration.
fn step_or_reconfigure(sim: &mut Sim, pick: u8, op: (u8, u16, u16, u8)) {
    if pick.is_multiple_of(12) {
        sim.reconfigure(op);
    } else {
        sim.step(op);
    }
}

#[test]
fn seeded_long_run_with_reconfigures() {
    for seed in [0x2545_F491_4F6C_DD1Du64, 777, 20_250_101] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for _ in 0..5_000 {
            let r = rng.next();
            let op = (r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8);
            step_or_reconfigure(&mut sim, (r >> 48) as u8, op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
        println!(
            "seed {seed:#x}: {} reconfigurations applied ({} agents, {} groups deleted), {} refused; \
             {} offers, {} answered; agents {:?}, groups {:?}",
            sim.reconfigs.0,
            sim.deleted.0,
            sim.deleted.1,
            sim.reconfigs.1,
            sim.offers,
            sim.answered,
            sim.agent_names,
            sim.group_names
        );
        assert!(sim.reconfigs.0 > 100, "too few reconfigurations applied");
        assert!(sim.reconfigs.1 > 5, "too few refusals exercised");
        assert!(
            sim.deleted.0 > 5 && sim.deleted.1 > 5,
            "too few deletions exercised"
        );
        assert!(sim.offers > 300, "the run routed too little");
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn seeded_long_run() {
    for seed in [0x9E37_79B9_7F4A_7C15u64, 12345, 20_240_601] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        // Sign everybody in first so the run has traffic to route.
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for _ in 0..10_000 {
            let r = rng.next();
            sim.step((r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8));
        }
        // Let every timer run out.
        sim.advance(sim.now + s(3_600));
        sim.check_all();
        let st = sim.e.stats(sim.now);
        println!(
            "waiting {:?}",
            st.groups
                .iter()
                .map(|g| (g.group.clone(), g.calls_waiting, g.callbacks_pending))
                .collect::<Vec<_>>()
        );
        println!(
            "seed {seed:#x}: {} calls, {} offers, {} answered (calls and callbacks), {} rejected inputs, {} missed, t = {:?}",
            sim.next_id,
            sim.offers,
            sim.answered,
            sim.errors,
            sim.missed,
            sim.now
        );
        assert!(
            sim.offers > 1_000 && sim.answered > 500,
            "the run routed too little"
        );
    }
}

/// The kept lists in id order, as [`Engine::snapshot`] gives them.
fn sorted(mut kept: Snapshot) -> Snapshot {
    kept.agents.sort_by(|a, b| a.agent.cmp(&b.agent));
    kept.groups.sort_by(|a, b| a.group.cmp(&b.group));
    kept.callbacks.sort_by_key(|c| c.call);
    kept.missed.sort_by_key(|m| m.call);
    kept.served.sort_by(|a, b| a.caller.cmp(&b.caller));
    kept
}

/// What a store holds after applying every change in order equals the
/// engine's state computed afresh, and an engine restored from it at the
/// same moment has the same figures, missed calls, callbacks and agents.
fn check_kept(sim: &Sim, kept: &Snapshot) {
    let now = sim.e.snapshot();
    assert_eq!(
        sorted(kept.clone()),
        now,
        "kept state differs at {:?}",
        sim.now
    );
    // Nobody's phone registered: everyone signed out, nothing dispatched,
    // so every figure must come back exactly.
    let mut fresh = Engine::new(sim.cfg.clone(), sim.now).expect("config");
    let refused = fresh.restore(sim.now, Time::UNIX_EPOCH, kept.clone(), |_| false);
    assert!(refused.is_empty(), "{refused:?}");
    let (old, new) = (sim.e.stats(sim.now), fresh.stats(sim.now));
    for (o, n) in old.groups.iter().zip(&new.groups) {
        assert_eq!(o.counters, n.counters, "group {}", o.group);
        assert_eq!(
            o.callbacks_pending, n.callbacks_pending,
            "group {}",
            o.group
        );
    }
    for (o, n) in old.agents.iter().zip(&new.agents) {
        assert_eq!(o.counters, n.counters, "agent {}", o.agent);
    }
    assert_eq!(fresh.missed_calls(), sim.e.missed_calls());
    let restored = fresh.snapshot();
    assert_eq!(restored.callbacks, now.callbacks);
    assert_eq!(restored.served, now.served);
    // Phones registered: idle, not-ready and after-call-work agents are
    // as they were (unless handed a restored callback at once).
    let mut fresh = Engine::new(sim.cfg.clone(), sim.now).expect("config");
    fresh.restore(sim.now, Time::UNIX_EPOCH, kept.clone(), |_| true);
    for a in &kept.agents {
        let view = fresh.agent_view(&a.agent).expect("agent");
        let kept_as_is = match a.state {
            AgentState::Idle | AgentState::NotReady | AgentState::LoggedOut => true,
            AgentState::AfterCallWork => a.acw_until.is_some_and(|u| u > sim.now),
            _ => false,
        };
        if kept_as_is && view.state != AgentState::Ringing {
            assert_eq!(
                (view.state, &view.reason, view.since, view.idle_since),
                (a.state, &a.reason, a.since, a.idle_since),
                "agent {}",
                a.agent
            );
        }
    }
}

#[test]
fn seeded_long_run_keeps_what_a_restart_needs() {
    for seed in [0x5DEE_CE66_D1CE_4E5Bu64, 4242] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        sim.e.track_changes();
        // A first start: nothing kept, the day begins.
        let first = sim.e.restore(
            Time::UNIX_EPOCH,
            Time::UNIX_EPOCH,
            Snapshot::default(),
            |_| true,
        );
        assert!(first.is_empty());
        let mut kept = Snapshot::default();
        kept.apply(&sim.e.take_changes());
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for i in 0..4_000 {
            let r = rng.next();
            sim.step((r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8));
            kept.apply(&sim.e.take_changes());
            if i % 40 == 39 {
                check_kept(&sim, &kept);
            }
        }
        assert!(!kept.missed.is_empty() && !kept.served.is_empty());
        assert!(kept
            .groups
            .iter()
            .any(|g| g.counters.callbacks_answered > 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_operation_sequences_keep_invariants(
        login in any::<bool>(),
        ops in prop::collection::vec(any::<(u8, u16, u16, u8)>(), 1..250),
    ) {
        let mut sim = Sim::new();
        if login {
            for a in sim.agent_names.clone() {
                sim.apply(Input::Login { agent: a });
            }
        }
        for op in ops {
            sim.step(op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_sequences_with_reconfigures_keep_invariants(
        login in any::<bool>(),
        ops in prop::collection::vec((any::<u8>(), any::<(u8, u16, u16, u8)>()), 1..250),
    ) {
        let mut sim = Sim::new();
        if login {
            for a in sim.agent_names.clone() {
                sim.apply(Input::Login { agent: a });
            }
        }
        for (pick, op) in ops {
            step_or_reconfigure(&mut sim, pick, op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
    }
}
