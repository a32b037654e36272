//! RFC 3261 admission from outside (issue 14 §3): a corpus of hostile SIP
//! (tortuous-but-valid, semantically invalid, hostile sizes and bytes,
//! dialog-less abuse), each message with the one verdict it must get, sent
//! over UDP and over TCP to a running hotline. Every answer is a `SIP/2.0`
//! status line with the expected code (or silence where nothing can be
//! answered), identical on both transports; hotline answers an OPTIONS
//! ping after every case, and a real call placed after the corpus
//! completes.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{headers, register, status, Hotline, Net, Sipp};

const NET: Net = Net(217);

/// What a case must get: a final status, or nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Code(u16),
    Silence,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    want: Want,
    /// Over UDP only (a datagram cannot carry what TCP can, or vice versa).
    udp_only: bool,
    /// Over TCP only.
    tcp_only: bool,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, want: Want) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        want,
        udp_only: false,
        tcp_only: false,
    }
}

/// A valid request of `method` with `edit` applied to its text; every
/// request gets a unique Call-ID and branch.
fn request(method: &str, edit: &dyn Fn(String) -> String, n: usize, transport: &str) -> Vec<u8> {
    let hotline = NET.sip();
    let me = NET.ip(50);
    edit(format!(
        "{method} sip:12345@{hotline} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {me}:5099;branch=z9hG4bK-adm-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{me}>;tag=p{n}\r\n\
         To: <sip:12345@{hotline}>\r\n\
         Call-ID: adm-{n}@{me}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
    .into_bytes()
}

fn corpus(transport: &str) -> Vec<Case> {
    use Want::{Code, Silence};
    let mut n = 0;
    let mut r = |method: &str, edit: &dyn Fn(String) -> String| {
        n += 1;
        request(method, edit, n, transport)
    };
    let same = |m: String| m;
    let hotline = NET.sip();
    let with_sdp = |m: String| {
        m.replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n",
        )
    };
    let mut out = vec![
        // Tortuous but valid: each gets the normal answer.
        case("plain OPTIONS", r("OPTIONS", &same), Code(200)),
        case("compact headers", r("OPTIONS", &|m| m.replace("Via:", "v:").replace("From:", "f:").replace("To:", "t:").replace("Call-ID:", "i:").replace("Content-Length:", "l:")), Code(200)),
        case("header names in odd case and spacing", r("OPTIONS", &|m| m.replace("Max-Forwards: 70", "mAX-forwards :   70").replace("CSeq: 1", "cseq:\t1")), Code(200)),
        case("leading CRLFs", { let mut v = b"\r\n\r\n".to_vec(); v.extend(r("OPTIONS", &same)); v }, Code(200)),
        case("unknown headers and long values", r("OPTIONS", &|m| m.replace("CSeq:", &format!("X-Odd-Header: {}\r\nX-Empty:\r\nCSeq:", "z".repeat(2000)))), Code(200)),
        case("two Via values on one line", r("OPTIONS", &|m| m.replace(";branch=z9hG4bK-adm-", ";branch=z9hG4bK-x, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-adm-")), Code(200)),
        case("Require of nothing, Supported of anything", r("OPTIONS", &|m| m.replace("CSeq:", "Supported: foo, bar\r\nCSeq:")), Code(200)),
        case("OPTIONS with Max-Forwards 0", r("OPTIONS", &|m| m.replace("Max-Forwards: 70", "Max-Forwards: 0")), Code(200)),
        // Semantically invalid.
        case("INVITE without Max-Forwards", r("INVITE", &|m| with_sdp(m).replace("Max-Forwards: 70\r\n", "")), Code(400)),
        case("INVITE with Max-Forwards 0", r("INVITE", &|m| with_sdp(m).replace("Max-Forwards: 70", "Max-Forwards: 0")), Code(483)),
        case("Max-Forwards not a number", r("OPTIONS", &|m| m.replace("Max-Forwards: 70", "Max-Forwards: seventy")), Code(400)),
        case("unknown URI scheme", r("INVITE", &|m| with_sdp(m).replace(&format!("INVITE sip:12345@{hotline}"), "INVITE tel:+8612345")), Code(416)),
        case("Require of an unknown extension", r("INVITE", &|m| with_sdp(m).replace("CSeq:", "Require: nosuchext\r\nCSeq:")), Code(420)),
        case("two To headers", r("INVITE", &|m| with_sdp(m).replace("CSeq:", "To: <sip:other@x>\r\nCSeq:")), Code(400)),
        case("two Call-ID headers", r("INVITE", &|m| with_sdp(m).replace("CSeq:", "Call-ID: second@x\r\nCSeq:")), Code(400)),
        case("empty Call-ID", r("INVITE", &|m| { let m = with_sdp(m); let start = m.find("Call-ID:").unwrap_or(0); let end = start + m[start..].find("\r\n").unwrap_or(0); format!("{}Call-ID: {}", &m[..start], &m[end..]) }), Code(400)),
        case("bad Via version", r("INVITE", &|m| with_sdp(m).replace("Via: SIP/2.0/", "Via: SIP/3.0/")), Code(400)),
        case("body without Content-Type", r("INVITE", &|m| with_sdp(m).replace("Content-Type: application/sdp\r\n", "")), Code(400)),
        case("SIP/7.0", r("OPTIONS", &|m| m.replace(" SIP/2.0\r\n", " SIP/7.0\r\n")), Code(505)),
        case("unknown method", r("FOOBAR", &same), Code(501)),
        case("missing Call-ID", r("OPTIONS", &|m| { let s = m.find("Call-ID:").unwrap_or(0); let e = s + m[s..].find("\r\n").unwrap_or(0) + 2; format!("{}{}", &m[..s], &m[e..]) }), Code(400)),
        case("missing CSeq", r("OPTIONS", &|m| m.replace("CSeq: 1 OPTIONS\r\n", "")), Code(400)),
        case("missing From", r("OPTIONS", &|m| { let s = m.find("From:").unwrap_or(0); let e = s + m[s..].find("\r\n").unwrap_or(0) + 2; format!("{}{}", &m[..s], &m[e..]) }), Code(400)),
        case("missing To", r("OPTIONS", &|m| { let s = m.find("To:").unwrap_or(0); let e = s + m[s..].find("\r\n").unwrap_or(0) + 2; format!("{}{}", &m[..s], &m[e..]) }), Code(400)),
        case("missing Via", r("OPTIONS", &|m| { let s = m.find("Via:").unwrap_or(0); let e = s + m[s..].find("\r\n").unwrap_or(0) + 2; format!("{}{}", &m[..s], &m[e..]) }), Silence),
        case("CSeq method differs", r("OPTIONS", &|m| m.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")), Code(400)),
        case("CSeq number too big", r("OPTIONS", &|m| m.replace("CSeq: 1 ", "CSeq: 99999999999 ")), Code(400)),
        case("a Request-URI port the parser refuses", r("OPTIONS", &|m| m.replace(&format!("OPTIONS sip:12345@{hotline}"), "OPTIONS sip:12345@127.0.0.1:99999999")), Code(400)),
        case("header line without colon", r("OPTIONS", &|m| m.replace("Max-Forwards: 70", "Max-Forwards 70")), Code(400)),
        // Hostile bytes and sizes.
        case("NUL in a header", r("OPTIONS", &|m| m.replace("tag=p", "tag=\0p")), Code(400)),
        case("bytes that are not UTF-8", { let mut v = r("OPTIONS", &|m| m.replace("CSeq:", "X-Bin: @@\r\nCSeq:")); let i = v.windows(2).position(|w| w == b"@@").unwrap_or(0); v[i] = 0xff; v[i + 1] = 0xfe; v }, Code(400)),
        case("200 header lines", r("OPTIONS", &|m| m.replace("CSeq:", &format!("{}CSeq:", "X-H: 1\r\n".repeat(200)))), Code(400)),
        case("garbage", vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, b'\r', b'\n', b'\r', b'\n'], Silence),
        case("a response nobody asked for", format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {}:5099;branch=z9hG4bK-none\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: nobody@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", NET.ip(50)).into_bytes(), Silence),
        // Dialog-less abuse.
        case("BYE for no dialog", r("BYE", &|m| m.replace(">\r\nCall-ID", ">;tag=gone\r\nCall-ID")), Code(481)),
        case("re-INVITE for no dialog", r("INVITE", &|m| with_sdp(m).replace(">\r\nCall-ID", ">;tag=gone\r\nCall-ID")), Code(481)),
        case("INFO outside a dialog", r("INFO", &same), Code(481)),
        case("CANCEL of nothing", r("CANCEL", &same), Code(481)),
        case("stray ACK", r("ACK", &same), Silence),
        case("MESSAGE (not served)", r("MESSAGE", &|m| m.replace("Content-Length: 0\r\n\r\n", "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")), Code(405)),
    ];
    // Sizes only one transport can carry.
    let mut too_long = case(
        "Content-Length beyond the datagram",
        r("OPTIONS", &|m| {
            m.replace("Content-Length: 0", "Content-Length: 50")
        }),
        Code(400),
    );
    too_long.udp_only = true;
    out.push(too_long);
    let mut huge = case(
        "a 70 KB message on a stream",
        r("OPTIONS", &|m| {
            m.replace("CSeq:", &format!("X-Big: {}\r\nCSeq:", "b".repeat(70_000)))
        }),
        Code(513),
    );
    huge.tcp_only = true;
    out.push(huge);
    let mut bad_length = case(
        "Content-Length that cannot frame a stream",
        r("OPTIONS", &|m| {
            m.replace("Content-Length: 0", "Content-Length: lots")
        }),
        Code(400),
    );
    bad_length.tcp_only = true;
    out.push(bad_length);
    out
}

/// Send over UDP from the probe address; the first final answer.
fn over_udp(bytes: &[u8]) -> Option<String> {
    let sock = UdpSocket::bind(format!("{}:5099", NET.ip(50))).expect("bind probe");
    sock.set_read_timeout(Some(Duration::from_millis(700))).ok();
    sock.send_to(bytes, NET.sip()).expect("send");
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
}

/// Send over a fresh TCP connection; the first final answer.
fn over_tcp(bytes: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(NET.sip()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(700))).ok();
    s.write_all(bytes).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        // One whole final response (headers end) is enough.
        for msg in text.split_inclusive("\r\n\r\n") {
            let msg = msg.trim_start_matches(['\r', '\n']);
            if msg.starts_with("SIP/2.0 ")
                && !msg.starts_with("SIP/2.0 1")
                && msg.ends_with("\r\n\r\n")
            {
                return Some(msg.to_string());
            }
        }
    }
    None
}

fn verdict(answer: &Option<String>) -> Want {
    match answer {
        None => Want::Silence,
        Some(text) => Want::Code(status(text)),
    }
}

fn alive(send: fn(&[u8]) -> Option<String>, transport: &str, n: usize) {
    let ping = request("OPTIONS", &|m| m, 10_000 + n, transport);
    let answer = send(&ping);
    assert_eq!(
        verdict(&answer),
        Want::Code(200),
        "hotline answers OPTIONS after case {n} over {transport}"
    );
}

#[test]
fn every_hostile_message_gets_its_one_verdict_over_udp_and_tcp() {
    let h = Hotline::start(NET, "[sip.flood]\nrate = 1000\nburst = 2000\n");
    // A real call is up while the corpus runs, and must not notice it.
    register(&h, "1001", &NET.agent(0));
    let agent = Sipp::start("agent_answer.xml", &NET.agent(0), &["-m", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let sip = NET.sip();
    let carrier = Sipp::start(
        "carrier_call.xml",
        &NET.carrier(),
        &["-s", "12345", "-m", "1", &sip],
    );
    h.wait_for("the call to be up", Duration::from_secs(15), |v| {
        v["calls"]["active"] == 1
    });

    let mut report = Vec::new();
    for (transport, send) in [
        ("UDP", over_udp as fn(&[u8]) -> Option<String>),
        ("TCP", over_tcp),
    ] {
        for (i, c) in corpus(transport).into_iter().enumerate() {
            if (c.udp_only && transport == "TCP") || (c.tcp_only && transport == "UDP") {
                continue;
            }
            let answer = send(&c.bytes);
            report.push(format!("{transport} {}: {:?}", c.name, verdict(&answer)));
            assert_eq!(
                verdict(&answer),
                c.want,
                "{} over {transport}: got {answer:?}\n{}",
                c.name,
                report.join("\n")
            );
            if let Some(text) = &answer {
                assert!(text.starts_with("SIP/2.0 "), "{}: {text}", c.name);
                match c.want {
                    Want::Code(501) | Want::Code(405) => {
                        assert!(
                            !headers(text, "Allow").is_empty(),
                            "{}: Allow missing: {text}",
                            c.name
                        )
                    }
                    Want::Code(420) => {
                        assert_eq!(
                            headers(text, "Unsupported"),
                            vec!["nosuchext"],
                            "{}",
                            c.name
                        )
                    }
                    Want::Code(code) if code >= 400 && code != 481 && code != 405 => {
                        assert!(
                            !headers(text, "Warning").is_empty(),
                            "{}: a refusal says why: {text}",
                            c.name
                        )
                    }
                    _ => {}
                }
            }
            alive(send, transport, i);
        }
    }
    eprintln!("{}", report.join("\n"));

    carrier.wait(Duration::from_secs(60)).assert_ok(&h);
    agent.wait(Duration::from_secs(60)).assert_ok(&h);
    let v = h.healthz();
    assert_eq!(v["calls"]["answered"], 1, "{v}");
    assert!(
        v["rtp"]["caller_to_agent"].as_u64().unwrap_or(0) >= 90,
        "{v}"
    );
    assert!(
        v["rtp"]["agent_to_caller"].as_u64().unwrap_or(0) >= 90,
        "{v}"
    );
    // The gate counted what it refused, and nobody was banned.
    assert!(v["sip"]["refused"].as_u64().unwrap_or(0) >= 40, "{v}");
    assert_eq!(v["sip"]["flood_bans"].as_u64(), Some(0), "{v}");
}
