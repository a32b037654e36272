//! What the nodes say to each other about the one ACD (docs/ha.md §3), as
//! JSON on NATS subjects:
//!
//! | subject | from → to | payload |
//! |---|---|---|
//! | `hotline.acd.in` (request/reply) | any node → the leader | [`Request`] → [`Reply`] |
//! | `hotline.acd.news.<node>` (request/reply) | the leader → the node holding a call | [`NewsFor`] → empty acknowledgement |
//! | `hotline.acd.held` (request, many replies) | a new leader → every node | [`Held`] |
//! | `hotline.acd.states` | the leader → every node | `AgentStateNotice` |
//!
//! Only the leader subscribes to `hotline.acd.in`, so a request made while
//! no node leads finds no responder and is tried again.

use serde::{Deserialize, Serialize};

use crate::acd::{self, CallId, Input};
use crate::call::queue::QueueNews;

/// Requests to the leader.
pub const IN: &str = "hotline.acd.in";
/// A new leader asks every node for the calls it holds.
pub const HELD: &str = "hotline.acd.held";
/// The leader tells every node of each agent state change
/// ([`crate::call::queue::AgentStateNotice`]).
pub const STATES: &str = "hotline.acd.states";

/// The subject a node hears the news of its calls on. A node name is an
/// address (`127.0.0.1:5060`) or any text: what is not a letter, digit,
/// `-` or `_` becomes `_` (a `.` would split the subject).
pub fn news_subject(node: &str) -> String {
    let token: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("hotline.acd.news.{token}")
}

/// A node's request to the leader's ACD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Queue a call `node` holds (an `Input::Enqueue`); its news go to
    /// the node.
    Enqueue { node: String, input: Input },
    /// An agent on a call `node` holds consults a group
    /// (`Input::Consult`): answered with the refusal, if any.
    Consult { node: String, input: Input },
    /// Something happened (answered once taken, refused or not).
    Input(Input),
    /// An input whose refusal the node wants to hear.
    Try(Input),
    /// `node`'s call left the queue: its news are no longer wanted.
    Forget { node: String, call: CallId },
    /// Live statistics as JSON (the API).
    Stats,
    /// Live statistics, typed (`/metrics`).
    Snapshot,
    /// One agent's state.
    AgentState(String),
    /// Answered once everything before it is kept.
    Kept,
}

/// The leader's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Taken (and kept).
    Done,
    /// Refused by the ACD, with its reason.
    Refused(String),
    /// [`Request::Stats`].
    Stats(serde_json::Value),
    /// [`Request::Snapshot`].
    Snapshot(acd::Stats),
    /// [`Request::AgentState`].
    AgentState(Option<acd::AgentState>),
}

/// News about one call, for the node holding it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsFor {
    /// The call.
    pub call: CallId,
    /// What the queue tells it.
    pub news: QueueNews,
}

/// A node's calls the ACD must know of, for a new leader rebuilding the
/// queues (docs/ha.md §3 "Leader loss").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The node.
    pub node: String,
    /// Calls waiting in a queue: their `Input::Enqueue` (original arrival
    /// time) or `Input::Consult`.
    pub waiting: Vec<Input>,
    /// Calls an agent is talking on: the agent stays busy on them.
    pub talking: Vec<Talking>,
}

/// An agent talking on a call a node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talking {
    /// The call.
    pub call: CallId,
    /// The agent.
    pub agent: String,
    /// The citizen's number.
    pub caller: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_make_one_subject_token() {
        assert_eq!(
            news_subject("127.0.0.1:5060"),
            "hotline.acd.news.127_0_0_1_5060"
        );
        assert_eq!(news_subject("node-a"), "hotline.acd.news.node-a");
        assert_eq!(news_subject("a.b *>"), "hotline.acd.news.a_b___");
    }

    #[test]
    fn requests_and_news_travel_as_json() {
        let r = Request::Enqueue {
            node: "a".into(),
            input: Input::CallerHungUp { call: CallId(7) },
        };
        let text = serde_json::to_vec(&r).expect("json");
        assert_eq!(serde_json::from_slice::<Request>(&text).expect("back"), r);
        let n = NewsFor {
            call: CallId(1 << 40),
            news: QueueNews::Announce {
                position: 2,
                estimated_wait: Some(std::time::Duration::from_secs(30)),
            },
        };
        let text = serde_json::to_vec(&n).expect("json");
        assert_eq!(serde_json::from_slice::<NewsFor>(&text).expect("back"), n);
    }
}
