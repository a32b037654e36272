//! Queries on the calls' stored events: calls a crash left without
//! `call.ended` (the restart repair), deleting calls and agent events
//! (retention), calls by start time.

use super::{Outbox, OutboxError, StoredCall};

impl Outbox {
    /// Calls among the last `window` stored events that have a
    /// `call.started` but no `call.ended` (a crash cut them off), each with
    /// the bodies of its events in order. Run at start, before new calls.
    pub fn unended_calls(&self, window: i64) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        self.backend.unended_calls(window)
    }

    /// [`Outbox::unended_calls`] of another node sharing this outbox (one
    /// that died: a survivor closes its records, docs/ha.md §4). None on
    /// the embedded outbox.
    pub fn unended_calls_of(
        &self,
        node: &str,
        window: i64,
    ) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        self.backend.unended_calls_of(node, window)
    }

    /// Delete every stored event of `call_ids` (and their pending
    /// deliveries) in one transaction: the retention job's last step.
    /// Returns the number of events deleted.
    pub fn delete_calls(&self, call_ids: &[String]) -> Result<usize, OutboxError> {
        self.backend.delete_calls(call_ids)
    }

    /// Delete `agent.state` events older than `before` (RFC 3339 text):
    /// they have no `call.ended` for the retention job to go by.
    pub fn delete_agent_events_before(&self, before: &str) -> Result<usize, OutboxError> {
        self.backend.delete_agent_events_before(before)
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
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.backend.calls_started_between(after, before, limit)
    }
}
