//! What hotline persists, behind one interface with two backends
//! (issue 15 §1, docs/ha.md §1): agent registrations that survive a
//! restart, the block list (`blacklist`), the agents and skill groups
//! (`roster`), the ACD's state (agents' states, pending callbacks, missed
//! calls, previous service, the day's figures), the confirmed SIP legs a
//! crash must not leave up (`dialog_leg`), every accepted IVR flow version
//! (`flow_version`, [`flows`]), the follow-up campaigns (`campaign`,
//! [`campaigns`]), and small key/value facts such as
//! the digest nonce key.
//!
//! - [`embedded`]: SQLite in `[data] dir`/hotline.db, the single-machine
//!   default;
//! - [`postgres`]: one PostgreSQL database shared by several nodes
//!   (`[store] url = "postgres://…"`).
//!
//! Both pass the same suite (`conformance`). Calls are synchronous: the
//! async shells call them on the blocking pool or from writer threads of
//! their own ([`DialogWriter`], the binding writer), never on the hot path.
//!
//! Also [`sqlite`] and [`pg`]: how every SQLite database of hotline is
//! opened and migrated (`hotline.db`, `auth.db`, `events.db`), and every
//! PostgreSQL connection made and schema migrated; both import nothing of
//! the crate so the leaf rooms may use them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ivr::blacklist::Entry;
use crate::roster::seed::{Row, RowChange};
use crate::sip::journal::SavedDialog;
use crate::sip::registrar::{Binding, BindingChange};

mod acd;
pub mod campaigns;
pub mod changes;
pub mod cluster;
#[cfg(test)]
mod conformance;
mod dialogs;
pub mod embedded;
pub mod flows;
pub mod latency;
#[cfg(test)]
mod lease_tests;
pub mod pg;
pub mod postgres;
pub mod sqlite;

pub use acd::{
    AcdAgentRow, AcdCallbackRow, AcdGroupRow, AcdMissedRow, AcdRows, AcdServedRow, AcdWrite,
};
pub use campaigns::CampaignRow;
pub use changes::{ChangeFeed, FeedEnded, SharedChange};
pub use cluster::Lease;
pub use dialogs::{DialogChange, DialogWriter};
pub use flows::{FlowVersion, Recorded};
#[cfg(test)]
pub(crate) use pg::test_db as test_pg;

/// Storage errors, naming the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed, could not be reached, or its URL or schema
    /// version is wrong.
    #[error(transparent)]
    Postgres(#[from] pg::PgError),
    /// The ACD's state was not written: this node no longer holds the
    /// ACD leader's lease (another node took it; docs/ha.md §3).
    #[error("node {node} is no longer the ACD leader (its lease of epoch {epoch} was taken): its ACD writes are refused")]
    Deposed {
        /// This node.
        node: String,
        /// The epoch it held.
        epoch: i64,
    },
    /// Only a shared store (PostgreSQL) does this.
    #[error("{0} needs a shared store ([store] url = \"postgres://…\")")]
    NotShared(&'static str),
    /// A blocking database task did not finish (panicked or cancelled).
    #[error("database task failed: {0}")]
    Task(String),
    /// The data directory cannot be created.
    #[error("{path}: cannot create data directory: {source}")]
    Dir {
        /// Directory.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// What one backend does. Each method is one transaction.
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Every stored binding (expired ones included; the registrar drops them).
    fn load_bindings(&self) -> Result<Vec<Binding>, StoreError>;
    /// The stored bindings of one AOR (expired ones included).
    fn load_bindings_of(&self, aor: &str) -> Result<Vec<Binding>, StoreError>;
    /// Apply registrar changes (a shared store announces them to the
    /// other nodes, `changes`).
    fn apply_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError>;
    /// Insert `value` under `key` unless a value is there: the stored value,
    /// and whether it is `value` inserted now. Atomic across nodes.
    fn meta_insert_or_get(&self, key: &str, value: &[u8]) -> Result<(Vec<u8>, bool), StoreError>;
    /// Everything the ACD stored.
    fn load_acd(&self) -> Result<AcdRows, StoreError>;
    /// Apply ACD writes in order; with a fence, only while this node
    /// holds the ACD lease at that epoch.
    fn save_acd(&self, writes: &[AcdWrite], fence: Option<i64>) -> Result<(), StoreError>;
    /// Take or renew the ACD leader's lease; who holds it.
    fn acd_lease(&self, ttl_ms: i64) -> Result<Lease, StoreError>;
    /// Give the ACD leader's lease up if this node holds it.
    fn release_acd_lease(&self) -> Result<(), StoreError>;
    /// A fresh block of call ids.
    fn call_id_block(&self) -> Result<u64, StoreError>;
    /// Every stored leg; unreadable rows are reported and skipped.
    fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError>;
    /// Saves and removals of legs, in order.
    fn apply_dialogs(&self, changes: &[DialogChange]) -> Result<(), StoreError>;
    /// Remove one leg; whether it was there.
    fn delete_dialog(&self, key: &str) -> Result<bool, StoreError>;
    /// Every roster row, tombstones included, in (kind, key) order.
    fn load_roster(&self) -> Result<Vec<Row>, StoreError>;
    /// Write roster changes, stamped `now` (Unix seconds).
    fn save_roster(&self, changes: &[RowChange], now: i64) -> Result<(), StoreError>;
    /// Every block-list entry: (tenant, entry), in (tenant, number) order.
    fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError>;
    /// Add or replace an entry.
    fn save_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<(), StoreError>;
    /// Remove an entry; whether it was there.
    fn delete_blacklist_entry(&self, tenant: &str, number: &str) -> Result<bool, StoreError>;
    /// A trivial query: is the database there and answering?
    /// A flow version went live (`flows`).
    fn flow_went_live(&self, v: &FlowVersion) -> Result<Recorded, StoreError>;
    /// A flow's stored versions, first accepted first.
    fn flow_versions(&self, name: &str) -> Result<Vec<FlowVersion>, StoreError>;
    /// Names of the flows with stored versions.
    fn flow_names(&self) -> Result<Vec<String>, StoreError>;
    /// Add or replace a follow-up campaign (`campaigns`).
    fn save_campaign(&self, c: &CampaignRow) -> Result<(), StoreError>;
    /// One campaign by id.
    fn campaign(&self, id: &str) -> Result<Option<CampaignRow>, StoreError>;
    /// The campaigns still dialling, oldest first.
    fn active_campaigns(&self) -> Result<Vec<CampaignRow>, StoreError>;
    fn ping(&self) -> Result<(), StoreError>;
    /// Whether several nodes share this store.
    fn shared(&self) -> bool;
    /// Other nodes' changes (shared stores; `None` for the embedded one).
    fn follow(&self) -> Result<Option<ChangeFeed>, StoreError>;
    /// Note that this node is alive, reachable over HTTP at `http`
    /// (shared stores).
    fn heartbeat(&self, http: &str) -> Result<(), StoreError>;
    /// The HTTP base URLs of the other nodes alive within `alive_secs`.
    fn peers(&self, alive_secs: i32) -> Result<Vec<String>, StoreError>;
    /// Take the legs of nodes not seen for `dead_after_secs`: by the node
    /// that left them (shared stores; none for the embedded one).
    fn take_over_dead(
        &self,
        dead_after_secs: i32,
    ) -> Result<Vec<(String, Vec<SavedDialog>)>, StoreError>;
}

/// The store: a cheap handle on one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.backend.fmt(f)
    }
}

impl Store {
    /// Open (creating) the embedded store, `dir/hotline.db`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Arc::new(embedded::Embedded::open(dir)?),
        })
    }

    /// Connect to a shared PostgreSQL store as the node `node` (whose live
    /// legs are its own) and bring its schema up to date; fails if the
    /// server cannot be reached now.
    pub fn connect(url: &str, node: &str) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Arc::new(postgres::Shared::connect(url, node)?),
        })
    }

    /// The store `[store]` and `[data]` name: PostgreSQL when a URL is
    /// set (as `node`), else the embedded database in the data directory.
    pub fn configured(url: Option<&str>, node: &str, dir: &Path) -> Result<Self, StoreError> {
        match url {
            Some(url) => Self::connect(url, node),
            None => Self::open(dir),
        }
    }

    /// Whether several nodes share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.backend.shared()
    }

    /// Note that this node is alive (a shared store's `node` row), its
    /// HTTP API at `http` (`Config::node_http_url`).
    pub fn heartbeat(&self, http: &str) -> Result<(), StoreError> {
        latency::timed(|| self.backend.heartbeat(http))
    }

    /// The HTTP base URLs of the other nodes sharing the store that beat
    /// within `alive_secs` (none for the embedded store). Blocks.
    pub fn peers(&self, alive_secs: i32) -> Result<Vec<String>, StoreError> {
        latency::timed(|| self.backend.peers(alive_secs))
    }

    /// Take over the live legs of the nodes not seen for
    /// `dead_after_secs` (docs/ha.md §4): by the node that left them. Two
    /// survivors never get the same legs.
    pub fn take_over_dead(
        &self,
        dead_after_secs: i32,
    ) -> Result<Vec<(String, Vec<SavedDialog>)>, StoreError> {
        latency::timed(|| self.backend.take_over_dead(dead_after_secs))
    }

    /// Every stored binding (expired ones included; the registrar drops them).
    pub fn load_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        latency::timed(|| self.backend.load_bindings())
    }

    /// The stored bindings of one AOR: another node changed them.
    pub fn load_bindings_of(&self, aor: &str) -> Result<Vec<Binding>, StoreError> {
        latency::timed(|| self.backend.load_bindings_of(aor))
    }

    /// Other nodes' changes as they commit, on a session of its own
    /// (`None` when no other node shares the store).
    pub fn follow(&self) -> Result<Option<ChangeFeed>, StoreError> {
        self.backend.follow()
    }

    /// Apply registrar changes in one transaction.
    pub fn apply(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        latency::timed(|| self.backend.apply_bindings(changes))
    }

    /// A stored value, or `make()`'s, stored for next time. When two
    /// nodes race, both get the value stored first.
    pub fn meta_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let value = make();
        Ok(latency::timed(|| self.backend.meta_insert_or_get(key, &value))?.0)
    }

    /// Everything the ACD stored.
    pub fn load_acd(&self) -> Result<AcdRows, StoreError> {
        latency::timed(|| self.backend.load_acd())
    }

    /// Apply `writes` in order, in one transaction.
    pub fn save_acd(&self, writes: &[AcdWrite]) -> Result<(), StoreError> {
        self.save_acd_fenced(writes, None)
    }

    /// [`Self::save_acd`] by the ACD leader that took the lease at
    /// `epoch` (`Some`): refused with [`StoreError::Deposed`], nothing
    /// written, once another node holds it (docs/ha.md §3, fencing).
    pub fn save_acd_fenced(
        &self,
        writes: &[AcdWrite],
        epoch: Option<i64>,
    ) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        latency::timed(|| self.backend.save_acd(writes, epoch))
    }

    /// Take the ACD leader's lease for `ttl_ms` if it is free or expired,
    /// or renew it if this node holds it; then who holds it (shared
    /// stores; the embedded one has no other node to lead).
    pub fn acd_lease(&self, ttl_ms: i64) -> Result<Lease, StoreError> {
        latency::timed(|| self.backend.acd_lease(ttl_ms))
    }

    /// Give the ACD leader's lease up now, if this node holds it (a
    /// draining node: the next leader need not wait for it to expire).
    pub fn release_acd_lease(&self) -> Result<(), StoreError> {
        latency::timed(|| self.backend.release_acd_lease())
    }

    /// A block of call ids of its own for this run of the node (shared
    /// stores): ids `block << 32 | n`.
    pub fn call_id_block(&self) -> Result<u64, StoreError> {
        latency::timed(|| self.backend.call_id_block())
    }

    /// Every stored leg. A row that cannot be read back (an unknown role,
    /// a route set that is not a JSON list) is reported and skipped.
    pub fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError> {
        latency::timed(|| self.backend.load_dialogs())
    }

    /// Insert or replace one leg.
    pub fn save_dialog(&self, d: &SavedDialog) -> Result<(), StoreError> {
        latency::timed(|| self.backend.apply_dialogs(&[DialogChange::Save(d.clone())]))
    }

    /// Saves and removals in one transaction.
    pub fn apply_dialogs(&self, changes: &[DialogChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        latency::timed(|| self.backend.apply_dialogs(changes))
    }

    /// Remove one leg; whether it was there.
    pub fn delete_dialog(&self, key: &str) -> Result<bool, StoreError> {
        latency::timed(|| self.backend.delete_dialog(key))
    }

    /// Every stored roster row, tombstones included, in (kind, key) order.
    pub fn load_roster(&self) -> Result<Vec<Row>, StoreError> {
        latency::timed(|| self.backend.load_roster())
    }

    /// Write `changes` in one transaction.
    pub fn save_roster(&self, changes: &[RowChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        latency::timed(|| {
            self.backend
                .save_roster(changes, crate::util::unix_now() as i64)
        })
    }

    /// Every stored block-list entry: (tenant, entry).
    pub fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError> {
        latency::timed(|| self.backend.load_blacklist())
    }

    /// Add or replace an entry (its number already normalised).
    pub fn save_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<(), StoreError> {
        latency::timed(|| self.backend.save_blacklist_entry(tenant, e))
    }

    /// Remove an entry; whether it was there.
    pub fn delete_blacklist_entry(&self, tenant: &str, number: &str) -> Result<bool, StoreError> {
        latency::timed(|| self.backend.delete_blacklist_entry(tenant, number))
    }

    /// Whether the database answers a trivial query now (readiness,
    /// docs/ha.md §6). Blocks: call it on the blocking pool.
    pub fn ping(&self) -> Result<(), StoreError> {
        latency::timed(|| self.backend.ping())
    }

    /// Write a configuration seed unless it was written before (even if an
    /// admin removed it since; a `meta` row remembers each seed). Returns
    /// whether it was written now.
    pub fn seed_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<bool, StoreError> {
        let key = format!("blacklist-seed:{tenant}:{}", e.number);
        let (_, fresh) = latency::timed(|| self.backend.meta_insert_or_get(&key, &[]))?;
        if fresh {
            self.save_blacklist_entry(tenant, e)?;
        }
        Ok(fresh)
    }
}

/// A binding's `Path` as stored: one URI per line (a header value never
/// holds a line break).
pub(crate) fn path_to_text(path: &[String]) -> String {
    path.join("\n")
}

/// [`path_to_text`] read back.
pub(crate) fn path_from_text(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
