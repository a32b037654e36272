//! Kamailio running the shipped `deploy/kamailio/kamailio.cfg` (issue 15,
//! the SIP edge) for tests: started from a temporary directory with its
//! node and carrier lists, in its own process group, its `edge: …` log
//! lines read back.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Net, RawSip};

/// The edge's address on its network.
pub fn edge_ip(net: Net) -> String {
    net.ip(5)
}

/// Kamailio's binary (Debian's `kamailio` package puts it in /usr/sbin).
pub fn kamailio_bin() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/kamailio");
    if sbin.exists() {
        return sbin;
    }
    let out = Command::new("sh")
        .args(["-c", "command -v kamailio"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "kamailio is not installed (Debian package kamailio; scripts/test installs it)"
    );
    PathBuf::from(path)
}

/// Kamailio with the shipped configuration, run from a temporary directory
/// in its own process group (its worker processes go with it).
pub struct Kamailio {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: String,
}

impl Kamailio {
    /// The edge at `net`'s `.5`, dispatching to `nodes` (SIP URIs) and
    /// admitting new calls from `carriers` (addresses).
    pub fn start(net: Net, nodes: &[String], carriers: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let nodes_file = d.join("dispatcher.list");
        let list: String = nodes
            .iter()
            .enumerate()
            .map(|(i, uri)| format!("1 {uri} 0 0 node=node-{i}\n"))
            .collect();
        std::fs::write(&nodes_file, list).expect("nodes list");
        let carriers_file = d.join("carriers.list");
        let list: String = carriers.iter().map(|c| format!("1 {c} 32\n")).collect();
        std::fs::write(&carriers_file, list).expect("carriers list");
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kamailio/kamailio.cfg");
        let log = std::fs::File::create(d.join("kamailio.log")).expect("log");
        let child = Command::new(kamailio_bin())
            .args(["-DD", "-E", "-f"])
            .arg(&cfg)
            .arg("-Y")
            .arg(d)
            .arg("-w")
            .arg(d)
            .args(["-A", &format!("EDGE_LISTEN=udp:{}:5060", edge_ip(net))])
            .args([
                "-A",
                &format!("EDGE_NODES_FILE=\"{}\"", nodes_file.display()),
            ])
            .args([
                "-A",
                &format!("EDGE_CARRIERS_FILE=\"{}\"", carriers_file.display()),
            ])
            .args([
                "-A",
                &format!("EDGE_CTL=\"unix:{}\"", d.join("kamailio_ctl").display()),
            ])
            .args(["-A", "EDGE_CHILDREN=2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .current_dir(d)
            .spawn()
            .expect("spawn kamailio");
        let mut k = Self {
            child: Some(child),
            dir,
            addr: format!("{}:5060", edge_ip(net)),
        };
        // Up when it answers an OPTIONS to itself.
        let raw = RawSip::new(&net.ip(12), &k.addr);
        for i in 0..40 {
            if let Some(status) = k.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("kamailio exited ({status}):\n{}", k.log());
            }
            raw.send(options(&raw, &edge_ip(net), &format!("edge-up-{i}")).as_bytes());
            if raw.recv_final().map(|r| super::status(&r)) == Some(200) {
                return k;
            }
        }
        panic!("kamailio did not answer OPTIONS:\n{}", k.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// The edge's own lines (`edge: …`), in order.
    pub fn edge_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.find("edge: ").map(|i| l[i..].to_string()))
            .collect()
    }

    /// Poll the edge's lines (every 20 ms, at most `within`) until one
    /// after the first `skip` satisfies `pred`: the line and when it was
    /// seen.
    pub fn wait_line(
        &self,
        what: &str,
        skip: usize,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (String, Instant) {
        for _ in 0..within.as_millis().div_ceil(20) {
            if let Some(l) = self.edge_lines().into_iter().skip(skip).find(|l| pred(l)) {
                return (l, Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; edge log:\n{}", self.tail());
    }

    pub fn tail(&self) -> String {
        let lines = self.edge_lines();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM to the group: the main process stops its workers.
        let group = format!("-{}", child.id());
        Command::new("kill")
            .args(["-TERM", "--", &group])
            .status()
            .ok();
        let exited = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .status()
                .ok();
            child.wait().ok();
        }
        if std::thread::panicking() {
            eprintln!("--- kamailio log (edge lines) ---\n{}", self.tail());
        }
    }
}

/// An OPTIONS from `raw` to `host`.
pub fn options(raw: &RawSip, host: &str, call_id: &str) -> String {
    let me = raw.local();
    format!(
        "OPTIONS sip:{host}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p\r\nTo: <sip:{host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}
