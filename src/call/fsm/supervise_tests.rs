//! Scenarios of supervision in a connected call, in virtual time: joining
//! (dialled in, rung, not reached, refused), listen / whisper / barge by
//! key or INFO, each hang-up order, the races with the call's end, and
//! supervision while the caller is on hold, during a consultation and
//! through a take-over.

use super::kit::*;
use super::*;
use crate::media::sdp::Direction;

const S1: SupId = SupId(1);
const S2: SupId = SupId(2);
const S3: SupId = SupId(3);

use Supervision::{Barge, Listen, Whisper};
use SupervisorAction::{Bye, Cancel, Join, Leave, SetMode};

/// A call with supervisor S1 (user "S01") dialled in as `mode`.
fn supervised(mode: Supervision) -> Call {
    let mut call = Call::new();
    assert_eq!(
        sup_actions(&call.dial_in(S1, "S01", mode)),
        [(S1, Join(mode))]
    );
    call
}

fn mode_of(call: &Call, sup: SupId) -> Option<Supervision> {
    call.fsm.supervisors().get(&sup).map(|s| s.mode)
}

// ---- joining ----

#[test]
fn a_supervisor_dialling_in_joins_the_mix_in_the_mode_asked_for_and_nothing_else_changes() {
    for mode in [Listen, Whisper, Barge] {
        let mut call = Call::new();
        let out = call.dial_in(S1, "S01", mode);
        assert_eq!(
            out,
            [Output::Supervisor {
                sup: S1,
                action: Join(mode)
            }]
        );
        assert_eq!(call.fsm.supervisor_named("S01"), Some(S1));
        assert!(call.fsm.end().is_none());
    }
}

#[test]
fn a_supervisor_rung_joins_only_when_their_phone_answers() {
    let mut call = Call::new();
    assert!(call.ring_supervisor(S1, "S01", Whisper).is_empty());
    assert_eq!(call.fsm.supervisors()[&S1].stage, Stage::Ringing);
    // Still ringing: not on the call for a take-over.
    assert_eq!(call.fsm.supervisor_named("S01"), None);
    assert_eq!(
        sup_actions(&call.supervisor_answers(S1)),
        [(S1, Join(Whisper))]
    );
    assert_eq!(call.fsm.supervisors()[&S1].stage, Stage::Joined);
}

#[test]
fn a_supervisor_phone_not_reached_is_forgotten_and_never_cancelled() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Listen);
    assert!(call.supervisor(S1, SupervisorEvent::NotReached).is_empty());
    assert!(call.fsm.supervisors().is_empty());
    let out = call.input(Input::Ended { side: Side::A });
    assert!(sup_actions(&out).is_empty(), "{out:#?}");
}

#[test]
fn a_supervisor_phone_hanging_up_before_answering_is_forgotten() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Listen);
    assert!(call.supervisor(S1, SupervisorEvent::Ended).is_empty());
    assert!(call.fsm.supervisors().is_empty());
}

#[test]
fn an_unusable_answer_from_a_supervisor_phone_gets_a_bye() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Listen);
    let out = call.supervisor(S1, SupervisorEvent::Unusable);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert!(byes(&out).is_empty());
    assert!(call.fsm.supervisors().is_empty());
    assert!(call.fsm.end().is_none());
}

#[test]
fn a_supervisor_the_mix_refuses_gets_a_bye_and_the_call_goes_on() {
    let mut call = supervised(Whisper);
    let out = call.supervisor(S1, SupervisorEvent::JoinFailed);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert!(call.fsm.supervisors().is_empty());
    assert!(call.fsm.end().is_none());
}

#[test]
fn two_supervisors_are_on_the_call_at_once_each_in_their_mode() {
    let mut call = supervised(Listen);
    assert_eq!(
        sup_actions(&call.dial_in(S2, "S02", Barge)),
        [(S2, Join(Barge))]
    );
    assert_eq!(mode_of(&call, S1), Some(Listen));
    assert_eq!(mode_of(&call, S2), Some(Barge));
    assert_eq!(
        sup_actions(&call.supervisor(S2, SupervisorEvent::Key('1'))),
        [(S2, SetMode(Listen))]
    );
    assert_eq!(mode_of(&call, S1), Some(Listen));
}

// ---- modes ----

#[test]
fn keys_1_2_3_switch_listen_whisper_barge() {
    let mut call = supervised(Listen);
    for (key, mode) in [('2', Whisper), ('3', Barge), ('1', Listen), ('3', Barge)] {
        let out = call.supervisor(S1, SupervisorEvent::Key(key));
        assert_eq!(
            out,
            [Output::Supervisor {
                sup: S1,
                action: SetMode(mode)
            }]
        );
        assert_eq!(mode_of(&call, S1), Some(mode));
    }
}

#[test]
fn one_press_is_one_switch_and_other_keys_change_nothing() {
    let mut call = supervised(Listen);
    for key in ['0', '4', '9', '*', '#', 'A'] {
        assert!(call.supervisor(S1, SupervisorEvent::Key(key)).is_empty());
    }
    assert_eq!(
        sup_actions(&call.supervisor(S1, SupervisorEvent::Key('2'))).len(),
        1
    );
    assert_eq!(mode_of(&call, S1), Some(Whisper));
}

#[test]
fn an_info_is_answered_200_and_its_key_switches_the_mode() {
    let mut call = supervised(Listen);
    let (tx, out) = call.supervisor_info(S1, Some('3'));
    assert_eq!(response_to(&out, tx), (200, None));
    assert_eq!(sup_actions(&out), [(S1, SetMode(Barge))]);
    let (tx, out) = call.supervisor_info(S1, None);
    assert_eq!(response_to(&out, tx), (200, None));
    assert!(sup_actions(&out).is_empty());
}

#[test]
fn a_key_before_the_supervisor_joined_changes_nothing() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Listen);
    assert!(call.supervisor(S1, SupervisorEvent::Key('3')).is_empty());
    assert_eq!(mode_of(&call, S1), Some(Listen));
}

#[test]
fn a_supervisors_reinvite_is_answered_with_the_answer_they_have_and_the_mix_goes_on() {
    let mut call = supervised(Barge);
    let (tx, out) = call.supervisor_reoffer(S1);
    assert_eq!(
        response_to(&out, tx),
        (200, Some(SUPERVISOR_ANSWER.to_vec()))
    );
    assert!(sup_actions(&out).is_empty());
    // Rung from the API: the same.
    call.ring_supervisor(S2, "S02", Listen);
    call.supervisor_answers(S2);
    let (tx, out) = call.supervisor_reoffer(S2);
    assert_eq!(response_to(&out, tx).0, 200);
}

#[test]
fn the_callers_and_agents_media_never_change_for_a_supervisor() {
    let mut call = supervised(Listen);
    let mut all = call.supervisor(S1, SupervisorEvent::Key('2'));
    all.extend(call.supervisor(S1, SupervisorEvent::Key('3')));
    all.extend(call.supervisor(S1, SupervisorEvent::Ended));
    assert!(media(&all).is_empty());
    assert!(facts(&all).is_empty());
    assert!(byes(&all).is_empty());
}

// ---- hang-ups ----

#[test]
fn a_supervisor_hanging_up_leaves_the_mix_without_a_bye_and_the_call_goes_on() {
    let mut call = supervised(Whisper);
    let out = call.supervisor(S1, SupervisorEvent::Ended);
    assert_eq!(
        out,
        [Output::Supervisor {
            sup: S1,
            action: Leave
        }]
    );
    assert!(call.fsm.end().is_none());
    // Then the call ends: nobody left to BYE.
    let out = call.input(Input::Ended { side: Side::B });
    assert!(sup_actions(&out).is_empty());
    assert_eq!(byes(&out), [Side::A]);
}

#[test]
fn the_caller_hanging_up_while_supervised_byes_the_agent_and_every_supervisor() {
    let mut call = supervised(Listen);
    call.dial_in(S2, "S02", Barge);
    call.ring_supervisor(S3, "S03", Whisper);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye), (S2, Bye), (S3, Cancel)]);
    assert!(facts(&out).is_empty());
    assert_eq!(call.fsm.end(), Some(&End::CallerHungUp));
    assert!(call.fsm.supervisors().is_empty());
}

#[test]
fn the_agent_hanging_up_while_supervised_byes_the_caller_and_the_supervisor() {
    let mut call = supervised(Whisper);
    let out = call.input(Input::Ended { side: Side::B });
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn the_agent_hanging_up_on_a_call_with_a_survey_keeps_the_caller_but_byes_the_supervisor() {
    let mut call = Call::with(|s| s.keep_caller = true);
    call.dial_in(S1, "S01", Barge);
    let out = call.input(Input::Ended { side: Side::B });
    assert!(byes(&out).is_empty());
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert!(call.fsm.keeps_caller());
}

#[test]
fn sending_the_caller_to_the_survey_byes_the_agent_and_the_supervisor() {
    let mut call = Call::with(|s| s.keep_caller = true);
    call.dial_in(S1, "S01", Listen);
    let (r, out) = call.command(Command::ToSurvey);
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert!(call.fsm.keeps_caller());
}

#[test]
fn a_release_from_the_api_byes_both_legs_and_every_supervisor() {
    let mut call = supervised(Listen);
    let (r, out) = call.command(Command::Hangup);
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::A, Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert_eq!(call.fsm.end(), Some(&End::Released));
}

#[test]
fn a_blind_transfer_byes_the_agent_and_the_supervisor_and_keeps_the_caller() {
    let mut call = supervised(Barge);
    let target = crate::ivr::TransferTarget::Group("general".into());
    let (r, out) = call.command(Command::Transfer(target));
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    assert!(call.fsm.keeps_caller());
}

#[test]
fn silence_and_shutdown_bye_the_supervisors_with_both_legs() {
    for input in [Input::Silent, Input::Shutdown] {
        let mut call = supervised(Listen);
        let out = call.input(input);
        assert_eq!(byes(&out), [Side::A, Side::B]);
        assert_eq!(sup_actions(&out), [(S1, Bye)]);
    }
}

// ---- races ----

#[test]
fn a_supervisors_answer_after_the_call_ended_gets_a_bye() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Whisper);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(sup_actions(&out), [(S1, Cancel)]);
    // Their 200 crossed our CANCEL: the dialog is up, and ends at once.
    let out = call.supervisor_answers(S1);
    assert_eq!(
        out,
        [Output::Supervisor {
            sup: S1,
            action: Bye
        }]
    );
}

#[test]
fn an_unusable_answer_after_the_call_ended_gets_a_bye_too() {
    let mut call = Call::new();
    call.ring_supervisor(S1, "S01", Barge);
    call.input(Input::Ended { side: Side::B });
    let out = call.supervisor(S1, SupervisorEvent::Unusable);
    assert_eq!(
        out,
        [Output::Supervisor {
            sup: S1,
            action: Bye
        }]
    );
}

#[test]
fn a_supervisor_dialling_in_as_the_call_ends_gets_a_bye() {
    let mut call = Call::new();
    call.input(Input::Ended { side: Side::B });
    let out = call.dial_in(S1, "S01", Listen);
    assert_eq!(
        out,
        [Output::Supervisor {
            sup: S1,
            action: Bye
        }]
    );
    assert!(call.fsm.supervisors().is_empty());
}

#[test]
fn a_supervisor_rung_as_the_call_ends_is_cancelled() {
    let mut call = Call::new();
    call.input(Input::Shutdown);
    let out = call.ring_supervisor(S1, "S01", Listen);
    assert_eq!(
        out,
        [Output::Supervisor {
            sup: S1,
            action: Cancel
        }]
    );
}

#[test]
fn a_supervisors_request_after_the_end_gets_481_and_a_key_changes_nothing() {
    let mut call = supervised(Listen);
    call.input(Input::Ended { side: Side::A });
    let (tx, out) = call.supervisor_reoffer(S1);
    assert_eq!(response_to(&out, tx).0, 481);
    let (tx, out) = call.supervisor_info(S1, Some('3'));
    assert_eq!(out.len(), 1);
    assert_eq!(response_to(&out, tx).0, 481);
    assert!(call.supervisor(S1, SupervisorEvent::Key('2')).is_empty());
}

#[test]
fn a_supervisor_hanging_up_as_the_call_ends_gets_no_second_bye() {
    let mut call = supervised(Barge);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    // Their BYE crossed ours.
    assert!(call.supervisor(S1, SupervisorEvent::Ended).is_empty());
}

#[test]
fn a_supervisor_hanging_up_while_a_reinvite_is_pending_leaves_it_pending() {
    let mut call = supervised(Listen);
    let (tx, out) = call.reoffer(Side::A, &phone_sdp(CARRIER_RTP, Direction::SendOnly, 2));
    let (req, sdp) = reinvite_on(&out, Side::B);
    assert_eq!(
        call.supervisor(S1, SupervisorEvent::Ended),
        [Output::Supervisor {
            sup: S1,
            action: Leave
        }]
    );
    let answer = phone_answer(&sdp, AGENT_RTP, Direction::RecvOnly);
    let out = call.input(Input::ReinviteDone {
        req,
        result: Ok((200, answer)),
    });
    assert_eq!(response_to(&out, tx).0, 200);
}

#[test]
fn a_supervisor_joining_while_a_reinvite_is_pending_does_not_disturb_it() {
    let mut call = Call::new();
    let (tx, out) = call.reoffer(Side::A, &phone_sdp(CARRIER_RTP, Direction::SendOnly, 2));
    let (req, _) = reinvite_on(&out, Side::B);
    let out = call.dial_in(S1, "S01", Whisper);
    assert_eq!(sup_actions(&out), [(S1, Join(Whisper))]);
    // The carrier's BYE: 487 to its re-INVITE, BYE to the agent and S1.
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
    // The agent's late answer changes nothing.
    let late = call.input(Input::ReinviteDone {
        req,
        result: Ok((200, Vec::new())),
    });
    assert!(late.is_empty());
}

// ---- hold and consultations ----

#[test]
fn supervision_goes_on_while_the_caller_is_on_hold() {
    let mut call = Call::new();
    assert_eq!(call.command(Command::Hold(true)).0, Ok(()));
    assert_eq!(
        sup_actions(&call.dial_in(S1, "S01", Listen)),
        [(S1, Join(Listen))]
    );
    assert_eq!(
        sup_actions(&call.supervisor(S1, SupervisorEvent::Key('2'))),
        [(S1, SetMode(Whisper))]
    );
    let (r, out) = call.command(Command::Hold(false));
    assert_eq!(r, Ok(()));
    assert!(sup_actions(&out).is_empty());
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert_eq!(mode_of(&call, S1), Some(Whisper));
}

#[test]
fn the_caller_hanging_up_on_hold_while_supervised_byes_the_agent_and_the_supervisor() {
    let mut call = Call::new();
    call.reoffer(Side::B, &phone_sdp(AGENT_RTP, Direction::SendOnly, 2));
    call.dial_in(S1, "S01", Barge);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
}

#[test]
fn a_supervisor_joins_and_switches_during_a_consultation_and_stays_when_it_ends() {
    let mut call = Call::new();
    assert_eq!(call.fsm.begin_consult("A02", false), Ok(()));
    call.drain();
    assert_eq!(
        sup_actions(&call.dial_in(S1, "S01", Listen)),
        [(S1, Join(Listen))]
    );
    assert_eq!(
        sup_actions(&call.supervisor(S1, SupervisorEvent::Key('3'))),
        [(S1, SetMode(Barge))]
    );
    call.fsm.consulted_party_answered("A02");
    call.fsm.party_left("A02");
    let out = call.drain();
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert!(sup_actions(&out).is_empty());
    assert_eq!(mode_of(&call, S1), Some(Barge));
}

#[test]
fn the_agent_hanging_up_during_a_consultation_byes_the_caller_and_the_supervisor() {
    let mut call = supervised(Whisper);
    call.fsm.begin_consult("A02", false).expect("consulting");
    call.drain();
    let out = call.input(Input::Ended { side: Side::B });
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
}

#[test]
fn a_supervisor_stays_after_a_completed_transfer_and_gets_a_bye_when_the_new_party_leaves() {
    let mut call = supervised(Listen);
    call.fsm.begin_consult("A02", false).expect("consulting");
    call.fsm.consulted_party_answered("A02");
    call.fsm.complete_consult().expect("completed");
    let out = call.drain();
    assert!(sup_actions(&out).is_empty());
    // The first agent's BYE is no news; the supervisor is still there.
    assert!(call.input(Input::Ended { side: Side::B }).is_empty());
    assert_eq!(call.fsm.supervisor_named("S01"), Some(S1));
    call.fsm.party_left("A02");
    let out = call.drain();
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(sup_actions(&out), [(S1, Bye)]);
}

// ---- take-over ----

#[test]
fn a_supervisor_taking_over_becomes_the_callers_party_and_is_no_longer_a_supervisor() {
    let mut call = supervised(Listen);
    let sup = call.fsm.take_over_check("S01").expect("may take over");
    assert_eq!(sup, S1);
    assert_eq!(call.fsm.supervisor_takes_over(sup, "S01"), Ok(()));
    assert_eq!(
        call.fsm.consultation(),
        &Consultation::Completed {
            party: "S01".into()
        }
    );
    assert!(call.fsm.supervisors().is_empty());
    // The caller is in the mix (as after any completed transfer).
    assert_eq!(
        media(&call.drain()),
        [Media::MuteCaller(false), Media::MusicOnHold(false)]
    );
    // Their keys no longer switch a mode: they are the caller's party.
    assert!(call.supervisor(S1, SupervisorEvent::Key('1')).is_empty());
    // The agent's BYE is no news; their hang-up ends the call.
    assert!(call.input(Input::Ended { side: Side::B }).is_empty());
    call.fsm.party_left("S01");
    let out = call.drain();
    assert_eq!(byes(&out), [Side::A]);
    assert!(sup_actions(&out).is_empty());
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn a_take_over_by_someone_not_on_the_call_or_still_ringing_is_refused() {
    let mut call = Call::new();
    assert_eq!(
        call.fsm.take_over_check("S01"),
        Err("S01 is not on the call".into())
    );
    call.ring_supervisor(S1, "S01", Listen);
    assert_eq!(
        call.fsm.take_over_check("S01"),
        Err("S01 is not on the call".into())
    );
    assert!(call.fsm.supervisor_takes_over(S1, "S01").is_err());
    assert_eq!(call.fsm.consultation(), &Consultation::Idle);
}

#[test]
fn a_take_over_during_a_consultation_is_refused() {
    let mut call = supervised(Barge);
    call.fsm.begin_consult("A02", false).expect("consulting");
    assert_eq!(
        call.fsm.take_over_check("S01"),
        Err("a transfer is in progress".into())
    );
    assert_eq!(
        call.fsm.supervisor_takes_over(S1, "S01"),
        Err("a transfer is in progress".into())
    );
    assert_eq!(call.fsm.supervisor_named("S01"), Some(S1));
}

#[test]
fn other_supervisors_stay_after_a_take_over_and_get_a_bye_when_the_new_party_leaves() {
    let mut call = supervised(Listen);
    call.dial_in(S2, "S02", Listen);
    call.fsm
        .supervisor_takes_over(S1, "S01")
        .expect("taken over");
    assert_eq!(call.fsm.supervisor_named("S02"), Some(S2));
    call.fsm.party_left("S01");
    assert_eq!(sup_actions(&call.drain()), [(S2, Bye)]);
}
