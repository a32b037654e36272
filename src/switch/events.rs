//! Starting event delivery (events issue §2, §3): opens the outbox, registers
//! and runs its sinks (`[[webhook]]`, `[events] jsonl_dir`), and turns the
//! ACD's agent state changes into `agent.state` events (ordered per agent:
//! the outbox's ordering key is `agent:<id>`). Call events join when the
//! call room records them (not yet).
//!
//! Without any sink nothing is recorded: an outbox nobody drains would only
//! grow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::call::queue::{AgentStateNotice, Queues};
use crate::config::Config;
use crate::events::agent::AgentEvents;
use crate::events::backoff::RetryPolicy;
use crate::events::jsonl::JsonlSink;
use crate::events::model::AgentStateName;
use crate::events::outbox::{NewEvent, Outbox, OutboxError};
use crate::events::webhook::WebhookSink;
use crate::events::IdGenerator;

/// Open the outbox and start the configured sinks; `None` without sinks.
pub fn start(
    config: &Config,
    queues: Option<&Queues>,
    shutdown: CancellationToken,
) -> Result<Option<Arc<Outbox>>, OutboxError> {
    if config.webhooks.is_empty() && config.events.jsonl_dir.is_none() {
        return Ok(None);
    }
    let path = config
        .events
        .db
        .clone()
        .unwrap_or_else(|| config.data.dir.join("events.db"));
    if let Some(parent) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(parent) {
            warn!(dir = %parent.display(), error = %e, "cannot create the events directory");
        }
    }
    let outbox = Arc::new(Outbox::open(&path)?);
    for w in &config.webhooks {
        let name = format!("webhook:{}", w.name);
        outbox.register_sink(&name, RetryPolicy::default())?;
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
        q.watch_agent_states(agent_state_watcher(config, outbox.clone()));
    }
    info!(db = %path.display(), webhooks = config.webhooks.len(), "events outbox open");
    Ok(Some(outbox))
}

/// The ACD watcher that appends `agent.state` events.
fn agent_state_watcher(
    config: &Config,
    outbox: Arc<Outbox>,
) -> crate::call::queue::AgentStateWatcher {
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
    Box::new(move |n: &AgentStateNotice| {
        let Ok(state) =
            serde_json::to_value(n.state).and_then(serde_json::from_value::<AgentStateName>)
        else {
            warn!(state = ?n.state, "agent state without an event name");
            return;
        };
        let tenant = tenants.get(&n.agent).map_or("default", String::as_str);
        let call = n.call.map(|c| c.0.to_string());
        let event = match builder.lock() {
            Ok(mut b) => b.changed(
                crate::util::unix_now_ms(),
                tenant,
                &n.agent,
                state,
                n.reason.as_deref(),
                call.as_deref(),
            ),
            Err(_) => return,
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, agent = %n.agent, "agent.state event");
                return;
            }
        };
        let body = match serde_json::to_string(&event) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "agent.state event");
                return;
            }
        };
        let appended = outbox.append(&[NewEvent {
            id: event.id.clone(),
            call_id: Some(format!("agent:{}", n.agent)),
            kind: "agent.state".into(),
            body_json: body,
        }]);
        if let Err(e) = appended {
            warn!(error = %e, "agent.state not recorded");
        }
    })
}
