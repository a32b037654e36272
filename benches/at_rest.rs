//! The cost of encrypting recordings at rest (issue 14 §6): sealing and
//! opening the WAV of a 10-minute call (8 kHz 16-bit stereo, 19.2 MB) in
//! memory, and serving one range (the last chunk authenticated on open,
//! one 64 KiB chunk decrypted). Run optimised without a release build of
//! all of hotline: `bench/at_rest/run.sh` (builds only the at-rest module
//! in release mode); `cargo bench --bench at_rest` measures the same.

use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::media::at_rest::{seal_stream, SealedFile, SealingKey, DEFAULT_CHUNK_LOG2};

/// A 10-minute call's WAV: 44-byte header and 600 s of stereo tones.
fn call_wav() -> Vec<u8> {
    let frames = 8000 * 600;
    let mut wav = Vec::with_capacity(44 + frames * 4);
    wav.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
    wav.resize(44, 0);
    for i in 0..frames {
        let t = i as f32 / 8000.0;
        let l = ((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16;
        let r = ((t * 600.0 * std::f32::consts::TAU).sin() * 8000.0) as i16;
        wav.extend_from_slice(&l.to_le_bytes());
        wav.extend_from_slice(&r.to_le_bytes());
    }
    wav
}

fn at_rest(c: &mut Criterion) {
    let key = SealingKey::from_bytes([0x42; 32]);
    let wav = call_wav();
    let name = Path::new("bench.wav");
    let mut sealed = Vec::with_capacity(wav.len() + 8192);
    seal_stream(&key, DEFAULT_CHUNK_LOG2, &wav[..], &mut sealed, name).expect("seal");

    let mut g = c.benchmark_group("at_rest_10min_call");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(wav.len() as u64));
    g.bench_function("seal_wav", |b| {
        let mut out = Vec::with_capacity(sealed.len());
        b.iter(|| {
            out.clear();
            seal_stream(
                &key,
                DEFAULT_CHUNK_LOG2,
                black_box(&wav[..]),
                &mut out,
                name,
            )
            .expect("seal")
        })
    });
    g.bench_function("open_and_read_whole", |b| {
        b.iter(|| {
            let mut f = SealedFile::new(Cursor::new(&sealed[..]), sealed.len() as u64, name, &key)
                .expect("open");
            let mut sum = 0u64;
            let len = f.plain_len();
            f.for_range(0, len, |p| {
                sum += p.len() as u64;
                Ok(())
            })
            .expect("read");
            sum
        })
    });
    g.finish();

    let mut g = c.benchmark_group("at_rest_range");
    g.throughput(Throughput::Elements(1));
    g.bench_function("open_and_read_4k_in_the_middle", |b| {
        b.iter(|| {
            let mut f = SealedFile::new(Cursor::new(&sealed[..]), sealed.len() as u64, name, &key)
                .expect("open");
            let mut n = 0usize;
            f.for_range(black_box(9_600_000), 4096, |p| {
                n += p.len();
                Ok(())
            })
            .expect("read");
            n
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = at_rest
}
criterion_main!(benches);
