//! Scenario tests of a hunt through agents and trunks: the order of the
//! attempts and the caller's final status. No sockets, no sleeps.

use super::*;
use crate::call::seeded::Rng;

/// Run `hunt` with one scripted result per attempt; the attempts made and
/// how it ended.
fn run(mut hunt: Hunt, results: Vec<Attempted>) -> (Vec<usize>, Option<Hunted>) {
    let mut made = Vec::new();
    let mut results = results.into_iter();
    while let Some(at) = hunt.poll_attempt() {
        made.push(at);
        match results.next() {
            Some(r) => hunt.attempted(r),
            None => break,
        }
    }
    (made, hunt.end())
}

#[test]
fn agents_are_rung_round_after_round_until_one_answers() {
    let (made, end) = run(
        Hunt::agents(3),
        vec![Attempted::NoAnswer, Attempted::Answered],
    );
    assert_eq!(made, [0, 1]);
    assert_eq!(end, Some(Hunted::Answered(1)));
}

#[test]
fn busy_agents_and_none_unanswered_get_the_caller_486() {
    let (_, end) = run(
        Hunt::agents(2),
        vec![Attempted::Failed(vec![486]), Attempted::Failed(vec![600])],
    );
    assert_eq!(end, Some(Hunted::NotAnswered(486)));
}

#[test]
fn a_busy_agent_and_one_who_did_not_answer_get_the_caller_480() {
    let (_, end) = run(
        Hunt::agents(2),
        vec![Attempted::Failed(vec![486]), Attempted::NoAnswer],
    );
    assert_eq!(end, Some(Hunted::NotAnswered(480)));
}

#[test]
fn agents_without_a_registered_phone_are_skipped_and_make_it_480() {
    let (made, end) = run(
        Hunt::agents(2),
        vec![
            Attempted::Nobody { unregistered: 1 },
            Attempted::Failed(vec![403]),
        ],
    );
    assert_eq!(made, [0, 1]);
    assert_eq!(end, Some(Hunted::NotAnswered(480)));
}

#[test]
fn other_errors_give_the_first_status() {
    let (_, end) = run(
        Hunt::agents(2),
        vec![Attempted::Failed(vec![403]), Attempted::Failed(vec![404])],
    );
    assert_eq!(end, Some(Hunted::NotAnswered(403)));
    // A status below 400 (a broken phone) is not passed on.
    let (_, end) = run(Hunt::agents(1), vec![Attempted::Failed(vec![302])]);
    assert_eq!(end, Some(Hunted::NotAnswered(480)));
}

#[test]
fn no_agents_at_all_is_480_without_ringing() {
    let (made, end) = run(Hunt::agents(0), vec![]);
    assert_eq!(made, Vec::<usize>::new());
    assert_eq!(end, Some(Hunted::NotAnswered(480)));
}

#[test]
fn the_caller_hanging_up_ends_the_hunt() {
    let (made, end) = run(Hunt::agents(3), vec![Attempted::CallerGone]);
    assert_eq!(made, [0]);
    assert_eq!(end, Some(Hunted::CallerGone));
}

#[test]
fn a_trunk_failing_with_5xx_or_408_or_silent_fails_over_to_its_backup() {
    let (made, end) = run(
        Hunt::trunks(3),
        vec![
            Attempted::Failed(vec![503]),
            Attempted::NoProvisional,
            Attempted::Answered,
        ],
    );
    assert_eq!(made, [0, 1, 2]);
    assert_eq!(end, Some(Hunted::Answered(2)));
    let (made, _) = run(
        Hunt::trunks(2),
        vec![Attempted::Failed(vec![408]), Attempted::Answered],
    );
    assert_eq!(made, [0, 1]);
}

#[test]
fn a_number_busy_or_unanswered_is_not_tried_on_the_backup() {
    let (made, end) = run(Hunt::trunks(2), vec![Attempted::Failed(vec![486])]);
    assert_eq!(made, [0]);
    assert_eq!(end, Some(Hunted::NotAnswered(486)));
    let (made, end) = run(Hunt::trunks(2), vec![Attempted::NoAnswer]);
    assert_eq!(made, [0]);
    assert_eq!(end, Some(Hunted::NotAnswered(480)));
}

#[test]
fn every_trunk_failing_is_503() {
    let (_, end) = run(
        Hunt::trunks(2),
        vec![Attempted::Failed(vec![500]), Attempted::NoProvisional],
    );
    assert_eq!(end, Some(Hunted::NotAnswered(503)));
    let (_, end) = run(Hunt::trunks(0), vec![]);
    assert_eq!(end, Some(Hunted::NotAnswered(503)));
}

#[test]
fn one_attempt_at_a_time_and_stray_reports_are_ignored() {
    let mut h = Hunt::agents(2);
    h.attempted(Attempted::Answered);
    assert_eq!(h.end(), None);
    assert_eq!(h.poll_attempt(), Some(0));
    assert_eq!(h.poll_attempt(), None);
    h.attempted(Attempted::NoAnswer);
    assert_eq!(h.poll_attempt(), Some(1));
}

#[test]
fn ten_thousand_seeded_hunts_ring_each_attempt_once_in_order_and_end_once() {
    for seed in 1..=10_000u64 {
        let mut rng = Rng::seeded(seed);
        let n = rng.below(5) as usize;
        let mut hunt = if rng.below(2) == 0 {
            Hunt::agents(n)
        } else {
            Hunt::trunks(n)
        };
        let mut made = Vec::new();
        while let Some(at) = hunt.poll_attempt() {
            assert_eq!(at, made.len(), "seed {seed}: out of order");
            made.push(at);
            hunt.attempted(match rng.below(7) {
                0 => Attempted::Answered,
                1 => Attempted::CallerGone,
                2 => Attempted::NoAnswer,
                3 => Attempted::NoProvisional,
                4 => Attempted::Nobody { unregistered: 1 },
                _ => Attempted::Failed(vec![[486, 480, 503, 404, 408][rng.below(5) as usize]]),
            });
        }
        assert!(
            made.len() <= n,
            "seed {seed}: {} attempts of {n}",
            made.len()
        );
        let end = hunt.end();
        assert!(end.is_some(), "seed {seed}: no end");
        if let Some(Hunted::Answered(at)) = end {
            assert_eq!(at + 1, made.len(), "seed {seed}: answered an old attempt");
        }
        if let Some(Hunted::NotAnswered(code)) = end {
            assert!((400..700).contains(&code), "seed {seed}: status {code}");
        }
    }
}
