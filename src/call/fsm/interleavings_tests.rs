//! The randomized interleaving test of a connected call (issue 13 §4):
//! random requests from both phones and from supervisors' phones, answers
//! to our re-INVITEs and refreshes in any order (some late, some never),
//! time, commands, consultations, take-overs and ends, over 10,000 seeded
//! runs. After every step: every request is answered once, every leg ends
//! with a BYE or a final response (supervisors' too: BYE, CANCEL, or their
//! own final response or BYE), one press is one mode switch, the record's
//! facts alternate, nothing happens after the end but answers to late
//! requests and BYEs to late answers.

use std::time::Duration;

use super::kit::*;
use super::*;
use crate::call::seeded::Rng;
use crate::media::sdp::Direction;

/// Where a supervisor's phone stands, as the phone sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phone {
    /// hotline rings it.
    Ringing,
    /// hotline cancelled it (its 200 may still cross the CANCEL).
    Cancelled,
    /// Its dialog is up (answered, or it dialled in).
    Up,
    /// Its dialog is over (BYE either way, or a final error).
    Done,
    /// It took the call over: the caller's party now, not a supervisor.
    Member,
}

/// One random event on a supervisor's leg, as its phone could send it:
/// the event, and the phone's state after it.
fn supervisor_event(
    rng: &mut Rng,
    call: &mut Call,
    phones: &mut std::collections::BTreeMap<SupId, Phone>,
    next_sup: &mut u64,
    open_tx: &mut Vec<TxId>,
) -> (Option<(SupId, Option<char>)>, Vec<Output>) {
    const KEYS: [char; 6] = ['1', '2', '3', '4', '#', '*'];
    let modes = [
        Supervision::Listen,
        Supervision::Whisper,
        Supervision::Barge,
    ];
    let mode = modes[rng.below(3) as usize];
    if phones.is_empty() || rng.below(4) == 0 {
        *next_sup += 1;
        let sup = SupId(*next_sup);
        let user = format!("S{}", sup.0);
        if rng.below(2) == 0 {
            phones.insert(sup, Phone::Ringing);
            return (None, call.ring_supervisor(sup, &user, mode));
        }
        phones.insert(sup, Phone::Up);
        let mut out = call.dial_in(sup, &user, mode);
        if rng.below(8) == 0
            && out.iter().any(|o| {
                matches!(
                    o,
                    Output::Supervisor {
                        action: SupervisorAction::Join(_),
                        ..
                    }
                )
            })
        {
            out.extend(call.supervisor(sup, SupervisorEvent::JoinFailed));
        }
        return (None, out);
    }
    let ids: Vec<SupId> = phones.keys().copied().collect();
    let sup = ids[rng.below(ids.len() as u64) as usize];
    let key = KEYS[rng.below(KEYS.len() as u64) as usize];
    match phones[&sup] {
        Phone::Ringing | Phone::Cancelled => match rng.below(6) {
            0..=2 => {
                phones.insert(sup, Phone::Up);
                let mut out = call.supervisor_answers(sup);
                if rng.below(8) == 0
                    && out.iter().any(|o| {
                        matches!(
                            o,
                            Output::Supervisor {
                                action: SupervisorAction::Join(_),
                                ..
                            }
                        )
                    })
                {
                    out.extend(call.supervisor(sup, SupervisorEvent::JoinFailed));
                }
                (None, out)
            }
            3 => {
                phones.insert(sup, Phone::Up);
                (None, call.supervisor(sup, SupervisorEvent::Unusable))
            }
            4 => {
                phones.insert(sup, Phone::Done);
                (None, call.supervisor(sup, SupervisorEvent::NotReached))
            }
            _ => {
                phones.insert(sup, Phone::Done);
                (None, call.supervisor(sup, SupervisorEvent::Ended))
            }
        },
        Phone::Up => match rng.below(6) {
            0 | 1 => (
                Some((sup, Some(key))),
                call.supervisor(sup, SupervisorEvent::Key(key)),
            ),
            2 => {
                let key = (rng.below(2) == 0).then_some(key);
                let (tx, out) = call.supervisor_info(sup, key);
                open_tx.push(tx);
                (Some((sup, key)), out)
            }
            3 => {
                let (tx, out) = call.supervisor_reoffer(sup);
                open_tx.push(tx);
                (None, out)
            }
            _ => {
                phones.insert(sup, Phone::Done);
                (None, call.supervisor(sup, SupervisorEvent::Ended))
            }
        },
        // A key from a leg that is over, or from the party who took the
        // call over: it changes nothing.
        Phone::Done | Phone::Member => (
            Some((sup, Some(key))),
            call.supervisor(sup, SupervisorEvent::Key(key)),
        ),
    }
}

/// One seeded run: random requests from both phones, answers to our
/// re-INVITEs and refreshes in any order (some late, some never), time,
/// commands and ends. The invariants hold after every step.
fn run(seed: u64) {
    let mut rng = Rng::seeded(seed);
    let mut call = Call::with(|s| {
        s.keep_caller = seed.is_multiple_of(3);
        s.music_loaded = !seed.is_multiple_of(5);
        s.blind_transfer = !seed.is_multiple_of(7);
    });
    let dirs = [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ];
    // Requests from the phones waiting for an answer.
    let mut open_tx: Vec<TxId> = Vec::new();
    // Our requests the phones have not answered: (req, side, sdp).
    let mut open_reinvites: Vec<(ReqId, Side, Vec<u8>)> = Vec::new();
    let mut open_refreshes: Vec<(ReqId, Side)> = Vec::new();
    // Our NOTIFYs of a REFER not yet answered.
    let mut open_notifies: Vec<ReqId> = Vec::new();
    let mut next_refer = 5000;
    // The agent's phone hung up after a REFER's 202 (it gets no BYE).
    let mut b_hung_up = false;
    let mut answered_tx = std::collections::HashSet::new();
    let mut byes_seen: Vec<Side> = Vec::new();
    let mut last_fact: Option<Fact> = None;
    let mut version = 2;
    let mut phones = std::collections::BTreeMap::new();
    let mut next_sup = 0;
    // The key a supervisor pressed this step, and whether it must switch
    // their mode (one press, one switch).
    let mut press: Option<(SupId, bool)>;
    for step in 0..60 {
        let ended_before = call.fsm.end().is_some();
        press = None;
        let out = match rng.below(18) {
            0..=3 => {
                let side = if rng.below(2) == 0 { Side::A } else { Side::B };
                version += 1;
                let addr = if side == Side::A {
                    CARRIER_RTP
                } else {
                    AGENT_RTP
                };
                let sdp = if rng.below(10) == 0 {
                    String::new()
                } else {
                    phone_sdp(addr, dirs[rng.below(4) as usize], version)
                };
                let (tx, out) = call.reoffer(side, &sdp);
                open_tx.push(tx);
                out
            }
            4 if !open_reinvites.is_empty() => {
                let i = rng.below(open_reinvites.len() as u64) as usize;
                let (req, side, sdp) = open_reinvites.remove(i);
                let addr = if side == Side::A {
                    CARRIER_RTP
                } else {
                    AGENT_RTP
                };
                let result = match rng.below(4) {
                    0 => Err("timeout".to_string()),
                    1 => Ok((488, Vec::new())),
                    _ => Ok((200, phone_answer(&sdp, addr, dirs[rng.below(4) as usize]))),
                };
                call.input(Input::ReinviteDone { req, result })
            }
            5 if !open_refreshes.is_empty() => {
                let i = rng.below(open_refreshes.len() as u64) as usize;
                let (req, side) = open_refreshes.remove(i);
                let result = if rng.below(8) == 0 { Ok(481) } else { Ok(200) };
                call.input(Input::RefreshDone { side, req, result })
            }
            6 => call.advance(Duration::from_secs(rng.below(1200))),
            7 => {
                let side = if rng.below(2) == 0 { Side::A } else { Side::B };
                let (tx, out) = call.info(side);
                open_tx.push(tx);
                out
            }
            8 => call.command(Command::Hold(rng.below(2) == 0)).1,
            9 if rng.below(4) == 0 => {
                let side = if rng.below(2) == 0 { Side::A } else { Side::B };
                let out = call.input(Input::Ended { side });
                // Its hang-up itself ended the call in a transfer.
                b_hung_up |= !ended_before && matches!(call.fsm.end(), Some(End::Transfer(_)));
                out
            }
            10 if rng.below(6) == 0 => call.input(Input::Silent),
            11 if rng.below(6) == 0 => {
                let target = crate::ivr::TransferTarget::Group("general".into());
                call.command(Command::Transfer(target)).1
            }
            12 => {
                match rng.below(4) {
                    0 => call
                        .fsm
                        .begin_consult("A02", false)
                        .map(|_| ())
                        .unwrap_or(()),
                    1 => call.fsm.cancel_consult().map(|_| ()).unwrap_or(()),
                    2 => {
                        call.fsm.consulted_party_answered("A02");
                    }
                    _ => {
                        call.fsm.consult_failed("A02");
                    }
                }
                call.drain()
            }
            13 | 14 => {
                let joined = |call: &Call, sup: SupId| {
                    call.fsm.end().is_none()
                        && call.fsm.supervisors().get(&sup).map(|s| s.stage) == Some(Stage::Joined)
                };
                // Whether a key now would switch a mode is decided before it.
                let before: Vec<SupId> = phones
                    .keys()
                    .copied()
                    .filter(|s| joined(&call, *s))
                    .collect();
                let (pressed, out) = supervisor_event(
                    &mut rng,
                    &mut call,
                    &mut phones,
                    &mut next_sup,
                    &mut open_tx,
                );
                if let Some((sup, key)) = pressed {
                    let switches =
                        before.contains(&sup) && key.is_some_and(|k| ('1'..='3').contains(&k));
                    press = Some((sup, switches));
                }
                out
            }
            15 => {
                // A supervisor on the call takes it over, or the party who
                // took it hangs up.
                let joined: Vec<SupId> = phones
                    .iter()
                    .filter(|(_, p)| **p == Phone::Up)
                    .map(|(s, _)| *s)
                    .collect();
                if let (false, Some(sup)) = (rng.below(3) == 0, joined.first()) {
                    let label = format!("S{}", sup.0);
                    if let Ok(s) = call.fsm.take_over_check(&label) {
                        assert_eq!(s, *sup);
                        if call.fsm.supervisor_takes_over(s, &label).is_ok() {
                            phones.insert(s, Phone::Member);
                        }
                    }
                } else if let Some((sup, _)) = phones.iter().find(|(_, p)| **p == Phone::Member) {
                    let label = format!("S{}", sup.0);
                    let sup = *sup;
                    call.fsm.party_left(&label);
                    phones.insert(sup, Phone::Done);
                }
                call.drain()
            }
            16 if !open_notifies.is_empty() && rng.below(2) == 0 => {
                let req = open_notifies.remove(0);
                call.input(Input::ReferNotified { req })
            }
            16 => {
                // A phone's transfer key, to a target that exists or not.
                let side = if rng.below(4) == 0 { Side::A } else { Side::B };
                let target = match rng.below(4) {
                    0 => Err(ReferRefusal {
                        code: 404,
                        reason: "nobody".into(),
                    }),
                    _ => Ok(crate::ivr::TransferTarget::Group("general".into())),
                };
                next_refer += 1;
                let tx = TxId(next_refer);
                open_tx.push(tx);
                call.input(Input::Refer { side, tx, target })
            }
            _ => Vec::new(),
        };
        // `TRACE_SEED=n` prints seed n's steps (to follow a failure).
        if std::env::var("TRACE_SEED").ok() == Some(seed.to_string()) {
            eprintln!("step {step}: {out:?} end={:?}", call.fsm.end());
        }
        if ended_before {
            // After the end, only answers to late requests, and a BYE to a
            // supervisor's phone answering late.
            for o in &out {
                assert!(
                    matches!(
                        o,
                        Output::Respond { code: 481, .. }
                            | Output::Supervisor {
                                action: SupervisorAction::Bye | SupervisorAction::Cancel,
                                ..
                            }
                    ),
                    "seed {seed} step {step}: {o:?} after the end"
                );
            }
        }
        if let Some((sup, switches)) = press {
            let n = out
                .iter()
                .filter(|o| matches!(o, Output::Supervisor { sup: s, action: SupervisorAction::SetMode(_) } if *s == sup))
                .count();
            assert_eq!(
                n,
                usize::from(switches),
                "seed {seed} step {step}: one press, one switch: {out:?}"
            );
        }
        for o in out {
            match o {
                Output::Respond { code, .. } if code < 200 => {}
                Output::Respond { tx, .. } => {
                    assert!(
                        answered_tx.insert(tx),
                        "seed {seed} step {step}: {tx:?} answered twice"
                    );
                    open_tx.retain(|t| *t != tx);
                }
                Output::Reinvite { side, req, sdp } => {
                    open_reinvites.push((req, side, sdp));
                }
                Output::Refresh { side, req } => open_refreshes.push((req, side)),
                Output::NotifyRefer { side, req, .. } => {
                    assert_eq!(
                        side,
                        Side::B,
                        "seed {seed} step {step}: a NOTIFY to the caller"
                    );
                    assert!(
                        !byes_seen.contains(&Side::B),
                        "seed {seed} step {step}: a NOTIFY after the agent's BYE"
                    );
                    open_notifies.push(req);
                }
                Output::Bye { side } => {
                    assert!(
                        !byes_seen.contains(&side),
                        "seed {seed} step {step}: two BYEs on {side:?}"
                    );
                    byes_seen.push(side);
                }
                Output::Fact(f) => {
                    assert_ne!(
                        Some(f),
                        last_fact,
                        "seed {seed} step {step}: {f:?} twice in a row"
                    );
                    last_fact = Some(f);
                }
                // No consultation is driven here.
                Output::Media(_) | Output::Completed { .. } => {}
                Output::Supervisor { sup, action } => {
                    let phone = phones.get(&sup).copied();
                    let ok = match action {
                        SupervisorAction::Join(_) | SupervisorAction::SetMode(_) => {
                            phone == Some(Phone::Up)
                        }
                        SupervisorAction::Bye => phone == Some(Phone::Up),
                        SupervisorAction::Cancel => phone == Some(Phone::Ringing),
                        // Only once their phone hung up.
                        SupervisorAction::Leave => phone == Some(Phone::Done),
                    };
                    assert!(
                        ok,
                        "seed {seed} step {step}: {action:?} to {sup:?} whose phone is {phone:?}"
                    );
                    match action {
                        SupervisorAction::Bye => {
                            phones.insert(sup, Phone::Done);
                        }
                        SupervisorAction::Cancel => {
                            phones.insert(sup, Phone::Cancelled);
                        }
                        _ => {}
                    }
                }
            }
        }
        if call.fsm.end().is_some() {
            // Every supervisor's leg ended with a BYE, a CANCEL or its
            // own final response or BYE.
            for (sup, phone) in &phones {
                assert!(
                    !matches!(phone, Phone::Ringing | Phone::Up),
                    "seed {seed} step {step}: {sup:?}'s phone left {phone:?}"
                );
            }
        }
        // At most one of our re-INVITEs is out while the call lasts.
        if call.fsm.end().is_none() {
            assert!(
                open_reinvites.len() <= 1 + usize::from(ended_before),
                "seed {seed} step {step}: {} re-INVITEs out",
                open_reinvites.len()
            );
            // Only a reflected re-INVITE is left open, and then exactly
            // one phone request waits for it.
            assert!(
                open_tx.len() <= open_reinvites.len(),
                "seed {seed} step {step}: {open_tx:?} left unanswered"
            );
        }
        if call.fsm.end().is_some() && !ended_before {
            // Every request the phones sent is answered by the end.
            assert!(
                open_tx.is_empty(),
                "seed {seed} step {step}: {open_tx:?} never answered"
            );
            let end = call.fsm.end().cloned().expect("ended");
            let keeps = call.fsm.keeps_caller();
            match end {
                End::CallerHungUp => assert!(!byes_seen.contains(&Side::A)),
                End::AgentHungUp if keeps => assert!(!byes_seen.contains(&Side::A)),
                End::AgentHungUp => assert_eq!(byes_seen, [Side::A]),
                End::Transfer(_) if b_hung_up => assert!(
                    byes_seen.is_empty(),
                    "seed {seed} step {step}: {byes_seen:?}"
                ),
                End::Transfer(_) => assert_eq!(byes_seen, [Side::B]),
                _ => assert_eq!(byes_seen, [Side::A, Side::B]),
            }
            assert_eq!(call.fsm.poll_timeout(), None);
            // Answers to what was still out change nothing now.
            open_reinvites.clear();
            open_refreshes.clear();
        }
        if call.fsm.end().is_some() {
            assert!(call.drain().is_empty());
        }
    }
}

#[test]
fn random_interleavings_keep_every_invariant() {
    for seed in 0..10_000 {
        run(seed);
    }
}
