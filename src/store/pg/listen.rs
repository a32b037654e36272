//! Hearing other nodes' changes: PostgreSQL `LISTEN`/`NOTIFY` (docs/ha.md
//! §1). A writer sends `pg_notify(channel, payload)` inside its
//! transaction; the server delivers it to every listening session when the
//! transaction commits, in commit order.
//!
//! [`listen`] keeps one connection of its own on a thread of its own,
//! waiting for notifications, and hands each payload over a channel. A
//! notification sent while the session was down is lost for good, so after
//! the connection is made again the listener says [`Heard::Reconnected`]:
//! the receiver reloads what it follows. The thread ends when its
//! [`Listener`] is dropped (noticed within one [`POLL`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::NoTls;

use super::{error, session_config, PgError};

/// How long one wait for notifications lasts before the thread checks
/// that its receiver is still there.
const POLL: Duration = Duration::from_secs(1);

/// How long to wait before connecting again after the session broke.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What the listener hands over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A notification's payload.
    Payload(String),
    /// The session was made again: notifications sent meanwhile are lost.
    Reconnected,
}

/// The listening thread's handle: what it heard, in order. Dropping it
/// ends the thread (within one [`POLL`]) and its session.
#[derive(Debug)]
pub struct Listener {
    heard: mpsc::Receiver<Heard>,
    stop: Arc<AtomicBool>,
    up: Arc<AtomicBool>,
}

impl Listener {
    /// Whether the listening session is up now (not being made again).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The next thing heard, waiting at most `within`.
    pub fn next(&self, within: Duration) -> Result<Heard, mpsc::RecvTimeoutError> {
        self.heard.recv_timeout(within)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Listen on `channel` of the database at `url` from a thread named
/// `name`. Fails if the URL is not PostgreSQL's, the channel name is not a
/// plain identifier, or the server cannot be reached now; later outages
/// are waited out (and followed by [`Heard::Reconnected`]).
pub fn listen(url: &str, channel: &str, name: &str) -> Result<Listener, PgError> {
    if channel.is_empty()
        || !channel
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(PgError::Url(format!(
            "cannot listen on {channel:?}: not a plain identifier"
        )));
    }
    let (config, target) = session_config(url, "hotline-listen")?;
    let statement = format!("LISTEN {channel}");
    let session = move |config: &postgres::Config, target: &str| {
        let mut client = config.connect(NoTls).map_err(|e| error(target, &e))?;
        client
            .batch_execute(&statement)
            .map_err(|e| error(target, &e))?;
        Ok::<_, PgError>(client)
    };
    let (tx, heard) = mpsc::channel();
    let (ready, started) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let up = Arc::new(AtomicBool::new(true));
    let session_up = up.clone();
    let thread_target = target.clone();
    // rust-postgres's client runs a runtime of its own: it is made and
    // used on this thread only, never on a tokio worker.
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let target = thread_target;
            // A store that cannot be reached as the node starts (or goes
            // away just then) is like a session that broke: made again
            // below, and the follower reloads everything when it is.
            let mut client = match session(&config, &target) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot hear other nodes' changes yet; trying again");
                    session_up.store(false, Ordering::Relaxed);
                    None
                }
            };
            ready.send(Ok::<(), PgError>(())).ok();
            while !stopped.load(Ordering::Relaxed) {
                let Some(c) = client.as_mut() else {
                    std::thread::sleep(RECONNECT_AFTER);
                    match session(&config, &target) {
                        Ok(c) => {
                            tracing::info!(database = %target, "hearing other nodes' changes again");
                            client = Some(c);
                            session_up.store(true, Ordering::Relaxed);
                            if tx.send(Heard::Reconnected).is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "listening session not made again yet"),
                    }
                    continue;
                };
                let mut broke = false;
                {
                    let mut notifications = c.notifications();
                    let mut waiting = notifications.timeout_iter(POLL);
                    loop {
                        match waiting.next() {
                            Ok(Some(n)) => {
                                if tx.send(Heard::Payload(n.payload().to_string())).is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(database = %target, error = %error(&target, &e), "the session hearing other nodes' changes broke; making it again");
                                broke = true;
                                break;
                            }
                        }
                    }
                }
                if broke || c.is_closed() {
                    client = None;
                    session_up.store(false, Ordering::Relaxed);
                }
            }
        })
        .map_err(|_| PgError::Stopped(target.clone()))?;
    started.recv().map_err(|_| PgError::Stopped(target))??;
    Ok(Listener { heard, stop, up })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::test_db;

    fn next_payload(rx: &Listener) -> Heard {
        rx.next(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("nothing heard: {e}"))
    }

    #[test]
    fn a_committed_notification_is_heard_and_a_rolled_back_one_is_not() {
        let Some(url) = test_db::database("listen_commit") else {
            return;
        };
        let rx = listen(&url, "hotline_test", "test-listen").expect("listen");
        let mut c = postgres::Client::connect(&url, NoTls).expect("connect");
        let mut tx = c.transaction().expect("tx");
        tx.execute("SELECT pg_notify('hotline_test', 'rolled back')", &[])
            .expect("notify");
        tx.rollback().expect("rollback");
        c.execute("SELECT pg_notify('hotline_test', 'kept')", &[])
            .expect("notify");
        assert_eq!(next_payload(&rx), Heard::Payload("kept".into()));
    }

    #[test]
    fn a_broken_session_is_made_again_and_says_so() {
        let Some(url) = test_db::database("listen_reconnect") else {
            return;
        };
        let rx = listen(&url, "hotline_test", "test-listen").expect("listen");
        let mut admin = postgres::Client::connect(&url, NoTls).expect("connect");
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = 'hotline-listen' AND datname = current_database()",
                &[],
            )
            .expect("terminate");
        assert_eq!(next_payload(&rx), Heard::Reconnected);
        assert!(rx.is_up(), "up again once it says so");
        admin
            .execute("SELECT pg_notify('hotline_test', 'after')", &[])
            .expect("notify");
        assert_eq!(next_payload(&rx), Heard::Payload("after".into()));
    }

    #[test]
    fn a_channel_that_is_not_an_identifier_is_refused() {
        let err = listen("postgres://u@127.0.0.1:1/db", "x; DROP", "t").expect_err("refused");
        assert!(err.to_string().contains("plain identifier"), "{err}");
    }
}
