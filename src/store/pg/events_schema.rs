//! The PostgreSQL schema of the event outbox and the call records
//! (`events::outbox`, read by `records::store`; issue 15 §1), the twin of
//! `store::sqlite::events_schema`: migration `i` brings it from version
//! `i` to `i + 1`; `events_migration` holds one row per migration applied.
//!
//! It lives in the store's database beside the store's tables, so every
//! name starts with `outbox_`. The bodies are `json` (the text as
//! appended, byte for byte, which the sinks deliver and sign), with the
//! records' partial expression indexes over them; queries must use the
//! very same expressions (`records::store`). Start times compare in the
//! "C" collation, as SQLite compares text.

use super::{migrate as run_migrations, Client, PgError};

/// The advisory lock key of the events migrations ("outbox" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f75_7462_6f78;

/// The table of applied migrations.
pub const MIGRATION_TABLE: &str = "events_migration";

const V1: &str = r#"
CREATE TABLE outbox_event (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    call_id TEXT,
    kind    TEXT NOT NULL,
    body    JSON NOT NULL,
    -- The node that appended it (docs/ha.md §4): a node's start closes
    -- only its own cut-off calls, a survivor those of the node it took over.
    node    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_event_call ON outbox_event (call_id, seq);
CREATE INDEX outbox_call_ended_tenant_started ON outbox_event (
    (body ->> 'tenant'), (body -> 'data' ->> 'started_at') COLLATE "C"
) WHERE kind = 'call.ended';
CREATE INDEX outbox_call_ended_caller ON outbox_event (
    (body -> 'data' ->> 'caller')
) WHERE kind = 'call.ended';
CREATE TABLE outbox_sink (
    name      TEXT PRIMARY KEY,
    delivered BIGINT NOT NULL DEFAULT 0
);
-- One row per (sink, undelivered event). state: 0 pending, 2 dead letter.
CREATE TABLE outbox_delivery (
    sink       TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    call_id    TEXT,
    state      BIGINT NOT NULL DEFAULT 0,
    attempts   BIGINT NOT NULL DEFAULT 0,
    replays    BIGINT NOT NULL DEFAULT 0,
    next_at_ms BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    dead_at_ms BIGINT,
    PRIMARY KEY (sink, seq)
);
-- The head of a call (next batch). The other indexes match no query this
-- one serves, so the planner takes it even before the tables have
-- statistics (a new database under a burst).
CREATE INDEX outbox_delivery_call
    ON outbox_delivery (sink, call_id, seq) WHERE state = 0;
CREATE INDEX outbox_delivery_retry
    ON outbox_delivery (next_at_ms) WHERE state = 0;
CREATE INDEX outbox_delivery_dead
    ON outbox_delivery (sink, seq) WHERE state = 2;
-- A queue: rows come and go all the time; keep its statistics fresh.
ALTER TABLE outbox_delivery SET (
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05
);
"#;

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[V1];

/// Bring the database to this build's events schema.
pub fn migrate(client: &mut Client, target: &str) -> Result<(), PgError> {
    run_migrations(
        client,
        target,
        "events",
        MIGRATION_TABLE,
        MIGRATION_LOCK,
        MIGRATIONS,
    )
}
