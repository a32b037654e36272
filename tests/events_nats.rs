//! The NATS JetStream sink against a real `nats-server -js` on 127.0.0.1
//! (feature `nats`): every event reaches the stream exactly once (JetStream
//! drops retried copies by `Nats-Msg-Id`), first stored in per-call order,
//! on subjects `<prefix>.<tenant>.<type levels>`, while the server is
//! absent at start, killed (`SIGKILL`) mid-run and restarted on the same
//! store directory; a second sink re-publishing every event (as after a
//! crash that lost the outbox's acknowledgements) adds nothing.
//!
//! Needs the `nats-server` binary (Debian: `apt-get install nats-server`;
//! or `NATS_SERVER=/path/to/nats-server`). Without it the test says so and
//! passes, so CI machines without the server stay green.
#![cfg(feature = "nats")]

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use hotline::events::backoff::RetryPolicy;
use hotline::events::nats::NatsSink;
use hotline::events::outbox::{NewEvent, Outbox, OutboxConfig, SinkStats};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SINK: &str = "nats";
/// A second sink over the same stream: publishes every event again.
const AGAIN: &str = "nats-again";
const PREFIX: &str = "test.hotline";
const STREAM: &str = "HOTLINE_TEST";
/// Tenants, one needing sanitising (`.` is a subject level separator).
const TENANTS: [&str; 3] = ["nanning", "liuzhou", "bei.hai"];
/// Calls with `LAST` events each, then 20 more calls of 5 events.
const CALLS: usize = 50;
const LAST: u32 = 15;
const TOTAL: u64 = CALLS as u64 * LAST as u64 + 20 * 5;

/// A `nats-server -js` child on a fixed port and store directory, so a
/// restart finds its stream again.
struct NatsServer {
    bin: PathBuf,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    fn find() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("NATS_SERVER") {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(
                ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from),
            )
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    }

    fn new(bin: PathBuf, dir: &Path) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self {
            bin,
            port,
            store: dir.join("jetstream"),
            log: dir.join("nats-server.log"),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "nats-server not listening on {} (log: {})",
            self.port,
            self.log.display()
        );
    }

    /// `SIGSTOP`: the connection stays up, nothing is answered.
    fn freeze(&self) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .expect("run kill -STOP");
        assert!(ok.success(), "kill -STOP {pid}");
    }

    /// `SIGCONT`: the hung server goes on with what it had received.
    fn thaw(&self) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status()
            .expect("run kill -CONT");
        assert!(ok.success(), "kill -CONT {pid}");
    }

    /// `SIGKILL`: no graceful shutdown, no lame-duck mode.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill nats-server");
            c.wait().expect("reap nats-server");
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tenant(call: usize) -> &'static str {
    TENANTS[call % TENANTS.len()]
}

fn kind(seq: u32, last: u32) -> &'static str {
    match seq {
        0 => "call.started",
        s if s == last => "call.ended",
        _ => "ivr.step",
    }
}

/// Event `seq` of call `call` (`last`: the call's last seq).
fn event(call: usize, seq: u32, last: u32) -> NewEvent {
    let call_id = format!("c{call}");
    let id = format!("{call_id}-e{seq}");
    let kind = kind(seq, last);
    NewEvent {
        body_json: serde_json::json!({
            "id": id, "tenant": tenant(call), "call_id": call_id, "seq": seq, "type": kind,
        })
        .to_string(),
        id,
        call_id: Some(call_id),
        kind: kind.to_string(),
    }
}

/// Interleaved like real traffic: every call's event n, then n+1, …
fn append(ob: &Outbox, calls: std::ops::Range<usize>, seqs: std::ops::Range<u32>, last: u32) {
    for seq in seqs {
        let evs: Vec<NewEvent> = calls.clone().map(|c| event(c, seq, last)).collect();
        for chunk in evs.chunks(7) {
            ob.append(chunk).expect("append");
        }
    }
}

/// A sink's counters now (backoff and leases are judged at the wall clock).
fn stat(ob: &Outbox, sink: &str) -> SinkStats {
    ob.stats(hotline::util::unix_now_ms())
        .expect("stats")
        .into_iter()
        .find(|s| s.sink == sink)
        .expect("sink stats")
}

fn sink(name: &str, url: String) -> NatsSink {
    let mut s = NatsSink::new(name, url);
    s.subject_prefix = PREFIX.to_string();
    s.stream = Some(STREAM.to_string());
    s.batch = 64;
    s.idle_poll = Duration::from_millis(100);
    s.ack_timeout = Duration::from_millis(500);
    s
}

fn spawn(
    s: NatsSink,
    ob: &Arc<Outbox>,
    stop: &CancellationToken,
) -> JoinHandle<Result<(), hotline::events::nats::NatsError>> {
    tokio::spawn(s.run(Arc::clone(ob), stop.clone()))
}

async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let steps = (limit.as_millis() / 20).max(1);
    for _ in 0..steps {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// One stored message, as a consumer reads it.
#[derive(Debug)]
struct Stored {
    stream_seq: u64,
    subject: String,
    msg_id: String,
    type_header: String,
    call_header: String,
    body: serde_json::Value,
}

async fn read_stream(js: &async_nats::jetstream::Context, want: usize) -> Vec<Stored> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    let stream = js.get_stream(STREAM).await.expect("get stream");
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut msgs = consumer.messages().await.expect("messages");
    let mut out = Vec::with_capacity(want);
    // Read until nothing more comes: more than `want` would be a stored
    // duplicate.
    let patience = |n: usize| Duration::from_millis(if n < want { 10_000 } else { 500 });
    while let Ok(Some(m)) = tokio::time::timeout(patience(out.len()), msgs.next()).await {
        let m = m.expect("message");
        let info = m.info().expect("message info");
        let header = |name: &str| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        out.push(Stored {
            stream_seq: info.stream_sequence,
            subject: m.subject.to_string(),
            msg_id: header("Nats-Msg-Id"),
            type_header: header("Hotline-Event-Type"),
            call_header: header("Hotline-Call-Id"),
            body: serde_json::from_slice(&m.payload).expect("JSON payload"),
        });
    }
    out
}

/// Every expected event exactly once, in per-call order, on its subject.
fn check_stream(stored: &[Stored], calls: &[(usize, u32)]) {
    let total: usize = calls.iter().map(|(_, n)| *n as usize).sum();
    assert_eq!(stored.len(), total, "messages in the stream");
    let mut seen = HashSet::new();
    let mut per_call: HashMap<String, Vec<u32>> = HashMap::new();
    let mut last_seq = 0;
    for s in stored {
        assert!(s.stream_seq > last_seq, "stream order {s:?}");
        last_seq = s.stream_seq;
        let id = s.body["id"].as_str().expect("id");
        assert_eq!(s.msg_id, id, "Nats-Msg-Id of {s:?}");
        assert!(seen.insert(id.to_string()), "stored twice: {id}");
        let call = s.body["call_id"].as_str().expect("call_id");
        let seq = s.body["seq"].as_u64().expect("seq") as u32;
        let tenant = s.body["tenant"].as_str().expect("tenant").replace('.', "_");
        let kind = s.body["type"].as_str().expect("type");
        assert_eq!(s.subject, format!("{PREFIX}.{tenant}.{kind}"), "subject");
        assert_eq!(
            (s.type_header.as_str(), s.call_header.as_str()),
            (kind, call)
        );
        per_call.entry(call.to_string()).or_default().push(seq);
    }
    assert_eq!(per_call.len(), calls.len(), "calls in the stream");
    for (call, n) in calls {
        let want: Vec<u32> = (0..*n).collect();
        assert_eq!(per_call[&format!("c{call}")], want, "order of c{call}");
    }
}

/// Logs to the test output (`RUST_LOG` to change; `--nocapture` to see),
/// and the server binary, or `None` (the test is skipped) without one.
fn setup(test: &str) -> Option<PathBuf> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hotline=info".into()),
        )
        .with_test_writer()
        .try_init();
    let bin = NatsServer::find();
    if bin.is_none() {
        eprintln!(
            "SKIPPED {test}: no nats-server binary \
             (apt-get install nats-server, or set NATS_SERVER to its path)"
        );
    }
    bin
}

/// An outbox with `sinks`, retrying fast.
fn outbox(dir: &Path, sinks: &[&str]) -> Arc<Outbox> {
    let policy = RetryPolicy {
        base_ms: 20,
        cap_ms: 300,
        max_attempts: 10_000,
    };
    let ob = Outbox::open_with(
        &dir.join("events.db"),
        OutboxConfig {
            lease_ms: 5_000,
            ..OutboxConfig::default()
        },
    )
    .expect("open outbox");
    for s in sinks {
        ob.register_sink(s, policy).expect("register");
    }
    Arc::new(ob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_once_in_order_through_a_killed_server() {
    let Some(bin) = setup("every_event_once_in_order_through_a_killed_server") else {
        return;
    };
    let started = tokio::time::Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = NatsServer::new(bin, dir.path());
    let ob = outbox(dir.path(), &[SINK, AGAIN]);

    // 1. Server absent at start: the sink waits, using up no attempts.
    append(&ob, 0..CALLS, 0..5, LAST - 1);
    let stop = CancellationToken::new();
    let task = spawn(sink(SINK, server.url()), &ob, &stop);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let st = stat(&ob, SINK);
    assert_eq!(
        (
            st.pending,
            st.delivered,
            st.in_backoff,
            st.in_flight,
            st.dead
        ),
        (250, 0, 0, 0, 0),
        "{st:?}"
    );

    // 2. The server comes: the sink creates the stream and delivers.
    server.start().await;
    assert!(
        wait_for(Duration::from_secs(30), || stat(&ob, SINK).delivered == 250).await,
        "first 250 events: {:?}",
        stat(&ob, SINK)
    );

    // A plain subscriber sees every copy that reaches the server, the
    // ones JetStream drops as duplicates included.
    let watcher = async_nats::connect(server.url()).await.expect("connect");
    let mut sub = watcher
        .subscribe(format!("{PREFIX}.>"))
        .await
        .expect("subscribe");
    let copies: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counting = {
        let copies = Arc::clone(&copies);
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                *copies.lock().expect("copies").entry(id).or_default() += 1;
            }
        })
    };

    // 3. More traffic. The server hangs (SIGSTOP) while it flows:
    //    publishes get no PubAck in time and are retried with the same
    //    Nats-Msg-Id; it resumes (SIGCONT) and stores the late first copies,
    //    so the retries are duplicates; then it dies (SIGKILL) and more events
    //    come while it is down.
    let feeder = {
        let ob = Arc::clone(&ob);
        tokio::spawn(async move {
            for seq in 5..LAST {
                append(&ob, 0..CALLS, seq..seq + 1, LAST - 1);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    assert!(
        wait_for(Duration::from_secs(10), || stat(&ob, SINK).delivered >= 300).await,
        "traffic flows: {:?}",
        stat(&ob, SINK)
    );
    server.freeze();
    assert!(
        wait_for(Duration::from_secs(10), || stat(&ob, SINK).in_backoff > 0).await,
        "publishes to a hung server back off: {:?}",
        stat(&ob, SINK)
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hung = stat(&ob, SINK);
    server.thaw();
    assert!(
        wait_for(Duration::from_secs(10), || stat(&ob, SINK).delivered
            >= hung.delivered + 50)
        .await,
        "flows again after SIGCONT: {:?}",
        stat(&ob, SINK)
    );
    server.kill();
    let at_kill = stat(&ob, SINK);
    feeder.await.expect("feeder");
    append(&ob, CALLS..CALLS + 20, 0..5, 4);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let down = stat(&ob, SINK);
    eprintln!("hung: {hung:?}\nkilled: {at_kill:?}\nafter 1.5 s down: {down:?}");
    assert!(down.delivered < TOTAL, "{down:?}");
    assert_eq!((down.in_flight, down.dead), (0, 0), "{down:?}");

    // 4. Restart on the same store: the rest arrives.
    server.start().await;
    assert!(
        wait_for(Duration::from_secs(60), || stat(&ob, SINK).delivered
            == TOTAL)
        .await,
        "all {TOTAL} events: {:?}",
        stat(&ob, SINK)
    );
    let st = stat(&ob, SINK);
    assert_eq!((st.pending, st.in_backoff, st.dead), (0, 0, 0), "{st:?}");

    // 5. What a consumer sees: each event once, per-call order, subjects.
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let info = js
        .get_stream(STREAM)
        .await
        .expect("stream")
        .get_info()
        .await
        .expect("info");
    assert_eq!(info.config.subjects, vec![format!("{PREFIX}.>")]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(600));
    assert_eq!(
        (info.state.messages, info.state.last_sequence),
        (TOTAL, TOTAL),
        "no copy stored"
    );
    let calls: Vec<(usize, u32)> = (0..CALLS)
        .map(|c| (c, LAST))
        .chain((CALLS..CALLS + 20).map(|c| (c, 5)))
        .collect();
    check_stream(&read_stream(&js, TOTAL as usize).await, &calls);
    let (seen, sent) = {
        let c = copies.lock().expect("copies");
        (c.len(), c.values().sum::<u32>() as usize)
    };
    eprintln!("plain subscriber: {sent} copies of {seen} events reached the server");
    assert!(
        sent > seen,
        "retries of stored events reached the server (and were dropped)"
    );

    // 6. Every event published again (same ids): the stream drops them all.
    let again = spawn(sink(AGAIN, server.url()), &ob, &stop);
    assert!(
        wait_for(Duration::from_secs(30), || stat(&ob, AGAIN).delivered
            == TOTAL)
        .await,
        "second sink: {:?}",
        stat(&ob, AGAIN)
    );
    let info = js
        .get_stream(STREAM)
        .await
        .expect("stream")
        .get_info()
        .await
        .expect("info");
    assert_eq!(
        (info.state.messages, info.state.last_sequence),
        (TOTAL, TOTAL),
        "copies dropped by Nats-Msg-Id"
    );

    stop.cancel();
    counting.abort();
    for t in [task, again] {
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("sink stops")
            .expect("sink task")
            .expect("sink result");
    }
    eprintln!("test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stream_events_wait_until_one_exists() {
    let Some(bin) = setup("without_a_stream_events_wait_until_one_exists") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = NatsServer::new(bin, dir.path());
    server.start().await;
    let ob = outbox(dir.path(), &[SINK]);
    append(&ob, 0..6, 0..3, 2);
    let stop = CancellationToken::new();
    let mut s = sink(SINK, server.url());
    s.stream = None; // the operators' stream, not created by the sink
    let task = spawn(s, &ob, &stop);
    // No stream captures the subjects: publishes fail ("no responders")
    // and back off; nothing is lost, nothing is a dead letter.
    assert!(
        wait_for(Duration::from_secs(10), || stat(&ob, SINK).in_backoff > 0).await,
        "no stream: {:?}",
        stat(&ob, SINK)
    );
    let st = stat(&ob, SINK);
    assert_eq!((st.delivered, st.dead), (0, 0), "{st:?}");

    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{PREFIX}.>")],
        ..Default::default()
    })
    .await
    .expect("create stream");
    assert!(
        wait_for(Duration::from_secs(20), || stat(&ob, SINK).delivered == 18).await,
        "stream created: {:?}",
        stat(&ob, SINK)
    );
    let calls: Vec<(usize, u32)> = (0..6).map(|c| (c, 3)).collect();
    check_stream(&read_stream(&js, 18).await, &calls);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("sink stops")
        .expect("sink task")
        .expect("sink result");
}

#[tokio::test]
async fn bad_configuration_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Arc::new(Outbox::open(&dir.path().join("e.db")).expect("open"));
    ob.register_sink(SINK, RetryPolicy::default())
        .expect("register");
    let mut s = NatsSink::new(SINK, "nats://user:secret@127.0.0.1:1");
    s.subject_prefix = "a.*".into();
    let e = s
        .run(Arc::clone(&ob), CancellationToken::new())
        .await
        .expect_err("bad prefix");
    assert!(e.to_string().contains("\"a.*\""), "{e}");
    let e = NatsSink::new(SINK, " , ")
        .run(Arc::clone(&ob), CancellationToken::new())
        .await
        .expect_err("no url");
    assert!(e.to_string().contains("no server URL"), "{e}");
    let s = NatsSink::new(SINK, "nats://user:secret@[::1");
    let e = s
        .run(Arc::clone(&ob), CancellationToken::new())
        .await
        .expect_err("bad url");
    let text = e.to_string();
    assert!(text.contains("nats sink nats: nats://***@[::1"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
