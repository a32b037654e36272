//! Scenario tests of a call's conversations and blind transfers: answers,
//! transfers to agents, groups and numbers, and the way back when the
//! target is not reached, through [`Conversations`] with scripted results,
//! reading back exactly what the shell would do. No sockets, no sleeps.

use std::collections::HashMap;

use super::*;
use crate::call::seeded::Rng;

/// Phones registered, and their job numbers.
struct Phones {
    registered: Vec<&'static str>,
    ids: HashMap<&'static str, &'static str>,
}

impl Roster for Phones {
    fn registered(&self, device: &str) -> bool {
        self.registered.contains(&device)
    }

    fn agent_id_of(&self, device: &str) -> String {
        self.ids.get(device).copied().unwrap_or(device).to_string()
    }
}

/// 1001 (A01) and 1002 (A02) registered; 1003 (A03) is not.
fn phones() -> Arc<Phones> {
    Arc::new(Phones {
        registered: vec!["1001", "1002"],
        ids: HashMap::from([("1001", "A01"), ("1002", "A02"), ("1003", "A03")]),
    })
}

fn agent(id: &str, device: &str) -> Party {
    Party {
        agent: Some(id.into()),
        device: Some(device.into()),
    }
}

struct Talks(Conversations);

impl Talks {
    /// A01 on 1001 answered a queued caller, whose leg is answered.
    fn with_a01() -> (Self, Vec<Output>) {
        Talks::start(agent("A01", "1001"), true, Some("trunk-a"))
    }

    fn start(party: Party, answered: bool, trunk: Option<&str>) -> (Self, Vec<Output>) {
        let mut t = Talks(Conversations::start(
            phones(),
            trunk.map(str::to_string),
            party,
            "group g1".into(),
            answered,
        ));
        let out = t.outputs();
        (t, out)
    }

    /// A flow connects the caller to `dest`: the ports are asked for.
    fn dial(dest: Dest, answered: bool, trunk: Option<&str>) -> (Self, Vec<Output>) {
        let mut t = Talks(Conversations::dial(
            phones(),
            trunk.map(str::to_string),
            dest,
            answered,
        ));
        let out = t.outputs();
        (t, out)
    }

    /// A01 talking, who transfers to `target`: the ports are made.
    fn transferring(target: TransferTarget) -> (Self, Vec<Output>) {
        let (mut t, out) = Talks::with_a01();
        assert_eq!(out, [Output::Talk]);
        let out = t.transfer(target);
        (t, out)
    }

    /// The party talking transfers the caller to `target`; the ports are
    /// made.
    fn transfer(&mut self, target: TransferTarget) -> Vec<Output> {
        let out = self.input(Input::Talked {
            transfer: Some(target),
            caller_continues: true,
        });
        assert_eq!(out, [Output::FreshPorts]);
        self.input(Input::Ports(true))
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.0.poll_output()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.0.handle_input(input);
        self.outputs()
    }

    fn rang(&mut self, rang: Rang) -> Vec<Output> {
        self.input(Input::Rang(rang))
    }

    fn answer(&mut self, answer: Answer) -> Vec<Output> {
        self.input(Input::Answer(answer))
    }

    /// After a transfer whose target cannot be rung (`out`): A01, idle,
    /// is asked about at once and the call never queued; the record's fact.
    fn unreachable(&mut self, out: Vec<Output>) -> Output {
        assert_eq!(
            out,
            [
                Output::MusicOn,
                Output::Ask(Question::AgentState("A01".into()))
            ]
        );
        self.answer(Answer::AgentState(Some(AgentState::Idle)));
        let out = self.answer(Answer::QueuePlace(None));
        assert_eq!(out.last(), Some(&Output::Ring(Ring::Back("1001".into()))));
        out[0].clone()
    }

    fn end(&self) -> Option<End> {
        self.0.end().cloned()
    }
}

fn talked_over(caller_continues: bool) -> Input {
    Input::Talked {
        transfer: None,
        caller_continues,
    }
}

/// The flow's queue g1 at priority 5, waiting a minute at most.
fn queue_g1() -> Dest {
    Dest::Queue {
        group: "g1".into(),
        priority: 5,
        max_wait: Some(std::time::Duration::from_secs(60)),
    }
}

/// A flow's caller, answered, whose queue g1 rings (someone is signed in).
fn dialing_g1() -> Talks {
    let (mut t, out) = Talks::dial(queue_g1(), true, None);
    assert_eq!(out, [Output::FreshPorts]);
    assert_eq!(
        t.input(Input::Ports(true)),
        [Output::Ask(Question::Staffed("g1".into()))]
    );
    assert_eq!(
        t.answer(Answer::Staffed(Some(true))),
        [Output::Ring(Ring::Queue {
            group: "g1".into(),
            priority: 5,
            max_wait: Some(std::time::Duration::from_secs(60))
        })]
    );
    t
}

/// 110 through the tenant's trunk.
fn number_110() -> TransferTarget {
    TransferTarget::Number {
        number: "110".into(),
        trunk: None,
    }
}

fn busy() -> Rang {
    Rang::Failed(Outcome::NotAnswered(486))
}

fn failed(
    kind: TransferKind,
    name: &str,
    reason: TransferFailureReason,
    sip_code: Option<u16>,
    back_to: TransferReturn,
    back_to_id: Option<&str>,
) -> Output {
    Output::TransferFailed(FailedTransfer {
        transferor: Some("A01".into()),
        kind,
        name: name.into(),
        reason,
        sip_code,
        back_to,
        back_to_id: back_to_id.map(str::to_string),
    })
}

#[test]
fn an_answered_caller_talks_at_once_and_the_talk_ends_the_conversations() {
    let (mut t, out) = Talks::with_a01();
    assert_eq!(out, [Output::Talk]);
    assert_eq!(t.end(), None);
    assert_eq!(t.input(talked_over(false)), []);
    assert_eq!(
        t.end(),
        Some(End::Talked {
            who: "A01".into(),
            caller_continues: false
        })
    );
}

#[test]
fn a_caller_not_yet_answered_is_answered_before_the_talk() {
    let (mut t, out) = Talks::start(agent("A01", "1001"), false, None);
    assert_eq!(out, [Output::AnswerCaller]);
    assert_eq!(t.input(Input::Answered(true)), [Output::Talk]);
}

#[test]
fn a_caller_who_left_as_the_agent_answered_drops_the_answer() {
    let (mut t, _) = Talks::start(agent("A01", "1001"), false, None);
    assert_eq!(t.input(Input::Answered(false)), [Output::DropAnswer]);
    assert_eq!(t.end(), Some(End::CallerGone));
}

#[test]
fn a_party_without_an_agent_keeps_the_callers_name_for_it() {
    let (mut t, _) = Talks::start(Party::default(), true, None);
    t.input(talked_over(true));
    assert_eq!(
        t.end(),
        Some(End::Talked {
            who: "group g1".into(),
            caller_continues: true
        })
    );
}

#[test]
fn a_transfer_after_the_caller_left_ends_the_call() {
    let (mut t, _) = Talks::with_a01();
    let out = t.input(Input::Talked {
        transfer: Some(TransferTarget::Agent("1002".into())),
        caller_continues: false,
    });
    assert_eq!(out, []);
    assert_eq!(t.end(), Some(End::CallerGone));
}

#[test]
fn no_ports_for_the_transfer_is_an_overflow() {
    let (mut t, _) = Talks::with_a01();
    t.input(Input::Talked {
        transfer: Some(TransferTarget::Agent("1002".into())),
        caller_continues: true,
    });
    assert_eq!(t.input(Input::Ports(false)), []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Overflow)));
}

#[test]
fn a_transfer_to_a_registered_agent_rings_them_with_music_and_they_talk() {
    let (mut t, out) = Talks::transferring(TransferTarget::Agent("1002".into()));
    assert_eq!(
        out,
        [Output::MusicOn, Output::Ring(Ring::Agent("1002".into()))]
    );
    let out = t.rang(Rang::Answered(agent("1002", "1002")));
    assert_eq!(out, [Output::MusicOff, Output::Talk]);
    t.input(talked_over(false));
    assert_eq!(
        t.end(),
        Some(End::Talked {
            who: "1002".into(),
            caller_continues: false
        })
    );
}

#[test]
fn a_busy_target_sends_the_caller_back_to_the_idle_transferring_agent() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    assert_eq!(
        t.rang(busy()),
        [Output::Ask(Question::AgentState("A01".into()))]
    );
    assert_eq!(
        t.answer(Answer::AgentState(Some(AgentState::AfterCallWork))),
        [Output::Ask(Question::QueuePlace)]
    );
    assert_eq!(
        t.answer(Answer::QueuePlace(Some("g1".into()))),
        [
            failed(
                TransferKind::Agent,
                "A02",
                TransferFailureReason::Busy,
                Some(486),
                TransferReturn::Agent,
                Some("A01")
            ),
            Output::Ring(Ring::Back("1001".into()))
        ]
    );
    // The music goes on while A01's phone rings, and stops when they answer.
    assert_eq!(
        t.rang(Rang::Answered(agent("A01", "1001"))),
        [Output::MusicOff, Output::Talk]
    );
}

#[test]
fn an_agent_who_does_not_take_the_caller_back_sends_them_to_the_queue_at_their_place() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    t.rang(Rang::Failed(Outcome::NotAnswered(480)));
    t.answer(Answer::AgentState(Some(AgentState::Idle)));
    let out = t.answer(Answer::QueuePlace(Some("g1".into())));
    assert_eq!(
        out[0],
        failed(
            TransferKind::Agent,
            "A02",
            TransferFailureReason::NoAnswer,
            None,
            TransferReturn::Agent,
            Some("A01")
        )
    );
    assert_eq!(
        t.rang(Rang::Failed(Outcome::NotAnswered(480))),
        [Output::MusicOff, Output::Ring(Ring::QueueAtPlace)]
    );
    assert_eq!(t.rang(Rang::Answered(agent("A02", "1002"))), [Output::Talk]);
}

#[test]
fn a_transferring_agent_busy_elsewhere_is_not_rung_back() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    t.rang(busy());
    t.answer(Answer::AgentState(Some(AgentState::Talking)));
    let out = t.answer(Answer::QueuePlace(Some("g1".into())));
    assert_eq!(
        out,
        [
            failed(
                TransferKind::Agent,
                "A02",
                TransferFailureReason::Busy,
                Some(486),
                TransferReturn::Queue,
                Some("g1")
            ),
            Output::MusicOff,
            Output::Ring(Ring::QueueAtPlace)
        ]
    );
}

#[test]
fn an_agent_the_acd_does_not_know_takes_the_caller_back() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    t.rang(busy());
    t.answer(Answer::AgentState(None));
    let out = t.answer(Answer::QueuePlace(None));
    assert_eq!(out.last(), Some(&Output::Ring(Ring::Back("1001".into()))));
}

#[test]
fn an_unregistered_target_fails_at_once_without_ringing() {
    let (mut t, out) = Talks::transferring(TransferTarget::Agent("1003".into()));
    assert_eq!(
        t.unreachable(out),
        failed(
            TransferKind::Agent,
            "A03",
            TransferFailureReason::Unreachable,
            None,
            TransferReturn::Agent,
            Some("A01")
        )
    );
}

#[test]
fn a_transferring_agent_whose_phone_left_is_not_asked_about() {
    // A03 on 1003 (not registered) transfers to a number that fails.
    let (mut t, out) = Talks::start(agent("A03", "1003"), true, Some("trunk-a"));
    assert_eq!(out, [Output::Talk]);
    let out = t.transfer(number_110());
    assert_eq!(
        out,
        [
            Output::MusicOn,
            Output::Ring(Ring::Number {
                number: "110".into(),
                trunk: "trunk-a".into()
            })
        ]
    );
    assert_eq!(
        t.rang(Rang::Failed(Outcome::NotAnswered(503))),
        [Output::Ask(Question::QueuePlace)]
    );
    let out = t.answer(Answer::QueuePlace(None));
    assert_eq!(
        out,
        [
            Output::TransferFailed(FailedTransfer {
                transferor: Some("A03".into()),
                kind: TransferKind::Number,
                name: "110".into(),
                reason: TransferFailureReason::Failed,
                sip_code: Some(503),
                back_to: TransferReturn::None,
                back_to_id: None,
            }),
            Output::MusicOff
        ]
    );
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Timeout)));
}

#[test]
fn a_number_goes_through_the_trunk_it_names_before_the_tenants() {
    let (_, out) = Talks::transferring(TransferTarget::Number {
        number: "12328".into(),
        trunk: Some("trunk-b".into()),
    });
    assert_eq!(
        out[1],
        Output::Ring(Ring::Number {
            number: "12328".into(),
            trunk: "trunk-b".into()
        })
    );
}

#[test]
fn a_number_with_no_trunk_is_unreachable() {
    let (mut t, out) = Talks::start(agent("A01", "1001"), true, None);
    assert_eq!(out, [Output::Talk]);
    let out = t.transfer(number_110());
    assert!(matches!(
        t.unreachable(out),
        Output::TransferFailed(f) if f.reason == TransferFailureReason::Unreachable && f.kind == TransferKind::Number
    ));
}

#[test]
fn a_transfer_to_a_staffed_group_queues_the_caller_with_the_groups_own_media() {
    let (mut t, out) = Talks::transferring(TransferTarget::Group("g2".into()));
    assert_eq!(
        out,
        [Output::MusicOn, Output::Ask(Question::Staffed("g2".into()))]
    );
    assert_eq!(
        t.answer(Answer::Staffed(Some(true))),
        [Output::MusicOff, Output::Ring(Ring::Group("g2".into()))]
    );
    assert_eq!(t.rang(Rang::Answered(agent("A02", "1002"))), [Output::Talk]);
    t.input(talked_over(false));
    assert_eq!(
        t.end(),
        Some(End::Talked {
            who: "A02".into(),
            caller_continues: false
        })
    );
}

#[test]
fn a_groups_queue_that_lets_go_of_the_caller_does_not_send_them_back() {
    let (mut t, _) = Talks::transferring(TransferTarget::Group("g2".into()));
    t.answer(Answer::Staffed(None));
    let out = t.rang(Rang::Failed(Outcome::QueueEnded { full: true }));
    assert_eq!(out, []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Overflow)));
}

#[test]
fn a_group_with_nobody_signed_in_is_unreachable_and_the_caller_goes_back() {
    let (mut t, _) = Talks::transferring(TransferTarget::Group("g2".into()));
    assert_eq!(
        t.answer(Answer::Staffed(Some(false))),
        [Output::Ask(Question::AgentState("A01".into()))]
    );
    t.answer(Answer::AgentState(Some(AgentState::NotReady)));
    let out = t.answer(Answer::QueuePlace(Some("g1".into())));
    assert_eq!(
        out,
        [
            failed(
                TransferKind::Group,
                "g2",
                TransferFailureReason::Unreachable,
                None,
                TransferReturn::Queue,
                Some("g1")
            ),
            Output::MusicOff,
            Output::Ring(Ring::QueueAtPlace)
        ]
    );
    // The queue's wait ends: the flow goes on.
    t.rang(Rang::Failed(Outcome::QueueEnded { full: false }));
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Timeout)));
}

#[test]
fn the_caller_hanging_up_while_the_target_rings_ends_the_call_and_the_music() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    assert_eq!(
        t.rang(Rang::CallerGone),
        [Output::MusicOff, Output::ForgetCaller]
    );
    assert_eq!(t.end(), Some(End::CallerGone));
}

/// A01 transferred to busy 1002 and, the call never queued, is rung back.
fn ringing_back() -> Talks {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    t.rang(busy());
    t.answer(Answer::AgentState(Some(AgentState::Idle)));
    let out = t.answer(Answer::QueuePlace(None));
    assert_eq!(out.last(), Some(&Output::Ring(Ring::Back("1001".into()))));
    t
}

#[test]
fn the_caller_hanging_up_while_the_agent_rings_back_ends_the_call() {
    let mut t = ringing_back();
    assert_eq!(
        t.rang(Rang::CallerGone),
        [Output::MusicOff, Output::ForgetCaller]
    );
    assert_eq!(t.end(), Some(End::CallerGone));
}

#[test]
fn nobody_to_go_back_to_ends_with_nobody_taking_the_caller() {
    let mut t = ringing_back();
    assert_eq!(t.rang(busy()), [Output::MusicOff]);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Timeout)));
}

#[test]
fn a_second_transfer_is_made_by_whoever_answered_the_first() {
    let (mut t, _) = Talks::transferring(TransferTarget::Agent("1002".into()));
    t.rang(Rang::Answered(agent("A02", "1002")));
    // A02 transfers on to a busy number; A02 is the one rung back.
    t.transfer(number_110());
    assert_eq!(
        t.rang(busy()),
        [Output::Ask(Question::AgentState("A02".into()))]
    );
}

#[test]
fn a_phone_rung_directly_is_asked_about_under_its_sip_user() {
    // A phone rung by its SIP user: the record names it by job number.
    let (mut t, _) = Talks::start(agent("1001", "1001"), true, None);
    t.transfer(TransferTarget::Agent("1002".into()));
    assert_eq!(
        t.rang(busy()),
        [Output::Ask(Question::AgentState("1001".into()))]
    );
    t.answer(Answer::AgentState(None));
    let out = t.answer(Answer::QueuePlace(None));
    assert!(matches!(
        &out[0],
        Output::TransferFailed(f) if f.transferor.as_deref() == Some("A01") && f.back_to_id.as_deref() == Some("1001")
    ));
}

#[test]
fn news_nobody_asked_for_is_ignored() {
    let (mut t, _) = Talks::with_a01();
    assert_eq!(t.rang(busy()), []);
    assert_eq!(t.answer(Answer::QueuePlace(None)), []);
    assert_eq!(t.input(Input::Ports(true)), []);
    assert_eq!(t.end(), None);
    // The talk it waits for still ends it.
    t.input(talked_over(false));
    assert!(t.end().is_some());
}

#[test]
fn failures_are_named_from_the_targets_status() {
    use TransferFailureReason::*;
    assert_eq!(failure_of(&Outcome::NotAnswered(486)), (Busy, Some(486)));
    assert_eq!(failure_of(&Outcome::NotAnswered(603)), (Busy, Some(603)));
    assert_eq!(failure_of(&Outcome::NotAnswered(408)), (NoAnswer, None));
    assert_eq!(failure_of(&Outcome::NotAnswered(480)), (NoAnswer, None));
    assert_eq!(failure_of(&Outcome::NotAnswered(503)), (Failed, Some(503)));
    assert_eq!(failure_of(&Outcome::Rejected(488)), (Failed, Some(488)));
    assert_eq!(failure_of(&Outcome::CallerCancelled), (Failed, None));
}

#[test]
fn a_flows_queue_rings_and_the_agent_it_offers_talks_with_the_caller() {
    let mut t = dialing_g1();
    assert_eq!(t.rang(Rang::Answered(agent("A02", "1002"))), [Output::Talk]);
    t.input(talked_over(true));
    assert_eq!(
        t.end(),
        Some(End::Talked {
            who: "A02".into(),
            caller_continues: true
        })
    );
}

#[test]
fn a_flows_caller_not_yet_answered_is_answered_when_the_agent_answers() {
    let (mut t, _) = Talks::dial(Dest::Agent("1002".into()), false, None);
    assert_eq!(
        t.input(Input::Ports(true)),
        [Output::Ring(Ring::Agent("1002".into()))]
    );
    assert_eq!(
        t.rang(Rang::Answered(agent("1002", "1002"))),
        [Output::AnswerCaller]
    );
    assert_eq!(t.input(Input::Answered(true)), [Output::Talk]);
}

#[test]
fn a_flows_queue_with_nobody_signed_in_is_closed() {
    let (mut t, _) = Talks::dial(queue_g1(), true, None);
    t.input(Input::Ports(true));
    assert_eq!(t.answer(Answer::Staffed(Some(false))), []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Closed)));
}

#[test]
fn a_flows_connection_without_ports_is_an_overflow() {
    let (mut t, _) = Talks::dial(queue_g1(), true, None);
    assert_eq!(t.input(Input::Ports(false)), []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Overflow)));
}

#[test]
fn a_flows_number_goes_through_its_trunk_or_the_tenants_or_is_closed() {
    let (mut t, _) = Talks::dial(
        Dest::Number {
            number: "110".into(),
            trunk: Some("trunk-b".into()),
        },
        true,
        Some("trunk-a"),
    );
    assert_eq!(
        t.input(Input::Ports(true)),
        [Output::Ring(Ring::Number {
            number: "110".into(),
            trunk: "trunk-b".into()
        })]
    );
    let (mut t, _) = Talks::dial(
        Dest::Number {
            number: "110".into(),
            trunk: None,
        },
        true,
        None,
    );
    assert_eq!(t.input(Input::Ports(true)), []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Closed)));
}

#[test]
fn a_caller_who_asks_for_a_callback_in_a_flows_queue_ends_the_connection() {
    let mut t = dialing_g1();
    assert_eq!(t.rang(Rang::Failed(Outcome::CallbackRequested)), []);
    assert_eq!(t.end(), Some(End::CallbackRequested));
}

#[test]
fn a_flows_queue_that_is_full_or_waited_out_hands_the_caller_back() {
    let mut t = dialing_g1();
    t.rang(Rang::Failed(Outcome::QueueEnded { full: true }));
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Overflow)));
    let mut t = dialing_g1();
    t.rang(Rang::Failed(Outcome::QueueEnded { full: false }));
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Timeout)));
}

#[test]
fn a_flows_agent_not_reached_hands_the_caller_back_without_a_transfer_failure() {
    let (mut t, _) = Talks::dial(Dest::Agent("1002".into()), true, None);
    t.input(Input::Ports(true));
    assert_eq!(t.rang(busy()), []);
    assert_eq!(t.end(), Some(End::Failed(QueueOutcome::Timeout)));
}

#[test]
fn a_flows_caller_who_hangs_up_while_the_queue_rings_is_the_flows_to_end() {
    let mut t = dialing_g1();
    assert_eq!(t.rang(Rang::CallerGone), []);
    assert_eq!(t.end(), Some(End::CallerGone));
}

#[test]
fn an_agent_reached_through_a_flow_can_transfer_and_take_the_caller_back() {
    let mut t = dialing_g1();
    t.rang(Rang::Answered(agent("A01", "1001")));
    t.transfer(TransferTarget::Agent("1002".into()));
    assert_eq!(
        t.rang(busy()),
        [Output::Ask(Question::AgentState("A01".into()))]
    );
}

/// The shell's side of a random run: answers every question and ring at
/// random, and checks the rules a shell relies on.
fn random_run(seed: u64) -> (End, usize) {
    let mut rng = Rng::seeded(seed);
    let roster = phones();
    let devices = ["1001", "1002", "1003"];
    let pick = |rng: &mut Rng| devices[rng.below(3) as usize];
    let first = pick(&mut rng);
    let answered = rng.below(4) != 0;
    let trunk = (rng.below(2) == 0).then_some("trunk-a");
    let (mut t, mut pending) = if rng.below(2) == 0 {
        Talks::start(agent(&roster.agent_id_of(first), first), answered, trunk)
    } else {
        let dest = match rng.below(3) {
            0 => queue_g1(),
            1 => Dest::Agent(first.into()),
            _ => Dest::Number {
                number: "110".into(),
                trunk: None,
            },
        };
        Talks::dial(dest, answered, trunk)
    };
    let mut music = false;
    let mut talks = 0;
    let mut transfer_failed = false;
    for step in 0..200 {
        assert!(step < 199, "seed {seed}: no end in 200 steps");
        let mut input = None;
        for out in pending.drain(..) {
            assert!(input.is_none(), "seed {seed}: two outputs wait for news");
            input = match out {
                Output::AnswerCaller => Some(Input::Answered(rng.below(6) != 0)),
                Output::Talk => {
                    assert!(!music, "seed {seed}: talking over music");
                    talks += 1;
                    transfer_failed = false;
                    let transfer = match rng.below(5) {
                        0 => Some(TransferTarget::Agent(pick(&mut rng).into())),
                        1 => Some(TransferTarget::Group(format!("g{}", rng.below(2)))),
                        2 => Some(TransferTarget::Number {
                            number: "110".into(),
                            trunk: (rng.below(3) == 0).then(|| "trunk-b".into()),
                        }),
                        _ => None,
                    };
                    Some(Input::Talked {
                        transfer,
                        caller_continues: rng.below(8) != 0,
                    })
                }
                Output::FreshPorts => Some(Input::Ports(rng.below(10) != 0)),
                Output::MusicOn => {
                    assert!(!music, "seed {seed}: music started twice");
                    music = true;
                    None
                }
                Output::MusicOff => {
                    assert!(music, "seed {seed}: music stopped that never started");
                    music = false;
                    None
                }
                Output::Ask(Question::Staffed(_)) => Some(Input::Answer(Answer::Staffed(
                    [None, Some(true), Some(false)][rng.below(3) as usize],
                ))),
                Output::Ask(Question::AgentState(_)) => {
                    let states = [
                        None,
                        Some(AgentState::Idle),
                        Some(AgentState::AfterCallWork),
                        Some(AgentState::Talking),
                        Some(AgentState::NotReady),
                    ];
                    Some(Input::Answer(Answer::AgentState(
                        states[rng.below(5) as usize],
                    )))
                }
                Output::Ask(Question::QueuePlace) => Some(Input::Answer(Answer::QueuePlace(
                    (rng.below(2) == 0).then(|| "g1".into()),
                ))),
                Output::Ring(ring) => {
                    // A transfer's target and the way back are rung
                    // only when registered (a flow's agent is rung as
                    // it is: the ringing says it is not there).
                    if let (Ring::Agent(d), 1..) | (Ring::Back(d), _) = (&ring, talks) {
                        assert!(
                            roster.registered(d),
                            "seed {seed}: rang {d}, not registered"
                        );
                    }
                    if matches!(ring, Ring::Group(_) | Ring::Queue { .. }) {
                        assert!(!music, "seed {seed}: music over a queue's media");
                    }
                    if matches!(ring, Ring::Back(_) | Ring::QueueAtPlace) {
                        assert!(
                            transfer_failed,
                            "seed {seed}: went back before the record knew"
                        );
                    }
                    Some(Input::Rang(match rng.below(6) {
                        0 => Rang::CallerGone,
                        1 | 2 => {
                            let d = pick(&mut rng);
                            Rang::Answered(agent(&roster.agent_id_of(d), d))
                        }
                        3 => Rang::Failed(if rng.below(4) == 0 {
                            Outcome::CallbackRequested
                        } else {
                            Outcome::QueueEnded {
                                full: rng.below(2) == 0,
                            }
                        }),
                        _ => Rang::Failed(Outcome::NotAnswered(
                            [486, 480, 503, 408][rng.below(4) as usize],
                        )),
                    }))
                }
                Output::TransferFailed(_) => {
                    assert!(!transfer_failed, "seed {seed}: one failure recorded twice");
                    transfer_failed = true;
                    None
                }
                Output::DropAnswer | Output::ForgetCaller => None,
            };
        }
        if let Some(end) = t.end() {
            assert!(input.is_none(), "seed {seed}: ended while waiting for news");
            assert!(!music, "seed {seed}: ended with the music on");
            assert_eq!(t.outputs(), [], "seed {seed}: output after the end");
            return (end, talks);
        }
        let Some(input) = input else {
            panic!("seed {seed}: no end and nothing to wait for");
        };
        pending = t.input(input);
    }
    unreachable!()
}

#[test]
fn ten_thousand_seeded_runs_end_once_with_the_music_off_and_every_path_taken() {
    let mut ends = HashMap::new();
    let mut transfers_chained = 0;
    for seed in 1..=10_000u64 {
        let (end, talks) = random_run(seed);
        let kind = match end {
            End::CallerGone => "gone",
            End::CallbackRequested => "callback",
            End::Failed(QueueOutcome::Overflow) => "overflow",
            End::Failed(_) => "failed",
            End::Talked {
                caller_continues: true,
                ..
            } => "continues",
            End::Talked { .. } => "talked",
        };
        *ends.entry(kind).or_insert(0) += 1;
        if talks > 2 {
            transfers_chained += 1;
        }
    }
    for kind in [
        "gone",
        "callback",
        "overflow",
        "failed",
        "continues",
        "talked",
    ] {
        assert!(
            ends.get(kind).copied().unwrap_or(0) > 0,
            "no run ended {kind}: {ends:?}"
        );
    }
    assert!(transfers_chained > 0, "no run chained transfers");
}
