//! The live event stream (CTI issue §1 "a WebSocket `/api/v1/events`
//! streaming agent, queue and call events, filtered to what the user may
//! see"; §5 screen pop).
//!
//! `GET /api/v1/events?token=<token>` (browsers cannot set headers on a
//! WebSocket; `Authorization: Bearer` works too) upgrades to a WebSocket
//! that sends one JSON text message per event, in the envelope of
//! docs/events/ (`type`, `call_id`, `seq`, `data` …), plus:
//!
//! - `{"type": "hello", "user": {…}, "agent_state": {"state", "reason",
//!   "in_state_secs"} | null}` first (an agent's current state);
//! - `{"type": "screen_pop", …}` when an agent's phone rings with a call:
//!   caller, area, DID, IVR path and variables, the wait so far, and the
//!   caller's previous calls of the tenant (last 5: time, agent, outcome,
//!   recording id), so the ticket page can open the history at once;
//! - `{"type": "message", "from_user", "to_agent", "text", …}`: a text
//!   message from another agent or a supervisor (`POST /api/v1/messages`);
//! - `{"type": "lagged", "skipped": n}` if this client fell behind (the
//!   outbox keeps every event; `GET /api/v1/calls/{id}` re-reads a call);
//! - `phone.*`: an agent's page that registered as their phone (issue 17
//!   §2, `api::live_phone`): offers, hang-ups and re-offers of its calls.
//!
//! The page may send `phone.*` messages (its phone's answers); anything
//! else it sends is ignored.
//!
//! Who sees what: supervisors and admins every event of their tenant(s);
//! an agent their own `agent.state` and the events of calls offered to
//! them, confidential callers masked.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiQuery;
use super::live_phone::PagePhone;
use super::{ApiError, ApiResult, ApiState};
use crate::auth::{Principal, Role};
use crate::events::{Event, EventData};

/// Query of the upgrade request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    token: Option<String>,
}

/// `GET /api/v1/events` (WebSocket).
pub async fn events(
    State(s): State<ApiState>,
    ApiQuery(q): ApiQuery<LiveParams>,
    headers: HeaderMap,
    // Checked after the token: an anonymous caller hears 401 whatever it
    // sent.
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let header_token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    let token = q
        .token
        .or(header_token)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing token"))?;
    let p = super::session::authenticate(&s.auth, &token).await?;
    let ws = ws.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let records = s.records_live.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no live events in this process",
        )
    })?;
    let rx = records.subscribe();
    Ok(ws.on_upgrade(move |socket| stream(socket, s, p, rx, token)))
}

/// The next text message, or never without a message feed.
async fn next_message(
    rx: &mut Option<tokio::sync::broadcast::Receiver<Arc<Value>>>,
) -> Option<Arc<Value>> {
    match rx {
        Some(rx) => loop {
            match rx.recv().await {
                Ok(m) => return Some(m),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        },
        None => std::future::pending().await,
    }
}

/// What one client may see, and the calls it follows (agents).
struct View {
    p: Principal,
    following: HashSet<String>,
}

impl View {
    /// A text message: to its addressee (and supervisors of the tenant).
    fn admit_message(&self, m: &Value) -> bool {
        let tenant = m["tenant"].as_str().unwrap_or("");
        if !self.p.may_access_tenant(tenant) {
            return false;
        }
        self.p.role != Role::Agent || m["to_agent"].as_str() == self.p.agent_id.as_deref()
    }

    /// The message for `ev`, if this client may see it.
    fn admit(&mut self, ev: &Event) -> Option<Event> {
        if !self.p.may_access_tenant(&ev.tenant) {
            return None;
        }
        if self.p.role != Role::Agent {
            return Some(ev.clone());
        }
        let own = self.p.agent_id.as_deref()?;
        let call = ev.call_id.clone();
        let mine = match &ev.body {
            EventData::AgentState(a) => return (a.agent_id == own).then(|| ev.clone()),
            EventData::AgentOffered(o) => o.agent_id == own,
            EventData::AgentAnswered(a) => a.agent_id == own,
            _ => false,
        };
        let call = call?;
        if mine {
            self.following.insert(call.clone());
        }
        if !self.following.contains(&call) {
            return None;
        }
        if matches!(ev.body, EventData::CallEnded(_)) {
            self.following.remove(&call);
        }
        Some(ev.for_export())
    }
}

async fn stream(
    mut socket: WebSocket,
    s: ApiState,
    p: Principal,
    mut rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
    token: String,
) {
    let hello = json!({ "type": "hello", "user": p, "agent_state": agent_state(&s, &p).await });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut view = View {
        p,
        following: HashSet::new(),
    };
    let mut recheck = tokio::time::interval(std::time::Duration::from_secs(30));
    let mut messages = s.cti.as_ref().map(|c| c.messages.subscribe());
    let mut phone = PagePhone::default();
    loop {
        tokio::select! {
            m = phone.next() => {
                let Some(m) = m else { return };
                if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                    return;
                }
            },
            m = next_message(&mut messages) => {
                if let Some(m) = m.filter(|m| view.admit_message(m)) {
                    if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                        return;
                    }
                }
            },
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    let Some(shown) = view.admit(&ev) else { continue };
                    let pop = match &ev.body {
                        EventData::AgentOffered(o) => Some(screen_pop(&s, &ev, &o.agent_id, view.p.role == Role::Agent).await),
                        _ => None,
                    };
                    let text = serde_json::to_string(&shown).unwrap_or_default();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                    if let Some(pop) = pop {
                        if socket.send(Message::Text(pop.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let msg = json!({ "type": "lagged", "skipped": n });
                    if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = phone.on_page_message(&s, &view.p, &text) {
                        if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                _ => {}
            },
            _ = recheck.tick() => {
                // A logged-out or expired token ends the stream.
                if super::session::authenticate(&s.auth, &token).await.is_err() {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }
}

/// The user's own agent state now (so a reloaded phone bar shows it at
/// once): `{"agent_id", "state", "reason", "in_state_secs"}`, or null.
async fn agent_state(s: &ApiState, p: &Principal) -> Value {
    let (Some(agent), Some(cti)) = (p.agent_id.as_deref(), s.cti.as_ref()) else {
        return Value::Null;
    };
    let Some(q) = &cti.calls.queues else {
        return Value::Null;
    };
    let Some(stats) = q.stats().await else {
        return Value::Null;
    };
    stats["stats"]["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["agent"] == agent))
        .map(|a| {
            json!({
                "agent_id": agent,
                "state": a["state"],
                "reason": a["reason"],
                "in_state_secs": a["in_state_for"],
            })
        })
        .unwrap_or(Value::Null)
}

/// The screen pop of a call offered to `agent`.
async fn screen_pop(s: &ApiState, ev: &Event, agent: &str, mask: bool) -> Value {
    let call = ev.call_id.clone().unwrap_or_default();
    let now = s
        .records_live
        .as_ref()
        .and_then(|r| r.peek(&call, |b| b.snapshot()));
    let Some(mut cdr) = now else {
        return json!({ "type": "screen_pop", "call_id": call, "agent_id": agent });
    };
    if mask {
        cdr = cdr.for_export();
    }
    let (store, tenant, caller) = (s.records.clone(), ev.tenant.clone(), cdr.caller.clone());
    let raw_caller = if cdr.confidential {
        None
    } else {
        Some(caller.clone())
    };
    let history = match raw_caller {
        Some(c) => tokio::task::spawn_blocking(move || store.previous_calls(&tenant, &c, 5))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            json!({
                "call_id": h.call_id,
                "started_at": h.started_at,
                "agent_id": h.agent_id,
                "outcome": h.outcome,
                "recording_id": h.recording.as_ref().map(|r| r.id.clone()),
                "survey": h.survey,
            })
        })
        .collect();
    let wait_ms = cdr
        .agent_requested_at
        .or(cdr.queued_at)
        .map(|since| ev.at.ms_since(since));
    json!({
        "type": "screen_pop",
        "call_id": call,
        "agent_id": agent,
        "serial": cdr.serial,
        "caller": cdr.caller,
        "caller_area": cdr.caller_area,
        "called": cdr.called,
        "confidential": cdr.confidential,
        "group_id": cdr.group_id,
        "ivr_path": cdr.ivr_path,
        "ivr_vars": cdr.ivr_vars,
        "wait_ms": wait_ms,
        "history": history,
    })
}
