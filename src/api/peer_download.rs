//! A recording or voicemail made on another node (issue 15 §2: what a
//! supervisor sees is "the same whichever node the browser asks"). The
//! files stay on the node that recorded them; with a shared store, a
//! download not found here is asked of the other nodes alive now (their
//! HTTP addresses beside their heartbeats, `store::Store::peers`), with the
//! caller's own token (sessions are shared rows) and `Range`, and the
//! first answer that is not a 404 is streamed back as it comes. The node
//! that has the file checks the token, the tenant and audits the download,
//! as for a request of its own. A forwarded request carries
//! [`FORWARDED`] and is never forwarded again.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::store::Store;

/// The header marking a request one node passed to another.
pub const FORWARDED: &str = "x-hotline-forwarded";

/// Nodes whose heartbeat is older than this are not asked.
const ALIVE_SECS: i32 = 5;

/// How long a peer has to start answering.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Headers of the peer's answer passed on to the browser.
const PASSED_BACK: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CONTENT_DISPOSITION,
    header::LAST_MODIFIED,
];

/// The other nodes' answer to `path_and_query` (the request's own), or
/// `None`: no shared store, a request already forwarded, no other node
/// alive, or every node answered 404 or could not be reached.
pub async fn from_peers(
    store: Option<&Store>,
    path_and_query: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let store = store.filter(|s| s.is_shared())?.clone();
    if headers.contains_key(FORWARDED) {
        return None;
    }
    let peers = match tokio::task::spawn_blocking(move || store.peers(ALIVE_SECS)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot list the other nodes for a download");
            return None;
        }
        Err(_) => return None,
    };
    if peers.is_empty() {
        return None;
    }
    let client = client()?;
    for base in peers {
        let mut req = client
            .get(format!("{base}{path_and_query}"))
            .header(FORWARDED, "1");
        for name in [header::AUTHORIZATION, header::RANGE, header::IF_RANGE] {
            if let Some(v) = headers.get(&name) {
                req = req.header(name, v.clone());
            }
        }
        let answer = match req.send().await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(peer = %base, error = %e, "a node did not answer a forwarded download");
                continue;
            }
        };
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        tracing::debug!(peer = %base, path = %path_and_query, status = %answer.status(), "download served by another node");
        return Some(relay(answer));
    }
    None
}

/// One HTTP client for every forwarded download (its connection pool is
/// kept between them).
fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(ANSWER_WITHIN)
                .read_timeout(ANSWER_WITHIN)
                .build()
                .map_err(
                    |e| tracing::warn!(error = %e, "no HTTP client for downloads from other nodes"),
                )
                .ok()
        })
        .as_ref()
}

/// The peer's answer as ours: its status, the headers that describe the
/// body, and the body streamed as it arrives (a broken transfer ends it
/// short, which the browser sees against `Content-Length`).
fn relay(answer: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut passed = HeaderMap::new();
    for name in PASSED_BACK {
        if let Some(v) = answer
            .headers()
            .get(name.as_str())
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            passed.insert(name, v);
        }
    }
    let body = futures::stream::unfold(Some(answer), |answer| async move {
        let mut answer = answer?;
        match answer.chunk().await {
            Ok(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), Some(answer))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = passed;
    resp
}
