//! Block-list administration (CTI issue §6: "blacklist CRUD (persisted in
//! SQLite; the config file seeds them)").
//!
//! | endpoint | role | what |
//! |---|---|---|
//! | `GET /api/v1/admin/blacklist` | supervisor | the tenant's entries |
//! | `POST /api/v1/admin/blacklist` | supervisor | `{"number", "reason", "expires_at"?, "tenant"?}`: add or replace (a number, or a prefix ending in `*`); audited |
//! | `DELETE /api/v1/admin/blacklist/{number}` | supervisor | remove (`?tenant=` for a global admin); audited |
//!
//! A change takes effect for the next call at once and is written to
//! `<data.dir>/hotline.db`, so it survives a restart.

use std::sync::{Arc, RwLock};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiQuery;
use super::session::json_body;
use super::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};
use crate::ivr::blacklist::{Blacklist, Entry};

/// What the block-list endpoints need.
pub struct BlockAdmin {
    /// The live block list (the IVR reads it on each call).
    pub list: Arc<RwLock<Blacklist>>,
    /// Where it is kept.
    pub store: crate::store::Store,
}

fn admin(s: &ApiState) -> ApiResult<&BlockAdmin> {
    s.blocks.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no IVR in this process",
        )
    })
}

/// The tenant an operation is on: the caller's, or for a global admin the
/// one named (required).
fn tenant_of(p: &Principal, asked: Option<&str>) -> ApiResult<String> {
    match (p.tenant_filter(), asked) {
        (Some(own), None) => Ok(own.to_string()),
        (Some(own), Some(t)) if t == own => Ok(own.to_string()),
        (Some(_), Some(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "another tenant's block list",
        )),
        (None, Some(t)) => Ok(t.to_string()),
        (None, None) => Err(ApiError::bad_request("bad_request", "give \"tenant\"")),
    }
}

/// Query of the list and delete endpoints.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantParam {
    tenant: Option<String>,
}

/// `GET /api/v1/admin/blacklist`.
pub async fn list(
    State(s): State<ApiState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let tenant = tenant_of(&p, q.tenant.as_deref())?;
    let list = a
        .list
        .read()
        .map_err(|_| ApiError::internal("block list lock poisoned"))?;
    let entries: Vec<&Entry> = list.entries(&tenant);
    Ok(Json(json!({ "tenant": tenant, "entries": entries })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    number: String,
    #[serde(default)]
    reason: String,
    /// RFC 3339 end of the block (none: until removed).
    expires_at: Option<String>,
    tenant: Option<String>,
}

/// `POST /api/v1/admin/blacklist`.
pub async fn add(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Supervisor)?;
    let req: AddRequest = json_body(&body)?;
    let a = admin(&s)?;
    let tenant = tenant_of(&p, req.tenant.as_deref())?;
    if req.reason.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "bad_request",
            "reason: at most 500 characters",
        ));
    }
    let expires_at = req
        .expires_at
        .as_deref()
        .map(|t| {
            crate::events::time::Timestamp::parse(t)
                .map(|ts| ts.unix_ms() / 1000)
                .map_err(|_| {
                    ApiError::bad_request(
                        "bad_request",
                        format!("expires_at {t:?} is not an RFC 3339 time"),
                    )
                })
        })
        .transpose()?;
    let entry = Entry {
        number: req.number.clone(),
        reason: req.reason.clone(),
        added_by: p.user.clone(),
        expires_at,
    };
    // Validate and normalise on a copy first: nothing changes on a refusal.
    let mut probe = Blacklist::new();
    probe
        .insert(&tenant, entry.clone())
        .map_err(|e| ApiError::bad_request("bad_number", e.to_string()))?;
    let normalised = probe
        .entries(&tenant)
        .first()
        .map(|e| (*e).clone())
        .unwrap_or(entry);
    let store = a.store.clone();
    let (t2, e2) = (tenant.clone(), normalised.clone());
    tokio::task::spawn_blocking(move || store.save_blacklist_entry(&t2, &e2))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    {
        let mut list = a
            .list
            .write()
            .map_err(|_| ApiError::internal("block list lock poisoned"))?;
        list.insert(&tenant, normalised.clone())
            .map_err(|e| ApiError::bad_request("bad_number", e.to_string()))?;
    }
    audit(
        &s,
        &p,
        &tenant,
        "blacklist.add",
        &normalised.number,
        json!({ "reason": normalised.reason, "expires_at": req.expires_at }),
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "tenant": tenant, "entry": normalised })),
    ))
}

/// `DELETE /api/v1/admin/blacklist/{number}`.
pub async fn remove(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(number): UrlPath<String>,
    ApiQuery(q): ApiQuery<TenantParam>,
) -> ApiResult<StatusCode> {
    p.require(Role::Supervisor)?;
    let a = admin(&s)?;
    let tenant = tenant_of(&p, q.tenant.as_deref())?;
    let removed = {
        let mut list = a
            .list
            .write()
            .map_err(|_| ApiError::internal("block list lock poisoned"))?;
        list.remove(&tenant, &number)
    };
    let Some(entry) = removed else {
        return Err(ApiError::not_found(format!(
            "{number:?} is not on the block list"
        )));
    };
    let store = a.store.clone();
    let (t2, n2) = (tenant.clone(), entry.number.clone());
    tokio::task::spawn_blocking(move || store.delete_blacklist_entry(&t2, &n2))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    audit(
        &s,
        &p,
        &tenant,
        "blacklist.remove",
        &entry.number,
        Value::Null,
    );
    Ok(StatusCode::NO_CONTENT)
}
