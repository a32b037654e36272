//! Loading the IVR and keeping it current (IVR issue §4, §5): flow files,
//! calendars, the caller-area table, the prompts and the block list become
//! one immutable [`IvrSnapshot`]; every check interval the files'
//! modification times and sizes are compared (flows, calendars, areas and
//! `sounds/`), and an edit is loaded and validated in full. Only a
//! valid set goes live (for new calls: a call keeps the snapshot it started
//! on); an invalid edit keeps the previous set live, is logged once per
//! edit at error level, and is shown on `GET /healthz` until fixed.
//!
//! The runtime also keeps the calendars to tell when a holiday calendar a
//! schedule includes has run out ([`crate::ivr::coverage`]): each gap is
//! logged once at warning level (at start, after a reload, or when the
//! date moves into a gap) and listed under `warnings` on `GET /healthz`.
//!
//! Every flow set that goes live (at start and after each valid reload)
//! is written to the store's flow history (issue 18 §4,
//! [`super::flow_history`]).
//!
//! Polling instead of inotify: a handful of small files, checked every two
//! seconds, costs nothing, works on every file system (NFS, bind mounts,
//! editors that replace files by rename) and needs no extra crate.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::call::flow::IvrSnapshot;
use crate::config::Config;
use crate::ivr::area::AreaTable;
use crate::ivr::blacklist::{Blacklist, Entry};
use crate::ivr::calendar::Calendars;
use crate::ivr::{Catalog, Environment, FlowSet};
use crate::media::prompts::{PromptLibrary, EXTENSIONS};
use crate::time::Time;

/// What the flows may name, from `hotline.toml` and the calendars.
pub struct ConfigCatalog {
    groups: HashSet<String>,
    trunks: HashSet<String>,
    agents: HashSet<String>,
    schedules: HashSet<String>,
    sounds_dir: PathBuf,
}

impl ConfigCatalog {
    /// The catalog for `config` with the loaded `calendars`.
    pub fn new(config: &Config, calendars: &Calendars) -> Self {
        Self {
            groups: config.groups.iter().map(|g| g.id.clone()).collect(),
            trunks: config.trunks.iter().map(|t| t.name.clone()).collect(),
            agents: config.agents.iter().map(|a| a.user.clone()).collect(),
            schedules: calendars.names().map(str::to_string).collect(),
            sounds_dir: config.media.sounds_dir.clone(),
        }
    }
}

impl Catalog for ConfigCatalog {
    fn has_prompt(&self, name: &str) -> bool {
        EXTENSIONS
            .iter()
            .any(|ext| self.sounds_dir.join(format!("{name}.{ext}")).is_file())
    }
    fn has_group(&self, id: &str) -> bool {
        self.groups.contains(id)
    }
    fn has_trunk(&self, name: &str) -> bool {
        self.trunks.contains(name)
    }
    fn has_schedule(&self, name: &str) -> bool {
        self.schedules.contains(name)
    }
    fn has_agent(&self, user: &str) -> bool {
        self.agents.contains(user)
    }
}

/// What the interpreter consults: calendars, areas, the block list.
pub struct IvrEnv {
    calendars: Calendars,
    areas: Option<AreaTable>,
    blacklist: Arc<RwLock<Blacklist>>,
    utc_offset_minutes: i32,
}

impl Environment for IvrEnv {
    fn is_open(&self, schedule: &str, at: Time) -> bool {
        let unix_secs = i64::try_from(at.unix_secs()).unwrap_or(i64::MAX);
        self.calendars.is_open(schedule, unix_secs).unwrap_or(false)
    }
    fn area_of(&self, caller: &str) -> Option<(String, String)> {
        let a = self.areas.as_ref()?.lookup(caller)?;
        Some((a.code.to_string(), a.region.to_string()))
    }
    fn is_blocked(&self, tenant: &str, caller: &str) -> bool {
        let now = i64::try_from(crate::util::unix_now()).unwrap_or(i64::MAX);
        let Ok(list) = self.blacklist.read() else {
            return false;
        };
        match list.is_blocked(tenant, caller, now) {
            Some(entry) => {
                info!(%caller, entry = %entry.number, reason = %entry.reason, "block list match");
                true
            }
            None => false,
        }
    }
    fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }
}

/// The flow files in `dir` (`*.toml`), sorted; none when it is absent.
pub fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Load the calendars (an absent calendars directory means none).
pub fn load_calendars(config: &Config) -> Result<Calendars, Vec<String>> {
    let dir = &config.ivr.calendars_dir;
    if !dir.is_dir() {
        return Calendars::new(Vec::new(), Vec::new()).map_err(strings);
    }
    Calendars::load_dir(dir).map_err(strings)
}

fn strings<E: ToString>(errors: Vec<E>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Load and validate everything the IVR needs; every problem at once.
pub fn load(
    config: &Config,
    blacklist: Arc<RwLock<Blacklist>>,
) -> Result<Option<IvrSnapshot>, Vec<String>> {
    let files = flow_files(&config.ivr.flows_dir);
    if files.is_empty() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let calendars = match load_calendars(config) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.extend(e);
            None
        }
    };
    let areas = if config.ivr.areas.is_file() {
        match AreaTable::load(&config.ivr.areas) {
            Ok(a) => Some(a),
            Err(e) => {
                problems.extend(strings(e));
                None
            }
        }
    } else {
        None
    };
    let calendars = match calendars {
        Some(c) => c,
        None => return Err(problems),
    };
    let catalog = ConfigCatalog::new(config, &calendars);
    let flows = match FlowSet::load(&files, &catalog) {
        Ok(f) => Some(f),
        Err(e) => {
            problems.extend(strings(e));
            None
        }
    };
    // A DID both in hotline.toml and claimed by a flow is ambiguous.
    if let Some(f) = &flows {
        for did in &config.dids {
            if let Some(flow) = f.for_did(&did.number) {
                problems.push(format!(
                    "{}: DID \"{}\" is routed by both [[did]] in {} and this flow; remove one",
                    flow.path.display(),
                    did.number,
                    config.source_path.display()
                ));
            }
        }
    }
    let Some(flows) = flows.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    let names: Vec<String> = flows
        .flows()
        .flat_map(|f| f.nodes.values().flat_map(|n| n.kind.prompts()))
        .map(|(_, name)| name.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let prompts = PromptLibrary::load(&config.media.sounds_dir, &refs).map_err(strings)?;
    let voicemail_dir = config.ivr.voicemail_dir(&config.data.dir);
    Ok(Some(IvrSnapshot {
        flows: Arc::new(flows),
        prompts: Arc::new(prompts),
        env: Arc::new(IvrEnv {
            calendars,
            areas,
            blacklist,
            utc_offset_minutes: config.recording.utc_offset_minutes,
        }),
        voicemail_dir,
        // The key read at start, set by the runtime (see `IvrRuntime::new`).
        voicemail_seal: None,
        utc_offset_minutes: config.recording.utc_offset_minutes,
    }))
}

/// The block list seeded from `[[blacklist]]`.
pub fn seed_blacklist(config: &Config) -> Result<Blacklist, Vec<String>> {
    let mut list = Blacklist::new();
    let mut errors = Vec::new();
    for (i, seed) in config.blacklist.iter().enumerate() {
        let entry = Entry {
            number: seed.number.clone(),
            reason: seed.reason.clone(),
            added_by: "hotline.toml".into(),
            expires_at: None,
        };
        if let Err(e) = list.insert(&seed.tenant, entry) {
            errors.push(format!(
                "{}: blacklist[{i}]: {e}",
                config.source_path.display()
            ));
        }
    }
    if errors.is_empty() {
        Ok(list)
    } else {
        Err(errors)
    }
}

/// (path, modified, length) of every file the IVR reads.
fn fingerprint(config: &Config) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let mut files = flow_files(&config.ivr.flows_dir);
    for sub in ["schedules", "holidays"] {
        files.extend(flow_files(&config.ivr.calendars_dir.join(sub)));
    }
    files.push(config.ivr.areas.clone());
    // Prompts too: a re-recorded greeting goes live like a flow edit.
    if let Ok(entries) = std::fs::read_dir(&config.media.sounds_dir) {
        let mut sounds: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        sounds.sort();
        files.extend(sounds);
    }
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p, modified, len)
        })
        .collect()
}

/// The live IVR: the current snapshot and the last reload's problems.
pub struct IvrRuntime {
    current: RwLock<Option<Arc<IvrSnapshot>>>,
    problems: RwLock<Vec<String>>,
    /// The block list (shared by every snapshot).
    pub blacklist: Arc<RwLock<Blacklist>>,
    reloads: std::sync::atomic::AtomicU64,
    /// The calendars on disk (also without flows), for coverage warnings.
    calendars: RwLock<Option<Arc<Calendars>>>,
    /// The coverage warnings logged last (each is logged once).
    logged_warnings: Mutex<Vec<String>>,
    /// The key voicemails are sealed with (issue 14 §6): read once at
    /// start, like the recordings' and the API's, so a reload never seals
    /// with a key the API cannot open.
    voicemail_seal: Option<crate::media::at_rest::SealingKey>,
    /// Where every accepted flow version is kept (issue 18 §4; none in
    /// tests that need no history).
    history: Option<crate::store::Store>,
}

impl IvrRuntime {
    /// A runtime serving `snapshot`, with `config`'s calendars checked for
    /// coverage (gaps logged now); voicemails sealed with `voicemail_seal`
    /// (this and every reloaded snapshot).
    pub fn new(
        snapshot: Option<IvrSnapshot>,
        blacklist: Arc<RwLock<Blacklist>>,
        config: &Config,
        voicemail_seal: Option<crate::media::at_rest::SealingKey>,
    ) -> Self {
        let snapshot = snapshot.map(|mut s| {
            s.voicemail_seal = voicemail_seal.clone();
            s
        });
        let rt = Self {
            voicemail_seal,
            current: RwLock::new(snapshot.map(Arc::new)),
            problems: RwLock::new(Vec::new()),
            blacklist,
            reloads: Default::default(),
            calendars: RwLock::new(load_calendars(config).ok().map(Arc::new)),
            logged_warnings: Mutex::new(Vec::new()),
            history: None,
        };
        rt.log_calendar_warnings();
        rt
    }

    /// Keep every flow version this runtime accepts in `store`'s flow
    /// history, starting with the live ones (blocking: at start, or on the
    /// blocking pool).
    pub fn keeping_history(mut self, store: crate::store::Store) -> Self {
        self.history = Some(store);
        self.record_history();
        self
    }

    /// Write the live flows to the history (as file edits, now).
    fn record_history(&self) {
        let (Some(store), Some(snapshot)) = (&self.history, self.current()) else {
            return;
        };
        super::flow_history::record_live(
            store,
            &snapshot.flows,
            crate::store::flows::BY_FILE,
            crate::util::unix_now_ms(),
        );
    }

    /// Whether schedule `name` is open at `at` (a follow-up campaign's
    /// calling window); `None` when no such schedule is configured.
    pub fn schedule_open(&self, name: &str, at: Time) -> Option<bool> {
        let calendars = self.calendars.read().ok().and_then(|c| c.clone())?;
        calendars.is_open(name, i64::try_from(at.unix_secs()).unwrap_or(i64::MAX))
    }

    /// Holiday calendars that list nothing for a year a schedule will be
    /// asked about, at `unix_secs` (see [`crate::ivr::coverage`]).
    pub fn calendar_warnings(&self, unix_secs: i64) -> Vec<String> {
        let calendars = self.calendars.read().ok().and_then(|c| c.clone());
        calendars
            .map(|c| {
                crate::ivr::coverage::gaps(&c, unix_secs)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Log each coverage warning not logged before (once, at warning level).
    fn log_calendar_warnings(&self) {
        let now =
            self.calendar_warnings(i64::try_from(crate::util::unix_now()).unwrap_or(i64::MAX));
        let Ok(mut logged) = self.logged_warnings.lock() else {
            return;
        };
        for w in now.iter().filter(|w| !logged.contains(w)) {
            warn!("{w}");
        }
        *logged = now;
    }

    /// The snapshot new calls get.
    pub fn current(&self) -> Option<Arc<IvrSnapshot>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// The flow that answers `did`, with its tenant.
    pub fn route_for(&self, did: &str) -> Option<(String, crate::call::flow::FlowRoute)> {
        let ivr = self.current()?;
        let flow = ivr.flows.for_did(did)?;
        let tenant = flow.tenant.clone().unwrap_or_else(|| "default".into());
        let name = flow.name.clone();
        Some((tenant, crate::call::flow::FlowRoute { ivr, flow: name }))
    }

    /// Problems of the last reload attempt (empty: the files on disk are live).
    pub fn problems(&self) -> Vec<String> {
        self.problems.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Flows live now: (name, version, DIDs).
    pub fn flows(&self) -> Vec<(String, String, Vec<String>)> {
        self.current()
            .map(|s| {
                s.flows
                    .flows()
                    .map(|f| (f.name.clone(), f.version.clone(), f.dids.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Successful reloads since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Load the files again: live if valid, else keep the old set and
    /// remember (and log) why.
    pub fn reload(&self, config: &Config) -> bool {
        if let Ok(calendars) = load_calendars(config) {
            if let Ok(mut c) = self.calendars.write() {
                *c = Some(Arc::new(calendars));
            }
        }
        self.log_calendar_warnings();
        match load(config, self.blacklist.clone()) {
            Ok(snapshot) => {
                let snapshot = snapshot.map(|mut s| {
                    s.voicemail_seal = self.voicemail_seal.clone();
                    s
                });
                let flows: Vec<String> = snapshot
                    .as_ref()
                    .map(|s| {
                        s.flows
                            .flows()
                            .map(|f| format!("{}@{}", f.name, f.version))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Ok(mut c) = self.current.write() {
                    *c = snapshot.map(Arc::new);
                }
                if let Ok(mut p) = self.problems.write() {
                    p.clear();
                }
                self.reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(?flows, "IVR reloaded: new calls use these flows");
                self.record_history();
                true
            }
            Err(problems) => {
                error!(
                    errors = problems.len(),
                    "IVR edit refused; the previous flows stay live:\n{}",
                    problems.join("\n")
                );
                if let Ok(mut p) = self.problems.write() {
                    *p = problems;
                }
                false
            }
        }
    }

    /// Check the files every `config.ivr.reload_check_secs` until shutdown.
    /// The configuration is read anew each time: agents, groups and the
    /// `[ivr]` settings change with the admin API and config reloads.
    pub async fn watch(
        self: Arc<Self>,
        live: Arc<crate::util::Live<Config>>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        if live.load().ivr.reload_check_secs == 0 {
            return;
        }
        let mut seen = fingerprint(&live.load());
        loop {
            let every = Duration::from_secs(live.load().ivr.reload_check_secs.max(1));
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
            let config = live.load();
            let now = {
                let c = config.clone();
                match tokio::task::spawn_blocking(move || fingerprint(&c)).await {
                    Ok(f) => f,
                    Err(_) => continue,
                }
            };
            // The date moves too: a calendar can run out while nothing
            // changes on disk.
            self.log_calendar_warnings();
            if now == seen {
                continue;
            }
            seen = now;
            info!("IVR files changed: validating");
            let (rt, c) = (self.clone(), config.clone());
            let _ = tokio::task::spawn_blocking(move || rt.reload(&c)).await;
        }
    }
}
