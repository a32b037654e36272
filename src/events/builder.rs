//! [`CdrBuilder`]: the pure core that turns what happens to one call into
//! its events and, at the end, its record (issue 7 §1; REQUIREMENTS.md §6
//! and §8).
//!
//! The shell creates one builder per call with [`CdrBuilder::started`] and
//! tells it every fact as it happens, with the time (unix ms) it read; each
//! method returns the events to store, already numbered (`seq` 1, 2, 3 …
//! without gaps). Nothing here reads a clock, does I/O or panics: a fact the
//! builder cannot take (hold with no agent, anything after the record was
//! emitted, an invalid time) is refused with an [`EventError`] and changes
//! nothing. A clock that steps back never gives a negative duration
//! (durations saturate at 0).
//!
//! ## When `call.ended` is emitted
//!
//! The record is complete only when the call is over **and** what it waits
//! for has arrived: the after-call work (话后整理) of every agent who talked
//! to the caller ([`CdrBuilder::acw_ended`]) and, if the call was recorded,
//! the finished recording ([`CdrBuilder::recording_ready`]). So `call.ended`
//! comes from whichever of [`CdrBuilder::ended`], `acw_ended` and
//! `recording_ready` completes it, and its envelope `at` is that moment; the
//! hang-up time is the record's `ended_at`. If something never arrives the
//! shell calls [`CdrBuilder::close`] after a timeout and the record goes out
//! with `complete: false`. A recording that finishes after that still gets
//! its `recording.ready` event.
//!
//! RTP quality and the IVR's variables are read when the relay and the
//! interpreter stop; the shell passes them before (or right after)
//! [`CdrBuilder::ended`].
//!
//! ## Durations
//! - `duration_ms`: call start to hang-up;
//! - `wait_ms`: from asking for an agent (else the first queue entry) to the
//!   first answer, or to leaving the queue unanswered, or to the hang-up;
//! - `ring_ms`: from the first offer to the first answer (or the hang-up);
//! - `talk_ms`: connected to an agent, holds excluded; `hold_ms`: on hold;
//! - `acw_ms`: from each agent's release (hang-up, transfer) to the end of
//!   their after-call work, summed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::cdr::{Cdr, FlowRef, HangupParty, LegQuality, Outcome, TransferRecord, VoicemailRef};
use super::error::EventError;
use super::id::IdSource;
use super::model::{
    AgentAnswered, AgentOffered, Area, CallHeld, CallResumed, CallStarted, CallTransferFailed,
    CallTransferred, ConferenceChange, ConferenceChanged, Direction, Event, EventData, IvrStep,
    Party, QueueEntered, RecordingInfo, SurveyResult, TransferFailure, TransferKind, TransferMode,
    Vars, VoicemailSaved,
};
use super::time::Timestamp;

/// What is known when a call arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStart {
    /// Hotline's call id (the envelope's `call_id`).
    pub call_id: String,
    /// Call serial number (呼叫流水号).
    pub serial: String,
    /// Tenant the called number belongs to.
    pub tenant: String,
    /// Inbound, outbound or callback.
    pub direction: Direction,
    /// Calling number.
    pub caller: String,
    /// Called number (DID).
    pub called: String,
    /// The caller's area, if the area table knows the number.
    pub caller_area: Option<Area>,
    /// Confidential caller (保密).
    pub confidential: bool,
}

/// How the call ended, beyond who hung up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndCause {
    /// SIP status of a failed leg (486, 503 …); `None` for a BYE.
    pub sip_code: Option<u16>,
    /// Hotline's reason text: the IVR's hang-up reason (`normal`,
    /// `no-input` …), `max-wait`, `shutdown` …
    pub reason: Option<String>,
    /// A system fault ended the call (counts as call loss before an answer).
    pub fault: bool,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The caller is on the line.
    Live,
    /// The caller hung up; the record waits for ACW or the recording.
    HungUp,
    /// `call.ended` went out.
    Emitted,
}

/// The agent on the call now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Connected {
    agent: String,
    /// Talking since (`None` while on hold).
    talk_since: Option<Timestamp>,
    /// On hold since.
    hold_since: Option<Timestamp>,
}

/// One agent's after-call work for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acw {
    agent: String,
    from: Timestamp,
    to: Option<Timestamp>,
}

/// The end of the caller's leg.
#[derive(Debug, Clone, PartialEq, Eq)]
struct End {
    at: Timestamp,
    by: HangupParty,
    cause: EndCause,
}

/// Accumulates one call's facts, emits its events and finally its record.
/// See the module docs.
#[derive(Clone)]
pub struct CdrBuilder {
    ids: Arc<dyn IdSource>,
    start: CallStart,
    started_at: Timestamp,
    seq: u32,
    phase: Phase,
    flow: Option<FlowRef>,
    path: Vec<String>,
    vars: Vars,
    agent_requested_at: Option<Timestamp>,
    queued_at: Option<Timestamp>,
    queue_left_at: Option<Timestamp>,
    wait_since: Option<Timestamp>,
    in_queue: bool,
    group_id: Option<String>,
    group_name: Option<String>,
    groups: Vec<String>,
    ring_at: Option<Timestamp>,
    offers: u32,
    ringing: BTreeMap<String, Timestamp>,
    connected_at: Option<Timestamp>,
    agents: Vec<String>,
    current: Option<Connected>,
    talk_ms: u64,
    hold_ms: u64,
    hold_count: u32,
    acw: Vec<Acw>,
    transfers: Vec<TransferRecord>,
    conference_max: u32,
    survey: BTreeMap<String, u8>,
    voicemail: Option<VoicemailRef>,
    callback_at: Option<Timestamp>,
    blocked: bool,
    recording_started: Option<(String, String)>,
    recording: Option<RecordingInfo>,
    quality: Vec<LegQuality>,
    end: Option<End>,
    /// Rebuilt after a crash ([`CdrBuilder::interrupted`]): never complete.
    interrupted: bool,
}

/// What every fact method returns: the events to store, in order.
pub type Emitted = Result<Vec<Event>, EventError>;

/// `a + b` as `u64` ms, saturating.
fn add(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

impl CdrBuilder {
    /// The call arrived at `at_ms`: a builder and its `call.started` event
    /// (`seq` 1). Event ids come from `ids`, usually shared by all calls.
    pub fn started(
        ids: Arc<dyn IdSource>,
        at_ms: i64,
        start: CallStart,
    ) -> Result<(CdrBuilder, Event), EventError> {
        let at = Timestamp::from_unix_ms(at_ms)?;
        let mut b = CdrBuilder {
            ids,
            start,
            started_at: at,
            seq: 0,
            phase: Phase::Live,
            flow: None,
            path: Vec::new(),
            vars: Vars::new(),
            agent_requested_at: None,
            queued_at: None,
            queue_left_at: None,
            wait_since: None,
            in_queue: false,
            group_id: None,
            group_name: None,
            groups: Vec::new(),
            ring_at: None,
            offers: 0,
            ringing: BTreeMap::new(),
            connected_at: None,
            agents: Vec::new(),
            current: None,
            talk_ms: 0,
            hold_ms: 0,
            hold_count: 0,
            acw: Vec::new(),
            transfers: Vec::new(),
            conference_max: 0,
            survey: BTreeMap::new(),
            voicemail: None,
            callback_at: None,
            blocked: false,
            recording_started: None,
            recording: None,
            quality: Vec::new(),
            end: None,
            interrupted: false,
        };
        let s = &b.start;
        let data = CallStarted {
            serial: s.serial.clone(),
            direction: s.direction,
            caller: s.caller.clone(),
            called: s.called.clone(),
            caller_area: s.caller_area.clone(),
            confidential: s.confidential,
        };
        let event = b.emit(at, EventData::CallStarted(data));
        Ok((b, event))
    }

    /// The call's id.
    pub fn call_id(&self) -> &str {
        &self.start.call_id
    }

    /// The `seq` of the last event emitted.
    pub fn last_seq(&self) -> u32 {
        self.seq
    }

    /// The record as known now (for a screen pop while the call is live;
    /// end fields are provisional until the caller hangs up).
    pub fn snapshot(&self) -> Cdr {
        self.record()
    }

    /// Whether the caller is still on the line (no `ended` yet).
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether `call.ended` has gone out.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Emitted
    }

    // ---- facts while the caller is on the line --------------------------

    /// The IVR entered `node` (of kind `kind`) of `flow` version `version`
    /// (the interpreter's `Action::Step`). The first step names the call's
    /// flow; nodes of other flows (subflows) go into the path as `flow/node`.
    pub fn ivr_step(
        &mut self,
        at_ms: i64,
        flow: &str,
        version: &str,
        node: &str,
        kind: &str,
    ) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let top = self.flow.get_or_insert_with(|| FlowRef {
            name: flow.to_owned(),
            version: version.to_owned(),
        });
        let entry = if top.name == flow {
            node.to_owned()
        } else {
            format!("{flow}/{node}")
        };
        self.path.push(entry);
        let data = IvrStep {
            flow: flow.to_owned(),
            version: version.to_owned(),
            node: node.to_owned(),
            kind: kind.to_owned(),
            step: u32::try_from(self.path.len()).unwrap_or(u32::MAX),
        };
        Ok(vec![self.emit(at, EventData::IvrStep(data))])
    }

    /// The caller asked for an agent (chose "speak to an agent"); waiting
    /// counts from here. No event; later calls keep the first time.
    pub fn agent_requested(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 0)?;
        self.agent_requested_at.get_or_insert(at);
        self.wait_since.get_or_insert(at);
        Ok(Vec::new())
    }

    /// The call entered `group_id`'s queue (again, on overflow or transfer:
    /// `from_group` is the previous group). An agent still connected is
    /// released.
    pub fn queued(
        &mut self,
        at_ms: i64,
        group_id: &str,
        group_name: Option<&str>,
        priority: u8,
    ) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        self.release(at);
        let from_group = self.group_id.replace(group_id.to_owned());
        self.group_name = group_name.map(str::to_owned);
        self.groups.push(group_id.to_owned());
        self.queued_at.get_or_insert(at);
        self.wait_since.get_or_insert(at);
        self.in_queue = true;
        self.ringing.clear();
        let data = QueueEntered {
            group_id: group_id.to_owned(),
            group_name: self.group_name.clone(),
            priority,
            from_group,
        };
        Ok(vec![self.emit(at, EventData::QueueEntered(data))])
    }

    /// The queue gave up on the caller (max wait, full, nobody signed in);
    /// the flow goes on (voicemail, goodbye, another group). No event.
    pub fn queue_timed_out(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 0)?;
        if !self.in_queue {
            return Err(EventError::NotQueued(self.start.call_id.clone()));
        }
        self.leave_queue(at);
        Ok(Vec::new())
    }

    /// The caller chose a callback (leaving the queue if in one). No event.
    pub fn callback_requested(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 0)?;
        self.callback_at.get_or_insert(at);
        if self.in_queue {
            self.leave_queue(at);
        }
        Ok(Vec::new())
    }

    /// `agent`'s phone rings with the call.
    pub fn offered(&mut self, at_ms: i64, agent: &str) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        self.ring_at.get_or_insert(at);
        self.offers = self.offers.saturating_add(1);
        self.ringing.insert(agent.to_owned(), at);
        let data = AgentOffered {
            agent_id: agent.to_owned(),
            group_id: if self.in_queue {
                self.group_id.clone()
            } else {
                None
            },
            attempt: self.offers,
        };
        Ok(vec![self.emit(at, EventData::AgentOffered(data))])
    }

    /// `agent`'s phone stopped ringing unanswered (no answer, declined,
    /// another agent answered first). No event; unknown agents are ignored.
    pub fn offer_cancelled(&mut self, at_ms: i64, agent: &str) -> Emitted {
        self.check_live(at_ms, 0)?;
        self.ringing.remove(agent);
        Ok(Vec::new())
    }

    /// `agent` answered. An agent already connected (attended transfer) is
    /// released first.
    pub fn answered(&mut self, at_ms: i64, agent: &str) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        if self.current.as_ref().is_some_and(|c| c.agent == agent) {
            return Err(EventError::AlreadyConnected(
                self.start.call_id.clone(),
                agent.to_owned(),
            ));
        }
        self.release(at);
        let ring_ms = self.ringing.get(agent).map(|since| at.ms_since(*since));
        let wait_ms = self.wait_since.take().map(|since| at.ms_since(since));
        self.ringing.clear();
        self.in_queue = false;
        self.connected_at.get_or_insert(at);
        if !self.agents.iter().any(|a| a == agent) {
            self.agents.push(agent.to_owned());
        }
        self.current = Some(Connected {
            agent: agent.to_owned(),
            talk_since: Some(at),
            hold_since: None,
        });
        let data = AgentAnswered {
            agent_id: agent.to_owned(),
            group_id: self.group_id.clone(),
            wait_ms,
            ring_ms,
        };
        Ok(vec![self.emit(at, EventData::AgentAnswered(data))])
    }

    /// The agent put the caller on hold.
    pub fn held(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let call = &self.start.call_id;
        let c = self
            .current
            .as_mut()
            .ok_or_else(|| EventError::NoAgent(call.clone()))?;
        if c.hold_since.is_some() {
            return Err(EventError::AlreadyHeld(call.clone()));
        }
        if let Some(since) = c.talk_since.take() {
            self.talk_ms = add(self.talk_ms, at.ms_since(since));
        }
        c.hold_since = Some(at);
        self.hold_count = self.hold_count.saturating_add(1);
        let data = CallHeld {
            agent_id: c.agent.clone(),
        };
        Ok(vec![self.emit(at, EventData::CallHeld(data))])
    }

    /// The caller is back from hold.
    pub fn resumed(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let call = &self.start.call_id;
        let c = self
            .current
            .as_mut()
            .ok_or_else(|| EventError::NoAgent(call.clone()))?;
        let since = c
            .hold_since
            .take()
            .ok_or_else(|| EventError::NotHeld(call.clone()))?;
        let held_ms = at.ms_since(since);
        self.hold_ms = add(self.hold_ms, held_ms);
        c.talk_since = Some(at);
        let data = CallResumed {
            agent_id: c.agent.clone(),
            held_ms,
        };
        Ok(vec![self.emit(at, EventData::CallResumed(data))])
    }

    /// The agent hung up but the caller stays (survey, back to the IVR);
    /// the agent's after-call work starts. No event (see `agent.state`).
    pub fn agent_hung_up(&mut self, at_ms: i64) -> Emitted {
        let at = self.check_live(at_ms, 0)?;
        if self.current.is_none() {
            return Err(EventError::NoAgent(self.start.call_id.clone()));
        }
        self.release(at);
        Ok(Vec::new())
    }

    /// The call was handed to `target` (agent job number, group id or
    /// number). The agent who had it is released; what follows
    /// (`queued`, `offered`, `answered`) is told separately.
    pub fn transferred(
        &mut self,
        at_ms: i64,
        target_kind: TransferKind,
        target: &str,
        mode: TransferMode,
    ) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let from_agent = self.current.as_ref().map(|c| c.agent.clone());
        self.release(at);
        self.transfers.push(TransferRecord {
            at,
            from_agent: from_agent.clone(),
            target_kind,
            target: target.to_owned(),
            mode,
            failure: None,
        });
        let data = CallTransferred {
            from_agent,
            target_kind,
            target: target.to_owned(),
            mode,
        };
        Ok(vec![self.emit(at, EventData::CallTransferred(data))])
    }

    /// A transfer by `from_agent` to `target` did not reach it; the caller
    /// goes back as `failure` says. The record's last transfer gets the
    /// failure when it is this one (agents and groups are recorded when
    /// the agent leaves); otherwise (outside numbers are recorded only when
    /// they answer) the transfer is added with it.
    pub fn transfer_failed(
        &mut self,
        at_ms: i64,
        from_agent: Option<&str>,
        target_kind: TransferKind,
        target: &str,
        mode: TransferMode,
        failure: TransferFailure,
    ) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let last = self.transfers.last_mut().filter(|t| {
            t.failure.is_none()
                && t.target_kind == target_kind
                && t.target == target
                && t.mode == mode
        });
        let from_agent = match last {
            Some(t) => {
                t.failure = Some(failure.clone());
                t.from_agent.clone()
            }
            None => {
                let from = from_agent.map(str::to_owned);
                self.transfers.push(TransferRecord {
                    at,
                    from_agent: from.clone(),
                    target_kind,
                    target: target.to_owned(),
                    mode,
                    failure: Some(failure.clone()),
                });
                from
            }
        };
        let data = CallTransferFailed {
            from_agent,
            target_kind,
            target: target.to_owned(),
            mode,
            reason: failure.reason,
            sip_code: failure.sip_code,
            back_to: failure.back_to,
            back_to_id: failure.back_to_id,
        };
        Ok(vec![self.emit(at, EventData::CallTransferFailed(data))])
    }

    /// `party` joined or left a three-way call; `members` are everyone in it
    /// afterwards.
    pub fn conference_changed(
        &mut self,
        at_ms: i64,
        change: ConferenceChange,
        party: Party,
        members: Vec<Party>,
    ) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
        self.conference_max = self.conference_max.max(n);
        let data = ConferenceChanged {
            change,
            party,
            members,
        };
        Ok(vec![self.emit(at, EventData::ConferenceChanged(data))])
    }

    /// The caller rated `dimension` with `score` (key `key`). A second
    /// rating of the same dimension replaces the first in the record.
    pub fn survey_result(&mut self, at_ms: i64, dimension: &str, score: u8, key: char) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        self.survey.insert(dimension.to_owned(), score);
        let agent_id = match &self.current {
            Some(c) => Some(c.agent.clone()),
            None => self.agents.last().cloned(),
        };
        let data = SurveyResult {
            dimension: dimension.to_owned(),
            score,
            key,
            agent_id,
        };
        Ok(vec![self.emit(at, EventData::SurveyResult(data))])
    }

    /// The caller left a message at `path`, `duration_ms` long.
    pub fn voicemail_saved(&mut self, at_ms: i64, path: &str, duration_ms: u64) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        if self.in_queue {
            self.leave_queue(at);
        }
        self.voicemail = Some(VoicemailRef {
            path: path.to_owned(),
            duration_ms,
        });
        let data = VoicemailSaved {
            path: path.to_owned(),
            duration_ms,
            group_id: self.group_id.clone(),
        };
        Ok(vec![self.emit(at, EventData::VoicemailSaved(data))])
    }

    /// The caller is on the block list (the interpreter's
    /// `Action::Blocked`): the outcome is `blocked`.
    pub fn blocked(&mut self) -> Result<(), EventError> {
        self.check_phase(false)?;
        self.blocked = true;
        Ok(())
    }

    /// Recording started, as `id` at `path`: the record now waits for
    /// [`CdrBuilder::recording_ready`].
    pub fn recording_started(&mut self, id: &str, path: &str) -> Result<(), EventError> {
        self.check_phase(false)?;
        self.recording_started = Some((id.to_owned(), path.to_owned()));
        Ok(())
    }

    /// The caller's area (after an IVR `area` lookup).
    pub fn set_caller_area(&mut self, area: Option<Area>) -> Result<(), EventError> {
        self.check_phase(true)?;
        self.start.caller_area = area;
        Ok(())
    }

    /// Marks the call confidential (or not) for exports.
    pub fn set_confidential(&mut self, confidential: bool) -> Result<(), EventError> {
        self.check_phase(true)?;
        self.start.confidential = confidential;
        Ok(())
    }

    /// The IVR's variables (the interpreter's `vars()`), replacing any
    /// given before.
    pub fn set_ivr_vars(&mut self, vars: Vars) -> Result<(), EventError> {
        self.check_phase(true)?;
        self.vars = vars;
        Ok(())
    }

    /// RTP quality of one leg; replaces an earlier report for the same leg.
    pub fn leg_quality(&mut self, mut quality: LegQuality) -> Result<(), EventError> {
        self.check_phase(true)?;
        quality.sanitise();
        match self.quality.iter_mut().find(|q| q.leg == quality.leg) {
            Some(q) => *q = quality,
            None => self.quality.push(quality),
        }
        Ok(())
    }

    // ---- the end ----------------------------------------------------------

    /// The caller's leg ended at `at_ms`, hung up by `by`. Emits `call.ended`
    /// now unless after-call work or the recording is still to come.
    pub fn ended(&mut self, at_ms: i64, by: HangupParty, cause: EndCause) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        self.release(at);
        self.end = Some(End { at, by, cause });
        self.phase = Phase::HungUp;
        Ok(self.try_emit(at).into_iter().collect())
    }

    /// `agent` finished after-call work for this call (or went idle with
    /// none configured). May complete the record.
    pub fn acw_ended(&mut self, at_ms: i64, agent: &str) -> Emitted {
        let at = self.check_open(at_ms, 1)?;
        let call = &self.start.call_id;
        let acw = self
            .acw
            .iter_mut()
            .rev()
            .find(|a| a.agent == agent && a.to.is_none())
            .ok_or_else(|| EventError::NoAcw(call.clone(), agent.to_owned()))?;
        acw.to = Some(at);
        Ok(self.try_emit(at).into_iter().collect())
    }

    /// The recording is finished: `recording.ready`, and `call.ended` if that
    /// completes the record. Accepted even after the record went out.
    pub fn recording_ready(&mut self, at_ms: i64, info: RecordingInfo) -> Emitted {
        let at = Timestamp::from_unix_ms(at_ms)?;
        self.reserve(2)?;
        let mut out = vec![self.emit(at, EventData::RecordingReady(info.clone()))];
        if self.phase != Phase::Emitted {
            self.recording = Some(info);
            self.recording_started = None;
            out.extend(self.try_emit(at));
        }
        Ok(out)
    }

    /// hotline stopped without finishing this call (a crash; the record is
    /// rebuilt from stored events): `call.ended` now, always with
    /// `complete: false`.
    pub fn interrupted(&mut self, at_ms: i64, cause: EndCause) -> Emitted {
        let at = self.check_live(at_ms, 1)?;
        self.interrupted = true;
        self.release(at);
        self.end = Some(End {
            at,
            by: HangupParty::System,
            cause,
        });
        self.phase = Phase::HungUp;
        Ok(vec![self.emit_record(at)])
    }

    /// Emits `call.ended` now, with `complete: false` if after-call work or
    /// the recording has not arrived (the shell's timeout for them).
    pub fn close(&mut self, at_ms: i64) -> Emitted {
        let at = Timestamp::from_unix_ms(at_ms)?;
        match self.phase {
            Phase::Live => Err(EventError::NotHungUp(self.start.call_id.clone())),
            Phase::Emitted => Err(EventError::Closed(self.start.call_id.clone())),
            Phase::HungUp => {
                self.reserve(1)?;
                Ok(vec![self.emit_record(at)])
            }
        }
    }

    // ---- internals --------------------------------------------------------

    /// Refuses unless the caller is on the line (or, with `after_hangup`,
    /// the record is still open).
    fn check_phase(&self, after_hangup: bool) -> Result<(), EventError> {
        match self.phase {
            Phase::Live => Ok(()),
            Phase::HungUp if after_hangup => Ok(()),
            Phase::HungUp => Err(EventError::HungUp(self.start.call_id.clone())),
            Phase::Emitted => Err(EventError::Closed(self.start.call_id.clone())),
        }
    }

    /// Validates a live fact at `at_ms` that will emit `n` events.
    fn check_live(&self, at_ms: i64, n: u32) -> Result<Timestamp, EventError> {
        let at = Timestamp::from_unix_ms(at_ms)?;
        self.check_phase(false)?;
        self.reserve(n)?;
        Ok(at)
    }

    /// Validates a fact allowed until the record goes out.
    fn check_open(&self, at_ms: i64, n: u32) -> Result<Timestamp, EventError> {
        let at = Timestamp::from_unix_ms(at_ms)?;
        self.check_phase(true)?;
        self.reserve(n)?;
        Ok(at)
    }

    /// Refuses if `n` more events would overflow `seq`.
    fn reserve(&self, n: u32) -> Result<(), EventError> {
        match self.seq.checked_add(n) {
            Some(_) => Ok(()),
            None => Err(EventError::SeqOverflow(self.start.call_id.clone())),
        }
    }

    /// The next event of the call (`reserve` was checked).
    fn emit(&mut self, at: Timestamp, body: EventData) -> Event {
        self.seq = self.seq.saturating_add(1);
        Event::new(
            &*self.ids,
            at,
            &self.start.tenant,
            Some(&self.start.call_id),
            self.seq,
            body,
        )
    }

    /// Leaves the queue at `at`.
    fn leave_queue(&mut self, at: Timestamp) {
        self.in_queue = false;
        self.queue_left_at.get_or_insert(at);
        self.wait_since = None;
        self.ringing.clear();
    }

    /// Ends the current agent's part at `at`; their after-call work starts.
    fn release(&mut self, at: Timestamp) {
        let Some(c) = self.current.take() else { return };
        if let Some(since) = c.talk_since {
            self.talk_ms = add(self.talk_ms, at.ms_since(since));
        }
        if let Some(since) = c.hold_since {
            self.hold_ms = add(self.hold_ms, at.ms_since(since));
        }
        self.acw.push(Acw {
            agent: c.agent,
            from: at,
            to: None,
        });
    }

    /// `call.ended` if the call is over and nothing is awaited.
    fn try_emit(&mut self, at: Timestamp) -> Option<Event> {
        let waiting = self.acw.iter().any(|a| a.to.is_none()) || self.recording_started.is_some();
        (self.phase == Phase::HungUp && !waiting).then(|| self.emit_record(at))
    }

    /// Emits `call.ended` and closes the builder.
    fn emit_record(&mut self, at: Timestamp) -> Event {
        let cdr = self.record();
        self.phase = Phase::Emitted;
        self.emit(at, EventData::CallEnded(Box::new(cdr)))
    }

    /// The record as known now (the caller has hung up).
    fn record(&self) -> Cdr {
        let (ended_at, by, cause) = match &self.end {
            Some(e) => (e.at, e.by, e.cause.clone()),
            None => (self.started_at, HangupParty::System, EndCause::default()),
        };
        let wait_ms = self.agent_requested_at.or(self.queued_at).map(|s| {
            let stop = match self.connected_at {
                Some(c) if c >= s => c,
                _ => self.queue_left_at.filter(|l| *l >= s).unwrap_or(ended_at),
            };
            stop.ms_since(s)
        });
        let ring_ms = self.ring_at.map(|r| {
            self.connected_at
                .filter(|c| *c >= r)
                .unwrap_or(ended_at)
                .ms_since(r)
        });
        let acw_ms = (!self.acw.is_empty()).then(|| {
            self.acw
                .iter()
                .filter_map(|a| a.to.map(|to| to.ms_since(a.from)))
                .fold(0, add)
        });
        let recording = self.recording.clone().or_else(|| {
            self.recording_started
                .as_ref()
                .map(|(id, path)| RecordingInfo {
                    id: id.clone(),
                    path: path.clone(),
                    duration_ms: 0,
                    bytes: 0,
                    sha256: String::new(),
                    dropped_chunks: 0,
                })
        });
        let complete = !self.interrupted
            && self.acw.iter().all(|a| a.to.is_some())
            && self.recording_started.is_none();
        let s = &self.start;
        Cdr {
            serial: s.serial.clone(),
            call_id: s.call_id.clone(),
            tenant: s.tenant.clone(),
            direction: s.direction,
            caller: s.caller.clone(),
            called: s.called.clone(),
            caller_area: s.caller_area.clone(),
            confidential: s.confidential,
            flow: self.flow.clone(),
            ivr_path: self.path.clone(),
            ivr_vars: self.vars.clone(),
            started_at: self.started_at,
            agent_requested_at: self.agent_requested_at,
            queued_at: self.queued_at,
            ring_at: self.ring_at,
            connected_at: self.connected_at,
            ended_at,
            hangup_by: by,
            sip_code: cause.sip_code,
            hangup_reason: cause.reason.clone(),
            system_fault: cause.fault,
            group_id: self.group_id.clone(),
            group_name: self.group_name.clone(),
            groups: self.groups.clone(),
            agent_id: self.agents.first().cloned(),
            agents: self.agents.clone(),
            offers: self.offers,
            duration_ms: ended_at.ms_since(self.started_at),
            wait_ms,
            ring_ms,
            talk_ms: self.talk_ms,
            hold_ms: self.hold_ms,
            hold_count: self.hold_count,
            acw_ms,
            transfers: self.transfers.clone(),
            conference_max: self.conference_max,
            survey: self.survey.clone(),
            voicemail: self.voicemail.clone(),
            callback_requested_at: self.callback_at,
            recording,
            quality: self.quality.clone(),
            outcome: self.outcome(by, &cause),
            complete,
        }
    }

    /// How the call ended (first match wins): blocked, answered, voicemail,
    /// callback, transferred out, failed; then, for a queued call, abandoned
    /// (ringing / in queue) if the caller hung up while waiting, else queue
    /// timeout; for a call that never queued, abandoned in the IVR if the
    /// caller hung up, else IVR completed.
    fn outcome(&self, by: HangupParty, cause: &EndCause) -> Outcome {
        if self.blocked {
            Outcome::Blocked
        } else if self.connected_at.is_some() {
            Outcome::Answered
        } else if self.voicemail.is_some() {
            Outcome::Voicemail
        } else if self.callback_at.is_some() {
            Outcome::Callback
        } else if self
            .transfers
            .iter()
            .any(|t| t.target_kind == TransferKind::Number && t.failure.is_none())
        {
            Outcome::TransferredOut
        } else if cause.fault {
            Outcome::Failed
        } else if self.queued_at.is_some() {
            match (
                self.in_queue && by == HangupParty::Caller,
                self.ringing.is_empty(),
            ) {
                (true, false) => Outcome::AbandonedRinging,
                (true, true) => Outcome::AbandonedInQueue,
                (false, _) => Outcome::QueueTimeout,
            }
        } else if by == HangupParty::Caller {
            Outcome::AbandonedInIvr
        } else {
            Outcome::IvrCompleted
        }
    }
}

impl fmt::Debug for CdrBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdrBuilder")
            .field("start", &self.start)
            .field("started_at", &self.started_at)
            .field("seq", &self.seq)
            .field("phase", &self.phase)
            .field("flow", &self.flow)
            .field("path", &self.path)
            .field("vars", &self.vars)
            .field("agent_requested_at", &self.agent_requested_at)
            .field("queued_at", &self.queued_at)
            .field("queue_left_at", &self.queue_left_at)
            .field("wait_since", &self.wait_since)
            .field("in_queue", &self.in_queue)
            .field("group", &(&self.group_id, &self.group_name, &self.groups))
            .field("ring_at", &self.ring_at)
            .field("offers", &self.offers)
            .field("ringing", &self.ringing)
            .field("connected_at", &self.connected_at)
            .field("agents", &self.agents)
            .field("current", &self.current)
            .field("talk_hold", &(self.talk_ms, self.hold_ms, self.hold_count))
            .field("acw", &self.acw)
            .field("transfers", &self.transfers)
            .field("conference_max", &self.conference_max)
            .field("survey", &self.survey)
            .field("voicemail", &self.voicemail)
            .field("callback_at", &self.callback_at)
            .field("blocked", &self.blocked)
            .field("recording", &(&self.recording_started, &self.recording))
            .field("quality", &self.quality)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}
