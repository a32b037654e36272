//! The calls of this node the one ACD must know of (docs/ha.md §3): the
//! ones waiting in a queue (their enqueue, with the original arrival
//! time, and where their news go) and the ones an agent is talking on.
//! Learnt from the messages the node's calls send the ACD; told to a new
//! leader rebuilding the queues ([`LocalCalls::held`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::wire::{Held, Talking};
use crate::acd::{CallId, Input};
use crate::call::queue::{Message, QueueNews};

/// One call of this node.
struct LocalCall {
    /// Its `Input::Enqueue` or `Input::Consult` while it waits; `None` for
    /// a call put through to an agent without the queue.
    waiting: Option<Input>,
    /// Where the queue's news about it go (the call's receiver).
    news: Option<mpsc::UnboundedSender<QueueNews>>,
    /// The agent who answered it.
    agent: Option<String>,
    /// The citizen's number.
    caller: String,
}

/// This node's calls the ACD knows of.
#[derive(Default)]
pub struct LocalCalls {
    calls: HashMap<CallId, LocalCall>,
    /// Calls whose consultation the leader refused (told from a task).
    refused: Arc<Mutex<Vec<CallId>>>,
    /// Waiting calls no leader took (told from a task).
    unsent: Arc<Mutex<Vec<CallId>>>,
}

impl LocalCalls {
    /// Learn from a message this node sends the ACD.
    pub fn note(&mut self, msg: &Message) {
        match msg {
            Message::Enqueue { input, call, news }
            | Message::Consult {
                input, call, news, ..
            } => {
                let caller = match input {
                    Input::Enqueue { caller, .. } | Input::Consult { caller, .. } => caller.clone(),
                    _ => String::new(),
                };
                self.calls.insert(
                    *call,
                    LocalCall {
                        waiting: Some(input.clone()),
                        news: Some(news.clone()),
                        agent: None,
                        caller,
                    },
                );
            }
            Message::Input(input) | Message::Try(input, _) => self.input(input),
            _ => {}
        }
    }

    fn input(&mut self, input: &Input) {
        match input {
            Input::OfferAnswered { call, agent } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.agent = Some(agent.clone());
                    c.waiting = None;
                }
            }
            Input::DirectAnswered {
                call,
                agent,
                caller,
            } => {
                self.calls.insert(
                    *call,
                    LocalCall {
                        waiting: None,
                        news: None,
                        agent: Some(agent.clone()),
                        caller: caller.clone(),
                    },
                );
            }
            Input::CallEnded { call } | Input::CallerHungUp { call } => {
                self.calls.remove(call);
            }
            Input::RequestCallback { call, .. } => {
                // The caller leaves the line; the callback is the ACD's.
                self.calls.remove(call);
            }
            _ => {}
        }
    }

    /// News from the leader for one of this node's calls.
    pub fn tell(&self, call: CallId, news: QueueNews) {
        if let Some(tx) = self.calls.get(&call).and_then(|c| c.news.as_ref()) {
            tx.send(news).ok();
        }
    }

    /// A way for a task to say a call's consultation was refused.
    pub fn forgetter(&self) -> impl Fn(CallId) + Send + 'static {
        let refused = self.refused.clone();
        move |call| {
            if let Ok(mut r) = refused.lock() {
                r.push(call);
            }
        }
    }

    /// A way for a task to say no leader took a call's enqueue.
    pub fn unsent(&self) -> impl Fn(CallId) + Send + 'static {
        let unsent = self.unsent.clone();
        move |call| {
            if let Ok(mut u) = unsent.lock() {
                u.push(call);
            }
        }
    }

    /// The enqueues to hand the leader again: calls no leader took that
    /// still wait.
    pub fn unsent_waiting(&mut self) -> Vec<(CallId, Input)> {
        let calls: Vec<CallId> = match self.unsent.lock() {
            Ok(mut u) => u.drain(..).collect(),
            Err(_) => return Vec::new(),
        };
        calls
            .into_iter()
            .filter_map(|call| {
                let c = self.calls.get(&call)?;
                let open = c.news.as_ref().is_some_and(|n| !n.is_closed());
                match (&c.waiting, c.agent.is_none() && open) {
                    (Some(input @ Input::Enqueue { .. }), true) => Some((call, input.clone())),
                    _ => None,
                }
            })
            .collect()
    }

    /// Drop the calls that left the queue unanswered (their receiver is
    /// gone) or whose consultation was refused; the calls dropped.
    pub fn prune(&mut self) -> Vec<CallId> {
        if let Ok(mut r) = self.refused.lock() {
            for call in r.drain(..) {
                self.calls.remove(&call);
            }
        }
        let gone: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent.is_none() && c.news.as_ref().is_none_or(|n| n.is_closed()))
            .map(|(call, _)| *call)
            .collect();
        for call in &gone {
            self.calls.remove(call);
        }
        gone
    }

    /// What this node tells a new leader.
    pub fn held(&self, node: &str) -> Held {
        let mut held = Held {
            node: node.to_string(),
            ..Held::default()
        };
        for (call, c) in &self.calls {
            match (&c.agent, &c.waiting, &c.news) {
                (Some(agent), _, _) => held.talking.push(Talking {
                    call: *call,
                    agent: agent.clone(),
                    caller: c.caller.clone(),
                }),
                (None, Some(input), Some(news)) if !news.is_closed() => {
                    held.waiting.push(input.clone())
                }
                _ => {}
            }
        }
        held.waiting.sort_by_key(arrival);
        held
    }

    /// The news sender of a waiting call of this node.
    pub fn news_of(&self, call: CallId) -> Option<mpsc::UnboundedSender<QueueNews>> {
        self.calls.get(&call).and_then(|c| c.news.clone())
    }
}

/// A waiting call's arrival (consultations first: they have none).
fn arrival(input: &Input) -> Option<crate::time::Time> {
    match input {
        Input::Enqueue { arrived, .. } => Some(*arrived),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Time;

    fn enqueue(call: u64, at: u64) -> (Message, mpsc::UnboundedReceiver<QueueNews>) {
        let (news, rx) = mpsc::unbounded_channel();
        let input = Input::Enqueue {
            call: CallId(call),
            group: "g".into(),
            priority: 0,
            caller: format!("1380000000{call}"),
            arrived: Time::from_unix_millis(at),
            max_wait: None,
            on_timeout: None,
        };
        (
            Message::Enqueue {
                input,
                call: CallId(call),
                news,
            },
            rx,
        )
    }

    #[test]
    fn a_new_leader_hears_the_waiting_calls_in_arrival_order_and_the_talking_ones() {
        let mut calls = LocalCalls::default();
        let (late, mut late_rx) = enqueue(2, 2_000);
        let (early, _early_rx) = enqueue(1, 1_000);
        let (answered, _answered_rx) = enqueue(3, 500);
        let (gone, gone_rx) = enqueue(4, 100);
        for m in [&late, &early, &answered, &gone] {
            calls.note(m);
        }
        calls.note(&Message::Input(Input::OfferAnswered {
            call: CallId(3),
            agent: "1001".into(),
        }));
        calls.note(&Message::Input(Input::DirectAnswered {
            call: CallId(5),
            agent: "1002".into(),
            caller: "110".into(),
        }));
        drop(gone_rx);
        assert_eq!(calls.prune(), vec![CallId(4)]);

        let held = calls.held("a");
        let order: Vec<CallId> = held
            .waiting
            .iter()
            .filter_map(|i| match i {
                Input::Enqueue { call, .. } => Some(*call),
                _ => None,
            })
            .collect();
        assert_eq!(order, vec![CallId(1), CallId(2)]);
        let mut talking: Vec<(u64, &str)> = held
            .talking
            .iter()
            .map(|t| (t.call.0, t.agent.as_str()))
            .collect();
        talking.sort();
        assert_eq!(talking, vec![(3, "1001"), (5, "1002")]);

        calls.tell(CallId(2), QueueNews::Cancel { agent: "x".into() });
        assert_eq!(
            late_rx.try_recv().expect("news"),
            QueueNews::Cancel { agent: "x".into() }
        );
        calls.note(&Message::Input(Input::CallEnded { call: CallId(3) }));
        assert_eq!(calls.held("a").talking.len(), 1, "call 3 ended");
    }
}
