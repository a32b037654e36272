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

mod check;
mod drive;
mod reconfigure;
mod runs;
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
}
