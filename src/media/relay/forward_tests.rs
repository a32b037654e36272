//! The forwarding core without sockets or a clock: latching and strangers,
//! payload-type mapping and transcoding onto our one stream per leg,
//! music-on-hold muting, keys a player took, the mix, RTCP reports.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::media::codec::G711;
use crate::media::keys::Holder;
use crate::media::rtp::RtpHeader;

const CALLER: &str = "127.0.0.1:4000";
const AGENT: &str = "127.0.0.2:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

fn alaw() -> LegFormat {
    LegFormat {
        srtp: None,
        dtls: None,
        law: G711::Alaw,
        payload_type: 8,
        telephone_event: Some(101),
    }
}

fn ulaw() -> LegFormat {
    LegFormat {
        srtp: None,
        dtls: None,
        law: G711::Ulaw,
        payload_type: 0,
        telephone_event: Some(96),
    }
}

fn leg(peer: &str, format: LegFormat, holder: Holder) -> Leg {
    let mut out = Continuation::fresh();
    out.keys.hand_over(holder);
    Leg {
        peer: Peer::new(Some(addr(peer))),
        quality: Quality::default(),
        format,
        out,
    }
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80u8, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Route one packet from `from` to `to` (the caller's side), unmuted.
fn route(from: &mut Leg, to: &mut Leg, packet: &mut [u8], source: &str, now: Instant) -> Verdict {
    let hop = Hop {
        from,
        to,
        channel: Channel::Caller,
        id: ParticipantId(0),
        muted: false,
        mix_muted: false,
    };
    hop.route(
        packet,
        addr(source),
        Duration::ZERO,
        now,
        &mut None,
        &mut None,
    )
}

/// Route one packet that arrived `ms` after the relay started.
fn route_at(
    from: &mut Leg,
    to: &mut Leg,
    packet: &mut [u8],
    source: &str,
    now: Instant,
    ms: u64,
) -> Verdict {
    let at = Duration::from_millis(ms);
    let hop = Hop {
        from,
        to,
        channel: Channel::Caller,
        id: ParticipantId(0),
        muted: false,
        mix_muted: false,
    };
    hop.route(packet, addr(source), at, now + at, &mut None, &mut None)
}

#[test]
fn the_caller_latches_strangers_are_dropped_and_only_a_signalled_move_re_arms() {
    let now = Instant::now();
    let mut a = leg(CALLER, alaw(), Holder::Relay);
    let mut b = leg(AGENT, alaw(), Holder::Relay);
    // A NAT'd caller sends from elsewhere than its SDP said: latched after
    // its probation (media::latch), nothing relayed before.
    let nat = "10.9.9.9:7000";
    for i in 0..5u16 {
        let mut p = rtp(8, i, 160 * u32::from(i), 0x1111, &[1; 160]);
        let v = route_at(&mut a, &mut b, &mut p, nat, now, 20 * u64::from(i));
        assert_eq!(v, Verdict::Stranger, "packet {i} is on probation");
    }
    let mut p = rtp(8, 5, 800, 0x1111, &[1; 160]);
    assert_eq!(
        route_at(&mut a, &mut b, &mut p, nat, now, 100),
        Verdict::Send(addr(AGENT))
    );
    assert_eq!(a.peer.rtp, Some(addr(nat)));
    // Anybody else, with any SSRC: dropped.
    for stranger in ["10.9.9.9:7002", "192.0.2.1:7000"] {
        let mut p = rtp(8, 6, 960, 0x1111, &[2; 160]);
        let v = route_at(&mut a, &mut b, &mut p, stranger, now, 110);
        assert_eq!(v, Verdict::Stranger, "{stranger}");
        assert!(!v.alive(), "a stranger does not keep the call alive");
    }
    // A re-INVITE moves the caller: the relay re-arms latching there, and
    // the negotiated address latches at once.
    a.peer = Peer::new(Some(addr(CALLER)));
    let mut p = rtp(8, 7, 1120, 0x2222, &[3; 160]);
    assert_eq!(
        route_at(&mut a, &mut b, &mut p, CALLER, now, 120),
        Verdict::Send(addr(AGENT))
    );
    let mut p = rtp(8, 8, 1280, 0x2222, &[4; 160]);
    assert_eq!(
        route_at(&mut a, &mut b, &mut p, nat, now, 140),
        Verdict::Stranger
    );
    assert_eq!(
        a.quality.received, 2,
        "only the latched peer's packets count"
    );
}

#[test]
fn packets_are_transcoded_mapped_and_continue_one_stream_per_leg() {
    let now = Instant::now();
    let mut a = leg(CALLER, alaw(), Holder::Relay);
    let mut b = leg(AGENT, ulaw(), Holder::Relay);
    let sample = G711::Alaw.encode_sample(1000);
    let mut seen = Vec::new();
    for (i, ssrc) in [(0u16, 0x1111u32), (1, 0x1111), (2, 0x9999), (3, 0x9999)] {
        let mut p = rtp(8, 100 + i, 160 * u32::from(i), ssrc, &[sample; 160]);
        let v = route(
            &mut a,
            &mut b,
            &mut p,
            CALLER,
            now + Duration::from_millis(20 * u64::from(i)),
        );
        assert_eq!(v, Verdict::Send(addr(AGENT)));
        let h = RtpHeader::parse(&p).expect("rtp");
        assert_eq!(h.payload_type, 0, "the agent's PCMU number");
        let back = G711::Ulaw.decode_sample(h.payload[0]);
        assert!(
            (i32::from(back) - 1000).abs() < 64,
            "transcoded A-law → μ-law: {back}"
        );
        seen.push((h.ssrc, h.sequence, h.marker));
    }
    assert!(
        seen.iter().all(|(s, _, _)| *s == seen[0].0),
        "one SSRC toward the agent"
    );
    for w in seen.windows(2) {
        assert_eq!(
            w[1].1,
            w[0].1.wrapping_add(1),
            "continuous sequence numbers"
        );
    }
    assert!(seen[2].2, "the marker bit where the source changed");
    // Something the agent's leg did not negotiate (G.729) goes nowhere.
    let mut p = rtp(18, 200, 800, 0x9999, &[0; 20]);
    assert_eq!(
        route(&mut a, &mut b, &mut p, CALLER, now),
        Verdict::Kept { dropped: true }
    );
    // Nor does a datagram that is not RTP, but it is the caller's: alive.
    let mut p = vec![0x80, 8, 0, 1];
    let v = route(&mut a, &mut b, &mut p, CALLER, now);
    assert_eq!(v, Verdict::Kept { dropped: true });
    assert!(v.alive());
}

#[test]
fn a_held_agent_s_audio_is_kept_from_the_caller_who_hears_music() {
    let now = Instant::now();
    let mut a = leg(CALLER, alaw(), Holder::Relay);
    let mut b = leg(AGENT, alaw(), Holder::Relay);
    let hop = Hop {
        from: &mut b,
        to: &mut a,
        channel: Channel::Agent,
        id: ParticipantId(1),
        muted: true,
        mix_muted: false,
    };
    let mut p = rtp(8, 1, 160, 0x3333, &[5; 160]);
    let v = hop.route(
        &mut p,
        addr(AGENT),
        Duration::ZERO,
        now,
        &mut None,
        &mut None,
    );
    assert_eq!(v, Verdict::Kept { dropped: false });
    assert!(v.alive(), "the agent is still there");
    assert_eq!(
        a.out.stream.packet_count(),
        0,
        "nothing went out on the caller's stream"
    );
}

/// An RFC 4733 event packet for key 5 (`end` set on the last ones).
fn key5(seq: u16, end: bool, duration: u16) -> Vec<u8> {
    let flags = if end { 0x80 | 10 } else { 10 };
    let d = duration.to_be_bytes();
    rtp(101, seq, 8000, 0x1111, &[5, flags, d[0], d[1]])
}

#[test]
fn a_key_the_ivr_took_is_never_forwarded_but_a_new_press_is() {
    let now = Instant::now();
    // The IVR's player held the caller's media when the press began.
    let mut a = leg(CALLER, alaw(), Holder::Reader);
    a.out
        .keys
        .read_event(Duration::ZERO, 8000, true, &[5, 10, 0, 160]);
    a.out.keys.hand_over(Holder::Relay);
    let mut b = leg(AGENT, alaw(), Holder::Relay);
    // Its retransmitted end packets arrive at the relay: kept.
    for (i, seq) in [2u16, 3, 4].into_iter().enumerate() {
        let mut p = key5(seq, true, 480);
        let v = route(
            &mut a,
            &mut b,
            &mut p,
            CALLER,
            now + Duration::from_millis(10 * i as u64),
        );
        assert_eq!(v, Verdict::Kept { dropped: true }, "end packet {seq}");
    }
    // A new press while talking to the agent is the agent's.
    let mut p = rtp(101, 10, 24000, 0x1111, &[5, 10, 0, 160]);
    let v = route(&mut a, &mut b, &mut p, CALLER, now + Duration::from_secs(2));
    assert_eq!(v, Verdict::Send(addr(AGENT)));
    assert_eq!(RtpHeader::parse(&p).expect("rtp").payload_type, 101);
}

#[test]
fn rtcp_reports_are_built_for_the_peer_and_its_reports_are_read() {
    let now = Instant::now();
    let mut a = leg(CALLER, alaw(), Holder::Relay);
    let mut b = leg(AGENT, alaw(), Holder::Relay);
    let mut buf = [0u8; 1500];
    // Before we sent anything: an RR (PT 201) to the peer's RTCP port.
    let (n, to) = a
        .rtcp_report(Duration::ZERO, now, 0, "hotline@test", &mut buf)
        .expect("a report");
    assert_eq!(to, addr("127.0.0.1:4001"));
    assert_eq!(buf[1], 201);
    assert!(n > 8);
    // After forwarding to the agent: an SR (PT 200) on our stream to it.
    let mut p = rtp(8, 1, 160, 0x1111, &[1; 160]);
    route(&mut a, &mut b, &mut p, CALLER, now);
    let (_, to) = b
        .rtcp_report(
            Duration::from_secs(5),
            now + Duration::from_secs(5),
            1 << 32,
            "hotline@test",
            &mut buf,
        )
        .expect("a report");
    assert_eq!(to, addr("127.0.0.2:5001"));
    assert_eq!(buf[1], 200);
    let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    assert_eq!(ssrc, b.out.stream.ssrc());
    // The caller's own report from elsewhere is a stranger's once latched.
    let s = RelayStats::default();
    a.receive_rtcp(
        &[0x80, 201, 0, 1, 0, 0, 0, 1],
        addr("192.0.2.1:4001"),
        Duration::ZERO,
        &s,
    );
    assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
    a.receive_rtcp(
        &[0x80, 201, 0, 1, 0, 0, 0, 1],
        addr("127.0.0.1:4001"),
        Duration::ZERO,
        &s,
    );
    assert_eq!(s.rtcp.load(Ordering::Relaxed), 1);
}
