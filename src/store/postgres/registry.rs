//! Registrations (RFC 3261 §10: the location service, shared by every
//! node) and the `meta` facts (the digest nonce key, the block list's
//! seeds) in PostgreSQL.

use std::net::SocketAddr;

use postgres::Client;

use super::announce::announce;
use crate::sip::registrar::{Binding, BindingChange};
use crate::store::changes;
use crate::time::Time;

/// Every stored binding; a row whose address no longer parses is skipped.
pub fn load_bindings(c: &mut Client) -> Result<Vec<Binding>, postgres::Error> {
    let rows = c.query(SELECT_BINDINGS, &[])?;
    bindings(rows)
}

/// The stored bindings of `aor`.
pub fn load_bindings_of(c: &mut Client, aor: &str) -> Result<Vec<Binding>, postgres::Error> {
    let rows = c.query(&format!("{SELECT_BINDINGS} WHERE aor = $1"), &[&aor])?;
    bindings(rows)
}

const SELECT_BINDINGS: &str =
    "SELECT aor, contact, source, transport, expires_at, call_id, cseq, q, path FROM registration";

fn bindings(rows: Vec<postgres::Row>) -> Result<Vec<Binding>, postgres::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Ok(source) = r.try_get::<_, String>(2)?.parse::<SocketAddr>() else {
            continue;
        };
        out.push(Binding {
            aor: r.try_get(0)?,
            contact: r.try_get(1)?,
            source,
            transport: r.try_get(3)?,
            expires_at: Time::from_unix_secs(r.try_get::<_, i64>(4)?.max(0) as u64),
            call_id: r.try_get(5)?,
            cseq: r.try_get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
            q: r.try_get::<_, Option<f64>>(7)?.map(|q| q as f32),
            path: crate::store::path_from_text(&r.try_get::<_, String>(8)?),
        });
    }
    Ok(out)
}

/// Apply registrar changes in one transaction, announcing each AOR
/// changed to the other nodes (`store::changes`) as `node`.
pub fn apply_bindings(
    c: &mut Client,
    changes: &[BindingChange],
    node: &str,
) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    let mut announced: Vec<&str> = Vec::new();
    for change in changes {
        let aor = match change {
            BindingChange::Upserted(b) => &b.aor,
            BindingChange::Removed { aor, .. } => aor,
        };
        if !announced.contains(&aor.as_str()) {
            announced.push(aor);
        }
        match change {
            BindingChange::Upserted(b) => tx.execute(
                "INSERT INTO registration (aor, contact, source, transport, expires_at, call_id, cseq, q, path)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (aor, contact) DO UPDATE SET source = EXCLUDED.source,
                    transport = EXCLUDED.transport, expires_at = EXCLUDED.expires_at,
                    call_id = EXCLUDED.call_id, cseq = EXCLUDED.cseq, q = EXCLUDED.q,
                    path = EXCLUDED.path",
                &[
                    &b.aor,
                    &b.contact,
                    &b.source.to_string(),
                    &b.transport,
                    &(b.expires_at.unix_secs() as i64),
                    &b.call_id,
                    &i64::from(b.cseq),
                    &b.q.map(f64::from),
                    &crate::store::path_to_text(&b.path),
                ],
            ),
            BindingChange::Removed { aor, contact } => tx.execute(
                "DELETE FROM registration WHERE aor = $1 AND contact = $2",
                &[aor, contact],
            ),
        }?;
    }
    for aor in announced {
        announce(&mut tx, node, changes::REGISTRATION, aor)?;
    }
    tx.commit()
}

/// The value under `key`, inserting `value` if there is none; whether it
/// was inserted now. The insert and the read are one statement each in one
/// transaction, so two nodes racing both read the first value.
pub fn meta_insert_or_get(
    c: &mut Client,
    key: &str,
    value: &[u8],
) -> Result<(Vec<u8>, bool), postgres::Error> {
    let mut tx = c.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&key, &value],
    )? > 0;
    let stored: Vec<u8> = tx
        .query_one("SELECT value FROM meta WHERE key = $1", &[&key])?
        .try_get(0)?;
    tx.commit()?;
    Ok((stored, inserted))
}
