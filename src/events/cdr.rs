//! The call record (CDR), the data of `call.ended` (issue 7 §1;
//! REQUIREMENTS.md §6: call serial number, caller, area code, call /
//! queue-entry / ringing / agent-connect / hang-up times, called number,
//! skill group, keypad rating, recording id and address, agent job number;
//! §8: the fields the KPIs are computed from).
//!
//! [`super::builder::CdrBuilder`] fills it in as the call goes; this file
//! only defines the record, its outcome and the export form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::mask::mask_caller;
use super::parts::{
    Area, Direction, RecordingInfo, TransferFailure, TransferKind, TransferMode, Vars,
};
use super::time::Timestamp;

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupParty {
    /// The citizen hung up.
    Caller,
    /// The agent hung up (and the caller was not kept for a survey).
    Agent,
    /// Hotline ended it (IVR hang-up, queue limit, fault, shutdown).
    System,
}

/// How a call ended, for reports (REQUIREMENTS.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An agent answered.
    Answered,
    /// The caller hung up in the IVR, never reaching a queue.
    AbandonedInIvr,
    /// The caller hung up while waiting in a queue.
    AbandonedInQueue,
    /// The caller hung up while an agent's phone rang.
    AbandonedRinging,
    /// The queue gave up (max wait, full, closed) and hotline hung up.
    QueueTimeout,
    /// The caller left a message.
    Voicemail,
    /// The caller left the line for a callback.
    Callback,
    /// The call went to an outside number with no agent.
    TransferredOut,
    /// The IVR finished the call itself (self-service, after-hours notice).
    IvrCompleted,
    /// The caller is on the block list.
    Blocked,
    /// Lost to a system fault before an agent answered (呼损).
    Failed,
}

/// A flow and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRef {
    /// Flow name.
    pub name: String,
    /// Flow version.
    pub version: String,
}

/// RTP quality of one leg at the end of the call; mirrors the relay's
/// `LegQuality`. [`LegQuality::sanitise`] (run by the builder) fills
/// `loss_fraction` and stores non-finite numbers as `0` / `null` (JSON has
/// no NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegQuality {
    /// Which leg: `caller`, `agent:<job number>`, `external:<number>` …
    pub leg: String,
    /// RTP packets received from the leg.
    pub received: u64,
    /// Packets lost on the way in (may be negative with duplicates).
    pub lost: i64,
    /// Lost / expected, 0–1 (0 when nothing was expected).
    pub loss_fraction: f64,
    /// Interarrival jitter at the end of the call, in ms.
    pub jitter_ms: f64,
    /// The peer's RTCP report on what it receives from us: fraction lost.
    pub peer_fraction_lost: Option<f64>,
    /// The peer's RTCP report: jitter in ms.
    pub peer_jitter_ms: Option<f64>,
    /// Round-trip time from RTCP, in ms.
    pub rtt_ms: Option<f64>,
    /// RTCP reports sent to the leg.
    pub rtcp_sent: u64,
    /// RTCP reports received from the leg.
    pub rtcp_received: u64,
    /// Packets refused: from other sources than the leg's (strict
    /// latching), or failing SRTP authentication on an SRTP leg; someone
    /// else sent to the call's ports. 0 in records written before it was
    /// counted.
    #[serde(default)]
    pub refused: u64,
}

impl LegQuality {
    /// Recomputes `loss_fraction` and makes every number JSON-safe and
    /// exact through a JSON round trip: fractions clamped to 0–1 and
    /// rounded to 6 decimals, milliseconds clamped to 0–10⁹ and rounded to
    /// 3 decimals; NaN/infinite become `0` (or `None`).
    pub fn sanitise(&mut self) {
        let lost = self.lost.max(0) as f64;
        let expected = self.received as f64 + lost;
        self.loss_fraction = if expected > 0.0 {
            fraction(lost / expected)
        } else {
            0.0
        };
        self.jitter_ms = millis(self.jitter_ms);
        self.peer_fraction_lost = self
            .peer_fraction_lost
            .filter(|x| x.is_finite())
            .map(fraction);
        self.peer_jitter_ms = self.peer_jitter_ms.filter(|x| x.is_finite()).map(millis);
        self.rtt_ms = self.rtt_ms.filter(|x| x.is_finite()).map(millis);
    }
}

/// `x` in 0–1, to 6 decimals (0 if not finite).
fn fraction(x: f64) -> f64 {
    if x.is_finite() {
        (x.clamp(0.0, 1.0) * 1e6).round() / 1e6
    } else {
        0.0
    }
}

/// `x` ms in 0–10⁹, to 3 decimals (0 if not finite). Short decimals parse
/// back to the same `f64` (serde_json's exact fast path).
fn millis(x: f64) -> f64 {
    if x.is_finite() {
        (x.clamp(0.0, 1e9) * 1e3).round() / 1e3
    } else {
        0.0
    }
}

/// One transfer, as the CDR lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRecord {
    /// When.
    pub at: Timestamp,
    /// The agent who transferred (`None`: the IVR).
    pub from_agent: Option<String>,
    /// Agent, group or number.
    pub target_kind: TransferKind,
    /// Job number, group id or phone number.
    pub target: String,
    /// Blind or attended.
    pub mode: TransferMode,
    /// Set when the transfer did not reach its target (the caller went
    /// back); `None` for one that went through (or is still ringing).
    #[serde(default)]
    pub failure: Option<TransferFailure>,
}

/// A voicemail, as the CDR lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailRef {
    /// Where the message is stored.
    pub path: String,
    /// Its length, in ms.
    pub duration_ms: u64,
}

/// The call record: everything the ticket platform and the reports need to
/// know about one call. Times are UTC; durations are milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    /// Call serial number (呼叫流水号).
    pub serial: String,
    /// Hotline's call id (the envelope's `call_id`).
    pub call_id: String,
    /// Tenant (operations centre).
    pub tenant: String,
    /// Inbound, outbound or callback.
    pub direction: Direction,
    /// Calling number (masked by [`Cdr::for_export`] when confidential).
    pub caller: String,
    /// Called number (DID).
    pub called: String,
    /// The caller's administrative area (受理地行政区划), if known.
    pub caller_area: Option<Area>,
    /// Confidential caller (保密).
    pub confidential: bool,
    /// Top-level IVR flow and its version, if the call went through one.
    pub flow: Option<FlowRef>,
    /// Nodes entered, in order; subflow nodes as `flow/node`.
    pub ivr_path: Vec<String>,
    /// IVR variables at the end of the call.
    pub ivr_vars: Vars,
    /// Call time: the call reached hotline.
    pub started_at: Timestamp,
    /// When the caller asked for an agent in the IVR (else: queue entry).
    pub agent_requested_at: Option<Timestamp>,
    /// First queue entry.
    pub queued_at: Option<Timestamp>,
    /// First time an agent's phone rang.
    pub ring_at: Option<Timestamp>,
    /// First time an agent answered.
    pub connected_at: Option<Timestamp>,
    /// Hang-up time.
    pub ended_at: Timestamp,
    /// Who hung up.
    pub hangup_by: HangupParty,
    /// SIP status of the end (BYE: `None`; a failure: 486, 503 …).
    pub sip_code: Option<u16>,
    /// Hotline's reason text (`normal`, `no-input`, `max-wait` …).
    pub hangup_reason: Option<String>,
    /// A system fault ended the call.
    pub system_fault: bool,
    /// The last skill group the call waited in (id).
    pub group_id: Option<String>,
    /// Its name.
    pub group_name: Option<String>,
    /// Every group the call waited in, in order.
    pub groups: Vec<String>,
    /// Job number (工号) of the first agent who answered.
    pub agent_id: Option<String>,
    /// Every agent who answered, in order.
    pub agents: Vec<String>,
    /// Offers made (agent phones rung).
    pub offers: u32,
    /// Whole call: `started_at` to `ended_at`.
    pub duration_ms: u64,
    /// From asking for an agent (or queue entry) to the first answer, or to
    /// leaving the queue unanswered / hanging up.
    pub wait_ms: Option<u64>,
    /// From the first ring to the first answer (or to the end).
    pub ring_ms: Option<u64>,
    /// Time connected to agents, holds excluded.
    pub talk_ms: u64,
    /// Time on hold.
    pub hold_ms: u64,
    /// Number of holds.
    pub hold_count: u32,
    /// After-call work (话后整理) of the call's agents, summed; `None` if no
    /// agent answered.
    pub acw_ms: Option<u64>,
    /// Transfers, in order.
    pub transfers: Vec<TransferRecord>,
    /// Most parties at once in a conference (0: never conferenced).
    pub conference_max: u32,
    /// Keypad ratings: dimension → score.
    pub survey: BTreeMap<String, u8>,
    /// The caller's message, if any.
    pub voicemail: Option<VoicemailRef>,
    /// When the caller chose a callback.
    pub callback_requested_at: Option<Timestamp>,
    /// The recording, if the call was recorded.
    pub recording: Option<RecordingInfo>,
    /// RTP quality per leg.
    pub quality: Vec<LegQuality>,
    /// How the call ended.
    pub outcome: Outcome,
    /// `false` when the record was closed before everything it waits for
    /// (after-call work, the recording) had arrived.
    pub complete: bool,
}

impl Cdr {
    /// The record as exports show it: when confidential, the caller number
    /// is masked, as is every IVR variable holding it.
    pub fn for_export(&self) -> Cdr {
        let mut c = self.clone();
        if c.confidential {
            let masked = mask_caller(&c.caller);
            for v in c.ivr_vars.values_mut() {
                if *v == c.caller {
                    v.clone_from(&masked);
                }
            }
            c.caller = masked;
        }
        c
    }
}
