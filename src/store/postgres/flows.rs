//! Flow history in PostgreSQL (issue 18 §4; `store::flows`).

use postgres::Client;

use crate::store::flows::{FlowVersion, Recorded};

const COLUMNS: &str =
    "name, version, tenant, content, saved_at, saved_by, live_at, live_by, live_seq";

fn row(r: &postgres::Row) -> Result<FlowVersion, postgres::Error> {
    Ok(FlowVersion {
        name: r.try_get(0)?,
        version: r.try_get(1)?,
        tenant: r.try_get(2)?,
        content: r.try_get(3)?,
        saved_at: r.try_get(4)?,
        saved_by: r.try_get(5)?,
        live_at: r.try_get(6)?,
        live_by: r.try_get(7)?,
        live_seq: r.try_get(8)?,
    })
}

/// `Store::flow_went_live`: one transaction, the flow's rows locked so two
/// nodes reloading the same edit number it once.
pub fn went_live(c: &mut Client, v: &FlowVersion) -> Result<Recorded, postgres::Error> {
    let mut tx = c.transaction()?;
    // Serialise writers of this flow (a transaction-scoped advisory lock on
    // its name: the first version has no row to lock).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('flow_version:' || $1))",
        &[&v.name],
    )?;
    let live = tx.query_opt(
        "SELECT version, live_seq FROM flow_version WHERE name = $1
         ORDER BY live_seq DESC LIMIT 1",
        &[&v.name],
    )?;
    let seq: i64 = match &live {
        Some(r) if r.try_get::<_, String>(0)? == v.version => return Ok(Recorded::Unchanged),
        Some(r) => r.try_get::<_, i64>(1)? + 1,
        None => 1,
    };
    let updated = tx.execute(
        "UPDATE flow_version SET live_at = $3, live_by = $4, live_seq = $5
         WHERE name = $1 AND version = $2",
        &[&v.name, &v.version, &v.live_at, &v.live_by, &seq],
    )?;
    if updated == 0 {
        tx.execute(
            &format!(
                "INSERT INTO flow_version ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &v.name,
                &v.version,
                &v.tenant,
                &v.content,
                &v.saved_at,
                &v.saved_by,
                &v.live_at,
                &v.live_by,
                &seq,
            ],
        )?;
    }
    tx.commit()?;
    Ok(if updated == 0 {
        Recorded::New
    } else {
        Recorded::Relive
    })
}

/// `Store::flow_versions`.
pub fn versions(c: &mut Client, name: &str) -> Result<Vec<FlowVersion>, postgres::Error> {
    c.query(
        &format!("SELECT {COLUMNS} FROM flow_version WHERE name = $1 ORDER BY saved_at, live_seq"),
        &[&name],
    )?
    .iter()
    .map(row)
    .collect()
}

/// `Store::flow_names`.
pub fn names(c: &mut Client) -> Result<Vec<String>, postgres::Error> {
    c.query("SELECT DISTINCT name FROM flow_version ORDER BY name", &[])?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}
