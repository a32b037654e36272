//! The `http` node's shell (issue 18 §2, IVR lookups): sends the request
//! the interpreter built, in a task of its own so the call (its keys, its
//! hang-up) and every other call go on meanwhile; each attempt is bounded
//! by the node's `timeout_secs` (connecting, sending and reading the whole
//! answer), a timeout, no connection or a 5xx is tried again up to
//! `retries` times a quarter second apart, redirects are not followed and
//! an answer over [`MAX_BODY_BYTES`] is refused. The contract is in
//! `docs/integrations.md` (## IVR lookups).
//!
//! Every request counts in `ivr_lookups`; a failure (timeout, no answer,
//! 5xx) logs one line and counts in `ivr_lookup_failures` (`/healthz`,
//! `/metrics`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::call::CallCounters;
use crate::ivr::{HttpMethod, HttpOutcome, HttpRequest};

/// Largest answer body read, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Pause between attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// One client for every lookup (its connections are reused): no
/// redirects, no proxy from the environment (the service is on the
/// centre's network).
fn client() -> Option<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| warn!(error = %e, "no HTTP client for IVR lookups"))
                .ok()
        })
        .as_ref()
}

/// Sends `request` (with its retries); its id and how it ended.
pub(super) async fn send(request: HttpRequest, counters: Arc<CallCounters>) -> (u64, HttpOutcome) {
    counters.ivr_lookups.fetch_add(1, Ordering::Relaxed);
    let limit = Duration::from_secs(u64::from(request.timeout_secs));
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let outcome = match client() {
            None => HttpOutcome::Failed("no HTTP client".into()),
            Some(client) => tokio::time::timeout(limit, once(client, &request))
                .await
                .unwrap_or(HttpOutcome::Timeout),
        };
        if !failed(&outcome) || attempts > request.retries {
            break outcome;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    };
    if failed(&outcome) {
        counters.ivr_lookup_failures.fetch_add(1, Ordering::Relaxed);
        // The query may carry the caller's data: the log shows the path.
        let url = request.url.split(['?', '#']).next().unwrap_or("");
        let what = match &outcome {
            HttpOutcome::Response { status, .. } => format!("status {status}"),
            HttpOutcome::Timeout => format!("no answer within {}s", request.timeout_secs),
            HttpOutcome::Failed(why) => why.clone(),
        };
        warn!(method = request.method.as_str(), %url, attempts, outcome = %what, "IVR lookup failed");
    }
    (request.id, outcome)
}

/// A timeout, no answer, or a server error: tried again, and counted.
fn failed(outcome: &HttpOutcome) -> bool {
    match outcome {
        HttpOutcome::Response { status, .. } => *status >= 500,
        HttpOutcome::Timeout | HttpOutcome::Failed(_) => true,
    }
}

/// One attempt: the request sent, the answer read (bounded).
async fn once(client: &reqwest::Client, request: &HttpRequest) -> HttpOutcome {
    let mut builder = match request.method {
        HttpMethod::Get => client.get(&request.url),
        HttpMethod::Post => client.post(&request.url),
    };
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &request.body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
    }
    builder = builder.header(reqwest::header::ACCEPT, "application/json");
    let mut answer = match builder.send().await {
        Ok(a) => a,
        Err(e) => return HttpOutcome::Failed(error_text(&e)),
    };
    let status = answer.status().as_u16();
    let mut body = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return HttpOutcome::Failed(format!(
                        "answer larger than {MAX_BODY_BYTES} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return HttpOutcome::Failed(error_text(&e)),
        }
    }
    HttpOutcome::Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A reqwest error with its causes (e.g. "connection refused").
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
