//! Scenarios of agent-first calls (callbacks, outbound calls) in virtual
//! time: the agent's phones, then the citizen through the trunk chain with
//! fail-over; refusals, timeouts, withdrawals, hang-ups and unusable
//! answers; then seeded random interleavings checked for the invariants.

use std::time::Duration;

use super::*;

const T0: Now = Now::UNIX_EPOCH;
const RING: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(2);

type Machine = AgentFirst<&'static str>;

fn trunks(names: &[&str]) -> Vec<TrunkTry> {
    names
        .iter()
        .map(|n| TrunkTry {
            name: n.to_string(),
            provisional_within: WAIT,
        })
        .collect()
}

/// The agent's phones `agent` rung through `trunk_names`.
fn machine(agent: &[&'static str], trunk_names: &[&str]) -> Machine {
    let mut m = AgentFirst::new(T0, RING, trunks(trunk_names));
    for k in agent {
        m.agent_sent(*k);
    }
    m.agent_started(T0);
    m
}

fn drain(m: &mut Machine) -> Vec<Output<&'static str>> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

fn at(secs: u64) -> Now {
    T0 + Duration::from_secs(secs)
}

const RINGING: Response = Response::Provisional {
    code: 180,
    early_media: false,
};

/// Ring to the agent's answer on `k` and its usable answer: the first
/// trunk is dialled.
fn agent_answers(m: &mut Machine, k: &'static str) -> Vec<Output<&'static str>> {
    m.handle_response(at(1), &k, Response::Answered);
    let mut out = drain(m);
    assert!(out.contains(&Output::AgentAnswered(k)), "{out:?}");
    m.agent_ready(at(1));
    out.extend(drain(m));
    out
}

#[test]
fn a_callback_rings_the_agent_then_the_citizen_and_connects() {
    let mut m = machine(&["desk", "mobile"], &["primary", "backup"]);
    m.handle_response(at(0), &"desk", RINGING);
    let out = agent_answers(&mut m, "desk");
    assert_eq!(
        out,
        [
            Output::Cancel("mobile"),
            Output::AgentAnswered("desk"),
            Output::DialTrunk("primary".into())
        ]
    );
    m.citizen_sent("citizen@primary");
    m.handle_response(at(2), &"citizen@primary", RINGING);
    m.handle_response(at(5), &"citizen@primary", Response::Answered);
    assert_eq!(drain(&mut m), [Output::CitizenAnswered("citizen@primary")]);
    assert!(m.connected());
    assert_eq!(m.not_reached(), None);
    assert_eq!(m.poll_timeout(), None, "no timer once connected");
}

#[test]
fn the_agent_refusing_on_every_phone_is_a_refusal_and_nobody_is_dialled() {
    let mut m = machine(&["desk", "mobile"], &["primary"]);
    m.handle_response(at(1), &"mobile", Response::Failed(603));
    assert_eq!(m.not_reached(), None, "the desk phone still rings");
    m.handle_response(at(2), &"desk", Response::Failed(486));
    assert_eq!(m.not_reached(), Some(&NotReached::Agent(486)));
    assert!(
        drain(&mut m).is_empty(),
        "no trunk dialled, nothing to hang up"
    );
}

#[test]
fn an_agent_who_does_not_answer_in_time_is_480() {
    let mut m = machine(&["desk"], &["primary"]);
    m.handle_response(at(1), &"desk", RINGING);
    assert_eq!(m.poll_timeout(), Some(at(30)));
    m.handle_timeout(at(30));
    assert_eq!(drain(&mut m), [Output::Cancel("desk")]);
    assert_eq!(m.not_reached(), Some(&NotReached::Agent(480)));
}

#[test]
fn an_agent_whose_phone_cannot_be_rung_did_not_take_the_call() {
    let mut m = machine(&[], &["primary"]);
    assert_eq!(m.not_reached(), Some(&NotReached::Agent(480)));
    assert!(drain(&mut m).is_empty());
}

#[test]
fn the_acd_withdrawing_the_reservation_stops_the_agent_s_phones() {
    let mut m = machine(&["desk", "mobile"], &["primary"]);
    m.withdraw(at(3));
    assert_eq!(
        drain(&mut m),
        [Output::Cancel("desk"), Output::Cancel("mobile")]
    );
    assert_eq!(m.not_reached(), Some(&NotReached::Withdrawn));
}

#[test]
fn an_unusable_answer_from_the_agent_is_a_failure_not_a_refusal() {
    let mut m = machine(&["desk"], &["primary"]);
    m.handle_response(at(1), &"desk", Response::Answered);
    assert_eq!(drain(&mut m), [Output::AgentAnswered("desk")]);
    m.agent_unusable();
    assert_eq!(m.not_reached(), Some(&NotReached::Agent(488)));
    assert!(
        drain(&mut m).is_empty(),
        "the shell hung that leg up itself"
    );
}

#[test]
fn a_trunk_s_5xx_fails_over_to_the_backup() {
    let mut m = machine(&["desk"], &["primary", "backup"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.handle_response(at(2), &"c1", Response::Failed(503));
    assert_eq!(drain(&mut m), [Output::DialTrunk("backup".into())]);
    m.citizen_sent("c2");
    m.handle_response(at(3), &"c2", Response::Answered);
    assert_eq!(drain(&mut m), [Output::CitizenAnswered("c2")]);
    assert!(m.connected());
}

#[test]
fn a_trunk_silent_past_its_wait_is_given_up_for_the_backup() {
    let mut m = machine(&["desk"], &["primary", "backup"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    assert_eq!(m.poll_timeout(), Some(at(1) + WAIT));
    m.handle_timeout(at(1) + WAIT);
    assert_eq!(
        drain(&mut m),
        [Output::Cancel("c1"), Output::DialTrunk("backup".into())]
    );
    // The backup's own wait runs from now.
    m.citizen_sent("c2");
    assert_eq!(m.poll_timeout(), Some(at(1) + WAIT + WAIT));
}

#[test]
fn a_trunk_that_cannot_be_dialled_through_is_passed_over() {
    let mut m = machine(&["desk"], &["primary", "backup"]);
    agent_answers(&mut m, "desk");
    m.citizen_not_sent(at(1));
    assert_eq!(drain(&mut m), [Output::DialTrunk("backup".into())]);
}

#[test]
fn a_busy_citizen_is_not_retried_on_the_backup_and_the_agent_is_released() {
    let mut m = machine(&["desk"], &["primary", "backup"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.handle_response(at(2), &"c1", Response::Failed(486));
    assert_eq!(drain(&mut m), [Output::ByeAgent]);
    assert_eq!(m.not_reached(), Some(&NotReached::Citizen(486)));
}

#[test]
fn every_trunk_failing_releases_the_agent_with_the_last_status() {
    let mut m = machine(&["desk"], &["primary", "backup"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.handle_response(at(2), &"c1", Response::Failed(503));
    drain(&mut m);
    m.citizen_sent("c2");
    m.handle_response(at(3), &"c2", Response::Failed(500));
    assert_eq!(drain(&mut m), [Output::ByeAgent]);
    assert_eq!(m.not_reached(), Some(&NotReached::Citizen(500)));
}

#[test]
fn without_a_trunk_the_answered_agent_is_released() {
    let mut m = machine(&["desk"], &[]);
    let out = agent_answers(&mut m, "desk");
    assert_eq!(out, [Output::AgentAnswered("desk"), Output::ByeAgent]);
    assert_eq!(m.not_reached(), Some(&NotReached::NoTrunk));
}

#[test]
fn the_agent_hanging_up_while_the_citizen_rings_stops_the_citizen() {
    let mut m = machine(&["desk"], &["primary"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.handle_response(at(2), &"c1", RINGING);
    m.agent_left(at(4));
    assert_eq!(
        drain(&mut m),
        [Output::Cancel("c1")],
        "no BYE for an agent who left"
    );
    assert_eq!(m.not_reached(), Some(&NotReached::Citizen(480)));
    // The citizen's 200 crossing our CANCEL changes nothing (the stack
    // hangs that leg up).
    m.handle_response(at(4), &"c1", Response::Answered);
    assert!(drain(&mut m).is_empty());
    assert!(!m.connected());
}

#[test]
fn an_unusable_answer_from_the_citizen_releases_the_agent() {
    let mut m = machine(&["desk"], &["primary"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.handle_response(at(2), &"c1", Response::Answered);
    assert_eq!(drain(&mut m), [Output::CitizenAnswered("c1")]);
    m.citizen_unusable();
    assert_eq!(drain(&mut m), [Output::ByeAgent]);
    assert_eq!(m.not_reached(), Some(&NotReached::Citizen(488)));
}

#[test]
fn shutdown_while_the_citizen_rings_cancels_it_and_releases_the_agent() {
    let mut m = machine(&["desk"], &["primary"]);
    agent_answers(&mut m, "desk");
    m.citizen_sent("c1");
    m.withdraw(at(3));
    assert_eq!(drain(&mut m), [Output::Cancel("c1"), Output::ByeAgent]);
    assert_eq!(m.not_reached(), Some(&NotReached::Citizen(480)));
}

#[test]
fn a_second_agent_phone_answering_after_the_first_is_left_to_the_stack() {
    let mut m = machine(&["desk", "mobile"], &["primary"]);
    m.handle_response(at(1), &"desk", Response::Answered);
    drain(&mut m);
    m.handle_response(at(1), &"mobile", Response::Answered);
    assert!(
        drain(&mut m).is_empty(),
        "the cancelled fork's 200 is not a second agent"
    );
    m.agent_ready(at(1));
    assert_eq!(drain(&mut m), [Output::DialTrunk("primary".into())]);
}

/// Seeded random interleavings of responses, timeouts, withdrawals and
/// the agent leaving: the machine always ends, connects at most once,
/// dials the trunks in order and each at most once, hangs the agent up
/// once at most and only after it answered (and never after it left), and
/// stays silent once over.
#[test]
fn random_interleavings_keep_the_invariants() {
    const KEYS: [&str; 5] = ["a1", "a2", "c1", "c2", "c3"];
    let mut paths = [0u32; 5]; // connected, agent, withdrawn, no trunk, citizen
    for seed in 1..=5_000u64 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let trunk_count = next(4) as usize;
        let names: Vec<String> = (0..trunk_count).map(|i| format!("t{i}")).collect();
        let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
        let agent_phones = &KEYS[..next(3) as usize];
        let mut m = machine(agent_phones, &names_ref);
        let mut now = T0;
        let mut dialled: Vec<String> = Vec::new();
        let mut citizen_keys = KEYS[2..].iter();
        let mut agent_answered = false;
        let mut agent_left = false;
        let mut byes = 0;
        let mut connects = 0;
        for step in 0..200 {
            let out = drain(&mut m);
            for o in &out {
                match o {
                    Output::AgentAnswered(_) => {
                        assert!(!agent_answered, "seed {seed}: two agent answers");
                        agent_answered = true;
                        if next(8) == 0 {
                            m.agent_unusable();
                        } else {
                            m.agent_ready(now);
                        }
                    }
                    Output::DialTrunk(t) => {
                        assert!(!dialled.contains(t), "seed {seed}: {t} dialled twice");
                        dialled.push(t.clone());
                        match citizen_keys.next() {
                            Some(k) if next(6) != 0 => m.citizen_sent(*k),
                            _ => m.citizen_not_sent(now),
                        }
                    }
                    Output::CitizenAnswered(_) => {
                        connects += 1;
                        if next(8) == 0 {
                            m.citizen_unusable();
                        }
                    }
                    Output::ByeAgent => {
                        assert!(
                            agent_answered && !agent_left,
                            "seed {seed}: BYE to no agent"
                        );
                        byes += 1;
                    }
                    Output::Cancel(_) => {}
                }
            }
            if m.connected() || m.not_reached().is_some() {
                let mut more = drain(&mut m);
                more.retain(|o| matches!(o, Output::ByeAgent));
                byes += more.len();
                break;
            }
            assert!(step < 199, "seed {seed}: never ended");
            match next(10) {
                0 => m.withdraw(now),
                1 if agent_answered => {
                    agent_left = true;
                    m.agent_left(now);
                }
                2 | 3 => {
                    if let Some(t) = m.poll_timeout() {
                        now = t;
                        m.handle_timeout(now);
                    }
                }
                _ => {
                    let k = KEYS[next(5) as usize];
                    let r = match next(5) {
                        0 => RINGING,
                        1 => Response::Answered,
                        2 => Response::Failed(486),
                        3 => Response::Failed(503),
                        _ => Response::Failed(408),
                    };
                    now += Duration::from_millis(next(1500));
                    m.handle_response(now, &k, r);
                }
            }
        }
        let expected: Vec<String> = names.iter().take(dialled.len()).cloned().collect();
        assert_eq!(dialled, expected, "seed {seed}: trunks in order");
        assert!(connects <= 1, "seed {seed}");
        assert!(byes <= 1, "seed {seed}: {byes} BYEs");
        match m.not_reached() {
            None => {
                assert!(m.connected());
                assert_eq!(byes, 0, "seed {seed}: connected and hung up");
                paths[0] += 1;
            }
            Some(NotReached::Agent(_)) => {
                assert_eq!(byes, 0);
                paths[1] += 1;
            }
            Some(NotReached::Withdrawn) => {
                assert!(!agent_answered);
                paths[2] += 1;
            }
            Some(NotReached::NoTrunk) => {
                assert!(agent_answered && dialled.is_empty());
                paths[3] += 1;
            }
            Some(NotReached::Citizen(_)) => {
                assert!(agent_answered);
                assert_eq!(
                    byes,
                    usize::from(!agent_left),
                    "seed {seed}: the agent released once"
                );
                paths[4] += 1;
            }
        }
        assert!(drain(&mut m).is_empty(), "seed {seed}: silent once over");
    }
    assert!(
        paths.iter().all(|n| *n > 0),
        "every ending reached: {paths:?}"
    );
}
