//! The shared backend: one PostgreSQL database for several nodes
//! (`[store] url = "postgres://…"`, issue 15 §1, docs/ha.md §1).
//!
//! The connection is a [`PgLink`] (its own thread, made again when it
//! breaks; `store::pg`); the schema is brought up to date at connect
//! ([`schema`]), under an advisory lock so nodes that start together
//! migrate once.

use super::changes::{self, ChangeFeed};
use super::pg::listen::listen;
use super::pg::PgLink;
use super::{AcdRows, AcdWrite, Backend, DialogChange, Lease, StoreError};
use crate::ivr::blacklist::Entry;
use crate::roster::seed::{Row, RowChange};
use crate::sip::journal::SavedDialog;
use crate::sip::registrar::{Binding, BindingChange};

mod acd;
mod announce;
mod blacklist;
mod campaigns;
mod flows;
mod lease;
mod legs;
mod registry;
mod roster;
mod schema;

/// A PostgreSQL store: the connection's thread ([`PgLink`]).
pub struct Shared {
    link: PgLink,
    /// This node's id: the owner of the legs it writes, and the author of
    /// the changes it announces.
    node: String,
    /// Where to open the session hearing other nodes' changes.
    url: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("postgres", &self.link.target())
            .finish()
    }
}

impl Shared {
    /// Connect as `node`, migrate, and start the connection's thread.
    pub fn connect(url: &str, node: &str) -> Result<Self, StoreError> {
        Ok(Self {
            link: PgLink::connect(url, "store-postgres", schema::migrate)?,
            node: node.to_string(),
            url: url.to_string(),
        })
    }

    /// Run `f` on the connection and wait for its result.
    fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    {
        Ok(self.link.run(f)?)
    }
}

impl Backend for Shared {
    fn load_bindings(&self) -> Result<Vec<Binding>, StoreError> {
        self.run(registry::load_bindings)
    }
    fn load_bindings_of(&self, aor: &str) -> Result<Vec<Binding>, StoreError> {
        let aor = aor.to_string();
        self.run(move |c| registry::load_bindings_of(c, &aor))
    }
    fn apply_bindings(&self, changes: &[BindingChange]) -> Result<(), StoreError> {
        let (changes, node) = (changes.to_vec(), self.node.clone());
        self.run(move |c| registry::apply_bindings(c, &changes, &node))
    }
    fn meta_insert_or_get(&self, key: &str, value: &[u8]) -> Result<(Vec<u8>, bool), StoreError> {
        let (key, value) = (key.to_string(), value.to_vec());
        self.run(move |c| registry::meta_insert_or_get(c, &key, &value))
    }
    fn load_acd(&self) -> Result<AcdRows, StoreError> {
        self.run(acd::load)
    }
    fn save_acd(&self, writes: &[AcdWrite], fence: Option<i64>) -> Result<(), StoreError> {
        let (writes, node) = (writes.to_vec(), self.node.clone());
        match self.run(move |c| acd::save(c, &writes, fence.map(|e| (node.as_str(), e))))? {
            true => Ok(()),
            false => Err(lease::deposed(&self.node, fence.unwrap_or_default())),
        }
    }
    fn acd_lease(&self, ttl_ms: i64) -> Result<Lease, StoreError> {
        let node = self.node.clone();
        self.run(move |c| lease::take(c, &node, ttl_ms))
    }
    fn release_acd_lease(&self) -> Result<(), StoreError> {
        let node = self.node.clone();
        self.run(move |c| lease::release(c, &node))
    }
    fn call_id_block(&self) -> Result<u64, StoreError> {
        let block = self.run(lease::call_id_block)?;
        Ok(u64::try_from(block).unwrap_or_default())
    }
    fn load_dialogs(&self) -> Result<Vec<SavedDialog>, StoreError> {
        let (target, node) = (self.link.target().to_string(), self.node.clone());
        self.run(move |c| legs::load(c, &target, &node))
    }
    fn apply_dialogs(&self, changes: &[DialogChange]) -> Result<(), StoreError> {
        let (changes, node) = (changes.to_vec(), self.node.clone());
        self.run(move |c| legs::apply(c, &changes, &node))
    }
    fn delete_dialog(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.run(move |c| legs::delete(c, &key))
    }
    fn load_roster(&self) -> Result<Vec<Row>, StoreError> {
        self.run(roster::load)
    }
    fn save_roster(&self, changes: &[RowChange], now: i64) -> Result<(), StoreError> {
        let (changes, node) = (changes.to_vec(), self.node.clone());
        self.run(move |c| roster::save(c, &changes, now, &node))
    }
    fn flow_went_live(
        &self,
        v: &crate::store::FlowVersion,
    ) -> Result<crate::store::Recorded, StoreError> {
        let v = v.clone();
        self.run(move |c| flows::went_live(c, &v))
    }
    fn flow_versions(&self, name: &str) -> Result<Vec<crate::store::FlowVersion>, StoreError> {
        let name = name.to_string();
        self.run(move |c| flows::versions(c, &name))
    }
    fn flow_names(&self) -> Result<Vec<String>, StoreError> {
        self.run(flows::names)
    }
    fn save_campaign(&self, c: &crate::store::CampaignRow) -> Result<(), StoreError> {
        let c = c.clone();
        self.run(move |client| campaigns::save(client, &c))
    }
    fn campaign(&self, id: &str) -> Result<Option<crate::store::CampaignRow>, StoreError> {
        let id = id.to_string();
        self.run(move |client| campaigns::one(client, &id))
    }
    fn active_campaigns(&self) -> Result<Vec<crate::store::CampaignRow>, StoreError> {
        self.run(campaigns::active)
    }
    fn load_blacklist(&self) -> Result<Vec<(String, Entry)>, StoreError> {
        self.run(blacklist::load)
    }
    fn save_blacklist_entry(&self, tenant: &str, e: &Entry) -> Result<(), StoreError> {
        let (tenant, e, node) = (tenant.to_string(), e.clone(), self.node.clone());
        self.run(move |c| blacklist::save(c, &tenant, &e, &node))
    }
    fn delete_blacklist_entry(&self, tenant: &str, number: &str) -> Result<bool, StoreError> {
        let (tenant, number, node) = (tenant.to_string(), number.to_string(), self.node.clone());
        self.run(move |c| blacklist::delete(c, &tenant, &number, &node))
    }
    fn shared(&self) -> bool {
        true
    }
    fn follow(&self) -> Result<Option<ChangeFeed>, StoreError> {
        let listener = listen(&self.url, changes::CHANNEL, "store-follow")?;
        Ok(Some(ChangeFeed::new(listener, &self.node)))
    }
    fn heartbeat(&self, http: &str) -> Result<(), StoreError> {
        let (node, http) = (self.node.clone(), http.to_string());
        self.run(move |c| legs::heartbeat(c, &node, &http))
    }
    fn peers(&self, alive_secs: i32) -> Result<Vec<String>, StoreError> {
        let node = self.node.clone();
        self.run(move |c| legs::peers(c, &node, alive_secs))
    }
    fn take_over_dead(
        &self,
        dead_after_secs: i32,
    ) -> Result<Vec<(String, Vec<SavedDialog>)>, StoreError> {
        let (target, node) = (self.link.target().to_string(), self.node.clone());
        self.run(move |c| legs::take_over_dead(c, &node, dead_after_secs, &target))
    }
    fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.batch_execute("SELECT 1"))
    }
}
