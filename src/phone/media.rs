//! The phone's media: 20 ms G.711 RTP out (from a WAV, a tone or silence),
//! RTP in (counted, measured, optionally recorded to WAV).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::PhoneError;
use crate::media::codec::{Codec, G711};
use crate::media::ports::PortPair;
use crate::media::sdp::{AudioCodec, Negotiated};

/// What the phone sends.
#[derive(Debug, Clone, Default)]
pub enum Audio {
    /// Nothing at all (no RTP).
    None,
    /// Digital silence, 20 ms packets.
    #[default]
    Silence,
    /// A sine tone at this frequency (Hz), amplitude about −10 dBFS.
    Tone(f32),
    /// A WAV file (any rate, 8/16-bit, mono or stereo), looped.
    Wav(PathBuf),
}

/// RTP counters and levels of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaStats {
    /// Packets sent.
    pub rtp_sent: u64,
    /// Audio packets received.
    pub rtp_received: u64,
    /// RFC 4733 event packets received.
    pub events_received: u64,
    /// RMS of the received audio (16-bit scale).
    pub received_rms: f64,
    /// Seconds of audio received.
    pub received_secs: f64,
}

const SAMPLES_PER_PACKET: usize = 160;
/// Longest recording kept in memory (10 minutes at 8 kHz).
const MAX_RECORD_SAMPLES: usize = 8000 * 600;

struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    events: AtomicU64,
    sum_squares: Mutex<f64>,
    heard: Mutex<Vec<i16>>,
}

pub(super) struct Session {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    pub fn start(
        pair: PortPair,
        neg: Negotiated,
        script: &super::Script,
    ) -> Result<Self, PhoneError> {
        let law = match neg.codec {
            AudioCodec::Pcma => G711::Alaw,
            AudioCodec::Pcmu => G711::Ulaw,
        };
        let source = load(&script.audio)?;
        let shared = Arc::new(Shared {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            events: AtomicU64::new(0),
            sum_squares: Mutex::new(0.0),
            heard: Mutex::new(Vec::new()),
        });
        let socket = Arc::new(pair);
        let mut tasks = Vec::new();
        if let Some(samples) = source {
            let (s, sock) = (shared.clone(), socket.clone());
            let pt = neg.payload_type;
            let remote = neg.remote;
            tasks.push(tokio::spawn(async move {
                let ssrc: u32 = rand::random();
                let mut seq: u16 = rand::random();
                let mut ts: u32 = rand::random();
                let mut pos = 0usize;
                let mut packet = Vec::with_capacity(12 + SAMPLES_PER_PACKET);
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut first = true;
                loop {
                    tick.tick().await;
                    packet.clear();
                    packet.extend_from_slice(&[0x80, pt | if first { 0x80 } else { 0 }]);
                    packet.extend_from_slice(&seq.to_be_bytes());
                    packet.extend_from_slice(&ts.to_be_bytes());
                    packet.extend_from_slice(&ssrc.to_be_bytes());
                    let frame: Vec<i16> = (0..SAMPLES_PER_PACKET)
                        .map(|i| samples[(pos + i) % samples.len()])
                        .collect();
                    pos = (pos + SAMPLES_PER_PACKET) % samples.len();
                    law.encode(&frame, &mut packet);
                    if sock.rtp.send_to(&packet, remote).await.is_ok() {
                        s.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    first = false;
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(SAMPLES_PER_PACKET as u32);
                }
            }));
        }
        let (s, sock) = (shared.clone(), socket);
        let event_pt = neg.telephone_event;
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            let mut pcm = Vec::with_capacity(SAMPLES_PER_PACKET);
            loop {
                let Ok((n, _)) = sock.rtp.recv_from(&mut buf).await else {
                    continue;
                };
                let Some((pt, payload)) = rtp_payload(&buf[..n]) else {
                    continue;
                };
                if Some(pt) == event_pt {
                    s.events.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(law) = G711::from_payload_type(pt) else {
                    continue;
                };
                pcm.clear();
                law.decode(payload, &mut pcm);
                s.received.fetch_add(1, Ordering::Relaxed);
                let energy: f64 = pcm.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
                if let Ok(mut sum) = s.sum_squares.lock() {
                    *sum += energy;
                }
                if let Ok(mut heard) = s.heard.lock() {
                    if heard.len() + pcm.len() <= MAX_RECORD_SAMPLES {
                        heard.extend_from_slice(&pcm);
                    }
                }
            }
        }));
        Ok(Self { shared, tasks })
    }

    /// Stop sending and receiving; write the recording; return the stats.
    pub async fn stop(self, record: Option<&Path>) -> Result<MediaStats, PhoneError> {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            t.await.ok();
        }
        let s = &self.shared;
        let heard = s.heard.lock().map(|h| h.clone()).unwrap_or_default();
        let sum = s.sum_squares.lock().map(|v| *v).unwrap_or(0.0);
        if let Some(path) = record {
            write_wav(path, &heard)?;
        }
        let n = heard.len().max(1) as f64;
        Ok(MediaStats {
            rtp_sent: s.sent.load(Ordering::Relaxed),
            rtp_received: s.received.load(Ordering::Relaxed),
            events_received: s.events.load(Ordering::Relaxed),
            received_rms: (sum / n).sqrt(),
            received_secs: heard.len() as f64 / 8000.0,
        })
    }
}

/// Payload type and payload of an RTP packet (RFC 3550 §5.1), or None.
fn rtp_payload(p: &[u8]) -> Option<(u8, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(p[0] & 0x0f) * 4;
    let mut start = 12 + csrc;
    if p[0] & 0x10 != 0 {
        let ext = p.get(start + 2..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*p.last()?))?;
    }
    Some((p[1] & 0x7f, p.get(start..end)?))
}

/// The 8 kHz mono samples to send, or None for no RTP at all.
fn load(audio: &Audio) -> Result<Option<Vec<i16>>, PhoneError> {
    Ok(match audio {
        Audio::None => None,
        Audio::Silence => Some(vec![0; SAMPLES_PER_PACKET]),
        Audio::Tone(hz) => {
            let n = 8000;
            Some(
                (0..n)
                    .map(|i| {
                        ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 10_000.0) as i16
                    })
                    .collect(),
            )
        }
        Audio::Wav(path) => Some(read_wav_8k(path)?),
    })
}

/// Read a WAV as 8 kHz mono 16-bit (channels averaged, linear resampling).
pub fn read_wav_8k(path: &Path) -> Result<Vec<i16>, PhoneError> {
    let err = |reason: String| PhoneError::Audio {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let raw: Vec<i32> = match spec.sample_format {
        hound::SampleFormat::Int => reader
            .samples::<i32>()
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?,
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v * 32767.0) as i32))
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?,
    };
    let shift = i32::from(spec.bits_per_sample).saturating_sub(16);
    let mono: Vec<f32> = raw
        .chunks(channels)
        .map(|frame| {
            let sum: i64 = frame
                .iter()
                .map(|&s| i64::from(if shift > 0 { s >> shift } else { s << -shift }))
                .sum();
            sum as f32 / frame.len() as f32
        })
        .collect();
    if mono.is_empty() {
        return Err(err("no samples".into()));
    }
    let ratio = spec.sample_rate as f32 / 8000.0;
    let out_len = ((mono.len() as f32) / ratio) as usize;
    Ok((0..out_len.max(1))
        .map(|i| {
            let x = i as f32 * ratio;
            let j = x as usize;
            let frac = x - j as f32;
            let a = mono[j.min(mono.len() - 1)];
            let b = mono[(j + 1).min(mono.len() - 1)];
            (a + (b - a) * frac).clamp(-32768.0, 32767.0) as i16
        })
        .collect())
}

fn write_wav(path: &Path, samples: &[i16]) -> Result<(), PhoneError> {
    let err = |reason: String| PhoneError::Audio {
        path: path.to_path_buf(),
        reason,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| err(e.to_string()))?;
    for &s in samples {
        w.write_sample(s).map_err(|e| err(e.to_string()))?;
    }
    w.finalize().map_err(|e| err(e.to_string()))
}
