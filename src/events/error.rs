//! Why the event model refuses a fact (issue 7 §1). Refusals never lose
//! anything already emitted; the shell logs them and goes on.

use super::time::TimeError;

/// A fact the [`super::builder::CdrBuilder`] or
/// [`super::agent::AgentEvents`] cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The time is not a valid timestamp.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The caller's leg is gone; only after-call work, the recording, RTP
    /// quality and IVR variables may still arrive.
    #[error("call {0}: already hung up")]
    HungUp(String),
    /// The caller's leg is still up (for `close`).
    #[error("call {0}: still in progress")]
    NotHungUp(String),
    /// The call record was emitted; nothing more goes into it.
    #[error("call {0}: record already emitted")]
    Closed(String),
    /// Hold, resume or agent hang-up with no agent on the call.
    #[error("call {0}: no agent connected")]
    NoAgent(String),
    /// The agent is already connected to the call.
    #[error("call {0}: agent {1} already connected")]
    AlreadyConnected(String, String),
    /// Hold while on hold.
    #[error("call {0}: already on hold")]
    AlreadyHeld(String),
    /// Resume while not on hold.
    #[error("call {0}: not on hold")]
    NotHeld(String),
    /// Leaving a queue the call is not in.
    #[error("call {0}: not in a queue")]
    NotQueued(String),
    /// After-call work ended for an agent not in after-call work for this
    /// call.
    #[error("call {0}: agent {1} is not in after-call work for it")]
    NoAcw(String, String),
    /// More than `u32::MAX` events for one call or agent.
    #[error("sequence numbers exhausted for {0}")]
    SeqOverflow(String),
}
