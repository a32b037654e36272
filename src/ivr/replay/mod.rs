//! Replaying recorded calls through an edited flow (issue 18 §4: "runs the
//! edited flow in the pure interpreter against the recorded IVR paths and
//! keys of real recent calls and reports which callers would now end
//! elsewhere (per node, with counts) before the edit goes live").
//!
//! A call record keeps the nodes the call entered (`ivr_path`), its IVR
//! variables at the end (`ivr_vars`: digits collected, `menu_NODE` the last
//! key chosen), its caller, called number and start time, and the version
//! of the flow it walked. The keys themselves are not recorded, so they are
//! *reconstructed* (`walk`): the recorded version, kept in the flow
//! history, is walked again in the interpreter, and at each wait for input
//! the input (a key, the collected digits, silence) that makes the walk
//! follow the recorded path is chosen (the recorded `menu_NODE` key first).
//! The walk stops at the call's destination (its first queue, transfer,
//! voicemail or hang-up) or where the caller hung up. The inputs found,
//! per node in order, are then fed to the edited flow, and the two
//! destinations are compared (`report`).
//!
//! What this cannot know is reported, not guessed: a call whose version is
//! not in the history, a path no input reproduces, and an edited flow that
//! asks for input at a node where the call gave none (a new menu, or a
//! retry after a key the edit made invalid).
//!
//! Time is the call's start for every step (office hours and time-of-day
//! cases); the caller's area and calendars are the environment's; the
//! block list is read from the recorded walk (a blocked call stays
//! blocked). Pure: no clock, no files.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::interpreter::Environment;
use super::validate::FlowSet;
use crate::time::Time;

mod report;
mod walk;

pub use report::{Move, Report, Unreplayable};

/// Most waits for input replayed per call (menus retried included).
pub const MAX_WAITS: usize = 64;

/// One recorded call that entered the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// Hotline's call id (shown as an example in the report).
    pub call_id: String,
    /// Calling number.
    pub caller: String,
    /// Called number.
    pub called: String,
    /// Tenant.
    pub tenant: String,
    /// When the call reached hotline.
    pub started_at: Time,
    /// The version of the flow the call walked.
    pub version: String,
    /// Nodes entered, in order (subflow nodes as `flow/node`).
    pub path: Vec<String>,
    /// IVR variables at the end of the call.
    pub vars: BTreeMap<String, String>,
    /// The caller hung up (rather than hotline or an agent).
    pub caller_hung_up: bool,
    /// Hotline's reason text for the end (`no-input` …), if any.
    pub hangup_reason: Option<String>,
}

/// Where a call's IVR walk ends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// Queued in a skill group.
    Queue(String),
    /// Transferred (`agent 1001`, `group water`, `number 95119`).
    Transfer(String),
    /// Voicemail recorded at a node.
    Voicemail(String),
    /// Hotline hung up at a node, with the reason.
    Hangup {
        /// The node.
        node: String,
        /// `normal`, `no-input`, `blocked` …
        reason: String,
    },
    /// The caller hung up at a node.
    CallerHungUp(String),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Queue(g) => write!(f, "queue {g}"),
            Destination::Transfer(t) => write!(f, "transfer to {t}"),
            Destination::Voicemail(n) => write!(f, "voicemail at {n}"),
            Destination::Hangup { node, reason } => write!(f, "hang-up ({reason}) at {node}"),
            Destination::CallerHungUp(n) => write!(f, "the caller hanging up at {n}"),
        }
    }
}

/// Replays `calls` of the flow `flow`: each through the set holding the
/// version it walked (`old`, by version; absent: not replayable) and
/// through `new`, the set with the edited flow.
pub fn replay(
    flow: &str,
    old: &BTreeMap<String, Arc<FlowSet>>,
    new: &Arc<FlowSet>,
    calls: &[RecordedCall],
    env: &dyn Environment,
) -> Report {
    let new_version = new.get(flow).map(|f| f.version.clone()).unwrap_or_default();
    let mut report = Report::new(flow, &new_version);
    for call in calls {
        let Some(set) = old.get(&call.version) else {
            report.unreplayable(
                format!("version {} is not in the flow history", call.version),
                &call.call_id,
            );
            continue;
        };
        let before = match walk::reconstruct(set, flow, call, env) {
            Ok(b) => b,
            Err(why) => {
                report.unreplayable(why, &call.call_id);
                continue;
            }
        };
        match walk::rerun(new, flow, call, &before, env) {
            Ok(after) => report.add(call, &before, &after),
            Err(why) => report.unreplayable(why, &call.call_id),
        }
    }
    report
}

#[cfg(test)]
mod tests;
