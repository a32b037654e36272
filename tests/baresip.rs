//! A real soft-phone as an agent (issue 12 item 2): Debian's baresip 1.0
//! registers with the registrar settings hotline ships in
//! `config/hotline.toml` (one digest challenge per request, RFC 3261
//! §22.4; baresip gives up on a 401 carrying an MD5 and a SHA-256
//! challenge), is signed in by auto-login, auto-answers a queued carrier
//! call, and audio flows both ways: the carrier's 440 Hz tone reaches what
//! baresip decodes, baresip's 1000 Hz tone reaches the carrier, and the
//! call's stereo recording has each tone on its own side's channel.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::audio::windows_with;
use common::baresip::{samples, write_tone, Baresip, QUEUED_AGENT};
use common::{wait_until, Hotline, Net};

/// The `[registrar]` block of the shipped `config/hotline.toml`, verbatim.
fn shipped_registrar() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hotline.toml");
    let text = std::fs::read_to_string(&path).expect("config/hotline.toml");
    let start = text
        .find("\n[registrar]\n")
        .expect("config/hotline.toml has a [registrar] section");
    let rest = &text[start + 1..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 2);
    rest[..end].to_string()
}

fn channel(all: &[i16], channels: u16, which: usize) -> Vec<i16> {
    all.iter()
        .skip(which)
        .step_by(usize::from(channels))
        .copied()
        .collect()
}

#[test]
fn baresip_registers_with_the_shipped_config_auto_answers_a_queued_call_and_audio_flows_both_ways()
{
    let net = Net(150);
    let dir = tempfile::tempdir().unwrap();
    let base = common::config(net, &dir.path().join("var"), QUEUED_AGENT);
    let test_registrar =
        "[registrar]\nmin_expires = 60\ndigest_algorithms = [\"MD5\", \"SHA-256\"]\n";
    assert!(base.contains(test_registrar), "the test config's registrar");
    let text = base.replace(test_registrar, &shipped_registrar());
    let h = Hotline::start_with(net, dir, &text);

    let audio = tempfile::tempdir().unwrap();
    let tone = audio.path().join("agent-1000hz.wav");
    write_tone(&tone, 1000.0, 120);
    let phone = Baresip::start("1501", &net.agent(0), &net.ip(1), &tone);

    h.wait_for("baresip to register", Duration::from_secs(20), |v| {
        v["registrations"] == 1
    });
    // Auto-login: registering the phone signed the agent in.
    wait_until("auto-login", Duration::from_secs(10), || {
        (h.agent_state("A1501")["state"] == "idle").then_some(())
    });

    let carrier_heard = audio.path().join("carrier-heard.wav");
    let out = common::dial(
        net,
        "12399",
        &[
            "--tone",
            "440",
            "--hangup-after",
            "6",
            "--record",
            carrier_heard.to_str().unwrap(),
        ],
    )
    .stderr(Stdio::null())
    .output()
    .expect("hotline dial");
    let report = common::report(&out);
    assert_eq!(
        report["status"], 200,
        "the queued call is answered: {report}"
    );

    // baresip answered it by itself, as the agent the ACD offered it to.
    let agent = wait_until("the agent's call to end", Duration::from_secs(20), || {
        let a = h.agent_state("A1501");
        (a["counters"]["answered"] == 1).then_some(a)
    });
    assert_eq!(agent["counters"]["offered"], 1, "{agent}");

    // Carrier → baresip: what baresip decoded carries the carrier's tone.
    let (_, heard) = wait_until(
        "baresip's dump of the call",
        Duration::from_secs(20),
        || phone.heard().as_deref().and_then(samples),
    );
    let n = windows_with(&heard, 440.0, 0.6);
    assert!(n >= 100, "baresip heard 440 Hz in {n} windows of 20 ms");

    // baresip → carrier: the carrier heard baresip's tone.
    let (_, carrier) = samples(&carrier_heard).expect("the carrier's recording");
    let n = windows_with(&carrier, 1000.0, 0.6);
    assert!(
        n >= 100,
        "the carrier heard 1000 Hz in {n} windows of 20 ms"
    );

    // The call's recording: caller left, agent right.
    let recording = wait_until("the call's recording", Duration::from_secs(20), || {
        h.data_files(".wav")
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("recordings"))
            .find_map(|p| samples(&p))
    });
    let (channels, all) = recording;
    assert_eq!(channels, 2, "a stereo recording");
    let (left, right) = (channel(&all, 2, 0), channel(&all, 2, 1));
    let (l440, r1000) = (
        windows_with(&left, 440.0, 0.6),
        windows_with(&right, 1000.0, 0.6),
    );
    let (l1000, r440) = (
        windows_with(&left, 1000.0, 0.6),
        windows_with(&right, 440.0, 0.6),
    );
    assert!(
        l440 >= 100 && r1000 >= 100,
        "each side's tone on its channel: {l440} {r1000}"
    );
    assert!(
        l1000 == 0 && r440 == 0,
        "no side on the other's channel: {l1000} {r440}"
    );
}
