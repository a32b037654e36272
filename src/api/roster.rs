//! Agents, skill groups and configuration reload (CTI issue §6 "Admin:
//! agents, skill groups … CRUD (persisted in SQLite; the config file seeds
//! them), reload flows/config").
//!
//! | endpoint | role | what |
//! |---|---|---|
//! | `GET /api/v1/admin/agents` | supervisor | the tenant's agents (no secrets), with who owns each entry |
//! | `GET /api/v1/admin/agents/{id}` | supervisor | one agent, by job number |
//! | `PUT /api/v1/admin/agents/{id}` | admin | create or replace (the `[[agent]]` entry as JSON); 201 created, 200 replaced; audited |
//! | `DELETE /api/v1/admin/agents/{id}` | admin | 204; 409 `in_use` while the agent is signed in; audited |
//! | `GET /api/v1/admin/groups`, `…/groups/{id}` | supervisor | skill groups |
//! | `PUT /api/v1/admin/groups/{id}` | admin | create or replace (the `[[group]]` entry as JSON); audited |
//! | `DELETE /api/v1/admin/groups/{id}` | admin | 204; 409 `in_use` while calls wait in it; audited |
//! | `POST /api/v1/admin/reload` | global admin | read `hotline.toml` again: agents, groups, IVR; lists what needs a restart |
//!
//! A change is in force for the next call and offer at once and is kept in
//! `hotline.db` (see `switch::roster` for the steps and
//! [`crate::roster::seed`] for how the file's entries and the API's edits
//! meet). Passwords sent through the API are stored as digest HA1 hashes
//! (MD5 and SHA-256 for the SIP realm), never in clear; a replacement
//! without credentials keeps the agent's current ones.

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::handles::RosterAdmin;
use super::session::json_body;
use super::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};
use crate::config::{AgentConfig, GroupConfig};
use crate::roster::agent_id;
use crate::roster::change::{Edit, RosterError};
use crate::roster::seed::{Kind, Origin};
use crate::sip::auth::{ha1, DigestAlgorithm};

fn admin(s: &ApiState) -> ApiResult<&dyn RosterAdmin> {
    s.roster.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no call handling in this process",
        )
    })
}

impl From<RosterError> for ApiError {
    fn from(e: RosterError) -> Self {
        match e {
            RosterError::Invalid(problems) => ApiError::bad_request("invalid", problems.join("; ")),
            RosterError::InUse(why) => ApiError::new(StatusCode::CONFLICT, "in_use", why),
            RosterError::File(why) => ApiError::new(StatusCode::CONFLICT, "invalid_config", why),
            e @ (RosterError::Store(_) | RosterError::Corrupt { .. }) => ApiError::internal(e),
        }
    }
}

/// An agent as the API shows it: the entry without secrets, its id, what
/// kind of credentials it has and who owns the entry.
fn agent_view(a: &AgentConfig, origin: Option<Origin>) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.remove("password");
        m.remove("ha1_md5");
        m.remove("ha1_sha256");
        m.insert("agent_id".into(), json!(agent_id(a)));
        let credentials = if a.password.is_some() {
            "password"
        } else {
            "ha1"
        };
        m.insert("credentials".into(), json!(credentials));
        m.insert("origin".into(), json!(origin.map(Origin::as_str)));
    }
    v
}

fn group_view(g: &GroupConfig, origin: Option<Origin>) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        m.insert("origin".into(), json!(origin.map(Origin::as_str)));
    }
    v
}

/// `GET /api/v1/admin/agents`.
pub async fn agents(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let origins = a.origins(Kind::Agent).await;
    let roster = a.roster().load();
    let agents: Vec<Value> = roster
        .agents()
        .iter()
        .filter(|x| p.may_access_tenant(&x.tenant))
        .map(|x| agent_view(x, origins.get(&x.user).copied()))
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `GET /api/v1/admin/agents/{id}`.
pub async fn agent(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let roster = a.roster().load();
    let x = roster
        .agent(&id)
        .filter(|x| p.may_access_tenant(&x.tenant))
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))?;
    let origin = a.origins(Kind::Agent).await.get(&x.user).copied();
    Ok(Json(agent_view(x, origin)))
}

/// The body as a JSON object with `tenant` filled in (the caller's tenant
/// when absent) and checked against the caller.
fn with_tenant(p: &Principal, body: &[u8]) -> ApiResult<Map<String, Value>> {
    let v: Value = json_body(body)?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::bad_request("bad_json", "expected a JSON object"));
    };
    let tenant = match (m.get("tenant"), p.tenant_filter()) {
        (Some(Value::String(t)), _) => t.clone(),
        (Some(_), _) => return Err(ApiError::bad_request("bad_request", "tenant: a string")),
        (None, Some(own)) => own.to_string(),
        (None, None) => crate::config::default_tenant(),
    };
    p.require_tenant(&tenant)?;
    m.insert("tenant".into(), json!(tenant));
    Ok(m)
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, m: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(m))
        .map_err(|e| ApiError::bad_request("bad_request", format!("{what}: {e}")))
}

/// `PUT /api/v1/admin/agents/{id}`: create or replace an agent.
pub async fn put_agent(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Admin)?;
    let a = admin(&s)?;
    let mut m = with_tenant(&p, &body)?;
    // The path names the agent: its job number (or SIP user).
    let user = m.get("user").and_then(Value::as_str).map(str::to_string);
    if m.get("job_number").is_none() && user.as_deref() != Some(id.as_str()) {
        m.insert("job_number".into(), json!(id));
    }
    let mut agent: AgentConfig = parse("agent", m)?;
    if agent_id(&agent) != id {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "the body's job number {:?} differs from the path's {id:?}: to renumber an agent, delete and re-create it",
                agent_id(&agent)
            ),
        ));
    }
    let roster = a.roster().load();
    let existing = roster
        .agent(&id)
        .or_else(|| roster.agent_by_user(&agent.user));
    if let Some(old) = existing {
        if !p.may_access_tenant(&old.tenant) {
            // Another tenant's agent, or its SIP user: not visible here.
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "taken",
                "this job number or SIP user belongs to another tenant",
            ));
        }
        if agent_id(old) != id || old.user != agent.user {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "taken",
                format!(
                    "agent {:?} already has SIP user {:?}: a job number and a SIP user belong to one agent",
                    agent_id(old),
                    old.user
                ),
            ));
        }
    }
    let realm = a.config().load().sip.realm.clone();
    match (&agent.password, &agent.ha1_md5, &agent.ha1_sha256, existing) {
        (Some(pw), _, _, _) => {
            if pw.len() < 8 {
                return Err(ApiError::bad_request(
                    "weak_password",
                    "a phone password needs at least 8 characters",
                ));
            }
            agent.ha1_md5 = Some(ha1(DigestAlgorithm::Md5, &agent.user, &realm, pw));
            agent.ha1_sha256 = Some(ha1(DigestAlgorithm::Sha256, &agent.user, &realm, pw));
            agent.password = None;
        }
        (None, None, None, Some(old)) => {
            agent.password = old.password.clone();
            agent.ha1_md5 = old.ha1_md5.clone();
            agent.ha1_sha256 = old.ha1_sha256.clone();
        }
        (None, None, None, None) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "a new agent needs credentials: password, ha1_md5 or ha1_sha256",
            ))
        }
        _ => {}
    }
    let created = existing.is_none();
    let acd = a.edit(Edit::PutAgent(agent.clone())).await?;
    audit(
        &s,
        &p,
        &agent.tenant,
        if created {
            "agent.create"
        } else {
            "agent.update"
        },
        &id,
        agent_view(&agent, Some(Origin::Api)),
    );
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = agent_view(&agent, Some(Origin::Api));
    view["acd"] = json!(acd);
    Ok((status, Json(view)))
}

/// `DELETE /api/v1/admin/agents/{id}`.
pub async fn delete_agent(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<StatusCode> {
    p.require(Role::Admin)?;
    let a = admin(&s)?;
    let old = a
        .roster()
        .load()
        .agent(&id)
        .filter(|x| p.may_access_tenant(&x.tenant))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))?;
    a.edit(Edit::DeleteAgent(old.user.clone())).await?;
    audit(&s, &p, &old.tenant, "agent.delete", &id, Value::Null);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/groups`.
pub async fn groups(State(s): State<ApiState>, Caller(p): Caller) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let origins = a.origins(Kind::Group).await;
    let roster = a.roster().load();
    let groups: Vec<Value> = roster
        .groups()
        .iter()
        .filter(|g| p.may_access_tenant(&g.tenant))
        .map(|g| group_view(g, origins.get(&g.id).copied()))
        .collect();
    Ok(Json(json!({ "groups": groups })))
}

/// `GET /api/v1/admin/groups/{id}`.
pub async fn group(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let roster = a.roster().load();
    let g = roster
        .group(&id)
        .filter(|g| p.may_access_tenant(&g.tenant))
        .ok_or_else(|| ApiError::not_found(format!("no group {id:?}")))?;
    let origin = a.origins(Kind::Group).await.get(&g.id).copied();
    Ok(Json(group_view(g, origin)))
}

/// `PUT /api/v1/admin/groups/{id}`: create or replace a skill group.
pub async fn put_group(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Admin)?;
    let a = admin(&s)?;
    let mut m = with_tenant(&p, &body)?;
    match m.get("id") {
        None => {
            m.insert("id".into(), json!(id));
        }
        Some(v) if v.as_str() == Some(id.as_str()) => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_request",
                "the body's id differs from the path's: to rename a group, delete and re-create it",
            ))
        }
    }
    let group: GroupConfig = parse("group", m)?;
    let existing = a.roster().load().group(&id).cloned();
    if let Some(old) = &existing {
        if !p.may_access_tenant(&old.tenant) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "taken",
                "this group id belongs to another tenant",
            ));
        }
    }
    let acd = a.edit(Edit::PutGroup(group.clone())).await?;
    let created = existing.is_none();
    audit(
        &s,
        &p,
        &group.tenant,
        if created {
            "group.create"
        } else {
            "group.update"
        },
        &id,
        group_view(&group, Some(Origin::Api)),
    );
    let mut view = group_view(&group, Some(Origin::Api));
    view["acd"] = json!(acd);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// `DELETE /api/v1/admin/groups/{id}`.
pub async fn delete_group(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<StatusCode> {
    p.require(Role::Admin)?;
    let a = admin(&s)?;
    let old = a
        .roster()
        .load()
        .group(&id)
        .filter(|g| p.may_access_tenant(&g.tenant))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no group {id:?}")))?;
    a.edit(Edit::DeleteGroup(id.clone())).await?;
    audit(&s, &p, &old.tenant, "group.delete", &id, Value::Null);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/reload` (global admins): read the configuration
/// file again. 200 with what changed; 409 `invalid_config` when the file
/// is invalid (nothing changed); 409 `invalid_flows` when the agents and
/// groups were applied but the IVR files are invalid (the previous flows
/// keep serving).
pub async fn reload(
    State(s): State<ApiState>,
    Caller(p): Caller,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Admin)?;
    if !p.is_global_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the configuration file is shared by every tenant: global admins only",
        ));
    }
    let a = admin(&s)?;
    let report = a.reload().await;
    audit(
        &s,
        &p,
        &p.tenant.clone(),
        "config.reload",
        "hotline.toml",
        match &report {
            Ok(r) => json!(r),
            Err(e) => json!({ "error": e.to_string() }),
        },
    );
    let report = report?;
    let ivr = a.ivr();
    let flows: Vec<Value> = ivr
        .flows()
        .into_iter()
        .map(|(name, version, dids)| json!({ "name": name, "version": version, "dids": dids }))
        .collect();
    let mut body = json!({
        "reloaded": report.ivr_ok,
        "source": report.source,
        "roster": report.roster,
        "notes": report.notes,
        "restart_needed": report.restart_needed,
        "flows": flows,
    });
    if report.ivr_ok {
        Ok((StatusCode::OK, Json(body)))
    } else {
        body["error"] = super::error::error_object(
            "invalid_flows",
            "agents and groups were applied; the IVR files are invalid and the previous flows keep serving",
            StatusCode::CONFLICT,
        );
        body["problems"] = json!(ivr.problems());
        Ok((StatusCode::CONFLICT, Json(body)))
    }
}
