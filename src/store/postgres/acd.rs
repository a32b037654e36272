//! The ACD's rows (`store::acd`) in PostgreSQL; missed calls keep the order
//! they were missed in by an identity column an update leaves alone.

use postgres::Client;

use crate::store::acd::{call_of, id, DAY_START, NEXT_CALL};
use crate::store::{
    AcdAgentRow, AcdCallbackRow, AcdGroupRow, AcdMissedRow, AcdRows, AcdServedRow, AcdWrite,
};

/// Everything the ACD stored.
pub fn load(c: &mut Client) -> Result<AcdRows, postgres::Error> {
    let mut tx = c.transaction()?;
    let mut meta = |key: &str| -> Result<Option<i64>, postgres::Error> {
        tx.query_opt("SELECT value FROM acd_meta WHERE key = $1", &[&key])?
            .map(|r| r.try_get(0))
            .transpose()
    };
    let mut rows = AcdRows {
        day_start_ms: meta(DAY_START)?,
        next_call: meta(NEXT_CALL)?.map(call_of),
        ..AcdRows::default()
    };
    for r in tx.query(
        "SELECT agent, state, reason, since_ms, idle_since_ms, acw_until_ms, acw_group,
                event_seq, day FROM acd_agent ORDER BY agent",
        &[],
    )? {
        rows.agents.push(AcdAgentRow {
            agent: r.try_get(0)?,
            state: r.try_get(1)?,
            reason: r.try_get(2)?,
            since_ms: r.try_get(3)?,
            idle_since_ms: r.try_get(4)?,
            acw_until_ms: r.try_get(5)?,
            acw_group: r.try_get(6)?,
            event_seq: u32::try_from(r.try_get::<_, i64>(7)?).unwrap_or(0),
            day: r.try_get(8)?,
        });
    }
    for r in tx.query(
        "SELECT group_id, counters FROM acd_group ORDER BY group_id",
        &[],
    )? {
        rows.groups.push(AcdGroupRow {
            group: r.try_get(0)?,
            counters: r.try_get(1)?,
        });
    }
    for r in tx.query(
        "SELECT acd_call, group_id, caller, number, priority, arrived_ms, attempts, retry_at_ms,
                max_attempts
         FROM acd_callback ORDER BY acd_call",
        &[],
    )? {
        rows.callbacks.push(AcdCallbackRow {
            call: call_of(r.try_get(0)?),
            group: r.try_get(1)?,
            caller: r.try_get(2)?,
            number: r.try_get(3)?,
            priority: u8::try_from(r.try_get::<_, i16>(4)?).unwrap_or(u8::MAX),
            arrived_ms: r.try_get(5)?,
            attempts: u32::try_from(r.try_get::<_, i64>(6)?).unwrap_or(0),
            retry_at_ms: r.try_get(7)?,
            max_attempts: r
                .try_get::<_, Option<i32>>(8)?
                .map(|n| u32::try_from(n).unwrap_or(1)),
        });
    }
    for r in tx.query(
        "SELECT acd_call, caller, group_id, arrived_ms, at_ms, place, called_back_ms
         FROM acd_missed ORDER BY seq",
        &[],
    )? {
        rows.missed.push(AcdMissedRow {
            call: call_of(r.try_get(0)?),
            caller: r.try_get(1)?,
            group: r.try_get(2)?,
            arrived_ms: r.try_get(3)?,
            at_ms: r.try_get(4)?,
            place: r.try_get(5)?,
            called_back_ms: r.try_get(6)?,
        });
    }
    for r in tx.query(
        "SELECT caller, agent, at_ms FROM acd_served ORDER BY caller",
        &[],
    )? {
        rows.served.push(AcdServedRow {
            caller: r.try_get(0)?,
            agent: r.try_get(1)?,
            at_ms: r.try_get(2)?,
        });
    }
    tx.commit()?;
    Ok(rows)
}

/// Apply `writes` in order, in one transaction; with a `fence` (the
/// ACD leader's node and epoch), only while that node still holds the
/// lease at that epoch: `false`, nothing written, when it does not.
pub fn save(
    c: &mut Client,
    writes: &[AcdWrite],
    fence: Option<(&str, i64)>,
) -> Result<bool, postgres::Error> {
    let mut tx = c.transaction()?;
    if let Some((node, epoch)) = fence {
        if !super::lease::check_fence(&mut tx, node, epoch)? {
            return Ok(false);
        }
    }
    for w in writes {
        match w {
            AcdWrite::Agent(a) => tx.execute(
                "INSERT INTO acd_agent (agent, state, reason, since_ms, idle_since_ms,
                    acw_until_ms, acw_group, event_seq, day)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (agent) DO UPDATE SET state = EXCLUDED.state,
                    reason = EXCLUDED.reason, since_ms = EXCLUDED.since_ms,
                    idle_since_ms = EXCLUDED.idle_since_ms, acw_until_ms = EXCLUDED.acw_until_ms,
                    acw_group = EXCLUDED.acw_group, event_seq = EXCLUDED.event_seq,
                    day = EXCLUDED.day",
                &[
                    &a.agent,
                    &a.state,
                    &a.reason,
                    &a.since_ms,
                    &a.idle_since_ms,
                    &a.acw_until_ms,
                    &a.acw_group,
                    &i64::from(a.event_seq),
                    &a.day,
                ],
            ),
            AcdWrite::Group(g) => tx.execute(
                "INSERT INTO acd_group (group_id, counters) VALUES ($1, $2)
                 ON CONFLICT (group_id) DO UPDATE SET counters = EXCLUDED.counters",
                &[&g.group, &g.counters],
            ),
            AcdWrite::Callback(cb) => tx.execute(
                "INSERT INTO acd_callback (acd_call, group_id, caller, number, priority,
                    arrived_ms, attempts, retry_at_ms, max_attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (acd_call) DO UPDATE SET group_id = EXCLUDED.group_id,
                    caller = EXCLUDED.caller, number = EXCLUDED.number,
                    priority = EXCLUDED.priority, arrived_ms = EXCLUDED.arrived_ms,
                    attempts = EXCLUDED.attempts, retry_at_ms = EXCLUDED.retry_at_ms,
                    max_attempts = EXCLUDED.max_attempts",
                &[
                    &id(cb.call),
                    &cb.group,
                    &cb.caller,
                    &cb.number,
                    &i16::from(cb.priority),
                    &cb.arrived_ms,
                    &i64::from(cb.attempts),
                    &cb.retry_at_ms,
                    &cb.max_attempts
                        .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
                ],
            ),
            AcdWrite::CallbackGone(call) => tx.execute(
                "DELETE FROM acd_callback WHERE acd_call = $1",
                &[&id(*call)],
            ),
            // An upsert keeps the row's seq (its place in the list).
            AcdWrite::Missed(m) => tx.execute(
                "INSERT INTO acd_missed (acd_call, caller, group_id, arrived_ms, at_ms, place,
                    called_back_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (acd_call) DO UPDATE SET caller = EXCLUDED.caller,
                    group_id = EXCLUDED.group_id, arrived_ms = EXCLUDED.arrived_ms,
                    at_ms = EXCLUDED.at_ms, place = EXCLUDED.place,
                    called_back_ms = EXCLUDED.called_back_ms",
                &[
                    &id(m.call),
                    &m.caller,
                    &m.group,
                    &m.arrived_ms,
                    &m.at_ms,
                    &m.place,
                    &m.called_back_ms,
                ],
            ),
            AcdWrite::MissedGone(call) => {
                tx.execute("DELETE FROM acd_missed WHERE acd_call = $1", &[&id(*call)])
            }
            AcdWrite::Served(s) => tx.execute(
                "INSERT INTO acd_served (caller, agent, at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (caller) DO UPDATE SET agent = EXCLUDED.agent, at_ms = EXCLUDED.at_ms",
                &[&s.caller, &s.agent, &s.at_ms],
            ),
            AcdWrite::ServedBefore(ms) => {
                tx.execute("DELETE FROM acd_served WHERE at_ms < $1", &[ms])
            }
            AcdWrite::DayStart(ms) => set_meta(&mut tx, DAY_START, *ms),
            AcdWrite::NextCall(n) => set_meta(&mut tx, NEXT_CALL, id(*n)),
        }?;
    }
    tx.commit()?;
    Ok(true)
}

fn set_meta(
    tx: &mut postgres::Transaction<'_>,
    key: &str,
    value: i64,
) -> Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO acd_meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )
}
