//! The switch's types seen through the API's traits
//! ([`crate::api::handles`]): implemented here, in the composition root,
//! so that neither `api` nor `switch` imports the other.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::acd;
use crate::api::handles::{CallCapsStatus, IvrStatus, RegistrationCount, RosterAdmin};
use crate::config::Config;
use crate::roster::change::{Edit, ReloadReport, RosterError};
use crate::roster::seed::{Kind, Origin};
use crate::roster::LiveRoster;
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
