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
//! The outbox lives in its own database file (it owns `user_version`;
//! opening and schema: `store::sqlite`). Two connections: one for appends,
//! one for the sinks, so a slow delivery query never delays a call task's
//! append.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

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

    /// Register a sink (idempotent) and set its retry policy for this
    /// process. Events appended from the first registration on are
    /// delivered to it; a sink registered later does not receive older
    /// events. Register every sink at start-up, before the first append.
    pub fn register_sink(&self, sink: &str, policy: RetryPolicy) -> Result<(), OutboxError> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT OR IGNORE INTO outbox_sink (name) VALUES (?1)",
            params![sink],
        )
        .map_err(self.sqlite("register sink"))?;
        lock(&self.policies).insert(sink.to_string(), policy);
        Ok(())
    }

    /// Remove a sink and everything it has not delivered (a site that turns
    /// a sink off for good). Returns how many undelivered events it dropped.
    pub fn remove_sink(&self, sink: &str) -> Result<usize, OutboxError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("remove sink"))?;
        let dropped = tx
            .execute("DELETE FROM outbox_delivery WHERE sink = ?1", params![sink])
            .map_err(self.sqlite("remove sink"))?;
        tx.execute("DELETE FROM outbox_sink WHERE name = ?1", params![sink])
            .map_err(self.sqlite("remove sink"))?;
        tx.commit().map_err(self.sqlite("remove sink"))?;
        lock(&self.policies).remove(sink);
        lock(&self.leases).remove(sink);
        Ok(dropped)
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

    /// Calls among the last `window` stored events that have a
    /// `call.started` but no `call.ended` (a crash cut them off), each with
    /// the bodies of its events in order. Run at start, before new calls.
    pub fn unended_calls(&self, window: i64) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        let conn = lock(&self.delivery);
        let mut calls = conn
            .prepare(
                "SELECT s.call_id FROM outbox_event s
                 WHERE s.kind = 'call.started'
                   AND s.seq > (SELECT COALESCE(MAX(seq), 0) FROM outbox_event) - ?1
                   AND NOT EXISTS (SELECT 1 FROM outbox_event e
                                   WHERE e.call_id = s.call_id AND e.kind = 'call.ended')
                 ORDER BY s.seq",
            )
            .map_err(self.sqlite("unended calls"))?;
        let ids: Vec<String> = calls
            .query_map(params![window], |r| r.get(0))
            .map_err(self.sqlite("unended calls"))?
            .collect::<Result<_, _>>()
            .map_err(self.sqlite("unended calls"))?;
        let mut events = conn
            .prepare("SELECT body FROM outbox_event WHERE call_id = ?1 ORDER BY seq")
            .map_err(self.sqlite("unended calls"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let bodies: Vec<String> = events
                .query_map(params![id], |r| r.get(0))
                .map_err(self.sqlite("unended calls"))?
                .collect::<Result<_, _>>()
                .map_err(self.sqlite("unended calls"))?;
            out.push((id, bodies));
        }
        Ok(out)
    }

    /// Delete every stored event of `call_ids` (and their pending
    /// deliveries) in one transaction: the retention job's last step.
    /// Returns the number of events deleted.
    pub fn delete_calls(&self, call_ids: &[String]) -> Result<usize, OutboxError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("delete calls"))?;
        let mut n = 0;
        {
            let mut del_d = tx
                .prepare_cached(
                    "DELETE FROM outbox_delivery WHERE seq IN
                     (SELECT seq FROM outbox_event WHERE call_id = ?1)",
                )
                .map_err(self.sqlite("delete calls"))?;
            let mut del_e = tx
                .prepare_cached("DELETE FROM outbox_event WHERE call_id = ?1")
                .map_err(self.sqlite("delete calls"))?;
            for id in call_ids {
                del_d
                    .execute(params![id])
                    .map_err(self.sqlite("delete calls"))?;
                n += del_e
                    .execute(params![id])
                    .map_err(self.sqlite("delete calls"))?;
            }
        }
        tx.commit().map_err(self.sqlite("delete calls"))?;
        Ok(n)
    }

    /// Delete `agent.state` events older than `before` (RFC 3339 text):
    /// they have no `call.ended` for the retention job to go by.
    pub fn delete_agent_events_before(&self, before: &str) -> Result<usize, OutboxError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("delete agent events"))?;
        tx.execute(
            "DELETE FROM outbox_delivery WHERE seq IN (SELECT seq FROM outbox_event
             WHERE kind = 'agent.state' AND json_extract(body, '$.at') < ?1)",
            params![before],
        )
        .map_err(self.sqlite("delete agent events"))?;
        let n = tx
            .execute(
                "DELETE FROM outbox_event
                 WHERE kind = 'agent.state' AND json_extract(body, '$.at') < ?1",
                params![before],
            )
            .map_err(self.sqlite("delete agent events"))?;
        tx.commit().map_err(self.sqlite("delete agent events"))?;
        Ok(n)
    }

    /// Records whose call started after `after` and before `before` (RFC
    /// 3339 text; `""` for no lower bound): call id, tenant, start,
    /// recording path and voicemail path, oldest first, at most `limit`.
    pub fn calls_started_between(
        &self,
        after: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<StoredCall>, OutboxError> {
        let conn = lock(&self.delivery);
        let mut stmt = conn
            .prepare_cached(
                "SELECT call_id, json_extract(body, '$.tenant'),
                        json_extract(body, '$.data.started_at'),
                        json_extract(body, '$.data.recording.path'),
                        json_extract(body, '$.data.voicemail.path')
                 FROM outbox_event
                 WHERE kind = 'call.ended' AND json_extract(body, '$.data.started_at') < ?1
                   AND json_extract(body, '$.data.started_at') > ?3
                 ORDER BY json_extract(body, '$.data.started_at') LIMIT ?2",
            )
            .map_err(self.sqlite("calls before"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![before, limit, after], |r| {
                Ok(StoredCall {
                    call_id: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    tenant: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    started_at: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    recording: r.get(3)?,
                    voicemail: r.get(4)?,
                })
            })
            .map_err(self.sqlite("calls before"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.sqlite("calls before"))
    }

    /// A receiver that changes whenever events are appended: sink loops
    /// wait on it instead of polling.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Up to `max` events for `sink` to deliver now, oldest first: per call
    /// only the oldest undelivered event, and only once its backoff expired
    /// (rule: [`super::ordering`]). The events are leased to the caller
    /// until reported or `lease_ms` passes.
    pub fn next_batch(
        &self,
        sink: &str,
        max: usize,
        now_ms: i64,
    ) -> Result<Vec<Pending>, OutboxError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut leases = lock(&self.leases);
        let held = leases.entry(sink.to_string()).or_default();
        held.retain(|_, until| *until > now_ms);
        let limit = i64::try_from(max.saturating_add(held.len())).unwrap_or(i64::MAX);
        let conn = lock(&self.delivery);
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.seq, e.id, e.call_id, e.kind, e.body, d.attempts, d.replays
                 FROM outbox_delivery d JOIN outbox_event e ON e.seq = d.seq
                 WHERE d.sink = ?1 AND d.state = 0 AND d.next_at_ms <= ?2
                   AND (d.call_id IS NULL OR NOT EXISTS (
                        SELECT 1 FROM outbox_delivery p
                        WHERE p.sink = ?1 AND p.call_id = d.call_id
                          AND p.state = 0 AND p.seq < d.seq))
                 ORDER BY d.seq
                 LIMIT ?3",
            )
            .map_err(self.sqlite("next batch"))?;
        let rows = stmt
            .query_map(params![sink, now_ms, limit], |r| {
                Ok(Pending {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    call_id: r.get(2)?,
                    kind: r.get(3)?,
                    body_json: r.get(4)?,
                    attempt: r.get::<_, u32>(5)?.saturating_add(1),
                    replayed: r.get::<_, i64>(6)? > 0,
                })
            })
            .map_err(self.sqlite("next batch"))?;
        let lease_until = now_ms.saturating_add(self.config.lease_ms);
        let mut out = Vec::new();
        for row in rows {
            let p = row.map_err(self.sqlite("next batch"))?;
            if out.len() >= max {
                break;
            }
            if held.contains_key(&p.seq) {
                continue;
            }
            held.insert(p.seq, lease_until);
            out.push(p);
        }
        Ok(out)
    }

    /// The earliest retry time after `now_ms` among `sink`'s events in
    /// backoff: when a sink with nothing due should look again.
    pub fn next_retry_at(&self, sink: &str, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        let conn = lock(&self.delivery);
        conn.query_row(
            "SELECT MIN(next_at_ms) FROM outbox_delivery
             WHERE sink = ?1 AND state = 0 AND next_at_ms > ?2",
            params![sink, now_ms],
            |r| r.get(0),
        )
        .map_err(self.sqlite("next retry"))
    }

    /// Give a leased event back at once (its outcome could not be
    /// recorded): the next poll may hand it out again.
    pub fn release(&self, sink: &str, seq: i64) {
        if let Some(held) = lock(&self.leases).get_mut(sink) {
            held.remove(&seq);
        }
    }

    /// `sink` delivered event `id`. Returns `false` when there was nothing
    /// to acknowledge (already acknowledged, or a dead letter).
    pub fn ack(&self, sink: &str, id: &str) -> Result<bool, OutboxError> {
        let mut conn = lock(&self.delivery);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("ack"))?;
        let seq: Option<i64> = tx
            .query_row(
                "DELETE FROM outbox_delivery
                 WHERE sink = ?1 AND state = 0
                   AND seq = (SELECT seq FROM outbox_event WHERE id = ?2)
                 RETURNING seq",
                params![sink, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sqlite("ack"))?;
        if let Some(seq) = seq {
            tx.execute(
                "UPDATE outbox_sink SET delivered = delivered + 1 WHERE name = ?1",
                params![sink],
            )
            .map_err(self.sqlite("ack"))?;
            tx.commit().map_err(self.sqlite("ack"))?;
            drop(conn);
            self.release(sink, seq);
        }
        Ok(seq.is_some())
    }

    /// [`Outbox::ack`] for several events in one transaction (a file sink
    /// after its fsync). Returns how many were acknowledged.
    pub fn ack_many(&self, sink: &str, ids: &[&str]) -> Result<usize, OutboxError> {
        let mut conn = lock(&self.delivery);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("ack"))?;
        let mut seqs = Vec::with_capacity(ids.len());
        {
            let mut del = tx
                .prepare_cached(
                    "DELETE FROM outbox_delivery
                     WHERE sink = ?1 AND state = 0
                       AND seq = (SELECT seq FROM outbox_event WHERE id = ?2)
                     RETURNING seq",
                )
                .map_err(self.sqlite("ack"))?;
            for id in ids {
                let seq: Option<i64> = del
                    .query_row(params![sink, id], |r| r.get(0))
                    .optional()
                    .map_err(self.sqlite("ack"))?;
                seqs.extend(seq);
            }
        }
        tx.execute(
            "UPDATE outbox_sink SET delivered = delivered + ?2 WHERE name = ?1",
            params![sink, seqs.len() as i64],
        )
        .map_err(self.sqlite("ack"))?;
        tx.commit().map_err(self.sqlite("ack"))?;
        drop(conn);
        for seq in &seqs {
            self.release(sink, *seq);
        }
        Ok(seqs.len())
    }

    /// `sink` failed to deliver event `id` at `now_ms`: schedule a retry
    /// with backoff, or dead-letter it after the policy's last attempt.
    /// Returns `None` when the event was not pending for `sink`.
    pub fn fail(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<Option<FailOutcome>, OutboxError> {
        self.fail_not_before(sink, id, now_ms, error, None)
    }

    /// [`Outbox::fail`] honouring a receiver's `Retry-After`
    /// (`not_before_ms`, unix ms), up to the policy's cap.
    pub fn fail_not_before(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        not_before_ms: Option<i64>,
    ) -> Result<Option<FailOutcome>, OutboxError> {
        let policy = self.policy(sink)?;
        let unit: f64 = rand::random();
        self.record_failure(sink, id, now_ms, error, |attempts| {
            policy.after_failure(attempts, now_ms, unit, not_before_ms)
        })
    }

    /// The receiver refused event `id` for good (such as HTTP 400):
    /// dead-letter it now, whatever the attempts so far.
    pub fn dead_letter(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<bool, OutboxError> {
        let r = self.record_failure(sink, id, now_ms, error, |_| FailOutcome::DeadLetter)?;
        Ok(r.is_some())
    }

    fn policy(&self, sink: &str) -> Result<RetryPolicy, OutboxError> {
        lock(&self.policies)
            .get(sink)
            .copied()
            .ok_or_else(|| OutboxError::UnknownSink {
                path: self.path.clone(),
                sink: sink.to_string(),
            })
    }

    fn record_failure(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        decide: impl FnOnce(u32) -> FailOutcome,
    ) -> Result<Option<FailOutcome>, OutboxError> {
        let mut conn = lock(&self.delivery);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("fail"))?;
        let row: Option<(i64, u32)> = tx
            .query_row(
                "SELECT d.seq, d.attempts FROM outbox_delivery d
                 JOIN outbox_event e ON e.seq = d.seq
                 WHERE d.sink = ?1 AND e.id = ?2 AND d.state = 0",
                params![sink, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sqlite("fail"))?;
        let Some((seq, attempts)) = row else {
            return Ok(None);
        };
        let attempts = attempts.saturating_add(1);
        let outcome = decide(attempts);
        match outcome {
            FailOutcome::Retry { at_ms } => tx.execute(
                "UPDATE outbox_delivery SET attempts = ?3, next_at_ms = ?4, last_error = ?5
                 WHERE sink = ?1 AND seq = ?2",
                params![sink, seq, attempts, at_ms, error],
            ),
            FailOutcome::DeadLetter => tx.execute(
                "UPDATE outbox_delivery SET state = ?3, attempts = ?4, last_error = ?5,
                        dead_at_ms = ?6
                 WHERE sink = ?1 AND seq = ?2",
                params![sink, seq, STATE_DEAD, attempts, error, now_ms],
            ),
        }
        .map_err(self.sqlite("fail"))?;
        tx.commit().map_err(self.sqlite("fail"))?;
        drop(conn);
        self.release(sink, seq);
        Ok(Some(outcome))
    }

    /// Up to `limit` dead letters of `sink`, oldest first.
    pub fn dead_letters(&self, sink: &str, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = lock(&self.delivery);
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.seq, e.id, e.call_id, e.kind, e.body, d.attempts, d.last_error,
                        d.dead_at_ms
                 FROM outbox_delivery d JOIN outbox_event e ON e.seq = d.seq
                 WHERE d.sink = ?1 AND d.state = ?2
                 ORDER BY d.seq LIMIT ?3",
            )
            .map_err(self.sqlite("dead letters"))?;
        let rows = stmt
            .query_map(params![sink, STATE_DEAD, limit], |r| {
                Ok(DeadLetter {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    call_id: r.get(2)?,
                    kind: r.get(3)?,
                    body_json: r.get(4)?,
                    attempts: r.get(5)?,
                    last_error: r.get(6)?,
                    dead_at_ms: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                })
            })
            .map_err(self.sqlite("dead letters"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.sqlite("dead letters"))
    }

    /// Put dead letter `id` of `sink` back to pending with fresh attempts.
    /// Returns `false` when `id` was not a dead letter of `sink`.
    pub fn replay(&self, sink: &str, id: &str) -> Result<bool, OutboxError> {
        let conn = lock(&self.delivery);
        let n = conn
            .execute(
                "UPDATE outbox_delivery
                 SET state = 0, attempts = 0, next_at_ms = 0, dead_at_ms = NULL,
                     replays = replays + 1
                 WHERE sink = ?1 AND state = ?3
                   AND seq = (SELECT seq FROM outbox_event WHERE id = ?2)",
                params![sink, id, STATE_DEAD],
            )
            .map_err(self.sqlite("replay"))?;
        drop(conn);
        if n > 0 {
            self.appended.send_modify(|g| *g = g.wrapping_add(1));
        }
        Ok(n > 0)
    }

    /// Replay every dead letter of `sink`; returns how many.
    pub fn replay_all(&self, sink: &str) -> Result<usize, OutboxError> {
        let conn = lock(&self.delivery);
        let n = conn
            .execute(
                "UPDATE outbox_delivery
                 SET state = 0, attempts = 0, next_at_ms = 0, dead_at_ms = NULL,
                     replays = replays + 1
                 WHERE sink = ?1 AND state = ?2",
                params![sink, STATE_DEAD],
            )
            .map_err(self.sqlite("replay"))?;
        drop(conn);
        if n > 0 {
            self.appended.send_modify(|g| *g = g.wrapping_add(1));
        }
        Ok(n)
    }

    /// Counters of every sink at `now_ms`, by sink name.
    pub fn stats(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError> {
        let conn = lock(&self.delivery);
        let mut stmt = conn
            .prepare_cached(
                "SELECT s.name, s.delivered,
                   (SELECT count(*) FROM outbox_delivery d
                     WHERE d.sink = s.name AND d.state = 0 AND d.next_at_ms <= ?1),
                   (SELECT count(*) FROM outbox_delivery d
                     WHERE d.sink = s.name AND d.state = 0 AND d.next_at_ms > ?1),
                   (SELECT count(*) FROM outbox_delivery d
                     WHERE d.sink = s.name AND d.state = 2)
                 FROM outbox_sink s ORDER BY s.name",
            )
            .map_err(self.sqlite("stats"))?;
        let rows = stmt
            .query_map(params![now_ms], |r| {
                Ok(SinkStats {
                    sink: r.get(0)?,
                    delivered: r.get(1)?,
                    pending: r.get(2)?,
                    in_backoff: r.get(3)?,
                    in_flight: 0,
                    dead: r.get(4)?,
                })
            })
            .map_err(self.sqlite("stats"))?;
        let mut out: Vec<SinkStats> = rows
            .collect::<Result<_, _>>()
            .map_err(self.sqlite("stats"))?;
        drop(stmt);
        drop(conn);
        let leases = lock(&self.leases);
        for s in &mut out {
            s.in_flight = leases
                .get(&s.sink)
                .map(|h| h.values().filter(|until| **until > now_ms).count() as u64)
                .unwrap_or(0);
        }
        Ok(out)
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
