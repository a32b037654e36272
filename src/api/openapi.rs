//! The OpenAPI 3.1 document of `/api/v1` (CTI issue §1), served at
//! `GET /api/v1/openapi.json` without authentication so clients can be
//! generated from it. Written by hand next to the routes it describes
//! (`api::router`); a test checks that every route is in it.

use axum::Json;
use serde_json::{json, Value};

fn op(summary: &str, role: &str, params: &[&str]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| {
            let (name, place) = p.split_once(':').unwrap_or((p, "query"));
            json!({ "name": name, "in": place, "required": place == "path", "schema": { "type": "string" } })
        })
        .collect();
    json!({
        "summary": summary,
        "description": format!("Role: {role}."),
        "security": [{ "bearer": [] }],
        "parameters": parameters,
        "responses": {
            "200": { "description": "OK" },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" }
        }
    })
}

const CALL_FILTERS: [&str; 12] = [
    "from",
    "to",
    "tenant",
    "caller",
    "called",
    "agent",
    "group",
    "outcome",
    "missed",
    "voicemail",
    "recorded",
    "limit",
];

/// The CTI paths (their own `json!`: one macro for every path would
/// exceed the macro recursion limit).
fn cti_paths() -> Value {
    json!({
            "/api/v1/admin/registrations": { "get": op("Agents' phone registrations", "admin", &[]) },
            "/api/v1/acd/stats": { "get": op("The ACD's figures per group and agent, and its missed calls, of the caller's centre", "supervisor, admin", &[]) },
            "/api/v1/acd/callbacks": { "post": op("Schedule a callback {group, number, priority?}; audited", "supervisor, admin; an agent of the group", &[]) },
            "/api/v1/campaigns": { "post": op("Create a follow-up campaign (回访) {group, schedule (the calling window), redial?: {attempts, spacing_secs}, concurrency?, items: [{number, ticket_id, emergency?, closed_at?, due_by?}]}: due 24 h (emergency 1 h) after closed_at unless due_by; 201 with the campaign; audited", "supervisor, admin", &[]) },
            "/api/v1/campaigns/{id}": { "get": op("A follow-up campaign: its items' states (waiting, dialling, answered, failed, expired, cancelled), attempts with each attempt's call record, counts by state", "supervisor, admin (its centre)", &["id:path"]) },
            "/api/v1/campaigns/{id}/items": { "post": op("Add items {items: [...]} (409 campaign_cancelled); audited", "supervisor, admin (its centre)", &["id:path"]) },
            "/api/v1/campaigns/{id}/cancel": { "post": op("Cancel: nothing more is dialled (an attempt under way ends and is recorded); audited", "supervisor, admin (its centre)", &["id:path"]) },
            "/api/v1/agent/state": { "post": op("Sign in/out, ready, not ready {state, reason?, agent_id?}", "agent (self), supervisor (forced, audited)", &[]) },
            "/api/v1/agent/acw/complete": { "post": op("End after-call work {agent_id?}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/hangup": { "post": op("Hang up / force-release the agent's call {agent_id?}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/hold": { "post": op("Hold the caller (music on hold) {agent_id?}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/resume": { "post": op("Take the caller back {agent_id?}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/fork/start": { "post": op("Start the live audio fork of the agent's call to the tenant's receiver {agent_id?}; audited", "agent, supervisor", &[]) },
            "/api/v1/agent/call/fork/stop": { "post": op("Stop the live audio fork of the agent's call {agent_id?}; audited", "agent, supervisor", &[]) },
            "/api/v1/agent/call/transfer": { "post": op("Blind transfer {to_agent | to_group | to_number}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/consult": { "post": op("Attended transfer, step 1: consult {to_agent | to_group | to_number} with the caller on hold (a group's agent is picked by its ACD queue)", "agent, supervisor", &[]) },
            "/api/v1/agent/call/consult/complete": { "post": op("Attended transfer, step 2: the consulted party takes the caller", "agent, supervisor", &[]) },
            "/api/v1/agent/call/consult/cancel": { "post": op("Cancel the consultation: the caller is back with the agent", "agent, supervisor", &[]) },
            "/api/v1/agent/call/survey": { "post": op("Send the caller to the flow's survey (the agent leaves)", "agent, supervisor", &[]) },
            "/api/v1/agent/call/dial": { "post": op("Outbound call {number}: the agent's phone first, then the number", "agent, supervisor", &[]) },
            "/api/v1/admin/blacklist": {
                "get": op("The tenant's block list", "supervisor", &["tenant"]),
                "post": op("Add or replace an entry {number (or prefix*), reason, expires_at?, tenant?}; audited", "supervisor", &[])
            },
            "/api/v1/admin/blacklist/{number}": { "delete": op("Remove an entry; audited", "supervisor", &["number:path", "tenant"]) },
            "/api/v1/admin/flows/{name}/history": { "get": op("Every stored version of an IVR flow (hash, tenant, first accepted and last live: when, by whom; which is live)", "admin (the flow's tenant)", &["name:path"]) },
            "/api/v1/admin/flows/{name}/diff": { "get": op("A unified diff of two stored versions of a flow (default: the version live before the live one, and the live one)", "admin (the flow's tenant)", &["name:path", "from", "to"]) },
            "/api/v1/admin/flows/{name}/rollback": { "post": op("Write a stored version {version} back to the flow's file (validated first: 422 invalid_flows if it would not load; 409 already_live); the IVR's next reload check takes it live; 202; audited", "admin (the flow's tenant)", &["name:path"]) },
            "/api/v1/admin/reload": { "post": op("Read hotline.toml again: agents, groups, IVR flows; lists sections that need a restart; audited", "global admin", &[]) },
            "/api/v1/admin/agents": { "get": op("The tenant's agents (no secrets), with who owns each entry (config or api)", "supervisor", &[]) },
            "/api/v1/admin/agents/{id}": {
                "get": op("One agent by job number", "supervisor", &["id:path"]),
                "put": op("Create (201) or replace (200) an agent: the [[agent]] entry as JSON; passwords stored as HA1; audited", "admin", &["id:path"]),
                "delete": op("Delete an agent (409 in_use while signed in); audited", "admin", &["id:path"])
            },
            "/api/v1/admin/groups": { "get": op("The tenant's skill groups", "supervisor", &[]) },
            "/api/v1/admin/groups/{id}": {
                "get": op("One skill group", "supervisor", &["id:path"]),
                "put": op("Create (201) or replace (200) a skill group: the [[group]] entry as JSON; audited", "admin", &["id:path"]),
                "delete": op("Delete a skill group (409 in_use while calls wait in it; 400 while a number or flow routes to it); audited", "admin", &["id:path"])
            },
            "/api/v1/agent/transfer-targets": { "get": op("One-click transfer numbers", "any", &[]) },
            "/api/v1/agent/call/conference/add": { "post": op("Three-way call {to_agent | to_number}", "agent, supervisor", &[]) },
            "/api/v1/agent/call/conference/drop": { "post": op("Drop the third party {party}", "agent, supervisor", &[]) },
            "/api/v1/supervise": { "post": op("Listen, whisper or barge: rings the supervisor's phone {agent_id, mode}", "supervisor", &[]) },
            "/api/v1/supervise/take-over": { "post": op("Take over the agent's call (the supervisor joined by API); audited", "supervisor", &[]) },
            "/api/v1/wallboard": { "get": op("Agents by state, queues, service levels", "supervisor", &[]) },
            "/api/v1/forecast": { "get": op("Per skill group: ready agents the next 30 min needs for 90 % within 20 s and 95 % within 30 s (Erlang C and Erlang A), agents ready and signed in, the expected 20 s rate, the last hours' arrivals and 20 s rate", "supervisor", &[]) },
            "/api/v1/calls/active": { "get": op("Calls in progress", "supervisor", &[]) },
            "/api/v1/messages": { "post": op("Text message to an agent {to_agent, text}", "any", &[]) },
            "/api/v1/events": { "get": op("WebSocket: live events, screen pops, messages (token in the query)", "any", &["token"]) }
    })
}

/// The document.
pub fn spec() -> Value {
    let mut doc = records_spec();
    if let (Some(paths), Value::Object(cti)) = (doc["paths"].as_object_mut(), cti_paths()) {
        paths.extend(cti);
    }
    doc
}

/// The records and admin part of the document.
fn records_spec() -> Value {
    let mut calls = CALL_FILTERS.to_vec();
    calls.push("format");
    let mut reports = CALL_FILTERS.to_vec();
    reports.extend(["by", "format"]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hotline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Call records, reports and administration of the hotline softswitch. \
                Log in with POST /api/v1/login, then send `Authorization: Bearer <token>`. \
                Errors are `{\"error\": {\"code\", \"message\", \"message_zh\"}}`."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error with a stable code, an English message and its Chinese text",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "error": { "type": "object", "properties": {
                            "code": { "type": "string" }, "message": { "type": "string" },
                            "message_zh": { "type": "string" }
                        }}}
                    }}}
                }
            }
        },
        "paths": {
            "/api/v1/login": { "post": {
                "summary": "Log in: {username, password} → {token, expires_at, user}",
                "requestBody": { "content": { "application/json": { "schema": {
                    "type": "object", "required": ["username", "password"],
                    "properties": { "username": { "type": "string" }, "password": { "type": "string" } }
                }}}},
                "responses": { "200": { "description": "token" },
                    "401": { "$ref": "#/components/responses/Error" },
                    "429": { "$ref": "#/components/responses/Error" } }
            }},
            "/api/v1/openapi.json": { "get": {
                "summary": "This document (no authentication)",
                "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1" } }
            }},
            "/api/v1/logout": { "post": op("End this token's session", "any", &[]) },
            "/api/v1/me": { "get": op("The token's user", "any", &[]) },
            "/api/v1/calls": { "get": op("Call records, newest first (json or masked csv)", "agent: own calls; supervisor, admin: tenant", &calls) },
            "/api/v1/calls/{id}": { "get": op("One call's events in order and its record", "agent: calls they took; supervisor, admin: tenant", &["id:path"]) },
            "/api/v1/reports": { "get": op("KPI report by group, agent, hour or day (json, csv, xlsx)", "supervisor, admin", &reports) },
            "/api/v1/recordings/{id}": { "get": op("A recording (WAV), with Range requests; audited", "supervisor, admin", &["id:path"]) },
            "/api/v1/voicemails/{path}": { "get": op("A voicemail (WAV), with Range requests; audited", "supervisor, admin", &["path:path"]) },
            "/api/v1/admin/dead-letters": { "get": op("Events a sink gave up on", "global admin", &["sink", "limit"]) },
            "/api/v1/admin/dead-letters/replay": { "post": op("Replay one dead letter ({sink, id}) or all ({sink, all: true}); audited", "global admin", &[]) },
            "/api/v1/admin/audit": { "get": op("Audit log, newest first", "supervisor, admin", &["limit", "before"]) },
            "/api/v1/admin/users": { "get": op("Users", "admin", &[]) },
            "/api/v1/admin/storage": { "get": op("Recording and voicemail storage per tenant", "admin", &[]) }
        }
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
