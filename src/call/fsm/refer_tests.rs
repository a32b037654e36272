//! A phone's transfer key in virtual time (`refer`): what hotline answers a
//! REFER, the NOTIFYs, and who gets a BYE, whichever of the phone's answer,
//! its hang-up or the caller's comes first.

use super::kit::*;
use super::*;
use crate::ivr::TransferTarget;
use crate::media::sdp::Direction;

fn group() -> TransferTarget {
    TransferTarget::Group("general".into())
}

/// `side` sends a REFER (transaction 1000 + `n`) whose target the shell
/// resolved to `target`.
fn refer(
    call: &mut Call,
    n: u64,
    side: Side,
    target: Result<TransferTarget, ReferRefusal>,
) -> (TxId, Vec<Output>) {
    let tx = TxId(1000 + n);
    (tx, call.input(Input::Refer { side, tx, target }))
}

/// The NOTIFY in `out`: (its id, code, done).
fn notify(out: &[Output]) -> Option<(ReqId, u16, bool)> {
    out.iter().find_map(|o| match o {
        Output::NotifyRefer {
            side: Side::B,
            req,
            code,
            done,
            ..
        } => Some((*req, *code, *done)),
        _ => None,
    })
}

fn warning_of(out: &[Output], tx: TxId) -> Option<String> {
    out.iter().find_map(|o| match o {
        Output::Respond { tx: t, headers, .. } if *t == tx => headers
            .iter()
            .find(|(n, _)| n == "Warning")
            .map(|(_, v)| v.clone()),
        _ => None,
    })
}

#[test]
fn the_agents_refer_is_accepted_notified_and_then_the_agent_leaves() {
    let mut call = Call::new();
    let (tx, out) = refer(&mut call, 1, Side::B, Ok(group()));
    assert_eq!(response_to(&out, tx).0, 202);
    let (req, code, done) = notify(&out).expect("a NOTIFY");
    assert_eq!(
        (code, done),
        (100, false),
        "first Trying, the subscription active"
    );
    assert!(
        byes(&out).is_empty(),
        "no BYE before the phone heard the NOTIFYs"
    );
    let out = call.input(Input::ReferNotified { req });
    let (last, code, done) = notify(&out).expect("the last NOTIFY");
    assert_eq!((code, done), (200, true), "then OK, the subscription over");
    assert!(byes(&out).is_empty() && call.fsm.end().is_none());
    let out = call.input(Input::ReferNotified { req: last });
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::Transfer(group())));
    assert!(call.fsm.keeps_caller());
}

#[test]
fn an_agent_who_hangs_up_after_the_202_still_transfers_the_caller_without_a_bye() {
    let mut call = Call::new();
    let (_, out) = refer(&mut call, 1, Side::B, Ok(group()));
    let (req, _, _) = notify(&out).expect("a NOTIFY");
    let out = call.input(Input::Ended { side: Side::B });
    assert!(byes(&out).is_empty(), "{out:?}");
    assert_eq!(call.fsm.end(), Some(&End::Transfer(group())));
    assert!(call.fsm.keeps_caller());
    // The NOTIFY's late answer changes nothing.
    assert!(call.input(Input::ReferNotified { req }).is_empty());
}

#[test]
fn a_caller_who_hangs_up_during_the_transfer_ends_the_call() {
    let mut call = Call::new();
    let (_, out) = refer(&mut call, 1, Side::B, Ok(group()));
    let (req, _, _) = notify(&out).expect("a NOTIFY");
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::CallerHungUp));
    assert!(call.input(Input::ReferNotified { req }).is_empty());
}

#[test]
fn refers_hotline_cannot_carry_out_are_refused_with_a_reason_and_change_nothing() {
    let nobody = ReferRefusal {
        code: 404,
        reason: "no agent, group or number \"9\"".into(),
    };
    let cases: [(Setup, Side, Result<TransferTarget, ReferRefusal>, u16); 3] = [
        (setup(), Side::A, Ok(group()), 403),
        (setup(), Side::B, Err(nobody), 404),
        (
            Setup {
                blind_transfer: false,
                ..setup()
            },
            Side::B,
            Ok(group()),
            403,
        ),
    ];
    for (s, side, target, code) in cases {
        let mut call = Call::with(|c| *c = s);
        let (tx, out) = refer(&mut call, 1, side, target);
        assert_eq!(response_to(&out, tx).0, code);
        let warning = warning_of(&out, tx).expect("a Warning");
        assert!(warning.starts_with("399 hotline \""), "{warning}");
        assert!(notify(&out).is_none() && byes(&out).is_empty());
        assert!(call.fsm.end().is_none());
    }
}

#[test]
fn a_second_refer_during_a_transfer_gets_491_and_one_after_the_end_481() {
    let mut call = Call::new();
    let (_, out) = refer(&mut call, 1, Side::B, Ok(group()));
    let (req, _, _) = notify(&out).expect("a NOTIFY");
    let (tx, out) = refer(&mut call, 2, Side::B, Ok(group()));
    assert_eq!(response_to(&out, tx).0, 491);
    // Another NOTIFY's answer is not this one's.
    assert!(call
        .input(Input::ReferNotified {
            req: ReqId(req.0 + 100)
        })
        .is_empty());
    let out = call.input(Input::ReferNotified { req });
    let (last, _, _) = notify(&out).expect("the last NOTIFY");
    call.input(Input::ReferNotified { req: last });
    let (tx, out) = refer(&mut call, 3, Side::B, Ok(group()));
    assert_eq!(response_to(&out, tx).0, 481);
}

/// The agent's phone holds its leg and consults `A02` from its second
/// line, who answers.
fn phone_consulting(call: &mut Call) {
    let hold = phone_sdp("127.0.0.21:40000", Direction::SendOnly, 2);
    let (tx, out) = call.reoffer(Side::B, &hold);
    assert_eq!(response_to(&out, tx).0, 200);
    assert_eq!(call.fsm.begin_consult("A02", false), Ok(()));
    assert!(call.fsm.consulted_party_answered("A02"));
    call.drain();
}

fn refer_consulted(call: &mut Call, n: u64) -> (TxId, Vec<Output>) {
    let tx = TxId(1000 + n);
    (tx, call.input(Input::ReferConsulted { side: Side::B, tx }))
}

#[test]
fn a_refer_naming_the_consultation_hands_the_caller_to_the_consulted_party_once_told() {
    let mut call = Call::new();
    phone_consulting(&mut call);
    let (tx, out) = refer_consulted(&mut call, 1);
    assert_eq!(response_to(&out, tx).0, 202);
    assert!(call.fsm.consult_referred());
    let (req, code, _) = notify(&out).expect("a NOTIFY");
    assert_eq!(code, 100);
    let out = call.input(Input::ReferNotified { req });
    let (last, code, done) = notify(&out).expect("the last NOTIFY");
    assert_eq!((code, done), (200, true));
    let out = call.input(Input::ReferNotified { req: last });
    assert!(
        out.contains(&Output::Completed {
            party: "A02".into(),
            group: None
        }),
        "{out:?}"
    );
    // The caller leaves the hold and the music: the phone's hold went with
    // its leg.
    assert_eq!(
        media(&out),
        [Media::MuteCaller(false), Media::MusicOnHold(false)]
    );
    assert!(matches!(
        call.fsm.consultation(),
        Consultation::Completed { .. }
    ));
    assert!(call.fsm.end().is_none() && !call.fsm.consult_referred());
    // The party who took the call ends it.
    call.fsm.party_left("A02");
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn a_phone_that_hangs_up_after_the_202_still_completes_the_transfer() {
    let mut call = Call::new();
    phone_consulting(&mut call);
    refer_consulted(&mut call, 1);
    let out = call.input(Input::Ended { side: Side::B });
    assert!(out.iter().any(|o| matches!(o, Output::Completed { .. })));
    assert!(byes(&out).is_empty() && call.fsm.end().is_none());
}

#[test]
fn a_refer_before_the_consulted_party_answers_or_without_a_consultation_is_refused() {
    let mut call = Call::new();
    let (tx, out) = refer_consulted(&mut call, 1);
    assert_eq!(response_to(&out, tx).0, 481);
    assert_eq!(call.fsm.begin_consult("A02", false), Ok(()));
    call.drain();
    let (tx, out) = refer_consulted(&mut call, 2);
    assert_eq!(response_to(&out, tx).0, 403);
    assert!(warning_of(&out, tx).is_some_and(|w| w.contains("not answered")));
    assert!(notify(&out).is_none() && call.fsm.end().is_none());
}

#[test]
fn a_consulted_party_gone_before_the_last_notify_fails_the_transfer_and_the_held_caller_keeps_music(
) {
    let mut call = Call::new();
    phone_consulting(&mut call);
    let (_, out) = refer_consulted(&mut call, 1);
    let (req, _, _) = notify(&out).expect("a NOTIFY");
    call.fsm.party_left("A02");
    let out = call.drain();
    // The phone still holds its leg: the caller hears music, out of the mix
    // no more.
    assert_eq!(media(&out), [Media::MuteCaller(false)]);
    let out = call.input(Input::ReferNotified { req });
    let (last, code, done) = notify(&out).expect("the last NOTIFY");
    assert_eq!((code, done), (503, true), "the transfer failed");
    let out = call.input(Input::ReferNotified { req: last });
    assert!(out.is_empty() && call.fsm.end().is_none(), "{out:?}");
    assert_eq!(call.fsm.consultation(), &Consultation::Idle);
}
