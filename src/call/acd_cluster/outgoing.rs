//! A node's requests to the ACD leader, one at a time in the order the
//! node made them (an agent's "ready" never overtakes the "not ready"
//! before it), each tried again while no node leads (NATS: no
//! responders) or the leader does not answer, for as long as its
//! [`Patience`] allows.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::wire::{self, Reply, Request};

/// How long a request is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Something happened (a call ended, an agent signed in): the leader
    /// must hear it, through a change of leader (30 s).
    Input,
    /// A question someone waits for (5 s).
    Question,
}

impl Patience {
    fn limit(self) -> Duration {
        match self {
            Patience::Input => Duration::from_secs(30),
            Patience::Question => Duration::from_secs(5),
        }
    }
}

/// The answer to a request, or why there is none.
pub type Answer = Result<Reply, String>;

/// One request on its way.
pub struct Outgoing {
    request: Request,
    patience: Patience,
    answer: Option<oneshot::Sender<Answer>>,
}

impl Outgoing {
    /// A request whose answer no one waits for.
    pub fn new(request: Request, patience: Patience) -> Self {
        Self {
            request,
            patience,
            answer: None,
        }
    }

    /// A request and where its answer arrives.
    pub fn answered(request: Request, patience: Patience) -> (Self, oneshot::Receiver<Answer>) {
        let (tx, rx) = oneshot::channel();
        let mut o = Self::new(request, patience);
        o.answer = Some(tx);
        (o, rx)
    }
}

/// Start the sender; requests go in on the returned channel.
pub fn spawn(client: async_nats::Client) -> mpsc::UnboundedSender<Outgoing> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            let answer = send(&client, &o.request, o.patience).await;
            if let Err(why) = &answer {
                warn!(request = ?o.request, error = %why, "the ACD leader did not take a request");
            }
            if let Some(tx) = o.answer {
                tx.send(answer).ok();
            }
        }
    });
    tx
}

async fn send(client: &async_nats::Client, request: &Request, patience: Patience) -> Answer {
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + patience.limit();
    loop {
        let last = match client.request(wire::IN, body.clone().into()).await {
            Ok(m) => {
                return serde_json::from_slice(&m.payload)
                    .map_err(|e| format!("unreadable answer of the ACD leader: {e}"))
            }
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("no ACD leader answered ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
