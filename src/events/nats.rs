//! The NATS JetStream sink: a broker sink for sites that outgrow webhooks
//! (behind the cargo feature `nats`).
//!
//! A shell: it reads the wall clock and does the network I/O; the subject
//! naming ([`subject`], [`token`]), the verdict on a failed publish
//! ([`classify`]) and the connection-state logging ([`Health`]) are pure, and
//! every delivery decision (ordering, backoff, dead letters) is the outbox's.
//!
//! # Subjects
//! Each event is published to
//!
//! ```text
//! <subject_prefix>.<tenant>.<type levels>
//! hotline.events.nanning.call.ended
//! hotline.events.nanning.agent.state
//! ```
//!
//! - `subject_prefix` defaults to `hotline.events` (any valid subject
//!   without wildcards);
//! - `<tenant>` is the event's `tenant` field, one token: ASCII letters,
//!   digits, `-` and `_` are kept, every other character (`.`, `*`, `>`,
//!   spaces, non-ASCII) becomes `_`; a missing or non-string tenant is `_`;
//! - the event `type` keeps its dots as subject levels (`call.ended` is two
//!   tokens `call` `ended`), each level sanitised like the tenant. Every
//!   hotline type has two levels, so subjects have a fixed depth and
//!   consumers filter with wildcards: `hotline.events.*.call.>` (every call
//!   event), `hotline.events.nanning.>` (one tenant),
//!   `hotline.events.*.call.ended` (call records only).
//!
//! The subject routes; the body is authoritative. Tenant ids that differ
//! only in replaced characters share a subject (keep tenant ids ASCII), and
//! the JSON body, published unchanged, always carries the real tenant.
//!
//! # Message
//! The payload is the event's JSON exactly as stored. Headers:
//!
//! | header | value |
//! | --- | --- |
//! | `Nats-Msg-Id` | the event id: JetStream's de-duplication key |
//! | `Hotline-Event-Type` | such as `call.ended` |
//! | `Hotline-Call-Id` | the call id (absent for events without one) |
//! | `Hotline-Attempt` | 1 for the first attempt, 2 for the first retry, … |
//! | `Hotline-Replay` | `1` when an operator replayed a dead letter |
//!
//! # Idempotency
//! An event is acknowledged in the outbox only after JetStream's publish
//! acknowledgement (`PubAck`: the message is stored). A publish whose
//! `PubAck` was lost (timeout, connection drop, hotline crash) is published
//! again with the same `Nats-Msg-Id`, and the stream drops the copy if the
//! first one arrived within its **duplicate window** (the `PubAck` then says
//! `duplicate`, and the sink acknowledges as usual). The stream this sink
//! creates gets [`NatsSink::duplicate_window`] (default 10 min: above the
//! default retry cap of 5 min plus the ack timeout, so a retry of a stored
//! message is always dropped); an existing stream keeps its own window
//! (the server default is 2 min), and the sink warns once when it is
//! shorter. A copy arriving after the window is stored again: consumers
//! that must never process twice still de-duplicate by event id, as
//! webhook receivers do.
//!
//! # Ordering
//! Per call, as the outbox hands events out: only the oldest undelivered
//! event of each call, and the next one only after that one is
//! acknowledged, so the events of one call are published strictly one
//! after the other and first stored in append order (a batch holds at most
//! one event per call; different calls are published concurrently). A
//! duplicate copy is dropped within the window; a replayed dead letter is
//! stored after the events that overtook it. Events of different calls
//! have no order.
//!
//! # When the server is down
//! The client connects in the background (the sink starts even when the
//! server is down) and reconnects for ever, with the client's backoff
//! (doubling from a few milliseconds up to 4 s between attempts). While it
//! is not connected the sink takes nothing from the outbox: events wait
//! there, durable, without using up attempts. A publish that fails while connected (no `PubAck` within
//! [`NatsSink::ack_timeout`], the connection dropping mid-flight, no
//! stream for the subject, a JetStream error) is reported with
//! [`Outbox::fail`]: retried with the sink's backoff, a dead letter after
//! the policy's last attempt. A message larger than the server's
//! `max_payload`, or an event id that cannot be a header, is a dead letter
//! at once. With [`NatsSink::stream`] set, the stream is created (or found)
//! before the first publish, and again when a publish finds no stream; a
//! failure (JetStream disabled, subjects overlapping another stream) is
//! retried with backoff while events wait. Connection, stream and publish
//! trouble is logged once per change of state, not per event.
//!
//! # Connecting
//! `url` is `nats://host:4222`, `tls://host:4222` (TLS with the OS trust
//! store and the process's rustls provider) or several of them separated by
//! commas (a cluster); credentials go in the URL
//! (`nats://user:password@host:4222`) and are never logged: errors and logs
//! show the URL with its credentials replaced by `***`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::header::{HeaderMap, HeaderValue};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::{FailOutcome, RetryPolicy};
use super::outbox::{Outbox, OutboxError, Pending};

/// Default subject prefix.
pub const DEFAULT_PREFIX: &str = "hotline.events";

/// NATS sink errors, naming the sink and the URL, subject or stream.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// `subject_prefix` is not a valid subject (configuration).
    #[error("nats sink {sink}: subject prefix {subject:?}: {reason}")]
    Subject {
        /// Sink name.
        sink: String,
        /// The prefix.
        subject: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `stream` is not a valid stream name (configuration).
    #[error("nats sink {sink}: stream name {stream:?}: {reason}")]
    StreamName {
        /// Sink name.
        sink: String,
        /// The name.
        stream: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `url` names no server (configuration).
    #[error("nats sink {sink}: no server URL in {url:?}")]
    NoServer {
        /// Sink name.
        sink: String,
        /// The URL setting, credentials redacted.
        url: String,
    },
    /// The client cannot start: the URL does not parse (configuration).
    #[error("nats sink {sink}: {url}: {source}")]
    Connect {
        /// Sink name.
        sink: String,
        /// The URL, credentials redacted.
        url: String,
        /// The client's error.
        source: Box<async_nats::ConnectError>,
    },
    /// The stream cannot be created or looked up (retried).
    #[error("nats sink {sink}: {url}: stream {stream}: {source}")]
    Stream {
        /// Sink name.
        sink: String,
        /// The URL, credentials redacted.
        url: String,
        /// Stream name.
        stream: String,
        /// The client's error.
        source: Box<jetstream::context::CreateStreamError>,
    },
    /// One publish failed (the event is retried or dead-lettered).
    #[error("nats sink {sink}: {url}: publish to {subject}: {reason}")]
    Publish {
        /// Sink name.
        sink: String,
        /// The URL, credentials redacted.
        url: String,
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The outbox failed (retried).
    #[error("nats sink {sink}: {source}")]
    Outbox {
        /// Sink name.
        sink: String,
        /// The outbox's error.
        source: Box<OutboxError>,
    },
    /// An outbox call on the blocking pool panicked or was cancelled
    /// (retried).
    #[error("nats sink {sink}: outbox task failed: {source}")]
    OutboxTask {
        /// Sink name.
        sink: String,
        /// Tokio's error.
        source: tokio::task::JoinError,
    },
}

/// A NATS JetStream destination and how to deliver to it.
#[derive(Clone)]
pub struct NatsSink {
    /// The sink's name in the outbox (register it with
    /// [`Outbox::register_sink`] before the first append).
    pub name: String,
    /// Server URL(s), comma-separated; may carry credentials (see the
    /// module docs).
    pub url: String,
    /// Subjects are `<subject_prefix>.<tenant>.<type>` (default
    /// [`DEFAULT_PREFIX`]).
    pub subject_prefix: String,
    /// When set, a stream of this name capturing `<subject_prefix>.>` is
    /// created (file storage, [`NatsSink::duplicate_window`]) unless it
    /// exists; an existing stream is used as it is. When `None`, a stream
    /// capturing the subjects must exist (operators create it with their
    /// own limits): until it does, publishes fail and back off.
    pub stream: Option<String>,
    /// Duplicate window of the stream this sink creates (default 10 min).
    pub duplicate_window: Duration,
    /// Most events published per round (one per call; published
    /// concurrently, their acknowledgements awaited together).
    pub batch: usize,
    /// Longest sleep when there is nothing to deliver (appends and
    /// reconnections wake the sink at once).
    pub idle_poll: Duration,
    /// Longest wait for a publish's `PubAck`; keep it below the outbox's
    /// lease (`OutboxConfig::lease_ms`). Shutdown waits at most this long
    /// for the publishes in flight.
    pub ack_timeout: Duration,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .field("stream", &self.stream)
            .field("duplicate_window", &self.duplicate_window)
            .field("batch", &self.batch)
            .field("idle_poll", &self.idle_poll)
            .field("ack_timeout", &self.ack_timeout)
            .finish()
    }
}

/// What to do with an event after one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored (`duplicate`: the stream already had it): acknowledge.
    Delivered {
        /// The stream dropped this copy as a duplicate.
        duplicate: bool,
    },
    /// Try again later.
    Retry {
        /// Why, for the logs and the dead-letter list.
        reason: String,
    },
    /// It can never be published: dead-letter now.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The verdict for a failed publish (pure): a message over the server's
/// `max_payload` never fits, anything else may pass later.
pub fn classify(kind: PublishErrorKind, reason: String) -> Verdict {
    match kind {
        PublishErrorKind::MaxPayloadExceeded => Verdict::Refused { reason },
        _ => Verdict::Retry { reason },
    }
}

/// One subject token (pure): ASCII letters, digits, `-` and `_` kept,
/// anything else `_`; empty becomes `_`.
pub fn token(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The subject of an event (pure): `<prefix>.<tenant>.<type levels>`, the
/// tenant one token, the type's dots kept as levels (see the module docs).
pub fn subject(prefix: &str, tenant: Option<&str>, kind: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + kind.len() + 16);
    s.push_str(prefix);
    s.push('.');
    s.push_str(&token(tenant.unwrap_or("")));
    for level in kind.split('.') {
        s.push('.');
        s.push_str(&token(level));
    }
    s
}

/// The `tenant` field of an event body, if it is a string (pure). `Err`
/// when the body is not JSON.
pub fn tenant_of(body_json: &str) -> Result<Option<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        tenant: Option<serde_json::Value>,
    }
    let e: Envelope = serde_json::from_str(body_json)?;
    Ok(match e.tenant {
        Some(serde_json::Value::String(t)) => Some(t),
        _ => None,
    })
}

/// Check a subject prefix (pure): non-empty tokens, no wildcards, no
/// whitespace or control characters.
pub fn check_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("empty");
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    if prefix.split('.').any(str::is_empty) {
        return Err("has an empty token (leading, trailing or double '.')");
    }
    if prefix.contains(['*', '>']) {
        return Err("contains a wildcard ('*' or '>')");
    }
    Ok(())
}

/// Check a stream name (pure): non-empty, printable, none of
/// `. * > / \` or whitespace.
pub fn check_stream_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err("contains whitespace, a control character or one of . * > / \\");
    }
    Ok(())
}

/// A URL (or comma-separated URLs) with any `user:password@` replaced by
/// `***@` (pure), for logs and errors.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|part| {
            let start = part.find("://").map_or(0, |i| i + 3);
            let rest = &part[start..];
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{}***{}", &part[..start], &rest[at..]),
                None => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The sink's view of the broker, logged once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not connected yet since start.
    Starting,
    /// Connected, publishes pass.
    Up,
    /// Not connected: events wait in the outbox.
    Down,
    /// The stream cannot be created or found (the error).
    NoStream(String),
    /// Connected, but every publish of the last round failed (the kind of
    /// failure, without event ids, so it changes rarely).
    Failing(String),
}

/// Remembers the last [`Status`] so each change is logged once (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    status: Status,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            status: Status::Starting,
        }
    }
}

impl Health {
    /// The current status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Move to `next`; returns the previous status when it changed (log
    /// then), `None` when it is the same (stay quiet).
    pub fn set(&mut self, next: Status) -> Option<Status> {
        if self.status == next {
            None
        } else {
            Some(std::mem::replace(&mut self.status, next))
        }
    }
}

/// Stream re-creation backoff: 250 ms doubling up to 30 s.
const STREAM_RETRY: RetryPolicy = RetryPolicy {
    base_ms: 250,
    cap_ms: 30_000,
    max_attempts: u32::MAX,
};

impl NatsSink {
    /// A sink with defaults: prefix `hotline.events`, no stream management,
    /// 10 min duplicate window, 256 events per round, 1 s idle poll, 5 s ack
    /// timeout.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            subject_prefix: DEFAULT_PREFIX.to_string(),
            stream: None,
            duplicate_window: Duration::from_secs(600),
            batch: 256,
            idle_poll: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(5),
        }
    }

    /// The server URLs of [`NatsSink::url`] (pure): comma-separated,
    /// trimmed, empty ones dropped.
    pub fn servers(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Check the configuration (pure): a server URL, the prefix and the
    /// stream name. (The URLs themselves are parsed when the client starts.)
    pub fn check(&self) -> Result<(), NatsError> {
        if self.servers().is_empty() {
            return Err(NatsError::NoServer {
                sink: self.name.clone(),
                url: redact_url(&self.url),
            });
        }
        check_prefix(&self.subject_prefix).map_err(|reason| NatsError::Subject {
            sink: self.name.clone(),
            subject: self.subject_prefix.clone(),
            reason,
        })?;
        if let Some(s) = &self.stream {
            check_stream_name(s).map_err(|reason| NatsError::StreamName {
                sink: self.name.clone(),
                stream: s.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Deliver until `shutdown` is cancelled. Returns `Err` only for a bad
    /// configuration (prefix, stream name, unparsable URL), at once; the
    /// server being down, publish failures and outbox errors are logged and
    /// retried: the loop ends on shutdown, after the publishes in flight (at
    /// most [`NatsSink::ack_timeout`]).
    pub async fn run(
        self,
        outbox: Arc<Outbox>,
        shutdown: CancellationToken,
    ) -> Result<(), NatsError> {
        self.check()?;
        let url = redact_url(&self.url);
        let (wake_tx, mut wake) = tokio::sync::watch::channel(0_u64);
        let servers = self.servers();
        let connect_timeout = self
            .ack_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        // A first connection within this is not worth a warning.
        let grace_until = tokio::time::Instant::now() + connect_timeout;
        let client = async_nats::ConnectOptions::new()
            .name(format!("hotline {}", self.name))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(connect_timeout)
            .event_callback(move |event| {
                // Connection changes wake the loop; the loop logs them.
                if matches!(
                    event,
                    async_nats::Event::Connected | async_nats::Event::Disconnected
                ) {
                    wake_tx.send_modify(|g| *g = g.wrapping_add(1));
                }
                async {}
            })
            .connect(servers.as_slice())
            .await
            .map_err(|source| NatsError::Connect {
                sink: self.name.clone(),
                url: url.clone(),
                source: Box::new(source),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(self.ack_timeout);

        let sink = Arc::new(self);
        let mut appended = outbox.subscribe();
        let mut health = Health::default();
        let mut stream_ready = sink.stream.is_none();
        let mut stream_failures: u32 = 0;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let mut wait = sink.idle_poll;
            if client.connection_state() != State::Connected {
                let now = tokio::time::Instant::now();
                if *health.status() == Status::Starting && now < grace_until {
                    wait = wait.min(grace_until - now);
                } else {
                    sink.log(&url, &mut health, Status::Down);
                }
            } else if matches!(health.status(), Status::Starting | Status::Down) {
                sink.log(&url, &mut health, Status::Up);
                continue;
            } else if !stream_ready {
                match sink.ensure_stream(&js, &url).await {
                    Ok(()) => {
                        stream_ready = true;
                        stream_failures = 0;
                        continue;
                    }
                    Err(e) => {
                        stream_failures = stream_failures.saturating_add(1);
                        let ms = STREAM_RETRY.ceiling_ms(stream_failures);
                        wait = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                        sink.log(&url, &mut health, Status::NoStream(e.to_string()));
                    }
                }
            } else {
                match sink.round(&outbox, &js, &url, &mut health).await {
                    Ok(Round::Published { no_stream }) => {
                        if no_stream && sink.stream.is_some() {
                            stream_ready = false;
                        }
                        continue;
                    }
                    Ok(Round::Idle { retry_in }) => {
                        if let Some(d) = retry_in {
                            wait = wait.min(d);
                        }
                    }
                    Err(e) => warn!(sink = %sink.name, error = %e, "nats sink: outbox failed"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Ok(()) = appended.changed() => {}
                Ok(()) = wake.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Queued PubAck-less publishes are harmless: they were not
        // acknowledged in the outbox and go again at the next start.
        drop(js);
        drop(client);
        Ok(())
    }

    fn log(&self, url: &str, health: &mut Health, next: Status) {
        let Some(prev) = health.set(next) else {
            return;
        };
        match health.status() {
            Status::Up if prev == Status::Starting || prev == Status::Down => {
                info!(sink = %self.name, %url, "nats sink: connected");
            }
            Status::Up => info!(sink = %self.name, %url, "nats sink: publishing again"),
            Status::Down => warn!(
                sink = %self.name, %url,
                "nats sink: not connected; events wait in the outbox while the client reconnects"
            ),
            Status::NoStream(e) => warn!(
                sink = %self.name, %url, error = %e,
                "nats sink: no stream; retrying with backoff while events wait"
            ),
            Status::Failing(e) => warn!(
                sink = %self.name, %url, error = %e,
                "nats sink: publishes failing; retrying with backoff"
            ),
            Status::Starting => {}
        }
    }

    async fn ensure_stream(&self, js: &jetstream::Context, url: &str) -> Result<(), NatsError> {
        let Some(name) = &self.stream else {
            return Ok(());
        };
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            storage: stream::StorageType::File,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        };
        let s = js
            .get_or_create_stream(config)
            .await
            .map_err(|source| NatsError::Stream {
                sink: self.name.clone(),
                url: url.to_string(),
                stream: name.clone(),
                source: Box::new(source),
            })?;
        let window = s.cached_info().config.duplicate_window;
        if window < self.duplicate_window {
            warn!(
                sink = %self.name, stream = %name, ?window, wanted = ?self.duplicate_window,
                "nats sink: the existing stream's duplicate window is shorter than wanted: \
                 late retries may be stored twice"
            );
        }
        info!(sink = %self.name, stream = %name, subjects = ?s.cached_info().config.subjects,
              "nats sink: stream ready");
        Ok(())
    }

    /// One round: take a batch, publish it, report the outcomes.
    async fn round(
        &self,
        outbox: &Arc<Outbox>,
        js: &jetstream::Context,
        url: &str,
        health: &mut Health,
    ) -> Result<Round, NatsError> {
        let now = now_ms();
        let (name, ob, max) = (self.name.clone(), Arc::clone(outbox), self.batch.max(1));
        let (batch, retry_at) = self
            .blocking(move || {
                let batch = ob.next_batch(&name, max, now)?;
                let retry = if batch.is_empty() {
                    ob.next_retry_at(&name, now)?
                } else {
                    None
                };
                Ok((batch, retry))
            })
            .await?;
        if batch.is_empty() {
            let retry_in = retry_at.map(|at| {
                Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
            });
            return Ok(Round::Idle { retry_in });
        }
        let verdicts =
            futures::future::join_all(batch.iter().map(|p| self.publish(js, url, p))).await;
        let mut delivered = 0_usize;
        let mut duplicates = 0_usize;
        let mut first_failure = None;
        let mut no_stream = false;
        for (v, kind) in &verdicts {
            match (v, kind) {
                (Verdict::Delivered { duplicate }, _) => {
                    delivered += 1;
                    duplicates += usize::from(*duplicate);
                }
                (Verdict::Retry { .. }, Some(k)) => {
                    no_stream |= *k == PublishErrorKind::StreamNotFound;
                    first_failure.get_or_insert(*k);
                }
                // Refused events are each logged as dead letters.
                _ => {}
            }
        }
        if duplicates > 0 {
            debug!(sink = %self.name, duplicates, "nats sink: copies dropped by the stream");
        }
        if delivered > 0 {
            self.log(url, health, Status::Up);
        } else if let Some(k) = first_failure {
            self.log(url, health, Status::Failing(k.to_string()));
        }
        self.report(
            outbox,
            batch,
            verdicts.into_iter().map(|(v, _)| v).collect(),
        )
        .await;
        Ok(Round::Published { no_stream })
    }

    /// Publish one event and await its `PubAck` (at most `ack_timeout`).
    async fn publish(
        &self,
        js: &jetstream::Context,
        url: &str,
        p: &Pending,
    ) -> (Verdict, Option<PublishErrorKind>) {
        let tenant = match tenant_of(&p.body_json) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("body is not JSON: {e}");
                return (Verdict::Refused { reason }, None);
            }
        };
        let subject = subject(&self.subject_prefix, tenant.as_deref(), &p.kind);
        let failure = |reason: String| {
            NatsError::Publish {
                sink: self.name.clone(),
                url: url.to_string(),
                subject: subject.clone(),
                reason,
            }
            .to_string()
        };
        let headers = match headers(p) {
            Ok(h) => h,
            Err(what) => {
                let reason = failure(format!("{what} is not a valid header value"));
                return (Verdict::Refused { reason }, None);
            }
        };
        let msg = PublishMessage::build()
            .payload(bytes::Bytes::from(p.body_json.clone()))
            .headers(headers);
        let attempt = async {
            let ack = js.send_publish(subject.clone(), msg).await?;
            ack.await
        };
        match tokio::time::timeout(self.ack_timeout, attempt).await {
            Ok(Ok(ack)) => (
                Verdict::Delivered {
                    duplicate: ack.duplicate,
                },
                None,
            ),
            Ok(Err(e)) => {
                let kind = e.kind();
                let reason = failure(e.to_string());
                (classify(kind, reason), Some(kind))
            }
            Err(_) => {
                let reason = failure(format!("no PubAck within {:?}", self.ack_timeout));
                (Verdict::Retry { reason }, Some(PublishErrorKind::TimedOut))
            }
        }
    }

    /// Report a round's outcomes to the outbox: delivered ones in one
    /// transaction, then each failure. An outcome that cannot be recorded
    /// releases its lease (published again: at-least-once).
    async fn report(&self, outbox: &Arc<Outbox>, batch: Vec<Pending>, verdicts: Vec<Verdict>) {
        let now = now_ms();
        let (name, ob) = (self.name.clone(), Arc::clone(outbox));
        let pairs: Vec<(Pending, Verdict)> = batch.into_iter().zip(verdicts).collect();
        let seqs: Vec<i64> = pairs.iter().map(|(p, _)| p.seq).collect();
        let reported = self
            .blocking(move || {
                let ok: Vec<&str> = pairs
                    .iter()
                    .filter(|(_, v)| matches!(v, Verdict::Delivered { .. }))
                    .map(|(p, _)| p.id.as_str())
                    .collect();
                if !ok.is_empty() {
                    ob.ack_many(&name, &ok)?;
                }
                for (p, v) in &pairs {
                    match v {
                        Verdict::Delivered { .. } => {}
                        Verdict::Retry { reason } => {
                            debug!(sink = %name, event = %p.id, attempt = p.attempt, %reason,
                                   "nats sink: publish failed");
                            if let Some(FailOutcome::DeadLetter) =
                                ob.fail(&name, &p.id, now, reason)?
                            {
                                warn!(sink = %name, event = %p.id, %reason,
                                      "nats sink: dead letter after last attempt");
                            }
                        }
                        Verdict::Refused { reason } => {
                            warn!(sink = %name, event = %p.id, %reason,
                                  "nats sink: cannot be published: dead letter");
                            ob.dead_letter(&name, &p.id, now, reason)?;
                        }
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = reported {
            for seq in seqs {
                outbox.release(&self.name, seq);
            }
            warn!(sink = %self.name, error = %e, "nats sink: cannot record the outcomes");
        }
    }

    /// Run an outbox call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, NatsError> {
        let sink = self.name.clone();
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.map_err(|e| NatsError::Outbox {
                sink,
                source: Box::new(e),
            }),
            Err(source) => Err(NatsError::OutboxTask { sink, source }),
        }
    }
}

/// What one round did.
enum Round {
    /// Published a batch (some may have failed): poll again at once.
    Published {
        /// A publish found no stream for its subject.
        no_stream: bool,
    },
    /// Nothing due; the earliest retry is in `retry_in`.
    Idle {
        /// Time to the earliest retry, if any is waiting.
        retry_in: Option<Duration>,
    },
}

/// The headers of an event's message; `Err` names the field that cannot
/// be a header value.
fn headers(p: &Pending) -> Result<HeaderMap, &'static str> {
    let value = |s: &str, what| s.parse::<HeaderValue>().map_err(|_| what);
    let mut h = HeaderMap::new();
    h.insert(
        async_nats::header::NATS_MESSAGE_ID,
        value(&p.id, "the event id")?,
    );
    h.insert("Hotline-Event-Type", value(&p.kind, "the event type")?);
    if let Some(call) = &p.call_id {
        h.insert("Hotline-Call-Id", value(call, "the call id")?);
    }
    h.insert("Hotline-Attempt", p.attempt.to_string().as_str());
    if p.replayed {
        h.insert("Hotline-Replay", "1");
    }
    Ok(h)
}

/// Wall clock, unix milliseconds (the shells' clock, `util`).
fn now_ms() -> i64 {
    crate::util::unix_now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_type_levels() {
        assert_eq!(
            subject(DEFAULT_PREFIX, Some("nanning"), "call.ended"),
            "hotline.events.nanning.call.ended"
        );
        assert_eq!(
            subject("site.a", Some("t-1_x"), "agent.state"),
            "site.a.t-1_x.agent.state"
        );
        assert_eq!(subject("p", Some("t"), "ping"), "p.t.ping");
    }

    #[test]
    fn tenants_are_one_safe_token() {
        assert_eq!(subject("p", Some("a.b"), "call.ended"), "p.a_b.call.ended");
        assert_eq!(subject("p", Some("*"), "x.y"), "p._.x.y");
        assert_eq!(subject("p", Some(">"), "x.y"), "p._.x.y");
        assert_eq!(subject("p", Some("a b\tc"), "x.y"), "p.a_b_c.x.y");
        assert_eq!(subject("p", Some("南宁"), "x.y"), "p.__.x.y");
        assert_eq!(subject("p", Some(""), "x.y"), "p._.x.y");
        assert_eq!(subject("p", None, "x.y"), "p._.x.y");
        assert_eq!(subject("p", Some("$SYS"), "x.y"), "p._SYS.x.y");
    }

    #[test]
    fn type_levels_are_sanitised() {
        assert_eq!(subject("p", Some("t"), "call..ended"), "p.t.call._.ended");
        assert_eq!(subject("p", Some("t"), ".x."), "p.t._.x._");
        assert_eq!(subject("p", Some("t"), ""), "p.t._");
        assert_eq!(subject("p", Some("t"), "a*.>b"), "p.t.a_._b");
    }

    #[test]
    fn every_subject_is_valid() {
        let weird = [
            "", ".", "..", "*", ">", " ", "a.b.c", "é", "\r\n", "x>y", "\u{0}",
        ];
        for t in weird {
            for k in weird {
                let s = subject(DEFAULT_PREFIX, Some(t), k);
                assert!(check_prefix(&s).is_ok(), "{t:?} {k:?} → {s:?}");
                assert!(s.is_ascii(), "{s:?}");
            }
        }
    }

    #[test]
    fn tenant_from_the_body() {
        assert_eq!(
            tenant_of(r#"{"id":"e","tenant":"nanning","data":{"tenant":"x"}}"#).ok(),
            Some(Some("nanning".into()))
        );
        assert_eq!(tenant_of(r#"{"tenant":null}"#).ok(), Some(None));
        assert_eq!(tenant_of(r#"{"tenant":7}"#).ok(), Some(None));
        assert_eq!(tenant_of(r#"{"id":"e"}"#).ok(), Some(None));
        assert!(tenant_of("not json").is_err());
    }

    #[test]
    fn prefixes_and_stream_names() {
        assert!(check_prefix("hotline.events").is_ok());
        assert!(check_prefix("a").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b", "a\tb", "a*b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_stream_name("HOTLINE_EVENTS").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", "a\\b"] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NatsSink::new("n", " nats://a:1, tls://b:2 ,").servers(),
            vec!["nats://a:1".to_string(), "tls://b:2".to_string()]
        );
        let e = NatsSink::new("n", " , ").check().expect_err("no server");
        assert!(e.to_string().contains("no server URL"), "{e}");
        let mut s = NatsSink::new("n", "nats://127.0.0.1:4222");
        s.subject_prefix = "a.>".into();
        let e = s.check().expect_err("bad prefix");
        assert!(
            e.to_string()
                .contains("nats sink n: subject prefix \"a.>\""),
            "{e}"
        );
        s.subject_prefix = DEFAULT_PREFIX.into();
        s.stream = Some("a.b".into());
        let e = s.check().expect_err("bad stream");
        assert!(e.to_string().contains("stream name \"a.b\""), "{e}");
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redact_url("nats://user:pa@ss@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(redact_url("tok@host:4222"), "***@host:4222");
        assert_eq!(
            redact_url("tls://u:p@a:4222,nats://b:4222"),
            "tls://***@a:4222,nats://b:4222"
        );
        assert_eq!(redact_url("nats://host/p@th"), "nats://host/p@th");
        let s = NatsSink::new("n", "nats://hotline:topsecret@broker:4222");
        let debug = format!("{s:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(debug.contains("nats://***@broker:4222"), "{debug}");
    }

    #[test]
    fn only_oversized_messages_are_refused() {
        assert!(matches!(
            classify(PublishErrorKind::MaxPayloadExceeded, "big".into()),
            Verdict::Refused { .. }
        ));
        for k in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::StreamNotFound,
            PublishErrorKind::Other,
        ] {
            assert!(
                matches!(classify(k, "x".into()), Verdict::Retry { .. }),
                "{k:?}"
            );
        }
    }

    #[test]
    fn health_logs_each_change_once() {
        let mut h = Health::default();
        assert_eq!(h.set(Status::Down), Some(Status::Starting));
        assert_eq!(h.set(Status::Down), None);
        assert_eq!(h.set(Status::Up), Some(Status::Down));
        assert_eq!(h.set(Status::Up), None);
        assert_eq!(h.set(Status::Failing("timed out".into())), Some(Status::Up));
        assert_eq!(h.set(Status::Failing("timed out".into())), None);
        assert!(h.set(Status::Failing("broken pipe".into())).is_some());
    }

    #[test]
    fn headers_carry_the_idempotency_key() {
        let p = Pending {
            seq: 1,
            id: "ev-1".into(),
            call_id: Some("c-1".into()),
            kind: "call.ended".into(),
            body_json: "{}".into(),
            attempt: 3,
            replayed: true,
        };
        let h = headers(&p).expect("headers");
        let get = |n: &str| h.get(n).map(|v| v.as_str().to_string());
        assert_eq!(get("Nats-Msg-Id").as_deref(), Some("ev-1"));
        assert_eq!(get("Hotline-Event-Type").as_deref(), Some("call.ended"));
        assert_eq!(get("Hotline-Call-Id").as_deref(), Some("c-1"));
        assert_eq!(get("Hotline-Attempt").as_deref(), Some("3"));
        assert_eq!(get("Hotline-Replay").as_deref(), Some("1"));
        let bad = Pending {
            id: "ev\r\n-1".into(),
            ..p
        };
        assert_eq!(headers(&bad).err(), Some("the event id"));
    }
}
