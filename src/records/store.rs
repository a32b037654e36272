//! Call records as stored (issue 7 §4): queries over the events hotline
//! keeps in its outbox database (`events.db`). A call's record is the data
//! of its `call.ended` event; there is no second copy to drift from it.
//!
//! Filters: tenant, time range (the call's start), caller, called number
//! (DID), agent, skill group, outcome; "missed" calls are those that asked
//! for an agent and were never connected (the callback list); voicemails
//! and recordings are the records that carry one. Queries on tenant + time
//! and on the caller use the outbox's partial expression indexes (schema
//! v2), so their SQL must use the very same `json_extract` expressions.
//!
//! The store opens its own read connection (WAL: readers never block the
//! writer); it never writes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params_from_iter, Connection};

use crate::events::cdr::{Cdr, Outcome};
use crate::events::model::{Event, EventData};
use crate::events::time::Timestamp;
use crate::store::sqlite;

/// Records errors, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// SQLite failed.
    #[error("{path}: records {op}: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored event does not parse (written by a newer hotline?).
    #[error("{path}: stored event {id} unreadable: {source}")]
    Corrupt {
        /// Database file.
        path: PathBuf,
        /// Event id.
        id: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A query parameter is invalid (a bad time, an unknown outcome).
    #[error("{0}")]
    BadQuery(String),
}

/// Which calls to list. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuery {
    /// Only this tenant (None: all; only for global admins).
    pub tenant: Option<String>,
    /// Calls that started at or after this time.
    pub from: Option<Timestamp>,
    /// Calls that started before this time.
    pub to: Option<Timestamp>,
    /// Calling number.
    pub caller: Option<String>,
    /// Called number (DID).
    pub called: Option<String>,
    /// An agent who talked to the caller.
    pub agent: Option<String>,
    /// Skill group the call waited in.
    pub group: Option<String>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// Only calls that asked for an agent and were never connected.
    pub missed: bool,
    /// Only calls with a voicemail.
    pub voicemail: bool,
    /// Only calls with a recording.
    pub recorded: bool,
    /// At most this many (newest first); 0 means the default, 100.
    pub limit: usize,
}

/// Largest page a query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Read access to the stored records.
pub struct RecordStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl RecordStore {
    /// Open `events.db` read-only.
    pub fn open(path: &Path) -> Result<RecordStore, RecordsError> {
        let conn = sqlite::connect(path, sqlite::Mode::ReadOnly).map_err(|source| {
            RecordsError::Sqlite {
                path: path.to_path_buf(),
                op: "open",
                source,
            }
        })?;
        Ok(RecordStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn sqlite(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> RecordsError + '_ {
        move |source| RecordsError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }

    /// Call records matching `q`, newest first.
    pub fn calls(&self, q: &CallQuery) -> Result<Vec<Cdr>, RecordsError> {
        let mut sql = String::from("SELECT id, body FROM outbox_event WHERE kind = 'call.ended'");
        let mut args: Vec<String> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, value: String| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(t) = &q.tenant {
            push(
                &mut sql,
                " AND json_extract(body, '$.tenant') = ?",
                t.clone(),
            );
        }
        if let Some(f) = &q.from {
            push(
                &mut sql,
                " AND json_extract(body, '$.data.started_at') >= ?",
                f.to_string(),
            );
        }
        if let Some(t) = &q.to {
            push(
                &mut sql,
                " AND json_extract(body, '$.data.started_at') < ?",
                t.to_string(),
            );
        }
        if let Some(c) = &q.caller {
            push(
                &mut sql,
                " AND json_extract(body, '$.data.caller') = ?",
                c.clone(),
            );
        }
        if let Some(c) = &q.called {
            push(
                &mut sql,
                " AND json_extract(body, '$.data.called') = ?",
                c.clone(),
            );
        }
        if let Some(a) = &q.agent {
            push(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM json_each(body, '$.data.agents') WHERE value = ?)",
                a.clone(),
            );
        }
        if let Some(g) = &q.group {
            push(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM json_each(body, '$.data.groups') WHERE value = ?)",
                g.clone(),
            );
        }
        if let Some(o) = q.outcome {
            let name = serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            push(
                &mut sql,
                " AND json_extract(body, '$.data.outcome') = ?",
                name,
            );
        }
        if q.missed {
            sql.push_str(
                " AND json_extract(body, '$.data.direction') = 'inbound'
                  AND (json_extract(body, '$.data.agent_requested_at') IS NOT NULL
                       OR json_extract(body, '$.data.queued_at') IS NOT NULL)
                  AND json_extract(body, '$.data.connected_at') IS NULL",
            );
        }
        if q.voicemail {
            sql.push_str(" AND json_extract(body, '$.data.voicemail') IS NOT NULL");
        }
        if q.recorded {
            sql.push_str(" AND json_extract(body, '$.data.recording') IS NOT NULL");
        }
        let limit = match q.limit {
            0 => 100,
            n => n.min(MAX_LIMIT),
        };
        sql.push_str(&format!(
            " ORDER BY json_extract(body, '$.data.started_at') DESC LIMIT {limit}"
        ));
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(self.sqlite("query calls"))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.sqlite("query calls"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(self.sqlite("query calls"))?;
            if let Some(cdr) = self.cdr_of(&id, &body)? {
                out.push(cdr);
            }
        }
        Ok(out)
    }

    fn cdr_of(&self, id: &str, body: &str) -> Result<Option<Cdr>, RecordsError> {
        let ev: Event = serde_json::from_str(body).map_err(|source| RecordsError::Corrupt {
            path: self.path.clone(),
            id: id.to_owned(),
            source,
        })?;
        Ok(match ev.body {
            EventData::CallEnded(cdr) => Some(*cdr),
            _ => None,
        })
    }

    /// One call's events in order (its whole story), if the call belongs to
    /// `tenant` (None: any).
    pub fn call_events(
        &self,
        tenant: Option<&str>,
        call_id: &str,
    ) -> Result<Vec<Event>, RecordsError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT id, body FROM outbox_event WHERE call_id = ?1 ORDER BY seq")
            .map_err(self.sqlite("call events"))?;
        let rows = stmt
            .query_map([call_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.sqlite("call events"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(self.sqlite("call events"))?;
            let ev: Event =
                serde_json::from_str(&body).map_err(|source| RecordsError::Corrupt {
                    path: self.path.clone(),
                    id,
                    source,
                })?;
            if tenant.is_some_and(|t| t != ev.tenant) {
                return Ok(Vec::new());
            }
            out.push(ev);
        }
        Ok(out)
    }

    /// The caller's last `n` calls of `tenant`, newest first (the agent's
    /// screen pop shows them).
    pub fn previous_calls(
        &self,
        tenant: &str,
        caller: &str,
        n: usize,
    ) -> Result<Vec<Cdr>, RecordsError> {
        self.calls(&CallQuery {
            tenant: Some(tenant.to_owned()),
            caller: Some(caller.to_owned()),
            limit: n.max(1),
            ..CallQuery::default()
        })
    }
}

/// Reads a time bound: RFC 3339, or a local date `YYYY-MM-DD` (its
/// midnight at `utc_offset_minutes`).
pub fn parse_time(text: &str, utc_offset_minutes: i32) -> Result<Timestamp, RecordsError> {
    if let Ok(t) = Timestamp::parse(text) {
        return Ok(t);
    }
    let bad = || {
        RecordsError::BadQuery(format!(
            "bad time {text:?}: expected YYYY-MM-DD or an RFC 3339 date-time"
        ))
    };
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let midnight = Timestamp::parse(&format!("{y}-{m}-{d}T00:00:00Z")).map_err(|_| bad())?;
    Timestamp::from_unix_ms(midnight.unix_ms() - i64::from(utc_offset_minutes) * 60_000)
        .map_err(|_| bad())
}

/// Reads an outcome name (`answered`, `abandoned_in_queue` …).
pub fn parse_outcome(text: &str) -> Result<Outcome, RecordsError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        RecordsError::BadQuery(format!(
            "unknown outcome {text:?}: expected one of answered, abandoned_in_ivr, \
             abandoned_in_queue, abandoned_ringing, queue_timeout, voicemail, callback, \
             transferred_out, ivr_completed, blocked, failed"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::appender::Appender;
    use crate::events::outbox::{NewEvent, Outbox};
    use crate::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};
    use std::sync::Arc;

    fn start(call: &str, tenant: &str, caller: &str) -> CallStart {
        CallStart {
            call_id: call.into(),
            serial: format!("s-{call}"),
            tenant: tenant.into(),
            direction: crate::events::model::Direction::Inbound,
            caller: caller.into(),
            called: "12345".into(),
            caller_area: None,
            confidential: false,
        }
    }

    fn rows(events: Vec<Event>) -> Vec<NewEvent> {
        events
            .into_iter()
            .map(|e| NewEvent {
                id: e.id.clone(),
                call_id: e.call_id.clone(),
                kind: e.kind().into(),
                body_json: serde_json::to_string(&e).expect("json"),
            })
            .collect()
    }

    /// Three calls: answered by A01 (tenant a), missed in the queue
    /// (tenant a), answered by B01 (tenant b, same caller).
    async fn stored() -> (tempfile::TempDir, RecordStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let outbox = Arc::new(Outbox::open(&path).expect("outbox"));
        let app = Appender::start(outbox).expect("appender");
        let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("t", 0));
        let t0 = 1_795_400_000_000; // 2026-11-22T… UTC
        let mut all = Vec::new();
        let (mut b, e) = CdrBuilder::started(ids.clone(), t0, start("c1", "a", "138")).expect("s");
        all.push(e);
        all.extend(b.queued(t0 + 1_000, "general", None, 0).expect("q"));
        all.extend(b.answered(t0 + 5_000, "A01").expect("a"));
        all.extend(
            b.ended(t0 + 60_000, HangupParty::Caller, EndCause::default())
                .expect("e"),
        );
        all.extend(b.acw_ended(t0 + 61_000, "A01").expect("acw"));
        let (mut b, e) =
            CdrBuilder::started(ids.clone(), t0 + 100_000, start("c2", "a", "139")).expect("s");
        all.push(e);
        all.extend(b.queued(t0 + 101_000, "general", None, 0).expect("q"));
        all.extend(
            b.ended(t0 + 130_000, HangupParty::Caller, EndCause::default())
                .expect("e"),
        );
        let (mut b, e) =
            CdrBuilder::started(ids.clone(), t0 + 200_000, start("c3", "b", "138")).expect("s");
        all.push(e);
        all.extend(b.queued(t0 + 201_000, "other", None, 0).expect("q"));
        all.extend(b.answered(t0 + 202_000, "B01").expect("a"));
        all.extend(
            b.ended(t0 + 230_000, HangupParty::Agent, EndCause::default())
                .expect("e"),
        );
        all.extend(b.acw_ended(t0 + 231_000, "B01").expect("acw"));
        app.send(rows(all));
        app.flush().await;
        let store = RecordStore::open(&path).expect("store");
        (dir, store)
    }

    fn ids(cdrs: &[Cdr]) -> Vec<&str> {
        cdrs.iter().map(|c| c.call_id.as_str()).collect()
    }

    #[tokio::test]
    async fn filters_by_tenant_caller_agent_group_outcome_and_missed() {
        let (_dir, s) = stored().await;
        let all = s.calls(&CallQuery::default()).expect("all");
        assert_eq!(ids(&all), ["c3", "c2", "c1"], "newest first");
        let q = |f: fn(&mut CallQuery)| {
            let mut q = CallQuery::default();
            f(&mut q);
            ids(&s.calls(&q).expect("query"))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(|q| q.tenant = Some("a".into())), ["c2", "c1"]);
        assert_eq!(q(|q| q.caller = Some("138".into())), ["c3", "c1"]);
        assert_eq!(q(|q| q.agent = Some("A01".into())), ["c1"]);
        assert_eq!(q(|q| q.group = Some("other".into())), ["c3"]);
        assert_eq!(q(|q| q.outcome = Some(Outcome::AbandonedInQueue)), ["c2"]);
        assert_eq!(q(|q| q.missed = true), ["c2"]);
        assert_eq!(q(|q| q.limit = 1), ["c3"]);
        assert!(q(|q| q.tenant = Some("' OR 1=1 --".into())).is_empty());
        let prev = s.previous_calls("a", "138", 5).expect("prev");
        assert_eq!(ids(&prev), ["c1"], "other tenants' calls stay hidden");
    }

    #[tokio::test]
    async fn time_bounds_and_a_calls_story() {
        let (_dir, s) = stored().await;
        let from = Timestamp::from_unix_ms(1_795_400_100_000).expect("t");
        let got = s
            .calls(&CallQuery {
                from: Some(from),
                ..CallQuery::default()
            })
            .expect("q");
        assert_eq!(ids(&got), ["c3", "c2"]);
        let story = s.call_events(Some("a"), "c1").expect("events");
        let kinds: Vec<&str> = story.iter().map(Event::kind).collect();
        assert_eq!(
            kinds,
            [
                "call.started",
                "queue.entered",
                "agent.answered",
                "call.ended"
            ]
        );
        assert!(s.call_events(Some("b"), "c1").expect("events").is_empty());
    }

    #[test]
    fn time_and_outcome_parameters() {
        let t = parse_time("2026-11-23", 480).expect("date");
        assert_eq!(t.to_string(), "2026-11-22T16:00:00.000Z");
        let t = parse_time("2026-11-23T01:02:03Z", 480).expect("rfc3339");
        assert_eq!(t.to_string(), "2026-11-23T01:02:03.000Z");
        for bad in ["yesterday", "2026-13-01", "2026-1-1", ""] {
            assert!(parse_time(bad, 480).is_err(), "{bad}");
        }
        assert_eq!(parse_outcome("answered").expect("ok"), Outcome::Answered);
        let e = parse_outcome("won").expect_err("unknown");
        assert!(e.to_string().contains("abandoned_in_queue"), "{e}");
    }
}
