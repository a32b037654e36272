//! The per-call ordering rule of the outbox (issue 7 §2: "at-least-once …
//! and per-call ordering").
//!
//! Pure. The outbox evaluates this rule in SQL for speed; this function is
//! its specification, and the tests check the two agree.
//!
//! The rule, per sink, over its undelivered events in append order:
//! - the *head* of a call is its oldest event that is neither delivered nor
//!   a dead letter; only the head is ever handed out, and only when its
//!   backoff has expired and it is not already in flight, so a call's event
//!   `n+1` never leaves while `n` is undelivered, in backoff or in flight;
//! - a dead letter does not block its call: once event `n` is given up the
//!   call's `n+1` becomes the head (the dead letter stays listed and can be
//!   replayed; a replayed event is again the oldest undelivered one and so
//!   the head of its call, arriving after events that overtook it);
//! - events without a call id are not ordered among themselves: each is
//!   handed out, oldest first, as soon as it is due. A producer that needs
//!   order for such events (agent state changes of one agent) gives them an
//!   ordering key in the call-id slot, such as `agent:1001`.

use std::collections::HashSet;

/// Where an undelivered event stands for one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for its first attempt or for a retry at `next_at_ms`.
    Pending {
        /// Earliest time of the next attempt, unix milliseconds.
        next_at_ms: i64,
        /// Handed out and neither acknowledged nor failed yet.
        in_flight: bool,
    },
    /// Given up after too many failures or refused by the receiver.
    Dead,
}

/// One undelivered event of a sink, as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Append order (the outbox's autoincrement sequence).
    pub seq: i64,
    /// The ordering key: the call id, if any.
    pub call_id: Option<&'a str>,
    /// Delivery state.
    pub standing: Standing,
}

/// Sequence numbers that may be handed out now, oldest first, at most `max`.
/// `candidates` must be sorted by `seq`.
pub fn eligible(candidates: &[Candidate<'_>], now_ms: i64, max: usize) -> Vec<i64> {
    let mut seen_head: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for c in candidates {
        if out.len() >= max {
            break;
        }
        let Standing::Pending {
            next_at_ms,
            in_flight,
        } = c.standing
        else {
            continue; // dead letters never block
        };
        if let Some(call) = c.call_id {
            if !seen_head.insert(call) {
                continue; // an older event of this call is still undelivered
            }
        }
        if next_at_ms <= now_ms && !in_flight {
            out.push(c.seq);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq: i64, call: Option<&str>, next_at_ms: i64, in_flight: bool) -> Candidate<'_> {
        Candidate {
            seq,
            call_id: call,
            standing: Standing::Pending {
                next_at_ms,
                in_flight,
            },
        }
    }

    #[test]
    fn only_the_oldest_of_each_call() {
        let c = [
            p(1, Some("a"), 0, false),
            p(2, Some("b"), 0, false),
            p(3, Some("a"), 0, false),
            p(4, None, 0, false),
            p(5, None, 0, false),
        ];
        assert_eq!(eligible(&c, 0, 10), vec![1, 2, 4, 5]);
        assert_eq!(eligible(&c, 0, 2), vec![1, 2]);
    }

    #[test]
    fn backoff_and_in_flight_block_the_call() {
        let c = [
            p(1, Some("a"), 100, false),
            p(2, Some("a"), 0, false),
            p(3, Some("b"), 0, true),
            p(4, Some("b"), 0, false),
            p(5, None, 0, true),
            p(6, None, 0, false),
        ];
        assert_eq!(eligible(&c, 50, 10), vec![6]);
        assert_eq!(eligible(&c, 100, 10), vec![1, 6]);
    }

    #[test]
    fn dead_letters_do_not_block() {
        let c = [
            Candidate {
                seq: 1,
                call_id: Some("a"),
                standing: Standing::Dead,
            },
            p(2, Some("a"), 0, false),
            p(3, Some("a"), 0, false),
        ];
        assert_eq!(eligible(&c, 0, 10), vec![2]);
    }
}
