//! Ogg pages for the Opus recordings (RFC 3533 §6, with the Opus mapping
//! of RFC 7845 §3 and §5): [`PageBuilder`] frames whole packets into one
//! page, [`read_page`] reads one back with its CRC checked (the writer's
//! `describe`, and the repair, which keeps every whole page a crash left
//! and marks the last one end-of-stream), and the two header packets
//! (`OpusHead`, `OpusTags`) are built and parsed here.
//!
//! Written here rather than taken from the encoder crate's muxer because
//! crash safety needs control over when a page is cut: the writer ends a
//! page at every header interval (one second), so a `kill -9` loses at most
//! that, and a page never splits a packet, so every whole page on disk
//! decodes on its own.

use std::io::{self, Read};

/// `capture_pattern` of every page.
const CAPTURE: &[u8; 4] = b"OggS";
/// Bytes of a page header before its segment table.
const HEADER_LEN: usize = 27;
/// Offset of the CRC in a page header.
const CRC_AT: usize = 22;
/// `header_type`: first page of the stream.
pub(super) const FLAG_BOS: u8 = 0x02;
/// `header_type`: last page of the stream.
pub(super) const FLAG_EOS: u8 = 0x04;
/// Most lacing values a page holds.
const MAX_SEGMENTS: usize = 255;

/// The CRC-32 of RFC 3533 (polynomial 0x04c11db7, not reflected, zero
/// initial value and no final xor).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from(((crc >> 24) as u8) ^ b)];
    }
    crc
}

/// The CRC of a whole page (`header` with its CRC field zeroed, then `body`).
fn page_crc(header: &[u8], body: &[u8]) -> u32 {
    let mut zeroed = [0u8; HEADER_LEN];
    zeroed.copy_from_slice(&header[..HEADER_LEN]);
    zeroed[CRC_AT..CRC_AT + 4].fill(0);
    let crc = crc_update(0, &zeroed);
    let crc = crc_update(crc, &header[HEADER_LEN..]);
    crc_update(crc, body)
}

/// Whole packets gathered for one page.
#[derive(Debug, Default)]
pub(super) struct PageBuilder {
    lacing: Vec<u8>,
    body: Vec<u8>,
    packets: usize,
}

impl PageBuilder {
    /// Whether `len` more bytes fit as one more packet on this page.
    pub(super) fn fits(&self, len: usize) -> bool {
        self.lacing.len() + len / 255 < MAX_SEGMENTS
    }

    /// Adds a packet (the caller checked [`Self::fits`]).
    pub(super) fn push(&mut self, packet: &[u8]) {
        self.lacing
            .extend(std::iter::repeat_n(255u8, packet.len() / 255));
        self.lacing.push((packet.len() % 255) as u8);
        self.body.extend_from_slice(packet);
        self.packets += 1;
    }

    /// Packets gathered.
    pub(super) fn packets(&self) -> usize {
        self.packets
    }

    /// Appends the page to `out` and empties the builder.
    pub(super) fn write(
        &mut self,
        flags: u8,
        granule: i64,
        serial: u32,
        sequence: u32,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.extend_from_slice(CAPTURE);
        out.push(0); // stream_structure_version
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&sequence.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(self.lacing.len() as u8);
        out.extend_from_slice(&self.lacing);
        let crc = page_crc(&out[start..], &self.body);
        out[start + CRC_AT..start + CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&self.body);
        self.lacing.clear();
        self.body.clear();
        self.packets = 0;
    }
}

/// One page read back.
#[derive(Debug)]
pub(super) struct Page {
    /// Header and segment table, as on disk.
    pub(super) header: Vec<u8>,
    /// The packets' bytes.
    pub(super) body: Vec<u8>,
}

impl Page {
    /// `header_type`.
    pub(super) fn flags(&self) -> u8 {
        self.header[5]
    }

    /// `granule_position` (-1: no packet ends on this page).
    pub(super) fn granule(&self) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.header[6..14]);
        i64::from_le_bytes(b)
    }

    /// The page's size on disk.
    pub(super) fn len(&self) -> u64 {
        (self.header.len() + self.body.len()) as u64
    }

    /// The page with `flags` added, its CRC recomputed (header bytes only:
    /// the body is unchanged).
    pub(super) fn header_with_flags(&self, flags: u8) -> Vec<u8> {
        let mut header = self.header.clone();
        header[5] |= flags;
        let crc = page_crc(&header, &self.body);
        header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        header
    }
}

/// Reads as many bytes as there are, up to `buf.len()`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The next whole page with a good CRC; `Ok(None)` at the end of the data,
/// at a page cut short, or at one that is not a valid page (what follows a
/// crash's last whole page). Only I/O errors are errors.
pub(super) fn read_page(r: &mut impl Read) -> io::Result<Option<Page>> {
    let mut header = vec![0u8; HEADER_LEN];
    if read_full(r, &mut header)? < HEADER_LEN || &header[..4] != CAPTURE || header[4] != 0 {
        return Ok(None);
    }
    let segments = usize::from(header[26]);
    header.resize(HEADER_LEN + segments, 0);
    if read_full(r, &mut header[HEADER_LEN..])? < segments {
        return Ok(None);
    }
    let body_len: usize = header[HEADER_LEN..].iter().map(|&l| usize::from(l)).sum();
    let mut body = vec![0u8; body_len];
    if read_full(r, &mut body)? < body_len {
        return Ok(None);
    }
    let stored = u32::from_le_bytes([
        header[CRC_AT],
        header[CRC_AT + 1],
        header[CRC_AT + 2],
        header[CRC_AT + 3],
    ]);
    if page_crc(&header, &body) != stored {
        return Ok(None);
    }
    Ok(Some(Page { header, body }))
}

/// The `OpusHead` packet (RFC 7845 §5.1): version 1, channel mapping
/// family 0 (mono or stereo), no output gain.
pub(super) fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(19);
    p.extend_from_slice(b"OpusHead");
    p.push(1);
    p.push(channels);
    p.extend_from_slice(&pre_skip.to_le_bytes());
    p.extend_from_slice(&input_rate.to_le_bytes());
    p.extend_from_slice(&0i16.to_le_bytes());
    p.push(0);
    p
}

/// The `OpusTags` packet (RFC 7845 §5.2): the vendor string and the
/// `key=value` comments given.
pub(super) fn opus_tags(vendor: &str, comments: &[&str]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(b"OpusTags");
    p.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    p.extend_from_slice(vendor.as_bytes());
    p.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        p.extend_from_slice(&(c.len() as u32).to_le_bytes());
        p.extend_from_slice(c.as_bytes());
    }
    p
}

/// `(channels, pre_skip, input sample rate)` of an `OpusHead` packet.
pub(super) fn parse_opus_head(packet: &[u8]) -> Option<(u8, u16, u32)> {
    if packet.len() < 19 || &packet[..8] != b"OpusHead" {
        return None;
    }
    let pre_skip = u16::from_le_bytes([packet[10], packet[11]]);
    let rate = u32::from_le_bytes([packet[12], packet[13], packet[14], packet[15]]);
    Some((packet[9], pre_skip, rate))
}

/// What a scan of an Ogg Opus file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OggSummary {
    /// The `OpusHead` facts, if its page was whole.
    pub(super) head: Option<(u8, u16, u32)>,
    /// Whole pages, the two header pages included.
    pub(super) pages: u64,
    /// Bytes of those pages (where a crash's partial page starts).
    pub(super) whole_bytes: u64,
    /// Granule position of the last page that ends a packet.
    pub(super) last_granule: i64,
    /// Offset and size of the last whole page.
    pub(super) last_page: Option<(u64, u64)>,
    /// Whether the last whole page is marked end-of-stream.
    pub(super) ended: bool,
}

impl OggSummary {
    /// Audio frames (at `rate` Hz, 8 kHz for a call) the pages hold:
    /// the last granule minus the pre-skip, in 48 kHz samples.
    pub(super) fn frames_at(&self, rate: u32) -> u64 {
        let pre_skip = self.head.map_or(0, |(_, p, _)| i64::from(p));
        let samples_48k = u64::try_from(self.last_granule - pre_skip).unwrap_or(0);
        if rate == 0 {
            return 0;
        }
        samples_48k * u64::from(rate) / 48_000
    }
}

/// Reads every whole page of `r` (stopping at the first that is not).
pub(super) fn scan(r: &mut impl Read) -> io::Result<OggSummary> {
    let mut s = OggSummary {
        head: None,
        pages: 0,
        whole_bytes: 0,
        last_granule: 0,
        last_page: None,
        ended: false,
    };
    while let Some(page) = read_page(r)? {
        if s.pages == 0 {
            s.head = parse_opus_head(&page.body);
        }
        if page.granule() >= 0 {
            s.last_granule = page.granule();
        }
        s.last_page = Some((s.whole_bytes, page.len()));
        s.ended = page.flags() & FLAG_EOS != 0;
        s.whole_bytes += page.len();
        s.pages += 1;
        if s.ended {
            break;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_check_value() {
        // CRC-32/MPEG-2 without its init and xorout: "123456789" with the
        // Ogg parameters (init 0, no xorout) is 0x89a1897f.
        assert_eq!(crc_update(0, b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn pages_round_trip_and_a_cut_page_is_not_read() {
        let mut out = Vec::new();
        let mut b = PageBuilder::default();
        b.push(&opus_head(2, 312, 8000));
        b.write(FLAG_BOS, 0, 7, 0, &mut out);
        b.push(&[1u8; 300]);
        b.push(&[2u8; 10]);
        b.write(0, 960, 7, 1, &mut out);
        let s = scan(&mut &out[..]).expect("scan");
        assert_eq!(s.pages, 2);
        assert_eq!(s.head, Some((2, 312, 8000)));
        assert_eq!(s.last_granule, 960);
        assert_eq!(s.whole_bytes, out.len() as u64);
        let cut = &out[..out.len() - 1];
        let s = scan(&mut &cut[..]).expect("scan");
        assert_eq!(s.pages, 1);
        let mut bad = out.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(scan(&mut &bad[..]).expect("scan").pages, 1);
    }

    #[test]
    fn a_full_segment_table_is_refused() {
        let mut b = PageBuilder::default();
        for _ in 0..255 {
            assert!(b.fits(10));
            b.push(&[0; 10]);
        }
        assert!(!b.fits(10));
    }
}
