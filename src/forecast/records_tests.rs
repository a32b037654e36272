//! Call records made by the real builder, read as the forecast's inputs.

use std::sync::Arc;

use super::*;
use crate::events::builder::{CallStart, CdrBuilder, EndCause};
use crate::events::cdr::HangupParty;
use crate::events::id::IdGenerator;

const T0: i64 = 1_796_515_200_000;

fn builder(id: &str, at: i64) -> CdrBuilder {
    let start = CallStart {
        call_id: id.into(),
        serial: format!("12345-{id}"),
        tenant: "t".into(),
        direction: Direction::Inbound,
        caller: "13800138000".into(),
        called: "12345".into(),
        caller_area: None,
        confidential: false,
    };
    let (b, _) = CdrBuilder::started(Arc::new(IdGenerator::new("t", 0)), at, start).expect("start");
    b
}

fn ended(events: Vec<crate::events::model::Event>) -> Cdr {
    events
        .into_iter()
        .find_map(|e| match e.body {
            crate::events::model::EventData::CallEnded(c) => Some(*c),
            _ => None,
        })
        .expect("call.ended")
}

fn normal() -> EndCause {
    EndCause {
        reason: Some("normal".into()),
        ..EndCause::default()
    }
}

/// Asks at `at` s after T0 in `group`, rings after `wait − 4` s, answered
/// at `wait` s, talks 100 s, 20 s of after-call work.
fn answered(id: &str, group: &str, at: i64, wait: i64) -> Cdr {
    let t = |s: i64| T0 + (at + s) * 1000;
    let mut b = builder(id, t(0));
    b.agent_requested(t(0)).expect("asked");
    b.queued(t(0), group, None, 0).expect("queued");
    b.offered(t(wait - 4), "1001").expect("offered");
    b.answered(t(wait), "1001").expect("answered");
    b.ended(t(wait + 100), HangupParty::Caller, normal())
        .expect("ended");
    ended(b.acw_ended(t(wait + 120), "1001").expect("acw"))
}

/// Asks at `at` s and hangs up in the queue after `wait` s.
fn abandoned(id: &str, group: &str, at: i64, wait: i64) -> Cdr {
    let t = |s: i64| T0 + (at + s) * 1000;
    let mut b = builder(id, t(0));
    b.agent_requested(t(0)).expect("asked");
    b.queued(t(0), group, None, 0).expect("queued");
    ended(
        b.ended(t(wait), HangupParty::Caller, normal())
            .expect("ended"),
    )
}

fn time(s: i64) -> Time {
    Time::from_unix_millis((T0 + s * 1000) as u64)
}

#[test]
fn records_become_observations() {
    let a = observation(&answered("a", "g", 0, 10)).expect("asked");
    assert_eq!(a.asked_at, time(0));
    assert_eq!(a.wait, Duration::from_secs(10));
    assert_eq!(
        a.seen,
        Seen::Answered {
            ring: Duration::from_secs(4),
            handle: Duration::from_secs(120),
        }
    );
    let h = observation(&abandoned("h", "g", 5, 30)).expect("asked");
    assert_eq!(h.seen, Seen::HungUp);
    assert_eq!(h.wait, Duration::from_secs(30));
    // Only the group's calls.
    let cdrs = [answered("a", "g", 0, 10), answered("b", "other", 0, 10)];
    assert_eq!(observations(&cdrs, "g").len(), 1);
}

#[test]
fn the_chart_counts_arrivals_and_the_reports_20s_rate() {
    // Interval [0, 600): answered in 10 s, answered in 25 s, hung up
    // after 5 s (excluded) and after 40 s: 1 of 3 → 33 %. Interval
    // [600, 1200): one answered in 5 s, one still waiting (live).
    let finished = [
        answered("a", "g", 0, 10),
        answered("b", "g", 100, 25),
        abandoned("c", "g", 200, 5),
        abandoned("d", "g", 300, 40),
        answered("e", "g", 700, 5),
        answered("x", "other", 700, 5),
    ];
    let mut waiting = builder("f", T0 + 900_000);
    waiting.agent_requested(T0 + 900_000).expect("asked");
    waiting.queued(T0 + 900_000, "g", None, 0).expect("queued");
    let live = [waiting.snapshot()];
    let bins = history(
        &finished,
        &live,
        "g",
        time(1200),
        Duration::from_secs(600),
        2,
    );
    assert_eq!(bins.len(), 2);
    assert_eq!(bins[0].from, time(0));
    assert_eq!(bins[0].arrivals, 4);
    assert_eq!(bins[0].answer_rate_20s, Some(1.0 / 3.0));
    assert_eq!(bins[1].arrivals, 2);
    assert_eq!(bins[1].answer_rate_20s, Some(1.0));
    // The live caller's wait so far counts for the patience.
    let o = live_observation(&live[0], time(960)).expect("asked");
    assert_eq!(o.wait, Duration::from_secs(60));
    assert_eq!(o.seen, Seen::Other);
}

#[test]
fn inputs_split_today_from_past_weeks() {
    let week = 7 * 86_400;
    let now = 2 * week + 3_600;
    let finished = [
        answered("today", "g", now - 600, 5),
        answered("later", "g", now + 60, 5),
        answered("w1", "g", now - week + 60, 5),
        answered("w2", "g", now - 2 * week - 600, 5),
        answered("w2-far", "g", now - 2 * week - 10_000, 5),
    ];
    let i = inputs(&Settings::default(), time(now), "g", &finished, &[], 3, 4);
    assert_eq!(i.recent.len(), 1);
    assert_eq!(i.past_weeks.len(), 2);
    assert_eq!(i.past_weeks[0].calls.len(), 1);
    assert_eq!(i.past_weeks[1].calls.len(), 1);
    assert_eq!((i.ready, i.signed_in), (3, 4));
}
