//! The relay over loopback sockets: forwarding, latching, transcoding,
//! RTCP, mixing, recording.

use super::*;
use crate::media::codec::Codec;
use crate::media::ports::PortPool;
use crate::media::rtp::RtpHeader;
use crate::media::rtp::{parse_rtcp, write_rr, RtcpReport};
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;

async fn setup(
    pool: &PortPool,
    silence: Duration,
) -> (
    RelayHandle,
    UdpSocket,
    UdpSocket,
    SocketAddr,
    SocketAddr,
    mpsc::UnboundedReceiver<RelayEvent>,
) {
    let a = pool.allocate().await.unwrap();
    let b = pool.allocate().await.unwrap();
    let (a_addr, b_addr) = (
        SocketAddr::new(a.address(), a.port()),
        SocketAddr::new(b.address(), b.port()),
    );
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let relay = start(
        Arc::new(a),
        Some(caller.local_addr().unwrap()),
        b,
        Some(agent.local_addr().unwrap()),
        RelayOptions {
            silence,
            ..Default::default()
        },
        tx,
    );
    (relay, caller, agent, a_addr, b_addr, rx)
}

fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80u8, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[tokio::test]
async fn forwards_both_ways_on_continuous_streams_and_drops_strangers() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42000, 42100);
    let (relay, caller, agent, a_addr, b_addr, _rx) = setup(&pool, Duration::ZERO).await;
    let mut buf = [0u8; 256];
    let mut ssrcs = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    let mut last_seq: (Option<u16>, Option<u16>) = (None, None);
    for i in 0..5u16 {
        // The caller's source changes half-way (a new SSRC).
        let ssrc = if i < 3 { 0x1111 } else { 0x2222 };
        caller
            .send_to(&rtp(8, 100 + i, ssrc, &[i as u8; 160]), a_addr)
            .await
            .unwrap();
        let (n, from) = agent.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(h.payload, &[i as u8; 160][..], "payload untouched");
        assert_eq!(from, b_addr);
        ssrcs.0.insert(h.ssrc);
        if let Some(prev) = last_seq.0 {
            assert_eq!(h.sequence, prev.wrapping_add(1), "continuous sequence");
        }
        last_seq.0 = Some(h.sequence);
        agent
            .send_to(&rtp(8, 7 + i, 0x3333, &[0xd5; 160]), b_addr)
            .await
            .unwrap();
        let (n, from) = caller.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!(from, a_addr);
        ssrcs.1.insert(h.ssrc);
        last_seq.1 = Some(h.sequence);
    }
    assert_eq!(
        ssrcs.0.len(),
        1,
        "one SSRC toward the agent across the switch"
    );
    assert_eq!(ssrcs.1.len(), 1);
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger
        .send_to(&rtp(8, 1, 9, &[9; 160]), a_addr)
        .await
        .unwrap();
    // Not RTP at all: dropped too.
    caller.send_to(&[0x80, 8, 0, 42], a_addr).await.unwrap();
    // Neither reaches the agent: the next packet it sees is the caller's.
    caller
        .send_to(&rtp(8, 200, 0x2222, &[42; 160]), a_addr)
        .await
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).await.unwrap();
    assert_eq!(RtpHeader::parse(&buf[..n]).unwrap().payload, &[42; 160][..]);
    // The worker counts a packet once its send returned: after the agent
    // may already have it.
    for _ in 0..100 {
        if relay.stats.a_to_b.load(Ordering::Relaxed) == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(relay.stats.a_to_b.load(Ordering::Relaxed), 6);
    assert_eq!(relay.stats.b_to_a.load(Ordering::Relaxed), 5);
    assert_eq!(relay.stats.dropped.load(Ordering::Relaxed), 2);
    drop(relay);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        pool.in_use(),
        0,
        "ports return to the pool when the relay stops"
    );
}

#[tokio::test]
async fn transcodes_between_laws_and_maps_payload_types() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42600, 42700);
    let (a, b) = (
        pool.allocate().await.unwrap(),
        pool.allocate().await.unwrap(),
    );
    let (a_addr, b_addr) = (
        SocketAddr::new(a.address(), a.port()),
        SocketAddr::new(b.address(), b.port()),
    );
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let _relay = start(
        Arc::new(a),
        Some(caller.local_addr().unwrap()),
        b,
        Some(agent.local_addr().unwrap()),
        RelayOptions {
            a_format: LegFormat {
                srtp: None,
                dtls: None,
                law: G711::Alaw,
                payload_type: 8,
                telephone_event: Some(101),
            },
            b_format: LegFormat {
                srtp: None,
                dtls: None,
                law: G711::Ulaw,
                payload_type: 0,
                telephone_event: Some(96),
            },
            ..Default::default()
        },
        tx,
    );
    let pcm: Vec<i16> = (0..160).map(|i| ((i as i16) - 80) * 200).collect();
    let mut alaw = Vec::new();
    G711::Alaw.encode(&pcm, &mut alaw);
    caller.send_to(&rtp(8, 1, 5, &alaw), a_addr).await.unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = agent.recv_from(&mut buf).await.unwrap();
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!(h.payload_type, 0, "PCMU toward the agent");
    let mut back = Vec::new();
    G711::Ulaw.decode(h.payload, &mut back);
    for (x, y) in pcm.iter().zip(&back) {
        assert!((x - y).abs() <= x.abs() / 8 + 16, "{x} vs {y}");
    }
    // RFC 4733: 101 on A is 96 on B.
    caller
        .send_to(&rtp(101, 2, 5, &[5, 0x0a, 0, 160]), a_addr)
        .await
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).await.unwrap();
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!((h.payload_type, h.payload), (96, &[5, 0x0a, 0, 160][..]));
    // A payload type the other leg never negotiated is dropped.
    caller
        .send_to(&rtp(18, 3, 5, &[0; 20]), a_addr)
        .await
        .unwrap();
    agent
        .send_to(&rtp(0, 1, 6, &[0xff; 160]), b_addr)
        .await
        .unwrap();
    let (n, _) = caller.recv_from(&mut buf).await.unwrap();
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!(
        h.payload_type, 8,
        "the agent's PCMU reaches the caller as PCMA"
    );
}

/// Issue 12 §1: the end packets of a key a player (the IVR's menu)
/// took arrive after the caller's media moved to the relay: they never
/// reach the agent, while a press made during the conversation does.
#[tokio::test]
async fn a_key_a_player_took_never_reaches_the_agent() {
    use crate::media::dtmf::{rfc4733_packets, DtmfKey};
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 43200, 43300);
    let (a, b) = (
        pool.allocate().await.unwrap(),
        pool.allocate().await.unwrap(),
    );
    let a_addr = SocketAddr::new(a.address(), a.port());
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let format = LegFormat {
        srtp: None,
        dtls: None,
        law: G711::Alaw,
        payload_type: 8,
        telephone_event: Some(101),
    };
    // The menu's player read key 1 up to its first end packet.
    let one = rfc4733_packets(
        DtmfKey::from_char('1').unwrap(),
        23200,
        Duration::from_millis(100),
        10,
        8000,
    );
    let mut continuation = Continuation::fresh();
    let mut taken = Vec::new();
    let first_end = one.iter().position(|p| p.event.end).unwrap();
    for p in &one[..=first_end] {
        let now = continuation.epoch.elapsed();
        taken.extend(
            continuation
                .keys
                .read_event(now, p.timestamp, p.marker, &p.event.to_bytes()),
        );
    }
    assert_eq!(taken.len(), 1);
    let (tx, _rx) = mpsc::unbounded_channel();
    let _relay = start(
        Arc::new(a),
        Some(caller.local_addr().unwrap()),
        b,
        Some(agent.local_addr().unwrap()),
        RelayOptions {
            a_continuation: Some(continuation),
            a_format: format,
            b_format: format,
            ..Default::default()
        },
        tx,
    );
    let event = |seq: u16, ts: u32, body: [u8; 4]| {
        let mut p = vec![0x80u8, 101];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x5555u32.to_be_bytes());
        p.extend_from_slice(&body);
        p
    };
    // The relay runs (its start drains what waited on the port) …
    let mut buf = [0u8; 256];
    caller
        .send_to(&rtp(8, 40, 0x5555, &[6; 160]), a_addr)
        .await
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).await.unwrap();
    assert_eq!(RtpHeader::parse(&buf[..n]).unwrap().payload_type, 8);
    // … when the retransmitted end packets come, then the caller's voice.
    for (i, p) in one[first_end + 1..].iter().enumerate() {
        caller
            .send_to(&event(50 + i as u16, 23200, p.event.to_bytes()), a_addr)
            .await
            .unwrap();
    }
    caller
        .send_to(&rtp(8, 60, 0x5555, &[7; 160]), a_addr)
        .await
        .unwrap();
    let (n, _) = agent.recv_from(&mut buf).await.unwrap();
    let h = RtpHeader::parse(&buf[..n]).unwrap();
    assert_eq!(
        (h.payload_type, h.payload),
        (8, &[7; 160][..]),
        "the next packet the agent gets is the caller's voice"
    );
    // A key pressed while talking to the agent is the agent's.
    let five = rfc4733_packets(
        DtmfKey::from_char('5').unwrap(),
        90000,
        Duration::from_millis(60),
        10,
        8000,
    );
    for (i, p) in five.iter().enumerate() {
        caller
            .send_to(&event(70 + i as u16, 90000, p.event.to_bytes()), a_addr)
            .await
            .unwrap();
        let (n, _) = agent.recv_from(&mut buf).await.unwrap();
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert_eq!((h.payload_type, h.payload), (101, &p.event.to_bytes()[..]));
    }
}

/// A UDP socket on an even-or-any port whose port + 1 is bound too
/// (RTP + RTCP of a test peer).
async fn socket_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..100 {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port.wrapping_add(1))).await {
            return (rtp, rtcp);
        }
    }
    panic!("no adjacent ports free");
}

fn dc(law: G711, level: i16) -> Vec<u8> {
    let mut out = Vec::new();
    law.encode(&[level; 160], &mut out);
    out
}

/// The levels of the packets waiting on `sock` (draining it).
fn levels(sock: &UdpSocket, into: &mut Vec<i32>) {
    let mut buf = [0u8; 256];
    while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
        if let Ok(h) = RtpHeader::parse(&buf[..n]) {
            let mut pcm = Vec::new();
            G711::Alaw.decode(h.payload, &mut pcm);
            into.extend(pcm.last().map(|s| i32::from(*s)));
        }
    }
}

/// Within G.711 quantisation of `want`.
fn near(got: i32, want: i32) -> bool {
    (got - want).abs() <= want / 10 + 16
}

/// Heard `want` at least once (a late packet can make one tick miss a
/// speaker, so not every packet carries every voice).
fn heard(levels: &[i32], want: i32) -> bool {
    levels.iter().any(|l| near(*l, want))
}

/// Never heard more than `most` (a voice that must not be there).
fn never_above(levels: &[i32], most: i32) -> bool {
    levels.iter().all(|l| *l <= most + most / 10 + 16)
}

#[tokio::test]
async fn mixes_supervisor_listen_whisper_barge_then_forwards_again() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42800, 42900);
    let (relay, caller, agent, a_addr, b_addr, _rx) = setup(&pool, Duration::ZERO).await;
    let sup = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pair = pool.allocate().await.unwrap();
    let sup_to = SocketAddr::new(pair.address(), pair.port());
    let sup_id = ParticipantId(2);
    relay
        .join(Participant {
            id: sup_id,
            role: Role::Supervisor,
            pair,
            remote: sup.local_addr().unwrap(),
            format: LegFormat::default(),
        })
        .await
        .unwrap();
    // Each party talks at its own level; collect what each hears.
    let talk = |rounds: u16| {
        let (caller, agent, sup) = (&caller, &agent, &sup);
        async move {
            let mut heard = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..rounds {
                caller
                    .send_to(&rtp(8, i, 1, &dc(G711::Alaw, 1000)), a_addr)
                    .await
                    .unwrap();
                agent
                    .send_to(&rtp(8, i, 2, &dc(G711::Alaw, 2000)), b_addr)
                    .await
                    .unwrap();
                sup.send_to(&rtp(8, i, 3, &dc(G711::Alaw, 4000)), sup_to)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                levels(caller, &mut heard.0);
                levels(agent, &mut heard.1);
                levels(sup, &mut heard.2);
            }
            heard
        }
    };
    let (c, a, s) = talk(15).await;
    assert!(
        heard(&c, 2000) && never_above(&c, 2000),
        "listen: the caller hears the agent only: {c:?}"
    );
    assert!(
        heard(&a, 1000) && never_above(&a, 1000),
        "listen: the agent hears the caller only: {a:?}"
    );
    assert!(heard(&s, 3000), "listen: the supervisor hears both: {s:?}");
    relay
        .set_mode(sup_id, Mode::Whisper { to: OTHER_SIDE })
        .await
        .unwrap();
    let (c, a, _) = talk(15).await;
    assert!(
        never_above(&c, 2000),
        "whisper never reaches the caller: {c:?}"
    );
    assert!(heard(&a, 5000), "whisper reaches the agent: {a:?}");
    relay.set_mode(sup_id, Mode::Barge).await.unwrap();
    let (c, a, s) = talk(15).await;
    assert!(heard(&c, 6000), "barge: {c:?}");
    assert!(heard(&a, 5000), "barge: {a:?}");
    assert!(heard(&s, 3000), "barge: {s:?}");
    assert!(relay.set_mode(ParticipantId(9), Mode::Barge).await.is_err());
    relay.leave(sup_id);
    tokio::time::sleep(Duration::from_millis(50)).await;
    levels(&agent, &mut Vec::new());
    // Forwarding again: the caller's exact payload reaches the agent.
    caller
        .send_to(&rtp(8, 99, 1, &[0x11; 160]), a_addr)
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), agent.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        RtpHeader::parse(&buf[..n]).unwrap().payload,
        &[0x11; 160][..]
    );
    drop(relay);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.in_use(), 0, "the supervisor's ports are released too");
}

#[tokio::test]
async fn sends_sender_reports_and_measures_round_trip() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 43000, 43100);
    let (a, b) = (
        pool.allocate().await.unwrap(),
        pool.allocate().await.unwrap(),
    );
    let (a_addr, b_addr) = (
        SocketAddr::new(a.address(), a.port()),
        SocketAddr::new(b.address(), b.port()),
    );
    let (caller, caller_rtcp) = socket_pair().await;
    let agent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let relay = start(
        Arc::new(a),
        Some(caller.local_addr().unwrap()),
        b,
        Some(agent.local_addr().unwrap()),
        RelayOptions {
            rtcp_interval: Duration::from_millis(100),
            cname: "hotline@test".into(),
            ..Default::default()
        },
        tx,
    );
    let mut buf = [0u8; 512];
    for i in 0..10 {
        caller
            .send_to(&rtp(8, i, 0xabc, &[0xd5; 160]), a_addr)
            .await
            .unwrap();
        agent.recv_from(&mut buf).await.unwrap();
        agent
            .send_to(&rtp(8, i, 0xdef, &[0xd5; 160]), b_addr)
            .await
            .unwrap();
        caller.recv_from(&mut buf).await.unwrap();
    }
    let h = RtpHeader::parse(&buf[..172]).unwrap();
    let ours = h.ssrc;
    // Our SR to the caller: about the stream it receives, with a block
    // on what we received from it.
    let (n, from) = tokio::time::timeout(Duration::from_secs(3), caller_rtcp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reports = parse_rtcp(&buf[..n]).unwrap();
    let RtcpReport::Sender { ssrc, info, blocks } = &reports[0] else {
        panic!("expected an SR: {reports:?}");
    };
    assert_eq!(*ssrc, ours);
    assert_eq!(info.packet_count, 10);
    assert_eq!(blocks[0].ssrc, 0xabc);
    assert_eq!(blocks[0].highest_seq & 0xffff, 9);
    // The caller answers with an RR on our SR: RTT becomes known.
    let block = crate::media::rtp::ReportBlock {
        ssrc: ours,
        fraction_lost: 64,
        last_sr: crate::media::rtp::ntp_middle(info.ntp_timestamp),
        ..Default::default()
    };
    let mut rr = [0u8; 64];
    let m = write_rr(&mut rr, 0xabc, &[block]).unwrap();
    caller_rtcp.send_to(&rr[..m], from).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = relay.stop().await;
    assert_eq!(report.a.rtcp_received, 1);
    assert!(report.a.rtcp_sent >= 1);
    assert_eq!(report.a.peer_fraction_lost, Some(0.25));
    let rtt = report.a.rtt_ms.expect("round trip measured");
    assert!(rtt >= 0.0, "{rtt}");
}

#[tokio::test]
async fn reports_silence_once() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42200, 42300);
    let (_relay, _caller, _agent, _a, _b, mut rx) = setup(&pool, Duration::from_millis(200)).await;
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(ev, Some(RelayEvent::Silent));
    let again = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(again.is_err(), "silence is reported once");
}

#[tokio::test]
async fn reports_per_leg_loss_and_received_counts() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42400, 42500);
    let (relay, caller, agent, a_addr, _b_addr, _rx) = setup(&pool, Duration::ZERO).await;
    let mut buf = [0u8; 256];
    for seq in (1u16..=10).filter(|s| *s != 5) {
        let mut p = vec![0x80u8, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        caller.send_to(&p, a_addr).await.unwrap();
        agent.recv_from(&mut buf).await.unwrap();
    }
    let report = relay.stop().await;
    assert_eq!(report.a.received, 9, "{report:?}");
    assert_eq!(report.a.lost, 1, "{report:?}");
    assert_eq!(report.b.received, 0);
    assert!(report.recording.is_none());
}
