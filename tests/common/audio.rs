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
