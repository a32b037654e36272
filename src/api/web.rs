//! The reference pages (CTI issue §7): plain HTML/JS from `[http] web_dir`
//! (default `./web`), served under `/web/` with no build step; `/` goes to
//! the page index. They use only the public API and WebSocket.
//!
//! Only files directly named below the directory are served (no `..`, no
//! hidden files, no directory listings); content types by extension;
//! `Cache-Control: no-cache` so an edited page shows at once.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::ApiError;

/// Where the pages are.
#[derive(Clone)]
pub struct WebRoot(pub PathBuf);

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// `GET /web/{path}`.
pub async fn file(State(root): State<WebRoot>, UrlPath(rel): UrlPath<String>) -> Response {
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel
    };
    let p = Path::new(&rel);
    let safe = p.components().all(|c| match c {
        Component::Normal(s) => !s.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if !safe {
        return ApiError::not_found("no such page").into_response();
    }
    let path = root.0.join(p);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Err(_) => ApiError::not_found("no such page").into_response(),
    }
}

/// `GET /`: the page index.
pub async fn index() -> Redirect {
    Redirect::temporary("/web/index.html")
}

/// The `/web` routes.
pub fn router(root: PathBuf) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(index))
        .route("/web/{*path}", axum::routing::get(file))
        .with_state(WebRoot(root))
}
