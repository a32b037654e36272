//! `[[tenant]] audio_fork` (issue 18 §1 "Live audio fork"): stream every
//! answered call of the tenant to a WebSocket receiver, and how patiently.

use serde::{Deserialize, Serialize};

/// `audio_fork = { url = "ws://…" }` of a `[[tenant]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AudioForkConfig {
    /// The receiver: `ws://host:port/path` (TLS through a local proxy).
    pub url: String,
    /// Audio the fork's queue holds while the receiver is slow or away,
    /// in milliseconds (20 ms a frame); beyond it frames are dropped and
    /// counted. Default 1000.
    #[serde(default = "default_queue_ms")]
    pub queue_ms: u32,
    /// Failed connection attempts in a row (exponential backoff, 200 ms
    /// doubling to 5 s) before the call's fork gives up. Default 5.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Every answered call streams from its first conversation (`true`,
    /// the default), or only once an agent or supervisor starts it
    /// (`POST /api/v1/agent/call/fork/start`).
    #[serde(default = "default_auto")]
    pub auto: bool,
}

fn default_auto() -> bool {
    true
}

fn default_queue_ms() -> u32 {
    1000
}

fn default_max_attempts() -> u32 {
    5
}

impl AudioForkConfig {
    /// Frames the queue holds.
    pub fn queue_frames(&self) -> usize {
        (self.queue_ms / crate::media::fork::protocol::FRAME_MS).max(1) as usize
    }

    /// What is wrong, as (field below the tenant, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let host = self.url.strip_prefix("ws://").unwrap_or("");
        let host = host.split('/').next().unwrap_or("");
        if host.is_empty() {
            out.push((
                "url",
                format!(
                    "{:?} is not a WebSocket URL; write ws://host:port/path (for wss, a local TLS proxy)",
                    self.url
                ),
            ));
        }
        if !(100..=10_000).contains(&self.queue_ms) {
            out.push((
                "queue_ms",
                format!("{} is outside 100..=10000 ms", self.queue_ms),
            ));
        }
        if self.max_attempts > 100 {
            out.push(("max_attempts", format!("{} is over 100", self.max_attempts)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> AudioForkConfig {
        toml::from_str(text).expect("config")
    }

    #[test]
    fn defaults_and_checks() {
        let c = read("url = \"ws://127.0.0.1:9000/fork\"");
        assert_eq!(
            (c.queue_ms, c.max_attempts, c.queue_frames()),
            (1000, 5, 50)
        );
        assert!(c.problems().is_empty());
        let bad = read("url = \"http://x/\"\nqueue_ms = 5\nmax_attempts = 1000");
        let fields: Vec<&str> = bad.problems().iter().map(|p| p.0).collect();
        assert_eq!(fields, vec!["url", "queue_ms", "max_attempts"]);
        assert!(!read("url = \"ws:///x\"").problems().is_empty());
    }
}
