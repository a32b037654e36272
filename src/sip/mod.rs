//! The SIP room: transports, transactions and dialogs (rsipstack, wrapped in
//! [`stack`] so no other room sees its types), behind an ingress [`gate`]
//! every message passes first (RFC 3261 admission in [`admit`], per-source
//! flood limits in [`flood`], TCP framed by [`tcp_ingress`]), plus our own
//! pure cores for
//! digest authentication ([`auth`], with the per-agent challenge choice in
//! [`digest_policy`]), agent registrations ([`registrar`]) and
//! trunk selection ([`trunk`]).
//!
//! What the rest of hotline sees: [`SipStack`] (bind, dispatch, send),
//! [`Incoming`] (out-of-dialog requests for the switch to decide on),
//! [`InboundLeg`] / [`OutboundLeg`] (one dialog each, driven by the `call`
//! room) and [`LegEvent`] (what happened on a leg). Confirmed legs can be
//! written down ([`journal`]) so the next start closes the ones a crash left
//! up ([`recovery`]). An answered outbound leg's INVITE transaction ends
//! with the leg rather than lingering for Timer M (`linger`).

pub mod admit;
pub mod auth;
pub mod dialog_info;
pub mod digest_policy;
pub mod flood;
mod foreign;
pub mod gate;
pub mod journal;
mod leg_events;
mod linger;
pub mod message;
mod recovery;
pub mod refer;
pub mod registrar;
mod sockets;
pub mod stack;
pub mod subscription;
mod tcp_ingress;
pub mod tls_client;
pub mod trunk;
pub mod user_lockout;

pub use journal::{DialogJournal, SavedDialog};
pub use message::{Request, Responder};
pub use stack::{
    AnyLegRequests, ForeignLeg, InboundLeg, Incoming, Leg, LegEvent, LegEvents, LegKey,
    LegRequests, OutboundInvite, OutboundLeg, OutboundRegistration, SipError, SipStack,
    StackConfig,
};
