//! Scenario tests of the call as one machine: each kind of call through
//! its phases with scripted results, reading back exactly what the shell
//! would do (what the carrier and the ACD are told, how the record ends).
//! No sockets, no sleeps.

use super::*;
use crate::call::seeded::Rng;

struct Call(Machine);

impl Call {
    fn new(kind: Kind) -> (Self, Vec<Output>) {
        let mut c = Call(Machine::new(kind));
        let out = c.outputs();
        (c, out)
    }

    /// A call of `kind` set up.
    fn prepared(kind: Kind) -> (Self, Vec<Output>) {
        let (mut c, out) = Call::new(kind);
        assert_eq!(out, [Output::Prepare]);
        let out = c.input(Input::Prepared(Ok(())));
        (c, out)
    }

    /// A direct call someone answered, its caller answered too.
    fn conversing() -> Self {
        let (mut c, out) = Call::prepared(Kind::Direct);
        assert_eq!(out, [Output::Ring]);
        assert_eq!(
            c.input(Input::Rang {
                result: Ok(()),
                answered: false
            }),
            [Output::AnswerCaller]
        );
        assert_eq!(c.input(Input::Answered(true)), [Output::Converse]);
        c
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.0.poll_output()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.0.handle_input(input);
        self.outputs()
    }

    fn outcome(&self) -> Option<Outcome> {
        self.0.outcome().cloned()
    }
}

fn end(reason: &str, code: Option<u16>, failure: bool) -> Output {
    Output::EndRecord(system(reason, code, failure))
}

/// The close of an inbound call that got its media.
fn closed(record: Output) -> [Output; 3] {
    [Output::EndRecording, record, Output::Finish]
}

#[test]
fn an_unreadable_offer_is_refused_with_488_and_the_record_says_so() {
    let (mut c, _) = Call::new(Kind::Direct);
    let out = c.input(Input::Prepared(Err(SetupFailure::BadOffer)));
    assert_eq!(
        out,
        [
            Output::Reject(488),
            end("rejected", Some(488), false),
            Output::Finish
        ]
    );
    assert_eq!(c.outcome(), Some(Outcome::Rejected(488)));
}

#[test]
fn no_ports_is_a_503_and_the_switchs_fault() {
    let (mut c, _) = Call::new(Kind::Flow);
    let out = c.input(Input::Prepared(Err(SetupFailure::NoPorts)));
    assert_eq!(
        out,
        [
            Output::Reject(503),
            end("rejected", Some(503), true),
            Output::Finish
        ]
    );
}

#[test]
fn no_common_codec_is_refused_with_the_negotiations_status() {
    let (mut c, _) = Call::new(Kind::Direct);
    let out = c.input(Input::Prepared(Err(SetupFailure::Negotiation(415))));
    assert_eq!(out[0], Output::Reject(415));
    assert_eq!(c.outcome(), Some(Outcome::Rejected(415)));
}

#[test]
fn a_dialog_that_cannot_be_made_sends_nothing_back() {
    let (mut c, _) = Call::new(Kind::Direct);
    let out = c.input(Input::Prepared(Err(SetupFailure::NoDialog)));
    assert_eq!(out, [end("rejected", Some(500), true), Output::Finish]);
    assert_eq!(c.outcome(), Some(Outcome::Rejected(500)));
}

#[test]
fn a_flow_call_runs_its_flow_and_ends_as_the_flow_says() {
    let (mut c, out) = Call::prepared(Kind::Flow);
    assert_eq!(out, [Output::RunFlow]);
    let out = c.input(Input::FlowOver(Outcome::FlowEnded("no-input".into())));
    assert_eq!(out, closed(end("no-input", None, false)));
    assert_eq!(c.outcome(), Some(Outcome::FlowEnded("no-input".into())));
}

#[test]
fn a_flow_whose_queue_wait_ended_and_a_callback_request_are_named_in_the_record() {
    for (outcome, reason) in [
        (Outcome::QueueEnded { full: true }, "queue-ended"),
        (Outcome::CallbackRequested, "callback"),
        (Outcome::Answered, "normal"),
    ] {
        let (mut c, _) = Call::prepared(Kind::Flow);
        let out = c.input(Input::FlowOver(outcome.clone()));
        assert_eq!(out, closed(end(reason, None, false)), "{outcome:?}");
    }
}

#[test]
fn a_caller_who_hangs_up_in_the_flow_ended_the_call() {
    let (mut c, _) = Call::prepared(Kind::Flow);
    let out = c.input(Input::FlowOver(Outcome::CallerCancelled));
    assert_eq!(out, closed(Output::EndRecord(RecordEnd::Caller)));
}

#[test]
fn a_direct_route_nobody_answers_refuses_the_caller_with_the_final_status() {
    let (mut c, _) = Call::prepared(Kind::Direct);
    let out = c.input(Input::Rang {
        result: Err(Outcome::NotAnswered(486)),
        answered: false,
    });
    assert_eq!(
        out,
        [
            Output::Reject(486),
            Output::Forget,
            Output::EndRecording,
            end("not-answered", Some(486), false),
            Output::Finish
        ]
    );
    assert_eq!(c.outcome(), Some(Outcome::NotAnswered(486)));
}

#[test]
fn a_caller_who_cancels_while_it_rings_is_forgotten_not_refused() {
    let (mut c, _) = Call::prepared(Kind::Direct);
    let out = c.input(Input::Rang {
        result: Err(Outcome::CallerCancelled),
        answered: false,
    });
    assert_eq!(out[0], Output::Forget);
    assert_eq!(out[2], Output::EndRecord(RecordEnd::Caller));
    assert_eq!(c.outcome(), Some(Outcome::CallerCancelled));
}

#[test]
fn a_caller_answered_for_the_queues_media_is_not_answered_again() {
    let (mut c, _) = Call::prepared(Kind::Direct);
    let out = c.input(Input::Rang {
        result: Ok(()),
        answered: true,
    });
    assert_eq!(out, [Output::Converse]);
}

#[test]
fn a_caller_the_queue_said_goodbye_to_is_not_refused() {
    let (mut c, _) = Call::prepared(Kind::Direct);
    let out = c.input(Input::Rang {
        result: Err(Outcome::NotAnswered(480)),
        answered: true,
    });
    assert_eq!(out[0], Output::Forget);
    assert_eq!(c.outcome(), Some(Outcome::NotAnswered(480)));
}

#[test]
fn a_caller_who_left_as_the_agent_answered_drops_the_answer() {
    let (mut c, _) = Call::prepared(Kind::Direct);
    c.input(Input::Rang {
        result: Ok(()),
        answered: false,
    });
    let out = c.input(Input::Answered(false));
    assert_eq!(out[0], Output::DropAnswer);
    assert_eq!(c.outcome(), Some(Outcome::CallerCancelled));
}

#[test]
fn a_direct_call_talks_and_ends_normally() {
    let mut c = Call::conversing();
    let out = c.input(Input::Conversed(Conversed::Talked));
    assert_eq!(out, closed(end("normal", None, false)));
    assert_eq!(c.outcome(), Some(Outcome::Answered));
}

#[test]
fn a_blind_transfer_nobody_took_hangs_the_caller_up() {
    let mut c = Call::conversing();
    let out = c.input(Input::Conversed(Conversed::Failed(QueueOutcome::Timeout)));
    assert_eq!(
        out,
        [
            end("transfer-failed", None, false),
            Output::EndRecording,
            Output::Bye,
            Output::EndRecording,
            end("normal", None, false),
            Output::Finish
        ]
    );
    assert_eq!(c.outcome(), Some(Outcome::Answered));
}

#[test]
fn a_transfer_without_ports_is_the_switchs_fault() {
    let mut c = Call::conversing();
    let out = c.input(Input::Conversed(Conversed::Failed(QueueOutcome::Overflow)));
    assert_eq!(out[0], end("transfer-failed", None, true));
}

/// A callback whose ports are reserved: the agent rings.
fn callback_ringing() -> Call {
    let (c, out) = Call::prepared(Kind::Callback);
    assert_eq!(out, [Output::Reach]);
    c
}

#[test]
fn a_callback_without_ports_tells_the_acd_its_offer_failed() {
    let (mut c, _) = Call::new(Kind::Callback);
    let out = c.input(Input::Prepared(Err(SetupFailure::NoPorts)));
    assert_eq!(out, [Output::Acd(AcdNews::OfferFailed)]);
    assert!(c.outcome().is_some());
}

#[test]
fn a_callback_answered_by_its_agent_and_the_citizen_is_talked_and_reported() {
    let mut c = callback_ringing();
    assert_eq!(
        c.input(Input::AgentAnswered),
        [Output::Acd(AcdNews::OfferAnswered), Output::StartRecord]
    );
    assert_eq!(
        c.input(Input::Reached(Ok(()))),
        [
            Output::Connected,
            Output::Acd(AcdNews::CallbackResult(true)),
            Output::Talk
        ]
    );
    assert_eq!(
        c.input(Input::Talked),
        [Output::Acd(AcdNews::CallEnded), Output::Finish]
    );
    assert_eq!(c.outcome(), Some(Outcome::Answered));
}

#[test]
fn an_agent_who_refuses_a_callback_is_told_to_the_acd_as_a_rejection() {
    for (code, news) in [
        (486, AcdNews::OfferRejected),
        (603, AcdNews::OfferRejected),
        (408, AcdNews::OfferFailed),
        (500, AcdNews::OfferFailed),
    ] {
        let mut c = callback_ringing();
        let out = c.input(Input::Reached(Err(NotReached::Agent(code))));
        assert_eq!(out, [Output::Acd(news)], "{code}");
    }
}

#[test]
fn a_callback_withdrawn_before_its_agent_answered_leaves_no_trace() {
    let mut c = callback_ringing();
    assert_eq!(c.input(Input::Reached(Err(NotReached::Withdrawn))), []);
    assert!(c.outcome().is_some());
}

#[test]
fn a_citizen_not_reached_ends_the_callbacks_record_and_tells_the_acd() {
    let mut c = callback_ringing();
    c.input(Input::AgentAnswered);
    let out = c.input(Input::Reached(Err(NotReached::Citizen(486))));
    assert_eq!(
        out,
        [
            end("not-answered", Some(480), false),
            Output::Finish,
            Output::Acd(AcdNews::CallbackResult(false))
        ]
    );
}

#[test]
fn a_callback_with_no_trunk_is_the_switchs_fault() {
    let mut c = callback_ringing();
    c.input(Input::AgentAnswered);
    let out = c.input(Input::Reached(Err(NotReached::NoTrunk)));
    assert_eq!(out[0], end("no-trunk", None, true));
}

#[test]
fn an_agent_answer_reported_twice_is_told_once() {
    let mut c = callback_ringing();
    assert_eq!(c.input(Input::AgentAnswered).len(), 2);
    assert_eq!(c.input(Input::AgentAnswered), []);
}

/// An outbound call the ACD took, its ports reserved: the agent rings.
fn outbound_ringing() -> Call {
    let (mut c, out) = Call::new(Kind::Outbound);
    assert_eq!(
        out,
        [Output::StartRecord, Output::Acd(AcdNews::StartOutbound)]
    );
    assert_eq!(c.input(Input::AcdTook(true)), [Output::Prepare]);
    assert_eq!(c.input(Input::Prepared(Ok(()))), [Output::Reach]);
    c
}

#[test]
fn an_outbound_call_the_acd_refuses_ends_its_record_without_ringing() {
    let (mut c, _) = Call::new(Kind::Outbound);
    let out = c.input(Input::AcdTook(false));
    assert_eq!(out, [end("agent-busy", None, false), Output::Finish]);
}

#[test]
fn an_outbound_call_without_ports_frees_the_agent() {
    let (mut c, _) = Call::new(Kind::Outbound);
    c.input(Input::AcdTook(true));
    let out = c.input(Input::Prepared(Err(SetupFailure::NoPorts)));
    assert_eq!(
        out,
        [
            end("no-ports", None, true),
            Output::Acd(AcdNews::EndOutbound),
            Output::Finish
        ]
    );
}

#[test]
fn an_outbound_call_talks_then_frees_the_agent() {
    let mut c = outbound_ringing();
    assert_eq!(c.input(Input::AgentAnswered), []);
    assert_eq!(
        c.input(Input::Reached(Ok(()))),
        [Output::Connected, Output::Talk]
    );
    assert_eq!(
        c.input(Input::Talked),
        [Output::Acd(AcdNews::EndOutbound), Output::Finish]
    );
}

#[test]
fn an_outbound_call_not_reached_says_who_was_not() {
    for (not, record) in [
        (
            NotReached::Agent(486),
            end("agent-not-answered", Some(486), false),
        ),
        (NotReached::Withdrawn, end("withdrawn", None, false)),
        (NotReached::NoTrunk, end("no-trunk", None, true)),
        (
            NotReached::Citizen(404),
            end("not-answered", Some(404), false),
        ),
    ] {
        let mut c = outbound_ringing();
        let what = format!("{not:?}");
        let out = c.input(Input::Reached(Err(not)));
        assert_eq!(
            out,
            [record, Output::Acd(AcdNews::EndOutbound), Output::Finish],
            "{what}"
        );
    }
}

#[test]
fn news_a_call_does_not_wait_for_is_ignored() {
    let mut c = Call::conversing();
    assert_eq!(c.input(Input::Talked), []);
    assert_eq!(
        c.input(Input::Rang {
            result: Ok(()),
            answered: false
        }),
        []
    );
    assert_eq!(c.input(Input::AgentAnswered), []);
    assert_eq!(c.outcome(), None);
    let (mut c, _) = Call::prepared(Kind::Flow);
    assert_eq!(c.input(Input::Conversed(Conversed::Talked)), []);
    assert_eq!(c.outcome(), None);
}

/// A random input among those the shell can send.
fn random_input(rng: &mut Rng) -> Input {
    let outcomes = [
        Outcome::Answered,
        Outcome::CallerCancelled,
        Outcome::NotAnswered(486),
        Outcome::NotAnswered(480),
        Outcome::QueueEnded { full: false },
        Outcome::FlowEnded("normal".into()),
        Outcome::CallbackRequested,
    ];
    let outcome = outcomes[rng.below(outcomes.len() as u64) as usize].clone();
    let nots = [
        NotReached::Agent(486),
        NotReached::Agent(408),
        NotReached::Withdrawn,
        NotReached::NoTrunk,
        NotReached::Citizen(480),
    ];
    let not = nots[rng.below(nots.len() as u64) as usize].clone();
    let failures = [
        SetupFailure::BadOffer,
        SetupFailure::NoPorts,
        SetupFailure::Negotiation(488),
        SetupFailure::NoDialog,
    ];
    let failure = failures[rng.below(failures.len() as u64) as usize];
    match rng.below(12) {
        0 => Input::AcdTook(rng.below(4) != 0),
        1 => Input::Prepared(if rng.below(5) == 0 {
            Err(failure)
        } else {
            Ok(())
        }),
        2 => Input::FlowOver(outcome),
        3 => Input::Rang {
            result: if rng.below(2) == 0 {
                Ok(())
            } else {
                Err(outcome)
            },
            answered: rng.below(3) == 0,
        },
        4 => Input::Answered(rng.below(5) != 0),
        5 => Input::Conversed(match rng.below(3) {
            0 => Conversed::CallerGone,
            1 => Conversed::Failed(QueueOutcome::Timeout),
            _ => Conversed::Talked,
        }),
        6 | 7 => Input::AgentAnswered,
        8 | 9 => Input::Reached(if rng.below(2) == 0 { Ok(()) } else { Err(not) }),
        _ => Input::Talked,
    }
}

#[test]
fn ten_thousand_seeded_calls_end_once_with_one_record_and_the_acd_balanced() {
    let kinds = [Kind::Flow, Kind::Direct, Kind::Callback, Kind::Outbound];
    let mut talked = [0u32; 4];
    for seed in 1..=10_000u64 {
        let mut rng = Rng::seeded(seed);
        let k = rng.below(4) as usize;
        let kind = kinds[k];
        let (mut c, mut out) = Call::new(kind);
        let (mut finishes, mut record_ends, mut started) = (0, 0, kind != Kind::Callback);
        let (mut outbound_started, mut outbound_ended) = (false, 0);
        let (mut offer_answered, mut callback_results) = (false, 0);
        let mut talks = 0;
        for step in 0..=100 {
            for o in out.drain(..) {
                assert!(
                    finishes == 0 || matches!(o, Output::Acd(_)),
                    "seed {seed}: {o:?} after the record was sent"
                );
                match o {
                    Output::Finish => {
                        assert!(started, "seed {seed}: a record sent that never started");
                        finishes += 1;
                    }
                    Output::EndRecord(_) => {
                        assert!(started, "seed {seed}: a record ended that never started");
                        record_ends += 1;
                    }
                    Output::StartRecord => started = true,
                    Output::Acd(AcdNews::StartOutbound) => outbound_started = true,
                    Output::Acd(AcdNews::EndOutbound) => {
                        assert_eq!(kind, Kind::Outbound, "seed {seed}");
                        outbound_ended += 1;
                    }
                    Output::Acd(AcdNews::OfferAnswered) => offer_answered = true,
                    Output::Acd(AcdNews::CallbackResult(_)) => {
                        assert!(offer_answered, "seed {seed}: a result before the answer");
                        callback_results += 1;
                    }
                    Output::Talk | Output::Converse => talks += 1,
                    Output::Reject(_) => {
                        assert!(
                            matches!(kind, Kind::Flow | Kind::Direct),
                            "seed {seed}: {kind:?} refused an INVITE"
                        );
                    }
                    _ => {}
                }
            }
            if c.outcome().is_some() || step == 100 {
                break;
            }
            out = c.input(random_input(&mut rng));
        }
        let Some(outcome) = c.outcome() else {
            // Random inputs need not reach an end; the rules hold so far.
            continue;
        };
        assert!(c.outputs().is_empty(), "seed {seed}: output after the end");
        assert!(talks <= 1, "seed {seed}: talked {talks} times");
        if outcome == Outcome::Answered && talks == 1 {
            talked[k] += 1;
        }
        match kind {
            Kind::Flow | Kind::Direct => {
                assert_eq!(finishes, 1, "seed {seed}: an inbound record sent once");
                assert!(record_ends >= 1, "seed {seed}: no end for the record");
            }
            Kind::Outbound => {
                assert!(outbound_started, "seed {seed}");
                assert_eq!(finishes, 1, "seed {seed}: the record sent once");
                assert!(
                    outbound_ended <= 1,
                    "seed {seed}: the agent freed {outbound_ended} times"
                );
            }
            Kind::Callback => {
                assert_eq!(finishes, usize::from(started), "seed {seed}");
                if offer_answered {
                    assert_eq!(callback_results, 1, "seed {seed}: one result");
                }
            }
        }
    }
    for (k, n) in talked.iter().enumerate().skip(1) {
        assert!(*n > 0, "no {:?} call talked: {talked:?}", kinds[k]);
    }
}
