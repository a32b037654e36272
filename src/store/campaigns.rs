//! Follow-up campaigns (issue 18 §3 "回访"): each campaign as one row
//! (tenant, when made, whether it still dials, and the campaign with its
//! items' states and attempts as a JSON document the campaign runner,
//! `call::campaign`, writes after every change). A restart reads the
//! active ones back and goes on where they were.

/// One stored campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    /// The campaign's id.
    pub id: String,
    /// The owning tenant.
    pub tenant: String,
    /// Made at (Unix ms).
    pub created_ms: i64,
    /// Still has items to dial (not cancelled, not finished).
    pub active: bool,
    /// The campaign and its items (JSON, `call::campaign`).
    pub body: String,
}

impl super::Store {
    /// Add or replace a campaign (by id).
    pub fn save_campaign(&self, row: &CampaignRow) -> Result<(), super::StoreError> {
        super::latency::timed(|| self.backend.save_campaign(row))
    }

    /// One campaign by id.
    pub fn campaign(&self, id: &str) -> Result<Option<CampaignRow>, super::StoreError> {
        super::latency::timed(|| self.backend.campaign(id))
    }

    /// Every campaign still dialling, oldest first.
    pub fn active_campaigns(&self) -> Result<Vec<CampaignRow>, super::StoreError> {
        super::latency::timed(|| self.backend.active_campaigns())
    }
}
