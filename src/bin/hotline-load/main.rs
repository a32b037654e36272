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
//!
//! Files: `shared` (packet format, clock, counters), `send` (the ticker),
//! `receive` (per-socket measurement), `media` (one leg's media), `sip`
//! (agent and caller UAs), `report` (/proc sampling and the summary's
//! parts); this file parses the arguments and runs the scenario: register,
//! ramp, steady window, hang-ups, summary.
#![allow(clippy::disallowed_methods)] // a load generator is all shell: it reads the clock

mod media;
mod receive;
mod report;
mod send;
mod shared;
mod sip;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hotline::sip::Incoming;
use tokio::sync::mpsc;

use media::Media;
use report::{percentile, proc_cpu_ticks, proc_status, summarize, Steady, CLK_TCK};
use send::{ticker, Cmd};
use shared::{Clock, Shared, LATE_SECONDS};
use sip::{agent, call, nth_ip, stack, CallPlan};

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
    /// Every leg SRTP only (`RTP/SAVP`, SDES keys): hotline must be set to
    /// require it (`[media] srtp_agents`, the trunk's `srtp`).
    #[arg(long)]
    srtp: bool,
    /// Kernel receive buffer per RTP socket, bytes (0: system default).
    #[arg(long, default_value_t = 0)]
    rtp_rcvbuf: usize,
    /// Hard limit on the whole run, seconds (default: ramp×2 + hold + 60).
    #[arg(long)]
    max_secs: Option<f64>,
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
        srtp: args.srtp,
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
