//! The durable event outbox (issue 7 §2: "each event is committed to SQLite
//! (WAL) … then delivered; at-least-once with the event id as idempotency
//! key and per-call ordering; `kill -9` at any moment loses nothing and
//! delivery resumes on restart").
//!
//! # Model
//! - [`Outbox::append`] commits a batch of events in one SQLite transaction
//!   and, in the same transaction, one *delivery* row per registered sink.
//!   Once it returns `Ok`, the events survive `kill -9` (WAL; with
//!   [`Durability::Full`] they also survive a power cut).
//! - Each sink ([`Outbox::register_sink`]) has its own delivery rows, so a
//!   webhook and a JSONL file deliver independently: one being down never
//!   holds the other back.
//! - A sink asks for work with [`Outbox::next_batch`], which applies the
//!   per-call ordering rule of [`super::ordering`] (only the oldest
//!   undelivered event of each call, only when its backoff has expired),
//!   then reports each event with [`Outbox::ack`], [`Outbox::fail`] or
//!   [`Outbox::dead_letter`]. Handed-out events are *leased* in memory until
//!   reported (or the lease expires); a restart forgets the leases, so
//!   whatever was in flight at a crash is delivered again: at-least-once,
//!   de-duplicable by event id.
//! - Failures back off per [`RetryPolicy`]; after `max_attempts` the event
//!   becomes a dead letter: kept, listed by [`Outbox::dead_letters`], put
//!   back by [`Outbox::replay`]. **A dead letter does not block its call**:
//!   the call's next events proceed, so one poison event cannot stall a
//!   call's CDR forever; the dead letter is flagged (state *dead*, counted
//!   in [`SinkStats::dead`] for `/healthz`) and, once replayed, is delivered
//!   after the events that overtook it (the receiver sees
//!   [`Pending::replayed`]).
//! - Delivered rows are deleted (the sink's `delivered` counter goes up), so
//!   the hot table holds only undelivered work; the events themselves stay
//!   in `outbox_event` for the records and retention jobs.
//!
//! Time is always passed in (`now_ms`, unix milliseconds): this module
//! never reads the clock. The only randomness is the jitter draw in
//! [`Outbox::fail`].
//!
//! Files: this one has the model, opening and appends; [`delivery`] the
//! sinks' side (work, acknowledgements, failures, dead letters, replay,
//! statistics); [`calls`] the queries on a call's stored events (restart
//! repair, retention).
//!
//! The outbox lives in its own database file (it owns `user_version`;
//! opening and schema: `store::sqlite`). Two connections: one for appends,
//! one for the sinks, so a slow delivery query never delays a call task's
//! append.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

mod calls;
mod delivery;

use super::backoff::{FailOutcome, RetryPolicy};
use crate::store::sqlite::{self, MigrateError, Synchronous, EVENTS};

/// Schema version stored in `PRAGMA user_version` (the schema and its
/// migrations: `store::sqlite::events_schema`).
pub const SCHEMA_VERSION: i64 = EVENTS.version();

const STATE_DEAD: i64 = 2;

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives `kill -9` of hotline; a power cut may
    /// lose the last commits (WAL stays consistent). hotline's default, as
    /// for its other database.
    #[default]
    Normal,
    /// `synchronous=FULL`: every append is fsynced; survives a power cut,
    /// at the cost of one fsync per append.
    Full,
}

/// Outbox settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Disk durability of appends.
    pub durability: Durability,
    /// How long a handed-out event stays leased to its sink before it may
    /// be handed out again if never reported (milliseconds; default 120 s;
    /// keep above the sink's own timeout).
    pub lease_ms: i64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Normal,
            lease_ms: 120_000,
        }
    }
}

/// Outbox errors, naming the database file and the sink or event involved.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("{path}: outbox {op}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// What the outbox was doing.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer hotline.
    #[error("{path}: outbox schema version {found} is newer than this hotline's {supported}")]
    SchemaTooNew {
        /// Database file.
        path: PathBuf,
        /// `user_version` found.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
    /// An event id was appended twice (ids are the receivers' idempotency key).
    #[error("{path}: event {id} is already in the outbox")]
    DuplicateEvent {
        /// Database file.
        path: PathBuf,
        /// The event id.
        id: String,
    },
    /// An event's body is not JSON.
    #[error("event {id} ({kind}): body is not JSON: {source}")]
    BadBody {
        /// The event id.
        id: String,
        /// The event type.
        kind: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The outbox's writer thread could not start.
    #[error("{path}: cannot start the outbox writer: {source}")]
    Io {
        /// Database file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sink name not registered with [`Outbox::register_sink`].
    #[error("{path}: unknown sink {sink:?}")]
    UnknownSink {
        /// Database file.
        path: PathBuf,
        /// The sink.
        sink: String,
    },
}

/// A stored call as the retention job sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    /// Call id.
    pub call_id: String,
    /// Tenant.
    pub tenant: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Recording path below the recordings root.
    pub recording: Option<String>,
    /// Voicemail path below the voicemail root.
    pub voicemail: Option<String>,
}

/// An event to append. `call_id` is the ordering key (see [`super::ordering`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Globally unique event id: the receivers' idempotency key.
    pub id: String,
    /// The call it belongs to; events of one call are delivered in order.
    pub call_id: Option<String>,
    /// Event type, such as `call.started`.
    pub kind: String,
    /// The event, serialized as one JSON value.
    pub body_json: String,
}

/// An event handed to a sink for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Append order, unique in this outbox.
    pub seq: i64,
    /// Event id.
    pub id: String,
    /// Call id, if any.
    pub call_id: Option<String>,
    /// Event type.
    pub kind: String,
    /// The JSON body.
    pub body_json: String,
    /// Which attempt this is for this sink, from 1.
    pub attempt: u32,
    /// The event was dead-lettered and replayed by an operator.
    pub replayed: bool,
}

/// A dead letter of one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Append order.
    pub seq: i64,
    /// Event id.
    pub id: String,
    /// Call id, if any.
    pub call_id: Option<String>,
    /// Event type.
    pub kind: String,
    /// The JSON body.
    pub body_json: String,
    /// Failed attempts.
    pub attempts: u32,
    /// The last failure, as the sink reported it.
    pub last_error: Option<String>,
    /// When it was given up, unix milliseconds.
    pub dead_at_ms: i64,
}

/// Delivery counters of one sink, for `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Sink name.
    pub sink: String,
    /// Undelivered and due (or waiting behind an older event of its call).
    pub pending: u64,
    /// Undelivered, waiting for a retry.
    pub in_backoff: u64,
    /// Handed out, not yet reported.
    pub in_flight: u64,
    /// Dead letters.
    pub dead: u64,
    /// Delivered since the outbox was created.
    pub delivered: u64,
}

/// The outbox. Share it as `Arc<Outbox>`; every method takes `&self`.
pub struct Outbox {
    path: PathBuf,
    config: OutboxConfig,
    writer: Mutex<Connection>,
    delivery: Mutex<Connection>,
    /// sink → (seq → lease expiry, unix ms). In memory on purpose: a
    /// restart releases every lease.
    leases: Mutex<HashMap<String, HashMap<i64, i64>>>,
    /// sink → retry policy, for the sinks registered by this process.
    policies: Mutex<HashMap<String, RetryPolicy>>,
    appended: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (an open
    // transaction rolls back on drop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    /// Open (creating) the outbox database at `path` with default settings.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        Self::open_with(path, OutboxConfig::default())
    }

    /// Open (creating) the outbox database at `path`.
    pub fn open_with(path: &Path, config: OutboxConfig) -> Result<Self, OutboxError> {
        let writer = connect(path, config.durability)?;
        migrate(path, &writer)?;
        // Appends never run a WAL checkpoint (a few ms every 1000 pages):
        // the delivery connection's commits do, and `checkpoint` when no
        // sink runs.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|source| OutboxError::Sqlite {
                path: path.to_path_buf(),
                op: "open",
                source,
            })?;
        let delivery = connect(path, config.durability)?;
        let (appended, _) = tokio::sync::watch::channel(0);
        Ok(Self {
            path: path.to_path_buf(),
            config,
            writer: Mutex::new(writer),
            delivery: Mutex::new(delivery),
            leases: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            appended,
        })
    }

    /// Copy the WAL back into the database file (passive: never waits for
    /// readers). The sinks' acknowledgements do this on their own; call it
    /// periodically only when no sink is running, to bound the WAL.
    pub fn checkpoint(&self) -> Result<(), OutboxError> {
        let conn = lock(&self.delivery);
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.sqlite("checkpoint"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
        move |source| OutboxError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }

    /// Append events atomically: all or none, in slice order (events of one
    /// call keep their order). Bodies must be JSON; ids must be new.
    pub fn append(&self, events: &[NewEvent]) -> Result<(), OutboxError> {
        if events.is_empty() {
            return Ok(());
        }
        for ev in events {
            check_body(ev)?;
        }
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("append"))?;
        insert_events(&tx, events).map_err(|e| self.append_error(e, events))?;
        tx.commit().map_err(self.sqlite("append"))?;
        drop(conn);
        self.appended.send_modify(|g| *g = g.wrapping_add(1));
        Ok(())
    }

    fn append_error(&self, e: rusqlite::Error, events: &[NewEvent]) -> OutboxError {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("outbox_event.id")
            {
                // Name the offending id: the first one already stored.
                let conn = lock(&self.delivery);
                let id = events
                    .iter()
                    .find(|ev| {
                        conn.query_row(
                            "SELECT 1 FROM outbox_event WHERE id = ?1",
                            params![ev.id],
                            |_| Ok(()),
                        )
                        .is_ok()
                    })
                    .or_else(|| duplicate_within(events))
                    .map(|ev| ev.id.clone())
                    .unwrap_or_default();
                return OutboxError::DuplicateEvent {
                    path: self.path.clone(),
                    id,
                };
            }
        }
        self.sqlite("append")(e)
    }
}

/// Append `events` inside a caller's transaction on a database that holds
/// the outbox schema: for committing events together with the state change
/// they describe when that state lives in the same database. Sinks are not
/// woken: they find the events at their next poll.
pub fn append_in(tx: &Transaction<'_>, events: &[NewEvent]) -> Result<(), OutboxError> {
    for ev in events {
        check_body(ev)?;
    }
    insert_events(tx, events).map_err(|source| OutboxError::Sqlite {
        path: tx.path().map(PathBuf::from).unwrap_or_default(),
        op: "append",
        source,
    })
}

fn check_body(ev: &NewEvent) -> Result<(), OutboxError> {
    serde_json::from_str::<serde::de::IgnoredAny>(&ev.body_json)
        .map(|_| ())
        .map_err(|source| OutboxError::BadBody {
            id: ev.id.clone(),
            kind: ev.kind.clone(),
            source,
        })
}

fn duplicate_within(events: &[NewEvent]) -> Option<&NewEvent> {
    let mut seen = std::collections::HashSet::new();
    events.iter().find(|ev| !seen.insert(ev.id.as_str()))
}

fn insert_events(tx: &Transaction<'_>, events: &[NewEvent]) -> Result<(), rusqlite::Error> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO outbox_event (id, call_id, kind, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut fan = tx.prepare_cached(
        "INSERT INTO outbox_delivery (sink, seq, call_id)
         SELECT name, ?1, ?2 FROM outbox_sink",
    )?;
    for ev in events {
        ins.execute(params![ev.id, ev.call_id, ev.kind, ev.body_json])?;
        let seq = tx.last_insert_rowid();
        fan.execute(params![seq, ev.call_id])?;
    }
    Ok(())
}

fn connect(path: &Path, durability: Durability) -> Result<Connection, OutboxError> {
    let sync = match durability {
        Durability::Normal => Synchronous::Normal,
        Durability::Full => Synchronous::Full,
    };
    sqlite::connect(path, sqlite::Mode::ReadWrite(sync)).map_err(|source| OutboxError::Sqlite {
        path: path.to_path_buf(),
        op: "open",
        source,
    })
}

fn migrate(path: &Path, conn: &Connection) -> Result<(), OutboxError> {
    sqlite::migrate(conn, &EVENTS).map_err(|e| match e {
        MigrateError::Sqlite(source) => OutboxError::Sqlite {
            path: path.to_path_buf(),
            op: "migrate",
            source,
        },
        MigrateError::TooNew { found, supported } => OutboxError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        },
    })
}

#[cfg(test)]
mod tests;
