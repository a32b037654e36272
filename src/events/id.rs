//! Event ids (issue 7 §2: "at-least-once with the event id as idempotency
//! key").
//!
//! An id is `ev-<unix ms, 13 digits>-<node>-<counter, 10+ digits>`, e.g.
//! `ev-1709193600000-n1-0000000042`. It is unique as long as each running
//! hotline has its own `node` and never reuses a counter value: the shell
//! seeds the counter at start (from the outbox's highest counter, or from the
//! boot time in ms). Ids of one generator sort by time, then by creation
//! order, as plain strings (for times 1970–2286). Nothing here reads the clock:
//! the time is the event's own `at`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Something that hands out event ids. `&self`, so one generator can be
/// shared (in an `Arc`) by every call of the process.
pub trait IdSource: Send + Sync {
    /// A new, never-before-returned id for an event at `at_ms`.
    fn next_id(&self, at_ms: i64) -> String;
}

/// The standard [`IdSource`]: time, node name and an atomic counter.
#[derive(Debug)]
pub struct IdGenerator {
    node: String,
    counter: AtomicU64,
}

impl IdGenerator {
    /// A generator for `node` whose first counter value is `start`. The node
    /// name keeps only ASCII letters, digits and `_` (others are dropped, so
    /// `-` stays a separator); an empty node becomes `n`.
    pub fn new(node: &str, start: u64) -> IdGenerator {
        let mut node: String = node
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if node.is_empty() {
            node.push('n');
        }
        IdGenerator {
            node,
            counter: AtomicU64::new(start),
        }
    }

    /// The counter value the next id will carry (to persist or resume).
    pub fn next_counter(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }
}

impl IdSource for IdGenerator {
    fn next_id(&self, at_ms: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("ev-{:013}-{}-{n:010}", at_ms.max(0), self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sort_by_time_then_order() {
        let g = IdGenerator::new("node-1", 7);
        let a = g.next_id(1_709_193_600_000);
        let b = g.next_id(1_709_193_600_000);
        let c = g.next_id(1_709_193_600_001);
        assert_eq!(a, "ev-1709193600000-node1-0000000007");
        assert!(a < b && b < c);
        assert_eq!(g.next_counter(), 10);
    }

    #[test]
    fn odd_inputs_still_give_ids() {
        let g = IdGenerator::new("--", u64::MAX);
        assert_eq!(g.next_id(-5), format!("ev-0000000000000-n-{}", u64::MAX));
        // The counter wraps instead of panicking.
        assert_eq!(g.next_id(0), "ev-0000000000000-n-0000000000");
    }
}
