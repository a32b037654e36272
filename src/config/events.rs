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
}

fn default_timeout() -> u64 {
    5
}
