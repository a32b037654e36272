//! Starting the event store and delivery (events issue §2, §3): opens the
//! outbox (always: the records API and reports read the events it keeps),
//! starts its writer ([`Appender`]) and the call records
//! ([`CallRecords`]), registers and runs the configured sinks
//! (`[[webhook]]`, `[events] jsonl_dir`), and turns the ACD's agent state
//! changes into `agent.state` events (ordered per agent: the outbox's
//! ordering key is `agent:<id>`) and into the end of after-call work for
//! the call records waiting on it. Calls a crash cut off are closed first,
//! each with the recording the crash left (repaired before this runs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::call::queue::{AgentStateNotice, Queues, WatchScope};
use crate::call::record::CallRecords;
use crate::call::RecordingSettings;
use crate::config::Config;
use crate::events::agent::{AgentEvents, Numbered};
use crate::events::appender::Appender;
use crate::events::backoff::RetryPolicy;
use crate::events::jsonl::JsonlSink;
use crate::events::model::AgentStateName;
use crate::events::outbox::{NewEvent, Outbox, OutboxError};
use crate::events::replay;
use crate::events::webhook::WebhookSink;
use crate::events::IdGenerator;
use crate::media::recorder::{describe_finished_with, recording_path_as, RecordingFormat};

/// The running event store.
pub struct EventsRuntime {
    /// The outbox.
    pub outbox: Arc<Outbox>,
    /// Its writer.
    pub appender: Appender,
    /// Open call records.
    pub records: Arc<CallRecords>,
}

/// How long a hung-up call's record waits for after-call work and its
/// recording before it goes out incomplete: the longest configured ACW
/// (at least five minutes' worth: an admin may add a group with a longer
/// one while running) plus a margin (agents may extend theirs).
fn close_after(config: &Config) -> Duration {
    let acw = config
        .groups
        .iter()
        .map(|g| g.acw_secs)
        .max()
        .unwrap_or(0)
        .max(300);
    Duration::from_secs(acw.saturating_mul(2).saturating_add(120))
}

/// Open the outbox, start its writer, the call records and the configured
/// sinks.
pub fn start(
    config: &Config,
    queues: Option<&Queues>,
    recordings: Option<&RecordingSettings>,
    shutdown: CancellationToken,
) -> Result<EventsRuntime, super::SwitchError> {
    if !config.nats.is_empty() && !cfg!(feature = "nats") {
        return Err(super::SwitchError::NatsNotBuilt);
    }
    let path = config.events_db_path();
    if let Some(parent) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(parent) {
            warn!(dir = %parent.display(), error = %e, "cannot create the events directory");
        }
    }
    let outbox = Arc::new(Outbox::configured_as(
        config.store.url.as_deref(),
        &config.node_id(),
        &path,
    )?);
    let appender = Appender::start(outbox.clone()).map_err(|e| OutboxError::Io {
        db: outbox.database().to_string(),
        source: e,
    })?;
    let (bus, _) = tokio::sync::broadcast::channel(4096);
    let records = Arc::new(CallRecords::new(appender.clone(), close_after(config), bus));
    close_interrupted_calls(&outbox, recordings);
    for w in &config.webhooks {
        let name = format!("webhook:{}", w.name);
        let policy = RetryPolicy {
            base_ms: i64::try_from(w.retry_base_ms.max(1)).unwrap_or(i64::MAX),
            cap_ms: i64::try_from(w.retry_cap_secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX),
            max_attempts: w.max_attempts.max(1),
        };
        outbox.register_sink(&name, policy)?;
        let sink = WebhookSink {
            name,
            url: w.url.clone(),
            secret: w.secret.clone().into_bytes(),
            timeout: Duration::from_secs(w.timeout_secs.max(1)),
            concurrency: 8,
            idle_poll: Duration::from_secs(1),
        };
        let (outbox, stop, url) = (outbox.clone(), shutdown.clone(), w.url.clone());
        tokio::spawn(async move {
            if let Err(e) = sink.run(outbox, stop).await {
                warn!(%url, error = %e, "webhook sink stopped");
            }
        });
    }
    #[cfg(feature = "nats")]
    for n in &config.nats {
        let name = format!("nats:{}", n.name);
        let policy = RetryPolicy {
            base_ms: i64::try_from(n.retry_base_ms.max(1)).unwrap_or(i64::MAX),
            cap_ms: i64::try_from(n.retry_cap_secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX),
            max_attempts: n.max_attempts.max(1),
        };
        outbox.register_sink(&name, policy)?;
        let mut sink = crate::events::nats::NatsSink::new(name, n.url.clone());
        sink.subject_prefix = n.subject_prefix.clone();
        sink.stream = n.stream.clone();
        let (outbox, stop) = (outbox.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = sink.run(outbox, stop).await {
                warn!(error = %e, "NATS sink stopped");
            }
        });
    }
    if let Some(dir) = &config.events.jsonl_dir {
        outbox.register_sink("jsonl", RetryPolicy::default())?;
        let sink = JsonlSink {
            name: "jsonl".into(),
            dir: dir.clone(),
            batch: 256,
            idle_poll: Duration::from_secs(1),
        };
        tokio::spawn(sink.run(outbox.clone(), shutdown));
    }
    if let Some(q) = queues {
        watch_agent_states(q, config, appender.clone(), records.clone());
    }
    info!(db = %outbox.database(), webhooks = config.webhooks.len(), "events outbox open");
    Ok(EventsRuntime {
        outbox,
        appender,
        records,
    })
}

/// The recording of a cut-off call, if the crash left one: the file its
/// call opened (`recording_path_as` of its tenant, call id and the local date
/// it connected on — or started or was last heard of, around midnight),
/// repaired at this start.
fn find_recording(
    settings: &RecordingSettings,
    call: &crate::events::replay::CutOff,
) -> Option<crate::events::model::RecordingInfo> {
    let mut dates = Vec::with_capacity(3);
    for ms in [
        call.connected_ms.unwrap_or(call.started_ms),
        call.started_ms,
        call.last_ms,
    ] {
        let secs = u64::try_from(ms / 1000).unwrap_or(0);
        let date = crate::util::local_date(secs, settings.utc_offset_minutes);
        if !dates.contains(&date) {
            dates.push(date);
        }
    }
    // The configured format first; a call recorded before the format was
    // changed is found under its own extension.
    let mut formats = vec![settings.format];
    formats.extend(
        RecordingFormat::ALL
            .iter()
            .filter(|f| **f != settings.format),
    );
    let path = dates.into_iter().find_map(|date| {
        formats.iter().find_map(|&format| {
            let p = recording_path_as(&settings.dir, &call.tenant, date, &call.call_id, format);
            p.is_file().then_some(p)
        })
    })?;
    match describe_finished_with(&path, settings.seal.as_ref()) {
        Ok(meta) => Some(crate::call::recording_info(settings, &meta)),
        Err(e) => {
            warn!(call = %call.call_id, error = %e, "recording of a cut-off call not linked");
            None
        }
    }
}

/// Calls a crash cut off get their `call.ended` (incomplete, a system
/// fault) before any new call starts (events issue §2), with the recording
/// the crash left linked (issue 12 item 4).
fn close_interrupted_calls(outbox: &Outbox, recordings: Option<&RecordingSettings>) {
    let calls = match outbox.unended_calls(UNENDED_WINDOW) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot look for calls cut off by a crash");
            return;
        }
    };
    close_calls(outbox, &calls, recordings, "hotline-restart");
}

/// How many of the last stored events are searched for calls left open.
const UNENDED_WINDOW: i64 = 2_000_000;

/// The records of the calls a dead node anchored (docs/ha.md §4), closed
/// by the survivor that took its legs over: `call.ended` incomplete, a
/// system fault, `hangup_reason = "node-failure"` (its recordings are on
/// the dead node's disk: not linked). Blocking.
pub fn close_dead_nodes_calls(outbox: &Outbox, node: &str) {
    match outbox.unended_calls_of(node, UNENDED_WINDOW) {
        Ok(calls) => close_calls(outbox, &calls, None, "node-failure"),
        Err(e) => warn!(%node, error = %e, "cannot look for a dead node's open calls"),
    }
}

/// Close the records of `calls` (their stored events), recording why.
fn close_calls(
    outbox: &Outbox,
    calls: &[(String, Vec<String>)],
    recordings: Option<&RecordingSettings>,
    reason: &str,
) {
    if calls.is_empty() {
        return;
    }
    let ids: Arc<dyn crate::events::IdSource> = Arc::new(IdGenerator::new(
        "restart",
        (crate::util::unix_now_ms().max(0) as u64).saturating_mul(1000),
    ));
    let mut closed = Vec::new();
    let mut linked = 0usize;
    for (call, bodies) in calls {
        let events: Vec<crate::events::Event> =
            match bodies.iter().map(|b| serde_json::from_str(b)).collect() {
                Ok(evs) => evs,
                Err(e) => {
                    warn!(%call, error = %e, "stored event unreadable: record left open");
                    continue;
                }
            };
        let recording = match (recordings, replay::cut_off(&events)) {
            (Some(settings), Ok(facts)) if !facts.recording_known => {
                find_recording(settings, &facts)
            }
            _ => None,
        };
        let closing =
            match replay::close_interrupted_because(ids.clone(), &events, recording, reason) {
                Ok(c) => c,
                Err(e) => {
                    warn!(%call, error = %e, "record of a cut-off call not closed");
                    continue;
                }
            };
        let mut out = Vec::with_capacity(closing.events.len());
        for ev in &closing.events {
            match serde_json::to_string(ev) {
                Ok(body) => out.push(NewEvent {
                    id: ev.id.clone(),
                    call_id: ev.call_id.clone(),
                    kind: ev.body.kind().into(),
                    body_json: body,
                }),
                Err(e) => warn!(%call, error = %e, "record not serialisable"),
            }
        }
        if out.len() == closing.events.len() {
            linked += out.len() - 1;
            closed.extend(out);
        }
    }
    match outbox.append(&closed) {
        Ok(()) if reason == "hotline-restart" => warn!(
            calls = closed.len() - linked,
            recordings_linked = linked,
            "records of calls cut off by the last stop closed (incomplete, hotline-restart)"
        ),
        Ok(()) => warn!(
            calls = closed.len() - linked,
            reason, "records of a dead node's calls closed (incomplete, a system fault)"
        ),
        Err(e) => warn!(error = %e, "records of cut-off calls not closed"),
    }
}

/// Where agents' state changes go: `agent.state` events in the outbox
/// and on the live bus, and the call records waiting for an agent's
/// after-call work to end. With one ACD for several nodes the events are
/// written once (on the leader, [`WatchScope::Once`]) and every node keeps
/// its own records and tells its own live clients
/// ([`WatchScope::EveryNode`]; their event ids are the node's own).
fn watch_agent_states(q: &Queues, config: &Config, appender: Appender, records: Arc<CallRecords>) {
    let make = agent_state_events(config);
    let in_acw = |n: &AgentStateNotice| n.state == crate::acd::AgentState::AfterCallWork;
    if config.store.nats.is_none() {
        q.watch_agent_states(
            Box::new(move |n| {
                records.agent_state(&n.agent, in_acw(n));
                if let Some((event, body)) = make(n) {
                    live(&records, &event);
                    outbox(&appender, n, &event, body);
                }
            }),
            WatchScope::Once,
        );
        return;
    }
    q.watch_agent_states(
        Box::new(move |n| {
            if let Some((event, body)) = make(n) {
                outbox(&appender, n, &event, body);
            }
        }),
        WatchScope::Once,
    );
    let make = agent_state_events(config);
    q.watch_agent_states(
        Box::new(move |n| {
            records.agent_state(&n.agent, in_acw(n));
            if let Some((event, _)) = make(n) {
                live(&records, &event);
            }
        }),
        WatchScope::EveryNode,
    );
}

fn live(records: &CallRecords, event: &crate::events::Event) {
    if records.bus().receiver_count() > 0 {
        let _ = records.bus().send(Arc::new(event.clone()));
    }
}

fn outbox(appender: &Appender, n: &AgentStateNotice, event: &crate::events::Event, body: String) {
    appender.send(vec![NewEvent {
        id: event.id.clone(),
        call_id: Some(format!("agent:{}", n.agent)),
        kind: "agent.state".into(),
        body_json: body,
    }]);
}

/// The `agent.state` event of a change, and its JSON.
fn agent_state_events(
    config: &Config,
) -> impl Fn(&AgentStateNotice) -> Option<(crate::events::Event, String)> + Send + 'static {
    // Ids stay unique across restarts: the counter starts at boot time (ms).
    let ids = Arc::new(IdGenerator::new(
        "hotline",
        crate::util::unix_now_ms().max(0) as u64,
    ));
    let builder = Mutex::new(AgentEvents::new(ids));
    let tenants: HashMap<String, String> = config
        .agents
        .iter()
        .map(|a| {
            let id = a.job_number.clone().unwrap_or_else(|| a.user.clone());
            (id, a.tenant.clone())
        })
        .collect();
    move |n: &AgentStateNotice| {
        let Ok(state) =
            serde_json::to_value(n.state).and_then(serde_json::from_value::<AgentStateName>)
        else {
            warn!(state = ?n.state, "agent state without an event name");
            return None;
        };
        let tenant = tenants.get(&n.agent).map_or("default", String::as_str);
        let call = n.call.map(|c| c.0.to_string());
        // The ACD's shell numbers the changes and keeps the count with the
        // agent's state, so seq goes on across restarts.
        let change = Numbered {
            seq: n.seq,
            previous: n.previous.and_then(|p| {
                serde_json::to_value(p)
                    .and_then(serde_json::from_value::<AgentStateName>)
                    .ok()
            }),
            state,
        };
        let event = builder.lock().ok()?.numbered(
            crate::util::unix_now_ms(),
            tenant,
            &n.agent,
            change,
            n.reason.as_deref(),
            call.as_deref(),
        );
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, agent = %n.agent, "agent.state event");
                return None;
            }
        };
        match serde_json::to_string(&event) {
            Ok(body) => Some((event, body)),
            Err(e) => {
                warn!(error = %e, "agent.state event");
                None
            }
        }
    }
}
