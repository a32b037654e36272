//! User rows: create or update (seeding, admins), delete, read, list.

use rusqlite::{params, OptionalExtension, Row};

use super::{
    lock, normalize_username, validate_agent_id, validate_display_name, validate_tenant, Account,
    AuthStore, Credential, NewUser, Upserted, UserInfo,
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

        let existing = self.account(&username)?;
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

        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(self.sqlite("upsert user"))?;
        if let Some(agent_id) = &user.agent_id {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT username FROM user
                     WHERE tenant = ?1 AND agent_id = ?2 AND username <> ?3",
                    params![user.tenant, agent_id, username],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.sqlite("upsert user"))?;
            if let Some(holder) = holder {
                return Err(AuthError::Conflict(format!(
                    "agent {agent_id:?} of tenant {:?} already belongs to user {holder:?}",
                    user.tenant
                )));
            }
        }
        let current = tx
            .query_row(
                "SELECT display_name, role, tenant, agent_id, password_hash, disabled
                 FROM user WHERE username = ?1",
                params![username],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, bool>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sqlite("upsert user"))?;
        let outcome = match current {
            None => {
                let Some(hash) = &new_hash else {
                    // Deleted by someone else between the read and now.
                    return Err(AuthError::Conflict(format!(
                        "user {username:?} was deleted meanwhile; retry"
                    )));
                };
                tx.execute(
                    "INSERT INTO user (username, display_name, role, tenant, agent_id,
                                       password_hash, disabled, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        username,
                        user.display_name,
                        user.role.as_str(),
                        user.tenant,
                        user.agent_id,
                        hash,
                        user.disabled,
                        now_ms
                    ],
                )
                .map_err(self.sqlite("upsert user"))?;
                Upserted::Created
            }
            Some((display_name, role, tenant, agent_id, old_hash, disabled)) => {
                let hash = new_hash.unwrap_or(old_hash.clone());
                let same = display_name == user.display_name
                    && role == user.role.as_str()
                    && tenant == user.tenant
                    && agent_id == user.agent_id
                    && hash == old_hash
                    && disabled == user.disabled;
                if same {
                    Upserted::Unchanged
                } else {
                    tx.execute(
                        "UPDATE user SET display_name = ?2, role = ?3, tenant = ?4,
                                agent_id = ?5, password_hash = ?6, disabled = ?7
                         WHERE username = ?1",
                        params![
                            username,
                            user.display_name,
                            user.role.as_str(),
                            user.tenant,
                            user.agent_id,
                            hash,
                            user.disabled
                        ],
                    )
                    .map_err(self.sqlite("upsert user"))?;
                    if hash != old_hash || tenant != user.tenant || user.disabled {
                        tx.execute("DELETE FROM session WHERE username = ?1", params![username])
                            .map_err(self.sqlite("upsert user"))?;
                    }
                    Upserted::Updated
                }
            }
        };
        tx.commit().map_err(self.sqlite("upsert user"))?;
        Ok(outcome)
    }

    /// Delete a user and its sessions (`not_found` if there is none). Its
    /// audit rows stay.
    pub fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let username = normalize_username(username)?;
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(self.sqlite("delete user"))?;
        tx.execute("DELETE FROM session WHERE username = ?1", params![username])
            .map_err(self.sqlite("delete user"))?;
        let n = tx
            .execute("DELETE FROM user WHERE username = ?1", params![username])
            .map_err(self.sqlite("delete user"))?;
        tx.commit().map_err(self.sqlite("delete user"))?;
        if n == 0 {
            return Err(AuthError::NotFound(format!("no user {username:?}")));
        }
        Ok(())
    }

    /// One user, if it exists.
    pub fn user(&self, username: &str) -> Result<Option<UserInfo>, AuthError> {
        let username = normalize_username(username)?;
        let conn = lock(&self.conn);
        let row = conn
            .query_row(
                "SELECT username, display_name, role, tenant, agent_id, disabled, created_ms
                 FROM user WHERE username = ?1",
                params![username],
                raw_user,
            )
            .optional()
            .map_err(self.sqlite("read user"))?;
        row.map(|r| self.user_info(r)).transpose()
    }

    /// Users of `tenant` (every tenant for `None`: pass
    /// [`Principal::tenant_filter`]), by tenant then username.
    pub fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserInfo>, AuthError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT username, display_name, role, tenant, agent_id, disabled, created_ms
                 FROM user WHERE ?1 IS NULL OR tenant = ?1
                 ORDER BY tenant, username",
            )
            .map_err(self.sqlite("list users"))?;
        let rows = stmt
            .query_map(params![tenant], raw_user)
            .map_err(self.sqlite("list users"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sqlite("list users"))?;
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

    pub(super) fn account(&self, username: &str) -> Result<Option<Account>, AuthError> {
        let conn = lock(&self.conn);
        conn.query_row(
            "SELECT password_hash, disabled, role, tenant, agent_id FROM user WHERE username = ?1",
            params![username],
            |r| {
                Ok(Account {
                    password_hash: r.get(0)?,
                    disabled: r.get(1)?,
                    role: r.get(2)?,
                    tenant: r.get(3)?,
                    agent_id: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(self.sqlite("read user"))
    }

    // ----- sessions ----------------------------------------------------
}

struct RawUser {
    username: String,
    display_name: String,
    role: String,
    tenant: String,
    agent_id: Option<String>,
    disabled: bool,
    created_ms: i64,
}

fn raw_user(r: &Row<'_>) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        username: r.get(0)?,
        display_name: r.get(1)?,
        role: r.get(2)?,
        tenant: r.get(3)?,
        agent_id: r.get(4)?,
        disabled: r.get(5)?,
        created_ms: r.get(6)?,
    })
}
