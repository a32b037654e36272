//! The ACD actor: one task owning the pure [`acd::Engine`] (DESIGN.md
//! "acd::Engine (one actor)"). Calls and agents' feature codes send it
//! [`Input`]s through a [`Queues`] handle; it drives the engine with the
//! time since the actor started, sleeps until the engine's next deadline,
//! and delivers each [`Output`] to the call it concerns as [`QueueNews`].
//! Agent state changes are logged (and, with the events issue, emitted).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::acd::{self, CallId, Engine, Input, Output};

/// What the queue tells one waiting call.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueNews {
    /// Ring this agent's device.
    Offer {
        /// Agent id.
        agent: String,
        /// The agent's SIP user.
        device: String,
    },
    /// Stop ringing this agent (no answer, answered elsewhere, …).
    Cancel {
        /// Agent id.
        agent: String,
    },
    /// Tell the caller their position and expected wait.
    Announce {
        /// 1-based position.
        position: usize,
        /// Estimated wait.
        estimated_wait: Option<Duration>,
    },
    /// The call waited too long or the queue is full; take the next step.
    Timeout {
        /// What the group's configuration (or the call's override) says
        /// to do.
        next: acd::NextStep,
        /// Waited too long, or the queue was full.
        reason: acd::TimeoutReason,
    },
}

/// Sent when the ACD has reserved an agent for a callback.
pub use super::callback::CallbackOrder;

enum Message {
    Enqueue {
        input: Input,
        call: CallId,
        news: mpsc::UnboundedSender<QueueNews>,
    },
    /// A consultation of a group: the refusal (a full queue) is answered.
    Consult {
        input: Input,
        call: CallId,
        news: mpsc::UnboundedSender<QueueNews>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Input(Input),
    /// An input whose refusal the sender wants to hear (the CTI API).
    Try(Input, oneshot::Sender<Result<(), String>>),
    Stats(oneshot::Sender<serde_json::Value>),
    /// An agent's state, if the ACD knows the agent.
    AgentState(String, oneshot::Sender<Option<acd::AgentState>>),
    Watch(AgentStateWatcher),
    /// New agents and groups (admin API, config reload).
    Reconfigure(
        acd::AcdConfig,
        oneshot::Sender<Result<acd::Reconfigured, String>>,
    ),
}

/// An agent entered a state (the ACD's `AgentState` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStateNotice {
    /// Agent id (job number).
    pub agent: String,
    /// The new state.
    pub state: acd::AgentState,
    /// Not-ready reason, if any.
    pub reason: Option<String>,
    /// The call the agent is on, if any.
    pub call: Option<CallId>,
}

/// Told about every agent state change (the events outbox).
pub type AgentStateWatcher = Box<dyn Fn(&AgentStateNotice) + Send>;

/// Handle to the ACD actor; cheap to clone.
#[derive(Clone)]
pub struct Queues {
    tx: mpsc::UnboundedSender<Message>,
    next_call: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
}

impl Queues {
    /// Start the actor with `config`. Callback orders (an agent reserved
    /// for a callback) arrive on the returned receiver.
    pub fn start(
        config: acd::AcdConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallbackOrder>), acd::AcdError> {
        let epoch = tokio::time::Instant::now();
        let engine = Engine::new(config, Duration::ZERO)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (orders_tx, orders_rx) = mpsc::unbounded_channel();
        tokio::spawn(run(engine, epoch, rx, orders_tx));
        Ok((
            Self {
                tx,
                next_call: Arc::new(AtomicU64::new(1)),
                epoch,
            },
            orders_rx,
        ))
    }

    /// An agent answered a call put through to them without the queue:
    /// the ACD keeps them busy on it (no queued call is offered to them)
    /// until `CallEnded` with the returned id, then after-call work.
    /// `None` when the ACD has nothing to keep them from (not an agent,
    /// not idle: signed out, not ready, already busy; no skill group).
    pub async fn direct_answered(&self, agent: &str, caller: &str) -> Option<CallId> {
        let call = CallId(self.next_call.fetch_add(1, Ordering::Relaxed));
        let input = Input::DirectAnswered {
            call,
            agent: agent.to_string(),
            caller: caller.to_string(),
        };
        match self.try_input(input).await {
            Ok(()) => Some(call),
            Err(why) => {
                debug!(%agent, %why, "a direct call the ACD does not track");
                None
            }
        }
    }

    /// Schedule a callback to `number` in `group` (a supervisor calling
    /// back a missed caller); it queues as if it arrived now.
    pub fn schedule_callback(&self, group: &str, number: &str, priority: u8) -> CallId {
        let call = CallId(self.next_call.fetch_add(1, Ordering::Relaxed));
        self.input(Input::ScheduleCallback {
            call,
            group: group.to_string(),
            number: number.to_string(),
            priority,
        });
        call
    }

    /// The engine's clock: time since the actor started.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Queue a new call in `group`; news about it arrives on the returned
    /// receiver until the call leaves the queue.
    pub fn enqueue(
        &self,
        group: &str,
        priority: u8,
        caller: &str,
    ) -> (CallId, mpsc::UnboundedReceiver<QueueNews>) {
        self.enqueue_with(group, priority, caller, None, None)
    }

    /// [`Self::enqueue`] with this call's own longest wait and next step
    /// on timeout (an IVR `queue` node), overriding the group's.
    pub fn enqueue_with(
        &self,
        group: &str,
        priority: u8,
        caller: &str,
        max_wait: Option<Duration>,
        on_timeout: Option<acd::NextStep>,
    ) -> (CallId, mpsc::UnboundedReceiver<QueueNews>) {
        self.enqueue_at(group, priority, caller, self.now(), max_wait, on_timeout)
    }

    /// [`Self::enqueue_with`] for a call that arrived at `arrived` (the
    /// engine's clock, [`Self::now`]): it takes the place that arrival and
    /// `priority` give it (a caller whose blind transfer failed goes back
    /// to where they were).
    pub fn enqueue_at(
        &self,
        group: &str,
        priority: u8,
        caller: &str,
        arrived: Duration,
        max_wait: Option<Duration>,
        on_timeout: Option<acd::NextStep>,
    ) -> (CallId, mpsc::UnboundedReceiver<QueueNews>) {
        let call = CallId(self.next_call.fetch_add(1, Ordering::Relaxed));
        let (news, rx) = mpsc::unbounded_channel();
        let input = Input::Enqueue {
            call,
            group: group.to_string(),
            priority,
            caller: caller.to_string(),
            arrived,
            max_wait,
            on_timeout,
        };
        self.tx.send(Message::Enqueue { input, call, news }).ok();
        (call, rx)
    }

    /// An agent on a call consults `group` (attended transfer to a skill
    /// group, [`Input::Consult`]): offers for the consultation arrive on
    /// the receiver like a queued caller's. `Err` carries the ACD's reason
    /// (a full queue, an unknown group).
    pub async fn consult(
        &self,
        group: &str,
        priority: u8,
        caller: &str,
    ) -> Result<(CallId, mpsc::UnboundedReceiver<QueueNews>), String> {
        let call = CallId(self.next_call.fetch_add(1, Ordering::Relaxed));
        let (news, rx) = mpsc::unbounded_channel();
        let input = Input::Consult {
            call,
            group: group.to_string(),
            priority,
            caller: caller.to_string(),
        };
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Consult {
                input,
                call,
                news,
                reply,
            })
            .map_err(|_| "the ACD is not running".to_string())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the ACD is not running".to_string()))?;
        Ok((call, rx))
    }

    /// Tell the engine something happened.
    pub fn input(&self, input: Input) {
        self.tx.send(Message::Input(input)).ok();
    }

    /// Feed an input and hear whether the ACD took it (an agent operation
    /// from the API: a wrong state is the user's error, e.g. "ready" while
    /// talking). `Err` carries the ACD's reason.
    pub async fn try_input(&self, input: Input) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Message::Try(input, tx))
            .map_err(|_| "the ACD is not running".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the ACD is not running".to_string()))
    }

    /// Whether anyone of `group` is signed in (any state but logged out);
    /// `None` when the group is unknown or the ACD is gone.
    pub async fn staffed(&self, group: &str) -> Option<bool> {
        let stats = self.stats().await?;
        let g = stats["stats"]["groups"]
            .as_array()?
            .iter()
            .find(|g| g["group"] == group)?;
        let signed_in = g["agents_by_state"]
            .as_array()?
            .iter()
            .filter(|e| e[0] != "logged_out")
            .filter_map(|e| e[1].as_u64())
            .sum::<u64>();
        Some(signed_in > 0)
    }

    /// The state agent `agent` (job number) is in; `None` when the ACD
    /// does not know the agent (or is gone).
    pub async fn agent_state(&self, agent: &str) -> Option<acd::AgentState> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Message::AgentState(agent.to_string(), tx))
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Tell `watcher` about every agent state change from now on.
    pub fn watch_agent_states(&self, watcher: AgentStateWatcher) {
        self.tx.send(Message::Watch(watcher)).ok();
    }

    /// Put new agents and groups in force without dropping a call; `Err`
    /// carries the ACD's reason for refusing (nothing changed then).
    pub async fn reconfigure(&self, config: acd::AcdConfig) -> Result<acd::Reconfigured, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Message::Reconfigure(config, tx))
            .map_err(|_| "the ACD is not running".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the ACD is not running".to_string()))
    }

    /// Live statistics (per group and agent) as JSON.
    pub async fn stats(&self) -> Option<serde_json::Value> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Stats(tx)).ok()?;
        rx.await.ok()
    }
}

async fn run(
    mut engine: Engine,
    epoch: tokio::time::Instant,
    mut rx: mpsc::UnboundedReceiver<Message>,
    orders: mpsc::UnboundedSender<CallbackOrder>,
) {
    let mut calls: HashMap<CallId, mpsc::UnboundedSender<QueueNews>> = HashMap::new();
    let mut watchers: Vec<AgentStateWatcher> = Vec::new();
    loop {
        let deadline = engine.poll_timeout().map(|d| epoch + d);
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let now = epoch.elapsed();
                match msg {
                    Message::Enqueue { input, call, news } => {
                        calls.insert(call, news);
                        apply(&mut engine, now, input);
                    }
                    Message::Consult { input, call, news, reply } => {
                        calls.insert(call, news);
                        let r = engine.handle(now, input).map_err(|e| e.to_string());
                        if r.is_err() {
                            calls.remove(&call);
                        }
                        reply.send(r).ok();
                    }
                    Message::Input(input) => apply(&mut engine, now, input),
                    Message::Try(input, reply) => {
                        reply.send(engine.handle(now, input).map_err(|e| e.to_string())).ok();
                    }
                    Message::Stats(reply) => {
                        let mut value = serde_json::json!({
                            "stats": engine.stats(now),
                            "missed_calls": engine.missed_calls(),
                        });
                        durations_as_seconds(&mut value);
                        reply.send(value).ok();
                    }
                    Message::AgentState(agent, reply) => {
                        reply.send(engine.agent_state(&agent).map(|(s, _)| s)).ok();
                    }
                    Message::Watch(w) => watchers.push(w),
                    Message::Reconfigure(config, reply) => {
                        reply.send(engine.reconfigure(now, config).map_err(|e| e.to_string())).ok();
                    }
                }
            }
            _ = sleep_until(deadline) => engine.handle_timeout(epoch.elapsed()),
        }
        while let Some(out) = engine.poll_output() {
            if let Output::AgentState {
                agent,
                state,
                reason,
                call,
                ..
            } = &out
            {
                let notice = AgentStateNotice {
                    agent: agent.clone(),
                    state: *state,
                    reason: reason.clone(),
                    call: *call,
                };
                for w in &watchers {
                    w(&notice);
                }
            }
            deliver(&mut calls, &orders, out);
        }
        calls.retain(|_, tx| !tx.is_closed());
    }
}

/// Serde writes a `Duration` as `{"secs", "nanos"}`; an API reader wants
/// seconds. Rewrites every such object in place.
fn durations_as_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if map.len() == 2 {
                if let (Some(secs), Some(nanos)) = (
                    map.get("secs").and_then(|x| x.as_u64()),
                    map.get("nanos").and_then(|x| x.as_u64()),
                ) {
                    *v = serde_json::json!(secs as f64 + nanos as f64 / 1e9);
                    return;
                }
            }
            map.values_mut().for_each(durations_as_seconds);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(durations_as_seconds),
        _ => {}
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn apply(engine: &mut Engine, now: Duration, input: Input) {
    let what = format!("{input:?}");
    if let Err(e) = engine.handle(now, input) {
        // A wrong-state input (a late answer, a duplicate hang-up) is the
        // caller's mistake, not the engine's: log it once and go on.
        warn!(error = %e, input = %what, "ACD refused an input");
    }
}

fn deliver(
    calls: &mut HashMap<CallId, mpsc::UnboundedSender<QueueNews>>,
    orders: &mpsc::UnboundedSender<CallbackOrder>,
    out: Output,
) {
    let send = |calls: &HashMap<CallId, mpsc::UnboundedSender<QueueNews>>,
                call: CallId,
                news: QueueNews| {
        if let Some(tx) = calls.get(&call) {
            tx.send(news).ok();
        }
    };
    match out {
        Output::Offer {
            call,
            agent,
            device,
            ..
        } => send(calls, call, QueueNews::Offer { agent, device }),
        Output::CancelOffer {
            call,
            agent,
            reason,
        } => {
            debug!(%call, %agent, ?reason, "offer withdrawn");
            send(calls, call, QueueNews::Cancel { agent })
        }
        Output::Announce {
            call,
            position,
            estimated_wait,
        } => send(
            calls,
            call,
            QueueNews::Announce {
                position,
                estimated_wait,
            },
        ),
        Output::QueueTimeout {
            call,
            group,
            reason,
            next,
        } => {
            info!(%call, %group, ?reason, ?next, "queue timeout");
            send(calls, call, QueueNews::Timeout { next, reason })
        }
        Output::Overflowed {
            call,
            from,
            to,
            reason,
        } => {
            info!(%call, %from, %to, ?reason, "overflowed to another group")
        }
        Output::OfferCallback {
            call,
            agent,
            device,
            number,
            attempt,
        } => {
            info!(%call, %agent, %number, attempt, "callback: ringing the agent first");
            let (news, rx) = mpsc::unbounded_channel();
            calls.insert(call, news);
            let order = CallbackOrder {
                call,
                agent,
                device,
                number,
                attempt,
                news: rx,
            };
            if orders.send(order).is_err() {
                warn!(%call, "no one to dial callbacks");
            }
        }
        Output::AgentState {
            agent,
            state,
            reason,
            call,
            ..
        } => {
            info!(%agent, %state, reason = reason.as_deref().unwrap_or(""), call = ?call, "agent state")
        }
        Output::Queue(event) => debug!(?event, "queue event"),
    }
}
