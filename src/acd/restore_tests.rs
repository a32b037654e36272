//! Tests of what outlives a restart (issue 12 items 3 and 7): the changes
//! the engine hands out, a fresh engine restored from them, and the day
//! roll-over at local midnight with injected time.

use std::time::Duration;

use super::tests::{agent, config, group, s};
use super::*;
use crate::time::Time;

/// 2026-12-06 10:00 China Standard Time, as Unix time.
const T0: u64 = 1_796_522_400;
const CST: i32 = 480;

fn t(secs: u64) -> Time {
    Time::from_unix_secs(T0 + secs)
}

struct E {
    e: Engine,
    kept: Snapshot,
    out: Vec<Output>,
}

impl E {
    /// A first start: nothing kept yet (the day begins).
    fn new(cfg: AcdConfig) -> E {
        let mut e = Engine::new(cfg, t(0)).expect("config");
        e.track_changes();
        let refused = e.restore(t(0), day::day_start(t(0), CST), Snapshot::default(), |_| {
            true
        });
        assert!(refused.is_empty());
        let mut h = E {
            e,
            kept: Snapshot::default(),
            out: Vec::new(),
        };
        h.settle();
        h
    }

    /// Fire every deadline up to `now`.
    fn tick(&mut self, now: Time) {
        while let Some(d) = self.e.poll_timeout().filter(|d| *d <= now) {
            self.e.handle_timeout(d);
        }
        self.settle();
    }

    fn at(&mut self, now: Time, input: Input) {
        let what = format!("{input:?}");
        self.tick(now);
        if let Err(e) = self.e.handle(now, input) {
            panic!("{what}: {e}");
        }
        self.settle();
    }

    fn settle(&mut self) {
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
        let changes = self.e.take_changes();
        self.kept.apply(&changes);
    }

    fn offers(&mut self) -> Vec<(u64, String, OfferKind)> {
        std::mem::take(&mut self.out)
            .into_iter()
            .filter_map(|o| match o {
                Output::Offer {
                    call, agent, kind, ..
                } => Some((call.0, agent, kind)),
                Output::OfferCallback { call, agent, .. } => {
                    Some((call.0, agent, OfferKind::Queue))
                }
                _ => None,
            })
            .collect()
    }
}

fn enqueue(call: u64, caller: &str, arrived: Time) -> Input {
    Input::Enqueue {
        call: CallId(call),
        group: "g".into(),
        priority: 0,
        caller: caller.into(),
        arrived,
        max_wait: None,
        on_timeout: None,
    }
}

fn answered(call: u64, a: &str) -> Input {
    Input::OfferAnswered {
        call: CallId(call),
        agent: a.into(),
    }
}

fn two_agents(strategy: Strategy) -> AcdConfig {
    let mut cfg = config(
        vec![group("g", strategy)],
        vec![agent("a1", &[("g", 5)]), agent("a2", &[("g", 5)])],
    );
    cfg.previous_service = Some(PreviousServiceConfig {
        within: s(86_400),
        ring_for: s(10),
    });
    cfg
}

fn sorted(mut snap: Snapshot) -> Snapshot {
    snap.agents.sort_by(|a, b| a.agent.cmp(&b.agent));
    snap.groups.sort_by(|a, b| a.group.cmp(&b.group));
    snap.callbacks.sort_by_key(|c| c.call);
    snap.missed.sort_by_key(|m| m.call);
    snap.served.sort_by(|a, b| a.caller.cmp(&b.caller));
    snap
}

/// A working morning: a1 served caller "c1" and is in after-call work,
/// a2 is not ready for training, one caller gave up, one callback is
/// pending and one waits for its second attempt.
fn morning() -> E {
    let mut h = E::new(two_agents(Strategy::LongestIdle));
    h.at(t(0), Input::Login { agent: "a1".into() });
    h.at(t(1), Input::Login { agent: "a2".into() });
    h.at(t(10), enqueue(1, "c1", t(10)));
    assert_eq!(h.offers(), vec![(1, "a1".into(), OfferKind::Queue)]);
    h.at(t(12), answered(1, "a1"));
    h.at(t(100), Input::CallEnded { call: CallId(1) });
    h.at(
        t(101),
        Input::NotReady {
            agent: "a2".into(),
            reason: "training".into(),
        },
    );
    // a1 is in after-call work until t(110); nobody can answer meanwhile.
    h.at(t(102), enqueue(2, "c2", t(102)));
    h.at(t(105), Input::CallerHungUp { call: CallId(2) });
    h.at(
        t(106),
        Input::ScheduleCallback {
            call: CallId(3),
            group: "g".into(),
            number: "c2".into(),
            priority: 0,
            max_attempts: None,
        },
    );
    h
}

#[test]
fn the_changes_kept_are_the_engine_state() {
    let mut h = morning();
    assert_eq!(sorted(h.kept.clone()).agents, h.e.snapshot().agents);
    assert_eq!(sorted(h.kept.clone()).groups, h.e.snapshot().groups);
    assert_eq!(h.kept.missed.len(), 1);
    assert_eq!(h.kept.callbacks.len(), 1);
    assert_eq!(h.kept.served[0].agent, "a1");
    // The callback is answered later: it leaves the kept list and the
    // missed call counts as called back.
    h.offers();
    h.tick(t(111));
    let offers = h.offers();
    assert_eq!(offers, vec![(3, "a1".into(), OfferKind::Queue)]);
    h.at(t(112), answered(3, "a1"));
    h.at(
        t(115),
        Input::CallbackResult {
            call: CallId(3),
            answered: true,
        },
    );
    assert!(h.kept.callbacks.is_empty());
    assert_eq!(h.kept.missed[0].called_back_at, Some(t(115)));
    assert_eq!(sorted(h.kept.clone()), h.e.snapshot());
}

#[test]
fn a_restored_engine_carries_on_where_the_old_one_stopped() {
    let h = morning();
    let now = t(108);
    let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
    fresh.track_changes();
    let today = day::day_start(now, CST);
    let refused = fresh.restore(now, today, h.kept.clone(), |_| true);
    assert!(refused.is_empty(), "{refused:?}");
    // Agents as they were: no event for them.
    let outputs: Vec<Output> = std::iter::from_fn(|| fresh.poll_output()).collect();
    assert!(outputs.is_empty(), "{outputs:?}");
    let a1 = fresh.agent_view("a1").expect("a1");
    assert_eq!(
        (a1.state, a1.since, a1.acw_until),
        (AgentState::AfterCallWork, t(100), Some(t(110)))
    );
    let a2 = fresh.agent_view("a2").expect("a2");
    assert_eq!(
        (a2.state, a2.reason.as_deref(), a2.since),
        (AgentState::NotReady, Some("training"), t(101))
    );
    // The figures of the day, the missed call and the pending callback.
    let old = h.e.stats(now);
    let new = fresh.stats(now);
    assert_eq!(new.groups[0].counters, old.groups[0].counters);
    assert_eq!(new.groups[0].callbacks_pending, 1);
    assert_eq!(new.agents, old.agents);
    assert_eq!(fresh.missed_calls(), h.e.missed_calls());
    // After-call work ends when it was due; the callback goes to a1.
    assert_eq!(fresh.poll_timeout(), Some(t(110)));
    fresh.handle_timeout(t(110));
    let offered: Vec<(u64, String)> = std::iter::from_fn(|| fresh.poll_output())
        .filter_map(|o| match o {
            Output::OfferCallback { call, agent, .. } => Some((call.0, agent)),
            _ => None,
        })
        .collect();
    assert_eq!(offered, vec![(3, "a1".to_string())]);
}

#[test]
fn previous_service_routing_survives_a_restart() {
    let mut h = E::new(two_agents(Strategy::LongestIdle));
    h.at(t(0), Input::Login { agent: "a1".into() });
    h.at(t(1), Input::Login { agent: "a2".into() });
    h.at(t(10), enqueue(1, "c1", t(10)));
    assert_eq!(h.offers(), vec![(1, "a1".into(), OfferKind::Queue)]);
    h.at(t(12), answered(1, "a1"));
    h.at(t(100), Input::CallEnded { call: CallId(1) });
    h.tick(t(120));
    // a2 has been idle the longest now; only the kept service record
    // sends c1 back to a1.
    let now = t(200);
    let first_offer = |kept: Snapshot| {
        let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
        fresh.restore(now, day::day_start(now, CST), kept, |_| true);
        fresh.handle(now, enqueue(2, "c1", now)).expect("enqueue");
        std::iter::from_fn(|| fresh.poll_output()).find_map(|o| match o {
            Output::Offer { agent, kind, .. } => Some((agent, kind)),
            _ => None,
        })
    };
    assert_eq!(
        first_offer(h.kept.clone()),
        Some(("a1".into(), OfferKind::PreviousService))
    );
    let mut forgotten = h.kept.clone();
    forgotten.served.clear();
    assert_eq!(
        first_offer(forgotten),
        Some(("a2".into(), OfferKind::Queue))
    );
}

#[test]
fn agents_whose_phone_is_gone_are_signed_out_and_cut_work_ends() {
    let cfg = config(
        vec![group("g", Strategy::LongestIdle)],
        vec![
            agent("idle", &[("g", 5)]),
            agent("gone", &[("g", 5)]),
            agent("ringing", &[("g", 5)]),
            agent("talking", &[("g", 5)]),
            agent("out", &[("g", 5)]),
        ],
    );
    let mut h = E::new(cfg.clone());
    for (i, a) in ["talking", "ringing", "idle", "gone"].iter().enumerate() {
        h.at(t(i as u64), Input::Login { agent: (*a).into() });
    }
    h.at(t(10), enqueue(1, "c1", t(10)));
    h.at(t(11), answered(1, "talking"));
    h.at(t(12), enqueue(2, "c2", t(12)));
    assert_eq!(
        h.e.agent_view("ringing").map(|a| a.state),
        Some(AgentState::Ringing)
    );
    let ringing_idle_since = h.e.agent_view("ringing").map(|a| a.idle_since);

    let now = t(500);
    let mut fresh = Engine::new(cfg, now).expect("config");
    fresh.track_changes();
    let refused = fresh.restore(now, day::day_start(now, CST), h.kept.clone(), |dev| {
        dev != "dev-gone"
    });
    assert!(refused.is_empty(), "{refused:?}");
    let mut events: Vec<(String, AgentState)> = std::iter::from_fn(|| fresh.poll_output())
        .filter_map(|o| match o {
            Output::AgentState { agent, state, .. } => Some((agent, state)),
            _ => None,
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        vec![
            ("gone".to_string(), AgentState::LoggedOut),
            ("ringing".to_string(), AgentState::Idle),
            ("talking".to_string(), AgentState::AfterCallWork),
        ],
        "one event per agent whose state the stop changed, none for the rest"
    );
    let view = |a: &str| fresh.agent_view(a).expect("agent");
    assert_eq!(view("idle").state, AgentState::Idle);
    assert_eq!(view("out").state, AgentState::LoggedOut);
    // The offer died with the process: idle again, keeping its place in
    // the longest-idle order.
    assert_eq!(Some(view("ringing").idle_since), ringing_idle_since);
    // The call was cut: after-call work (the group's 10 s) from now.
    assert_eq!(view("talking").acw_until, Some(now + s(10)));
    // The changes are kept, so a second restart sees the new states.
    let kept: Vec<(String, AgentState)> = fresh
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Agent(r) => Some((r.agent, r.state)),
            _ => None,
        })
        .collect();
    assert!(
        kept.contains(&("gone".into(), AgentState::LoggedOut)),
        "{kept:?}"
    );
    assert!(
        kept.contains(&("talking".into(), AgentState::AfterCallWork)),
        "{kept:?}"
    );
}

#[test]
fn what_names_unknown_agents_or_groups_is_refused_one_by_one() {
    let h = morning();
    let mut kept = h.kept.clone();
    kept.agents[0].agent = "nobody".into();
    kept.callbacks[0].group = "nowhere".into();
    let now = t(108);
    let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
    let refused = fresh.restore(now, day::day_start(now, CST), kept, |_| true);
    assert_eq!(
        refused,
        vec![
            AcdError::UnknownAgent("nobody".into()),
            AcdError::UnknownGroup("nowhere".into())
        ]
    );
    // The rest is restored.
    assert_eq!(fresh.missed_calls().len(), 1);
}

#[test]
fn a_callback_waiting_for_its_next_attempt_waits_on_after_a_restart() {
    let mut h = E::new(two_agents(Strategy::LongestIdle));
    h.at(t(0), Input::Login { agent: "a1".into() });
    h.at(
        t(1),
        Input::ScheduleCallback {
            call: CallId(9),
            group: "g".into(),
            number: "c9".into(),
            priority: 3,
            max_attempts: None,
        },
    );
    h.at(t(2), answered(9, "a1"));
    h.at(
        t(20),
        Input::CallbackResult {
            call: CallId(9),
            answered: false,
        },
    );
    // Policy: two attempts, 60 s apart.
    let kept = &h.kept.callbacks;
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].attempts, kept[0].retry_at), (1, Some(t(80))));
    let now = t(50);
    let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
    fresh.restore(now, day::day_start(now, CST), h.kept.clone(), |_| true);
    assert!(std::iter::from_fn(|| fresh.poll_output())
        .all(|o| !matches!(o, Output::OfferCallback { .. })));
    assert_eq!(fresh.poll_timeout(), Some(t(80)));
    fresh.handle_timeout(t(80));
    let attempt: Vec<u32> = std::iter::from_fn(|| fresh.poll_output())
        .filter_map(|o| match o {
            Output::OfferCallback { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempt, vec![2], "the second attempt, not the first again");
}

#[test]
fn figures_of_an_earlier_day_are_not_restored() {
    let h = morning();
    // The next morning: yesterday's counters are not today's.
    let now = t(86_400);
    let today = day::day_start(now, CST);
    let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
    fresh.track_changes();
    fresh.restore(now, today, h.kept.clone(), |_| true);
    let st = fresh.stats(now);
    // (The one figure of today: a1's after-call work ran out overnight,
    // so the pending callback was offered to them at once.)
    let today_only = stats::GroupCounters {
        offers: 1,
        ..Default::default()
    };
    assert_eq!(st.groups[0].counters, today_only);
    let answered: Vec<u64> = st.agents.iter().map(|a| a.counters.answered).collect();
    assert_eq!(answered, vec![0, 0]);
    assert_eq!(fresh.day_start(), today);
    // The store learns the new day and the zeroed figures.
    let changes = fresh.take_changes();
    assert!(changes.contains(&Change::Day(today)), "{changes:?}");
    // Agents are signed in as they were all the same.
    assert_eq!(
        fresh.agent_view("a2").map(|a| a.state),
        Some(AgentState::NotReady)
    );
    // The missed call is still waiting for its callback.
    assert_eq!(fresh.missed_calls().len(), 1);
}

#[test]
fn at_local_midnight_the_figures_reset_and_fewest_calls_counts_today() {
    let mut h = E::new(config(
        vec![GroupConfig {
            acw: Duration::ZERO,
            ..group("g", Strategy::FewestCalls)
        }],
        vec![agent("busy", &[("g", 5)]), agent("quiet", &[("g", 5)])],
    ));
    h.at(
        t(0),
        Input::Login {
            agent: "busy".into(),
        },
    );
    h.at(
        t(1),
        Input::Login {
            agent: "quiet".into(),
        },
    );
    let brk = |a: &str| Input::NotReady {
        agent: a.into(),
        reason: "break".into(),
    };
    let call = |h: &mut E, id: u64, at: u64| {
        h.at(t(at), enqueue(id, "c", t(at)));
        let agent = h.offers()[0].1.clone();
        h.at(t(at + 1), answered(id, &agent));
        h.at(t(at + 5), Input::CallEnded { call: CallId(id) });
        agent
    };
    // "quiet" is on a break while "busy" takes two calls; back at t+40.
    h.at(t(2), brk("quiet"));
    assert_eq!(call(&mut h, 1, 10), "busy");
    assert_eq!(call(&mut h, 2, 20), "busy");
    h.at(
        t(40),
        Input::Ready {
            agent: "quiet".into(),
        },
    );
    // Still today: the next call goes to "quiet", who took fewer.
    assert_eq!(call(&mut h, 3, 60), "quiet");
    let calls = |e: &Engine, now: Time, a: &str| {
        e.stats(now)
            .agents
            .into_iter()
            .find(|x| x.agent == a)
            .map(|x| x.counters.answered)
    };
    assert_eq!(
        (calls(&h.e, t(70), "busy"), calls(&h.e, t(70), "quiet")),
        (Some(2), Some(1))
    );
    // At local midnight the shell feeds NewDay: every figure starts again.
    let midnight = day::next_day_start(t(70), CST);
    assert_eq!(
        midnight,
        t(14 * 3600),
        "10:00 + 14 h is midnight in Beijing"
    );
    h.at(midnight, Input::NewDay);
    let st = h.e.stats(midnight);
    assert_eq!(st.groups[0].counters, stats::GroupCounters::default());
    assert_eq!(st.sl20, stats::ServiceLevel::default());
    assert_eq!(
        (
            calls(&h.e, midnight, "busy"),
            calls(&h.e, midnight, "quiet")
        ),
        (Some(0), Some(0))
    );
    assert_eq!(h.kept.day_start, Some(midnight));
    // Today neither has taken a call: the longest idle ("busy", idle since
    // t+25, before "quiet" at t+65) gets the first call of the day, where
    // yesterday's count would have picked "quiet".
    h.at(midnight + s(1), enqueue(4, "c", midnight + s(1)));
    assert_eq!(h.offers()[0].1, "busy");
}

#[test]
fn extended_after_call_work_is_kept_with_its_new_end() {
    let mut h = morning();
    // a1 is in after-call work until t(110); they ask for 60 s more.
    h.at(
        t(107),
        Input::ExtendAcw {
            agent: "a1".into(),
            by: s(60),
        },
    );
    let kept = h.kept.agents.iter().find(|a| a.agent == "a1").cloned();
    assert_eq!(kept.and_then(|a| a.acw_until), Some(t(170)));
    let now = t(120);
    let mut fresh = Engine::new(two_agents(Strategy::LongestIdle), now).expect("config");
    fresh.restore(now, day::day_start(now, CST), h.kept.clone(), |_| true);
    assert_eq!(
        fresh.agent_view("a1").map(|a| (a.state, a.acw_until)),
        Some((AgentState::AfterCallWork, Some(t(170))))
    );
}
