//! A REGISTER whose write is slow holds up no INVITE (issue 13 §5): the
//! switch's dispatch loop over a real SIP stack on loopback, with the
//! registrations' store made to block until the test lets it go. The test
//! asserts order (the INVITE's answer comes while the REGISTER's write is
//! still stuck, the REGISTER's after it is released), with bounded waits
//! and no timing.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::Duration;

use super::binding_writer::BindingStore;
use super::dispatch::{Dispatch, Router};
use super::ivr::IvrRuntime;
use super::Registrations;
use crate::call::{CallContext, CallCounters};
use crate::config::Config;
use crate::ivr::blacklist::Blacklist;
use crate::media::ports::PortPool;
use crate::roster::{LiveRoster, Roster};
use crate::sip::registrar::BindingChange;
use crate::sip::stack::StackConfig;
use crate::sip::SipStack;
use crate::store::{Store, StoreError};

/// Bounded waits: a broken switch fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(5);

/// A binding store that tells when a write starts and finishes it only
/// when released.
struct StuckStore {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl BindingStore for StuckStore {
    fn apply(&self, _changes: &[BindingChange]) -> Result<(), StoreError> {
        if let Ok(tx) = self.entered.lock() {
            tx.send(()).ok();
        }
        if let Ok(rx) = self.release.lock() {
            // Bounded: the test releases it, or gives up.
            rx.recv_timeout(Duration::from_secs(20)).ok();
        }
        Ok(())
    }
}

/// A phone and a carrier in one raw UDP socket on 127.0.0.1 (the default
/// configuration's trunk admits 127.0.0.0/8).
struct Peer {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Peer {
    fn new(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        Self { socket, server }
    }

    fn me(&self) -> SocketAddr {
        self.socket.local_addr().expect("local")
    }

    fn register(&self, cseq: u32, authorization: Option<&str>) {
        let (me, server) = (self.me(), self.server);
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-reg-{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@{server}>;tag=r{cseq}\r\nTo: <sip:1001@{server}>\r\nCall-ID: reg-slow-write\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@{me}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
        );
        self.socket.send_to(msg.as_bytes(), server).expect("send");
    }

    fn invite(&self, number: &str) {
        let (me, server) = (self.me(), self.server);
        let msg = format!(
            "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-inv-1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:13800138000@{me}>;tag=c1\r\nTo: <sip:{number}@{server}>\r\nCall-ID: inv-while-register-writes\r\nCSeq: 1 INVITE\r\nContact: <sip:13800138000@{me}>\r\nContent-Length: 0\r\n\r\n"
        );
        self.socket.send_to(msg.as_bytes(), server).expect("send");
    }

    /// The next final response (provisional ones skipped), or None after
    /// the bounded wait.
    fn next_final(&self) -> Option<String> {
        let mut buf = [0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !text.starts_with("SIP/2.0 1") {
                return Some(text);
            }
        }
    }
}

fn status(msg: &str) -> u16 {
    msg.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header(msg: &str, name: &str) -> Option<String> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_admitted_while_a_register_write_is_stuck() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::embedded_default().expect("default configuration");
    let store = Store::open(dir.path()).expect("store");
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let stuck = Arc::new(StuckStore {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let registrations =
        Registrations::with_binding_store(&config, store, stuck).expect("registrations");
    // The stack reports the address it was given: take a free port.
    let listen = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    let (stack, mut incoming) = SipStack::start(&StackConfig {
        listen,
        udp: true,
        tcp: false,
        user_agent: "hotline-test".into(),
        udp_buffer_bytes: 0,
        journal: None,
        flood: crate::sip::flood::FloodPolicy::off(),
        tcp_max_per_source: 1024,
        tls: None,
    })
    .await
    .expect("SIP stack");
    let server = stack.local_addr();
    let trunks = Arc::new(super::trunk_table(&config));
    let ivr = Arc::new(IvrRuntime::new(
        None,
        Arc::new(RwLock::new(Blacklist::new())),
        &config,
        None,
    ));
    let web_phones = crate::call::web_phone::WebPhones::new(crate::call::web_phone::DEFAULT_GRACE);
    let ctx = Arc::new(CallContext {
        stack: stack.clone(),
        ports: PortPool::new("127.0.0.1".parse().expect("ip"), 42000, 42099),
        media_address: "127.0.0.1".parse().expect("ip"),
        codecs: vec![],
        rtp_timeout: Duration::from_secs(30),
        ring_timeout: Duration::from_secs(30),
        no_response_timeout: Duration::from_secs(30),
        session_refresh: Duration::from_secs(900),
        directory: Arc::new(crate::call::web_phone::WithBrowsers {
            sip: Arc::new(registrations.clone()),
            web: web_phones.clone(),
        }),
        web_phones,
        campaigns: std::sync::OnceLock::new(),
        trunks: trunks.clone(),
        counters: Arc::new(CallCounters::default()),
        queues: None,
        prompts: None,
        recordings: None,
        shutdown: tokio_util::sync::CancellationToken::new(),
        live: Default::default(),
        audit: Default::default(),
        records: None,
        roster: Arc::new(LiveRoster::new(Roster::new(
            config.agents.clone(),
            config.groups.clone(),
        ))),
        utc_offset_minutes: 480,
        tenant_trunks: Default::default(),
        srtp: Default::default(),
    });
    let blf = super::blf::Blf::new(
        ctx.stack.clone(),
        ctx.roster.clone(),
        None,
        ctx.shutdown.clone(),
    );
    let dispatch = Dispatch {
        ctx,
        router: Arc::new(Router::new(&config, trunks, ivr)),
        registrations,
        slots: Default::default(),
        blf,
    };
    // The switch's loop, as `Switch::run` runs it.
    let loop_task = tokio::spawn(async move {
        while let Some(item) = incoming.recv().await {
            dispatch.dispatch(item, false).await;
        }
    });

    let script = tokio::task::spawn_blocking(move || {
        let peer = Peer::new(server);
        // The phone: challenged, then registered with digest.
        peer.register(1, None);
        let challenge = peer.next_final().expect("401");
        assert_eq!(status(&challenge), 401, "{challenge}");
        let offered = header(&challenge, "WWW-Authenticate").expect("challenge");
        let answer = crate::sip::auth::respond(
            &offered,
            "REGISTER",
            &format!("sip:{server}"),
            "1001",
            "pass1001",
            "cn0nce",
            1,
        )
        .expect("digest answer");
        peer.register(2, Some(&answer));
        // Its bindings are being written, and the write is stuck.
        entered
            .recv_timeout(WAIT)
            .expect("the REGISTER's write starts");
        // A carrier's INVITE is decided all the same (404: no flow and
        // no [[did]] claims the number).
        peer.invite("99999");
        let first = peer
            .next_final()
            .expect("an answer while the write is stuck");
        assert!(
            header(&first, "CSeq").is_some_and(|c| c.ends_with("INVITE")),
            "the INVITE waited behind the REGISTER's write: {first}"
        );
        assert_eq!(status(&first), 404, "{first}");
        // Released, the REGISTER is answered.
        release.send(()).expect("release");
        let registered = loop {
            let msg = peer.next_final().expect("the REGISTER's answer");
            // Skip the 404's retransmissions (never ACKed here).
            if header(&msg, "CSeq").is_some_and(|c| c.ends_with("REGISTER")) {
                break msg;
            }
        };
        assert_eq!(status(&registered), 200, "{registered}");
    });
    script.await.expect("script");
    loop_task.abort();
    stack.shutdown();
}
