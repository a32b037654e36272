//! The PostgreSQL outbox backend: the `outbox_*` tables in the store's
//! database (`[store] url`, issue 15 §1; schema and migrations:
//! `store::pg::events_schema`). Two connections, each on a thread of its
//! own ([`PgLink`]): one for appends, one for the sinks and the queries,
//! so a slow delivery query never delays the append writer.
//!
//! An append is one statement (the events and their delivery rows) in one
//! transaction; once committed it is in PostgreSQL's WAL and survives
//! `kill -9` of hotline or of the server. Bodies are stored as `json`: the
//! text as appended, which the sinks deliver unchanged.
//!
//! Acknowledgements and failures commit without waiting for their WAL
//! flush (`RELAXED`): one lost in a crash of the PostgreSQL server
//! (never of hotline) means the event is delivered again, which
//! at-least-once allows; an fsync per acknowledged event would cap a sink
//! at the disk's fsync rate. Appends always wait for the flush.

use super::backend::{Backend, Decide};
use super::{first_duplicate, FailOutcome, NewEvent, OutboxError, STATE_DEAD};
use super::{DeadLetter, Pending, SinkStats, StoredCall};
use crate::store::pg::{events_schema, PgError, PgLink};

/// The first key of a sink's delivery lock (`pg_try_advisory_lock(key,
/// hashtext(sink))`): "hotl" in ASCII.
const DELIVERY_LOCK: i32 = 0x686f_746c;

/// The outbox's tables in a PostgreSQL database.
pub(super) struct Shared {
    append: PgLink,
    reader: PgLink,
    /// This node's id, written with each event it appends.
    node: String,
}

impl Shared {
    /// Connect (two connections) as `node`, migrating the events schema.
    pub(super) fn connect(url: &str, node: &str) -> Result<Self, OutboxError> {
        let append =
            PgLink::connect(url, "events-pg-append", events_schema::migrate).map_err(opening)?;
        let reader = PgLink::connect(url, "events-pg-read", |_, _| Ok(())).map_err(opening)?;
        Ok(Self {
            append,
            reader,
            node: node.to_string(),
        })
    }

    /// `PostgreSQL host:port/database as user`.
    pub(super) fn database(&self) -> String {
        format!("PostgreSQL {}", self.append.target())
    }
}

fn opening(e: PgError) -> OutboxError {
    match e {
        PgError::TooNew {
            target,
            found,
            known,
            ..
        } => OutboxError::SchemaTooNew {
            db: format!("PostgreSQL {target}"),
            found,
            supported: known,
        },
        source => OutboxError::Postgres { op: "open", source },
    }
}

fn failed(op: &'static str) -> impl Fn(PgError) -> OutboxError {
    move |source| OutboxError::Postgres { op, source }
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn attempt(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Set first in the transactions of acknowledgements and failures: their
/// commit does not wait for the WAL flush (see the module documentation).
const RELAXED: &str = "SET LOCAL synchronous_commit = off";

/// The events and their delivery rows in one statement; the ids inserted
/// (an id already stored, or repeated, is skipped: the caller then rolls
/// back). `WITH ORDINALITY … ORDER BY` keeps the slice order in `seq`.
const APPEND: &str = "
WITH ev AS (
    INSERT INTO outbox_event (id, call_id, kind, body, node)
    SELECT u.id, u.call_id, u.kind, u.body::json, $5
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         WITH ORDINALITY AS u(id, call_id, kind, body, n)
    ORDER BY u.n
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, id, call_id
), fan AS (
    INSERT INTO outbox_delivery (sink, seq, call_id)
    SELECT s.name, ev.seq, ev.call_id FROM ev CROSS JOIN outbox_sink s
)
SELECT id FROM ev";

impl Backend for Shared {
    fn append(&self, events: &[NewEvent]) -> Result<(), OutboxError> {
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let calls: Vec<Option<String>> = events.iter().map(|e| e.call_id.clone()).collect();
        let kinds: Vec<String> = events.iter().map(|e| e.kind.clone()).collect();
        let bodies: Vec<String> = events.iter().map(|e| e.body_json.clone()).collect();
        let node = self.node.clone();
        let n = events.len();
        let fresh = self
            .append
            .run(move |c| {
                let mut tx = c.transaction()?;
                let fresh: Vec<String> = tx
                    .query(APPEND, &[&ids, &calls, &kinds, &bodies, &node])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if fresh.len() == n {
                    tx.commit()?;
                } else {
                    tx.rollback()?;
                }
                Ok(fresh)
            })
            .map_err(failed("append"))?;
        if fresh.len() == n {
            return Ok(());
        }
        Err(OutboxError::DuplicateEvent {
            db: self.database(),
            id: first_duplicate(events, &fresh)
                .unwrap_or_default()
                .to_string(),
        })
    }

    fn register_sink(&self, sink: &str) -> Result<(), OutboxError> {
        let sink = sink.to_string();
        self.append
            .run(move |c| {
                c.execute(
                    "INSERT INTO outbox_sink (name) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&sink],
                )
            })
            .map_err(failed("register sink"))?;
        Ok(())
    }

    fn remove_sink(&self, sink: &str) -> Result<usize, OutboxError> {
        let sink = sink.to_string();
        self.append
            .run(move |c| {
                let mut tx = c.transaction()?;
                let n = tx.execute("DELETE FROM outbox_delivery WHERE sink = $1", &[&sink])?;
                tx.execute("DELETE FROM outbox_sink WHERE name = $1", &[&sink])?;
                tx.commit()?;
                Ok(count(n))
            })
            .map_err(failed("remove sink"))
    }

    fn due(&self, sink: &str, now_ms: i64, limit: i64) -> Result<Vec<Pending>, OutboxError> {
        let sink = sink.to_string();
        self.reader
            .run(move |c| {
                // One node delivers a sink: the one whose reader connection
                // holds the sink's advisory lock (taken here, kept for the
                // session; freed when that node's connection ends, so a
                // survivor takes over). Others get nothing to deliver.
                let mine: bool = c
                    .query_one(
                        "SELECT CASE WHEN EXISTS (
                             SELECT 1 FROM pg_locks
                             WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                               AND classid = $1::int4::oid AND objid = hashtext($2)::oid
                               AND objsubid = 2 AND granted)
                         THEN true ELSE pg_try_advisory_lock($1::int4, hashtext($2)) END",
                        &[&DELIVERY_LOCK, &sink],
                    )?
                    .try_get(0)?;
                if !mine {
                    return Ok(Vec::new());
                }
                let rows = c.query(
                    "SELECT d.seq, e.id, e.call_id, e.kind, e.body::text, d.attempts, d.replays
                     FROM outbox_delivery d JOIN outbox_event e ON e.seq = d.seq
                     WHERE d.sink = $1 AND d.state = 0 AND d.next_at_ms <= $2
                       AND (d.call_id IS NULL OR NOT EXISTS (
                            SELECT 1 FROM outbox_delivery p
                            WHERE p.sink = $1 AND p.call_id = d.call_id
                              AND p.state = 0 AND p.seq < d.seq))
                     ORDER BY d.seq
                     LIMIT $3",
                    &[&sink, &now_ms, &limit],
                )?;
                Ok(rows
                    .iter()
                    .map(|r| Pending {
                        seq: r.get(0),
                        id: r.get(1),
                        call_id: r.get(2),
                        kind: r.get(3),
                        body_json: r.get(4),
                        attempt: attempt(r.get(5)).saturating_add(1),
                        replayed: r.get::<_, i64>(6) > 0,
                    })
                    .collect())
            })
            .map_err(failed("next batch"))
    }

    fn next_retry_at(&self, sink: &str, now_ms: i64) -> Result<Option<i64>, OutboxError> {
        let sink = sink.to_string();
        self.reader
            .run(move |c| {
                c.query_one(
                    "SELECT MIN(next_at_ms) FROM outbox_delivery
                     WHERE sink = $1 AND state = 0 AND next_at_ms > $2",
                    &[&sink, &now_ms],
                )
                .map(|r| r.get(0))
            })
            .map_err(failed("next retry"))
    }

    fn ack(&self, sink: &str, ids: &[String]) -> Result<Vec<i64>, OutboxError> {
        let (sink, ids) = (sink.to_string(), ids.to_vec());
        self.reader
            .run(move |c| {
                let mut tx = c.transaction()?;
                tx.batch_execute(RELAXED)?;
                let seqs: Vec<i64> = tx
                    .query(
                        "DELETE FROM outbox_delivery
                         WHERE sink = $1 AND state = 0
                           AND seq IN (SELECT seq FROM outbox_event WHERE id = ANY($2))
                         RETURNING seq",
                        &[&sink, &ids],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if !seqs.is_empty() {
                    tx.execute(
                        "UPDATE outbox_sink SET delivered = delivered + $2 WHERE name = $1",
                        &[&sink, &(seqs.len() as i64)],
                    )?;
                    tx.commit()?;
                }
                Ok(seqs)
            })
            .map_err(failed("ack"))
    }

    fn record_failure(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        decide: Decide,
    ) -> Result<Option<(i64, FailOutcome)>, OutboxError> {
        let (sink, id, error) = (sink.to_string(), id.to_string(), error.to_string());
        self.reader
            .run(move |c| {
                let mut tx = c.transaction()?;
                tx.batch_execute(RELAXED)?;
                let row = tx.query_opt(
                    "SELECT d.seq, d.attempts FROM outbox_delivery d
                     JOIN outbox_event e ON e.seq = d.seq
                     WHERE d.sink = $1 AND e.id = $2 AND d.state = 0
                     FOR UPDATE OF d",
                    &[&sink, &id],
                )?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let seq: i64 = row.get(0);
                let attempts = attempt(row.get(1)).saturating_add(1);
                let outcome = decide(attempts);
                let attempts = i64::from(attempts);
                match outcome {
                    FailOutcome::Retry { at_ms } => tx.execute(
                        "UPDATE outbox_delivery
                         SET attempts = $3, next_at_ms = $4, last_error = $5
                         WHERE sink = $1 AND seq = $2",
                        &[&sink, &seq, &attempts, &at_ms, &error],
                    ),
                    FailOutcome::DeadLetter => tx.execute(
                        "UPDATE outbox_delivery
                         SET state = $3, attempts = $4, last_error = $5, dead_at_ms = $6
                         WHERE sink = $1 AND seq = $2",
                        &[&sink, &seq, &STATE_DEAD, &attempts, &error, &now_ms],
                    ),
                }?;
                tx.commit()?;
                Ok(Some((seq, outcome)))
            })
            .map_err(failed("fail"))
    }

    fn dead_letters(&self, sink: &str, limit: i64) -> Result<Vec<DeadLetter>, OutboxError> {
        let sink = sink.to_string();
        self.reader
            .run(move |c| {
                let rows = c.query(
                    "SELECT d.seq, e.id, e.call_id, e.kind, e.body::text, d.attempts,
                            d.last_error, d.dead_at_ms
                     FROM outbox_delivery d JOIN outbox_event e ON e.seq = d.seq
                     WHERE d.sink = $1 AND d.state = $2
                     ORDER BY d.seq LIMIT $3",
                    &[&sink, &STATE_DEAD, &limit],
                )?;
                Ok(rows
                    .iter()
                    .map(|r| DeadLetter {
                        seq: r.get(0),
                        id: r.get(1),
                        call_id: r.get(2),
                        kind: r.get(3),
                        body_json: r.get(4),
                        attempts: attempt(r.get(5)),
                        last_error: r.get(6),
                        dead_at_ms: r.get::<_, Option<i64>>(7).unwrap_or(0),
                    })
                    .collect())
            })
            .map_err(failed("dead letters"))
    }

    fn replay(&self, sink: &str, id: Option<&str>) -> Result<usize, OutboxError> {
        let (sink, id) = (sink.to_string(), id.map(str::to_string));
        self.reader
            .run(move |c| {
                c.execute(
                    "UPDATE outbox_delivery
                     SET state = 0, attempts = 0, next_at_ms = 0, dead_at_ms = NULL,
                         replays = replays + 1
                     WHERE sink = $1 AND state = $2
                       AND ($3::text IS NULL
                            OR seq = (SELECT seq FROM outbox_event WHERE id = $3))",
                    &[&sink, &STATE_DEAD, &id],
                )
                .map(count)
            })
            .map_err(failed("replay"))
    }

    fn sink_counts(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError> {
        self.reader
            .run(move |c| {
                let rows = c.query(
                    "SELECT s.name, s.delivered,
                       (SELECT count(*) FROM outbox_delivery d
                         WHERE d.sink = s.name AND d.state = 0 AND d.next_at_ms <= $1),
                       (SELECT count(*) FROM outbox_delivery d
                         WHERE d.sink = s.name AND d.state = 0 AND d.next_at_ms > $1),
                       (SELECT count(*) FROM outbox_delivery d
                         WHERE d.sink = s.name AND d.state = 2)
                     FROM outbox_sink s ORDER BY s.name COLLATE \"C\"",
                    &[&now_ms],
                )?;
                Ok(rows
                    .iter()
                    .map(|r| SinkStats {
                        sink: r.get(0),
                        delivered: unsigned(r.get(1)),
                        pending: unsigned(r.get(2)),
                        in_backoff: unsigned(r.get(3)),
                        in_flight: 0,
                        dead: unsigned(r.get(4)),
                    })
                    .collect())
            })
            .map_err(failed("stats"))
    }

    fn checkpoint(&self) -> Result<(), OutboxError> {
        Ok(())
    }

    fn unended_calls(&self, window: i64) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        self.unended_calls_of(&self.node, window)
    }

    fn unended_calls_of(
        &self,
        node: &str,
        window: i64,
    ) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        let node = node.to_string();
        self.reader
            .run(move |c| {
                let ids: Vec<String> = c
                    .query(
                        "SELECT s.call_id FROM outbox_event s
                         WHERE s.kind = 'call.started' AND s.node = $2
                           AND s.seq > (SELECT COALESCE(MAX(seq), 0) FROM outbox_event) - $1
                           AND NOT EXISTS (SELECT 1 FROM outbox_event e
                                           WHERE e.call_id = s.call_id
                                             AND e.kind = 'call.ended')
                         ORDER BY s.seq",
                        &[&window, &node],
                    )?
                    .iter()
                    .filter_map(|r| r.get::<_, Option<String>>(0))
                    .collect();
                let stmt = c.prepare(
                    "SELECT body::text FROM outbox_event WHERE call_id = $1 ORDER BY seq",
                )?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let bodies = c.query(&stmt, &[&id])?.iter().map(|r| r.get(0)).collect();
                    out.push((id, bodies));
                }
                Ok(out)
            })
            .map_err(failed("unended calls"))
    }

    fn delete_calls(&self, call_ids: &[String]) -> Result<usize, OutboxError> {
        let ids = call_ids.to_vec();
        self.append
            .run(move |c| {
                let mut tx = c.transaction()?;
                tx.execute(
                    "DELETE FROM outbox_delivery WHERE seq IN
                     (SELECT seq FROM outbox_event WHERE call_id = ANY($1))",
                    &[&ids],
                )?;
                let n = tx.execute("DELETE FROM outbox_event WHERE call_id = ANY($1)", &[&ids])?;
                tx.commit()?;
                Ok(count(n))
            })
            .map_err(failed("delete calls"))
    }

    fn delete_agent_events_before(&self, before: &str) -> Result<usize, OutboxError> {
        let before = before.to_string();
        self.append
            .run(move |c| {
                let mut tx = c.transaction()?;
                tx.execute(
                    "DELETE FROM outbox_delivery WHERE seq IN (SELECT seq FROM outbox_event
                     WHERE kind = 'agent.state' AND (body ->> 'at') COLLATE \"C\" < $1)",
                    &[&before],
                )?;
                let n = tx.execute(
                    "DELETE FROM outbox_event
                     WHERE kind = 'agent.state' AND (body ->> 'at') COLLATE \"C\" < $1",
                    &[&before],
                )?;
                tx.commit()?;
                Ok(count(n))
            })
            .map_err(failed("delete agent events"))
    }

    fn calls_started_between(
        &self,
        after: &str,
        before: &str,
        limit: i64,
    ) -> Result<Vec<StoredCall>, OutboxError> {
        let (after, before) = (after.to_string(), before.to_string());
        self.reader
            .run(move |c| {
                let rows = c.query(
                    "SELECT call_id, body ->> 'tenant', body -> 'data' ->> 'started_at',
                            body -> 'data' -> 'recording' ->> 'path',
                            body -> 'data' -> 'voicemail' ->> 'path'
                     FROM outbox_event
                     WHERE kind = 'call.ended'
                       AND (body -> 'data' ->> 'started_at') COLLATE \"C\" < $1
                       AND (body -> 'data' ->> 'started_at') COLLATE \"C\" > $3
                     ORDER BY (body -> 'data' ->> 'started_at') COLLATE \"C\" LIMIT $2",
                    &[&before, &limit, &after],
                )?;
                Ok(rows
                    .iter()
                    .map(|r| StoredCall {
                        call_id: r.get::<_, Option<String>>(0).unwrap_or_default(),
                        tenant: r.get::<_, Option<String>>(1).unwrap_or_default(),
                        started_at: r.get::<_, Option<String>>(2).unwrap_or_default(),
                        recording: r.get(3),
                        voicemail: r.get(4),
                    })
                    .collect())
            })
            .map_err(failed("calls before"))
    }

    #[cfg(test)]
    fn delivery_rows(&self, sink: &str) -> Vec<super::backend::DeliveryRow> {
        let sink = sink.to_string();
        self.reader
            .run(move |c: &mut crate::store::pg::Client| {
                Ok(c.query(
                    "SELECT seq, call_id, state, next_at_ms FROM outbox_delivery
                     WHERE sink = $1 ORDER BY seq",
                    &[&sink],
                )?
                .iter()
                .map(|r| super::backend::DeliveryRow {
                    seq: r.get(0),
                    call_id: r.get(1),
                    state: r.get(2),
                    next_at_ms: r.get(3),
                })
                .collect())
            })
            .expect("delivery rows")
    }

    #[cfg(test)]
    fn set_schema_version(&self, version: i64) {
        self.append
            .run(move |c: &mut crate::store::pg::Client| {
                c.execute(
                    &format!(
                        "INSERT INTO {} (version) VALUES ($1)",
                        events_schema::MIGRATION_TABLE
                    ),
                    &[&version],
                )
            })
            .expect("bump version");
    }
}
