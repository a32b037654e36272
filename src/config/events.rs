//! `[events]` and `[[webhook]]` in `hotline.toml` (events issue §2, §3):
//! where the durable outbox lives and where events are delivered.

use std::path::PathBuf;

use serde::Deserialize;

/// `[events]`: the outbox and the file sink.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// The outbox database (default `<data.dir>/events.db`).
    #[serde(default)]
    pub db: Option<PathBuf>,
    /// Also write every event to `events-YYYY-MM-DD.jsonl` files here.
    #[serde(default)]
    pub jsonl_dir: Option<PathBuf>,
}

/// `[[webhook]]`: an HTTP endpoint of the ticket platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The sink's name (its delivery state in the outbox is kept by name).
    pub name: String,
    /// `http://` or `https://` URL events are POSTed to.
    pub url: String,
    /// Shared secret for the `X-Hotline-Signature` HMAC-SHA256.
    pub secret: String,
    /// Whole-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// First retry delay after a failure (ms); doubles per attempt, with
    /// full jitter.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest retry delay (seconds).
    #[serde(default = "default_retry_cap_secs")]
    pub retry_cap_secs: u64,
    /// Attempts before an event becomes a dead letter (listed and
    /// replayable by an admin; it does not block its call).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_retry_base_ms() -> u64 {
    1_000
}

fn default_retry_cap_secs() -> u64 {
    300
}

fn default_max_attempts() -> u32 {
    12
}

fn default_timeout() -> u64 {
    5
}

/// `[[nats]]`: a NATS JetStream server events are published to (needs a
/// hotline built with `--features nats`). Subjects are
/// `<subject_prefix>.<tenant>.<type>`, e.g. `hotline.events.default.call.ended`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The sink's name (its delivery state in the outbox is kept by name).
    pub name: String,
    /// Server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Subject prefix.
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
    /// Create this stream (capturing `<subject_prefix>.>`) if missing.
    pub stream: Option<String>,
    /// First retry delay after a failure (ms).
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest retry delay (seconds).
    #[serde(default = "default_retry_cap_secs")]
    pub retry_cap_secs: u64,
    /// Attempts before an event becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_subject_prefix() -> String {
    "hotline.events".into()
}
