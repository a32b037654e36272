//! A plain `nats-server` child on loopback for tests of the nodes' one
//! ACD (core NATS: request/reply and subjects, no JetStream), stopped by
//! PID when dropped. Debian: `apt-get install nats-server` (/usr/sbin);
//! `NATS_SERVER=/path` overrides.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server.
pub struct Nats {
    child: Child,
    bin: PathBuf,
    port: u16,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl Nats {
    /// Start one on a free port; `None` (said on stderr) when the binary
    /// is missing and `HOTLINE_TEST_PG_REQUIRED` (the full suite) is not set.
    pub fn start() -> Option<Self> {
        let Some(bin) = find() else {
            assert!(
                std::env::var_os("HOTLINE_TEST_PG_REQUIRED").is_none(),
                "nats-server is required by the full suite (apt-get install nats-server)"
            );
            eprintln!("skipped: nats-server not installed");
            return None;
        };
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Some(Self {
            child: spawn(&bin, port),
            bin,
            port,
            url: format!("nats://127.0.0.1:{port}"),
        })
    }

    /// Stop the server (the clients see it go away).
    pub fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.bin, self.port);
    }
}

fn spawn(bin: &PathBuf, port: u16) -> Child {
    let mut child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nats-server");
    for _ in 0..200 {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    child.kill().ok();
    child.wait().ok();
    panic!("nats-server not listening on {port}");
}

fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
