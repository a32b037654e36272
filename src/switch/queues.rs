//! Which ACD this node runs (docs/ha.md §3): its own (one node, or several
//! nodes without `[store] nats`), or its part of the nodes' one ACD.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::registration::Registrations;
use super::roster;
use super::SwitchError;
use crate::call::queue::{AcdDurability, CallbackOrder, Queues};
use crate::config::Config;
use crate::store::cluster::ClusterStatus;
use crate::store::Store;

/// Start the ACD `config` asks for; what it kept is read now (a node's
/// own ACD applies it with `Queues::restore`; the one ACD's leader as it
/// takes the lease).
pub async fn start(
    config: &Config,
    store: &Store,
    registrations: &Registrations,
    draining: &Arc<AtomicBool>,
    status: &Arc<ClusterStatus>,
) -> Result<(Queues, mpsc::UnboundedReceiver<CallbackOrder>), SwitchError> {
    let acd = roster::acd_config(config);
    let offset = config.acd_utc_offset_minutes();
    match (&config.store.nats, store.is_shared()) {
        #[cfg(feature = "nats")]
        (Some(nats), true) => {
            let registrations = registrations.clone();
            Queues::clustered(crate::call::acd_cluster::ClusterSetup {
                node: config.node_id(),
                nats_url: nats.clone(),
                store: store.clone(),
                config: acd,
                utc_offset_minutes: offset,
                registered: Arc::new(move || registrations.registered_users()),
                draining: draining.clone(),
                status: status.clone(),
            })
            .await
            .map_err(SwitchError::Acd)
        }
        _ => {
            let _ = (registrations, draining, status);
            let durable = AcdDurability {
                store: store.clone(),
                utc_offset_minutes: offset,
            };
            Queues::start(acd, Some(durable)).map_err(SwitchError::Acd)
        }
    }
}
