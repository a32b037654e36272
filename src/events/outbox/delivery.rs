//! The sinks' side of the outbox: registering a sink, handing out work in
//! per-call order ([`crate::events::ordering`]), acknowledgements,
//! failures with backoff, dead letters and their replay, statistics. The
//! leases and retry policies are this process's (memory); the rows are
//! the backend's.

use super::{lock, DeadLetter, Outbox, OutboxError, Pending, SinkStats};
use super::{FailOutcome, RetryPolicy};

impl Outbox {
    /// Register a sink (idempotent) and set its retry policy for this
    /// process. Events appended from the first registration on are
    /// delivered to it; a sink registered later does not receive older
    /// events. Register every sink at start-up, before the first append.
    pub fn register_sink(&self, sink: &str, policy: RetryPolicy) -> Result<(), OutboxError> {
        self.backend.register_sink(sink)?;
        lock(&self.policies).insert(sink.to_string(), policy);
        Ok(())
    }

    /// Remove a sink and everything it has not delivered (a site that turns
    /// a sink off for good). Returns how many undelivered events it dropped.
    pub fn remove_sink(&self, sink: &str) -> Result<usize, OutboxError> {
        let dropped = self.backend.remove_sink(sink)?;
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
        let rows = self.backend.due(sink, now_ms, limit)?;
        let lease_until = now_ms.saturating_add(self.config.lease_ms);
        let mut out = Vec::new();
        for p in rows {
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
        self.backend.next_retry_at(sink, now_ms)
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
        Ok(self.ack_many(sink, &[id])? > 0)
    }

    /// [`Outbox::ack`] for several events in one transaction (a file sink
    /// after its fsync). Returns how many were acknowledged.
    pub fn ack_many(&self, sink: &str, ids: &[&str]) -> Result<usize, OutboxError> {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let seqs = self.backend.ack(sink, &ids)?;
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
        self.record_failure(
            sink,
            id,
            now_ms,
            error,
            Box::new(move |attempts| policy.after_failure(attempts, now_ms, unit, not_before_ms)),
        )
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
        let r = self.record_failure(
            sink,
            id,
            now_ms,
            error,
            Box::new(|_| FailOutcome::DeadLetter),
        )?;
        Ok(r.is_some())
    }

    fn policy(&self, sink: &str) -> Result<RetryPolicy, OutboxError> {
        lock(&self.policies)
            .get(sink)
            .copied()
            .ok_or_else(|| OutboxError::UnknownSink {
                db: self.db.clone(),
                sink: sink.to_string(),
            })
    }

    fn record_failure(
        &self,
        sink: &str,
        id: &str,
        now_ms: i64,
        error: &str,
        decide: super::backend::Decide,
    ) -> Result<Option<FailOutcome>, OutboxError> {
        let Some((seq, outcome)) = self
            .backend
            .record_failure(sink, id, now_ms, error, decide)?
        else {
            return Ok(None);
        };
        self.release(sink, seq);
        Ok(Some(outcome))
    }

    /// Up to `limit` dead letters of `sink`, oldest first.
    pub fn dead_letters(&self, sink: &str, limit: usize) -> Result<Vec<DeadLetter>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.backend.dead_letters(sink, limit)
    }

    /// Put dead letter `id` of `sink` back to pending with fresh attempts.
    /// Returns `false` when `id` was not a dead letter of `sink`.
    pub fn replay(&self, sink: &str, id: &str) -> Result<bool, OutboxError> {
        let n = self.backend.replay(sink, Some(id))?;
        if n > 0 {
            self.appended.send_modify(|g| *g = g.wrapping_add(1));
        }
        Ok(n > 0)
    }

    /// Replay every dead letter of `sink`; returns how many.
    pub fn replay_all(&self, sink: &str) -> Result<usize, OutboxError> {
        let n = self.backend.replay(sink, None)?;
        if n > 0 {
            self.appended.send_modify(|g| *g = g.wrapping_add(1));
        }
        Ok(n)
    }

    /// Counters of every sink at `now_ms`, by sink name.
    pub fn stats(&self, now_ms: i64) -> Result<Vec<SinkStats>, OutboxError> {
        let mut out = self.backend.sink_counts(now_ms)?;
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
