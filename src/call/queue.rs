//! The ACD actor: one task owning the pure [`acd::Engine`] (DESIGN.md
//! "acd::Engine (one actor)"). Calls and agents' feature codes send it
//! [`Input`]s through a [`Queues`] handle; it drives the engine on Unix
//! time ([`ShellClock`]), sleeps until the engine's next deadline or the next
//! local midnight (then it starts a new day: REQUIREMENTS §7/§8 figures are
//! "today" in the centre's time zone, issue 12 item 7), and delivers each
//! [`Output`] to the call it concerns as [`QueueNews`]. Agent state changes
//! are numbered per agent and told to the watchers (`agent.state` events).
//!
//! A restart loses nothing the centre relies on (issue 12 item 3): with a
//! store, everything the engine keeps (agents' states, pending callbacks,
//! missed calls, previous service, the day's figures, each agent's event
//! seq; `queue_store`) is committed after each batch of messages, in one
//! transaction, *before* any offer, event or reply of that batch goes out:
//! nothing anyone outside has heard of can be lost by a crash. At start
//! [`Queues::restore`] seeds the engine from it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::queue_store::{self, AgentNumbers, Kept};
use super::sleep_until;
use super::ShellClock;
use crate::acd::{self, CallId, Engine, Input, Output};
use crate::store::Store;
use crate::time::Time;

/// Most messages handled before their changes are committed together.
const BATCH: usize = 64;

/// What the queue tells one waiting call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// What the handle sends the actor (or, with several nodes, the
/// `acd_cluster` router that passes it to the leader's actor).
pub(super) enum Message {
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
    Snapshot(oneshot::Sender<acd::Stats>),
    /// An agent's state, if the ACD knows the agent.
    AgentState(String, oneshot::Sender<Option<acd::AgentState>>),
    /// A watcher and where it runs (a node's own ACD runs every one; the
    /// scope matters to several nodes' router, `acd_cluster`).
    Watch(
        AgentStateWatcher,
        #[cfg_attr(not(feature = "nats"), allow(dead_code))] WatchScope,
    ),
    /// New agents and groups (admin API, config reload).
    Reconfigure(
        acd::AcdConfig,
        oneshot::Sender<Result<acd::Reconfigured, String>>,
    ),
    /// Answered once everything before it is kept.
    Kept(oneshot::Sender<()>),
    /// The node stops: a leader of several nodes' one ACD gives its lease
    /// up (answered once it has); a node's own ACD just keeps.
    Stop(oneshot::Sender<()>),
    /// Seed the engine from what was kept; `registered` are the SIP users
    /// whose phones are registered now.
    Restore {
        registered: HashSet<String>,
        reply: oneshot::Sender<()>,
    },
}

/// Where a watcher of agents' states runs when several nodes share one
/// ACD (`acd_cluster`); a node's own ACD runs every watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchScope {
    /// Once for the hotline, on the node leading the ACD (the
    /// `agent.state` events).
    Once,
    /// On every node (what each node keeps of its own calls: their
    /// records wait for the agent's after-call work to end).
    EveryNode,
}

/// An agent entered a state (the ACD's `AgentState` output).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentStateNotice {
    /// Agent id (job number).
    pub agent: String,
    /// The new state.
    pub state: acd::AgentState,
    /// Not-ready reason, if any.
    pub reason: Option<String>,
    /// The call the agent is on, if any.
    pub call: Option<CallId>,
    /// The number of this change among the agent's changes (1, 2, 3 …),
    /// going on across restarts: the `agent.state` event's `seq`.
    pub seq: u32,
    /// The state before, if the agent had one.
    pub previous: Option<acd::AgentState>,
}

/// Told about every agent state change (the events outbox).
pub type AgentStateWatcher = Box<dyn Fn(&AgentStateNotice) + Send>;

/// Handle to the ACD actor; cheap to clone.
#[derive(Clone)]
pub struct Queues {
    tx: mpsc::UnboundedSender<Message>,
    next_call: Arc<AtomicU64>,
    clock: ShellClock,
}

/// Where the ACD keeps what a restart must not lose, and the centre's
/// time zone (its day begins at local midnight).
#[derive(Clone)]
pub struct AcdDurability {
    /// `hotline.db`.
    pub store: Store,
    /// Minutes east of UTC (China Standard Time: 480).
    pub utc_offset_minutes: i32,
}

/// Why the ACD cannot start.
#[derive(Debug, thiserror::Error)]
pub enum QueuesError {
    /// The configuration is refused.
    #[error(transparent)]
    Acd(#[from] acd::AcdError),
    /// What was kept cannot be read.
    #[error("the ACD's kept state: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The nodes' one ACD cannot start (NATS, the store's call ids).
    #[error("the one ACD of several nodes: {0}")]
    Cluster(String),
}

impl Queues {
    /// Start the actor with `config`, keeping what a restart must not lose
    /// in `durable`'s store (read back here; [`Queues::restore`] applies
    /// it). Callback orders (an agent reserved for a callback) arrive on
    /// the returned receiver.
    pub fn start(
        config: acd::AcdConfig,
        durable: Option<AcdDurability>,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallbackOrder>), QueuesError> {
        let clock = ShellClock::start();
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let next = Arc::new(AtomicU64::new(0));
        let tx = spawn_actor(ActorSetup {
            config,
            durable,
            fence: None,
            orders,
            next_call: next.clone(),
            clock,
        })?;
        Ok((Self::from_parts(tx, next, clock), orders_rx))
    }

    /// A handle whose messages go to `tx` (an actor, or the router of
    /// several nodes), numbering calls from `next_call`.
    pub(super) fn from_parts(
        tx: mpsc::UnboundedSender<Message>,
        next_call: Arc<AtomicU64>,
        clock: ShellClock,
    ) -> Self {
        Self {
            tx,
            next_call,
            clock,
        }
    }

    /// Seed the ACD from what was kept (once, at start, after the
    /// watchers are in place so they hear of the agents the restart signs
    /// out): agents whose phone is registered (`registered` SIP users) are
    /// signed in again as they were, the others signed out; pending
    /// callbacks, missed calls, previous service and the day's figures
    /// come back. Returns once it is done (and kept).
    pub async fn restore(&self, registered: HashSet<String>) {
        let (reply, done) = oneshot::channel();
        if self.tx.send(Message::Restore { registered, reply }).is_ok() {
            done.await.ok();
        }
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
            max_attempts: None,
        });
        call
    }

    /// A fresh call id (a follow-up's callback, kept by its campaign
    /// before the ACD hears of it).
    pub fn new_call_id(&self) -> CallId {
        CallId(self.next_call.fetch_add(1, Ordering::Relaxed))
    }

    /// Number new calls after `call` (a follow-up's callback id kept by
    /// its campaign, handed to the ACD again at start).
    pub fn number_after(&self, call: CallId) {
        self.next_call
            .fetch_max(call.0.saturating_add(1), Ordering::Relaxed);
    }

    /// The engine's clock: Unix time in whole milliseconds
    /// ([`ShellClock`]).
    pub fn now(&self) -> Time {
        self.clock.now()
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
        arrived: Time,
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

    /// Resolves once everything sent to the ACD before it is kept (the
    /// ACD's state on disk): for a confirmation that must not outrun it.
    pub async fn kept(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Kept(tx)).is_ok() {
            rx.await.ok();
        }
    }

    /// The node stops (after its calls): everything sent before is kept
    /// and, leading several nodes' one ACD, the lease is given up so the
    /// next leader takes over at once (bounded: 3 s).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Stop(tx)).is_ok() {
            tokio::time::timeout(Duration::from_secs(3), rx).await.ok();
        }
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
    pub fn watch_agent_states(&self, watcher: AgentStateWatcher, scope: WatchScope) {
        self.tx.send(Message::Watch(watcher, scope)).ok();
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

    /// Live statistics (per group and agent), typed (`/metrics`).
    pub async fn snapshot(&self) -> Option<acd::Stats> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Snapshot(tx)).ok()?;
        rx.await.ok()
    }

    /// Live statistics (per group and agent) as JSON.
    pub async fn stats(&self) -> Option<serde_json::Value> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Stats(tx)).ok()?;
        rx.await.ok()
    }
}

/// What an ACD actor starts from.
pub(super) struct ActorSetup {
    pub config: acd::AcdConfig,
    pub durable: Option<AcdDurability>,
    /// The leader's lease epoch its writes are fenced with (several
    /// nodes); `None` on a single node.
    pub fence: Option<i64>,
    pub orders: mpsc::UnboundedSender<CallbackOrder>,
    /// The node's call counter: set here from what was kept on a single
    /// node; several nodes number from their block (`acd_cluster`).
    pub next_call: Arc<AtomicU64>,
    pub clock: ShellClock,
}

/// Start an ACD actor: the engine with `setup.config`, what was kept read
/// back from the store (applied by [`Message::Restore`]).
pub(super) fn spawn_actor(
    setup: ActorSetup,
) -> Result<mpsc::UnboundedSender<Message>, QueuesError> {
    let ActorSetup {
        config,
        durable,
        fence,
        orders,
        next_call,
        clock,
    } = setup;
    let within = config.previous_service.map(|p| p.within);
    let mut engine = Engine::new(config, clock.now())?;
    let (kept, store, offset) = match durable {
        Some(d) => {
            engine.track_changes();
            let kept = queue_store::load(&d.store)?;
            (kept, Some(d.store), d.utc_offset_minutes)
        }
        None => (
            Kept::default(),
            None,
            crate::ivr::calendar::DEFAULT_UTC_OFFSET_MINUTES,
        ),
    };
    if fence.is_none() {
        next_call.store(kept.next_call.max(1), Ordering::Relaxed);
    }
    let written = next_call.load(Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = Actor {
        engine,
        clock,
        offset,
        orders,
        calls: HashMap::new(),
        watchers: Vec::new(),
        numbers: kept.numbers,
        kept: Some(kept.snapshot),
        served_within: within,
        journal: store.map(|store| Journal {
            store,
            pending: Vec::new(),
            next_call_written: written,
            fence,
            failing: false,
        }),
        next_call,
        replies: Vec::new(),
    };
    tokio::spawn(actor.run(rx));
    Ok(tx)
}

/// The ACD's store and what was last written to it.
struct Journal {
    store: Store,
    /// Writes of the actor's own, committed with the next batch.
    pending: Vec<crate::store::AcdWrite>,
    next_call_written: u64,
    /// The lease epoch every write is fenced with (several nodes: their
    /// call ids come from blocks, not from a kept counter).
    fence: Option<i64>,
    /// The last commit failed (logged once until one succeeds again).
    failing: bool,
}

impl Journal {
    /// Commit `writes` in one transaction (on the blocking pool; the actor
    /// waits for it).
    async fn commit(&mut self, writes: Vec<crate::store::AcdWrite>) {
        if writes.is_empty() {
            return;
        }
        let store = self.store.clone();
        let n = writes.len();
        let fence = self.fence;
        let r = tokio::task::spawn_blocking(move || store.save_acd_fenced(&writes, fence)).await;
        let failed = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("the writer task failed: {e}")),
        };
        match (failed, self.failing) {
            (Some(e), false) => {
                error!(error = %e, writes = n, "cannot keep the ACD's state: a restart now would lose it");
                self.failing = true;
            }
            (Some(_), true) => {}
            (None, true) => {
                warn!("the ACD's state is kept again");
                self.failing = false;
            }
            (None, false) => {}
        }
    }
}

/// A reply held until the batch's changes are kept.
type Reply = Box<dyn FnOnce() + Send>;

struct Actor {
    engine: Engine,
    clock: ShellClock,
    /// The centre's offset from UTC, in minutes (its day).
    offset: i32,
    orders: mpsc::UnboundedSender<CallbackOrder>,
    calls: HashMap<CallId, mpsc::UnboundedSender<QueueNews>>,
    watchers: Vec<AgentStateWatcher>,
    numbers: AgentNumbers,
    /// What was read at start, until [`Message::Restore`] applies it.
    kept: Option<acd::Snapshot>,
    /// Previous-service window (older services are forgotten at start).
    served_within: Option<Duration>,
    journal: Option<Journal>,
    next_call: Arc<AtomicU64>,
    replies: Vec<Reply>,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        loop {
            let deadline = self.engine.poll_timeout().map(|d| self.clock.instant(d));
            let midnight = acd::day::next_day_start(self.clock.now(), self.offset);
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg);
                    // Whatever else is waiting shares the commit.
                    for _ in 1..BATCH {
                        match rx.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
                _ = sleep_until(deadline) => self.engine.handle_timeout(self.clock.now()),
                _ = tokio::time::sleep_until(self.clock.instant(midnight)) => {}
            }
            self.new_day_if_due();
            self.settle().await;
        }
    }

    fn handle(&mut self, msg: Message) {
        let now = self.clock.now();
        match msg {
            Message::Enqueue { input, call, news } => {
                self.calls.insert(call, news);
                apply(&mut self.engine, now, input);
            }
            Message::Consult {
                input,
                call,
                news,
                reply,
            } => {
                self.calls.insert(call, news);
                let r = self.engine.handle(now, input).map_err(|e| e.to_string());
                if r.is_err() {
                    self.calls.remove(&call);
                }
                self.replies.push(Box::new(move || {
                    reply.send(r).ok();
                }));
            }
            Message::Input(input) => apply(&mut self.engine, now, input),
            Message::Try(input, reply) => {
                let r = self.engine.handle(now, input).map_err(|e| e.to_string());
                self.replies.push(Box::new(move || {
                    reply.send(r).ok();
                }));
            }
            Message::Stats(reply) => {
                let mut value = serde_json::json!({
                    "stats": self.engine.stats(now),
                    "day_start": self.engine.day_start(),
                    "missed_calls": self.engine.missed_calls(),
                });
                durations_as_seconds(&mut value);
                // After the batch is kept, like every answer: a reader
                // never sees a state a crash could still take back.
                self.replies.push(Box::new(move || {
                    reply.send(value).ok();
                }));
            }
            Message::Snapshot(reply) => {
                let stats = self.engine.stats(now);
                self.replies.push(Box::new(move || {
                    reply.send(stats).ok();
                }));
            }
            Message::AgentState(agent, reply) => {
                let state = self.engine.agent_state(&agent).map(|(s, _)| s);
                self.replies.push(Box::new(move || {
                    reply.send(state).ok();
                }));
            }
            Message::Watch(w, _) => self.watchers.push(w),
            Message::Kept(reply) | Message::Stop(reply) => self.replies.push(Box::new(move || {
                reply.send(()).ok();
            })),
            Message::Reconfigure(config, reply) => {
                let r = self
                    .engine
                    .reconfigure(now, config)
                    .map_err(|e| e.to_string());
                self.replies.push(Box::new(move || {
                    reply.send(r).ok();
                }));
            }
            Message::Restore { registered, reply } => {
                self.restore(now, &registered);
                self.replies.push(Box::new(move || {
                    reply.send(()).ok();
                }));
            }
        }
    }

    fn restore(&mut self, now: Time, registered: &HashSet<String>) {
        let Some(kept) = self.kept.take() else {
            warn!("the ACD was already restored");
            return;
        };
        let (agents, callbacks, missed) =
            (kept.agents.len(), kept.callbacks.len(), kept.missed.len());
        let today = acd::day::day_start(now, self.offset);
        let refused = self
            .engine
            .restore(now, today, kept, |device| registered.contains(device));
        for e in &refused {
            info!(error = %e, "kept ACD state not restored");
        }
        info!(
            agents,
            callbacks,
            missed_calls = missed,
            refused = refused.len(),
            day_start = %self.engine.day_start(),
            "ACD restored"
        );
        // Services older than the previous-service window are forgotten
        // (a month's worth are kept while the window is off).
        let window = self
            .served_within
            .unwrap_or(Duration::from_secs(30 * 86_400));
        if let Some(journal) = self.journal.as_mut() {
            let before = queue_store::unix_ms(now - window);
            journal
                .pending
                .push(crate::store::AcdWrite::ServedBefore(before));
        }
    }

    /// Local midnight passed: a new day for the figures.
    fn new_day_if_due(&mut self) {
        let now = self.clock.now();
        if acd::day::day_start(now, self.offset) > self.engine.day_start() {
            info!("a new day: the ACD's figures start from zero");
            apply(&mut self.engine, now, Input::NewDay);
        }
    }

    /// Keep what changed, then tell everyone: agent state watchers, the
    /// calls, the callback dialler, the senders waiting for a reply.
    async fn settle(&mut self) {
        let mut outputs = Vec::new();
        let mut notices = Vec::new();
        while let Some(out) = self.engine.poll_output() {
            if let Output::AgentState {
                agent,
                state,
                reason,
                call,
                ..
            } = &out
            {
                let (seq, previous) = self.numbers.next(agent, *state);
                notices.push(AgentStateNotice {
                    agent: agent.clone(),
                    state: *state,
                    reason: reason.clone(),
                    call: *call,
                    seq,
                    previous,
                });
            }
            outputs.push(out);
        }
        if let Some(journal) = self.journal.as_mut() {
            let mut writes = std::mem::take(&mut journal.pending);
            writes.extend(queue_store::writes(
                self.engine.take_changes(),
                &self.numbers,
            ));
            let next_call = self.next_call.load(Ordering::Relaxed);
            if journal.fence.is_none() && next_call != journal.next_call_written {
                writes.push(crate::store::AcdWrite::NextCall(next_call));
                journal.next_call_written = next_call;
            }
            journal.commit(writes).await;
        }
        for notice in &notices {
            for w in &self.watchers {
                w(notice);
            }
        }
        for out in outputs {
            deliver(&mut self.calls, &self.orders, out);
        }
        for reply in self.replies.drain(..) {
            reply();
        }
        self.calls.retain(|_, tx| !tx.is_closed());
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

fn apply(engine: &mut Engine, now: Time, input: Input) {
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
