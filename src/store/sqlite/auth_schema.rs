//! The schema of `auth.db` (`auth::store`): API users, login sessions,
//! failed logins, the append-only audit log.

use super::Schema;

const V1: &str = "
CREATE TABLE IF NOT EXISTS user (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    tenant        TEXT NOT NULL,
    agent_id      TEXT,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);
-- One user per agent of a tenant.
CREATE UNIQUE INDEX IF NOT EXISTS user_agent
    ON user (tenant, agent_id) WHERE agent_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS session (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES user (username) ON DELETE CASCADE,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_user ON session (username);
CREATE INDEX IF NOT EXISTS session_expiry ON session (expires_ms);
-- Failed logins per username as typed (existing or not).
CREATE TABLE IF NOT EXISTS login_attempt (
    username        TEXT PRIMARY KEY,
    window_start_ms INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
";

/// `auth.db` (it owns `user_version`; sessions cascade with their user).
pub const AUTH: Schema = Schema {
    migrations: &[V1],
    foreign_keys: true,
};
