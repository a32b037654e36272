//! Scenarios of one ringing attempt in virtual time: who wins, who is
//! cancelled, what the caller is told, what the record learns, and the
//! races (a 200 crossing our CANCEL, news from a fork already cancelled),
//! then seeded random interleavings checked for the invariants.

use std::time::Duration;

use super::*;

const T0: Now = Now::UNIX_EPOCH;

const RING: Duration = Duration::from_secs(30);

fn forks(keys: &[(&'static str, Option<&str>)]) -> Forks<&'static str> {
    let mut f = Forks::new(T0, RING, None);
    for (k, d) in keys {
        f.sent(*k, d.map(str::to_string));
    }
    f.started();
    f
}

fn drain(f: &mut Forks<&'static str>) -> Vec<Output<&'static str>> {
    std::iter::from_fn(|| f.poll_output()).collect()
}

#[test]
fn the_first_answer_wins_and_the_other_forks_are_cancelled() {
    let mut f = forks(&[("a", None), ("b", None), ("c", None)]);
    f.handle_response(&"b", Response::Answered);
    assert_eq!(drain(&mut f), [Output::Cancel("a"), Output::Cancel("c")]);
    assert_eq!(f.outcome(), Some(&Outcome::Answered("b")));
}

#[test]
fn a_second_answer_after_the_first_changes_nothing() {
    // The shell's CANCEL to "a" crossed its 200: the shell hangs it up
    // (BYE), the machine keeps "b".
    let mut f = forks(&[("a", None), ("b", None)]);
    f.handle_response(&"b", Response::Answered);
    drain(&mut f);
    f.handle_response(&"a", Response::Answered);
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.outcome(), Some(&Outcome::Answered("b")));
}

#[test]
fn every_fork_failing_fails_the_attempt_with_their_codes_in_order() {
    let mut f = forks(&[("a", None), ("b", None)]);
    f.handle_response(&"b", Response::Failed(486));
    assert_eq!(f.outcome(), None);
    f.handle_response(&"a", Response::Failed(480));
    assert_eq!(f.outcome(), Some(&Outcome::Failed(vec![486, 480])));
    assert!(drain(&mut f).is_empty(), "nothing left to cancel");
}

#[test]
fn the_ring_timeout_cancels_every_fork() {
    let mut f = forks(&[("a", None), ("b", None)]);
    assert_eq!(f.poll_timeout(), Some(T0 + RING));
    f.handle_timeout(T0 + RING - Duration::from_millis(1));
    assert_eq!(f.outcome(), None);
    f.handle_timeout(T0 + RING);
    assert_eq!(drain(&mut f), [Output::Cancel("a"), Output::Cancel("b")]);
    assert_eq!(f.outcome(), Some(&Outcome::NoAnswer));
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn a_trunk_without_a_provisional_response_in_time_is_given_up_early() {
    let mut f = Forks::new(T0, RING, Some(Duration::from_secs(2)));
    f.sent("trunk", None);
    f.started();
    assert_eq!(f.poll_timeout(), Some(T0 + Duration::from_secs(2)));
    f.handle_timeout(T0 + Duration::from_secs(2));
    assert_eq!(drain(&mut f), [Output::Cancel("trunk")]);
    assert_eq!(f.outcome(), Some(&Outcome::NoProvisional));
}

#[test]
fn a_provisional_response_stops_the_early_give_up() {
    let mut f = Forks::new(T0, RING, Some(Duration::from_secs(2)));
    f.sent("trunk", None);
    f.started();
    f.handle_response(
        &"trunk",
        Response::Provisional {
            code: 100,
            early_media: false,
        },
    );
    assert!(f.responded());
    assert_eq!(f.poll_timeout(), Some(T0 + RING));
    f.handle_timeout(T0 + Duration::from_secs(5));
    assert_eq!(f.outcome(), None);
}

#[test]
fn ringing_is_told_to_the_caller_once() {
    let mut f = forks(&[("a", None), ("b", None)]);
    let ring = Response::Provisional {
        code: 180,
        early_media: false,
    };
    f.handle_response(&"a", ring);
    f.handle_response(&"b", ring);
    f.handle_response(&"a", ring);
    assert_eq!(drain(&mut f), [Output::Ringing]);
}

#[test]
fn early_media_is_told_once_and_a_later_180_is_not() {
    let mut f = forks(&[("a", None), ("b", None)]);
    f.handle_response(
        &"a",
        Response::Provisional {
            code: 183,
            early_media: true,
        },
    );
    f.handle_response(
        &"b",
        Response::Provisional {
            code: 180,
            early_media: false,
        },
    );
    f.handle_response(
        &"b",
        Response::Provisional {
            code: 183,
            early_media: true,
        },
    );
    assert_eq!(drain(&mut f), [Output::EarlyMedia]);
}

#[test]
fn a_183_without_sdp_is_not_told() {
    let mut f = forks(&[("a", None)]);
    f.handle_response(
        &"a",
        Response::Provisional {
            code: 183,
            early_media: false,
        },
    );
    assert!(drain(&mut f).is_empty());
}

#[test]
fn the_caller_going_away_cancels_every_fork() {
    let mut f = forks(&[("a", None), ("b", None)]);
    f.caller_gone();
    assert_eq!(drain(&mut f), [Output::Cancel("a"), Output::Cancel("b")]);
    assert_eq!(f.outcome(), Some(&Outcome::CallerGone));
    // A 200 that crossed the CANCEL is not an answer any more.
    f.handle_response(&"a", Response::Answered);
    assert_eq!(f.outcome(), Some(&Outcome::CallerGone));
    assert!(drain(&mut f).is_empty());
}

#[test]
fn news_from_an_unknown_fork_is_ignored() {
    let mut f = forks(&[("a", None)]);
    f.handle_response(&"zz", Response::Answered);
    f.handle_response(&"zz", Response::Failed(486));
    assert_eq!(f.outcome(), None);
    assert!(drain(&mut f).is_empty());
}

#[test]
fn an_agent_is_offered_once_however_many_contacts_ring() {
    let mut f = forks(&[
        ("a1", Some("1001")),
        ("a2", Some("1001")),
        ("b", Some("1002")),
    ]);
    assert_eq!(
        drain(&mut f),
        [
            Output::Offered("1001".into()),
            Output::Offered("1002".into())
        ]
    );
}

#[test]
fn an_offer_is_cancelled_when_the_agents_last_contact_fails() {
    let mut f = forks(&[
        ("a1", Some("1001")),
        ("a2", Some("1001")),
        ("b", Some("1002")),
    ]);
    drain(&mut f);
    f.handle_response(&"a1", Response::Failed(486));
    assert!(drain(&mut f).is_empty());
    f.handle_response(&"a2", Response::Failed(480));
    assert_eq!(drain(&mut f), [Output::OfferCancelled("1001".into())]);
    assert_eq!(f.outcome(), None, "1002 still rings");
}

#[test]
fn no_invite_sent_fails_at_once_with_500() {
    let mut f: Forks<&'static str> = Forks::new(T0, RING, None);
    f.not_sent();
    f.not_sent();
    f.started();
    assert_eq!(f.outcome(), Some(&Outcome::Failed(vec![500, 500])));
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn a_fork_that_failed_is_not_cancelled_later() {
    let mut f = forks(&[("a", None), ("b", None)]);
    f.handle_response(&"a", Response::Failed(503));
    f.handle_timeout(T0 + RING);
    assert_eq!(drain(&mut f), [Output::Cancel("b")]);
    assert_eq!(f.codes(), [503]);
}

/// Seeded random interleavings: every fork ends exactly once (answered,
/// failed, or cancelled), at most one answers, the attempt always ends by
/// the ring timeout, and nothing happens after the end.
#[test]
fn random_interleavings_keep_every_invariant() {
    for seed in 1..=3_000u64 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rand = |n: u64| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        };
        let n = 1 + rand(5) as usize;
        let keys: Vec<usize> = (0..n).collect();
        let provisional = (rand(2) == 0).then(|| Duration::from_secs(1 + rand(5)));
        let mut f = Forks::new(T0, RING, provisional);
        for k in &keys {
            f.sent(*k, Some(format!("agent{}", k % 3)));
        }
        f.started();
        let mut ended = vec![0u32; n];
        let mut answered = 0;
        let mut now = T0;
        for _ in 0..40 {
            let done_before = f.outcome().is_some();
            match rand(6) {
                0 => f.handle_response(&(rand(n as u64) as usize), Response::Answered),
                1 => {
                    let code = [408, 480, 486, 503, 603][rand(5) as usize];
                    f.handle_response(&(rand(n as u64) as usize), Response::Failed(code));
                }
                2 => f.handle_response(
                    &(rand(n as u64) as usize),
                    Response::Provisional {
                        code: 180,
                        early_media: rand(2) == 0,
                    },
                ),
                3 => {
                    now += Duration::from_secs(rand(10));
                    f.handle_timeout(now);
                }
                4 if rand(8) == 0 => f.caller_gone(),
                _ => {}
            }
            let out: Vec<_> = std::iter::from_fn(|| f.poll_output()).collect();
            if done_before {
                assert!(out.is_empty(), "seed {seed}: {out:?} after the end");
            }
            for o in out {
                if let Output::Cancel(k) = o {
                    ended[k] += 1;
                }
            }
            if let Some(Outcome::Answered(k)) = f.outcome() {
                if !done_before {
                    answered += 1;
                    ended[*k] += 1;
                }
            }
            if now >= T0 + RING {
                assert!(
                    f.outcome().is_some(),
                    "seed {seed}: still ringing at the timeout"
                );
            }
        }
        assert!(answered <= 1, "seed {seed}");
        if f.outcome().is_some() {
            // Every fork ended once: answered, cancelled or failed.
            let failed = f.codes().len();
            let other: u32 = ended.iter().sum();
            assert_eq!(
                other as usize + failed,
                n,
                "seed {seed}: {ended:?} + {failed} failed"
            );
            assert!(ended.iter().all(|e| *e <= 1), "seed {seed}: {ended:?}");
        }
    }
}
