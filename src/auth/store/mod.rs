//! Users, sessions, login throttling and the audit log, in SQLite
//! (`[data] dir`/auth.db) or, when `[store] url` names one, in the shared
//! PostgreSQL database (issue 15 §1: "everything hotline persists goes
//! through one store interface with the embedded SQLite backend and a
//! PostgreSQL backend"), so that a token issued by one node is accepted by
//! every other and users, lockouts and the audit log are shared.
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
//! # Backends
//! [`AuthStore::open`]: its own SQLite file (it owns `user_version`;
//! opening and schema: `store::sqlite`). [`AuthStore::connect`]: tables
//! prefixed `auth_` in the store's PostgreSQL database, with their own
//! migration table (`auth_migration`) and advisory lock; every
//! read-then-write is one transaction holding the rows it read, so nodes
//! logging in and out at once stay correct. [`AuthStore::configured`]
//! chooses as `[store] url` says. Both pass the same tests (`auth::tests`).
//!
//! Files: this one has the types, opening and the checks of names;
//! [`users`](self::users) the user rows, [`sessions`](self::sessions)
//! login, tokens and the lockout, [`audit`](self::audit) the audit log —
//! the rules, the same for both backends; [`backend`](self::backend) what
//! a database does, [`sqlite`](self::sqlite) and
//! [`postgres`](self::postgres) doing it.

mod audit;
mod backend;
mod postgres;
mod sessions;
mod sqlite;
mod users;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::password;
use super::principal::ALL_TENANTS;
use super::{AuthError, Principal, Role};
use backend::Backend;
use postgres::Shared;
use sqlite::Embedded;

/// Schema version stored in `PRAGMA user_version` of `auth.db` (the schema:
/// `store::sqlite::auth_schema`).
pub const SCHEMA_VERSION: i64 = crate::store::sqlite::AUTH.version();

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
    db: Box<dyn Backend>,
    /// The SQLite file (`None` on PostgreSQL).
    path: Option<PathBuf>,
    lockout: LockoutPolicy,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("database", &self.db.name())
            .field("lockout", &self.lockout)
            .finish()
    }
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
impl AuthStore {
    /// Open (creating) the auth database at `path` (SQLite).
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        Ok(Self::with(Box::new(Embedded::open(path)?), Some(path)))
    }

    /// A private in-memory store (tests, `hotline` without a data dir).
    pub fn open_in_memory() -> Result<Self, AuthError> {
        Ok(Self::with(
            Box::new(Embedded::open_in_memory()?),
            Some(Path::new(":memory:")),
        ))
    }

    /// Connect to the shared PostgreSQL database at `url` (the store's,
    /// `[store] url`) and bring the auth tables up to date; fails if the
    /// server cannot be reached now.
    pub fn connect(url: &str) -> Result<Self, AuthError> {
        Ok(Self::with(Box::new(Shared::connect(url)?), None))
    }

    /// The store `[store]` and `[data]` name: PostgreSQL when a URL is
    /// set, else `dir/auth.db`.
    pub fn configured(url: Option<&str>, dir: &Path) -> Result<Self, AuthError> {
        match url {
            Some(url) => Self::connect(url),
            None => Self::open(&dir.join("auth.db")),
        }
    }

    fn with(db: Box<dyn Backend>, path: Option<&Path>) -> Self {
        password::warm_up();
        Self {
            db,
            path: path.map(Path::to_path_buf),
            lockout: LockoutPolicy::default(),
        }
    }

    /// Replace the login lockout policy (default 5 failures in 5 min lock
    /// for 5 min).
    pub fn with_lockout(mut self, lockout: LockoutPolicy) -> Self {
        self.lockout = lockout;
        self
    }

    /// The SQLite file (`:memory:` for an in-memory store); `None` on
    /// PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The database, for messages: the SQLite file or PostgreSQL's
    /// `host:port/database as user` (never a password).
    pub fn database(&self) -> &str {
        self.db.name()
    }

    fn corrupt(&self, table: &'static str, key: &str, message: String) -> AuthError {
        AuthError::Corrupt {
            database: self.db.name().to_owned(),
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
}
