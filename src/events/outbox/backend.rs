//! What one outbox backend does: the SQL of the outbox, each method one
//! transaction (or one query). Leases, retry policies and wake-ups are the
//! same for both and stay in [`super::Outbox`]; the backends are
//! [`super::sqlite`] (`events.db`) and [`super::postgres`] (the store's
//! PostgreSQL database).

use super::{DeadLetter, FailOutcome, NewEvent, OutboxError, Pending, SinkStats, StoredCall};

/// Given the failed attempts so far (this one included), what happens next.
pub(super) type Decide = Box<dyn FnOnce(u32) -> FailOutcome + Send>;

/// A delivery row as the ordering rule sees it (tests).
#[cfg(test)]
pub(super) struct DeliveryRow {
    pub seq: i64,
    pub call_id: Option<String>,
    pub state: i64,
    pub next_at_ms: i64,
}

pub(super) trait Backend: Send + Sync {
    /// Insert the events and one delivery row per registered sink for each,
    /// all or none, in slice order; a stored or repeated id is refused
    /// ([`OutboxError::DuplicateEvent`] naming it). Bodies are checked JSON.
    fn append(&self, events: &[NewEvent]) -> Result<(), OutboxError>;
    /// Register a sink (idempotent).
    fn register_sink(&self, sink: &str) -> Result<(), OutboxError>;
    /// Remove a sink and its rows; how many undelivered events it had.
    fn remove_sink(&self, sink: &str) -> Result<usize, OutboxError>;
    /// Up to `limit` of `sink`'s pending events due at `now_ms`, per call
    /// only the oldest pending one, oldest first (leases not applied).
    fn due(&self, sink: &str, now_ms: i64, limit: i64) -> Result<Vec<Pending>, OutboxError>;
    /// The earliest retry time after `now_ms` of `sink`'s pending events.
    fn next_retry_at(&self, sink: &str, now_ms: i64) -> Result<Option<i64>, OutboxError>;
    /// Delete the pending delivery rows of `ids` for `sink` and count them
    /// delivered; the seqs deleted.
    fn ack(&self, sink: &str, ids: &[String]) -> Result<Vec<i64>, OutboxError>;
    /// Record a failed attempt of pending event `id` for `sink`: a retry or
    /// a dead letter as `decide` says. The event's seq and the outcome;
    /// None when it was not pending.
    fn record_failure(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        decide: Decide,
    ) -> Result<Option<(i64, FailOutcome)>, OutboxError>;
    /// Up to `limit` dead letters of `sink`, oldest first.
    fn dead_letters(&self, sink: &str, limit: i64) -> Result<Vec<DeadLetter>, OutboxError>;
    /// Put dead letter `id` (None: every one) of `sink` back to pending;
    /// how many.
    fn replay(&self, sink: &str, id: Option<&str>) -> Result<usize, OutboxError>;
    /// Every sink's counters at `now_ms`, by name (`in_flight` left 0).
    fn sink_counts(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError>;
    /// Bound the write-ahead log, where there is one to bound.
    fn checkpoint(&self) -> Result<(), OutboxError>;
    /// See [`super::Outbox::unended_calls_of`]; none on a single-node
    /// backend.
    fn unended_calls_of(
        &self,
        _node: &str,
        _window: i64,
    ) -> Result<Vec<(String, Vec<String>)>, OutboxError> {
        Ok(Vec::new())
    }
    /// See [`super::Outbox::unended_calls`].
    fn unended_calls(&self, window: i64) -> Result<Vec<(String, Vec<String>)>, OutboxError>;
    /// See [`super::Outbox::delete_calls`].
    fn delete_calls(&self, call_ids: &[String]) -> Result<usize, OutboxError>;
    /// See [`super::Outbox::delete_agent_events_before`].
    fn delete_agent_events_before(&self, before: &str) -> Result<usize, OutboxError>;
    /// See [`super::Outbox::calls_started_between`].
    fn calls_started_between(
        &self,
        after: &str,
        before: &str,
        limit: i64,
    ) -> Result<Vec<StoredCall>, OutboxError>;
    /// Every delivery row of `sink`, by seq.
    #[cfg(test)]
    fn delivery_rows(&self, sink: &str) -> Vec<DeliveryRow>;
    /// Set the stored schema version (to test the refusal of a newer one).
    #[cfg(test)]
    fn set_schema_version(&self, version: i64);
}
