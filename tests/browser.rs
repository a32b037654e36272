//! The reference pages (web/) in a real browser (CTI issue §7): "the
//! phone-bar page logs agent 1001 in and sets ready, a SIPp carrier call
//! arrives and the page shows the caller and their history, the agent
//! transfers to 1002, and the wall-board page shows both agents' states
//! changing; screenshots are kept as test artifacts."
//!
//! Debian's chromium runs headless and is driven over the Chrome DevTools
//! Protocol (tests/browser_support); hotline, the agents' phones (`hotline
//! phone`) and the caller (SIPp, tests/sipp/carrier_call_long.xml) are
//! real. The transfer is attended (咨询转): the agent consults A1002 with
//! the caller on hold, then completes it.
//!
//! Screenshots of every step: `target/browser-artifacts/
//! phone_bar_and_wall_board_through_a_call_and_a_transfer/NN-<page>-<step>.png`.
//! Without chromium the test fails and says to run ./scripts/test.

mod browser_support;
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use browser_support::{js_str, Artifacts, Browser, Page};
use common::{Hotline, Net, Sipp};
use hotline::events::model::RecordingInfo;
use hotline::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};

/// What the SIPp carrier scenarios send as the caller (their `From`).
const CALLER: &str = "+15550100";

const SETUP: &str = r#"
[[group]]
id = "general"
name = "综合咨询"
acw_secs = 60

[[did]]
number = "12399"
queue = "general"

[[quick_transfer]]
label = "12328 交通运输"
number = "12328"

[[user]]
username = "1001"
display_name = "坐席 1001"
role = "agent"
agent_id = "A1001"
password = "agent-1001-password"

[[user]]
username = "1002"
display_name = "坐席 1002"
role = "agent"
agent_id = "A1002"
password = "agent-1002-password"

[[user]]
username = "supervisor"
display_name = "值班长"
role = "supervisor"
password = "supervisor-password"
"#;

/// The test configuration: the harness's, with agents 1001 and 1002 given
/// job numbers A1001/A1002 and the `general` skill (not auto_login: the
/// phone bar signs 1001 in), and the pages served from this checkout.
fn config(net: Net, data: &Path) -> String {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut text = common::config(net, data, SETUP);
    for (user, job) in [("1001", "A1001"), ("1002", "A1002")] {
        let plain = format!("user = \"{user}\"\npassword = \"pass{user}\"\n");
        assert!(text.contains(&plain), "the harness config changed: {text}");
        text = text.replace(
            &plain,
            &format!("{plain}job_number = \"{job}\"\nskills = {{ general = 5 }}\n"),
        );
    }
    assert!(text.contains("[http]\n"), "the harness config changed");
    text.replacen(
        "[http]\n",
        &format!("[http]\nweb_dir = \"{}\"\n", web.display()),
        1,
    )
}

/// An earlier call of the caller, answered by A1001 and recorded, so the
/// screen pop has a history row.
fn store_history(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("pre", 0));
    let t0 = 1_795_300_000_000;
    let start = CallStart {
        call_id: "earlier-call".into(),
        serial: "20261122100000-000001".into(),
        tenant: "default".into(),
        direction: hotline::events::model::Direction::Inbound,
        caller: CALLER.into(),
        called: "12399".into(),
        caller_area: None,
        confidential: false,
    };
    let (mut b, e) = CdrBuilder::started(ids, t0, start).unwrap();
    let mut evs = vec![e];
    evs.extend(b.queued(t0 + 1_000, "general", None, 0).unwrap());
    evs.extend(b.answered(t0 + 3_000, "A1001").unwrap());
    evs.extend(
        b.ended(t0 + 90_000, HangupParty::Caller, EndCause::default())
            .unwrap(),
    );
    evs.extend(
        b.recording_ready(
            t0 + 90_500,
            RecordingInfo {
                id: "rec-earlier-call".into(),
                path: "default/2026/11/22/rec-earlier-call.wav".into(),
                duration_ms: 87_000,
                bytes: 2_784_044,
                sha256: "0".repeat(64),
                dropped_chunks: 0,
            },
        )
        .unwrap(),
    );
    evs.extend(b.acw_ended(t0 + 95_000, "A1001").unwrap());
    common::store_events(data, evs);
}

/// A phone process, ended with the test however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Log a page in with the login form and wait for its main view and the
/// live WebSocket.
fn log_in(page: &mut Page, user: &str, password: &str, main: &str) {
    page.fill("#login-user", user);
    page.fill("#login-pass", password);
    page.click("#login-btn");
    page.wait_for(
        &format!("{user} to be logged in (the {main} shown, the WebSocket up)"),
        &format!(
            "!document.querySelector({}).classList.contains('hidden') && \
             document.querySelector('#ws-status').dataset.connected === 'true'",
            js_str(main)
        ),
    );
}

/// The `data-state` of an element.
fn state_is(selector: &str, states: &[&str]) -> String {
    let list: Vec<String> = states.iter().map(|s| js_str(s)).collect();
    format!(
        "(() => {{ const e = document.querySelector({}); return !!e && [{}].includes(e.dataset.state); }})()",
        js_str(selector),
        list.join(", ")
    )
}

#[test]
fn phone_bar_and_wall_board_through_a_call_and_a_transfer() {
    let artifacts = Artifacts::new("phone_bar_and_wall_board_through_a_call_and_a_transfer");
    browser_support::chromium(); // fail first, and clearly, without it
    let net = Net(120);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    store_history(&data);
    let text = config(net, &data);
    let h = Hotline::start_with(net, dir, &text);
    let base = format!("http://{}:8080", net.ip(1));

    let _phone1 = KillOnDrop(common::start_phone(
        &h,
        0,
        "1001",
        &["--tone", "600", "--answer-after", "0.5"],
    ));
    let _phone2 = KillOnDrop(common::start_phone(
        &h,
        1,
        "1002",
        &[
            "--tone",
            "900",
            "--answer-after",
            "0.5",
            "--hangup-after",
            "8",
        ],
    ));

    let mut browser = Browser::launch(artifacts.clone());
    let mut bar = browser.new_page("phonebar");
    let mut board = browser.new_page("wallboard");

    // --- the index at /, the wall-board logged in as the supervisor -------
    bar.navigate(&format!("{base}/"));
    bar.wait_for(
        "the index with links to both pages",
        "location.pathname === '/web/index.html' && !!document.querySelector('#link-phonebar') \
         && !!document.querySelector('#link-wallboard')",
    );
    bar.screenshot("index");
    board.navigate(&format!("{base}/web/wallboard.html"));
    log_in(&mut board, "supervisor", "supervisor-password", "#board");
    board.wait_for(
        "both agents' tiles, logged out",
        &format!(
            "{} && {}",
            state_is("#agent-A1001", &["logged_out"]),
            state_is("#agent-A1002", &["logged_out"])
        ),
    );
    board.wait_for(
        "the queue row of `general`",
        "!!document.querySelector('#queues tbody tr[data-group=\"general\"]')",
    );
    board.screenshot("logged-in");

    // --- the phone bar: log in, sign in, ready ------------------------------
    bar.click("#link-phonebar");
    bar.wait_for(
        "the phone bar's login form",
        "location.pathname === '/web/phonebar.html' && document.readyState === 'complete' \
         && !!document.querySelector('#login-user')",
    );
    // A wrong password shows the API's error: its Chinese text first, then
    // the code.
    bar.fill("#login-user", "1001");
    bar.fill("#login-pass", "wrong");
    bar.click("#login-btn");
    bar.wait_for(
        "the login error, in Chinese",
        "document.querySelector('#login-error').innerText.startsWith('未登录、用户名或密码错误') \
         && document.querySelector('#login-error').innerText.includes('unauthorized')",
    );
    log_in(&mut bar, "1001", "agent-1001-password", "#bar");
    bar.wait_for(
        "the one-click transfer targets",
        "!!document.querySelector('#quick-transfers button.quick-transfer[data-number=\"12328\"]')",
    );
    bar.screenshot("logged-in");
    bar.click("#btn-signin");
    bar.wait_for(
        "a state after 签入",
        &state_is("#state", &["idle", "not_ready"]),
    );
    if bar.attr("#state", "data-state").as_deref() == Some("not_ready") {
        bar.click("#btn-ready");
    }
    bar.wait_for("the agent idle (示闲)", &state_is("#state", &["idle"]));
    let shown = bar.text("#state").unwrap_or_default();
    assert!(shown.contains("空闲"), "the state shows {shown:?}");
    // Not ready with a reason, then ready again.
    bar.fill("#notready-reason", "training");
    bar.click("#btn-notready");
    bar.wait_for(
        "not ready (培训)",
        &format!(
            "{} && document.querySelector('#state-reason').innerText.includes('培训')",
            state_is("#state", &["not_ready"])
        ),
    );
    board.wait_for(
        "A1001 not ready on the wall-board",
        &state_is("#agent-A1001", &["not_ready"]),
    );
    bar.click("#btn-ready");
    bar.wait_for("the agent idle again", &state_is("#state", &["idle"]));
    bar.screenshot("ready");
    board.wait_for(
        "A1001 idle on the wall-board",
        &state_is("#agent-A1001", &["idle"]),
    );
    board.screenshot("a1001-idle");

    // --- a carrier call: screen pop with the history --------------------------
    let sipp = Sipp::start(
        "carrier_call_long.xml",
        &net.carrier(),
        &["-s", "12399", "-m", "1", &net.sip()],
    );
    bar.wait_for(
        "the screen pop's caller",
        &format!(
            "document.querySelector('#caller').innerText.includes({})",
            js_str(CALLER.trim_start_matches('+'))
        ),
    );
    bar.wait_for(
        "the earlier call in the history table",
        "(() => { const r = document.querySelector('#history tbody tr[data-call-id=\"earlier-call\"]'); \
         return !!r && r.innerText.includes('A1001') && r.innerText.includes('rec-earlier-call'); })()",
    );
    let called = bar.text("#called").unwrap_or_default();
    assert_eq!(called, "12399", "the called DID shown");
    bar.wait_for("the agent talking", &state_is("#state", &["talking"]));
    bar.wait_for(
        "the answer in the call's event log",
        "document.querySelector('#call-log').innerText.includes('应答')",
    );
    bar.screenshot("screen-pop");
    board.wait_for(
        "A1001 talking on the wall-board",
        &state_is("#agent-A1001", &["talking"]),
    );
    board.wait_for(
        "the call in the active calls",
        "(() => { const r = document.querySelector('#active-calls tbody tr[data-call-id]'); \
         return !!r && r.innerText.includes('A1001'); })()",
    );
    board.wait_for(
        "the supervise buttons on A1001's tile",
        "!!document.querySelector('#agent-A1001 .btn-listen').offsetParent",
    );
    // This supervisor has no phone (no agent_id): the API's refusal shows.
    board.click("#agent-A1001 .btn-listen");
    board.wait_for(
        "the wall-board showing why 监听 was refused",
        "document.querySelector('#error').innerText.includes('no_phone')",
    );
    board.screenshot("a1001-talking");

    // --- attended transfer to A1002: consult, then complete ----------------------
    // The blind-transfer form wants exactly one target.
    bar.fill("#transfer-agent", "A1002");
    bar.fill("#transfer-number", "110");
    bar.click("#btn-transfer");
    bar.wait_for(
        "the page refusing two transfer targets",
        "document.querySelector('#error').innerText.includes('exactly one')",
    );
    bar.fill("#transfer-agent", "");
    bar.fill("#transfer-number", "");
    bar.fill("#consult-agent", "A1002");
    bar.click("#btn-consult");
    bar.wait_for(
        "the consultation started (the caller on hold)",
        "document.querySelector('#call-log').innerText.includes('consulting A1002') \
         && document.querySelector('#error').innerText === ''",
    );
    h.wait_for(
        "A1002 to answer the consultation",
        Duration::from_secs(15),
        |_| h.log().contains("third party joined the call"),
    );
    bar.screenshot("consulting");
    bar.click("#btn-consult-complete");
    bar.wait_for(
        "the attended transfer completed",
        "document.querySelector('#call-log').innerText.includes('attended transfer to A1002') \
         && document.querySelector('#error').innerText === ''",
    );
    board.wait_for(
        "A1002 talking and A1001 in after-call work or idle",
        &format!(
            "{} && {}",
            state_is("#agent-A1002", &["talking"]),
            state_is("#agent-A1001", &["after_call_work", "idle"])
        ),
    );
    board.screenshot("a1002-talking");
    bar.wait_for(
        "the phone bar in after-call work",
        &state_is("#state", &["after_call_work", "idle"]),
    );
    bar.wait_for(
        "the transfer in the call's event log",
        "document.querySelector('#call-log').innerText.includes('A1001 → ')",
    );
    bar.screenshot("transferred");
    if bar.attr("#state", "data-state").as_deref() == Some("after_call_work") {
        bar.click("#btn-acw-done");
        bar.wait_for("idle after 话后完成", &state_is("#state", &["idle"]));
    }

    // --- A1002 hangs up: the caller is released ----------------------------------
    let result = sipp.wait(Duration::from_secs(30));
    result.assert_ok(&h);
    board.wait_for(
        "A1002 off the call and A1001 idle",
        &format!(
            "{} && {}",
            state_is("#agent-A1002", &["logged_out"]),
            state_is("#agent-A1001", &["idle"])
        ),
    );
    board.wait_for(
        "no active call",
        "!document.querySelector('#active-calls tbody tr[data-call-id]')",
    );
    board.screenshot("after-the-call");
    bar.wait_for(
        "the end of the call in the event log",
        "document.querySelector('#call-log').innerText.includes('结束')",
    );

    // --- a message (to oneself: the WebSocket delivers it) ---------------------
    bar.fill("#msg-to", "A1001");
    bar.fill("#msg-text", "测试消息 hello");
    bar.click("#btn-send");
    bar.wait_for(
        "the message received",
        "[...document.querySelectorAll('#messages li.received')].some(l => l.innerText.includes('测试消息'))",
    );
    bar.screenshot("after-the-call");

    // --- logout ---------------------------------------------------------------------
    bar.click("#btn-logout");
    bar.wait_for(
        "the login form after logout",
        "!document.querySelector('#login-form').classList.contains('hidden') \
         && sessionStorage.getItem('hotline.phonebar.token') === null",
    );
    for (name, page) in [("phone bar", &bar), ("wall-board", &board)] {
        assert!(
            !page.console().contains("exception"),
            "the {name} threw:\n{}",
            page.console()
        );
    }
    eprintln!("screenshots: {}", artifacts.dir().display());
}
