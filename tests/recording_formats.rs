//! Recording formats (issue 16 item 3) as users meet them: a real call
//! through the switch recorded with `[recording] format = "alaw"` or
//! `"opus"`, the file on disk (an A-law WAV, an Ogg Opus stream, sealed
//! at rest when a key is set), the record describing it, the recordings
//! API serving it with its media type, whole and by ranges, and decoding
//! to the call (caller 440 Hz left, agent 600 Hz right); and a `kill -9`
//! mid-call per format, after which the next start repairs the file and
//! the cut-off call's record links it.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::api::Api;
use common::audio::windows_with;
use common::recorded::{get, header, keygen, one_call, recorded_call};
use common::{Hotline, Net};
use serde_json::Value;
use sha2::{Digest, Sha256};

const USERS: &str = r#"
[[user]]
username = "sup"
role = "supervisor"
password = "sup-password-1"
"#;

fn extra(format: &str, key: Option<&Path>) -> String {
    let key = key
        .map(|k| format!("encryption_key_file = \"{}\"\n", k.display()))
        .unwrap_or_default();
    format!("{USERS}\n[recording]\nformat = \"{format}\"\n{key}")
}

/// The interleaved 8 kHz stereo samples of an A-law WAV, decoded by
/// symphonia.
fn decode_alaw(bytes: &[u8]) -> Vec<i16> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::DecoderOptions;
    use symphonia::core::io::MediaSourceStream;
    let cursor = std::io::Cursor::new(bytes.to_vec());
    let mss = MediaSourceStream::new(Box::new(cursor), Default::default());
    let mut hint = symphonia::core::probe::Hint::new();
    hint.with_extension("wav");
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &Default::default(), &Default::default())
        .expect("symphonia reads the A-law WAV");
    let mut format = probed.format;
    let params = format.default_track().expect("track").codec_params.clone();
    assert_eq!(params.sample_rate, Some(8000));
    assert_eq!(params.channels.map(|c| c.count()), Some(2));
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .expect("A-law decoder");
    let mut out = Vec::new();
    while let Ok(packet) = format.next_packet() {
        let decoded = decoder.decode(&packet).expect("decode");
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        out.extend_from_slice(buf.samples());
    }
    out
}

/// The interleaved 8 kHz stereo samples of an Ogg Opus file (RFC 7845
/// pre-skip and end-trim applied) and whether it ends with an EOS page.
fn decode_opus(bytes: &[u8]) -> (Vec<i16>, bool) {
    let mut reader = opus_pure::OggOpusReader::new(bytes).expect("an Ogg Opus stream");
    let head = reader.head().clone();
    assert_eq!(head.channel_count, 2);
    let mut decoder = opus_pure::OpusDecoder::new(8000, 2).expect("decoder");
    let mut trim = opus_pure::Trim::new(&head, 8000, 2).expect("trim");
    let mut pcm = vec![0i16; 960 * 2];
    let (mut out, mut ended) = (Vec::new(), false);
    while let Some(packet) = reader.read_packet().expect("a whole packet") {
        ended |= packet.end_of_stream;
        if packet.data.is_empty() {
            continue;
        }
        let n = decoder
            .decode_s16(&packet.data, 960, &mut pcm)
            .expect("decodes");
        out.extend_from_slice(trim.keep(&packet, &pcm[..n * 2]));
    }
    (out, ended)
}

fn assert_is_the_call(samples: &[i16], min_secs: usize) {
    let caller: Vec<i16> = samples.chunks_exact(2).map(|f| f[0]).collect();
    let agent: Vec<i16> = samples.chunks_exact(2).map(|f| f[1]).collect();
    assert!(caller.len() >= 8000 * min_secs, "{} frames", caller.len());
    // Windows of one second or more of each tone.
    assert!(windows_with(&caller, 440.0, 0.5) > 50, "the caller's tone");
    assert!(windows_with(&agent, 600.0, 0.5) > 50, "the agent's tone");
}

/// Downloads recording `id` whole and by a range; checks the record's
/// bytes and SHA-256 and the media type; returns the body.
fn download(api: &Api, sup: &str, rec: &Value, content_type: &str) -> Vec<u8> {
    let id = rec["id"].as_str().expect("recording id");
    let path = format!("/api/v1/recordings/{id}");
    let whole = get(api, &path, Some(sup), None);
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert_eq!(header(&whole, "content-type"), content_type);
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    let len = whole.body.len();
    assert_eq!(rec["bytes"], len as u64, "{rec}");
    assert_eq!(rec["sha256"], hex::encode(Sha256::digest(&whole.body)));
    let part = get(api, &path, Some(sup), Some("bytes=100-1099"));
    assert_eq!(part.status, 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 100-1099/{len}")
    );
    assert_eq!(part.body, whole.body[100..1100]);
    // The id with its file's extension names the same file.
    let named = rec["path"].as_str().expect("path");
    let again = get(api, &format!("/api/v1/recordings/{named}"), Some(sup), None);
    assert_eq!(again.status, 200, "{named}");
    assert_eq!(again.body, whole.body);
    whole.body
}

#[test]
fn an_alaw_call_is_a_g711_wav_of_half_the_bytes_served_as_audio_wav() {
    let net = Net(235);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(net, &dir.path().join("var"), &extra("alaw", None));
    let h = Hotline::start_with(net, dir, &text);
    one_call(&h, "6");
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let record = recorded_call(&api, &sup);
    let rec = &record["recording"];

    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    let on_disk = std::fs::read(&files[0]).expect("read");
    assert_eq!(&on_disk[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([on_disk[20], on_disk[21]]), 6, "A-law");
    assert_eq!(u16::from_le_bytes([on_disk[34], on_disk[35]]), 8, "8 bits");
    // Half of PCM16: 2 bytes a stereo frame, 16,000 bytes a second.
    let ms = rec["duration_ms"].as_u64().expect("duration");
    let data = on_disk.len() as u64 - 46;
    assert_eq!(data % 2, 0, "whole frames");
    assert_eq!(data / 2 * 1000 / 8000, ms, "{rec}");

    let body = download(&api, &sup, rec, "audio/wav");
    assert_eq!(body, on_disk);
    assert_is_the_call(&decode_alaw(&body), 3);
}

#[test]
fn an_opus_call_sealed_at_rest_is_an_ogg_opus_stream_served_as_audio_ogg() {
    let net = Net(236);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("recording.key");
    keygen(&key);
    let text = common::config(net, &dir.path().join("var"), &extra("opus", Some(&key)));
    let h = Hotline::start_with(net, dir, &text);
    one_call(&h, "6");
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let record = recorded_call(&api, &sup);
    let rec = &record["recording"];
    assert!(
        rec["path"].as_str().is_some_and(|p| p.ends_with(".opus")),
        "{rec}"
    );

    assert!(h.data_files(".wav").is_empty());
    let files = h.data_files(".opus");
    assert_eq!(files.len(), 1, "{files:?}");
    let on_disk = std::fs::read(&files[0]).expect("read");
    assert_eq!(&on_disk[..8], b"HLSEALED", "sealed at rest");

    let body = download(&api, &sup, rec, "audio/ogg");
    assert_eq!(&body[..4], b"OggS");
    let ms = rec["duration_ms"].as_u64().expect("duration");
    assert!(ms >= 5000, "{rec}");
    // About 24 kbit/s: a tenth of PCM16's 32,000 bytes a second.
    let per_sec = body.len() as u64 * 1000 / ms;
    assert!(per_sec < 4_500, "{per_sec} bytes a second");
    let (samples, ended) = decode_opus(&body);
    assert!(ended, "ends with an end-of-stream page");
    assert_eq!(samples.len() as u64 / 2 * 1000 / 8000, ms, "{rec}");
    assert_is_the_call(&samples, 3);
}

/// A call recorded in `format`, the switch killed with `kill -9` mid-call,
/// then started again: the file is repaired, linked from the record and
/// decodes to the call.
fn kill_9_mid_call(net: Net, format: &str, ext: &str) -> (Hotline, Vec<i16>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::config(net, &dir.path().join("var"), &extra(format, None));
    let mut h = Hotline::start_with(net, dir, &text);
    let mut phone = common::start_phone(&h, 0, "1001", &["--tone", "600", "--answer-after", "0.2"]);
    let mut caller = common::dial(net, "12345", &["--tone", "440", "--hangup-after", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dial");
    h.wait_for("the call to be up", Duration::from_secs(10), |v| {
        v["calls"]["active"] == 1
    });
    std::thread::sleep(Duration::from_millis(4500));
    let part = format!(".{ext}.part");
    assert_eq!(h.data_files(&part).len(), 1, "a recording in progress");
    h.kill9();
    caller.kill().ok();
    phone.kill().ok();
    caller.wait().ok();
    phone.wait().ok();

    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    assert!(h.data_files(&part).is_empty(), "repaired at start");
    let files = h.data_files(&format!(".{ext}"));
    assert_eq!(files.len(), 1, "{files:?}");
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let record = recorded_call(&api, &sup);
    let rec = &record["recording"];
    let content_type = if ext == "opus" {
        "audio/ogg"
    } else {
        "audio/wav"
    };
    let body = download(&api, &sup, rec, content_type);
    assert_eq!(body, std::fs::read(&files[0]).expect("read"));
    let samples = if ext == "opus" {
        let (samples, ended) = decode_opus(&body);
        assert!(ended, "the repair marked the last page end-of-stream");
        samples
    } else {
        decode_alaw(&body)
    };
    let ms = rec["duration_ms"].as_u64().expect("duration");
    assert_eq!(samples.len() as u64 / 2 * 1000 / 8000, ms, "{rec}");
    (h, samples)
}

#[test]
fn kill_9_mid_call_leaves_an_alaw_recording_the_next_start_repairs() {
    let (_h, samples) = kill_9_mid_call(Net(237), "alaw", "wav");
    assert_is_the_call(&samples, 3);
}

#[test]
fn kill_9_mid_call_leaves_an_opus_recording_the_next_start_repairs() {
    let (_h, samples) = kill_9_mid_call(Net(238), "opus", "opus");
    assert_is_the_call(&samples, 3);
}
