//! Hearing the other nodes (issue 15 §2, docs/ha.md §1): with a shared
//! store, each node takes the other nodes' changes as they commit:
//! registrations (so any node rings any agent, through the `Path` the
//! phone registered by, RFC 3327), the roster (an agent or group added
//! through another node's API) and the block list. The feed
//! ([`crate::store::ChangeFeed`]) names what changed; this reloads it from
//! the store and hands it to its owner. After the listening session was
//! lost (and once at the start, for what changed between the start's load
//! and the first `LISTEN`) everything followed is reloaded.
//!
//! The waits are blocking, so the loop runs on a thread of its own; it
//! stops when its [`Following`] handle is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::registration::Registrations;
use super::roster::RosterAdmin;
use crate::ivr::blacklist::Blacklist;
use crate::store::{SharedChange, Store, StoreError};

/// Who takes the changes heard.
pub struct Owners {
    pub registrations: Registrations,
    pub roster: Arc<RosterAdmin>,
    pub blacklist: Arc<std::sync::RwLock<Blacklist>>,
    /// The roster's steps are async: run on this runtime.
    pub runtime: tokio::runtime::Handle,
    /// Whether the others' changes are heard now (`/metrics`).
    pub cluster: Arc<crate::store::cluster::ClusterStatus>,
}

/// How long one wait for a change lasts before the stop flag is checked.
const WAIT: Duration = Duration::from_secs(1);

/// The following thread; dropping it stops the thread within [`WAIT`].
pub struct Following {
    stop: Arc<AtomicBool>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Follow the other nodes' changes when `store` is shared (`None` for the
/// embedded store). Fails when the listening session cannot be opened.
pub fn spawn(store: Store, owners: Owners) -> Result<Option<Following>, StoreError> {
    let Some(feed) = store.follow()? else {
        return Ok(None);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name("store-follow-apply".into())
        .spawn(move || {
            let mut pending = Some(SharedChange::Resync);
            while !stopped.load(Ordering::Relaxed) {
                owners.cluster.set_following(feed.is_up());
                if let Some(change) = pending.take() {
                    if !apply(&store, &owners, change) {
                        // Reload everything once the store answers again.
                        pending = Some(SharedChange::Resync);
                        std::thread::sleep(WAIT);
                        continue;
                    }
                }
                match feed.next(WAIT) {
                    Ok(next) => pending = next,
                    Err(e) => {
                        warn!(error = %e, "no longer hearing other nodes' changes");
                        return;
                    }
                }
            }
        })
        .map_err(|e| StoreError::Task(format!("cannot start the follower thread: {e}")))?;
    info!("hearing other nodes' registrations, roster and block list");
    Ok(Some(Following { stop }))
}

/// Reload what `change` names and hand it over; `false` when the store
/// did not answer (logged; the caller resyncs once it does).
fn apply(store: &Store, owners: &Owners, change: SharedChange) -> bool {
    match change {
        SharedChange::Registration { aor } => bindings(
            owners,
            || store.load_bindings_of(&aor),
            |mark, b| owners.registrations.adopt(mark, &aor, b),
        ),
        SharedChange::Roster => roster(owners),
        SharedChange::Blacklist { tenant } => blacklist(store, owners, Some(&tenant)),
        SharedChange::Resync => {
            bindings(
                owners,
                || store.load_bindings(),
                |mark, b| owners.registrations.adopt_all(mark, b),
            ) && roster(owners)
                && blacklist(store, owners, None)
        }
    }
}

/// Stored bindings read by `load`, handed to `adopt` with the mark of
/// this node's own changes: they are all in the store before it is read,
/// and any made while it is read are kept over what it says.
fn bindings(
    owners: &Owners,
    load: impl FnOnce() -> Result<Vec<crate::sip::registrar::Binding>, StoreError>,
    adopt: impl FnOnce(u64, Vec<crate::sip::registrar::Binding>),
) -> bool {
    let registrations = owners.registrations.clone();
    let mark = owners
        .runtime
        .block_on(async move { registrations.settled_mark().await });
    match load() {
        Ok(b) => {
            adopt(mark, b);
            true
        }
        Err(e) => {
            warn!(error = %e, "cannot reload the shared registrations");
            false
        }
    }
}

/// The stored roster, taken; `false` only when the store did not answer.
fn roster(owners: &Owners) -> bool {
    let admin = owners.roster.clone();
    match owners
        .runtime
        .block_on(async move { admin.adopt_stored().await })
    {
        Ok(_) => true,
        Err(super::roster::RosterError::Store(e)) => {
            warn!(error = %e, "cannot reload the roster another node changed");
            false
        }
        Err(e) => {
            // It does not fit this node now (e.g. an agent removed there is
            // signed in here): kept as it is; the next change retries.
            warn!(error = %e, "the roster another node changed is refused here");
            true
        }
    }
}

/// The stored block list, taken; `false` when the store did not answer.
fn blacklist(store: &Store, owners: &Owners, tenant: Option<&str>) -> bool {
    match super::stored_blacklist(store) {
        Ok(list) => {
            match owners.blacklist.write() {
                Ok(mut l) => *l = list,
                Err(poisoned) => *poisoned.into_inner() = list,
            }
            if let Some(tenant) = tenant {
                info!(%tenant, "block list changed on another node");
            }
            true
        }
        Err(e) => {
            warn!(error = %e, "cannot reload the block list another node changed");
            false
        }
    }
}
