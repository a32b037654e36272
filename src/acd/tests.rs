//! Table-driven tests, one per ACD rule of the issue (REQUIREMENTS §3, §8).

use std::time::Duration;

use super::*;
use crate::time::Time;

pub(super) fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The time `n` seconds after the (virtual) epoch the tests start at.
pub(super) fn t(n: u64) -> Time {
    Time::from_unix_secs(n)
}

pub(super) fn group(id: &str, strategy: Strategy) -> GroupConfig {
    GroupConfig {
        id: id.into(),
        name: format!("{id} group"),
        tenant: "t".into(),
        strategy,
        ring_timeout: s(15),
        acw: s(10),
        max_queue: 100,
        max_wait: s(600),
        on_max_wait: NextStep::Voicemail,
        overflow_after: None,
        announce_every: None,
        priority_boost: Vec::new(),
    }
}

pub(super) fn agent(id: &str, skills: &[(&str, u8)]) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        name: format!("agent {id}"),
        tenant: "t".into(),
        device: format!("dev-{id}"),
        skills: skills.iter().map(|(g, l)| (g.to_string(), *l)).collect(),
    }
}

pub(super) fn config(groups: Vec<GroupConfig>, agents: Vec<AgentConfig>) -> AcdConfig {
    AcdConfig {
        groups,
        agents,
        not_ready_reasons: vec!["break".into(), "training".into(), "ticket".into()],
        previous_service: None,
        callback: CallbackPolicy {
            max_attempts: 2,
            retry_interval: s(60),
        },
    }
}

/// Drives an engine in virtual time and collects its outputs.
pub(super) struct H {
    pub(super) e: Engine,
    pub(super) now: Time,
    pub(super) out: Vec<Output>,
}

impl H {
    pub(super) fn new(cfg: AcdConfig) -> H {
        let e = Engine::new(cfg, t(0)).expect("valid config");
        H {
            e,
            now: t(0),
            out: Vec::new(),
        }
    }

    pub(super) fn drain(&mut self) {
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }

    /// Advance to `t` after the epoch (ms precision not needed: whole
    /// seconds or Duration).
    pub(super) fn at(&mut self, t: Duration) {
        let t = Time::UNIX_EPOCH + t;
        while let Some(d) = self.e.poll_timeout() {
            if d > t {
                break;
            }
            self.now = d.max(self.now);
            self.e.handle_timeout(self.now);
            self.drain();
        }
        self.now = t;
    }

    pub(super) fn try_in(&mut self, input: Input) -> Result<(), AcdError> {
        let r = self.e.handle(self.now, input);
        self.drain();
        r
    }

    pub(super) fn ok(&mut self, input: Input) {
        let dbg = format!("{input:?}");
        if let Err(e) = self.try_in(input) {
            panic!("{dbg}: {e}");
        }
    }

    pub(super) fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub(super) fn login(&mut self, a: &str) {
        self.ok(Input::Login { agent: a.into() });
    }

    pub(super) fn enqueue(&mut self, call: u64, group: &str, priority: u8) {
        let arrived = self.now;
        self.ok(Input::Enqueue {
            call: CallId(call),
            group: group.into(),
            priority,
            caller: format!("caller{call}"),
            arrived,
            max_wait: None,
            on_timeout: None,
        });
    }

    pub(super) fn answer(&mut self, call: u64, a: &str) {
        self.ok(Input::OfferAnswered {
            call: CallId(call),
            agent: a.into(),
        });
    }

    pub(super) fn end(&mut self, call: u64) {
        self.ok(Input::CallEnded { call: CallId(call) });
    }

    /// (call, agent) of every Offer / OfferCallback taken since last take.
    pub(super) fn offers(&mut self) -> Vec<(u64, String)> {
        self.take()
            .into_iter()
            .filter_map(|o| match o {
                Output::Offer { call, agent, .. } | Output::OfferCallback { call, agent, .. } => {
                    Some((call.0, agent))
                }
                _ => None,
            })
            .collect()
    }

    pub(super) fn order(&self, g: &str) -> Vec<u64> {
        self.e
            .queue_snapshot(g)
            .expect("group")
            .iter()
            .map(|q| q.call.0)
            .collect()
    }

    pub(super) fn state(&self, a: &str) -> AgentState {
        self.e.agent_state(a).expect("agent").0
    }
}

pub(super) fn off(call: u64, a: &str) -> (u64, String) {
    (call, a.to_string())
}

#[test]
fn priority_then_fifo() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)])],
    ));
    let arrivals = [
        (1, 0),
        (2, 5),
        (3, 0),
        (4, 5),
        (5, EMERGENCY_PRIORITY),
        (6, 0),
    ];
    for (i, (call, p)) in arrivals.into_iter().enumerate() {
        h.at(s(i as u64));
        h.enqueue(call, "g", p);
    }
    assert_eq!(h.order("g"), vec![5, 2, 4, 1, 3, 6]);
    h.take();
    h.login("a");
    assert_eq!(h.offers(), vec![off(5, "a")]);
    let want = [2, 4, 1, 3, 6];
    let mut call = 5;
    for next in want {
        h.answer(call, "a");
        h.end(call);
        h.ok(Input::CompleteAcw { agent: "a".into() });
        assert_eq!(h.offers(), vec![off(next, "a")]);
        call = next;
    }
}

#[test]
fn priority_boost_reorders_at_threshold() {
    let mut g = group("g", Strategy::LongestIdle);
    g.priority_boost = vec![(s(30), 5), (s(90), 9)];
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.enqueue(1, "g", 0);
    h.at(s(10));
    h.enqueue(2, "g", 3);
    h.at(s(29));
    assert_eq!(h.order("g"), vec![2, 1]);
    h.at(s(30));
    assert_eq!(h.order("g"), vec![1, 2]);
    let snap = h.e.queue_snapshot("g").expect("group");
    assert_eq!(snap[0].priority, 5);
    assert_eq!(snap[1].priority, 3);
    h.at(s(40)); // call 2 reaches 5 too, but arrived later
    assert_eq!(h.order("g"), vec![1, 2]);
    h.at(s(90));
    assert_eq!(h.e.queue_snapshot("g").expect("group")[0].priority, 9);
    h.take();
    h.login("a");
    assert_eq!(h.offers(), vec![off(1, "a")]);
}

#[test]
fn max_queue_next_steps() {
    let cases = [
        NextStep::Voicemail,
        NextStep::Hangup,
        NextStep::Callback,
        NextStep::Group("b".into()),
    ];
    for next in cases {
        let mut a = group("a", Strategy::LongestIdle);
        a.max_queue = 2;
        a.on_max_wait = next.clone();
        let mut h = H::new(config(
            vec![a, group("b", Strategy::LongestIdle)],
            vec![agent("x", &[("a", 5)])],
        ));
        h.enqueue(1, "a", 0);
        h.enqueue(2, "a", 0);
        h.take();
        h.enqueue(3, "a", 0);
        let out = h.take();
        match &next {
            NextStep::Group(to) => {
                assert!(out.contains(&Output::Overflowed {
                    call: CallId(3),
                    from: "a".into(),
                    to: to.clone(),
                    reason: OverflowReason::QueueFull,
                }));
                assert_eq!(h.order("b"), vec![3]);
            }
            _ => {
                assert!(
                    out.contains(&Output::QueueTimeout {
                        call: CallId(3),
                        group: "a".into(),
                        reason: TimeoutReason::QueueFull,
                        next: next.clone(),
                    }),
                    "{next:?}: {out:?}"
                );
            }
        }
        let in_a = h.order("a");
        if next == NextStep::Callback {
            assert_eq!(in_a, vec![1, 2, 3]);
            assert!(h.e.queue_snapshot("a").expect("a")[2].callback);
        } else {
            assert_eq!(in_a, vec![1, 2]);
        }
        let stats = h.e.stats(h.now);
        assert_eq!(stats.groups[0].calls_waiting, 2, "{next:?}");
    }
}

#[test]
fn max_wait_is_exact() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_wait = s(120);
    g.on_max_wait = NextStep::Voicemail;
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.at(s(5));
    h.enqueue(1, "g", 0);
    h.at(s(124));
    assert!(h
        .take()
        .iter()
        .all(|o| !matches!(o, Output::QueueTimeout { .. })));
    assert_eq!(h.e.poll_timeout(), Some(t(125)));
    h.at(s(125));
    assert!(h.take().contains(&Output::QueueTimeout {
        call: CallId(1),
        group: "g".into(),
        reason: TimeoutReason::MaxWait,
        next: NextStep::Voicemail,
    }));
    assert!(h.e.call_view(CallId(1)).is_none());
    assert_eq!(h.e.missed_calls()[0].place, MissedWhere::TimedOut);
    assert_eq!(h.e.missed_calls()[0].wait, s(120));
}

#[test]
fn overflow_keeps_arrival_time() {
    let mut a = group("a", Strategy::LongestIdle);
    a.overflow_after = Some((s(30), "b".into()));
    let mut h = H::new(config(
        vec![a, group("b", Strategy::LongestIdle)],
        vec![agent("x", &[("b", 5)])],
    ));
    h.ok(Input::Enqueue {
        call: CallId(1),
        group: "a".into(),
        priority: 0,
        caller: "c1".into(),
        arrived: t(0),
        max_wait: None,
        on_timeout: None,
    });
    h.at(s(10));
    h.enqueue(2, "b", 0);
    h.at(s(29));
    assert_eq!(h.order("a"), vec![1]);
    h.take();
    h.at(s(30));
    assert!(h.take().contains(&Output::Overflowed {
        call: CallId(1),
        from: "a".into(),
        to: "b".into(),
        reason: OverflowReason::Timer,
    }));
    assert_eq!(h.order("b"), vec![1, 2]);
    let v = h.e.call_view(CallId(1)).expect("call");
    assert_eq!((v.arrived, v.entered_group), (t(0), t(30)));
    h.login("x");
    assert_eq!(h.offers(), vec![off(1, "x")]);
}

#[test]
fn strategies_pick_the_right_agent() {
    // Agents a (level 2), b (level 9), c (level 5) log in in order a, b, c
    // at t = 1, 2, 3; b has answered one call before (fewest-calls).
    struct Case {
        strategy: Strategy,
        want: Vec<&'static str>,
    }
    let cases = [
        Case {
            strategy: Strategy::LongestIdle,
            want: vec!["a"],
        },
        Case {
            strategy: Strategy::FewestCalls,
            want: vec!["a"],
        },
        Case {
            strategy: Strategy::SkillWeighted,
            want: vec!["b"],
        },
        Case {
            strategy: Strategy::RoundRobin,
            want: vec!["c"],
        },
        Case {
            strategy: Strategy::RingAll,
            want: vec!["a", "c", "b"],
        },
    ];
    for case in cases {
        let mut g = group("g", case.strategy);
        g.acw = Duration::ZERO;
        let mut h = H::new(config(
            vec![g],
            vec![
                agent("a", &[("g", 2)]),
                agent("b", &[("g", 9)]),
                agent("c", &[("g", 5)]),
            ],
        ));
        // b takes one call first (and round-robin moves past a and b).
        h.at(s(1));
        h.login("b");
        h.enqueue(100, "g", 0);
        h.answer(100, "b");
        h.at(s(2));
        h.login("a");
        h.at(s(3));
        h.login("c");
        h.at(s(4));
        h.end(100); // b idle again since 4 (acw 0)
        h.take();
        h.at(s(5));
        h.enqueue(1, "g", 0);
        let got: Vec<String> = h.offers().into_iter().map(|(_, a)| a).collect();
        let mut want: Vec<String> = case.want.iter().map(|a| a.to_string()).collect();
        if case.strategy == Strategy::RingAll {
            want.sort();
            let mut got = got.clone();
            got.sort();
            assert_eq!(got, want, "{:?}", case.strategy);
        } else {
            assert_eq!(got, want, "{:?}", case.strategy);
        }
    }
}

#[test]
fn ring_all_first_answer_wins() {
    let mut h = H::new(config(
        vec![group("g", Strategy::RingAll)],
        vec![
            agent("a", &[("g", 1)]),
            agent("b", &[("g", 1)]),
            agent("c", &[("g", 1)]),
        ],
    ));
    for a in ["a", "b", "c"] {
        h.login(a);
    }
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers().len(), 3);
    h.answer(1, "b");
    let out = h.take();
    let cancelled: Vec<&str> = out
        .iter()
        .filter_map(|o| match o {
            Output::CancelOffer {
                agent,
                reason: CancelReason::AnsweredElsewhere,
                ..
            } => Some(agent.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len(), 2);
    assert!(!cancelled.contains(&"b"));
    assert_eq!(h.state("b"), AgentState::Talking);
    assert_eq!(h.state("a"), AgentState::Idle);
    assert_eq!(h.state("c"), AgentState::Idle);
    assert!(matches!(
        h.try_in(Input::OfferAnswered {
            call: CallId(1),
            agent: "a".into()
        }),
        Err(AcdError::WrongCallState { .. })
    ));
}

#[test]
fn longest_idle_is_fair_and_survives_withdrawn_offers() {
    let mut g = group("g", Strategy::LongestIdle);
    g.acw = Duration::ZERO;
    let mut h = H::new(config(
        vec![g],
        vec![
            agent("a", &[("g", 1)]),
            agent("b", &[("g", 1)]),
            agent("c", &[("g", 1)]),
        ],
    ));
    for (t, a) in [(1, "b"), (2, "c"), (3, "a")] {
        h.at(s(t));
        h.login(a);
    }
    h.at(s(10));
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "b")]);
    // The caller hangs up while b rings: b keeps idle-since 1.
    h.ok(Input::CallerHungUp { call: CallId(1) });
    assert_eq!(h.e.agent_view("b").expect("b").idle_since, t(1));
    h.enqueue(2, "g", 0);
    assert_eq!(h.offers(), vec![off(2, "b")]);
    h.answer(2, "b");
    h.enqueue(3, "g", 0);
    assert_eq!(h.offers(), vec![off(3, "c")]);
    h.answer(3, "c");
    h.at(s(20));
    h.end(2); // b idle since 20
    h.enqueue(4, "g", 0);
    assert_eq!(h.offers(), vec![off(4, "a")]);
    h.answer(4, "a");
    h.enqueue(5, "g", 0);
    assert_eq!(h.offers(), vec![off(5, "b")]);
}

#[test]
fn ring_no_answer_requeues_at_head_and_agent_not_ready() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)]), agent("b", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.at(s(5));
    h.enqueue(2, "g", 0);
    h.enqueue(3, "g", 0);
    h.at(s(14));
    assert_eq!(h.state("a"), AgentState::Ringing);
    h.take();
    h.at(s(15));
    let out = h.take();
    assert!(out.contains(&Output::CancelOffer {
        call: CallId(1),
        agent: "a".into(),
        reason: CancelReason::NoAnswer,
    }));
    let v = h.e.agent_view("a").expect("a");
    assert_eq!(v.state, AgentState::NotReady);
    assert_eq!(v.reason.as_deref(), Some(REASON_NO_ANSWER));
    assert_eq!(h.order("g"), vec![1, 2, 3]);
    h.login("b");
    assert_eq!(h.offers(), vec![off(1, "b")]);
}

#[test]
fn reject_and_failure_go_to_next_agent() {
    let cases = [
        (
            Input::OfferRejected {
                call: CallId(1),
                agent: "a".into(),
            },
            REASON_BUSY,
        ),
        (
            Input::OfferFailed {
                call: CallId(1),
                agent: "a".into(),
            },
            REASON_UNREACHABLE,
        ),
    ];
    for (input, reason) in cases {
        let mut h = H::new(config(
            vec![group("g", Strategy::LongestIdle)],
            vec![agent("a", &[("g", 1)]), agent("b", &[("g", 1)])],
        ));
        h.login("a");
        h.at(s(1));
        h.login("b");
        h.enqueue(1, "g", 0);
        assert_eq!(h.offers(), vec![off(1, "a")]);
        h.ok(input);
        assert_eq!(h.offers(), vec![off(1, "b")]);
        assert_eq!(
            h.e.agent_view("a").expect("a").reason.as_deref(),
            Some(reason)
        );
    }
}

#[test]
fn caller_hangup_while_ringing_cancels_at_once() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    h.take();
    h.at(s(4));
    h.ok(Input::CallerHungUp { call: CallId(1) });
    let out = h.take();
    assert_eq!(
        out[0],
        Output::CancelOffer {
            call: CallId(1),
            agent: "a".into(),
            reason: CancelReason::CallerHungUp,
        }
    );
    assert_eq!(h.state("a"), AgentState::Idle);
    assert_eq!(h.e.missed_calls().len(), 1);
    assert_eq!(h.e.missed_calls()[0].place, MissedWhere::Ringing);
    assert_eq!(h.e.poll_timeout(), None, "ring timer gone");
}

#[test]
fn acw_ends_exactly_and_extends() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    h.answer(1, "a");
    h.at(s(100));
    h.end(1);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.at(Duration::from_millis(109_999));
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.at(s(110));
    assert_eq!(h.e.agent_state("a"), Some((AgentState::Idle, t(110))));
    // Again, extended by 5 s.
    h.enqueue(2, "g", 0);
    h.answer(2, "a");
    h.at(s(200));
    h.end(2);
    h.at(s(205));
    h.ok(Input::ExtendAcw {
        agent: "a".into(),
        by: s(5),
    });
    h.at(s(214));
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.at(s(215));
    assert_eq!(h.e.agent_state("a"), Some((AgentState::Idle, t(215))));
    // Completed early.
    h.enqueue(3, "g", 0);
    h.answer(3, "a");
    h.at(s(300));
    h.end(3);
    h.at(s(302));
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.e.agent_state("a"), Some((AgentState::Idle, t(302))));
    assert_eq!(h.e.poll_timeout(), None);
    let st = h.e.stats(h.now);
    assert_eq!(st.groups[0].counters.acw_total, s(10 + 15 + 2));
}
