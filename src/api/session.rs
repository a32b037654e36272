//! Login, logout and the authenticated caller (CTI issue §2: "token login
//! with expiry and logout").
//!
//! `POST /api/v1/login {"username", "password"}` answers
//! `{"token", "expires_at", "user": {…}}`; later requests send
//! `Authorization: Bearer <token>`. Wrong credentials, unknown users and
//! disabled users get the same 401 `unauthorized`; repeated failures lock
//! the username for a while (429 `locked`, `Retry-After`).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, ApiState};
use crate::auth::{AuthError, Principal};
use crate::events::time::format_rfc3339;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing Authorization: Bearer <token>",
            )
        })?;
        let principal = authenticate(&state.auth, token).await?;
        Ok(Caller(principal))
    }
}

/// Check a token on the blocking pool: with a shared store (PostgreSQL)
/// it is a database round trip, which must not hold a tokio worker.
pub(crate) async fn authenticate(
    auth: &std::sync::Arc<crate::auth::AuthStore>,
    token: &str,
) -> Result<crate::auth::Principal, AuthError> {
    let (auth, token) = (auth.clone(), token.to_string());
    tokio::task::spawn_blocking(move || auth.authenticate(&token, crate::util::unix_now_ms()))
        .await
        .unwrap_or_else(|e| Err(AuthError::Task(e.to_string())))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// Parse a JSON body into `T`, with a 400 naming what is wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("bad_json", e.to_string()))
}

/// `POST /api/v1/login`.
pub async fn login(State(s): State<ApiState>, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let req: LoginRequest = json_body(&body)?;
    let _slot = s.login_slots.acquire().await.map_err(ApiError::internal)?;
    let auth = s.auth.clone();
    let ttl = i64::try_from(s.token_ttl.as_millis()).unwrap_or(i64::MAX);
    let login = tokio::task::spawn_blocking(move || {
        auth.login(
            &req.username,
            &req.password,
            crate::util::unix_now_ms(),
            ttl,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    let expires = format_rfc3339(login.expires_ms).unwrap_or_default();
    Ok(Json(json!({
        "token": login.token.as_str(),
        "expires_at": expires,
        "user": user_json(&s, &login.principal),
    })))
}

/// `POST /api/v1/logout`: the token stops working at once.
pub async fn logout(State(s): State<ApiState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = bearer(&headers).ok_or(AuthError::Unauthorized)?;
    authenticate(&s.auth, token).await?;
    s.auth.logout(token)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/me`: who the token belongs to.
pub async fn me(State(s): State<ApiState>, Caller(p): Caller) -> Json<Value> {
    Json(json!({ "user": user_json(&s, &p) }))
}

/// The principal with its display name (for page headers and wall-boards).
fn user_json(s: &ApiState, p: &Principal) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    let name = s
        .auth
        .user(&p.user)
        .ok()
        .flatten()
        .map(|u| u.display_name)
        .unwrap_or_else(|| p.user.clone());
    if let Some(o) = v.as_object_mut() {
        o.insert("display_name".into(), Value::String(name));
    }
    v
}
