//! The caller's media session over loopback sockets: one stream toward the
//! caller across player → relay → player, one recording across two
//! conversations (a blind transfer), ports that stay with the session and
//! a recording closed even when the call forgets to.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::*;
use crate::media::codec::G711;
use crate::media::ports::PortPool;
use crate::media::recorder::{RecordingWriter, CALL_WAV_SPEC};
use crate::media::rtp::RtpHeader;

fn rtp(seq: u16, ssrc: u32, byte: u8) -> Vec<u8> {
    let mut p = vec![0x80u8, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[byte; 160]);
    p
}

/// The caller's session on the pool's ports, sending to `caller`.
async fn session(pool: &PortPool, caller: &UdpSocket) -> (CallerMedia, SocketAddr) {
    let ports = pool.allocate().await.expect("ports");
    let ours = SocketAddr::new(ports.address(), ports.port());
    let target = Target {
        srtp: None,
        remote: caller.local_addr().expect("addr"),
        law: G711::Alaw,
        payload_type: 8,
        telephone_event: Some(101),
    };
    (CallerMedia::new(ports, target), ours)
}

/// Bridge the caller to a fresh agent socket.
async fn bridge_to(
    media: &mut CallerMedia,
    pool: &PortPool,
) -> (RelayHandle, UdpSocket, SocketAddr) {
    let b = pool.allocate().await.expect("ports");
    let b_addr = SocketAddr::new(b.address(), b.port());
    let agent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (tx, _rx) = mpsc::unbounded_channel();
    let relay = media.bridge(
        b,
        Some(agent.local_addr().expect("addr")),
        RelayOptions {
            b_format: LegFormat::default(),
            ..Default::default()
        },
        tx,
    );
    (relay, agent, b_addr)
}

/// The next RTP packet `sock` receives (bounded wait).
async fn next_rtp(sock: &UdpSocket) -> (u32, u16, Vec<u8>) {
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
        .await
        .expect("a packet in time")
        .expect("recv");
    let h = RtpHeader::parse(&buf[..n]).expect("rtp");
    (h.ssrc, h.sequence, h.payload.to_vec())
}

#[tokio::test]
async fn the_caller_hears_one_stream_across_prompts_an_agent_and_prompts_again() {
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43000, 43100);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, ours) = session(&pool, &caller).await;
    let (events, _rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let (ssrc, mut last, _) = next_rtp(&caller).await;
    for _ in 0..3 {
        last = next_rtp(&caller).await.1;
    }
    media.end_play(player).await;
    // Drain what the player sent before it stopped.
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), caller.recv_from(&mut [0u8; 512])).await
    {
        last = last.wrapping_add(1);
    }
    let (relay, agent, b_addr) = bridge_to(&mut media, &pool).await;
    assert_eq!(pool.in_use(), 2, "the caller's ports and the agent's");
    agent
        .send_to(&rtp(7, 0x3333, 0x11), b_addr)
        .await
        .expect("send");
    let (s, seq, payload) = next_rtp(&caller).await;
    assert_eq!(s, ssrc, "the agent's audio continues our one stream");
    assert_eq!(seq, last.wrapping_add(1), "with the next sequence number");
    assert_eq!(payload, vec![0x11; 160]);
    let report = media.unbridge(relay, false).await;
    assert!(
        report.open_recording.is_none(),
        "the session took its media back"
    );
    let (events, _rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let (s, seq, _) = next_rtp(&caller).await;
    assert_eq!(s, ssrc, "the survey's prompts too");
    assert_eq!(seq, last.wrapping_add(2));
    media.end_play(player).await;
    // The caller's own packets still reach the session's port.
    caller
        .send_to(&rtp(1, 0x5555, 0x22), ours)
        .await
        .expect("send");
    drop(media);
    // The session's worker lets the ports go when it drops the session.
    for _ in 0..100 {
        if pool.in_use() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.in_use(), 0, "every port back in the pool");
}

/// Per 20 ms window of `samples`, the one value it holds (or `None`).
fn windows(samples: &[i16]) -> Vec<Option<i16>> {
    samples
        .chunks_exact(160)
        .map(|w| w.iter().all(|s| *s == w[0]).then_some(w[0]))
        .collect()
}

#[tokio::test]
async fn a_transfer_records_both_conversations_into_the_one_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("call.wav");
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43200, 43300);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, ours) = session(&pool, &caller).await;
    media.record(RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start"));
    let (first, second) = (0x55u8 ^ 0x10, 0x55u8 ^ 0x40);
    let (v1, v2) = (
        G711::Alaw.decode_sample(first),
        G711::Alaw.decode_sample(second),
    );
    assert_ne!(v1, v2);
    // The first agent talks …
    let (relay, agent, b_addr) = bridge_to(&mut media, &pool).await;
    for i in 0..10u16 {
        agent
            .send_to(&rtp(i, 0x1111, first), b_addr)
            .await
            .expect("send");
        caller
            .send_to(&rtp(i, 0x5555, first), ours)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = media.unbridge(relay, true).await;
    assert!(report.recording.is_none(), "not finished: the call goes on");
    assert!(media.is_recording());
    // … the caller waits for the second agent …
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (relay, agent, b_addr) = bridge_to(&mut media, &pool).await;
    for i in 0..10u16 {
        agent
            .send_to(&rtp(i, 0x2222, second), b_addr)
            .await
            .expect("send");
        caller
            .send_to(&rtp(20 + i, 0x5555, second), ours)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // … and the call ends.
    let report = relay.stop().await;
    let meta = report
        .recording
        .expect("the recording is finished once, at the end");
    assert_eq!(meta.path, path);
    assert!(!media.is_recording());
    let mut r = hound::WavReader::open(&path).expect("open");
    let all: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    let right: Vec<i16> = all.chunks_exact(2).map(|f| f[1]).collect();
    let w = windows(&right);
    let first_at = w
        .iter()
        .position(|x| *x == Some(v1))
        .expect("the first agent is recorded");
    let second_at = w
        .iter()
        .position(|x| *x == Some(v2))
        .expect("the second agent is recorded");
    assert!(second_at > first_at, "in the order they talked");
    let last_first = w.iter().rposition(|x| *x == Some(v1)).expect("first");
    assert!(
        w[last_first + 1..second_at].contains(&Some(0)),
        "the wait between them is silence"
    );
    let left: Vec<i16> = all.chunks_exact(2).map(|f| f[0]).collect();
    let w = windows(&left);
    assert!(
        w.contains(&Some(v1)) && w.contains(&Some(v2)),
        "the caller throughout"
    );
}

#[tokio::test]
async fn a_recording_left_open_is_closed_when_the_call_goes() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("call.wav");
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43400, 43500);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, _) = session(&pool, &caller).await;
    media.record(RecordingWriter::start(&path, CALL_WAV_SPEC).expect("start"));
    let (relay, _agent, _) = bridge_to(&mut media, &pool).await;
    media.unbridge(relay, true).await;
    drop(media);
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        path.exists(),
        "the WAV is finished, not left as a part file"
    );
    hound::WavReader::open(&path).expect("and it plays");
}
