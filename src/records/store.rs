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
//! Two backends, as the outbox has (issue 15 §1): `events.db` (the store
//! opens its own read-only connection; WAL: readers never block the
//! writer) or the outbox tables of the PostgreSQL store (`[store] url`; a
//! connection on a thread of its own). The filters' SQL for each:
//! [`super::query`]. The store never writes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params_from_iter, Connection};

use super::query::{self, Dialect};
use crate::events::cdr::{Cdr, Outcome};
use crate::events::model::{Event, EventData};
use crate::events::time::Timestamp;
use crate::store::pg::{PgError, PgLink};
use crate::store::sqlite;

/// Records errors, naming the database.
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
    /// PostgreSQL failed or could not be reached (the error names it).
    #[error("records {op}: {source}")]
    Postgres {
        /// What was being done.
        op: &'static str,
        /// The error, naming the server and database.
        source: PgError,
    },
    /// A stored event does not parse (written by a newer hotline?).
    #[error("{db}: stored event {id} unreadable: {source}")]
    Corrupt {
        /// The database.
        db: String,
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
    /// The database, as errors name it.
    db: String,
    backend: Backend,
}

enum Backend {
    Sqlite {
        path: PathBuf,
        conn: Mutex<Connection>,
    },
    Postgres(PgLink),
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
            db: path.display().to_string(),
            backend: Backend::Sqlite {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
            },
        })
    }

    /// Connect to the outbox tables of the PostgreSQL database at `url`
    /// (the outbox creates them; this only reads).
    pub fn connect(url: &str) -> Result<RecordStore, RecordsError> {
        let link = PgLink::connect(url, "records-pg", |_, _| Ok(()))
            .map_err(|source| RecordsError::Postgres { op: "open", source })?;
        Ok(RecordStore {
            db: format!("PostgreSQL {}", link.target()),
            backend: Backend::Postgres(link),
        })
    }

    /// The records `[store] url` and `[events] db` name: in PostgreSQL
    /// when a URL is set, else in the file `path`.
    pub fn configured(url: Option<&str>, path: &Path) -> Result<RecordStore, RecordsError> {
        match url {
            Some(url) => Self::connect(url),
            None => Self::open(path),
        }
    }

    /// The database: the file, or the PostgreSQL server and database.
    pub fn database(&self) -> &str {
        &self.db
    }

    /// `(id, body)` of the rows `sql` selects with `args`.
    fn rows(
        &self,
        op: &'static str,
        sql: String,
        args: Vec<String>,
    ) -> Result<Vec<(String, String)>, RecordsError> {
        match &self.backend {
            Backend::Sqlite { path, conn } => {
                let err = |source| RecordsError::Sqlite {
                    path: path.clone(),
                    op,
                    source,
                };
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
                let rows = stmt
                    .query_map(params_from_iter(args.iter()), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(err)?;
                rows.collect::<Result<_, _>>().map_err(err)
            }
            Backend::Postgres(link) => link
                .run(move |c| {
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                        .iter()
                        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    Ok(c.query(&sql, &params)?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect())
                })
                .map_err(|source| RecordsError::Postgres { op, source }),
        }
    }

    fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Call records matching `q`, newest first.
    pub fn calls(&self, q: &CallQuery) -> Result<Vec<Cdr>, RecordsError> {
        let (sql, args) = query::calls(q, self.dialect());
        let mut out = Vec::new();
        for (id, body) in self.rows("query calls", sql, args)? {
            if let Some(cdr) = self.cdr_of(&id, &body)? {
                out.push(cdr);
            }
        }
        Ok(out)
    }

    fn cdr_of(&self, id: &str, body: &str) -> Result<Option<Cdr>, RecordsError> {
        let ev: Event = serde_json::from_str(body).map_err(|source| RecordsError::Corrupt {
            db: self.db.clone(),
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
        let sql = match self.dialect() {
            Dialect::Sqlite => "SELECT id, body FROM outbox_event WHERE call_id = ?1 ORDER BY seq",
            Dialect::Postgres => {
                "SELECT id, body::text FROM outbox_event WHERE call_id = $1 ORDER BY seq"
            }
        };
        let rows = self.rows("call events", sql.to_string(), vec![call_id.to_string()])?;
        let mut out = Vec::new();
        for (id, body) in rows {
            let ev: Event =
                serde_json::from_str(&body).map_err(|source| RecordsError::Corrupt {
                    db: self.db.clone(),
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
    //! Each store test runs on both backends (issue 15 §1): `events.db`
    //! and a throw-away PostgreSQL database (skipped with a note when no
    //! server is given).

    use super::*;
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

    /// One database under test.
    enum Backing {
        File(tempfile::TempDir),
        Postgres(String),
    }

    impl Backing {
        fn outbox(&self) -> Outbox {
            match self {
                Backing::File(dir) => Outbox::open(&dir.path().join("events.db")),
                Backing::Postgres(url) => Outbox::connect(url),
            }
            .expect("outbox")
        }

        fn store(&self) -> RecordStore {
            match self {
                Backing::File(dir) => RecordStore::open(&dir.path().join("events.db")),
                Backing::Postgres(url) => RecordStore::connect(url),
            }
            .expect("store")
        }
    }

    macro_rules! both {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[test]
                fn embedded() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$name(super::Backing::File(dir));
                }
                #[test]
                fn postgres() {
                    if let Some(url) = crate::store::pg::test_db::database(stringify!($name)) {
                        super::$name(super::Backing::Postgres(url));
                    }
                }
            }
        )*};
    }

    both!(
        filters_by_tenant_caller_agent_group_outcome_and_missed,
        time_bounds_and_a_calls_story,
        an_unreadable_record_names_its_database,
        the_indexes_serve_tenant_time_and_caller,
    );

    /// Three calls: answered by A01 (tenant a), missed in the queue
    /// (tenant a), answered by B01 (tenant b, same caller).
    fn stored(backing: Backing) -> (Backing, RecordStore) {
        let outbox = backing.outbox();
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
        outbox.append(&rows(all)).expect("append");
        let store = backing.store();
        (backing, store)
    }

    fn ids(cdrs: &[Cdr]) -> Vec<&str> {
        cdrs.iter().map(|c| c.call_id.as_str()).collect()
    }

    fn filters_by_tenant_caller_agent_group_outcome_and_missed(b: Backing) {
        let (_b, s) = stored(b);
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

    fn time_bounds_and_a_calls_story(b: Backing) {
        let (_b, s) = stored(b);
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

    fn an_unreadable_record_names_its_database(b: Backing) {
        let outbox = b.outbox();
        outbox
            .append(&[NewEvent {
                id: "bad".into(),
                call_id: Some("c9".into()),
                kind: "call.ended".into(),
                body_json: r#"{"tenant":"a","data":{"started_at":"2026-01-01T00:00:00.000Z"}}"#
                    .into(),
            }])
            .expect("append");
        let s = b.store();
        let e = s.calls(&CallQuery::default()).expect_err("corrupt");
        assert!(matches!(e, RecordsError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(s.database()), "{e}");
        assert!(e.to_string().contains("bad"), "{e}");
    }

    /// The records' filters on tenant + time and on the caller are served
    /// by the partial expression indexes (each backend's planner says so).
    fn the_indexes_serve_tenant_time_and_caller(b: Backing) {
        let (b, s) = stored(b);
        let q = CallQuery {
            tenant: Some("a".into()),
            from: Some(Timestamp::from_unix_ms(1_795_400_000_000).expect("t")),
            ..CallQuery::default()
        };
        let by_caller = CallQuery {
            caller: Some("138".into()),
            ..CallQuery::default()
        };
        let plan = |q: &CallQuery| -> String {
            let (sql, args) = query::calls(q, s.dialect());
            match &b {
                Backing::File(_) => {
                    let explain = format!("EXPLAIN QUERY PLAN {sql}");
                    let Backend::Sqlite { conn, .. } = &s.backend else {
                        unreachable!()
                    };
                    let conn = conn.lock().expect("lock");
                    let mut stmt = conn.prepare(&explain).expect("explain");
                    stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3))
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .expect("plan")
                        .join("\n")
                }
                Backing::Postgres(url) => {
                    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
                    c.batch_execute("SET enable_seqscan = off").expect("set");
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                        .iter()
                        .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                        .collect();
                    c.query(&format!("EXPLAIN {sql}"), &params)
                        .expect("explain")
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
        };
        let p = plan(&q);
        assert!(p.contains("call_ended_tenant_started"), "{p}");
        let p = plan(&by_caller);
        assert!(p.contains("call_ended_caller"), "{p}");
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
