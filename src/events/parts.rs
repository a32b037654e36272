//! The values both the event kinds ([`super::model`]) and the call record
//! ([`super::cdr`]) are made of: the call's direction, an area, how a
//! transfer went, a recording, the IVR's variables (issue 7 §1;
//! REQUIREMENTS.md §6). One file, so the record and the events name the
//! same types without importing each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A citizen called in.
    Inbound,
    /// An agent called out.
    Outbound,
    /// A callback to a citizen who missed or asked for one (回拨).
    Callback,
}

/// An administrative area (号码归属地 / 受理地行政区划).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    /// Area code, e.g. `0771`.
    pub code: String,
    /// Region name, e.g. `广西壮族自治区南宁市`.
    pub region: String,
}

/// What a transfer goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// An agent (job number).
    Agent,
    /// A skill group (id).
    Group,
    /// An outside number (110, 12328 …).
    Number,
}

/// How a transfer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// Handed over at once (盲转), or by the IVR.
    Blind,
    /// After the agent spoke to the target (咨询转).
    Attended,
}

/// Why a transfer did not reach its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferFailureReason {
    /// The target refused: busy (486, 600, 603).
    Busy,
    /// The target rang and nobody answered (ring timeout, 408, 480).
    NoAnswer,
    /// The target could not be rung: an agent's phone not registered, a
    /// skill group with nobody signed in, a number with no trunk.
    Unreachable,
    /// Any other failure (a trunk's 503, a bad answer …; see `sip_code`).
    Failed,
}

/// Where the caller went when a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferReturn {
    /// Back to the agent who transferred: their phone rings again.
    Agent,
    /// Back to the queue of the call's group, at the place the call had.
    Queue,
    /// Nowhere to go back to (the call never queued and the agent cannot
    /// be reached): hotline hangs up.
    None,
}

/// What became of a transfer that failed (`call.transfer_failed`, and the
/// record's `transfers[].failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFailure {
    /// Why.
    pub reason: TransferFailureReason,
    /// The final SIP status from the target, if it sent one.
    pub sip_code: Option<u16>,
    /// Where the caller went.
    pub back_to: TransferReturn,
    /// The agent's job number (`agent`) or the group's id (`queue`).
    pub back_to_id: Option<String>,
}

/// `recording.ready` (and the CDR's `recording`): a finished recording
/// (随录信息). Mirrors the recorder's `RecordingMeta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    /// Recording id, for the ticket platform and the records API.
    pub id: String,
    /// Where the file is (path under the recordings root, or URL).
    pub path: String,
    /// Length of the audio, in ms.
    pub duration_ms: u64,
    /// Size of the WAV in bytes (as a download delivers it: decrypted when
    /// the file is encrypted at rest).
    pub bytes: u64,
    /// SHA-256 of the WAV (as downloaded), lowercase hex.
    pub sha256: String,
    /// Audio chunks lost while recording (each a gap).
    pub dropped_chunks: u64,
}

/// IVR variables, name → value (`BTreeMap`: stable order in JSON).
pub type Vars = BTreeMap<String, String>;
