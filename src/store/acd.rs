//! The ACD's state on disk (issue 12 item 3, "a restart loses nothing the
//! centre relies on"; issue 12 item 7, the figures of the day): one row per
//! agent (state, reason, since-when, after-call work, the last
//! `agent.state` seq, the day's counters), per skill group (the day's
//! counters), per pending callback, per missed call (in the order they were
//! missed), per caller last served (previous-service routing), and two
//! numbers: when the current day began and the next ACD call id.
//!
//! Times are wall-clock Unix milliseconds. The ACD actor (`call::queue`)
//! writes each batch of changes in one transaction before anything outside
//! hears of them, and reads everything back once at start.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

const SCHEMA: &str = "
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
    retry_at_ms INTEGER
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

const DAY_START: &str = "day_start_ms";
const NEXT_CALL: &str = "next_call";

/// An agent's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdAgentRow {
    pub agent: String,
    /// The state's name (`idle`, `not_ready` …).
    pub state: String,
    pub reason: Option<String>,
    pub since_ms: i64,
    pub idle_since_ms: i64,
    pub acw_until_ms: Option<i64>,
    pub acw_group: Option<String>,
    /// The `seq` of the agent's last `agent.state` event.
    pub event_seq: u32,
    /// The day's counters and time in state (JSON).
    pub day: String,
}

/// A skill group's row: the day's counters (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdGroupRow {
    pub group: String,
    pub counters: String,
}

/// A pending callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdCallbackRow {
    pub call: u64,
    pub group: String,
    pub caller: String,
    pub number: String,
    pub priority: u8,
    pub arrived_ms: i64,
    pub attempts: u32,
    pub retry_at_ms: Option<i64>,
}

/// A missed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdMissedRow {
    pub call: u64,
    pub caller: String,
    pub group: String,
    pub arrived_ms: i64,
    pub at_ms: i64,
    /// Where it was lost (`queue`, `ringing` …).
    pub place: String,
    pub called_back_ms: Option<i64>,
}

/// The agent who last served a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdServedRow {
    pub caller: String,
    pub agent: String,
    pub at_ms: i64,
}

/// Everything stored, as read at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcdRows {
    pub day_start_ms: Option<i64>,
    pub next_call: Option<u64>,
    pub agents: Vec<AcdAgentRow>,
    pub groups: Vec<AcdGroupRow>,
    pub callbacks: Vec<AcdCallbackRow>,
    /// In the order they were missed.
    pub missed: Vec<AcdMissedRow>,
    pub served: Vec<AcdServedRow>,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdWrite {
    Agent(AcdAgentRow),
    Group(AcdGroupRow),
    Callback(AcdCallbackRow),
    CallbackGone(u64),
    /// Added (kept in its place) or updated (called back).
    Missed(AcdMissedRow),
    MissedGone(u64),
    Served(AcdServedRow),
    /// Forget services before this time.
    ServedBefore(i64),
    DayStart(i64),
    NextCall(u64),
}

fn id(call: u64) -> i64 {
    i64::try_from(call).unwrap_or(i64::MAX)
}

fn call_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    fn acd_tables(&self) -> Result<(), StoreError> {
        self.lock().execute_batch(SCHEMA).map_err(|e| self.err(e))
    }

    /// Everything the ACD stored.
    pub fn load_acd(&self) -> Result<AcdRows, StoreError> {
        self.acd_tables()?;
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
                        retry_at_ms FROM acd_callback ORDER BY call",
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
        if writes.is_empty() {
            return Ok(());
        }
        self.acd_tables()?;
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
                        priority, arrived_ms, attempts, retry_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id(c.call),
                        c.group,
                        c.caller,
                        c.number,
                        i64::from(c.priority),
                        c.arrived_ms,
                        i64::from(c.attempts),
                        c.retry_at_ms
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

#[cfg(test)]
mod tests {
    use super::*;

    fn missed(call: u64, back: Option<i64>) -> AcdMissedRow {
        AcdMissedRow {
            call,
            caller: format!("138{call}"),
            group: "general".into(),
            arrived_ms: 1_000,
            at_ms: 2_000,
            place: "queue".into(),
            called_back_ms: back,
        }
    }

    #[test]
    fn everything_written_reads_back_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(dir.path()).expect("open");
        assert_eq!(s.load_acd().expect("load"), AcdRows::default());
        let agent = AcdAgentRow {
            agent: "A01".into(),
            state: "not_ready".into(),
            reason: Some("training".into()),
            since_ms: 1_796_522_400_123,
            idle_since_ms: 1_796_522_300_000,
            acw_until_ms: None,
            acw_group: None,
            event_seq: 41,
            day: "{}".into(),
        };
        let callback = AcdCallbackRow {
            call: 7,
            group: "general".into(),
            caller: "13800138000".into(),
            number: "13800138000".into(),
            priority: 3,
            arrived_ms: 5,
            attempts: 1,
            retry_at_ms: Some(9),
        };
        s.save_acd(&[
            AcdWrite::Agent(agent.clone()),
            AcdWrite::Group(AcdGroupRow {
                group: "general".into(),
                counters: "{\"answered\":3}".into(),
            }),
            AcdWrite::Callback(callback.clone()),
            AcdWrite::Callback(AcdCallbackRow {
                call: 8,
                ..callback.clone()
            }),
            // Missed in the order 9, 3, 5; 3 is called back later, 5 leaves.
            AcdWrite::Missed(missed(9, None)),
            AcdWrite::Missed(missed(3, None)),
            AcdWrite::Missed(missed(5, None)),
            AcdWrite::Served(AcdServedRow {
                caller: "old".into(),
                agent: "A01".into(),
                at_ms: 10,
            }),
            AcdWrite::Served(AcdServedRow {
                caller: "new".into(),
                agent: "A01".into(),
                at_ms: 500,
            }),
            AcdWrite::DayStart(1_796_486_400_000),
            AcdWrite::NextCall(120),
        ])
        .expect("save");
        s.save_acd(&[
            AcdWrite::CallbackGone(8),
            AcdWrite::Missed(missed(3, Some(3_000))),
            AcdWrite::MissedGone(5),
            AcdWrite::ServedBefore(100),
            AcdWrite::NextCall(121),
        ])
        .expect("save");
        drop(s);
        let s = Store::open(dir.path()).expect("reopen");
        let rows = s.load_acd().expect("load");
        assert_eq!(rows.agents, vec![agent]);
        assert_eq!(rows.groups[0].counters, "{\"answered\":3}");
        assert_eq!(rows.callbacks, vec![callback]);
        assert_eq!(rows.missed, vec![missed(9, None), missed(3, Some(3_000))]);
        assert_eq!(
            rows.served
                .iter()
                .map(|r| r.caller.as_str())
                .collect::<Vec<_>>(),
            ["new"]
        );
        assert_eq!(rows.day_start_ms, Some(1_796_486_400_000));
        assert_eq!(rows.next_call, Some(121));
    }
}
