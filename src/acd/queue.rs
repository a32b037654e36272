//! Queue order (REQUIREMENTS §3, issue "Queue order"): the lane first
//! (the emergency lane — Level I, priority 200–255 — above all, then
//! agents' consultations, then ordinary callers; see
//! [`super::model::EMERGENCY_PRIORITY_MIN`]), then priority, then original
//! arrival, then entry order. Priorities rise with waiting time per the
//! group's `priority_boost`, within the ordinary band.
//! A call that leaves the queue to ring an agent and comes back (ring
//! timeout, reject) keeps its key, so it returns to its old place: the head
//! unless a more urgent call arrived meanwhile. Callbacks keep their key too.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::Duration;

use super::model::{CallId, Lane, ORDINARY_PRIORITY_MAX};
use crate::time::Time;

/// A call's place: smaller sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct QueueKey {
    lane: Lane,
    rank: Reverse<u8>,
    pub arrived: Time,
    pub seq: u64,
    pub call: CallId,
}

impl QueueKey {
    /// The place of a call with `priority` (a consultation or not) that
    /// arrived at `arrived`, `seq`-th into the engine.
    pub(crate) fn new(
        priority: u8,
        consultation: bool,
        arrived: Time,
        seq: u64,
        call: CallId,
    ) -> Self {
        QueueKey {
            lane: Lane::of(priority, consultation),
            rank: Reverse(priority),
            arrived,
            seq,
            call,
        }
    }

    pub(crate) fn priority(&self) -> u8 {
        self.rank.0
    }
}

/// A boost's priority: never above the ordinary band (waiting long does
/// not make a caller an emergency).
fn boosted(p: u8) -> u8 {
    p.min(ORDINARY_PRIORITY_MAX)
}

/// Priority after `waited` since arrival: the base, raised to every boost
/// whose threshold has passed (boosts stay within the ordinary band).
pub(crate) fn effective_priority(base: u8, waited: Duration, boosts: &[(Duration, u8)]) -> u8 {
    boosts
        .iter()
        .filter(|(after, _)| waited >= *after)
        .map(|(_, p)| boosted(*p))
        .fold(base, u8::max)
}

/// When the priority next rises, if it ever does.
pub(crate) fn next_boost(
    base: u8,
    arrived: Time,
    now: Time,
    boosts: &[(Duration, u8)],
) -> Option<Time> {
    let current = effective_priority(base, now.saturating_duration_since(arrived), boosts);
    boosts
        .iter()
        .filter(|(after, p)| boosted(*p) > current && arrived + *after > now)
        .map(|(after, _)| arrived + *after)
        .min()
}

/// The first `start + k * every` (k ≥ 1) strictly after `now`.
pub(crate) fn next_tick(start: Time, every: Duration, now: Time) -> Time {
    if every.is_zero() {
        return now;
    }
    let elapsed = now.saturating_duration_since(start).as_nanos();
    let step = every.as_nanos();
    let k = elapsed / step + 1;
    let offset = u64::try_from(step.saturating_mul(k)).unwrap_or(u64::MAX);
    start + Duration::from_nanos(offset)
}

/// One group's waiting entries: the order, and the live callers by arrival
/// (for the longest-wait figure and the max-queue check).
#[derive(Debug, Default)]
pub(crate) struct GroupQueue {
    order: BTreeSet<QueueKey>,
    live: BTreeSet<(Time, u64)>,
}

impl GroupQueue {
    pub(crate) fn insert(&mut self, key: QueueKey, live: bool) {
        if live {
            self.live.insert((key.arrived, key.seq));
        }
        self.order.insert(key);
    }

    pub(crate) fn remove(&mut self, key: &QueueKey) {
        self.live.remove(&(key.arrived, key.seq));
        self.order.remove(key);
    }

    pub(crate) fn head(&self) -> Option<&QueueKey> {
        self.order.first()
    }

    /// Callers on the line (virtual callback places not counted).
    pub(crate) fn live_len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn oldest_live_arrival(&self) -> Option<Time> {
        self.live.first().map(|(a, _)| *a)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &QueueKey> {
        self.order.iter()
    }

    /// 1-based position of `key`, counting callback places too.
    pub(crate) fn position(&self, key: &QueueKey) -> Option<usize> {
        if !self.order.contains(key) {
            return None;
        }
        Some(self.order.range(..*key).count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn t(n: u64) -> Time {
        Time::from_unix_secs(n)
    }

    #[test]
    fn priority_then_arrival_then_seq() {
        let mut q = GroupQueue::default();
        q.insert(QueueKey::new(1, false, t(5), 3, CallId(3)), true);
        q.insert(QueueKey::new(1, false, t(1), 4, CallId(4)), true);
        q.insert(QueueKey::new(9, false, t(9), 5, CallId(5)), true);
        q.insert(QueueKey::new(1, false, t(1), 2, CallId(2)), false);
        let order: Vec<u64> = q.iter().map(|k| k.call.0).collect();
        assert_eq!(order, vec![5, 2, 4, 3]);
        assert_eq!(q.live_len(), 3);
        assert_eq!(q.iter().count(), 4);
        assert_eq!(q.oldest_live_arrival(), Some(t(1)));
        assert_eq!(
            q.position(&QueueKey::new(1, false, t(5), 3, CallId(3))),
            Some(4)
        );
    }

    #[test]
    fn emergency_lane_then_consultations_then_ordinary_callers() {
        use crate::acd::model::{CONSULT_PRIORITY, EMERGENCY_PRIORITY, EMERGENCY_PRIORITY_MIN};
        let mut q = GroupQueue::default();
        // Arrival order: ordinary 199, a consultation, ordinary 0, an
        // emergency at the bottom of the band, one at the top, another
        // consultation (one carrying an emergency-looking number stays a
        // consultation; within the lane numbers still order).
        q.insert(QueueKey::new(199, false, t(1), 1, CallId(1)), true);
        q.insert(
            QueueKey::new(CONSULT_PRIORITY, true, t(2), 2, CallId(2)),
            true,
        );
        q.insert(QueueKey::new(0, false, t(3), 3, CallId(3)), true);
        q.insert(
            QueueKey::new(EMERGENCY_PRIORITY_MIN, false, t(4), 4, CallId(4)),
            true,
        );
        q.insert(
            QueueKey::new(EMERGENCY_PRIORITY, false, t(5), 5, CallId(5)),
            true,
        );
        q.insert(
            QueueKey::new(EMERGENCY_PRIORITY, true, t(6), 6, CallId(6)),
            true,
        );
        let order: Vec<u64> = q.iter().map(|k| k.call.0).collect();
        assert_eq!(order, vec![5, 4, 6, 2, 1, 3]);
    }

    #[test]
    fn boosts_stay_in_the_ordinary_band() {
        let b = [(s(30), 250), (s(60), 255)];
        assert_eq!(effective_priority(0, s(90), &b), ORDINARY_PRIORITY_MAX);
        assert_eq!(effective_priority(210, s(90), &b), 210);
        assert_eq!(next_boost(0, t(0), t(0), &b), Some(t(30)));
        assert_eq!(next_boost(0, t(0), t(30), &b), None, "199 already");
    }

    #[test]
    fn boosts() {
        let b = [(s(30), 5), (s(60), 8)];
        assert_eq!(effective_priority(1, s(0), &b), 1);
        assert_eq!(effective_priority(1, s(30), &b), 5);
        assert_eq!(effective_priority(6, s(30), &b), 6);
        assert_eq!(effective_priority(1, s(61), &b), 8);
        assert_eq!(next_boost(1, t(10), t(10), &b), Some(t(40)));
        assert_eq!(next_boost(6, t(10), t(10), &b), Some(t(70)));
        assert_eq!(next_boost(9, t(10), t(10), &b), None);
        assert_eq!(next_boost(1, t(0), t(60), &b), None);
    }

    #[test]
    fn ticks() {
        assert_eq!(next_tick(t(10), s(30), t(10)), t(40));
        assert_eq!(next_tick(t(10), s(30), t(40)), t(70));
        assert_eq!(next_tick(t(10), s(30), t(55)), t(70));
    }
}
