//! A scripted SIP phone for tests and for people: `hotline dial` (call a
//! number, as a carrier or a citizen would) and `hotline phone` (register as
//! an agent and answer). It speaks real SIP through our own stack, negotiates
//! SDP, sends 20 ms G.711 RTP from a WAV file or a tone, can record what it
//! hears to a WAV, and prints one JSON report per call (final status, RTP
//! sent/received, received signal level) so tests can assert on audio.
//!
//! Shell code: it reads the clock and sockets. One call at a time per
//! phone; enough for tests and for trying hotline by hand.

mod media;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::media::ports::PortPool;
use crate::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};
use crate::sip::stack::{Incoming, OutboundInvite, StackConfig};
use crate::sip::{Leg, LegEvent, SipStack};

pub use media::{Audio, DtmfMode, MediaStats};

/// Phone errors.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The SIP stack failed to start.
    #[error(transparent)]
    Sip(#[from] crate::sip::SipError),
    /// No RTP ports.
    #[error(transparent)]
    Ports(#[from] crate::media::ports::PortError),
    /// Registration refused.
    #[error("registration at {registrar} failed with status {code}")]
    Register {
        /// Registrar.
        registrar: SocketAddr,
        /// Final status.
        code: u16,
    },
    /// An audio file could not be read or written.
    #[error("{path}: {reason}")]
    Audio {
        /// File.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What the phone does with media during a call.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// What to send.
    pub audio: Audio,
    /// Write what is heard (8 kHz mono 16-bit WAV).
    pub record: Option<PathBuf>,
    /// Hang up this long after the call is answered (None: wait for BYE).
    pub hangup_after: Option<Duration>,
    /// Press these keys this long after the answer.
    pub dtmf: Vec<(Duration, String)>,
    /// How keys are sent.
    pub dtmf_mode: DtmfMode,
}

/// The outcome of one call.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Final SIP status of the INVITE (200 when answered).
    pub status: u16,
    /// Who ended the call: "local", "remote" or "none" (never connected).
    pub ended_by: &'static str,
    /// Milliseconds between answer and end.
    pub talk_ms: u64,
    /// RTP counters and levels.
    pub media: MediaStats,
}

/// Bind a phone's SIP stack on `bind` (UDP only).
async fn stack(bind: SocketAddr) -> Result<(SipStack, mpsc::Receiver<Incoming>), PhoneError> {
    Ok(SipStack::start(&StackConfig {
        listen: bind,
        udp: true,
        tcp: false,
        user_agent: format!("hotline-phone/{}", env!("CARGO_PKG_VERSION")),
        udp_buffer_bytes: 0,
        journal: None,
        flood: crate::sip::flood::FloodPolicy::off(),
        tcp_max_per_source: 1024,
        tls: None,
    })
    .await?)
}

fn ports(bind: SocketAddr) -> PortPool {
    PortPool::new(bind.ip(), 40000, 49999)
}

fn local_media(bind: SocketAddr, port: u16) -> LocalMedia {
    LocalMedia {
        address: bind.ip(),
        port,
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
        telephone_event: true,
        direction: Direction::SendRecv,
        sdes: crate::media::sdp::Sdes::OFF,
    }
}

/// Call `target` (a SIP URI) through `proxy`, as user `from`, answering a
/// digest challenge with `credential` (user, password) when given.
pub async fn dial(
    bind: SocketAddr,
    proxy: SocketAddr,
    target: &str,
    from: &str,
    credential: Option<(String, String)>,
    script: &Script,
) -> Result<Report, PhoneError> {
    let (stack, _incoming) = stack(bind).await?;
    let pair = ports(bind).allocate().await?;
    let offer = sdp::build_offer(&local_media(bind, pair.port()));
    let (events_tx, mut events) = stack.leg_channel();
    let leg = stack.invite(
        OutboundInvite {
            target: target.to_string(),
            destination: Some(proxy),
            tcp: false,
            from_user: from.to_string(),
            from_display: None,
            sdp: offer.to_string().into_bytes(),
            headers: vec![],
            credential,
            direct: false,
            route: vec![],
        },
        &events_tx,
    )?;
    let (status, answer) = loop {
        match events.recv().await {
            Some((_, LegEvent::Final { code, sdp })) => break (code, sdp),
            Some((_, ev)) => debug!(?ev, "progress"),
            None => break (500, None),
        }
    };
    if !(200..300).contains(&status) {
        info!(status, "call not answered");
        return Ok(Report {
            status,
            ended_by: "none",
            talk_ms: 0,
            media: MediaStats::default(),
        });
    }
    let answer = SessionDescription::parse(&String::from_utf8_lossy(&answer.unwrap_or_default()));
    let negotiated = answer.ok().and_then(|a| sdp::read_answer(&offer, &a).ok());
    let Some(neg) = negotiated else {
        leg.bye().await;
        return Ok(Report {
            status: 488,
            ended_by: "local",
            talk_ms: 0,
            media: MediaStats::default(),
        });
    };
    let (ended_by, talk, stats) = talk(pair, neg, script, async {
        loop {
            match events.recv().await {
                Some((_, LegEvent::Ended(_))) | None => return,
                Some((_, LegEvent::Reoffer { responder, .. })) => {
                    responder
                        .respond(200, vec![], Some(offer.to_string().into_bytes()))
                        .await
                }
                Some(_) => {}
            }
        }
    })
    .await?;
    if ended_by == "local" {
        leg.bye().await;
    }
    stack.shutdown();
    Ok(Report {
        status,
        ended_by,
        talk_ms: talk.as_millis() as u64,
        media: stats,
    })
}

/// Register as `user` at `registrar` and answer `calls` calls (after
/// `answer_after`), printing a report per call through `on_report`.
#[allow(clippy::too_many_arguments)]
pub async fn answer(
    bind: SocketAddr,
    registrar: SocketAddr,
    user: &str,
    password: &str,
    calls: usize,
    answer_after: Duration,
    script: &Script,
    mut on_report: impl FnMut(&Report),
) -> Result<(), PhoneError> {
    let (stack, mut incoming) = stack(bind).await?;
    let mut registration = stack.outbound_registration(registrar, false, user, password);
    registration
        .register(600)
        .await
        .map_err(|code| PhoneError::Register { registrar, code })?;
    info!(%user, %registrar, "registered");
    let pool = ports(bind);
    let mut answered = 0;
    while answered < calls {
        let Some(item) = incoming.recv().await else {
            break;
        };
        let invite = match item {
            Incoming::Invite(i) => i,
            Incoming::Request(req, responder) => {
                let code = if req.method() == "OPTIONS" { 200 } else { 405 };
                responder.reply(code, vec![], None).await.ok();
                continue;
            }
        };
        let pair = pool.allocate().await?;
        let offer = SessionDescription::parse(&String::from_utf8_lossy(invite.request.body()));
        let negotiated = offer
            .ok()
            .and_then(|o| sdp::negotiate_answer(&o, &local_media(bind, pair.port())).ok());
        let Some((answer_sdp, neg)) = negotiated else {
            invite.reject(488, vec![]).await;
            continue;
        };
        let (events_tx, mut events) = stack.leg_channel();
        let leg = invite.into_leg(&stack, &events_tx)?;
        leg.progress(None);
        tokio::time::sleep(answer_after).await;
        leg.answer(answer_sdp.to_string().into_bytes())?;
        answered += 1;
        let body = answer_sdp.to_string().into_bytes();
        let (ended_by, talk_time, stats) = talk(pair, neg, script, async {
            loop {
                match events.recv().await {
                    Some((_, LegEvent::Ended(_))) | None => return,
                    Some((_, LegEvent::Reoffer { responder, .. })) => {
                        responder.respond(200, vec![], Some(body.clone())).await
                    }
                    Some(_) => {}
                }
            }
        })
        .await?;
        if ended_by == "local" {
            leg.bye().await;
        }
        on_report(&Report {
            status: 200,
            ended_by,
            talk_ms: talk_time.as_millis() as u64,
            media: stats,
        });
    }
    registration.register(0).await.ok();
    stack.shutdown();
    Ok(())
}

/// Run media until the remote hangs up (`remote_end` resolves) or the
/// script's hang-up time passes.
async fn talk(
    pair: crate::media::ports::PortPair,
    neg: sdp::Negotiated,
    script: &Script,
    remote_end: impl std::future::Future<Output = ()>,
) -> Result<(&'static str, Duration, MediaStats), PhoneError> {
    let started = tokio::time::Instant::now();
    let session = media::Session::start(pair, neg, script)?;
    let hangup = async {
        match script.hangup_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ended_by = tokio::select! {
        _ = remote_end => "remote",
        _ = hangup => "local",
    };
    let stats = session.stop(script.record.as_deref()).await?;
    Ok((ended_by, started.elapsed(), stats))
}
