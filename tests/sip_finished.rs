//! Finished SIP transactions (RFC 3261 §17, RFC 6026 §7; issue 16 item 4):
//! after a call is over, a retransmitted request of one of its finished
//! transactions still gets the identical final response, a retransmitted
//! 2xx from the agent still gets the identical ACK, neither starts a second
//! call or BYE — and the call's INVITE transaction towards the agent does
//! not wait out Timer M (64×T1 = 32 s) holding the ended dialog: sent
//! straight to the agent's registered phone, it ends at the answer, and a
//! 2xx retransmitted during the call is ACKed the same.
//!
//! Both ends are raw UDP peers (the carrier and agent 1001), so the test
//! sees every byte and can send the very same datagram twice.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{headers, register, status, Hotline, Net, RawSip};

/// A raw agent phone on `ip:5060` (where its registration points).
struct RawAgent {
    sock: UdpSocket,
}

impl RawAgent {
    fn bind(ip: &str) -> Self {
        let sock = UdpSocket::bind(format!("{ip}:5060")).expect("bind agent");
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .ok();
        Self { sock }
    }

    /// The next datagram starting with `prefix`, skipping others (hotline
    /// may retransmit); `None` when nothing more arrives.
    fn recv_starting(&self, prefix: &str) -> Option<(String, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        for _ in 0..20 {
            let (n, from) = self.sock.recv_from(&mut buf).ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with(prefix) {
                return Some((text, from));
            }
        }
        None
    }

    /// Every datagram that arrives until the socket stays quiet.
    fn drain(&self) -> Vec<String> {
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    }

    fn send(&self, bytes: &str, to: SocketAddr) {
        self.sock.send_to(bytes.as_bytes(), to).expect("agent send");
    }
}

/// A final response to `request` built the way a phone does: its Via,
/// From, Call-ID and CSeq copied, `to_tag` added to To.
fn answer(request: &str, code_reason: &str, to_tag: &str, contact: &str, sdp: &str) -> String {
    let mut out = format!("SIP/2.0 {code_reason}\r\n");
    for via in headers(request, "Via") {
        out += &format!("Via: {via}\r\n");
    }
    let to = headers(request, "To")[0];
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    out += &format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <{contact}>\r\n",
        headers(request, "From")[0],
        headers(request, "Call-ID")[0],
        headers(request, "CSeq")[0],
    );
    if sdp.is_empty() {
        out += "Content-Length: 0\r\n\r\n";
    } else {
        out += &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
    }
    out
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
    )
}

/// A carrier request on the call `fin-1`; `to_tag` once the dialog exists.
fn carrier_request(h: &Hotline, method: &str, cseq: u32, branch: &str, to_tag: &str) -> String {
    let (me, sip) = (h.net.carrier(), h.net.sip());
    let to_tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    let body = if method == "INVITE" {
        sdp(&me, 30000)
    } else {
        String::new()
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:12345@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me}:5061;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550100@{me}>;tag=carrier-1\r\n\
         To: <sip:12345@{sip}>{to_tag}\r\n\
         Call-ID: fin-1@{me}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:+15550100@{me}:5061>\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn tag_of(to: &str) -> String {
    to.split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t).to_string())
        .unwrap_or_default()
}

#[test]
fn retransmissions_after_the_call_get_the_same_answers_and_nothing_waits_for_timer_m() {
    let h = Hotline::start(Net(241), "");
    let agent_ip = h.net.agent(0);
    register(&h, "1001", &agent_ip);
    let agent = RawAgent::bind(&agent_ip);
    let carrier = RawSip::new(&h.net.carrier(), &h.net.sip());

    // The call: INVITE → hotline rings 1001 → 200 both ways → ACK both ways.
    let invite = carrier_request(&h, "INVITE", 1, "z9hG4bK-fin-inv", "");
    carrier.send(invite.as_bytes());
    let (agent_invite, hotline) = agent.recv_starting("INVITE ").expect("INVITE to the agent");
    let contact = format!("sip:1001@{agent_ip}:5060");
    let agent_ok = answer(
        &agent_invite,
        "200 OK",
        "agent-1",
        &contact,
        &sdp(&agent_ip, 40000),
    );
    agent.send(&agent_ok, hotline);
    let (ack_to_agent, _) = agent.recv_starting("ACK ").expect("hotline ACKs the 2xx");
    let invite_ok = carrier.recv_final().expect("200 to the carrier");
    assert_eq!(status(&invite_ok), 200, "{invite_ok}");
    let to_tag = tag_of(headers(&invite_ok, "To")[0]);
    let ack = carrier_request(&h, "ACK", 1, "z9hG4bK-fin-ack", &to_tag);
    carrier.send(ack.as_bytes());

    // While the call is up: the INVITE to the agent's registered phone
    // ended at its answer (nothing between could fork it, so no Timer M),
    // and a 2xx the phone retransmits still gets the identical ACK, the
    // call going on.
    h.wait_for(
        "the call up with no running transaction (well before Timer M)",
        Duration::from_secs(16),
        |v| v["calls"]["active"] == 1 && v["sip"]["transactions"] == 0,
    );
    agent.send(&agent_ok, hotline);
    let (again, _) = agent
        .recv_starting("ACK ")
        .expect("the ACK again, mid-call");
    assert_eq!(
        again, ack_to_agent,
        "the identical ACK while the call is up"
    );
    assert_eq!(h.healthz()["calls"]["active"], 1, "the call goes on");

    // The carrier hangs up; hotline sends BYE to the agent.
    let bye = carrier_request(&h, "BYE", 2, "z9hG4bK-fin-bye", &to_tag);
    carrier.send(bye.as_bytes());
    let (agent_bye, _) = agent.recv_starting("BYE ").expect("BYE to the agent");
    agent.send(
        &answer(&agent_bye, "200 OK", "agent-1", &contact, ""),
        hotline,
    );
    let bye_ok = carrier.recv_final().expect("200 to the BYE");
    assert_eq!(status(&bye_ok), 200, "{bye_ok}");
    h.wait_for("the call to end", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0 && v["sip"]["dialogs"] == 0
    });

    // The ended call's INVITE transaction to the agent is not kept for
    // Timer M (32 s) with the dialog it belonged to.
    h.wait_for(
        "no running transaction (well before Timer M's 32 s)",
        Duration::from_secs(16),
        |v| v["sip"]["transactions"] == 0,
    );

    // Retransmissions of the finished server transactions: the same bytes.
    carrier.send(bye.as_bytes());
    let again = carrier.recv_final().expect("the BYE's 200 again");
    assert_eq!(again, bye_ok, "a retransmitted BYE gets the identical 200");
    carrier.send(invite.as_bytes());
    let again = carrier.recv_final().expect("the INVITE's 200 again");
    assert_eq!(
        again, invite_ok,
        "a retransmitted INVITE gets the identical 200"
    );
    carrier.send(ack.as_bytes()); // absorbed (§17.2.1)

    // The agent retransmits its 2xx: the identical ACK, no BYE, no call.
    agent.send(&agent_ok, hotline);
    let (again, _) = agent.recv_starting("ACK ").expect("the ACK again");
    assert_eq!(
        again, ack_to_agent,
        "a retransmitted 2xx gets the identical ACK"
    );
    let stray: Vec<String> = agent
        .drain()
        .into_iter()
        .filter(|m| m.starts_with("INVITE ") || m.starts_with("BYE "))
        .collect();
    assert!(stray.is_empty(), "the agent got {stray:?}");
    let v = h.healthz();
    assert_eq!(v["calls"]["started"], 1, "one call, not two: {v}");
    assert_eq!(v["calls"]["answered"], 1, "{v}");
    assert_eq!(v["calls"]["active"], 0, "{v}");
}
