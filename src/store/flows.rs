//! Flow history (issue 18 §4 "Flow changes you can review"): every IVR
//! flow version the live IVR accepted, kept with its content, hash and who
//! and when, so an edit can be reviewed (`hotline flow diff`), rolled back
//! (`hotline flow rollback`) and replayed against recent calls.
//!
//! One row per (flow name, version hash): the content and when and by whom
//! it was first accepted (`saved_*`), and when and by whom it last went
//! live (`live_*`: a rollback to an older version moves it, so the live
//! version is the one with the highest `live_seq`). A version accepted
//! again while already the live one (a restart, a touched file) changes
//! nothing.

/// Who accepted a version that came from a file edit (at start or reload).
pub const BY_FILE: &str = "file";

/// One stored version of one flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlowVersion {
    /// Flow name.
    pub name: String,
    /// Its version: the content hash the IVR names it by.
    pub version: String,
    /// The owning tenant (`default` when the flow names none).
    pub tenant: String,
    /// The flow file's text.
    #[serde(skip)]
    pub content: String,
    /// First accepted at (Unix ms).
    pub saved_at: i64,
    /// First accepted by: [`BY_FILE`] or the admin who rolled back.
    pub saved_by: String,
    /// Last went live at (Unix ms).
    pub live_at: i64,
    /// Last went live by.
    pub live_by: String,
    /// Order of going live within the flow (the highest is live now).
    pub live_seq: i64,
}

impl FlowVersion {
    /// A version accepted now (`at`) by `by`, before the store numbers it.
    pub fn accepted(
        name: &str,
        version: &str,
        tenant: &str,
        content: &str,
        at: i64,
        by: &str,
    ) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            tenant: tenant.to_string(),
            content: content.to_string(),
            saved_at: at,
            saved_by: by.to_string(),
            live_at: at,
            live_by: by.to_string(),
            live_seq: 0,
        }
    }
}

/// What recording a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A version not seen before, now live.
    New,
    /// A stored version went live again (a rollback, or an edit undone).
    Relive,
    /// Already the live version: nothing changed.
    Unchanged,
}

impl super::Store {
    /// Record that `v` went live (at `v.live_at`, by `v.live_by`).
    pub fn flow_went_live(&self, v: &FlowVersion) -> Result<Recorded, super::StoreError> {
        super::latency::timed(|| self.backend.flow_went_live(v))
    }

    /// Every stored version of the flow `name`, first accepted first (with
    /// their content).
    pub fn flow_versions(&self, name: &str) -> Result<Vec<FlowVersion>, super::StoreError> {
        super::latency::timed(|| self.backend.flow_versions(name))
    }

    /// The names of every flow with stored versions, sorted.
    pub fn flow_names(&self) -> Result<Vec<String>, super::StoreError> {
        super::latency::timed(|| self.backend.flow_names())
    }
}
