//! The ACD's rows (`store::acd`) in hotline.db: one table per kind of row;
//! missed calls keep the order they were missed in by `rowid`.

use rusqlite::{params, OptionalExtension};

use super::Embedded;
use crate::store::acd::{call_of, id, DAY_START, NEXT_CALL};
use crate::store::{
    AcdAgentRow, AcdCallbackRow, AcdGroupRow, AcdMissedRow, AcdRows, AcdServedRow, AcdWrite,
    StoreError,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS acd_agent (
    agent         TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    reason        TEXT,
    since_ms      INTEGER NOT NULL,
    idle_since_ms INTEGER NOT NULL,
    acw_until_ms  INTEGER,
    acw_group     TEXT,
    event_seq     INTEGER NOT NULL,
    day           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acd_group (
    group_id TEXT PRIMARY KEY,
    counters TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acd_callback (
    call        INTEGER PRIMARY KEY,
    group_id    TEXT NOT NULL,
    caller      TEXT NOT NULL,
    number      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    arrived_ms  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    retry_at_ms INTEGER,
    max_attempts INTEGER
);
CREATE TABLE IF NOT EXISTS acd_missed (
    call           INTEGER NOT NULL UNIQUE,
    caller         TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    arrived_ms     INTEGER NOT NULL,
    at_ms          INTEGER NOT NULL,
    place          TEXT NOT NULL,
    called_back_ms INTEGER
);
CREATE TABLE IF NOT EXISTS acd_served (
    caller TEXT PRIMARY KEY,
    agent  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS acd_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

impl Embedded {
    /// Everything the ACD stored.
    pub fn load_acd(&self) -> Result<AcdRows, StoreError> {
        let conn = self.lock();
        let err = |e: rusqlite::Error| self.err(e);
        let meta = |key: &str| -> Result<Option<i64>, StoreError> {
            conn.query_row("SELECT value FROM acd_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)
        };
        let mut rows = AcdRows {
            day_start_ms: meta(DAY_START)?,
            next_call: meta(NEXT_CALL)?.map(call_of),
            ..AcdRows::default()
        };
        let mut stmt = conn
            .prepare(
                "SELECT agent, state, reason, since_ms, idle_since_ms, acw_until_ms, acw_group,
                        event_seq, day FROM acd_agent ORDER BY agent",
            )
            .map_err(err)?;
        rows.agents = stmt
            .query_map([], |r| {
                Ok(AcdAgentRow {
                    agent: r.get(0)?,
                    state: r.get(1)?,
                    reason: r.get(2)?,
                    since_ms: r.get(3)?,
                    idle_since_ms: r.get(4)?,
                    acw_until_ms: r.get(5)?,
                    acw_group: r.get(6)?,
                    event_seq: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    day: r.get(8)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut stmt = conn
            .prepare("SELECT group_id, counters FROM acd_group ORDER BY group_id")
            .map_err(err)?;
        rows.groups = stmt
            .query_map([], |r| {
                Ok(AcdGroupRow {
                    group: r.get(0)?,
                    counters: r.get(1)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut stmt = conn
            .prepare(
                "SELECT call, group_id, caller, number, priority, arrived_ms, attempts,
                        retry_at_ms, max_attempts FROM acd_callback ORDER BY call",
            )
            .map_err(err)?;
        rows.callbacks = stmt
            .query_map([], |r| {
                Ok(AcdCallbackRow {
                    call: call_of(r.get(0)?),
                    group: r.get(1)?,
                    caller: r.get(2)?,
                    number: r.get(3)?,
                    priority: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(u8::MAX),
                    arrived_ms: r.get(5)?,
                    attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    retry_at_ms: r.get(7)?,
                    max_attempts: r
                        .get::<_, Option<i64>>(8)?
                        .map(|n| u32::try_from(n).unwrap_or(1)),
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut stmt = conn
            .prepare(
                "SELECT call, caller, group_id, arrived_ms, at_ms, place, called_back_ms
                 FROM acd_missed ORDER BY rowid",
            )
            .map_err(err)?;
        rows.missed = stmt
            .query_map([], |r| {
                Ok(AcdMissedRow {
                    call: call_of(r.get(0)?),
                    caller: r.get(1)?,
                    group: r.get(2)?,
                    arrived_ms: r.get(3)?,
                    at_ms: r.get(4)?,
                    place: r.get(5)?,
                    called_back_ms: r.get(6)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let mut stmt = conn
            .prepare("SELECT caller, agent, at_ms FROM acd_served ORDER BY caller")
            .map_err(err)?;
        rows.served = stmt
            .query_map([], |r| {
                Ok(AcdServedRow {
                    caller: r.get(0)?,
                    agent: r.get(1)?,
                    at_ms: r.get(2)?,
                })
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(rows)
    }

    /// Apply `writes` in order, in one transaction.
    pub fn save_acd(&self, writes: &[AcdWrite]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for w in writes {
            match w {
                AcdWrite::Agent(a) => tx.execute(
                    "INSERT OR REPLACE INTO acd_agent (agent, state, reason, since_ms,
                        idle_since_ms, acw_until_ms, acw_group, event_seq, day)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        a.agent,
                        a.state,
                        a.reason,
                        a.since_ms,
                        a.idle_since_ms,
                        a.acw_until_ms,
                        a.acw_group,
                        i64::from(a.event_seq),
                        a.day
                    ],
                ),
                AcdWrite::Group(g) => tx.execute(
                    "INSERT OR REPLACE INTO acd_group (group_id, counters) VALUES (?1, ?2)",
                    params![g.group, g.counters],
                ),
                AcdWrite::Callback(c) => tx.execute(
                    "INSERT OR REPLACE INTO acd_callback (call, group_id, caller, number,
                        priority, arrived_ms, attempts, retry_at_ms, max_attempts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        id(c.call),
                        c.group,
                        c.caller,
                        c.number,
                        i64::from(c.priority),
                        c.arrived_ms,
                        i64::from(c.attempts),
                        c.retry_at_ms,
                        c.max_attempts.map(i64::from)
                    ],
                ),
                AcdWrite::CallbackGone(call) => tx.execute(
                    "DELETE FROM acd_callback WHERE call = ?1",
                    params![id(*call)],
                ),
                // An upsert keeps the row (and its place in the list).
                AcdWrite::Missed(m) => tx.execute(
                    "INSERT INTO acd_missed (call, caller, group_id, arrived_ms, at_ms, place,
                        called_back_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (call) DO UPDATE SET caller = excluded.caller,
                        group_id = excluded.group_id, arrived_ms = excluded.arrived_ms,
                        at_ms = excluded.at_ms, place = excluded.place,
                        called_back_ms = excluded.called_back_ms",
                    params![
                        id(m.call),
                        m.caller,
                        m.group,
                        m.arrived_ms,
                        m.at_ms,
                        m.place,
                        m.called_back_ms
                    ],
                ),
                AcdWrite::MissedGone(call) => {
                    tx.execute("DELETE FROM acd_missed WHERE call = ?1", params![id(*call)])
                }
                AcdWrite::Served(s) => tx.execute(
                    "INSERT OR REPLACE INTO acd_served (caller, agent, at_ms) VALUES (?1, ?2, ?3)",
                    params![s.caller, s.agent, s.at_ms],
                ),
                AcdWrite::ServedBefore(ms) => {
                    tx.execute("DELETE FROM acd_served WHERE at_ms < ?1", params![ms])
                }
                AcdWrite::DayStart(ms) => tx.execute(
                    "INSERT OR REPLACE INTO acd_meta (key, value) VALUES (?1, ?2)",
                    params![DAY_START, ms],
                ),
                AcdWrite::NextCall(n) => tx.execute(
                    "INSERT OR REPLACE INTO acd_meta (key, value) VALUES (?1, ?2)",
                    params![NEXT_CALL, id(*n)],
                ),
            }
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
