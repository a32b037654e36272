//! Cross-origin calls from the ticket platform's pages (issue 14 §1,
//! Fetch standard's CORS protocol): an origin in `[http] cors_origins` gets
//! `Access-Control-Allow-Origin` naming it (with `Vary: Origin`), and its
//! preflight `OPTIONS` is answered 204 with the methods and the two request
//! headers the API reads (`Authorization`, `Content-Type`). Any other
//! origin gets no CORS header, so browsers keep its pages out. No
//! credentials mode: the API reads tokens from the `Authorization` header
//! only, never cookies, so a page cannot borrow a user's session (CSRF).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Arc<[String]>);

impl AllowedOrigins {
    /// These origins (checked by the configuration: `config::valid_origin`).
    pub fn new(origins: &[String]) -> Self {
        Self(
            origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
        )
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        origin
            .to_str()
            .is_ok_and(|o| self.0.iter().any(|a| a.eq_ignore_ascii_case(o)))
    }
}

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: &str = "600";

/// The middleware: see the module docs.
pub async fn cors(allowed: AllowedOrigins, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|o| allowed.allows(o))
        .cloned();
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECS),
        );
        r
    } else {
        next.run(request).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("origin"));
    response
}
