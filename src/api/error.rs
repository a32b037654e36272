//! API errors as JSON (CTI issue §1: "Errors are JSON with a stable code and
//! a message; unknown ids, bad JSON, wrong states → 4xx, never 500").
//!
//! Body: `{"error": {"code": "forbidden", "message": "…", "message_zh":
//! "…"}}`: the stable code, the English message naming the detail, and the
//! Chinese text agents see ([`super::zh`]). Internal failures (a database
//! error) are logged once with their detail and answer 500 with `internal`
//! and no detail. Answers made before a handler runs (body too large, wrong
//! method) get the same shape from [`super::json_errors`].

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::records::store::RecordsError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds to wait (429).
    pub retry_after: Option<i64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 500 `internal`; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

/// The error object of every JSON error answer: `{"code", "message",
/// "message_zh"}`.
pub fn error_object(code: &str, message: &str, status: StatusCode) -> serde_json::Value {
    json!({
        "code": code,
        "message": message,
        "message_zh": super::zh::message_zh(code, status.as_u16()),
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": error_object(self.code, &self.message, self.status)}));
        let mut resp = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        if e.is_internal() {
            return ApiError::internal(&e);
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError {
            status,
            code: e.code(),
            message: e.public_message(),
            retry_after: e.retry_after_secs(),
        }
    }
}

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> ApiError {
        match e {
            RecordsError::BadQuery(m) => ApiError::bad_request("bad_query", m),
            other => ApiError::internal(other),
        }
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Query parameters, refused with a JSON 400 (`bad_query`) naming the
/// parameter at fault instead of axum's plain-text rejection.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}
