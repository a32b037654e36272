//! Follow-up campaigns in PostgreSQL (issue 18 §3; `store::campaigns`).

use postgres::Client;

use crate::store::campaigns::CampaignRow;

fn row(r: &postgres::Row) -> Result<CampaignRow, postgres::Error> {
    Ok(CampaignRow {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        created_ms: r.try_get(2)?,
        active: r.try_get(3)?,
        body: r.try_get(4)?,
    })
}

/// `Store::save_campaign`.
pub fn save(c: &mut Client, row: &CampaignRow) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO campaign (id, tenant, created_ms, active, body) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant,
            created_ms = EXCLUDED.created_ms, active = EXCLUDED.active, body = EXCLUDED.body",
        &[
            &row.id,
            &row.tenant,
            &row.created_ms,
            &row.active,
            &row.body,
        ],
    )?;
    Ok(())
}

/// `Store::campaign`.
pub fn one(c: &mut Client, id: &str) -> Result<Option<CampaignRow>, postgres::Error> {
    c.query_opt(
        "SELECT id, tenant, created_ms, active, body FROM campaign WHERE id = $1",
        &[&id],
    )?
    .as_ref()
    .map(row)
    .transpose()
}

/// `Store::active_campaigns`.
pub fn active(c: &mut Client) -> Result<Vec<CampaignRow>, postgres::Error> {
    c.query(
        "SELECT id, tenant, created_ms, active, body FROM campaign WHERE active
         ORDER BY created_ms, id",
        &[],
    )?
    .iter()
    .map(row)
    .collect()
}
