//! Tests of [`super::report`] and [`super::export`].
//!
//! The main test generates 600 calls over a little more than a day (three
//! local days) with a seeded RNG, every kind of call a 12345 hotline sees,
//! through the real [`CdrBuilder`], and checks every figure of every row of
//! `build_report` (computed from the call records) against an independent
//! recomputation from the raw events and the facts the generator decided
//! that emit no event (asking for an agent, a callback request, who hung up
//! where, the end of after-call work). Small hand-made cases pin each
//! definition; the exports are read back (CSV with `csv`, XLSX with
//! `calamine` and its XML).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::export::{
    cdrs_to_csv, header, to_csv, to_xlsx, ExportError, BOM, CDR_HEADER, SHEET_NAME, TOTAL_LABEL,
};
use super::report::{
    build_report, local_day, local_hour, Period, Report, ReportBy, ReportRow,
    CHINA_UTC_OFFSET_MINUTES, NO_GROUP_KEY, TOTAL_KEY,
};
use crate::events::builder::{CallStart, CdrBuilder, EndCause};
use crate::events::cdr::{Cdr, HangupParty, Outcome};
use crate::events::error::EventError;
use crate::events::id::IdGenerator;
use crate::events::model::{Area, Direction, Event, EventData, TransferKind, TransferMode, Vars};
use crate::events::time::Timestamp;

// ---- shared helpers -------------------------------------------------------

/// Runs a fact that must be accepted, collecting its events.
fn ok(out: &mut Vec<Event>, r: Result<Vec<Event>, EventError>) {
    out.extend(r.expect("fact accepted"));
}

/// `text` as a timestamp in ms.
fn ms(text: &str) -> i64 {
    Timestamp::parse(text).expect("valid time").unix_ms()
}

fn start(call: &str, caller: &str, direction: Direction, confidential: bool) -> CallStart {
    CallStart {
        call_id: call.into(),
        serial: format!("12345-20261123-{call}"),
        tenant: "nanning".into(),
        direction,
        caller: caller.into(),
        called: "12345".into(),
        caller_area: Some(Area {
            code: "0771".into(),
            region: "广西壮族自治区南宁市".into(),
        }),
        confidential,
    }
}

fn normal() -> EndCause {
    EndCause {
        reason: Some("normal".into()),
        ..EndCause::default()
    }
}

fn fault() -> EndCause {
    EndCause {
        sip_code: Some(503),
        reason: Some("media-failure".into()),
        fault: true,
    }
}

/// The `call.ended` records among `events`.
fn cdrs_of(events: &[Event]) -> Vec<Cdr> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventData::CallEnded(c) => Some((**c).clone()),
            _ => None,
        })
        .collect()
}

// ---- the generated day ------------------------------------------------------

/// How a generated call went, as decided by the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fate {
    Answered,
    AbandonIvr,
    AbandonQueue,
    AbandonRinging,
    QueueTimeout,
    Voicemail,
    Callback,
    IvrCompleted,
    Blocked,
    TransferredOut,
    LostToFault,
    NotPickedUp,
}

/// What the generator did that no event carries.
#[derive(Debug, Clone)]
struct Truth {
    fate: Fate,
    /// The caller asked for an agent (no event).
    requested_at: Option<i64>,
    /// First time the call left a queue unanswered (timeout, callback,
    /// voicemail; no event for the first two).
    queue_left_at: Option<i64>,
    /// When each agent who answered was released, in answer order (agent
    /// hang-up: no event).
    released_at: Vec<i64>,
    /// End of each one's after-call work (no event of its own); `None`: the
    /// record was closed first.
    acw_end: Vec<Option<i64>>,
    /// The caller chose a callback (no event).
    callback: bool,
}

impl Truth {
    fn new() -> Truth {
        Truth {
            fate: Fate::Answered,
            requested_at: None,
            queue_left_at: None,
            released_at: Vec::new(),
            acw_end: Vec::new(),
            callback: false,
        }
    }
}

/// A call's own clock: times never go back.
struct Clock(i64);

impl Clock {
    fn after(&mut self, d: i64) -> i64 {
        self.0 += d;
        self.0
    }

    /// `target`, or now if that is past.
    fn at_least(&mut self, target: i64) -> i64 {
        self.0 = self.0.max(target);
        self.0
    }
}

const GROUPS: [(&str, &str); 4] = [
    ("g-consult", "咨询组"),
    ("g-complaint", "投诉组"),
    ("g-social", "社保组"),
    ("g-emergency", "应急组"),
];
const AGENTS: [&str; 12] = [
    "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010", "1011", "1012",
];
const DIMENSIONS: [&str; 3] = ["attitude", "efficiency", "resolution"];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Everything after an agent answered: maybe a transfer to another agent,
/// holds, the end, a survey, after-call work.
fn after_answer(
    rng: &mut StdRng,
    b: &mut CdrBuilder,
    ev: &mut Vec<Event>,
    clock: &mut Clock,
    truth: &mut Truth,
    first: &str,
) {
    let mut agents = vec![first.to_owned()];
    if rng.random_bool(0.1) {
        let next = loop {
            let a = pick(rng, &AGENTS);
            if a != first {
                break a;
            }
        };
        let mode = if rng.random_bool(0.5) {
            TransferMode::Blind
        } else {
            TransferMode::Attended
        };
        ok(
            ev,
            b.transferred(
                clock.after(rng.random_range(10_000..120_000)),
                TransferKind::Agent,
                next,
                mode,
            ),
        );
        truth.released_at.push(clock.0);
        ok(ev, b.offered(clock.after(1_000), next));
        ok(
            ev,
            b.answered(clock.after(rng.random_range(2_000..10_000)), next),
        );
        agents.push(next.to_owned());
    }
    let holds = [0, 0, 0, 1, 1, 2][rng.random_range(0..6)];
    let mut on_hold = false;
    for i in 0..holds {
        ok(ev, b.held(clock.after(rng.random_range(5_000..120_000))));
        if i + 1 == holds && rng.random_bool(0.15) {
            // The caller hangs up while on hold.
            on_hold = true;
        } else {
            ok(ev, b.resumed(clock.after(rng.random_range(3_000..60_000))));
        }
    }
    if !on_hold {
        clock.after(rng.random_range(10_000..300_000));
    }
    truth.released_at.push(clock.0);
    let end = rng.random_range(0..100);
    if end < 4 {
        // A fault after the answer: not call loss.
        ok(ev, b.ended(clock.0, HangupParty::System, fault()));
    } else if end < 55 && !on_hold {
        // The agent hangs up; the caller stays for the survey.
        ok(ev, b.agent_hung_up(clock.0));
        ok(
            ev,
            b.ivr_step(clock.after(500), "survey", "c4e34c7", "ask", "survey"),
        );
        if rng.random_bool(0.8) {
            let n = rng.random_range(1..=3);
            for dimension in &DIMENSIONS[..n] {
                let score = [5, 5, 5, 5, 3, 3, 1][rng.random_range(0..7)];
                let key = match score {
                    5 => '1',
                    3 => '2',
                    _ => '3',
                };
                ok(
                    ev,
                    b.survey_result(
                        clock.after(rng.random_range(2_000..8_000)),
                        dimension,
                        score,
                        key,
                    ),
                );
            }
        }
        let by = if rng.random_bool(0.5) {
            HangupParty::Caller
        } else {
            HangupParty::System
        };
        ok(ev, b.ended(clock.after(3_000), by, normal()));
    } else if end < 85 {
        ok(ev, b.ended(clock.0, HangupParty::Caller, normal()));
    } else {
        ok(ev, b.ended(clock.0, HangupParty::Agent, normal()));
    }
    if rng.random_bool(0.95) {
        for (agent, released) in agents.iter().zip(truth.released_at.clone()) {
            let acw_end = (released + rng.random_range(0..90_000)).max(clock.0);
            truth.acw_end.push(Some(acw_end));
            ok(ev, b.acw_ended(acw_end, agent));
        }
    } else {
        // After-call work never ends: the shell closes the record.
        truth.acw_end = vec![None; agents.len()];
        ok(ev, b.close(clock.after(600_000)));
    }
}

/// One generated call: its events and the generator's facts.
fn simulate_call(
    rng: &mut StdRng,
    ids: &Arc<IdGenerator>,
    n: usize,
    from: i64,
    span: i64,
) -> (Vec<Event>, Truth) {
    let call_id = format!("c-{n:04}");
    let kind = rng.random_range(0..100);
    let direction = if kind < 4 {
        Direction::Callback
    } else {
        Direction::Inbound
    };
    let caller = format!("138{:08}", rng.random_range(0..100_000_000));
    let confidential = rng.random_bool(0.1);
    let at = from + rng.random_range(0..span);
    let (mut b, first) = CdrBuilder::started(
        ids.clone(),
        at,
        start(&call_id, &caller, direction, confidential),
    )
    .expect("start");
    let mut ev = vec![first];
    let mut truth = Truth::new();
    let mut clock = Clock(at);
    let b = &mut b;

    if direction == Direction::Callback {
        let agent = pick(rng, &AGENTS);
        ok(&mut ev, b.offered(clock.after(1_000), agent));
        if rng.random_bool(0.8) {
            ok(
                &mut ev,
                b.answered(clock.after(rng.random_range(3_000..15_000)), agent),
            );
            after_answer(rng, b, &mut ev, &mut clock, &mut truth, agent);
        } else {
            truth.fate = Fate::NotPickedUp;
            ok(
                &mut ev,
                b.ended(clock.after(30_000), HangupParty::System, normal()),
            );
        }
        return (ev, truth);
    }

    ok(
        &mut ev,
        b.ivr_step(clock.0, "12345", "7", "welcome", "play"),
    );
    clock.after(rng.random_range(2_000..8_000));
    if kind < 6 {
        b.blocked().expect("blocked");
        truth.fate = Fate::Blocked;
        ok(&mut ev, b.ended(clock.0, HangupParty::System, normal()));
        return (ev, truth);
    }
    ok(
        &mut ev,
        b.ivr_step(clock.0, "12345", "7", "main_menu", "menu"),
    );
    clock.after(rng.random_range(1_000..20_000));
    let ivr = rng.random_range(0..100);
    if ivr < 10 {
        truth.fate = Fate::AbandonIvr;
        ok(&mut ev, b.ended(clock.0, HangupParty::Caller, normal()));
        return (ev, truth);
    }
    if ivr < 16 {
        truth.fate = Fate::IvrCompleted;
        ok(&mut ev, b.ivr_step(clock.0, "12345", "7", "query", "play"));
        ok(
            &mut ev,
            b.ended(clock.after(40_000), HangupParty::System, normal()),
        );
        return (ev, truth);
    }
    if ivr < 19 {
        truth.fate = Fate::LostToFault;
        ok(&mut ev, b.ended(clock.0, HangupParty::System, fault()));
        return (ev, truth);
    }
    if ivr < 25 {
        // An IVR branch hands the call to another hotline.
        truth.fate = Fate::TransferredOut;
        ok(
            &mut ev,
            b.transferred(clock.0, TransferKind::Number, "12328", TransferMode::Blind),
        );
        ok(
            &mut ev,
            b.ended(clock.after(90_000), HangupParty::System, normal()),
        );
        return (ev, truth);
    }
    if ivr < 29 {
        // After hours: straight to a message.
        truth.fate = Fate::Voicemail;
        ok(
            &mut ev,
            b.ivr_step(clock.0, "12345", "7", "after_hours", "voicemail"),
        );
        let path = format!("vm/{call_id}.wav");
        ok(
            &mut ev,
            b.voicemail_saved(clock.after(rng.random_range(5_000..60_000)), &path, 30_000),
        );
        ok(
            &mut ev,
            b.ended(clock.after(1_000), HangupParty::Caller, normal()),
        );
        return (ev, truth);
    }

    // The caller wants an agent.
    if rng.random_bool(0.8) {
        ok(&mut ev, b.agent_requested(clock.0));
        truth.requested_at = Some(clock.0);
        if rng.random_range(0..100) < 5 {
            // Hangs up before reaching the queue (in the IVR).
            truth.fate = Fate::AbandonIvr;
            ok(
                &mut ev,
                b.ended(
                    clock.after(rng.random_range(1_000..40_000)),
                    HangupParty::Caller,
                    normal(),
                ),
            );
            return (ev, truth);
        }
        clock.after(rng.random_range(0..3_000));
    }
    ok(
        &mut ev,
        b.ivr_step(clock.0, "12345", "7", "to_agents", "queue"),
    );
    let (group, name) = GROUPS[rng.random_range(0..GROUPS.len())];
    let priority = if group == "g-emergency" { 200 } else { 3 };
    ok(&mut ev, b.queued(clock.0, group, Some(name), priority));
    // Waiting counts from here (from asking for an agent, if they did).
    let wait_from = truth.requested_at.unwrap_or(clock.0);
    // Now and then exactly on a limit, "within" includes it.
    let on_limit = rng
        .random_bool(0.15)
        .then(|| wait_from + [20_000, 30_000][rng.random_range(0..2)]);
    let busy = rng.random_bool(0.25);
    if rng.random_bool(0.15) {
        let (group, name) = GROUPS[rng.random_range(0..GROUPS.len())];
        ok(
            &mut ev,
            b.queued(
                clock.after(rng.random_range(2_000..25_000)),
                group,
                Some(name),
                3,
            ),
        );
    }
    let fate = rng.random_range(0..100);
    if fate < 62 {
        if rng.random_bool(0.15) {
            let first = pick(rng, &AGENTS);
            ok(
                &mut ev,
                b.offered(clock.after(rng.random_range(0..15_000)), first),
            );
            ok(
                &mut ev,
                b.offer_cancelled(clock.after(rng.random_range(2_000..15_000)), first),
            );
        }
        let queue_wait = if busy {
            rng.random_range(10_000..60_000)
        } else {
            rng.random_range(0..12_000)
        };
        let agent = pick(rng, &AGENTS);
        match on_limit.filter(|at| at - 1_000 >= clock.0) {
            Some(at) => {
                ok(&mut ev, b.offered(at - 1_000, agent));
                ok(&mut ev, b.answered(clock.at_least(at), agent));
            }
            None => {
                ok(&mut ev, b.offered(clock.after(queue_wait), agent));
                ok(
                    &mut ev,
                    b.answered(clock.after(rng.random_range(1_000..8_000)), agent),
                );
            }
        }
        after_answer(rng, b, &mut ev, &mut clock, &mut truth, agent);
    } else if fate < 74 {
        truth.fate = Fate::AbandonQueue;
        let at = match on_limit.filter(|at| *at > clock.0) {
            Some(at) => clock.at_least(at),
            None => clock.after(rng.random_range(1_000..80_000)),
        };
        ok(&mut ev, b.ended(at, HangupParty::Caller, normal()));
    } else if fate < 79 {
        truth.fate = Fate::AbandonRinging;
        let agent = pick(rng, &AGENTS);
        ok(
            &mut ev,
            b.offered(clock.after(rng.random_range(0..20_000)), agent),
        );
        ok(
            &mut ev,
            b.ended(
                clock.after(rng.random_range(1_000..15_000)),
                HangupParty::Caller,
                normal(),
            ),
        );
    } else if fate < 85 {
        ok(
            &mut ev,
            b.queue_timed_out(clock.after(rng.random_range(30_000..120_000))),
        );
        truth.queue_left_at = Some(clock.0);
        if rng.random_bool(0.5) {
            truth.fate = Fate::Voicemail;
            ok(
                &mut ev,
                b.ivr_step(clock.0, "12345", "7", "leave_message", "voicemail"),
            );
            let path = format!("vm/{call_id}.wav");
            ok(
                &mut ev,
                b.voicemail_saved(clock.after(rng.random_range(5_000..60_000)), &path, 20_000),
            );
            ok(
                &mut ev,
                b.ended(clock.after(1_000), HangupParty::Caller, normal()),
            );
        } else {
            truth.fate = Fate::QueueTimeout;
            ok(
                &mut ev,
                b.ivr_step(clock.0, "12345", "7", "goodbye", "play"),
            );
            ok(
                &mut ev,
                b.ended(clock.after(5_000), HangupParty::System, normal()),
            );
        }
    } else if fate < 91 {
        truth.fate = Fate::Callback;
        truth.callback = true;
        ok(
            &mut ev,
            b.callback_requested(clock.after(rng.random_range(5_000..60_000))),
        );
        truth.queue_left_at = Some(clock.0);
        ok(
            &mut ev,
            b.ivr_step(clock.0, "12345", "7", "callback_ok", "play"),
        );
        ok(
            &mut ev,
            b.ended(clock.after(3_000), HangupParty::System, normal()),
        );
    } else if fate < 95 {
        truth.fate = Fate::Voicemail;
        let path = format!("vm/{call_id}.wav");
        ok(
            &mut ev,
            b.voicemail_saved(clock.after(rng.random_range(5_000..60_000)), &path, 15_000),
        );
        truth.queue_left_at = Some(clock.0);
        ok(
            &mut ev,
            b.ended(clock.after(1_000), HangupParty::Caller, normal()),
        );
    } else {
        truth.fate = Fate::LostToFault;
        if rng.random_bool(0.5) {
            ok(
                &mut ev,
                b.offered(clock.after(rng.random_range(0..20_000)), pick(rng, &AGENTS)),
            );
        }
        ok(
            &mut ev,
            b.ended(
                clock.after(rng.random_range(1_000..40_000)),
                HangupParty::System,
                fault(),
            ),
        );
    }
    (ev, truth)
}

/// A generated stretch of calls: every event (calls interleaved in time,
/// as the outbox would hold them) and the generator's facts per call.
struct Day {
    events: Vec<Event>,
    truths: BTreeMap<String, Truth>,
}

/// Local 2026-11-22 23:00 (UTC+8) to 2026-11-24 00:30: three local days.
fn generate_day(seed: u64, calls: usize) -> Day {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = Arc::new(IdGenerator::new("gen", 1));
    let from = ms("2026-11-22T15:00:00Z");
    let span = ms("2026-11-23T16:30:00Z") - from;
    let mut events = Vec::new();
    let mut truths = BTreeMap::new();
    for n in 0..calls {
        let (ev, truth) = simulate_call(&mut rng, &ids, n, from, span);
        let call_id = ev[0].call_id.clone().expect("call id");
        truths.insert(call_id, truth);
        events.extend(ev);
    }
    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.seq.cmp(&b.seq)));
    Day { events, truths }
}

// ---- the independent recomputation -------------------------------------------

/// One call as the raw events (and the generator) tell it.
#[derive(Debug, Default)]
struct Seen {
    started_at: i64,
    direction: Option<Direction>,
    /// (at, group) of every queue entry.
    queued: Vec<(i64, String)>,
    /// (at, agent, wait_ms) of every answer.
    answers: Vec<(i64, String, Option<u64>)>,
    survey: BTreeMap<String, u8>,
    voicemail: bool,
    ended_at: Option<i64>,
    fault: bool,
}

fn seen_calls(events: &[Event]) -> BTreeMap<String, Seen> {
    let mut calls: BTreeMap<String, Seen> = BTreeMap::new();
    for e in events {
        let Some(call) = &e.call_id else { continue };
        let s = calls.entry(call.clone()).or_default();
        let at = e.at.unix_ms();
        match &e.body {
            EventData::CallStarted(d) => {
                s.started_at = at;
                s.direction = Some(d.direction);
            }
            EventData::QueueEntered(d) => s.queued.push((at, d.group_id.clone())),
            EventData::AgentAnswered(d) => s.answers.push((at, d.agent_id.clone(), d.wait_ms)),
            EventData::SurveyResult(d) => {
                s.survey.insert(d.dimension.clone(), d.score);
            }
            EventData::VoicemailSaved(_) => s.voicemail = true,
            EventData::CallEnded(cdr) => {
                // Only the hang-up time and the fault flag.
                s.ended_at = Some(cdr.ended_at.unix_ms());
                s.fault = cdr.system_fault;
            }
            _ => {}
        }
    }
    calls
}

/// A civil date from days since 1970-01-01 (counting years and months, not
/// the formula `time.rs` uses).
fn civil(mut days: i64) -> (i64, i64, i64) {
    assert!(days >= 0);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut y = 1970;
    loop {
        let len = if leap(y) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        y += 1;
    }
    let months = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut m = 0;
    while days >= months[m] {
        days -= months[m];
        m += 1;
    }
    (y, m as i64 + 1, days + 1)
}

/// (local day, local hour) keys of `at_ms`.
fn local_keys(at_ms: i64, offset_minutes: i32) -> (String, String) {
    let local = at_ms + i64::from(offset_minutes) * 60_000;
    let (y, m, d) = civil(local.div_euclid(86_400_000));
    let hour = local.rem_euclid(86_400_000) / 3_600_000;
    let day = format!("{y:04}-{m:02}-{d:02}");
    (day.clone(), format!("{day} {hour:02}:00"))
}

/// Figures of one call for the oracle.
struct Figures {
    offered: bool,
    answered: bool,
    wait_ms: Option<u64>,
    handle_ms: u64,
    lost: bool,
    fate: Fate,
    callback_requested: bool,
    callback_made: bool,
    voicemail: bool,
    survey: Vec<u64>,
}

fn figures(s: &Seen, t: &Truth) -> Figures {
    let offered = t.requested_at.is_some() || !s.queued.is_empty();
    let answer = s.answers.first();
    let answered = offered && answer.is_some();
    let ended = s.ended_at.expect("call.ended");
    let wait_ms = if let Some((_, _, w)) = answer.filter(|_| offered) {
        *w
    } else if offered {
        let from = t
            .requested_at
            .or_else(|| s.queued.first().map(|q| q.0))
            .expect("offered");
        let to = t.queue_left_at.unwrap_or(ended);
        Some(u64::try_from(to - from).expect("forward"))
    } else {
        None
    };
    // Talk + hold is the time connected, each agent from their answer to
    // their release; after-call work from the release to its end.
    assert_eq!(s.answers.len(), t.released_at.len());
    assert_eq!(s.answers.len(), t.acw_end.len());
    let handle_ms = s
        .answers
        .iter()
        .zip(t.released_at.iter().zip(&t.acw_end))
        .map(|((answered_at, _, _), (released, acw_end))| {
            let connected = released - answered_at;
            let acw = acw_end.map_or(0, |end| end - released);
            u64::try_from(connected + acw).expect("forward")
        })
        .sum();
    // Lost: a fault ended it and no agent answered (the generator's faults
    // are in the IVR, in the queue or after an answer).
    let lost = s.fault && s.answers.is_empty();
    assert_eq!(lost, t.fate == Fate::LostToFault, "fault flag");
    Figures {
        offered,
        answered,
        wait_ms,
        handle_ms,
        lost,
        fate: t.fate,
        callback_requested: t.callback,
        callback_made: s.direction == Some(Direction::Callback),
        voicemail: s.voicemail,
        survey: if answered {
            s.survey.values().map(|v| u64::from(*v)).collect()
        } else {
            Vec::new()
        },
    }
}

fn rate(num: u64, den: u64) -> Option<f64> {
    if den == 0 {
        None
    } else {
        Some(num as f64 / den as f64)
    }
}

/// The expected row of `calls`, computed from scratch.
fn expected_row(key: &str, calls: &[&Figures]) -> ReportRow {
    let count = |f: &dyn Fn(&Figures) -> bool| calls.iter().filter(|c| f(c)).count() as u64;
    let hung_up = |c: &Figures| {
        matches!(
            c.fate,
            Fate::AbandonIvr | Fate::AbandonQueue | Fate::AbandonRinging
        )
    };
    let within = |c: &Figures, limit: u64| c.wait_ms.is_some_and(|w| w <= limit);
    let offered = count(&|c| c.offered);
    let answered = count(&|c| c.answered);
    let ab20 = count(&|c| c.offered && !c.answered && hung_up(c) && within(c, 20_000));
    let ab30 = count(&|c| c.offered && !c.answered && hung_up(c) && within(c, 30_000));
    let an20 = count(&|c| c.answered && within(c, 20_000));
    let an30 = count(&|c| c.answered && within(c, 30_000));
    let loss = count(&|c| c.lost);
    let answered_calls: Vec<&Figures> = calls.iter().copied().filter(|c| c.answered).collect();
    let wait_sum: u64 = answered_calls.iter().filter_map(|c| c.wait_ms).sum();
    let handle_sum: u64 = answered_calls.iter().map(|c| c.handle_ms).sum();
    let rated: Vec<&Figures> = answered_calls
        .iter()
        .copied()
        .filter(|c| !c.survey.is_empty())
        .collect();
    let score_sum: u64 = rated.iter().flat_map(|c| c.survey.iter()).sum();
    let scores: u64 = rated.iter().map(|c| c.survey.len() as u64).sum();
    let satisfied = rated
        .iter()
        .filter(|c| {
            let mean = c.survey.iter().sum::<u64>() as f64 / c.survey.len() as f64;
            mean >= 4.0
        })
        .count() as u64;
    let requested = count(&|c| c.callback_requested);
    let made = count(&|c| c.callback_made);
    ReportRow {
        key: key.to_owned(),
        calls: calls.len() as u64,
        offered,
        answered,
        abandoned_in_ivr: count(&|c| c.fate == Fate::AbandonIvr),
        abandoned_in_queue: count(&|c| matches!(c.fate, Fate::AbandonQueue | Fate::AbandonRinging)),
        abandoned_within_20s: ab20,
        abandoned_within_30s: ab30,
        answered_within_20s: an20,
        answered_within_30s: an30,
        answer_rate_20s: rate(an20, offered - ab20),
        answer_rate_30s: rate(an30, offered - ab30),
        call_loss: loss,
        call_loss_rate: rate(loss, calls.len() as u64),
        asa_ms: rate(wait_sum, answered),
        aht_ms: rate(handle_sum, answered),
        longest_wait_ms: calls.iter().filter_map(|c| c.wait_ms).max(),
        callbacks_requested: requested,
        callbacks_made: made,
        callbacks_pending: requested.saturating_sub(made),
        voicemails: count(&|c| c.voicemail),
        survey_rated: rated.len() as u64,
        survey_coverage: rate(rated.len() as u64, answered),
        survey_score_mean: rate(score_sum, scores),
        satisfied,
        satisfaction_rate: rate(satisfied, rated.len() as u64),
    }
}

/// The expected report of a generated day, from the events and the truths.
fn expected_report(day: &Day, by: ReportBy, offset: i32) -> (Vec<ReportRow>, ReportRow, Period) {
    let seen = seen_calls(&day.events);
    let mut rows: BTreeMap<String, Vec<Figures>> = BTreeMap::new();
    let mut all = Vec::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (call, s) in &seen {
        first = first.min(s.started_at);
        last = last.max(s.started_at);
        let (local_day, local_hour) = local_keys(s.started_at, offset);
        let key = match by {
            ReportBy::Group => Some(
                s.queued
                    .last()
                    .map_or(NO_GROUP_KEY.to_owned(), |q| q.1.clone()),
            ),
            ReportBy::Agent => s.answers.first().map(|a| a.1.clone()),
            ReportBy::Hour => Some(local_hour),
            ReportBy::Day => Some(local_day),
        };
        if let Some(key) = key {
            rows.entry(key)
                .or_default()
                .push(figures(s, &day.truths[call]));
        }
        all.push(figures(s, &day.truths[call]));
    }
    let rows = rows
        .iter()
        .map(|(key, calls)| expected_row(key, &calls.iter().collect::<Vec<_>>()))
        .collect();
    let total = expected_row(TOTAL_KEY, &all.iter().collect::<Vec<_>>());
    let period = Period {
        first_started_at: Timestamp::from_unix_ms(first).expect("time"),
        last_started_at: Timestamp::from_unix_ms(last).expect("time"),
    };
    (rows, total, period)
}

#[test]
fn generated_days_match_an_independent_recomputation_for_every_grouping() {
    for seed in [12_345, 20_261_123, 7] {
        let day = generate_day(seed, 600);
        let cdrs = cdrs_of(&day.events);
        assert_eq!(cdrs.len(), 600, "one call.ended per call");
        assert!(cdrs.iter().all(|c| c.ended_at >= c.started_at));

        // The generator covered every case the definitions tell apart.
        let outcomes: std::collections::BTreeSet<String> =
            cdrs.iter().map(|c| format!("{:?}", c.outcome)).collect();
        assert_eq!(outcomes.len(), 11, "{outcomes:?}");
        let waits = |o: Outcome, lo: u64, hi: u64| {
            cdrs.iter()
                .filter(|c| c.outcome == o && c.wait_ms.is_some_and(|w| w > lo && w <= hi))
                .count()
        };
        for (lo, hi) in [(0, 20_000), (20_000, 30_000), (30_000, u64::MAX)] {
            assert!(waits(Outcome::Answered, lo, hi) > 5, "answered {lo}-{hi}");
            assert!(
                waits(Outcome::AbandonedInQueue, lo, hi) > 0,
                "abandoned {lo}-{hi}"
            );
        }
        assert!(cdrs
            .iter()
            .any(|c| c.system_fault && c.outcome == Outcome::Answered));
        assert!(cdrs.iter().any(|c| !c.complete));
        assert!(cdrs.iter().any(|c| c.groups.len() > 1));
        assert!(cdrs.iter().any(|c| c.agents.len() > 1));
        let exactly =
            |o: Outcome, w: u64| cdrs.iter().any(|c| c.outcome == o && c.wait_ms == Some(w));
        assert!(exactly(Outcome::Answered, 20_000) && exactly(Outcome::Answered, 30_000));
        assert!(exactly(Outcome::AbandonedInQueue, 20_000));
        assert!(exactly(Outcome::AbandonedInQueue, 30_000));
        assert!(cdrs
            .iter()
            .any(|c| c.outcome == Outcome::AbandonedInIvr && c.agent_requested_at.is_some()));

        for by in ReportBy::ALL {
            let report = build_report(&cdrs, by, CHINA_UTC_OFFSET_MINUTES);
            let (rows, total, period) = expected_report(&day, by, CHINA_UTC_OFFSET_MINUTES);
            assert_eq!(report.by, by);
            assert_eq!(report.period, Some(period));
            assert_eq!(
                report.rows.iter().map(|r| &r.key).collect::<Vec<_>>(),
                rows.iter().map(|r| &r.key).collect::<Vec<_>>(),
                "seed {seed} by {by}: keys"
            );
            for (got, want) in report.rows.iter().zip(&rows) {
                assert_eq!(got, want, "seed {seed} by {by}");
            }
            assert_eq!(report.total, total, "seed {seed} by {by}: total");
            if by != ReportBy::Agent {
                // Every call is in exactly one row.
                let sum: u64 = report.rows.iter().map(|r| r.calls).sum();
                assert_eq!(sum, 600);
            }
        }
        let days = build_report(&cdrs, ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
        assert_eq!(
            days.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["2026-11-22", "2026-11-23", "2026-11-24"]
        );
        let hours = build_report(&cdrs, ReportBy::Hour, CHINA_UTC_OFFSET_MINUTES);
        assert_eq!(hours.rows.len(), 26);
    }
}

// ---- hand-made cases ----------------------------------------------------------

/// Builds one call with the real builder and returns its record.
struct Call {
    b: CdrBuilder,
    ev: Vec<Event>,
    t0: i64,
}

impl Call {
    fn new(id: &str, at: i64) -> Call {
        Call::with(id, at, "13812348000", Direction::Inbound, false)
    }

    fn with(id: &str, at: i64, caller: &str, direction: Direction, confidential: bool) -> Call {
        let ids = Arc::new(IdGenerator::new("t", 0));
        let (b, e) = CdrBuilder::started(ids, at, start(id, caller, direction, confidential))
            .expect("start");
        Call {
            b,
            ev: vec![e],
            t0: at,
        }
    }

    fn cdr(&self) -> Cdr {
        let cdrs = cdrs_of(&self.ev);
        assert_eq!(cdrs.len(), 1);
        cdrs[0].clone()
    }
}

const T0: &str = "2026-11-23T02:00:00Z";

/// `s` seconds after `t0`, in ms.
fn at(t0: i64) -> impl Fn(f64) -> i64 {
    move |s| t0 + (s * 1000.0).round() as i64
}

/// Asks for an agent at 0 s, queues in `group`, answered by `agent` after
/// `wait` s; talks 60 s; ACW 10 s; `survey` scores.
fn answered(id: &str, group: &str, agent: &str, wait: f64, survey: &[(&str, u8)]) -> Cdr {
    let mut c = Call::new(id, ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.agent_requested(t(0.0)));
    ok(ev, b.queued(t(0.0), group, None, 3));
    ok(ev, b.offered(t(wait), agent));
    ok(ev, b.answered(t(wait), agent));
    ok(ev, b.agent_hung_up(t(wait + 60.0)));
    for (i, (dimension, score)) in survey.iter().enumerate() {
        ok(
            ev,
            b.survey_result(t(wait + 61.0 + i as f64), dimension, *score, '1'),
        );
    }
    ok(ev, b.ended(t(wait + 70.0), HangupParty::Caller, normal()));
    ok(ev, b.acw_ended(t(wait + 70.0), agent));
    c.cdr()
}

/// Asks for an agent at 0 s, queues in `group`, hangs up after `wait` s
/// (while ringing if `ringing`).
fn abandoned(id: &str, group: &str, wait: f64, ringing: bool) -> Cdr {
    let mut c = Call::new(id, ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.agent_requested(t(0.0)));
    ok(ev, b.queued(t(0.0), group, None, 3));
    if ringing {
        ok(ev, b.offered(t(wait / 2.0), "1001"));
    }
    ok(ev, b.ended(t(wait), HangupParty::Caller, normal()));
    c.cdr()
}

/// Hangs up in the IVR after `secs` s, never asking for an agent.
fn ivr_only(id: &str, start_ms: i64, secs: f64, by: HangupParty, cause: EndCause) -> Cdr {
    let mut c = Call::new(id, start_ms);
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.ivr_step(t(0.0), "12345", "7", "welcome", "play"));
    ok(ev, b.ended(t(secs), by, cause));
    c.cdr()
}

#[test]
fn answer_rate_excludes_callers_who_hung_up_within_the_limit() {
    let cdrs = [
        answered("a1", "g1", "1001", 10.0, &[]),
        answered("a2", "g1", "1001", 20.0, &[]), // exactly 20 s: within
        answered("a3", "g1", "1001", 25.0, &[]),
        answered("a4", "g1", "1001", 45.0, &[]),
        abandoned("x1", "g1", 5.0, false),
        abandoned("x2", "g1", 20.0, true), // exactly 20 s, ringing: excluded
        abandoned("x3", "g1", 28.0, false),
        abandoned("x4", "g1", 90.0, false),
    ];
    let r = build_report(&cdrs, ReportBy::Group, CHINA_UTC_OFFSET_MINUTES);
    let row = &r.rows[0];
    assert_eq!(r.rows.len(), 1);
    assert_eq!((row.offered, row.answered), (8, 4));
    assert_eq!((row.abandoned_in_queue, row.abandoned_in_ivr), (4, 0));
    assert_eq!((row.abandoned_within_20s, row.abandoned_within_30s), (2, 3));
    assert_eq!((row.answered_within_20s, row.answered_within_30s), (2, 3));
    // 2 / (8 − 2) and 3 / (8 − 3).
    assert_eq!(row.answer_rate_20s, Some(2.0 / 6.0));
    assert_eq!(row.answer_rate_30s, Some(3.0 / 5.0));
    assert_eq!(
        row.asa_ms,
        Some((10_000 + 20_000 + 25_000 + 45_000) as f64 / 4.0)
    );
    // Talk 60 s + ACW 10 s each.
    assert_eq!(row.aht_ms, Some(70_000.0));
    assert_eq!(row.longest_wait_ms, Some(90_000));
    assert_eq!(
        &r.total,
        &ReportRow {
            key: TOTAL_KEY.into(),
            ..row.clone()
        }
    );
}

#[test]
fn a_caller_who_asked_for_an_agent_and_hung_up_in_the_ivr_is_a_short_abandon() {
    let mut c = Call::new("r1", ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.agent_requested(t(0.0)));
    ok(ev, b.ended(t(12.0), HangupParty::Caller, normal()));
    let asked = c.cdr();
    assert_eq!(asked.outcome, Outcome::AbandonedInIvr);
    let never_asked = ivr_only("r2", ms(T0), 12.0, HangupParty::Caller, normal());
    let r = build_report(
        [&asked, &never_asked],
        ReportBy::Group,
        CHINA_UTC_OFFSET_MINUTES,
    );
    let t = &r.total;
    assert_eq!((t.calls, t.offered, t.abandoned_in_ivr), (2, 1, 2));
    assert_eq!((t.abandoned_within_20s, t.abandoned_in_queue), (1, 0));
    // The only offered call hung up within 20 s: no denominator.
    assert_eq!((t.answer_rate_20s, t.answer_rate_30s), (None, None));
    assert_eq!(t.longest_wait_ms, Some(12_000));
}

#[test]
fn zero_denominators_give_none() {
    let empty = build_report(Vec::<&Cdr>::new(), ReportBy::Hour, CHINA_UTC_OFFSET_MINUTES);
    assert!(empty.rows.is_empty());
    assert_eq!(empty.period, None);
    let t = &empty.total;
    assert_eq!((t.key.as_str(), t.calls, t.offered), (TOTAL_KEY, 0, 0));
    assert_eq!(
        [
            t.answer_rate_20s,
            t.answer_rate_30s,
            t.call_loss_rate,
            t.asa_ms,
            t.aht_ms,
            t.survey_coverage,
            t.survey_score_mean,
            t.satisfaction_rate
        ],
        [None; 8]
    );
    assert_eq!(t.longest_wait_ms, None);

    // Calls, but none asking for an agent: only the call loss rate exists.
    let ivr = ivr_only("i1", ms(T0), 30.0, HangupParty::System, normal());
    let r = build_report([&ivr], ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
    let row = &r.rows[0];
    assert_eq!(row.call_loss_rate, Some(0.0));
    assert_eq!(
        (row.answer_rate_20s, row.asa_ms, row.aht_ms),
        (None, None, None)
    );
    assert_eq!((row.survey_coverage, row.longest_wait_ms), (None, None));

    // Answered but never rated: coverage 0, no satisfaction figure.
    let a = answered("a", "g1", "1001", 3.0, &[]);
    let r = build_report([&a], ReportBy::Agent, CHINA_UTC_OFFSET_MINUTES);
    let row = &r.rows[0];
    assert_eq!(row.survey_coverage, Some(0.0));
    assert_eq!((row.survey_score_mean, row.satisfaction_rate), (None, None));
}

#[test]
fn hours_and_days_are_local_across_midnight_utc() {
    // 15:59:59.999Z is 23:59 in Beijing; 16:00Z is the next local day.
    let before = ivr_only(
        "b",
        ms("2026-11-22T15:59:59.999Z"),
        5.0,
        HangupParty::System,
        normal(),
    );
    let after = ivr_only(
        "a",
        ms("2026-11-22T16:00:00Z"),
        5.0,
        HangupParty::System,
        normal(),
    );
    let late_utc = ivr_only(
        "l",
        ms("2026-11-22T23:30:00Z"),
        5.0,
        HangupParty::System,
        normal(),
    );
    let cdrs = [&after, &late_utc, &before];
    let days = build_report(cdrs, ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
    let keys: Vec<(&str, u64)> = days
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.calls))
        .collect();
    assert_eq!(keys, [("2026-11-22", 1), ("2026-11-23", 2)]);
    let hours = build_report(cdrs, ReportBy::Hour, CHINA_UTC_OFFSET_MINUTES);
    let keys: Vec<&str> = hours.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["2026-11-22 23:00", "2026-11-23 00:00", "2026-11-23 07:00"]
    );
    // In UTC they fall on one day; west of UTC the late one moves back.
    let utc = build_report(cdrs, ReportBy::Day, 0);
    assert_eq!(utc.rows.len(), 1);
    assert_eq!(utc.rows[0].key, "2026-11-22");
    assert_eq!(local_hour(late_utc.started_at, -300), "2026-11-22 18:00");
    assert_eq!(local_day(before.started_at, 330), "2026-11-22");
    // The period stays UTC; the title shows it locally.
    assert_eq!(
        days.period.map(|p| (p.first_started_at, p.last_started_at)),
        Some((before.started_at, late_utc.started_at))
    );
    // New Year's Eve and a leap day.
    let at = |s: &str| Timestamp::parse(s).expect("time");
    assert_eq!(local_day(at("2027-12-31T16:00:00Z"), 480), "2028-01-01");
    assert_eq!(
        local_hour(at("2028-02-28T17:00:00Z"), 480),
        "2028-02-29 01:00"
    );
}

#[test]
fn groups_keep_never_queued_calls_under_a_dash_and_agents_only_answered_calls() {
    let cdrs = [
        answered("a1", "g-b", "1002", 5.0, &[]),
        answered("a2", "g-a", "1001", 5.0, &[]),
        abandoned("x1", "g-a", 40.0, false),
        ivr_only("i1", ms(T0), 5.0, HangupParty::Caller, normal()),
    ];
    let groups = build_report(&cdrs, ReportBy::Group, CHINA_UTC_OFFSET_MINUTES);
    let keys: Vec<(&str, u64)> = groups
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.calls))
        .collect();
    assert_eq!(keys, [(NO_GROUP_KEY, 1), ("g-a", 2), ("g-b", 1)]);
    let agents = build_report(&cdrs, ReportBy::Agent, CHINA_UTC_OFFSET_MINUTES);
    let keys: Vec<(&str, u64)> = agents
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.calls))
        .collect();
    assert_eq!(keys, [("1001", 1), ("1002", 1)]);
    assert_eq!(agents.total.calls, 4);
    assert_eq!(agents.total.abandoned_in_queue, 1);
}

#[test]
fn call_loss_is_a_fault_before_an_answer_over_all_calls() {
    let mut c = Call::new("f2", ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.agent_requested(t(0.0)));
    ok(ev, b.queued(t(0.0), "g1", None, 3));
    ok(ev, b.ended(t(8.0), HangupParty::System, fault()));
    let in_queue = c.cdr();

    let mut c = Call::new("f3", ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.agent_requested(t(0.0)));
    ok(ev, b.queued(t(0.0), "g1", None, 3));
    ok(ev, b.answered(t(3.0), "1001"));
    ok(ev, b.ended(t(30.0), HangupParty::System, fault()));
    ok(ev, b.acw_ended(t(30.0), "1001"));
    let after_answer = c.cdr();
    assert!(after_answer.system_fault);

    let cdrs = [
        ivr_only("f1", ms(T0), 2.0, HangupParty::System, fault()),
        in_queue,
        after_answer,
        ivr_only("ok", ms(T0), 2.0, HangupParty::System, normal()),
    ];
    let r = build_report(&cdrs, ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
    assert_eq!(r.total.call_loss, 2);
    assert_eq!(r.total.call_loss_rate, Some(0.5));
    // The fault in the queue is an unanswered offered call, not an abandon.
    assert_eq!((r.total.offered, r.total.answered), (2, 1));
    assert_eq!(r.total.answer_rate_20s, Some(0.5));
}

#[test]
fn callbacks_voicemails_and_pending_floor_at_zero() {
    let mut c = Call::new("cb", ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.queued(t(0.0), "g1", None, 3));
    ok(ev, b.callback_requested(t(50.0)));
    ok(ev, b.ended(t(53.0), HangupParty::System, normal()));
    let requested = c.cdr();
    assert_eq!(requested.wait_ms, Some(50_000));

    let mut c = Call::new("vm", ms(T0));
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    ok(ev, b.queued(t(0.0), "g1", None, 3));
    ok(ev, b.voicemail_saved(t(40.0), "vm/1.wav", 20_000));
    ok(ev, b.ended(t(41.0), HangupParty::Caller, normal()));
    let voicemail = c.cdr();

    let made = |id: &str, when: &str| {
        let mut c = Call::with(id, ms(when), "13812348000", Direction::Callback, false);
        let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
        ok(ev, b.offered(t(0.0), "1001"));
        ok(ev, b.answered(t(5.0), "1001"));
        ok(ev, b.ended(t(65.0), HangupParty::Agent, normal()));
        ok(ev, b.acw_ended(t(65.0), "1001"));
        c.cdr()
    };
    let same_hour = made("m1", "2026-11-23T02:30:00Z");
    let next_hour = made("m2", "2026-11-23T03:10:00Z");
    let cdrs = [requested, voicemail, same_hour, next_hour];
    let r = build_report(&cdrs, ReportBy::Hour, CHINA_UTC_OFFSET_MINUTES);
    let figures: Vec<_> = r
        .rows
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.callbacks_requested,
                r.callbacks_made,
                r.callbacks_pending,
                r.voicemails,
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("2026-11-23 10:00", 1, 1, 0, 1),
            ("2026-11-23 11:00", 0, 1, 0, 0)
        ]
    );
    let pending = build_report(&cdrs[..2], ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
    assert_eq!(pending.total.callbacks_pending, 1);
    // Callback calls connected to an agent are not answers of offered calls.
    assert_eq!((r.total.offered, r.total.answered), (2, 0));
    assert_eq!(r.total.aht_ms, None);
    // Nor abandons: neither leaving a message nor a callback counts as one.
    assert_eq!(r.total.abandoned_in_queue, 0);
    assert_eq!(r.total.answer_rate_20s, Some(0.0));
}

#[test]
fn satisfaction_is_the_share_of_rated_calls_whose_mean_score_is_at_least_4() {
    let cdrs = [
        answered(
            "s1",
            "g1",
            "1001",
            3.0,
            &[("attitude", 5), ("efficiency", 3)],
        ), // 4.0
        answered(
            "s2",
            "g1",
            "1001",
            3.0,
            &[("attitude", 5), ("efficiency", 3), ("resolution", 3)],
        ), // 3.67
        answered("s3", "g1", "1001", 3.0, &[("resolution", 5)]), // 5
        answered("s4", "g1", "1001", 3.0, &[]),
    ];
    let row = build_report(&cdrs, ReportBy::Agent, CHINA_UTC_OFFSET_MINUTES).total;
    assert_eq!((row.survey_rated, row.satisfied), (3, 2));
    assert_eq!(row.survey_coverage, Some(0.75));
    assert_eq!(row.satisfaction_rate, Some(2.0 / 3.0));
    assert_eq!(row.survey_score_mean, Some(24.0 / 6.0));
}

#[test]
fn report_by_parses_and_serialises_snake_case() {
    for by in ReportBy::ALL {
        assert_eq!(by.to_string().parse::<ReportBy>(), Ok(by));
        let json = serde_json_text(by);
        assert_eq!(json, format!("\"{by}\""));
    }
    assert_eq!(" Hour ".parse::<ReportBy>(), Ok(ReportBy::Hour));
    let err = "week".parse::<ReportBy>().expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown report grouping \"week\": expected one of group, agent, hour, day"
    );
}

fn serde_json_text(by: ReportBy) -> String {
    serde_json::to_string(&by).expect("json")
}

// ---- exports ----------------------------------------------------------------

fn small_report() -> (Vec<Cdr>, Report) {
    let cdrs = vec![
        answered("a1", "g,1", "1001", 10.0, &[("attitude", 5)]),
        answered("a2", "g,1", "1002", 25.0, &[]),
        abandoned("x1", "g,1", 40.0, false),
        abandoned("x2", "=cmd|' /C calc'!A0", 5.0, false),
    ];
    let report = build_report(&cdrs, ReportBy::Group, CHINA_UTC_OFFSET_MINUTES);
    (cdrs, report)
}

/// Parses CSV text (after its BOM) with the `csv` crate.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let body = text.strip_prefix(BOM).expect("BOM first");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    reader
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn report_csv_round_trips_with_bom_quoting_and_formats() {
    let (_, report) = small_report();
    let text = to_csv(&report);
    assert!(text.starts_with('\u{feff}'));
    assert!(text.ends_with("\r\n"));
    assert!(text.contains("\"g,1\","), "comma quoted");
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4, "header, two groups, total");
    assert_eq!(rows[0], header(ReportBy::Group));
    assert_eq!(rows[0][0], "技能组 / group");
    assert_eq!(rows[0][10], "20s接通率 / answer rate 20 s");
    // The formula-looking group id is kept as text.
    assert_eq!(rows[1][0], "'=cmd|' /C calc'!A0");
    let g1 = &rows[2];
    let col = |title: &str| rows[0].iter().position(|h| h == title).expect(title);
    assert_eq!(g1[0], "g,1");
    assert_eq!(g1[col("呼叫量 / calls")], "3");
    assert_eq!(g1[col("20s接通率 / answer rate 20 s")], "33.3%");
    assert_eq!(g1[col("30s接通率 / answer rate 30 s")], "66.7%");
    assert_eq!(g1[col("平均应答时长(秒) / ASA s")], "17.5");
    assert_eq!(g1[col("平均处理时长(秒) / AHT s")], "70.0");
    assert_eq!(g1[col("最长等待(秒) / longest wait s")], "40.0");
    assert_eq!(g1[col("参评率 / survey coverage")], "50.0%");
    assert_eq!(g1[col("平均评分 / mean score")], "5.0");
    assert_eq!(g1[col("满意率 / satisfaction")], "100.0%");
    assert_eq!(g1[col("呼损率 / call loss rate")], "0.0%");
    let dash = &rows[1];
    assert_eq!(
        dash[col("20s接通率 / answer rate 20 s")],
        "",
        "no denominator"
    );
    assert_eq!(dash[col("平均应答时长(秒) / ASA s")], "");
    assert_eq!(rows[3][0], TOTAL_LABEL);
    assert_eq!(rows[3][col("呼叫量 / calls")], "4");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));
}

/// A file of the XLSX zip, as text.
fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut text = String::new();
    zip.by_name(name)
        .expect("part")
        .read_to_string(&mut text)
        .expect("utf-8");
    text
}

#[test]
fn report_xlsx_reads_back_with_title_header_figures_and_formats() {
    let (_, report) = small_report();
    let bytes = to_xlsx(&report).expect("xlsx");
    assert_eq!(
        to_xlsx(&report).expect("xlsx"),
        bytes,
        "same report, same bytes"
    );
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.clone())).expect("open");
    assert_eq!(book.sheet_names(), [SHEET_NAME]);
    let range = book.worksheet_range(SHEET_NAME).expect("sheet");
    let cell = |r: usize, c: usize| range.get((r, c)).cloned().unwrap_or(Data::Empty);
    assert_eq!(
        cell(0, 0),
        Data::String(
            "话务报表 按技能组 / by group · 2026-11-23 10:00 – 2026-11-23 10:00 (UTC+08:00)".into()
        )
    );
    let titles = header(ReportBy::Group);
    for (c, title) in titles.iter().enumerate() {
        assert_eq!(cell(1, c), Data::String((*title).into()));
    }
    let col = |title: &str| titles.iter().position(|h| *h == title).expect(title);
    // Row 3 of the sheet: group "g,1".
    assert_eq!(cell(3, 0), Data::String("g,1".into()));
    assert_eq!(cell(3, col("呼叫量 / calls")), Data::Float(3.0));
    assert_eq!(cell(3, col("请求人工 / offered")), Data::Float(3.0));
    assert_eq!(
        cell(3, col("20s接通率 / answer rate 20 s")),
        Data::Float(1.0 / 3.0)
    );
    assert_eq!(cell(3, col("平均应答时长(秒) / ASA s")), Data::Float(17.5));
    assert_eq!(cell(3, col("满意率 / satisfaction")), Data::Float(1.0));
    // XLSX strings are never formulas: kept as they are.
    assert_eq!(cell(2, 0), Data::String("=cmd|' /C calc'!A0".into()));
    assert_eq!(cell(2, col("20s接通率 / answer rate 20 s")), Data::Empty);
    assert_eq!(cell(4, 0), Data::String(TOTAL_LABEL.into()));
    assert_eq!(cell(4, col("呼叫量 / calls")), Data::Float(4.0));

    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(r#"<pane xSplit="1" ySplit="2" topLeftCell="B3" activePane="bottomRight" state="frozen"/>"#),
        "{sheet}"
    );
    let styles = xlsx_part(&bytes, "xl/styles.xml");
    assert!(styles.contains(r#"formatCode="0.0%""#), "{styles}");
    assert!(styles.contains("<b/>"), "bold fonts");
}

#[test]
fn empty_report_exports_a_title_header_and_total() {
    let report = build_report(Vec::<&Cdr>::new(), ReportBy::Day, CHINA_UTC_OFFSET_MINUTES);
    let rows = parse_csv(&to_csv(&report));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "日期 / day");
    assert_eq!(rows[1][0], TOTAL_LABEL);
    let bytes = to_xlsx(&report).expect("xlsx");
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("open");
    let range = book.worksheet_range(SHEET_NAME).expect("sheet");
    assert_eq!(
        range.get((0, 0)),
        Some(&Data::String(
            "话务报表 按日 / by day · 无通话 / no calls (UTC+08:00)".into()
        ))
    );
    let err: ExportError = rust_xlsxwriter::XlsxError::RowColumnLimitError.into();
    assert!(err.to_string().starts_with("writing the XLSX report"));
}

#[test]
fn cdr_csv_masks_confidential_callers_and_keeps_one_record_per_call() {
    let mut c = Call::with("p1", ms(T0), "13812348000", Direction::Inbound, true);
    let (t, b, ev) = (at(c.t0), &mut c.b, &mut c.ev);
    let mut vars = Vars::new();
    vars.insert("caller".into(), "13812348000".into());
    vars.insert("note".into(), "说明, \"引号\"\n第二行".into());
    b.set_ivr_vars(vars).expect("vars");
    ok(ev, b.queued(t(0.0), "g1", Some("咨询组"), 3));
    ok(ev, b.answered(t(4.0), "1001"));
    ok(ev, b.agent_hung_up(t(60.0)));
    ok(ev, b.survey_result(t(62.0), "attitude", 5, '1'));
    ok(ev, b.survey_result(t(64.0), "efficiency", 3, '2'));
    ok(ev, b.ended(t(66.0), HangupParty::Caller, normal()));
    ok(ev, b.acw_ended(t(80.0), "1001"));
    let secret = c.cdr();
    let open = answered("p2", "g1", "1002", 8.0, &[]);

    let text = cdrs_to_csv(&[secret.clone(), open]);
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], CDR_HEADER);
    let col = |title: &str| CDR_HEADER.iter().position(|h| *h == title).expect(title);
    let (s, o) = (&rows[1], &rows[2]);
    assert_eq!(s[col("主叫号码 / caller")], "138****8000");
    assert_eq!(o[col("主叫号码 / caller")], "13812348000");
    assert_eq!(s[col("保密 / confidential")], "true");
    let vars = &s[col("IVR变量 / ivr vars")];
    assert!(
        vars.starts_with("caller=138****8000;note=说明, \"引号\"\n第二行"),
        "{vars}"
    );
    assert!(s.iter().all(|f| !f.contains("13812348000")), "{s:?}");
    assert_eq!(s[col("呼叫流水号 / serial")], "12345-20261123-p1");
    assert_eq!(
        s[col("呼叫时间 / started at")],
        T0.replace("00Z", "00.000Z")
    );
    assert_eq!(s[col("等待ms / wait ms")], "4000");
    assert_eq!(s[col("话后整理ms / acw ms")], "20000");
    assert_eq!(s[col("满意度 / survey")], "attitude=5;efficiency=3");
    assert_eq!(s[col("结果 / outcome")], "answered");
    assert_eq!(s[col("挂机方 / hung up by")], "caller");
    assert_eq!(s[col("技能组名称 / group name")], "咨询组");
    assert_eq!(
        s[col("接通时间 / connected at")],
        "2026-11-23T02:00:04.000Z"
    );
    assert_eq!(s[col("振铃时间 / ring at")], "");
    // The record itself is untouched: only the export masks.
    assert_eq!(secret.caller, "13812348000");
}
