//! One ACD for several nodes (issue 15 §2, docs/ha.md §3): a skill
//! group's queue is one queue whichever node holds the caller.
//!
//! With a shared store and `[store] nats`, the [`Queues`] handle of every
//! node sends its messages to this node's [`Router`] instead of an actor
//! of its own. One node at a time is the **leader**: it holds the
//! PostgreSQL lease (`store::postgres::lease`, renewed every second, TTL
//! 3 s), runs the one ACD actor (`queue::spawn_actor`, its writes fenced
//! with the lease's epoch) and answers the other nodes' requests on NATS
//! ([`wire`]). A node that does not lead passes its callers' enqueues and
//! every other input to the leader and hands the news of its calls on to
//! them; the call room does not know the difference.
//!
//! Every node keeps the calls of its own the ACD must know of (waiting in
//! a queue, or an agent talking on them: [`local::LocalCalls`]). When the
//! leader is lost, the lease expires and another node takes it (the
//! epoch raised): it loads what the last leader kept (agents' states, callbacks,
//! missed calls, the day's figures), asks every node for the calls it
//! holds (`hotline.acd.held`) and queues the waiting ones again at their
//! **original arrival times**; agents talking on calls that survived stay
//! busy on them. A draining node (SIGTERM) gives the lease up at once.
//!
//! Requests are ordered per node (one at a time, [`outgoing`]) and tried
//! again while no node leads (an input for 30 s, a question for 5 s).

mod leader;
mod local;
mod outgoing;
pub mod wire;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::queue::{
    spawn_actor, AcdDurability, ActorSetup, AgentStateNotice, AgentStateWatcher, CallbackOrder,
    Message, Queues, QueuesError, WatchScope,
};
use super::ShellClock;
use crate::acd;
use crate::store::cluster::ClusterStatus;
use crate::store::Store;
use leader::Leading;
use local::LocalCalls;
use outgoing::{Answer, Outgoing, Patience};
use wire::{Reply, Request};

/// How long the lease lasts unless renewed (the database's clock).
const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often it is taken or renewed.
const LEASE_EVERY: Duration = Duration::from_secs(1);

/// What a node's ACD needs to take part in the one ACD.
pub struct ClusterSetup {
    /// This node's name (`[store] node`).
    pub node: String,
    /// The NATS server(s), `nats://host:port[,…]`.
    pub nats_url: String,
    /// The shared store: the lease, what the ACD keeps.
    pub store: Store,
    /// The agents and groups in force.
    pub config: acd::AcdConfig,
    /// The centre's offset from UTC (its day), minutes.
    pub utc_offset_minutes: i32,
    /// The SIP users whose phones are registered now (every node's:
    /// registrations are shared), for a new leader's restore.
    pub registered: Arc<dyn Fn() -> HashSet<String> + Send + Sync>,
    /// Set once the node drains (SIGTERM): it gives the lease up.
    pub draining: Arc<AtomicBool>,
    /// Where `/metrics` reads whether this node leads.
    pub status: Arc<ClusterStatus>,
}

impl Queues {
    /// The ACD of a node among several (see the module docs): connects to
    /// NATS, numbers this run's calls from a fresh block of the store and
    /// starts the router, which takes the lease when it is free.
    pub async fn clustered(
        setup: ClusterSetup,
    ) -> Result<(Self, mpsc::UnboundedReceiver<CallbackOrder>), QueuesError> {
        let store = setup.store.clone();
        let block = tokio::task::spawn_blocking(move || store.call_id_block())
            .await
            .map_err(|e| QueuesError::Cluster(format!("the store task failed: {e}")))??;
        let next_call = Arc::new(AtomicU64::new((block << 32) | 1));
        let client = async_nats::ConnectOptions::new()
            .name(format!("hotline acd {}", setup.node))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .request_timeout(Some(Duration::from_secs(2)))
            .connect(setup.nats_url.as_str())
            .await
            .map_err(|e| QueuesError::Cluster(format!("NATS {}: {e}", setup.nats_url)))?;
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|e| QueuesError::Cluster(format!("NATS subscribe {subject}: {e}")))
            }
        };
        let news = subscribe(wire::news_subject(&setup.node)).await?;
        let held = subscribe(wire::HELD.to_string()).await?;
        let states = subscribe(wire::STATES.to_string()).await?;
        let clock = ShellClock::start();
        let (tx, rx) = mpsc::unbounded_channel();
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let outgoing = outgoing::spawn(client.clone());
        setup.status.set_acd_clustered();
        info!(node = %setup.node, nats = %setup.nats_url, block, "one ACD for every node: following the leader's lease");
        let router = Router {
            node: setup.node,
            client,
            store: setup.store,
            config: setup.config,
            offset: setup.utc_offset_minutes,
            registered: setup.registered,
            draining: setup.draining,
            status: setup.status,
            orders,
            watchers: Vec::new(),
            next_call: next_call.clone(),
            clock,
            calls: LocalCalls::default(),
            leading: None,
            outgoing,
            renewed: None,
            wired: false,
        };
        tokio::spawn(router.run(rx, news, held, states));
        Ok((Self::from_parts(tx, next_call, clock), orders_rx))
    }
}

/// A watcher every actor this node starts tells.
type SharedWatcher = Arc<Mutex<AgentStateWatcher>>;

/// A node's side of the one ACD.
struct Router {
    node: String,
    client: async_nats::Client,
    store: Store,
    /// The agents and groups in force: a new leader's actor starts on them.
    config: acd::AcdConfig,
    offset: i32,
    registered: Arc<dyn Fn() -> HashSet<String> + Send + Sync>,
    draining: Arc<AtomicBool>,
    status: Arc<ClusterStatus>,
    orders: mpsc::UnboundedSender<CallbackOrder>,
    watchers: Vec<(SharedWatcher, WatchScope)>,
    next_call: Arc<AtomicU64>,
    clock: ShellClock,
    /// This node's calls the ACD knows of.
    calls: LocalCalls,
    /// While this node leads: its actor and what it serves.
    leading: Option<Leading>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// When the lease was last taken or renewed (this node's clock).
    renewed: Option<tokio::time::Instant>,
    /// The switch asked for the restore: the agent state watchers are in
    /// place, so this node may lead (a leader's restore signs agents out,
    /// and the events must say so).
    wired: bool,
}

impl Router {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Message>,
        mut news: async_nats::Subscriber,
        mut held: async_nats::Subscriber,
        mut states: async_nats::Subscriber,
    ) {
        let mut tick = tokio::time::interval(LEASE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let requests = async {
                match self.leading.as_mut() {
                    Some(l) => l.requests.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.local(msg).await,
                    None => break,
                },
                Some(m) = news.next() => self.heard_news(m),
                Some(m) = held.next() => self.answer_held(m).await,
                Some(m) = states.next() => self.heard_state(&m.payload),
                Some(m) = requests => {
                    if let Some(l) = self.leading.as_mut() {
                        l.serve(m);
                    }
                }
                _ = tick.tick() => self.lease().await,
            }
        }
        self.stop_leading("the switch stopped").await;
    }

    /// A message of this node's calls or API.
    async fn local(&mut self, msg: Message) {
        if let Message::Stop(reply) = msg {
            self.draining.store(true, Ordering::Relaxed);
            self.stop_leading("draining").await;
            reply.send(()).ok();
            return;
        }
        if let Some(l) = &self.leading {
            self.calls.note(&msg);
            if let Message::Watch(w, scope) = msg {
                self.add_watcher(w, scope);
                return;
            }
            if let Message::Reconfigure(config, _) = &msg {
                self.config = config.clone();
            }
            if let Message::Restore { reply, .. } = msg {
                // A leader restores as it takes the lease.
                reply.send(()).ok();
                return;
            }
            l.actor.send(msg).ok();
            return;
        }
        self.calls.note(&msg);
        let node = self.node.clone();
        let out = match msg {
            Message::Enqueue { input, call, .. } => self.enqueue(node, call, input),
            Message::Consult { input, reply, .. } => {
                let call = consulted(&input);
                let forget = self.calls.forgetter();
                ask(Request::Consult { node, input }, reply, move |a| {
                    let r = refusal(a);
                    if let (Err(_), Some(call)) = (&r, call) {
                        forget(call);
                    }
                    Some(r)
                })
            }
            Message::Input(input) => Outgoing::new(Request::Input(input), Patience::Input),
            Message::Try(input, reply) => ask(Request::Try(input), reply, |a| Some(refusal(a))),
            Message::Stats(reply) => ask(Request::Stats, reply, |a| match a {
                Ok(Reply::Stats(v)) => Some(v),
                _ => None,
            }),
            Message::Snapshot(reply) => ask(Request::Snapshot, reply, |a| match a {
                Ok(Reply::Snapshot(s)) => Some(s),
                _ => None,
            }),
            Message::AgentState(agent, reply) => {
                ask(Request::AgentState(agent), reply, |a| match a {
                    Ok(Reply::AgentState(s)) => Some(s),
                    _ => None,
                })
            }
            Message::Kept(reply) => ask(Request::Kept, reply, |_| Some(())),
            Message::Watch(w, scope) => {
                self.add_watcher(w, scope);
                return;
            }
            Message::Reconfigure(config, reply) => {
                // The leader reconfigures from the shared roster as this
                // node does (its refusal, an agent in use, is its log's);
                // here the new set is checked, what it changes told, and
                // it is kept for the day this node leads.
                let now = self.clock.now();
                let r = acd::Engine::new(self.config.clone(), now)
                    .and_then(|mut e| e.reconfigure(now, config.clone()))
                    .map_err(|e| e.to_string());
                if r.is_ok() {
                    self.config = config;
                }
                reply.send(r).ok();
                return;
            }
            Message::Restore { reply, .. } => {
                // The ACD is restored by whichever node takes the lease;
                // from now on this one may.
                self.wired = true;
                reply.send(()).ok();
                return;
            }
            Message::Stop(reply) => {
                reply.send(()).ok();
                return;
            }
        };
        self.outgoing.send(out).ok();
    }

    fn add_watcher(&mut self, w: AgentStateWatcher, scope: WatchScope) {
        let w = Arc::new(Mutex::new(w));
        if let Some(l) = &self.leading {
            l.actor.send(Message::Watch(relay(&w), scope)).ok();
        }
        self.watchers.push((w, scope));
    }

    /// News of one of this node's calls: passed on, and acknowledged.
    fn heard_news(&self, m: async_nats::Message) {
        match serde_json::from_slice::<wire::NewsFor>(&m.payload) {
            Ok(n) => self.calls.tell(n.call, n.news),
            Err(e) => warn!(error = %e, "unreadable ACD news from the leader"),
        }
        if let Some(reply) = m.reply {
            let client = self.client.clone();
            tokio::spawn(async move {
                client.publish(reply, bytes::Bytes::new()).await.ok();
            });
        }
    }

    /// The leader told an agent's state change: this node's own watchers
    /// hear it (the leader's heard it from its actor).
    fn heard_state(&self, payload: &[u8]) {
        if self.leading.is_some() {
            return;
        }
        match serde_json::from_slice::<AgentStateNotice>(payload) {
            Ok(n) => {
                for (w, scope) in &self.watchers {
                    if *scope == WatchScope::EveryNode {
                        if let Ok(w) = w.lock() {
                            w(&n);
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "unreadable agent state from the ACD leader"),
        }
    }

    /// Hand one of this node's waiting calls to the leader; if no leader
    /// takes it (NATS away, no node leading), it is handed again at the
    /// next lease round while it still waits.
    fn enqueue(&self, node: String, call: acd::CallId, input: acd::Input) -> Outgoing {
        let (o, answer) = Outgoing::answered(Request::Enqueue { node, input }, Patience::Question);
        let unsent = self.calls.unsent();
        tokio::spawn(async move {
            if !matches!(answer.await, Ok(Ok(Reply::Done))) {
                unsent(call);
            }
        });
        o
    }

    /// Take or renew the lease; start or stop leading accordingly.
    async fn lease(&mut self) {
        if self.leading.is_none() {
            for (call, input) in self.calls.unsent_waiting() {
                info!(%call, "a waiting call handed to the ACD leader again");
                let o = self.enqueue(self.node.clone(), call, input);
                self.outgoing.send(o).ok();
            }
        }
        for call in self.calls.prune() {
            if self.leading.is_none() {
                let node = self.node.clone();
                self.outgoing
                    .send(Outgoing::new(
                        Request::Forget { node, call },
                        Patience::Question,
                    ))
                    .ok();
            } else if let Some(l) = self.leading.as_mut() {
                l.forget(&self.node, call);
            }
        }
        if self.draining.load(Ordering::Relaxed) {
            if self.leading.is_some() {
                self.stop_leading("draining").await;
            }
            return;
        }
        if !self.wired {
            return;
        }
        let store = self.store.clone();
        let ttl = LEASE_TTL.as_millis() as i64;
        let r = tokio::task::spawn_blocking(move || store.acd_lease(ttl)).await;
        let now = tokio::time::Instant::now();
        match r {
            Ok(Ok(lease)) if lease.held => {
                self.renewed = Some(now);
                if self.leading.is_none() {
                    self.start_leading(lease.epoch).await;
                }
            }
            Ok(Ok(lease)) => {
                if self.leading.is_some() {
                    self.stop_leading(&format!("node {} took the lease", lease.holder))
                        .await;
                }
            }
            Ok(Err(e)) => self.renew_failed(now, &e.to_string()).await,
            Err(e) => self.renew_failed(now, &e.to_string()).await,
        }
    }

    /// The lease could not be renewed: a leader stops a second before it
    /// may expire (its own clock), so two never lead at once.
    async fn renew_failed(&mut self, now: tokio::time::Instant, why: &str) {
        if self.leading.is_none() {
            return;
        }
        let last = self.renewed.unwrap_or(now);
        warn!(error = %why, "cannot renew the ACD leader's lease");
        if now.duration_since(last) + LEASE_EVERY >= LEASE_TTL - Duration::from_secs(1) {
            self.stop_leading("the lease could not be renewed").await;
        }
    }

    async fn start_leading(&mut self, epoch: i64) {
        let setup = ActorSetup {
            config: self.config.clone(),
            durable: Some(AcdDurability {
                store: self.store.clone(),
                utc_offset_minutes: self.offset,
            }),
            fence: Some(epoch),
            orders: self.orders.clone(),
            next_call: self.next_call.clone(),
            clock: self.clock,
        };
        let actor = match tokio::task::spawn_blocking(move || spawn_actor(setup)).await {
            Ok(Ok(actor)) => actor,
            Ok(Err(e)) => {
                warn!(error = %e, "cannot start the ACD as leader; the lease is left to expire");
                return;
            }
            Err(e) => {
                warn!(error = %e, "cannot start the ACD as leader");
                return;
            }
        };
        for (w, scope) in &self.watchers {
            actor.send(Message::Watch(relay(w), *scope)).ok();
        }
        actor
            .send(Message::Watch(
                leader::tell_states(&self.client),
                WatchScope::Once,
            ))
            .ok();
        let (reply, _) = tokio::sync::oneshot::channel();
        actor
            .send(Message::Restore {
                registered: (self.registered)(),
                reply,
            })
            .ok();
        let requests = match self.client.subscribe(wire::IN.to_string()).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot hear the nodes' ACD requests; not leading");
                return;
            }
        };
        let mut leading = Leading::new(actor, requests, epoch, self.client.clone());
        let gathered = leader::gather(&self.client, &self.node).await;
        let (waiting, talking) = leading.rebuild(&self.node, &self.calls, gathered);
        self.status.set_acd_leader(Some(epoch));
        info!(
            epoch,
            waiting,
            talking,
            "this node leads the ACD: the queues are rebuilt from every node's calls"
        );
        self.leading = Some(leading);
    }

    async fn stop_leading(&mut self, why: &str) {
        if let Some(l) = self.leading.take() {
            l.stop();
            self.status.set_acd_leader(None);
            warn!(reason = %why, "this node no longer leads the ACD");
            if why == "draining" {
                let store = self.store.clone();
                match tokio::task::spawn_blocking(move || store.release_acd_lease()).await {
                    Ok(Ok(())) => info!("the ACD leader's lease is given up"),
                    Ok(Err(e)) => warn!(error = %e, "cannot give the ACD lease up; it expires"),
                    Err(e) => warn!(error = %e, "cannot give the ACD lease up; it expires"),
                }
            }
        }
    }

    /// A new leader asks for the calls this node holds.
    async fn answer_held(&mut self, m: async_nats::Message) {
        let Some(reply) = m.reply else { return };
        if m.payload.as_ref() == self.node.as_bytes() {
            return; // our own question: answered from memory
        }
        let held = self.calls.held(&self.node);
        match serde_json::to_vec(&held) {
            Ok(body) => {
                if let Err(e) = self.client.publish(reply, body.into()).await {
                    warn!(error = %e, "cannot tell the new ACD leader this node's calls");
                }
            }
            Err(e) => warn!(error = %e, "cannot write this node's calls"),
        }
    }
}

/// A watcher for one actor, telling the node's shared one.
fn relay(w: &SharedWatcher) -> AgentStateWatcher {
    let w = w.clone();
    Box::new(move |n| {
        if let Ok(w) = w.lock() {
            w(n);
        }
    })
}

/// The call a consultation input names.
fn consulted(input: &acd::Input) -> Option<acd::CallId> {
    match input {
        acd::Input::Consult { call, .. } => Some(*call),
        _ => None,
    }
}

/// A question to the leader whose answer `answer` turns into what the
/// asker waits for (`None`: the asker hears that the ACD is gone).
fn ask<T: Send + 'static>(
    request: Request,
    reply: oneshot::Sender<T>,
    answer: impl FnOnce(Answer) -> Option<T> + Send + 'static,
) -> Outgoing {
    let (o, rx) = Outgoing::answered(request, Patience::Question);
    tokio::spawn(async move {
        if let Some(v) = rx.await.ok().and_then(answer) {
            reply.send(v).ok();
        }
    });
    o
}

/// The leader's answer as the handle's `Result`.
fn refusal(answer: Answer) -> Result<(), String> {
    match answer {
        Ok(Reply::Refused(why)) | Err(why) => Err(why),
        Ok(_) => Ok(()),
    }
}
