//! Media hot paths, per 20 ms of one call: G.711 encode/decode/transcode,
//! the relay's per-packet work (parse, continue the stream, rewrite), an
//! N-party mix tick, in-band DTMF detection, and SRTP per packet. Run:
//! `cargo bench --bench media`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::media::codec::{transcode_in_place, Codec, G711};
use hotline::media::dtmf::DtmfDetector;
use hotline::media::mixer::{Mixer, ParticipantId, Role};
use hotline::media::rtp::{
    write_rtp, OutgoingFrame, OutgoingStream, RtpFields, RtpHeader, SourceTiming,
};

fn tone(hz: f32) -> [i16; 160] {
    let mut f = [0i16; 160];
    for (i, s) in f.iter_mut().enumerate() {
        *s = ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16;
    }
    f
}

fn codec(c: &mut Criterion) {
    let pcm = tone(440.0);
    let mut bytes = Vec::with_capacity(160);
    G711::Alaw.encode(&pcm, &mut bytes);
    let mut g = c.benchmark_group("g711_20ms");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_alaw", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(160);
            G711::Alaw.encode(black_box(&pcm), &mut out);
            out
        })
    });
    g.bench_function("decode_alaw", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(160);
            G711::Alaw.decode(black_box(&bytes), &mut out);
            out
        })
    });
    g.bench_function("transcode_alaw_to_ulaw", |b| {
        let mut buf = bytes.clone();
        b.iter(|| transcode_in_place(G711::Alaw, G711::Ulaw, black_box(&mut buf)))
    });
    g.finish();
}

fn relay_packet(c: &mut Criterion) {
    let mut packet = [0u8; 172];
    let fields = RtpFields {
        marker: false,
        payload_type: 8,
        sequence: 1,
        timestamp: 160,
        ssrc: 0x1234,
    };
    let _ = write_rtp(&mut packet, &fields, &[0xd5; 160]);
    let mut stream = OutgoingStream::new(7, 100, 1000, 8000);
    let mut seq = 1u16;
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_continue_rewrite_packet", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            let Ok(rtp) = RtpHeader::parse(black_box(&packet)) else {
                return;
            };
            let frame = OutgoingFrame {
                source: u64::from(rtp.ssrc),
                timing: SourceTiming::Relayed {
                    sequence: rtp.sequence,
                    timestamp: rtp.timestamp,
                },
                samples: rtp.payload.len() as u32,
                marker: rtp.marker,
                payload_type: rtp.payload_type,
                payload_len: rtp.payload.len(),
            };
            let out = stream.next_packet(Duration::from_millis(u64::from(seq) * 20), &frame);
            packet[2..4].copy_from_slice(&out.sequence.to_be_bytes());
            packet[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
        })
    });
    g.finish();
}

fn mixing(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixer_tick");
    g.throughput(Throughput::Elements(1));
    for n in [3u64, 10] {
        let mut m = Mixer::new();
        for i in 0..n {
            let role = match i {
                0 => Role::Caller,
                1 => Role::Agent,
                _ => Role::External,
            };
            m.join(ParticipantId(i), role).unwrap();
        }
        let frame = tone(300.0);
        g.bench_function(format!("{n}_parties"), |b| {
            b.iter(|| {
                for i in 0..n {
                    let _ = m.push(ParticipantId(i), &frame);
                }
                m.mix().map(|(_, f)| i64::from(f[0])).sum::<i64>()
            })
        });
    }
    g.finish();
}

fn dtmf(c: &mut Criterion) {
    let mut d = DtmfDetector::new();
    let frame = tone(770.0);
    let mut t = Duration::ZERO;
    let mut g = c.benchmark_group("dtmf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("goertzel_detector_20ms", |b| {
        b.iter(|| {
            t += Duration::from_millis(20);
            d.process(t, black_box(&frame))
        })
    });
    g.finish();
}

/// SRTP (AES_CM_128_HMAC_SHA1_80) on one 20 ms PCMA packet: what a leg
/// keyed by SDES adds per packet in each direction.
fn srtp(c: &mut Criterion) {
    use hotline::media::sdp::{CryptoSuite, MasterKey, SrtpKeys};
    use hotline::media::srtp::LegCrypto;
    let keys = |l: u8, r: u8| SrtpKeys {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        local: MasterKey::from_slice(&[l; 30]).expect("key"),
        remote: MasterKey::from_slice(&[r; 30]).expect("key"),
    };
    let mut alice = LegCrypto::new(&keys(1, 2)).expect("contexts");
    let mut bob = LegCrypto::new(&keys(2, 1)).expect("contexts");
    // The next 20 ms PCMA packet of stream `ssrc`.
    let mut seq = 0u16;
    let mut next = move |ssrc: u32| {
        seq = seq.wrapping_add(1);
        let fields = RtpFields {
            marker: false,
            payload_type: 8,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc,
        };
        let mut packet = [0u8; 172];
        let n = write_rtp(&mut packet, &fields, &[0x55; 160]).expect("packet");
        (packet, n)
    };
    let mut g = c.benchmark_group("srtp_20ms");
    g.throughput(Throughput::Elements(1));
    g.bench_function("protect_rtp", |b| {
        b.iter(|| {
            let (packet, n) = next(7);
            black_box(alice.protect_rtp(&packet[..n]).expect("protected"))
        })
    });
    g.bench_function("protect_and_unprotect_rtp", |b| {
        b.iter(|| {
            let (packet, n) = next(9);
            let wire = alice.protect_rtp(&packet[..n]).expect("protected");
            black_box(bob.unprotect_rtp(&wire).expect("opened"))
        })
    });
    g.finish();
}

criterion_group!(benches, codec, relay_packet, mixing, dtmf, srtp);
criterion_main!(benches);
