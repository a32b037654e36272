//! The embedded backend: `[data] dir`/auth.db, SQLite in WAL mode, one
//! connection behind a mutex (opening and schema: `store::sqlite`,
//! `auth_schema`; the file owns `user_version`). Writing transactions are
//! `IMMEDIATE`: they take SQLite's write lock before reading, so two
//! handles on one file (tests' second node) never lose an update.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::backend::{
    agent_taken, deleted_meanwhile, next_attempt, Account, Backend, Change, Current, NewAudit,
    NewSession, RawAudit, RawUser, SessionRefused, SessionRow, UserWrite,
};
use super::{LockoutPolicy, Purged, Upserted};
use crate::auth::AuthError;
use crate::store::sqlite::{self as db, MigrateError, AUTH};

/// `auth.db`.
pub(super) struct Embedded {
    path: PathBuf,
    /// The path as text, for messages.
    name: String,
    conn: Mutex<Connection>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (an open
    // transaction rolls back on drop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Embedded {
    /// Open (creating) the database at `path` and migrate it.
    pub(super) fn open(path: &Path) -> Result<Self, AuthError> {
        let conn =
            db::connect(path, db::Mode::ReadWrite(db::Synchronous::Normal)).map_err(|source| {
                AuthError::Sqlite {
                    path: path.to_path_buf(),
                    op: "open",
                    source,
                }
            })?;
        Self::init(path.to_path_buf(), conn)
    }

    /// A private in-memory database.
    pub(super) fn open_in_memory() -> Result<Self, AuthError> {
        let path = PathBuf::from(":memory:");
        let conn = db::connect_in_memory().map_err(|source| AuthError::Sqlite {
            path: path.clone(),
            op: "open",
            source,
        })?;
        Self::init(path, conn)
    }

    fn init(path: PathBuf, conn: Connection) -> Result<Self, AuthError> {
        match db::migrate(&conn, &AUTH) {
            Ok(()) => {}
            Err(MigrateError::Sqlite(source)) => {
                return Err(AuthError::Sqlite {
                    path,
                    op: "migrate",
                    source,
                })
            }
            Err(MigrateError::TooNew { found, supported }) => {
                return Err(AuthError::SchemaTooNew {
                    database: path.display().to_string(),
                    found,
                    supported,
                })
            }
        }
        Ok(Self {
            name: path.display().to_string(),
            path,
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> AuthError + '_ {
        move |source| AuthError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }
}

const USER_COLUMNS: &str =
    "SELECT username, display_name, role, tenant, agent_id, disabled, created_ms FROM user";

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

impl Backend for Embedded {
    fn name(&self) -> &str {
        &self.name
    }

    fn account(&self, username: &str) -> Result<Option<Account>, AuthError> {
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
        .map_err(self.err("read user"))
    }

    fn user(&self, username: &str) -> Result<Option<RawUser>, AuthError> {
        let conn = lock(&self.conn);
        conn.query_row(
            &format!("{USER_COLUMNS} WHERE username = ?1"),
            params![username],
            raw_user,
        )
        .optional()
        .map_err(self.err("read user"))
    }

    fn list_users(&self, tenant: Option<&str>) -> Result<Vec<RawUser>, AuthError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(&format!(
                "{USER_COLUMNS} WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, username"
            ))
            .map_err(self.err("list users"))?;
        let rows = stmt
            .query_map(params![tenant], raw_user)
            .map_err(self.err("list users"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err("list users"));
        rows
    }

    fn write_user(&self, w: &UserWrite) -> Result<Upserted, AuthError> {
        let err = self.err("upsert user");
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        if let Some(agent_id) = &w.agent_id {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT username FROM user
                     WHERE tenant = ?1 AND agent_id = ?2 AND username <> ?3",
                    params![w.tenant, agent_id, w.username],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            if let Some(holder) = holder {
                return Err(agent_taken(agent_id, &w.tenant, &holder));
            }
        }
        let current = tx
            .query_row(
                "SELECT display_name, role, tenant, agent_id, password_hash, disabled
                 FROM user WHERE username = ?1",
                params![w.username],
                |r| {
                    Ok(Current {
                        display_name: r.get(0)?,
                        role: r.get(1)?,
                        tenant: r.get(2)?,
                        agent_id: r.get(3)?,
                        password_hash: r.get(4)?,
                        disabled: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(&err)?;
        let outcome = match current {
            None => {
                let Some(hash) = &w.new_hash else {
                    return Err(deleted_meanwhile(&w.username));
                };
                tx.execute(
                    "INSERT INTO user (username, display_name, role, tenant, agent_id,
                                       password_hash, disabled, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        w.username,
                        w.display_name,
                        w.role,
                        w.tenant,
                        w.agent_id,
                        hash,
                        w.disabled,
                        w.now_ms
                    ],
                )
                .map_err(&err)?;
                Upserted::Created
            }
            Some(current) => match current.change(w) {
                None => Upserted::Unchanged,
                Some(Change { hash, end_sessions }) => {
                    tx.execute(
                        "UPDATE user SET display_name = ?2, role = ?3, tenant = ?4,
                                agent_id = ?5, password_hash = ?6, disabled = ?7
                         WHERE username = ?1",
                        params![
                            w.username,
                            w.display_name,
                            w.role,
                            w.tenant,
                            w.agent_id,
                            hash,
                            w.disabled
                        ],
                    )
                    .map_err(&err)?;
                    if end_sessions {
                        tx.execute(
                            "DELETE FROM session WHERE username = ?1",
                            params![w.username],
                        )
                        .map_err(&err)?;
                    }
                    Upserted::Updated
                }
            },
        };
        tx.commit().map_err(&err)?;
        Ok(outcome)
    }

    fn delete_user(&self, username: &str) -> Result<bool, AuthError> {
        let err = self.err("delete user");
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        tx.execute("DELETE FROM session WHERE username = ?1", params![username])
            .map_err(&err)?;
        let n = tx
            .execute("DELETE FROM user WHERE username = ?1", params![username])
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n > 0)
    }

    fn locked_until(&self, username: &str) -> Result<Option<i64>, AuthError> {
        let conn = lock(&self.conn);
        conn.query_row(
            "SELECT locked_until_ms FROM login_attempt WHERE username = ?1",
            params![username],
            |r| r.get(0),
        )
        .optional()
        .map_err(self.err("login"))
    }

    fn record_failure(
        &self,
        username: &str,
        now_ms: i64,
        policy: LockoutPolicy,
    ) -> Result<i64, AuthError> {
        let err = self.err("login");
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let row = tx
            .query_row(
                "SELECT window_start_ms, failures, locked_until_ms
                 FROM login_attempt WHERE username = ?1",
                params![username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(&err)?;
        let (window_start, failures, locked_until) = next_attempt(row, now_ms, policy);
        tx.execute(
            "INSERT INTO login_attempt (username, window_start_ms, failures, locked_until_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (username) DO UPDATE SET window_start_ms = ?2, failures = ?3,
                                                  locked_until_ms = ?4",
            params![username, window_start, failures, locked_until],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(locked_until)
    }

    fn start_session(&self, s: &NewSession) -> Result<Result<(), SessionRefused>, AuthError> {
        let err = self.err("login");
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let still: Option<(String, bool)> = tx
            .query_row(
                "SELECT password_hash, disabled FROM user WHERE username = ?1",
                params![s.username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&err)?;
        if still.as_ref().map(|(h, d)| (h.as_str(), *d)) != Some((s.verified_hash.as_str(), false))
        {
            return Ok(Err(SessionRefused::UserChanged));
        }
        let locked_until: Option<i64> = tx
            .query_row(
                "SELECT locked_until_ms FROM login_attempt WHERE username = ?1",
                params![s.username],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        if let Some(until) = locked_until.filter(|&until| until > s.now_ms) {
            return Ok(Err(SessionRefused::Locked(until)));
        }
        tx.execute(
            "DELETE FROM login_attempt WHERE username = ?1",
            params![s.username],
        )
        .map_err(&err)?;
        if let Some(hash) = &s.upgraded_hash {
            tx.execute(
                "UPDATE user SET password_hash = ?2 WHERE username = ?1",
                params![s.username, hash],
            )
            .map_err(&err)?;
        }
        tx.execute(
            "INSERT INTO session (token_hash, username, created_ms, expires_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?3)",
            params![s.token_hash, s.username, s.now_ms, s.expires_ms],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Ok(()))
    }

    fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, AuthError> {
        let conn = lock(&self.conn);
        conn.query_row(
            "SELECT s.expires_ms, s.last_seen_ms, u.username, u.role, u.tenant,
                    u.agent_id, u.disabled
             FROM session s JOIN user u ON u.username = s.username
             WHERE s.token_hash = ?1",
            params![token_hash],
            |r| {
                Ok(SessionRow {
                    expires_ms: r.get(0)?,
                    last_seen_ms: r.get(1)?,
                    username: r.get(2)?,
                    role: r.get(3)?,
                    tenant: r.get(4)?,
                    agent_id: r.get(5)?,
                    disabled: r.get(6)?,
                })
            },
        )
        .optional()
        .map_err(self.err("authenticate"))
    }

    fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), AuthError> {
        let conn = lock(&self.conn);
        conn.execute(
            "UPDATE session SET last_seen_ms = ?2 WHERE token_hash = ?1",
            params![token_hash, now_ms],
        )
        .map_err(self.err("authenticate"))?;
        Ok(())
    }

    fn end_session(&self, token_hash: &str) -> Result<bool, AuthError> {
        let conn = lock(&self.conn);
        let n = conn
            .execute(
                "DELETE FROM session WHERE token_hash = ?1",
                params![token_hash],
            )
            .map_err(self.err("logout"))?;
        Ok(n > 0)
    }

    fn end_sessions(&self, username: &str) -> Result<usize, AuthError> {
        let conn = lock(&self.conn);
        conn.execute("DELETE FROM session WHERE username = ?1", params![username])
            .map_err(self.err("revoke sessions"))
    }

    fn purge(&self, now_ms: i64, window_ms: i64) -> Result<Purged, AuthError> {
        let err = self.err("purge");
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let sessions = tx
            .execute(
                "DELETE FROM session WHERE expires_ms <= ?1",
                params![now_ms],
            )
            .map_err(&err)?;
        let login_attempts = tx
            .execute(
                "DELETE FROM login_attempt
                 WHERE locked_until_ms <= ?1 AND window_start_ms + ?2 <= ?1",
                params![now_ms, window_ms],
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Purged {
            sessions,
            login_attempts,
        })
    }

    fn append_audit(&self, row: &NewAudit<'_>) -> Result<i64, AuthError> {
        let conn = lock(&self.conn);
        conn.execute(
            "INSERT INTO audit (at_ms, actor, tenant, action, target, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.at_ms,
                row.actor,
                row.tenant,
                row.action,
                row.target,
                row.detail_json
            ],
        )
        .map_err(self.err("audit"))?;
        Ok(conn.last_insert_rowid())
    }

    fn audit_log(
        &self,
        tenant: Option<&str>,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<RawAudit>, AuthError> {
        let err = self.err("audit log");
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at_ms, actor, tenant, action, target, detail_json FROM audit
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![tenant, before_id, limit], |r| {
                Ok(RawAudit {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    actor: r.get(2)?,
                    tenant: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    detail_json: r.get(6)?,
                })
            })
            .map_err(&err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err);
        rows
    }
}
