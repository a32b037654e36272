//! Scenario tests of a call's IVR phase in virtual time: the shipped-like
//! 12345 flows (`ivr::testkit`) run through [`FlowCore`] with scripted
//! player news, answers and connections; each test reads back exactly what
//! the shell would do (answer, play, give the player back, connect, hang
//! up) and what the record is told. No sockets, no sleeps.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::call::seeded::Rng;
use crate::ivr::testkit::{sample_set, set_of, TestEnv, MAIN, SURVEY, TRANSFER};
use crate::ivr::{CallFacts, FlowSet};

/// 2024-06-03 10:00 Beijing time, a Monday.
const MONDAY_10AM: u64 = 1_717_380_000;

/// Every prompt is loaded but those named `missing…`.
struct Loaded;

impl Prompts for Loaded {
    fn has(&self, name: &str) -> bool {
        !name.starts_with("missing")
    }
}

/// One call's IVR phase and its virtual clock.
struct Call {
    core: FlowCore,
    now: Time,
}

impl Call {
    fn on(set: Arc<FlowSet>, flow: &str, env: TestEnv) -> (Self, Vec<Output>) {
        let facts = CallFacts {
            caller: "13912345678".into(),
            called: "12345".into(),
            tenant: "default".into(),
        };
        let interp = Interpreter::new(set, flow, facts).expect("flow");
        let now = Time::from_unix_secs(MONDAY_10AM);
        let core = FlowCore::start(interp, Arc::new(env), Arc::new(Loaded), false, now);
        let mut call = Call { core, now };
        let out = call.outputs();
        (call, out)
    }

    /// The 12345 line, answered: the welcome plays.
    fn welcomed(env: TestEnv) -> Self {
        let (mut call, out) = Call::on(sample_set(), "12345", env);
        assert_eq!(out.last(), Some(&Output::Answer), "{out:#?}");
        let out = call.input(Input::Answered(true));
        assert_eq!(out[0], Output::StartPlayer, "{out:#?}");
        call
    }

    /// The 12345 line; "1" at the welcome: the caller waits for an agent.
    fn queued() -> Self {
        let mut call = Call::welcomed(TestEnv::default());
        let out = call.key('1');
        assert!(
            matches!(out.last(), Some(Output::Connect { .. })),
            "{out:#?}"
        );
        call
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.core.poll_output()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.core.handle_input(self.now, input);
        self.outputs()
    }

    fn key(&mut self, k: char) -> Vec<Output> {
        self.input(Input::Player(PlayerEvent::Key(k)))
    }

    fn finished(&mut self) -> Vec<Output> {
        self.input(Input::Player(PlayerEvent::Finished("p".into())))
    }

    /// Time passes by `d`: the flow's timer fires if due.
    fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.outputs()
    }

    /// Play every prompt to its end and let every timer fire, until an
    /// output matches `what` (bounded).
    fn until(&mut self, what: impl Fn(&Output) -> bool) -> Vec<Output> {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let out = match self.core.poll_timeout() {
                Some(at) if !seen.iter().any(|o| matches!(o, Output::Play { .. })) => {
                    let d = at.saturating_duration_since(self.now);
                    self.advance(d)
                }
                _ => self.finished(),
            };
            let done = out.iter().any(&what);
            seen = out.clone();
            if done {
                return out;
            }
            if self.core.outcome().is_some() {
                break;
            }
        }
        panic!("never came: {seen:#?}");
    }

    fn outcome(&self) -> Option<&Outcome> {
        self.core.outcome()
    }
}

fn played(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Play { prompts, .. } => Some(prompts.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn nodes(out: &[Output]) -> Vec<&str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Record(Fact::Step { node, .. }) => Some(node.as_str()),
            _ => None,
        })
        .collect()
}

fn surveyed(out: &[Output]) -> Vec<(u8, char)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Record(Fact::Survey { score, key, .. }) => Some((*score, *key)),
            _ => None,
        })
        .collect()
}

fn talked(caller_continues: bool) -> Input {
    Input::Connected(Connected::Talked {
        agent: "A01".into(),
        caller_continues,
    })
}

#[test]
fn the_welcome_waits_for_the_answer() {
    let (mut call, out) = Call::on(sample_set(), "12345", TestEnv::default());
    assert_eq!(nodes(&out), ["welcome"]);
    assert_eq!(out.last(), Some(&Output::Answer));
    assert!(played(&out).is_empty(), "nothing plays before the answer");
    assert_eq!(call.core.poll_timeout(), None);
    let out = call.input(Input::Answered(true));
    assert_eq!(
        out,
        [
            Output::StartPlayer,
            Output::Play {
                prompts: vec!["ivr_12345_welcome".into()],
                interruptible: true
            }
        ]
    );
}

#[test]
fn a_caller_gone_before_the_answer_hears_nothing() {
    let (mut call, _) = Call::on(sample_set(), "12345", TestEnv::default());
    let out = call.input(Input::Answered(false));
    assert_eq!(out, [Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::CallerCancelled));
    assert!(call.finished().is_empty());
}

#[test]
fn the_menu_key_queues_the_caller_with_what_the_flow_learnt() {
    let mut call = Call::welcomed(TestEnv::default());
    let out = call.key('1');
    assert_eq!(out[0], Output::StopPlayback, "the key cut the welcome");
    assert_eq!(
        nodes(&out),
        ["blocked", "area", "hours", "menu", "consult", "q_general"]
    );
    let n = out.len();
    assert_eq!(out[n - 4], Output::Record(Fact::AgentRequested));
    match &out[n - 3] {
        Output::Record(Fact::IvrVars(vars)) => {
            assert_eq!(vars.get("line").map(String::as_str), Some("consult"));
            assert_eq!(vars.get("area_code").map(String::as_str), Some("0571"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        out[n - 2],
        Output::EndPlay,
        "the player is given back first"
    );
    assert_eq!(
        out[n - 1],
        Output::Connect {
            dest: Dest::Queue {
                group: "general".into(),
                priority: 0,
                max_wait: Some(Duration::from_secs(120)),
            },
            keep_caller: true,
        }
    );
    assert_eq!(call.core.poll_timeout(), None, "no flow timer while queued");
}

#[test]
fn a_key_pressed_before_the_hand_over_is_not_read_by_the_survey() {
    let mut call = Call::queued();
    // News of the player given back, read after the hand-over.
    assert!(call.key('1').is_empty());
    assert!(call.finished().is_empty());
    assert!(call
        .input(Input::Player(PlayerEvent::Interrupted("p".into())))
        .is_empty());
    let out = call.input(talked(true));
    assert_eq!(nodes(&out)[0], "survey");
    assert!(out.contains(&Output::StartPlayer), "{out:#?}");
    assert!(surveyed(&out).is_empty(), "{out:#?}");
    // The intro plays to its end: no stale key answered the question.
    let out = call
        .until(|o| matches!(o, Output::Play { prompts, .. } if prompts[0] == "survey_attitude"));
    assert!(surveyed(&out).is_empty(), "{out:#?}");
}

#[test]
fn the_survey_scores_the_keys_pressed_after_the_agent() {
    let mut call = Call::queued();
    call.input(talked(true));
    call.until(|o| matches!(o, Output::Play { prompts, .. } if prompts[0] == "survey_attitude"));
    let out = call.key('1');
    assert_eq!(surveyed(&out), [(5, '1')]);
    let out = call.key('3');
    assert_eq!(surveyed(&out), [(1, '3')]);
    let out = call.key('2');
    assert_eq!(surveyed(&out), [(1, '2')]);
    // Thanks, then the goodbye and BYE.
    let out = call.until(|o| *o == Output::Bye);
    assert_eq!(out[out.len() - 1], Output::Forget);
    assert_eq!(call.outcome(), Some(&Outcome::FlowEnded("normal".into())));
}

#[test]
fn a_conversation_that_ends_the_call_ends_the_flow() {
    let mut call = Call::queued();
    let out = call.input(talked(false));
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(call.outcome(), Some(&Outcome::Answered));
}

#[test]
fn the_caller_hanging_up_in_a_prompt_gives_the_player_back_and_forgets_the_leg() {
    let mut call = Call::welcomed(TestEnv::default());
    let out = call.input(Input::CallerHungUp);
    assert_eq!(out, [Output::EndPlay, Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::CallerCancelled));
    assert_eq!(call.core.poll_timeout(), None);
    assert!(call.key('1').is_empty());
}

#[test]
fn the_caller_hanging_up_in_the_queue_ends_the_call() {
    let mut call = Call::queued();
    let out = call.input(Input::Connected(Connected::CallerGone));
    assert_eq!(out, [Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::CallerCancelled));
}

#[test]
fn a_callback_chosen_in_the_queue_ends_the_call() {
    let mut call = Call::queued();
    let out = call.input(Input::Connected(Connected::CallbackRequested));
    assert_eq!(out, [Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::CallbackRequested));
}

#[test]
fn the_queue_timing_out_sends_the_caller_to_voicemail() {
    let mut call = Call::queued();
    let out = call.input(Input::Connected(Connected::Failed(QueueOutcome::Timeout)));
    assert_eq!(nodes(&out), ["vm"]);
    assert_eq!(out[1], Output::StartPlayer, "a new player after the queue");
    assert_eq!(played(&out), ["ivr_voicemail"]);
    let out = call.finished();
    assert!(
        matches!(out.last(), Some(Output::RecordVoicemail { .. })),
        "{out:#?}"
    );
}

#[test]
fn a_full_queue_says_busy_and_hangs_up() {
    let mut call = Call::queued();
    let out = call.input(Input::Connected(Connected::Failed(QueueOutcome::Overflow)));
    assert_eq!(nodes(&out), ["busy"]);
    assert_eq!(played(&out), ["ivr_busy"]);
    let out = call.finished();
    assert_eq!(out, [Output::EndPlay, Output::Bye, Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::FlowEnded("normal".into())));
}

#[test]
fn a_late_connection_or_answer_result_is_ignored() {
    let mut call = Call::welcomed(TestEnv::default());
    assert!(call.input(talked(true)).is_empty());
    assert!(call.input(Input::Answered(false)).is_empty());
    assert_eq!(call.outcome(), None);
}

/// After hours: the closed-line prompt, then the voicemail.
fn recording_voicemail() -> Call {
    let mut call = Call::welcomed(TestEnv {
        open: false,
        ..TestEnv::default()
    });
    let out = call.until(|o| matches!(o, Output::RecordVoicemail { .. }));
    assert!(nodes(&out).contains(&"vm") || played(&out).is_empty());
    call
}

#[test]
fn a_saved_voicemail_is_recorded_and_the_flow_says_goodbye() {
    let mut call = recording_voicemail();
    let out = call.input(Input::Player(PlayerEvent::Voicemail {
        path: Some("/var/vm/default/x.wav".into()),
        secs: 4,
    }));
    assert_eq!(
        out[0],
        Output::Record(Fact::Voicemail {
            path: "/var/vm/default/x.wav".into(),
            secs: 4
        })
    );
    assert_eq!(played(&out), ["ivr_goodbye"]);
    let out = call.finished();
    assert_eq!(out, [Output::EndPlay, Output::Bye, Output::Forget]);
}

#[test]
fn an_empty_voicemail_records_nothing_and_the_flow_goes_on() {
    let mut call = recording_voicemail();
    let out = call.input(Input::Player(PlayerEvent::Voicemail {
        path: None,
        secs: 0,
    }));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Record(Fact::Voicemail { .. }))),
        "{out:#?}"
    );
    assert_eq!(played(&out), ["ivr_goodbye"]);
}

#[test]
fn a_caller_who_hangs_up_after_speaking_keeps_the_message() {
    let mut call = recording_voicemail();
    let out = call.input(Input::CallerHungUp);
    assert_eq!(out, [Output::EndPlay, Output::Forget]);
    // The player finished the message as it was given back.
    let out = call.input(Input::Player(PlayerEvent::Voicemail {
        path: Some("/var/vm/x.wav".into()),
        secs: 6,
    }));
    assert_eq!(
        out,
        [Output::Record(Fact::Voicemail {
            path: "/var/vm/x.wav".into(),
            secs: 6
        })]
    );
    assert_eq!(call.outcome(), Some(&Outcome::CallerCancelled));
}

#[test]
fn no_key_at_the_menu_offers_it_again_then_falls_back_to_the_queue() {
    let mut call = Call::welcomed(TestEnv::default());
    let out = call.finished();
    assert_eq!(played(&out), ["ivr_12345_menu"]);
    let out = call.finished();
    assert!(out.is_empty(), "{out:#?}");
    let at = call.core.poll_timeout().expect("the menu's timer");
    assert_eq!(
        at.saturating_duration_since(call.now),
        Duration::from_secs(5)
    );
    // Not due yet: nothing.
    assert!(call.advance(Duration::from_secs(4)).is_empty());
    let out = call.advance(Duration::from_secs(1));
    assert_eq!(played(&out)[0], "ivr_no_input");
    let out = call.until(|o| matches!(o, Output::Connect { .. }));
    assert!(nodes(&out).contains(&"q_general"), "{out:#?}");
}

#[test]
fn a_blocked_caller_hears_the_block_prompt_and_is_hung_up() {
    let mut call = Call::welcomed(TestEnv {
        blocked: true,
        ..TestEnv::default()
    });
    let out = call.finished();
    assert!(out.contains(&Output::Record(Fact::Blocked)), "{out:#?}");
    assert_eq!(played(&out), ["ivr_blocked"]);
    let out = call.finished();
    assert_eq!(out, [Output::EndPlay, Output::Bye, Output::Forget]);
    assert_eq!(call.outcome(), Some(&Outcome::FlowEnded("blocked".into())));
}

#[test]
fn a_blocked_caller_is_refused_603_without_being_answered() {
    let set = set_of(&[(
        "b",
        r#"
name = "b"
entry = "blocked"
[nodes.blocked]
kind = "blacklist"
next = "q"
[nodes.q]
kind = "queue"
group = "general"
"#,
    )]);
    let env = TestEnv {
        blocked: true,
        ..TestEnv::default()
    };
    let (call, out) = Call::on(set, "b", env);
    assert!(!out.contains(&Output::Answer), "{out:#?}");
    assert_eq!(
        out[out.len() - 3..],
        [
            Output::Record(Fact::Blocked),
            Output::Reject(603),
            Output::Forget
        ]
    );
    assert_eq!(call.outcome(), Some(&Outcome::FlowEnded("blocked".into())));
}

#[test]
fn a_transfer_that_fails_goes_to_the_flows_on_fail_without_an_answer() {
    let set = set_of(&[("t", TRANSFER)]);
    let (mut call, out) = Call::on(set, "t", TestEnv::default());
    assert!(!out.contains(&Output::Answer));
    assert!(
        !out.contains(&Output::Record(Fact::AgentRequested)),
        "a number is no agent"
    );
    assert_eq!(
        out.last(),
        Some(&Output::Connect {
            dest: Dest::Number {
                number: "110".into(),
                trunk: Some("carrier".into())
            },
            keep_caller: false
        })
    );
    let out = call.input(Input::Connected(Connected::Failed(QueueOutcome::Timeout)));
    assert!(out.contains(&Output::Record(Fact::AgentRequested)));
    assert_eq!(
        out.last(),
        Some(&Output::Connect {
            dest: Dest::Agent("1001".into()),
            keep_caller: false
        })
    );
    // Reached: the call is the agent's now, whatever it does next.
    let out = call.input(talked(true));
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(call.outcome(), Some(&Outcome::Answered));
}

#[test]
fn a_missing_prompt_is_skipped_and_the_flow_goes_on() {
    let set = set_of(&[(
        "m",
        r#"
name = "m"
entry = "hello"
[nodes.hello]
kind = "play"
prompts = ["missing_hello"]
next = "bye"
[nodes.bye]
kind = "hangup"
"#,
    )]);
    let (mut call, _) = Call::on(set, "m", TestEnv::default());
    let out = call.input(Input::Answered(true));
    assert!(played(&out).is_empty(), "{out:#?}");
    assert_eq!(nodes(&out), ["bye"]);
    assert_eq!(out[out.len() - 2..], [Output::Bye, Output::Forget]);
}

#[test]
fn an_info_key_goes_to_the_player_only_while_it_plays() {
    use crate::media::dtmf::DtmfKey;
    let key = DtmfKey::from_char('5').expect("key");
    let (mut call, _) = Call::on(sample_set(), "12345", TestEnv::default());
    assert!(call.input(Input::InfoKey(key)).is_empty(), "no player yet");
    call.input(Input::Answered(true));
    assert_eq!(call.input(Input::InfoKey(key)), [Output::InfoKey(key)]);
    let mut call = Call::queued();
    assert!(call.input(Input::InfoKey(key)).is_empty(), "given back");
}

#[test]
fn shutdown_before_the_answer_refuses_503() {
    let (mut call, _) = Call::on(sample_set(), "12345", TestEnv::default());
    let out = call.input(Input::Shutdown);
    assert_eq!(
        out,
        [
            Output::Record(Fact::Shutdown { refused: Some(503) }),
            Output::Reject(503),
            Output::Forget
        ]
    );
}

#[test]
fn shutdown_in_a_prompt_gives_the_player_back_and_says_bye() {
    let mut call = Call::welcomed(TestEnv::default());
    let out = call.input(Input::Shutdown);
    assert_eq!(
        out,
        [
            Output::EndPlay,
            Output::Record(Fact::Shutdown { refused: None }),
            Output::Bye,
            Output::Forget
        ]
    );
    assert_eq!(call.outcome(), Some(&Outcome::CallerCancelled));
}

/// What the shell is holding for the core, checked against its outputs.
#[derive(Default)]
struct Shell {
    answer_asked: bool,
    answered: bool,
    playing: bool,
    connecting: bool,
    ended: bool,
    forgotten: bool,
    /// What the run went through (for the coverage check).
    seen: std::collections::BTreeSet<&'static str>,
}

impl Shell {
    /// Check `out` against the rules; `over` the core has an outcome.
    fn check(&mut self, out: &[Output], seed: u64) {
        for o in out {
            self.seen.insert(match o {
                Output::Connect { .. } => "connect",
                Output::RecordVoicemail { .. } => "voicemail",
                Output::Record(Fact::Survey { .. }) => "survey",
                Output::Record(Fact::Blocked) => "blocked",
                Output::Reject(_) => "reject",
                Output::Bye => "bye",
                _ => "other",
            });
            assert!(
                !self.forgotten || matches!(o, Output::Record(Fact::Voicemail { .. })),
                "seed {seed}: {o:?} after the leg was released"
            );
            match o {
                Output::Answer => {
                    assert!(
                        !self.answered && !self.answer_asked,
                        "seed {seed}: answered twice"
                    );
                    self.answer_asked = true;
                }
                Output::StartPlayer => {
                    assert!(self.answered, "seed {seed}: a player before the answer");
                    assert!(!self.playing, "seed {seed}: two players");
                    self.playing = true;
                }
                Output::Play { prompts, .. } => {
                    assert!(self.playing, "seed {seed}: played with no player");
                    assert!(!prompts.is_empty(), "seed {seed}: an empty batch");
                }
                Output::RecordVoicemail { .. } | Output::StopPlayback | Output::InfoKey(_) => {
                    assert!(self.playing, "seed {seed}: {o:?} with no player");
                }
                Output::EndPlay => {
                    assert!(self.playing, "seed {seed}: gave back no player");
                    self.playing = false;
                }
                Output::Connect { .. } => {
                    assert!(
                        !self.playing,
                        "seed {seed}: connected with the player running"
                    );
                    assert!(!self.connecting, "seed {seed}: two connections");
                    self.connecting = true;
                }
                Output::Bye | Output::Reject(_) => {
                    assert!(!self.ended, "seed {seed}: hung up twice");
                    assert_eq!(
                        matches!(o, Output::Bye),
                        self.answered,
                        "seed {seed}: BYE means answered, a status means not"
                    );
                    self.ended = true;
                }
                Output::Forget => self.forgotten = true,
                Output::Record(_) | Output::Lookup(_) => {}
            }
        }
    }
}

/// An `http` node first in the flow: its request goes out at once, before
/// the call is answered for the hold prompt, and an answer that comes back
/// while the answer is still awaited is not lost: the read-back follows
/// the hold prompt, in order.
#[test]
fn a_lookup_goes_out_before_the_answer_and_its_result_waits_for_it() {
    const LOOKUP: &str = r#"
name = "lookup"
entry = "ask"
[nodes.ask]
kind = "http"
url = "http://127.0.0.1:9/t/{caller}"
hold_prompt = "wait"
set = { n = "n" }
next = "say"
[nodes.say]
kind = "say"
value = "{var:n}"
as = "number"
"#;
    let (mut call, out) = Call::on(set_of(&[("lookup", LOOKUP)]), "lookup", TestEnv::default());
    let Some(Output::Lookup(request)) = out.iter().find(|o| matches!(o, Output::Lookup(_))) else {
        panic!("no request: {out:#?}");
    };
    assert_eq!(request.url, "http://127.0.0.1:9/t/13912345678");
    assert_eq!(out.last(), Some(&Output::Answer), "{out:#?}");
    let id = request.id;
    let out = call.input(Input::Lookup {
        id,
        outcome: crate::ivr::HttpOutcome::Response {
            status: 200,
            body: r#"{"n":15}"#.into(),
        },
    });
    assert!(
        !out.iter().any(|o| matches!(o, Output::Play { .. })),
        "nothing plays before the answer: {out:#?}"
    );
    let out = call.input(Input::Answered(true));
    let played: Vec<&Vec<String>> = out
        .iter()
        .filter_map(|o| match o {
            Output::Play { prompts, .. } => Some(prompts),
            _ => None,
        })
        .collect();
    assert_eq!(
        played.last().map(|p| p.as_slice()),
        Some(&["num_10".to_string(), "num_5".to_string()][..]),
        "{out:#?}"
    );
    // 十 and 五 end.
    call.finished();
    let out = call.finished();
    assert_eq!(
        call.outcome(),
        Some(&Outcome::FlowEnded("flow-end".into())),
        "{out:#?}"
    );
}

/// Thousands of seeded runs of the 12345 line with random news (keys,
/// prompt ends, time, hang-ups, connection results, shutdown), each
/// checked against what a shell may see: one answer before any prompt,
/// one player at a time and none while connecting, one connection at a
/// time, one hang-up matching the answer, nothing after the leg is
/// released but a voicemail's record, and every run ending with the leg
/// released and no player left running.
#[test]
fn random_news_never_breaks_the_shells_rules() {
    let set = set_of(&[("12345", MAIN), ("survey", SURVEY)]);
    let mut covered = std::collections::BTreeSet::new();
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 1..=3_000u64 {
        let mut rng = Rng::seeded(seed);
        let env = TestEnv {
            open: rng.below(4) != 0,
            blocked: rng.below(10) == 0,
            ..TestEnv::default()
        };
        let (mut call, out) = Call::on(set.clone(), "12345", env);
        let mut shell = Shell::default();
        shell.check(&out, seed);
        for _ in 0..200 {
            if call.outcome().is_some() {
                break;
            }
            let input = if shell.answer_asked && !shell.answered && rng.below(30) == 0 {
                // Shut down while the answer is out: refused, not BYE.
                Some(Input::Shutdown)
            } else if shell.answer_asked && !shell.answered {
                let ok = rng.below(20) != 0;
                shell.answer_asked = false;
                shell.answered = ok;
                Some(Input::Answered(ok))
            } else if shell.connecting {
                shell.connecting = false;
                Some(Input::Connected(match rng.below(6) {
                    0 => Connected::CallerGone,
                    1 => Connected::CallbackRequested,
                    2 => Connected::Failed(QueueOutcome::Timeout),
                    3 => Connected::Failed(QueueOutcome::Overflow),
                    4 => Connected::Talked {
                        agent: "A01".into(),
                        caller_continues: false,
                    },
                    _ => Connected::Talked {
                        agent: "A01".into(),
                        caller_continues: true,
                    },
                }))
            } else {
                match rng.below(12) {
                    0..=3 => Some(Input::Player(PlayerEvent::Finished("p".into()))),
                    4..=6 => {
                        let k = b"0123456789*#"[rng.below(12) as usize] as char;
                        Some(Input::Player(PlayerEvent::Key(k)))
                    }
                    7 => Some(Input::Player(PlayerEvent::Voicemail {
                        path: (rng.below(2) == 0).then(|| "/vm/x.wav".to_string()),
                        secs: 3,
                    })),
                    8 | 9 => None,
                    10 => (rng.below(15) == 0).then_some(Input::CallerHungUp),
                    _ => (rng.below(40) == 0).then_some(Input::Shutdown),
                }
            };
            let out = match input {
                Some(i) => call.input(i),
                None => match call.core.poll_timeout() {
                    Some(at) => {
                        let d = at.saturating_duration_since(call.now);
                        call.advance(d)
                    }
                    None => call.advance(Duration::from_secs(1)),
                },
            };
            shell.check(&out, seed);
        }
        if call.outcome().is_none() {
            // Still in the flow after 200 steps (a long survey): the
            // caller hangs up.
            let out = call.input(Input::CallerHungUp);
            shell.check(&out, seed);
        }
        assert!(call.outcome().is_some(), "seed {seed}: no outcome");
        assert!(!shell.playing, "seed {seed}: a player left running");
        let released = shell.forgotten || matches!(call.outcome(), Some(Outcome::Answered));
        assert!(
            released,
            "seed {seed}: the leg was not released: {:?}",
            call.outcome()
        );
        covered.extend(shell.seen);
        outcomes.insert(format!("{:?}", call.outcome()));
    }
    // The runs went everywhere a call can go.
    for path in ["connect", "voicemail", "survey", "blocked", "reject", "bye"] {
        assert!(covered.contains(path), "no run reached {path}: {covered:?}");
    }
    assert!(outcomes.len() >= 5, "{outcomes:?}");
}
