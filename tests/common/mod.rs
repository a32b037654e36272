//! Test support: start a real `hotline serve` on its own loopback network,
//! drive it with SIPp scenarios (tests/sipp/) and raw SIP, and read its
//! `/healthz` counters. Every test gets its own `127.N.0.0/24`: hotline on
//! `.1`, the carrier on `.10`, agents on `.21`, `.22` …, spare peers on `.30+`,
//! so tests run in parallel without port clashes.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // the test harness is a shell: it reads the clock

pub mod api;
pub mod audio;
pub mod baresip;
pub mod flows;
pub mod kamailio;
pub mod nats;
pub mod recorded;
pub mod shipped;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A test's own loopback network.
#[derive(Clone, Copy, Debug)]
pub struct Net(pub u8);

impl Net {
    /// `127.N.0.host`.
    pub fn ip(&self, host: u8) -> String {
        format!("127.{}.0.{}", self.0, host)
    }
    /// hotline's SIP address.
    pub fn sip(&self) -> String {
        format!("{}:5060", self.ip(1))
    }
    /// The carrier's address.
    pub fn carrier(&self) -> String {
        self.ip(10)
    }
    /// Agent `i` (0-based) address.
    pub fn agent(&self, i: u8) -> String {
        self.ip(21 + i)
    }
}

/// The throw-away PostgreSQL server `./scripts/test` starts
/// (`HOTLINE_TEST_PG_URL`, an admin URL), for tests that need one of their
/// own. Without it the test should say so and pass, unless
/// `HOTLINE_TEST_PG_REQUIRED` is set: then this fails.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("HOTLINE_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("HOTLINE_TEST_PG_REQUIRED").is_none(),
                "HOTLINE_TEST_PG_REQUIRED is set but HOTLINE_TEST_PG_URL is not"
            );
            eprintln!("skipped: HOTLINE_TEST_PG_URL is not set");
            None
        }
    }
}

/// Run `sql` (statements, one transaction block each) as the admin.
pub fn pg_admin(admin: &str, sql: &str) {
    postgres::Client::connect(admin, postgres::NoTls)
        .expect("admin connection")
        .batch_execute(sql)
        .expect(sql);
}

/// A fresh, empty database `db` on the server of `admin`; its URL.
pub fn pg_fresh_database(admin: &str, db: &str) -> String {
    pg_admin(admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    pg_admin(admin, &format!("CREATE DATABASE {db}"));
    let base = admin.split('?').next().unwrap_or(admin);
    let cut = base.rfind('/').expect("admin URL names a database");
    format!("{}/{db}", &base[..cut])
}

/// A fresh database `<test>_<pid>` on the throw-away server for nodes
/// that share one store (its URL), or `None` (said) when there is no
/// server and none is required.
pub fn shared_store_url(test: &str) -> Option<String> {
    let admin = pg_admin_url()?;
    Some(pg_fresh_database(
        &admin,
        &format!("{test}_{}", std::process::id()),
    ))
}

/// `[store]` for a test's hotline when the suite runs on PostgreSQL
/// (`HOTLINE_TEST_STORE_PG`: an admin URL of the server `./scripts/test`
/// started): one database per data directory, created on first use, so a
/// hotline restarted on the same directory finds its state again. Empty
/// otherwise (the embedded store).
pub fn store_section(data: &Path) -> String {
    let Ok(admin) = std::env::var("HOTLINE_TEST_STORE_PG") else {
        return String::new();
    };
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let db = format!("it_{:016x}", h.finish());
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("PostgreSQL admin");
    let exists = c
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .expect("pg_database")
        .is_some();
    if !exists {
        c.batch_execute(&format!("CREATE DATABASE {db}"))
            .expect("create test database");
    }
    let base = admin.split('?').next().unwrap_or(&admin);
    let cut = base.rfind('/').expect("admin URL names a database");
    format!("[store]\nurl = \"{}/{db}\"\n", &base[..cut])
}

/// Rows of `table` in the store of the hotline whose data directory is
/// `data` (`None`: no such table or database yet), whichever backend the
/// suite runs on.
pub fn stored_rows(data: &Path, table: &str) -> Option<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if std::env::var_os("HOTLINE_TEST_STORE_PG").is_some() {
        let section = store_section(data);
        let url = section.split('"').nth(1)?;
        let mut c = postgres::Client::connect(url, postgres::NoTls).ok()?;
        return c.query_one(&sql, &[]).ok()?.try_get(0).ok();
    }
    let conn = rusqlite::Connection::open_with_flags(
        data.join("hotline.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    conn.query_row(&sql, [], |r| r.get(0)).ok()
}

/// The `[store] url` of the hotline whose data directory is `data`, when
/// the suite runs on PostgreSQL (`store_section`). Callable from async
/// tests: the synchronous PostgreSQL client, which must not run on a tokio
/// worker, runs on a thread of its own.
pub fn store_url(data: &Path) -> Option<String> {
    std::thread::scope(|s| {
        s.spawn(|| store_section(data))
            .join()
            .expect("store_section")
    })
    .split('"')
    .nth(1)
    .map(str::to_string)
}

/// The events outbox of the hotline whose data directory is `data`: its
/// `events.db`, or the outbox tables of its PostgreSQL database when the
/// suite runs on PostgreSQL.
pub fn open_outbox(
    data: &Path,
    config: hotline::events::outbox::OutboxConfig,
) -> hotline::events::outbox::Outbox {
    use hotline::events::outbox::Outbox;
    match store_url(data) {
        Some(url) => Outbox::connect_with(&url, config),
        None => Outbox::open_with(&data.join("events.db"), config),
    }
    .expect("open the events outbox")
}

/// Store the events of a call made beforehand (a caller's history) in
/// `data`'s outbox, as the switch would have.
pub fn store_events(data: &Path, events: Vec<hotline::events::Event>) {
    use hotline::events::outbox::{NewEvent, OutboxConfig};
    let rows: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent {
            id: e.id.clone(),
            call_id: e.call_id.clone(),
            kind: e.kind().into(),
            body_json: serde_json::to_string(&e).expect("an event as JSON"),
        })
        .collect();
    open_outbox(data, OutboxConfig::default())
        .append(&rows)
        .expect("events stored");
}

/// What a process's death does to its store beyond what an in-process
/// "crash" (`std::mem::forget`) does: PostgreSQL ends the dead process's
/// sessions, and with them its locks (a sink's delivery lock among them).
/// Nothing for the embedded store.
pub fn store_sessions_died(data: &Path) {
    let Some(url) = store_url(data) else {
        return;
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("PostgreSQL");
            c.batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .expect("end the dead process's sessions");
        })
        .join()
        .expect("store_sessions_died")
    });
}

/// Every event stored by the hotline whose data directory is `data`, in
/// append order: (id, call id or "", type), whichever backend the suite
/// runs on. Empty when there is no outbox yet.
pub fn stored_events(data: &Path) -> Vec<(String, String, String)> {
    let sql = "SELECT id, COALESCE(call_id, ''), kind FROM outbox_event ORDER BY seq";
    if let Some(url) = store_url(data) {
        let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) else {
            return Vec::new();
        };
        return c
            .query(sql, &[])
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            })
            .unwrap_or_default();
    }
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        data.join("events.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare(sql) else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

/// The default test configuration for `net`, plus `extra` TOML appended.
pub fn config(net: Net, data: &Path, extra: &str) -> String {
    // The repository's ivr-flows/ claim 12345 and 12328; tests route those
    // numbers themselves unless they bring their own [ivr].
    let ivr = if extra.contains("[ivr]") {
        String::new()
    } else {
        format!(
            "[ivr]\nflows_dir = \"{}\"\n",
            data.join("no-flows").display()
        )
    };
    format!(
        r#"[sip]
listen = "{sip}"
realm = "hotline.test"

[http]
listen = "{http}:8080"

[data]
dir = "{data}"

[media]
address = "{http}"
rtp_port_min = 20000
rtp_port_max = 20999
rtp_timeout_secs = 20
codecs = ["PCMA", "PCMU"]

[registrar]
min_expires = 60
digest_algorithms = ["MD5", "SHA-256"]

[calls]
ring_timeout_secs = 8
no_response_secs = 3
shutdown_grace_secs = 5

[[trunk]]
name = "carrier"
inbound_cidrs = ["{carrier}/32"]
proxy = "{carrier}:5060"

[[agent]]
user = "1001"
password = "pass1001"
[[agent]]
user = "1002"
password = "pass1002"
[[agent]]
user = "1003"
password = "pass1003"
[[agent]]
user = "1004"
password = "pass1004"

{ops}
[[did]]
number = "12345"
ring = "sequential"
agents = ["1001", "1002"]

[[did]]
number = "12328"
ring = "simultaneous"
agents = ["1001", "1002"]
{ivr}
{store}
{extra}
"#,
        sip = net.sip(),
        http = net.ip(1),
        carrier = net.carrier(),
        data = data.display(),
        ops = ops_user(),
        store = if extra.contains("[store]") {
            String::new()
        } else {
            store_section(data)
        },
    )
}

/// A skill group `general` that number 12399 queues into (longest wait
/// 300 s) and the agents `(user, job number)` in it, signed in by their
/// phones' registration (password `pass<user>`).
pub fn general_queue(ring_timeout_secs: u32, acw_secs: u32, agents: &[(&str, &str)]) -> String {
    let mut text = format!(
        "\n[[group]]\nid = \"general\"\nring_timeout_secs = {ring_timeout_secs}\nacw_secs = {acw_secs}\nmax_wait_secs = 300\n\n[[did]]\nnumber = \"12399\"\nqueue = \"general\"\n"
    );
    for (user, job) in agents {
        text.push_str(&format!(
            "\n[[agent]]\nuser = \"{user}\"\npassword = \"pass{user}\"\njob_number = \"{job}\"\nskills = {{ general = 5 }}\nauto_login = true\n"
        ));
    }
    text
}

/// The `[[user]]` of the test admin ([`OPS_USER`]), for configs a test
/// brings itself.
pub fn ops_user() -> String {
    format!(
        "\n[[user]]\nusername = \"{OPS_USER}\"\nrole = \"admin\"\ntenant = \"*\"\npassword = \"{OPS_PASSWORD}\"\n"
    )
}

/// The global admin every test config has, for what tests read through
/// the authenticated API (the ACD's figures, callbacks).
pub const OPS_USER: &str = "test-ops";
/// Its password.
pub const OPS_PASSWORD: &str = "test-ops-password";

/// A running hotline.
pub struct Hotline {
    child: Option<Child>,
    /// Working directory (config, data, log).
    pub dir: tempfile::TempDir,
    /// Its network.
    pub net: Net,
    /// The test admin's token, once logged in.
    ops: std::sync::OnceLock<String>,
}

impl Hotline {
    /// Start with the default test config plus `extra`.
    pub fn start(net: Net, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("var");
        let text = config(net, &data, extra);
        Self::start_with(net, dir, &text)
    }

    /// Start with exactly `config_text`.
    pub fn start_with(net: Net, dir: tempfile::TempDir, config_text: &str) -> Self {
        Self::start_with_args(net, dir, config_text, &[])
    }

    /// [`Hotline::start_with`], with more command-line arguments.
    pub fn start_with_args(
        net: Net,
        dir: tempfile::TempDir,
        config_text: &str,
        args: &[&str],
    ) -> Self {
        let cfg = dir.path().join("hotline.toml");
        std::fs::write(&cfg, config_text).expect("write config");
        // Appended: a restarted hotline's log follows the first one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("hotline.log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--log", "debug"])
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn hotline");
        let mut h = Self {
            child: Some(child),
            dir,
            net,
            ops: std::sync::OnceLock::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if h.try_healthz().is_some() {
                return h;
            }
            if let Some(status) = h.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("hotline exited early ({status}):\n{}", h.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hotline did not come up:\n{}", h.log());
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hotline.log")).unwrap_or_default()
    }

    fn try_healthz(&self) -> Option<serde_json::Value> {
        let body = http_get(&format!("{}:8080", self.net.ip(1)), "/healthz")?;
        serde_json::from_str(&body).ok()
    }

    /// `GET /healthz`.
    pub fn healthz(&self) -> serde_json::Value {
        self.try_healthz()
            .unwrap_or_else(|| panic!("healthz failed:\n{}", self.log()))
    }

    /// Poll `/healthz` until `pred` holds (or panic after `within`).
    pub fn wait_for(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let h = self.healthz();
            if pred(&h) {
                return h;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last healthz: {h}\nlog:\n{}",
                    self.tail_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Last lines of the log, without the noisiest debug lines.
    pub fn tail_log(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("DEBUG")).collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Kill the process with SIGKILL (a crash) and wait for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Every file under the data directory whose name ends with `suffix`.
    pub fn data_files(&self, suffix: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, suffix, out);
                } else if p.to_string_lossy().ends_with(suffix) {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("var"), suffix, &mut out);
        out.sort();
        out
    }

    /// Send SIGTERM.
    pub fn sigterm(&self) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .expect("kill");
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Wait for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                self.child = None;
                return s;
            }
            if Instant::now() > deadline {
                panic!("hotline did not exit in time:\n{}", self.tail_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Counter at a JSON pointer of `/healthz`, e.g. `/calls/active`.
    pub fn counter(&self, pointer: &str) -> u64 {
        self.healthz()
            .pointer(pointer)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| panic!("no counter {pointer}"))
    }

    /// A token of the test config's global admin ([`OPS_USER`]), logged
    /// in once.
    pub fn ops_token(&self) -> String {
        self.ops.get_or_init(|| self.login_ops()).clone()
    }

    fn login_ops(&self) -> String {
        let addr = format!("{}:8080", self.net.ip(1));
        let body = format!(r#"{{"username":"{OPS_USER}","password":"{OPS_PASSWORD}"}}"#);
        let (code, reply) = http_send(&addr, "POST", "/api/v1/login", None, Some(&body))
            .unwrap_or_else(|| panic!("login as {OPS_USER}: no answer"));
        assert_eq!(code, 200, "login as {OPS_USER}: {reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).expect("login JSON");
        v["token"].as_str().expect("token").to_string()
    }

    /// `GET /api/v1/acd/stats` as the test admin: the body when 200.
    pub fn acd_stats(&self) -> Option<String> {
        let addr = format!("{}:8080", self.net.ip(1));
        let token = self.ops_token();
        let (code, body) = http_send(&addr, "GET", "/api/v1/acd/stats", Some(&token), None)?;
        (code == 200).then_some(body)
    }

    /// Agent `agent`'s entry (by job number) in the ACD's statistics, or
    /// `Null` while it has none.
    pub fn agent_state(&self, agent: &str) -> serde_json::Value {
        let body = self.acd_stats().expect("ACD stats");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        stats["stats"]["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent"] == agent).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// POST `json` to `path` as the test admin; `(status, body)`.
    pub fn post_as_ops(&self, path: &str, json: &str) -> Option<(u16, String)> {
        let addr = format!("{}:8080", self.net.ip(1));
        let token = self.ops_token();
        http_send(&addr, "POST", path, Some(&token), Some(json))
    }
}

impl Drop for Hotline {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
        if std::thread::panicking() {
            eprintln!("--- hotline log (tail) ---\n{}", self.tail_log());
            kill_test_phones(self.net);
        }
    }
}

/// A failed test's `hotline phone` and `hotline dial` processes on `net`
/// (a panic skips the test's own kill): killed, so they do not hold the
/// net's addresses for the next run on this machine. Found by their
/// command line (`/proc/PID/cmdline`: this build's binary, `phone` or
/// `dial`, an address on `net`).
fn kill_test_phones(net: Net) {
    let bin = env!("CARGO_BIN_EXE_hotline");
    let prefix = format!("127.{}.0.", net.0);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.filter_map(|e| e.ok()) {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = args.first().map(String::as_str) == Some(bin)
            && matches!(args.get(1).map(String::as_str), Some("phone" | "dial"))
            && args.iter().any(|a| a.starts_with(&prefix));
        if ours {
            eprintln!("killing the failed test's {}", args.join(" "));
            Command::new("kill").args(["-9", &pid]).status().ok();
        }
    }
}

/// Minimal HTTP/1.0 GET; the body on 200.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?;
    (code == "200").then(|| body.to_string())
}

/// Minimal HTTP/1.0 POST of a JSON body; `(status, body)`.
pub fn http_post(addr: &str, path: &str, json: &str) -> Option<(u16, String)> {
    http_send(addr, "POST", path, None, Some(json))
}

/// Minimal HTTP/1.0 request, with a bearer token and a JSON body when
/// given; `(status, body)`.
pub fn http_send(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = json.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Start our scripted phone (`hotline phone`) as agent `user` (password
/// `pass<user>`) on agent address `i`, with extra arguments; its JSON
/// reports go to the piped stdout. Returns once it has registered.
pub fn start_phone(h: &Hotline, i: u8, user: &str, args: &[&str]) -> Child {
    let before = h.counter("/registrations");
    let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args([
            "phone",
            "--bind",
            &format!("{}:5060", h.net.agent(i)),
            "--registrar",
            &h.net.sip(),
        ])
        .args(["--user", user, "--password", &format!("pass{user}")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hotline phone");
    h.wait_for("the phone to register", Duration::from_secs(10), |v| {
        v["registrations"].as_u64().unwrap_or(0) > before
    });
    child
}

/// `hotline dial` from the carrier's address to `number` at hotline, with
/// extra arguments (spawn it or take its output).
pub fn dial(net: Net, number: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotline"));
    c.args([
        "dial",
        &format!("sip:{number}@{}", net.sip()),
        "--bind",
        &format!("{}:5062", net.carrier()),
    ])
    .args(args);
    c
}

/// A citizen calling 12399 with a 440 Hz voice, hanging up after `secs`
/// and recording what they hear to `wav`: `hotline dial` spawned with its
/// report on standard output.
pub fn citizen(net: Net, secs: &str, wav: &Path) -> Child {
    dial(
        net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            secs,
            "--record",
            wav.to_str().expect("a UTF-8 path"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn hotline dial")
}

/// The JSON report a phone printed.
pub fn report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Path of a SIPp scenario.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A running SIPp.
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    name: String,
}

impl Sipp {
    /// Start SIPp with `scenario` on `local_ip:5060` and extra args (the
    /// remote address, `-s`, `-m` … are the caller's).
    pub fn start(scenario_name: &str, local_ip: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(scenario(scenario_name))
            .args([
                "-i",
                local_ip,
                "-p",
                "5060",
                "-bind_local",
                "-nostdin",
                "-trace_err",
            ])
            .args(["-timeout", "60s"])
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp is installed (the test command installs sip-tester)");
        Self {
            child,
            dir,
            name: scenario_name.to_string(),
        }
    }

    /// Whether SIPp has exited (its result is then [`Self::wait`]'s).
    pub fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait for SIPp to finish; its exit code (0: every call succeeded).
    pub fn wait(mut self, within: Duration) -> SippResult {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait sipp") {
                return SippResult {
                    code: s.code().unwrap_or(-1),
                    errors: self.errors(),
                    name: self.name.clone(),
                };
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                self.child.wait().ok();
                return SippResult {
                    code: -2,
                    errors: format!("timed out after {within:?}\n{}", self.errors()),
                    name: self.name.clone(),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn errors(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains("errors") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A finished SIPp run.
#[derive(Debug)]
pub struct SippResult {
    /// Exit code: 0 all calls succeeded, 1 some failed, -2 timed out.
    pub code: i32,
    /// SIPp's error log.
    pub errors: String,
    /// Scenario name.
    pub name: String,
}

impl SippResult {
    /// Panic unless every call succeeded.
    pub fn assert_ok(&self, hotline: &Hotline) {
        assert_eq!(
            self.code,
            0,
            "SIPp {} failed (code {}):\n{}\n--- hotline ---\n{}",
            self.name,
            self.code,
            self.errors,
            hotline.tail_log()
        );
    }
}

/// Register agent `user` (password `pass<user>`) from `ip:5060` with SIPp.
pub fn register(h: &Hotline, user: &str, ip: &str) {
    let pass = format!("pass{user}");
    let sip = h.net.sip();
    Sipp::start(
        "agent_register.xml",
        ip,
        &["-s", user, "-ap", &pass, "-m", "1", &sip],
    )
    .wait(Duration::from_secs(20))
    .assert_ok(h);
}

/// A raw SIP peer over UDP for hand-made (and malformed) messages.
pub struct RawSip {
    /// Socket.
    pub sock: UdpSocket,
    /// Where hotline listens.
    pub to: String,
}

impl RawSip {
    /// Bind `ip:0`.
    pub fn new(ip: &str, to: &str) -> Self {
        let sock = UdpSocket::bind(format!("{ip}:0")).expect("bind raw");
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .ok();
        Self {
            sock,
            to: to.to_string(),
        }
    }

    /// Local address.
    pub fn local(&self) -> String {
        self.sock
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Send bytes.
    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, &self.to).expect("send");
    }

    /// Next datagram as text, skipping provisional responses; `None` on timeout.
    pub fn recv_final(&self) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 1") {
                continue;
            }
            return Some(text);
        }
    }
}

/// Status code of a response text.
pub fn status(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// All values of header `name` in a response.
pub fn headers<'a>(resp: &'a str, name: &str) -> Vec<&'a str> {
    resp.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// Poll `f` every 100 ms until it returns `Some`, at most `within` worth of
/// polls (then panic naming `what`).
pub fn wait_until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..within.as_millis().div_ceil(100) {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
