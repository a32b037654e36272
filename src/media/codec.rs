//! G.711 A-law (PCMA, RTP payload type 8, the default on Chinese networks)
//! and μ-law (PCMU, payload type 0), ITU-T G.711 / RFC 3551 §4.5.14.
//!
//! Table-driven: decoding is one 256-entry lookup, encoding one lookup in
//! a table indexed by the significant bits of the linear sample (13 bits for
//! A-law, 14 for μ-law), and A↔μ transcoding one 256-entry lookup per byte.
//! All tables are computed at compile time from the reference segment
//! algorithm, so there is nothing to initialise and nothing to get wrong at
//! run time. Written by hand because G.711 is a few lines of arithmetic and
//! the crates that offer it either allocate per call or pull in whole codec
//! frameworks; the tables are tested against the algorithm and known values.
//!
//! [`Codec`] is the seam for G.722/Opus later: a codec turns payload bytes
//! into 8 kHz (for now) 16-bit PCM and back.

/// A G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// A-law (PCMA, PT 8).
    Alaw,
    /// μ-law (PCMU, PT 0).
    Ulaw,
}

/// Something that decodes RTP payloads to PCM and encodes PCM to payloads.
pub trait Codec {
    /// RFC 3551 static payload type.
    fn payload_type(&self) -> u8;
    /// Samples per second of the PCM side.
    fn clock_rate(&self) -> u32;
    /// Append the PCM of `payload` to `out`.
    fn decode(&self, payload: &[u8], out: &mut Vec<i16>);
    /// Append the payload bytes for `pcm` to `out`.
    fn encode(&self, pcm: &[i16], out: &mut Vec<u8>);
}

impl Codec for G711 {
    fn payload_type(&self) -> u8 {
        match self {
            G711::Alaw => 8,
            G711::Ulaw => 0,
        }
    }

    fn clock_rate(&self) -> u32 {
        8000
    }

    fn decode(&self, payload: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            G711::Alaw => &ALAW_TO_LINEAR,
            G711::Ulaw => &ULAW_TO_LINEAR,
        };
        out.extend(payload.iter().map(|&b| table[usize::from(b)]));
    }

    fn encode(&self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            G711::Alaw => out.extend(pcm.iter().map(|&s| encode_alaw(s))),
            G711::Ulaw => out.extend(pcm.iter().map(|&s| encode_ulaw(s))),
        }
    }
}

impl G711 {
    /// The law for an RTP payload type, if it is G.711.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            8 => Some(G711::Alaw),
            0 => Some(G711::Ulaw),
            _ => None,
        }
    }

    /// Decode one byte.
    #[inline]
    pub fn decode_sample(self, b: u8) -> i16 {
        match self {
            G711::Alaw => ALAW_TO_LINEAR[usize::from(b)],
            G711::Ulaw => ULAW_TO_LINEAR[usize::from(b)],
        }
    }

    /// Encode one sample.
    #[inline]
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            G711::Alaw => encode_alaw(s),
            G711::Ulaw => encode_ulaw(s),
        }
    }
}

/// Rewrite a payload from one law to the other in place (no PCM step).
pub fn transcode_in_place(from: G711, to: G711, payload: &mut [u8]) {
    let table = match (from, to) {
        (G711::Alaw, G711::Ulaw) => &ALAW_TO_ULAW,
        (G711::Ulaw, G711::Alaw) => &ULAW_TO_ALAW,
        _ => return,
    };
    for b in payload.iter_mut() {
        *b = table[usize::from(*b)];
    }
}

#[inline]
fn encode_alaw(s: i16) -> u8 {
    LINEAR_TO_ALAW[((s >> 3) as i32 + 4096) as usize]
}

#[inline]
fn encode_ulaw(s: i16) -> u8 {
    LINEAR_TO_ULAW[((s >> 2) as i32 + 8192) as usize]
}

const fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t: i32 = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    if seg == 0 {
        t += 8;
    } else if seg == 1 {
        t += 0x108;
    } else {
        t += 0x108;
        t <<= seg - 1;
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let mut t: i32 = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= ((u & 0x70) >> 4) as i32;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// A-law from a 13-bit magnitude-and-sign sample (the reference algorithm).
const fn alaw_encode13(pcm13: i32) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let (mask, pcm) = if pcm13 >= 0 {
        (0xD5u8, pcm13)
    } else {
        (0x55u8, -pcm13 - 1)
    };
    let mut seg = 0;
    while seg < 8 && pcm > SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mut aval = (seg as u8) << 4;
    if seg < 2 {
        aval |= ((pcm >> 1) & 0xF) as u8;
    } else {
        aval |= ((pcm >> seg) & 0xF) as u8;
    }
    aval ^ mask
}

/// μ-law from a 14-bit sample (the reference algorithm).
const fn ulaw_encode14(pcm14: i32) -> u8 {
    const SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const CLIP: i32 = 8159;
    let (mask, mut pcm) = if pcm14 < 0 {
        (0x7Fu8, -pcm14)
    } else {
        (0xFFu8, pcm14)
    };
    if pcm > CLIP {
        pcm = CLIP;
    }
    pcm += 0x84 >> 2;
    let mut seg = 0;
    while seg < 8 && pcm > SEG_END[seg] {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((seg as u8) << 4) | ((pcm >> (seg + 1)) & 0xF) as u8;
    uval ^ mask
}

const fn build_decode(law_a: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if law_a {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

const fn build_alaw_encode() -> [u8; 8192] {
    let mut t = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        t[i] = alaw_encode13(i as i32 - 4096);
        i += 1;
    }
    t
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut t = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        t[i] = ulaw_encode14(i as i32 - 8192);
        i += 1;
    }
    t
}

const fn build_cross(a_to_u: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if a_to_u {
            ulaw_encode14((alaw_decode(i as u8) >> 2) as i32)
        } else {
            alaw_encode13((ulaw_decode(i as u8) >> 3) as i32)
        };
        i += 1;
    }
    t
}

static ALAW_TO_LINEAR: [i16; 256] = build_decode(true);
static ULAW_TO_LINEAR: [i16; 256] = build_decode(false);
static LINEAR_TO_ALAW: [u8; 8192] = build_alaw_encode();
static LINEAR_TO_ULAW: [u8; 16384] = build_ulaw_encode();
static ALAW_TO_ULAW: [u8; 256] = build_cross(true);
static ULAW_TO_ALAW: [u8; 256] = build_cross(false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Silence and extremes (ITU-T G.711 tables).
        assert_eq!(G711::Alaw.encode_sample(0), 0xD5);
        assert_eq!(G711::Ulaw.encode_sample(0), 0xFF);
        assert_eq!(G711::Alaw.decode_sample(0xD5), 8);
        assert_eq!(G711::Alaw.decode_sample(0x55), -8);
        assert_eq!(G711::Ulaw.decode_sample(0xFF), 0);
        assert_eq!(G711::Ulaw.decode_sample(0x7F), 0);
        assert_eq!(G711::Alaw.decode_sample(0xAA), 32256);
        assert_eq!(G711::Alaw.decode_sample(0x2A), -32256);
        assert_eq!(G711::Ulaw.decode_sample(0x80), 32124);
        assert_eq!(G711::Ulaw.decode_sample(0x00), -32124);
        assert_eq!(G711::Alaw.encode_sample(i16::MAX), 0xAA);
        assert_eq!(G711::Alaw.encode_sample(i16::MIN), 0x2A);
        assert_eq!(G711::Ulaw.encode_sample(i16::MAX), 0x80);
        assert_eq!(G711::Ulaw.encode_sample(i16::MIN), 0x00);
    }

    #[test]
    fn every_code_round_trips() {
        for law in [G711::Alaw, G711::Ulaw] {
            for b in 0..=255u8 {
                let s = law.decode_sample(b);
                let back = law.encode_sample(s);
                // μ-law has two codes for zero (0x7F and 0xFF).
                assert!(
                    back == b || (law == G711::Ulaw && s == 0),
                    "{law:?} {b:#04x} → {s} → {back:#04x}"
                );
            }
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        for law in [G711::Alaw, G711::Ulaw] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let back = law.decode_sample(law.encode_sample(s));
                let err = (i32::from(s) - i32::from(back)).abs();
                // Worst-case step of the top segment is 1024 (A) / 1024 (μ).
                assert!(err <= 1024, "{law:?} {s} → {back}");
                if s.unsigned_abs() > 64 {
                    assert_eq!(s.signum(), back.signum(), "{law:?} sign of {s}");
                }
            }
        }
    }

    #[test]
    fn transcoding_matches_the_pcm_path() {
        for b in 0..=255u8 {
            let mut via_table = [b];
            transcode_in_place(G711::Alaw, G711::Ulaw, &mut via_table);
            let via_pcm = G711::Ulaw.encode_sample(G711::Alaw.decode_sample(b));
            assert_eq!(via_table[0], via_pcm, "A→μ {b:#04x}");
            let mut via_table = [b];
            transcode_in_place(G711::Ulaw, G711::Alaw, &mut via_table);
            let via_pcm = G711::Alaw.encode_sample(G711::Ulaw.decode_sample(b));
            assert_eq!(via_table[0], via_pcm, "μ→A {b:#04x}");
        }
    }

    #[test]
    fn codec_trait_decodes_and_encodes_buffers() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 / 8.0).sin() * 8000.0) as i16)
            .collect();
        for law in [G711::Alaw, G711::Ulaw] {
            let mut bytes = Vec::new();
            law.encode(&pcm, &mut bytes);
            assert_eq!(bytes.len(), 160);
            let mut back = Vec::new();
            law.decode(&bytes, &mut back);
            assert_eq!(back.len(), 160);
            let err: i64 = pcm
                .iter()
                .zip(&back)
                .map(|(a, b)| (i64::from(*a) - i64::from(*b)).abs())
                .sum();
            assert!(err / 160 < 200, "{law:?} mean error {}", err / 160);
        }
        assert_eq!(G711::from_payload_type(8), Some(G711::Alaw));
        assert_eq!(G711::from_payload_type(0), Some(G711::Ulaw));
        assert_eq!(G711::from_payload_type(18), None);
    }
}
