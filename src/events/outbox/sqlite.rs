//! The embedded outbox backend: `events.db`, an SQLite file of its own (it
//! owns `user_version`; opening and schema: `store::sqlite`), WAL. Two
//! connections: one for appends, one for the sinks and the queries, so a
//! slow delivery query never delays a call task's append.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::backend::{Backend, Decide};
use super::{first_duplicate, lock, Durability, FailOutcome, NewEvent, OutboxError, STATE_DEAD};
use super::{DeadLetter, Pending, SinkStats, StoredCall};
use crate::store::sqlite::{self, MigrateError, Synchronous, EVENTS};

/// `events.db`.
pub(super) struct Embedded {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl Embedded {
    /// Open (creating) and migrate the file.
    pub(super) fn open(path: &Path, durability: Durability) -> Result<Self, OutboxError> {
        let writer = connect(path, durability)?;
        migrate(path, &writer)?;
        // Appends never run a WAL checkpoint (a few ms every 1000 pages):
        // the delivery connection's commits do, and `checkpoint` when no
        // sink runs.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|source| OutboxError::Sqlite {
                db: path.display().to_string(),
                op: "open",
                source,
            })?;
        let reader = connect(path, durability)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn sqlite(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> OutboxError + '_ {
        move |source| OutboxError::Sqlite {
            db: self.path.display().to_string(),
            op,
            source,
        }
    }

    fn append_error(&self, e: rusqlite::Error, events: &[NewEvent]) -> OutboxError {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("outbox_event.id")
            {
                // Name the offending id: the first one already stored.
                let conn = lock(&self.reader);
                let mut stored = conn.prepare_cached("SELECT 1 FROM outbox_event WHERE id = ?1");
                let fresh: Vec<String> = events
                    .iter()
                    .filter(|ev| match &mut stored {
                        Ok(s) => !s.exists(params![ev.id]).unwrap_or(false),
                        Err(_) => true,
                    })
                    .map(|ev| ev.id.clone())
                    .collect();
                return OutboxError::DuplicateEvent {
                    db: self.path.display().to_string(),
                    id: first_duplicate(events, &fresh)
                        .unwrap_or_default()
                        .to_string(),
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
        super::check_body(ev)?;
    }
    insert_events(tx, events).map_err(|source| OutboxError::Sqlite {
        db: tx.path().unwrap_or_default().to_string(),
        op: "append",
        source,
    })
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
        db: path.display().to_string(),
        op: "open",
        source,
    })
}

fn migrate(path: &Path, conn: &Connection) -> Result<(), OutboxError> {
    sqlite::migrate(conn, &EVENTS).map_err(|e| match e {
        MigrateError::Sqlite(source) => OutboxError::Sqlite {
            db: path.display().to_string(),
            op: "migrate",
            source,
        },
        MigrateError::TooNew { found, supported } => OutboxError::SchemaTooNew {
            db: path.display().to_string(),
            found,
            supported,
        },
    })
}

impl Backend for Embedded {
    fn append(&self, events: &[NewEvent]) -> Result<(), OutboxError> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sqlite("append"))?;
        if let Err(e) = insert_events(&tx, events) {
            drop(tx);
            drop(conn);
            return Err(self.append_error(e, events));
        }
        tx.commit().map_err(self.sqlite("append"))
    }

    fn register_sink(&self, sink: &str) -> Result<(), OutboxError> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT OR IGNORE INTO outbox_sink (name) VALUES (?1)",
            params![sink],
        )
        .map_err(self.sqlite("register sink"))?;
        Ok(())
    }

    fn remove_sink(&self, sink: &str) -> Result<usize, OutboxError> {
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
        Ok(dropped)
    }

    fn due(&self, sink: &str, now_ms: i64, limit: i64) -> Result<Vec<Pending>, OutboxError> {
        let conn = lock(&self.reader);
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
        rows.collect::<Result<_, _>>()
            .map_err(self.sqlite("next batch"))
    }

    fn next_retry_at(&self, sink: &str, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        let conn = lock(&self.reader);
        conn.query_row(
            "SELECT MIN(next_at_ms) FROM outbox_delivery
             WHERE sink = ?1 AND state = 0 AND next_at_ms > ?2",
            params![sink, now_ms],
            |r| r.get(0),
        )
        .map_err(self.sqlite("next retry"))
    }

    fn ack(&self, sink: &str, ids: &[String]) -> Result<Vec<i64>, OutboxError> {
        let mut conn = lock(&self.reader);
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
        if seqs.is_empty() {
            return Ok(seqs);
        }
        tx.execute(
            "UPDATE outbox_sink SET delivered = delivered + ?2 WHERE name = ?1",
            params![sink, seqs.len() as i64],
        )
        .map_err(self.sqlite("ack"))?;
        tx.commit().map_err(self.sqlite("ack"))?;
        Ok(seqs)
    }

    fn record_failure(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        decide: Decide,
    ) -> Result<Option<(i64, FailOutcome)>, OutboxError> {
        let mut conn = lock(&self.reader);
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
        Ok(Some((seq, outcome)))
    }

    fn dead_letters(&self, sink: &str, limit: i64) -> Result<Vec<DeadLetter>, OutboxError> {
        let conn = lock(&self.reader);
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

    fn replay(&self, sink: &str, id: Option<&str>) -> Result<usize, OutboxError> {
        let conn = lock(&self.reader);
        match id {
            Some(id) => conn.execute(
                "UPDATE outbox_delivery
                 SET state = 0, attempts = 0, next_at_ms = 0, dead_at_ms = NULL,
                     replays = replays + 1
                 WHERE sink = ?1 AND state = ?3
                   AND seq = (SELECT seq FROM outbox_event WHERE id = ?2)",
                params![sink, id, STATE_DEAD],
            ),
            None => conn.execute(
                "UPDATE outbox_delivery
                 SET state = 0, attempts = 0, next_at_ms = 0, dead_at_ms = NULL,
                     replays = replays + 1
                 WHERE sink = ?1 AND state = ?2",
                params![sink, STATE_DEAD],
            ),
        }
        .map_err(self.sqlite("replay"))
    }

    fn sink_counts(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError> {
        let conn = lock(&self.reader);
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
        rows.collect::<Result<_, _>>().map_err(self.sqlite("stats"))
    }

    fn checkpoint(&self) -> Result<(), OutboxError> {
        let conn = lock(&self.reader);
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.sqlite("checkpoint"))
    }

    fn unended_calls(&self, window: i64) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        let conn = lock(&self.reader);
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

    fn delete_calls(&self, call_ids: &[String]) -> Result<usize, OutboxError> {
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

    fn delete_agent_events_before(&self, before: &str) -> Result<usize, OutboxError> {
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

    fn calls_started_between(
        &self,
        after: &str,
        before: &str,
        limit: i64,
    ) -> Result<Vec<StoredCall>, OutboxError> {
        let conn = lock(&self.reader);
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

    #[cfg(test)]
    fn delivery_rows(&self, sink: &str) -> Vec<super::backend::DeliveryRow> {
        let conn = lock(&self.reader);
        let mut stmt = conn
            .prepare(
                "SELECT seq, call_id, state, next_at_ms FROM outbox_delivery
                 WHERE sink = ?1 ORDER BY seq",
            )
            .expect("prepare");
        stmt.query_map(params![sink], |r| {
            Ok(super::backend::DeliveryRow {
                seq: r.get(0)?,
                call_id: r.get(1)?,
                state: r.get(2)?,
                next_at_ms: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .expect("delivery rows")
    }

    #[cfg(test)]
    fn set_schema_version(&self, version: i64) {
        lock(&self.writer)
            .pragma_update(None, "user_version", version)
            .expect("user_version");
    }
}

#[cfg(test)]
impl Embedded {
    /// The plan SQLite picks for `sql` (index use).
    pub(super) fn plan(&self, sql: &str) -> Vec<String> {
        let conn = lock(&self.reader);
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(3))
                    .and_then(|rows| rows.collect())
            })
            .expect("plan")
    }
}
