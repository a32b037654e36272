//! The call room: one tokio task per call, the only place that knows SIP
//! legs, media and routing together (DESIGN.md "call").
//!
//! A call is a back-to-back user agent (RFC 3261 §6 "B2BUA", RFC 7092): the
//! carrier's dialog ([`crate::sip::InboundLeg`]) and our own dialog(s) to
//! the agent or an external number ([`crate::sip::OutboundLeg`]) are
//! independent; SDP is negotiated per leg (RFC 3264) with our own RTP ports
//! on each side, and the media session joins them.
//!
//! Every kind of call is one pure [`machine::Machine`] whose states are the
//! call's phases, run by its one shell, `task` ([`spawn`] / [`run`] for a
//! carrier's INVITE, [`callback::spawn`], [`outbound::spawn`]). Each phase
//! is a pure machine of its own with its shell: the IVR flow
//! ([`flow::core`], `flow::drive`), ringing agents and numbers
//! ([`hunt`], [`forks`], `ringing`), a queue's wait ([`queue_wait`],
//! `ringing::ring_queue_at`), agent-first ringing ([`agent_first`],
//! `reach`), the conversations and blind transfers ([`converse::core`],
//! `converse`) and the connected call ([`fsm`], `session`). The shells
//! hold no call logic; the machines no IO. [`campaign`] runs follow-up
//! campaigns (回访) as one-attempt callbacks.

#[cfg(feature = "nats")]
pub mod acd_cluster;
pub mod agent_first;
pub mod callback;
pub mod campaign;
pub mod converse;
pub mod flow;
#[cfg(test)]
mod footprint_tests;
pub mod forks;
pub mod fsm;
pub mod hunt;
pub mod machine;
pub mod outbound;
mod party;
pub mod queue;
mod queue_store;
pub mod queue_wait;
mod reach;
pub mod record;
mod ringing;
pub mod secure;
#[cfg(test)]
pub(crate) mod seeded;
mod session;
mod task;
pub mod web_phone;

pub use party::Unreachable;
pub use session::{CommandSender, PartyTarget, SessionCommand, Supervision};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::media::caller::CallerMedia;
use crate::media::ports::PortPool;
use crate::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};
use crate::sip::stack::PendingInvite;
use crate::sip::trunk::TrunkTable;
use crate::sip::SipStack;

/// Where a registered agent can be reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Contact URI from the REGISTER.
    pub uri: String,
    /// Where its REGISTER came from (NAT-safe destination).
    pub source: SocketAddr,
    /// Registered over TCP.
    pub tcp: bool,
    /// The `Path` it registered through (RFC 3327): requests to it carry
    /// these as their route, and go to `source` (that proxy). Empty when
    /// the phone registered with this node directly.
    pub route: Vec<String>,
}

/// Looks up agents' live registrations (implemented by the switch over the
/// registrar).
pub trait Directory: Send + Sync {
    /// Live contacts of agent `user`, best first; empty when unregistered.
    fn contacts(&self, user: &str) -> Vec<Contact>;
}

/// How the targets of a call are rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ringing {
    /// One agent at a time, in order.
    Sequential,
    /// Everyone at once; first answer wins.
    Simultaneous,
}

/// Whom a call goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Agents by SIP user.
    Agents {
        /// Ring strategy.
        ringing: Ringing,
        /// Agents, in order.
        agents: Vec<String>,
    },
    /// Queue in a skill group; the ACD picks the agent.
    Queue {
        /// Group id.
        group: String,
        /// Priority (higher first).
        priority: u8,
    },
    /// An external number through a trunk (then its backups).
    External {
        /// Number dialled on the trunk.
        number: String,
        /// First trunk.
        trunk: String,
    },
    /// An IVR flow decides (the flows as they were when the call arrived).
    Flow(flow::FlowRoute),
}

/// Counters over all calls, for health and leak checks.
#[derive(Debug, Default)]
pub struct CallCounters {
    /// Calls in progress.
    pub active: AtomicU64,
    /// Calls started since boot.
    pub started: AtomicU64,
    /// Calls answered since boot.
    pub answered: AtomicU64,
    /// Calls that ended without answer.
    pub unanswered: AtomicU64,
    /// RTP packets relayed caller → agent, over all ended calls.
    pub rtp_caller_to_agent: AtomicU64,
    /// RTP packets relayed agent → caller, over all ended calls.
    pub rtp_agent_to_caller: AtomicU64,
    /// Requests of IVR `http` nodes (issue 18 §2).
    pub ivr_lookups: AtomicU64,
    /// Of those, the ones that failed (timeout, no answer, 5xx).
    pub ivr_lookup_failures: AtomicU64,
}

/// Where and how calls are recorded.
#[derive(Debug, Clone)]
pub struct RecordingSettings {
    /// Root directory (tenant/yyyy/mm/dd/call-id.wav, or .opus, below it).
    pub dir: std::path::PathBuf,
    /// Offset of local time from UTC for the date folders, in minutes.
    pub utc_offset_minutes: i32,
    /// Seal finished recordings with this key (issue 14 §6); None: plain files.
    pub seal: Option<crate::media::at_rest::SealingKey>,
    /// How calls are stored (`[recording] format`, issue 16 item 3).
    pub format: crate::media::recorder::RecordingFormat,
    /// Live audio forks by tenant (`[[tenant]] audio_fork`, issue 18 §1):
    /// a tap on the call's recording.
    pub forks: std::collections::HashMap<String, crate::media::fork::ForkTarget>,
    /// The forks of calls in progress, by the agent's phone (the API
    /// starts and stops them).
    pub live_forks: Arc<crate::media::fork::Forks>,
}

/// Fork the call's audio to its tenant's receiver, if the tenant has one
/// (issue 18 §1): the call's recording, just opened in `media`, feeds it.
/// Known by `device`, the agent's phone, while it runs.
pub(crate) fn start_fork(
    ctx: &CallContext,
    media: &mut crate::media::caller::CallerMedia,
    call: crate::media::fork::CallMeta,
    device: Option<&str>,
) {
    let Some(settings) = ctx.recordings.as_ref() else {
        return;
    };
    let Some(target) = settings.forks.get(&call.tenant) else {
        return;
    };
    let registry = device.map(|d| (settings.live_forks.clone(), d.to_string()));
    let tap = crate::media::fork::start(target, call, registry);
    if !media.fork(tap) {
        tracing::debug!("no recording to fork");
    }
}

/// Open the stereo recording of a call (caller left, other side right).
pub(crate) async fn open_recording(
    ctx: &CallContext,
    tenant: &str,
    call_id: &str,
    record: &record::CallRecord,
) -> Option<crate::media::recorder::RecordingHandle> {
    use crate::media::recorder::{
        recording_path_as, RecordingWriter, WriterOptions, CALL_WAV_SPEC,
    };
    let settings = ctx.recordings.as_ref()?;
    let date = crate::util::local_date(crate::util::unix_now(), settings.utc_offset_minutes);
    let path = recording_path_as(&settings.dir, tenant, date, call_id, settings.format);
    let id = recording_id(settings, &path);
    let shown = recording_rel_path(settings, &path);
    let options = WriterOptions {
        seal: settings.seal.clone(),
        format: settings.format,
        ..WriterOptions::default()
    };
    let opened = tokio::task::spawn_blocking(move || {
        RecordingWriter::start_with(&path, CALL_WAV_SPEC, options)
    })
    .await;
    match opened {
        Ok(Ok(handle)) => {
            record.note("recording started", |b| b.recording_started(&id, &shown));
            Some(handle)
        }
        Ok(Err(e)) => {
            warn!(error = %e, "cannot record this call");
            None
        }
        Err(_) => None,
    }
}

/// A recording's id: its path below the recordings root, without `.wav`
/// or `.opus`
/// (`tenant/yyyy/mm/dd/call-id`): unique, stable and enough to find it.
pub(crate) fn recording_id(settings: &RecordingSettings, path: &std::path::Path) -> String {
    let rel = path.strip_prefix(&settings.dir).unwrap_or(path);
    rel.with_extension("").to_string_lossy().replace('\\', "/")
}

/// A recording's path below the recordings root, as records show it.
pub(crate) fn recording_rel_path(settings: &RecordingSettings, path: &std::path::Path) -> String {
    let rel = path.strip_prefix(&settings.dir).unwrap_or(path);
    rel.to_string_lossy().replace('\\', "/")
}

/// A finished recording as the record and `recording.ready` carry it.
pub(crate) fn recording_info(
    settings: &RecordingSettings,
    meta: &crate::media::recorder::RecordingMeta,
) -> crate::events::model::RecordingInfo {
    crate::events::model::RecordingInfo {
        id: recording_id(settings, &meta.path),
        path: recording_rel_path(settings, &meta.path),
        duration_ms: u64::try_from(meta.duration.as_millis()).unwrap_or(u64::MAX),
        bytes: meta.bytes,
        sha256: meta.sha256.clone(),
        dropped_chunks: meta.dropped_chunks,
    }
}

/// Queue media settings of one group.
#[derive(Debug, Clone, Default)]
pub struct QueueMedia {
    /// The key that asks for a callback.
    pub callback_key: Option<char>,
}

/// A line for the audit log from outside the API (a supervisor joining a
/// call from their phone, or refused): who (the phone's SIP user), in
/// which centre, did what to whom.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLine {
    /// The SIP user of the phone that acted.
    pub actor: String,
    /// The centre the line is filed under.
    pub tenant: String,
    /// What was done (`call.supervise`, `call.supervise_refused`).
    pub action: String,
    /// To whom (an agent's job number or SIP user).
    pub target: String,
    /// The rest.
    pub detail: serde_json::Value,
}

/// Where [`AuditLine`]s go: the audit log, once the composition root has
/// opened it.
pub type AuditSink = Arc<dyn Fn(AuditLine) + Send + Sync>;

/// Settings and shared services every call uses.
pub struct CallContext {
    /// The SIP stack.
    pub stack: SipStack,
    /// RTP ports.
    pub ports: PortPool,
    /// Media address advertised in SDP.
    pub media_address: std::net::IpAddr,
    /// Our codec preference.
    pub codecs: Vec<AudioCodec>,
    /// Clear a call after this long without RTP (zero: never).
    pub rtp_timeout: Duration,
    /// One ring attempt.
    pub ring_timeout: Duration,
    /// A target that sends no provisional response within this time is
    /// treated as unreachable and the next one is tried.
    pub no_response_timeout: Duration,
    /// Session refresh interval (zero: off).
    pub session_refresh: Duration,
    /// Agents' registrations.
    pub directory: Arc<dyn Directory>,
    /// Carrier trunks.
    pub trunks: Arc<TrunkTable>,
    /// Counters.
    pub counters: Arc<CallCounters>,
    /// The ACD, when skill groups are configured.
    pub queues: Option<queue::Queues>,
    /// Prompts and music on hold (loaded at start when a group uses them).
    pub prompts: Option<Arc<crate::media::prompts::PromptLibrary>>,
    /// Where calls are recorded (None: recording off).
    pub recordings: Option<RecordingSettings>,
    /// Cancelled when the switch shuts down; calls then hang up.
    pub shutdown: CancellationToken,
    /// Each tenant's outbound trunk (transfers to external numbers).
    pub tenant_trunks: std::collections::HashMap<String, String>,
    /// Call records and events (None: events off, e.g. in unit tests).
    pub records: Option<Arc<record::CallRecords>>,
    /// The agents and skill groups in force (they change at run time):
    /// job numbers, auto-answer, group names, queue media.
    pub roster: Arc<crate::roster::LiveRoster>,
    /// Local time offset (minutes east of UTC) for serial numbers.
    pub utc_offset_minutes: i32,
    /// Connected calls by the SIP user of the agent's phone, for
    /// supervisors: (session id, command channel).
    pub live: dashmap::DashMap<String, (u64, CommandSender)>,
    /// The audit log (set once it is open; until then lines are logged).
    pub audit: std::sync::OnceLock<AuditSink>,
    /// Which legs are SRTP.
    pub srtp: secure::SrtpPolicy,
    /// Agents' browser phones (WebRTC), rung as contacts of their phone.
    pub web_phones: Arc<web_phone::WebPhones>,
    /// Follow-up campaigns (set once the runner is up; none without an
    /// ACD and a store of one node): told each callback's outcome.
    pub campaigns: std::sync::OnceLock<campaign::Campaigns>,
}

impl CallContext {
    /// File `line` in the audit log (or the log, before it is open).
    pub fn audit(&self, line: AuditLine) {
        match self.audit.get() {
            Some(sink) => sink(line),
            None => warn!(?line, "no audit log yet: audit line only logged"),
        }
    }

    /// The agent id of the phone `device` (the device itself if unknown).
    pub fn agent_id_of(&self, device: &str) -> String {
        self.roster
            .load()
            .agent_id_of(device)
            .unwrap_or(device)
            .to_string()
    }

    /// Whether the phone `device` is asked to answer by itself.
    pub fn auto_answers(&self, device: &str) -> bool {
        self.roster
            .load()
            .agent_by_user(device)
            .is_some_and(|a| a.auto_answer)
    }

    /// The display name of skill group `id`, if it has one.
    pub fn group_name(&self, id: &str) -> Option<String> {
        let roster = self.roster.load();
        let g = roster.group(id)?;
        (!g.name.is_empty()).then(|| g.name.clone())
    }

    /// How group `id` treats its waiting callers, if it answers them and
    /// plays prompts (`queue_media`).
    pub fn queue_media(&self, id: &str) -> Option<QueueMedia> {
        let roster = self.roster.load();
        let g = roster.group(id).filter(|g| g.queue_media)?;
        Some(QueueMedia {
            callback_key: g.callback_key.as_deref().and_then(|k| k.chars().next()),
        })
    }

    /// The trunk `tenant` dials out through, if it has one.
    pub fn tenant_trunk(&self, tenant: &str) -> Option<String> {
        self.tenant_trunks.get(tenant).cloned()
    }
}

/// Start a call task for a new INVITE routed to `route`.
///
/// `held` is kept by the call task until it ends, however it ends (a
/// panic or an abort drops it too): the switch's place for the call under
/// the trunk's and centre's caps.
pub fn spawn<H: Send + 'static>(
    ctx: Arc<CallContext>,
    invite: PendingInvite,
    route: Route,
    tenant: String,
    held: H,
) {
    let span = tracing::info_span!(
        "call",
        id = %invite.request.call_id(),
        from = invite.request.from_user().unwrap_or_default(),
        to = invite.request.uri_user().unwrap_or_default()
    );
    ctx.counters.started.fetch_add(1, Ordering::Relaxed);
    ctx.counters.active.fetch_add(1, Ordering::Relaxed);
    let counters = ctx.counters.clone();
    // The INVITE (over 1 KiB) is boxed: an async fn keeps room for its
    // arguments for its whole life, and each level below would carry its
    // own copy (issue 16, "Memory per call").
    let invite = Box::new(invite);
    tokio::spawn(
        async move {
            let _held = held;
            let outcome = run(ctx, invite, route, tenant).await;
            match &outcome {
                Outcome::Answered => counters.answered.fetch_add(1, Ordering::Relaxed),
                _ => counters.unanswered.fetch_add(1, Ordering::Relaxed),
            };
            counters.active.fetch_sub(1, Ordering::Relaxed);
            info!(?outcome, "call ended");
        }
        .instrument(span),
    );
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was answered (and later hung up).
    Answered,
    /// Rejected before ringing anyone (bad SDP, no ports …).
    Rejected(u16),
    /// A queued caller chose to be called back (keeps their place).
    CallbackRequested,
    /// The caller hung up before anyone answered.
    CallerCancelled,
    /// Nobody answered: the final status sent to the caller.
    NotAnswered(u16),
    /// An IVR flow's queue wait ended (too long, or the queue was full);
    /// the flow goes on.
    QueueEnded {
        /// The queue was full.
        full: bool,
    },
    /// An IVR flow hung up (its `hangup` node, a blocked caller, …).
    FlowEnded(String),
}

/// Drive one call to its end, with its record (`task::inbound`, the
/// shell of the call's [`machine::Machine`]).
pub async fn run(
    ctx: Arc<CallContext>,
    invite: Box<PendingInvite>,
    route: Route,
    tenant: String,
) -> Outcome {
    let record = start_record(&ctx, &invite, &route, &tenant);
    task::inbound::run(ctx, invite, route, tenant, record).await
}

/// The call's record and its `call.started`.
fn start_record(
    ctx: &CallContext,
    invite: &PendingInvite,
    route: &Route,
    tenant: &str,
) -> record::CallRecord {
    let Some(records) = &ctx.records else {
        return record::CallRecord::disabled();
    };
    let caller = invite
        .request
        .from_user()
        .unwrap_or_else(|| "anonymous".into());
    let caller_area = match route {
        Route::Flow(f) => f
            .ivr
            .env
            .area_of(&caller)
            .map(|(code, region)| crate::events::model::Area { code, region }),
        _ => None,
    };
    records.start(crate::events::CallStart {
        call_id: invite.request.call_id(),
        serial: records.next_serial(ctx.utc_offset_minutes),
        tenant: tenant.to_string(),
        direction: crate::events::model::Direction::Inbound,
        // A caller who withholds their number (RFC 3323) is confidential.
        confidential: caller.eq_ignore_ascii_case("anonymous"),
        caller,
        called: invite.request.uri_user().unwrap_or_default(),
        caller_area,
    })
}

/// The call ends between conversations (a blind transfer nobody took):
/// its recording, kept open for the next conversation, is finished and
/// the record told.
pub(crate) async fn end_recording(
    ctx: &CallContext,
    record: &record::CallRecord,
    media: &mut CallerMedia,
) {
    if let Some(meta) = media.finish_recording().await {
        recording_ready(ctx, record, &meta);
    }
}

/// A call's recording is finished: logged, and the record told.
pub(crate) fn recording_ready(
    ctx: &CallContext,
    record: &record::CallRecord,
    meta: &crate::media::recorder::RecordingMeta,
) {
    info!(
        path = %meta.path.display(),
        secs = meta.duration.as_secs_f64(),
        bytes = meta.bytes,
        sha256 = %meta.sha256,
        dropped_chunks = meta.dropped_chunks,
        "recording ready"
    );
    if let Some(settings) = &ctx.recordings {
        let info = recording_info(settings, meta);
        record.fact("recording ready", |b, t| b.recording_ready(t, info));
    }
}

fn local_media(ctx: &CallContext, port: u16, codecs: Vec<AudioCodec>) -> LocalMedia {
    let session_id = u64::from(rand::random::<u32>());
    LocalMedia {
        address: ctx.media_address,
        port,
        session_id,
        session_version: 1,
        codecs,
        telephone_event: true,
        direction: Direction::SendRecv,
        sdes: ctx.srtp.toward_phones(),
    }
}

/// A shell's clock for its pure machine (the ACD actor, a connected
/// call, a ringing attempt): the wall clock read once, then advanced by
/// tokio's monotonic clock, so the machine sees `time::Time` that never
/// steps back and its deadlines become tokio instants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShellClock {
    at: tokio::time::Instant,
    time: crate::time::Time,
}

impl ShellClock {
    /// Now (the one wall-clock read of the shell).
    pub(crate) fn start() -> Self {
        ShellClock {
            at: tokio::time::Instant::now(),
            time: crate::util::now(),
        }
    }

    /// The time now.
    pub(crate) fn now(&self) -> crate::time::Time {
        self.time + self.at.elapsed()
    }

    /// The tokio instant of `t`.
    pub(crate) fn instant(&self, t: crate::time::Time) -> tokio::time::Instant {
        self.at + t.saturating_duration_since(self.time)
    }
}

/// Sleep until `deadline`, or forever without one (a shell waiting for its
/// pure machine's `poll_timeout`).
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Use `pt` instead of our default 101 for telephone-event in an offer.
pub(crate) fn retarget_telephone_event(offer: &mut SessionDescription, pt: u8) {
    let old = sdp::TELEPHONE_EVENT_PT;
    if pt == old {
        return;
    }
    for m in offer.media.iter_mut() {
        for f in m.formats.iter_mut() {
            if *f == old.to_string() {
                *f = pt.to_string();
            }
        }
        for r in m.rtpmaps.iter_mut() {
            if r.payload_type == old {
                r.payload_type = pt;
            }
        }
        for (p, _) in m.fmtps.iter_mut() {
            if *p == old {
                *p = pt;
            }
        }
    }
}
