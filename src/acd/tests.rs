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
struct H {
    e: Engine,
    now: Time,
    out: Vec<Output>,
}

impl H {
    fn new(cfg: AcdConfig) -> H {
        let e = Engine::new(cfg, t(0)).expect("valid config");
        H {
            e,
            now: t(0),
            out: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }

    /// Advance to `t` after the epoch (ms precision not needed: whole
    /// seconds or Duration).
    fn at(&mut self, t: Duration) {
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

    fn try_in(&mut self, input: Input) -> Result<(), AcdError> {
        let r = self.e.handle(self.now, input);
        self.drain();
        r
    }

    fn ok(&mut self, input: Input) {
        let dbg = format!("{input:?}");
        if let Err(e) = self.try_in(input) {
            panic!("{dbg}: {e}");
        }
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn login(&mut self, a: &str) {
        self.ok(Input::Login { agent: a.into() });
    }

    fn enqueue(&mut self, call: u64, group: &str, priority: u8) {
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

    fn answer(&mut self, call: u64, a: &str) {
        self.ok(Input::OfferAnswered {
            call: CallId(call),
            agent: a.into(),
        });
    }

    fn end(&mut self, call: u64) {
        self.ok(Input::CallEnded { call: CallId(call) });
    }

    /// (call, agent) of every Offer / OfferCallback taken since last take.
    fn offers(&mut self) -> Vec<(u64, String)> {
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

    fn order(&self, g: &str) -> Vec<u64> {
        self.e
            .queue_snapshot(g)
            .expect("group")
            .iter()
            .map(|q| q.call.0)
            .collect()
    }

    fn state(&self, a: &str) -> AgentState {
        self.e.agent_state(a).expect("agent").0
    }
}

fn off(call: u64, a: &str) -> (u64, String) {
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

#[test]
fn previous_service_offers_last_agent_then_falls_back() {
    let mut cfg = config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)]), agent("b", &[("g", 1)])],
    );
    cfg.previous_service = Some(PreviousServiceConfig {
        within: s(3 * 86_400),
        ring_for: s(8),
    });
    let mut g0 = cfg.groups[0].clone();
    g0.acw = Duration::ZERO;
    cfg.groups[0] = g0;
    let mut h = H::new(cfg);
    h.login("b"); // b longest idle
    h.at(s(1));
    h.login("a");
    // a serves caller "c1" once (b rejected first, to steer it).
    h.ok(Input::Enqueue {
        call: CallId(1),
        group: "g".into(),
        priority: 0,
        caller: "c1".into(),
        arrived: t(1),
        max_wait: None,
        on_timeout: None,
    });
    h.ok(Input::OfferRejected {
        call: CallId(1),
        agent: "b".into(),
    });
    h.answer(1, "a");
    h.at(s(60));
    h.end(1);
    h.ok(Input::Ready { agent: "b".into() }); // b idle since 60, a since 60 too
    h.at(s(100));
    h.take();
    let again = |h: &mut H, id: u64| {
        let now = h.now;
        h.ok(Input::Enqueue {
            call: CallId(id),
            group: "g".into(),
            priority: 0,
            caller: "c1".into(),
            arrived: now,
            max_wait: None,
            on_timeout: None,
        });
    };
    // Within X days, a idle: offered to a first, for 8 s.
    again(&mut h, 2);
    let out = h.take();
    assert!(out.contains(&Output::Offer {
        call: CallId(2),
        agent: "a".into(),
        device: "dev-a".into(),
        kind: OfferKind::PreviousService,
    }));
    h.at(s(108));
    assert_eq!(h.offers(), vec![off(2, "b")]);
    assert_eq!(h.state("a"), AgentState::NotReady);
    // a busy: normal routing.
    h.answer(2, "b");
    h.end(2); // now b served c1 last
    h.ok(Input::Ready { agent: "a".into() });
    h.ok(Input::StartOutbound { agent: "b".into() });
    h.take();
    again(&mut h, 3);
    assert_eq!(h.offers(), vec![off(3, "a")]);
    h.answer(3, "a");
    h.end(3);
    h.ok(Input::EndOutbound { agent: "b".into() });
    // Beyond X days: normal routing (b idle longest since... both fresh;
    // a went idle at the same instant as b later).
    h.at(s(4 * 86_400));
    h.take();
    again(&mut h, 4);
    let out = h.take();
    assert!(out.iter().all(|o| !matches!(
        o,
        Output::Offer {
            kind: OfferKind::PreviousService,
            ..
        }
    )));
}

#[test]
fn callback_keeps_place_and_reserves_agent_first() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    for (t, c) in [(0, 1), (1, 2), (2, 3)] {
        h.at(s(t));
        h.enqueue(c, "g", 0);
    }
    h.at(s(10));
    h.ok(Input::RequestCallback {
        call: CallId(2),
        number: Some("13900000000".into()),
    });
    assert_eq!(h.order("g"), vec![1, 2, 3]);
    let st = h.e.stats(h.now);
    assert_eq!(st.groups[0].calls_waiting, 2);
    assert_eq!(st.groups[0].callbacks_pending, 1);
    assert!(matches!(
        h.try_in(Input::CallerHungUp { call: CallId(2) }),
        Err(AcdError::WrongCallState { .. })
    ));
    h.login("a");
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.answer(1, "a");
    h.end(1);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    let out = h.take();
    assert!(out.contains(&Output::OfferCallback {
        call: CallId(2),
        agent: "a".into(),
        device: "dev-a".into(),
        number: "13900000000".into(),
        attempt: 1,
    }));
    h.answer(2, "a");
    assert_eq!(h.state("a"), AgentState::Outbound);
    h.ok(Input::CallbackResult {
        call: CallId(2),
        answered: true,
    });
    assert_eq!(h.state("a"), AgentState::Talking);
    h.end(2);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    assert_eq!(h.e.stats(h.now).groups[0].callbacks_pending, 0);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(3, "a")]);
}

#[test]
fn callback_retries_then_gives_up() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    h.ok(Input::ScheduleCallback {
        call: CallId(7),
        group: "g".into(),
        number: "555".into(),
        priority: 0,
    });
    h.login("a");
    assert_eq!(h.offers(), vec![off(7, "a")]);
    h.answer(7, "a");
    h.ok(Input::CallbackResult {
        call: CallId(7),
        answered: false,
    });
    assert_eq!(h.state("a"), AgentState::Idle);
    assert_eq!(
        h.e.call_view(CallId(7)).expect("kept").phase,
        CallPhase::RetryWait { at: t(60) }
    );
    h.at(s(59));
    assert!(h.offers().is_empty());
    h.at(s(60));
    let out = h.take();
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::OfferCallback { attempt: 2, .. })));
    h.answer(7, "a");
    h.ok(Input::CallbackResult {
        call: CallId(7),
        answered: false,
    });
    assert!(h.take().iter().any(|o| matches!(
        o,
        Output::Queue(QueueEvent {
            kind: QueueEventKind::CallbackFailed { attempts: 2 },
            ..
        })
    )));
    assert!(h.e.call_view(CallId(7)).is_none());
    assert_eq!(h.e.stats(h.now).groups[0].counters.callbacks_failed, 1);
}

#[test]
fn missed_call_list_and_callback_marks_it() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_wait = s(100);
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 1)])]));
    h.enqueue(1, "g", 0);
    h.at(s(7));
    h.ok(Input::CallerHungUp { call: CallId(1) });
    h.ok(Input::AbandonedInIvr {
        call: CallId(2),
        caller: "caller2".into(),
        group: "g".into(),
        asked_at: t(3),
    });
    h.enqueue(3, "g", 0);
    h.at(s(107));
    let m = h.e.missed_calls();
    let rows: Vec<(u64, MissedWhere, Duration)> =
        m.iter().map(|m| (m.call.0, m.place, m.wait)).collect();
    assert_eq!(
        rows,
        vec![
            (1, MissedWhere::Queue, s(7)),
            (2, MissedWhere::Ivr, s(4)),
            (3, MissedWhere::TimedOut, s(100)),
        ]
    );
    h.ok(Input::ScheduleCallback {
        call: CallId(10),
        group: "g".into(),
        number: "caller1".into(),
        priority: 0,
    });
    h.login("a");
    h.answer(10, "a");
    h.ok(Input::CallbackResult {
        call: CallId(10),
        answered: true,
    });
    assert_eq!(h.e.missed_calls()[0].called_back_at, Some(t(107)));
    assert_eq!(h.e.missed_calls()[1].called_back_at, None);
}

#[test]
fn announcements_at_intervals_until_offered() {
    let mut g = group("g", Strategy::LongestIdle);
    g.announce_every = Some(s(30));
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 1)])]));
    h.login("a");
    h.ok(Input::NotReady {
        agent: "a".into(),
        reason: "break".into(),
    });
    h.enqueue(1, "g", 0);
    h.at(s(10));
    h.enqueue(2, "g", 0);
    h.take();
    h.at(s(75));
    let ann: Vec<(Duration, u64, usize, Option<Duration>)> = Vec::new();
    let mut ann = ann;
    for o in h.take() {
        if let Output::Announce {
            call,
            position,
            estimated_wait,
        } = o
        {
            ann.push((Duration::ZERO, call.0, position, estimated_wait));
        }
    }
    let got: Vec<(u64, usize)> = ann.iter().map(|a| (a.1, a.2)).collect();
    assert_eq!(got, vec![(1, 1), (2, 2), (1, 1), (2, 2)]);
    assert_eq!(ann[0].3, Some(DEFAULT_HANDLE_TIME));
    assert_eq!(ann[1].3, Some(DEFAULT_HANDLE_TIME * 2));
    h.ok(Input::Ready { agent: "a".into() });
    h.answer(1, "a");
    h.take();
    h.at(s(200));
    let calls: Vec<u64> = h
        .take()
        .into_iter()
        .filter_map(|o| match o {
            Output::Announce { call, position, .. } => {
                assert_eq!(position, 1);
                Some(call.0)
            }
            _ => None,
        })
        .collect();
    assert!(calls.iter().all(|c| *c == 2), "{calls:?}");
    assert_eq!(calls.len(), 4); // 100, 130, 160, 190
}

#[test]
fn wrong_state_inputs_are_errors_and_change_nothing() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)]), agent("b", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    h.enqueue(2, "g", 0);
    h.take();
    let before_a = h.e.agent_view("a");
    let before_q = h.order("g");
    let a = || "a".to_string();
    let cases: Vec<(Input, &str)> = vec![
        (Input::Login { agent: a() }, "WrongAgentState"),
        (Input::Ready { agent: "b".into() }, "WrongAgentState"),
        (Input::Hold { agent: a() }, "WrongAgentState"),
        (Input::Resume { agent: a() }, "WrongAgentState"),
        (Input::CompleteAcw { agent: a() }, "WrongAgentState"),
        (
            Input::ExtendAcw {
                agent: a(),
                by: s(1),
            },
            "WrongAgentState",
        ),
        (Input::EndOutbound { agent: a() }, "WrongAgentState"),
        (Input::StartOutbound { agent: a() }, "WrongAgentState"),
        (Input::Logout { agent: "b".into() }, "WrongAgentState"),
        (Input::Login { agent: "zz".into() }, "UnknownAgent"),
        (
            Input::NotReady {
                agent: a(),
                reason: "nap".into(),
            },
            "UnknownReason",
        ),
        (Input::CallEnded { call: CallId(1) }, "WrongCallState"),
        (Input::CallEnded { call: CallId(9) }, "UnknownCall"),
        (Input::CallerHungUp { call: CallId(9) }, "UnknownCall"),
        (
            Input::OfferAnswered {
                call: CallId(1),
                agent: "b".into(),
            },
            "NotOfferedTo",
        ),
        (
            Input::OfferAnswered {
                call: CallId(2),
                agent: a(),
            },
            "WrongCallState",
        ),
        (
            Input::CallbackResult {
                call: CallId(2),
                answered: true,
            },
            "WrongCallState",
        ),
        (
            Input::Enqueue {
                call: CallId(1),
                group: "g".into(),
                priority: 0,
                caller: "x".into(),
                arrived: t(0),
                max_wait: None,
                on_timeout: None,
            },
            "DuplicateCall",
        ),
        (
            Input::Enqueue {
                call: CallId(5),
                group: "nope".into(),
                priority: 0,
                caller: "x".into(),
                arrived: t(0),
                max_wait: None,
                on_timeout: None,
            },
            "UnknownGroup",
        ),
    ];
    for (input, want) in cases {
        let dbg = format!("{input:?}");
        let err = h.try_in(input).expect_err(&dbg);
        assert!(format!("{err:?}").starts_with(want), "{dbg}: {err:?}");
        assert!(!err.to_string().is_empty());
        assert!(h.take().is_empty(), "{dbg} emitted output");
        assert_eq!(h.e.agent_view("a"), before_a);
        assert_eq!(h.order("g"), before_q);
    }
}

#[test]
fn bad_configs_are_named() {
    type Edit = fn(&mut AcdConfig);
    let cases: Vec<(Edit, &str)> = vec![
        (|c| c.groups.push(c.groups[0].clone()), "defined twice"),
        (
            |c| c.groups[0].ring_timeout = Duration::ZERO,
            "ring_timeout",
        ),
        (|c| c.groups[0].max_queue = 0, "max_queue"),
        (
            |c| c.groups[0].overflow_after = Some((s(1), "zz".into())),
            "unknown group",
        ),
        (
            |c| c.groups[0].on_max_wait = NextStep::Group("g".into()),
            "itself",
        ),
        (|c| c.agents[0].skills[0].1 = 11, "1..=10"),
        (|c| c.agents[0].skills[0].0 = "zz".into(), "unknown group"),
        (|c| c.agents[0].tenant = "other".into(), "another tenant"),
        (|c| c.callback.max_attempts = 0, "max_attempts"),
    ];
    for (edit, want) in cases {
        let mut cfg = config(
            vec![group("g", Strategy::LongestIdle)],
            vec![agent("a", &[("g", 1)])],
        );
        edit(&mut cfg);
        let err = Engine::new(cfg, t(0)).err().expect(want);
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[test]
fn agent_states_hold_outbound_logout_and_stats() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    h.at(s(12));
    h.answer(1, "a");
    h.at(s(20));
    h.ok(Input::Hold { agent: "a".into() });
    h.at(s(25));
    h.ok(Input::Resume { agent: "a".into() });
    h.at(s(72));
    h.ok(Input::CallerHungUp { call: CallId(1) }); // caller ends the talk
    h.at(s(80));
    h.ok(Input::Ready { agent: "a".into() });
    h.ok(Input::StartOutbound { agent: "a".into() });
    h.at(s(90));
    h.ok(Input::EndOutbound { agent: "a".into() });
    h.ok(Input::Logout { agent: "a".into() });
    let st = h.e.stats(t(100));
    let g = &st.groups[0];
    assert_eq!(g.asa, Some(s(12)));
    assert_eq!(g.aht, Some(s(60 + 8)));
    assert_eq!(g.answer_rate_20, Some(1.0));
    let a = &st.agents[0];
    assert_eq!(a.state, AgentState::LoggedOut);
    let t = |state| {
        a.time_in_state
            .iter()
            .find(|(s, _)| *s == state)
            .map(|x| x.1)
    };
    assert_eq!(t(AgentState::OnHold), Some(s(5)));
    assert_eq!(t(AgentState::Talking), Some(s(55)));
    assert_eq!(t(AgentState::Outbound), Some(s(10)));
    assert_eq!(t(AgentState::LoggedOut), Some(s(10)));
    assert_eq!(
        g.agents_by_state
            .iter()
            .find(|(s, _)| *s == AgentState::LoggedOut)
            .map(|x| x.1),
        Some(1)
    );
}

#[test]
fn not_ready_while_ringing_withdraws_offer() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)]), agent("b", &[("g", 1)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    h.take();
    h.ok(Input::NotReady {
        agent: "a".into(),
        reason: "break".into(),
    });
    assert!(h.take().contains(&Output::CancelOffer {
        call: CallId(1),
        agent: "a".into(),
        reason: CancelReason::AgentWithdrew,
    }));
    assert_eq!(h.order("g"), vec![1]);
    h.login("b");
    assert_eq!(h.offers(), vec![off(1, "b")]);
}

#[test]
fn bench_fixture_builds_and_measures() {
    let (agents, waiting) = (1_000, 10_000);
    let (mut e, now) = bench_fixture(agents, waiting);
    let st = e.stats(now);
    let waiting_now: usize = st.groups.iter().map(|g| g.calls_waiting).sum();
    assert_eq!(waiting_now, waiting);
    let steps = 20_000;
    let mut decisions = 0;
    let mut t = now;
    #[allow(clippy::disallowed_methods)] // timing figure only, never asserted
    let started = std::time::Instant::now();
    for i in 0..steps {
        t += Duration::from_millis(1);
        decisions += bench_step(&mut e, t, agents, waiting, i);
    }
    let elapsed = started.elapsed();
    println!(
        "acd bench: {decisions} decisions in {elapsed:?} = {:.0} decisions/s ({agents} agents, {waiting} waiting)",
        decisions as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(decisions, steps);
}

fn consult(h: &mut H, call: u64, group: &str) -> Result<(), AcdError> {
    h.try_in(Input::Consult {
        call: CallId(call),
        group: group.into(),
        priority: CONSULT_PRIORITY,
        caller: "citizen".into(),
    })
}

#[test]
fn a_consultation_is_offered_by_strategy_and_rings_on_after_no_answer() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)]), agent("b", &[("g", 5)])],
    ));
    h.login("a");
    h.at(s(1));
    h.login("b");
    h.take();
    // An ordinary caller waits; the consultation goes first.
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    consult(&mut h, 2, "g").expect("queued");
    assert_eq!(h.offers(), vec![off(2, "b")]);
    h.answer(1, "a");
    // b does not answer: not ready, and the next free agent gets it.
    h.at(s(16));
    assert_eq!(h.state("b"), AgentState::NotReady);
    h.end(1);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(2, "a")]);
    h.answer(2, "a");
    assert_eq!(h.state("a"), AgentState::Talking);
    h.end(2);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    let g = &h.e.stats(h.now).groups[0].counters;
    assert_eq!(
        (g.entered, g.answered, g.handled),
        (1, 1, 1),
        "the caller only"
    );
}

#[test]
fn a_consultation_given_up_is_neither_abandoned_nor_missed() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_wait = s(30);
    g.overflow_after = Some((s(5), "h".into()));
    let mut h = H::new(config(
        vec![g, group("h", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)])],
    ));
    consult(&mut h, 1, "g").expect("queued");
    // No time limit, no overflow while the agent waits.
    h.at(s(600));
    assert_eq!(h.order("g"), vec![1]);
    h.ok(Input::CallerHungUp { call: CallId(1) });
    assert!(h.e.call_view(CallId(1)).is_none());
    // Withdrawn while ringing: the agent is idle again.
    h.login("a");
    consult(&mut h, 2, "g").expect("queued");
    assert_eq!(h.offers(), vec![off(2, "a")]);
    h.ok(Input::CallerHungUp { call: CallId(2) });
    assert_eq!(h.state("a"), AgentState::Idle);
    assert!(h.e.missed_calls().is_empty());
    let c = &h.e.stats(h.now).groups[0].counters;
    assert_eq!((c.abandoned, c.timed_out, c.entered), (0, 0, 0));
}

#[test]
fn a_full_queue_refuses_a_consultation() {
    let mut g = group("g", Strategy::LongestIdle);
    g.max_queue = 1;
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.enqueue(1, "g", 0);
    assert_eq!(
        consult(&mut h, 2, "g"),
        Err(AcdError::QueueFull("g".into()))
    );
    assert!(h.e.call_view(CallId(2)).is_none());
    assert!(h.e.missed_calls().is_empty());
    assert_eq!(
        consult(&mut h, 3, "nope"),
        Err(AcdError::UnknownGroup("nope".into()))
    );
}

#[test]
fn an_agent_on_a_call_put_through_to_them_gets_no_queued_call_until_after_call_work() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![
            agent("a", &[("g", 5)]),
            agent("b", &[("g", 5)]),
            agent("loner", &[]),
        ],
    ));
    h.login("a");
    h.login("loner");
    h.take();
    let direct = |h: &mut H, call: u64, agent: &str| {
        h.try_in(Input::DirectAnswered {
            call: CallId(call),
            agent: agent.into(),
            caller: "13800138000".into(),
        })
    };
    direct(&mut h, 100, "a").expect("idle: taken");
    assert_eq!(h.state("a"), AgentState::Talking);
    // A queued caller waits instead of ringing a's phone.
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), Vec::<(u64, String)>::new());
    // Only idle agents with a group: the shell leaves the others alone.
    assert!(matches!(
        direct(&mut h, 101, "a"),
        Err(AcdError::WrongAgentState { .. })
    ));
    assert!(matches!(
        direct(&mut h, 102, "b"),
        Err(AcdError::WrongAgentState { .. })
    ));
    assert!(matches!(
        direct(&mut h, 103, "loner"),
        Err(AcdError::Config(_))
    ));
    // The direct call ends: after-call work, then the queued caller.
    h.end(100);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(1, "a")]);
    let st = h.e.stats(h.now);
    let g = &st.groups[0].counters;
    assert_eq!(
        (g.entered, g.answered),
        (1, 0),
        "the direct call is not the group's"
    );
    let a = st.agents.iter().find(|x| x.agent == "a").expect("a");
    assert_eq!(a.counters.answered, 1, "but it is the agent's");
}

#[test]
fn a_caller_put_back_through_to_an_agent_in_after_call_work_ends_the_work() {
    // The agent transferred the caller blind (the call ended for them:
    // after-call work); the transfer failed and the caller is put back
    // through to them directly: talking again, never idle in between, so
    // the waiting caller is not offered to them meanwhile.
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 5)])],
    ));
    h.login("a");
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.answer(1, "a");
    h.at(s(60));
    h.end(1);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.enqueue(2, "g", 0);
    h.at(s(62));
    h.ok(Input::DirectAnswered {
        call: CallId(100),
        agent: "a".into(),
        caller: "13800138000".into(),
    });
    assert_eq!(h.state("a"), AgentState::Talking);
    assert_eq!(h.offers(), Vec::<(u64, String)>::new());
    // The ACW timer of the first conversation is gone: nothing fires.
    h.at(s(200));
    assert_eq!(h.state("a"), AgentState::Talking);
    let st = h.e.stats(h.now);
    let a = st.agents.iter().find(|x| x.agent == "a").expect("a");
    assert_eq!(
        a.counters.acw_total,
        s(2),
        "the 2 s of work before the call came back"
    );
    h.end(100);
    assert_eq!(h.state("a"), AgentState::AfterCallWork);
    h.ok(Input::CompleteAcw { agent: "a".into() });
    assert_eq!(h.offers(), vec![off(2, "a")]);
}

#[test]
fn a_consultation_never_overtakes_an_emergency_caller_but_goes_before_ordinary_ones() {
    let mut g = group("g", Strategy::LongestIdle);
    // Even a boost configured into the emergency band stays ordinary.
    g.priority_boost = vec![(s(5), EMERGENCY_PRIORITY)];
    let mut h = H::new(config(vec![g], vec![agent("a", &[("g", 5)])]));
    h.login("a");
    h.enqueue(1, "g", 0);
    assert_eq!(h.offers(), vec![off(1, "a")]);
    h.answer(1, "a");
    // While a talks: an ordinary caller (boosted after 5 s), the agent's
    // consultation, an emergency at the bottom of the lane, a Level I
    // caller as the shipped flows queue them, another ordinary caller.
    h.at(s(1));
    h.enqueue(2, "g", 0);
    h.at(s(2));
    consult(&mut h, 3, "g").expect("queued");
    h.at(s(3));
    h.enqueue(4, "g", EMERGENCY_PRIORITY_MIN);
    h.at(s(4));
    h.enqueue(5, "g", EMERGENCY_PRIORITY);
    h.at(s(5));
    h.enqueue(6, "g", ORDINARY_PRIORITY_MAX);
    h.at(s(30));
    assert_eq!(h.order("g"), vec![5, 4, 3, 2, 6]);
    let snap = h.e.queue_snapshot("g").expect("group");
    assert_eq!(
        snap.iter().map(|q| q.priority).collect::<Vec<_>>(),
        vec![
            EMERGENCY_PRIORITY,
            EMERGENCY_PRIORITY_MIN,
            CONSULT_PRIORITY,
            ORDINARY_PRIORITY_MAX,
            ORDINARY_PRIORITY_MAX
        ],
        "the boost lifted call 2 to the top of the ordinary band only"
    );
    // The agent is served in that order.
    let mut call = 1;
    for next in [5, 4, 3, 2, 6] {
        h.end(call);
        h.ok(Input::CompleteAcw { agent: "a".into() });
        assert_eq!(h.offers(), vec![off(next, "a")], "after {call}");
        h.answer(next, "a");
        call = next;
    }
}
