//! User rows: create or update (seeding, admins), delete, read, list.

use super::backend::{RawUser, UserWrite};
use super::{
    normalize_username, validate_agent_id, validate_display_name, validate_tenant, AuthStore,
    Credential, NewUser, Upserted, UserInfo,
};
use crate::auth::principal::ALL_TENANTS;
use crate::auth::{password, AuthError, Role};

impl AuthStore {
    /// Create or replace a user. Refuses (`bad_request`) a malformed
    /// username, tenant, agent id or display name, a non-admin in `"*"`, an
    /// agent without an agent id, a weak password (unless `allow_weak`) or
    /// a hash that is not a bounded argon2id PHC string; `conflict` when the
    /// agent id belongs to another user of the tenant.
    ///
    /// The caller checks who may do this
    /// ([`Principal::require_manage_user`]) and audits it.
    pub fn upsert_user(&self, user: &NewUser, now_ms: i64) -> Result<Upserted, AuthError> {
        let username = normalize_username(&user.username)?;
        validate_display_name(&user.display_name)?;
        validate_tenant(&user.tenant)?;
        if user.tenant == ALL_TENANTS && user.role != Role::Admin {
            return Err(AuthError::BadRequest(
                "only admins may belong to every tenant (\"*\")".into(),
            ));
        }
        match (&user.agent_id, user.role) {
            (Some(agent_id), _) => validate_agent_id(agent_id)?,
            (None, Role::Agent) => {
                return Err(AuthError::BadRequest("an agent needs an agent_id".into()))
            }
            (None, _) => {}
        }
        match &user.credential {
            Credential::Password(p) => {
                password::check_password_policy(&username, p, user.allow_weak)?
            }
            Credential::PasswordHash(h) => password::validate_phc(h)?,
        }

        let existing = self.db.account(&username)?;
        // Keep the stored hash when the credential is unchanged, so that
        // re-seeding from config at every start neither rehashes nor logs
        // anyone out. Hashing happens outside the lock.
        let keep = existing.as_ref().is_some_and(|a| match &user.credential {
            Credential::Password(p) => password::verify_password(p, &a.password_hash),
            Credential::PasswordHash(h) => *h == a.password_hash,
        });
        let new_hash = match (&user.credential, keep) {
            (_, true) => None,
            (Credential::Password(p), false) => Some(password::hash_password(p)?),
            (Credential::PasswordHash(h), false) => Some(h.clone()),
        };

        self.db.write_user(&UserWrite {
            username,
            display_name: user.display_name.clone(),
            role: user.role.as_str(),
            tenant: user.tenant.clone(),
            agent_id: user.agent_id.clone(),
            new_hash,
            disabled: user.disabled,
            now_ms,
        })
    }

    /// Delete a user and its sessions (`not_found` if there is none). Its
    /// audit rows stay.
    pub fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let username = normalize_username(username)?;
        if !self.db.delete_user(&username)? {
            return Err(AuthError::NotFound(format!("no user {username:?}")));
        }
        Ok(())
    }

    /// One user, if it exists.
    pub fn user(&self, username: &str) -> Result<Option<UserInfo>, AuthError> {
        let username = normalize_username(username)?;
        let row = self.db.user(&username)?;
        row.map(|r| self.user_info(r)).transpose()
    }

    /// Users of `tenant` (every tenant for `None`: pass
    /// [`Principal::tenant_filter`]), by tenant then username.
    pub fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserInfo>, AuthError> {
        if tenant.is_some_and(|t| validate_tenant(t).is_err()) {
            return Ok(Vec::new()); // no stored user has such a tenant
        }
        let rows = self.db.list_users(tenant)?;
        rows.into_iter().map(|r| self.user_info(r)).collect()
    }

    fn user_info(&self, r: RawUser) -> Result<UserInfo, AuthError> {
        let p = self.principal(r.username, &r.role, r.tenant, r.agent_id)?;
        Ok(UserInfo {
            username: p.user,
            display_name: r.display_name,
            role: p.role,
            tenant: p.tenant,
            agent_id: p.agent_id,
            disabled: r.disabled,
            created_ms: r.created_ms,
        })
    }
}
