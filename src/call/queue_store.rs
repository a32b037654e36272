//! What the ACD actor keeps across a restart (issue 12 item 3, "a restart
//! loses nothing the centre relies on"; item 7, the figures of the day):
//! the engine's [`Change`]s turned into the store's rows (`store::acd`),
//! the rows read back into the [`Snapshot`] a fresh engine is restored
//! from, the numbering of each agent's state changes (the `seq` of the
//! `agent.state` events, kept with the state it numbers), and the engine's
//! clock.
//!
//! The clock: the engine runs on Unix time in whole milliseconds, read
//! from the wall clock once when the actor starts and advanced by the
//! monotonic clock from then on, so a wall-clock step while running does
//! not disturb timers. Every time the engine hands out — and so every time
//! kept — is therefore a wall-clock time, and means the same after a
//! restart: converting to and from the store's Unix milliseconds is exact.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::acd::{
    AgentCounters, AgentRecord, AgentState, CallId, CallbackRecord, Change, GroupCounters,
    GroupRecord, MissedCall, MissedWhere, ServiceRecord, Snapshot,
};
use crate::store::{
    AcdAgentRow, AcdCallbackRow, AcdGroupRow, AcdMissedRow, AcdRows, AcdServedRow, AcdWrite, Store,
    StoreError,
};
use crate::time::Time;

/// A stored row hotline cannot use (logged once at start, then skipped).
#[derive(Debug, thiserror::Error)]
#[error("hotline.db table {table}, row {key:?}: {why}")]
pub struct BadRow {
    /// Table.
    pub table: &'static str,
    /// The row's key (agent, group, call or caller).
    pub key: String,
    /// What is wrong with it.
    pub why: String,
}

/// Engine time as stored (Unix milliseconds).
pub fn unix_ms(at: Time) -> i64 {
    i64::try_from(at.unix_millis()).unwrap_or(i64::MAX)
}

/// Stored Unix milliseconds as engine time.
pub fn from_unix_ms(ms: i64) -> Time {
    Time::from_unix_millis(u64::try_from(ms).unwrap_or(0))
}

/// Each agent's last `agent.state` seq and state, across restarts: the
/// number goes with the state it numbers into the same row, in the same
/// transaction.
#[derive(Debug, Default)]
pub struct AgentNumbers {
    last: HashMap<String, (u32, AgentState)>,
}

impl AgentNumbers {
    /// Number `agent`'s change to `state`: its seq (1, 2, 3 …) and the
    /// state before, if any.
    pub fn next(&mut self, agent: &str, state: AgentState) -> (u32, Option<AgentState>) {
        let slot = self.last.get(agent).copied();
        let seq = slot.map_or(1, |(n, _)| n.saturating_add(1));
        self.last.insert(agent.to_owned(), (seq, state));
        (seq, slot.map(|(_, s)| s))
    }

    /// The last seq given to `agent` (0: none yet).
    pub fn seq(&self, agent: &str) -> u32 {
        self.last.get(agent).map_or(0, |(n, _)| *n)
    }
}

/// What was read back at start.
#[derive(Debug, Default)]
pub struct Kept {
    /// For [`crate::acd::Engine::restore`].
    pub snapshot: Snapshot,
    /// Seq numbering resumed.
    pub numbers: AgentNumbers,
    /// The first ACD call id not used before.
    pub next_call: u64,
}

/// An agent's figures of the day, as the row keeps them (JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
struct AgentDay {
    counters: AgentCounters,
    time_in_state: Vec<(AgentState, Duration)>,
}

fn name<T: Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_name<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// Read everything kept; a row hotline cannot use is logged and skipped.
pub fn load(store: &Store) -> Result<Kept, StoreError> {
    let rows = store.load_acd()?;
    let (kept, bad) = from_rows(rows);
    for b in bad {
        warn!(error = %b, "stored ACD state skipped");
    }
    Ok(kept)
}

/// The rows as a snapshot, and the rows that could not be used.
pub fn from_rows(rows: AcdRows) -> (Kept, Vec<BadRow>) {
    let mut bad = Vec::new();
    let mut kept = Kept {
        next_call: rows.next_call.unwrap_or(1).max(1),
        ..Kept::default()
    };
    kept.snapshot.day_start = rows.day_start_ms.map(from_unix_ms);
    for r in rows.agents {
        let Some(state) = parse_name::<AgentState>(&r.state) else {
            bad.push(BadRow {
                table: "acd_agent",
                key: r.agent,
                why: format!("unknown state {:?}", r.state),
            });
            continue;
        };
        let day = serde_json::from_str::<AgentDay>(&r.day).unwrap_or_else(|e| {
            bad.push(BadRow {
                table: "acd_agent",
                key: r.agent.clone(),
                why: format!("figures of the day unreadable ({e}): starting from zero"),
            });
            AgentDay::default()
        });
        kept.numbers
            .last
            .insert(r.agent.clone(), (r.event_seq, state));
        kept.snapshot.agents.push(AgentRecord {
            agent: r.agent,
            state,
            reason: r.reason,
            since: from_unix_ms(r.since_ms),
            idle_since: from_unix_ms(r.idle_since_ms),
            acw_until: r.acw_until_ms.map(from_unix_ms),
            acw_group: r.acw_group,
            counters: day.counters,
            time_in_state: day.time_in_state,
        });
    }
    for r in rows.groups {
        match serde_json::from_str::<GroupCounters>(&r.counters) {
            Ok(counters) => kept.snapshot.groups.push(GroupRecord {
                group: r.group,
                counters,
            }),
            Err(e) => bad.push(BadRow {
                table: "acd_group",
                key: r.group,
                why: format!("counters unreadable ({e}): starting from zero"),
            }),
        }
    }
    for r in rows.callbacks {
        kept.next_call = kept.next_call.max(r.call.saturating_add(1));
        kept.snapshot.callbacks.push(CallbackRecord {
            call: CallId(r.call),
            group: r.group,
            caller: r.caller,
            number: r.number,
            priority: r.priority,
            arrived: from_unix_ms(r.arrived_ms),
            attempts: r.attempts,
            retry_at: r.retry_at_ms.map(from_unix_ms),
            max_attempts: r.max_attempts,
        });
    }
    for r in rows.missed {
        kept.next_call = kept.next_call.max(r.call.saturating_add(1));
        let Some(place) = parse_name::<MissedWhere>(&r.place) else {
            bad.push(BadRow {
                table: "acd_missed",
                key: r.call.to_string(),
                why: format!("unknown place {:?}", r.place),
            });
            continue;
        };
        let (arrived, at) = (from_unix_ms(r.arrived_ms), from_unix_ms(r.at_ms));
        kept.snapshot.missed.push(MissedCall {
            call: CallId(r.call),
            caller: r.caller,
            group: r.group,
            arrived,
            at,
            wait: at.saturating_duration_since(arrived),
            place,
            called_back_at: r.called_back_ms.map(from_unix_ms),
        });
    }
    for r in rows.served {
        kept.snapshot.served.push(ServiceRecord {
            caller: r.caller,
            agent: r.agent,
            at: from_unix_ms(r.at_ms),
        });
    }
    (kept, bad)
}

/// The engine's changes as the store's writes; agents' rows carry their
/// current seq from `numbers`.
pub fn writes(changes: Vec<Change>, numbers: &AgentNumbers) -> Vec<AcdWrite> {
    changes
        .into_iter()
        .map(|c| match c {
            Change::Agent(r) => {
                let day = AgentDay {
                    counters: r.counters,
                    time_in_state: r.time_in_state,
                };
                AcdWrite::Agent(AcdAgentRow {
                    event_seq: numbers.seq(&r.agent),
                    state: name(r.state),
                    reason: r.reason,
                    since_ms: unix_ms(r.since),
                    idle_since_ms: unix_ms(r.idle_since),
                    acw_until_ms: r.acw_until.map(unix_ms),
                    acw_group: r.acw_group,
                    day: serde_json::to_string(&day).unwrap_or_default(),
                    agent: r.agent,
                })
            }
            Change::Group(g) => AcdWrite::Group(AcdGroupRow {
                counters: serde_json::to_string(&g.counters).unwrap_or_default(),
                group: g.group,
            }),
            Change::Callback(c) => AcdWrite::Callback(AcdCallbackRow {
                call: c.call.0,
                group: c.group,
                caller: c.caller,
                number: c.number,
                priority: c.priority,
                arrived_ms: unix_ms(c.arrived),
                attempts: c.attempts,
                retry_at_ms: c.retry_at.map(unix_ms),
                max_attempts: c.max_attempts,
            }),
            Change::CallbackGone(call) => AcdWrite::CallbackGone(call.0),
            Change::Missed(m) => AcdWrite::Missed(AcdMissedRow {
                call: m.call.0,
                caller: m.caller,
                group: m.group,
                arrived_ms: unix_ms(m.arrived),
                at_ms: unix_ms(m.at),
                place: name(m.place),
                called_back_ms: m.called_back_at.map(unix_ms),
            }),
            Change::MissedGone(call) => AcdWrite::MissedGone(call.0),
            Change::Served(s) => AcdWrite::Served(AcdServedRow {
                caller: s.caller,
                agent: s.agent,
                at_ms: unix_ms(s.at),
            }),
            Change::Day(at) => AcdWrite::DayStart(unix_ms(at)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{
        AcdConfig, AgentConfig, CallbackPolicy, Engine, GroupConfig, Input, NextStep, Strategy,
    };

    fn config() -> AcdConfig {
        let s = Duration::from_secs;
        AcdConfig {
            groups: vec![GroupConfig {
                id: "general".into(),
                name: "General".into(),
                tenant: "t".into(),
                strategy: Strategy::LongestIdle,
                ring_timeout: s(15),
                acw: s(30),
                max_queue: 10,
                max_wait: s(300),
                on_max_wait: NextStep::Callback,
                overflow_after: None,
                announce_every: None,
                priority_boost: vec![],
            }],
            agents: vec![AgentConfig {
                id: "A01".into(),
                name: "Wang".into(),
                tenant: "t".into(),
                device: "2001".into(),
                skills: vec![("general".into(), 5)],
            }],
            not_ready_reasons: vec!["training".into()],
            previous_service: None,
            callback: CallbackPolicy {
                max_attempts: 3,
                retry_interval: s(60),
            },
        }
    }

    /// Everything an engine kept goes through the store's rows and comes
    /// back the same: times to the millisecond, states and places by name,
    /// figures as JSON, seq with the state it numbers.
    #[test]
    fn changes_survive_the_store_exactly() {
        let t0 = from_unix_ms(1_796_522_400_123);
        let ms = Duration::from_millis;
        let mut e = Engine::new(config(), t0).expect("config");
        e.track_changes();
        e.restore(t0, t0 - ms(3_600_000), Snapshot::default(), |_| true);
        let mut numbers = AgentNumbers::default();
        let mut all = Vec::new();
        let mut step = |e: &mut Engine, at: Time, input: Input| {
            e.handle(at, input).expect("input");
            while let Some(o) = e.poll_output() {
                if let crate::acd::Output::AgentState { agent, state, .. } = o {
                    numbers.next(&agent, state);
                }
            }
            all.extend(writes(e.take_changes(), &numbers));
        };
        step(
            &mut e,
            t0 + ms(1),
            Input::Login {
                agent: "A01".into(),
            },
        );
        step(
            &mut e,
            t0 + ms(2),
            Input::NotReady {
                agent: "A01".into(),
                reason: "training".into(),
            },
        );
        let enqueue = Input::Enqueue {
            call: CallId(5),
            group: "general".into(),
            priority: 0,
            caller: "13800138000".into(),
            arrived: t0 + ms(3),
            max_wait: None,
            on_timeout: None,
        };
        step(&mut e, t0 + ms(3), enqueue);
        step(
            &mut e,
            t0 + ms(4_567),
            Input::CallerHungUp { call: CallId(5) },
        );
        step(
            &mut e,
            t0 + ms(5_000),
            Input::ScheduleCallback {
                call: CallId(6),
                group: "general".into(),
                number: "13800138000".into(),
                priority: 2,
                max_attempts: None,
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        store.save_acd(&all).expect("save");
        let (kept, bad) = from_rows(store.load_acd().expect("load"));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(kept.snapshot, e.snapshot());
        assert_eq!(kept.numbers.seq("A01"), 2);
        assert_eq!(kept.next_call, 7, "past every call id kept");
    }

    #[test]
    fn unusable_rows_are_named_and_skipped() {
        let rows = AcdRows {
            agents: vec![AcdAgentRow {
                agent: "A01".into(),
                state: "dancing".into(),
                reason: None,
                since_ms: 0,
                idle_since_ms: 0,
                acw_until_ms: None,
                acw_group: None,
                event_seq: 3,
                day: "{}".into(),
            }],
            groups: vec![AcdGroupRow {
                group: "general".into(),
                counters: "not json".into(),
            }],
            ..AcdRows::default()
        };
        let (kept, bad) = from_rows(rows);
        assert!(kept.snapshot.agents.is_empty() && kept.snapshot.groups.is_empty());
        let text: Vec<String> = bad.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2);
        assert!(
            text[0]
                .starts_with("hotline.db table acd_agent, row \"A01\": unknown state \"dancing\""),
            "{text:?}"
        );
        assert!(text[1].contains("acd_group, row \"general\""), "{text:?}");
    }

    #[test]
    fn seq_numbers_go_on_from_the_kept_one() {
        let mut n = AgentNumbers::default();
        assert_eq!(n.next("A01", AgentState::Idle), (1, None));
        n.last.insert("A02".into(), (41, AgentState::NotReady));
        assert_eq!(
            n.next("A02", AgentState::Idle),
            (42, Some(AgentState::NotReady))
        );
        assert_eq!(n.seq("A02"), 42);
    }
}
