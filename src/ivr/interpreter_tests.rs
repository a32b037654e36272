//! Interpreter tests with virtual time and the sample 12345 flows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::ivr::testkit::{flow, sample_set, set_of, TestEnv, TRANSFER};

/// 2024-06-03 10:00 Beijing time, a Monday.
const MONDAY_10AM: u64 = 1_717_380_000;

struct Call {
    it: Interpreter,
    env: TestEnv,
    now: Time,
    timer: Option<TimerId>,
}

impl Call {
    fn on(set: Arc<FlowSet>, flow: &str, env: TestEnv) -> (Self, Vec<Action>) {
        let facts = CallFacts {
            caller: "13912345678".into(),
            called: "12345".into(),
            tenant: "default".into(),
        };
        let it = Interpreter::new(set, flow, facts).unwrap();
        let mut call = Call {
            it,
            env,
            now: Time::from_unix_secs(MONDAY_10AM),
            timer: None,
        };
        let actions = call.it.start(call.now, &call.env);
        call.track(&actions);
        (call, actions)
    }

    fn main(env: TestEnv) -> (Self, Vec<Action>) {
        Self::on(sample_set(), "12345", env)
    }

    fn track(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::StartTimer { id, .. } => {
                    assert!(self.timer.is_none(), "two live timers in {actions:?}");
                    self.timer = Some(*id);
                }
                Action::CancelTimer(id) => {
                    assert_eq!(self.timer, Some(*id), "cancel of a dead timer");
                    self.timer = None;
                }
                _ => {}
            }
        }
    }

    fn ev(&mut self, event: Event) -> Vec<Action> {
        self.now += Duration::from_secs(1);
        let actions = self.it.handle(event, self.now, &self.env);
        self.track(&actions);
        actions
    }

    fn done(&mut self) -> Vec<Action> {
        self.ev(Event::PromptFinished)
    }

    fn key(&mut self, k: char) -> Vec<Action> {
        self.ev(Event::Key(k))
    }

    fn fire(&mut self) -> Vec<Action> {
        let id = self.timer.take().expect("a live timer");
        self.ev(Event::Timer(id))
    }
}

fn steps(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Step { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect()
}

fn plays(actions: &[Action]) -> Vec<Vec<&str>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Play { prompts, .. } => Some(prompts.iter().map(String::as_str).collect()),
            _ => None,
        })
        .collect()
}

fn hangup(actions: &[Action]) -> Option<HangupReason> {
    actions.iter().find_map(|a| match a {
        Action::Hangup { reason } => Some(*reason),
        _ => None,
    })
}

/// Walks the main flow to the menu prompt (open, not blocked).
fn to_menu() -> Call {
    let (mut call, _) = Call::main(TestEnv::default());
    let a = call.done();
    assert_eq!(steps(&a), ["blocked", "area", "hours", "menu"]);
    call
}

#[test]
fn start_answers_then_plays_welcome() {
    let (call, a) = Call::main(TestEnv::default());
    let version = call.it.version().to_string();
    assert_eq!(version.len(), 12);
    assert_eq!(
        a,
        vec![
            Action::Step {
                flow: "12345".into(),
                version,
                node: "welcome".into(),
                kind: "play",
            },
            Action::Answer,
            Action::Play {
                prompts: vec!["ivr_12345_welcome".into()],
                interruptible: true,
            },
        ]
    );
    assert_eq!(call.it.vars()["caller"], "13912345678");
    assert_eq!(call.it.vars()["called"], "12345");
}

#[test]
fn open_menu_consult_queue_agent_survey_goodbye() {
    let mut call = to_menu();
    assert_eq!(call.it.vars()["area_code"], "0571");
    assert_eq!(call.it.vars()["area_name"], "杭州市");
    let a = call.done();
    assert!(matches!(a[..], [Action::StartTimer { after_ms: 5000, .. }]));
    let a = call.key('1');
    assert_eq!(steps(&a), ["consult", "q_general"]);
    assert!(a.contains(&Action::Enqueue {
        group: "general".into(),
        priority: 0,
        max_wait_secs: Some(120),
    }));
    assert_eq!(call.it.vars()["menu_menu"], "1");
    assert_eq!(call.it.vars()["line"], "consult");
    assert!(call.key('5').is_empty(), "keys ignored in the queue");
    let a = call.ev(Event::QueueResult(QueueOutcome::Answered {
        agent: "1001".into(),
    }));
    assert!(a.is_empty());
    assert_eq!(call.it.vars()["agent"], "1001");
    let a = call.ev(Event::AgentHungUp);
    assert_eq!(steps(&a), ["survey", "ask"]);
    assert_eq!(plays(&a), [["survey_intro"]]);
    assert_eq!(call.it.current_flow(), "survey");
    let a = call.done();
    assert_eq!(plays(&a), [["survey_attitude"]]);
    let a = call.key('1');
    assert!(a.contains(&Action::SurveyScore {
        dimension: "attitude".into(),
        score: 5,
        key: '1',
    }));
    assert_eq!(plays(&a), [["survey_efficiency"]]);
    call.done();
    let a = call.key('2');
    assert!(a.contains(&Action::SurveyScore {
        dimension: "efficiency".into(),
        score: 3,
        key: '2',
    }));
    let a = call.key('2'); // during the resolution prompt: interrupts it
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(plays(&a), [["survey_thanks"]]);
    let a = call.done();
    assert_eq!(steps(&a), ["bye"]);
    assert_eq!(call.it.current_flow(), "12345");
    assert_eq!(plays(&a), [["ivr_goodbye"]]);
    let a = call.done();
    assert_eq!(
        a,
        vec![Action::Hangup {
            reason: HangupReason::Normal
        }]
    );
    assert!(call.it.is_finished());
    assert_eq!(call.it.survey_scores().len(), 3);
    assert_eq!(call.it.survey_scores()["resolution"], 1);
    assert_eq!(
        call.it.path(),
        [
            "welcome",
            "blocked",
            "area",
            "hours",
            "menu",
            "consult",
            "q_general",
            "survey",
            "survey/ask",
            "bye"
        ]
    );
    assert!(call.done().is_empty());
}

#[test]
fn closed_goes_to_voicemail() {
    let env = TestEnv {
        open: false,
        ..TestEnv::default()
    };
    let (mut call, _) = Call::main(env);
    let a = call.done();
    assert_eq!(steps(&a), ["blocked", "area", "hours", "after_hours"]);
    let a = call.done();
    assert_eq!(steps(&a), ["vm"]);
    assert_eq!(plays(&a), [["ivr_voicemail"]]);
    assert!(call.key('1').is_empty());
    let a = call.done();
    assert_eq!(
        a,
        vec![Action::RecordVoicemail {
            beep: true,
            max_secs: 120,
            silence_secs: 5
        }]
    );
    let a = call.ev(Event::VoicemailSaved {
        path: "vm/1.wav".into(),
        secs: 12,
    });
    assert_eq!(steps(&a), ["bye"]);
    assert_eq!(call.it.vars()["voicemail_path"], "vm/1.wav");
    assert_eq!(call.it.vars()["voicemail_secs"], "12");
}

#[test]
fn blocked_caller_hears_prompt_and_is_hung_up() {
    let env = TestEnv {
        blocked: true,
        ..TestEnv::default()
    };
    let (mut call, _) = Call::main(env);
    let a = call.done();
    assert_eq!(steps(&a), ["blocked"]);
    assert!(a.contains(&Action::Blocked));
    assert_eq!(plays(&a), [["ivr_blocked"]]);
    let a = call.done();
    assert_eq!(hangup(&a), Some(HangupReason::Blocked));
    assert!(call.it.is_finished());
}

#[test]
fn blocked_without_prompt_does_not_answer() {
    let set = set_of(&[(
        "b",
        r#"
name = "b"
entry = "bl"
[nodes.bl]
kind = "blacklist"
next = "bye"
[nodes.bye]
kind = "hangup"
"#,
    )]);
    let env = TestEnv {
        blocked: true,
        ..TestEnv::default()
    };
    let (_, a) = Call::on(set.clone(), "b", env);
    assert!(!a.contains(&Action::Answer));
    assert_eq!(hangup(&a), Some(HangupReason::Blocked));
    let (_, a) = Call::on(set, "b", TestEnv::default());
    assert_eq!(
        a.last(),
        Some(&Action::Hangup {
            reason: HangupReason::Normal
        })
    );
    assert!(!a.contains(&Action::Answer));
}

#[test]
fn menu_timeouts_then_fallback() {
    let mut call = to_menu();
    for offer in 1..=3 {
        call.done(); // menu prompt ends
        let a = call.fire();
        assert_eq!(plays(&a), [["ivr_no_input"]], "offer {offer}");
        let a = call.done();
        if offer < 3 {
            assert_eq!(plays(&a), [["ivr_12345_menu"]]);
        } else {
            assert_eq!(steps(&a), ["q_general"]);
        }
    }
}

#[test]
fn menu_invalid_then_valid_key() {
    let mut call = to_menu();
    let a = call.key('7'); // during the prompt
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(plays(&a), [["ivr_invalid"]]);
    let a = call.done();
    assert_eq!(plays(&a), [["ivr_12345_menu"]]);
    call.done();
    let a = call.key('3');
    assert!(matches!(a[0], Action::CancelTimer(_)));
    assert_eq!(steps(&a), ["enterprise", "q_enterprise"]);
}

#[test]
fn key_during_notice_is_the_next_choice() {
    let mut call = to_menu();
    call.key('8');
    let a = call.key('2'); // cuts the invalid notice, counts for offer 2
    assert_eq!(steps(&a), ["complaint"]);
    assert_eq!(plays(&a), [["ivr_enter_ticket"]]);
}

#[test]
fn menu_without_fallback_hangs_up_no_input() {
    let set = set_of(&[(
        "m",
        r#"
name = "m"
entry = "menu"
[nodes.menu]
kind = "menu"
prompts = ["p"]
retries = 2
options = { "1" = "bye" }
[nodes.bye]
kind = "hangup"
"#,
    )]);
    let (mut call, _) = Call::on(set, "m", TestEnv::default());
    call.key('5');
    let a = call.key('6');
    assert_eq!(hangup(&a), Some(HangupReason::NoInput));
}

#[test]
fn type_ahead_from_welcome_picks_emergency_lane() {
    let (mut call, _) = Call::main(TestEnv::default());
    let a = call.key('9');
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(steps(&a), ["blocked", "area", "hours", "menu", "emergency"]);
    assert!(plays(&a).is_empty(), "menu prompt skipped: {a:?}");
    assert!(a.contains(&Action::Enqueue {
        group: "general".into(),
        priority: 9,
        max_wait_secs: None,
    }));
}

#[test]
fn type_ahead_feeds_collect() {
    let (mut call, _) = Call::main(TestEnv::default());
    call.key('2');
    // '2' interrupted welcome and chose complaint; the collect prompt plays.
    for k in "1234567".chars() {
        call.key(k);
    }
    let a = call.key('#');
    assert_eq!(steps(&a), ["mark_complaint", "q_complaint"]);
    assert_eq!(call.it.vars()["ticket_no"], "1234567");
    assert_eq!(call.it.vars()["ref"], "13912345678-1234567");
}

#[test]
fn non_interruptible_play_keeps_keys_for_the_menu() {
    let set = set_of(&[(
        "t",
        r#"
name = "t"
entry = "hello"
[nodes.hello]
kind = "play"
prompts = ["hello"]
next = "menu"
[nodes.menu]
kind = "menu"
prompts = ["menu"]
options = { "1" = "id", "2" = "bye" }
[nodes.id]
kind = "collect"
prompts = ["id"]
var = "id"
max_digits = 4
next = "bye"
[nodes.bye]
kind = "hangup"
"#,
    )]);
    let (mut call, _) = Call::on(set, "t", TestEnv::default());
    for k in "1987".chars() {
        assert!(call.key(k).is_empty(), "prompt not cut");
    }
    let a = call.done();
    assert_eq!(steps(&a), ["menu", "id"]);
    assert!(plays(&a).is_empty());
    assert!(matches!(a.last(), Some(Action::StartTimer { .. })));
    let a = call.key('6');
    assert_eq!(steps(&a), ["bye"]);
    assert_eq!(call.it.vars()["id"], "9876");
}

#[test]
fn collect_pattern_failure_retries_then_fallback() {
    let mut call = to_menu();
    call.key('2');
    for k in "12#".chars() {
        call.key(k);
    }
    // too short: invalid prompt, then the second (last) offer
    let a = call.done();
    assert_eq!(plays(&a), [["ivr_enter_ticket"]]);
    call.done();
    let a = call.fire(); // nothing entered
    assert_eq!(plays(&a), [["ivr_invalid"]]);
    let a = call.done();
    assert_eq!(steps(&a), ["mark_complaint", "q_complaint"]);
    assert!(!call.it.vars().contains_key("ticket_no"));
    assert_eq!(call.it.vars()["ref"], "13912345678-");
}

#[test]
fn collect_ends_on_inter_digit_timeout_and_on_max() {
    let mut call = to_menu();
    call.key('2');
    for k in "123456".chars() {
        call.key(k);
    }
    let a = call.fire();
    assert_eq!(steps(&a), ["mark_complaint", "q_complaint"]);
    assert_eq!(call.it.vars()["ticket_no"], "123456");

    let mut call = to_menu();
    call.key('2');
    let mut last = Vec::new();
    for k in "330106199001011234".chars() {
        last = call.key(k);
    }
    assert_eq!(steps(&last), ["mark_complaint", "q_complaint"]);
    assert_eq!(call.it.vars()["ticket_no"], "330106199001011234");
}

#[test]
fn stale_timer_and_stale_prompt_reports_are_ignored() {
    let mut call = to_menu();
    call.done();
    let stale = call.timer.unwrap();
    let a = call.key('4'); // invalid: timer cancelled, notice plays
    assert!(a.contains(&Action::CancelTimer(stale)));
    assert!(call.ev(Event::Timer(stale)).is_empty());
    assert!(call.ev(Event::Timer(TimerId(999))).is_empty());
    call.done();
    call.done(); // menu prompt over, timer live
    assert!(call.done().is_empty(), "nothing is playing");
}

#[test]
fn caller_hangup_finishes_silently() {
    let mut call = to_menu();
    assert!(call.ev(Event::CallerHungUp).is_empty());
    assert!(call.it.is_finished());
    assert!(call.key('1').is_empty());
    assert!(call.done().is_empty());
}

#[test]
fn queue_outcomes() {
    let mut call = to_menu();
    call.key('0');
    let a = call.ev(Event::QueueResult(QueueOutcome::Overflow));
    assert_eq!(steps(&a), ["busy"]);
    let a = call.done();
    assert_eq!(hangup(&a), Some(HangupReason::Normal));

    let mut call = to_menu();
    call.key('0');
    let a = call.ev(Event::QueueResult(QueueOutcome::Closed));
    assert_eq!(steps(&a), ["vm"]);

    let set = set_of(&[(
        "q",
        r#"
name = "q"
entry = "q"
[nodes.q]
kind = "queue"
group = "g"
"#,
    )]);
    let (mut call, a) = Call::on(set.clone(), "q", TestEnv::default());
    assert!(!a.contains(&Action::Answer), "queue does not answer");
    let a = call.ev(Event::QueueResult(QueueOutcome::Timeout));
    assert_eq!(hangup(&a), Some(HangupReason::Unavailable));
    let (mut call, _) = Call::on(set, "q", TestEnv::default());
    call.ev(Event::QueueResult(QueueOutcome::Answered {
        agent: "1".into(),
    }));
    let a = call.ev(Event::AgentHungUp);
    assert_eq!(hangup(&a), Some(HangupReason::Normal));
}

#[test]
fn transfer_fail_and_success() {
    let set = set_of(&[("t", TRANSFER)]);
    let (mut call, a) = Call::on(set, "t", TestEnv::default());
    assert_eq!(
        a.last(),
        Some(&Action::Transfer(TransferTarget::Number {
            number: "110".into(),
            trunk: Some("carrier".into())
        }))
    );
    let a = call.ev(Event::TransferResult { ok: false });
    assert_eq!(
        a.last(),
        Some(&Action::Transfer(TransferTarget::Agent("1001".into())))
    );
    let a = call.ev(Event::TransferResult { ok: true });
    assert!(a.is_empty());
    assert!(call.it.is_finished());
}

#[test]
fn survey_unknown_key_replays_once_and_timeout_skips() {
    let set = sample_set();
    let (mut call, a) = Call::on(set, "survey", TestEnv::default());
    assert_eq!(plays(&a), [["survey_intro"]]);
    assert!(call.key('1').is_empty(), "intro is not interruptible");
    call.done();
    let a = call.key('9');
    assert_eq!(plays(&a), [["survey_attitude"]], "replayed");
    let a = call.key('8');
    assert_eq!(
        plays(&a),
        [["survey_efficiency"]],
        "skipped after one replay"
    );
    call.done();
    let a = call.fire();
    assert_eq!(plays(&a), [["survey_resolution"]], "timeout skips");
    call.done();
    let a = call.key('1');
    assert_eq!(plays(&a), [["survey_thanks"]]);
    let a = call.done();
    assert_eq!(hangup(&a), Some(HangupReason::FlowEnd));
    assert_eq!(call.it.survey_scores().len(), 1);
}

#[test]
fn switch_on_time_and_weekdays_uses_local_time() {
    let set = set_of(&[(
        "s",
        r#"
name = "s"
entry = "sw"
[nodes.sw]
kind = "switch"
default = "other"
[[nodes.sw.case]]
weekdays = ["sat", "sun"]
next = "weekend"
[[nodes.sw.case]]
time = "22:00-08:00"
next = "night"
[[nodes.sw.case]]
caller_prefix = "139"
next = "mobile"
[nodes.weekend]
kind = "hangup"
[nodes.night]
kind = "hangup"
[nodes.mobile]
kind = "hangup"
[nodes.other]
kind = "hangup"
"#,
    )]);
    let run = |unix_secs: u64, offset: i32| {
        let env = TestEnv {
            offset,
            ..TestEnv::default()
        };
        let facts = CallFacts {
            caller: "13900000000".into(),
            called: "1".into(),
            tenant: "t".into(),
        };
        let mut it = Interpreter::new(set.clone(), "s", facts).unwrap();
        let a = it.start(Time::from_unix_secs(unix_secs), &env);
        steps(&a)[1].to_string()
    };
    assert_eq!(run(MONDAY_10AM, 480), "mobile");
    // Monday 23:30 Beijing.
    assert_eq!(run(MONDAY_10AM + 13 * 3600 + 1800, 480), "night");
    // Monday 07:59 Beijing.
    assert_eq!(run(MONDAY_10AM - 2 * 3600 - 60, 480), "night");
    // Monday 08:00 Beijing: end exclusive.
    assert_eq!(run(MONDAY_10AM - 2 * 3600, 480), "mobile");
    // Saturday.
    assert_eq!(run(MONDAY_10AM + 5 * 86_400, 480), "weekend");
    // Monday 10:00 Beijing is Monday 02:00 UTC; at UTC-3 it is Sunday 23:00.
    assert_eq!(run(MONDAY_10AM, -180), "weekend");
}

#[test]
fn runaway_loop_ends_with_error() {
    let looped = flow(
        "l",
        r#"
name = "l"
entry = "a"
[nodes.a]
kind = "set"
vars = { x = "1" }
next = "b"
[nodes.b]
kind = "area"
next = "a"
"#,
    );
    let set = Arc::new(FlowSet::unchecked(vec![looped]));
    let (call, a) = Call::on(set, "l", TestEnv::default());
    assert_eq!(hangup(&a), Some(HangupReason::Error));
    assert_eq!(steps(&a).len(), MAX_STEPS as usize);
    assert!(call.it.is_finished());
}

#[test]
fn subflow_recursion_is_cut_at_max_depth() {
    let rec = flow(
        "r",
        r#"
name = "r"
entry = "p"
[nodes.p]
kind = "play"
prompts = ["x"]
next = "again"
[nodes.again]
kind = "subflow"
flow = "r"
"#,
    );
    let set = Arc::new(FlowSet::unchecked(vec![rec]));
    let (mut call, _) = Call::on(set, "r", TestEnv::default());
    let mut last = Vec::new();
    for _ in 0..=MAX_DEPTH {
        last = call.done();
    }
    assert_eq!(hangup(&last), Some(HangupReason::Error));
}

#[test]
fn subflow_hangup_node_hangs_up_the_call_and_end_returns() {
    let set = set_of(&[
        (
            "main",
            r#"
name = "main"
dids = ["100"]
entry = "sub"
[nodes.sub]
kind = "subflow"
flow = "child"
next = "after"
[nodes.after]
kind = "play"
prompts = ["after"]
"#,
        ),
        (
            "child",
            r#"
name = "child"
entry = "c"
[nodes.c]
kind = "menu"
prompts = ["c"]
options = { "1" = "back", "2" = "bye" }
[nodes.back]
kind = "set"
vars = { from = "{called}" }
[nodes.bye]
kind = "hangup"
"#,
        ),
    ]);
    assert_eq!(set.for_did("100").map(|f| f.name.as_str()), Some("main"));
    assert!(set.for_did("12345").is_none());
    let (mut call, a) = Call::on(set.clone(), "main", TestEnv::default());
    assert_eq!(steps(&a), ["sub", "c"]);
    let a = call.key('1');
    assert_eq!(steps(&a), ["back", "after"]);
    assert_eq!(call.it.vars()["from"], "12345");
    assert_eq!(call.it.path(), ["sub", "child/c", "child/back", "after"]);
    let a = call.done();
    assert_eq!(hangup(&a), Some(HangupReason::FlowEnd));

    let (mut call, _) = Call::on(set, "main", TestEnv::default());
    let a = call.key('2');
    assert_eq!(hangup(&a), Some(HangupReason::Normal));
}

#[test]
fn unknown_flow_is_refused() {
    let facts = CallFacts {
        caller: "1".into(),
        called: "2".into(),
        tenant: "t".into(),
    };
    assert_eq!(
        Interpreter::new(sample_set(), "nope", facts).unwrap_err(),
        InterpreterError::UnknownFlow("nope".into())
    );
}

/// Events a shell could plausibly send, with timers chosen among the live
/// one and stale ids.
#[derive(Debug, Clone)]
enum Ev {
    Done,
    Interrupted,
    Key(char),
    LiveTimer,
    StaleTimer(u64),
    Queue(u8),
    AgentHungUp,
    Transfer(bool),
    Saved,
    Empty,
}

fn ev_strategy() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => Just(Ev::Done),
        1 => Just(Ev::Interrupted),
        4 => prop::sample::select(vec!['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A'])
            .prop_map(Ev::Key),
        3 => Just(Ev::LiveTimer),
        1 => (0u64..20).prop_map(Ev::StaleTimer),
        2 => (0u8..4).prop_map(Ev::Queue),
        1 => Just(Ev::AgentHungUp),
        1 => any::<bool>().prop_map(Ev::Transfer),
        1 => Just(Ev::Saved),
        1 => Just(Ev::Empty),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_events_never_break_the_interpreter(
        events in prop::collection::vec(ev_strategy(), 0..80),
        open in any::<bool>(),
        blocked in any::<bool>(),
        area in any::<bool>(),
        start_flow in prop::sample::select(vec!["12345", "survey"]),
    ) {
        let env = TestEnv {
            open,
            blocked,
            area: area.then(|| ("0571".to_string(), "杭州市".to_string())),
            offset: 480,
        };
        let facts = CallFacts {
            caller: "13912345678".into(),
            called: "12345".into(),
            tenant: "default".into(),
        };
        let mut it = Interpreter::new(sample_set(), start_flow, facts).unwrap();
        let mut now = Time::from_unix_secs(MONDAY_10AM);
        let mut live: BTreeSet<TimerId> = BTreeSet::new();
        let mut answered = 0;
        let mut ended = false;
        let mut check = |actions: &[Action], live: &mut BTreeSet<TimerId>, finished: bool| {
            prop_assert!(!ended || actions.is_empty(), "actions after the end: {:?}", actions);
            for a in actions {
                match a {
                    Action::StartTimer { id, .. } => { live.insert(*id); }
                    Action::CancelTimer(id) => { live.remove(id); }
                    Action::Answer => answered += 1,
                    Action::Hangup { .. } => ended = true,
                    _ => {}
                }
                prop_assert!(live.len() <= 1, "two live timers: {:?}", actions);
            }
            prop_assert!(answered <= 1);
            if ended { prop_assert!(finished); }
            if finished { ended = true; }
            Ok(())
        };
        let a = it.start(now, &env);
        check(&a, &mut live, it.is_finished())?;
        for e in events {
            now += Duration::from_secs(1);
            let event = match e {
                Ev::Done => Event::PromptFinished,
                Ev::Interrupted => Event::PromptInterrupted,
                Ev::Key(k) => Event::Key(k),
                Ev::LiveTimer => match live.iter().next() {
                    Some(id) => Event::Timer(*id),
                    None => continue,
                },
                Ev::StaleTimer(n) => Event::Timer(TimerId(n)),
                Ev::Queue(0) => Event::QueueResult(QueueOutcome::Answered { agent: "1001".into() }),
                Ev::Queue(1) => Event::QueueResult(QueueOutcome::Timeout),
                Ev::Queue(2) => Event::QueueResult(QueueOutcome::Overflow),
                Ev::Queue(_) => Event::QueueResult(QueueOutcome::Closed),
                Ev::AgentHungUp => Event::AgentHungUp,
                Ev::Transfer(ok) => Event::TransferResult { ok },
                Ev::Saved => Event::VoicemailSaved { path: "v.wav".into(), secs: 3 },
                Ev::Empty => Event::VoicemailEmpty,
            };
            if let Event::Timer(id) = &event {
                live.remove(id);
            }
            let a = it.handle(event, now, &env);
            check(&a, &mut live, it.is_finished())?;
        }
        let a = it.handle(Event::CallerHungUp, now, &env);
        prop_assert!(a.is_empty());
        prop_assert!(it.is_finished());
        prop_assert!(it.handle(Event::Key('1'), now, &env).is_empty());
        prop_assert!(it.path().len() < 10_000);
    }
}
