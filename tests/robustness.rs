//! Bad input never hurts calls in progress: a corpus of malformed and
//! unexpected SIP is thrown at hotline while a real call is up; each message
//! gets a 4xx/5xx answer or is dropped, hotline stays up, and the call
//! completes normally (its RTP and BYE unaffected).

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::time::Duration;

use common::{register, status, Hotline, Net, RawSip, Sipp};

/// `(name, message, acceptable responses)`; an empty list means "must be
/// dropped silently"; `None` in the list means "no answer" is acceptable.
/// A named message and the answers it may get.
type Case = (&'static str, Vec<u8>, Vec<Option<u16>>);

fn corpus(hotline: &str, me: &str) -> Vec<Case> {
    let unique = std::sync::atomic::AtomicUsize::new(0);
    let base = |method: &str, extra: &str, cseq: &str, body: &str| -> Vec<u8> {
        let n = unique.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            "{method} sip:12345@{hotline} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-{method}-{cseq}-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bad@{me}>;tag=evil\r\n\
             To: <sip:12345@{hotline}>\r\n\
             Call-ID: bad-{method}-{n}@x\r\n\
             CSeq: {cseq}\r\n\
             {extra}\
             Content-Length: {len}\r\n\r\n{body}",
            len = body.len(),
        )
        .into_bytes()
    };
    let mut out: Vec<Case> = vec![
        ("garbage bytes", vec![0xff, 0x00, 0x13, 0x37, 0x80, 0x80, b'\r', b'\n'], vec![None]),
        ("empty datagram", Vec::new(), vec![None]),
        ("only a request line", format!("INVITE sip:12345@{hotline} SIP/2.0\r\n\r\n").into_bytes(), vec![None, Some(400)]),
        (
            "missing Call-ID",
            format!(
                "OPTIONS sip:{hotline} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-nocid\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:b@{hotline}>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            vec![None, Some(400)],
        ),
        (
            "missing CSeq",
            format!(
                "OPTIONS sip:{hotline} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-nocseq\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:b@{hotline}>\r\nCall-ID: nocseq@x\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            vec![None, Some(400)],
        ),
        (
            "missing Via",
            format!(
                "OPTIONS sip:{hotline} SIP/2.0\r\nFrom: <sip:a@{me}>;tag=1\r\nTo: <sip:b@{hotline}>\r\nCall-ID: novia@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            vec![None],
        ),
        ("Content-Length beyond the body", {
            let mut m = base("OPTIONS", "", "1 OPTIONS", "");
            let text = String::from_utf8_lossy(&m).replace("Content-Length: 0", "Content-Length: 500");
            m = text.into_bytes();
            m
        }, vec![None, Some(400)]),
        // rsipstack's parser knows only the RFC methods and drops the rest
        // before hotline sees them (RFC 3261 §8.2.1 would prefer a 501).
        ("unknown method", base("FROBNICATE", "", "1 FROBNICATE", ""), vec![None, Some(501), Some(405)]),
        ("CSeq method differs from the request", base("OPTIONS", "", "1 INVITE", ""), vec![Some(400)]),
        ("BYE outside any dialog", base("BYE", "", "2 BYE", ""), vec![Some(481)]),
        (
            "BYE for an unknown dialog",
            {
                let text = String::from_utf8_lossy(&base("BYE", "", "2 BYE", ""))
                    .replace(&format!("To: <sip:12345@{hotline}>"), &format!("To: <sip:12345@{hotline}>;tag=nosuch"));
                text.into_bytes()
            },
            vec![Some(481)],
        ),
        ("CANCEL matching nothing", base("CANCEL", "", "1 CANCEL", ""), vec![Some(481)]),
        (
            "INVITE with an SDP that is not SDP",
            base("INVITE", "Content-Type: application/sdp\r\nContact: <sip:bad@127.0.0.1>\r\n", "1 INVITE", "this is not sdp"),
            vec![Some(488), Some(400)],
        ),
        ("SIP version 3", {
            let text = String::from_utf8_lossy(&base("OPTIONS", "", "1 OPTIONS", "")).replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
            text.into_bytes()
        }, vec![None, Some(400), Some(505)]),
        ("a stray response", format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {hotline};branch=z9hG4bK-nothing\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: stray@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").into_bytes(), vec![None]),
    ];
    // An oversize header: 60 KB of one header in a UDP datagram.
    let big = format!("X-Padding: {}\r\n", "a".repeat(60_000));
    out.push((
        "oversize header",
        base("OPTIONS", &big, "1 OPTIONS", ""),
        vec![None, Some(400), Some(413), Some(513), Some(200)],
    ));
    out
}

#[test]
fn malformed_sip_is_refused_and_the_call_in_progress_is_unaffected() {
    let h = Hotline::start(Net(31), "");
    register(&h, "1001", &h.net.agent(0));
    let agent = Sipp::start("agent_answer.xml", &h.net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = h.net.sip();
    let carrier = Sipp::start(
        "carrier_call.xml",
        &h.net.carrier(),
        &["-s", "12345", "-m", "1", &sip],
    );
    h.wait_for("the call to be up", Duration::from_secs(15), |v| {
        v["calls"]["active"] == 1
    });
    std::thread::sleep(Duration::from_millis(500));

    // From the carrier's address (so INVITEs pass the trunk ACL) but
    // another port.
    let raw = RawSip::new(&h.net.carrier(), &sip);
    let mut report = Vec::new();
    for (name, msg, acceptable) in corpus(&h.net.ip(1), &raw.local()) {
        raw.send(&msg);
        let got = raw.recv_final().map(|r| status(&r));
        report.push(format!("{name}: {got:?}"));
        assert!(
            acceptable.contains(&got),
            "{name}: got {got:?}, acceptable {acceptable:?}\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));

    carrier.wait(Duration::from_secs(60)).assert_ok(&h);
    agent.wait(Duration::from_secs(60)).assert_ok(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 1, "{v}");
    assert!(v["rtp"]["caller_to_agent"].as_u64().unwrap() >= 90, "{v}");
    assert!(v["rtp"]["agent_to_caller"].as_u64().unwrap() >= 90, "{v}");
}

#[test]
fn invite_from_an_address_no_trunk_admits_gets_403() {
    let h = Hotline::start(Net(32), "");
    let raw = RawSip::new(&h.net.ip(99), &h.net.sip());
    let me = raw.local();
    let hotline = h.net.ip(1);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
    let msg = format!(
        "INVITE sip:12345@{hotline} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-acl\r\nMax-Forwards: 70\r\nFrom: <sip:intruder@{me}>;tag=x\r\nTo: <sip:12345@{hotline}>\r\nCall-ID: acl@x\r\nCSeq: 1 INVITE\r\nContact: <sip:intruder@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    raw.send(msg.as_bytes());
    let resp = raw.recv_final().expect("a response");
    assert_eq!(status(&resp), 403, "{resp}");
    assert_eq!(h.counter("/calls/started"), 0);
    // One log line names the refused source.
    let log = h.log();
    assert_eq!(
        log.matches("no trunk admits").count(),
        1,
        "{}",
        h.tail_log()
    );
}

#[test]
fn options_ping_is_answered_over_udp_and_tcp_and_large_tcp_messages_are_framed() {
    use std::io::{Read, Write};
    let h = Hotline::start(Net(33), "");
    let hotline = h.net.ip(1);
    let raw = RawSip::new(&h.net.carrier(), &h.net.sip());
    let me = raw.local();
    let options = |transport: &str, me: &str, pad: usize| {
        format!(
            "OPTIONS sip:{hotline} SIP/2.0\r\nVia: SIP/2.0/{transport} {me};branch=z9hG4bK-opt{pad}\r\nMax-Forwards: 70\r\nFrom: <sip:carrier@{me}>;tag=o\r\nTo: <sip:{hotline}>\r\nCall-ID: opt-{transport}-{pad}@x\r\nCSeq: 1 OPTIONS\r\nX-Padding: {}\r\nContent-Length: 0\r\n\r\n",
            "p".repeat(pad)
        )
    };
    raw.send(options("UDP", &me, 0).as_bytes());
    let resp = raw.recv_final().expect("OPTIONS answered over UDP");
    assert_eq!(status(&resp), 200, "{resp}");
    assert!(
        common::headers(&resp, "Allow")
            .iter()
            .any(|a| a.contains("INVITE")),
        "{resp}"
    );

    // TCP: a CRLF keep-alive, then two requests in one write, the second
    // far larger than an MTU: Content-Length framing must split them.
    let mut tcp = std::net::TcpStream::connect(h.net.sip()).expect("TCP connect");
    tcp.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let me_tcp = tcp.local_addr().unwrap().to_string();
    tcp.write_all(b"\r\n\r\n").unwrap();
    let mut both = options("TCP", &me_tcp, 0);
    both.push_str(&options("TCP", &me_tcp, 6000));
    tcp.write_all(both.as_bytes()).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 8192];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got.matches("SIP/2.0 200").count() < 2 && std::time::Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => break,
        }
    }
    assert_eq!(
        got.matches("SIP/2.0 200").count(),
        2,
        "two OPTIONS answered over TCP:\n{got}"
    );
    assert!(
        got.contains("z9hG4bK-opt6000"),
        "the large request was answered:\n{got}"
    );
}

#[test]
fn hostile_rtp_neither_crashes_nor_leaks_into_the_call() {
    use std::process::Stdio;
    let h = Hotline::start(Net(34), "");
    let net = h.net;
    let phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "0.2"]);
    let dialer = common::dial(net, "12345", &["--tone", "440", "--hangup-after", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    h.wait_for("the call to be up", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 1
    });
    std::thread::sleep(Duration::from_millis(800));

    // A stranger sprays every port of hotline's RTP range: truncated
    // headers, oversized datagrams, unknown payload types, PCMA with a new
    // SSRC (audio that would be heard if it leaked), RTCP-looking junk.
    let stranger = std::net::UdpSocket::bind(format!("{}:0", net.ip(66))).unwrap();
    let mut pcma = vec![0x80u8, 8, 0, 1, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
    pcma.extend(std::iter::repeat_n(0x2a, 160)); // loud A-law
    let cases: Vec<Vec<u8>> = vec![
        vec![0x80, 8, 0],
        vec![0x80; 4000],
        vec![0x80, 99, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6],
        pcma,
        vec![0x81, 200, 0, 7, 1, 2, 3, 4],
        vec![0xff; 12],
    ];
    let hotline_ip = net.ip(1);
    let mut sent = 0u64;
    for round in 0..3 {
        for port in 20000u16..=20999 {
            for c in &cases {
                if stranger.send_to(c, format!("{hotline_ip}:{port}")).is_ok() {
                    sent += 1;
                }
            }
        }
        if round < 2 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(sent > 10_000, "sent {sent} hostile datagrams");

    let out = dialer.wait_with_output().unwrap();
    let caller = common::report(&out);
    let out = phone.wait_with_output().unwrap();
    let agent = common::report(&out);
    assert_eq!(caller["status"], 200, "{caller}");
    let (c_sent, c_recv) = (
        caller["media"]["rtp_sent"].as_u64().unwrap(),
        caller["media"]["rtp_received"].as_u64().unwrap(),
    );
    let (a_sent, a_recv) = (
        agent["media"]["rtp_sent"].as_u64().unwrap(),
        agent["media"]["rtp_received"].as_u64().unwrap(),
    );
    // Each side received what the other sent, and nothing of the stranger's.
    assert!(
        a_recv <= c_sent && a_recv + 25 >= c_sent,
        "agent got {a_recv} of the caller's {c_sent}: {agent}"
    );
    assert!(
        c_recv <= a_sent && c_recv + 30 >= a_sent.min(200),
        "caller got {c_recv} of the agent's {a_sent}: {caller}"
    );
    // The call ended cleanly and the switch is still serving.
    let v = h.wait_for("the call to end cleanly", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 0 && v["media"]["rtp_port_pairs_in_use"] == 0
    });
    assert_eq!(v["calls"]["answered"], 1, "{v}");
}

/// The stack routes each dialog's events to its call by Call-ID (issue 16,
/// one stack-wide dialog-state channel): a second INVITE with the Call-ID
/// of a call in progress (a looped or merged request, RFC 3261 §8.2.2.2)
/// gets 482 instead of being routed to the first call, and the first call
/// is unaffected: its CANCEL still reaches it and ends it (487), and its
/// agent's ringing is cancelled.
#[test]
fn an_invite_reusing_a_live_calls_call_id_gets_482_and_the_first_call_goes_on() {
    let h = Hotline::start(Net(248), "");
    register(&h, "1001", &h.net.agent(0));
    let agent = Sipp::start("agent_noanswer.xml", &h.net.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let raw = RawSip::new(&h.net.carrier(), &h.net.sip());
    let me = raw.local();
    let hotline = h.net.ip(1);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";
    let request = |method: &str, tag: &str, branch: &str, body: &str| {
        format!(
            "{method} sip:12345@{hotline} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+8613800000000@{me}>;tag={tag}\r\nTo: <sip:12345@{hotline}>\r\nCall-ID: twice@carrier\r\nCSeq: 1 {method}\r\nContact: <sip:+8613800000000@{me}>\r\n{}Content-Length: {}\r\n\r\n{body}",
            if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
            body.len()
        )
    };
    let first = request("INVITE", "first", "z9hG4bK-first", sdp);
    raw.send(first.as_bytes());
    // The first call rings its agent (180 relayed): its leg is live.
    let mut buf = vec![0u8; 65536];
    let ringing = (0..20).find_map(|_| {
        let (n, _) = raw.sock.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.starts_with("SIP/2.0 180").then_some(text)
    });
    assert!(ringing.is_some(), "the first call rings\n{}", h.tail_log());

    raw.send(request("INVITE", "second", "z9hG4bK-second", sdp).as_bytes());
    let refused = raw
        .recv_final()
        .expect("a final response to the second INVITE");
    assert_eq!(status(&refused), 482, "{refused}");
    assert!(refused.contains("z9hG4bK-second"), "{refused}");

    // The first call still hears its own dialog: its CANCEL ends it.
    raw.send(request("CANCEL", "first", "z9hG4bK-first", "").as_bytes());
    let mut finals = Vec::new();
    for _ in 0..2 {
        let resp = raw
            .recv_final()
            .expect("the CANCEL's and the INVITE's finals");
        finals.push((status(&resp), resp.contains("CANCEL")));
    }
    finals.sort();
    assert_eq!(finals, vec![(200, true), (487, false)], "{}", h.tail_log());
    raw.send(
        format!(
            "ACK sip:12345@{hotline} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-first\r\nMax-Forwards: 70\r\nFrom: <sip:+8613800000000@{me}>;tag=first\r\nTo: <sip:12345@{hotline}>\r\nCall-ID: twice@carrier\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    agent.wait(Duration::from_secs(40)).assert_ok(&h);
    h.wait_for("the switch to be idle", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0 && v["sip"]["dialogs"] == 0 && v["sip"]["legs_routed"] == 0
    });
    let log = h.log();
    assert_eq!(
        log.matches("INVITE with a live leg's Call-ID: 482").count(),
        1,
        "{}",
        h.tail_log()
    );
}
