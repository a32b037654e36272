//! Floods from outside (issue 14 §5): one address sends 20,000 INVITEs and
//! REGISTERs while 20 legitimate calls come in from the carrier's trunk.
//! With the shipped defaults (`[sip.flood]`: 50 messages a second, a burst
//! of 200, a 60 s ban; trunks exempt) every legitimate call completes with
//! its RTP both ways, the flooder is banned after its burst and gets no
//! answer to the rest, and hotline's CPU for the flood is printed (a
//! figure for BENCHMARKS.md, never asserted).

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{register, Hotline, Net, Sipp};

const NET: Net = Net(218);
const FLOOD: usize = 20_000;

/// Hotline's user+system CPU time so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    field(11) + field(12)
}

fn flood_message(i: usize, me: &str, hotline: &str) -> Vec<u8> {
    let (method, uri) = if i.is_multiple_of(2) {
        ("INVITE", format!("sip:12345@{hotline}"))
    } else {
        ("REGISTER", format!("sip:{hotline}"))
    };
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-flood-{i}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@{hotline}>;tag=f{i}\r\n\
         To: <sip:1001@{hotline}>\r\n\
         Call-ID: flood-{i}@{me}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:1001@{me}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_flooder_is_banned_while_twenty_legitimate_calls_complete() {
    let h = Hotline::start(NET, "");
    register(&h, "1001", &NET.agent(0));
    let agent = Sipp::start("agent_answer.xml", &NET.agent(0), &["-m", "20"]);
    std::thread::sleep(Duration::from_millis(300));

    // The flooder: 20,000 messages at about 2,000 a second, counting the
    // answers it gets, on a thread of its own.
    let flooder = UdpSocket::bind(format!("{}:0", NET.ip(60))).expect("bind flooder");
    flooder
        .set_read_timeout(Some(Duration::from_millis(50)))
        .ok();
    let me = flooder.local_addr().expect("addr").to_string();
    let answers = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let sock = flooder.try_clone().expect("clone");
        let (answers, done) = (answers.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let deadline = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                if sock.recv_from(&mut buf).is_ok() {
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let cpu_before = cpu_ticks(h.pid());
    let sip = NET.sip();
    let carrier = Sipp::start(
        "carrier_call.xml",
        &NET.carrier(),
        &["-s", "12345", "-m", "20", "-l", "5", "-r", "4", &sip],
    );
    let started = Instant::now();
    for i in 0..FLOOD {
        flooder
            .send_to(&flood_message(i, &me, &sip), &sip)
            .expect("flood send");
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let flood_secs = started.elapsed().as_secs_f64();
    let v = h.healthz();
    let cpu_flood = cpu_ticks(h.pid()) - cpu_before;

    carrier.wait(Duration::from_secs(120)).assert_ok(&h);
    agent.wait(Duration::from_secs(60)).assert_ok(&h);
    done.store(true, Ordering::Relaxed);
    reader.join().ok();

    assert!(
        v["sip"]["flood_bans"].as_u64().unwrap_or(0) >= 1,
        "the flooder is banned: {v}"
    );
    assert!(v["sip"]["banned_now"].as_u64().unwrap_or(0) >= 1, "{v}");
    let dropped = v["sip"]["flood_dropped"].as_u64().unwrap_or(0);
    assert!(
        dropped >= (FLOOD - 300) as u64,
        "nearly all the flood is dropped unread: {v}"
    );
    let answered = answers.load(Ordering::Relaxed);
    assert!(
        answered <= 300,
        "the flooder got {answered} answers: only its burst is answered"
    );
    let v = h.healthz();
    assert_eq!(
        v["calls"]["answered"], 20,
        "every legitimate call was answered: {v}"
    );
    assert!(
        v["rtp"]["caller_to_agent"].as_u64().unwrap_or(0) >= 20 * 90,
        "{v}"
    );
    assert!(
        v["rtp"]["agent_to_caller"].as_u64().unwrap_or(0) >= 20 * 90,
        "{v}"
    );
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    eprintln!(
        "flood: {FLOOD} messages in {flood_secs:.1} s ({:.0}/s) while 20 calls ran; hotline CPU {:.2} s ({:.0} % of a core); {answered} answered, {dropped} dropped",
        FLOOD as f64 / flood_secs,
        cpu_flood as f64 / ticks,
        100.0 * cpu_flood as f64 / ticks / flood_secs,
    );
}

#[test]
fn a_flood_at_full_speed_costs_little() {
    // No calls: how much CPU does hotline spend dropping a banned
    // source's datagrams as fast as one sender can send them?
    let h = Hotline::start(Net(219), "");
    let sip = Net(219).sip();
    let flooder = UdpSocket::bind(format!("{}:0", Net(219).ip(60))).expect("bind flooder");
    let me = flooder.local_addr().expect("addr").to_string();
    let n = 200_000;
    let msgs: Vec<Vec<u8>> = (0..64).map(|i| flood_message(i, &me, &sip)).collect();
    let cpu_before = cpu_ticks(h.pid());
    let started = Instant::now();
    for i in 0..n {
        flooder.send_to(&msgs[i % msgs.len()], &sip).ok();
    }
    let secs = started.elapsed().as_secs_f64();
    // Let hotline drain what is queued in its socket buffer.
    std::thread::sleep(Duration::from_millis(500));
    let cpu = (cpu_ticks(h.pid()) - cpu_before) as f64 / 100.0;
    let v = h.healthz();
    let dropped = v["sip"]["flood_dropped"].as_u64().unwrap_or(0);
    assert!(v["sip"]["flood_bans"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(dropped > 0, "{v}");
    // Still serving: an OPTIONS from another address is answered.
    let raw = common::RawSip::new(&Net(219).ip(61), &sip);
    let ping = format!(
        "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me2};branch=z9hG4bK-ping\r\nMax-Forwards: 70\r\nFrom: <sip:p@{me2}>;tag=1\r\nTo: <sip:{sip}>\r\nCall-ID: ping@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        me2 = raw.local()
    );
    raw.send(ping.as_bytes());
    let answer = raw.recv_final().unwrap_or_default();
    assert_eq!(common::status(&answer), 200, "{answer}");
    eprintln!(
        "full-speed flood: {n} datagrams sent in {secs:.2} s ({:.0}/s), {dropped} counted dropped; hotline CPU {cpu:.2} s = {:.1} µs per dropped datagram",
        n as f64 / secs,
        cpu * 1e6 / dropped.max(1) as f64,
    );
}
