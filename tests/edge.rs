//! The carrier edge (issue 15): Kamailio running the shipped
//! `deploy/kamailio/kamailio.cfg` in front of real `hotline serve` nodes,
//! each on its own loopback address with its own data directory, whose
//! carrier trunk admits only the edge. A SIPp carrier calls the edge.
//! Checked:
//!
//! - what the edge answers itself: 403 to an INVITE from no carrier, 483
//!   out of hops, 403 to a stranger's in-dialog request routed through it
//!   toward no node (no open relay); a REGISTER goes on to a node, which
//!   challenges it (agents behind the edge: tests/edge_agents.rs);
//! - a burst of calls spreads over both nodes, every call answered; a
//!   node's 404 goes back to the carrier as it is; a node's BYE reaches the
//!   carrier through the edge (Record-Route);
//! - `kill -9` of a node: the INVITEs sent right after it, one of them
//!   first routed to the dead node, are failed over and answered by the
//!   survivor;
//! - the killed node, restarted, is probed back into the rotation and gets
//!   calls again, nothing else restarted;
//! - SIGTERM of a node: its OPTIONS answer turns 503 (`admission::decide`),
//!   the edge sends it no new call, and the call already up on it goes on
//!   until the carrier's BYE;
//! - a node answering 503 or 500 (a stand-in): the call goes on to the next
//!   node; a 503 takes the node out until its next probe, a 500 does not;
//!   a CANCEL follows its INVITE through the edge.
//!
//! Times (kill → answered, restart → rejoined, SIGTERM → out of the
//! rotation) are printed, never asserted: this machine is small and noisy.
//!
//! Addresses: `127.250.0.0/24` holds node A (`.1`), the edge (`.5`), the
//! carriers (`.10`, `.11`) and raw peers (`.12`); node B is `127.251.0.1`.
//! The second test: the stand-in node `127.252.0.1`, the edge `.5`, the
//! carrier `.10`, an agent `.21`; its hotline node `127.253.0.1`.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kamailio::{edge_ip, options, Kamailio};
use common::{Hotline, Net, RawSip, Sipp, SippResult};

const EDGE_NET: Net = Net(250);
const NODE_B_NET: Net = Net(251);
const T: Duration = Duration::from_secs(60);
/// The number the test flow answers.
const DID: &str = "12366";

fn node_uri(net: Net) -> String {
    format!("sip:{}:5060", net.ip(1))
}

/// A flow that answers at once and keeps the caller in a menu far longer
/// than any call here lasts: the carrier hangs up first.
const FLOW: &str = r#"
name = "edge-line"
dids = ["12366"]
entry = "menu"
[nodes.menu]
kind = "menu"
prompts = ["ivr_12345_menu"]
timeout_secs = 60
retries = 2
options = { "1" = "bye" }
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

/// A flow that says goodbye and hangs up: the node's BYE goes to the
/// carrier through the edge (the route set the edge recorded).
const FLOW_BYE: &str = r#"
name = "edge-bye"
dids = ["12367"]
entry = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

/// A node's configuration: the test config whose trunk admits the edge
/// (not the carrier), a long drain and a long RTP timeout (the carrier
/// sends no audio).
fn node_config(net: Net, dir: &Path, edge: Net) -> String {
    let extra = format!(
        "[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        dir.join("flows").display(),
        dir.join("cal").display()
    );
    let text = common::config(net, &dir.join("var"), &extra);
    let carrier = format!("\"{}/32\"", net.carrier());
    assert!(text.contains(&carrier), "the test config's trunk changed");
    text.replace(&carrier, &format!("\"{}/32\"", edge_ip(edge)))
        .replace("shutdown_grace_secs = 5", "shutdown_grace_secs = 60")
        .replace("rtp_timeout_secs = 20", "rtp_timeout_secs = 60")
}

/// A hotline node on `net` behind the edge of `edge`, with the test flows;
/// returns it and its config text (for a restart).
fn start_node(net: Net, edge: Net) -> (Hotline, String) {
    let dir = common::flows::setup(&[("edge.toml", FLOW), ("edge-bye.toml", FLOW_BYE)]);
    let text = node_config(net, dir.path(), edge);
    (Hotline::start_with(net, dir, &text), text)
}

/// A new INVITE from `raw` for `number` at `raw.to`, with `max_forwards`.
fn invite(raw: &RawSip, number: &str, call_id: &str, max_forwards: u8) -> String {
    let me = raw.local();
    let edge = raw.to.split(':').next().unwrap_or_default();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
    format!(
        "INVITE sip:{number}@{edge}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call_id}\r\nMax-Forwards: {max_forwards}\r\nFrom: <sip:raw@{me}>;tag=r\r\nTo: <sip:{number}@{edge}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The final answer to `request` sent by `raw`.
fn ask(raw: &RawSip, request: &str) -> u16 {
    raw.send(request.as_bytes());
    let answer = raw.recv_final().expect("an answer from the edge");
    common::status(&answer)
}

/// `n` calls for [`DID`] from `carrier` through `edge`, `rate` a second,
/// each held `hold_ms`.
fn calls(edge: &Kamailio, carrier: &str, n: u32, rate: u32, hold_ms: u32) -> Sipp {
    Sipp::start(
        "edge_carrier_call.xml",
        carrier,
        &[
            "-s",
            DID,
            "-m",
            &n.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            &n.to_string(),
            "-d",
            &hold_ms.to_string(),
            &edge.addr,
        ],
    )
}

fn assert_sipp_ok(r: &SippResult, edge: &Kamailio, nodes: &[&Hotline]) {
    if r.code != 0 {
        let logs: Vec<String> = nodes.iter().map(|h| h.tail_log()).collect();
        panic!(
            "SIPp {} failed (code {}):\n{}\n--- edge ---\n{}\n--- nodes ---\n{}",
            r.name,
            r.code,
            r.errors,
            edge.tail(),
            logs.join("\n---\n")
        );
    }
}

/// Calls a node has taken (`/healthz` `calls.started`).
fn started(h: &Hotline) -> u64 {
    h.counter("/calls/started")
}

/// Wait until the nodes have no call in progress, and return how many
/// calls each has taken.
fn settle(nodes: &[&Hotline]) -> Vec<u64> {
    nodes
        .iter()
        .map(|h| {
            h.wait_for("the node to be idle", T, |v| v["calls"]["active"] == 0);
            started(h)
        })
        .collect()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn calls_spread_over_the_nodes_fail_over_rejoin_and_drain() {
    let (mut a, a_config) = start_node(EDGE_NET, EDGE_NET);
    let (b, _) = start_node(NODE_B_NET, EDGE_NET);
    let carrier = EDGE_NET.carrier();
    let carrier2 = EDGE_NET.ip(11);
    let edge = Kamailio::start(
        EDGE_NET,
        &[node_uri(EDGE_NET), node_uri(NODE_B_NET)],
        &[carrier.clone(), carrier2.clone()],
    );
    let a_uri = node_uri(EDGE_NET);

    // 0. What the edge answers itself: an INVITE from an address that is
    // no carrier, a stranger's BYE routed through the edge toward the
    // carrier, one out of hops; a REGISTER is a node's to answer.
    let stranger = RawSip::new(&EDGE_NET.ip(12), &edge.addr);
    assert_eq!(
        ask(&stranger, &invite(&stranger, DID, "not-a-carrier", 70)),
        403
    );
    let me = stranger.local();
    let relay = format!(
        "BYE sip:x@{carrier}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-relay\r\nRoute: <sip:{};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:s@{me}>;tag=a\r\nTo: <sip:x@{carrier}>;tag=b\r\nCall-ID: relay\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        edge_ip(EDGE_NET)
    );
    assert_eq!(ask(&stranger, &relay), 403, "the edge is no open relay");
    let raw = RawSip::new(&carrier, &edge.addr);
    assert_eq!(ask(&raw, &invite(&raw, DID, "no-hops", 0)), 483);
    let register = options(&raw, &edge_ip(EDGE_NET), "register").replace("OPTIONS", "REGISTER");
    assert_eq!(ask(&raw, &register), 401, "a node challenges the REGISTER");
    drop(raw);

    // 1. A burst spreads over both nodes; every call is answered.
    let burst = 10;
    let r = calls(&edge, &carrier, burst, 20, 300).wait(T);
    assert_sipp_ok(&r, &edge, &[&a, &b]);
    let taken = settle(&[&a, &b]);
    // Who answered, as the edge saw the 200s.
    let answered: Vec<usize> = [EDGE_NET, NODE_B_NET]
        .iter()
        .map(|n| {
            let by = format!("answered by {}:5060", n.ip(1));
            edge.edge_lines()
                .iter()
                .filter(|l| l.ends_with(&by))
                .count()
        })
        .collect();
    println!(
        "burst of {burst}: node A took {} calls and answered {}, node B took {} and answered {}",
        taken[0], answered[0], taken[1], answered[1]
    );
    assert_eq!(taken[0] + taken[1], u64::from(burst), "{taken:?}");
    assert_eq!(answered[0] + answered[1], burst as usize, "{answered:?}");
    assert!(
        taken.iter().all(|n| *n > 0),
        "one node got nothing: {taken:?}"
    );

    // A node's answer that is the call's own (404) goes back to the
    // carrier as it is: no failover.
    let skip = edge.edge_lines().len();
    let r = Sipp::start(
        "carrier_expect_404.xml",
        &carrier,
        &["-s", "99999", "-m", "1", &edge.addr],
    )
    .wait(T);
    assert_sipp_ok(&r, &edge, &[&a, &b]);
    let lines = edge.edge_lines();
    assert!(
        !lines[skip..].iter().any(|l| l.contains("failed over")),
        "{}",
        edge.tail()
    );

    // The node hangs up: its BYE reaches the carrier through the edge.
    let skip = edge.edge_lines().len();
    let r = Sipp::start(
        "carrier_call_wait_bye.xml",
        &carrier,
        &["-s", "12367", "-m", "1", &edge.addr],
    )
    .wait(T);
    assert_sipp_ok(&r, &edge, &[&a, &b]);
    let (dispatched, _) = edge.wait_line("the goodbye call", skip, T, |l| {
        l.starts_with("edge: INVITE") && l.contains(" for 12367 to ")
    });
    let call_id = dispatched.split_whitespace().nth(2).expect("call id");
    let node_ip = dispatched.rsplit("sip:").next().expect("node").to_string();
    edge.wait_line("the node's BYE through the edge", skip, T, |l| {
        l == format!("edge: BYE {call_id} from {node_ip}")
    });

    // 2. kill -9 node A; the INVITEs sent at once are answered by B, the
    // one first routed to A after the edge gave up waiting for it.
    settle(&[&a, &b]);
    let skip = edge.edge_lines().len();
    let b_before = started(&b);
    a.kill9();
    let killed = Instant::now();
    let after_kill = 4;
    let sipp = calls(&edge, &carrier, after_kill, 50, 300);
    let (first, first_at) = edge.wait_line("a call answered after the kill", skip, T, |l| {
        l.contains("answered by")
    });
    let (failover, _) = edge.wait_line("a failover from the dead node", skip, T, |l| {
        l.contains("failed over from") && l.contains(&a_uri)
    });
    let failed_call = failover
        .split_whitespace()
        .nth(2)
        .expect("call id in the failover line")
        .to_string();
    let (_, failed_over_at) = edge.wait_line("the failed-over call's answer", skip, T, |l| {
        l.contains(&failed_call) && l.contains("answered by")
    });
    let r = sipp.wait(T);
    assert_sipp_ok(&r, &edge, &[&b]);
    println!(
        "kill -9 node A: first new call answered after {} ms ({first}); the call first sent to A answered after {} ms ({failover})",
        ms(first_at - killed),
        ms(failed_over_at - killed)
    );
    assert!(
        failover.contains("(no reply)"),
        "the dead node was silent: {failover}"
    );
    settle(&[&b]);
    assert_eq!(
        started(&b) - b_before,
        u64::from(after_kill),
        "every call after the kill went to B"
    );

    // 3. Node A comes back on the same data directory: the probes put it
    // back into the rotation, and it gets calls again.
    let skip = edge.edge_lines().len();
    let dir = std::mem::replace(&mut a.dir, tempfile::tempdir().expect("tempdir"));
    drop(a);
    let restarting = Instant::now();
    let a = Hotline::start_with(EDGE_NET, dir, &a_config);
    let a_up = Instant::now();
    let (_, rejoined) = edge.wait_line("node A back in the rotation", skip, T, |l| {
        l.contains(&format!("node {a_uri} up"))
    });
    let mut rounds = 0;
    while started(&a) == 0 {
        rounds += 1;
        assert!(
            rounds <= 5,
            "the restarted node A gets no call:\n{}",
            edge.tail()
        );
        let r = calls(&edge, &carrier, 2, 20, 200).wait(T);
        assert_sipp_ok(&r, &edge, &[&a, &b]);
    }
    println!(
        "restart of node A: serving after {} ms, back in the rotation after {} ms (probe), a call on it after {} ms ({rounds} round(s) of 2 calls)",
        ms(a_up - restarting),
        ms(rejoined - restarting),
        ms(restarting.elapsed())
    );
    settle(&[&a, &b]);

    // 4. A call up on one node; SIGTERM to that node: its OPTIONS answer
    // turns 503, the edge takes it out of the rotation, new calls go to
    // the other node, and the call in progress lasts until its BYE.
    let skip = edge.edge_lines().len();
    let hold_ms = 12_000;
    let long_call = calls(&edge, &carrier2, 1, 1, hold_ms);
    let nodes = [(&a, EDGE_NET), (&b, NODE_B_NET)];
    let (drained, drained_net) = common::wait_until("the long call to be up", T, || {
        nodes
            .iter()
            .find(|(h, _)| h.counter("/calls/active") == 1)
            .copied()
    });
    let (other, _) = *nodes
        .iter()
        .find(|(_, n)| n.0 != drained_net.0)
        .expect("the other node");
    let drained_uri = node_uri(drained_net);
    let drained_started = started(drained);
    let other_started = started(other);
    drained.sigterm();
    let termed = Instant::now();
    // The signal is handled asynchronously: probe once the node says it drains.
    common::wait_until("the node to log its drain", T, || {
        drained
            .log()
            .contains("shutting down: no new calls")
            .then_some(())
    });
    // What the edge's probe sees, asked directly.
    let raw = RawSip::new(&drained_net.ip(12), &format!("{}:5060", drained_net.ip(1)));
    raw.send(options(&raw, &drained_net.ip(1), "drain-probe").as_bytes());
    let answer = raw
        .recv_final()
        .expect("an answer to OPTIONS while draining");
    assert_eq!(common::status(&answer), 503, "{answer}");
    assert!(
        !common::headers(&answer, "Retry-After").is_empty(),
        "{answer}"
    );
    let (_, out_at) = edge.wait_line("the draining node out of the rotation", skip, T, |l| {
        l.contains(&format!("node {drained_uri} down"))
    });
    let skip_new = edge.edge_lines().len();
    let new_calls = 4;
    let r = calls(&edge, &carrier, new_calls, 20, 200).wait(T);
    assert_sipp_ok(&r, &edge, &[&a, &b]);
    let sent_to_drained = edge
        .edge_lines()
        .into_iter()
        .skip(skip_new)
        .filter(|l| l.starts_with("edge: INVITE") && l.ends_with(&format!("to {drained_uri}")))
        .count();
    assert_eq!(
        sent_to_drained,
        0,
        "new calls sent to the draining node:\n{}",
        edge.tail()
    );
    assert_eq!(
        started(drained),
        drained_started,
        "the draining node took a call"
    );
    assert_eq!(
        started(other) - other_started,
        u64::from(new_calls),
        "the other node took the new calls"
    );
    // The call in progress is still up, then ends with the carrier's BYE.
    assert_eq!(
        drained.counter("/calls/active"),
        1,
        "the call in progress was cut"
    );
    let r = long_call.wait(T);
    assert_sipp_ok(&r, &edge, &[&a, &b]);
    println!(
        "SIGTERM: out of the rotation after {} ms; the call in progress ended by its BYE after {} ms",
        ms(out_at - termed),
        ms(termed.elapsed())
    );
    // Its last call over, the node exits by itself.
    let mut drained = if drained_net.0 == EDGE_NET.0 { a } else { b };
    let status = drained.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    let log = drained.log();
    assert!(!log.contains("grace period over"), "{}", drained.tail_log());
}

/// A stand-in node on UDP: answers OPTIONS 200 and every INVITE 100 then
/// the final code set in `code` (a node refusing calls, e.g. at a cap).
struct RefusingNode {
    stop: Arc<AtomicBool>,
    code: Arc<AtomicU16>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RefusingNode {
    fn start(addr: &str, code: u16) -> Self {
        let sock = UdpSocket::bind(addr).expect("bind the refusing node");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let code = Arc::new(AtomicU16::new(code));
        let thread = {
            let (stop, code) = (stop.clone(), code.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let answers: Vec<(u16, &str)> = if req.starts_with("OPTIONS ") {
                        vec![(200, "OK")]
                    } else if req.starts_with("INVITE ") {
                        let code = code.load(Ordering::Relaxed);
                        vec![(100, "Trying"), (code, "Refused by the test node")]
                    } else {
                        vec![] // the ACK of the refusal, hop by hop
                    };
                    for (code, reason) in answers {
                        let resp = response(&req, code, reason);
                        sock.send_to(resp.as_bytes(), from).ok();
                    }
                }
            })
        };
        Self {
            stop,
            code,
            thread: Some(thread),
        }
    }
}

impl Drop for RefusingNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A response to `req` (its Via, From, To with a tag on a final answer,
/// Call-ID and CSeq).
fn response(req: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for line in req.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        let name = name.to_ascii_lowercase();
        if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        } else if name == "to" {
            out.push_str(line);
            if code >= 200 && !line.contains("tag=") {
                out.push_str(";tag=refusing");
            }
            out.push_str("\r\n");
        }
    }
    if code == 503 {
        out.push_str("Retry-After: 5\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A node that refuses calls with 5xx: the caller's call goes on to the
/// next node and is answered there. A 503 takes the refusing node out of
/// the rotation until its next probe gets 200; another 5xx does not. And a
/// CANCEL follows its INVITE through the edge.
#[test]
fn a_node_refusing_with_5xx_passes_the_call_on_and_cancel_follows_the_invite() {
    let net = Net(252);
    let refusing = RefusingNode::start(&format!("{}:5060", net.ip(1)), 503);
    let (h, _) = start_node(Net(253), net);
    let carrier = net.carrier();
    let refusing_uri = node_uri(net);
    let edge = Kamailio::start(
        net,
        &[refusing_uri.clone(), node_uri(Net(253))],
        std::slice::from_ref(&carrier),
    );

    for (code, marks_down) in [(503, true), (500, false)] {
        refusing.code.store(code, Ordering::Relaxed);
        let skip = edge.edge_lines().len();
        let before = started(&h);
        // Round robin: of two calls, one is first sent to the refusing node.
        let r = calls(&edge, &carrier, 2, 20, 200).wait(T);
        assert_sipp_ok(&r, &edge, &[&h]);
        edge.wait_line("the call passed on", skip, T, |l| {
            l.contains(&format!("failed over from {refusing_uri} ({code})"))
        });
        settle(&[&h]);
        assert_eq!(started(&h) - before, 2, "both calls answered by the node");
        let down = format!("edge: node {refusing_uri} down");
        let went_down = edge.edge_lines()[skip..].contains(&down);
        assert_eq!(went_down, marks_down, "{code}:\n{}", edge.tail());
        if marks_down {
            // Its probe still gets 200: back in the rotation.
            edge.wait_line("the refusing node back", skip, T, |l| {
                *l == format!("edge: node {refusing_uri} up")
            });
        }
    }

    // CANCEL: the agent registered with the node rings, the carrier gives
    // up, the agent's phone sees the CANCEL and the carrier its 487.
    common::register(&h, "1001", &net.agent(0));
    let agent = Sipp::start("agent_noanswer.xml", &net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let r = Sipp::start(
        "edge_carrier_cancel.xml",
        &carrier,
        &["-s", "12345", "-m", "1", &edge.addr],
    )
    .wait(T);
    assert_sipp_ok(&r, &edge, &[&h]);
    let r = agent.wait(T);
    assert_sipp_ok(&r, &edge, &[&h]);
}
