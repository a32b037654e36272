//! The shared backend: the auth tables in the store's PostgreSQL database
//! (`[store] url`, issue 15 §1), so that a token issued by one node is
//! accepted by every other and users, lockouts and the audit log are one.
//!
//! The connection is a [`PgLink`] of its own (its own thread, made again
//! when it breaks; `store::pg`); the tables are brought up to date at
//! connect ([`schema`]). Several nodes write at once, so every
//! read-then-write is one transaction holding the rows it read:
//! `FOR UPDATE` on the user being replaced and on a failed-login counter
//! (two failures at once both count), `FOR SHARE` on the user logging in
//! (a password change waits, then ends the new session too); a user or an
//! agent id created by two nodes at once is a `conflict`, not a 500.

use postgres::error::SqlState;

use super::backend::{
    agent_taken, deleted_meanwhile, next_attempt, Account, Backend, Current, NewAudit, NewSession,
    RawAudit, RawUser, SessionRefused, SessionRow, UserWrite,
};
use super::{LockoutPolicy, Purged, Upserted};
use crate::auth::AuthError;
use crate::store::pg::{Client, PgError, PgLink, Row};

mod schema;

/// The auth tables on PostgreSQL.
pub(super) struct Shared {
    link: PgLink,
}

impl Shared {
    /// Connect, migrate the auth tables, and start the connection's thread.
    pub(super) fn connect(url: &str) -> Result<Self, AuthError> {
        let link = PgLink::connect(url, "auth-postgres", schema::migrate).map_err(|e| match e {
            PgError::TooNew {
                target,
                found,
                known,
                ..
            } => AuthError::SchemaTooNew {
                database: target,
                found,
                supported: known,
            },
            source => AuthError::Postgres {
                op: "connect",
                source,
            },
        })?;
        Ok(Self { link })
    }

    /// Run `f` on the connection and wait for its result.
    fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    {
        self.link
            .run(f)
            .map_err(|source| AuthError::Postgres { op, source })
    }
}

const USER_COLUMNS: &str =
    "SELECT username, display_name, role, tenant, agent_id, disabled, created_ms FROM auth_user";

fn raw_user(r: &Row) -> Result<RawUser, postgres::Error> {
    Ok(RawUser {
        username: r.try_get(0)?,
        display_name: r.try_get(1)?,
        role: r.try_get(2)?,
        tenant: r.try_get(3)?,
        agent_id: r.try_get(4)?,
        disabled: r.try_get(5)?,
        created_ms: r.try_get(6)?,
    })
}

fn unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// `Ok(Err(conflict))` for a unique violation (another node wrote the same
/// user or agent id at once), else the error.
fn or_conflict<T>(
    e: postgres::Error,
    conflict: impl FnOnce() -> AuthError,
) -> Result<Result<T, AuthError>, postgres::Error> {
    if unique_violation(&e) {
        Ok(Err(conflict()))
    } else {
        Err(e)
    }
}

fn write_user(
    c: &mut Client,
    w: &UserWrite,
) -> Result<Result<Upserted, AuthError>, postgres::Error> {
    let mut tx = c.transaction()?;
    if let Some(agent_id) = &w.agent_id {
        let holder = tx.query_opt(
            "SELECT username FROM auth_user
             WHERE tenant = $1 AND agent_id = $2 AND username <> $3",
            &[&w.tenant, agent_id, &w.username],
        )?;
        if let Some(holder) = holder {
            let holder: String = holder.try_get(0)?;
            return Ok(Err(agent_taken(agent_id, &w.tenant, &holder)));
        }
    }
    let taken = || {
        AuthError::Conflict(format!(
            "user {:?} or its agent id was written by another node meanwhile; retry",
            w.username
        ))
    };
    let current = tx
        .query_opt(
            "SELECT display_name, role, tenant, agent_id, password_hash, disabled
             FROM auth_user WHERE username = $1 FOR UPDATE",
            &[&w.username],
        )?
        .map(|r| {
            Ok(Current {
                display_name: r.try_get(0)?,
                role: r.try_get(1)?,
                tenant: r.try_get(2)?,
                agent_id: r.try_get(3)?,
                password_hash: r.try_get(4)?,
                disabled: r.try_get(5)?,
            })
        })
        .transpose()?;
    let outcome = match current {
        None => {
            let Some(hash) = &w.new_hash else {
                return Ok(Err(deleted_meanwhile(&w.username)));
            };
            let inserted = tx.execute(
                "INSERT INTO auth_user (username, display_name, role, tenant, agent_id,
                                        password_hash, disabled, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (username) DO NOTHING",
                &[
                    &w.username,
                    &w.display_name,
                    &w.role,
                    &w.tenant,
                    &w.agent_id,
                    hash,
                    &w.disabled,
                    &w.now_ms,
                ],
            );
            match inserted {
                Ok(0) => return Ok(Err(taken())),
                Ok(_) => Upserted::Created,
                Err(e) => return or_conflict(e, taken),
            }
        }
        Some(current) => match current.change(w) {
            None => Upserted::Unchanged,
            Some(change) => {
                let updated = tx.execute(
                    "UPDATE auth_user SET display_name = $2, role = $3, tenant = $4,
                            agent_id = $5, password_hash = $6, disabled = $7
                     WHERE username = $1",
                    &[
                        &w.username,
                        &w.display_name,
                        &w.role,
                        &w.tenant,
                        &w.agent_id,
                        &change.hash,
                        &w.disabled,
                    ],
                );
                if let Err(e) = updated {
                    return or_conflict(e, taken);
                }
                if change.end_sessions {
                    tx.execute(
                        "DELETE FROM auth_session WHERE username = $1",
                        &[&w.username],
                    )?;
                }
                Upserted::Updated
            }
        },
    };
    tx.commit()?;
    Ok(Ok(outcome))
}

fn record_failure(
    c: &mut Client,
    username: &str,
    now_ms: i64,
    policy: LockoutPolicy,
) -> Result<i64, postgres::Error> {
    let mut tx = c.transaction()?;
    // Make sure there is a row to lock, then count under its lock: two
    // failures at once on two nodes are two failures.
    tx.execute(
        "INSERT INTO auth_login_attempt (username, window_start_ms, failures, locked_until_ms)
         VALUES ($1, $2, 0, 0) ON CONFLICT (username) DO NOTHING",
        &[&username, &now_ms],
    )?;
    let row = tx
        .query_opt(
            "SELECT window_start_ms, failures, locked_until_ms
             FROM auth_login_attempt WHERE username = $1 FOR UPDATE",
            &[&username],
        )?
        .map(|r| Ok::<_, postgres::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()?;
    let (window_start, failures, locked_until) = next_attempt(row, now_ms, policy);
    tx.execute(
        "INSERT INTO auth_login_attempt (username, window_start_ms, failures, locked_until_ms)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (username) DO UPDATE SET window_start_ms = $2, failures = $3,
                                              locked_until_ms = $4",
        &[&username, &window_start, &failures, &locked_until],
    )?;
    tx.commit()?;
    Ok(locked_until)
}

fn start_session(
    c: &mut Client,
    s: &NewSession,
) -> Result<Result<(), SessionRefused>, postgres::Error> {
    let mut tx = c.transaction()?;
    // Hold the user row until the session is in: a password change or a
    // disable on another node waits, then ends this session too. (Locked
    // for update when the hash is rewritten, so two such logins queue
    // instead of deadlocking.)
    let read = if s.upgraded_hash.is_some() {
        "SELECT password_hash, disabled FROM auth_user WHERE username = $1 FOR UPDATE"
    } else {
        "SELECT password_hash, disabled FROM auth_user WHERE username = $1 FOR SHARE"
    };
    let still = tx
        .query_opt(read, &[&s.username])?
        .map(|r| Ok::<_, postgres::Error>((r.try_get::<_, String>(0)?, r.try_get::<_, bool>(1)?)))
        .transpose()?;
    if still.as_ref().map(|(h, d)| (h.as_str(), *d)) != Some((s.verified_hash.as_str(), false)) {
        return Ok(Err(SessionRefused::UserChanged));
    }
    let locked_until: Option<i64> = tx
        .query_opt(
            "SELECT locked_until_ms FROM auth_login_attempt WHERE username = $1",
            &[&s.username],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    if let Some(until) = locked_until.filter(|&until| until > s.now_ms) {
        return Ok(Err(SessionRefused::Locked(until)));
    }
    tx.execute(
        "DELETE FROM auth_login_attempt WHERE username = $1",
        &[&s.username],
    )?;
    if let Some(hash) = &s.upgraded_hash {
        tx.execute(
            "UPDATE auth_user SET password_hash = $2 WHERE username = $1",
            &[&s.username, hash],
        )?;
    }
    tx.execute(
        "INSERT INTO auth_session (token_hash, username, created_ms, expires_ms, last_seen_ms)
         VALUES ($1, $2, $3, $4, $3)",
        &[&s.token_hash, &s.username, &s.now_ms, &s.expires_ms],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

fn purge(c: &mut Client, now_ms: i64, window_ms: i64) -> Result<Purged, postgres::Error> {
    let mut tx = c.transaction()?;
    let sessions = tx.execute(
        "DELETE FROM auth_session WHERE expires_ms <= $1",
        &[&now_ms],
    )?;
    let login_attempts = tx.execute(
        "DELETE FROM auth_login_attempt
         WHERE locked_until_ms <= $1 AND window_start_ms + $2 <= $1",
        &[&now_ms, &window_ms],
    )?;
    tx.commit()?;
    Ok(Purged {
        sessions: usize::try_from(sessions).unwrap_or(usize::MAX),
        login_attempts: usize::try_from(login_attempts).unwrap_or(usize::MAX),
    })
}

impl Backend for Shared {
    fn name(&self) -> &str {
        self.link.target()
    }

    fn account(&self, username: &str) -> Result<Option<Account>, AuthError> {
        let username = username.to_owned();
        self.run("read user", move |c| {
            c.query_opt(
                "SELECT password_hash, disabled, role, tenant, agent_id
                 FROM auth_user WHERE username = $1",
                &[&username],
            )?
            .map(|r| {
                Ok(Account {
                    password_hash: r.try_get(0)?,
                    disabled: r.try_get(1)?,
                    role: r.try_get(2)?,
                    tenant: r.try_get(3)?,
                    agent_id: r.try_get(4)?,
                })
            })
            .transpose()
        })
    }

    fn user(&self, username: &str) -> Result<Option<RawUser>, AuthError> {
        let username = username.to_owned();
        self.run("read user", move |c| {
            let sql = format!("{USER_COLUMNS} WHERE username = $1");
            c.query_opt(&sql, &[&username])?
                .as_ref()
                .map(raw_user)
                .transpose()
        })
    }

    fn list_users(&self, tenant: Option<&str>) -> Result<Vec<RawUser>, AuthError> {
        let tenant = tenant.map(str::to_owned);
        self.run("list users", move |c| {
            let sql = format!(
                "{USER_COLUMNS} WHERE $1::TEXT IS NULL OR tenant = $1 ORDER BY tenant, username"
            );
            c.query(&sql, &[&tenant])?.iter().map(raw_user).collect()
        })
    }

    fn write_user(&self, w: &UserWrite) -> Result<Upserted, AuthError> {
        let w = w.clone();
        self.run("upsert user", move |c| write_user(c, &w))?
    }

    fn delete_user(&self, username: &str) -> Result<bool, AuthError> {
        let username = username.to_owned();
        // Its sessions go with it (ON DELETE CASCADE).
        self.run("delete user", move |c| {
            Ok(c.execute("DELETE FROM auth_user WHERE username = $1", &[&username])? > 0)
        })
    }

    fn locked_until(&self, username: &str) -> Result<Option<i64>, AuthError> {
        let username = username.to_owned();
        self.run("login", move |c| {
            c.query_opt(
                "SELECT locked_until_ms FROM auth_login_attempt WHERE username = $1",
                &[&username],
            )?
            .map(|r| r.try_get(0))
            .transpose()
        })
    }

    fn record_failure(
        &self,
        username: &str,
        now_ms: i64,
        policy: LockoutPolicy,
    ) -> Result<i64, AuthError> {
        let username = username.to_owned();
        self.run("login", move |c| {
            record_failure(c, &username, now_ms, policy)
        })
    }

    fn start_session(&self, s: &NewSession) -> Result<Result<(), SessionRefused>, AuthError> {
        let s = s.clone();
        self.run("login", move |c| start_session(c, &s))
    }

    fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, AuthError> {
        let token_hash = token_hash.to_owned();
        self.run("authenticate", move |c| {
            c.query_opt(
                "SELECT s.expires_ms, s.last_seen_ms, u.username, u.role, u.tenant,
                        u.agent_id, u.disabled
                 FROM auth_session s JOIN auth_user u ON u.username = s.username
                 WHERE s.token_hash = $1",
                &[&token_hash],
            )?
            .map(|r| {
                Ok(SessionRow {
                    expires_ms: r.try_get(0)?,
                    last_seen_ms: r.try_get(1)?,
                    username: r.try_get(2)?,
                    role: r.try_get(3)?,
                    tenant: r.try_get(4)?,
                    agent_id: r.try_get(5)?,
                    disabled: r.try_get(6)?,
                })
            })
            .transpose()
        })
    }

    fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), AuthError> {
        let token_hash = token_hash.to_owned();
        self.run("authenticate", move |c| {
            // Never backwards, when nodes' clocks or requests interleave.
            c.execute(
                "UPDATE auth_session SET last_seen_ms = $2
                 WHERE token_hash = $1 AND last_seen_ms < $2",
                &[&token_hash, &now_ms],
            )
            .map(drop)
        })
    }

    fn end_session(&self, token_hash: &str) -> Result<bool, AuthError> {
        let token_hash = token_hash.to_owned();
        self.run("logout", move |c| {
            Ok(c.execute(
                "DELETE FROM auth_session WHERE token_hash = $1",
                &[&token_hash],
            )? > 0)
        })
    }

    fn end_sessions(&self, username: &str) -> Result<usize, AuthError> {
        let username = username.to_owned();
        self.run("revoke sessions", move |c| {
            let n = c.execute("DELETE FROM auth_session WHERE username = $1", &[&username])?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn purge(&self, now_ms: i64, window_ms: i64) -> Result<Purged, AuthError> {
        self.run("purge", move |c| purge(c, now_ms, window_ms))
    }

    fn append_audit(&self, row: &NewAudit<'_>) -> Result<i64, AuthError> {
        let (at_ms, actor, tenant, action, target, detail) = (
            row.at_ms,
            row.actor.to_owned(),
            row.tenant.to_owned(),
            row.action.to_owned(),
            row.target.to_owned(),
            row.detail_json.clone(),
        );
        self.run("audit", move |c| {
            Ok(c.query_one(
                "INSERT INTO auth_audit (at_ms, actor, tenant, action, target, detail_json)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&at_ms, &actor, &tenant, &action, &target, &detail],
            )?
            .get(0))
        })
    }

    fn audit_log(
        &self,
        tenant: Option<&str>,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<RawAudit>, AuthError> {
        let tenant = tenant.map(str::to_owned);
        self.run("audit log", move |c| {
            let rows = c.query(
                "SELECT id, at_ms, actor, tenant, action, target, detail_json FROM auth_audit
                 WHERE ($1::TEXT IS NULL OR tenant = $1) AND ($2::BIGINT IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
                &[&tenant, &before_id, &limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(RawAudit {
                        id: r.try_get(0)?,
                        at_ms: r.try_get(1)?,
                        actor: r.try_get(2)?,
                        tenant: r.try_get(3)?,
                        action: r.try_get(4)?,
                        target: r.try_get(5)?,
                        detail_json: r.try_get(6)?,
                    })
                })
                .collect()
        })
    }
}
