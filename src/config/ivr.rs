//! `[ivr]` and `[[blacklist]]` in `hotline.toml` (IVR issue §1, §2, §5):
//! where the flow files, the calendars and the caller-area table live, how
//! often they are checked for edits, and the block list the config seeds.

use std::path::PathBuf;

use serde::Deserialize;

/// `[ivr]`: where the IVR's files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrSettings {
    /// Directory of flow files (`*.toml`, one flow each).
    #[serde(default = "default_flows_dir")]
    pub flows_dir: PathBuf,
    /// Directory holding `schedules/` and `holidays/`.
    #[serde(default = "default_calendars_dir")]
    pub calendars_dir: PathBuf,
    /// Caller-area prefix table (CSV: `prefix,area_code,region`).
    #[serde(default = "default_areas")]
    pub areas: PathBuf,
    /// How often the files are checked for edits (seconds; 0: never).
    #[serde(default = "default_reload_secs")]
    pub reload_check_secs: u64,
    /// Where voicemails are stored (default `<data.dir>/voicemail`).
    #[serde(default)]
    pub voicemail_dir: Option<PathBuf>,
}

fn default_flows_dir() -> PathBuf {
    PathBuf::from("./ivr-flows")
}

fn default_calendars_dir() -> PathBuf {
    PathBuf::from("./config")
}

fn default_areas() -> PathBuf {
    PathBuf::from("./config/areas.csv")
}

fn default_reload_secs() -> u64 {
    2
}

impl IvrSettings {
    /// Where voicemails go: `voicemail_dir`, else `<data_dir>/voicemail`.
    pub fn voicemail_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.voicemail_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("voicemail"))
    }
}

impl Default for IvrSettings {
    fn default() -> Self {
        Self {
            flows_dir: default_flows_dir(),
            calendars_dir: default_calendars_dir(),
            areas: default_areas(),
            reload_check_secs: default_reload_secs(),
            voicemail_dir: None,
        }
    }
}

/// `[[blacklist]]`: a number (or `prefix*`) a tenant refuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistSeed {
    /// Tenant the entry belongs to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// The number, or a prefix ending in `*`.
    pub number: String,
    /// Why (shown to supervisors, logged on a blocked call).
    #[serde(default)]
    pub reason: String,
}

fn default_tenant() -> String {
    "default".into()
}
