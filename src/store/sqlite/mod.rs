//! Opening SQLite databases the one way, and bringing their schemas to the
//! version this build writes (issue 13 §5: all SQLite opening and
//! migration code lives in `store`).
//!
//! - [`connect`]: a busy timeout of 5 s; read-write databases in WAL mode
//!   with the `synchronous` level asked for; read-only ones without
//!   SQLite's own mutex (the caller holds one);
//! - [`migrate`]: `PRAGMA foreign_keys` when the schema wants them, then
//!   the migrations `user_version` has not seen yet, in one immediate
//!   transaction that also writes the new `user_version`; a database newer
//!   than this build is refused ([`MigrateError::TooNew`]);
//! - the schemas of the databases that own their `user_version`:
//!   [`auth_schema`] (`auth.db`) and [`events_schema`] (`events.db`).
//!   `hotline.db`'s tables are created by the files of `store` that own
//!   them (`CREATE TABLE IF NOT EXISTS`).
//!
//! This part imports nothing of the crate, so the leaf rooms (`events`)
//! may use it while the rest of `store` (which knows `sip`'s and `ivr`'s
//! types) stays out of their reach; `tests/architecture.rs` checks both.
//! Each room wraps the errors with its database's path in its own error
//! type.

pub mod auth_schema;
pub mod events_schema;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use auth_schema::AUTH;
pub use events_schema::EVENTS;

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A database's schema: migration `i` brings `user_version` `i` to `i + 1`.
pub struct Schema {
    /// The migrations, oldest first.
    pub migrations: &'static [&'static str],
    /// Whether `PRAGMA foreign_keys = ON` (per connection).
    pub foreign_keys: bool,
}

impl Schema {
    /// The `user_version` this build writes.
    pub const fn version(&self) -> i64 {
        self.migrations.len() as i64
    }
}

/// How hard a commit is pushed to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// A commit is a write to the WAL (survives the process, not a power
    /// cut).
    Normal,
    /// A commit is fsynced.
    Full,
}

/// How a database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read-write (created if missing), WAL.
    ReadWrite(Synchronous),
    /// Read-only, without SQLite's mutex.
    ReadOnly,
}

/// Why a schema could not be brought to this build's version.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer build.
    #[error("schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// `user_version` found.
        found: i64,
        /// Highest version this build understands.
        supported: i64,
    },
}

/// Open `path` (see the module documentation for the settings).
pub fn connect(path: &Path, mode: Mode) -> rusqlite::Result<Connection> {
    match mode {
        Mode::ReadWrite(sync) => {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let sync = match sync {
                Synchronous::Normal => "NORMAL",
                Synchronous::Full => "FULL",
            };
            conn.pragma_update(None, "synchronous", sync)?;
            Ok(conn)
        }
        Mode::ReadOnly => {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            Ok(conn)
        }
    }
}

/// A private in-memory database (tests, a process without a data dir).
pub fn connect_in_memory() -> rusqlite::Result<Connection> {
    Connection::open_in_memory()
}

/// Bring `conn` to `schema`'s version (see the module documentation).
pub fn migrate(conn: &Connection, schema: &Schema) -> Result<(), MigrateError> {
    if schema.foreign_keys {
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = schema.version();
    if found == supported {
        return Ok(());
    }
    let Some(missing) = usize::try_from(found)
        .ok()
        .filter(|f| *f < schema.migrations.len())
        .map(|f| &schema.migrations[f..])
    else {
        return Err(MigrateError::TooNew { found, supported });
    };
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {} PRAGMA user_version = {supported}; COMMIT;",
        missing.join(" ")
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE a (x INTEGER);";
    const V2: &str = "CREATE TABLE b (y INTEGER);";
    const TWO: Schema = Schema {
        migrations: &[V1, V2],
        foreign_keys: false,
    };
    const ONE: Schema = Schema {
        migrations: &[V1],
        foreign_keys: true,
    };

    fn open(path: &Path, sync: Synchronous, schema: &Schema) -> Connection {
        let conn = connect(path, Mode::ReadWrite(sync)).expect("connect");
        migrate(&conn, schema).expect("migrate");
        conn
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version")
    }

    #[test]
    fn a_new_database_gets_every_migration_and_an_old_one_the_missing_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        let conn = open(&path, Synchronous::Normal, &ONE);
        assert_eq!(version(&conn), 1);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1);
        drop(conn);
        let conn = open(&path, Synchronous::Full, &TWO);
        assert_eq!(version(&conn), 2);
        conn.execute("INSERT INTO b (y) VALUES (1)", [])
            .expect("table of v2");
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        // Again: nothing to do.
        migrate(&conn, &TWO).expect("current");
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let conn = connect_in_memory().expect("memory");
        migrate(&conn, &TWO).expect("v2");
        match migrate(&conn, &ONE) {
            Err(MigrateError::TooNew { found, supported }) => {
                assert_eq!((found, supported), (2, 1));
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[test]
    fn read_only_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.db");
        open(&path, Synchronous::Normal, &ONE);
        let ro = connect(&path, Mode::ReadOnly).expect("read-only");
        assert!(ro.execute("INSERT INTO a (x) VALUES (1)", []).is_err());
    }
}
