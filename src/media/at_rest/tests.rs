//! The sealed format: round trips at every chunk boundary, random access,
//! and every kind of damage refused with a clear error.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use super::*;

const SMALL: u8 = 10; // 1 KiB chunks: many boundaries in little data
const C: usize = 1 << SMALL;

fn key(b: u8) -> SealingKey {
    SealingKey::from_bytes([b; 32])
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

fn seal(k: &SealingKey, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let s = seal_stream(k, SMALL, plain, &mut out, Path::new("t")).expect("seal");
    assert_eq!(s.plain_bytes, plain.len() as u64);
    out
}

fn open(k: &SealingKey, sealed: &[u8]) -> Result<SealedFile<Cursor<Vec<u8>>>, SealError> {
    SealedFile::new(
        Cursor::new(sealed.to_vec()),
        sealed.len() as u64,
        Path::new("rec.wav"),
        k,
    )
}

fn read_all(k: &SealingKey, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut f = open(k, sealed)?;
    let mut out = Vec::new();
    let n = f.plain_len();
    f.for_range(0, n, |p| {
        out.extend_from_slice(p);
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn round_trip_at_every_chunk_boundary() {
    let k = key(1);
    for n in [
        0,
        1,
        C - 1,
        C,
        C + 1,
        2 * C - 1,
        2 * C,
        2 * C + 1,
        5 * C + 333,
    ] {
        let plain = data(n);
        let sealed = seal(&k, &plain);
        assert_eq!(sealed.len() as u64, sealed_len(n as u64, C as u64), "n={n}");
        assert!(is_sealed(&sealed));
        let f = open(&k, &sealed).expect("open");
        assert_eq!(f.plain_len(), n as u64);
        assert_eq!(read_all(&k, &sealed).expect("read"), plain, "n={n}");
        // Through Read, in odd-sized reads.
        let mut f = open(&k, &sealed).expect("open");
        let mut via_read = Vec::new();
        let mut buf = [0u8; 300];
        loop {
            let got = f.read(&mut buf).expect("read");
            if got == 0 {
                break;
            }
            via_read.extend_from_slice(&buf[..got]);
        }
        assert_eq!(via_read, plain, "n={n} via Read");
    }
}

#[test]
fn the_ciphertext_hides_the_plaintext_and_differs_every_time() {
    let k = key(1);
    let plain = b"RIFF....WAVEfmt ".repeat(200);
    let a = seal(&k, &plain);
    let b = seal(&k, &plain);
    assert_ne!(a, b, "fresh salt and nonce prefix per file");
    assert!(!a.windows(8).any(|w| w == b"WAVEfmt "));
}

#[test]
fn any_range_reads_only_what_it_covers_and_matches_the_plaintext() {
    let k = key(2);
    let plain = data(4 * C + 100);
    let sealed = seal(&k, &plain);
    let mut f = open(&k, &sealed).expect("open");
    let len = plain.len() as u64;
    for (start, count) in [
        (0, 1),
        (C as u64 - 1, 2),
        (C as u64, C as u64),
        (3 * C as u64 + 5, 2 * C as u64),
        (len - 1, 1),
        (len - 100, 500),
        (17, len),
    ] {
        let mut got = Vec::new();
        f.for_range(start, count, |p| {
            assert!(p.len() <= C);
            got.extend_from_slice(p);
            Ok(())
        })
        .expect("range");
        let end = (start + count).min(len) as usize;
        assert_eq!(got, plain[start as usize..end], "{start}+{count}");
    }
    // Seek + Read land on the same bytes.
    f.seek(SeekFrom::Start(2 * C as u64 - 3)).expect("seek");
    let mut six = [0u8; 6];
    f.read_exact(&mut six).expect("read across a boundary");
    assert_eq!(six, plain[2 * C - 3..2 * C + 3]);
    f.seek(SeekFrom::End(-4)).expect("seek end");
    let mut four = [0u8; 4];
    f.read_exact(&mut four).expect("read tail");
    assert_eq!(four, plain[plain.len() - 4..]);
}

#[test]
fn a_middle_range_is_served_without_touching_damaged_far_chunks() {
    // Chunk 0 damaged: a range in chunk 2 still reads (only the chunks
    // needed are decrypted), the whole file does not.
    let k = key(3);
    let plain = data(4 * C);
    let mut sealed = seal(&k, &plain);
    sealed[HEADER_LEN + 10] ^= 1;
    let mut f = open(&k, &sealed).expect("the last chunk is intact");
    let mut got = Vec::new();
    f.for_range(2 * C as u64, 10, |p| {
        got.extend_from_slice(p);
        Ok(())
    })
    .expect("chunk 2 alone");
    assert_eq!(got, plain[2 * C..2 * C + 10]);
    let e = f.verify().expect_err("chunk 0 is damaged");
    assert!(matches!(e, SealError::Tampered { chunk: 0, .. }), "{e}");
}

#[test]
fn tampering_anywhere_is_detected() {
    let k = key(4);
    let plain = data(3 * C + 10);
    let sealed = seal(&k, &plain);
    // One flipped bit in the header, each chunk's body and each tag.
    let stride = C + TAG_LEN;
    let mut spots = vec![0usize, 9, 15, 30, 55];
    for i in 0..4 {
        spots.push(HEADER_LEN + i * stride + 1);
        spots.push((HEADER_LEN + i * stride + stride - 1).min(sealed.len() - 1));
    }
    for at in spots {
        let mut bad = sealed.clone();
        bad[at] ^= 0x20;
        let err = read_all(&k, &bad).expect_err("tampered");
        let text = err.to_string();
        assert!(text.contains("rec.wav"), "names the file: {text}");
        assert!(
            matches!(
                err,
                SealError::Tampered { .. }
                    | SealError::NotSealed { .. }
                    | SealError::BadHeader { .. }
                    | SealError::WrongKey { .. }
            ),
            "byte {at}: {text}"
        );
    }
}

#[test]
fn reordered_chunks_are_detected() {
    let k = key(5);
    let plain = data(3 * C + 10);
    let sealed = seal(&k, &plain);
    let stride = C + TAG_LEN;
    let mut swapped = sealed.clone();
    let (a, b) = (HEADER_LEN, HEADER_LEN + stride);
    let first = sealed[a..a + stride].to_vec();
    swapped[a..a + stride].copy_from_slice(&sealed[b..b + stride]);
    swapped[b..b + stride].copy_from_slice(&first);
    let err = read_all(&k, &swapped).expect_err("reordered");
    assert!(
        matches!(
            err,
            SealError::Tampered {
                chunk: 0,
                chunks: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("reordered"), "{err}");
}

#[test]
fn truncation_is_detected_with_a_clear_error() {
    let k = key(6);
    let plain = data(3 * C + 10);
    let sealed = seal(&k, &plain);
    let stride = C + TAG_LEN;
    // Cut at a chunk boundary: the chunk now last was not sealed as last.
    let cut = &sealed[..HEADER_LEN + 2 * stride];
    let err = open(&k, cut).expect_err("cut at a boundary");
    assert!(err.to_string().contains("cut short"), "{err}");
    assert!(matches!(
        err,
        SealError::Tampered {
            chunk: 1,
            chunks: 2,
            ..
        }
    ));
    // Cut inside a tag, inside a chunk, inside the header.
    for len in [HEADER_LEN + 2 * stride + 5, HEADER_LEN + stride + 100, 30] {
        let err = open(&k, &sealed[..len]).expect_err("cut");
        assert!(
            matches!(
                err,
                SealError::Truncated { .. }
                    | SealError::Tampered { .. }
                    | SealError::BadHeader { .. }
            ),
            "{len}: {err}"
        );
    }
    // Grown: a copy of the last chunk appended.
    let mut grown = sealed.clone();
    grown.extend_from_slice(&sealed[sealed.len() - 26..]);
    assert!(read_all(&k, &grown).is_err());
}

#[test]
fn the_wrong_key_is_named_as_such() {
    let sealed = seal(&key(7), &data(100));
    let err = read_all(&key(8), &sealed).expect_err("wrong key");
    assert!(matches!(err, SealError::WrongKey { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&key(7).fingerprint_hex()), "{text}");
    assert!(text.contains(&key(8).fingerprint_hex()), "{text}");
    // A forged header naming our key does not help.
    let mut forged = sealed.clone();
    forged[12..20].copy_from_slice(&key(8).fingerprint());
    let err = read_all(&key(8), &forged).expect_err("forged fingerprint");
    assert!(matches!(err, SealError::Tampered { .. }), "{err}");
}

#[test]
fn a_plain_wav_is_not_taken_for_a_sealed_file() {
    let err = open(&key(1), b"RIFF\x24\0\0\0WAVEfmt ").expect_err("plain");
    assert!(matches!(err, SealError::NotSealed { .. }), "{err}");
    assert!(err.to_string().contains("not an encrypted hotline file"));
}

#[test]
fn seal_file_replaces_in_one_step_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = key(9);
    let wav = dir.path().join("a.wav");
    let plain = data(200_000);
    std::fs::write(&wav, &plain).expect("write");
    let s = seal_file(&k, &wav, &wav).expect("seal in place");
    assert_eq!(s.plain_bytes, plain.len() as u64);
    assert!(!sealing_path(&wav).exists());
    assert!(file_is_sealed(&wav).expect("read"));
    let mut f = SealedFile::open(&wav, &k).expect("open");
    let mut back = Vec::new();
    f.read_to_end(&mut back).expect("read");
    assert_eq!(back, plain);
    use sha2::Digest;
    assert_eq!(s.plain_sha256, hex::encode(sha2::Sha256::digest(&plain)));
}
