//! Logins, bearer tokens and their sessions, the login lockout, logout,
//! revocation and the purge of expired sessions.

use rand::rngs::OsRng;
use rand::TryRngCore;
use rusqlite::{params, OptionalExtension};

use super::{
    is_token_shaped, lock, normalize_username, token_hash, AuthStore, Login, Purged, Token,
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
}
