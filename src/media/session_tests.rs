//! The call's media session over loopback sockets, across its modes: a
//! voicemail kept when the caller hangs up, reported before `finish`
//! returns; a relay dropped without stopping leaves the session serving
//! the caller on the same stream; what the caller says while idle is never
//! relayed; a session with no handle left gives its ports back.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media::caller::CallerMedia;
use crate::media::codec::{Codec, G711};
use crate::media::player::{Player, PlayerEvent, Target};
use crate::media::ports::PortPool;
use crate::media::relay::{LegFormat, RelayHandle, RelayOptions};
use crate::media::rtp::RtpHeader;
use crate::media::voicemail::VoicemailOptions;

const WAIT: Duration = Duration::from_secs(5);

/// An RTP packet of A-law audio: a 440 Hz tone loud enough to be speech,
/// or silence.
fn voice(seq: u16, loud: bool) -> Vec<u8> {
    let pcm: Vec<i16> = (0..160)
        .map(|i| {
            if !loud {
                return 0;
            }
            let t = f64::from(u32::from(seq) * 160 + i) / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect();
    let mut payload = Vec::new();
    G711::Alaw.encode(&pcm, &mut payload);
    let mut p = vec![0x80u8, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5555u32.to_be_bytes());
    p.extend_from_slice(&payload);
    p
}

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

/// The caller speaks for `packets` × 20 ms, paced.
async fn speak(caller: &UdpSocket, ours: SocketAddr, packets: u16) {
    for seq in 0..packets {
        caller.send_to(&voice(seq, true), ours).await.expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_voicemail(rx: &mut mpsc::UnboundedReceiver<PlayerEvent>) -> PlayerEvent {
    loop {
        let ev = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("an event in time")
            .expect("the channel open");
        if matches!(ev, PlayerEvent::Voicemail { .. }) {
            return ev;
        }
    }
}

/// A caller in a session on `pool` leaves a voicemail at `path`, speaking
/// for `packets` × 20 ms (the message still open).
async fn leave_voicemail(
    pool: &PortPool,
    path: &std::path::Path,
    packets: u16,
) -> (CallerMedia, Player, mpsc::UnboundedReceiver<PlayerEvent>) {
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, ours) = session(pool, &caller).await;
    let (events, rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let options = VoicemailOptions::new(Duration::from_secs(60), Duration::from_secs(10));
    player.record_voicemail(path.to_path_buf(), options, false);
    speak(&caller, ours, packets).await;
    (media, player, rx)
}

#[tokio::test]
async fn a_caller_who_hangs_up_while_leaving_a_voicemail_keeps_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("vm.wav");
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43600, 43700);
    let (media, player, mut rx) = leave_voicemail(&pool, &path, 50).await;
    // The caller hangs up: the call drops its media without a word.
    drop(player);
    drop(media);
    let PlayerEvent::Voicemail { path: saved, secs } = next_voicemail(&mut rx).await else {
        unreachable!("next_voicemail returns voicemails")
    };
    assert_eq!(saved.as_deref(), Some(path.to_str().expect("utf-8")));
    assert!(secs <= 1, "one second said, {secs} s reported");
    let r = hound::WavReader::open(&path).expect("a WAV");
    assert!(r.duration() >= 4000, "at least half a second kept");
}

#[tokio::test]
async fn finish_returns_after_the_voicemail_is_saved_and_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("vm.wav");
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43700, 43800);
    let (mut media, player, mut rx) = leave_voicemail(&pool, &path, 40).await;
    media.end_play(player).await;
    let mut saved = None;
    while let Ok(ev) = rx.try_recv() {
        if let PlayerEvent::Voicemail { path, .. } = ev {
            saved = path;
        }
    }
    assert_eq!(
        saved.as_deref(),
        Some(path.to_str().expect("utf-8")),
        "reported before end_play returned"
    );
    assert!(path.exists());
}

#[tokio::test]
async fn a_voicemail_that_cannot_be_created_is_reported_empty_at_once() {
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43800, 43900);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, _) = session(&pool, &caller).await;
    let (events, mut rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let nowhere = std::path::PathBuf::from("/proc/hotline-no-such-dir/vm.wav");
    player.record_voicemail(nowhere, VoicemailOptions::default(), true);
    assert_eq!(
        next_voicemail(&mut rx).await,
        PlayerEvent::Voicemail {
            path: None,
            secs: 0
        },
        "the flow goes on as after an empty message"
    );
    media.end_play(player).await;
}

/// Bridge the session to a fresh agent's socket (plain, default format).
async fn bridge_to_an_agent(pool: &PortPool, media: &mut CallerMedia) -> (RelayHandle, UdpSocket) {
    let b = pool.allocate().await.expect("ports");
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
    (relay, agent)
}

/// The next RTP packet `sock` receives (bounded wait).
async fn next_rtp(sock: &UdpSocket) -> (u32, u16, Vec<u8>) {
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a packet in time")
        .expect("recv");
    let h = RtpHeader::parse(&buf[..n]).expect("rtp");
    (h.ssrc, h.sequence, h.payload.to_vec())
}

#[tokio::test]
async fn a_relay_dropped_without_stopping_leaves_the_caller_on_its_stream() {
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 43900, 44000);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, ours) = session(&pool, &caller).await;
    let (events, _rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let (ssrc, _, _) = next_rtp(&caller).await;
    media.end_play(player).await;
    // Words said while nobody listens are said to nobody …
    caller.send_to(&voice(900, true), ours).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (relay, agent) = bridge_to_an_agent(&pool, &mut media).await;
    caller.send_to(&voice(1, false), ours).await.expect("send");
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(WAIT, agent.recv_from(&mut buf))
        .await
        .expect("relayed in time")
        .expect("recv");
    assert_eq!(
        RtpHeader::parse(&buf[..n]).expect("rtp").payload,
        &voice(1, false)[12..],
        "… the agent hears what comes after the bridge, not before"
    );
    // The call loses its relay handle (a path that forgot to stop it).
    drop(relay);
    // What the first player sent is old news.
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), caller.recv_from(&mut buf)).await
    {}
    let (events, _rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let (s, _, _) = next_rtp(&caller).await;
    assert_eq!(
        s, ssrc,
        "the session still serves the caller, on one stream"
    );
    media.end_play(player).await;
    drop(media);
    for _ in 0..100 {
        if pool.in_use() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.in_use(), 0, "the agent's and the caller's ports back");
}

#[tokio::test]
async fn a_relay_stopped_after_the_caller_went_back_to_prompts_leaves_the_prompts_playing() {
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 44000, 44100);
    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (mut media, _) = session(&pool, &caller).await;
    let (relay, _agent) = bridge_to_an_agent(&pool, &mut media).await;
    // The call plays to the caller before it stops the relay …
    let (events, _rx) = mpsc::unbounded_channel();
    let player = media.play(events);
    let (ssrc, _, _) = next_rtp(&caller).await;
    // … and stops it late: the prompts go on, on the same stream.
    media.unbridge(relay, false).await;
    // What was sent before the unbridge is thrown away; what comes next
    // was sent after it.
    let mut buf = [0u8; 512];
    while caller.try_recv_from(&mut buf).is_ok() {}
    let (s, _, _) = next_rtp(&caller).await;
    assert_eq!(s, ssrc, "the player still plays, on one stream");
    media.end_play(player).await;
}
