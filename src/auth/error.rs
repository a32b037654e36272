//! Authentication and authorisation errors.
//!
//! Each variant maps to one HTTP status ([`AuthError::status`]) and one
//! stable machine-readable code ([`AuthError::code`]) for the API's error
//! body. Internal failures (SQLite, PostgreSQL, a corrupt row, the RNG)
//! name the database (the SQLite file, or PostgreSQL's `host:port/database
//! as user`, never a password) and the row at fault in their `Display`, for
//! the log; the client only ever sees `internal` and
//! [`AuthError::public_message`].
//!
//! Login never says *why* credentials were refused: an unknown user, a
//! wrong password and a disabled account are all [`AuthError::Unauthorized`]
//! with the same message, so the API does not reveal which usernames exist.

use std::path::PathBuf;

use crate::store::pg::PgError;

/// An authentication or authorisation failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad credentials (unknown user, wrong password, disabled account) or
    /// an unknown, revoked or malformed token. Deliberately uninformative.
    #[error("invalid credentials")]
    Unauthorized,
    /// The token was valid but its session has expired: log in again.
    #[error("session expired")]
    Expired,
    /// Authenticated, but the role or tenant does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many failed logins for this username: retry after the delay.
    #[error("too many failed logins; retry in {} s", retry_after_secs(*.retry_after_ms))]
    Locked {
        /// Milliseconds until a login may be tried again.
        retry_after_ms: i64,
    },
    /// Invalid input: a malformed username, a weak password, a bad PHC
    /// string, an agent without an agent id…
    #[error("{0}")]
    BadRequest(String),
    /// The user (or other named object) does not exist. Never returned by
    /// login.
    #[error("{0}")]
    NotFound(String),
    /// The change collides with existing data (e.g. an agent id already
    /// bound to another user of the tenant).
    #[error("{0}")]
    Conflict(String),
    /// SQLite failed.
    #[error("{path}: auth {op}: {source}")]
    Sqlite {
        /// Database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed or could not be reached (the error names the
    /// database).
    #[error("auth {op}: {source}")]
    Postgres {
        /// What the store was doing.
        op: &'static str,
        /// The client's or server's error.
        source: PgError,
    },
    /// The database was written by a newer hotline.
    #[error("{database}: auth schema version {found} is newer than this hotline's {supported}")]
    SchemaTooNew {
        /// The database file, or PostgreSQL's `host:port/database as user`.
        database: String,
        /// `user_version` found.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
    /// A row holds a value this build cannot read (edited by hand?).
    #[error("{database}: table {table}, row {key:?}: {message}")]
    Corrupt {
        /// The database file, or PostgreSQL's `host:port/database as user`.
        database: String,
        /// Table at fault.
        table: &'static str,
        /// Primary key of the row at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Hashing or the system RNG failed.
    #[error("password hashing: {0}")]
    Crypto(String),
    /// A store call on the blocking pool did not finish (panicked or
    /// cancelled).
    #[error("auth store task failed: {0}")]
    Task(String),
}

fn retry_after_secs(ms: i64) -> i64 {
    // Round up: "retry in 0 s" while still locked would be a lie.
    ms.max(0).saturating_add(999) / 1000
}

impl AuthError {
    /// HTTP status for the API's error response.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unauthorized | AuthError::Expired => 401,
            AuthError::Forbidden(_) => 403,
            AuthError::Locked { .. } => 429,
            AuthError::BadRequest(_) => 400,
            AuthError::NotFound(_) => 404,
            AuthError::Conflict(_) => 409,
            AuthError::Sqlite { .. }
            | AuthError::Postgres { .. }
            | AuthError::SchemaTooNew { .. }
            | AuthError::Corrupt { .. }
            | AuthError::Crypto(_)
            | AuthError::Task(_) => 500,
        }
    }

    /// Stable machine-readable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unauthorized => "unauthorized",
            AuthError::Expired => "token_expired",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::Locked { .. } => "locked",
            AuthError::BadRequest(_) => "bad_request",
            AuthError::NotFound(_) => "not_found",
            AuthError::Conflict(_) => "conflict",
            AuthError::Sqlite { .. }
            | AuthError::Postgres { .. }
            | AuthError::SchemaTooNew { .. }
            | AuthError::Corrupt { .. }
            | AuthError::Crypto(_)
            | AuthError::Task(_) => "internal",
        }
    }

    /// Seconds for a `Retry-After` header ([`AuthError::Locked`] only).
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            AuthError::Locked { retry_after_ms } => Some(retry_after_secs(*retry_after_ms)),
            _ => None,
        }
    }

    /// A 5xx: log it with its `Display`; the client gets no details.
    pub fn is_internal(&self) -> bool {
        self.status() >= 500
    }

    /// The message safe to show a client: the `Display` text, except for
    /// internal errors, whose paths and SQL details stay in the log.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "internal error".to_owned()
        } else {
            self.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<AuthError> {
        vec![
            AuthError::Unauthorized,
            AuthError::Expired,
            AuthError::Forbidden("x".into()),
            AuthError::Locked {
                retry_after_ms: 1500,
            },
            AuthError::BadRequest("x".into()),
            AuthError::NotFound("x".into()),
            AuthError::Conflict("x".into()),
            AuthError::Sqlite {
                path: "/var/lib/hotline/auth.db".into(),
                op: "login",
                source: rusqlite::Error::QueryReturnedNoRows,
            },
            AuthError::Postgres {
                op: "login",
                source: PgError::Stopped("db:5432/h as u".into()),
            },
            AuthError::SchemaTooNew {
                database: "a.db".into(),
                found: 9,
                supported: 1,
            },
            AuthError::Corrupt {
                database: "a.db".into(),
                table: "user",
                key: "bob".into(),
                message: "bad role".into(),
            },
            AuthError::Crypto("rng".into()),
            AuthError::Task("cancelled".into()),
        ]
    }

    #[test]
    fn statuses_and_codes_are_stable() {
        let got: Vec<(u16, &str)> = all().iter().map(|e| (e.status(), e.code())).collect();
        assert_eq!(
            got,
            vec![
                (401, "unauthorized"),
                (401, "token_expired"),
                (403, "forbidden"),
                (429, "locked"),
                (400, "bad_request"),
                (404, "not_found"),
                (409, "conflict"),
                (500, "internal"),
                (500, "internal"),
                (500, "internal"),
                (500, "internal"),
                (500, "internal"),
                (500, "internal"),
            ]
        );
    }

    #[test]
    fn internal_details_stay_out_of_the_public_message() {
        for e in all() {
            if e.is_internal() {
                assert_eq!(e.public_message(), "internal error");
            } else {
                assert_eq!(e.public_message(), e.to_string());
            }
        }
        let sqlite = &all()[7];
        assert!(sqlite.to_string().contains("/var/lib/hotline/auth.db"));
    }

    #[test]
    fn retry_after_rounds_up() {
        let locked = |ms| AuthError::Locked { retry_after_ms: ms };
        assert_eq!(locked(1500).retry_after_secs(), Some(2));
        assert_eq!(locked(1000).retry_after_secs(), Some(1));
        assert_eq!(locked(1).retry_after_secs(), Some(1));
        assert_eq!(
            locked(1).to_string(),
            "too many failed logins; retry in 1 s"
        );
        assert_eq!(AuthError::Unauthorized.retry_after_secs(), None);
    }
}
