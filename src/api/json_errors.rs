//! JSON errors everywhere under `/api/` (issue 12 item 8: "`/api/v1`
//! errors are JSON everywhere (a 5 MB body gets a JSON 413)").
//!
//! The handlers answer their own errors as [`super::ApiError`] JSON, but
//! some answers are made before a handler runs: axum's body limit (413),
//! routing (405 for a wrong method), and extractor rejections, all plain
//! text or empty. This middleware turns every such 4xx/5xx answer under
//! `/api/` into the same shape, `{"error": {"code", "message",
//! "message_zh"}}`, with a code for its status and the original text as
//! the message; headers such as `Allow` are kept. JSON answers pass
//! untouched.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The largest request body the API reads (axum's default, made explicit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The error code of a status answered outside the handlers.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "bad_request",
        429 => "locked",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "bad_request",
    }
}

/// The message of such an answer: its text, or for a body that is too
/// large the limit.
fn message_for(status: StatusCode, text: &str) -> String {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return format!(
            "the request body is larger than {} MiB",
            MAX_BODY_BYTES / (1024 * 1024)
        );
    }
    let text = text.trim();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text.to_string()
    }
}

/// The middleware: see the module docs.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let status = resp.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // The texts axum writes are short; a longer body is not a message.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if status.is_server_error() {
        tracing::warn!(%status, text = %text.trim(), "API answered a plain-text error");
    }
    let mut out =
        ApiError::new(status, code_for(status), message_for(status, &text)).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_by_status() {
        let table = [
            (
                413,
                "Failed to buffer the request body",
                "too_large",
                "the request body is larger than 2 MiB",
            ),
            (405, "", "method_not_allowed", "Method Not Allowed"),
            (400, " Invalid URL: bad ", "bad_request", "Invalid URL: bad"),
            (
                415,
                "Expected request with `Content-Type: application/json`",
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`",
            ),
            (500, "", "internal", "Internal Server Error"),
        ];
        for (status, text, code, message) in table {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(code_for(status), code, "{status}");
            assert_eq!(message_for(status, text), message, "{status}");
        }
    }
}
