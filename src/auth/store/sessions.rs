//! Logins, bearer tokens and their sessions, the login lockout, logout,
//! revocation and the purge of expired sessions.

use rand::rngs::OsRng;
use rand::TryRngCore;

use super::backend::{NewSession, SessionRefused};
use super::{
    is_token_shaped, normalize_username, token_hash, AuthStore, Login, Purged, Token,
    LAST_SEEN_RESOLUTION_MS, TOKEN_BYTES,
};
use crate::auth::{password, AuthError, Principal};

impl AuthStore {
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
        let account = self.db.account(&username)?;
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

        // The user may have been disabled, had its password changed or been
        // locked out while we were hashing: checked again in the transaction.
        let refused = self.db.start_session(&NewSession {
            username: principal.user.clone(),
            verified_hash: account.password_hash,
            upgraded_hash: upgraded,
            token_hash: token_hash(&token),
            now_ms,
            expires_ms,
        })?;
        match refused {
            Ok(()) => Ok(Login {
                token: Token(token),
                principal,
                expires_ms,
            }),
            Err(SessionRefused::UserChanged) => Err(AuthError::Unauthorized),
            Err(SessionRefused::Locked(until)) => Err(AuthError::Locked {
                retry_after_ms: until - now_ms,
            }),
        }
    }

    fn check_not_locked(&self, username: &str, now_ms: i64) -> Result<(), AuthError> {
        match self.db.locked_until(username)? {
            Some(until) if until > now_ms => Err(AuthError::Locked {
                retry_after_ms: until - now_ms,
            }),
            _ => Ok(()),
        }
    }

    /// Count a failed login; the error to return: `Unauthorized`, or
    /// `Locked` when this failure reached the limit (or another had).
    fn record_failure(&self, username: &str, now_ms: i64) -> Result<AuthError, AuthError> {
        let locked_until = self.db.record_failure(username, now_ms, self.lockout)?;
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
        let Some(row) = self.db.session(&hash)? else {
            return Err(AuthError::Unauthorized);
        };
        if row.disabled {
            return Err(AuthError::Unauthorized);
        }
        if now_ms >= row.expires_ms {
            return Err(AuthError::Expired);
        }
        if now_ms.saturating_sub(row.last_seen_ms) >= LAST_SEEN_RESOLUTION_MS {
            self.db.touch_session(&hash, now_ms)?;
        }
        self.principal(row.username, &row.role, row.tenant, row.agent_id)
    }

    /// End the session of `token`; `false` if there was none (logging out
    /// twice is not an error).
    pub fn logout(&self, token: &str) -> Result<bool, AuthError> {
        if !is_token_shaped(token) {
            return Ok(false);
        }
        self.db.end_session(&token_hash(token))
    }

    /// End every session of a user (an admin's "log out everywhere");
    /// returns how many there were.
    pub fn revoke_sessions(&self, username: &str) -> Result<usize, AuthError> {
        let username = normalize_username(username)?;
        self.db.end_sessions(&username)
    }

    /// Delete expired sessions and finished failed-login counters. Run it
    /// now and then (e.g. hourly); correctness never depends on it.
    pub fn purge_expired(&self, now_ms: i64) -> Result<Purged, AuthError> {
        self.db.purge(now_ms, self.lockout.window_ms)
    }
}
