//! An agent answers in the browser (issue 17 "Done when"): headless
//! Debian chromium with a fake microphone playing a 700 Hz tone logs into
//! the phone bar as agent 1001, turns on its browser phone and goes ready;
//! a SIPp carrier calls 12345 on the shipped configuration and flows,
//! presses 1 (as phones send RFC 4733 keys) and plays a 1 kHz tone; the
//! call reaches the browser through the IVR and the `general` queue, the
//! test answers with the 接听 button, and the audio is checked both ways:
//! the caller's tone measured in the browser (a WebAudio analyser on the
//! received track, read through the DevTools protocol) and the browser's
//! tone in the recording's right channel; hold and resume from the phone
//! bar (the caller hears music, the browser phone shows the hold), an ICE
//! restart with the media going on both ways after it, and the
//! call hung up from the page. A second call is answered in the browser
//! and blind-transferred to a SIP agent's phone (`hotline phone` as 1002);
//! a third is answered by 1002 and transferred to the browser agent, rung
//! directly on the conversation's fresh ports.
//!
//! Screenshots of every step: `target/browser-artifacts/
//! an_agent_answers_in_the_browser_…/NN-phonebar-<step>.png`.

#![allow(clippy::disallowed_methods)] // test shell: reads the clock

mod browser_support;
mod common;

use std::path::Path;
use std::time::Duration;

use browser_support::{Artifacts, Browser, Page};
use common::shipped::{phone_like_key_pcap, repo, shipped_config};
use common::{Hotline, Net, Sipp};

/// The caller's tone (SIPp) and the browser microphone's.
const CALLER_HZ: f64 = 1000.0;
const BROWSER_HZ: f64 = 700.0;

/// The shipped setup, with agent 1001 able to log into the phone bar (and
/// 1002's too: its phone is a SIP phone) and the pages of this checkout.
fn config(net: Net, dir: &Path) -> String {
    let mut text = shipped_config(net, dir);
    for (user, job) in [("1001", "A1001"), ("1002", "A1002")] {
        text.push_str(&format!(
            "\n[[user]]\nusername = \"{user}\"\nrole = \"agent\"\nagent_id = \"{job}\"\npassword = \"agent-{user}-password\"\n"
        ));
    }
    assert!(text.contains("[http]\n"), "the shipped config changed");
    text.replacen(
        "[http]\n",
        &format!("[http]\nweb_dir = \"{}\"\n", repo().join("web").display()),
        1,
    )
}

fn chromium_flags(mic: &Path) -> Vec<String> {
    vec![
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-audio-capture={}", mic.display()),
        "--autoplay-policy=no-user-gesture-required".into(),
        // The media address is on 127.0.0.0/8: let ICE pair loopback.
        "--allow-loopback-in-peer-connection".into(),
    ]
}

fn log_in(page: &mut Page, user: &str, password: &str) {
    page.fill("#login-user", user);
    page.fill("#login-pass", password);
    page.click("#login-btn");
    page.wait_for(
        "the phone bar, its WebSocket up",
        "!document.querySelector('#bar').classList.contains('hidden') && \
         document.querySelector('#ws-status').dataset.connected === 'true'",
    );
}

fn phone_is(state: &str) -> String {
    format!("document.querySelector('#phone-status').dataset.state === '{state}'")
}

/// The caller's call: SIPp presses 1 in the 12345 menu and plays its tone,
/// from the carrier's SIP port `port` (two calls overlap: the first is in
/// the survey while the second rings).
fn caller(net: Net, dir: &Path, port: u16) -> Sipp {
    let key = phone_like_key_pcap('1', dir);
    let tone = dir.join("caller_tone.pcap");
    common::audio::tone_pcap(CALLER_HZ, 70, &tone);
    Sipp::start(
        "carrier_ivr_key_tone.xml",
        &net.carrier(),
        &[
            "-s",
            "12345",
            "-m",
            "1",
            "-key",
            "key_pcap",
            key.to_str().expect("path"),
            "-key",
            "tone_pcap",
            tone.to_str().expect("path"),
            // After the agent: the survey (three questions, no keys).
            "-timeout",
            "90s",
            "-p",
            &port.to_string(),
            &net.sip(),
        ],
    )
}

/// Wait until the browser hears the caller's tone: the strongest bin of
/// the received track near `CALLER_HZ`, well above silence.
fn hears_caller(bar: &mut Page) {
    bar.wait_for_within(
        "the caller's 1 kHz tone in the browser's received audio",
        &format!(
            "(() => {{ const p = window.hotlinePhone && window.hotlinePhone.remotePeak(); \
               return !!p && Math.abs(p.hz - {CALLER_HZ}) < 60 && p.db > -70; }})()"
        ),
        Duration::from_secs(20),
    );
}

#[test]
fn an_agent_answers_in_the_browser_hears_and_is_heard_holds_transfers_and_hangs_up() {
    let artifacts = Artifacts::new(
        "an_agent_answers_in_the_browser_hears_and_is_heard_holds_transfers_and_hangs_up",
    );
    browser_support::chromium(); // fail first, and clearly, without it
    let net = Net(72);
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let mic = work.join("mic.wav");
    common::audio::tone_wav(BROWSER_HZ, 10, &mic);
    let text = config(net, dir.path());
    let h = Hotline::start_with(net, dir, &text);
    let base = format!("http://{}:8080", net.ip(1));

    let mut browser = Browser::launch_with(artifacts.clone(), &chromium_flags(&mic));
    let mut bar = browser.new_page("phonebar");
    bar.navigate(&format!("{base}/web/phonebar.html"));
    bar.wait_for(
        "the login form",
        "document.readyState === 'complete' && !!document.querySelector('#login-user')",
    );
    log_in(&mut bar, "1001", "agent-1001-password");

    // --- the browser becomes agent 1001's phone -----------------------------
    // Its voice processing off: noise suppression takes a steady test tone
    // for noise and fades it out.
    bar.click("#phone-processing");
    bar.click("#phone-enable");
    bar.wait_for("the browser phone registered", &phone_is("ready"));
    bar.click("#btn-signin");
    bar.wait_for(
        "1001 signed in",
        "document.querySelector('#state').dataset.state !== 'logged_out' && \
         document.querySelector('#state').dataset.state !== 'unknown'",
    );
    bar.click("#btn-ready");
    bar.wait_for("1001 ready", &agent_is("idle"));
    bar.screenshot("phone-ready");

    // --- a citizen calls 12345, presses 1, and the browser rings -------------
    let first = caller(net, &work, 5060);
    bar.wait_for_within(
        "the browser phone ringing with the call",
        &phone_is("ringing"),
        Duration::from_secs(30),
    );
    assert!(
        bar.text("#phone-caller")
            .unwrap_or_default()
            .contains("+15550100"),
        "the ringing phone shows the caller"
    );
    bar.screenshot("ringing");
    bar.click("#btn-answer");
    bar.wait_for_within(
        "the call connected (ICE and DTLS done)",
        &phone_is("talking"),
        Duration::from_secs(15),
    );
    hears_caller(&mut bar);
    bar.screenshot("talking");

    // --- hold and resume from the phone bar (the caller hears music) --------
    bar.click("#btn-hold");
    bar.wait_for(
        "the agent on hold, shown on the browser phone too",
        &format!("{} && {}", agent_is("on_hold"), phone_is("held")),
    );
    bar.screenshot("held");
    bar.click("#btn-resume");
    bar.wait_for(
        "the call resumed",
        &format!("{} && {}", agent_is("talking"), phone_is("talking")),
    );
    hears_caller(&mut bar);

    // --- an ICE restart (the page asks for one by itself when its media path
    // is lost; here at once): new credentials re-offered, checked, and the
    // media goes on both ways over the same DTLS keys -------------------------
    assert_eq!(bar.eval("window.hotlinePhone.restartIce()"), true);
    h.wait_for(
        "the browser checking with the restart's credentials",
        Duration::from_secs(15),
        |_| {
            h.log()
                .contains("ICE restart: the browser checks with the new credentials")
        },
    );
    bar.wait_for("talking after the restart", &phone_is("talking"));
    let counts = |bar: &mut Page| {
        let v = bar.eval("window.hotlinePhone.stats()");
        (
            v["received"].as_u64().unwrap_or(0),
            v["sent"].as_u64().unwrap_or(0),
            v["dtls"].clone(),
        )
    };
    let (received, sent, _) = counts(&mut bar);
    std::thread::sleep(Duration::from_secs(1));
    let (received_after, sent_after, dtls) = counts(&mut bar);
    assert!(
        received_after >= received + 20 && sent_after >= sent + 20 && dtls == "connected",
        "media both ways after the restart: received {received} → {received_after}, sent {sent} → {sent_after}, DTLS {dtls}"
    );
    hears_caller(&mut bar);
    assert!(h.log().contains("ICE restart answered by the page"));

    // --- hang up from the page -----------------------------------------------
    std::thread::sleep(Duration::from_secs(2));
    bar.click("#btn-phone-hangup");
    bar.wait_for("the browser phone idle again", &phone_is("ready"));
    bar.screenshot("hung-up");
    assert!(
        h.log().contains("hold through the API hold=true"),
        "the caller was held:\n{}",
        h.tail_log()
    );

    // --- the browser's tone is in the recording's right channel ---------------
    let wav = common::wait_until("the call's recording", Duration::from_secs(30), || {
        h.data_files(".wav").into_iter().next()
    });
    let caller_side = common::audio::channel(&wav, 0, 2);
    assert!(
        common::audio::windows_with(&caller_side, CALLER_HZ, 0.5) >= 50,
        "the caller's tone in the recording's caller channel"
    );
    let agent = common::audio::channel(&wav, 1, 2);
    let heard = common::audio::windows_with(&agent, BROWSER_HZ, 0.5);
    assert!(
        heard >= 50,
        "the browser's {BROWSER_HZ} Hz tone in the recording's agent channel: {heard} windows of 20 ms\n{}",
        h.tail_log()
    );

    // --- a second call: answered in the browser, then blind-transferred to
    // 1002's SIP phone ---------------------------------------------------------
    ready(&mut bar);
    let second = caller(net, &work, 5062);
    bar.wait_for_within(
        "the second call ringing",
        &phone_is("ringing"),
        Duration::from_secs(30),
    );
    bar.click("#btn-answer");
    bar.wait_for_within(
        "the second call connected",
        &phone_is("talking"),
        Duration::from_secs(15),
    );
    hears_caller(&mut bar);
    let phone_1002 = common::start_phone(
        &h,
        1,
        "1002",
        &[
            "--tone",
            "900",
            "--answer-after",
            "0.5",
            "--hangup-after",
            "3",
        ],
    );
    bar.fill("#transfer-agent", "A1002");
    bar.click("#btn-transfer");
    bar.wait_for_within(
        "the browser's leg ended by the transfer",
        &phone_is("ready"),
        Duration::from_secs(20),
    );
    bar.screenshot("transferred");
    let out = phone_1002.wait_with_output().expect("1002's phone");
    let report = common::report(&out);
    assert_eq!(
        report["status"],
        200,
        "1002 answered the transfer: {report}\n{}",
        h.tail_log()
    );
    assert!(
        report["media"]["rtp_received"].as_u64().unwrap_or(0) >= 50,
        "1002 heard the caller: {report}"
    );

    // --- a third call: 1002's SIP phone answers and transfers it to the
    // browser (rung directly, on the conversation's fresh ports) --------------
    ready(&mut bar);
    bar.click("#btn-notready");
    bar.wait_for("1001 not ready", &agent_is("not_ready"));
    let phone_1002 =
        common::start_phone(&h, 1, "1002", &["--tone", "900", "--answer-after", "0.5"]);
    let third = caller(net, &work, 5064);
    let api = common::api::Api::new(net);
    let token_1002 = api.login("1002", "agent-1002-password");
    common::wait_until(
        "1002 talking to the third caller",
        Duration::from_secs(30),
        || (h.agent_state("A1002")["state"] == "talking").then_some(()),
    );
    let (status, body) = api.post(
        "/api/v1/agent/call/transfer",
        &token_1002,
        r#"{"to_agent": "A1001"}"#,
    );
    assert_eq!(
        status, 202,
        "1002's blind transfer to the browser agent: {body}"
    );
    bar.wait_for_within(
        "the transferred call ringing in the browser",
        &phone_is("ringing"),
        Duration::from_secs(20),
    );
    bar.click("#btn-answer");
    bar.wait_for_within(
        "the transferred call connected",
        &phone_is("talking"),
        Duration::from_secs(15),
    );
    hears_caller(&mut bar);
    bar.screenshot("transferred-in");
    bar.click("#btn-phone-hangup");
    bar.wait_for(
        "the browser phone idle after the third call",
        &phone_is("ready"),
    );
    let out = phone_1002.wait_with_output().expect("1002's phone");
    assert_eq!(
        common::report(&out)["status"],
        200,
        "1002 answered the third call"
    );

    for sipp in [first, second, third] {
        sipp.wait(Duration::from_secs(90)).assert_ok(&h);
    }
    drop(browser);
}

/// The agent's ACD state on the phone bar.
fn agent_is(state: &str) -> String {
    format!("document.querySelector('#state').dataset.state === '{state}'")
}

/// After a call: after-call work done, ready for the next.
fn ready(bar: &mut Page) {
    bar.wait_for_within(
        "after-call work or idle",
        &format!("{} || {}", agent_is("after_call_work"), agent_is("idle")),
        Duration::from_secs(20),
    );
    if bar.eval(&agent_is("after_call_work")) == serde_json::Value::Bool(true) {
        bar.click("#btn-acw-done");
    }
    bar.wait_for("1001 idle again", &agent_is("idle"));
}
