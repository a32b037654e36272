//! The fork's sender (issue 18 §1): one tokio task per fork takes frames
//! from the bounded queue and sends them over a WebSocket, `start` first
//! (again after each reconnection), `stop` when the call's tap is gone.
//! A receiver that refuses or drops the connection is reconnected with
//! exponential backoff, a bounded number of times in a row; meanwhile the
//! queue fills and the tap drops frames, counted. A send that takes too
//! long (a receiver that stopped reading) counts as a lost connection.
//! Text messages from the receiver (results: a transcript, an intent) are
//! checked ([`super::protocol::parse_result`]) and handed to the fork's
//! result hook; a malformed one is logged once per fork and ignored.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{self, CallMeta, Format, FRAME_SAMPLES};
use super::tap::Frame;
use super::{ForkCounts, ResultHook};

/// The first reconnection's wait; each next one doubles, up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(200);

/// The longest wait between two connection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long a connection (TCP and the WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one message may take to send before the connection counts
/// as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The wait before attempt `n` (1, 2, …) after a failure.
pub fn backoff(n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(1 << shift).min(BACKOFF_MAX)
}

/// What a fork's task needs.
pub(super) struct Sink {
    pub url: String,
    pub fork_id: String,
    pub call: CallMeta,
    pub frames: mpsc::Receiver<Frame>,
    pub counts: Arc<ForkCounts>,
    pub results: Option<ResultHook>,
    /// Failed attempts in a row before the fork gives up.
    pub max_attempts: u32,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a connection ended.
enum Ended {
    /// The call's tap is gone and `stop` was sent.
    Done,
    /// The receiver went away; `carried` if it took at least one frame.
    Lost { carried: bool },
    /// The fork was stopped (the API) and `stop` was sent.
    Stopped,
}

impl Sink {
    /// Run until the call's tap is gone or the receiver is given up on.
    pub(super) async fn run(mut self) {
        let mut failures = 0u32;
        let mut warned = false;
        loop {
            if !self.counts.is_on() && !self.wait_until_on().await {
                return; // the call ended stopped
            }
            let connected = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_tungstenite::connect_async(self.url.as_str()),
            )
            .await;
            match connected {
                Ok(Ok((ws, _))) => match self.stream(ws, &mut warned).await {
                    Ended::Done => return,
                    Ended::Stopped => {
                        failures = 0;
                        continue;
                    }
                    Ended::Lost { carried } => {
                        if carried {
                            failures = 0;
                        }
                        tracing::info!(fork = %self.fork_id, "audio-fork receiver went away");
                    }
                },
                Ok(Err(e)) => {
                    tracing::debug!(fork = %self.fork_id, error = %e, "audio-fork connect failed")
                }
                Err(_) => tracing::debug!(fork = %self.fork_id, "audio-fork connect timed out"),
            }
            if self.frames.is_closed() && self.frames.is_empty() {
                return; // the call ended while we were away
            }
            failures += 1;
            if failures > self.max_attempts {
                tracing::warn!(fork = %self.fork_id, url = %self.url, "audio-fork receiver unreachable: giving up; the rest of the call's frames are dropped");
                super::FORKS_ABANDONED.fetch_add(1, Ordering::Relaxed);
                return;
            }
            super::RECONNECTS.fetch_add(1, Ordering::Relaxed);
            let wait = tokio::time::sleep(backoff(failures));
            tokio::pin!(wait);
            // Frames that come while we wait are dropped by the tap once
            // the queue is full; the call ending ends the wait.
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if self.frames.is_closed() && self.frames.is_empty() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// One connection: `start`, then frames and results until the call's
    /// tap is gone (`stop`) or the receiver is.
    async fn stream(&mut self, mut ws: Ws, warned: &mut bool) -> Ended {
        let mut carried = false;
        let start = protocol::start_message(
            &self.call,
            &Format::stereo(),
            &self.fork_id,
            self.next_sequence_hint(),
        );
        if !send(&mut ws, Message::Text(start.into())).await {
            return Ended::Lost { carried };
        }
        loop {
            tokio::select! {
                frame = self.frames.recv() => match frame {
                    Some(f) => {
                        let ts = f.sequence.wrapping_mul(FRAME_SAMPLES as u32);
                        let mut buf = Vec::new();
                        protocol::encode_frame(f.sequence, ts, &f.samples, &mut buf);
                        self.counts.last_sequence.store(u64::from(f.sequence) + 1, Ordering::Relaxed);
                        if !send(&mut ws, Message::Binary(buf.into())).await {
                            self.count_lost(1);
                            return Ended::Lost { carried };
                        }
                        carried = true;
                        self.counts.sent.fetch_add(1, Ordering::Relaxed);
                        super::FRAMES_SENT.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        self.send_stop(&mut ws, "call_ended").await;
                        return Ended::Done;
                    }
                },
                () = self.counts.changed.notified() => {
                    if !self.counts.is_on() {
                        self.send_stop(&mut ws, "stopped").await;
                        return Ended::Stopped;
                    }
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.result(text.as_str(), warned),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::Lost { carried },
                    Some(Ok(_)) => {} // pings are answered by tungstenite; binary ignored
                },
            }
        }
    }

    /// `stop` with the counts so far, then close.
    async fn send_stop(&self, ws: &mut Ws, reason: &str) {
        let stop = protocol::stop_message(
            &self.fork_id,
            reason,
            self.counts.sent.load(Ordering::Relaxed),
            self.counts.dropped.load(Ordering::Relaxed),
        );
        if send(ws, Message::Text(stop.into())).await {
            let _ = tokio::time::timeout(SEND_TIMEOUT, ws.close(None)).await;
        }
    }

    /// A stopped fork waits to be started, frames left in the queue
    /// discarded: `false` if the call ended first.
    async fn wait_until_on(&mut self) -> bool {
        loop {
            if self.counts.is_on() {
                return true;
            }
            tokio::select! {
                () = self.counts.changed.notified() => {},
                frame = self.frames.recv() => if frame.is_none() {
                    return false;
                },
            }
        }
    }

    /// The sequence number the next frame will carry, as far as known.
    fn next_sequence_hint(&self) -> u32 {
        u32::try_from(self.counts.last_sequence.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    /// A frame taken from the queue but not delivered: dropped.
    fn count_lost(&self, n: u64) {
        self.counts.dropped.fetch_add(n, Ordering::Relaxed);
        super::FRAMES_DROPPED.fetch_add(n, Ordering::Relaxed);
    }

    /// A receiver's text message: a result for the agent, or ignored.
    fn result(&self, text: &str, warned: &mut bool) {
        match protocol::parse_result(text) {
            Ok(v) => {
                super::RESULTS.fetch_add(1, Ordering::Relaxed);
                if let Some(hook) = &self.results {
                    hook(&self.call, v);
                }
            }
            Err(e) => {
                if !*warned {
                    *warned = true;
                    tracing::warn!(fork = %self.fork_id, error = %e, "audio-fork receiver sent a message that is not a result: ignored (logged once per fork)");
                }
            }
        }
    }
}

/// Send one message within [`SEND_TIMEOUT`]; `false` if the connection
/// is lost (or the receiver stopped reading).
async fn send(ws: &mut Ws, m: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(m)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_200_ms_up_to_5_s() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(0), BACKOFF_FIRST);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
