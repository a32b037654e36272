//! What a recording or a phone heard, tone by tone: the samples of one
//! channel of a WAV, and the 20 ms windows where a test tone dominates
//! (Goertzel). Each party of a test sends its own tone, so who reached
//! whom is read off the audio.

use std::path::Path;

/// Channel `ch` of the `channels`-channel WAV at `path`.
pub fn channel(path: &Path, ch: usize, channels: usize) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("the WAV opens");
    assert_eq!(
        usize::from(r.spec().channels),
        channels,
        "{}",
        path.display()
    );
    let all: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    all.chunks_exact(channels).map(|f| f[ch]).collect()
}

/// 20 ms windows (8 kHz) of `audio` where `hz` carries more than
/// `min_share` of the energy.
pub fn windows_with(audio: &[i16], hz: f64, min_share: f64) -> usize {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    audio
        .chunks_exact(160)
        .filter(|w| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in *w {
                let x = f64::from(x);
                energy += x * x;
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            energy > 1e3 && (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (80.0 * energy) > min_share
        })
        .count()
}

/// A pcap SIPp plays as a caller's voice (`play_pcap_audio`): `secs` of a
/// `hz` sine as PCMA RTP (PT 8), 20 ms packets, one SSRC, in Ethernet/IPv4/
/// UDP frames (SIPp rewrites the addresses and ports).
pub fn tone_pcap(hz: f64, secs: u32, path: &Path) {
    use hotline::media::codec::G711;
    let mut out = Vec::new();
    // Global header: little-endian magic, v2.4, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let packets = secs * 50;
    for n in 0..packets {
        let mut rtp = vec![0x80, if n == 0 { 0x88 } else { 0x08 }];
        rtp.extend_from_slice(&(n as u16).to_be_bytes());
        rtp.extend_from_slice(&(n * 160).to_be_bytes());
        rtp.extend_from_slice(&0x7e57_0001u32.to_be_bytes());
        for i in 0..160 {
            let t = f64::from(n * 160 + i) / 8000.0;
            let s = (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
            rtp.push(G711::Alaw.encode_sample(s));
        }
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2]);
        let sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6002u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let usecs = u64::from(n) * 20_000;
        out.extend_from_slice(&((usecs / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((usecs % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).expect("tone pcap");
}

/// A mono 48 kHz WAV of `secs` of a `hz` sine (a fake microphone's file).
pub fn tone_wav(hz: f64, secs: u32, path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for i in 0..48_000 * secs {
        let t = f64::from(i) / 48_000.0;
        let s = (10_000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("wav written");
}
