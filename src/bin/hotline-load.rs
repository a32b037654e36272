//! `hotline-load`: a media load generator for hotline. It drives N concurrent
//! bridged calls through a running hotline with real 20 ms G.711 A-law RTP
//! both ways and measures what comes out the other side.
//!
//! Roles (all in this one process, on loopback addresses of their own):
//! - one or a few **caller** UAs (the carrier): `SipStack`s on
//!   `--caller-ip`(+i):5060 that send INVITEs to a DID on hotline;
//! - K **agent** UAs: one `SipStack` each on `--agent-ip`+i:5060, registered
//!   as user `--first-user`+i (digest, password `pass<user>`), answering every
//!   INVITE at once (up to ceil(N/K) concurrent calls each, 486 beyond).
//!
//! By default call j dials DID `<did-prefix><j mod K, 3 digits>` (e.g.
//! `12345000` → agent 1001), so the harness config routes one DID per agent;
//! `--did` sends every call to one DID instead (e.g. simultaneous ringing).
//!
//! Media: every answered call leg binds its own UDP socket (the port of its
//! SDP). ONE shared ticker task sends, every 20 ms, one 172-byte PCMA packet
//! (a 400 Hz tone from callers, 1 kHz from agents, with its own
//! SSRC/sequence/timestamp) for every active stream on both sides, the
//! streams spread over `--phases` sub-ticks of the 20 ms (2 ms apart by
//! default) so the load is smooth as from independent phones; one small
//! receive task per socket counts packets and measures:
//! - **loss**: sequence gaps (expected = highest − first + 1, RFC 3550 A.3);
//! - **lateness**: arrival vs the stream's 20 ms grid, anchored at the first
//!   packet and moved earlier whenever a packet arrives ahead of it (so a
//!   delayed first packet cannot hide later delays); packets more than
//!   `--late-ms` (20) behind their slot are late;
//! - **transit**: arrival − the moment the ticker sent that very packet (the
//!   SSRC names the sending stream, hotline relays packets unchanged), which
//!   separates hotline's delay from the generator's own ticker lag.
//!
//! Calls start at `--ramp-per-sec`; call i hangs up at
//! `start_i + calls/ramp + hold`, so all N are up together for `--hold-secs`
//! and hang up at the ramp rate. The **steady window** runs from all calls
//! answered + `--settle-secs` to just before the first hang-up: with
//! `--watch-pid` hotline's CPU (utime+stime from /proc) and RSS are sampled
//! over it, and the generator's own CPU always is. The start of the window
//! is announced on stderr (`hotline-load: steady`) and by creating
//! `--steady-file`, so a profiler can be attached then.
//!
//! At the end one JSON summary goes to stdout.
#![allow(clippy::disallowed_methods)] // a load generator is all shell: it reads the clock

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dashmap::DashMap;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use hotline::media::codec::{Codec, G711};
use hotline::media::rtp::{write_rtp, RtpFields};
use hotline::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};
use hotline::sip::stack::StackConfig;
use hotline::sip::{Incoming, Leg, LegEvent, OutboundInvite, SipStack};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "hotline-load",
    about = "Drive N concurrent bridged calls with 20 ms PCMA RTP both ways through hotline"
)]
struct Args {
    /// hotline's SIP address.
    #[arg(long, default_value = "127.0.5.1:5060")]
    hotline: SocketAddr,
    /// Calls to place (all concurrent once the ramp is done).
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// New calls per second during the ramp (also the hang-up rate).
    #[arg(long, default_value_t = 50.0)]
    ramp_per_sec: f64,
    /// Seconds every call stays up after the ramp.
    #[arg(long, default_value_t = 20.0)]
    hold_secs: f64,
    /// Agent UAs (users first-user .. first-user+K-1).
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Address of the first agent UA (agent i: this + i, port 5060).
    #[arg(long, default_value = "127.0.5.21")]
    agent_ip: Ipv4Addr,
    /// SIP user of the first agent.
    #[arg(long, default_value_t = 1001)]
    first_user: u32,
    /// Address of the first caller UA (caller i: this + i, port 5060).
    #[arg(long, default_value = "127.0.5.10")]
    caller_ip: Ipv4Addr,
    /// Caller UAs (calls are spread over them round robin).
    #[arg(long, default_value_t = 1)]
    callers: usize,
    /// Call j dials `<did-prefix><j mod agents as 3 digits>`.
    #[arg(long, default_value = "12345")]
    did_prefix: String,
    /// Dial this one DID for every call instead.
    #[arg(long)]
    did: Option<String>,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Sample this process's (hotline's) CPU and RSS over the steady window.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Seconds after the last answer before the steady window opens.
    #[arg(long, default_value_t = 2.0)]
    settle_secs: f64,
    /// Give up on an INVITE without final response after this many seconds.
    #[arg(long, default_value_t = 15.0)]
    setup_timeout_secs: f64,
    /// A packet more than this many ms behind its 20 ms slot is late.
    #[arg(long, default_value_t = 20)]
    late_ms: u64,
    /// Create this file when the steady window opens.
    #[arg(long)]
    steady_file: Option<PathBuf>,
    /// Sub-ticks per 20 ms: streams are spread over this many send phases
    /// (1: every packet of a period in one burst).
    #[arg(long, default_value_t = 10)]
    phases: usize,
    /// Kernel receive buffer per RTP socket, bytes (0: system default).
    #[arg(long, default_value_t = 0)]
    rtp_rcvbuf: usize,
    /// Hard limit on the whole run, seconds (default: ramp×2 + hold + 60).
    #[arg(long)]
    max_secs: Option<f64>,
}

const PTIME: Duration = Duration::from_millis(20);
const SAMPLES: usize = 160;
const PACKET: usize = 12 + SAMPLES;
/// Frames of one second of tone (the tones have whole periods per frame).
const TONE_FRAMES: usize = 50;
/// Send-time slots remembered per stream (packets in flight at most).
const SEND_SLOTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Sent by a caller (carrier) leg, received by an agent.
    Caller,
    /// Sent by an agent leg, received by a caller.
    Agent,
}

// ------------------------------------------------------------------ clock

/// Nanoseconds since the generator started (fits 48 bits for 78 h).
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// When each recent packet of one stream was sent: slot seq % SEND_SLOTS
/// holds `seq << 48 | ns`.
struct SendTimes {
    slots: Vec<AtomicU64>,
}

impl SendTimes {
    fn new() -> Self {
        Self {
            slots: (0..SEND_SLOTS).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }
    fn store(&self, seq: u16, ns: u64) {
        self.slots[usize::from(seq) % SEND_SLOTS].store(
            (u64::from(seq) << 48) | (ns & 0xffff_ffff_ffff),
            Ordering::Relaxed,
        );
    }
    fn load(&self, seq: u16) -> Option<u64> {
        let v = self.slots[usize::from(seq) % SEND_SLOTS].load(Ordering::Relaxed);
        (v != u64::MAX && (v >> 48) as u16 == seq).then_some(v & 0xffff_ffff_ffff)
    }
}

// --------------------------------------------------------------- counters

/// Totals of one direction over all ended streams.
#[derive(Default)]
struct DirTotals {
    sent: AtomicU64,
    send_errors: AtomicU64,
    recv: Mutex<RecvStats>,
}

/// Seconds of the late-packet timeline (the last slot takes the rest).
const LATE_SECONDS: usize = 900;

#[derive(Default)]
struct Shared {
    caller_to_agent: DirTotals,
    agent_to_caller: DirTotals,
    attempted: AtomicU64,
    answered: AtomicU64,
    failed: Mutex<BTreeMap<u16, u64>>,
    /// Calls the far end hung up before we did.
    dropped_early: AtomicU64,
    /// Agent-side INVITEs refused (cap) or unusable.
    agent_rejected: AtomicU64,
    agent_active: AtomicUsize,
    agent_answered: AtomicU64,
    setup_ms: Mutex<Vec<f64>>,
    /// Caller legs answered and not yet hung up.
    live: AtomicUsize,
    /// Setup attempts finished (answered or failed).
    settled: AtomicUsize,
    /// ssrc → send times of that stream.
    send_times: DashMap<u32, Arc<SendTimes>>,
    ticker: Mutex<TickerStats>,
    next_ssrc: AtomicU64,
    /// Late packets by second of arrival since the generator started.
    late_by_second: Vec<AtomicU64>,
}

impl Shared {
    fn dir(&self, sent_by: Side) -> &DirTotals {
        match sent_by {
            Side::Caller => &self.caller_to_agent,
            Side::Agent => &self.agent_to_caller,
        }
    }
    fn fail(&self, code: u16) {
        *self.failed.lock().unwrap().entry(code).or_default() += 1;
    }
}

// ------------------------------------------------------------------ sender

struct SendStream {
    id: u64,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    side: Side,
    ssrc: u32,
    seq: u16,
    ts: u32,
    pt: u8,
    frame: usize,
    sent: u64,
    errors: u64,
    times: Arc<SendTimes>,
}

enum Cmd {
    Add(Box<SendStream>),
    Remove(u64),
    Stop,
}

#[derive(Default, Serialize, Clone)]
struct TickerStats {
    /// Sub-ticks per 20 ms.
    phases: usize,
    /// Sub-ticks run.
    ticks: u64,
    /// Worst delay of a tick behind its 20 ms schedule, ms.
    max_lag_ms: f64,
    /// Ticks that started more than 5 ms late.
    ticks_late_5ms: u64,
    /// Ticks that started more than 20 ms late.
    ticks_late_20ms: u64,
    /// Longest time to send one sub-tick's packets, ms.
    max_batch_ms: f64,
    /// Most streams sending at once.
    max_streams: usize,
}

fn tone(hz: f32, law: G711) -> Vec<[u8; SAMPLES]> {
    let pcm: Vec<i16> = (0..SAMPLES * TONE_FRAMES)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 10_000.0) as i16)
        .collect();
    pcm.chunks(SAMPLES)
        .map(|c| {
            let mut out = Vec::with_capacity(SAMPLES);
            law.encode(c, &mut out);
            let mut f = [0u8; SAMPLES];
            f.copy_from_slice(&out);
            f
        })
        .collect()
}

/// The one 20 ms ticker: a packet for every active stream every 20 ms. The
/// 20 ms are cut into `phases` sub-ticks and each stream belongs to one
/// (the least loaded when it starts), so packets go out spread over the
/// period like independent phones' would, not in one burst per 20 ms.
async fn ticker(
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    shared: Arc<Shared>,
    clock: Clock,
    phases: usize,
) {
    let caller_tone = tone(400.0, G711::Alaw);
    let agent_tone = tone(1000.0, G711::Alaw);
    let phases = phases.clamp(1, 20);
    let mut groups: Vec<Vec<SendStream>> = (0..phases).map(|_| Vec::new()).collect();
    let mut stats = TickerStats {
        phases,
        ..Default::default()
    };
    let mut interval = tokio::time::interval(PTIME / phases as u32);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut packet = [0u8; PACKET];
    let mut stopping = false;
    let mut phase = 0usize;
    loop {
        let scheduled = interval.tick().await;
        let lag = scheduled.elapsed();
        stats.ticks += 1;
        let lag_ms = lag.as_secs_f64() * 1000.0;
        stats.max_lag_ms = stats.max_lag_ms.max(lag_ms);
        if lag_ms > 5.0 {
            stats.ticks_late_5ms += 1;
        }
        if lag_ms > 20.0 {
            stats.ticks_late_20ms += 1;
        }
        loop {
            match cmds.try_recv() {
                Ok(Cmd::Add(s)) => {
                    let g = (0..phases).min_by_key(|&g| groups[g].len()).unwrap_or(0);
                    groups[g].push(*s);
                }
                Ok(Cmd::Remove(id)) => {
                    for g in groups.iter_mut() {
                        if let Some(i) = g.iter().position(|s| s.id == id) {
                            let s = g.swap_remove(i);
                            let d = shared.dir(s.side);
                            d.sent.fetch_add(s.sent, Ordering::Relaxed);
                            d.send_errors.fetch_add(s.errors, Ordering::Relaxed);
                            shared.send_times.remove(&s.ssrc);
                            break;
                        }
                    }
                }
                Ok(Cmd::Stop) => stopping = true,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    stopping = true;
                    break;
                }
            }
        }
        if stopping {
            for s in groups.iter_mut().flat_map(|g| g.drain(..)) {
                let d = shared.dir(s.side);
                d.sent.fetch_add(s.sent, Ordering::Relaxed);
                d.send_errors.fetch_add(s.errors, Ordering::Relaxed);
            }
            break;
        }
        let batch = Instant::now();
        stats.max_streams = stats
            .max_streams
            .max(groups.iter().map(Vec::len).sum::<usize>());
        for s in &mut groups[phase] {
            let payload = match s.side {
                Side::Caller => &caller_tone[s.frame],
                Side::Agent => &agent_tone[s.frame],
            };
            let fields = RtpFields {
                marker: s.sent == 0 && s.errors == 0,
                payload_type: s.pt,
                sequence: s.seq,
                timestamp: s.ts,
                ssrc: s.ssrc,
            };
            if let Ok(n) = write_rtp(&mut packet, &fields, payload) {
                s.times.store(s.seq, clock.ns());
                match s.socket.try_send_to(&packet[..n], s.remote) {
                    Ok(_) => s.sent += 1,
                    Err(_) => s.errors += 1,
                }
            }
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(SAMPLES as u32);
            s.frame = (s.frame + 1) % TONE_FRAMES;
        }
        phase = (phase + 1) % phases;
        let b = batch.elapsed().as_secs_f64() * 1000.0;
        stats.max_batch_ms = stats.max_batch_ms.max(b);
        if stats.ticks.is_multiple_of(50) {
            *shared.ticker.lock().unwrap() = stats.clone();
        }
    }
    *shared.ticker.lock().unwrap() = stats;
}

// ---------------------------------------------------------------- receiver

#[derive(Default, Clone, Serialize)]
struct RecvStats {
    streams: u64,
    received: u64,
    expected: u64,
    lost: u64,
    out_of_order: u64,
    duplicates_or_old: u64,
    /// Packets more than `late_ms` behind their 20 ms slot.
    late: u64,
    late_5ms: u64,
    late_10ms: u64,
    late_40ms: u64,
    max_late_ms: f64,
    /// Packets whose send time was known.
    transit_samples: u64,
    transit_sum_ms: f64,
    max_transit_ms: f64,
    transit_over_late_ms: u64,
    foreign_ssrc: u64,
    not_rtp: u64,
}

impl RecvStats {
    fn merge(&mut self, o: &RecvStats) {
        self.streams += o.streams;
        self.received += o.received;
        self.expected += o.expected;
        self.lost += o.lost;
        self.out_of_order += o.out_of_order;
        self.duplicates_or_old += o.duplicates_or_old;
        self.late += o.late;
        self.late_5ms += o.late_5ms;
        self.late_10ms += o.late_10ms;
        self.late_40ms += o.late_40ms;
        self.max_late_ms = self.max_late_ms.max(o.max_late_ms);
        self.transit_samples += o.transit_samples;
        self.transit_sum_ms += o.transit_sum_ms;
        self.max_transit_ms = self.max_transit_ms.max(o.max_transit_ms);
        self.transit_over_late_ms += o.transit_over_late_ms;
        self.foreign_ssrc += o.foreign_ssrc;
        self.not_rtp += o.not_rtp;
    }
}

/// Receive one leg's RTP until `stop` fires.
async fn receive(
    socket: Arc<UdpSocket>,
    mut stop: oneshot::Receiver<()>,
    shared: Arc<Shared>,
    clock: Clock,
    late_ns: i64,
) -> RecvStats {
    let mut st = RecvStats {
        streams: 1,
        ..Default::default()
    };
    let mut buf = [0u8; 1500];
    let mut ssrc: Option<u32> = None;
    let mut times: Option<Arc<SendTimes>> = None;
    // Extended sequence numbers.
    let mut last_seq: u16 = 0;
    let mut ext: i64 = 0;
    let mut base: i64 = 0;
    let mut highest: i64 = 0;
    // Grid anchor: arrival_ns - (ext - base) * 20 ms, the earliest seen.
    let mut anchor: i64 = 0;
    let ptime = PTIME.as_nanos() as i64;
    loop {
        let r = tokio::select! {
            biased;
            _ = &mut stop => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, _)) = r else { continue };
        let now = clock.ns() as i64;
        if n < 12 || buf[0] >> 6 != 2 {
            st.not_rtp += 1;
            continue;
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let pkt_ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        match ssrc {
            None => {
                ssrc = Some(pkt_ssrc);
                times = shared.send_times.get(&pkt_ssrc).map(|t| t.clone());
                last_seq = seq;
                ext = i64::from(seq);
                base = ext;
                highest = ext;
                anchor = now;
                st.received += 1;
            }
            Some(s) if s != pkt_ssrc => {
                st.foreign_ssrc += 1;
                continue;
            }
            Some(_) => {
                let delta = i64::from(seq.wrapping_sub(last_seq) as i16);
                let e = ext + delta;
                if delta > 0 {
                    last_seq = seq;
                    ext = e;
                }
                if e > highest {
                    // A gap counts as loss unless the packets arrive later.
                    highest = e;
                } else if e < highest {
                    st.out_of_order += 1;
                } else {
                    st.duplicates_or_old += 1;
                    continue;
                }
                st.received += 1;
                let slot = (e - base) * ptime;
                let offset = now - slot;
                if offset < anchor {
                    anchor = offset;
                } else {
                    let late = offset - anchor;
                    let ms = late as f64 / 1e6;
                    if ms > st.max_late_ms {
                        st.max_late_ms = ms;
                    }
                    if late > 5_000_000 {
                        st.late_5ms += 1;
                    }
                    if late > 10_000_000 {
                        st.late_10ms += 1;
                    }
                    if late > 40_000_000 {
                        st.late_40ms += 1;
                    }
                    if late > late_ns {
                        st.late += 1;
                        let sec = (now / 1_000_000_000) as usize;
                        if let Some(c) = shared.late_by_second.get(sec.min(LATE_SECONDS - 1)) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if let Some(sent) = times.as_ref().and_then(|t| t.load(seq)) {
            let transit = (now - sent as i64).max(0);
            let ms = transit as f64 / 1e6;
            st.transit_samples += 1;
            st.transit_sum_ms += ms;
            if ms > st.max_transit_ms {
                st.max_transit_ms = ms;
            }
            if transit > late_ns {
                st.transit_over_late_ms += 1;
            }
        }
    }
    if ssrc.is_some() {
        st.expected = (highest - base + 1) as u64;
        st.lost = st.expected.saturating_sub(st.received);
    }
    st
}

/// A leg's media: socket, receive task, send stream registration.
struct LegMedia {
    id: u64,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<RecvStats>,
    receiver_side: Side,
}

struct Media {
    shared: Arc<Shared>,
    clock: Clock,
    cmds: mpsc::UnboundedSender<Cmd>,
    late_ns: i64,
    rcvbuf: usize,
}

impl Media {
    fn bind(&self, ip: Ipv4Addr) -> std::io::Result<Arc<UdpSocket>> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        if self.rcvbuf > 0 {
            s.set_recv_buffer_size(self.rcvbuf)?;
        }
        s.set_nonblocking(true)?;
        s.bind(&SocketAddr::new(IpAddr::V4(ip), 0).into())?;
        Ok(Arc::new(UdpSocket::from_std(s.into())?))
    }

    /// Start sending to `remote` from `socket` (as `side`) and receiving on it.
    fn start(&self, socket: Arc<UdpSocket>, remote: SocketAddr, pt: u8, side: Side) -> LegMedia {
        let ssrc = self.shared.next_ssrc.fetch_add(1, Ordering::Relaxed) as u32;
        let times = Arc::new(SendTimes::new());
        self.shared.send_times.insert(ssrc, times.clone());
        let id = u64::from(ssrc);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(receive(
            socket.clone(),
            stop_rx,
            self.shared.clone(),
            self.clock,
            self.late_ns,
        ));
        self.cmds
            .send(Cmd::Add(Box::new(SendStream {
                id,
                socket,
                remote,
                side,
                ssrc,
                seq: rand::random(),
                ts: rand::random(),
                pt,
                frame: 0,
                sent: 0,
                errors: 0,
                times,
            })))
            .ok();
        LegMedia {
            id,
            stop,
            task,
            receiver_side: match side {
                Side::Caller => Side::Agent,
                Side::Agent => Side::Caller,
            },
        }
    }

    /// Stop sending now; stop receiving after `tail` (packets in flight).
    async fn stop(&self, leg: LegMedia, tail: Duration) {
        self.cmds.send(Cmd::Remove(leg.id)).ok();
        tokio::time::sleep(tail).await;
        leg.stop.send(()).ok();
        if let Ok(st) = leg.task.await {
            // What this leg received was sent by the other side.
            let sent_by = match leg.receiver_side {
                Side::Caller => Side::Agent,
                Side::Agent => Side::Caller,
            };
            self.shared.dir(sent_by).recv.lock().unwrap().merge(&st);
        }
    }
}

// -------------------------------------------------------------------- SIP

async fn stack(bind: SocketAddr) -> Result<(SipStack, mpsc::Receiver<Incoming>), String> {
    SipStack::start(&StackConfig {
        listen: bind,
        udp: true,
        tcp: false,
        user_agent: format!("hotline-load/{}", env!("CARGO_PKG_VERSION")),
        udp_buffer_bytes: 4 * 1024 * 1024,
        journal: None,
    })
    .await
    .map_err(|e| e.to_string())
}

fn local_media(ip: Ipv4Addr, port: u16) -> LocalMedia {
    LocalMedia {
        address: IpAddr::V4(ip),
        port,
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        codecs: vec![AudioCodec::Pcma],
        telephone_event: false,
        direction: Direction::SendRecv,
    }
}

fn nth_ip(base: Ipv4Addr, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + i as u32)
}

/// One agent UA: answer every INVITE (up to `cap` at once) with media.
async fn agent(
    stack: SipStack,
    mut incoming: mpsc::Receiver<Incoming>,
    ip: Ipv4Addr,
    cap: usize,
    media: Arc<Media>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while let Some(item) = incoming.recv().await {
        let invite = match item {
            Incoming::Invite(i) => i,
            Incoming::Request(req, responder) => {
                let code = if req.method() == "OPTIONS" { 200 } else { 405 };
                responder.reply(code, vec![], None).await.ok();
                continue;
            }
        };
        let shared = media.shared.clone();
        if active.load(Ordering::Relaxed) >= cap {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            invite.reject(486, vec![]).await;
            continue;
        }
        let socket = match media.bind(ip) {
            Ok(s) => s,
            Err(_) => {
                shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
                invite.reject(503, vec![]).await;
                continue;
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let offer = SessionDescription::parse(&String::from_utf8_lossy(invite.request.body()));
        let Some((answer, neg)) = offer
            .ok()
            .and_then(|o| sdp::negotiate_answer(&o, &local_media(ip, port)).ok())
        else {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            invite.reject(488, vec![]).await;
            continue;
        };
        let (events_tx, mut events) = stack.leg_channel();
        let leg = match invite.into_leg(&stack, &events_tx) {
            Ok(l) => l,
            Err(_) => {
                shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let body = answer.to_string().into_bytes();
        leg.progress(None);
        if leg.answer(body.clone()).is_err() {
            shared.agent_rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        shared.agent_active.fetch_add(1, Ordering::Relaxed);
        shared.agent_answered.fetch_add(1, Ordering::Relaxed);
        let m = media.start(socket, neg.remote, neg.payload_type, Side::Agent);
        let (media, active) = (media.clone(), active.clone());
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Some((_, LegEvent::Ended(_))) | None => break,
                    Some((_, LegEvent::Reoffer { responder, .. })) => {
                        responder.respond(200, vec![], Some(body.clone())).await
                    }
                    Some(_) => {}
                }
            }
            media.stop(m, Duration::from_millis(100)).await;
            drop(leg);
            active.fetch_sub(1, Ordering::Relaxed);
            media.shared.agent_active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

struct CallPlan {
    start: Instant,
    hangup: Instant,
    target: String,
    from: String,
}

/// One call from a caller UA.
async fn call(
    stack: SipStack,
    ip: Ipv4Addr,
    proxy: SocketAddr,
    plan: CallPlan,
    media: Arc<Media>,
    setup_timeout: Duration,
) {
    tokio::time::sleep_until(plan.start.into()).await;
    let shared = media.shared.clone();
    shared.attempted.fetch_add(1, Ordering::Relaxed);
    let socket = match media.bind(ip) {
        Ok(s) => s,
        Err(_) => {
            shared.fail(1);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let offer = sdp::build_offer(&local_media(ip, port));
    let (events_tx, mut events) = stack.leg_channel();
    let t0 = Instant::now();
    let leg = match stack.invite(
        OutboundInvite {
            target: plan.target.clone(),
            destination: Some(proxy),
            tcp: false,
            from_user: plan.from.clone(),
            from_display: None,
            sdp: offer.to_string().into_bytes(),
            headers: vec![],
            credential: None,
        },
        &events_tx,
    ) {
        Ok(l) => l,
        Err(_) => {
            shared.fail(2);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let fin = tokio::time::timeout(setup_timeout, async {
        loop {
            match events.recv().await {
                Some((_, LegEvent::Final { code, sdp })) => break (code, sdp),
                Some(_) => {}
                None => break (500, None),
            }
        }
    })
    .await;
    let (code, answer) = match fin {
        Ok(f) => f,
        Err(_) => {
            leg.hang_up().await;
            shared.fail(408);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if !(200..300).contains(&code) {
        shared.fail(code);
        shared.settled.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let neg = answer
        .and_then(|a| SessionDescription::parse(&String::from_utf8_lossy(&a)).ok())
        .and_then(|a| sdp::read_answer(&offer, &a).ok());
    let Some(neg) = neg else {
        leg.bye().await;
        shared.fail(488);
        shared.settled.fetch_add(1, Ordering::Relaxed);
        return;
    };
    shared
        .setup_ms
        .lock()
        .unwrap()
        .push(t0.elapsed().as_secs_f64() * 1000.0);
    shared.answered.fetch_add(1, Ordering::Relaxed);
    shared.live.fetch_add(1, Ordering::Relaxed);
    shared.settled.fetch_add(1, Ordering::Relaxed);
    let m = media.start(socket, neg.remote, neg.payload_type, Side::Caller);
    let body = offer.to_string().into_bytes();
    let remote_ended = async {
        loop {
            match events.recv().await {
                Some((_, LegEvent::Ended(_))) | None => return,
                Some((_, LegEvent::Reoffer { responder, .. })) => {
                    responder.respond(200, vec![], Some(body.clone())).await
                }
                Some(_) => {}
            }
        }
    };
    let early = tokio::select! {
        _ = tokio::time::sleep_until(plan.hangup.into()) => false,
        _ = remote_ended => true,
    };
    if early {
        shared.dropped_early.fetch_add(1, Ordering::Relaxed);
    }
    // Stop our stream, hang up, and keep receiving briefly for packets in flight.
    media.cmds.send(Cmd::Remove(m.id)).ok();
    if !early {
        leg.bye().await;
    }
    media.stop(m, Duration::from_millis(60)).await;
    shared.live.fetch_sub(1, Ordering::Relaxed);
}

// ------------------------------------------------------------------ /proc

fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_status(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Clock ticks per second of /proc times (USER_HZ: 100 on Linux).
const CLK_TCK: f64 = 100.0;

#[derive(Serialize, Default)]
struct Steady {
    start_s: f64,
    end_s: f64,
    secs: f64,
    /// Caller legs up during the window (min over samples).
    live_calls_min: usize,
    live_calls_max: usize,
    hotline_cpu_pct_of_core: Option<f64>,
    hotline_cpu_pct_per_call: Option<f64>,
    /// Before the first call (agents registered).
    hotline_rss_kib_before: Option<u64>,
    hotline_rss_kib_start: Option<u64>,
    hotline_rss_kib_end: Option<u64>,
    hotline_threads: Option<u64>,
    generator_cpu_pct_of_core: f64,
    generator_rss_kib: Option<u64>,
}

// ------------------------------------------------------------------- main

#[derive(Serialize)]
struct DirSummary {
    sent: u64,
    send_errors: u64,
    #[serde(flatten)]
    recv: RecvStats,
    loss_pct: f64,
    mean_transit_ms: f64,
}

fn summarize(d: &DirTotals) -> DirSummary {
    let recv = d.recv.lock().unwrap().clone();
    let loss_pct = if recv.expected > 0 {
        recv.lost as f64 * 100.0 / recv.expected as f64
    } else {
        0.0
    };
    let mean_transit_ms = if recv.transit_samples > 0 {
        recv.transit_sum_ms / recv.transit_samples as f64
    } else {
        0.0
    };
    DirSummary {
        sent: d.sent.load(Ordering::Relaxed),
        send_errors: d.send_errors.load(Ordering::Relaxed),
        recv,
        loss_pct,
        mean_transit_ms,
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hotline-load: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotline-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, String> {
    let clock = Clock(Instant::now());
    let cpu0 = proc_cpu_ticks("self").unwrap_or(0);
    let shared = Arc::new(Shared {
        late_by_second: (0..LATE_SECONDS).map(|_| AtomicU64::new(0)).collect(),
        ..Default::default()
    });
    shared.next_ssrc.store(0x1000_0000, Ordering::Relaxed);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let ticker_task = tokio::spawn(ticker(cmd_rx, shared.clone(), clock, args.phases));
    let media = Arc::new(Media {
        shared: shared.clone(),
        clock,
        cmds: cmd_tx.clone(),
        late_ns: (args.late_ms * 1_000_000) as i64,
        rcvbuf: args.rtp_rcvbuf,
    });
    let n = args.calls;
    let k = args.agents.max(1);
    let cap = n.div_ceil(k).max(1);
    let ramp = Duration::from_secs_f64(n as f64 / args.ramp_per_sec.max(0.001));
    let hold = Duration::from_secs_f64(args.hold_secs);
    let max_secs = args
        .max_secs
        .unwrap_or(ramp.as_secs_f64() * 2.0 + args.hold_secs + 60.0);

    // Agents: bind and register.
    let mut agent_stacks = Vec::new();
    for i in 0..k {
        let ip = nth_ip(args.agent_ip, i);
        let (st, incoming) = stack(SocketAddr::new(IpAddr::V4(ip), 5060))
            .await
            .map_err(|e| format!("agent {i} on {ip}: {e}"))?;
        let user = (args.first_user + i as u32).to_string();
        let mut reg = st.outbound_registration(args.hotline, false, &user, &format!("pass{user}"));
        reg.register(600)
            .await
            .map_err(|code| format!("agent {user} registration failed: {code}"))?;
        tokio::spawn(agent(st.clone(), incoming, ip, cap, media.clone()));
        agent_stacks.push(st);
    }
    eprintln!(
        "hotline-load: {k} agents registered; {n} calls at {} cps, hold {} s",
        args.ramp_per_sec, args.hold_secs
    );

    // Callers.
    let mut callers = Vec::new();
    for i in 0..args.callers.max(1) {
        let ip = nth_ip(args.caller_ip, i);
        let (st, mut incoming) = stack(SocketAddr::new(IpAddr::V4(ip), 5060))
            .await
            .map_err(|e| format!("caller {i} on {ip}: {e}"))?;
        tokio::spawn(async move {
            while let Some(item) = incoming.recv().await {
                match item {
                    Incoming::Invite(inv) => inv.reject(486, vec![]).await,
                    Incoming::Request(req, responder) => {
                        let code = if req.method() == "OPTIONS" { 200 } else { 405 };
                        responder.reply(code, vec![], None).await.ok();
                    }
                }
            }
        });
        callers.push((st, ip));
    }

    let pid = args.watch_pid.map(|p| p.to_string());
    let rss_before = pid.as_deref().and_then(|p| proc_status(p, "VmRSS:"));
    let begin = Instant::now() + Duration::from_millis(200);
    let mut calls = Vec::with_capacity(n);
    for j in 0..n {
        let start = begin + Duration::from_secs_f64(j as f64 / args.ramp_per_sec.max(0.001));
        let did = match &args.did {
            Some(d) => d.clone(),
            None => format!("{}{:03}", args.did_prefix, j % k),
        };
        let plan = CallPlan {
            start,
            hangup: start + ramp + hold,
            target: format!("sip:{did}@{}", args.hotline),
            from: format!("1380000{:04}", j % 10000),
        };
        let (st, ip) = callers[j % callers.len()].clone();
        calls.push(tokio::spawn(call(
            st,
            ip,
            args.hotline,
            plan,
            media.clone(),
            Duration::from_secs_f64(args.setup_timeout_secs),
        )));
    }

    // Steady window.
    let first_hangup = begin + ramp + hold;
    let window_end = first_hangup - Duration::from_millis(500);
    let deadline = Instant::now() + Duration::from_secs_f64(max_secs);
    let mut steady = Steady {
        hotline_rss_kib_before: rss_before,
        ..Default::default()
    };
    let mut timed_out = false;
    // Wait until every setup settled (bounded by the window end).
    while shared.settled.load(Ordering::Relaxed) < n && Instant::now() < window_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_settled_at = clock.secs();
    tokio::time::sleep_until(
        (Instant::now() + Duration::from_secs_f64(args.settle_secs))
            .min(window_end)
            .into(),
    )
    .await;
    if Instant::now() + Duration::from_secs(1) < window_end {
        eprintln!(
            "hotline-load: steady ({} calls live)",
            shared.live.load(Ordering::Relaxed)
        );
        if let Some(f) = &args.steady_file {
            std::fs::write(f, format!("{}\n", clock.secs())).ok();
        }
        let s0 = clock.secs();
        let g0 = proc_cpu_ticks("self").unwrap_or(0);
        let h0 = pid.as_deref().and_then(proc_cpu_ticks);
        steady.hotline_rss_kib_start = pid.as_deref().and_then(|p| proc_status(p, "VmRSS:"));
        steady.live_calls_min = usize::MAX;
        while Instant::now() < window_end {
            let live = shared.live.load(Ordering::Relaxed);
            steady.live_calls_min = steady.live_calls_min.min(live);
            steady.live_calls_max = steady.live_calls_max.max(live);
            tokio::time::sleep((window_end - Instant::now()).min(Duration::from_millis(500))).await;
        }
        let s1 = clock.secs();
        let g1 = proc_cpu_ticks("self").unwrap_or(g0);
        steady.start_s = s0;
        steady.end_s = s1;
        steady.secs = s1 - s0;
        steady.generator_cpu_pct_of_core = (g1 - g0) as f64 / CLK_TCK * 100.0 / (s1 - s0);
        steady.generator_rss_kib = proc_status("self", "VmRSS:");
        if let (Some(h0), Some(p)) = (h0, pid.as_deref()) {
            if let Some(h1) = proc_cpu_ticks(p) {
                let pct = (h1 - h0) as f64 / CLK_TCK * 100.0 / (s1 - s0);
                steady.hotline_cpu_pct_of_core = Some(pct);
                if steady.live_calls_min > 0 {
                    steady.hotline_cpu_pct_per_call = Some(pct / steady.live_calls_min as f64);
                }
            }
            steady.hotline_rss_kib_end = proc_status(p, "VmRSS:");
            steady.hotline_threads = proc_status(p, "Threads:");
        }
        if steady.live_calls_min == usize::MAX {
            steady.live_calls_min = 0;
        }
        eprintln!("hotline-load: steady window over ({:.1} s)", steady.secs);
    } else {
        eprintln!("hotline-load: no steady window (setup took too long)");
    }

    // Hang-ups happen in the call tasks; wait for them (bounded).
    for c in calls {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, c).await.is_err() {
            timed_out = true;
            break;
        }
    }
    // Agents see hotline's BYEs shortly after.
    let agent_wait = Instant::now() + Duration::from_secs(10);
    while shared.agent_active.load(Ordering::Relaxed) > 0
        && Instant::now() < agent_wait.min(deadline)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let agents_left = shared.agent_active.load(Ordering::Relaxed);
    cmd_tx.send(Cmd::Stop).ok();
    tokio::time::timeout(Duration::from_secs(2), ticker_task)
        .await
        .ok();
    for st in &agent_stacks {
        st.shutdown();
    }
    for (st, _) in &callers {
        st.shutdown();
    }

    let wall = clock.secs();
    let cpu1 = proc_cpu_ticks("self").unwrap_or(cpu0);
    let c2a = summarize(&shared.caller_to_agent);
    let a2c = summarize(&shared.agent_to_caller);
    let failed_codes = shared.failed.lock().unwrap().clone();
    let failed: u64 = failed_codes.values().sum();
    let mut setup = shared.setup_ms.lock().unwrap().clone();
    let expected = c2a.recv.expected + a2c.recv.expected;
    let lost = c2a.recv.lost + a2c.recv.lost;
    // Where the late packets were: ramp (start → steady window), steady
    // window, tail (after it: hang-ups); and per second ("s:count" where > 0).
    let late: Vec<u64> = shared
        .late_by_second
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let (w0, w1) = if steady.secs > 0.0 {
        (
            steady.start_s.floor() as usize,
            steady.end_s.ceil() as usize,
        )
    } else {
        (usize::MAX, usize::MAX)
    };
    let sum = |r: std::ops::Range<usize>| -> u64 {
        late[r.start.min(late.len())..r.end.min(late.len())]
            .iter()
            .sum()
    };
    let late_phases = serde_json::json!({
        "ramp": if w0 == usize::MAX { sum(0..late.len()) } else { sum(0..w0) },
        "steady": if w0 == usize::MAX { 0 } else { sum(w0..w1) },
        "tail": if w1 == usize::MAX { 0 } else { sum(w1..late.len()) },
    });
    let late_timeline: String = late
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, c)| format!("{i}:{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let summary = serde_json::json!({
        "calls": {
            "attempted": shared.attempted.load(Ordering::Relaxed),
            "answered": shared.answered.load(Ordering::Relaxed),
            "failed": failed,
            "failed_codes": failed_codes,
            "dropped_early": shared.dropped_early.load(Ordering::Relaxed),
            "agent_answered": shared.agent_answered.load(Ordering::Relaxed),
            "agent_rejected": shared.agent_rejected.load(Ordering::Relaxed),
            "agent_calls_not_ended": agents_left,
            "setup_ms": {
                "p50": percentile(&mut setup, 0.5),
                "p95": percentile(&mut setup, 0.95),
                "max": percentile(&mut setup, 1.0),
            },
        },
        "loss_pct": if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 },
        "late_packets": c2a.recv.late + a2c.recv.late,
        "late_threshold_ms": args.late_ms,
        "max_late_ms": c2a.recv.max_late_ms.max(a2c.recv.max_late_ms),
        "max_transit_ms": c2a.recv.max_transit_ms.max(a2c.recv.max_transit_ms),
        "packets": {
            "caller_to_agent": c2a,
            "agent_to_caller": a2c,
        },
        "ticker": shared.ticker.lock().unwrap().clone(),
        "generator": {
            "threads": args.threads,
            "cpu_secs": (cpu1 - cpu0) as f64 / CLK_TCK,
            "wall_secs": wall,
            "cpu_pct_of_core": (cpu1 - cpu0) as f64 / CLK_TCK * 100.0 / wall.max(0.001),
        },
        "steady": steady,
        "timing": {
            "ramp_secs": ramp.as_secs_f64(),
            "hold_secs": args.hold_secs,
            "all_setups_settled_at_s": all_settled_at,
        },
        "late_by_phase": late_phases,
        "late_timeline": late_timeline,
        "timed_out": timed_out,
        "params": {
            "calls": n, "ramp_per_sec": args.ramp_per_sec, "agents": k, "callers": args.callers,
            "hotline": args.hotline.to_string(),
        },
    });
    serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())
}
