//! Scenarios of an open-ended attempt (the ACD's offers of one call, issue
//! 13 §1 "one `Forks` sub-machine"): every registration of an offered
//! agent's phone rings, the first 2xx wins and cancels every other fork of
//! every agent, an agent's last fork failing tells the ACD the offer was
//! rejected (486/600/603) or failed, the ACD's `Cancel` stops one agent,
//! an unusable answer lets the ACD offer the next agent; then seeded
//! random interleavings checked for the invariants.

use std::collections::HashMap;

use super::*;

/// Two agents, each with a phone registered twice: 1001 on "a1"/"a2",
/// 1002 on "b1"/"b2".
fn two_agents() -> Forks<&'static str> {
    let mut f = Forks::open_ended();
    f.offer("1001", vec!["a1", "a2"]);
    f.offer("1002", vec!["b1", "b2"]);
    assert_eq!(
        drain(&mut f),
        [
            Output::Offered("1001".into()),
            Output::Offered("1002".into())
        ]
    );
    f
}

fn drain(f: &mut Forks<&'static str>) -> Vec<Output<&'static str>> {
    std::iter::from_fn(|| f.poll_output()).collect()
}

#[test]
fn there_is_no_timer_the_acd_owns_the_ring_timeout() {
    let mut f = two_agents();
    assert_eq!(f.poll_timeout(), None);
    f.handle_timeout(Now::UNIX_EPOCH + Duration::from_secs(3_600));
    assert_eq!(f.outcome(), None);
    assert!(drain(&mut f).is_empty());
}

#[test]
fn the_first_answer_wins_and_every_fork_of_every_agent_is_cancelled() {
    let mut f = two_agents();
    assert_eq!(f.party(&"b2"), Some("1002"));
    f.handle_response(&"b2", Response::Answered);
    assert_eq!(
        drain(&mut f),
        [
            Output::Cancel("a1"),
            Output::Cancel("a2"),
            Output::Cancel("b1")
        ]
    );
    assert_eq!(f.outcome(), Some(&Outcome::Answered("b2")));
    assert_eq!(f.party(&"b2"), None, "no longer ringing");
}

#[test]
fn a_rejection_while_another_contact_still_rings_tells_the_acd_nothing() {
    let mut f = two_agents();
    f.handle_response(&"a1", Response::Failed(486));
    assert!(drain(&mut f).is_empty());
    assert!(f.is_ringing(&"a2"));
    assert_eq!(f.outcome(), None);
}

#[test]
fn the_last_contacts_486_is_a_rejection() {
    let mut f = two_agents();
    f.handle_response(&"a1", Response::Failed(480));
    f.handle_response(&"a2", Response::Failed(486));
    assert_eq!(
        drain(&mut f),
        [
            Output::OfferCancelled("1001".into()),
            Output::OfferRejected("1001".into())
        ]
    );
    assert_eq!(f.outcome(), None, "1002 still rings");
}

#[test]
fn the_last_contacts_603_and_600_are_rejections_too() {
    for code in [600, 603] {
        let mut f = Forks::open_ended();
        f.offer("1001", vec!["a1"]);
        drain(&mut f);
        f.handle_response(&"a1", Response::Failed(code));
        assert_eq!(
            drain(&mut f),
            [
                Output::OfferCancelled("1001".into()),
                Output::OfferRejected("1001".into())
            ],
            "{code}"
        );
    }
}

#[test]
fn the_last_contacts_408_or_500_is_a_failure() {
    for code in [408, 500] {
        let mut f = two_agents();
        f.handle_response(&"b1", Response::Failed(486));
        f.handle_response(&"b2", Response::Failed(code));
        assert_eq!(
            drain(&mut f),
            [
                Output::OfferCancelled("1002".into()),
                Output::OfferFailed("1002".into())
            ],
            "{code}"
        );
    }
}

#[test]
fn every_agent_failing_does_not_end_the_attempt_the_acd_offers_the_next() {
    let mut f = two_agents();
    for k in ["a1", "a2", "b1", "b2"] {
        f.handle_response(&k, Response::Failed(486));
    }
    drain(&mut f);
    assert_eq!(f.outcome(), None);
    f.offer("1003", vec!["c1"]);
    assert_eq!(drain(&mut f), [Output::Offered("1003".into())]);
    f.handle_response(&"c1", Response::Answered);
    assert_eq!(f.outcome(), Some(&Outcome::Answered("c1")));
}

#[test]
fn an_agent_without_a_phone_to_ring_fails_at_once() {
    let mut f: Forks<&'static str> = Forks::open_ended();
    f.offer("1001", vec![]);
    assert_eq!(drain(&mut f), [Output::OfferFailed("1001".into())]);
    assert_eq!(f.outcome(), None);
}

#[test]
fn cancelling_one_agent_leaves_the_other_ringing_and_tells_the_acd_nothing() {
    let mut f = two_agents();
    f.stop(Some("1001"));
    assert_eq!(drain(&mut f), [Output::Cancel("a1"), Output::Cancel("a2")]);
    assert!(f.is_ringing(&"b1") && f.is_ringing(&"b2"));
    // A final from a cancelled fork (its 487) is not a rejection.
    f.handle_response(&"a1", Response::Failed(487));
    assert!(drain(&mut f).is_empty());
    f.handle_response(&"b1", Response::Answered);
    assert_eq!(drain(&mut f), [Output::Cancel("b2")]);
    assert_eq!(f.outcome(), Some(&Outcome::Answered("b1")));
}

#[test]
fn a_2xx_crossing_the_cancel_of_its_agent_is_not_an_answer() {
    // The machine reports it by nothing at all: the fork was handed to the
    // shell with `Cancel` when its agent was stopped, and the shell's
    // hang-up (CANCEL; the dialog sends BYE to a 2xx that crossed it)
    // ends that leg. The machine neither answers nor tells the ACD.
    let mut f = two_agents();
    f.stop(Some("1001"));
    assert_eq!(drain(&mut f), [Output::Cancel("a1"), Output::Cancel("a2")]);
    f.handle_response(&"a2", Response::Answered);
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.outcome(), None, "1002 still rings");
    assert!(f.is_ringing(&"b1"));
}

#[test]
fn stopping_every_agent_cancels_every_fork() {
    let mut f = two_agents();
    f.handle_response(&"a1", Response::Failed(480));
    f.stop(None);
    assert_eq!(
        drain(&mut f),
        [
            Output::Cancel("a2"),
            Output::Cancel("b1"),
            Output::Cancel("b2")
        ]
    );
}

#[test]
fn an_unusable_answer_fails_the_offer_and_the_attempt_rings_on() {
    let mut f = two_agents();
    f.handle_response(&"a1", Response::Answered);
    drain(&mut f);
    f.answer_unusable();
    assert_eq!(drain(&mut f), [Output::OfferFailed("1001".into())]);
    assert_eq!(f.outcome(), None);
    f.offer("1003", vec!["c1"]);
    f.handle_response(&"c1", Response::Answered);
    assert_eq!(drain(&mut f), [Output::Offered("1003".into())]);
    assert_eq!(f.outcome(), Some(&Outcome::Answered("c1")));
    // Only once per answer.
    f.answer_unusable();
    f.answer_unusable();
    assert_eq!(drain(&mut f), [Output::OfferFailed("1003".into())]);
}

#[test]
fn an_offer_after_the_answer_is_cancelled_at_once() {
    let mut f = two_agents();
    f.handle_response(&"a1", Response::Answered);
    drain(&mut f);
    f.offer("1003", vec!["c1"]);
    assert_eq!(drain(&mut f), [Output::Cancel("c1")]);
}

#[test]
fn a_timed_attempt_ignores_the_open_ended_calls() {
    let mut f = Forks::new(Now::UNIX_EPOCH, Duration::from_secs(30), None);
    f.sent("a", Some("1001".to_string()));
    f.started();
    drain(&mut f);
    f.handle_response(&"a", Response::Answered);
    f.answer_unusable();
    assert_eq!(f.outcome(), Some(&Outcome::Answered("a")));
    assert!(drain(&mut f).is_empty());
}

/// Seeded random interleavings of offers, answers, failures, the ACD's
/// cancels and unusable answers: at most one answer stands, every fork
/// ends exactly once (cancelled, failed or answered), an agent is told to
/// the ACD exactly once per offer whose forks all failed (rejected for
/// 486/600/603 on the last, else failed) and never otherwise.
#[test]
fn random_offer_interleavings_keep_every_invariant() {
    const AGENTS: [&str; 3] = ["1001", "1002", "1003"];
    // How often each path was taken: rejected, failed, answered, unusable.
    let mut seen = [0u32; 4];
    for seed in 1..=3_000u64 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rand = |n: u64| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        };
        let mut f: Forks<usize> = Forks::open_ended();
        let mut next_key = 0usize;
        // The shadow: each fork's agent, and how it ended (0: ringing).
        let mut agent_of: Vec<&str> = Vec::new();
        let mut ended = Vec::<u32>::new();
        // Per agent, the current offer: its forks and its failures.
        let mut offer: HashMap<&str, (Vec<usize>, Vec<u16>)> = HashMap::new();
        let mut told: HashMap<String, u32> = HashMap::new();
        let mut standing = 0u32;
        for _ in 0..60 {
            let mut expect_told: Option<(&str, bool)> = None;
            let answered_before = f.outcome().is_some();
            match rand(7) {
                0 => {
                    let agent = AGENTS[rand(3) as usize];
                    // The ACD offers an agent none of whose phones rings.
                    if offer
                        .get(agent)
                        .is_some_and(|(ks, _)| ks.iter().any(|k| f.is_ringing(k)))
                    {
                        continue;
                    }
                    let n = rand(3) as usize;
                    let keys: Vec<usize> = (next_key..next_key + n).collect();
                    next_key += n;
                    agent_of.extend(std::iter::repeat_n(agent, n));
                    ended.extend(std::iter::repeat_n(0, n));
                    if n == 0 && !answered_before {
                        expect_told = Some((agent, false));
                    }
                    offer.insert(agent, (keys.clone(), Vec::new()));
                    told.insert(agent.to_string(), 0);
                    f.offer(agent, keys);
                }
                1 | 2 if next_key > 0 => {
                    let k = rand(next_key as u64) as usize;
                    let code = [408, 480, 486, 487, 500, 600, 603][rand(7) as usize];
                    if f.is_ringing(&k) {
                        ended[k] += 1;
                        let agent = agent_of[k];
                        if let Some((ks, codes)) = offer.get_mut(agent) {
                            if ks.contains(&k) {
                                codes.push(code);
                                if codes.len() == ks.len() {
                                    expect_told = Some((agent, matches!(code, 486 | 600 | 603)));
                                }
                            }
                        }
                    }
                    f.handle_response(&k, Response::Failed(code));
                }
                3 if next_key > 0 => {
                    let k = rand(next_key as u64) as usize;
                    if f.is_ringing(&k) && !answered_before {
                        ended[k] += 1;
                        standing += 1;
                        seen[2] += 1;
                    }
                    f.handle_response(&k, Response::Answered);
                }
                4 => {
                    let agent = (rand(4) != 0).then(|| AGENTS[rand(3) as usize]);
                    f.stop(agent);
                }
                5 if answered_before => {
                    if let Some(Outcome::Answered(k)) = f.outcome() {
                        expect_told = Some((agent_of[*k], false));
                    }
                    standing -= 1;
                    seen[3] += 1;
                    f.answer_unusable();
                }
                _ => {}
            }
            assert!(standing <= 1, "seed {seed}: two answers stand");
            let mut got_told = None;
            for o in std::iter::from_fn(|| f.poll_output()) {
                match o {
                    Output::Cancel(k) => ended[k] += 1,
                    Output::OfferRejected(ref a) | Output::OfferFailed(ref a) => {
                        let rejected = matches!(o, Output::OfferRejected(_));
                        assert!(got_told.is_none(), "seed {seed}: told twice at once");
                        *told.entry(a.clone()).or_default() += 1;
                        got_told = Some((a.clone(), rejected));
                        seen[usize::from(!rejected)] += 1;
                    }
                    Output::Ringing | Output::EarlyMedia => {
                        panic!("seed {seed}: the caller is told nothing here")
                    }
                    Output::Offered(_) | Output::OfferCancelled(_) => {}
                }
            }
            assert_eq!(
                got_told,
                expect_told.map(|(a, r)| (a.to_string(), r)),
                "seed {seed}"
            );
            assert!(
                told.values().all(|n| *n <= 1),
                "seed {seed}: an offer told twice: {told:?}"
            );
            assert!(ended.iter().all(|e| *e <= 1), "seed {seed}: {ended:?}");
            if f.outcome().is_some() {
                assert!(
                    (0..next_key).all(|k| !f.is_ringing(&k)),
                    "seed {seed}: ringing after the answer"
                );
            }
        }
        // A fork that never ended still rings, and one that ended does not.
        for (k, e) in ended.iter().enumerate() {
            assert_eq!(*e == 0, f.is_ringing(&k), "seed {seed}: fork {k}");
        }
        // Every offer whose forks all failed was told, exactly once.
        for (agent, (ks, codes)) in &offer {
            if !ks.is_empty() && codes.len() == ks.len() {
                assert_eq!(told.get(*agent), Some(&1), "seed {seed}: {agent}");
            }
        }
    }
    assert!(seen.iter().all(|n| *n > 100), "paths taken: {seen:?}");
}
