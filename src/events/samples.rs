//! Sample events of every kind, made by the real builder (for the schema
//! tests and the examples in docs/events/README.md).

use std::sync::Arc;

use super::agent::AgentEvents;
use super::builder::{CallStart, CdrBuilder, EndCause};
use super::cdr::{HangupParty, LegQuality};
use super::id::IdGenerator;
use super::model::{
    AgentStateName, Area, ConferenceChange, Direction, Event, Party, PartyRole, RecordingInfo,
    TransferFailure, TransferFailureReason, TransferKind, TransferMode, TransferReturn, Vars,
};

/// 2024-02-29T08:00:00Z.
pub const T0: i64 = 1_709_193_600_000;

/// A call's start facts.
pub fn start(call: &str, caller: &str) -> CallStart {
    CallStart {
        call_id: call.into(),
        serial: format!("12345-20240229-{call}"),
        tenant: "nanning".into(),
        direction: Direction::Inbound,
        caller: caller.into(),
        called: "12345".into(),
        caller_area: Some(Area {
            code: "0771".into(),
            region: "广西壮族自治区南宁市".into(),
        }),
        confidential: false,
    }
}

/// Shorthand: the events of a fact, which must be accepted.
fn ok(r: Result<Vec<Event>, super::error::EventError>, out: &mut Vec<Event>) {
    match r {
        Ok(events) => out.extend(events),
        Err(e) => panic!("sample fact refused: {e}"),
    }
}

/// One leg's quality.
pub fn quality(leg: &str) -> LegQuality {
    LegQuality {
        leg: leg.into(),
        received: 9_950,
        lost: 50,
        loss_fraction: 0.0,
        jitter_ms: 3.25,
        peer_fraction_lost: Some(0.0039),
        peer_jitter_ms: Some(2.5),
        rtt_ms: Some(41.0),
        rtcp_sent: 40,
        rtcp_received: 39,
        refused: 0,
    }
}

/// A full answered call touching every call event kind but voicemail, a
/// voicemail call, and an agent state change: every kind at least once.
pub fn events() -> Vec<Event> {
    let ids = Arc::new(IdGenerator::new("n1", 1));
    let mut out = Vec::new();
    let (mut b, first) =
        CdrBuilder::started(ids.clone(), T0, start("c-1", "13812348000")).expect("start");
    out.push(first);
    let t = |s: i64| T0 + s * 1000;
    ok(
        b.ivr_step(t(0), "12345", "2024.02.1", "welcome", "play"),
        &mut out,
    );
    ok(
        b.ivr_step(t(5), "12345", "2024.02.1", "main_menu", "menu"),
        &mut out,
    );
    ok(b.agent_requested(t(9)), &mut out);
    ok(
        b.ivr_step(t(9), "12345", "2024.02.1", "to_agents", "queue"),
        &mut out,
    );
    b.recording_started("rec-c-1", "2024/02/29/c-1.wav")
        .expect("rec");
    ok(b.queued(t(9), "complaints", Some("投诉组"), 5), &mut out);
    ok(b.offered(t(21), "1001"), &mut out);
    ok(b.offer_cancelled(t(36), "1001"), &mut out);
    ok(b.offered(t(36), "1002"), &mut out);
    ok(b.answered(t(40), "1002"), &mut out);
    ok(b.held(t(100)), &mut out);
    ok(b.resumed(t(130)), &mut out);
    let caller = Party {
        role: PartyRole::Caller,
        id: "13812348000".into(),
    };
    let agent = Party {
        role: PartyRole::Agent,
        id: "1002".into(),
    };
    let police = Party {
        role: PartyRole::External,
        id: "110".into(),
    };
    ok(
        b.conference_changed(
            t(150),
            ConferenceChange::Joined,
            police.clone(),
            vec![caller.clone(), agent.clone(), police.clone()],
        ),
        &mut out,
    );
    ok(
        b.conference_changed(t(200), ConferenceChange::Left, police, vec![caller, agent]),
        &mut out,
    );
    ok(
        b.transferred(t(220), TransferKind::Agent, "1003", TransferMode::Attended),
        &mut out,
    );
    ok(b.answered(t(220), "1003"), &mut out);
    ok(b.acw_ended(t(250), "1002"), &mut out);
    ok(b.agent_hung_up(t(300)), &mut out);
    ok(
        b.ivr_step(t(300), "survey", "3", "rate", "survey"),
        &mut out,
    );
    ok(b.survey_result(t(305), "attitude", 5, '1'), &mut out);
    ok(b.survey_result(t(308), "resolution", 4, '2'), &mut out);
    let mut vars = Vars::new();
    vars.insert("caller".into(), "13812348000".into());
    vars.insert("menu_main_menu".into(), "2".into());
    b.set_ivr_vars(vars).expect("vars");
    b.leg_quality(quality("caller")).expect("q");
    b.leg_quality(quality("agent:1003")).expect("q");
    ok(
        b.ended(
            t(310),
            HangupParty::Caller,
            EndCause {
                reason: Some("normal".into()),
                ..EndCause::default()
            },
        ),
        &mut out,
    );
    ok(b.acw_ended(t(330), "1003"), &mut out);
    let rec = RecordingInfo {
        id: "rec-c-1".into(),
        path: "2024/02/29/c-1.wav".into(),
        duration_ms: 270_000,
        bytes: 8_640_044,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        dropped_chunks: 0,
    };
    ok(b.recording_ready(t(311), rec), &mut out);

    let (mut v, first) =
        CdrBuilder::started(ids.clone(), t(1000), start("c-2", "07712345678")).expect("start");
    out.push(first);
    ok(v.queued(t(1005), "consult", None, 1), &mut out);
    ok(v.queue_timed_out(t(1125)), &mut out);
    ok(
        v.voicemail_saved(t(1160), "voicemail/c-2.wav", 31_000),
        &mut out,
    );
    ok(
        v.ended(t(1161), HangupParty::Caller, EndCause::default()),
        &mut out,
    );

    // A blind transfer the target refused: the caller is back with 1001.
    let (mut r, first) =
        CdrBuilder::started(ids.clone(), t(2000), start("c-3", "13900001111")).expect("start");
    out.push(first);
    ok(r.queued(t(2002), "complaints", Some("投诉组"), 0), &mut out);
    ok(r.offered(t(2004), "1001"), &mut out);
    ok(r.answered(t(2006), "1001"), &mut out);
    ok(
        r.transferred(t(2060), TransferKind::Agent, "1004", TransferMode::Blind),
        &mut out,
    );
    ok(r.offered(t(2060), "1004"), &mut out);
    let failure = TransferFailure {
        reason: TransferFailureReason::Busy,
        sip_code: Some(486),
        back_to: TransferReturn::Agent,
        back_to_id: Some("1001".into()),
    };
    ok(
        r.transfer_failed(
            t(2061),
            Some("1001"),
            TransferKind::Agent,
            "1004",
            TransferMode::Blind,
            failure,
        ),
        &mut out,
    );
    ok(r.offered(t(2061), "1001"), &mut out);
    ok(r.answered(t(2063), "1001"), &mut out);
    ok(r.acw_ended(t(2063), "1001"), &mut out);
    ok(
        r.ended(t(2120), HangupParty::Caller, EndCause::default()),
        &mut out,
    );
    ok(r.acw_ended(t(2130), "1001"), &mut out);

    let mut agents = AgentEvents::new(ids);
    agents.resume("nanning", "1002", 7, AgentStateName::Talking);
    out.push(
        agents
            .changed(
                t(300),
                "nanning",
                "1002",
                AgentStateName::AfterCallWork,
                None,
                Some("c-1"),
            )
            .expect("agent"),
    );
    out
}
