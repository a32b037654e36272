//! The phone's media: 20 ms G.711 RTP out (from a WAV, a tone or silence),
//! RTP in (counted, measured, optionally recorded to WAV).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::PhoneError;
use crate::media::codec::{Codec, G711};
use crate::media::dtmf::{rfc4733_packets, DtmfKey, Rfc4733Receiver};
use crate::media::ports::PortPair;
use crate::media::rtp::{write_rtp, RtpFields, RtpHeader};
use crate::media::sdp::{AudioCodec, Negotiated};

/// How the phone sends key presses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 events (audio paused while a key is held).
    #[default]
    Rfc4733,
    /// Tones in the audio.
    InBand,
    /// Both at once (as some gateways do).
    Both,
}

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
    /// Keys decoded from received RFC 4733 events, in order.
    pub dtmf_received: String,
    /// Distinct SSRCs the audio came from (1 = one continuous stream).
    pub ssrcs_seen: usize,
    /// Audio packets whose sequence number did not follow the previous one.
    pub sequence_breaks: u64,
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
    keys: Mutex<String>,
    ssrcs: Mutex<Vec<u32>>,
    breaks: AtomicU64,
}

pub(super) struct Session {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One scheduled RFC 4733 packet: when (since media start), marker,
/// timestamp, payload.
type EventSlot = (Duration, bool, u32, [u8; 4]);

/// RFC 4733 packets for `keys`, the first pressed `at` after media start,
/// each held 100 ms with 100 ms between presses. `ts0` is the stream's first
/// RTP timestamp (8 kHz).
fn schedule_keys(keys: &str, at: Duration, ts0: u32) -> VecDeque<EventSlot> {
    let mut out = VecDeque::new();
    for (start, end, key) in press_windows(keys, at) {
        let ts = ts0.wrapping_add((start.as_millis() as u32).wrapping_mul(8));
        for p in rfc4733_packets(key, ts, end - start, 10, 8000) {
            out.push_back((start + p.offset, p.marker, p.timestamp, p.event.to_bytes()));
        }
    }
    out
}

/// When each key is held: `(start, end, key)` since media start; 100 ms
/// presses, 160 ms apart.
fn press_windows(keys: &str, at: Duration) -> Vec<(Duration, Duration, DtmfKey)> {
    let press = Duration::from_millis(100);
    let mut start = at;
    let mut out = Vec::new();
    for key in keys.chars().filter_map(DtmfKey::from_char) {
        out.push((start, start + press, key));
        start += press + Duration::from_millis(160);
    }
    out
}

/// 20 ms of a key's two tones (ITU-T Q.23), about −10 dBm0 each, at
/// absolute sample position `pos` so the phase runs on across frames.
fn dtmf_tone(key: DtmfKey, pos: usize) -> Vec<i16> {
    let (low, high) = key.frequencies();
    (0..SAMPLES_PER_PACKET)
        .map(|i| {
            let t = (pos + i) as f32 / 8000.0;
            let v = (t * low as f32 * std::f32::consts::TAU).sin()
                + (t * high as f32 * std::f32::consts::TAU).sin();
            (v * 5000.0) as i16
        })
        .collect()
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
            keys: Mutex::new(String::new()),
            ssrcs: Mutex::new(Vec::new()),
            breaks: AtomicU64::new(0),
        });
        let socket = Arc::new(pair);
        let mut tasks = Vec::new();
        let event_pt = neg.telephone_event;
        let dtmf = script.dtmf.clone();
        let mode = script.dtmf_mode;
        if source.is_some() || !dtmf.is_empty() {
            let samples = source.unwrap_or_else(|| vec![0; SAMPLES_PER_PACKET]);
            let send_audio = !matches!(script.audio, Audio::None);
            let (s, sock) = (shared.clone(), socket.clone());
            let pt = neg.payload_type;
            let remote = neg.remote;
            tasks.push(tokio::spawn(async move {
                let ssrc: u32 = rand::random();
                let mut seq: u16 = rand::random();
                let ts0: u32 = rand::random();
                let mut ts = ts0;
                let mut events: VecDeque<EventSlot> = match event_pt {
                    Some(_) if mode != DtmfMode::InBand => {
                        let mut all: Vec<EventSlot> = dtmf
                            .iter()
                            .flat_map(|(at, keys)| schedule_keys(keys, *at, ts0))
                            .collect();
                        all.sort_by_key(|e| e.0);
                        all.into()
                    }
                    _ => VecDeque::new(),
                };
                let windows: Vec<_> = match mode {
                    DtmfMode::InBand | DtmfMode::Both => dtmf
                        .iter()
                        .flat_map(|(at, keys)| press_windows(keys, *at))
                        .collect(),
                    DtmfMode::Rfc4733 => Vec::new(),
                };
                let mut pos = 0usize;
                let mut packet = [0u8; 12 + SAMPLES_PER_PACKET];
                let mut payload = Vec::with_capacity(SAMPLES_PER_PACKET);
                let started = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                let mut first = true;
                loop {
                    tick.tick().await;
                    let elapsed = started.elapsed();
                    let mut sending_event = false;
                    while let Some(&(when, marker, ev_ts, body)) = events.front() {
                        if when > elapsed {
                            // A key is being held until its last packet.
                            sending_event =
                                when.saturating_sub(elapsed) < Duration::from_millis(60);
                            break;
                        }
                        events.pop_front();
                        sending_event = true;
                        let fields = RtpFields {
                            marker,
                            payload_type: event_pt.unwrap_or(101),
                            sequence: seq,
                            timestamp: ev_ts,
                            ssrc,
                        };
                        if let Ok(n) = write_rtp(&mut packet, &fields, &body) {
                            if sock.send_rtp(&packet[..n], remote).is_ok() {
                                s.sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        seq = seq.wrapping_add(1);
                    }
                    let pressed = windows
                        .iter()
                        .find(|(from, to, _)| elapsed >= *from && elapsed < *to)
                        .map(|(_, _, k)| *k);
                    if pressed.is_some() || (send_audio && !sending_event) {
                        payload.clear();
                        let frame: Vec<i16> = match pressed {
                            Some(key) => dtmf_tone(key, (elapsed.as_millis() as usize) * 8),
                            None => (0..SAMPLES_PER_PACKET)
                                .map(|i| samples[(pos + i) % samples.len()])
                                .collect(),
                        };
                        pos = (pos + SAMPLES_PER_PACKET) % samples.len();
                        law.encode(&frame, &mut payload);
                        let fields = RtpFields {
                            marker: first,
                            payload_type: pt,
                            sequence: seq,
                            timestamp: ts,
                            ssrc,
                        };
                        if let Ok(n) = write_rtp(&mut packet, &fields, &payload) {
                            if sock.send_rtp(&packet[..n], remote).is_ok() {
                                s.sent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        first = false;
                        seq = seq.wrapping_add(1);
                    }
                    ts = ts.wrapping_add(SAMPLES_PER_PACKET as u32);
                }
            }));
        }
        let (s, sock) = (shared.clone(), socket);
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            let mut pcm = Vec::with_capacity(SAMPLES_PER_PACKET);
            let mut keys = Rfc4733Receiver::new(8000);
            let started = tokio::time::Instant::now();
            let mut last_seq: Option<u16> = None;
            let io = match sock.attach() {
                Ok(io) => io,
                Err(e) => {
                    tracing::error!(error = %e, "the phone cannot read its RTP port");
                    return;
                }
            };
            loop {
                let Ok((n, _)) = io.recv_rtp(&mut buf).await else {
                    continue;
                };
                let Ok(rtp) = RtpHeader::parse(&buf[..n]) else {
                    continue;
                };
                if Some(rtp.payload_type) == event_pt {
                    s.events.fetch_add(1, Ordering::Relaxed);
                    if let Ok(digits) =
                        keys.on_packet(started.elapsed(), rtp.timestamp, rtp.marker, rtp.payload)
                    {
                        if let Ok(mut heard) = s.keys.lock() {
                            heard.extend(digits.iter().map(|d| d.key.to_char()));
                        }
                    }
                    continue;
                }
                let Some(law) = G711::from_payload_type(rtp.payload_type) else {
                    continue;
                };
                if let Ok(mut seen) = s.ssrcs.lock() {
                    if !seen.contains(&rtp.ssrc) {
                        seen.push(rtp.ssrc);
                    }
                }
                if last_seq.is_some_and(|l| l.wrapping_add(1) != rtp.sequence) {
                    s.breaks.fetch_add(1, Ordering::Relaxed);
                }
                last_seq = Some(rtp.sequence);
                pcm.clear();
                law.decode(rtp.payload, &mut pcm);
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
            dtmf_received: s.keys.lock().map(|k| k.clone()).unwrap_or_default(),
            ssrcs_seen: s.ssrcs.lock().map(|v| v.len()).unwrap_or(0),
            sequence_breaks: s.breaks.load(Ordering::Relaxed),
            received_rms: (sum / n).sqrt(),
            received_secs: heard.len() as f64 / 8000.0,
        })
    }
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
