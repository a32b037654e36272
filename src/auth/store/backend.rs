//! What one database of the auth store does ([`Backend`]): the reads and
//! the transactions, each a method, over plain rows. Validation, hashing,
//! tokens and the building of principals stay in [`super::AuthStore`], so
//! the SQLite and the PostgreSQL backend cannot differ in them; the one
//! decision both make inside a transaction, the next failed-login counter,
//! is [`next_attempt`].

use super::{LockoutPolicy, Purged, Upserted};
use crate::auth::AuthError;

/// The credentials and identity of a user, for login.
pub(super) struct Account {
    pub password_hash: String,
    pub disabled: bool,
    pub role: String,
    pub tenant: String,
    pub agent_id: Option<String>,
}

/// A user row as listed (no hash).
pub(super) struct RawUser {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub tenant: String,
    pub agent_id: Option<String>,
    pub disabled: bool,
    pub created_ms: i64,
}

/// A validated user to create or replace.
#[derive(Clone)]
pub(super) struct UserWrite {
    /// Lower case.
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub tenant: String,
    pub agent_id: Option<String>,
    /// `None`: keep the stored hash (an existing user whose credential is
    /// unchanged).
    pub new_hash: Option<String>,
    pub disabled: bool,
    pub now_ms: i64,
}

/// A verified login to record.
#[derive(Clone)]
pub(super) struct NewSession {
    pub username: String,
    /// The hash the password was verified against: the session is refused
    /// if the user's hash changed (or it was disabled) meanwhile.
    pub verified_hash: String,
    /// A rehash with the current parameters to store.
    pub upgraded_hash: Option<String>,
    pub token_hash: String,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Why [`Backend::start_session`] refused.
pub(super) enum SessionRefused {
    /// The user changed, was disabled or deleted meanwhile.
    UserChanged,
    /// Locked out meanwhile, until then.
    Locked(i64),
}

/// A session and its user's current row.
pub(super) struct SessionRow {
    pub expires_ms: i64,
    pub last_seen_ms: i64,
    pub username: String,
    pub role: String,
    pub tenant: String,
    pub agent_id: Option<String>,
    pub disabled: bool,
}

/// An audit row to append.
pub(super) struct NewAudit<'a> {
    pub at_ms: i64,
    pub actor: &'a str,
    pub tenant: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail_json: String,
}

/// An audit row as stored.
pub(super) struct RawAudit {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub tenant: String,
    pub action: String,
    pub target: String,
    pub detail_json: String,
}

/// A username's failed-login counter: `(window_start_ms, failures,
/// locked_until_ms)`.
pub(super) type Attempt = (i64, i64, i64);

/// The counter after one more failure at `now_ms`, given the stored one.
pub(super) fn next_attempt(row: Option<Attempt>, now_ms: i64, policy: LockoutPolicy) -> Attempt {
    let (window_start, failures, locked_until) = match row {
        // Locked meanwhile by a concurrent failure: stays as it is.
        Some(row @ (_, _, until)) if until > now_ms => return row,
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
    (window_start, failures, locked_until)
}

/// A user's stored row, before an update.
pub(super) struct Current {
    pub display_name: String,
    pub role: String,
    pub tenant: String,
    pub agent_id: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
}

/// What an update of an existing user writes.
pub(super) struct Change {
    /// The hash to store (the new one, or the stored one kept).
    pub hash: String,
    /// The hash or tenant changed, or the user is disabled.
    pub end_sessions: bool,
}

impl Current {
    /// `None` if `w` changes nothing.
    pub(super) fn change(self, w: &UserWrite) -> Option<Change> {
        let hash = w.new_hash.clone().unwrap_or(self.password_hash.clone());
        let same = self.display_name == w.display_name
            && self.role == w.role
            && self.tenant == w.tenant
            && self.agent_id == w.agent_id
            && hash == self.password_hash
            && self.disabled == w.disabled;
        if same {
            return None;
        }
        let end_sessions = hash != self.password_hash || self.tenant != w.tenant || w.disabled;
        Some(Change { hash, end_sessions })
    }
}

/// `conflict`: the agent id is another user's.
pub(super) fn agent_taken(agent_id: &str, tenant: &str, holder: &str) -> AuthError {
    AuthError::Conflict(format!(
        "agent {agent_id:?} of tenant {tenant:?} already belongs to user {holder:?}"
    ))
}

/// `conflict`: the user was deleted between the read and the write.
pub(super) fn deleted_meanwhile(username: &str) -> AuthError {
    AuthError::Conflict(format!("user {username:?} was deleted meanwhile; retry"))
}

/// One database of the auth store. Each method is one statement or one
/// transaction; errors name the database.
pub(super) trait Backend: Send + Sync {
    /// The database, for messages: the SQLite file or PostgreSQL's
    /// `host:port/database as user`.
    fn name(&self) -> &str;

    /// The account of `username` (lower case), if any.
    fn account(&self, username: &str) -> Result<Option<Account>, AuthError>;
    /// One user row.
    fn user(&self, username: &str) -> Result<Option<RawUser>, AuthError>;
    /// Users of `tenant` (all for `None`), by tenant then username.
    fn list_users(&self, tenant: Option<&str>) -> Result<Vec<RawUser>, AuthError>;
    /// Create or replace a user in one transaction: `conflict` if its agent
    /// id belongs to another user of the tenant, or if it was created or
    /// deleted meanwhile; ends its sessions when its hash or tenant changed
    /// or it is disabled.
    fn write_user(&self, w: &UserWrite) -> Result<Upserted, AuthError>;
    /// Delete a user and its sessions; whether it existed.
    fn delete_user(&self, username: &str) -> Result<bool, AuthError>;

    /// Until when `username` is locked out (if it has a counter).
    fn locked_until(&self, username: &str) -> Result<Option<i64>, AuthError>;
    /// Count one failure ([`next_attempt`], atomically); the new
    /// `locked_until_ms` (0: not locked).
    fn record_failure(
        &self,
        username: &str,
        now_ms: i64,
        policy: LockoutPolicy,
    ) -> Result<i64, AuthError>;
    /// In one transaction: check the user is unchanged and not locked,
    /// reset its counter, store an upgraded hash, insert the session.
    fn start_session(&self, s: &NewSession) -> Result<Result<(), SessionRefused>, AuthError>;
    /// The session of a token hash with its user's current row.
    fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, AuthError>;
    /// Set a session's `last_seen_ms`.
    fn touch_session(&self, token_hash: &str, now_ms: i64) -> Result<(), AuthError>;
    /// Delete one session; whether it existed.
    fn end_session(&self, token_hash: &str) -> Result<bool, AuthError>;
    /// Delete every session of a user; how many.
    fn end_sessions(&self, username: &str) -> Result<usize, AuthError>;
    /// Delete expired sessions and finished counters.
    fn purge(&self, now_ms: i64, window_ms: i64) -> Result<Purged, AuthError>;

    /// Append an audit row; its id.
    fn append_audit(&self, row: &NewAudit<'_>) -> Result<i64, AuthError>;
    /// Audit rows newest first (see `AuthStore::audit_log`).
    fn audit_log(
        &self,
        tenant: Option<&str>,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<RawAudit>, AuthError>;
}
