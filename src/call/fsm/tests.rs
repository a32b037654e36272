//! Scenarios of a connected call in virtual time (issue 13 §4): each names
//! a path or a race and asserts the exact SIP requests and responses,
//! media changes and record facts hotline produces. The randomized
//! interleaving test is `interleavings_tests`, supervision's scenarios
//! `supervise_tests`, attended transfers' `consult_tests`.

use super::kit::*;
use super::*;
use crate::media::sdp::Direction;

fn carrier_offer(direction: Direction, version: u64) -> String {
    phone_sdp(CARRIER_RTP, direction, version)
}

fn agent_offer(direction: Direction, version: u64) -> String {
    phone_sdp(AGENT_RTP, direction, version)
}

/// `side` re-INVITEs with `direction`; hotline reflects it to the other
/// side and answers nobody yet: (the transaction, our re-INVITE, its SDP).
fn reflected(call: &mut Call, side: Side, direction: Direction) -> (TxId, ReqId, Vec<u8>) {
    let sdp = match side {
        Side::A => carrier_offer(direction, 2),
        Side::B => agent_offer(direction, 2),
    };
    let (tx, out) = call.reoffer(side, &sdp);
    let other = reoffer::other(side);
    let (req, forwarded) = reinvite_on(&out, other);
    let responses: Vec<u16> = out
        .iter()
        .filter_map(|o| match o {
            Output::Respond { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        responses,
        [100],
        "only 100 Trying before the other side answers: {out:#?}"
    );
    (tx, req, forwarded)
}

/// The other side answers our re-INVITE `req` (offer `sdp`) with
/// `direction` from `addr`.
fn answered(
    call: &mut Call,
    req: ReqId,
    sdp: &[u8],
    addr: &str,
    direction: Direction,
) -> Vec<Output> {
    let answer = phone_answer(sdp, addr, direction);
    call.input(Input::ReinviteDone {
        req,
        result: Ok((200, answer)),
    })
}

// ---- re-INVITE reflection ----

#[test]
fn carrier_hold_is_reflected_to_the_agent_and_answered_with_its_answer() {
    let mut call = Call::new();
    let (tx, req, sdp) = reflected(&mut call, Side::A, Direction::SendOnly);
    assert_eq!(direction_of(&sdp), Direction::SendOnly);
    let out = answered(&mut call, req, &sdp, AGENT_RTP, Direction::RecvOnly);
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    assert_eq!(direction_of(&body.expect("answer")), Direction::RecvOnly);
    assert!(call.fsm.end().is_none());
}

#[test]
fn carrier_hold_sets_the_relay_on_hold_and_unhold_takes_it_off() {
    let mut call = Call::new();
    let (_, out) = call.reoffer(Side::A, &carrier_offer(Direction::SendOnly, 2));
    assert_eq!(media(&out), [Media::SetHold(true)]);
    let (req, sdp) = reinvite_on(&out, Side::B);
    answered(&mut call, req, &sdp, AGENT_RTP, Direction::RecvOnly);
    let (tx, out) = call.reoffer(Side::A, &carrier_offer(Direction::SendRecv, 3));
    assert_eq!(media(&out), [Media::SetHold(false)]);
    let (req, sdp) = reinvite_on(&out, Side::B);
    assert_eq!(direction_of(&sdp), Direction::SendRecv);
    let out = answered(&mut call, req, &sdp, AGENT_RTP, Direction::SendRecv);
    assert_eq!(response_to(&out, tx).0, 200);
}

#[test]
fn a_carrier_hold_is_not_a_held_fact_only_the_agents_side_holds_the_caller() {
    let mut call = Call::new();
    let (_, out) = call.reoffer(Side::A, &carrier_offer(Direction::SendOnly, 2));
    assert!(facts(&out).is_empty());
    assert!(!call.fsm.held());
}

#[test]
fn our_session_version_grows_with_every_offer_on_a_leg() {
    let mut call = Call::new();
    let (_, req, first) = reflected(&mut call, Side::A, Direction::SendOnly);
    answered(&mut call, req, &first, AGENT_RTP, Direction::RecvOnly);
    let (_, _, second) = reflected(&mut call, Side::A, Direction::SendRecv);
    let v = |b: &[u8]| {
        crate::media::sdp::SessionDescription::parse(&String::from_utf8_lossy(b))
            .expect("sdp")
            .session_version
    };
    assert!(v(&second) > v(&first), "{} then {}", v(&first), v(&second));
}

#[test]
fn an_address_change_moves_the_rtp_target_of_that_side() {
    let mut call = Call::new();
    let (tx, out) = call.reoffer(
        Side::A,
        &phone_sdp("192.0.2.11:4100", Direction::SendRecv, 2),
    );
    assert_eq!(
        media(&out)[0],
        Media::SetRemote {
            side: Side::A,
            addr: "192.0.2.11:4100".parse().expect("addr")
        }
    );
    let (req, sdp) = reinvite_on(&out, Side::B);
    let out = answered(&mut call, req, &sdp, "192.0.2.21:5100", Direction::SendRecv);
    assert_eq!(
        media(&out),
        [Media::SetRemote {
            side: Side::B,
            addr: "192.0.2.21:5100".parse().expect("addr")
        }]
    );
    assert_eq!(response_to(&out, tx).0, 200);
}

#[test]
fn an_rfc_2543_hold_keeps_the_old_address_and_is_forwarded_sendonly() {
    let mut call = Call::new();
    let held = phone_sdp(CARRIER_RTP, Direction::SendRecv, 2)
        .replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
    let (_, out) = call.reoffer(Side::A, &held);
    assert!(!media(&out)
        .iter()
        .any(|m| matches!(m, Media::SetRemote { .. })));
    let (_, sdp) = reinvite_on(&out, Side::B);
    assert_eq!(direction_of(&sdp), Direction::SendOnly);
}

#[test]
fn the_reflected_offer_keeps_the_other_legs_codec_and_event_payload_type() {
    let mut call = Call::with(|s| {
        s.b_format = LegFormat {
            codec: crate::media::sdp::AudioCodec::Pcmu,
            telephone_event: Some(96),
        }
    });
    let (_, _, sdp) = reflected(&mut call, Side::A, Direction::SendOnly);
    let text = String::from_utf8_lossy(&sdp);
    assert!(text.contains("m=audio 30002 RTP/AVP 0 96"), "{text}");
    assert!(text.contains("a=rtpmap:96 telephone-event/8000"), "{text}");
    assert!(!text.contains("PCMA"), "{text}");
}

#[test]
fn the_other_side_refusing_the_reinvite_is_answered_locally() {
    let mut call = Call::new();
    let (tx, req, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let out = call.input(Input::ReinviteDone {
        req,
        result: Ok((488, Vec::new())),
    });
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    assert_eq!(direction_of(&body.expect("answer")), Direction::RecvOnly);
}

#[test]
fn the_other_sides_reinvite_timing_out_is_answered_locally() {
    let mut call = Call::new();
    let (tx, req, _) = reflected(&mut call, Side::B, Direction::SendRecv);
    let out = call.input(Input::ReinviteDone {
        req,
        result: Err("Timer B".into()),
    });
    assert_eq!(response_to(&out, tx).0, 200);
    assert!(call.fsm.end().is_none());
}

#[test]
fn an_unreadable_answer_from_the_other_side_is_answered_with_the_reverse_direction() {
    let mut call = Call::new();
    let (tx, req, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let out = call.input(Input::ReinviteDone {
        req,
        result: Ok((200, b"not sdp".to_vec())),
    });
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    assert_eq!(direction_of(&body.expect("answer")), Direction::RecvOnly);
}

#[test]
fn an_offerless_reinvite_gets_our_current_offer_at_once() {
    let mut call = Call::new();
    let (tx, out) = call.reoffer(Side::A, "");
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    let text = String::from_utf8(body.expect("offer")).expect("utf-8");
    assert!(text.contains("m=audio 30000 RTP/AVP 8 101"), "{text}");
    assert!(!out.iter().any(|o| matches!(o, Output::Reinvite { .. })));
}

#[test]
fn unreadable_sdp_in_a_reinvite_gets_488_and_the_call_goes_on() {
    let mut call = Call::new();
    let (tx, out) = call.reoffer(Side::A, "v=0\r\ngarbage");
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(response_to(&out, tx).0, 488);
    assert!(call.fsm.end().is_none());
    // And the next re-INVITE is reflected as usual.
    reflected(&mut call, Side::A, Direction::SendOnly);
}

#[test]
fn an_info_is_answered_200() {
    let mut call = Call::new();
    let (tx, out) = call.info(Side::A);
    assert_eq!(response_to(&out, tx).0, 200);
}

// ---- a pending re-INVITE is a state: races ----

#[test]
fn carrier_bye_while_a_reinvite_to_the_agent_is_pending_ends_at_once() {
    let mut call = Call::new();
    let (tx, _, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::CallerHungUp));
}

#[test]
fn agent_bye_while_its_reinvite_is_pending_answers_the_carrier_487_and_hangs_up() {
    let mut call = Call::new();
    let (tx, _, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let out = call.input(Input::Ended { side: Side::B });
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn silence_while_a_reinvite_is_pending_clears_both_legs() {
    // Without music the agent's hold is reflected to the caller.
    let mut call = Call::with(|s| s.music_loaded = false);
    let (tx, _, _) = reflected(&mut call, Side::B, Direction::SendOnly);
    let out = call.input(Input::Silent);
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::A, Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::Silence));
}

#[test]
fn a_release_from_the_api_while_a_reinvite_is_pending_is_done_at_once() {
    let mut call = Call::new();
    let (tx, _, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let (r, out) = call.command(Command::Hangup);
    assert_eq!(r, Ok(()));
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::A, Side::B]);
}

#[test]
fn api_hold_while_a_reinvite_is_pending_is_done_at_once() {
    let mut call = Call::new();
    reflected(&mut call, Side::A, Direction::SendOnly);
    let (r, out) = call.command(Command::Hold(true));
    assert_eq!(r, Ok(()));
    assert_eq!(media(&out), [Media::MusicOnHold(true)]);
}

#[test]
fn an_answer_arriving_after_the_call_ended_changes_nothing() {
    let mut call = Call::new();
    let (_, req, sdp) = reflected(&mut call, Side::A, Direction::SendOnly);
    call.input(Input::Ended { side: Side::A });
    let out = answered(&mut call, req, &sdp, AGENT_RTP, Direction::RecvOnly);
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn a_second_reinvite_from_the_same_side_while_pending_gets_500_with_retry_after() {
    let mut call = Call::new();
    let (_, _, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    call.now = Now::from_unix_millis(12_345);
    let (tx, out) = call.reoffer(Side::A, &carrier_offer(Direction::SendRecv, 3));
    let found = out.iter().find_map(|o| match o {
        Output::Respond {
            tx: t,
            code,
            headers,
            ..
        } if *t == tx => Some((*code, headers.clone())),
        _ => None,
    });
    let (code, headers) = found.expect("a response");
    assert_eq!(code, 500);
    let secs: u64 = headers
        .iter()
        .find(|(n, _)| n == "Retry-After")
        .expect("Retry-After")
        .1
        .parse()
        .expect("seconds");
    assert!(secs <= 10);
    assert_eq!(out.len(), 1, "{out:#?}");
}

#[test]
fn a_reinvite_from_the_side_we_are_reinviting_is_glare_491() {
    let mut call = Call::new();
    let (first, req, sdp) = reflected(&mut call, Side::A, Direction::SendOnly);
    let (tx, out) = call.reoffer(Side::B, &agent_offer(Direction::SendOnly, 2));
    assert_eq!(response_to(&out, tx).0, 491);
    assert_eq!(out.len(), 1);
    // Ours still completes.
    let out = answered(&mut call, req, &sdp, AGENT_RTP, Direction::RecvOnly);
    assert_eq!(response_to(&out, first).0, 200);
}

#[test]
fn a_late_answer_to_an_older_reinvite_is_ignored() {
    let mut call = Call::new();
    let (tx, req, sdp) = reflected(&mut call, Side::A, Direction::SendOnly);
    let out = answered(
        &mut call,
        ReqId(req.0 + 100),
        &sdp,
        AGENT_RTP,
        Direction::RecvOnly,
    );
    assert!(out.is_empty());
    let out = answered(&mut call, req, &sdp, AGENT_RTP, Direction::RecvOnly);
    assert_eq!(response_to(&out, tx).0, 200);
}

#[test]
fn a_request_after_the_end_gets_481() {
    let mut call = Call::new();
    call.input(Input::Ended { side: Side::B });
    let (tx, out) = call.reoffer(Side::A, &carrier_offer(Direction::SendOnly, 2));
    assert_eq!(response_to(&out, tx).0, 481);
    let (tx, out) = call.info(Side::A);
    assert_eq!(response_to(&out, tx).0, 481);
}

// ---- the agent's hold ----

#[test]
fn the_agents_hold_plays_music_to_the_caller_who_sees_no_reinvite() {
    let mut call = Call::new();
    let (tx, out) = call.reoffer(Side::B, &agent_offer(Direction::SendOnly, 2));
    assert!(!out.iter().any(|o| matches!(o, Output::Reinvite { .. })));
    assert_eq!(media(&out), [Media::MusicOnHold(true)]);
    assert_eq!(facts(&out), [Fact::Held]);
    let (code, body) = response_to(&out, tx);
    assert_eq!(code, 200);
    // Hotline keeps sending (music), the phone only receives.
    assert_eq!(direction_of(&body.expect("answer")), Direction::RecvOnly);
    assert!(call.fsm.held());
}

#[test]
fn the_agents_resume_stops_the_music() {
    let mut call = Call::new();
    call.reoffer(Side::B, &agent_offer(Direction::SendOnly, 2));
    let (tx, out) = call.reoffer(Side::B, &agent_offer(Direction::SendRecv, 3));
    assert_eq!(media(&out), [Media::MusicOnHold(false)]);
    assert_eq!(facts(&out), [Fact::Resumed]);
    assert_eq!(response_to(&out, tx).0, 200);
    assert!(!call.fsm.held());
}

#[test]
fn without_music_the_agents_hold_is_reflected_to_the_caller() {
    let mut call = Call::with(|s| s.music_loaded = false);
    let (_, out) = call.reoffer(Side::B, &agent_offer(Direction::SendOnly, 2));
    assert_eq!(facts(&out), [Fact::Held]);
    let (_, sdp) = reinvite_on(&out, Side::A);
    assert_eq!(direction_of(&sdp), Direction::SendOnly);
}

#[test]
fn the_agent_moving_its_address_while_holding_moves_the_rtp_target() {
    let mut call = Call::new();
    let (_, out) = call.reoffer(
        Side::B,
        &phone_sdp("192.0.2.22:5200", Direction::SendOnly, 2),
    );
    assert!(media(&out).contains(&Media::SetRemote {
        side: Side::B,
        addr: "192.0.2.22:5200".parse().expect("addr")
    }));
}

// ---- commands ----

#[test]
fn api_hold_and_resume_play_and_stop_music_with_facts() {
    let mut call = Call::new();
    let (r, out) = call.command(Command::Hold(true));
    assert_eq!(r, Ok(()));
    assert_eq!(media(&out), [Media::MusicOnHold(true)]);
    assert_eq!(facts(&out), [Fact::Held]);
    let (r, out) = call.command(Command::Hold(false));
    assert_eq!(r, Ok(()));
    assert_eq!(media(&out), [Media::MusicOnHold(false)]);
    assert_eq!(facts(&out), [Fact::Resumed]);
}

#[test]
fn api_hold_twice_or_resume_without_hold_is_refused() {
    let mut call = Call::new();
    assert!(call.command(Command::Hold(false)).0.is_err());
    assert_eq!(call.command(Command::Hold(true)).0, Ok(()));
    let (r, out) = call.command(Command::Hold(true));
    assert_eq!(r, Err("the caller is already on hold".into()));
    assert!(out.is_empty());
}

#[test]
fn api_hold_without_music_is_refused() {
    let mut call = Call::with(|s| s.music_loaded = false);
    let (r, out) = call.command(Command::Hold(true));
    assert_eq!(r, Err("no music on hold is loaded".into()));
    assert!(out.is_empty());
}

#[test]
fn a_blind_transfer_byes_the_agent_and_keeps_the_caller() {
    let mut call = Call::new();
    let target = crate::ivr::TransferTarget::Group("general".into());
    let (r, out) = call.command(Command::Transfer(target.clone()));
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::Transfer(target)));
    assert!(call.fsm.keeps_caller());
}

#[test]
fn a_blind_transfer_of_an_outbound_call_is_refused_and_changes_nothing() {
    let mut call = Call::with(|s| s.blind_transfer = false);
    let (r, out) = call.command(Command::Transfer(crate::ivr::TransferTarget::Group(
        "general".into(),
    )));
    assert!(r.is_err());
    assert!(out.is_empty());
    assert!(call.fsm.end().is_none());
}

#[test]
fn to_survey_byes_the_agent_and_keeps_the_caller_when_the_flow_goes_on() {
    let mut call = Call::with(|s| s.keep_caller = true);
    let (r, out) = call.command(Command::ToSurvey);
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
    assert!(call.fsm.keeps_caller());
}

#[test]
fn to_survey_without_a_survey_is_refused() {
    let mut call = Call::new();
    let (r, out) = call.command(Command::ToSurvey);
    assert!(r.is_err());
    assert!(out.is_empty());
}

#[test]
fn commands_after_the_end_are_refused() {
    let mut call = Call::new();
    call.input(Input::Ended { side: Side::A });
    assert_eq!(
        call.command(Command::Hangup).0,
        Err("the call is over".into())
    );
}

// ---- who hangs up ----

#[test]
fn the_caller_hanging_up_byes_the_agent_only() {
    let mut call = Call::with(|s| s.keep_caller = true);
    let out = call.input(Input::Ended { side: Side::A });
    assert_eq!(byes(&out), [Side::B]);
    assert!(!call.fsm.keeps_caller());
}

#[test]
fn the_agent_hanging_up_keeps_the_caller_when_the_flow_goes_on() {
    let mut call = Call::with(|s| s.keep_caller = true);
    let out = call.input(Input::Ended { side: Side::B });
    assert!(byes(&out).is_empty());
    assert!(call.fsm.keeps_caller());
}

#[test]
fn the_agent_hanging_up_byes_the_caller_otherwise() {
    let mut call = Call::new();
    let out = call.input(Input::Ended { side: Side::B });
    assert_eq!(byes(&out), [Side::A]);
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
}

#[test]
fn shutdown_byes_both_legs() {
    let mut call = Call::new();
    let out = call.input(Input::Shutdown);
    assert_eq!(byes(&out), [Side::A, Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::Shutdown));
}

// ---- session refresh ----

#[test]
fn both_legs_are_refreshed_every_interval() {
    let mut call = Call::new();
    assert_eq!(call.fsm.poll_timeout(), Some(Now::UNIX_EPOCH + REFRESH));
    let out = call.advance(REFRESH);
    let sides: Vec<Side> = out
        .iter()
        .filter_map(|o| match o {
            Output::Refresh { side, .. } => Some(*side),
            _ => None,
        })
        .collect();
    assert_eq!(sides, [Side::A, Side::B]);
    assert_eq!(call.fsm.poll_timeout(), Some(Now::UNIX_EPOCH + REFRESH * 2));
}

#[test]
fn a_481_to_a_refresh_clears_the_call() {
    let mut call = Call::new();
    let out = call.advance(REFRESH);
    let req = out
        .iter()
        .find_map(|o| match o {
            Output::Refresh { side: Side::B, req } => Some(*req),
            _ => None,
        })
        .expect("refresh");
    let out = call.input(Input::RefreshDone {
        side: Side::B,
        req,
        result: Ok(481),
    });
    assert_eq!(byes(&out), [Side::A, Side::B]);
    assert_eq!(call.fsm.end(), Some(&End::RefreshFailed));
    assert_eq!(call.fsm.poll_timeout(), None);
}

#[test]
fn a_refresh_still_out_is_not_sent_again() {
    let mut call = Call::new();
    let first = call.advance(REFRESH);
    assert_eq!(first.len(), 2);
    let second = call.advance(REFRESH);
    assert!(second.is_empty(), "{second:#?}");
    for o in first {
        if let Output::Refresh { side, req } = o {
            call.input(Input::RefreshDone {
                side,
                req,
                result: Ok(200),
            });
        }
    }
    assert_eq!(call.advance(REFRESH).len(), 2);
}

#[test]
fn no_refresh_when_disabled() {
    let mut call = Call::with(|s| s.refresh_every = None);
    assert_eq!(call.fsm.poll_timeout(), None);
    assert!(call.advance(REFRESH * 10).is_empty());
}

// ---- consultations ----

#[test]
fn a_consultation_holds_the_caller_out_of_the_mix_with_music() {
    let mut call = Call::new();
    assert_eq!(call.fsm.begin_consult("A02", false), Ok(()));
    let out = call.drain();
    assert_eq!(
        media(&out),
        [Media::MusicOnHold(true), Media::MuteCaller(true)]
    );
    assert_eq!(facts(&out), [Fact::Held]);
    assert_eq!(call.fsm.cancel_consult(), Ok("A02".into()));
    let out = call.drain();
    assert_eq!(
        media(&out),
        [Media::MuteCaller(false), Media::MusicOnHold(false)]
    );
    assert_eq!(facts(&out), [Fact::Resumed]);
}

#[test]
fn a_consultation_of_a_held_caller_records_no_second_hold() {
    let mut call = Call::new();
    assert_eq!(call.command(Command::Hold(true)).0, Ok(()));
    call.drain();
    assert_eq!(call.fsm.begin_consult("A02", false), Ok(()));
    assert!(facts(&call.drain()).is_empty());
}

// ---- the survey hand-over ----

#[test]
fn the_survey_hand_over_answers_a_pending_caller_reinvite_487_and_keeps_the_caller() {
    let mut call = Call::with(|s| s.keep_caller = true);
    let (tx, _, _) = reflected(&mut call, Side::A, Direction::SendOnly);
    let (r, out) = call.command(Command::ToSurvey);
    assert_eq!(r, Ok(()));
    assert_eq!(response_to(&out, tx).0, 487);
    assert_eq!(byes(&out), [Side::B]);
    assert!(call.fsm.keeps_caller());
}

#[test]
fn the_caller_hanging_up_during_the_survey_is_the_flows_news_not_the_calls() {
    let mut call = Call::with(|s| s.keep_caller = true);
    assert_eq!(call.command(Command::ToSurvey).0, Ok(()));
    // The caller is the flow's again: their BYE changes nothing here and
    // gets no BYE from the call.
    assert!(call.input(Input::Ended { side: Side::A }).is_empty());
    assert_eq!(call.fsm.end(), Some(&End::AgentHungUp));
    assert!(call.fsm.keeps_caller());
    // Nor do late answers to the legs' refreshes.
    assert!(call.advance(REFRESH * 2).is_empty());
}

#[test]
fn the_caller_hanging_up_before_the_survey_hand_over_leaves_no_survey() {
    let mut call = Call::with(|s| s.keep_caller = true);
    assert_eq!(byes(&call.input(Input::Ended { side: Side::A })), [Side::B]);
    let (r, out) = call.command(Command::ToSurvey);
    assert_eq!(r, Err("the call is over".into()));
    assert!(out.is_empty());
    assert!(!call.fsm.keeps_caller());
}

#[test]
fn the_survey_hand_over_during_a_consultation_byes_the_agent_and_keeps_the_caller() {
    let mut call = Call::with(|s| s.keep_caller = true);
    call.fsm.begin_consult("A02", false).expect("consulting");
    call.drain();
    let (r, out) = call.command(Command::ToSurvey);
    assert_eq!(r, Ok(()));
    assert_eq!(byes(&out), [Side::B]);
    assert!(call.fsm.keeps_caller());
    // The consulted party's news comes too late to change anything.
    assert!(!call.fsm.consult_failed("A02"));
    assert!(call.drain().is_empty());
}

#[test]
fn the_survey_hand_over_is_one_bye_to_the_agent_even_when_its_bye_crosses() {
    let mut call = Call::with(|s| s.keep_caller = true);
    let (_, out) = call.command(Command::ToSurvey);
    assert_eq!(byes(&out), [Side::B]);
    assert!(call.input(Input::Ended { side: Side::B }).is_empty());
    assert_eq!(
        call.command(Command::ToSurvey).0,
        Err("the call is over".into())
    );
}
