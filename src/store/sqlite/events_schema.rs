//! The schema of `events.db`, the event outbox and the call records
//! (`events::outbox`, read by `records::store`): version 1 the outbox
//! (events, sinks, deliveries), version 2 the records' indexes.

use super::Schema;

/// Version 2: the events are also the call records (issue 7 §4), so they
/// get the indexes the records API and the restart repair query by: a
/// call's events, and `call.ended` by tenant + start time and by caller
/// (partial expression indexes: queries must use the same expressions).
const V2: &str = "
CREATE INDEX IF NOT EXISTS outbox_event_call ON outbox_event (call_id, seq);
CREATE INDEX IF NOT EXISTS call_ended_tenant_started ON outbox_event (
    json_extract(body, '$.tenant'), json_extract(body, '$.data.started_at')
) WHERE kind = 'call.ended';
CREATE INDEX IF NOT EXISTS call_ended_caller ON outbox_event (
    json_extract(body, '$.data.caller')
) WHERE kind = 'call.ended';
";

const V1: &str = "
CREATE TABLE IF NOT EXISTS outbox_event (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    call_id TEXT,
    kind    TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_sink (
    name      TEXT PRIMARY KEY,
    delivered INTEGER NOT NULL DEFAULT 0
);
-- One row per (sink, undelivered event). state: 0 pending, 2 dead letter.
CREATE TABLE IF NOT EXISTS outbox_delivery (
    sink       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    call_id    TEXT,
    state      INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    replays    INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead_at_ms INTEGER,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_delivery_call
    ON outbox_delivery (sink, call_id, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS outbox_delivery_due
    ON outbox_delivery (sink, state, next_at_ms);
";

/// `events.db` (it owns `user_version`).
pub const EVENTS: Schema = Schema {
    migrations: &[V1, V2],
    foreign_keys: false,
};
