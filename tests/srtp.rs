//! SRTP from outside (issue 14 §4; RFC 4568 SDES, RFC 3711): real
//! soft-phones that accept nothing but SRTP on both legs.
//!
//! - The carrier's caller is baresip with `mediaenc srtp-mand` (it offers
//!   `RTP/SAVP` and drops any packet that fails SRTP authentication); the
//!   agent is baresip registered over TLS with `srtp-mand`, reached with
//!   hotline's own `RTP/SAVP` offer (`[media] srtp_agents = "required"`).
//!   The caller comes through the IVR: a welcome prompt (our player
//!   encrypting), then the queue and the agent (the relay continuing the
//!   same SRTP stream). Each phone hears the other's tone, which it could
//!   only decode from SRTP that hotline encrypted with the keys each
//!   negotiated, and the call's recording holds both tones in clear:
//!   hotline decrypted each leg before recording and re-encrypted for the
//!   other.
//! - The trunk says `srtp = "required"`: a plain `RTP/AVP` offer from it
//!   gets 488, and so does `RTP/SAVP` with only a suite hotline does not
//!   do; hotline keeps serving.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod common;

use std::time::Duration;

use common::audio::windows_with;
use common::baresip::{samples, write_tone, Baresip, Options};
use common::tls::queued_agent_over_tls;
use common::{status, wait_until, Hotline, Net, RawSip};

/// An INVITE from the carrier with `sdp` as its body.
fn invite(net: Net, local: &str, call_id: &str, sdp: &str) -> Vec<u8> {
    format!(
        "INVITE sip:12399@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:13800000000@{carrier}>;tag=c1\r\nTo: <sip:12399@{sip}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:13800000000@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        sip = net.sip(),
        carrier = net.carrier(),
        len = sdp.len(),
    )
    .into_bytes()
}

fn sdp(net: Net, proto: &str, crypto: &str) -> String {
    format!(
        "v=0\r\no=c 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 {proto} 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n{crypto}",
        ip = net.carrier(),
    )
}

/// 12398: a welcome prompt, then the queue of the baresip agent.
const WELCOME_THEN_QUEUE: &str = r#"
name = "srtp-line"
dids = ["12398"]
entry = "welcome"
[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
next = "q"
[nodes.q]
kind = "queue"
group = "general"
on_timeout = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;

#[test]
fn srtp_only_phones_on_both_legs_hear_each_other_and_the_recording_is_clear() {
    let net = Net(233);
    let dir = common::flows::setup(&[("line.toml", WELCOME_THEN_QUEUE)]);
    let ivr = format!(
        "\n[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        dir.path().join("flows").display(),
        dir.path().join("cal").display()
    );
    let (ca, base) = queued_agent_over_tls(net, dir.path(), &ivr);
    let edits = [
        (
            "codecs = [\"PCMA\", \"PCMU\"]\n",
            "codecs = [\"PCMA\", \"PCMU\"]\nsrtp_agents = \"required\"\n",
        ),
        (
            "name = \"carrier\"\n",
            "name = \"carrier\"\nsrtp = \"required\"\n",
        ),
    ];
    let mut text = base;
    for (from, to) in edits {
        assert!(text.contains(from), "the test config holds {from:?}");
        text = text.replacen(from, to, 1);
    }
    let h = Hotline::start_with(net, dir, &text);

    let audio = tempfile::tempdir().expect("tempdir");
    let agent_tone = audio.path().join("agent-1000hz.wav");
    write_tone(&agent_tone, 1000.0, 120);
    let agent = Baresip::start_opts(
        "1501",
        &net.agent(0),
        &net.ip(1),
        &agent_tone,
        &Options {
            tls_ca: Some(&ca),
            mediaenc: Some("srtp-mand"),
            ..Options::default()
        },
    );
    h.wait_for(
        "baresip to register over TLS",
        Duration::from_secs(20),
        |v| v["registrations"] == 1,
    );

    // The plain offers first, while the agent is idle: refused, and
    // nothing else changes.
    let raw = RawSip::new(&net.carrier(), &net.sip());
    let plain = sdp(net, "RTP/AVP", "");
    raw.send(&invite(net, &raw.local(), "plain-offer", &plain));
    let answer = raw.recv_final().expect("an answer to the plain offer");
    assert_eq!(
        status(&answer),
        488,
        "a plain offer from the trunk: {answer}"
    );
    let gcm_only = sdp(
        net,
        "RTP/SAVP",
        "a=crypto:1 AEAD_AES_128_GCM inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
    );
    raw.send(&invite(net, &raw.local(), "gcm-only", &gcm_only));
    let answer = raw.recv_final().expect("an answer to the GCM-only offer");
    assert_eq!(status(&answer), 488, "a suite we do not do: {answer}");

    // The carrier's caller: SRTP only, from the trunk's address.
    let caller_tone = audio.path().join("caller-440hz.wav");
    write_tone(&caller_tone, 440.0, 14);
    let uri = format!("sip:12398@{}", net.sip());
    wait_until("auto-login", Duration::from_secs(15), || {
        (h.agent_state("A1501")["state"] == "idle").then_some(())
    });
    let caller = Baresip::start_opts(
        "13800000000",
        &net.carrier(),
        &net.ip(1),
        &caller_tone,
        &Options {
            mediaenc: Some("srtp-mand"),
            register: false,
            dial: Some(&uri),
            ..Options::default()
        },
    );

    // The caller's source ends after 14 s and it hangs up; both phones
    // then have a complete dump of what they decoded.
    let (_, agent_heard) = wait_until("the agent's dump", Duration::from_secs(40), || {
        agent.heard().as_deref().and_then(samples)
    });
    let (_, caller_heard) = wait_until("the caller's dump", Duration::from_secs(40), || {
        caller.heard().as_deref().and_then(samples)
    });
    let n = windows_with(&agent_heard, 440.0, 0.6);
    assert!(
        n >= 100,
        "the SRTP-only agent heard the caller's 440 Hz in {n} windows\n{}\n{}",
        agent.log(),
        caller.log()
    );
    let n = windows_with(&caller_heard, 1000.0, 0.6);
    assert!(
        n >= 100,
        "the SRTP-only caller heard the agent's 1000 Hz in {n} windows\n{}",
        caller.log()
    );

    // The recording, decrypted leg by leg: caller left, agent right.
    let (channels, all) = wait_until("the call's recording", Duration::from_secs(20), || {
        h.data_files(".wav")
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("recordings"))
            .find_map(|p| samples(&p))
    });
    assert_eq!(channels, 2, "a stereo recording");
    let left: Vec<i16> = all.chunks_exact(2).map(|f| f[0]).collect();
    let right: Vec<i16> = all.chunks_exact(2).map(|f| f[1]).collect();
    let n = windows_with(&left, 440.0, 0.6);
    assert!(n >= 100, "the caller's 440 Hz on the left in {n} windows");
    let n = windows_with(&right, 1000.0, 0.6);
    assert!(n >= 100, "the agent's 1000 Hz on the right in {n} windows");
    let log = h.log();
    assert!(
        log.contains("flow starts flow=srtp-line") && log.contains("node=welcome"),
        "the caller came through the IVR's welcome prompt"
    );
    // No media packet failed authentication. (baresip may send its first
    // RTCP report before its own SRTP is up: that one is refused, as it
    // should be, and logged with kind=RTCP.)
    let media_refused = log
        .lines()
        .any(|l| l.contains("SRTP packet refused") && l.contains("kind=RTP "));
    assert!(
        !media_refused,
        "no SRTP media packet of the call failed authentication"
    );
    h.healthz();
}
