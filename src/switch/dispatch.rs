//! The switch's dispatch shell: every out-of-dialog request the SIP stack
//! hands over, one at a time in arrival order, is decided by the pure
//! admission core ([`admission::decide`]) and the [`Decision`] executed
//! here: a call task spawned, a refusal sent, a feature code applied, a
//! REGISTER handed to the registrar shell. Nothing that waits on disk
//! runs in the loop (issue 13 §5): a REGISTER's write and the ACD's commit
//! of an auto-login or a feature code are awaited in tasks of their own,
//! so an INVITE is never admitted behind them.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::admission::{self, Decision, Refusal};
use super::call_load::CallSlots;
use super::feature_codes::{self, AgentCommand};
use super::ivr;
use super::{Authenticated, Challenge, Registrations};
use crate::acd;
use crate::call::{self, CallContext, Ringing, Route};
use crate::config::{Config, RingStrategy};
use crate::sip::stack::{Incoming, PendingInvite};
use crate::sip::trunk::TrunkTable;
use crate::sip::{Leg, LegEvent, Request, Responder};

/// What the dispatch loop decides and acts with.
#[derive(Clone)]
pub(super) struct Dispatch {
    /// What calls share.
    pub ctx: Arc<CallContext>,
    /// The admission tables.
    pub router: Arc<Router>,
    /// Agents' registrations.
    pub registrations: Registrations,
    /// Calls per trunk and centre, against their caps.
    pub slots: CallSlots,
    /// BLF subscriptions.
    pub blf: super::blf::Blf,
}

impl Dispatch {
    /// Decide and act on one out-of-dialog request.
    pub async fn dispatch(&self, item: Incoming, draining: bool) {
        match item {
            Incoming::Invite(invite) => admit(self, invite, draining).await,
            Incoming::Request(req, responder) => {
                answer_request(self, req, responder, draining).await
            }
        }
    }
}

impl admission::FlowClaims for ivr::IvrRuntime {
    type Claim = crate::call::flow::FlowRoute;
    fn claim(&self, did: &str) -> Option<(String, Self::Claim)> {
        self.route_for(did)
    }
}

/// The tables new INVITEs are admitted by: `[[did]]` routes, the IVR's
/// flows, the trunks, the feature codes.
pub(super) struct Router {
    dids: std::collections::HashMap<String, (String, Route)>,
    ivr: Arc<ivr::IvrRuntime>,
    trunks: Arc<TrunkTable>,
    feature_codes: crate::config::acd::FeatureCodes,
    not_ready_reasons: Vec<String>,
    /// `[media] overload_percent`: new calls wait while the media IO
    /// workers are this busy.
    media_overload_percent: u32,
}

impl Router {
    pub(super) fn new(config: &Config, trunks: Arc<TrunkTable>, ivr: Arc<ivr::IvrRuntime>) -> Self {
        let dids = config
            .dids
            .iter()
            .map(|d| {
                let route = match (&d.forward_to, &d.forward_trunk, &d.queue) {
                    (_, _, Some(group)) => Route::Queue {
                        group: group.clone(),
                        priority: d.priority,
                    },
                    (Some(number), Some(trunk), _) => Route::External {
                        number: number.clone(),
                        trunk: trunk.clone(),
                    },
                    _ => Route::Agents {
                        ringing: match d.ring {
                            RingStrategy::Sequential => Ringing::Sequential,
                            RingStrategy::Simultaneous => Ringing::Simultaneous,
                        },
                        agents: d.agents.clone(),
                    },
                };
                (d.number.clone(), (d.tenant.clone(), route))
            })
            .collect();
        Self {
            dids,
            ivr,
            trunks,
            feature_codes: config.acd.feature_codes.clone(),
            not_ready_reasons: config.acd.not_ready_reasons.clone(),
            media_overload_percent: config.media.overload_percent,
        }
    }

    /// The tables admission decides from.
    fn tables<'a>(
        &'a self,
        draining: bool,
        load: &'a dyn admission::Load,
    ) -> admission::Tables<'a, ivr::IvrRuntime> {
        admission::Tables {
            dids: &self.dids,
            trunks: &self.trunks,
            flows: &self.ivr,
            draining,
            load,
            media_overloaded: crate::media::session::overloaded(self.media_overload_percent),
        }
    }
}

/// A media-overload episode is under way (its first refusal was logged);
/// the next admitted call ends it.
static MEDIA_EPISODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Admit or refuse a new INVITE ([`admission::decide`]): agents' feature
/// codes (digest authenticated), then carriers by trunk ACL, the called
/// number and the trunk's and centre's caps. An admitted call is counted
/// against the caps under the same lock it was decided under, and its
/// [`super::call_load::Slot`] travels with the call task.
async fn admit(d: &Dispatch, invite: PendingInvite, draining: bool) {
    let (ctx, router) = (&d.ctx, &d.router);
    let source = invite.request.source();
    let dialled = invite.request.uri_user().unwrap_or_default();
    let from_phone = invite
        .request
        .from_user()
        .is_some_and(|u| ctx.roster.load().agent_by_user(&u).is_some());
    let view = admission::RequestView {
        method: "INVITE",
        uri_user: &dialled,
        source: source.ip(),
        from_phone,
    };
    let now = crate::util::now();
    let (decision, slot, first_refusal) = d.slots.with(|load| {
        let decision = admission::decide(&view, &router.tables(draining, &load.at(now)));
        let (slot, first_refusal) = match &decision {
            Decision::Flow { trunk, tenant, .. } | Decision::Did { trunk, tenant, .. } => {
                MEDIA_EPISODE.store(false, std::sync::atomic::Ordering::Relaxed);
                (Some(d.slots.start(load, trunk, tenant, now)), false)
            }
            Decision::Refuse {
                why: Refusal::Cap { scope, cap },
                ..
            } => (None, load.refused(scope, *cap)),
            _ => (None, false),
        };
        (decision, slot, first_refusal)
    });
    match decision {
        Decision::Refuse { code, headers, why } => {
            match why {
                Refusal::Draining => {}
                Refusal::MediaOverload => {
                    let pressure = crate::media::session::pressure().unwrap_or_default();
                    if !MEDIA_EPISODE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        warn!(cpu_permille = pressure.cpu_permille, mean_tick_late_us = pressure.mean_late_us, late_tick_permille = pressure.late_permille, "media workers near their limit: new calls get 503 until they are not (more at debug level)")
                    } else {
                        debug!(number = %dialled, %source, cpu_permille = pressure.cpu_permille, "INVITE while the media workers are near their limit: 503")
                    }
                }
                // One line per episode; every refusal is counted in
                // /healthz `caps`.
                Refusal::Cap { scope, cap } if first_refusal => {
                    info!(?scope, ?cap, number = %dialled, %source, "INVITE beyond a cap: 503 (more refused until one is admitted: at debug level, counted in /healthz caps)")
                }
                Refusal::Cap { scope, cap } => {
                    debug!(?scope, ?cap, number = %dialled, %source, "INVITE beyond a cap: 503")
                }
                Refusal::NoTrunk => {
                    warn!(%source, from = invite.request.from_user().unwrap_or_default(), "INVITE from an address no trunk admits: 403")
                }
                Refusal::UnknownNumber { trunk } => {
                    info!(%trunk, number = %dialled, "INVITE for an unknown number: 404")
                }
            }
            invite.reject(code, headers).await;
        }
        Decision::FeatureCode { dialled } => {
            // In a task of its own: it waits for the ACD to keep the
            // change (a commit to hotline.db).
            let (ctx, router, registrations) =
                (ctx.clone(), router.clone(), d.registrations.clone());
            tokio::spawn(async move {
                agent_feature_code(&ctx, &router, &registrations, invite, &dialled).await;
            });
        }
        Decision::PhoneCall { dialled } => {
            let (ctx, registrations) = (ctx.clone(), d.registrations.clone());
            tokio::spawn(async move {
                phone_call(&ctx, &registrations, invite, dialled).await;
            });
        }
        Decision::Flow {
            trunk,
            number,
            tenant,
            claim,
        } => {
            debug!(%trunk, %number, %tenant, flow = %claim.flow, "new call for a flow");
            call::spawn(ctx.clone(), invite, Route::Flow(claim), tenant, slot);
        }
        Decision::Did {
            trunk,
            number,
            tenant,
            route,
        } => {
            debug!(%trunk, %number, %tenant, "new call");
            call::spawn(ctx.clone(), invite, route, tenant, slot);
        }
        // Not for an INVITE; answered as decided all the same.
        Decision::Reply { code, headers } => invite.reject(code, headers).await,
        Decision::Register | Decision::Subscribe => invite.reject(501, vec![]).await,
    }
}

/// The agent whose phone sent `invite`, digest-authenticated (407): the
/// invite back with them, or `None` once it was refused (`what` it is,
/// for the log).
async fn phone_user(
    registrations: &Registrations,
    invite: PendingInvite,
    what: &str,
) -> Option<(String, PendingInvite)> {
    let user = match registrations.authenticate(&invite.request, Challenge::Proxy) {
        Authenticated::Agent(user) => user,
        Authenticated::Refused { code, headers } => {
            invite.reject(code, headers).await;
            return None;
        }
    };
    if invite.request.from_user().as_deref() != Some(user.as_str()) {
        warn!(%user, from = ?invite.request.from_user(), "{what} for another agent: 403");
        invite.reject(403, vec![]).await;
        return None;
    }
    Some((user, invite))
}

/// An agent's phone dialled `dialled` (no feature code, no number a trunk
/// admits): authenticate (407), then hand it to the call the phone is on,
/// whose consultation it becomes (issue 17 §4); without a call, 403.
async fn phone_call(
    ctx: &CallContext,
    registrations: &Registrations,
    invite: PendingInvite,
    dialled: String,
) {
    let Some((user, invite)) = phone_user(registrations, invite, "call from a phone").await else {
        return;
    };
    let channel = ctx.live.get(&user).map(|e| e.value().1.clone());
    let Some(channel) = channel else {
        info!(%user, %dialled, "a phone dialled out of no call: 403");
        let why = "calls between phones are not served: consult from within a call";
        invite
            .reject(403, vec![crate::sip::message::warning(why)])
            .await;
        return;
    };
    info!(%user, %dialled, "the phone consults from its second line");
    let command = call::SessionCommand::PhoneConsult {
        invite: Box::new(invite),
        dialled,
    };
    if let Err(tokio::sync::mpsc::error::SendError(command)) = channel.send(command) {
        if let call::SessionCommand::PhoneConsult { invite, .. } = *command {
            // The call ended in the meantime.
            invite.reject(480, vec![]).await;
        }
    }
}

/// An agent dialled a feature code: authenticate (407), apply it to the
/// ACD, and confirm by answering and hanging up at once.
async fn agent_feature_code(
    ctx: &Arc<CallContext>,
    router: &Router,
    registrations: &Registrations,
    invite: PendingInvite,
    dialled: &str,
) {
    let Some((user, invite)) = phone_user(registrations, invite, "feature code").await else {
        return;
    };
    if let Some((mode, target)) = feature_codes::parse_supervision(dialled, &router.feature_codes) {
        // A supervisor of the agent's own centre only (REQUIREMENTS §9);
        // every attempt is audited, refused ones too.
        let roster = ctx.roster.load();
        let centre = roster.agent_by_user(&user).map(|a| a.tenant.clone());
        let supervisor = roster.agent_by_user(&user).is_some_and(|a| a.supervisor);
        let target_centre = roster.agent_by_user(&target).map(|a| a.tenant.clone());
        let target_id = roster.agent_id_of(&target).unwrap_or(&target).to_string();
        drop(roster);
        let audit = |action: &str, outcome: &str| {
            ctx.audit(call::AuditLine {
                actor: user.clone(),
                tenant: centre.clone().unwrap_or_else(|| "default".into()),
                action: action.into(),
                target: target_id.clone(),
                detail: serde_json::json!({ "mode": format!("{mode:?}").to_lowercase(), "from": "phone", "outcome": outcome }),
            })
        };
        if !supervisor {
            warn!(%user, %dialled, "not a supervisor: 403");
            audit("call.supervise_refused", "not a supervisor");
            invite.reject(403, vec![]).await;
            return;
        }
        if target_centre.is_none() || target_centre != centre {
            // Another centre's agent answers as an unknown one does.
            warn!(%user, agent = %target, "supervision of an agent of another centre: 404");
            audit("call.supervise_refused", "another centre's agent");
            invite.reject(404, vec![]).await;
            return;
        }
        let channel = ctx.live.get(&target).map(|e| e.value().1.clone());
        let Some(channel) = channel else {
            info!(%user, agent = %target, "agent is not on a call: 480");
            invite.reject(480, vec![]).await;
            return;
        };
        info!(supervisor = %user, agent = %target, ?mode, "supervisor joins");
        audit("call.supervise", "joined");
        let command = call::SessionCommand::Supervise {
            invite: Box::new(invite),
            mode,
            supervisor: user,
        };
        if let Err(tokio::sync::mpsc::error::SendError(command)) = channel.send(command) {
            if let call::SessionCommand::Supervise { invite, .. } = *command {
                // The call ended in the meantime.
                invite.reject(480, vec![]).await;
            }
        }
        return;
    }
    let Some(command) =
        feature_codes::parse(dialled, &router.feature_codes, &router.not_ready_reasons)
    else {
        info!(%user, %dialled, "unknown feature code: 404");
        invite.reject(404, vec![]).await;
        return;
    };
    let agent = ctx.roster.load().agent_id_of(&user).map(str::to_string);
    let (Some(queues), Some(agent)) = (&ctx.queues, agent) else {
        invite.reject(404, vec![]).await;
        return;
    };
    info!(%user, %agent, ?command, "feature code");
    // The phone is answered once the ACD took the command and kept it
    // (a refusal, e.g. ready while talking, is logged; the phone is
    // answered all the same).
    let input = match command {
        AgentCommand::Login => acd::Input::Login { agent },
        AgentCommand::Logout => acd::Input::Logout { agent },
        AgentCommand::Ready => acd::Input::Ready { agent },
        AgentCommand::NotReady(reason) => acd::Input::NotReady { agent, reason },
    };
    if let Err(why) = queues.try_input(input).await {
        warn!(%user, %dialled, %why, "feature code refused by the ACD");
    }
    // Confirm: answer with an inactive stream, then hang up once confirmed.
    let (events_tx, mut events) = ctx.stack.leg_channel();
    let leg = match invite.into_leg(&ctx.stack, &events_tx) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "feature code dialog");
            return;
        }
    };
    let sdp = format!(
        "v=0\r\no=hotline 1 1 IN IP4 {a}\r\ns=hotline\r\nc=IN IP4 {a}\r\nt=0 0\r\nm=audio 9 RTP/AVP 8 0\r\na=inactive\r\n",
        a = ctx.media_address
    );
    if leg.answer(sdp.into_bytes()).is_err() {
        return;
    }
    tokio::spawn(async move {
        let confirmed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some((_, ev)) = events.recv().await {
                match ev {
                    LegEvent::Confirmed => return true,
                    LegEvent::Ended(_) => return false,
                    _ => {}
                }
            }
            false
        })
        .await;
        if matches!(confirmed, Ok(true)) {
            leg.bye().await;
        }
    });
}

/// Out-of-dialog requests other than INVITE ([`admission::decide`]).
async fn answer_request(d: &Dispatch, req: Request, responder: Responder, draining: bool) {
    let method = req.method();
    let uri_user = req.uri_user().unwrap_or_default();
    let view = admission::RequestView {
        method: &method,
        uri_user: &uri_user,
        source: req.source().ip(),
        from_phone: false,
    };
    // While draining, phones keep registering while calls end; OPTIONS
    // gets 503 (an edge's probe takes the node out of its rotation).
    let (code, headers) =
        match admission::decide(&view, &d.router.tables(draining, &admission::Unlimited)) {
            Decision::Register => {
                // Decided here, in arrival order; answered once its write is
                // kept, in a task of its own (never blocking an INVITE).
                let registering = d.registrations.begin(&req);
                tokio::spawn(registering.answer(responder));
                return;
            }
            Decision::Subscribe => {
                let d = d.clone();
                tokio::spawn(
                    async move { d.blf.subscribe(&d.registrations, req, responder).await },
                );
                return;
            }
            Decision::Reply { code, headers } => {
                if code == 501 {
                    debug!(method = %method, "unknown method: 501");
                }
                (code, headers)
            }
            // Only an INVITE is admitted or refused as a call.
            Decision::Refuse { code, headers, .. } => (code, headers),
            Decision::FeatureCode { .. }
            | Decision::PhoneCall { .. }
            | Decision::Flow { .. }
            | Decision::Did { .. } => (501, vec![]),
        };
    if let Err(e) = responder.reply(code, headers, None).await {
        debug!(error = %e, "response");
    }
}
