//! `[api]`, `[retention]` and `[[user]]`: the HTTP API's sessions, how long
//! records are kept, and the API's users (CTI issue §2; events issue §5).
//!
//! Users from the file are *seeds*: they are written to the users database
//! (`<data.dir>/auth.db`, or the shared PostgreSQL database when
//! `[store] url` is set) at start, passwords hashed with argon2id; give
//! `password_hash` (an argon2id PHC string) instead of `password` in
//! production so no plain password sits in the file.

use serde::Deserialize;

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Lifetime of a login token, in hours.
    #[serde(default = "default_token_hours")]
    pub token_hours: u64,
    /// Logins verified at once (each argon2 verification takes ~19 MiB).
    #[serde(default = "default_login_slots")]
    pub login_concurrency: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            token_hours: default_token_hours(),
            login_concurrency: default_login_slots(),
        }
    }
}

fn default_token_hours() -> u64 {
    12
}

fn default_login_slots() -> usize {
    4
}

/// `[retention]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days records, recordings and voicemails are kept (default three
    /// years, REQUIREMENTS §4); `[[tenant]] retention_days` overrides it.
    #[serde(default = "default_retention_days")]
    pub days: u32,
    /// Hours between purge runs (the first runs a minute after start).
    #[serde(default = "default_purge_hours")]
    pub purge_every_hours: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            days: default_retention_days(),
            purge_every_hours: default_purge_hours(),
        }
    }
}

fn default_retention_days() -> u32 {
    1095
}

fn default_purge_hours() -> u64 {
    24
}

/// `[[user]]`: a user of the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// Login name.
    pub username: String,
    /// Shown on wall-boards.
    #[serde(default)]
    pub display_name: String,
    /// `agent`, `supervisor` or `admin`.
    pub role: String,
    /// Tenant (operations centre); `*` for an admin of every tenant.
    #[serde(default = "super::default_tenant")]
    pub tenant: String,
    /// The ACD agent (job number) this user is; required for agents.
    pub agent_id: Option<String>,
    /// Plain password (demo only).
    pub password: Option<String>,
    /// argon2id PHC string (production).
    pub password_hash: Option<String>,
    /// Allow a short password (demo users).
    #[serde(default)]
    pub allow_weak: bool,
    /// Cannot log in.
    #[serde(default)]
    pub disabled: bool,
}

/// `[[quick_transfer]]`: a one-click transfer target of the phone bar
/// (110, 12328, 12315, 12366 …), dialled through the tenant's trunk.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuickTransfer {
    /// Button label, e.g. `110 公安`.
    pub label: String,
    /// Number dialled.
    pub number: String,
    /// Only for this tenant (default: every tenant).
    pub tenant: Option<String>,
    /// Trunk to dial through (default: the tenant's outbound trunk).
    pub trunk: Option<String>,
}
