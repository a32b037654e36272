//! Tests of the RTP room: header parsing and writing, the outgoing stream's
//! continuity, RTCP round trips, receive statistics.

use super::*;
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn pcma_packet() -> Vec<u8> {
    let mut v = vec![0x80, 8, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef];
    v.extend((0..160).map(|i| (i as u8) ^ 0x55));
    v
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn parses_plain_pcma() {
    let p = pcma_packet();
    let h = RtpHeader::parse(&p).expect("valid");
    assert_eq!(h.payload_type, 8);
    assert!(!h.marker);
    assert_eq!(h.sequence, 0x1234);
    assert_eq!(h.timestamp, 0x1000);
    assert_eq!(h.ssrc, 0xdead_beef);
    assert_eq!(h.payload.len(), 160);
    assert_eq!(h.payload[0], 0x55);
    assert_eq!(h.padding, 0);
    assert_eq!(h.csrc_count(), 0);
    assert!(h.extension.is_none());
}

#[test]
fn parses_csrc_extension_padding() {
    let mut p = vec![
        0x80 | 0x20 | 0x10 | 2,
        0x80, // marker set, PT 0
        0,
        1,
        0,
        0,
        0,
        2,
        0,
        0,
        0,
        3,
    ];
    p.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]); // 2 CSRCs
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // ext, 1 word
    p.extend_from_slice(&[9, 9, 9]); // payload
    p.extend_from_slice(&[0, 0, 3]); // 3 bytes padding
    let h = RtpHeader::parse(&p).expect("valid");
    assert!(h.marker);
    assert_eq!(h.payload_type, 0);
    assert_eq!(h.csrcs().collect::<Vec<_>>(), vec![10, 11]);
    assert_eq!(
        h.extension,
        Some(RtpExtension {
            profile: 0xbede,
            data: &[1, 2, 3, 4]
        })
    );
    assert_eq!(h.payload, &[9, 9, 9]);
    assert_eq!(h.padding, 3);
}

#[test]
fn rejects_malformed() {
    assert_eq!(
        RtpHeader::parse(&[0x80; 11]),
        Err(RtpError::TruncatedHeader { len: 11 })
    );
    let mut p = pcma_packet();
    p[0] = 0x40;
    assert_eq!(RtpHeader::parse(&p), Err(RtpError::BadVersion(1)));
    // 15 CSRCs in a 20-byte packet.
    let mut p = vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 8]);
    assert_eq!(
        RtpHeader::parse(&p),
        Err(RtpError::CsrcOverrun { count: 15, len: 20 })
    );
    // Extension header missing.
    let p = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde];
    assert_eq!(
        RtpHeader::parse(&p),
        Err(RtpError::ExtensionOverrun { len: 14 })
    );
    // Extension length too long.
    let p = [
        0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9, 1, 2, 3, 4,
    ];
    assert_eq!(
        RtpHeader::parse(&p),
        Err(RtpError::ExtensionOverrun { len: 20 })
    );
    // Padding longer than the payload.
    let mut p = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&[1, 2, 200]);
    assert_eq!(
        RtpHeader::parse(&p),
        Err(RtpError::PaddingOverrun {
            pad: 200,
            available: 3
        })
    );
    // Padding bit with zero count.
    let mut p = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&[1, 2, 0]);
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(RtpError::PaddingOverrun { pad: 0, .. })
    ));
    // Padding bit, nothing after the header.
    let p = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(RtpError::PaddingOverrun { available: 0, .. })
    ));
}

#[test]
fn write_then_parse_round_trips() {
    let fields = RtpFields {
        marker: true,
        payload_type: 101,
        sequence: 65535,
        timestamp: 0xffff_fff0,
        ssrc: 42,
    };
    let mut buf = [0u8; 64];
    let n = write_rtp(&mut buf, &fields, &[1, 2, 3, 4]).expect("fits");
    assert_eq!(n, 16);
    let h = RtpHeader::parse(&buf[..n]).expect("valid");
    assert_eq!(h.fields(), fields);
    assert_eq!(h.payload, &[1, 2, 3, 4]);
    assert_eq!(
        write_rtp(&mut buf[..10], &fields, &[]),
        Err(RtpError::BufferTooSmall { need: 12, have: 10 })
    );
    let bad = RtpFields {
        payload_type: 128,
        ..fields
    };
    assert_eq!(
        write_rtp(&mut buf, &bad, &[]),
        Err(RtpError::PayloadType(128))
    );
}

#[test]
fn rtcp_demux() {
    assert!(is_rtcp(&[0x80, 200, 0, 6]));
    assert!(is_rtcp(&[0x80, 201, 0, 1]));
    assert!(!is_rtcp(&[0x80, 8, 0, 1]));
    assert!(!is_rtcp(&[0x80, 0x80 | 8, 0, 1]));
    assert!(!is_rtcp(&[0x80]));
}

fn local(source: u64) -> OutgoingFrame {
    OutgoingFrame {
        source,
        timing: SourceTiming::Local,
        samples: 160,
        marker: false,
        payload_type: 8,
        payload_len: 160,
    }
}

fn relayed(source: u64, sequence: u16, timestamp: u32) -> OutgoingFrame {
    OutgoingFrame {
        timing: SourceTiming::Relayed {
            sequence,
            timestamp,
        },
        ..local(source)
    }
}

#[test]
fn outgoing_local_source_is_continuous() {
    let mut s = OutgoingStream::new(7, 65534, 0xffff_ff00, 8000);
    let a = s.next_packet(ms(0), &local(1));
    assert!(a.marker, "first packet of the stream is marked");
    assert_eq!((a.sequence, a.timestamp, a.ssrc), (65534, 0xffff_ff00, 7));
    let b = s.next_packet(ms(20), &local(1));
    assert!(!b.marker);
    assert_eq!((b.sequence, b.timestamp), (65535, 0xffff_ffa0));
    // Timer jitter (27 ms instead of 20) does not move the timeline.
    let c = s.next_packet(ms(47), &local(1));
    assert_eq!((c.sequence, c.timestamp), (0, 0x40));
    assert_eq!(s.packet_count(), 3);
    assert_eq!(s.octet_count(), 480);
}

#[test]
fn outgoing_gap_advances_by_elapsed_time() {
    let mut s = OutgoingStream::new(1, 100, 1000, 8000);
    s.next_packet(ms(0), &local(1));
    s.next_packet(ms(20), &local(1));
    // 1 s of silence (hold with nothing to send), then music on hold.
    let p = s.next_packet(ms(1040), &local(2));
    assert!(p.marker);
    assert_eq!(p.sequence, 102);
    // Previous end 1320 at 40 ms; 1000 ms later → +8000 samples.
    assert_eq!(p.timestamp, 1000 + 320 + 8000);
}

#[test]
fn outgoing_switches_prompt_bridge_moh_bridge() {
    let mut s = OutgoingStream::new(9, 0, 0, 8000);
    let mut now = 0;
    let mut out = Vec::new();
    // Prompt: 3 packets.
    for _ in 0..3 {
        out.push(s.next_packet(ms(now), &local(1)));
        now += 20;
    }
    // Bridged audio from leg B, its own numbering.
    for i in 0..3u16 {
        out.push(s.next_packet(ms(now), &relayed(2, 5000 + i, 90_000 + 160 * u32::from(i))));
        now += 20;
    }
    // Music on hold.
    for _ in 0..2 {
        out.push(s.next_packet(ms(now), &local(3)));
        now += 20;
    }
    // Back to leg B, which has moved on meanwhile.
    for i in 0..2u16 {
        out.push(s.next_packet(ms(now), &relayed(2, 5010 + i, 91_600 + 160 * u32::from(i))));
        now += 20;
    }
    let seqs: Vec<u16> = out.iter().map(|f| f.sequence).collect();
    assert_eq!(seqs, (0..10).collect::<Vec<u16>>());
    let ts: Vec<u32> = out.iter().map(|f| f.timestamp).collect();
    assert_eq!(ts, (0..10).map(|i| i * 160).collect::<Vec<u32>>());
    let marks: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, f)| f.marker)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(marks, vec![0, 3, 6, 8]);
    assert!(out.iter().all(|f| f.ssrc == 9));
}

#[test]
fn outgoing_relay_keeps_loss_gaps_and_event_timestamps() {
    let mut s = OutgoingStream::new(9, 10, 500, 8000);
    let a = s.next_packet(ms(0), &relayed(2, 300, 7000));
    assert_eq!((a.sequence, a.timestamp), (10, 500));
    // One packet lost upstream: the gap is kept.
    let b = s.next_packet(ms(40), &relayed(2, 302, 7320));
    assert_eq!((b.sequence, b.timestamp), (12, 820));
    assert!(!b.marker);
    // Reordered late packet maps back into place and does not regress.
    let late = s.next_packet(ms(41), &relayed(2, 301, 7160));
    assert_eq!((late.sequence, late.timestamp), (11, 660));
    let c = s.next_packet(ms(60), &relayed(2, 303, 7480));
    assert_eq!((c.sequence, c.timestamp), (13, 980));
    // A huge jump (upstream restart without new SSRC) is re-anchored.
    let d = s.next_packet(ms(80), &relayed(2, 40_000, 1_000_000_000));
    assert!(d.marker);
    assert_eq!((d.sequence, d.timestamp), (14, 1140));
}

#[test]
fn outgoing_event_then_audio_continues_after_event_end() {
    // RFC 4733 packets share the event timestamp; `samples` is the
    // duration so far, so audio after the event starts after it.
    let mut s = OutgoingStream::new(9, 0, 0, 8000);
    s.next_packet(ms(0), &local(1));
    let mut ev = relayed(5, 1, 4242);
    ev.payload_type = 101;
    let mut last = None;
    for (i, dur) in [400u32, 800, 800, 800].iter().enumerate() {
        ev.sequence_mut(1 + i as u16);
        ev.samples = *dur;
        last = Some(s.next_packet(ms(20 + 50 * i as u64), &ev));
    }
    let last = last.expect("sent");
    assert_eq!(last.timestamp, 160);
    let audio = s.next_packet(ms(190), &local(1));
    assert!(audio.marker);
    assert_eq!(audio.timestamp, 160 + 800);
}

impl OutgoingFrame {
    fn sequence_mut(&mut self, seq: u16) {
        if let SourceTiming::Relayed { sequence, .. } = &mut self.timing {
            *sequence = seq;
        }
    }
}

#[test]
fn sender_info_extrapolates_timestamp() {
    let mut s = OutgoingStream::new(3, 0, 1000, 8000);
    s.next_packet(ms(0), &local(1));
    let info = s.sender_info(ms(5), 0x1234_5678_0000_0000);
    assert_eq!(info.rtp_timestamp, 1040);
    assert_eq!(info.packet_count, 1);
    assert_eq!(info.octet_count, 160);
    assert_eq!(info.ntp_timestamp, 0x1234_5678_0000_0000);
}

#[test]
fn sr_rr_sdes_round_trip_compound() {
    let block = ReportBlock {
        ssrc: 0xaabb_ccdd,
        fraction_lost: 25,
        cumulative_lost: -3,
        highest_seq: 0x0001_0005,
        jitter: 77,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    };
    let info = SenderInfo {
        ntp_timestamp: 0xe000_0000_8000_0000,
        rtp_timestamp: 123,
        packet_count: 50,
        octet_count: 8000,
    };
    let mut buf = [0u8; 256];
    let mut n = write_sr(&mut buf, 1, &info, &[block]).expect("fits");
    assert_eq!(n, 52);
    n += write_sdes_cname(&mut buf[n..], 1, "hotline@example").expect("fits");
    n += write_rr(&mut buf[n..], 1, &[block, block]).expect("fits");
    assert!(is_rtcp(&buf[..n]));
    let reports = parse_rtcp(&buf[..n]).expect("valid");
    assert_eq!(
        reports,
        vec![
            RtcpReport::Sender {
                ssrc: 1,
                info,
                blocks: vec![block]
            },
            RtcpReport::Receiver {
                ssrc: 1,
                blocks: vec![block, block]
            }
        ]
    );
    assert_eq!(reports[1].ssrc(), 1);
    assert_eq!(reports[1].blocks().len(), 2);
}

#[test]
fn sdes_is_word_aligned_and_null_terminated() {
    let mut buf = [0xffu8; 64];
    for name in ["", "a", "ab", "abc", "abcdef"] {
        let n = write_sdes_cname(&mut buf, 9, name).expect("fits");
        assert_eq!(n % 4, 0);
        assert!(n > 10 + name.len());
        assert_eq!(buf[n - 1], 0);
        assert_eq!(parse_rtcp(&buf[..n]), Ok(vec![]));
    }
    assert_eq!(
        write_sdes_cname(&mut buf, 9, &"x".repeat(256)),
        Err(RtcpError::CnameTooLong(256))
    );
}

#[test]
fn rtcp_skips_unknown_parts_and_rejects_bad() {
    // BYE then RR.
    let mut p = vec![0x81, RTCP_BYE, 0, 1, 0, 0, 0, 5];
    p.extend_from_slice(&[0x80, RTCP_RR, 0, 1, 0, 0, 0, 6]);
    assert_eq!(
        parse_rtcp(&p),
        Ok(vec![RtcpReport::Receiver {
            ssrc: 6,
            blocks: vec![]
        }])
    );
    assert_eq!(parse_rtcp(&[]), Err(RtcpError::Truncated { offset: 0 }));
    assert_eq!(
        parse_rtcp(&[0x80, 201, 0, 1, 0, 0, 0, 6, 0x80]),
        Err(RtcpError::Truncated { offset: 8 })
    );
    assert_eq!(
        parse_rtcp(&[0x40, 201, 0, 1, 0, 0, 0, 6]),
        Err(RtcpError::BadVersion(1))
    );
    assert!(matches!(
        parse_rtcp(&[0x80, 201, 0, 9, 0, 0, 0, 6]),
        Err(RtcpError::LengthOverrun { .. })
    ));
    // RR claiming one block but holding none.
    assert!(matches!(
        parse_rtcp(&[0x81, 201, 0, 1, 0, 0, 0, 6]),
        Err(RtcpError::ReportOverrun { count: 1, .. })
    ));
    // Padding count bigger than the body.
    assert_eq!(
        parse_rtcp(&[0xa0, 201, 0, 1, 0, 0, 0, 9]),
        Err(RtcpError::BadPadding(9))
    );
    let mut buf = [0u8; 10];
    assert!(matches!(
        write_rr(&mut buf, 1, &[ReportBlock::default()]),
        Err(RtcpError::BufferTooSmall { need: 32, .. })
    ));
    assert_eq!(
        write_rr(&mut [0u8; 2048], 1, &[ReportBlock::default(); 32]),
        Err(RtcpError::TooManyBlocks(32))
    );
}

#[test]
fn rtt_from_lsr_dlsr() {
    // SR sent at NTP 1000.0 s; peer held it 0.25 s; report arrives at
    // 1000.35 s → RTT 100 ms.
    let sr_ntp = ntp_from_unix(Duration::from_secs(1000));
    let block = ReportBlock {
        last_sr: ntp_middle(sr_ntp),
        delay_since_last_sr: 65536 / 4,
        ..ReportBlock::default()
    };
    let arrival = ntp_from_unix(Duration::from_millis(1_000_350));
    let rtt = block.round_trip(arrival).expect("rtt");
    assert!(rtt.abs_diff(ms(100)) < Duration::from_micros(50), "{rtt:?}");
    // No LSR yet, or a negative result.
    assert_eq!(ReportBlock::default().round_trip(arrival), None);
    let early = ntp_from_unix(Duration::from_millis(1_000_100));
    assert_eq!(block.round_trip(early), None);
}

#[test]
fn ntp_conversion() {
    let n = ntp_from_unix(Duration::new(1, 500_000_000));
    assert_eq!(n >> 32, NTP_UNIX_OFFSET_SECS + 1);
    assert_eq!(n & 0xffff_ffff, 0x8000_0000);
    assert_eq!(
        ntp_middle(n),
        (((NTP_UNIX_OFFSET_SECS + 1) as u32) << 16) | 0x8000
    );
}

#[test]
fn receive_stats_sequence_and_loss() {
    let mut r = ReceiveStats::new(5, 8000);
    assert_eq!(r.on_packet(ms(0), 65533, 0), SeqStatus::Probation);
    assert_eq!(r.expected(), 0);
    assert_eq!(r.on_packet(ms(20), 65534, 160), SeqStatus::Valid);
    // Wrap: 65535, 0, then lose 1 and 2, then 3.
    assert_eq!(r.on_packet(ms(40), 65535, 320), SeqStatus::Valid);
    assert_eq!(r.on_packet(ms(60), 0, 480), SeqStatus::Valid);
    assert_eq!(r.on_packet(ms(120), 3, 960), SeqStatus::Valid);
    assert_eq!(r.extended_highest_seq(), 0x0001_0003);
    assert_eq!(r.expected(), 6); // 65534..=65535, 0..=3
    assert_eq!(r.received(), 4);
    assert_eq!(r.cumulative_lost(), 2);
    let b = r.report_block(ms(130));
    assert_eq!(b.ssrc, 5);
    assert_eq!(b.cumulative_lost, 2);
    assert_eq!(b.fraction_lost, (2 * 256 / 6) as u8);
    assert_eq!(b.highest_seq, 0x0001_0003);
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0));
    // Next interval: no loss.
    r.on_packet(ms(140), 4, 1120);
    let b = r.report_block(ms(150));
    assert_eq!(b.fraction_lost, 0);
    assert_eq!(b.cumulative_lost, 2);
    // Duplicate counts as received (lost can go down, A.3).
    r.on_packet(ms(141), 4, 1120);
    assert_eq!(r.cumulative_lost(), 1);
}

#[test]
fn receive_stats_probation_restart_on_big_jump() {
    let mut r = ReceiveStats::new(5, 8000);
    // Probation restarts when the second packet is not sequential.
    assert_eq!(r.on_packet(ms(0), 10, 0), SeqStatus::Probation);
    assert_eq!(r.on_packet(ms(20), 50, 0), SeqStatus::Probation);
    assert_eq!(r.on_packet(ms(40), 51, 0), SeqStatus::Valid);
    assert_eq!(r.on_packet(ms(60), 52, 160), SeqStatus::Valid);
    // A big jump is not taken at once...
    assert_eq!(r.on_packet(ms(80), 30_000, 320), SeqStatus::BadJump);
    assert_eq!(r.expected(), 2);
    // ...but two in a row restart the statistics.
    assert_eq!(r.on_packet(ms(100), 30_001, 480), SeqStatus::Restarted);
    assert_eq!(r.expected(), 1);
    assert_eq!(r.received(), 1);
    assert_eq!(r.on_packet(ms(120), 30_002, 640), SeqStatus::Valid);
    assert_eq!(r.expected(), 2);
    // An isolated jump followed by the old sequence is ignored.
    assert_eq!(r.on_packet(ms(140), 9, 0), SeqStatus::BadJump);
    assert_eq!(r.on_packet(ms(160), 30_003, 800), SeqStatus::Valid);
    assert_eq!(r.cumulative_lost(), 0);
}

#[test]
fn jitter_zero_for_regular_and_measured_for_irregular_arrival() {
    let mut r = ReceiveStats::new(5, 8000);
    for i in 0..50u16 {
        r.on_packet(ms(20 * u64::from(i)), i, 160 * u32::from(i));
    }
    assert_eq!(r.jitter(), 0);
    // Alternate ±5 ms arrival offsets: |D| = 80 samples (10 ms) each
    // packet; J converges to 80.
    let mut r = ReceiveStats::new(5, 8000);
    for i in 0..400u16 {
        let skew = if i % 2 == 0 { 0 } else { 10 };
        r.on_packet(ms(20 * u64::from(i) + skew), i, 160 * u32::from(i));
    }
    assert!((78..=80).contains(&r.jitter()), "jitter {}", r.jitter());
    assert!(r.jitter_duration().abs_diff(ms(10)) < ms(1));
    let b = r.report_block(ms(9000));
    assert_eq!(b.jitter, r.jitter());
}

#[test]
fn dlsr_measured_from_sr_arrival() {
    let mut r = ReceiveStats::new(5, 8000);
    let ntp = ntp_from_unix(Duration::from_secs(5000));
    r.on_sender_report(ms(1000), ntp);
    let b = r.report_block(ms(1500));
    assert_eq!(b.last_sr, ntp_middle(ntp));
    assert_eq!(b.delay_since_last_sr, 32768);
}

#[test]
fn fuzz_rtp_and_rtcp_parsers_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 128];
    let mut valid = 0;
    for i in 0..200_000 {
        let len = (rng.next() % 128) as usize;
        for b in buf.iter_mut().take(len) {
            *b = rng.next() as u8;
        }
        if i % 2 == 0 && len > 0 {
            buf[0] = 0x80 | (buf[0] & 0x3f); // version 2 half the time
        }
        let d = &buf[..len];
        if let Ok(h) = RtpHeader::parse(d) {
            valid += 1;
            assert!(h.payload.len() + RTP_HEADER_LEN <= len);
            let _ = h.csrcs().count();
        }
        let _ = parse_rtcp(d);
        let _ = is_rtcp(d);
    }
    assert!(valid > 1000);
}
