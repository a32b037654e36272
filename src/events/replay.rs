//! Closing the records of calls a crash cut off (issue 7 §2: "`kill -9` at
//! any moment loses nothing").
//!
//! A call that was live when hotline died has its events up to the crash
//! in the outbox but no `call.ended`. At the next start the shell reads
//! each such call's events and [`close_interrupted`] replays them into a
//! fresh [`CdrBuilder`] (each stored event is the fact that produced it),
//! ends the call at its last event's time as a system fault
//! (`hangup_reason = "hotline-restart"`) and returns the `call.ended` that
//! follows the stored ones (`seq` = last + 1), marked `complete: false`.
//!
//! Facts that emit no event (asking for an agent, a queue timeout, the
//! IVR's variables, RTP quality) are not in the outbox, so the rebuilt
//! record lacks them: the wait counts from the queue entry, vars and
//! quality are empty. Pure: no clock, no I/O.

use std::sync::Arc;

use super::builder::{CallStart, CdrBuilder, EndCause};
use super::error::EventError;
use super::id::IdSource;
use super::model::{Event, EventData};

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

/// The `call.ended` closing a call whose stored events (in `seq` order) stop
/// before it. Events the builder cannot replay are skipped (counted in the
/// returned `skipped`), so one odd event does not keep a record open.
pub fn close_interrupted(
    ids: Arc<dyn IdSource>,
    events: &[Event],
) -> Result<(Event, usize), ReplayError> {
    let Some(first) = events.first() else {
        return Err(ReplayError::NoStart(String::new()));
    };
    let call = first.call_id.clone().unwrap_or_default();
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
    let cause = EndCause {
        sip_code: None,
        reason: Some("hotline-restart".into()),
        fault: true,
    };
    let seq = b.last_seq();
    let out = b
        .interrupted(last_at, cause)
        .map_err(|source| ReplayError::Refused {
            call: call.clone(),
            seq,
            source,
        })?;
    let ended = out
        .into_iter()
        .find(|e| matches!(e.body, EventData::CallEnded(_)))
        .ok_or_else(|| ReplayError::NoStart(call.clone()))?;
    Ok((ended, skipped))
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
        let (ended, skipped) = close_interrupted(ids2, &stored).expect("close");
        assert_eq!(skipped, 0);
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
        let (ended, _) = close_interrupted(ids, &stored).expect("close");
        let EventData::CallEnded(cdr) = ended.body else {
            panic!("not call.ended")
        };
        assert_eq!(cdr.outcome, Outcome::Failed);
    }

    #[test]
    fn nothing_to_close_without_a_start_or_with_an_end() {
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("a", 0));
        assert!(matches!(
            close_interrupted(ids.clone(), &[]),
            Err(ReplayError::NoStart(_))
        ));
        let (mut b, e0) = CdrBuilder::started(ids.clone(), 1_000, start()).expect("start");
        let mut stored = vec![e0];
        stored.extend(
            b.ended(2_000, HangupParty::Caller, EndCause::default())
                .expect("end"),
        );
        assert!(matches!(
            close_interrupted(ids, &stored),
            Err(ReplayError::AlreadyEnded(_))
        ));
    }
}
