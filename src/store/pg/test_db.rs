//! Test support: a throw-away PostgreSQL database per test, on the server
//! `./scripts/test` starts (`HOTLINE_TEST_PG_URL`, an admin connection
//! string such as `postgres://postgres@127.0.0.1:54329/postgres`).
//!
//! Without that variable a PostgreSQL test says so on stderr and passes,
//! so `cargo test` works on a machine without PostgreSQL; with
//! `HOTLINE_TEST_PG_REQUIRED` set (as `./scripts/test` does) it fails.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The admin connection string, if a server was given.
pub fn admin_url() -> Option<String> {
    match std::env::var("HOTLINE_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("HOTLINE_TEST_PG_REQUIRED").is_none(),
                "HOTLINE_TEST_PG_REQUIRED is set but HOTLINE_TEST_PG_URL is not"
            );
            eprintln!("PostgreSQL test skipped: HOTLINE_TEST_PG_URL is not set");
            None
        }
    }
}

/// A new empty database for the test `name`; its connection string.
pub fn database(name: &str) -> Option<String> {
    let admin = admin_url()?;
    let db = format!(
        "t_{}_{}_{}",
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
    .to_ascii_lowercase();
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("admin connection");
    // One statement each: neither runs inside a transaction block.
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .expect("drop test database");
    c.batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create test database");
    let base = admin.split('?').next().unwrap_or(&admin);
    let cut = base.rfind('/').expect("admin URL has a /database");
    Some(format!("{}/{db}", &base[..cut]))
}

/// Run `sql` on the database at `url` (to corrupt rows on purpose).
pub fn exec(url: &str, sql: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connection");
    c.batch_execute(sql).expect("sql");
}

/// One suite on both backends (issue 15 §1): for each test function
/// `name(&dyn Backing)`, a module `name` with an `embedded` test (on
/// `$embedded(tempdir)`) and a `postgres` test (on `$postgres(url)` of a
/// fresh database; skipped with a note when no server is given). Pass the
/// constructors as seen from inside that module (`super::EmbeddedDb`).
macro_rules! both_backends {
    (embedded: $embedded:path, postgres: $postgres:path, tests: [$($name:ident),* $(,)?]) => {$(
        mod $name {
            #[test]
            fn embedded() {
                let dir = tempfile::tempdir().expect("tempdir");
                super::$name(&$embedded(dir));
            }
            #[test]
            fn postgres() {
                if let Some(url) = $crate::store::pg::test_db::database(stringify!($name)) {
                    super::$name(&$postgres(url));
                }
            }
        }
    )*};
}
pub(crate) use both_backends;
