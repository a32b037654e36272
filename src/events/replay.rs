//! Closing the records of calls a crash cut off (issue 7 §2: "`kill -9` at
//! any moment loses nothing").
//!
//! A call that was live when hotline died has its events up to the crash
//! in the outbox but no `call.ended`. At the next start the shell reads
//! each such call's events and [`close_interrupted`] replays them into a
//! fresh [`CdrBuilder`] (each stored event is the fact that produced it),
//! ends the call as a system fault (`hangup_reason = "hotline-restart"`)
//! and returns the `call.ended` that follows the stored ones (`seq` = last
//! + 1), marked `complete: false`.
//!
//! The recording the crash left unfinished (repaired at the start, found by
//! the shell from [`CutOff`]: tenant, call id, dates) is linked (issue 12
//! item 4): a `recording.ready` comes before the `call.ended`, and the
//! record carries its path, length, size and SHA-256. The call ends at the
//! last evidence of it: the recording's end (it started when the call
//! connected and runs on the wall clock, so start + length) or the last
//! stored event, whichever is later — not at the answer.
//!
//! Facts that emit no event (asking for an agent, a queue timeout, the
//! IVR's variables, RTP quality) are not in the outbox, so the rebuilt
//! record lacks them: the wait counts from the queue entry, vars and
//! quality are empty. Pure: no clock, no I/O.

use std::sync::Arc;

use super::builder::{CallStart, CdrBuilder, EndCause};
use super::error::EventError;
use super::id::IdSource;
use super::model::{Event, EventData, RecordingInfo};

/// Why a stored call cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The first stored event is not the call's `call.started`.
    #[error("call {0}: the stored events do not begin with call.started")]
    NoStart(String),
    /// The call already has its record.
    #[error("call {0}: already has call.ended")]
    AlreadyEnded(String),
    /// The builder refused a stored fact.
    #[error("call {call}: replaying event {seq}: {source}")]
    Refused {
        /// The call.
        call: String,
        /// The event's `seq`.
        seq: u32,
        /// The builder's reason.
        source: EventError,
    },
}

/// What the shell needs to look for a cut-off call's recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutOff {
    /// The call.
    pub call_id: String,
    /// Its tenant (the recordings' first folder).
    pub tenant: String,
    /// `call.started`, ms since the epoch.
    pub started_ms: i64,
    /// The first answer (the recording starts there), if any.
    pub connected_ms: Option<i64>,
    /// The last stored event.
    pub last_ms: i64,
    /// A `recording.ready` is stored already: nothing to link.
    pub recording_known: bool,
}

/// The facts of a cut-off call's stored events (in `seq` order).
pub fn cut_off(events: &[Event]) -> Result<CutOff, ReplayError> {
    let Some(first) = events.first() else {
        return Err(ReplayError::NoStart(String::new()));
    };
    let call_id = first.call_id.clone().unwrap_or_default();
    if !matches!(first.body, EventData::CallStarted(_)) {
        return Err(ReplayError::NoStart(call_id));
    }
    Ok(CutOff {
        call_id,
        tenant: first.tenant.clone(),
        started_ms: first.at.unix_ms(),
        connected_ms: events.iter().find_map(|e| match e.body {
            EventData::AgentAnswered(_) => Some(e.at.unix_ms()),
            _ => None,
        }),
        last_ms: events
            .iter()
            .map(|e| e.at.unix_ms())
            .max()
            .unwrap_or_else(|| first.at.unix_ms()),
        recording_known: events
            .iter()
            .any(|e| matches!(e.body, EventData::RecordingReady(_))),
    })
}

/// The events that close a cut-off call.
#[derive(Debug)]
pub struct Closing {
    /// `recording.ready` (when a recording was linked), then `call.ended`.
    pub events: Vec<Event>,
    /// Stored events the builder could not replay.
    pub skipped: usize,
}

/// The events closing a call whose stored events (in `seq` order) stop
/// before its `call.ended`, linking `recording` (the file the crash left,
/// repaired) unless a `recording.ready` is stored already. Events the
/// builder cannot replay are skipped (counted in `skipped`), so one odd
/// event does not keep a record open.
pub fn close_interrupted(
    ids: Arc<dyn IdSource>,
    events: &[Event],
    recording: Option<RecordingInfo>,
) -> Result<Closing, ReplayError> {
    close_interrupted_because(ids, events, recording, "hotline-restart")
}

/// [`close_interrupted`] with the `hangup_reason` to record: `node-failure`
/// when a surviving node closes the calls of a dead one (docs/ha.md §4).
pub fn close_interrupted_because(
    ids: Arc<dyn IdSource>,
    events: &[Event],
    recording: Option<RecordingInfo>,
    reason: &str,
) -> Result<Closing, ReplayError> {
    let facts = cut_off(events)?;
    let Some(first) = events.first() else {
        return Err(ReplayError::NoStart(String::new()));
    };
    let call = facts.call_id.clone();
    let EventData::CallStarted(start) = &first.body else {
        return Err(ReplayError::NoStart(call));
    };
    let start = CallStart {
        call_id: call.clone(),
        serial: start.serial.clone(),
        tenant: first.tenant.clone(),
        direction: start.direction,
        caller: start.caller.clone(),
        called: start.called.clone(),
        caller_area: start.caller_area.clone(),
        confidential: start.confidential,
    };
    let (mut b, _) = CdrBuilder::started(ids, first.at.unix_ms(), start).map_err(|source| {
        ReplayError::Refused {
            call: call.clone(),
            seq: first.seq,
            source,
        }
    })?;
    let mut last_at = first.at.unix_ms();
    let mut skipped = 0;
    for ev in &events[1..] {
        let at = ev.at.unix_ms();
        last_at = last_at.max(at);
        let replayed = match &ev.body {
            EventData::IvrStep(s) => b.ivr_step(at, &s.flow, &s.version, &s.node, &s.kind),
            EventData::QueueEntered(q) => {
                b.queued(at, &q.group_id, q.group_name.as_deref(), q.priority)
            }
            EventData::AgentOffered(o) => b.offered(at, &o.agent_id),
            EventData::AgentAnswered(a) => b.answered(at, &a.agent_id),
            EventData::CallHeld(_) => b.held(at),
            EventData::CallResumed(_) => b.resumed(at),
            EventData::CallTransferred(t) => b.transferred(at, t.target_kind, &t.target, t.mode),
            EventData::CallTransferFailed(f) => b.transfer_failed(
                at,
                f.from_agent.as_deref(),
                f.target_kind,
                &f.target,
                f.mode,
                f.failure(),
            ),
            EventData::ConferenceChanged(c) => {
                b.conference_changed(at, c.change, c.party.clone(), c.members.clone())
            }
            EventData::SurveyResult(s) => b.survey_result(at, &s.dimension, s.score, s.key),
            EventData::VoicemailSaved(v) => b.voicemail_saved(at, &v.path, v.duration_ms),
            EventData::RecordingReady(r) => b.recording_ready(at, r.clone()),
            EventData::CallEnded(_) => return Err(ReplayError::AlreadyEnded(call)),
            EventData::CallStarted(_) | EventData::AgentState(_) => {
                skipped += 1;
                continue;
            }
        };
        if replayed.is_err() {
            skipped += 1;
        }
    }
    let refused = |seq: u32| {
        let call = call.clone();
        move |source| ReplayError::Refused { call, seq, source }
    };
    let mut out = Vec::new();
    if let Some(info) = recording.filter(|_| !facts.recording_known) {
        // Recorded on the wall clock from the answer: its end is evidence
        // the call was still up.
        let from = facts.connected_ms.unwrap_or(facts.started_ms);
        let duration = i64::try_from(info.duration_ms).unwrap_or(i64::MAX);
        last_at = last_at.max(from.saturating_add(duration));
        let seq = b.last_seq();
        out.extend(b.recording_ready(last_at, info).map_err(refused(seq))?);
    }
    let cause = EndCause {
        sip_code: None,
        reason: Some(reason.into()),
        fault: true,
    };
    let seq = b.last_seq();
    let closed = b.interrupted(last_at, cause).map_err(refused(seq))?;
    let ended = closed
        .into_iter()
        .find(|e| matches!(e.body, EventData::CallEnded(_)))
        .ok_or_else(|| ReplayError::NoStart(call.clone()))?;
    out.push(ended);
    Ok(Closing {
        events: out,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::cdr::{HangupParty, Outcome};
    use crate::events::model::Direction;
    use crate::events::IdGenerator;

    fn start() -> CallStart {
        CallStart {
            call_id: "c1".into(),
            serial: "s1".into(),
            tenant: "t".into(),
            direction: Direction::Inbound,
            caller: "13800138000".into(),
            called: "12345".into(),
            caller_area: None,
            confidential: false,
        }
    }

    #[test]
    fn a_call_cut_off_while_talking_gets_an_incomplete_record_with_what_was_known() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        let t0 = 1_795_000_000_000;
        let (mut b, e0) = CdrBuilder::started(ids.clone(), t0, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(
            b.ivr_step(t0 + 10, "f", "v1", "menu", "menu")
                .expect("step"),
        );
        stored.extend(b.agent_requested(t0 + 20).expect("req"));
        stored.extend(b.queued(t0 + 20, "general", None, 0).expect("queue"));
        stored.extend(b.offered(t0 + 1_000, "A01").expect("offer"));
        stored.extend(b.answered(t0 + 3_000, "A01").expect("answer"));
        stored.extend(b.held(t0 + 5_000).expect("hold"));
        let ids2: Arc<dyn IdSource> = Arc::new(IdGenerator::new("b", 0));
        let closing = close_interrupted(ids2, &stored, None).expect("close");
        assert_eq!(closing.skipped, 0);
        let [ended] = &closing.events[..] else {
            panic!("only call.ended without a recording: {:?}", closing.events)
        };
        let ended = ended.clone();
        assert_eq!(ended.seq, stored.len() as u32 + 1);
        assert_eq!(ended.call_id.as_deref(), Some("c1"));
        let EventData::CallEnded(cdr) = ended.body else {
            panic!("not call.ended")
        };
        assert!(!cdr.complete);
        assert!(cdr.system_fault);
        assert_eq!(cdr.hangup_reason.as_deref(), Some("hotline-restart"));
        assert_eq!(cdr.outcome, Outcome::Answered);
        assert_eq!(cdr.agent_id.as_deref(), Some("A01"));
        assert_eq!(cdr.ivr_path, ["menu"]);
        assert_eq!(cdr.talk_ms, 2_000);
        assert_eq!(cdr.ended_at.unix_ms(), t0 + 5_000);
        assert_eq!(cdr.wait_ms, Some(2_980), "counted from the queue entry");
    }

    #[test]
    fn a_call_cut_off_in_the_ivr_is_a_failed_call() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        let (mut b, e0) = CdrBuilder::started(ids.clone(), 1_000, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(
            b.ivr_step(2_000, "f", "v1", "welcome", "play")
                .expect("step"),
        );
        let closing = close_interrupted(ids, &stored, None).expect("close");
        let EventData::CallEnded(cdr) = &closing.events[0].body else {
            panic!("not call.ended")
        };
        assert_eq!(cdr.outcome, Outcome::Failed);
    }

    #[test]
    fn nothing_to_close_without_a_start_or_with_an_end() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        assert!(matches!(
            close_interrupted(ids.clone(), &[], None),
            Err(ReplayError::NoStart(_))
        ));
        let (mut b, e0) = CdrBuilder::started(ids.clone(), 1_000, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(
            b.ended(2_000, HangupParty::Caller, EndCause::default())
                .expect("end"),
        );
        assert!(matches!(
            close_interrupted(ids, &stored, None),
            Err(ReplayError::AlreadyEnded(_))
        ));
    }

    fn recording(duration_ms: u64) -> RecordingInfo {
        RecordingInfo {
            id: "t/2026/01/02/c1".into(),
            path: "t/2026/01/02/c1.wav".into(),
            duration_ms,
            bytes: 44 + duration_ms * 32,
            sha256: "ab".repeat(32),
            dropped_chunks: 0,
        }
    }

    /// Started at t0, answered at t0 + 3 s, nothing stored after.
    fn talking(ids: &Arc<dyn IdSource>, t0: i64) -> Vec<Event> {
        let (mut b, e0) = CdrBuilder::started(ids.clone(), t0, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(b.queued(t0 + 20, "general", None, 0).expect("queue"));
        stored.extend(b.offered(t0 + 1_000, "A01").expect("offer"));
        stored.extend(b.answered(t0 + 3_000, "A01").expect("answer"));
        stored
    }

    #[test]
    fn the_recording_a_crash_left_is_linked_and_the_call_ends_at_its_end() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        let t0 = 1_795_000_000_000;
        let stored = talking(&ids, t0);
        let facts = cut_off(&stored).expect("facts");
        assert_eq!(facts.call_id, "c1");
        assert_eq!(facts.tenant, "t");
        assert_eq!(facts.started_ms, t0);
        assert_eq!(facts.connected_ms, Some(t0 + 3_000));
        assert_eq!(facts.last_ms, t0 + 3_000, "today's end: the answer");
        assert!(!facts.recording_known);

        let ids2: Arc<dyn IdSource> = Arc::new(IdGenerator::new("b", 0));
        let closing = close_interrupted(ids2, &stored, Some(recording(4_500))).expect("close");
        let [ready, ended] = &closing.events[..] else {
            panic!("recording.ready then call.ended: {:?}", closing.events)
        };
        let end = t0 + 3_000 + 4_500;
        assert_eq!(ready.seq, stored.len() as u32 + 1);
        assert_eq!(ended.seq, stored.len() as u32 + 2);
        assert_eq!(ready.at.unix_ms(), end);
        assert_eq!(ready.body, EventData::RecordingReady(recording(4_500)));
        let EventData::CallEnded(cdr) = &ended.body else {
            panic!("not call.ended")
        };
        assert_eq!(cdr.recording, Some(recording(4_500)));
        assert_eq!(cdr.ended_at.unix_ms(), end);
        assert_eq!(cdr.connected_at.map(|c| c.unix_ms()), Some(t0 + 3_000));
        assert_eq!(cdr.talk_ms, 4_500, "talking until the last evidence");
        assert!(!cdr.complete, "still cut off");
        assert_eq!(cdr.hangup_reason.as_deref(), Some("hotline-restart"));
    }

    #[test]
    fn a_later_stored_event_outlasts_a_short_recording() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        let t0 = 1_795_000_000_000;
        let (mut b, e0) = CdrBuilder::started(ids.clone(), t0, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(b.answered(t0 + 1_000, "A01").expect("answer"));
        stored.extend(b.held(t0 + 9_000).expect("hold"));
        let closing = close_interrupted(ids, &stored, Some(recording(2_000))).expect("close");
        let EventData::CallEnded(cdr) = &closing.events[1].body else {
            panic!("not call.ended")
        };
        assert_eq!(cdr.ended_at.unix_ms(), t0 + 9_000);
        assert_eq!(cdr.recording, Some(recording(2_000)));
    }

    #[test]
    fn a_recording_already_stored_is_not_linked_twice() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        let t0 = 1_795_000_000_000;
        let (mut b, e0) = CdrBuilder::started(ids.clone(), t0, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(b.answered(t0 + 1_000, "A01").expect("answer"));
        stored.extend(
            b.recording_ready(t0 + 5_000, recording(4_000))
                .expect("ready"),
        );
        assert!(cut_off(&stored).expect("facts").recording_known);
        let closing = close_interrupted(ids, &stored, Some(recording(9_999))).expect("close");
        let [ended] = &closing.events[..] else {
            panic!("only call.ended: {:?}", closing.events)
        };
        let EventData::CallEnded(cdr) = &ended.body else {
            panic!("not call.ended")
        };
        assert_eq!(cdr.recording, Some(recording(4_000)));
        assert_eq!(cdr.ended_at.unix_ms(), t0 + 5_000);
    }
}
