//! Users, sessions, login throttling and the audit log, in SQLite (WAL).
//!
//! # Users
//! Seeded from configuration or managed by admins through
//! [`AuthStore::upsert_user`]. A plain-text password is hashed
//! ([`super::password`]); a ready argon2id PHC string is accepted as is.
//! Usernames are ASCII `[A-Za-z0-9._@-]{1,64}`, stored and compared in
//! lower case (`Zhang.San` and `zhang.san` are one user), so look-alike
//! accounts cannot be created. Re-seeding the same password at every start
//! keeps the stored hash and the user's sessions (at the price of one
//! verification per user at start-up: seed `password_hash` for big sites).
//! A hash with other parameters (e.g. from the `argon2` tool) is replaced by
//! one with the current parameters at the user's next successful login.
//!
//! # Sessions
//! [`AuthStore::login`] returns a bearer token of 32 random bytes from the
//! OS RNG, hex-encoded; only its SHA-256 is stored, so a copy of the
//! database does not let anyone in. Expiry is **absolute**: a session ends
//! `ttl_ms` after login however busy it is (no sliding window: a stolen
//! token has a bounded life, and phone bars simply log in again). A token
//! is valid while `now_ms < expires_ms`; at `expires_ms` it is
//! [`AuthError::Expired`]. `last_seen_ms` is refreshed at most once a
//! minute, for "who is online". Changing a user's password or tenant,
//! disabling or deleting the user ends all of its sessions; role changes
//! apply at the next request because [`AuthStore::authenticate`] builds the
//! [`Principal`] from the current user row every time.
//!
//! # Login throttling
//! After [`LockoutPolicy::max_failures`] failed logins for one username
//! within [`LockoutPolicy::window_ms`], the username is locked for
//! [`LockoutPolicy::lock_ms`] ([`AuthError::Locked`], even with the right
//! password). Failures are counted per *username as typed*, whether or not
//! the user exists, so the lockout does not reveal which usernames exist
//! either; unknown, disabled and wrong-password logins all cost one
//! argon2 verification and all return [`AuthError::Unauthorized`] (a
//! stored hash with costlier parameters than the default verifies more
//! slowly until its first login upgrades it). (The
//! lockout lets anyone lock a known username for five minutes; that is the
//! usual price of stopping online guessing.)
//!
//! # Audit
//! [`AuthStore::audit`] appends who/what/when/target rows; triggers make
//! the table append-only. A row's tenant is the actor's (`"*"` for a global
//! admin) unless written with [`AuthStore::audit_in`].
//!
//! Time is always passed in (`now_ms`, unix milliseconds): this module
//! never reads the clock. Password hashing runs outside the connection
//! lock, but still takes tens of milliseconds: call `login` and
//! `upsert_user` from a blocking thread.
//!
//! The store lives in its own database file (it owns `user_version`;
//! opening and schema: `store::sqlite`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rand::rngs::OsRng;
use rand::TryRngCore;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::password;
use super::principal::ALL_TENANTS;
use super::{AuthError, Principal, Role};
use crate::store::sqlite::{self, MigrateError, AUTH};

/// Schema version stored in `PRAGMA user_version` (the schema:
/// `store::sqlite::auth_schema`).
pub const SCHEMA_VERSION: i64 = AUTH.version();

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 128;
/// Most audit rows returned by one [`AuthStore::audit_log`] call.
pub const MAX_AUDIT_PAGE: usize = 1000;
/// Bytes of randomness in a session token (hex-encoded: twice as many chars).
pub const TOKEN_BYTES: usize = 32;
/// `last_seen_ms` is written at most this often per session.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// How failed logins lock a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within the window that lock the username (default 5).
    pub max_failures: u32,
    /// The counting window, from the first failure (default 5 min).
    pub window_ms: i64,
    /// How long the username stays locked (default 5 min).
    pub lock_ms: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_ms: 300_000,
            lock_ms: 300_000,
        }
    }
}

/// How a new user proves who they are.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A plain-text password (from a config file or an admin's form),
    /// hashed before it is stored.
    Password(String),
    /// A ready argon2id PHC string (`$argon2id$v=19$…`), stored as is.
    PasswordHash(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, not even a hash.
        match self {
            Credential::Password(_) => f.write_str("Password(***)"),
            Credential::PasswordHash(_) => f.write_str("PasswordHash(***)"),
        }
    }
}

/// A user to create or replace ([`AuthStore::upsert_user`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// `[A-Za-z0-9._@-]{1,64}`; stored in lower case.
    pub username: String,
    /// Shown on wall-boards; at most 128 characters, no control characters.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Tenant id; `"*"` (every tenant) only for admins.
    pub tenant: String,
    /// The ACD agent this user is (required for role agent):
    /// `[A-Za-z0-9._@+-]{1,64}`, unique within the tenant.
    pub agent_id: Option<String>,
    /// Password or ready hash.
    pub credential: Credential,
    /// A disabled user cannot log in and has no sessions.
    pub disabled: bool,
    /// Skip the length rule for a plain password (seeded demo users). An
    /// empty password is refused regardless.
    pub allow_weak: bool,
}

/// What [`AuthStore::upsert_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new user.
    Created,
    /// An existing user was changed.
    Updated,
    /// The user already existed exactly so (same password too).
    Unchanged,
}

/// A user as listed (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Username (lower case).
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Tenant.
    pub tenant: String,
    /// Agent id, if bound to an agent.
    pub agent_id: Option<String>,
    /// Cannot log in.
    pub disabled: bool,
    /// Creation time, unix ms.
    pub created_ms: i64,
}

/// A bearer token. `Debug` does not print it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token, to hand to the client.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The bearer token (only its SHA-256 is stored).
    pub token: Token,
    /// Who logged in.
    pub principal: Principal,
    /// The token is valid while `now_ms < expires_ms`.
    pub expires_ms: i64,
}

/// What [`AuthStore::purge_expired`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Expired sessions.
    pub sessions: usize,
    /// Failed-login counters whose window and lock are over.
    pub login_attempts: usize,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Append order; pass the smallest seen as `before_id` for the next page.
    pub id: i64,
    /// When, unix ms.
    pub at_ms: i64,
    /// Who (username).
    pub actor: String,
    /// The tenant the action belongs to.
    pub tenant: String,
    /// What, such as `user.create` or `call.barge`.
    pub action: String,
    /// On what, such as a username, agent id or call id.
    pub target: String,
    /// Anything else, as JSON.
    pub detail: serde_json::Value,
}

/// The store. Share it as `Arc<AuthStore>`; every method takes `&self`.
pub struct AuthStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    lockout: LockoutPolicy,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("path", &self.path)
            .field("lockout", &self.lockout)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (an open
    // transaction rolls back on drop), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Validate a username and return its stored (lower-case) form.
pub fn normalize_username(username: &str) -> Result<String, AuthError> {
    if is_name(username, b"._@-") {
        Ok(username.to_ascii_lowercase())
    } else {
        Err(AuthError::BadRequest(
            "username must be 1 to 64 of A-Z a-z 0-9 . _ @ -".into(),
        ))
    }
}

/// Validate a tenant id: `[A-Za-z0-9._-]{1,64}`, or `"*"`.
pub fn validate_tenant(tenant: &str) -> Result<(), AuthError> {
    if tenant == ALL_TENANTS || is_name(tenant, b"._-") {
        Ok(())
    } else {
        Err(AuthError::BadRequest(
            "tenant must be \"*\" or 1 to 64 of A-Z a-z 0-9 . _ -".into(),
        ))
    }
}

/// Validate an agent id: `[A-Za-z0-9._@+-]{1,64}`.
pub fn validate_agent_id(agent_id: &str) -> Result<(), AuthError> {
    if is_name(agent_id, b"._@+-") {
        Ok(())
    } else {
        Err(AuthError::BadRequest(
            "agent_id must be 1 to 64 of A-Z a-z 0-9 . _ @ + -".into(),
        ))
    }
}

fn is_name(s: &str, extra: &[u8]) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn validate_display_name(name: &str) -> Result<(), AuthError> {
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(AuthError::BadRequest(format!(
            "display_name is longer than {MAX_DISPLAY_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::BadRequest(
            "display_name contains control characters".into(),
        ));
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn is_token_shaped(token: &str) -> bool {
    token.len() == 2 * TOKEN_BYTES
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The stored user row needed by login.
struct Account {
    password_hash: String,
    disabled: bool,
    role: String,
    tenant: String,
    agent_id: Option<String>,
}

impl AuthStore {
    /// Open (creating) the auth database at `path`.
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        let conn = sqlite::connect(path, sqlite::Mode::ReadWrite(sqlite::Synchronous::Normal))
            .map_err(|source| AuthError::Sqlite {
                path: path.to_path_buf(),
                op: "open",
                source,
            })?;
        Self::init(path.to_path_buf(), conn)
    }

    /// A private in-memory store (tests, `hotline` without a data dir).
    pub fn open_in_memory() -> Result<Self, AuthError> {
        let path = PathBuf::from(":memory:");
        let conn = sqlite::connect_in_memory().map_err(|source| AuthError::Sqlite {
            path: path.clone(),
            op: "open",
            source,
        })?;
        Self::init(path, conn)
    }

    fn init(path: PathBuf, conn: Connection) -> Result<Self, AuthError> {
        match sqlite::migrate(&conn, &AUTH) {
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
                    path,
                    found,
                    supported,
                })
            }
        }
        password::warm_up();
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            lockout: LockoutPolicy::default(),
        })
    }

    /// Replace the login lockout policy (default 5 failures in 5 min lock
    /// for 5 min).
    pub fn with_lockout(mut self, lockout: LockoutPolicy) -> Self {
        self.lockout = lockout;
        self
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> AuthError + '_ {
        move |source| AuthError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn corrupt(&self, table: &'static str, key: &str, message: String) -> AuthError {
        AuthError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            message,
        }
    }

    /// Build a principal from a user row, refusing rows that break the
    /// store's invariants (a hand-edited role, a non-admin in `"*"`).
    fn principal(
        &self,
        username: String,
        role: &str,
        tenant: String,
        agent_id: Option<String>,
    ) -> Result<Principal, AuthError> {
        let role: Role = role
            .parse()
            .map_err(|e: AuthError| self.corrupt("user", &username, e.to_string()))?;
        if tenant == ALL_TENANTS && role != Role::Admin {
            return Err(self.corrupt("user", &username, format!("role {role} in tenant \"*\"")));
        }
        Ok(Principal {
            user: username,
            role,
            tenant,
            agent_id,
        })
    }

    // ----- users -------------------------------------------------------

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
        .map_err(self.sqlite("read user"))
    }

    // ----- sessions ----------------------------------------------------

    /// Log in: a new session of `ttl_ms`. Every refusal of the credentials
    /// (unknown user, wrong password, disabled user, malformed username) is
    /// the same [`AuthError::Unauthorized`] after the same argon2 work;
    /// [`AuthError::Locked`] while the username is locked out.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Login, AuthError> {
        if ttl_ms <= 0 {
            return Err(AuthError::BadRequest("session ttl must be positive".into()));
        }
        let Ok(username) = normalize_username(username) else {
            // No such user can exist; spend the time anyway.
            password::dummy_verify(password);
            return Err(AuthError::Unauthorized);
        };
        self.check_not_locked(&username, now_ms)?;
        let account = self.account(&username)?;
        let verified = match &account {
            Some(a) => {
                // Verify even for a disabled user: same time, same answer.
                let ok = password::verify_password(password, &a.password_hash);
                ok && !a.disabled
            }
            None => {
                password::dummy_verify(password);
                false
            }
        };
        let Some(account) = account.filter(|_| verified) else {
            return Err(self.record_failure(&username, now_ms)?);
        };
        let principal =
            self.principal(username, &account.role, account.tenant, account.agent_id)?;
        let upgraded = if password::needs_rehash(&account.password_hash) {
            Some(password::hash_password(password)?)
        } else {
            None
        };

        let mut raw = [0u8; TOKEN_BYTES];
        OsRng
            .try_fill_bytes(&mut raw)
            .map_err(|e| AuthError::Crypto(format!("system RNG: {e}")))?;
        let token = hex::encode(raw);
        let expires_ms = now_ms.saturating_add(ttl_ms);

        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(self.sqlite("login"))?;
        // Re-read under the lock: the user may have been disabled, had its
        // password changed or been locked out while we were hashing.
        let still: Option<(String, bool)> = tx
            .query_row(
                "SELECT password_hash, disabled FROM user WHERE username = ?1",
                params![principal.user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sqlite("login"))?;
        if still != Some((account.password_hash.clone(), false)) {
            return Err(AuthError::Unauthorized);
        }
        let locked_until: Option<i64> = tx
            .query_row(
                "SELECT locked_until_ms FROM login_attempt WHERE username = ?1",
                params![principal.user],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sqlite("login"))?;
        if let Some(until) = locked_until.filter(|&until| until > now_ms) {
            return Err(AuthError::Locked {
                retry_after_ms: until - now_ms,
            });
        }
        tx.execute(
            "DELETE FROM login_attempt WHERE username = ?1",
            params![principal.user],
        )
        .map_err(self.sqlite("login"))?;
        if let Some(hash) = upgraded {
            tx.execute(
                "UPDATE user SET password_hash = ?2 WHERE username = ?1",
                params![principal.user, hash],
            )
            .map_err(self.sqlite("login"))?;
        }
        tx.execute(
            "INSERT INTO session (token_hash, username, created_ms, expires_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?3)",
            params![token_hash(&token), principal.user, now_ms, expires_ms],
        )
        .map_err(self.sqlite("login"))?;
        tx.commit().map_err(self.sqlite("login"))?;
        Ok(Login {
            token: Token(token),
            principal,
            expires_ms,
        })
    }

    fn check_not_locked(&self, username: &str, now_ms: i64) -> Result<(), AuthError> {
        let conn = lock(&self.conn);
        let until: Option<i64> = conn
            .query_row(
                "SELECT locked_until_ms FROM login_attempt WHERE username = ?1",
                params![username],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sqlite("login"))?;
        match until {
            Some(until) if until > now_ms => Err(AuthError::Locked {
                retry_after_ms: until - now_ms,
            }),
            _ => Ok(()),
        }
    }

    /// Count a failed login; the error to return: `Unauthorized`, or
    /// `Locked` when this failure reached the limit.
    fn record_failure(&self, username: &str, now_ms: i64) -> Result<AuthError, AuthError> {
        let policy = self.lockout;
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(self.sqlite("login"))?;
        let row: Option<(i64, i64, i64)> = tx
            .query_row(
                "SELECT window_start_ms, failures, locked_until_ms
                 FROM login_attempt WHERE username = ?1",
                params![username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sqlite("login"))?;
        let (window_start, failures, locked_until) = match row {
            // Locked meanwhile by a concurrent failure: stays as it is.
            Some((_, _, until)) if until > now_ms => {
                return Ok(AuthError::Locked {
                    retry_after_ms: until - now_ms,
                })
            }
            Some((start, n, until))
                if until == 0 && now_ms.saturating_sub(start) < policy.window_ms =>
            {
                (start, n.saturating_add(1), 0)
            }
            // No row, an old window, or a lock that is over: start afresh.
            _ => (now_ms, 1, 0),
        };
        let locked_until = if failures >= i64::from(policy.max_failures) {
            now_ms.saturating_add(policy.lock_ms)
        } else {
            locked_until
        };
        tx.execute(
            "INSERT INTO login_attempt (username, window_start_ms, failures, locked_until_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (username) DO UPDATE SET window_start_ms = ?2, failures = ?3,
                                                  locked_until_ms = ?4",
            params![username, window_start, failures, locked_until],
        )
        .map_err(self.sqlite("login"))?;
        tx.commit().map_err(self.sqlite("login"))?;
        Ok(if locked_until > now_ms {
            AuthError::Locked {
                retry_after_ms: locked_until - now_ms,
            }
        } else {
            AuthError::Unauthorized
        })
    }

    /// The principal of a bearer token, built from the current user row.
    /// `Unauthorized` for an unknown, revoked or malformed token or a
    /// disabled user; `Expired` from `expires_ms` on.
    pub fn authenticate(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        if !is_token_shaped(token) {
            return Err(AuthError::Unauthorized);
        }
        let hash = token_hash(token);
        let conn = lock(&self.conn);
        let row = conn
            .query_row(
                "SELECT s.expires_ms, s.last_seen_ms, u.username, u.role, u.tenant,
                        u.agent_id, u.disabled
                 FROM session s JOIN user u ON u.username = s.username
                 WHERE s.token_hash = ?1",
                params![hash],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sqlite("authenticate"))?;
        let Some((expires_ms, last_seen_ms, username, role, tenant, agent_id, disabled)) = row
        else {
            return Err(AuthError::Unauthorized);
        };
        if disabled {
            return Err(AuthError::Unauthorized);
        }
        if now_ms >= expires_ms {
            return Err(AuthError::Expired);
        }
        if now_ms.saturating_sub(last_seen_ms) >= LAST_SEEN_RESOLUTION_MS {
            conn.execute(
                "UPDATE session SET last_seen_ms = ?2 WHERE token_hash = ?1",
                params![hash, now_ms],
            )
            .map_err(self.sqlite("authenticate"))?;
        }
        drop(conn);
        self.principal(username, &role, tenant, agent_id)
    }

    /// End the session of `token`; `false` if there was none (logging out
    /// twice is not an error).
    pub fn logout(&self, token: &str) -> Result<bool, AuthError> {
        if !is_token_shaped(token) {
            return Ok(false);
        }
        let conn = lock(&self.conn);
        let n = conn
            .execute(
                "DELETE FROM session WHERE token_hash = ?1",
                params![token_hash(token)],
            )
            .map_err(self.sqlite("logout"))?;
        Ok(n > 0)
    }

    /// End every session of a user (an admin's "log out everywhere");
    /// returns how many there were.
    pub fn revoke_sessions(&self, username: &str) -> Result<usize, AuthError> {
        let username = normalize_username(username)?;
        let conn = lock(&self.conn);
        conn.execute("DELETE FROM session WHERE username = ?1", params![username])
            .map_err(self.sqlite("revoke sessions"))
    }

    /// Delete expired sessions and finished failed-login counters. Run it
    /// now and then (e.g. hourly); correctness never depends on it.
    pub fn purge_expired(&self, now_ms: i64) -> Result<Purged, AuthError> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(self.sqlite("purge"))?;
        let sessions = tx
            .execute(
                "DELETE FROM session WHERE expires_ms <= ?1",
                params![now_ms],
            )
            .map_err(self.sqlite("purge"))?;
        let login_attempts = tx
            .execute(
                "DELETE FROM login_attempt
                 WHERE locked_until_ms <= ?1 AND window_start_ms + ?2 <= ?1",
                params![now_ms, self.lockout.window_ms],
            )
            .map_err(self.sqlite("purge"))?;
        tx.commit().map_err(self.sqlite("purge"))?;
        Ok(Purged {
            sessions,
            login_attempts,
        })
    }

    // ----- audit -------------------------------------------------------

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
