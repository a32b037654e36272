//! Follow-up campaigns (回访, issue 18 §3): a centre calls citizens back
//! about their tickets within 24 h of the ticket (1 h for emergencies),
//! only inside its calling window, redialling an unanswered number per
//! the campaign's policy. This is the pure core (no clock, no IO): the
//! items and their states, when an item is due, and [`plan`]: given the
//! items, whether the window is open and the time, which items go to the
//! ACD now (emergencies first, then the earliest due), which have expired
//! past their due time, and when to look again. [`Item::attempt_done`]
//! applies an attempt's outcome. The shell (`call::campaign`) releases
//! each item as a one-attempt ACD callback (progressive: the ACD rings an
//! idle agent of the group first, then dials the citizen).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// An ordinary ticket's follow-up is due this long after the ticket.
pub const ORDINARY_DUE: Duration = Duration::from_secs(24 * 3600);
/// An emergency's follow-up is due this long after the ticket.
pub const EMERGENCY_DUE: Duration = Duration::from_secs(3600);

/// How unanswered (no answer, busy, unreachable) numbers are redialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedialPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait after an unanswered attempt before the next.
    pub spacing: Duration,
}

/// Where an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting for its turn (its first attempt, or a redial).
    Waiting,
    /// Handed to the ACD: an agent is being found, rung, or is dialling.
    Dialling,
    /// The citizen answered.
    Answered,
    /// Every attempt went unanswered.
    Failed,
    /// Its due time passed before it was answered.
    Expired,
    /// The campaign was cancelled before it was answered.
    Cancelled,
}

impl ItemState {
    /// Every state, in a fixed order (for counts).
    pub const ALL: [ItemState; 6] = [
        ItemState::Waiting,
        ItemState::Dialling,
        ItemState::Answered,
        ItemState::Failed,
        ItemState::Expired,
        ItemState::Cancelled,
    ];

    /// Its name in JSON.
    pub fn key(self) -> &'static str {
        match self {
            ItemState::Waiting => "waiting",
            ItemState::Dialling => "dialling",
            ItemState::Answered => "answered",
            ItemState::Failed => "failed",
            ItemState::Expired => "expired",
            ItemState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more happens to the item.
    pub fn is_final(self) -> bool {
        !matches!(self, ItemState::Waiting | ItemState::Dialling)
    }
}

/// One number to call about one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The citizen's number.
    pub number: String,
    /// The ticket the call is about.
    pub ticket_id: String,
    /// An emergency (due within 1 h, dialled before the others).
    pub emergency: bool,
    /// Called by then, or expired.
    pub due_by: Time,
    pub state: ItemState,
    /// Attempts whose outcome is known.
    pub attempts: u32,
    /// Not dialled before this (a redial's spacing).
    pub not_before: Time,
    /// The ACD callback of the attempt under way.
    pub callback: Option<u64>,
    /// Each attempt's outcome, in order: `answered` or `unanswered`.
    pub outcomes: Vec<Outcome>,
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The ACD callback that made the attempt.
    pub callback: u64,
    pub answered: bool,
    pub at: Time,
}

impl Item {
    /// A new item for `ticket_id`, made at `now`: due at `due_by` if
    /// given, else 1 h (emergency) or 24 h after `ticket_at` (the ticket's
    /// closing or creation; `now` if not given).
    pub fn new(
        number: String,
        ticket_id: String,
        emergency: bool,
        ticket_at: Option<Time>,
        due_by: Option<Time>,
        now: Time,
    ) -> Item {
        let within = if emergency {
            EMERGENCY_DUE
        } else {
            ORDINARY_DUE
        };
        Item {
            number,
            ticket_id,
            emergency,
            due_by: due_by.unwrap_or_else(|| ticket_at.unwrap_or(now) + within),
            state: ItemState::Waiting,
            attempts: 0,
            not_before: now,
            callback: None,
            outcomes: Vec::new(),
        }
    }

    /// The ACD callback `callback` now dials this item.
    pub fn released(&mut self, callback: u64) {
        self.state = ItemState::Dialling;
        self.callback = Some(callback);
    }

    /// The attempt of `callback` ended at `now`: answered, or redialled
    /// after the policy's spacing until its attempts are used up. Returns
    /// whether it concerned this item's attempt under way.
    pub fn attempt_done(
        &mut self,
        callback: u64,
        answered: bool,
        now: Time,
        policy: RedialPolicy,
    ) -> bool {
        if self.state != ItemState::Dialling || self.callback != Some(callback) {
            return false;
        }
        self.callback = None;
        self.attempts += 1;
        self.outcomes.push(Outcome {
            callback,
            answered,
            at: now,
        });
        self.state = if answered {
            ItemState::Answered
        } else if self.attempts >= policy.attempts.max(1) {
            ItemState::Failed
        } else {
            self.not_before = now + policy.spacing;
            ItemState::Waiting
        };
        true
    }
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Items (by index) to hand to the ACD now, in dialling order.
    pub release: Vec<usize>,
    /// Waiting items (by index) whose due time has passed.
    pub expire: Vec<usize>,
    /// When something next becomes due (a redial, an expiry), if ever;
    /// the window opening is the shell's to watch.
    pub wake_at: Option<Time>,
}

/// Plan the campaign at `now`: at most `concurrency` items dialling at
/// once; nothing released while the window is closed; waiting items past
/// their due time expire (open window or not). Release order: emergencies
/// first, then the earliest due, then the order the items were added.
pub fn plan(items: &[Item], window_open: bool, now: Time, concurrency: usize) -> Plan {
    let mut out = Plan::default();
    let mut ready = Vec::new();
    let dialling = items
        .iter()
        .filter(|i| i.state == ItemState::Dialling)
        .count();
    let mut wake = |at: Time| {
        out.wake_at = Some(out.wake_at.map_or(at, |w: Time| w.min(at)));
    };
    for (n, item) in items.iter().enumerate() {
        if item.state != ItemState::Waiting {
            continue;
        }
        if item.due_by <= now {
            out.expire.push(n);
            continue;
        }
        wake(item.due_by);
        if item.not_before > now {
            wake(item.not_before);
        } else {
            ready.push(n);
        }
    }
    if window_open {
        ready.sort_by_key(|&n| (!items[n].emergency, items[n].due_by, n));
        ready.truncate(concurrency.max(1).saturating_sub(dialling));
        out.release = ready;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: u64) -> Time {
        Time::from_unix_secs(s)
    }

    fn item(ticket: &str, emergency: bool, due: u64) -> Item {
        Item::new(
            format!("1380013800{}", ticket.len()),
            ticket.into(),
            emergency,
            None,
            Some(t(due)),
            t(0),
        )
    }

    const POLICY: RedialPolicy = RedialPolicy {
        attempts: 2,
        spacing: Duration::from_secs(60),
    };

    #[test]
    fn due_times_follow_the_24_hour_and_1_hour_rules() {
        let closed = Some(t(1_000));
        let ordinary = Item::new("1".into(), "a".into(), false, closed, None, t(2_000));
        let emergency = Item::new("1".into(), "b".into(), true, closed, None, t(2_000));
        let given = Item::new("1".into(), "c".into(), true, closed, Some(t(5)), t(2_000));
        let unclosed = Item::new("1".into(), "d".into(), false, None, None, t(2_000));
        assert_eq!(ordinary.due_by, t(1_000 + 24 * 3600));
        assert_eq!(emergency.due_by, t(1_000 + 3600));
        assert_eq!(given.due_by, t(5));
        assert_eq!(unclosed.due_by, t(2_000 + 24 * 3600));
    }

    #[test]
    fn emergencies_first_then_the_earliest_due() {
        let items = [
            item("late", false, 900),
            item("early", false, 100),
            item("urgent", true, 800),
            item("tie-first", false, 500),
            item("tie-second", false, 500),
        ];
        let p = plan(&items, true, t(1), 10);
        assert_eq!(p.release, [2, 1, 3, 4, 0]);
        assert_eq!(p.wake_at, Some(t(100)));
        assert!(p.expire.is_empty());
    }

    #[test]
    fn a_closed_window_releases_nothing_but_expiry_goes_on() {
        let items = [item("a", false, 10), item("b", false, 100)];
        let p = plan(&items, false, t(10), 5);
        assert!(p.release.is_empty());
        assert_eq!(p.expire, [0]);
        assert_eq!(p.wake_at, Some(t(100)));
    }

    #[test]
    fn concurrency_counts_the_items_already_dialling() {
        let mut items = [
            item("a", false, 100),
            item("b", false, 200),
            item("c", false, 300),
        ];
        items[0].released(7);
        assert_eq!(plan(&items, true, t(1), 2).release, [1]);
        assert!(plan(&items, true, t(1), 1).release.is_empty());
    }

    #[test]
    fn an_unanswered_attempt_is_redialled_after_the_spacing_then_fails() {
        let mut items = [item("a", false, 10_000)];
        items[0].released(7);
        assert!(
            !items[0].attempt_done(8, true, t(5), POLICY),
            "not its call"
        );
        assert!(items[0].attempt_done(7, false, t(5), POLICY));
        assert_eq!(items[0].state, ItemState::Waiting);
        assert_eq!(items[0].attempts, 1);
        let p = plan(&items, true, t(6), 1);
        assert!(p.release.is_empty(), "not before the spacing");
        assert_eq!(p.wake_at, Some(t(65)));
        assert_eq!(plan(&items, true, t(65), 1).release, [0]);
        items[0].released(9);
        assert!(items[0].attempt_done(9, false, t(70), POLICY));
        assert_eq!(items[0].state, ItemState::Failed);
        assert_eq!(items[0].attempts, 2);
        assert!(
            !items[0].attempt_done(9, true, t(71), POLICY),
            "a late result"
        );
    }

    #[test]
    fn an_answered_attempt_ends_the_item() {
        let mut i = item("a", false, 10_000);
        i.released(7);
        assert!(i.attempt_done(7, true, t(5), POLICY));
        assert_eq!(i.state, ItemState::Answered);
        assert!(i.state.is_final());
        assert_eq!(i.outcomes.len(), 1);
        assert!(plan(&[i], true, t(6), 1).release.is_empty());
    }

    proptest! {
        /// Whatever the items: nothing is released with the window shut,
        /// never more than the concurrency dials, only waiting items whose
        /// spacing has passed and that are not past due are released, an
        /// emergency never waits behind an ordinary item, every waiting
        /// item past due expires, and the wake-up is in the future.
        #[test]
        fn plans_keep_their_rules(
            specs in proptest::collection::vec(
                (any::<bool>(), 0u64..200, 0u64..200, 0u8..3), 0..30),
            now in 0u64..200,
            open in any::<bool>(),
            concurrency in 1usize..6,
        ) {
            let items: Vec<Item> = specs
                .iter()
                .enumerate()
                .map(|(n, (emergency, due, not_before, state))| {
                    let mut i = item(&n.to_string(), *emergency, *due);
                    i.not_before = t(*not_before);
                    match state {
                        0 => {}
                        1 => i.released(n as u64),
                        _ => i.state = ItemState::Answered,
                    }
                    i
                })
                .collect();
            let p = plan(&items, open, t(now), concurrency);
            let dialling = items.iter().filter(|i| i.state == ItemState::Dialling).count();
            if !open {
                prop_assert!(p.release.is_empty());
            }
            prop_assert!(p.release.len() + dialling <= concurrency.max(dialling));
            for &n in &p.release {
                let i = &items[n];
                prop_assert_eq!(i.state, ItemState::Waiting);
                prop_assert!(i.not_before <= t(now) && i.due_by > t(now));
            }
            for w in p.release.windows(2) {
                prop_assert!(items[w[0]].emergency >= items[w[1]].emergency);
            }
            for (n, i) in items.iter().enumerate() {
                let past_due = i.state == ItemState::Waiting && i.due_by <= t(now);
                prop_assert_eq!(p.expire.contains(&n), past_due);
            }
            if let Some(at) = p.wake_at {
                prop_assert!(at > t(now));
            }
        }
    }
}
