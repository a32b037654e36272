//! The vocabulary of a change to the roster (CTI issue §6 "Admin"): one
//! admin [`Edit`], what a configuration reload did ([`ReloadReport`]) and
//! why a change was refused ([`RosterError`]). The shell that applies a
//! change (`switch::roster`) and the API that asks for one (`api::roster`,
//! through `api::handles::RosterAdmin`) both speak it, so neither imports
//! the other (issue 13 §5).

use crate::acd;
use crate::config::{AgentConfig, GroupConfig};

/// Why a roster change or a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The change would leave an invalid configuration; nothing changed.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The ACD refused (a signed-in agent, a group with calls); nothing
    /// changed.
    #[error("{0}")]
    InUse(String),
    /// The configuration file cannot be read or parsed.
    #[error("{0}")]
    File(String),
    /// The database failed; nothing changed. (The store's own error,
    /// boxed: the roster room sits below `store`.)
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
    /// A stored row cannot be read back (edited by hand?).
    #[error("hotline.db: stored {kind} {key:?} is unreadable: {error}")]
    Corrupt {
        kind: &'static str,
        key: String,
        error: String,
    },
}

/// One admin edit.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Create or replace the agent whose SIP user is `agent.user`.
    PutAgent(AgentConfig),
    /// Delete the agent with this SIP user.
    DeleteAgent(String),
    /// Create or replace the group `group.id`.
    PutGroup(GroupConfig),
    /// Delete the group with this id.
    DeleteGroup(String),
}

/// What a reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// The file read ("embedded" when the switch runs on the built-in
    /// default).
    pub source: String,
    /// The ACD's view of the change.
    pub roster: acd::Reconfigured,
    /// One line per agent or group the merge touched or ignored.
    pub notes: Vec<String>,
    /// Whether the IVR flows are live (false: the previous flows keep
    /// serving; see `GET /healthz`).
    pub ivr_ok: bool,
    /// Sections that changed but need a restart.
    pub restart_needed: Vec<String>,
}
