//! The append-only audit log: writing rows and reading a tenant's page.

use rusqlite::params;

use super::{lock, AuditRecord, AuthStore, MAX_AUDIT_PAGE};
use crate::auth::{AuthError, Principal};

impl AuthStore {
    /// Append an audit row in the actor's tenant; returns its id.
    pub fn audit(
        &self,
        at_ms: i64,
        actor: &Principal,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<i64, AuthError> {
        self.append_audit(at_ms, actor, &actor.tenant, action, target, detail)
    }

    /// Append an audit row in `tenant` (a global admin acting on one
    /// centre, so that centre's admins see it); `forbidden` if the actor
    /// may not access `tenant`.
    pub fn audit_in(
        &self,
        at_ms: i64,
        actor: &Principal,
        tenant: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<i64, AuthError> {
        actor.require_tenant(tenant)?;
        self.append_audit(at_ms, actor, tenant, action, target, detail)
    }

    fn append_audit(
        &self,
        at_ms: i64,
        actor: &Principal,
        tenant: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<i64, AuthError> {
        if action.is_empty() {
            return Err(AuthError::BadRequest("audit action is empty".into()));
        }
        let conn = lock(&self.conn);
        conn.execute(
            "INSERT INTO audit (at_ms, actor, tenant, action, target, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                at_ms,
                actor.user,
                tenant,
                action,
                target,
                detail.to_string()
            ],
        )
        .map_err(self.sqlite("audit"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Audit rows, newest first: of `tenant` (every tenant for `None`: pass
    /// [`Principal::tenant_filter`]), older than `before_id` if given, at
    /// most `limit` (capped at [`MAX_AUDIT_PAGE`]).
    pub fn audit_log(
        &self,
        tenant: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditRecord>, AuthError> {
        let limit = i64::try_from(limit.min(MAX_AUDIT_PAGE)).unwrap_or(0);
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at_ms, actor, tenant, action, target, detail_json FROM audit
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(self.sqlite("audit log"))?;
        let rows = stmt
            .query_map(params![tenant, before_id, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(self.sqlite("audit log"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sqlite("audit log"))?;
        rows.into_iter()
            .map(|(id, at_ms, actor, tenant, action, target, detail)| {
                let detail = serde_json::from_str(&detail).map_err(|e| {
                    self.corrupt("audit", &id.to_string(), format!("detail_json: {e}"))
                })?;
                Ok(AuditRecord {
                    id,
                    at_ms,
                    actor,
                    tenant,
                    action,
                    target,
                    detail,
                })
            })
            .collect()
    }
}
