//! Connecting to PostgreSQL the one way, and bringing a schema to the
//! version this build writes — the PostgreSQL twin of [`super::sqlite`]
//! (issue 15 §1: every database hotline writes may live in one shared
//! PostgreSQL database).
//!
//! - [`PgLink`]: rust-postgres's synchronous client runs a runtime of its
//!   own, which must not be entered from a tokio worker; so the connection
//!   lives on a thread of its own and each call is a job sent to it,
//!   answered over a channel. Callers block as they would on an SQLite
//!   mutex: at start, on the blocking pool, or on writer threads. A
//!   connection that breaks is made again for the next job; the job that
//!   saw it break gets the error (a transaction is never replayed, so
//!   nothing is applied twice).
//! - [`migrate`]: the migrations a schema's table of applied versions has
//!   not seen yet, in one transaction under an advisory lock (nodes starting
//!   together migrate once); a database newer than this build is refused.
//! - [`listen`]: hearing other nodes' changes (`LISTEN`/`NOTIFY`) on a
//!   session and thread of its own.
//! - [`events_schema`]: the outbox's and records' tables (the twin of
//!   `store::sqlite::events_schema`); `test_db` (tests): a throw-away
//!   database per test.
//!
//! This part imports nothing of the crate, so the leaf rooms (`events`)
//! may use it, as they use `store::sqlite`; `tests/architecture.rs` checks
//! both.

use std::sync::mpsc;
use std::time::Duration;

use postgres::NoTls;
pub use postgres::{Client, Row, Transaction};

pub mod events_schema;
pub mod listen;
#[cfg(test)]
pub mod test_db;

/// How long connecting may take before the server counts as gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong, naming the database (never its password).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    /// Not a PostgreSQL connection string.
    #[error("not a PostgreSQL URL: {0}")]
    Url(String),
    /// The server refused or failed, or could not be reached.
    #[error("PostgreSQL {target}: {detail}")]
    Server {
        /// `host:port/database as user`.
        target: String,
        /// The server's message, or the client's.
        detail: String,
    },
    /// The database was written by a newer build.
    #[error("PostgreSQL {target}: {schema} schema version {found} is newer than this build's {known}; upgrade hotline")]
    TooNew {
        /// `host:port/database as user`.
        target: String,
        /// Which schema (`store`, `auth`, `events`).
        schema: &'static str,
        /// Its version in the database.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The connection's thread is gone.
    #[error("PostgreSQL {0}: connection thread stopped")]
    Stopped(String),
}

type Job = Box<dyn FnOnce(&mut Link) + Send>;

/// A connection on a thread of its own.
pub struct PgLink {
    jobs: mpsc::Sender<Job>,
    target: String,
}

impl std::fmt::Debug for PgLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLink")
            .field("target", &self.target)
            .finish()
    }
}

/// The connection, made again when it breaks.
struct Link {
    config: postgres::Config,
    client: Option<Client>,
    target: String,
}

impl Link {
    fn client(&mut self) -> Result<&mut Client, PgError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        match &mut self.client {
            Some(c) => Ok(c),
            slot => {
                let c = self
                    .config
                    .connect(NoTls)
                    .map_err(|e| error(&self.target, &e))?;
                Ok(slot.insert(c))
            }
        }
    }
}

/// `host:port/database as user`, never the password.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} as {}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)")
    )
}

/// How every session hotline opens connects to `url`: the connect
/// timeout and `application_name` set (sessions show up by role in
/// `pg_stat_activity`); with the target's description for errors.
fn session_config(url: &str, application: &str) -> Result<(postgres::Config, String), PgError> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| PgError::Url(e.to_string()))?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name(application);
    let target = describe(&config);
    Ok((config, target))
}

/// `e` naming `target`, with the server's own message when there is one
/// (rust-postgres's `Display` says only "db error").
pub fn error(target: &str, e: &postgres::Error) -> PgError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                source = inner.source();
            }
            s
        }
    };
    PgError::Server {
        target: target.to_string(),
        detail,
    }
}

/// Whether `e` leaves the connection unusable: not an answer of the
/// server's (an I/O error, a closed connection), or a FATAL one.
fn broken(e: &postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error()
            .is_none_or(|db| matches!(db.severity(), "FATAL" | "PANIC"))
}

impl PgLink {
    /// Connect to `url`, run `setup` (the schema's migrations) on the new
    /// connection, and start the thread `name`; fails if the server cannot
    /// be reached now or `setup` fails.
    pub fn connect<S>(url: &str, name: &str, setup: S) -> Result<Self, PgError>
    where
        S: FnOnce(&mut Client, &str) -> Result<(), PgError> + Send + 'static,
    {
        let (config, target) = session_config(url, "hotline")?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel();
        let mut link = Link {
            config,
            client: None,
            target: target.clone(),
        };
        let stopped = PgError::Stopped(target.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let target = link.target.clone();
                let first = link.client().and_then(|c| setup(c, &target));
                let ok = first.is_ok();
                ready.send(first).ok();
                if !ok {
                    return;
                }
                while let Ok(job) = queue.recv() {
                    job(&mut link);
                }
            })
            .map_err(|_| stopped.clone())?;
        started.recv().map_err(|_| stopped)??;
        Ok(Self { jobs, target })
    }

    /// `host:port/database as user`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Run `f` on the connection and wait for its result.
    pub fn run<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |link: &mut Link| {
            let out = match link.client() {
                Ok(c) => f(c),
                Err(e) => {
                    done.send(Err(e)).ok();
                    return;
                }
            };
            let out = out.map_err(|e| {
                // The connection is gone (reset, or ended by the server)
                // even when the client has not noticed yet: make it again
                // for the next job.
                if broken(&e) {
                    link.client = None;
                }
                error(&link.target, &e)
            });
            done.send(out).ok();
        });
        let stopped = || PgError::Stopped(self.target.clone());
        self.jobs.send(job).map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }
}

/// Bring `schema` to this build's version: `migrations[i]` takes it from
/// version `i` to `i + 1`; `table` records one row per version applied.
/// Runs in one transaction under the advisory lock `lock`.
pub fn migrate(
    client: &mut Client,
    target: &str,
    schema: &'static str,
    table: &str,
    lock: i64,
    migrations: &[&str],
) -> Result<(), PgError> {
    let err = |e: postgres::Error| error(target, &e);
    let mut tx = client.transaction().map_err(err)?;
    tx.query("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .map_err(err)?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )"
    ))
    .map_err(err)?;
    let found: i64 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {table}"),
            &[],
        )
        .map_err(err)?
        .get(0);
    let known = migrations.len() as i64;
    if found > known {
        return Err(PgError::TooNew {
            target: target.to_string(),
            schema,
            found,
            known,
        });
    }
    for (version, sql) in (1_i64..).zip(migrations).skip(found.max(0) as usize) {
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            &format!("INSERT INTO {table} (version) VALUES ($1)"),
            &[&version],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}
