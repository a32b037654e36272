//! The SIP roles: agent UAs that answer every INVITE with media (up to a
//! cap), and caller UAs that place one planned call each and hang up on
//! schedule.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};
use hotline::sip::stack::StackConfig;
use hotline::sip::{Incoming, Leg, LegEvent, OutboundInvite, SipStack};
use tokio::sync::mpsc;

use super::media::Media;
use super::send::Cmd;
use super::shared::Side;

pub(crate) async fn stack(
    bind: SocketAddr,
) -> Result<(SipStack, mpsc::Receiver<Incoming>), String> {
    SipStack::start(&StackConfig {
        listen: bind,
        udp: true,
        tcp: false,
        user_agent: format!("hotline-load/{}", env!("CARGO_PKG_VERSION")),
        udp_buffer_bytes: 4 * 1024 * 1024,
        journal: None,
        flood: hotline::sip::flood::FloodPolicy::off(),
        tcp_max_per_source: 1024,
        tls: None,
    })
    .await
    .map_err(|e| e.to_string())
}

/// Our media on a leg: PCMA only; SRTP only (`RTP/SAVP` with a fresh
/// SDES key) when `srtp`.
pub(crate) fn local_media(ip: Ipv4Addr, port: u16, srtp: bool) -> LocalMedia {
    LocalMedia {
        address: IpAddr::V4(ip),
        port,
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        codecs: vec![AudioCodec::Pcma],
        telephone_event: false,
        direction: Direction::SendRecv,
        sdes: if srtp {
            hotline::media::sdp::Sdes::required(hotline::media::sdp::MasterKey::random())
        } else {
            hotline::media::sdp::Sdes::OFF
        },
    }
}

pub(crate) fn nth_ip(base: Ipv4Addr, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + i as u32)
}

/// One agent UA: answer every INVITE (up to `cap` at once) with media.
pub(crate) async fn agent(
    stack: SipStack,
    mut incoming: mpsc::Receiver<Incoming>,
    ip: Ipv4Addr,
    cap: usize,
    media: Arc<Media>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while let Some(item) = incoming.recv().await {
        let invite = match item {
            Incoming::Invite(i) => i,
            Incoming::Request(req, responder) => {
                let code = if req.method() == "OPTIONS" { 200 } else { 405 };
                responder.reply(code, vec![], None).await.ok();
                continue;
            }
        };
        let shared = media.shared.clone();
        if active.load(Ordering::Relaxed) >= cap {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            invite.reject(486, vec![]).await;
            continue;
        }
        let socket = match media.bind(ip) {
            Ok(s) => s,
            Err(_) => {
                shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
                invite.reject(503, vec![]).await;
                continue;
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let offer = SessionDescription::parse(&String::from_utf8_lossy(invite.request.body()));
        let Some((answer, neg)) = offer
            .ok()
            .and_then(|o| sdp::negotiate_answer(&o, &local_media(ip, port, media.srtp)).ok())
        else {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            invite.reject(488, vec![]).await;
            continue;
        };
        let (events_tx, mut events) = stack.leg_channel();
        let leg = match invite.into_leg(&stack, &events_tx) {
            Ok(l) => l,
            Err(_) => {
                shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let body = answer.to_string().into_bytes();
        leg.progress(None);
        if leg.answer(body.clone()).is_err() {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        shared.agent_active.fetch_add(1, Ordering::Relaxed);
        shared.agent_answered.fetch_add(1, Ordering::Relaxed);
        let m = media.start(socket, &neg, Side::Agent);
        let (media, active) = (media.clone(), active.clone());
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Some((_, LegEvent::Ended(_))) | None => break,
                    Some((_, LegEvent::Reoffer { responder, .. })) => {
                        responder.respond(200, vec![], Some(body.clone())).await
                    }
                    Some(_) => {}
                }
            }
            media.stop(m, Duration::from_millis(100)).await;
            drop(leg);
            active.fetch_sub(1, Ordering::Relaxed);
            media.shared.agent_active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

pub(crate) struct CallPlan {
    pub(crate) start: Instant,
    pub(crate) hangup: Instant,
    pub(crate) target: String,
    pub(crate) from: String,
}

/// One call from a caller UA.
pub(crate) async fn call(
    stack: SipStack,
    ip: Ipv4Addr,
    proxy: SocketAddr,
    plan: CallPlan,
    media: Arc<Media>,
    setup_timeout: Duration,
) {
    tokio::time::sleep_until(plan.start.into()).await;
    let shared = media.shared.clone();
    shared.attempted.fetch_add(1, Ordering::Relaxed);
    let socket = match media.bind(ip) {
        Ok(s) => s,
        Err(_) => {
            shared.fail(1);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let offer = sdp::build_offer(&local_media(ip, port, media.srtp));
    let (events_tx, mut events) = stack.leg_channel();
    let t0 = Instant::now();
    let leg = match stack.invite(
        OutboundInvite {
            target: plan.target.clone(),
            destination: Some(proxy),
            tcp: false,
            from_user: plan.from.clone(),
            from_display: None,
            sdp: offer.to_string().into_bytes(),
            headers: vec![],
            credential: None,
            direct: false,
            route: vec![],
        },
        &events_tx,
    ) {
        Ok(l) => l,
        Err(_) => {
            shared.fail(2);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let fin = tokio::time::timeout(setup_timeout, async {
        loop {
            match events.recv().await {
                Some((_, LegEvent::Final { code, sdp })) => break (code, sdp),
                Some(_) => {}
                None => break (500, None),
            }
        }
    })
    .await;
    let (code, answer) = match fin {
        Ok(f) => f,
        Err(_) => {
            leg.hang_up().await;
            shared.fail(408);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if !(200..300).contains(&code) {
        shared.fail(code);
        shared.settled.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let neg = answer
        .and_then(|a| SessionDescription::parse(&String::from_utf8_lossy(&a)).ok())
        .and_then(|a| sdp::read_answer(&offer, &a).ok());
    let Some(neg) = neg else {
        leg.bye().await;
        shared.fail(488);
        shared.settled.fetch_add(1, Ordering::Relaxed);
        return;
    };
    shared
        .setup_ms
        .lock()
        .unwrap()
        .push(t0.elapsed().as_secs_f64() * 1000.0);
    shared.answered.fetch_add(1, Ordering::Relaxed);
    shared.live.fetch_add(1, Ordering::Relaxed);
    shared.settled.fetch_add(1, Ordering::Relaxed);
    let m = media.start(socket, &neg, Side::Caller);
    let body = offer.to_string().into_bytes();
    let remote_ended = async {
        loop {
            match events.recv().await {
                Some((_, LegEvent::Ended(_))) | None => return,
                Some((_, LegEvent::Reoffer { responder, .. })) => {
                    responder.respond(200, vec![], Some(body.clone())).await
                }
                Some(_) => {}
            }
        }
    };
    let early = tokio::select! {
        _ = tokio::time::sleep_until(plan.hangup.into()) => false,
        _ = remote_ended => true,
    };
    if early {
        shared.dropped_early.fetch_add(1, Ordering::Relaxed);
    }
    // Stop our stream, hang up, and keep receiving briefly for packets in flight.
    media.cmds.send(Cmd::Remove(m.id)).ok();
    if !early {
        leg.bye().await;
    }
    media.stop(m, Duration::from_millis(60)).await;
    shared.live.fetch_sub(1, Ordering::Relaxed);
}
