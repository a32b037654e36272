//! Scenarios for [`super::builder::CdrBuilder`]: the calls a 12345 hotline
//! sees (answered with hold and after-call work, abandoned in the queue and
//! in the IVR, voicemail, survey), durations, ordering, refusals, JSON
//! round trips (the property test over arbitrary fact orders is
//! `builder_order_tests`).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::builder::{CallStart, CdrBuilder, EndCause};
use super::cdr::{Cdr, HangupParty, Outcome};
use super::error::EventError;
use super::id::IdGenerator;
use super::model::{
    ConferenceChange, Event, EventData, Party, PartyRole, RecordingInfo, TransferFailure,
    TransferFailureReason, TransferKind, TransferMode, TransferReturn, Vars,
};
use super::samples::{quality, start, T0};

/// `s` seconds after T0, in ms.
pub(super) fn t(s: i64) -> i64 {
    T0 + s * 1000
}

pub(super) fn new_call(call: &str) -> (CdrBuilder, Vec<Event>) {
    let ids = Arc::new(IdGenerator::new("test", 0));
    let (b, e) = CdrBuilder::started(ids, T0, start(call, "13812348000")).expect("start");
    (b, vec![e])
}

/// Runs a fact that must be accepted, collecting its events.
pub(super) fn run(out: &mut Vec<Event>, r: Result<Vec<Event>, EventError>) -> usize {
    let events = r.expect("fact accepted");
    let n = events.len();
    out.extend(events);
    n
}

pub(super) fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

pub(super) fn the_cdr(events: &[Event]) -> &Cdr {
    let ended: Vec<&Cdr> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventData::CallEnded(c) => Some(&**c),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended.len(),
        1,
        "exactly one call.ended: {:?}",
        kinds(events)
    );
    ended[0]
}

pub(super) fn assert_seq_1_to_n(events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq as usize, i + 1, "{:?}", kinds(events));
        assert_eq!(e.v, 1);
    }
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "ids unique");
}

pub(super) fn normal() -> EndCause {
    EndCause {
        reason: Some("normal".into()),
        ..EndCause::default()
    }
}

#[test]
fn answered_call_with_hold_and_after_call_work() {
    let (mut b, mut ev) = new_call("c-1");
    run(&mut ev, b.ivr_step(t(0), "12345", "7", "welcome", "play"));
    run(&mut ev, b.ivr_step(t(4), "12345", "7", "menu", "menu"));
    run(&mut ev, b.agent_requested(t(5)));
    run(&mut ev, b.queued(t(6), "g1", Some("咨询组"), 3));
    run(&mut ev, b.offered(t(16), "1001"));
    run(&mut ev, b.answered(t(20), "1001"));
    run(&mut ev, b.held(t(60)));
    run(&mut ev, b.resumed(t(90)));
    b.leg_quality(quality("caller")).expect("quality");
    // The agent ends the call; the record waits for after-call work.
    assert_eq!(
        run(&mut ev, b.ended(t(200), HangupParty::Agent, normal())),
        0
    );
    assert!(!b.is_closed());
    assert_eq!(run(&mut ev, b.acw_ended(t(230), "1001")), 1);
    assert!(b.is_closed());

    assert_eq!(
        kinds(&ev),
        [
            "call.started",
            "ivr.step",
            "ivr.step",
            "queue.entered",
            "agent.offered",
            "agent.answered",
            "call.held",
            "call.resumed",
            "call.ended"
        ]
    );
    assert_seq_1_to_n(&ev);
    let EventData::AgentAnswered(a) = &ev[5].body else {
        panic!()
    };
    assert_eq!(
        (a.wait_ms, a.ring_ms, a.group_id.as_deref()),
        (Some(15_000), Some(4_000), Some("g1"))
    );
    let EventData::CallResumed(r) = &ev[7].body else {
        panic!()
    };
    assert_eq!(r.held_ms, 30_000);

    let c = the_cdr(&ev);
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.hangup_by, HangupParty::Agent);
    assert_eq!(c.hangup_reason.as_deref(), Some("normal"));
    assert_eq!(c.duration_ms, 200_000);
    assert_eq!(c.wait_ms, Some(15_000));
    assert_eq!(c.ring_ms, Some(4_000));
    assert_eq!(c.talk_ms, 40_000 + 110_000);
    assert_eq!((c.hold_ms, c.hold_count), (30_000, 1));
    assert_eq!(c.acw_ms, Some(30_000));
    assert_eq!(c.agent_id.as_deref(), Some("1001"));
    assert_eq!(
        (c.group_id.as_deref(), c.group_name.as_deref()),
        (Some("g1"), Some("咨询组"))
    );
    assert_eq!(c.ivr_path, ["welcome", "menu"]);
    assert_eq!(
        c.flow
            .as_ref()
            .map(|f| (f.name.as_str(), f.version.as_str())),
        Some(("12345", "7"))
    );
    assert_eq!(c.started_at.unix_ms(), T0);
    assert_eq!(c.queued_at.map(|x| x.unix_ms()), Some(t(6)));
    assert_eq!(c.ring_at.map(|x| x.unix_ms()), Some(t(16)));
    assert_eq!(c.connected_at.map(|x| x.unix_ms()), Some(t(20)));
    assert_eq!(c.ended_at.unix_ms(), t(200));
    assert_eq!(c.quality.len(), 1);
    assert!((c.quality[0].loss_fraction - 0.005).abs() < 1e-9);
    assert!(c.complete);
    // The record's envelope time is when it completed; the hang-up is in it.
    assert_eq!(ev[8].at.unix_ms(), t(230));
}

#[test]
fn hold_open_at_hang_up_counts_as_hold() {
    let (mut b, mut ev) = new_call("c-h");
    run(&mut ev, b.answered(t(10), "1001"));
    run(&mut ev, b.held(t(20)));
    run(&mut ev, b.ended(t(50), HangupParty::Caller, normal()));
    run(&mut ev, b.acw_ended(t(50), "1001"));
    let c = the_cdr(&ev);
    assert_eq!(
        (c.talk_ms, c.hold_ms, c.acw_ms, c.wait_ms),
        (10_000, 30_000, Some(0), None)
    );
}

#[test]
fn abandoned_in_queue_and_while_ringing() {
    let (mut b, mut ev) = new_call("c-2");
    run(&mut ev, b.queued(t(10), "g1", None, 0));
    run(
        &mut ev,
        b.ended(t(40), HangupParty::Caller, EndCause::default()),
    );
    let c = the_cdr(&ev);
    assert_eq!(
        (c.outcome, c.wait_ms, c.ring_ms, c.acw_ms),
        (Outcome::AbandonedInQueue, Some(30_000), None, None)
    );
    assert_seq_1_to_n(&ev);

    let (mut b, mut ev) = new_call("c-3");
    run(&mut ev, b.queued(t(10), "g1", None, 0));
    run(&mut ev, b.offered(t(12), "1001"));
    run(
        &mut ev,
        b.ended(t(15), HangupParty::Caller, EndCause::default()),
    );
    let c = the_cdr(&ev);
    assert_eq!(
        (c.outcome, c.ring_ms, c.offers),
        (Outcome::AbandonedRinging, Some(3_000), 1)
    );

    // The offer rang out; the caller hung up waiting again.
    let (mut b, mut ev) = new_call("c-4");
    run(&mut ev, b.queued(t(10), "g1", None, 0));
    run(&mut ev, b.offered(t(12), "1001"));
    run(&mut ev, b.offer_cancelled(t(27), "1001"));
    run(
        &mut ev,
        b.ended(t(30), HangupParty::Caller, EndCause::default()),
    );
    assert_eq!(the_cdr(&ev).outcome, Outcome::AbandonedInQueue);
}

#[test]
fn overflow_keeps_first_queue_time_and_lists_groups() {
    let (mut b, mut ev) = new_call("c-5");
    run(&mut ev, b.queued(t(10), "g1", None, 0));
    run(&mut ev, b.queued(t(70), "g2", Some("二线"), 0));
    run(&mut ev, b.answered(t(75), "2001"));
    run(&mut ev, b.ended(t(100), HangupParty::Caller, normal()));
    run(&mut ev, b.acw_ended(t(110), "2001"));
    let EventData::QueueEntered(q) = &ev[2].body else {
        panic!()
    };
    assert_eq!(q.from_group.as_deref(), Some("g1"));
    let c = the_cdr(&ev);
    assert_eq!(c.groups, ["g1", "g2"]);
    assert_eq!(c.group_id.as_deref(), Some("g2"));
    assert_eq!(c.wait_ms, Some(65_000));
}

#[test]
fn abandoned_in_ivr_and_ivr_completed() {
    let (mut b, mut ev) = new_call("c-6");
    run(&mut ev, b.ivr_step(t(0), "12345", "7", "welcome", "play"));
    run(&mut ev, b.ivr_step(t(3), "12345", "7", "common", "subflow"));
    run(&mut ev, b.ivr_step(t(3), "common", "2", "hours", "play"));
    run(&mut ev, b.agent_requested(t(8)));
    run(
        &mut ev,
        b.ended(t(12), HangupParty::Caller, EndCause::default()),
    );
    let c = the_cdr(&ev);
    assert_eq!(c.outcome, Outcome::AbandonedInIvr);
    assert_eq!(c.ivr_path, ["welcome", "common", "common/hours"]);
    assert_eq!(c.wait_ms, Some(4_000));
    assert_eq!(c.agent_requested_at.map(|x| x.unix_ms()), Some(t(8)));
    let EventData::IvrStep(s) = &ev[3].body else {
        panic!()
    };
    assert_eq!((s.flow.as_str(), s.step), ("common", 3));

    let (mut b, mut ev) = new_call("c-7");
    run(&mut ev, b.ivr_step(t(0), "12345", "7", "closed", "hangup"));
    let cause = EndCause {
        reason: Some("normal".into()),
        ..EndCause::default()
    };
    run(&mut ev, b.ended(t(9), HangupParty::System, cause));
    assert_eq!(the_cdr(&ev).outcome, Outcome::IvrCompleted);
}

#[test]
fn voicemail_after_queue_timeout() {
    let (mut b, mut ev) = new_call("c-8");
    run(&mut ev, b.queued(t(5), "g1", None, 0));
    run(&mut ev, b.queue_timed_out(t(125)));
    run(&mut ev, b.voicemail_saved(t(160), "vm/c-8.wav", 31_000));
    run(
        &mut ev,
        b.ended(t(161), HangupParty::Caller, EndCause::default()),
    );
    let c = the_cdr(&ev);
    assert_eq!(c.outcome, Outcome::Voicemail);
    assert_eq!(c.wait_ms, Some(120_000));
    assert_eq!(c.voicemail.as_ref().map(|v| v.duration_ms), Some(31_000));
    let EventData::VoicemailSaved(v) = &ev[2].body else {
        panic!()
    };
    assert_eq!(v.group_id.as_deref(), Some("g1"));

    // Timed out, goodbye played, the caller hangs up during it.
    let (mut b, mut ev) = new_call("c-9");
    run(&mut ev, b.queued(t(5), "g1", None, 0));
    run(&mut ev, b.queue_timed_out(t(125)));
    run(
        &mut ev,
        b.ended(t(130), HangupParty::Caller, EndCause::default()),
    );
    assert_eq!(the_cdr(&ev).outcome, Outcome::QueueTimeout);

    let (mut b, mut ev) = new_call("c-10");
    run(&mut ev, b.queued(t(5), "g1", None, 0));
    run(&mut ev, b.callback_requested(t(45)));
    run(
        &mut ev,
        b.ended(t(50), HangupParty::System, EndCause::default()),
    );
    let c = the_cdr(&ev);
    assert_eq!((c.outcome, c.wait_ms), (Outcome::Callback, Some(40_000)));
}

#[test]
fn survey_after_the_agent_hangs_up() {
    let (mut b, mut ev) = new_call("c-11");
    run(&mut ev, b.queued(t(2), "g1", None, 0));
    run(&mut ev, b.answered(t(4), "1001"));
    run(&mut ev, b.agent_hung_up(t(64)));
    run(&mut ev, b.ivr_step(t(64), "survey", "1", "rate", "survey"));
    run(&mut ev, b.survey_result(t(70), "attitude", 5, '1'));
    run(&mut ev, b.survey_result(t(72), "efficiency", 4, '2'));
    run(&mut ev, b.survey_result(t(74), "efficiency", 5, '1'));
    run(&mut ev, b.acw_ended(t(74), "1001"));
    assert_eq!(
        run(&mut ev, b.ended(t(75), HangupParty::Caller, normal())),
        1
    );
    assert_seq_1_to_n(&ev);
    let EventData::SurveyResult(s) = &ev[4].body else {
        panic!()
    };
    assert_eq!(
        (s.agent_id.as_deref(), s.key, s.score),
        (Some("1001"), '1', 5)
    );
    let c = the_cdr(&ev);
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.survey.get("attitude"), Some(&5));
    assert_eq!(c.survey.get("efficiency"), Some(&5));
    assert_eq!((c.talk_ms, c.acw_ms), (60_000, Some(10_000)));
    assert_eq!(c.flow.as_ref().map(|f| f.name.as_str()), Some("survey"));
}

#[test]
fn transfers_conference_and_external() {
    let (mut b, mut ev) = new_call("c-12");
    run(&mut ev, b.answered(t(10), "1001"));
    let caller = Party {
        role: PartyRole::Caller,
        id: "x".into(),
    };
    let agent = Party {
        role: PartyRole::Agent,
        id: "1001".into(),
    };
    let ext = Party {
        role: PartyRole::External,
        id: "12328".into(),
    };
    run(
        &mut ev,
        b.conference_changed(
            t(20),
            ConferenceChange::Joined,
            ext.clone(),
            vec![caller, agent, ext],
        ),
    );
    run(
        &mut ev,
        b.transferred(t(30), TransferKind::Number, "12328", TransferMode::Blind),
    );
    run(&mut ev, b.ended(t(90), HangupParty::Caller, normal()));
    run(&mut ev, b.acw_ended(t(95), "1001"));
    let c = the_cdr(&ev);
    assert_eq!(
        (c.outcome, c.conference_max, c.talk_ms),
        (Outcome::Answered, 3, 20_000)
    );
    assert_eq!(c.transfers[0].from_agent.as_deref(), Some("1001"));

    // The IVR hands the call to another hotline: nobody of ours answered.
    let (mut b, mut ev) = new_call("c-13");
    run(
        &mut ev,
        b.transferred(t(5), TransferKind::Number, "110", TransferMode::Blind),
    );
    run(
        &mut ev,
        b.ended(t(60), HangupParty::Caller, EndCause::default()),
    );
    assert_eq!(the_cdr(&ev).outcome, Outcome::TransferredOut);

    // Attended transfer agent to agent: both do after-call work.
    let (mut b, mut ev) = new_call("c-14");
    run(&mut ev, b.answered(t(10), "1001"));
    run(
        &mut ev,
        b.transferred(t(40), TransferKind::Agent, "1002", TransferMode::Attended),
    );
    run(&mut ev, b.answered(t(40), "1002"));
    run(&mut ev, b.ended(t(100), HangupParty::Caller, normal()));
    assert_eq!(run(&mut ev, b.acw_ended(t(105), "1002")), 0);
    assert_eq!(run(&mut ev, b.acw_ended(t(110), "1001")), 1);
    let c = the_cdr(&ev);
    assert_eq!(c.agents, ["1001", "1002"]);
    assert_eq!((c.talk_ms, c.acw_ms), (90_000, Some(70_000 + 5_000)));
}

pub(super) fn failure(
    reason: TransferFailureReason,
    sip_code: Option<u16>,
    back_to: TransferReturn,
    id: Option<&str>,
) -> TransferFailure {
    TransferFailure {
        reason,
        sip_code,
        back_to,
        back_to_id: id.map(str::to_owned),
    }
}

#[test]
fn a_failed_blind_transfer_is_marked_and_the_caller_talks_again() {
    // To an agent: the transfer recorded when 1001 left gets the failure;
    // 1001 answers again; both stretches of talk count.
    let (mut b, mut ev) = new_call("c-15");
    run(&mut ev, b.queued(t(1), "general", None, 0));
    run(&mut ev, b.answered(t(10), "1001"));
    run(
        &mut ev,
        b.transferred(t(40), TransferKind::Agent, "1002", TransferMode::Blind),
    );
    run(&mut ev, b.offered(t(40), "1002"));
    let busy = failure(
        TransferFailureReason::Busy,
        Some(486),
        TransferReturn::Agent,
        Some("1001"),
    );
    run(
        &mut ev,
        b.transfer_failed(
            t(41),
            Some("1001"),
            TransferKind::Agent,
            "1002",
            TransferMode::Blind,
            busy.clone(),
        ),
    );
    run(&mut ev, b.offered(t(41), "1001"));
    run(&mut ev, b.answered(t(43), "1001"));
    run(&mut ev, b.acw_ended(t(43), "1001"));
    // Then to a number the trunk refuses: not in the record until now.
    run(&mut ev, b.agent_hung_up(t(60)));
    let refused = failure(
        TransferFailureReason::Failed,
        Some(503),
        TransferReturn::Queue,
        Some("general"),
    );
    run(
        &mut ev,
        b.transfer_failed(
            t(62),
            Some("1001"),
            TransferKind::Number,
            "12328",
            TransferMode::Blind,
            refused.clone(),
        ),
    );
    run(&mut ev, b.acw_ended(t(63), "1001"));
    run(&mut ev, b.queued(t(62), "general", None, 0));
    run(&mut ev, b.answered(t(70), "1003"));
    run(&mut ev, b.ended(t(100), HangupParty::Caller, normal()));
    run(&mut ev, b.acw_ended(t(105), "1003"));
    assert_seq_1_to_n(&ev);
    assert_eq!(
        kinds(&ev)
            .iter()
            .filter(|k| **k == "call.transfer_failed")
            .count(),
        2
    );
    let c = the_cdr(&ev);
    assert_eq!(c.outcome, Outcome::Answered);
    assert_eq!(c.agents, ["1001", "1003"]);
    assert_eq!(c.transfers.len(), 2);
    assert_eq!(c.transfers[0].failure.as_ref(), Some(&busy));
    assert_eq!(c.transfers[1].target, "12328");
    assert_eq!(c.transfers[1].from_agent.as_deref(), Some("1001"));
    assert_eq!(c.transfers[1].failure.as_ref(), Some(&refused));
    assert_eq!(c.talk_ms, 30_000 + 17_000 + 30_000);
    assert!(c.complete);

    // A failed transfer to a number is no "transferred out": the caller
    // was hung up with nowhere to go back to.
    let (mut b, mut ev) = new_call("c-16");
    run(&mut ev, b.answered(t(10), "1001"));
    run(&mut ev, b.agent_hung_up(t(20)));
    let nowhere = failure(
        TransferFailureReason::NoAnswer,
        None,
        TransferReturn::None,
        None,
    );
    run(
        &mut ev,
        b.transfer_failed(
            t(30),
            Some("1001"),
            TransferKind::Number,
            "110",
            TransferMode::Blind,
            nowhere,
        ),
    );
    run(&mut ev, b.ended(t(30), HangupParty::System, normal()));
    run(&mut ev, b.acw_ended(t(35), "1001"));
    assert_eq!(the_cdr(&ev).outcome, Outcome::Answered);
    let (mut b, mut ev) = new_call("c-17");
    let gone = failure(
        TransferFailureReason::Unreachable,
        None,
        TransferReturn::None,
        None,
    );
    run(
        &mut ev,
        b.transfer_failed(
            t(5),
            None,
            TransferKind::Number,
            "110",
            TransferMode::Blind,
            gone,
        ),
    );
    run(&mut ev, b.ended(t(6), HangupParty::System, normal()));
    assert_ne!(the_cdr(&ev).outcome, Outcome::TransferredOut);
}

#[test]
fn a_failed_transfer_survives_a_replay_after_a_crash() {
    let (mut b, mut ev) = new_call("c-18");
    run(&mut ev, b.answered(t(10), "1001"));
    run(
        &mut ev,
        b.transferred(t(40), TransferKind::Agent, "1002", TransferMode::Blind),
    );
    let back = failure(
        TransferFailureReason::NoAnswer,
        None,
        TransferReturn::Agent,
        Some("1001"),
    );
    run(
        &mut ev,
        b.transfer_failed(
            t(48),
            Some("1001"),
            TransferKind::Agent,
            "1002",
            TransferMode::Blind,
            back.clone(),
        ),
    );
    run(&mut ev, b.answered(t(50), "1001"));
    let ids = Arc::new(IdGenerator::new("replay", 0));
    let closing = super::replay::close_interrupted(ids, &ev, None).expect("replayed");
    assert_eq!(closing.skipped, 0);
    let ended = closing.events.last().expect("call.ended").clone();
    let EventData::CallEnded(c) = ended.body else {
        panic!("not call.ended")
    };
    assert_eq!(c.transfers.len(), 1);
    assert_eq!(c.transfers[0].failure, Some(back));
    assert_eq!(c.agents, ["1001"]);
}

#[test]
fn faults_blocked_and_the_sip_cause() {
    let (mut b, mut ev) = new_call("c-15");
    run(&mut ev, b.queued(t(1), "g1", None, 0));
    let cause = EndCause {
        sip_code: Some(503),
        reason: Some("media-failure".into()),
        fault: true,
    };
    run(&mut ev, b.ended(t(3), HangupParty::System, cause));
    let c = the_cdr(&ev);
    assert_eq!(
        (c.outcome, c.sip_code, c.system_fault),
        (Outcome::Failed, Some(503), true)
    );

    let (mut b, mut ev) = new_call("c-16");
    b.blocked().expect("blocked");
    run(
        &mut ev,
        b.ended(t(3), HangupParty::System, EndCause::default()),
    );
    assert_eq!(the_cdr(&ev).outcome, Outcome::Blocked);
}

pub(super) fn rec() -> RecordingInfo {
    RecordingInfo {
        id: "r1".into(),
        path: "a/r1.wav".into(),
        duration_ms: 50_000,
        bytes: 800_044,
        sha256: "ab".repeat(32),
        dropped_chunks: 0,
    }
}

#[test]
fn the_record_waits_for_the_recording() {
    let (mut b, mut ev) = new_call("c-17");
    b.recording_started("r1", "a/r1.wav").expect("rec");
    run(&mut ev, b.ivr_step(t(0), "f", "1", "n", "play"));
    assert_eq!(
        run(&mut ev, b.ended(t(50), HangupParty::Caller, normal())),
        0
    );
    assert_eq!(run(&mut ev, b.recording_ready(t(51), rec())), 2);
    assert_eq!(
        kinds(&ev[ev.len() - 2..]),
        ["recording.ready", "call.ended"]
    );
    let c = the_cdr(&ev);
    assert_eq!(c.recording.as_ref().map(|r| r.sha256.len()), Some(64));
    assert!(c.complete);
    assert_seq_1_to_n(&ev);
}

#[test]
fn close_sends_an_incomplete_record_and_a_late_recording_still_gets_out() {
    let (mut b, mut ev) = new_call("c-18");
    b.recording_started("r1", "a/r1.wav").expect("rec");
    run(&mut ev, b.answered(t(1), "1001"));
    assert_eq!(b.close(t(2)), Err(EventError::NotHungUp("c-18".into())));
    run(&mut ev, b.ended(t(50), HangupParty::Caller, normal()));
    run(&mut ev, b.close(t(300)));
    let c = the_cdr(&ev).clone();
    assert!(!c.complete);
    assert_eq!(c.acw_ms, Some(0));
    assert_eq!(
        c.recording
            .as_ref()
            .map(|r| (r.id.as_str(), r.sha256.as_str())),
        Some(("r1", ""))
    );
    assert_eq!(run(&mut ev, b.recording_ready(t(301), rec())), 1);
    assert_eq!(ev.last().map(Event::kind), Some("recording.ready"));
    assert_seq_1_to_n(&ev);
    assert_eq!(b.close(t(302)), Err(EventError::Closed("c-18".into())));
    assert_eq!(
        b.acw_ended(t(302), "1001"),
        Err(EventError::Closed("c-18".into()))
    );
}

#[test]
fn refused_facts_change_nothing() {
    let (mut b, _) = new_call("c-19");
    let before = format!("{b:?}");
    assert_eq!(b.held(t(1)), Err(EventError::NoAgent("c-19".into())));
    assert_eq!(b.resumed(t(1)), Err(EventError::NoAgent("c-19".into())));
    assert_eq!(
        b.agent_hung_up(t(1)),
        Err(EventError::NoAgent("c-19".into()))
    );
    assert_eq!(
        b.queue_timed_out(t(1)),
        Err(EventError::NotQueued("c-19".into()))
    );
    assert_eq!(
        b.acw_ended(t(1), "1001"),
        Err(EventError::NoAcw("c-19".into(), "1001".into()))
    );
    assert!(matches!(
        b.offered(i64::MAX, "1001"),
        Err(EventError::Time(_))
    ));
    assert_eq!(format!("{b:?}"), before);

    b.answered(t(2), "1001").expect("answer");
    let before = format!("{b:?}");
    assert_eq!(b.resumed(t(3)), Err(EventError::NotHeld("c-19".into())));
    assert_eq!(
        b.answered(t(3), "1001"),
        Err(EventError::AlreadyConnected("c-19".into(), "1001".into()))
    );
    assert_eq!(format!("{b:?}"), before);
    b.held(t(4)).expect("hold");
    assert_eq!(b.held(t(5)), Err(EventError::AlreadyHeld("c-19".into())));

    b.ended(t(9), HangupParty::Caller, normal()).expect("end");
    assert_eq!(
        b.offered(t(10), "1002"),
        Err(EventError::HungUp("c-19".into()))
    );
    assert_eq!(b.blocked(), Err(EventError::HungUp("c-19".into())));
    assert!(
        b.leg_quality(quality("caller")).is_ok(),
        "quality may come after the hang-up"
    );
    assert!(b.set_ivr_vars(Vars::new()).is_ok());
    assert_eq!(
        b.ended(t(11), HangupParty::Caller, normal()),
        Err(EventError::HungUp("c-19".into()))
    );
}

#[test]
fn a_clock_stepping_back_never_gives_negative_durations() {
    let (mut b, mut ev) = new_call("c-20");
    run(&mut ev, b.queued(t(10), "g1", None, 0));
    run(&mut ev, b.offered(t(5), "1001"));
    run(&mut ev, b.answered(t(3), "1001"));
    run(&mut ev, b.held(t(2)));
    run(&mut ev, b.resumed(t(1)));
    run(
        &mut ev,
        b.ended(t(0) - 5_000, HangupParty::Caller, normal()),
    );
    run(&mut ev, b.acw_ended(t(-10), "1001"));
    let c = the_cdr(&ev);
    assert_eq!(
        (c.duration_ms, c.talk_ms, c.hold_ms, c.acw_ms),
        (0, 0, 0, Some(0))
    );
    assert_eq!(c.wait_ms, Some(0));
}

#[test]
fn confidential_callers_are_masked_in_exports_only() {
    let ids = Arc::new(IdGenerator::new("test", 0));
    let s = CallStart {
        confidential: true,
        ..start("c-21", "13812348000")
    };
    let (mut b, first) = CdrBuilder::started(ids, T0, s).expect("start");
    let mut vars = Vars::new();
    vars.insert("caller".into(), "13812348000".into());
    vars.insert("digits".into(), "42".into());
    b.set_ivr_vars(vars).expect("vars");
    let ended = b.ended(t(5), HangupParty::Caller, normal()).expect("end");
    let EventData::CallStarted(d) = &first.for_export().body else {
        panic!()
    };
    assert_eq!(d.caller, "138****8000");
    let EventData::CallStarted(d) = &first.body else {
        panic!()
    };
    assert_eq!(d.caller, "13812348000");
    let exported = ended[0].for_export();
    let EventData::CallEnded(c) = &exported.body else {
        panic!()
    };
    assert_eq!(c.caller, "138****8000");
    assert_eq!(
        c.ivr_vars.get("caller").map(String::as_str),
        Some("138****8000")
    );
    assert_eq!(c.ivr_vars.get("digits").map(String::as_str), Some("42"));
    assert_eq!(the_cdr(&ended).caller, "13812348000");

    // Not confidential: exports unchanged.
    let (mut b, _) = new_call("c-22");
    let ended = b.ended(t(5), HangupParty::Caller, normal()).expect("end");
    assert_eq!(ended[0].for_export(), ended[0]);
}

#[test]
fn non_finite_quality_figures_become_json_safe() {
    let (mut b, _) = new_call("c-23");
    let mut q = quality("caller");
    q.jitter_ms = f64::NAN;
    q.rtt_ms = Some(f64::INFINITY);
    q.received = 0;
    q.lost = 0;
    b.leg_quality(q).expect("q");
    let ended = b.ended(t(5), HangupParty::Caller, normal()).expect("end");
    let text = serde_json::to_string(&ended[0]).expect("json");
    let back: Event = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, ended[0]);
    let q = &the_cdr(&ended).quality[0];
    assert_eq!((q.jitter_ms, q.rtt_ms, q.loss_fraction), (0.0, None, 0.0));
}

#[test]
fn every_sample_event_round_trips_through_json() {
    for e in super::samples::events() {
        let text = serde_json::to_string(&e).expect("serialise");
        let back: Event = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, e, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("value");
        assert_eq!(v["type"], e.kind());
        assert!(v["at"].as_str().is_some_and(|s| s.ends_with('Z')));
    }
}

#[test]
fn unknown_types_and_bad_times_are_refused_when_reading() {
    let e = &super::samples::events()[0];
    let mut v = serde_json::to_value(e).expect("value");
    v["type"] = "call.exploded".into();
    assert!(serde_json::from_value::<Event>(v.clone()).is_err());
    v["type"] = "call.started".into();
    v["at"] = "2024-02-30T00:00:00Z".into();
    assert!(serde_json::from_value::<Event>(v).is_err());
}
