//! The switch's types seen through the API's traits
//! ([`crate::api::handles`]): implemented here, in the composition root,
//! so that neither `api` nor `switch` imports the other.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::acd;
use crate::api::handles::{
    CallCapsStatus, FlowHistory, FlowHistoryFailure, IvrStatus, RegistrationCount, RosterAdmin,
};
use crate::config::Config;
use crate::roster::change::{Edit, ReloadReport, RosterError};
use crate::roster::seed::{Kind, Origin};
use crate::roster::LiveRoster;
use crate::store::FlowVersion;
use crate::switch::flow_history::{self, HistoryError};
use crate::switch::ivr::IvrRuntime;
use crate::switch::roster::RosterAdmin as SwitchRosterAdmin;
use crate::switch::Registrations;
use crate::util::Live;

impl IvrStatus for IvrRuntime {
    fn flows(&self) -> Vec<(String, String, Vec<String>)> {
        IvrRuntime::flows(self)
    }

    fn problems(&self) -> Vec<String> {
        IvrRuntime::problems(self)
    }

    fn reloads(&self) -> u64 {
        IvrRuntime::reloads(self)
    }

    fn calendar_warnings(&self, unix_secs: i64) -> Vec<String> {
        IvrRuntime::calendar_warnings(self, unix_secs)
    }
}

impl RosterAdmin for SwitchRosterAdmin {
    fn roster(&self) -> Arc<LiveRoster> {
        SwitchRosterAdmin::roster(self)
    }

    fn config(&self) -> Arc<Live<Config>> {
        SwitchRosterAdmin::config(self)
    }

    fn origins(&self, kind: Kind) -> BoxFuture<'_, HashMap<String, Origin>> {
        SwitchRosterAdmin::origins(self, kind).boxed()
    }

    fn edit(&self, edit: Edit) -> BoxFuture<'_, Result<acd::Reconfigured, RosterError>> {
        SwitchRosterAdmin::edit(self, edit).boxed()
    }

    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, RosterError>> {
        SwitchRosterAdmin::reload(self).boxed()
    }

    fn ivr(&self) -> Arc<dyn IvrStatus> {
        SwitchRosterAdmin::ivr(self)
    }
}

impl CallCapsStatus for crate::switch::call_load::CallSlots {
    fn figures(&self) -> serde_json::Value {
        serde_json::to_value(crate::switch::call_load::CallSlots::figures(self)).unwrap_or_default()
    }
}

impl RegistrationCount for Registrations {
    fn count(&self) -> usize {
        Registrations::count(self)
    }

    fn locked_out_users(&self) -> usize {
        Registrations::locked_out_users(self)
    }
}

/// `/readyz`: not draining, and the store answers.
pub struct NodeReadiness {
    /// Set by the switch at SIGTERM.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The store (shared PostgreSQL or the embedded database).
    pub store: crate::store::Store,
}

impl crate::api::handles::Readiness for NodeReadiness {
    fn checks(&self) -> Vec<(&'static str, Result<(), String>)> {
        let draining = if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            Err("draining: SIGTERM received, calls in progress are finishing".to_string())
        } else {
            Ok(())
        };
        vec![
            ("draining", draining),
            ("store", self.store.ping().map_err(|e| e.to_string())),
        ]
    }
}

/// The flow history of the switch's store, with the configuration in force
/// (its `flows_dir`, groups and calendars validate a rollback).
pub struct FlowHistoryAdmin {
    /// The store the IVR records every accepted version in.
    pub store: crate::store::Store,
    /// The configuration in force.
    pub config: Arc<Live<Config>>,
}

fn failure(e: HistoryError) -> FlowHistoryFailure {
    let text = e.to_string();
    match e {
        HistoryError::UnknownFlow(_) => FlowHistoryFailure::UnknownFlow(text),
        HistoryError::UnknownVersion { .. } => FlowHistoryFailure::UnknownVersion(text),
        HistoryError::Ambiguous { .. } => FlowHistoryFailure::Ambiguous(text),
        HistoryError::NothingToCompare(_) => FlowHistoryFailure::NothingToCompare(text),
        HistoryError::AlreadyLive { .. } => FlowHistoryFailure::AlreadyLive(text),
        HistoryError::Invalid(problems) => FlowHistoryFailure::Invalid(problems),
        HistoryError::NoCalls(_)
        | HistoryError::Io { .. }
        | HistoryError::Store(_)
        | HistoryError::Records(_) => FlowHistoryFailure::Failed(text),
    }
}

impl FlowHistory for FlowHistoryAdmin {
    fn versions(&self, name: &str) -> Result<Vec<FlowVersion>, FlowHistoryFailure> {
        flow_history::versions(&self.store, name).map_err(failure)
    }

    fn diff(
        &self,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(String, String, String), FlowHistoryFailure> {
        let versions = flow_history::versions(&self.store, name).map_err(failure)?;
        flow_history::diff(&versions, from, to).map_err(failure)
    }

    fn rollback(
        &self,
        name: &str,
        version: &str,
        by: &str,
    ) -> Result<(FlowVersion, String), FlowHistoryFailure> {
        let config = self.config.load();
        flow_history::rollback(
            &config,
            &self.store,
            name,
            version,
            by,
            crate::util::unix_now_ms(),
        )
        .map(|(v, path)| (v, path.display().to_string()))
        .map_err(failure)
    }
}
