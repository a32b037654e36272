//! The switch: the telephony shell of `hotline serve`. [`start`] opens the
//! store, merges the file's agents and groups into the stored roster
//! ([`roster`]), starts the SIP stack, the ACD, the events and the call
//! context, and hands back the [`Parts`] the composition root (`app`)
//! wires the HTTP API from; [`Switch::run`] then answers out-of-dialog
//! requests (REGISTER, OPTIONS, unknown methods), admits new INVITEs by
//! trunk ACL and routes them by called number (DID) to a call task,
//! reloads the configuration on SIGHUP, and shuts down cleanly on
//! SIGINT/SIGTERM: new calls get 503, calls in progress get the configured
//! grace period, then whatever is left is hung up. The switch never
//! imports `api` (issue 13 §5).
//!
//! Each out-of-dialog request is decided by the pure [`admission`] core
//! and executed by `dispatch`, which never awaits disk in the loop: a
//! REGISTER's bindings go to `binding_writer`'s thread and its answer
//! waits in a task of its own, as a feature code's ACD commit does.

pub mod admission;
#[cfg(test)]
mod admission_tests;
mod binding_writer;
mod blf;
pub mod call_load;
mod dispatch;
#[cfg(test)]
mod dispatch_tests;
pub mod events;
pub mod feature_codes;
pub mod flow_cli;
pub mod flow_history;
mod follow;
pub mod ivr;
mod queues;
mod registration;
pub mod roster;
mod signal;
mod takeover;
mod trunk_registration;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use binding_writer::BindingStore;
pub use registration::{Authenticated, Challenge, Registering, Registrations};

use crate::acd;
use crate::call::queue::Queues;
use crate::call::{self, CallContext, CallCounters};
use crate::config::{Config, Transport};
use crate::media::ports::PortPool;
use crate::media::prompts::PromptLibrary;
use crate::media::sdp::AudioCodec;
use crate::sip::stack::{Incoming, StackConfig};
use crate::sip::trunk::{Trunk, TrunkTable};
use crate::sip::SipStack;
use crate::store::Store;

/// Errors that stop `hotline serve`.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("agents and groups: {0}")]
    Roster(roster::RosterError),
    #[error("cannot install the signal handlers: {0}")]
    Signal(std::io::Error),
    /// SIP could not start.
    #[error(transparent)]
    Sip(#[from] crate::sip::SipError),
    /// Storage could not open.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Prompts could not be loaded (every problem listed).
    #[error("prompts: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Prompts(Vec<crate::media::prompts::PromptError>),
    /// The event outbox could not open.
    #[error(transparent)]
    Events(#[from] crate::events::outbox::OutboxError),
    /// The IVR's files are invalid (every problem listed, one per line).
    #[error("IVR:\n{}", .0.join("\n"))]
    Ivr(Vec<String>),
    #[error("[[nats]] is configured but this hotline was built without NATS support: build with `cargo build --release --features nats`")]
    NatsNotBuilt,
    /// The ACD refused its configuration, or cannot read what it kept.
    #[error("ACD: {0}")]
    Acd(crate::call::queue::QueuesError),
    /// `[recording] encryption_key_file` cannot be used (issue 14 §6).
    #[error(transparent)]
    RecordingKey(#[from] crate::media::at_rest::KeyError),
    /// The `[tls]` certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::config::tls::TlsError),
}

/// The live handles of a started switch the composition root wires the
/// HTTP side from.
#[derive(Clone)]
pub struct Parts {
    /// The configuration in force at start (the file with the stored
    /// roster).
    pub config: Config,
    /// Call counters.
    pub counters: Arc<CallCounters>,
    /// SIP stack (dialog/transaction counts).
    pub stack: SipStack,
    /// RTP port pool.
    pub ports: PortPool,
    /// Registrations.
    pub registrations: Registrations,
    /// Start time (monotonic).
    pub started: tokio::time::Instant,
    /// The ACD, when groups are configured.
    pub queues: Option<Queues>,
    /// The agents and skill groups in force.
    pub roster: Arc<crate::roster::LiveRoster>,
    /// The live IVR flows.
    pub ivr: Arc<ivr::IvrRuntime>,
    /// Agents and groups changes, configuration reload.
    pub roster_admin: Arc<roster::RosterAdmin>,
    /// What the calls share (the CTI operations act on it).
    pub calls: Arc<CallContext>,
    /// The event outbox.
    pub outbox: Arc<crate::events::outbox::Outbox>,
    /// The live call records.
    pub records: Arc<crate::call::record::CallRecords>,
    /// The live block list (the IVR reads it on each call).
    pub blacklist: Arc<std::sync::RwLock<crate::ivr::blacklist::Blacklist>>,
    /// `hotline.db`.
    pub store: Store,
    /// Calls per trunk and centre against their caps (issue 14 §5).
    pub call_slots: call_load::CallSlots,
    /// Set once SIGTERM/SIGINT starts the drain (`/readyz` reads it).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The other nodes sharing the store, as this one sees them
    /// (`/metrics`).
    pub cluster: Arc<crate::store::cluster::ClusterStatus>,
    /// Cancelled when the switch stops serving, before the events are
    /// flushed: what the composition root started beside it (the HTTP
    /// listener, the retention job) stops on it.
    pub front_stop: CancellationToken,
    /// Results sent back by audio-fork receivers, as `assist` messages
    /// for the agents' live WebSockets (issue 18 §1).
    pub fork_results: ForkResults,
}

/// Messages for the agents' live WebSockets (`tenant`, `to_agent` …).
pub type ForkResults = tokio::sync::broadcast::Sender<Arc<serde_json::Value>>;

/// Each tenant's `audio_fork`, its results published on `results` as
/// `{"type": "assist", "tenant", "to_agent", "call_id", "result"}`.
fn fork_targets(
    config: &Config,
    results: &ForkResults,
) -> std::collections::HashMap<String, crate::media::fork::ForkTarget> {
    let results = results.clone();
    let hook: crate::media::fork::ResultHook = Arc::new(move |call, result| {
        let m = serde_json::json!({
            "type": "assist",
            "tenant": call.tenant,
            "to_agent": call.agent,
            "call_id": call.call_id,
            "result": result,
        });
        let _ = results.send(Arc::new(m)); // nobody listening: dropped
    });
    config
        .tenants
        .iter()
        .filter_map(|t| {
            let f = t.audio_fork.as_ref()?;
            Some((
                t.id.clone(),
                crate::media::fork::ForkTarget {
                    url: f.url.clone(),
                    queue_frames: f.queue_frames(),
                    max_attempts: f.max_attempts,
                    auto: f.auto,
                    results: Some(hook.clone()),
                },
            ))
        })
        .collect()
}

/// A started switch: [`Switch::run`] serves until SIGINT/SIGTERM.
pub struct Switch {
    parts: Parts,
    stop_signal: signal::StopSignal,
    reload_signal: signal::ReloadSignal,
    incoming: tokio::sync::mpsc::Receiver<Incoming>,
    router: dispatch::Router,
    call_shutdown: CancellationToken,
    events: events::EventsRuntime,
    events_stop: CancellationToken,
}

/// Open and keep the TLS connection of every trunk dialled over TLS
/// (`sip::tls_client`); unusable settings (a CA file, a name) stop the start.
fn keep_trunks_tls(config: &Config, stack: &SipStack) -> Result<(), SwitchError> {
    for t in config
        .trunks
        .iter()
        .filter(|t| t.transport == Transport::Tls)
    {
        let Some(dest) = t.proxy else { continue }; // validation requires it
        let tls_config = crate::config::tls::trunk_client_config(
            &t.name,
            t.tls_ca_file.as_deref(),
            config.tls.as_ref(),
        )?;
        let name = t
            .tls_server_name
            .clone()
            .unwrap_or_else(|| dest.ip().to_string());
        let server_name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
            crate::config::tls::TlsError::Trunk {
                trunk: t.name.clone(),
                reason: format!("tls_server_name {name:?}: {e}"),
            }
        })?;
        stack.keep_trunk_tls(crate::sip::tls_client::TrunkTls {
            trunk: t.name.clone(),
            dest,
            server_name,
            config: tls_config,
        });
    }
    Ok(())
}

fn trunk_table(config: &Config) -> TrunkTable {
    TrunkTable::new(
        config
            .trunks
            .iter()
            .map(|t| Trunk {
                name: t.name.clone(),
                inbound: t.inbound_cidrs.clone(),
                proxy: t.proxy,
                tcp: t.transport != Transport::Udp,
                backup: t.backup.clone(),
                invite_timeout_secs: t.invite_timeout_secs,
            })
            .collect(),
    )
}

/// The block list: the configuration's seeds written once to the store,
/// then everything the store holds (entries added by the API too).
fn persisted_blacklist(
    store: &Store,
    seeds: &crate::ivr::blacklist::Blacklist,
) -> Result<crate::ivr::blacklist::Blacklist, SwitchError> {
    for tenant in seeds.tenants() {
        for e in seeds.entries(tenant) {
            store.seed_blacklist_entry(tenant, e)?;
        }
    }
    Ok(stored_blacklist(store)?)
}

/// Every entry the store holds, as a block list (an entry that no longer
/// passes the checks is skipped and logged).
fn stored_blacklist(
    store: &Store,
) -> Result<crate::ivr::blacklist::Blacklist, crate::store::StoreError> {
    let mut list = crate::ivr::blacklist::Blacklist::new();
    for (tenant, e) in store.load_blacklist()? {
        if let Err(err) = list.insert(&tenant, e.clone()) {
            warn!(%tenant, number = %e.number, error = %err, "stored block-list entry skipped");
        }
    }
    Ok(list)
}

/// Repairs (and with a key, seals) the unfinished recordings a crash left
/// under `dir`, before any new one opens.
async fn repair_at_start(dir: &std::path::Path, seal: Option<&crate::media::at_rest::SealingKey>) {
    let scan = dir.to_path_buf();
    let seal = seal.cloned();
    let reports = tokio::task::spawn_blocking(move || {
        crate::media::recorder::repair_unfinished_with(&scan, seal.as_ref())
    })
    .await
    .unwrap_or_default();
    for r in reports {
        warn!(path = %r.path.display(), outcome = ?r.outcome, sealed = r.sealed, "unfinished recording found at start");
    }
}

/// Start the switch: everything but the loop that serves (see
/// [`Switch::run`]).
pub async fn start(file: Config) -> Result<Switch, SwitchError> {
    let stop_signal = signal::StopSignal::install().map_err(SwitchError::Signal)?;
    let reload_signal = signal::ReloadSignal::install().map_err(SwitchError::Signal)?;
    // The at-rest key before anything is recorded (issue 14 §6): a wrong
    // one stops the start, naming the file.
    let seal = crate::media::at_rest::SealingKey::load_optional(
        file.recording.encryption_key_file.as_deref(),
    )?;
    if let Some(k) = &seal {
        info!(key = %k.fingerprint_hex(), "recordings and voicemails are encrypted at rest");
    }
    // The IVR first: a broken flow stops the start before anything binds.
    let seeds = ivr::seed_blacklist(&file).map_err(SwitchError::Ivr)?;
    let node = file.node_id();
    let store = Store::configured(file.store.url.as_deref(), &node, &file.data.dir)?;
    let cluster = Arc::new(crate::store::cluster::ClusterStatus::default());
    if store.is_shared() {
        cluster.set_shared();
    }
    // Agents and groups: the stored roster with the file's seeds merged.
    // Everything below runs on the result.
    let boot = roster::boot(&file, &store).map_err(SwitchError::Roster)?;
    let config = boot.config.clone();
    let blacklist = Arc::new(std::sync::RwLock::new(persisted_blacklist(&store, &seeds)?));
    let snapshot = ivr::load(&config, blacklist.clone()).map_err(SwitchError::Ivr)?;
    if let Some(s) = &snapshot {
        let flows: Vec<String> = s
            .flows
            .flows()
            .map(|f| format!("{}@{} {:?}", f.name, f.version, f.dids))
            .collect();
        info!(?flows, prompts = s.prompts.len(), "IVR flows loaded");
    }
    let ivr_runtime = Arc::new(
        ivr::IvrRuntime::new(snapshot, blacklist.clone(), &config, seal.clone())
            .keeping_history(store.clone()),
    );
    let registrations = Registrations::new(&config, store.clone())?;
    // Confirmed legs are written down; the ones the last run left up (a
    // crash) get their BYE as the stack starts.
    let dialog_journal: Arc<dyn crate::sip::DialogJournal> =
        Arc::new(crate::store::DialogWriter::start(store.clone())?);
    let (stack, incoming) = SipStack::start(&StackConfig {
        listen: config.sip.listen,
        udp: config.sip.transports.contains(&Transport::Udp),
        tcp: config.sip.transports.contains(&Transport::Tcp),
        user_agent: config.sip.user_agent.clone(),
        udp_buffer_bytes: config.sip.udp_buffer_bytes,
        journal: Some(dialog_journal),
        flood: flood_policy(&config),
        tcp_max_per_source: config.sip.flood.tcp_connections_per_source,
        tls: match &config.tls {
            Some(tls) if config.sip.transports.contains(&Transport::Tls) => {
                Some(crate::sip::stack::StackTls {
                    listen: config.sip.tls_listen(),
                    config: tls.server_config(&[])?,
                })
            }
            _ => None,
        },
    })
    .await?;
    keep_trunks_tls(&config, &stack)?;
    let m = &config.media;
    let ports = PortPool::new(m.address, m.rtp_port_min, m.rtp_port_max);
    crate::media::session::configure_workers(
        m.io_workers,
        std::time::Duration::from_micros(m.io_coalesce_us),
    );
    let trunks = Arc::new(trunk_table(&config));
    let counters = Arc::new(CallCounters::default());
    let call_shutdown = CancellationToken::new();
    // The ACD runs even without groups: an admin may add them. What it
    // kept before the last stop is read now and applied below, once the
    // agent state events are wired.
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (queues, callback_orders) =
        queues::start(&config, &store, &registrations, &draining, &cluster).await?;
    let needed = config.required_prompts();
    let roster_admin = Arc::new(roster::RosterAdmin::new(
        boot,
        file,
        store.clone(),
        queues.clone(),
        registrations.clone(),
        ivr_runtime.clone(),
        needed,
    ));
    let live_roster = roster_admin.roster();
    {
        // Auto-login (per agent): the phone registering signs the agent in,
        // the last binding going away signs them out.
        let (q, roster) = (queues.clone(), live_roster.clone());
        registrations.on_presence(Box::new(move |user, registered| {
            let roster = roster.load();
            let a = roster.agent_by_user(user).filter(|a| a.auto_login)?;
            let agent = crate::roster::agent_id(a).to_string();
            info!(%user, %agent, registered, "auto-login");
            q.input(if registered {
                acd::Input::Login { agent }
            } else {
                acd::Input::Logout { agent }
            });
            // The REGISTER is answered once the sign-in is kept.
            let q = q.clone();
            Some(Box::pin(async move { q.kept().await }) as registration::PresenceKept)
        }));
    }
    let queues = Some(queues);
    // Prompts are loaded (and every problem reported) before the first call.
    let prompts = if needed.is_empty() {
        None
    } else {
        let dir = &config.media.sounds_dir;
        let library = PromptLibrary::load(dir, needed).map_err(SwitchError::Prompts)?;
        info!(dir = %dir.display(), prompts = library.len(), "prompts loaded");
        Some(Arc::new(library))
    };
    // Results audio-fork receivers send back, for the agents' live
    // WebSockets (the composition root forwards them; issue 18 §1).
    let fork_results = tokio::sync::broadcast::channel(256).0;
    let recordings = if config.recording.enabled {
        let dir = config
            .recording
            .dir
            .clone()
            .unwrap_or_else(|| config.data.dir.join("recordings"));
        // Files a crash left unfinished are repaired before any new one opens.
        if let Err(e) = std::fs::create_dir_all(&dir) {
            warn!(dir = %dir.display(), error = %e, "cannot create the recordings directory");
        }
        repair_at_start(&dir, seal.as_ref()).await;
        Some(call::RecordingSettings {
            dir,
            utc_offset_minutes: config.recording.utc_offset_minutes,
            seal: seal.clone(),
            format: config.recording.format,
            forks: fork_targets(&config, &fork_results),
            live_forks: Default::default(),
        })
    } else {
        None
    };
    // Voicemails are written like recordings: what a crash left is
    // repaired (and sealed) too.
    let voicemails = config.ivr.voicemail_dir(&config.data.dir);
    if voicemails.is_dir() {
        repair_at_start(&voicemails, seal.as_ref()).await;
    }
    let events_stop = CancellationToken::new();
    let events = events::start(
        &config,
        queues.as_ref(),
        recordings.as_ref(),
        events_stop.clone(),
    )?;
    if let Some(q) = &queues {
        // Agents whose phones are still registered are signed in again as
        // they were; the others are signed out (and told as agent.state).
        q.restore(registrations.registered_users()).await;
    }
    let web_phones = crate::call::web_phone::WebPhones::new(crate::call::web_phone::DEFAULT_GRACE);
    let ctx = Arc::new(CallContext {
        stack: stack.clone(),
        ports: ports.clone(),
        media_address: m.address,
        codecs: m
            .codecs
            .iter()
            .filter_map(|c| match c.to_ascii_uppercase().as_str() {
                "PCMA" => Some(AudioCodec::Pcma),
                "PCMU" => Some(AudioCodec::Pcmu),
                _ => None,
            })
            .collect(),
        rtp_timeout: Duration::from_secs(m.rtp_timeout_secs),
        ring_timeout: Duration::from_secs(config.calls.ring_timeout_secs),
        no_response_timeout: Duration::from_secs(config.calls.no_response_secs.max(1)),
        session_refresh: Duration::from_secs(config.calls.session_expires_secs / 2),
        directory: Arc::new(crate::call::web_phone::WithBrowsers {
            sip: Arc::new(registrations.clone()),
            web: web_phones.clone(),
        }),
        web_phones,
        campaigns: std::sync::OnceLock::new(),
        trunks: trunks.clone(),
        counters: counters.clone(),
        queues: queues.clone(),
        prompts,
        recordings,
        shutdown: call_shutdown.clone(),
        live: Default::default(),
        audit: Default::default(),
        records: Some(events.records.clone()),
        roster: live_roster.clone(),
        utc_offset_minutes: config.recording.utc_offset_minutes,
        tenant_trunks: config
            .tenants
            .iter()
            .filter_map(|t| Some((t.id.clone(), t.outbound_trunk.clone()?)))
            .collect(),
        srtp: call::secure::SrtpPolicy {
            agents: m.srtp_agents,
            trunks: config
                .trunks
                .iter()
                .map(|t| (t.name.clone(), t.srtp))
                .collect(),
        },
    });
    if let (Some(q), false) = (&queues, store.is_shared()) {
        // Follow-up campaigns (issue 18 §3) on a single node: several
        // nodes sharing a store would each dial them.
        let ivr = ivr_runtime.clone();
        let window: call::campaign::WindowCheck =
            Arc::new(move |name: &str, at| ivr.schedule_open(name, at));
        match call::campaign::Campaigns::start(q.clone(), store.clone(), window).await {
            Ok(c) => {
                ctx.campaigns.set(c).ok();
            }
            Err(e) => warn!(error = %e, "follow-up campaigns are not running"),
        }
    }
    {
        // A user name locked out (issue 14 §5) is audited once, under the
        // agent's centre.
        let calls = Arc::downgrade(&ctx);
        registrations.on_lockout(Box::new(move |locked, ip| {
            let Some(ctx) = calls.upgrade() else { return };
            let tenant = ctx
                .roster
                .load()
                .agent_by_user(&locked.user)
                .map(|a| a.tenant.clone());
            ctx.audit(call::AuditLine {
                actor: ip.to_string(),
                tenant: tenant.unwrap_or_else(|| "default".into()),
                action: "sip.user_locked_out".into(),
                target: locked.user.clone(),
                detail: serde_json::json!({
                    "failures": locked.failures,
                    "until_unix": locked.until.unix_secs(),
                }),
            });
        }));
    }
    let router = dispatch::Router::new(&config, trunks, ivr_runtime.clone());
    let call_slots = call_load::CallSlots::new(call_load::CallLoad::new(
        config.trunks.iter().map(|t| {
            let caps = call_load::Caps {
                max_calls: t.max_calls,
                max_cps: t.max_cps,
            };
            (t.name.clone(), caps)
        }),
        config.tenants.iter().map(|t| {
            let caps = call_load::Caps {
                max_calls: t.max_calls,
                max_cps: t.max_cps,
            };
            (t.id.clone(), caps)
        }),
    ));
    let http_ivr_stop = call_shutdown.clone();
    {
        // Callbacks dial citizens through the reserved agent's tenant.
        let (ctx, tenants, mut orders) = (ctx.clone(), config.tenants.clone(), callback_orders);
        tokio::spawn(async move {
            while let Some(order) = orders.recv().await {
                let dialout = ctx.roster.load().agent(&order.agent).and_then(|a| {
                    let t = tenants.iter().find(|t| t.id == a.tenant)?;
                    Some(call::callback::Dialout {
                        tenant: t.id.clone(),
                        caller_id: t.outbound_caller_id.clone(),
                        trunk: t.outbound_trunk.clone()?,
                    })
                });
                call::callback::spawn(ctx.clone(), order, dialout);
            }
        });
    }

    tokio::spawn(
        ivr_runtime
            .clone()
            .watch(roster_admin.config(), http_ivr_stop.clone()),
    );
    let parts = Parts {
        config,
        counters,
        stack,
        ports,
        registrations,
        started: tokio::time::Instant::now(),
        queues,
        roster: live_roster,
        ivr: ivr_runtime,
        roster_admin,
        calls: ctx,
        outbox: events.outbox.clone(),
        records: events.records.clone(),
        blacklist,
        store,
        call_slots,
        draining,
        cluster,
        front_stop: CancellationToken::new(),
        fork_results,
    };
    Ok(Switch {
        parts,
        stop_signal,
        reload_signal,
        incoming,
        router,
        call_shutdown,
        events,
        events_stop,
    })
}

impl Switch {
    /// The live handles (for the composition root).
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Serve until SIGINT/SIGTERM, then shut down.
    pub async fn run(self) -> Result<(), SwitchError> {
        let Switch {
            parts,
            mut stop_signal,
            mut reload_signal,
            mut incoming,
            router,
            call_shutdown,
            events,
            events_stop,
        } = self;
        let Parts {
            config,
            counters,
            stack,
            registrations,
            roster_admin,
            calls: ctx,
            front_stop: http_stop,
            call_slots,
            draining: draining_flag,
            store,
            outbox,
            blacklist,
            cluster: cluster_status,
            queues,
            ..
        } = parts;
        let housekeeping = {
            let registrations = registrations.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    registrations.housekeeping().await;
                }
            })
        };

        // With a shared store: the other nodes' registrations heard as they
        // change, heartbeats, and the legs of dead nodes closed.
        let _following = follow::spawn(
            store.clone(),
            follow::Owners {
                registrations: registrations.clone(),
                roster: roster_admin.clone(),
                blacklist: blacklist.clone(),
                runtime: tokio::runtime::Handle::current(),
                cluster: cluster_status.clone(),
            },
        )?;
        let cluster = takeover::spawn(
            store,
            stack.clone(),
            outbox.clone(),
            config.node_http_url(),
            cluster_status,
        );
        let trunk_stop = CancellationToken::new();
        let trunk_tasks: Vec<_> = config
            .trunks
            .iter()
            .filter_map(|t| trunk_registration::spawn(stack.clone(), t, trunk_stop.clone()))
            .collect();

        info!(
            config = %config.source_path.display(),
            dids = config.dids.len(),
            agents = config.agents.len(),
            trunks = config.trunks.len(),
            "hotline is up"
        );
        let dispatch = dispatch::Dispatch {
            ctx: ctx.clone(),
            router: Arc::new(router),
            registrations: registrations.clone(),
            slots: call_slots,
            blf: blf::Blf::new(
                ctx.stack.clone(),
                ctx.roster.clone(),
                ctx.queues.clone(),
                ctx.shutdown.clone(),
            ),
        };
        let mut draining: Option<tokio::time::Instant> = None;
        let grace = Duration::from_secs(config.calls.shutdown_grace_secs);
        let stop = stop_signal.recv();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                item = incoming.recv() => {
                    let Some(item) = item else { break };
                    dispatch.dispatch(item, draining.is_some()).await;
                }
                _ = reload_signal.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    let admin = roster_admin.clone();
                    tokio::spawn(async move {
                        match admin.reload().await {
                            Ok(r) => info!(
                                source = %r.source,
                                ivr_ok = r.ivr_ok,
                                restart_needed = ?r.restart_needed,
                                "configuration reloaded"
                            ),
                            Err(e) => error!(error = %e, "configuration reload refused; nothing changed"),
                        }
                    });
                }
                _ = &mut stop, if draining.is_none() => {
                    // The flag first: once the log says so, OPTIONS answers 503.
                    draining_flag.store(true, Ordering::Relaxed);
                    draining = Some(tokio::time::Instant::now() + grace);
                    let active = counters.active.load(Ordering::Relaxed);
                    info!(active_calls = active, grace_secs = grace.as_secs(), "shutting down: no new calls");
                }
                _ = tokio::time::sleep(Duration::from_millis(100)), if draining.is_some() => {
                    let active = counters.active.load(Ordering::Relaxed);
                    let deadline = draining.unwrap_or_else(tokio::time::Instant::now);
                    if active == 0 {
                        break;
                    }
                    if tokio::time::Instant::now() >= deadline && !call_shutdown.is_cancelled() {
                        warn!(active_calls = active, "grace period over: hanging up the remaining calls");
                        call_shutdown.cancel();
                    }
                    if tokio::time::Instant::now() >= deadline + Duration::from_secs(3) {
                        warn!(active_calls = active, "calls did not end in time; exiting");
                        break;
                    }
                }
            }
        }
        // The ACD's last state kept; a leader of several nodes' one ACD
        // hands it over now rather than when its lease expires.
        if let Some(q) = &queues {
            q.stop().await;
        }
        trunk_stop.cancel();
        for t in trunk_tasks {
            t.await.ok();
        }
        housekeeping.abort();
        if let Some(t) = cluster {
            t.abort();
        }
        registrations.housekeeping().await;
        http_stop.cancel();
        // Records still waiting for after-call work go out now (incomplete),
        // and everything is committed before the sinks stop.
        events.records.close_all();
        events.appender.flush().await;
        events_stop.cancel();
        // The legs of the calls just ended are removed from the journal, so the
        // next start sends no BYE for them.
        let journal = stack.clone();
        tokio::task::spawn_blocking(move || journal.flush_journal())
            .await
            .ok();
        stack.shutdown();
        info!("hotline stopped");
        Ok(())
    }
}

/// The ingress gate's flood policy: `[sip.flood]`, with every trunk's
/// inbound CIDRs exempt (a carrier is never banned for its volume, nor
/// because a flooder forged its address).
fn flood_policy(config: &Config) -> crate::sip::flood::FloodPolicy {
    let f = &config.sip.flood;
    let mut exempt = f.exempt.clone();
    exempt.extend(
        config
            .trunks
            .iter()
            .flat_map(|t| t.inbound_cidrs.iter().copied()),
    );
    crate::sip::flood::FloodPolicy {
        rate: f.rate,
        burst: f.burst,
        ban: Duration::from_secs(f.ban_secs),
        exempt,
        max_sources: 100_000,
    }
}
