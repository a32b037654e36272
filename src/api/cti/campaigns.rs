//! Follow-up campaigns (回访, issue 18 §3): supervisors of a centre (and
//! admins) hand hotline the citizens to call back about their tickets;
//! hotline dials them through the group's agents inside the calling
//! window, redials the unanswered, and shows each item's state
//! (`call::campaign`). Every endpoint is tenant-scoped like the callbacks
//! API (another centre's group or campaign answers as an unknown one) and
//! every change is audited.
//!
//! * `POST /api/v1/campaigns` `{"group", "schedule", "redial"?:
//!   {"attempts", "spacing_secs"}, "concurrency"?, "items": [{"number",
//!   "ticket_id", "emergency"?, "closed_at"?, "due_by"?}]}` (times in Unix
//!   seconds): 201 with the campaign;
//! * `POST /api/v1/campaigns/{id}/items` `{"items": […]}`: add items;
//! * `GET /api/v1/campaigns/{id}`: the campaign, its items' states,
//!   attempts (each with its call record) and counts by state;
//! * `POST /api/v1/campaigns/{id}/cancel`: nothing more is dialled.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{cti, phone_number, Cti};
use crate::acd::campaign::RedialPolicy;
use crate::api::session::json_body;
use crate::api::{audit, ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};
use crate::call::campaign::{Campaign, CampaignError, Campaigns, ItemSpec, NewCampaign};
use crate::time::Time;

/// Longest redial spacing (a day).
const MAX_SPACING_SECS: u64 = 86_400;
/// Most attempts per item.
const MAX_ATTEMPTS: u32 = 10;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RedialRequest {
    attempts: u32,
    spacing_secs: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemRequest {
    number: String,
    ticket_id: String,
    #[serde(default)]
    emergency: bool,
    closed_at: Option<u64>,
    due_by: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignRequest {
    group: String,
    schedule: String,
    redial: Option<RedialRequest>,
    concurrency: Option<usize>,
    items: Vec<ItemRequest>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsRequest {
    items: Vec<ItemRequest>,
}

/// The campaign runner, or 404 when follow-ups cannot run here (no skill
/// group, or several nodes sharing a store).
fn runner(cti: &Cti) -> ApiResult<&Campaigns> {
    cti.calls.campaigns.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_campaigns",
            "follow-up campaigns need skill groups on a single node",
        )
    })
}

fn items(req: Vec<ItemRequest>) -> ApiResult<Vec<ItemSpec>> {
    req.into_iter()
        .map(|i| {
            if !phone_number(&i.number) {
                return Err(ApiError::bad_request(
                    "bad_number",
                    format!("{:?} is not a phone number", i.number),
                ));
            }
            if i.ticket_id.trim().is_empty() || i.ticket_id.len() > 128 {
                return Err(ApiError::bad_request(
                    "bad_ticket",
                    format!("ticket id {:?} must be 1 to 128 characters", i.ticket_id),
                ));
            }
            Ok(ItemSpec {
                number: i.number,
                ticket_id: i.ticket_id,
                emergency: i.emergency,
                ticket_at: i.closed_at.map(Time::from_unix_secs),
                due_by: i.due_by.map(Time::from_unix_secs),
            })
        })
        .collect()
}

fn refused(e: CampaignError) -> ApiError {
    match e {
        CampaignError::Unknown(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_campaign",
            format!("no campaign {id:?}"),
        ),
        CampaignError::TooMany => ApiError::bad_request("too_many_items", e.to_string()),
        CampaignError::Store(_) | CampaignError::Stopped => ApiError::internal(e),
    }
}

/// Campaign `id` if `p` may see it (another centre's answers as unknown).
async fn visible(runner: &Campaigns, p: &Principal, id: &str) -> ApiResult<Campaign> {
    let c = runner.get(id).await.map_err(refused)?;
    if !p.may_access_tenant(&c.tenant) {
        return Err(refused(CampaignError::Unknown(id.to_string())));
    }
    Ok(c)
}

/// `POST /api/v1/campaigns`.
pub async fn create(
    State(s): State<ApiState>,
    Caller(p): Caller,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require(Role::Supervisor)?;
    let cti = cti(&s)?;
    let runner = runner(cti)?;
    let req: CampaignRequest = json_body(&body)?;
    let tenant = cti.group_of_principal(&p, &req.group)?;
    if !runner.knows_schedule(&req.schedule) {
        return Err(ApiError::bad_request(
            "unknown_schedule",
            format!("no schedule {:?} (the calling window)", req.schedule),
        ));
    }
    let redial = match &req.redial {
        None => RedialPolicy {
            attempts: 3,
            spacing: Duration::from_secs(600),
        },
        Some(r) if (1..=MAX_ATTEMPTS).contains(&r.attempts) && r.spacing_secs <= MAX_SPACING_SECS => {
            RedialPolicy {
                attempts: r.attempts,
                spacing: Duration::from_secs(r.spacing_secs),
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_redial",
                format!("redial attempts must be 1 to {MAX_ATTEMPTS}, spacing_secs at most {MAX_SPACING_SECS}"),
            ))
        }
    };
    let new = NewCampaign {
        tenant: tenant.clone(),
        group: req.group.clone(),
        schedule: req.schedule.clone(),
        redial,
        concurrency: req.concurrency.unwrap_or(1).clamp(1, 100),
        items: items(req.items)?,
    };
    let c = runner.create(new).await.map_err(refused)?;
    audit(
        &s,
        &p,
        &tenant,
        "campaign.create",
        &c.id,
        json!({ "group": c.group, "schedule": c.schedule, "items": c.items.len() }),
    );
    Ok((StatusCode::CREATED, Json(c.view())))
}

/// `POST /api/v1/campaigns/{id}/items`.
pub async fn add_items(
    State(s): State<ApiState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let runner = runner(cti(&s)?)?;
    let req: ItemsRequest = json_body(&body)?;
    let specs = items(req.items)?;
    let added = specs.len();
    let c = visible(runner, &p, &id).await?;
    if c.cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "campaign_cancelled",
            format!("campaign {id:?} is cancelled"),
        ));
    }
    let c = runner.add(&id, specs).await.map_err(refused)?;
    audit(
        &s,
        &p,
        &c.tenant,
        "campaign.add_items",
        &c.id,
        json!({ "items": added }),
    );
    Ok(Json(c.view()))
}

/// `GET /api/v1/campaigns/{id}`.
pub async fn get(
    State(s): State<ApiState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let runner = runner(cti(&s)?)?;
    Ok(Json(visible(runner, &p, &id).await?.view()))
}

/// `POST /api/v1/campaigns/{id}/cancel`.
pub async fn cancel(
    State(s): State<ApiState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let runner = runner(cti(&s)?)?;
    visible(runner, &p, &id).await?;
    let c = runner.cancel(&id).await.map_err(refused)?;
    audit(&s, &p, &c.tenant, "campaign.cancel", &c.id, json!({}));
    Ok(Json(c.view()))
}
