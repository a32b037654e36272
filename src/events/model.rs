//! The event envelope and every event kind (issue 7 §1; REQUIREMENTS.md §6
//! "events to the ticket platform").
//!
//! On the wire an event is one JSON object:
//!
//! ```json
//! {"id":"ev-1709193600000-n1-0000000001","v":1,"at":"2024-02-29T08:00:00.000Z",
//!  "tenant":"nanning","call_id":"c-42","seq":1,"type":"call.started","data":{…}}
//! ```
//!
//! - `id` is unique and the idempotency key (see [`super::id`]);
//! - `v` is the schema version ([`SCHEMA_VERSION`]);
//! - `seq` orders the events of one call (1, 2, 3 … with no gaps), or of
//!   one agent for `agent.state` (whose `call_id` is `null`);
//! - `type` names the kind and `data` carries its fields.
//!
//! Every field is always present: absent values are `null`, never missing.
//! `docs/events/` holds the JSON Schemas (from [`super::schema`]).

use serde::{Deserialize, Serialize};

use super::cdr::Cdr;
use super::id::IdSource;
use super::mask::mask_caller;
use super::time::Timestamp;

pub use super::parts::{
    Area, Direction, RecordingInfo, TransferFailure, TransferFailureReason, TransferKind,
    TransferMode, TransferReturn, Vars,
};

/// The schema version this code writes. Additive changes keep it; a breaking
/// change bumps it (see docs/events/README.md).
pub const SCHEMA_VERSION: u32 = 1;

/// One event, as stored in the outbox and delivered to sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id, the idempotency key.
    pub id: String,
    /// Schema version of the whole event.
    pub v: u32,
    /// When it happened (UTC).
    pub at: Timestamp,
    /// Tenant (operations centre) the call or agent belongs to.
    pub tenant: String,
    /// The call; `None` for `agent.state`.
    pub call_id: Option<String>,
    /// Position among the call's events (or the agent's, for
    /// `agent.state`), from 1.
    pub seq: u32,
    /// Kind (`type`) and fields (`data`).
    #[serde(flatten)]
    pub body: EventData,
}

impl Event {
    /// A version-[`SCHEMA_VERSION`] event with a fresh id from `ids`.
    pub fn new(
        ids: &dyn IdSource,
        at: Timestamp,
        tenant: &str,
        call_id: Option<&str>,
        seq: u32,
        body: EventData,
    ) -> Event {
        Event {
            id: ids.next_id(at.unix_ms()),
            v: SCHEMA_VERSION,
            at,
            tenant: tenant.to_owned(),
            call_id: call_id.map(str::to_owned),
            seq,
            body,
        }
    }

    /// The `type` string, e.g. `call.ended`.
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }

    /// The event as exports show it: the caller number masked (138****8000)
    /// in `call.started` and `call.ended` when the call is confidential.
    pub fn for_export(&self) -> Event {
        let mut e = self.clone();
        match &mut e.body {
            EventData::CallStarted(d) if d.confidential => d.caller = mask_caller(&d.caller),
            EventData::CallEnded(cdr) => **cdr = cdr.for_export(),
            _ => {}
        }
        e
    }
}

/// The kind of an event and its fields: serialised as `"type"` and `"data"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    /// A call reached hotline.
    #[serde(rename = "call.started")]
    CallStarted(CallStarted),
    /// The IVR entered a node.
    #[serde(rename = "ivr.step")]
    IvrStep(IvrStep),
    /// The caller entered a skill group's queue.
    #[serde(rename = "queue.entered")]
    QueueEntered(QueueEntered),
    /// An agent's phone rings with the call.
    #[serde(rename = "agent.offered")]
    AgentOffered(AgentOffered),
    /// An agent answered.
    #[serde(rename = "agent.answered")]
    AgentAnswered(AgentAnswered),
    /// The agent put the caller on hold.
    #[serde(rename = "call.held")]
    CallHeld(CallHeld),
    /// The caller is back from hold.
    #[serde(rename = "call.resumed")]
    CallResumed(CallResumed),
    /// The call was handed to an agent, group or outside number.
    #[serde(rename = "call.transferred")]
    CallTransferred(CallTransferred),
    /// A blind transfer did not reach its target; the caller went back.
    #[serde(rename = "call.transfer_failed")]
    CallTransferFailed(CallTransferFailed),
    /// Someone joined or left a three-way call / conference.
    #[serde(rename = "conference.changed")]
    ConferenceChanged(ConferenceChanged),
    /// The caller rated the service.
    #[serde(rename = "survey.result")]
    SurveyResult(SurveyResult),
    /// The caller left a message.
    #[serde(rename = "voicemail.saved")]
    VoicemailSaved(VoicemailSaved),
    /// The call's recording is complete on disk.
    #[serde(rename = "recording.ready")]
    RecordingReady(RecordingInfo),
    /// The call record (CDR); the call's last event.
    #[serde(rename = "call.ended")]
    CallEnded(Box<Cdr>),
    /// An agent's state changed.
    #[serde(rename = "agent.state")]
    AgentState(AgentStateChanged),
}

impl EventData {
    /// Every `type`, in documentation order.
    pub const KINDS: [&'static str; 15] = [
        "call.started",
        "ivr.step",
        "queue.entered",
        "agent.offered",
        "agent.answered",
        "call.held",
        "call.resumed",
        "call.transferred",
        "call.transfer_failed",
        "conference.changed",
        "survey.result",
        "voicemail.saved",
        "recording.ready",
        "call.ended",
        "agent.state",
    ];

    /// The `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::CallStarted(_) => "call.started",
            EventData::IvrStep(_) => "ivr.step",
            EventData::QueueEntered(_) => "queue.entered",
            EventData::AgentOffered(_) => "agent.offered",
            EventData::AgentAnswered(_) => "agent.answered",
            EventData::CallHeld(_) => "call.held",
            EventData::CallResumed(_) => "call.resumed",
            EventData::CallTransferred(_) => "call.transferred",
            EventData::CallTransferFailed(_) => "call.transfer_failed",
            EventData::ConferenceChanged(_) => "conference.changed",
            EventData::SurveyResult(_) => "survey.result",
            EventData::VoicemailSaved(_) => "voicemail.saved",
            EventData::RecordingReady(_) => "recording.ready",
            EventData::CallEnded(_) => "call.ended",
            EventData::AgentState(_) => "agent.state",
        }
    }
}

/// `call.started`: a call reached hotline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStarted {
    /// Call serial number (呼叫流水号), the ticket platform's key.
    pub serial: String,
    /// Inbound, outbound or callback.
    pub direction: Direction,
    /// Calling number as received.
    pub caller: String,
    /// Called number (the DID: 12345, 12328 …).
    pub called: String,
    /// The caller's area, when the number is known to the area table.
    pub caller_area: Option<Area>,
    /// Confidential caller (保密): exports mask the number.
    pub confidential: bool,
}

/// `ivr.step`: the IVR entered a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvrStep {
    /// Flow being walked (a subflow while in one).
    pub flow: String,
    /// That flow's version.
    pub version: String,
    /// Node entered.
    pub node: String,
    /// Node kind (`menu`, `play`, `queue` …).
    pub kind: String,
    /// Position of this node in the call's IVR path, from 1.
    pub step: u32,
}

/// `queue.entered`: the caller entered a skill group's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntered {
    /// Skill group (技能组) id.
    pub group_id: String,
    /// Its display name, if the shell knows it.
    pub group_name: Option<String>,
    /// 0–255, higher served first (emergency calls highest).
    pub priority: u8,
    /// The group the call overflowed (or was transferred) from.
    pub from_group: Option<String>,
}

/// `agent.offered`: an agent's phone rings with the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOffered {
    /// Agent job number (工号).
    pub agent_id: String,
    /// Group the offer comes from (`None` for a direct transfer).
    pub group_id: Option<String>,
    /// Offers made for this call so far, this one included (from 1).
    pub attempt: u32,
}

/// `agent.answered`: an agent answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAnswered {
    /// Agent job number (工号).
    pub agent_id: String,
    /// Group the call was waiting in, if any.
    pub group_id: Option<String>,
    /// From asking for an agent (or entering the queue) to now, in ms.
    pub wait_ms: Option<u64>,
    /// How long this agent's phone rang, in ms.
    pub ring_ms: Option<u64>,
}

/// `call.held`: the agent put the caller on hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHeld {
    /// Agent job number (工号).
    pub agent_id: String,
}

/// `call.resumed`: the caller is back from hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResumed {
    /// Agent job number (工号).
    pub agent_id: String,
    /// Length of this hold, in ms.
    pub held_ms: u64,
}

/// `call.transferred`: the call was handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTransferred {
    /// The agent who transferred (`None`: the IVR did).
    pub from_agent: Option<String>,
    /// Agent, group or number.
    pub target_kind: TransferKind,
    /// Job number, group id or phone number.
    pub target: String,
    /// Blind or attended.
    pub mode: TransferMode,
}

/// `call.transfer_failed`: a blind transfer did not reach its target; the
/// caller stays on the line and goes back (`back_to`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTransferFailed {
    /// The agent who transferred.
    pub from_agent: Option<String>,
    /// Agent, group or number.
    pub target_kind: TransferKind,
    /// Job number, group id or phone number.
    pub target: String,
    /// Blind (the only kind that can fail after the agent left).
    pub mode: TransferMode,
    /// Why.
    pub reason: TransferFailureReason,
    /// The final SIP status from the target, if it sent one.
    pub sip_code: Option<u16>,
    /// Where the caller went.
    pub back_to: TransferReturn,
    /// The agent's job number (`agent`) or the group's id (`queue`).
    pub back_to_id: Option<String>,
}

impl CallTransferFailed {
    /// The failure part, as the record keeps it.
    pub fn failure(&self) -> TransferFailure {
        TransferFailure {
            reason: self.reason,
            sip_code: self.sip_code,
            back_to: self.back_to,
            back_to_id: self.back_to_id.clone(),
        }
    }
}

/// A party's role in a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    /// The citizen.
    Caller,
    /// An agent (job number).
    Agent,
    /// A supervisor listening, whispering or barging in.
    Supervisor,
    /// An outside number (another hotline, 110 …).
    External,
}

/// A party of a conference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Caller, agent, supervisor or outside number.
    pub role: PartyRole,
    /// Number or job number.
    pub id: String,
}

/// Whether a party joined or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConferenceChange {
    /// The party joined.
    Joined,
    /// The party left.
    Left,
}

/// `conference.changed`: someone joined or left a three-way call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceChanged {
    /// Joined or left.
    pub change: ConferenceChange,
    /// Who.
    pub party: Party,
    /// Everyone in the conference after the change.
    pub members: Vec<Party>,
}

/// `survey.result`: one keypad rating (按键满意度).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyResult {
    /// What was rated (`attitude`, `efficiency`, `resolution` …).
    pub dimension: String,
    /// The score.
    pub score: u8,
    /// The key pressed.
    pub key: char,
    /// The agent rated (the last one who talked to the caller).
    pub agent_id: Option<String>,
}

/// `voicemail.saved`: the caller left a message (客户留言).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailSaved {
    /// Where the message is stored.
    pub path: String,
    /// Its length, in ms.
    pub duration_ms: u64,
    /// The group the caller was waiting for, if any.
    pub group_id: Option<String>,
}

/// An agent's state, named as the ACD names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStateName {
    /// Signed out (签出).
    LoggedOut,
    /// Ready for calls (示闲).
    Idle,
    /// Busy (示忙), with a reason code.
    NotReady,
    /// Reserved for an offer; the phone rings.
    Ringing,
    /// On a call.
    Talking,
    /// On a call, caller on hold.
    OnHold,
    /// After-call work (话后整理).
    AfterCallWork,
    /// An outbound call, including a callback.
    Outbound,
}

/// `agent.state`: an agent's state changed (for the wall-board).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStateChanged {
    /// Agent job number (工号).
    pub agent_id: String,
    /// The new state.
    pub state: AgentStateName,
    /// The state before, if known.
    pub previous: Option<AgentStateName>,
    /// Not-ready reason code, if any.
    pub reason: Option<String>,
    /// The call the agent is on (ringing, talking, after-call work).
    pub call_id: Option<String>,
}
