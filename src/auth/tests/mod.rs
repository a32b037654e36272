//! Store-level tests: users, login, sessions, lockout, audit, persistence,
//! two nodes; every test that touches the store runs on both backends
//! (`both_backends!` in each file). This file: the backends under test and
//! the shared helpers.

use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::store::{normalize_username, MAX_AUDIT_PAGE};
use super::*;
use crate::store::test_pg;

const T0: i64 = 1_750_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// One auth database under test (issue 15 §1: the same suite on both
/// backends; the pattern of `store::conformance`).
trait Backing {
    /// A new handle on it: after the last is dropped, a reopen; while
    /// another is held, a second node.
    fn try_open(&self) -> Result<AuthStore, AuthError>;
    /// [`Backing::try_open`], which must work.
    fn open(&self) -> AuthStore {
        self.try_open().expect("open the auth store")
    }
    /// Run SQL on it directly; the database's refusal as text.
    fn exec(&self, sql: &str) -> Result<(), String>;
    /// The first column (text) of every row of a query.
    fn strings(&self, sql: &str) -> Vec<String>;
    /// The real name of a table of `auth.db` (`auth_user` for `user` on
    /// PostgreSQL).
    fn table(&self, name: &str) -> String;
    /// Mark the schema as written by a newer build.
    fn set_schema_version(&self, version: i64);
    /// What an internal error names: the file or the database.
    fn name(&self) -> String;
    /// The database's files, raw (SQLite; none on PostgreSQL).
    fn files(&self) -> Vec<Vec<u8>>;
}

struct EmbeddedDb(tempfile::TempDir);

impl EmbeddedDb {
    fn path(&self) -> std::path::PathBuf {
        self.0.path().join("auth.db")
    }
}

impl Backing for EmbeddedDb {
    fn try_open(&self) -> Result<AuthStore, AuthError> {
        AuthStore::open(&self.path())
    }
    fn exec(&self, sql: &str) -> Result<(), String> {
        Connection::open(self.path())
            .expect("sqlite")
            .execute_batch(sql)
            .map_err(|e| e.to_string())
    }
    fn strings(&self, sql: &str) -> Vec<String> {
        let c = Connection::open(self.path()).expect("sqlite");
        let mut stmt = c.prepare(sql).expect("prepare");
        let rows = stmt
            .query_map([], |r| r.get::<_, Option<String>>(0))
            .expect("query")
            .map(|r| r.expect("row").unwrap_or_default())
            .collect();
        rows
    }
    fn table(&self, name: &str) -> String {
        name.to_owned()
    }
    fn set_schema_version(&self, version: i64) {
        Connection::open(self.path())
            .expect("sqlite")
            .pragma_update(None, "user_version", version)
            .expect("user_version");
    }
    fn name(&self) -> String {
        "auth.db".into()
    }
    fn files(&self) -> Vec<Vec<u8>> {
        let path = self.path();
        vec![
            std::fs::read(&path).expect("auth.db"),
            std::fs::read(path.with_extension("db-wal")).unwrap_or_default(),
        ]
    }
}

struct PostgresDb(String);

impl PostgresDb {
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.0, postgres::NoTls).expect("connection")
    }
}

impl Backing for PostgresDb {
    fn try_open(&self) -> Result<AuthStore, AuthError> {
        AuthStore::connect(&self.0)
    }
    fn exec(&self, sql: &str) -> Result<(), String> {
        self.client().batch_execute(sql).map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned())
        })
    }
    fn strings(&self, sql: &str) -> Vec<String> {
        self.client()
            .query(sql, &[])
            .expect("query")
            .iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .collect()
    }
    fn table(&self, name: &str) -> String {
        format!("auth_{name}")
    }
    fn set_schema_version(&self, version: i64) {
        test_pg::exec(
            &self.0,
            &format!("INSERT INTO auth_migration (version) VALUES ({version})"),
        );
    }
    fn name(&self) -> String {
        self.0.rsplit('/').next().unwrap_or_default().to_owned()
    }
    fn files(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

fn new_user(
    username: &str,
    role: Role,
    tenant: &str,
    agent_id: Option<&str>,
    password: &str,
) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: format!("{username} ({tenant})"),
        role,
        tenant: tenant.into(),
        agent_id: agent_id.map(Into::into),
        credential: Credential::Password(password.into()),
        disabled: false,
        allow_weak: false,
    }
}

fn agent(username: &str, tenant: &str, agent_id: &str) -> NewUser {
    new_user(
        username,
        Role::Agent,
        tenant,
        Some(agent_id),
        "agent-pass-1",
    )
}

fn seeded(db: &dyn Backing, users: &[NewUser]) -> AuthStore {
    let s = db.open();
    for u in users {
        s.upsert_user(u, T0).unwrap();
    }
    s
}

fn principal(user: &str, role: Role, tenant: &str) -> Principal {
    Principal {
        user: user.into(),
        role,
        tenant: tenant.into(),
        agent_id: None,
    }
}

mod lockout;
mod nodes;
mod persistence;
mod sessions;
mod tenants;
mod users;
