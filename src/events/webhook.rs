//! The webhook sink (issue 7 §3: "webhook (HTTP POST, HMAC-SHA256 signature
//! header with timestamp, timeouts, exponential backoff with jitter, dead
//! letters after N attempts …)").
//!
//! A shell: it reads the wall clock (for `now_ms` and the signature
//! timestamp) and does the network I/O; every decision is made by the pure
//! parts ([`classify`], [`super::backoff`], [`super::ordering`]) and the
//! outbox.
//!
//! # The request
//! Each event is one `POST <url>` with the event's JSON as the body and:
//!
//! | header | value |
//! | --- | --- |
//! | `Content-Type` | `application/json` |
//! | `X-Hotline-Event-Id` | the event id: the idempotency key |
//! | `X-Hotline-Event-Type` | such as `call.ended` |
//! | `X-Hotline-Call-Id` | the call id (absent for events without one) |
//! | `X-Hotline-Timestamp` | unix seconds when this attempt was signed |
//! | `X-Hotline-Signature` | `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` |
//! | `X-Hotline-Attempt` | 1 for the first attempt, 2 for the first retry, … |
//! | `X-Hotline-Replay` | `1` when an operator replayed a dead letter |
//!
//! # Responses
//! - `2xx`: delivered; the call's next event may go.
//! - timeout, connection refused or reset, `408`, `429`, `5xx`, or `1xx`/`3xx`
//!   (redirects are not followed: a moved endpoint is a configuration to
//!   fix): retried with exponential backoff and full jitter, honouring a
//!   `Retry-After: <seconds>` on `429`/`503` up to the cap; after the
//!   policy's last attempt it becomes a dead letter.
//! - any other `4xx`: the receiver refuses this event; it becomes a dead
//!   letter at once (the call's later events proceed; an operator can
//!   replay it after fixing the receiver).
//!
//! Different calls are delivered in parallel, up to
//! [`WebhookSink::concurrency`] requests in flight; the events of one call
//! strictly one after the other, in order.
//!
//! # Receiving: verify, then de-duplicate
//! Delivery is at-least-once: a request whose response was lost (timeout,
//! crash, restart) is sent again with the same event id. A receiver:
//! 1. reads the raw body bytes **before** parsing them;
//! 2. computes `HMAC-SHA256(secret, X-Hotline-Timestamp + "." + body)`,
//!    hex-encodes it, and compares `"sha256=" + hex` with
//!    `X-Hotline-Signature` **in constant time** (Python:
//!    `hmac.compare_digest`; Java: `MessageDigest.isEqual`; Go:
//!    `hmac.Equal`; Rust: [`super::signature::verify`]);
//! 3. refuses (401) a timestamp more than 5 minutes from its own clock, so
//!    a captured request cannot be replayed later (a retry is re-signed
//!    with a fresh timestamp, so legitimate retries always pass);
//! 4. de-duplicates by `X-Hotline-Event-Id`: inserts the id into a table
//!    with a unique key **in the same transaction** as its processing, and
//!    answers `200` without processing again when the id is already there.
//!    Keep the ids at least as long as a dead letter may be replayed (in
//!    practice: as long as the tickets);
//! 5. answers `2xx` only once the event is safely stored; `4xx` (not 408
//!    or 429) only for an event it will never accept, since that sends it
//!    straight to the dead letters; `5xx`/`429` for "try again later".
//!
//! Per-call order holds for first receipts: event `n+1` of a call is sent
//! only after `n` was answered `2xx`. A duplicate of `n` can still arrive
//! after `n+1` (a timed-out attempt that the receiver finished late), and a
//! replayed dead letter arrives after the events that overtook it:
//! receivers that apply state use the event's own sequence/time fields.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::outbox::{Outbox, OutboxError, Pending};
use super::signature;

/// Webhook sink errors, naming the sink.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The HTTP client cannot be built (TLS roots, settings).
    #[error("webhook sink {sink}: cannot build the HTTP client for {url}: {source}")]
    Client {
        /// Sink name.
        sink: String,
        /// Endpoint.
        url: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
}

/// A webhook endpoint and how to deliver to it.
#[derive(Clone)]
pub struct WebhookSink {
    /// The sink's name in the outbox (register it with
    /// [`Outbox::register_sink`] before the first append).
    pub name: String,
    /// Endpoint, `http://` or `https://`.
    pub url: String,
    /// HMAC key shared with the receiver.
    pub secret: Vec<u8>,
    /// Whole-request timeout (connect, send, response). Keep it below the
    /// outbox's lease (`OutboxConfig::lease_ms`).
    pub timeout: Duration,
    /// Requests in flight at once (different calls); at least 1.
    pub concurrency: usize,
    /// Longest sleep when there is nothing to deliver (appends wake the
    /// sink at once; this bounds the wait for anything else).
    pub idle_poll: Duration,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// What to do with an event after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered: acknowledge.
    Delivered,
    /// Try again later.
    Retry {
        /// Why, for the logs and the dead-letter list.
        reason: String,
        /// The receiver's `Retry-After`, in seconds.
        retry_after_secs: Option<u64>,
    },
    /// The receiver refuses it for good: dead-letter now.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The verdict for an HTTP response status (pure). `retry_after` is the
/// raw `Retry-After` header, `excerpt` the start of the response body.
pub fn classify(status: u16, retry_after: Option<&str>, excerpt: &str) -> Verdict {
    let reason = if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    };
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 | 100..=199 | 300..=399 => Verdict::Retry {
            reason,
            retry_after_secs: if matches!(status, 429 | 503) {
                retry_after.and_then(|v| v.trim().parse().ok())
            } else {
                None
            },
        },
        _ => Verdict::Refused { reason },
    }
}

impl WebhookSink {
    /// A sink with defaults: 10 s timeout, 8 in flight, 1 s idle poll.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            idle_poll: Duration::from_secs(1),
        }
    }

    fn client(&self) -> Result<reqwest::Client, WebhookError> {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(self.concurrency.max(1))
            .build()
            .map_err(|source| WebhookError::Client {
                sink: self.name.clone(),
                url: self.url.clone(),
                source,
            })
    }

    /// Deliver until `shutdown` is cancelled, then wait for the requests in
    /// flight (at most [`WebhookSink::timeout`]). Outbox errors are logged
    /// and retried: the loop only ends on shutdown.
    pub async fn run(
        self,
        outbox: Arc<Outbox>,
        shutdown: CancellationToken,
    ) -> Result<(), WebhookError> {
        let client = self.client()?;
        let sink = Arc::new(self);
        let concurrency = sink.concurrency.max(1);
        let mut appended = outbox.subscribe();
        let mut in_flight: JoinSet<()> = JoinSet::new();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let free = concurrency.saturating_sub(in_flight.len());
            let mut wait = sink.idle_poll;
            if free > 0 {
                let now = now_ms();
                let name = sink.name.clone();
                let ob = Arc::clone(&outbox);
                let polled = blocking(move || {
                    let batch = ob.next_batch(&name, free, now)?;
                    let retry = if batch.len() < free {
                        ob.next_retry_at(&name, now)?
                    } else {
                        None
                    };
                    Ok((batch, retry))
                })
                .await;
                match polled {
                    Ok((batch, retry)) => {
                        if let Some(at) = retry {
                            let until = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
                            wait = wait.min(Duration::from_millis(until));
                        }
                        for p in batch {
                            let (sink, client, ob) =
                                (Arc::clone(&sink), client.clone(), Arc::clone(&outbox));
                            in_flight.spawn(async move { deliver(&sink, &client, ob, p).await });
                        }
                    }
                    Err(e) => warn!(sink = %sink.name, error = %e, "webhook: outbox poll failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = appended.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        Ok(())
    }
}

/// Run an outbox call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("outbox task failed: {e}")),
    }
}

/// One attempt at one event, then its report to the outbox.
async fn deliver(sink: &WebhookSink, client: &reqwest::Client, outbox: Arc<Outbox>, p: Pending) {
    let verdict = post(sink, client, &p).await;
    let now = now_ms();
    let name = sink.name.clone();
    let id = p.id.clone();
    debug!(sink = %name, event = %id, attempt = p.attempt, ?verdict, "webhook attempt");
    let ob = Arc::clone(&outbox);
    let reported = blocking(move || {
        let outbox = ob;
        match verdict {
            Verdict::Delivered => {
                outbox.ack(&name, &id)?;
            }
            Verdict::Retry {
                reason,
                retry_after_secs,
            } => {
                let not_before = retry_after_secs
                    .map(|s| now.saturating_add(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)));
                if let Some(super::backoff::FailOutcome::DeadLetter) =
                    outbox.fail_not_before(&name, &id, now, &reason, not_before)?
                {
                    warn!(sink = %name, event = %id, %reason, "webhook: dead letter after last attempt");
                }
            }
            Verdict::Refused { reason } => {
                warn!(sink = %name, event = %id, %reason, "webhook: receiver refused the event: dead letter");
                outbox.dead_letter(&name, &id, now, &reason)?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = reported {
        // Delivered again at the next poll: at-least-once.
        outbox.release(&sink.name, p.seq);
        warn!(sink = %sink.name, event = %p.id, error = %e, "webhook: cannot record the outcome");
    }
}

async fn post(sink: &WebhookSink, client: &reqwest::Client, p: &Pending) -> Verdict {
    let ts = now_ms().div_euclid(1000);
    let sig = signature::sign(&sink.secret, ts, p.body_json.as_bytes());
    let mut req = client
        .post(&sink.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Hotline-Event-Id", &p.id)
        .header("X-Hotline-Event-Type", &p.kind)
        .header("X-Hotline-Timestamp", ts.to_string())
        .header("X-Hotline-Signature", sig)
        .header("X-Hotline-Attempt", p.attempt.to_string());
    if let Some(call) = &p.call_id {
        req = req.header("X-Hotline-Call-Id", call);
    }
    if p.replayed {
        req = req.header("X-Hotline-Replay", "1");
    }
    match req.body(p.body_json.clone()).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // Read the (small) answer so the connection is reused; keep its
            // start for the dead-letter list.
            let excerpt = match resp.bytes().await {
                Ok(b) if !(200..300).contains(&status) => {
                    let text = String::from_utf8_lossy(&b[..b.len().min(200)]);
                    text.trim().to_string()
                }
                _ => String::new(),
            };
            classify(status, retry_after.as_deref(), &excerpt)
        }
        Err(e) if e.is_builder() => Verdict::Refused {
            // Such as an event id that is not a valid header value.
            reason: format!("cannot build the request: {}", chain(&e)),
        },
        Err(e) => Verdict::Retry {
            reason: if e.is_timeout() {
                format!("timeout after {:?}", sink.timeout)
            } else if e.is_connect() {
                format!("cannot connect: {}", chain(&e))
            } else {
                chain(&e)
            },
            retry_after_secs: None,
        },
    }
}

/// An error and its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Wall clock, unix milliseconds (the shells' clock, `util`).
fn now_ms() -> i64 {
    crate::util::unix_now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify(200, None, ""), Verdict::Delivered);
        assert_eq!(classify(204, None, ""), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503, 504, 301, 302] {
            assert!(
                matches!(classify(s, None, ""), Verdict::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 410, 413, 422] {
            assert!(
                matches!(classify(s, None, ""), Verdict::Refused { .. }),
                "{s}"
            );
        }
    }

    #[test]
    fn retry_after_only_on_429_and_503() {
        let r = classify(429, Some(" 30 "), "slow down");
        assert_eq!(
            r,
            Verdict::Retry {
                reason: "HTTP 429: slow down".into(),
                retry_after_secs: Some(30)
            }
        );
        assert!(matches!(
            classify(500, Some("30"), ""),
            Verdict::Retry {
                retry_after_secs: None,
                ..
            }
        ));
        assert!(matches!(
            classify(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"), ""),
            Verdict::Retry {
                retry_after_secs: None,
                ..
            }
        ));
    }

    #[test]
    fn secret_is_not_debug_printed() {
        let s = WebhookSink::new("w", "http://127.0.0.1:1/", "topsecret");
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
