//! Encryption in transit from outside (issue 14 §4): SIP over TLS and
//! HTTPS with a certificate made by `openssl req`, tried with real TLS
//! clients.
//!
//! - `openssl s_client` sends OPTIONS over TLS (checking hotline's
//!   certificate) and gets 200; a hostile message over TLS gets the same
//!   verdict as over UDP/TCP (505); a plain-text client on the TLS port is
//!   refused at the handshake and hotline keeps serving.
//! - baresip registers over TLS (verifying the certificate against the CA
//!   file), auto-answers a queued carrier call that hotline sends it over
//!   that TLS connection, and audio flows both ways.
//! - curl reaches `/healthz` and the authenticated API over HTTPS with the
//!   CA file; plain HTTP to the HTTPS port gets nothing.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::audio::windows_with;
use common::baresip::{samples, write_tone, Baresip};
use common::tls::{certificate, queued_agent_over_tls, tls_section};
use common::{Hotline, Net};

/// Send `message` over TLS to `addr` with `openssl s_client` (checking the
/// certificate against `ca`); everything it printed of the answer.
fn s_client(addr: &str, ca: &Path, message: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-quiet",
            "-no_ign_eof",
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(message).expect("write");
    // Keep stdin open long enough for the answer, then close it: s_client
    // exits on EOF.
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).ok();
    }
    child.wait().ok();
    out
}

fn options(net: Net, branch: &str, version: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{sip} SIP/{version}\r\nVia: SIP/2.0/TLS {me}:5099;branch=z9hG4bK-{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=1\r\nTo: <sip:{sip}>\r\nCall-ID: {branch}@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        sip = net.sip(),
        me = net.ip(50),
    )
    .into_bytes()
}

#[test]
fn sip_over_tls_is_gated_like_tcp_and_carries_a_call_to_a_tls_phone() {
    let net = Net(230);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, text) = queued_agent_over_tls(net, dir.path(), "");
    let h = Hotline::start_with(net, dir, &text);
    let tls_addr = format!("{}:5061", net.ip(1));

    let answer = s_client(&tls_addr, &ca, &options(net, "tls-ok", "2.0"));
    assert!(
        answer.contains("SIP/2.0 200 OK"),
        "OPTIONS over TLS: {answer}"
    );
    let answer = s_client(&tls_addr, &ca, &options(net, "tls-v7", "7.0"));
    assert!(answer.contains("SIP/2.0 505"), "SIP/7.0 over TLS: {answer}");
    // A plain-text client on the TLS port: refused at the handshake.
    let mut plain = TcpStream::connect(&tls_addr).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(3))).ok();
    plain.write_all(&options(net, "plain", "2.0")).ok();
    let mut buf = [0u8; 512];
    let got = plain.read(&mut buf).unwrap_or(0);
    assert!(
        !String::from_utf8_lossy(&buf[..got]).contains("SIP/2.0"),
        "no SIP answer to plain text on the TLS port"
    );
    drop(plain);

    // baresip over TLS, checking hotline's certificate.
    let audio = tempfile::tempdir().expect("tempdir");
    let tone = audio.path().join("agent-1000hz.wav");
    write_tone(&tone, 1000.0, 120);
    let phone = Baresip::start_with("1501", &net.agent(0), &net.ip(1), &tone, Some(&ca));
    h.wait_for(
        "baresip to register over TLS",
        Duration::from_secs(20),
        |v| v["registrations"] == 1,
    );

    let carrier_heard = audio.path().join("carrier-heard.wav");
    let heard = carrier_heard.to_str().expect("utf-8 path");
    let mut report = serde_json::Value::Null;
    // Auto-login may lag the registration by a moment: dial until queued
    // and answered (at most three tries).
    for _ in 0..3 {
        let out = common::dial(
            net,
            "12399",
            &["--tone", "440", "--hangup-after", "6", "--record", heard],
        )
        .stderr(Stdio::null())
        .output()
        .expect("hotline dial");
        report = common::report(&out);
        if report["status"] == 200 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(
        report["status"],
        200,
        "the call to the TLS phone is answered: {report}\n{}",
        phone.log()
    );
    // baresip → carrier, over the TLS-signalled call.
    let (_, carrier) = samples(&carrier_heard).expect("the carrier's recording");
    let n = windows_with(&carrier, 1000.0, 0.6);
    assert!(
        n >= 100,
        "the carrier heard the TLS phone's 1000 Hz in {n} windows"
    );
    // Carrier → baresip.
    let deadline = Instant::now() + Duration::from_secs(20);
    let heard = loop {
        if let Some((_, s)) = phone.heard().as_deref().and_then(samples) {
            break s;
        }
        assert!(Instant::now() < deadline, "baresip's dump of the call");
        std::thread::sleep(Duration::from_millis(100));
    };
    let n = windows_with(&heard, 440.0, 0.6);
    assert!(
        n >= 100,
        "the TLS phone heard the carrier's 440 Hz in {n} windows"
    );
    // The phone registered from its TLS connection's address, and the
    // INVITE went to that address: nothing else listens there (it is the
    // phone's client port), so the call could only travel that connection.
    let log = h.log();
    let source = log
        .lines()
        .find(|l| l.contains("registered agent=1501"))
        .and_then(|l| l.split("source=").nth(1))
        .map(|s| s.trim().to_string())
        .expect("the registration's source in the log");
    assert!(
        log.contains(&format!(
            "SIP connection open remote={source} transport=TLS"
        )),
        "the phone registered over TLS from {source}"
    );
}

/// hotline with HTTPS on `[http] listen`, stopped when dropped.
struct HttpsHotline {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for HttpsHotline {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("hotline.log")).unwrap_or_default();
            eprintln!("--- hotline log ---\n{log}");
        }
    }
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)")
}

#[test]
fn the_api_is_served_over_https_to_a_client_that_checks_the_certificate() {
    let net = Net(231);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificate(dir.path(), &net.ip(1));
    let base = common::config(net, &dir.path().join("var"), &tls_section(&cert, &key));
    let http = format!("[http]\nlisten = \"{}:8080\"\n", net.ip(1));
    assert!(base.contains(&http));
    let text = base.replace(&http, &format!("{http}tls = true\n"));
    let cfg = dir.path().join("hotline.toml");
    std::fs::write(&cfg, text).expect("config");
    let log = std::fs::File::create(dir.path().join("hotline.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("hotline");
    let h = HttpsHotline { child, dir };
    let ca = ca.to_str().expect("utf-8");
    let base_url = format!("https://{}:8080", net.ip(1));
    let health = format!("{base_url}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let out = curl(&["--cacert", ca, &health]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "hotline answers over HTTPS");
        std::thread::sleep(Duration::from_millis(100));
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["status"], "ok", "{v}");

    // The authenticated API over HTTPS.
    let login = format!(
        "{{\"username\":\"{}\",\"password\":\"{}\"}}",
        common::OPS_USER,
        common::OPS_PASSWORD
    );
    let out = curl(&[
        "--cacert",
        ca,
        "-H",
        "Content-Type: application/json",
        "-d",
        &login,
        &format!("{base_url}/api/v1/login"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("login JSON");
    let token = v["token"].as_str().expect("a token").to_string();
    let out = curl(&[
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base_url}/api/v1/acd/stats"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "an authenticated call over HTTPS"
    );
    let out = curl(&[
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base_url}/api/v1/acd/stats"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "401",
        "anonymous is still refused"
    );

    // Plain HTTP to the HTTPS port gets no HTTP answer, and hotline goes on.
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{}:8080/healthz", net.ip(1)),
    ]);
    assert_ne!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "plain HTTP is not served"
    );
    // A client that does not trust the certificate refuses it.
    let out = curl(&[&health]);
    assert!(
        !out.status.success(),
        "an unknown certificate is refused by a checking client"
    );
    let out = curl(&["--cacert", ca, &health]);
    assert!(out.status.success(), "still serving HTTPS");
    drop(h);
}

/// Hotline's user+system CPU time so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// hotline's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One OPTIONS over a fresh connection (TLS when `tls`), answered 200.
fn ping(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    msg: &[u8],
) -> Box<dyn std::any::Any> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut buf = vec![0u8; 2048];
        match tls {
            Some(c) => {
                let name = rustls::pki_types::ServerName::try_from("hotline.test").expect("name");
                let mut s = c.connect(name, tcp).await.expect("TLS handshake");
                s.write_all(msg).await.expect("write");
                let n = s.read(&mut buf).await.expect("read");
                assert!(
                    buf[..n].starts_with(b"SIP/2.0 200"),
                    "{}",
                    String::from_utf8_lossy(&buf[..n])
                );
                Box::new(s) as Box<dyn std::any::Any>
            }
            None => {
                let mut s = tcp;
                s.write_all(msg).await.expect("write");
                let n = s.read(&mut buf).await.expect("read");
                assert!(
                    buf[..n].starts_with(b"SIP/2.0 200"),
                    "{}",
                    String::from_utf8_lossy(&buf[..n])
                );
                Box::new(s) as Box<dyn std::any::Any>
            }
        }
    })
}

#[test]
fn what_tls_costs_per_connection() {
    // Figures for BENCHMARKS.md (printed, never asserted): hotline's CPU
    // and memory for 200 phones each holding a SIP connection open, over
    // TCP and over TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let net = Net(232);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificate(dir.path(), &net.ip(1));
    // 400 connections from one address: no flood limit for this one.
    let extra = format!("{}\n[sip.flood]\nrate = 0\n", tls_section(&cert, &key));
    let base = common::config(net, &dir.path().join("var"), &extra);
    let realm = "realm = \"hotline.test\"\n";
    let text = base.replace(
        realm,
        &format!("{realm}transports = [\"udp\", \"tcp\", \"tls\"]\n"),
    );
    let h = Hotline::start_with(net, dir, &text);
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca).expect("pem") {
        roots.add(c.expect("cert")).expect("root");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = 200;
    let mut figures = Vec::new();
    for (name, port, tls) in [("TCP", 5060, None), ("TLS", 5061, Some(&connector))] {
        let addr = format!("{}:{port}", net.ip(1));
        let (cpu0, rss0) = (cpu_secs(h.pid()), rss_kib(h.pid()));
        let held: Vec<_> = (0..n)
            .map(|i| {
                ping(
                    &rt,
                    &addr,
                    tls,
                    &options(net, &format!("cost-{name}-{i}"), "2.0"),
                )
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let (cpu1, rss1) = (cpu_secs(h.pid()), rss_kib(h.pid()));
        figures.push(format!(
            "{name}: {:.2} ms CPU per connection + OPTIONS, {:.1} KiB resident per open connection",
            (cpu1 - cpu0) * 1000.0 / f64::from(n),
            (rss1.saturating_sub(rss0)) as f64 / f64::from(n)
        ));
        drop(held);
    }
    eprintln!(
        "tls cost ({n} connections, debug build): {}",
        figures.join("; ")
    );
    let v = h.healthz();
    assert_eq!(v["status"], "ok", "{v}");
}

/// `openssl s_server` on `addr` with `cert`/`key`: a carrier's TLS port
/// that prints what it receives into `out`; stopped when dropped.
struct TlsCarrier(Child);

impl TlsCarrier {
    fn start(addr: &str, cert: &Path, key: &Path, out: &Path) -> Self {
        let child = Command::new("openssl")
            .args(["s_server", "-accept", addr, "-quiet"])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(out).expect("s_server output"))
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        Self(child)
    }
}

impl Drop for TlsCarrier {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn a_trunk_dialled_over_tls_gets_its_invite_on_a_verified_connection_and_never_in_the_clear() {
    let net = Net(234);
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let stranger = dir.path().join("stranger");
    for d in [&ours, &theirs, &stranger] {
        std::fs::create_dir(d).expect("dir");
    }
    let (_, cert, key) = certificate(&ours, &net.ip(1));
    let (carrier_ca, carrier_cert, carrier_key) = certificate(&theirs, &net.carrier());
    // A second carrier whose certificate no configured CA signed.
    let (_, stranger_cert, stranger_key) = certificate(&stranger, &net.ip(11));
    let out = dir.path().join("carrier.txt");
    let stranger_out = dir.path().join("stranger.txt");
    let _carrier = TlsCarrier::start(
        &format!("{}:5061", net.carrier()),
        &carrier_cert,
        &carrier_key,
        &out,
    );
    let _stranger = TlsCarrier::start(
        &format!("{}:5061", net.ip(11)),
        &stranger_cert,
        &stranger_key,
        &stranger_out,
    );
    let trunks = format!(
        "\n[[trunk]]\nname = \"secure\"\ntransport = \"tls\"\nproxy = \"{carrier}:5061\"\n\
         tls_ca_file = \"{ca}\"\n\n\
         [[trunk]]\nname = \"untrusted\"\ntransport = \"tls\"\nproxy = \"{stranger}:5061\"\n\
         tls_ca_file = \"{ca}\"\n\n\
         [[did]]\nnumber = \"12377\"\nforward_to = \"13900000001\"\nforward_trunk = \"secure\"\n\n\
         [[did]]\nnumber = \"12378\"\nforward_to = \"13900000002\"\nforward_trunk = \"untrusted\"\n",
        carrier = net.carrier(),
        stranger = net.ip(11),
        ca = carrier_ca.display(),
    );
    let base = common::config(
        net,
        &dir.path().join("var"),
        &format!("{}{trunks}", tls_section(&cert, &key)),
    );
    let realm = "realm = \"hotline.test\"\n";
    let text = base.replace(
        realm,
        &format!("{realm}transports = [\"udp\", \"tcp\", \"tls\"]\n"),
    );
    let h = Hotline::start_with(net, dir, &text);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h.log().contains("SIP over TLS to the trunk: connected") {
        assert!(Instant::now() < deadline, "the TLS trunk connects");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A call forwarded through the TLS trunk: its INVITE arrives on the
    // verified connection (s_server prints what it decrypted).
    let dialled = common::dial(net, "12377", &["--hangup-after", "1"])
        .stderr(Stdio::null())
        .output()
        .expect("hotline dial");
    let report = common::report(&dialled);
    assert_ne!(
        report["status"], 200,
        "nobody answers at s_server: {report}"
    );
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        got.contains("INVITE sip:13900000001@"),
        "the carrier got the INVITE over TLS: {got:?}\n{}",
        h.log()
    );
    assert!(
        got.contains("Via: SIP/2.0/TLS"),
        "sent over TLS, and says so: {got}"
    );

    // The trunk whose certificate does not verify: no connection, and its
    // call fails without a byte of SIP in the clear.
    let dialled = common::dial(net, "12378", &["--hangup-after", "1"])
        .stderr(Stdio::null())
        .output()
        .expect("hotline dial");
    let report = common::report(&dialled);
    assert_ne!(report["status"], 200, "{report}");
    let log = h.log();
    assert!(
        log.contains("SIP over TLS to the trunk failed") && log.contains("untrusted"),
        "the failed handshake is logged, naming the trunk"
    );
    let got = std::fs::read_to_string(&stranger_out).unwrap_or_default();
    assert!(
        !got.contains("INVITE"),
        "nothing sent to the untrusted trunk: {got}"
    );
    assert!(
        log.contains("no TLS connection to the trunk"),
        "the call to it failed at once"
    );
    h.healthz();
}
