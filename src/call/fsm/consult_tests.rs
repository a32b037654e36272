//! Scenarios of attended transfers in a connected call, in virtual time:
//! what the caller hears, what is refused, and the races (the target not
//! reached, the consulted party or the agent hanging up mid-transfer, the
//! caller leaving while on hold).

use super::consult::Consultation;
use super::kit::*;
use super::*;

fn consulting(call: &mut Call, target: &str) -> Vec<Output> {
    assert_eq!(call.fsm.begin_consult(target, false), Ok(()));
    call.drain()
}

#[test]
fn a_consultation_puts_the_caller_on_hold_with_music_out_of_the_mix() {
    let mut call = Call::new();
    let out = consulting(&mut call, "A02");
    assert_eq!(
        media(&out),
        [Media::MusicOnHold(true), Media::MuteCaller(true)]
    );
    assert_eq!(facts(&out), [Fact::Held]);
    assert!(call.fsm.held());
}

#[test]
fn a_second_consultation_is_refused() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    assert_eq!(
        call.fsm.begin_consult("A03", false),
        Err("a consultation is already in progress".into())
    );
    assert!(call.drain().is_empty());
}

#[test]
fn a_consultation_without_music_on_hold_is_refused() {
    let mut call = Call::with(|s| s.music_loaded = false);
    assert_eq!(
        call.fsm.consult_refusal(),
        Some("no music on hold is loaded".into())
    );
    assert!(call.fsm.begin_consult("A02", false).is_err());
    assert!(call.drain().is_empty());
}

#[test]
fn a_target_not_reached_brings_the_caller_back_at_once() {
    let mut call = Call::new();
    consulting(&mut call, "13800000000");
    assert!(call.fsm.consult_failed("13800000000"));
    let out = call.drain();
    assert_eq!(
        media(&out),
        [Media::MuteCaller(false), Media::MusicOnHold(false)]
    );
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert_eq!(call.fsm.consultation(), &Consultation::Idle);
    // And a new consultation may start.
    assert_eq!(call.fsm.begin_consult("A03", false), Ok(()));
}

#[test]
fn a_third_party_answering_is_not_the_consulted_one() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    assert!(!call.fsm.consulted_party_answered("13900000000"));
    assert!(!call.fsm.group_agent_answered("A07"));
    assert_eq!(
        call.fsm.complete_consult(),
        Err("A02 has not answered yet".into())
    );
}

#[test]
fn news_of_another_party_failing_changes_nothing() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    assert!(!call.fsm.consult_failed("A09"));
    assert!(call.drain().is_empty());
}

#[test]
fn completing_before_the_target_answers_is_refused() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    assert_eq!(
        call.fsm.complete_consult(),
        Err("A02 has not answered yet".into())
    );
    let mut group = Call::new();
    assert_eq!(group.fsm.begin_consult("general", true), Ok(()));
    assert_eq!(
        group.fsm.complete_consult(),
        Err("no agent of group general has answered yet".into())
    );
}

#[test]
fn completing_hands_the_caller_to_the_consulted_party() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    assert!(call.fsm.consulted_party_answered("A02"));
    assert_eq!(call.fsm.complete_consult(), Ok(("A02".into(), None)));
    let out = call.drain();
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert_eq!(
        call.fsm.consultation(),
        &Consultation::Completed {
            party: "A02".into()
        }
    );
    // The first agent's leg is gone: its BYE and refreshes are no news.
    assert!(call.input(Input::Ended { side: Side::B }).is_empty());
    assert_eq!(call.fsm.poll_timeout(), None);
    assert!(call.fsm.end().is_none());
}

#[test]
fn the_party_who_took_the_call_hanging_up_ends_it() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    call.fsm.consulted_party_answered("A02");
    call.fsm.complete_consult().expect("completed");
    call.drain();
    call.fsm.party_left("A02");
    assert_eq!(byes(&call.drain()), [Side::A]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn the_consulted_party_hanging_up_before_completion_brings_the_caller_back() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    call.fsm.consulted_party_answered("A02");
    call.fsm.party_left("A02");
    let out = call.drain();
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert_eq!(call.fsm.consultation(), &Consultation::Idle);
    assert!(call.fsm.end().is_none());
}

#[test]
fn cancelling_brings_the_caller_back_and_names_the_party_to_drop() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    call.fsm.consulted_party_answered("A02");
    assert_eq!(call.fsm.cancel_consult(), Ok("A02".into()));
    assert_eq!(facts(&call.drain()), [Fact::Resumed]);
    assert_eq!(
        call.fsm.cancel_consult(),
        Err("no consultation in progress".into())
    );
}

#[test]
fn a_consultation_of_the_held_caller_keeps_the_hold_after_cancel_is_resumed() {
    // The agent held the caller, then consulted: cancelling takes the
    // caller off hold (one Resumed for one Held).
    let mut call = Call::new();
    assert_eq!(call.command(Command::Hold(true)).0, Ok(()));
    consulting(&mut call, "A02");
    call.fsm.cancel_consult().expect("cancelled");
    assert_eq!(facts(&call.drain()), [Fact::Resumed]);
}

#[test]
fn a_group_consultation_is_answered_by_the_agent_the_acd_picks() {
    let mut call = Call::new();
    assert_eq!(call.fsm.begin_consult("general", true), Ok(()));
    assert!(call.fsm.group_agent_answered("A07"));
    assert_eq!(
        call.fsm.complete_consult(),
        Ok(("A07".into(), Some("general".into())))
    );
}

#[test]
fn the_acd_giving_a_group_consultation_up_brings_the_caller_back() {
    let mut call = Call::new();
    assert_eq!(call.fsm.begin_consult("general", true), Ok(()));
    call.drain();
    assert!(call.fsm.consult_failed("general"));
    assert_eq!(facts(&call.drain()), [Fact::Resumed]);
}

#[test]
fn the_agent_hanging_up_during_a_consultation_ends_the_call() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    let out = call.input(Input::Ended { side: Side::B });
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn the_caller_hanging_up_on_hold_ends_the_call_and_late_news_changes_nothing() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(byes(&out), [Side::B]);
    assert!(!call.fsm.consult_failed("A02"));
    assert!(call.drain().is_empty());
}

#[test]
fn a_take_over_completes_at_once_and_is_refused_during_a_transfer() {
    let mut call = Call::new();
    assert_eq!(call.fsm.take_over("S01"), Ok(()));
    assert_eq!(
        call.fsm.consultation(),
        &Consultation::Completed {
            party: "S01".into()
        }
    );
    let mut busy = Call::new();
    consulting(&mut busy, "A02");
    assert_eq!(
        busy.fsm.take_over("S01"),
        Err("a transfer is in progress".into())
    );
}

#[test]
fn after_a_completed_transfer_no_new_consultation_starts() {
    let mut call = Call::new();
    consulting(&mut call, "A02");
    call.fsm.consulted_party_answered("A02");
    call.fsm.complete_consult().expect("completed");
    assert!(call.fsm.consult_refusal().is_some());
}
