//! Recordings encrypted at rest (issue 14 §6), attacked from outside: a
//! real call is recorded under a key made by `hotline keygen`; what lies
//! on disk is no WAV and holds none of the audio; the API (a real HTTP
//! client, with a token) hands back the exact WAV, whole and by ranges
//! across chunk boundaries, under the usual roles and centres; a crash
//! mid-call leaves plaintext only until the next start seals it; a wrong
//! key file stops the start, naming the file; a different key cannot read
//! the archive.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::api::Api;
use common::audio::{channel, windows_with};
use common::recorded::{get, header, keygen, one_call, recorded_call};
use common::{Hotline, Net};
use sha2::{Digest, Sha256};

const USERS: &str = r#"
[[tenant]]
id = "elsewhere"

[[user]]
username = "sup"
role = "supervisor"
password = "sup-password-1"

[[user]]
username = "sup-elsewhere"
role = "supervisor"
tenant = "elsewhere"
password = "sup-elsewhere-password"

[[user]]
username = "agent"
role = "agent"
agent_id = "A01"
password = "agent-password-1"
"#;

fn extra(key: &Path) -> String {
    format!(
        "{USERS}\n[recording]\nencryption_key_file = \"{}\"\n",
        key.display()
    )
}

/// Checks that `wav` (a downloaded recording) is the call: caller 440 Hz
/// left, agent 600 Hz right.
fn assert_is_the_call(dir: &Path, wav: &[u8]) {
    let path = dir.join("downloaded.wav");
    std::fs::write(&path, wav).expect("write");
    let caller = channel(&path, 0, 2);
    let agent = channel(&path, 1, 2);
    assert!(caller.len() >= 8000 * 3, "{} samples", caller.len());
    assert!(windows_with(&caller, 440.0, 0.5) > 100, "the caller's tone");
    assert!(windows_with(&agent, 600.0, 0.5) > 100, "the agent's tone");
}

#[test]
fn a_recorded_call_is_sealed_on_disk_and_downloads_as_the_exact_wav() {
    let net = Net(220);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("recording.key");
    let printed = keygen(&key);
    assert!(printed.contains("fingerprint"), "{printed}");
    let text = common::config(net, &dir.path().join("var"), &extra(&key));
    let h = Hotline::start_with(net, dir, &text);
    assert!(
        h.log()
            .contains("recordings and voicemails are encrypted at rest"),
        "{}",
        h.tail_log()
    );
    let secret = std::fs::read_to_string(&key).expect("key");
    assert!(!h.log().contains(secret.trim()), "the key is never logged");

    one_call(&h, "8");
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let record = recorded_call(&api, &sup);
    let rec = &record["recording"];
    let id = rec["id"].as_str().expect("recording id");

    // On disk: one sealed file, no WAV header, no plaintext left.
    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(h.data_files(".wav.part").is_empty());
    assert!(h.data_files(".sealing").is_empty());
    let on_disk = std::fs::read(&files[0]).expect("read");
    assert_eq!(&on_disk[..8], b"HLSEALED");
    // No WAV header in the clear (8 bytes: a 4-byte "RIFF" can turn up in
    // ciphertext by chance).
    assert!(!on_disk.windows(8).any(|w| w == b"WAVEfmt "));

    // The download: the exact WAV the record describes.
    let whole = get(&api, &format!("/api/v1/recordings/{id}"), Some(&sup), None);
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert_eq!(header(&whole, "content-type"), "audio/wav");
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    let len = whole.body.len();
    assert_eq!(header(&whole, "content-length"), len.to_string());
    assert_eq!(rec["bytes"], len as u64, "{rec}");
    assert_eq!(
        rec["sha256"],
        hex::encode(Sha256::digest(&whole.body)),
        "{rec}"
    );
    assert_eq!(&whole.body[..4], b"RIFF");
    assert!(len > 3 * 65536, "several chunks: {len} bytes");
    assert_is_the_call(h.dir.path(), &whole.body);
    // None of the audio is on disk in the clear.
    for at in [1000, 70_000, len / 2, len - 600] {
        let probe = &whole.body[at..at + 32];
        assert!(
            !on_disk.windows(32).any(|w| w == probe),
            "plaintext audio at {at} found on disk"
        );
    }

    // Offline, `hotline unseal` gives the same WAV; a damaged copy is
    // refused, naming the chunk, and leaves no partial output.
    let out = h.dir.path().join("unsealed.wav");
    let o = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["unseal", "--key"])
        .arg(&key)
        .arg("--out")
        .arg(&out)
        .arg(&files[0])
        .output()
        .expect("unseal");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).expect("read"), whole.body);
    let mut damaged = on_disk.clone();
    damaged[64 + 65_552 + 7] ^= 0x10; // inside chunk 1
    let copy = h.dir.path().join("damaged.wav");
    std::fs::write(&copy, &damaged).expect("write");
    let out2 = h.dir.path().join("unsealed2.wav");
    let o = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["unseal", "--key"])
        .arg(&key)
        .arg("--out")
        .arg(&out2)
        .arg(&copy)
        .output()
        .expect("unseal");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("chunk 1 of") && err.contains("damaged.wav"),
        "{err}"
    );
    assert!(!out2.exists(), "no partial plaintext left");

    // Ranges over plaintext offsets, across the 64 KiB chunk boundaries.
    let path = format!("/api/v1/recordings/{id}");
    for (range, start, end) in [
        ("bytes=0-43".to_string(), 0, 43),
        ("bytes=65530-131080".to_string(), 65530, 131080),
        (format!("bytes={}-", len - 100), len - 100, len - 1),
        ("bytes=-10".to_string(), len - 10, len - 1),
        (format!("bytes=131072-{}", len + 5000), 131072, len - 1),
    ] {
        let part = get(&api, &path, Some(&sup), Some(&range));
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(
            header(&part, "content-range"),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert_eq!(part.body, whole.body[start..=end], "{range}");
    }
    let past = get(&api, &path, Some(&sup), Some(&format!("bytes={len}-")));
    assert_eq!(past.status, 416);
    assert_eq!(header(&past, "content-range"), format!("bytes */{len}"));

    // The same rules as a plain recording: token, role, centre.
    assert_eq!(get(&api, &path, None, None).status, 401, "anonymous");
    let agent = api.login("agent", "agent-password-1");
    assert_eq!(get(&api, &path, Some(&agent), None).status, 403, "an agent");
    let other = api.login("sup-elsewhere", "sup-elsewhere-password");
    assert_eq!(
        get(&api, &path, Some(&other), None).status,
        404,
        "another centre"
    );
    let (_, audit) = api.get("/api/v1/admin/audit", &sup);
    let downloads = audit["audit"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["action"] == "recording.download")
                .count()
        })
        .unwrap_or(0);
    assert!(downloads >= 7, "every download audited: {audit}");
    assert!(
        !h.log().contains("cut off"),
        "no chunk failed: {}",
        h.tail_log()
    );
}

#[test]
fn a_crash_mid_call_leaves_plaintext_only_until_the_next_start_seals_it() {
    let net = Net(221);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("recording.key");
    keygen(&key);
    let text = common::config(net, &dir.path().join("var"), &extra(&key));
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
    assert_eq!(
        h.data_files(".wav.part").len(),
        1,
        "a recording in progress"
    );
    h.kill9();
    caller.kill().ok();
    phone.kill().ok();
    caller.wait().ok();
    phone.wait().ok();

    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    assert!(h.data_files(".wav.part").is_empty(), "no plaintext left");
    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    let on_disk = std::fs::read(&files[0]).expect("read");
    assert_eq!(&on_disk[..8], b"HLSEALED", "repaired, then sealed");

    // The record of the cut-off call links the sealed recording, and it
    // downloads as the call.
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let record = recorded_call(&api, &sup);
    let id = record["recording"]["id"].as_str().expect("id");
    let got = get(&api, &format!("/api/v1/recordings/{id}"), Some(&sup), None);
    assert_eq!(got.status, 200);
    assert_eq!(
        record["recording"]["sha256"],
        hex::encode(Sha256::digest(&got.body))
    );
    let secs = (got.body.len() - 44) as f64 / 32000.0;
    assert!(secs >= 2.5, "{secs:.1} s of the ~4.5 s call");
    assert_is_the_call(h.dir.path(), &got.body);
}

/// Runs `hotline serve` on `config`; it must exit (bounded: 20 s). Its
/// stderr.
fn refused_start(config: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut exited = false;
    for _ in 0..400 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "a wrong key must stop the start");
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !exited {
        child.kill().ok();
        child.wait().ok();
        panic!("hotline started with a wrong key file");
    }
    let mut err = String::new();
    use std::io::Read;
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err).ok();
    }
    err
}

#[test]
fn a_wrong_key_file_stops_the_start_naming_the_file() {
    let net = Net(222);
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "short.key",
            b"00112233445566778899aabbccddeeff\n",
            "32 characters",
        ),
        ("binary.key", &[0xa5; 32], "binary data"),
        ("missing.key", b"", "read"),
    ];
    for (name, body, why) in cases {
        let key: PathBuf = dir.path().join(name);
        if name != "missing.key" {
            std::fs::write(&key, body).expect("write");
        }
        let cfg = dir.path().join(format!("{name}.toml"));
        let text = common::config(net, &dir.path().join("var"), &extra(&key));
        std::fs::write(&cfg, text).expect("write");
        let err = refused_start(&cfg);
        assert!(err.contains(&key.display().to_string()), "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
        let check = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("check")
            .arg(&cfg)
            .output()
            .expect("check");
        assert!(!check.status.success(), "check refuses {name} too");
        assert!(String::from_utf8_lossy(&check.stderr).contains(&key.display().to_string()));
    }
    assert!(
        !dir.path().join("var").join("recordings").exists(),
        "nothing was started"
    );
    // keygen refuses to overwrite a key.
    let key = dir.path().join("short.key");
    let o = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["keygen", "--out"])
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must not exist"));
}

#[test]
fn another_key_cannot_read_the_archive() {
    let net = Net(223);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("recording.key");
    keygen(&key);
    let text = common::config(net, &dir.path().join("var"), &extra(&key));
    let mut h = Hotline::start_with(net, dir, &text);
    one_call(&h, "3");
    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    let id = recorded_call(&api, &sup)["recording"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    h.sigterm();
    h.wait_exit(Duration::from_secs(15));
    // The key file replaced by another key: the start succeeds (new calls
    // are sealed under it), old recordings are refused, not garbled.
    std::fs::remove_file(&key).expect("rm");
    keygen(&key);
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().expect("tempdir"));
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    let sup = api.login("sup", "sup-password-1");
    let got = get(&api, &format!("/api/v1/recordings/{id}"), Some(&sup), None);
    assert_eq!(got.status, 500, "{}", String::from_utf8_lossy(&got.body));
    assert!(!got.body.windows(4).any(|w| w == b"RIFF"));
    assert!(
        h.log().contains("encrypted under key"),
        "the log names the key mismatch: {}",
        h.tail_log()
    );
}

#[test]
fn a_voicemail_is_sealed_on_disk_and_downloads_as_the_exact_wav() {
    let net = Net(224);
    let dir = common::flows::setup(&[("line.toml", common::flows::AFTER_HOURS)]);
    let flows = dir.path().join("flows");
    let key = dir.path().join("recording.key");
    keygen(&key);
    let ivr = format!(
        "\n[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        flows.display(),
        dir.path().join("cal").display()
    );
    let text = common::config(
        net,
        &dir.path().join("var"),
        &format!("{}{ivr}", extra(&key)),
    );
    let h = Hotline::start_with(net, dir, &text);
    // A short prompt and the beep, then ~4 s of "speech" (a 440 Hz tone).
    let report = common::report(
        &common::dial(net, "12399", &["--tone", "440", "--hangup-after", "7"])
            .output()
            .expect("dial"),
    );
    assert_eq!(report["status"], 200, "{report}");
    h.wait_for("the voicemail to be saved", Duration::from_secs(10), |_| {
        h.log().contains("voicemail saved")
    });
    let files = h.data_files(".wav");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(h.data_files(".part").is_empty());
    let on_disk = std::fs::read(&files[0]).expect("read");
    assert_eq!(&on_disk[..8], b"HLSEALED");
    // No WAV header in the clear (8 bytes: a 4-byte "RIFF" can turn up in
    // ciphertext by chance).
    assert!(!on_disk.windows(8).any(|w| w == b"WAVEfmt "));

    let api = Api::new(net);
    let sup = api.login("sup", "sup-password-1");
    // The voicemail's path below the voicemail root, as records show it
    // (taken from the disk: a caller who hangs up while recording gets a
    // record without it, a gap reported separately).
    let path = files[0]
        .strip_prefix(h.dir.path().join("var").join("voicemail"))
        .expect("under the voicemail root")
        .to_string_lossy()
        .into_owned();
    let url = format!("/api/v1/voicemails/{path}");
    let whole = get(&api, &url, Some(&sup), None);
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert_eq!(&whole.body[..4], b"RIFF");
    let wav = h.dir.path().join("vm.wav");
    std::fs::write(&wav, &whole.body).expect("write");
    let voice = channel(&wav, 0, 1);
    assert!(voice.len() >= 8000 * 2, "{} samples", voice.len());
    assert!(windows_with(&voice, 440.0, 0.5) > 75, "the caller's tone");
    let part = get(&api, &url, Some(&sup), Some("bytes=40-99"));
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[40..100]);
    assert_eq!(get(&api, &url, None, None).status, 401);
    let other = api.login("sup-elsewhere", "sup-elsewhere-password");
    assert_eq!(get(&api, &url, Some(&other), None).status, 404);
}
