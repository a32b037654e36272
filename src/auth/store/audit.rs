//! The append-only audit log: writing rows and reading a tenant's page.

use super::backend::NewAudit;
use super::{AuditRecord, AuthStore, MAX_AUDIT_PAGE};
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
        // PostgreSQL text cannot hold NUL; a row must never be lost for it
        // (that would let a caller dodge the log), so on both backends it
        // is stored as U+FFFD. (`detail` is JSON: NUL is escaped there.)
        let clean = |s: &str| s.replace('\0', "\u{fffd}");
        self.db.append_audit(&NewAudit {
            at_ms,
            actor: &clean(&actor.user),
            tenant: &clean(tenant),
            action: &clean(action),
            target: &clean(target),
            detail_json: detail.to_string(),
        })
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
        if tenant.is_some_and(|t| t.contains('\0')) {
            return Ok(Vec::new()); // never stored (see `append_audit`)
        }
        let rows = self.db.audit_log(tenant, limit, before_id)?;
        rows.into_iter()
            .map(|r| {
                let detail = serde_json::from_str(&r.detail_json).map_err(|e| {
                    self.corrupt("audit", &r.id.to_string(), format!("detail_json: {e}"))
                })?;
                Ok(AuditRecord {
                    id: r.id,
                    at_ms: r.at_ms,
                    actor: r.actor,
                    tenant: r.tenant,
                    action: r.action,
                    target: r.target,
                    detail,
                })
            })
            .collect()
    }
}
