//! Changing agents and skill groups while calls are up, and reloading the
//! configuration file (CTI issue §6 "Admin"): the shell around the pure
//! merge rules of [`crate::roster::seed`].
//!
//! A change — an admin's edit through the API or a reload of
//! `hotline.toml` — goes through the same steps, one change at a time:
//! 1. the rows it leads to are turned into the configuration in force (the
//!    file's settings with the stored agents and groups) and checked with
//!    the same validation as the file at start (tenants, DIDs and skills
//!    that name them, credentials);
//! 2. the IVR flows must still find every group and agent they name;
//! 3. the ACD takes the new agents and groups without dropping a call
//!    ([`crate::acd::Engine::reconfigure`] refuses to remove a signed-in
//!    agent or a group with calls, and then nothing changes);
//! 4. the rows are committed to `hotline.db` in one transaction;
//! 5. the new [`Roster`] is swapped in, the registrar gets the new
//!    credentials (a deleted agent's phone loses its registration), and on
//!    a reload the IVR is loaded again.
//!
//! Parts of the file that cannot change under a running switch (listen
//! addresses, media ports, trunks, DIDs, …) are reported as needing a
//! restart instead of being half-applied.

use std::sync::Arc;

use tracing::{info, warn};

use crate::acd;
use crate::call::queue::Queues;
use crate::config::Config;
use crate::roster::seed::{self, FileEntry, Kind, Origin, Row, RowChange};
use crate::roster::{LiveRoster, Roster};
use crate::store::{Store, StoreError};
use crate::util::Live;

use super::ivr::IvrRuntime;
use super::registration::Registrations;

/// Top-level sections of `hotline.toml` a reload applies; an edit anywhere
/// else is reported as needing a restart.
const RELOADABLE: &[&str] = &["agent", "group", "ivr", "quick_transfer"];

pub use crate::roster::change::{Edit, ReloadReport, RosterError};

impl From<StoreError> for RosterError {
    fn from(e: StoreError) -> Self {
        RosterError::Store(Box::new(e))
    }
}

/// The configuration at start: the file with the stored roster applied.
pub struct Boot {
    /// What every part of the switch starts from.
    pub config: Config,
    rows: Vec<Row>,
}

/// The file's `[[agent]]` and `[[group]]` entries as canonical JSON.
fn file_entries(file: &Config) -> Vec<FileEntry> {
    let agents = file.agents.iter().map(|a| FileEntry {
        kind: Kind::Agent,
        key: a.user.clone(),
        body: serde_json::to_string(a).unwrap_or_default(),
    });
    let groups = file.groups.iter().map(|g| FileEntry {
        kind: Kind::Group,
        key: g.id.clone(),
        body: serde_json::to_string(g).unwrap_or_default(),
    });
    agents.chain(groups).collect()
}

/// `file` with the agents and groups of `rows`, validated.
fn in_force(file: &Config, rows: &[Row]) -> Result<Config, RosterError> {
    let mut config = file.clone();
    config.agents.clear();
    config.groups.clear();
    for r in rows {
        let Some(body) = &r.body else { continue };
        let corrupt = |e: serde_json::Error| RosterError::Corrupt {
            kind: r.kind.as_str(),
            key: r.key.clone(),
            error: e.to_string(),
        };
        match r.kind {
            Kind::Agent => config
                .agents
                .push(serde_json::from_str(body).map_err(corrupt)?),
            Kind::Group => config
                .groups
                .push(serde_json::from_str(body).map_err(corrupt)?),
        }
    }
    config.check().map_err(|problems| {
        // Name what an admin deleted through the API: a reference to it
        // in the file is the likely cause.
        let deleted: Vec<String> = rows
            .iter()
            .filter(|r| r.body.is_none())
            .map(|r| format!("{} {:?}", r.kind.as_str(), r.key))
            .collect();
        let mut problems = problems;
        if !deleted.is_empty() {
            problems.push(format!(
                "deleted through the API (re-create them or remove the references): {}",
                deleted.join(", ")
            ));
        }
        RosterError::Invalid(problems)
    })?;
    Ok(config)
}

/// Merge the file's seeds into the stored roster and build the
/// configuration every part starts from. Logs what the merge did.
pub fn boot(file: &Config, store: &Store) -> Result<Boot, RosterError> {
    let stored = store.load_roster()?;
    let merge = seed::merge(&stored, &file_entries(file));
    let rows = seed::apply(&stored, &merge.changes);
    let config = in_force(file, &rows)?;
    store.save_roster(&merge.changes)?;
    for note in &merge.notes {
        info!("roster: {note}");
    }
    Ok(Boot { config, rows })
}

/// The ACD's configuration from the configuration in force.
pub fn acd_config(config: &Config) -> acd::AcdConfig {
    use crate::config::{NextStep as N, StrategyName as S};
    use std::time::Duration;
    let step = |n: &N| match n {
        N::Voicemail => acd::NextStep::Voicemail,
        N::Callback => acd::NextStep::Callback,
        N::Hangup => acd::NextStep::Hangup,
        N::Group(g) => acd::NextStep::Group(g.clone()),
    };
    acd::AcdConfig {
        groups: config
            .groups
            .iter()
            .map(|g| acd::GroupConfig {
                id: g.id.clone(),
                name: g.name.clone(),
                tenant: g.tenant.clone(),
                strategy: match g.strategy {
                    S::LongestIdle => acd::Strategy::LongestIdle,
                    S::FewestCalls => acd::Strategy::FewestCalls,
                    S::SkillWeighted => acd::Strategy::SkillWeighted,
                    S::RoundRobin => acd::Strategy::RoundRobin,
                    S::RingAll => acd::Strategy::RingAll,
                },
                ring_timeout: Duration::from_secs(g.ring_timeout_secs),
                acw: Duration::from_secs(g.acw_secs),
                max_queue: g.max_queue,
                max_wait: Duration::from_secs(g.max_wait_secs),
                on_max_wait: step(&g.on_timeout),
                overflow_after: match (g.overflow_after_secs, &g.overflow_to) {
                    (Some(secs), Some(to)) => Some((Duration::from_secs(secs), to.clone())),
                    _ => None,
                },
                announce_every: g.announce_every_secs.map(Duration::from_secs),
                priority_boost: g
                    .priority_boost
                    .iter()
                    .map(|(secs, p)| (Duration::from_secs(*secs), *p))
                    .collect(),
            })
            .collect(),
        agents: config
            .agents
            .iter()
            .map(|a| acd::AgentConfig {
                id: crate::roster::agent_id(a).to_string(),
                name: a.name.clone().unwrap_or_else(|| a.user.clone()),
                tenant: a.tenant.clone(),
                device: a.user.clone(),
                skills: a.skills.iter().map(|(g, l)| (g.clone(), *l)).collect(),
            })
            .collect(),
        not_ready_reasons: config.acd.not_ready_reasons.clone(),
        previous_service: config.acd.previous_service.as_ref().map(|p| {
            acd::PreviousServiceConfig {
                within: Duration::from_secs(u64::from(p.within_days) * 86_400),
                ring_for: Duration::from_secs(p.wait_secs),
            }
        }),
        callback: acd::CallbackPolicy {
            max_attempts: config.acd.callback.max_attempts,
            retry_interval: Duration::from_secs(config.acd.callback.retry_secs),
        },
    }
}

/// The agents and groups in force, and the one way to change them.
pub struct RosterAdmin {
    store: Store,
    /// The configuration file as last read (its entries are the seeds).
    file: Live<Config>,
    /// The file's text at start: what the parts a reload cannot change
    /// still run on.
    started_with: Option<String>,
    /// The file with the stored roster: what everything runs on.
    config: Arc<Live<Config>>,
    roster: Arc<LiveRoster>,
    rows: tokio::sync::Mutex<Vec<Row>>,
    queues: Queues,
    registrations: Registrations,
    ivr: Arc<IvrRuntime>,
    /// The prompts loaded at start (queue media needs them).
    prompts_loaded: &'static [&'static str],
}

impl RosterAdmin {
    /// Take over from `boot`.
    pub fn new(
        boot: Boot,
        file: Config,
        store: Store,
        queues: Queues,
        registrations: Registrations,
        ivr: Arc<IvrRuntime>,
        prompts_loaded: &'static [&'static str],
    ) -> Self {
        let roster = Roster::new(boot.config.agents.clone(), boot.config.groups.clone());
        Self {
            store,
            started_with: file.source_text.clone(),
            file: Live::new(file),
            config: Arc::new(Live::new(boot.config)),
            roster: Arc::new(LiveRoster::new(roster)),
            rows: tokio::sync::Mutex::new(boot.rows),
            queues,
            registrations,
            ivr,
            prompts_loaded,
        }
    }

    /// The roster in force (shared with the call room and the API).
    pub fn roster(&self) -> Arc<LiveRoster> {
        self.roster.clone()
    }

    /// The configuration in force (shared with the IVR's file watch).
    pub fn config(&self) -> Arc<Live<Config>> {
        self.config.clone()
    }

    /// Who owns each live entry of `kind`, by key (SIP user or group id).
    pub async fn origins(&self, kind: Kind) -> std::collections::HashMap<String, Origin> {
        self.rows
            .lock()
            .await
            .iter()
            .filter(|r| r.kind == kind && r.body.is_some())
            .map(|r| (r.key.clone(), r.origin))
            .collect()
    }

    /// The IVR runtime (flows and their problems, for the reload answer).
    pub fn ivr(&self) -> Arc<IvrRuntime> {
        self.ivr.clone()
    }

    /// Apply one admin edit.
    pub async fn edit(&self, edit: Edit) -> Result<acd::Reconfigured, RosterError> {
        let mut rows = self.rows.lock().await;
        let (kind, key, body) = match &edit {
            Edit::PutAgent(a) => (Kind::Agent, a.user.clone(), Some(to_json(a)?)),
            Edit::DeleteAgent(user) => (Kind::Agent, user.clone(), None),
            Edit::PutGroup(g) => (Kind::Group, g.id.clone(), Some(to_json(g)?)),
            Edit::DeleteGroup(id) => (Kind::Group, id.clone(), None),
        };
        let old = rows.iter().find(|r| r.kind == kind && r.key == key);
        let change = match (old, body) {
            // Deleting what was only ever created through the API leaves
            // nothing behind; a seeded entry leaves a tombstone.
            (Some(r), None) if r.seed.is_none() => RowChange::Remove(kind, key),
            (old, body) => RowChange::Put(Row {
                kind,
                key,
                body,
                origin: Origin::Api,
                seed: old.and_then(|r| r.seed.clone()),
            }),
        };
        let file = self.file.load();
        self.commit(&mut rows, vec![change], &file).await
    }

    /// Read the configuration file again and apply what can change while
    /// running: agents and groups (by the merge rules), the IVR flows and
    /// the one-click transfer targets' file. Everything else is listed as
    /// needing a restart.
    pub async fn reload(&self) -> Result<ReloadReport, RosterError> {
        let old = self.file.load();
        let (new, source) = if old.embedded {
            (
                Config::embedded_default().map_err(|e| RosterError::File(e.to_string()))?,
                "embedded".to_string(),
            )
        } else {
            let path = old.source_path.clone();
            let new = tokio::task::spawn_blocking(move || Config::load(&path))
                .await
                .map_err(|e| RosterError::File(e.to_string()))?
                .map_err(|e| RosterError::File(e.to_string()))?;
            (new, old.source_path.display().to_string())
        };
        let restart_needed = sections_changed(self.started_with.as_deref(), &new);
        let mut rows = self.rows.lock().await;
        let merge = seed::merge(&rows, &file_entries(&new));
        let roster = self.commit(&mut rows, merge.changes, &new).await?;
        self.file.replace(new);
        drop(rows);
        let (ivr, config) = (self.ivr.clone(), self.config.load());
        let ivr_ok = tokio::task::spawn_blocking(move || ivr.reload(&config))
            .await
            .unwrap_or(false);
        for note in &merge.notes {
            info!("reload: {note}");
        }
        if !restart_needed.is_empty() {
            warn!(sections = ?restart_needed, "reload: these sections changed and need a restart");
        }
        Ok(ReloadReport {
            source,
            roster,
            notes: merge.notes,
            ivr_ok,
            restart_needed,
        })
    }

    /// Steps 1–5 of the module docs for `changes` on top of `rows`.
    async fn commit(
        &self,
        rows: &mut Vec<Row>,
        changes: Vec<RowChange>,
        file: &Config,
    ) -> Result<acd::Reconfigured, RosterError> {
        let next_rows = seed::apply(rows, &changes);
        let next = in_force(file, &next_rows)?;
        let missing: Vec<&str> = next
            .required_prompts()
            .iter()
            .filter(|p| !self.prompts_loaded.contains(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(RosterError::Invalid(vec![format!(
                "queue_media needs the prompts {missing:?}, which are loaded at start only: restart hotline after adding the first group with queue_media"
            )]));
        }
        let before = self.config.load();
        self.flows_still_valid(&before, &next).await?;
        let report = self
            .queues
            .reconfigure(acd_config(&next))
            .await
            .map_err(RosterError::InUse)?;
        let store = self.store.clone();
        let saved = tokio::task::spawn_blocking(move || store.save_roster(&changes)).await;
        let saved = match saved {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string())),
        };
        if let Err(e) = saved {
            // Put the ACD back as it was; the store is unchanged.
            if let Err(undo) = self.queues.reconfigure(acd_config(&before)).await {
                warn!(error = %undo, "cannot put the ACD back after a failed roster commit");
            }
            return Err(e.into());
        }
        *rows = next_rows;
        self.swap_in(next, &report, "roster changed").await;
        Ok(report)
    }

    /// Step 5: the roster, the registrar's credentials and the
    /// configuration in force become `next`.
    async fn swap_in(&self, next: Config, report: &acd::Reconfigured, what: &str) {
        self.roster
            .replace(Roster::new(next.agents.clone(), next.groups.clone()));
        self.registrations.set_agents(&next.agents).await;
        self.config.replace(next);
        info!(
            added = ?(&report.agents_added, &report.groups_added),
            changed = ?(&report.agents_changed, &report.groups_changed),
            removed = ?(&report.agents_removed, &report.groups_removed),
            "{what}"
        );
    }

    /// Another node changed the stored roster (docs/ha.md §1): the rows
    /// as stored are taken with an edit's steps but the write (that node
    /// checked the flows and wrote them). `None` when nothing differs; an
    /// error, and nothing changed here, when they do not fit this node
    /// (the ACD here still has a removed agent signed in).
    pub async fn adopt_stored(&self) -> Result<Option<acd::Reconfigured>, RosterError> {
        let store = self.store.clone();
        let stored = match tokio::task::spawn_blocking(move || store.load_roster()).await {
            Ok(r) => r?,
            Err(e) => return Err(StoreError::Task(e.to_string()).into()),
        };
        let mut rows = self.rows.lock().await;
        if *rows == stored {
            return Ok(None);
        }
        let file = self.file.load();
        let next = in_force(&file, &stored)?;
        let report = self
            .queues
            .reconfigure(acd_config(&next))
            .await
            .map_err(RosterError::InUse)?;
        *rows = stored;
        self.swap_in(next, &report, "roster changed on another node")
            .await;
        Ok(Some(report))
    }

    /// The flows must still find every group and agent they name. Problems
    /// the flows already had (an edit being made on disk) are not this
    /// change's fault and do not block it.
    async fn flows_still_valid(
        &self,
        before: &Arc<Config>,
        next: &Config,
    ) -> Result<(), RosterError> {
        let blacklist = self.ivr.blacklist.clone();
        let (before, next) = (before.clone(), Arc::new(next.clone()));
        let problems = tokio::task::spawn_blocking(move || {
            let now = super::ivr::load(&next, blacklist.clone()).err()?;
            let was = super::ivr::load(&before, blacklist)
                .err()
                .unwrap_or_default();
            let new: Vec<String> = now.into_iter().filter(|p| !was.contains(p)).collect();
            (!new.is_empty()).then_some(new)
        })
        .await
        .ok()
        .flatten();
        match problems {
            Some(p) => Err(RosterError::Invalid(p)),
            None => Ok(()),
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, RosterError> {
    serde_json::to_string(v).map_err(|e| RosterError::Invalid(vec![e.to_string()]))
}

/// Top-level sections that differ between the file at start and `new`,
/// except those a reload applies.
fn sections_changed(started_with: Option<&str>, new: &Config) -> Vec<String> {
    let (Some(a), Some(b)) = (started_with, new.source_text.as_deref()) else {
        return Vec::new();
    };
    let parse = |t: &str| t.parse::<toml::Table>().unwrap_or_default();
    let (a, b) = (parse(a), parse(b));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !RELOADABLE.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}
