//! The PostgreSQL store's schema and its migrations: migration `i` brings
//! the schema from version `i` to `i + 1`; `store_migration` holds one row
//! per migration applied (`store::pg::migrate`).
//!
//! The tables mirror the embedded store's (`store::embedded`); times are
//! Unix seconds or milliseconds in `BIGINT`s, as there. Two more, for
//! several nodes (docs/ha.md §4): each leg's `owner` (the node that must
//! close it), and `node`, each node's last heartbeat by the database's
//! clock.

use postgres::Client;

use crate::store::pg::{self, PgError};

/// The advisory lock key of migrations ("hotline" in ASCII).
const MIGRATION_LOCK: i64 = 0x0068_6f74_6c69_6e65;

const V1: &str = "
CREATE TABLE registration (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,
    source     TEXT NOT NULL,
    transport  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    call_id    TEXT NOT NULL,
    cseq       BIGINT NOT NULL,
    q          DOUBLE PRECISION,
    PRIMARY KEY (aor, contact)
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE blacklist (
    tenant     TEXT NOT NULL,
    number     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (tenant, number)
);
CREATE TABLE roster (
    kind       TEXT NOT NULL CHECK (kind IN ('agent', 'group')),
    key        TEXT NOT NULL,
    body       TEXT,
    origin     TEXT NOT NULL CHECK (origin IN ('config', 'api')),
    seed       TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE acd_agent (
    agent         TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    reason        TEXT,
    since_ms      BIGINT NOT NULL,
    idle_since_ms BIGINT NOT NULL,
    acw_until_ms  BIGINT,
    acw_group     TEXT,
    event_seq     BIGINT NOT NULL,
    day           TEXT NOT NULL
);
CREATE TABLE acd_group (
    group_id TEXT PRIMARY KEY,
    counters TEXT NOT NULL
);
CREATE TABLE acd_callback (
    acd_call    BIGINT PRIMARY KEY,
    group_id    TEXT NOT NULL,
    caller      TEXT NOT NULL,
    number      TEXT NOT NULL,
    priority    SMALLINT NOT NULL,
    arrived_ms  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    retry_at_ms BIGINT
);
CREATE TABLE acd_missed (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    acd_call       BIGINT NOT NULL UNIQUE,
    caller         TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    arrived_ms     BIGINT NOT NULL,
    at_ms          BIGINT NOT NULL,
    place          TEXT NOT NULL,
    called_back_ms BIGINT
);
CREATE TABLE acd_served (
    caller TEXT PRIMARY KEY,
    agent  TEXT NOT NULL,
    at_ms  BIGINT NOT NULL
);
CREATE TABLE acd_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE dialog_leg (
    key           TEXT PRIMARY KEY,
    call_id       TEXT NOT NULL,
    local_tag     TEXT NOT NULL,
    remote_tag    TEXT NOT NULL,
    role          TEXT NOT NULL,
    local_party   TEXT NOT NULL,
    remote_party  TEXT NOT NULL,
    remote_target TEXT NOT NULL,
    route_set     TEXT NOT NULL,
    local_contact TEXT,
    local_cseq    BIGINT NOT NULL,
    owner         TEXT NOT NULL
);
CREATE INDEX dialog_leg_owner ON dialog_leg (owner);
CREATE TABLE node (
    id      TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
";

/// Bindings keep the `Path` they were registered through (RFC 3327 §5.3),
/// one URI per line.
const V2: &str = "ALTER TABLE registration ADD COLUMN path TEXT NOT NULL DEFAULT ''";

/// Each node's HTTP API base URL, beside its heartbeat: another node
/// fetches a recording from the node that made it.
const V3: &str = "ALTER TABLE node ADD COLUMN http TEXT NOT NULL DEFAULT ''";

/// The ACD leader's lease and the blocks of call ids the nodes number
/// their calls from (docs/ha.md §3, `lease`).
const V4: &str = "
CREATE TABLE acd_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE acd_call_block START 1;
";

/// Every accepted IVR flow version (issue 18 §4, `store::flows`).
const V5: &str = "
CREATE TABLE flow_version (
    name     TEXT NOT NULL,
    version  TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    content  TEXT NOT NULL,
    saved_at BIGINT NOT NULL,
    saved_by TEXT NOT NULL,
    live_at  BIGINT NOT NULL,
    live_by  TEXT NOT NULL,
    live_seq BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
";

/// A callback's own most attempts (a follow-up campaign's), and the
/// follow-up campaigns (issue 18 §3, `store::campaigns`).
const V6: &str = "
ALTER TABLE acd_callback ADD COLUMN max_attempts INTEGER;
CREATE TABLE campaign (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    active     BOOLEAN NOT NULL,
    body       TEXT NOT NULL
);
";

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// Bring the database to this build's schema.
pub fn migrate(client: &mut Client, target: &str) -> Result<(), PgError> {
    pg::migrate(
        client,
        target,
        "store",
        "store_migration",
        MIGRATION_LOCK,
        MIGRATIONS,
    )
}
