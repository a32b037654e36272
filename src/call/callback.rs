//! Callbacks that keep the caller's place (issue "ACD" §7, REQUIREMENTS §3
//! "every abandoned call is called back"): when a callback's turn comes the
//! ACD reserves an agent and emits `OfferCallback`; this task rings the
//! agent first, and once the agent answers dials the citizen through the
//! tenant's trunk (and its backups) with the tenant's outbound caller ID,
//! then bridges the two like any call. The ACD is told the outcome
//! (`CallbackResult`) so an unanswered callback is retried per its policy.

use crate::media::caller::CallerMedia;
use crate::media::player::Target;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use super::forks::{Forks, Outcome as ForkOutcome, Output as ForkOutput, Response};
use super::queue::QueueNews;
use super::{local_media, retarget_telephone_event, session, sleep_until, CallContext};
use crate::acd::{CallId, Input};
use crate::media::sdp::{self, SessionDescription};
use crate::sip::stack::{LegEventSender, OutboundInvite};
use crate::sip::{trunk, Leg, LegEvent, LegEvents, LegKey, OutboundLeg};

/// A callback the ACD has reserved an agent for.
pub struct CallbackOrder {
    /// The ACD's id of the callback.
    pub call: CallId,
    /// Agent id.
    pub agent: String,
    /// The agent's SIP user.
    pub device: String,
    /// The citizen's number.
    pub number: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Further news (a cancelled reservation).
    pub news: mpsc::UnboundedReceiver<QueueNews>,
}

/// How to reach citizens for one tenant.
#[derive(Debug, Clone)]
pub struct Dialout {
    /// The tenant (for the recording's folder).
    pub tenant: String,
    /// Caller ID shown to the citizen.
    pub caller_id: String,
    /// First trunk (its backups follow).
    pub trunk: String,
}

/// Run a callback in its own task.
pub fn spawn(ctx: Arc<CallContext>, order: CallbackOrder, dialout: Option<Dialout>) {
    let span = tracing::info_span!("callback", call = %order.call, agent = %order.agent, attempt = order.attempt);
    tokio::spawn(run(ctx, order, dialout).instrument(span));
}

async fn run(ctx: Arc<CallContext>, mut order: CallbackOrder, dialout: Option<Dialout>) {
    let Some(queues) = ctx.queues.clone() else {
        return;
    };
    let call = order.call;
    let agent = order.agent.clone();
    let (Ok(a_ports), Ok(b_ports)) = (ctx.ports.allocate().await, ctx.ports.allocate().await)
    else {
        warn!("no RTP ports for a callback");
        queues.input(Input::OfferFailed { call, agent });
        return;
    };
    let (events_tx, mut events) = ctx.stack.leg_channel();

    // 1. The agent first.
    let b_local = local_media(&ctx, b_ports.port(), ctx.codecs.clone());
    let b_offer = sdp::build_offer(&b_local);
    let contacts = ctx.directory.contacts(&order.device);
    let invites = contacts
        .iter()
        .map(|c| {
            invite(
                c.uri.clone(),
                Some(c.source),
                c.tcp,
                &order.number,
                &b_offer,
            )
        })
        .collect();
    let (agent_leg, b_neg) = match ring(
        &ctx,
        &events_tx,
        &mut events,
        invites,
        &b_offer,
        Some(&mut order.news),
        None,
    )
    .await
    {
        Rung::Answered(leg, neg) => (leg, neg),
        Rung::Failed(code) => {
            info!(code, "agent did not take the callback");
            queues.input(if matches!(code, 486 | 600 | 603) {
                Input::OfferRejected { call, agent }
            } else {
                Input::OfferFailed { call, agent }
            });
            return;
        }
        Rung::Withdrawn => return,
    };
    queues.input(Input::OfferAnswered {
        call,
        agent: agent.clone(),
    });
    let record = start_record(&ctx, &order, dialout.as_ref());

    // 2. Then the citizen, through the tenant's trunk chain.
    let Some(dialout) = dialout else {
        warn!("no outbound trunk for this tenant: callback cannot dial");
        record.end_by_system("no-trunk", None, true);
        record.finish();
        agent_leg.bye().await;
        queues.input(Input::CallbackResult {
            call,
            answered: false,
        });
        return;
    };
    let citizen = dial_citizen(
        &ctx,
        (&events_tx, &mut events),
        &b_neg,
        a_ports.port(),
        (&order.number, &dialout.caller_id, &dialout.trunk),
        agent_leg.key(),
    )
    .await;
    let Ok(Citizen {
        leg: citizen_leg,
        neg: a_neg,
        local: a_local,
        offer: a_offer,
    }) = citizen
    else {
        record.end_by_system("not-answered", Some(480), false);
        record.finish();
        agent_leg.bye().await;
        queues.input(Input::CallbackResult {
            call,
            answered: false,
        });
        return;
    };
    info!(number = %order.number, "callback connected");
    record.fact("answered", |b, t| b.answered(t, &agent));
    queues.input(Input::CallbackResult {
        call,
        answered: true,
    });

    // 3. Talk.
    let mut media = CallerMedia::new(a_ports, Target::from_negotiated(&a_neg));
    if let Some(r) =
        super::open_recording(&ctx, &dialout.tenant, &callback_call_id(&order), &record).await
    {
        media.record(r);
    }
    let mut session = session::Session {
        ctx: &ctx,
        a: &citizen_leg,
        b: agent_leg,
        events,
        media: &mut media,
        b_ports: Some(b_ports),
        a_remote: a_neg.remote,
        b_remote: b_neg.remote,
        a_local,
        b_local,
        a_neg,
        b_neg,
        a_answer_sdp: a_offer,
        keep_caller: false,
        blind_transfer: false,
        agent_device: Some(order.device.clone()),
        events_tx: Some(events_tx.clone()),
        record: &record,
        agent: Some(agent.clone()),
        acd: true,
        consult_device: None,
        acd_call: None,
        direct_call: None,
        caller: order.number.clone(),
    };
    session.run().await;
    queues.input(Input::CallEnded { call });
    record.finish();
}

/// A callback attempt's call id: the ACD's callback and the attempt.
fn callback_call_id(order: &CallbackOrder) -> String {
    format!("callback-{}-{}", order.call.0, order.attempt)
}

/// The record of a callback attempt, from the moment its agent took it.
fn start_record(
    ctx: &CallContext,
    order: &CallbackOrder,
    dialout: Option<&Dialout>,
) -> super::record::CallRecord {
    let Some(records) = &ctx.records else {
        return super::record::CallRecord::disabled();
    };
    records.start(crate::events::CallStart {
        call_id: callback_call_id(order),
        serial: records.next_serial(ctx.utc_offset_minutes),
        tenant: dialout.map_or_else(|| "default".to_string(), |d| d.tenant.clone()),
        direction: crate::events::model::Direction::Callback,
        caller: order.number.clone(),
        called: dialout.map(|d| d.caller_id.clone()).unwrap_or_default(),
        caller_area: None,
        confidential: false,
    })
}

pub(super) fn invite(
    target: String,
    destination: Option<SocketAddr>,
    tcp: bool,
    from: &str,
    offer: &SessionDescription,
) -> OutboundInvite {
    OutboundInvite {
        target,
        destination,
        tcp,
        from_user: from.to_string(),
        from_display: None,
        sdp: offer.to_string().into_bytes(),
        headers: vec![],
        credential: None,
    }
}

pub(super) enum Rung {
    Answered(OutboundLeg, sdp::Negotiated),
    Failed(u16),
    /// The ACD withdrew the reservation, or the other leg hung up, or shutdown.
    Withdrawn,
}

/// Ring `invites` in parallel until one answers. `news` carries the ACD's
/// cancellation of the agent's reservation; `provisional` bounds the wait
/// for a first response (trunks) and names a leg whose hang-up aborts.
pub(super) async fn ring(
    ctx: &CallContext,
    events_tx: &LegEventSender,
    events: &mut LegEvents,
    invites: Vec<OutboundInvite>,
    offer: &SessionDescription,
    mut news: Option<&mut mpsc::UnboundedReceiver<QueueNews>>,
    provisional: Option<(Duration, &LegKey)>,
) -> Rung {
    let clock = super::ShellClock::start();
    let (first_response, watched) = match provisional {
        Some((d, key)) => (Some(d), Some(key.clone())),
        None => (None, None),
    };
    let mut forks = Forks::new(clock.now(), ctx.ring_timeout, first_response);
    let mut legs: HashMap<LegKey, OutboundLeg> = HashMap::new();
    let mut answers: HashMap<LegKey, Option<Vec<u8>>> = HashMap::new();
    for inv in invites {
        match ctx.stack.invite(inv, events_tx) {
            Ok(leg) => {
                forks.sent(leg.key().clone(), None);
                legs.insert(leg.key().clone(), leg);
            }
            Err(e) => warn!(error = %e, "cannot send INVITE"),
        }
    }
    if legs.is_empty() {
        return Rung::Failed(480);
    }
    forks.started();
    loop {
        while let Some(out) = forks.poll_output() {
            if let ForkOutput::Cancel(key) = out {
                if let Some(leg) = legs.remove(&key) {
                    tokio::spawn(async move { leg.hang_up().await });
                }
            }
        }
        if let Some(outcome) = forks.outcome() {
            let last_code = forks.codes().last().copied().unwrap_or(480);
            return match outcome.clone() {
                ForkOutcome::Answered(key) => {
                    let Some(leg) = legs.remove(&key) else {
                        return Rung::Failed(last_code);
                    };
                    let body = answers.remove(&key).flatten().unwrap_or_default();
                    let answer = SessionDescription::parse(&String::from_utf8_lossy(&body));
                    match answer.ok().and_then(|a| sdp::read_answer(offer, &a).ok()) {
                        Some(neg) => Rung::Answered(leg, neg),
                        None => {
                            leg.bye().await;
                            Rung::Failed(488)
                        }
                    }
                }
                ForkOutcome::Failed(_) => Rung::Failed(last_code),
                ForkOutcome::NoProvisional => Rung::Failed(408),
                ForkOutcome::NoAnswer => Rung::Failed(if forks.heard() { 480 } else { last_code }),
                ForkOutcome::CallerGone => Rung::Withdrawn,
            };
        }
        let deadline = forks.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            n = async {
                match news.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if matches!(n, Some(QueueNews::Cancel { .. }) | None) {
                    forks.caller_gone();
                }
            }
            ev = events.recv() => {
                let Some((key, ev)) = ev else {
                    forks.caller_gone();
                    continue;
                };
                if watched.as_ref() == Some(&key) {
                    if let LegEvent::Ended(_) = ev {
                        forks.caller_gone();
                    }
                    continue;
                }
                let response = match ev {
                    LegEvent::Progress { code, sdp } => Response::Provisional { code, early_media: sdp.is_some() },
                    LegEvent::Final { code, sdp } if (200..300).contains(&code) => {
                        if forks.is_ringing(&key) {
                            answers.insert(key.clone(), sdp);
                        }
                        Response::Answered
                    }
                    LegEvent::Final { code, .. } => Response::Failed(code),
                    _ => continue,
                };
                forks.handle_response(&key, response);
            }
            _ = sleep_until(deadline) => forks.handle_timeout(clock.now()),
            _ = ctx.shutdown.cancelled() => forks.caller_gone(),
        }
    }
}

/// The citizen's leg of an agent-first call (callbacks, outbound calls).
pub(super) struct Citizen {
    pub leg: OutboundLeg,
    pub neg: sdp::Negotiated,
    /// Our media toward the citizen, and the offer made from it.
    pub local: sdp::LocalMedia,
    pub offer: SessionDescription,
}

/// Dial `number` with `caller_id` through `trunk` and its backups, offering
/// the agent's codec (`b_neg`) on our port `port`; given up if the agent's
/// leg (`agent`) hangs up meanwhile. `Err`: the last SIP status.
pub(super) async fn dial_citizen(
    ctx: &CallContext,
    (events_tx, events): (&LegEventSender, &mut LegEvents),
    b_neg: &sdp::Negotiated,
    port: u16,
    (number, caller_id, first_trunk): (&str, &str, &str),
    agent: &LegKey,
) -> Result<Citizen, u16> {
    let local = local_media(ctx, port, vec![b_neg.codec]);
    let mut offer = sdp::build_offer(&sdp::LocalMedia {
        telephone_event: b_neg.telephone_event.is_some(),
        ..local.clone()
    });
    if let Some(pt) = b_neg.telephone_event {
        retarget_telephone_event(&mut offer, pt);
    }
    let mut last = 480;
    for t in ctx.trunks.attempt_order(first_trunk) {
        let Some(proxy) = t.proxy else { continue };
        let target = format!("sip:{number}@{proxy}");
        let inv = invite(target, Some(proxy), t.tcp, caller_id, &offer);
        let wait = Duration::from_secs(t.invite_timeout_secs.max(1));
        match ring(
            ctx,
            events_tx,
            events,
            vec![inv],
            &offer,
            None,
            Some((wait, agent)),
        )
        .await
        {
            Rung::Answered(leg, neg) => {
                return Ok(Citizen {
                    leg,
                    neg,
                    local,
                    offer,
                })
            }
            Rung::Failed(code) if trunk::fails_over(code) => {
                last = code;
                warn!(trunk = %t.name, code, "trunk failed; trying the backup");
            }
            Rung::Failed(code) => {
                info!(code, %number, "citizen not reached");
                return Err(code);
            }
            Rung::Withdrawn => return Err(last),
        }
    }
    Err(last)
}
