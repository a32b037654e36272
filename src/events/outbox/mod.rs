//! The durable event outbox (issue 7 §2: "each event is committed to SQLite
//! (WAL) … then delivered; at-least-once with the event id as idempotency
//! key and per-call ordering; `kill -9` at any moment loses nothing and
//! delivery resumes on restart").
//!
//! # Model
//! - [`Outbox::append`] commits a batch of events in one transaction
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
//! repair, retention). The SQL lives in the two backends behind
//! [`backend::Backend`] (issue 15 §1: everything hotline persists has an
//! embedded SQLite backend and a PostgreSQL one):
//! - [`sqlite`]: its own database file, `events.db` (it owns
//!   `user_version`; opening and schema: `store::sqlite`). Two
//!   connections: one for appends, one for the sinks, so a slow delivery
//!   query never delays a call task's append.
//! - [`postgres`]: the `outbox_*` tables of the store's PostgreSQL
//!   database (`[store] url`; schema: `store::pg::events_schema`), two
//!   connections likewise. A committed append is in PostgreSQL's WAL
//!   (survives `kill -9` of hotline and of the server); [`Durability`]
//!   does not apply. The leases stay in this process's memory, so one
//!   node delivers a database's events (docs/ha.md §4).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

mod backend;
mod calls;
mod delivery;
mod postgres;
mod sqlite;

use super::backoff::{FailOutcome, RetryPolicy};
use crate::store::pg::PgError;
use backend::Backend;
pub use sqlite::append_in;

/// Schema version of `events.db` (`PRAGMA user_version`; the schema and
/// its migrations: `store::sqlite::events_schema`).
pub const SCHEMA_VERSION: i64 = crate::store::sqlite::EVENTS.version();

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

/// Outbox errors, naming the database (the file, or the PostgreSQL server
/// and database, never a password) and the sink or event involved.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("{db}: outbox {op}: {source}")]
    Sqlite {
        /// Database file.
        db: String,
        /// What the outbox was doing.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed or could not be reached (the error names it).
    #[error("outbox {op}: {source}")]
    Postgres {
        /// What the outbox was doing.
        op: &'static str,
        /// The error, naming the server and database.
        source: PgError,
    },
    /// The database was written by a newer hotline.
    #[error("{db}: outbox schema version {found} is newer than this hotline's {supported}")]
    SchemaTooNew {
        /// The database.
        db: String,
        /// Version found.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
    /// An event id was appended twice (ids are the receivers' idempotency key).
    #[error("{db}: event {id} is already in the outbox")]
    DuplicateEvent {
        /// The database.
        db: String,
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
    #[error("{db}: cannot start the outbox writer: {source}")]
    Io {
        /// The database.
        db: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sink name not registered with [`Outbox::register_sink`].
    #[error("{db}: unknown sink {sink:?}")]
    UnknownSink {
        /// The database.
        db: String,
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
    /// The database, as errors name it.
    db: String,
    /// The file, for the embedded backend.
    path: Option<PathBuf>,
    config: OutboxConfig,
    backend: Box<dyn Backend>,
    /// sink → (seq → lease expiry, unix ms). In memory on purpose: a
    /// restart releases every lease.
    leases: Mutex<HashMap<String, HashMap<i64, i64>>>,
    /// sink → retry policy, for the sinks registered by this process.
    policies: Mutex<HashMap<String, RetryPolicy>>,
    appended: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("db", &self.db).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the database consistent (an
    // open transaction rolls back), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    /// Open (creating) the outbox database at `path` with default settings.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        Self::open_with(path, OutboxConfig::default())
    }

    /// Open (creating) the outbox database at `path`.
    pub fn open_with(path: &Path, config: OutboxConfig) -> Result<Self, OutboxError> {
        let backend = sqlite::Embedded::open(path, config.durability)?;
        Ok(Self::with(
            path.display().to_string(),
            Some(path.to_path_buf()),
            config,
            Box::new(backend),
        ))
    }

    /// Connect to the outbox in the PostgreSQL database at `url` (the
    /// store's, `[store] url`) with default settings, bringing its schema
    /// up to date; fails if the server cannot be reached now.
    pub fn connect(url: &str) -> Result<Self, OutboxError> {
        Self::connect_with(url, OutboxConfig::default())
    }

    /// [`Outbox::connect`] as the node `node` (docs/ha.md §4): each event
    /// it appends names the node, and [`Outbox::unended_calls`] finds only
    /// this node's calls (another live node's calls are not cut off).
    pub fn connect_as(url: &str, node: &str) -> Result<Self, OutboxError> {
        Self::connect_as_with(url, node, OutboxConfig::default())
    }

    /// [`Outbox::connect`] with settings (`durability` does not apply:
    /// PostgreSQL's commit is durable as its server is configured).
    pub fn connect_with(url: &str, config: OutboxConfig) -> Result<Self, OutboxError> {
        Self::connect_as_with(url, "", config)
    }

    /// [`Outbox::connect_as`] with settings.
    pub fn connect_as_with(
        url: &str,
        node: &str,
        config: OutboxConfig,
    ) -> Result<Self, OutboxError> {
        let backend = postgres::Shared::connect(url, node)?;
        Ok(Self::with(
            backend.database(),
            None,
            config,
            Box::new(backend),
        ))
    }

    /// The outbox `[store] url` and `[events] db` name: in PostgreSQL when
    /// a URL is set, else in the file `path`.
    pub fn configured(url: Option<&str>, path: &Path) -> Result<Self, OutboxError> {
        Self::configured_as(url, "", path)
    }

    /// [`Outbox::configured`] as the node `node` (PostgreSQL only).
    pub fn configured_as(url: Option<&str>, node: &str, path: &Path) -> Result<Self, OutboxError> {
        match url {
            Some(url) => Self::connect_as(url, node),
            None => Self::open(path),
        }
    }

    fn with(
        db: String,
        path: Option<PathBuf>,
        config: OutboxConfig,
        backend: Box<dyn Backend>,
    ) -> Self {
        let (appended, _) = tokio::sync::watch::channel(0);
        Self {
            db,
            path,
            config,
            backend,
            leases: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            appended,
        }
    }

    /// Copy the WAL back into the database file (passive: never waits for
    /// readers). The sinks' acknowledgements do this on their own; call it
    /// periodically only when no sink is running, to bound the WAL. Nothing
    /// to do on PostgreSQL.
    pub fn checkpoint(&self) -> Result<(), OutboxError> {
        self.backend.checkpoint()
    }

    /// The database file (None on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The database as errors name it: the file, or the PostgreSQL server
    /// and database (never a password).
    pub fn database(&self) -> &str {
        &self.db
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
        self.backend.append(events)?;
        self.appended.send_modify(|g| *g = g.wrapping_add(1));
        Ok(())
    }
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

/// The id a refused append names: the first of `events` whose id is not
/// among the `fresh` ones inserted, or repeats an earlier one.
fn first_duplicate<'a>(events: &'a [NewEvent], fresh: &[String]) -> Option<&'a str> {
    let fresh: std::collections::HashSet<&str> = fresh.iter().map(String::as_str).collect();
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .find(|ev| !fresh.contains(ev.id.as_str()) || !seen.insert(ev.id.as_str()))
        .map(|ev| ev.id.as_str())
}

#[cfg(test)]
mod tests;
