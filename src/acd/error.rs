//! The ACD's error type (DESIGN.md "Habits": one `thiserror` enum per module
//! boundary). A bad configuration names the group, agent and field; an input
//! in the wrong state names the agent or call and its state. The engine is
//! left unchanged by an input that fails.

use super::model::{AgentState, CallId};

/// Everything the ACD can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("acd config: {0}")]
    Config(String),
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error("unknown skill group {0:?}")]
    UnknownGroup(String),
    #[error("the queue of skill group {0:?} is full")]
    QueueFull(String),
    #[error("unknown or finished {0}")]
    UnknownCall(CallId),
    #[error("{0} is already in the ACD")]
    DuplicateCall(CallId),
    #[error("agent {agent:?}: not-ready reason {reason:?} is not configured")]
    UnknownReason { agent: String, reason: String },
    #[error("agent {agent:?} is {state}: cannot {action}")]
    WrongAgentState {
        agent: String,
        state: AgentState,
        action: &'static str,
    },
    #[error("{call} is {state}: cannot {action}")]
    WrongCallState {
        call: CallId,
        state: &'static str,
        action: &'static str,
    },
    #[error("{call} is not ringing agent {agent:?}")]
    NotOfferedTo { call: CallId, agent: String },
    /// A reconfiguration would delete (or move to another tenant) an agent
    /// or skill group that live work still depends on; the message names it
    /// and why.
    #[error("{0}")]
    InUse(String),
}
