//! Queries on the calls' stored events: calls a crash left without
//! `call.ended` (the restart repair), deleting calls and agent events
//! (retention), calls by start time.

use rusqlite::{params, TransactionBehavior};

use super::{lock, Outbox, OutboxError, StoredCall};

impl Outbox {
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
}
