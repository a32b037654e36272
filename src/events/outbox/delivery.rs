//! The sinks' side of the outbox: registering a sink, handing out work in
//! per-call order ([`crate::events::ordering`]), acknowledgements,
//! failures with backoff, dead letters and their replay, statistics.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{lock, DeadLetter, Outbox, OutboxError, Pending, SinkStats};
use super::{FailOutcome, RetryPolicy, STATE_DEAD};

impl Outbox {
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
