//! A property test over arbitrary orders of a call's facts: whatever the
//! order and the clock, [`super::builder::CdrBuilder`] gives ordered
//! events, one `call.ended`, and durations that add up.

use std::sync::Arc;

use proptest::prelude::*;

use super::builder::{CdrBuilder, EndCause};
use super::builder_tests::*;
use super::cdr::{HangupParty, Outcome};
use super::error::EventError;
use super::id::IdGenerator;
use super::model::{ConferenceChange, Event, Party, PartyRole, TransferKind, TransferMode};
use super::samples::{quality, start, T0};

// ---- arbitrary fact orders ---------------------------------------------------

/// One fact, with a time offset in seconds.
#[derive(Debug, Clone)]
enum Op {
    Step(i64, u8),
    Request(i64),
    Queue(i64, u8),
    TimedOut(i64),
    Callback(i64),
    Offer(i64, u8),
    Cancel(i64, u8),
    Answer(i64, u8),
    Hold(i64),
    Resume(i64),
    AgentHangUp(i64),
    Transfer(i64, u8),
    Conference(i64, u8),
    Survey(i64, u8),
    Voicemail(i64),
    Blocked,
    RecStart,
    RecReady(i64),
    Quality(u8),
    End(i64, u8, bool),
    AcwEnd(i64, u8),
    Close(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let t = -5i64..400;
    prop_oneof![
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Step(a, b)),
        t.clone().prop_map(Op::Request),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Queue(a, b)),
        t.clone().prop_map(Op::TimedOut),
        t.clone().prop_map(Op::Callback),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Offer(a, b)),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Cancel(a, b)),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Answer(a, b)),
        t.clone().prop_map(Op::Hold),
        t.clone().prop_map(Op::Resume),
        t.clone().prop_map(Op::AgentHangUp),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::Transfer(a, b)),
        (t.clone(), 0u8..5).prop_map(|(a, b)| Op::Conference(a, b)),
        (t.clone(), any::<u8>()).prop_map(|(a, b)| Op::Survey(a, b)),
        t.clone().prop_map(Op::Voicemail),
        Just(Op::Blocked),
        Just(Op::RecStart),
        t.clone().prop_map(Op::RecReady),
        any::<u8>().prop_map(Op::Quality),
        (t.clone(), 0u8..3, any::<bool>()).prop_map(|(a, b, c)| Op::End(a, b, c)),
        (t.clone(), 0u8..3).prop_map(|(a, b)| Op::AcwEnd(a, b)),
        t.prop_map(Op::Close),
    ]
}

fn agent(n: u8) -> String {
    format!("10{n:02}")
}

fn apply(b: &mut CdrBuilder, op: &Op, time: &dyn Fn(i64) -> i64) -> Result<Vec<Event>, EventError> {
    match op.clone() {
        Op::Step(s, f) => b.ivr_step(time(s), &format!("f{f}"), "1", &format!("n{s}"), "play"),
        Op::Request(s) => b.agent_requested(time(s)),
        Op::Queue(s, g) => b.queued(time(s), &format!("g{g}"), None, g),
        Op::TimedOut(s) => b.queue_timed_out(time(s)),
        Op::Callback(s) => b.callback_requested(time(s)),
        Op::Offer(s, a) => b.offered(time(s), &agent(a)),
        Op::Cancel(s, a) => b.offer_cancelled(time(s), &agent(a)),
        Op::Answer(s, a) => b.answered(time(s), &agent(a)),
        Op::Hold(s) => b.held(time(s)),
        Op::Resume(s) => b.resumed(time(s)),
        Op::AgentHangUp(s) => b.agent_hung_up(time(s)),
        Op::Transfer(s, k) => {
            let kind = [
                TransferKind::Agent,
                TransferKind::Group,
                TransferKind::Number,
            ][usize::from(k % 3)];
            b.transferred(time(s), kind, "x", TransferMode::Blind)
        }
        Op::Conference(s, n) => {
            let p = Party {
                role: PartyRole::External,
                id: "110".into(),
            };
            b.conference_changed(
                time(s),
                ConferenceChange::Joined,
                p.clone(),
                vec![p; usize::from(n)],
            )
        }
        Op::Survey(s, score) => b.survey_result(time(s), "attitude", score, '1'),
        Op::Voicemail(s) => b.voicemail_saved(time(s), "vm.wav", 1_000),
        Op::Blocked => b.blocked().map(|()| Vec::new()),
        Op::RecStart => b.recording_started("r", "r.wav").map(|()| Vec::new()),
        Op::RecReady(s) => b.recording_ready(time(s), rec()),
        Op::Quality(n) => {
            let mut q = quality("caller");
            q.lost = i64::from(n) - 100;
            b.leg_quality(q).map(|()| Vec::new())
        }
        Op::End(s, by, fault) => {
            let by =
                [HangupParty::Caller, HangupParty::Agent, HangupParty::System][usize::from(by % 3)];
            b.ended(
                time(s),
                by,
                EndCause {
                    fault,
                    ..EndCause::default()
                },
            )
        }
        Op::AcwEnd(s, a) => b.acw_ended(time(s), &agent(a)),
        Op::Close(s) => b.close(time(s)),
    }
}

fn check_run(ops: &[Op], time: &dyn Fn(i64) -> i64) -> Result<Vec<Event>, TestCaseError> {
    let (mut b, first) = CdrBuilder::started(
        Arc::new(IdGenerator::new("p", 0)),
        T0,
        start("c-p", "13812348000"),
    )
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut events = vec![first];
    for op in ops {
        let before = format!("{b:?}");
        match apply(&mut b, op, time) {
            Ok(new) => events.extend(new),
            Err(_) => prop_assert_eq!(
                format!("{b:?}"),
                before,
                "a refused {:?} changed the builder",
                op
            ),
        }
    }
    // Whatever happened, hanging up and closing always yields the record
    // (at valid times: `time` may be out of range on purpose).
    if let Ok(new) = b.ended(t(500), HangupParty::Caller, EndCause::default()) {
        events.extend(new);
    }
    if !b.is_closed() {
        events.extend(
            b.close(t(501))
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    prop_assert!(b.is_closed());
    for (i, e) in events.iter().enumerate() {
        prop_assert_eq!(e.seq as usize, i + 1);
        let text = serde_json::to_string(e).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Event =
            serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, e);
    }
    let ended: Vec<usize> = (0..events.len())
        .filter(|i| events[*i].kind() == "call.ended")
        .collect();
    prop_assert_eq!(ended.len(), 1);
    // Only late recordings may follow the record.
    for e in &events[ended[0] + 1..] {
        prop_assert_eq!(e.kind(), "recording.ready");
    }
    Ok(events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_quality_figures_survive_json(
        received in any::<u64>(), lost in any::<i64>(),
        jitter in any::<f64>(), peer in proptest::option::of(any::<f64>()),
        peer_jitter in proptest::option::of(any::<f64>()), rtt in proptest::option::of(any::<f64>()),
    ) {
        let mut q = quality("caller");
        (q.received, q.lost, q.jitter_ms, q.peer_fraction_lost, q.peer_jitter_ms, q.rtt_ms) =
            (received, lost, jitter, peer, peer_jitter, rtt);
        q.sanitise();
        let text = serde_json::to_string(&q).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: super::cdr::LegQuality = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &q);
        prop_assert!((0.0..=1.0).contains(&q.loss_fraction));
    }

    #[test]
    fn arbitrary_fact_orders_never_panic(ops in proptest::collection::vec(op(), 0..40)) {
        check_run(&ops, &|s| t(s))?;
        // Times far out of range are refused, never a panic.
        check_run(&ops, &|s| s.saturating_mul(i64::MAX / 200))?;
    }

    #[test]
    fn with_time_moving_forward_durations_add_up(mut ops in proptest::collection::vec(op(), 0..40)) {
        // Sort the facts by time: a clock that never steps back.
        ops.sort_by_key(|o| match o {
            Op::Step(s, _) | Op::Request(s) | Op::Queue(s, _) | Op::TimedOut(s) | Op::Callback(s)
            | Op::Offer(s, _) | Op::Cancel(s, _) | Op::Answer(s, _) | Op::Hold(s) | Op::Resume(s)
            | Op::AgentHangUp(s) | Op::Transfer(s, _) | Op::Conference(s, _) | Op::Survey(s, _)
            | Op::Voicemail(s) | Op::RecReady(s) | Op::End(s, _, _) | Op::AcwEnd(s, _) | Op::Close(s) => *s,
            Op::Blocked | Op::RecStart | Op::Quality(_) => -5,
        });
        let events = check_run(&ops, &|s| t(s.max(0)))?;
        let c = the_cdr(&events);
        if let Some(conn) = c.connected_at {
            prop_assert!(c.talk_ms + c.hold_ms <= c.ended_at.ms_since(conn));
            prop_assert!(matches!(c.outcome, Outcome::Answered | Outcome::Blocked));
        } else {
            prop_assert_eq!(c.talk_ms + c.hold_ms, 0);
            prop_assert_eq!(c.acw_ms, None);
        }
        prop_assert!(c.wait_ms.unwrap_or(0) <= c.duration_ms);
        prop_assert!(c.ring_ms.unwrap_or(0) <= c.duration_ms);
    }
}
