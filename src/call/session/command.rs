//! What other tasks ask of a connected call (the CTI API, supervisors'
//! feature codes): the commands, how a supervisor joins, where an extra
//! party is rung. `control` carries them out.

use crate::media::mixer::Mode;
use crate::media::relay;
use crate::sip::stack::PendingInvite;

/// The call's entry in `CallContext::live` (the agent's phone user, the
/// entry's id, the sender): moved to the new agent's phone after an
/// attended transfer.
pub(super) type Registration = (String, u64, CommandSender);

/// The sending half of a connected call's command channel. The commands
/// travel boxed: tokio allocates a block of 32 slots with every channel,
/// and every call with an agent has one: 32 boxes are 256 bytes where 32
/// commands were 4 KiB (issue 16, "Memory per call").
#[derive(Clone)]
pub struct CommandSender(tokio::sync::mpsc::UnboundedSender<Box<SessionCommand>>);

/// The receiving half, the call's.
pub(super) type CommandReceiver = tokio::sync::mpsc::UnboundedReceiver<Box<SessionCommand>>;

impl CommandSender {
    /// A new command channel.
    pub(super) fn channel() -> (CommandSender, CommandReceiver) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (CommandSender(tx), rx)
    }

    /// Send `command` to the call; it comes back (boxed) when the call
    /// has ended.
    pub fn send(
        &self,
        command: SessionCommand,
    ) -> Result<(), tokio::sync::mpsc::error::SendError<Box<SessionCommand>>> {
        self.0.send(Box::new(command))
    }
}

/// How a supervisor joins an agent's call (the call's machine keeps it).
pub use crate::call::fsm::Supervision;

impl Supervision {
    /// The mixer mode (whispers go to side B, the agent).
    pub(super) fn mode(self) -> Mode {
        match self {
            Supervision::Listen => Mode::Listen,
            Supervision::Whisper => Mode::Whisper {
                to: relay::OTHER_SIDE,
            },
            Supervision::Barge => Mode::Barge,
        }
    }
}

/// What other tasks ask of a connected call.
pub enum SessionCommand {
    /// Hang up both legs now (a supervisor's force-release, or the agent's
    /// hang-up button).
    Hangup {
        /// Who asked (for the log).
        by: String,
    },
    /// Blind transfer (盲转): the agent leaves, the caller stays and is
    /// put through to `target` by whoever runs the call.
    Transfer {
        /// Where to.
        target: crate::ivr::TransferTarget,
        /// Who asked (for the log).
        by: String,
        /// Refused where the call cannot put the caller through (an
        /// outbound call or a callback: their drivers have no transfer).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The agent leaves and the caller goes on in the IVR flow (its
    /// `after_agent` survey); refused for calls without a flow after the
    /// agent.
    ToSurvey {
        /// Whether the call has one.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The agent puts the caller on hold (music on hold) or takes them
    /// back; the reply says whether it happened.
    Hold {
        /// Hold (true) or resume (false).
        on: bool,
        /// The outcome.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Add a third party (three-way call, 三方通话): ring it; when it
    /// answers everyone hears everyone.
    AddParty {
        /// Whom.
        target: PartyTarget,
        /// Sent once it is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer, step 1 (咨询): the caller is put on hold (music,
    /// and kept out of the mix) and `target` is rung to talk with the
    /// agent.
    Consult {
        /// Whom.
        target: PartyTarget,
        /// Sent once it is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer to a skill group, step 1: the caller is put on
    /// hold and a consultation enters the group's ACD queue; the agent
    /// the ACD picks is rung to talk with the agent.
    ConsultGroup {
        /// The group's id.
        group: String,
        /// Sent once the consultation is queued (or why not: the ACD's
        /// reason).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer, step 2: the consulted party takes the caller and
    /// the agent leaves.
    CompleteConsult {
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A supervisor on the call (joined by the API) takes it over: they
    /// become the caller's party and the agent leaves (强接).
    TakeOver {
        /// The supervisor's user name (as they joined).
        supervisor: String,
        /// Their agent id (names them in the record).
        label: String,
        /// Their phone's SIP user (supervisors then reach the call there).
        device: String,
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Attended transfer abandoned: the consulted party is dropped and the
    /// caller is back with the agent.
    CancelConsult {
        /// Whether it happened.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Drop a third party from the call.
    DropParty {
        /// Its label (number or agent id).
        label: String,
        /// Whether it was on the call.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Ring a supervisor's phone; when it answers it joins the call as
    /// `mode` (the API's listen / whisper / barge).
    DialSupervisor {
        /// The supervisor's phone's registrations.
        contacts: Vec<crate::call::Contact>,
        /// How they join.
        mode: Supervision,
        /// Their user name (for the log).
        supervisor: String,
        /// Sent once the phone is rung (or why not).
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// The agent's phone dialled `dialled` from its second line while on
    /// this call (its INVITE, authenticated, not yet answered): an
    /// attended transfer from the phone's keys begins (RFC 5589 §7).
    PhoneConsult {
        /// The phone's INVITE (boxed: the channel's slots stay small).
        invite: Box<PendingInvite>,
        /// Whom: an extension, a job number, a skill group, a number.
        dialled: String,
    },
    /// A supervisor dialled in (their INVITE, not yet answered).
    Supervise {
        /// The supervisor's INVITE (boxed: the channel's slots stay small).
        invite: Box<PendingInvite>,
        /// How they join.
        mode: Supervision,
        /// Their SIP user (for the log).
        supervisor: String,
    },
}

/// Where a third party of a three-way call (or of a consultation) is rung.
#[derive(Debug, Clone)]
pub struct PartyTarget {
    /// The SIP user of its phone, when it is an agent.
    pub device: Option<String>,
    /// Its number or agent id (names it in the record and to drop it).
    pub label: String,
    /// The Request-URI.
    pub uri: String,
    /// Where to send the INVITE.
    pub destination: std::net::SocketAddr,
    /// Over TCP.
    pub tcp: bool,
    /// Its pre-loaded route: an agent's registered `Path` (RFC 3327).
    pub route: Vec<String>,
}
