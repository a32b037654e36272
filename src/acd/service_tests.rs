//! ACD rules around service: the previous agent first, callbacks and
//! their retries, the missed-call list, queue announcements, wrong-state
//! inputs, bad configs, agent states and the bench fixture.

use std::time::Duration;

use super::tests::*;
use super::*;

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
        max_attempts: None,
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

/// A follow-up campaign's callback makes its own number of attempts (one:
/// the campaign redials on its own schedule), whatever the policy says;
/// it is kept with that number.
#[test]
fn a_callback_with_its_own_attempts_gives_up_after_them() {
    let mut h = H::new(config(
        vec![group("g", Strategy::LongestIdle)],
        vec![agent("a", &[("g", 1)])],
    ));
    h.e.track_changes();
    h.ok(Input::ScheduleCallback {
        call: CallId(7),
        group: "g".into(),
        number: "555".into(),
        priority: 0,
        max_attempts: Some(1),
    });
    let kept = h.e.take_changes();
    assert!(
        kept.iter().any(|c| matches!(
            c,
            crate::acd::Change::Callback(r) if r.max_attempts == Some(1)
        )),
        "{kept:?}"
    );
    h.login("a");
    assert_eq!(h.offers(), vec![off(7, "a")]);
    h.answer(7, "a");
    h.ok(Input::CallbackResult {
        call: CallId(7),
        answered: false,
    });
    assert!(h.take().iter().any(|o| matches!(
        o,
        Output::Queue(QueueEvent {
            kind: QueueEventKind::CallbackFailed { attempts: 1 },
            ..
        })
    )));
    assert!(h.e.call_view(CallId(7)).is_none(), "no retry");
    assert_eq!(h.state("a"), AgentState::Idle);
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
        max_attempts: None,
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
