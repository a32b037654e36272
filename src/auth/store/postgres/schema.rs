//! The auth tables in the shared PostgreSQL database and their
//! migrations: migration `i` brings them from version `i` to `i + 1`;
//! `auth_migration` holds one row per migration applied
//! (`store::pg::migrate`, under an advisory lock of their own).
//!
//! The tables mirror `auth.db`'s (`store::sqlite::auth_schema`), prefixed
//! `auth_` so they live beside the store's (`registration`, `meta`,
//! `acd_*`, …) and the events outbox's in one database (and because `user`
//! is a reserved word in PostgreSQL). Times are Unix milliseconds in
//! `BIGINT`s, as there. A trigger makes `auth_audit` append-only.

use crate::store::pg::{self, Client, PgError};

/// The advisory lock key of these migrations ("hotauth" in ASCII), not the
/// store's.
const MIGRATION_LOCK: i64 = 0x0068_6f74_6175_7468;

/// The table recording applied migrations.
pub(super) const MIGRATION_TABLE: &str = "auth_migration";

const V1: &str = "
CREATE TABLE auth_user (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    tenant        TEXT NOT NULL,
    agent_id      TEXT,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms    BIGINT NOT NULL
);
-- One user per agent of a tenant.
CREATE UNIQUE INDEX auth_user_agent
    ON auth_user (tenant, agent_id) WHERE agent_id IS NOT NULL;
CREATE TABLE auth_session (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES auth_user (username) ON DELETE CASCADE,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX auth_session_user ON auth_session (username);
CREATE INDEX auth_session_expiry ON auth_session (expires_ms);
-- Failed logins per username as typed (existing or not).
CREATE TABLE auth_login_attempt (
    username        TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE auth_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX auth_audit_tenant ON auth_audit (tenant, id);
CREATE FUNCTION auth_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only';
END
$$;
CREATE TRIGGER auth_audit_no_change BEFORE UPDATE OR DELETE ON auth_audit
    FOR EACH ROW EXECUTE FUNCTION auth_audit_append_only();
CREATE TRIGGER auth_audit_no_truncate BEFORE TRUNCATE ON auth_audit
    FOR EACH STATEMENT EXECUTE FUNCTION auth_audit_append_only();
";

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[V1];

/// Bring the auth tables to this build's schema.
pub(super) fn migrate(client: &mut Client, target: &str) -> Result<(), PgError> {
    pg::migrate(
        client,
        target,
        "auth",
        MIGRATION_TABLE,
        MIGRATION_LOCK,
        MIGRATIONS,
    )
}
