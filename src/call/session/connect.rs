//! How a connected call's shell is built (issue 13 §1: one constructor
//! for every driver instead of a 27-field literal each): the inbound
//! conversation loop (`call::converse`), callbacks (`call::callback`) and
//! outbound calls (`call::outbound`) state the two legs, their media and
//! who is on side B; [`Session::connect`] derives the rest (RTP targets
//! from the negotiations, no consultation or direct ACD call yet).

use super::Session;
use crate::acd::CallId;
use crate::call::record::CallRecord;
use crate::call::CallContext;
use crate::media::caller::CallerMedia;
use crate::media::ports::PortPair;
use crate::media::sdp::{LocalMedia, Negotiated, SessionDescription};
use crate::sip::stack::LegEventSender;
use crate::sip::{Leg, LegEvents};

/// One side's media as its offer/answer left it.
pub(in crate::call) struct SideMedia {
    /// Our media on that side.
    pub local: LocalMedia,
    /// What the side negotiated (its RTP target among it).
    pub neg: Negotiated,
}

/// Who is on side B, as the ACD and the record know them.
pub(in crate::call) struct AgentSide {
    /// The agent (ACD agent id, or the phone's user when rung directly;
    /// `None` for an external number).
    pub agent: Option<String>,
    /// The SIP user of the agent's phone (supervisors reach the call
    /// through it).
    pub device: Option<String>,
    /// The agent came from the ACD: their after-call work ends the record.
    pub acd: bool,
    /// The ACD's id of this call (queued calls).
    pub acd_call: Option<CallId>,
}

impl AgentSide {
    /// Whoever answered an inbound call: an ACD agent when the queue
    /// offered it (`queued`), else a phone rung directly or a number.
    pub fn answered(agent: Option<String>, device: Option<String>, queued: Option<CallId>) -> Self {
        AgentSide {
            agent,
            device,
            acd: queued.is_some(),
            acd_call: queued,
        }
    }

    /// The agent the ACD reserved for a callback: their after-call work
    /// ends the record.
    pub fn callback(agent: String, device: String) -> Self {
        AgentSide {
            agent: Some(agent),
            device: Some(device),
            acd: true,
            acd_call: None,
        }
    }

    /// The agent placing an outbound call (not offered by the ACD).
    pub fn outbound(agent: String, device: String) -> Self {
        AgentSide {
            agent: Some(agent),
            device: Some(device),
            acd: false,
            acd_call: None,
        }
    }
}

/// What the connected call allows.
#[derive(Debug, Clone, Copy)]
pub(in crate::call) struct Rules {
    /// When the agent hangs up first the caller stays (the flow goes on).
    pub keep_caller: bool,
    /// Whoever runs the call puts the caller through a blind transfer.
    pub blind_transfer: bool,
}

impl Rules {
    /// An inbound call: blind transfers are put through; the caller stays
    /// after the agent when the flow goes on (`keep_caller`).
    pub fn inbound(keep_caller: bool) -> Self {
        Rules {
            keep_caller,
            blind_transfer: true,
        }
    }

    /// A callback or an outbound call (agent first): no flow after the
    /// agent, and no driver to put a blind transfer through.
    pub const AGENT_FIRST: Rules = Rules {
        keep_caller: false,
        blind_transfer: false,
    };
}

/// What a driver hands the shell of a connected call.
pub(in crate::call) struct SessionParts<'a, A: Leg, B: Leg> {
    /// The call room's context.
    pub ctx: &'a CallContext,
    /// Side A's leg (the caller, or the citizen dialled back).
    pub a: &'a A,
    /// Side B's leg (the agent or an external party).
    pub b: B,
    /// The call's leg events, lent: whoever runs the call keeps them
    /// across its conversations (a new channel would cost 13 KiB).
    pub events: &'a mut LegEvents,
    /// Their sender (extra parties' legs report on it).
    pub events_tx: LegEventSender,
    /// The caller's media session.
    pub media: &'a mut CallerMedia,
    /// The call's record.
    pub record: &'a CallRecord,
    /// Side A's media.
    pub a_side: SideMedia,
    /// Our last answer to side A.
    pub a_answer: SessionDescription,
    /// Side B's media.
    pub b_side: SideMedia,
    /// Side B's ports (the relay takes them).
    pub b_ports: Option<PortPair>,
    /// The relay, when the caller was bridged before being answered
    /// ([`super::bridge`]); `b_ports` are then unused.
    pub bridged: Option<super::Bridged>,
    /// The citizen's number.
    pub caller: String,
    /// Who is on side B.
    pub agent: AgentSide,
    /// What the call allows.
    pub rules: Rules,
}

impl<'a, A: Leg, B: Leg> Session<'a, A, B> {
    /// The shell of a call connected as `parts` says.
    pub(in crate::call) fn connect(parts: SessionParts<'a, A, B>) -> Self {
        let SessionParts {
            ctx,
            a,
            b,
            events,
            events_tx,
            media,
            record,
            a_side,
            a_answer,
            b_side,
            b_ports,
            bridged,
            caller,
            agent,
            rules,
        } = parts;
        Session {
            ctx,
            a,
            b,
            events,
            media,
            b_ports,
            bridged,
            a_remote: a_side.neg.remote,
            b_remote: b_side.neg.remote,
            a_local: a_side.local,
            b_local: b_side.local,
            a_neg: a_side.neg,
            b_neg: b_side.neg,
            a_answer_sdp: a_answer,
            keep_caller: rules.keep_caller,
            blind_transfer: rules.blind_transfer,
            agent_device: agent.device,
            events_tx: Some(events_tx),
            record,
            agent: agent.agent,
            acd: agent.acd,
            consult_device: None,
            acd_call: agent.acd_call,
            direct_call: None,
            caller,
        }
    }
}
