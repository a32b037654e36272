//! What the API needs from the switch, as small traits (issue 13 §5: `api`
//! never imports `switch`, `switch` never imports `api`). The composition
//! root (`app`) implements them for the switch's types and hands the API
//! `Arc<dyn …>`s; tests may hand it their own.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::acd;
use crate::config::Config;
use crate::roster::change::{Edit, ReloadReport, RosterError};
use crate::roster::seed::{Kind, Origin};
use crate::roster::LiveRoster;
use crate::util::Live;

/// The live IVR flows as `/healthz` and the reload answer show them.
pub trait IvrStatus: Send + Sync {
    /// `(name, version, DIDs)` of every live flow.
    fn flows(&self) -> Vec<(String, String, Vec<String>)>;
    /// Why the last edit of the flows was refused (the previous flows
    /// keep serving); empty when the live flows are the files' own.
    fn problems(&self) -> Vec<String>;
    /// How many times the flows were loaded again.
    fn reloads(&self) -> u64;
    /// Holiday calendars that have run out at `unix_secs`.
    fn calendar_warnings(&self, unix_secs: i64) -> Vec<String>;
}

/// The agents and skill groups in force, and the one way to change them
/// (`switch::roster::RosterAdmin`).
pub trait RosterAdmin: Send + Sync {
    /// The roster in force.
    fn roster(&self) -> Arc<LiveRoster>;
    /// The configuration in force.
    fn config(&self) -> Arc<Live<Config>>;
    /// Who owns each live entry of `kind`, by key (SIP user or group id).
    fn origins(&self, kind: Kind) -> BoxFuture<'_, HashMap<String, Origin>>;
    /// Apply one admin edit.
    fn edit(&self, edit: Edit) -> BoxFuture<'_, Result<acd::Reconfigured, RosterError>>;
    /// Read the configuration file again and apply what may change live.
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, RosterError>>;
    /// The IVR's flows and their problems (for the reload answer).
    fn ivr(&self) -> Arc<dyn IvrStatus>;
}

/// The trunks' and centres' calls against their caps (issue 14 §5), as
/// `/healthz` shows them.
pub trait CallCapsStatus: Send + Sync {
    /// One object per trunk, then per centre: `scope`, `name`, `active`,
    /// `max_calls`, `max_cps`, `admitted`, `refused_calls`, `refused_cps`.
    fn figures(&self) -> serde_json::Value;
}

/// The agents' registrations, as `/healthz` counts them.
pub trait RegistrationCount: Send + Sync {
    /// Number of live bindings.
    fn count(&self) -> usize;
    /// SIP user names locked out now after failed digest attempts.
    fn locked_out_users(&self) -> usize;
}

/// Whether this node should get new work (docs/ha.md §6): `/readyz`.
pub trait Readiness: Send + Sync {
    /// Each check by name: `Ok` or why not. Blocking (the store is
    /// queried): the listener calls it on the blocking pool.
    fn checks(&self) -> Vec<(&'static str, Result<(), String>)>;
}

/// Why a flow history request did nothing (`FlowHistory`); each message
/// names the flow, the version or the file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowHistoryFailure {
    /// No stored version of that flow.
    UnknownFlow(String),
    /// No stored version matches.
    UnknownVersion(String),
    /// A version prefix matches several versions.
    Ambiguous(String),
    /// Only one version: nothing to compare.
    NothingToCompare(String),
    /// The version asked for is in the flow's file already.
    AlreadyLive(String),
    /// The flows would not validate: every problem.
    Invalid(Vec<String>),
    /// The store or a file failed.
    Failed(String),
}

/// Every accepted IVR flow version, their diffs, and rolling one back
/// (issue 18 §4; `switch::flow_history`). Blocking: the API calls these on
/// the blocking pool.
pub trait FlowHistory: Send + Sync {
    /// The flow's stored versions, first accepted first (content included).
    fn versions(&self, name: &str) -> Result<Vec<crate::store::FlowVersion>, FlowHistoryFailure>;
    /// `(from, to, unified diff)` of two versions (defaults: the version
    /// live before the live one, and the live one).
    fn diff(
        &self,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(String, String, String), FlowHistoryFailure>;
    /// Write the stored `version` back to the flow's file, validated
    /// first, recorded as live by `by`; returns the version and the file.
    fn rollback(
        &self,
        name: &str,
        version: &str,
        by: &str,
    ) -> Result<(crate::store::FlowVersion, String), FlowHistoryFailure>;
}
