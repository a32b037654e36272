//! hotline's own shipped setup on a test's network: `config/hotline.toml`
//! and the 12345 flow, moved onto the test's addresses and directories
//! (every rewritten line must still be in the shipped file), and callers'
//! keys as phones send them.

use std::path::{Path, PathBuf};

use super::Net;

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A calendars directory like the repository's `config/`, with the
/// shipped holidays but both schedules open around the clock: the one
/// departure from the shipped setup, so the tests do not depend on the
/// time of day (outside 08:00-20:00 the 12345 flow offers voicemail).
pub fn calendars(dir: &Path) -> PathBuf {
    let schedules = dir.join("schedules");
    std::fs::create_dir_all(&schedules).expect("schedules dir");
    let days: String = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| format!("{d} = [\"00:00-24:00\"]\n"))
        .collect();
    for name in ["hotline-hours", "working-hours"] {
        std::fs::write(
            schedules.join(format!("{name}.toml")),
            format!(
                "description = \"test: always open\"\nutc_offset_minutes = 480\n\n[weekly]\n{days}"
            ),
        )
        .expect("schedule");
    }
    std::os::unix::fs::symlink(repo().join("config/holidays"), dir.join("holidays"))
        .expect("holidays link");
    dir.to_path_buf()
}

/// The shipped `config/hotline.toml` moved onto the test's network and
/// directories; every rewritten line must still be in the shipped file.
pub fn shipped_config(net: Net, dir: &Path) -> String {
    let mut text =
        std::fs::read_to_string(repo().join("config/hotline.toml")).expect("shipped config");
    let cal = calendars(&dir.join("cal"));
    let rewrites = [
        (
            "listen = \"127.0.0.1:5060\"",
            format!("listen = \"{}\"", net.sip()),
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            format!("listen = \"{}:8080\"", net.ip(1)),
        ),
        (
            "dir = \"./var\"",
            format!("dir = \"{}\"", dir.join("var").display()),
        ),
        (
            "address = \"127.0.0.1\"",
            format!("address = \"{}\"", net.ip(1)),
        ),
        (
            "proxy = \"127.0.0.10:5060\"",
            format!("proxy = \"{}:5060\"", net.carrier()),
        ),
        (
            "sounds_dir = \"./sounds\"",
            format!("sounds_dir = \"{}\"", repo().join("sounds").display()),
        ),
        (
            "flows_dir = \"./ivr-flows\"",
            format!("flows_dir = \"{}\"", repo().join("ivr-flows").display()),
        ),
        (
            "calendars_dir = \"./config\"",
            format!("calendars_dir = \"{}\"", cal.display()),
        ),
        (
            "areas = \"./config/areas.csv\"",
            format!("areas = \"{}\"", repo().join("config/areas.csv").display()),
        ),
    ];
    for (from, to) in rewrites {
        assert!(
            text.contains(from),
            "the shipped config no longer has {from}"
        );
        text = text.replacen(from, &to, 1);
    }
    // The test admin that reads the ACD's figures.
    text.push_str(&super::ops_user());
    text
}

/// sip-tester's RFC 4733 pcap for `key` (start, updates 20 ms apart, three
/// end packets with one timestamp), written to `dir` with its three end
/// packets 20 ms apart as phones send them (RFC 4733 §2.5.1.4: "at the
/// interval used by the source for updates"); the package's copy sends
/// them 40 µs apart, which hides every hand-over that happens between them.
pub fn phone_like_key_pcap(key: char, dir: &Path) -> PathBuf {
    let src = format!("/usr/share/sip-tester/dtmf_2833_{key}.pcap");
    let mut bytes = std::fs::read(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "{src}: a little-endian pcap"
    );
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    // Record headers: ts_sec, ts_usec, incl_len, orig_len; Ethernet + IPv4
    // (IHL 5) + UDP = 42 bytes, then RTP (12) and the event (E bit: 0x80).
    let (mut at, mut first_end) = (24usize, None::<u64>);
    let mut ends = 0u64;
    while at + 16 <= bytes.len() {
        let len = le(&bytes[at + 8..]) as usize;
        let frame = at + 16;
        let end_bit = bytes
            .get(frame + 42 + 12 + 1)
            .is_some_and(|b| b & 0x80 != 0);
        if end_bit {
            let t = u64::from(le(&bytes[at..])) * 1_000_000 + u64::from(le(&bytes[at + 4..]));
            let t = *first_end.get_or_insert(t) + 20_000 * ends;
            ends += 1;
            bytes[at..at + 4].copy_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        }
        at = frame + len;
    }
    assert_eq!(ends, 3, "{src}: three end packets");
    let out = dir.join(format!("key_{key}.pcap"));
    std::fs::write(&out, bytes).expect("pcap");
    out
}
