//! The leader's side of the one ACD (docs/ha.md §3): its actor, the other
//! nodes' requests it answers on `hotline.acd.in`, the news of their calls
//! it sends back to them, and the rebuild of the queues from every node's
//! calls when it takes the lease.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use super::local::LocalCalls;
use super::wire::{self, Held, NewsFor, Reply, Request};
use crate::acd::{CallId, Input};
use crate::call::queue::Message;

type NewsSender = mpsc::UnboundedSender<crate::call::queue::QueueNews>;

/// How long a new leader waits for the other nodes' calls.
const GATHER: Duration = Duration::from_millis(800);
/// How long news for a call is tried before it is given up.
const NEWS_PATIENCE: Duration = Duration::from_secs(5);

/// This node leads: its actor and what it serves.
pub struct Leading {
    /// The one ACD's actor.
    pub actor: mpsc::UnboundedSender<Message>,
    /// The other nodes' requests.
    pub requests: async_nats::Subscriber,
    /// The lease's epoch (logged with refusals).
    epoch: i64,
    /// Other nodes' waiting calls: the tasks sending their news, and
    /// where the actor puts it.
    forwarders: HashMap<(String, CallId), (AbortHandle, NewsSender)>,
    client: async_nats::Client,
}

impl Leading {
    pub fn new(
        actor: mpsc::UnboundedSender<Message>,
        requests: async_nats::Subscriber,
        epoch: i64,
        client: async_nats::Client,
    ) -> Self {
        Self {
            actor,
            requests,
            epoch,
            forwarders: HashMap::new(),
            client,
        }
    }

    /// Answer one node's request.
    pub fn serve(&mut self, m: async_nats::Message) {
        let client = &self.client.clone();
        let Some(reply_to) = m.reply else { return };
        let request = match serde_json::from_slice::<Request>(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, epoch = self.epoch, "unreadable ACD request from a node");
                respond(
                    client,
                    reply_to,
                    Reply::Refused(format!("unreadable request: {e}")),
                );
                return;
            }
        };
        let now = |reply: Reply| respond(client, reply_to.clone(), reply);
        match request {
            Request::Enqueue { node, input } => {
                let call = input_call(&input);
                if let Some(call) = call {
                    let news = self.forward(&node, call);
                    self.actor.send(Message::Enqueue { input, call, news }).ok();
                }
                now(Reply::Done);
            }
            Request::Consult { node, input } => {
                let Some(call) = input_call(&input) else {
                    return now(Reply::Refused("not a consultation".into()));
                };
                let news = self.forward(&node, call);
                self.ask(
                    reply_to,
                    |reply| Message::Consult {
                        input,
                        call,
                        news,
                        reply,
                    },
                    taken,
                );
            }
            Request::Input(input) => {
                self.actor.send(Message::Input(input)).ok();
                now(Reply::Done);
            }
            Request::Try(input) => self.ask(reply_to, |tx| Message::Try(input, tx), taken),
            Request::Forget { node, call } => {
                self.forget(&node, call);
                now(Reply::Done);
            }
            Request::Stats => self.ask(reply_to, Message::Stats, |v| {
                v.map_or_else(gone, Reply::Stats)
            }),
            Request::Snapshot => self.ask(reply_to, Message::Snapshot, |s| {
                s.map_or_else(gone, Reply::Snapshot)
            }),
            Request::AgentState(agent) => self.ask(
                reply_to,
                |tx| Message::AgentState(agent, tx),
                |s| Reply::AgentState(s.flatten()),
            ),
            Request::Kept => self.ask(reply_to, Message::Kept, |_| Reply::Done),
        }
    }

    /// Put a question to the actor and answer the node with what it says
    /// (`None`: the actor is gone).
    fn ask<T: Send + 'static>(
        &self,
        to: async_nats::Subject,
        message: impl FnOnce(oneshot::Sender<T>) -> Message,
        answer: impl FnOnce(Option<T>) -> Reply + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel();
        self.actor.send(message(tx)).ok();
        later(&self.client, to, async move { answer(rx.await.ok()) });
    }

    /// A channel for the news of `node`'s `call`, sent on to that node;
    /// the same channel again for a call asked twice (an enqueue sent
    /// again while its first was on its way): news on their way are
    /// never dropped.
    fn forward(&mut self, node: &str, call: CallId) -> NewsSender {
        let key = (node.to_string(), call);
        if let Some((task, tx)) = self.forwarders.get(&key) {
            if !task.is_finished() && !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (client, subject) = (self.client.clone(), wire::news_subject(node));
        let task = tokio::spawn(async move {
            while let Some(news) = rx.recv().await {
                let body = match serde_json::to_vec(&NewsFor { call, news }) {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(error = %e, "cannot write ACD news");
                        continue;
                    }
                };
                tell(&client, &subject, body).await;
            }
        });
        if let Some((old, _)) = self
            .forwarders
            .insert(key, (task.abort_handle(), tx.clone()))
        {
            old.abort();
        }
        tx
    }

    /// `node`'s call left the queue: stop sending its news (the actor
    /// then forgets the call's channel).
    pub fn forget(&mut self, node: &str, call: CallId) {
        if let Some((task, _)) = self.forwarders.remove(&(node.to_string(), call)) {
            task.abort();
        }
    }

    /// Queue again every node's waiting calls at their arrival times and
    /// keep busy the agents talking on calls that survived; the numbers
    /// of each.
    pub fn rebuild(
        &mut self,
        own_node: &str,
        own: &LocalCalls,
        others: Vec<Held>,
    ) -> (usize, usize) {
        let mut all = vec![own.held(own_node)];
        all.extend(others.into_iter().filter(|h| h.node != own_node));
        let (mut waiting, mut talking) = (0, 0);
        for held in all {
            for t in held.talking {
                talking += 1;
                self.actor
                    .send(Message::Input(Input::DirectAnswered {
                        call: t.call,
                        agent: t.agent,
                        caller: t.caller,
                    }))
                    .ok();
            }
            for input in held.waiting {
                let Some(call) = input_call(&input) else {
                    continue;
                };
                let news = match own.news_of(call).filter(|_| held.node == own_node) {
                    Some(n) => n,
                    None => self.forward(&held.node, call),
                };
                waiting += 1;
                self.actor.send(Message::Enqueue { input, call, news }).ok();
            }
        }
        (waiting, talking)
    }

    /// Stop leading: the actor ends (its channel closes), no more news go
    /// out, the other nodes' requests go unanswered.
    pub fn stop(self) {
        for (task, _) in self.forwarders.into_values() {
            task.abort();
        }
        debug!(epoch = self.epoch, "ACD actor stopped");
    }
}

/// Send one piece of news to the node holding the call, as a request the
/// node acknowledges, tried again for a while: a node whose connection to
/// NATS was just made again may not have subscribed again yet (plain
/// publishing would lose the news: an offer never rung).
async fn tell(client: &async_nats::Client, subject: &str, body: Vec<u8>) {
    let deadline = tokio::time::Instant::now() + NEWS_PATIENCE;
    loop {
        match client
            .request(subject.to_string(), body.clone().into())
            .await
        {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                warn!(error = %e, %subject, "the node holding a call did not take the ACD's news");
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Ask every node for the calls it holds (a bounded scatter-gather).
pub async fn gather(client: &async_nats::Client, own_node: &str) -> Vec<Held> {
    let inbox = client.new_inbox();
    let mut answers = match client.subscribe(inbox.clone()).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot ask the nodes for their calls");
            return Vec::new();
        }
    };
    if let Err(e) = client
        .publish_with_reply(wire::HELD, inbox, own_node.as_bytes().to_vec().into())
        .await
    {
        warn!(error = %e, "cannot ask the nodes for their calls");
        return Vec::new();
    }
    let mut held = Vec::new();
    let deadline = tokio::time::Instant::now() + GATHER;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, answers.next()).await {
        match serde_json::from_slice::<Held>(&m.payload) {
            Ok(h) => held.push(h),
            Err(e) => warn!(error = %e, "unreadable calls from a node"),
        }
    }
    held
}

/// The actor's verdict on an input as the node's reply.
fn taken(verdict: Option<Result<(), String>>) -> Reply {
    match verdict {
        Some(Ok(())) => Reply::Done,
        Some(Err(why)) => Reply::Refused(why),
        None => gone(),
    }
}

/// The reply when the actor is gone.
fn gone() -> Reply {
    Reply::Refused("the ACD is not running".into())
}

/// The call an enqueue or consultation names.
fn input_call(input: &Input) -> Option<CallId> {
    match input {
        Input::Enqueue { call, .. } | Input::Consult { call, .. } => Some(*call),
        _ => None,
    }
}

fn respond(client: &async_nats::Client, to: async_nats::Subject, reply: Reply) {
    let client = client.clone();
    tokio::spawn(async move { send_reply(&client, to, reply).await });
}

fn later(
    client: &async_nats::Client,
    to: async_nats::Subject,
    reply: impl std::future::Future<Output = Reply> + Send + 'static,
) {
    let client = client.clone();
    tokio::spawn(async move {
        let reply = reply.await;
        send_reply(&client, to, reply).await;
    });
}

async fn send_reply(client: &async_nats::Client, to: async_nats::Subject, reply: Reply) {
    match serde_json::to_vec(&reply) {
        Ok(body) => {
            if let Err(e) = client.publish(to, body.into()).await {
                warn!(error = %e, "cannot answer a node's ACD request");
            }
        }
        Err(e) => warn!(error = %e, "cannot write an ACD answer"),
    }
}

/// A watcher telling every node of each agent state change (in order: one
/// task publishes them).
pub fn tell_states(client: &async_nats::Client) -> crate::call::queue::AgentStateWatcher {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(body) = rx.recv().await {
            if let Err(e) = client.publish(wire::STATES, body.into()).await {
                warn!(error = %e, "cannot tell the nodes an agent's state");
            }
        }
    });
    Box::new(move |n| match serde_json::to_vec(n) {
        Ok(body) => {
            tx.send(body).ok();
        }
        Err(e) => warn!(error = %e, "cannot write an agent's state"),
    })
}
