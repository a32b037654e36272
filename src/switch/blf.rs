//! BLF lamps (issue 17 §4: "SUBSCRIBE/NOTIFY for the dialog event package
//! (RFC 4235) so supervisors' phones show agents' BLF lamps, scoped by
//! tenant"). A phone of the tenant's agents or supervisors subscribes to
//! `sip:<agent>@hotline` (phone user or job number) with
//! `Event: dialog`; hotline authenticates it like a REGISTER (401), and
//! NOTIFYs a full dialog-info document at once and on every change of
//! that agent's ACD state: ringing is `early`, talking, on hold or on an
//! outbound call `confirmed`, anything else (free, not ready, after-call
//! work, signed out) no dialog.
//!
//! Subscriptions follow RFC 6665: `Expires` defaults to an hour, at most
//! an hour, at least a minute (423 with `Min-Expires` below it, §4.2.1.1);
//! `Expires: 0` fetches the state once; a refresh gets 200 and a NOTIFY;
//! an unsubscribe, the end of the term or hotline's shutdown a final
//! NOTIFY `terminated`; a phone that stops answering NOTIFYs (481, 408, no
//! answer) ends its subscription. Another event package gets 489 with
//! `Allow-Events`; another tenant's agent or nobody 404; a phone user
//! holding [`PER_USER`] subscriptions already 403.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::registration::{Authenticated, Challenge, Registrations};
use crate::acd::AgentState;
use crate::call::queue::{AgentStateNotice, Queues, WatchScope};
use crate::roster::{agent_id, LiveRoster};
use crate::sip::dialog_info::{self, Lamp};
use crate::sip::subscription::Subscription;
use crate::sip::{LegEvent, Request, Responder, SipStack};

/// The one event package served.
const PACKAGE: &str = "dialog";
/// A subscription's term when the phone names none, and the longest.
const DEFAULT_EXPIRES: u32 = 3600;
/// The shortest term (RFC 6665 §4.2.1.1: 423 below it).
const MIN_EXPIRES: u32 = 60;
/// Subscriptions one phone user may hold at once (a supervisor's phone
/// with expansion modules has about a hundred BLF keys); more get 403.
const PER_USER: usize = 200;

/// Agents' state changes queued for the subscriptions before the slowest
/// one skips ahead (it then asks for the state again).
const STATE_BACKLOG: usize = 1024;

/// The BLF service: what every subscription needs.
#[derive(Clone)]
pub(super) struct Blf {
    stack: SipStack,
    roster: Arc<LiveRoster>,
    queues: Option<Queues>,
    states: broadcast::Sender<AgentStateNotice>,
    shutdown: CancellationToken,
    /// Live subscriptions per subscribing phone user.
    quota: Quota,
}

/// Live subscriptions per phone user, against [`PER_USER`].
#[derive(Clone, Default)]
struct Quota {
    held: Arc<DashMap<String, usize>>,
}

impl Quota {
    /// Count one more subscription of `user`, unless they hold `limit`.
    fn hold(&self, user: &str, limit: usize) -> Option<Held> {
        let mut n = self.held.entry(user.to_string()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Held {
            held: self.held.clone(),
            user: user.to_string(),
        })
    }
}

/// One subscription counted against its phone user while it lives.
struct Held {
    held: Arc<DashMap<String, usize>>,
    user: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held.remove_if_mut(&self.user, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

impl Blf {
    /// The service, watching every agent state change on this node.
    pub fn new(
        stack: SipStack,
        roster: Arc<LiveRoster>,
        queues: Option<Queues>,
        shutdown: CancellationToken,
    ) -> Self {
        let (states, _) = broadcast::channel(STATE_BACKLOG);
        if let Some(q) = &queues {
            let tx = states.clone();
            q.watch_agent_states(
                Box::new(move |n| {
                    let _ = tx.send(n.clone());
                }),
                WatchScope::EveryNode,
            );
        }
        Self {
            stack,
            roster,
            queues,
            states,
            shutdown,
            quota: Quota::default(),
        }
    }

    /// An out-of-dialog SUBSCRIBE: refused with its reason, or accepted
    /// and served until it ends.
    pub async fn subscribe(
        &self,
        registrations: &Registrations,
        req: Request,
        responder: Responder,
    ) {
        let package = req.header("Event").unwrap_or_default();
        let package = package
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if package != PACKAGE {
            debug!(%package, "SUBSCRIBE to another event package: 489");
            return refuse(
                responder,
                489,
                vec![("Allow-Events".into(), PACKAGE.into())],
            )
            .await;
        }
        let expires = match req.expires().unwrap_or(DEFAULT_EXPIRES) {
            0 => 0,
            e if e < MIN_EXPIRES => {
                return refuse(
                    responder,
                    423,
                    vec![("Min-Expires".into(), MIN_EXPIRES.to_string())],
                )
                .await
            }
            e => e.min(DEFAULT_EXPIRES),
        };
        let user = match registrations.authenticate(&req, Challenge::Www) {
            Authenticated::Agent(user) => user,
            Authenticated::Refused { code, headers } => {
                return refuse(responder, code, headers).await
            }
        };
        let watched = req.uri_user().unwrap_or_default();
        let (agent, entity) = {
            let roster = self.roster.load();
            let tenant = roster.agent_by_user(&user).map(|a| a.tenant.clone());
            let target = roster
                .agent_by_user(&watched)
                .or_else(|| roster.agent(&watched))
                .filter(|a| Some(&a.tenant) == tenant.as_ref());
            match target {
                Some(a) => (
                    agent_id(a).to_string(),
                    format!("sip:{}@{}", a.user, req.uri_host()),
                ),
                None => {
                    info!(%user, %watched, "BLF SUBSCRIBE for nobody in the subscriber's centre: 404");
                    return refuse(responder, 404, vec![]).await;
                }
            }
        };
        let Some(held) = self.quota.hold(&user, PER_USER) else {
            info!(%user, limit = PER_USER, "BLF SUBSCRIBE beyond the phone's limit: 403");
            let why = crate::sip::message::warning("too many BLF subscriptions from this phone");
            return refuse(responder, 403, vec![why]).await;
        };
        let headers = vec![
            ("Expires".into(), expires.to_string()),
            ("Event".into(), PACKAGE.into()),
        ];
        let sub = match self.stack.accept_subscription(&req, responder, headers) {
            Ok(s) => s,
            Err(e) => {
                info!(error = %e, %user, "BLF SUBSCRIBE not accepted");
                return;
            }
        };
        info!(%user, %agent, expires, "BLF subscription");
        let this = self.clone();
        tokio::spawn(async move {
            this.serve(sub, agent, entity, expires).await;
            drop(held);
        });
    }

    /// One subscription, from its first NOTIFY to its last.
    async fn serve(self, mut sub: Subscription, agent: String, entity: String, mut expires: u32) {
        let mut states = self.states.subscribe();
        let mut lamp = self.lamp_now(&agent).await;
        let mut version = 0u32;
        let mut until = tokio::time::Instant::now() + Duration::from_secs(expires.into());
        let mut fresh = true;
        loop {
            if fresh {
                fresh = false;
                let state = match expires {
                    0 => "terminated;reason=timeout".to_string(),
                    _ => format!("active;expires={}", remaining(until)),
                };
                if !notify(&sub, &state, &entity, version, lamp).await || expires == 0 {
                    break;
                }
                version += 1;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {
                    notify(&sub, "terminated;reason=timeout", &entity, version, lamp).await;
                    break;
                }
                _ = self.shutdown.cancelled() => {
                    notify(&sub, "terminated;reason=deactivated", &entity, version, lamp).await;
                    break;
                }
                change = states.recv() => {
                    let now = match change {
                        Ok(n) if n.agent == agent => lamp_of(n.state),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => self.lamp_now(&agent).await,
                        Err(broadcast::error::RecvError::Closed) => break,
                    };
                    fresh = now != lamp;
                    lamp = now;
                }
                ev = sub.events.recv() => match ev {
                    Some((_, LegEvent::Resubscribe { expires: asked, responder })) => {
                        expires = match asked.unwrap_or(DEFAULT_EXPIRES) {
                            0 => 0,
                            e => e.clamp(MIN_EXPIRES, DEFAULT_EXPIRES),
                        };
                        let headers = vec![("Expires".into(), expires.to_string())];
                        responder.respond(200, headers, None).await;
                        until = tokio::time::Instant::now() + Duration::from_secs(expires.into());
                        fresh = true;
                    }
                    Some((_, LegEvent::Ended(_))) | None => break,
                    Some(_) => {}
                },
            }
        }
        debug!(%agent, "BLF subscription over");
    }

    /// The agent's lamp as the ACD has it now.
    async fn lamp_now(&self, agent: &str) -> Lamp {
        match &self.queues {
            Some(q) => q.agent_state(agent).await.map_or(Lamp::Idle, lamp_of),
            None => Lamp::Idle,
        }
    }
}

/// Answer a SUBSCRIBE that is not served.
async fn refuse(responder: Responder, code: u16, headers: Vec<(String, String)>) {
    if let Err(e) = responder.reply(code, headers, None).await {
        debug!(error = %e, "SUBSCRIBE response");
    }
}

/// Seconds left until `until`, at least one.
fn remaining(until: tokio::time::Instant) -> u64 {
    until
        .saturating_duration_since(tokio::time::Instant::now())
        .as_secs()
        .max(1)
}

/// Send one NOTIFY; whether the phone took it (2xx).
async fn notify(sub: &Subscription, state: &str, entity: &str, version: u32, lamp: Lamp) -> bool {
    let body = dialog_info::document(entity, version, lamp).into_bytes();
    let sent = sub
        .notify(PACKAGE, state, "application/dialog-info+xml", body)
        .await;
    match sent {
        Ok(200..=299) => true,
        other => {
            info!(?other, %entity, "BLF NOTIFY not taken: the subscription ends");
            false
        }
    }
}

/// What an agent's ACD state shows on a lamp.
fn lamp_of(state: AgentState) -> Lamp {
    match state {
        AgentState::Ringing => Lamp::Ringing,
        AgentState::Talking | AgentState::OnHold | AgentState::Outbound => Lamp::Busy,
        AgentState::LoggedOut
        | AgentState::Idle
        | AgentState::NotReady
        | AgentState::AfterCallWork => Lamp::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_holds_at_most_its_quota_and_each_ended_subscription_frees_one() {
        let q = Quota::default();
        let mut held: Vec<Held> = (0..3).map(|_| q.hold("2003", 3).expect("room")).collect();
        assert!(q.hold("2003", 3).is_none(), "a fourth is refused");
        assert!(q.hold("2004", 3).is_some(), "another phone has its own");
        held.pop();
        assert!(q.hold("2003", 3).is_some(), "one ended, one more fits");
        drop(held);
        assert!(q.held.get("2003").is_none() && q.held.get("2004").is_none());
    }

    #[test]
    fn lamps_show_the_phone_not_the_agents_availability() {
        assert_eq!(lamp_of(AgentState::Ringing), Lamp::Ringing);
        for s in [
            AgentState::Talking,
            AgentState::OnHold,
            AgentState::Outbound,
        ] {
            assert_eq!(lamp_of(s), Lamp::Busy, "{s:?}");
        }
        for s in [
            AgentState::Idle,
            AgentState::NotReady,
            AgentState::AfterCallWork,
            AgentState::LoggedOut,
        ] {
            assert_eq!(lamp_of(s), Lamp::Idle, "{s:?}");
        }
    }
}
