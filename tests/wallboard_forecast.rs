//! The wall-board's forecast in a real browser (issue 19 "Done when": "a
//! browser test shows the wall-board's needed/ready figure and chart
//! updating during calls").
//!
//! Debian's chromium runs headless, driven over the Chrome DevTools
//! Protocol (tests/browser_support); hotline (`hotline serve`), the agent's
//! phone (SIPp, tests/sipp/agent_answer_echo.xml, signed in by its
//! registration) and the callers (SIPp, tests/sipp/carrier_speaks_at_once.xml:
//! 4 s calls) are real. A call of the
//! same time last week is stored beforehand, so the forecast has a prior.
//!
//! The story: the supervisor's wall-board shows group `general` needing
//! agents (last week's call at this time is the prior, the default handle
//! time of 300 s stands for today's) with nobody ready, in the warning
//! colour; the agent's phone registers (ready 1); three short calls come
//! one after the other, the first shows in the chart's newest bar while
//! it is still up, and after them the bar holds three calls with a 20 s
//! rate of 100 %, the handle time is theirs and one agent is enough: the
//! figure is no longer red; the supervisor signs the agent out and it
//! turns red again (ready 0 < needed). `GET /api/v1/forecast` agrees with
//! the page and refuses an agent.
//!
//! Screenshots: `target/browser-artifacts/
//! wallboard_forecast_follows_the_calls/NN-wallboard-<step>.png`.

mod browser_support;
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use browser_support::{Artifacts, Browser, Page};
use common::api::Api;
use common::{Hotline, Net, Sipp};
use hotline::events::{CallStart, CdrBuilder, EndCause, HangupParty, IdGenerator, IdSource};

const NET: Net = Net(70);

const SETUP: &str = r#"
[[user]]
username = "supervisor"
display_name = "值班长"
role = "supervisor"
password = "supervisor-password"

[[user]]
username = "2001"
role = "agent"
agent_id = "A2001"
password = "agent-2001-password"
"#;

fn config(data: &Path) -> String {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let extra = format!(
        "{}{SETUP}",
        common::general_queue(10, 1, &[("2001", "A2001")])
    );
    let text = common::config(NET, data, &extra);
    assert!(text.contains("[http]\n"), "the harness config changed");
    text.replacen(
        "[http]\n",
        &format!("[http]\nweb_dir = \"{}\"\n", web.display()),
        1,
    )
}

/// The wall clock, in ms (the record of last week is placed by it).
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(d.as_millis()).expect("ms")
}

/// A call of group `general` answered at once, a week ago plus five
/// minutes (inside the half hour the forecast looks at in past weeks).
fn store_last_week(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let ids: Arc<dyn IdSource> = Arc::new(IdGenerator::new("pre", 0));
    let t0 = now_ms() - 7 * 86_400_000 + 5 * 60_000;
    let start = CallStart {
        call_id: "last-week".into(),
        serial: "last-week-000001".into(),
        tenant: "default".into(),
        direction: hotline::events::model::Direction::Inbound,
        caller: "13800000001".into(),
        called: "12399".into(),
        caller_area: None,
        confidential: false,
    };
    let (mut b, e) = CdrBuilder::started(ids, t0, start).unwrap();
    let mut evs = vec![e];
    evs.extend(b.agent_requested(t0).unwrap());
    evs.extend(b.queued(t0, "general", None, 0).unwrap());
    evs.extend(b.offered(t0 + 1_000, "A2001").unwrap());
    evs.extend(b.answered(t0 + 3_000, "A2001").unwrap());
    evs.extend(
        b.ended(t0 + 60_000, HangupParty::Caller, EndCause::default())
            .unwrap(),
    );
    evs.extend(b.acw_ended(t0 + 61_000, "A2001").unwrap());
    common::store_events(data, evs);
}

/// JS: the group's forecast card satisfies `cond` (over `c`, the card).
fn card(cond: &str) -> String {
    format!("(() => {{ const c = document.querySelector('#forecast-general'); return !!c && ({cond}); }})()")
}

/// The warning colour (web/style.css `--danger`) and the good one (`--idle`).
const RED: &str = "rgb(179, 38, 30)";
const GREEN: &str = "rgb(46, 125, 50)";

/// JS: the chart's newest (past) bar.
const LAST_BAR: &str = "[...c.querySelectorAll('svg.chart rect.arrivals')].at(-1)";

fn figure(page: &mut Page) -> String {
    page.text("#forecast-general .needed-ready")
        .unwrap_or_default()
}

#[test]
fn wallboard_forecast_follows_the_calls() {
    let artifacts = Artifacts::new("wallboard_forecast_follows_the_calls");
    browser_support::chromium(); // fail first, and clearly, without it
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("var");
    store_last_week(&data);
    let text = config(&data);
    let h = Hotline::start_with(NET, dir, &text);
    let base = format!("http://{}:8080", NET.ip(1));

    let mut browser = Browser::launch(artifacts.clone());
    let mut board = browser.new_page("wallboard");
    board.navigate(&format!("{base}/web/wallboard.html"));
    board.fill("#login-user", "supervisor");
    board.fill("#login-pass", "supervisor-password");
    board.click("#login-btn");
    board.wait_for(
        "the wall-board with the live WebSocket",
        "!document.querySelector('#board').classList.contains('hidden') && \
         document.querySelector('#ws-status').dataset.connected === 'true'",
    );

    // --- nobody signed in, no calls today; last week's call asks for one --
    board.wait_for(
        "general's forecast: agents needed, none ready, short and red, an empty chart",
        &card(&format!(
            "Number(c.dataset.needed) >= 1 && c.dataset.ready === '0' && c.dataset.short === 'true' \
             && getComputedStyle(c.querySelector('.needed-ready')).color === '{RED}' \
             && c.querySelectorAll('svg.chart rect.arrivals').length === 8 \
             && {LAST_BAR}.dataset.arrivals === '0'"
        )),
    );
    let shown = figure(&mut board);
    assert!(
        shown.starts_with("需要 ") && shown.contains(" / 就绪 0"),
        "{shown:?}"
    );
    board.screenshot("nobody");

    // --- the agent's phone registers: one ready ---------------------------
    common::register(&h, "2001", &NET.agent(0));
    let phone = Sipp::start(
        "agent_answer_echo.xml",
        &NET.agent(0),
        &["-m", "3", "-rtp_echo", "-s", "2001"],
    );
    board.wait_for("one agent ready", &card("c.dataset.ready === '1'"));
    board.screenshot("one-ready");

    // --- three calls, one after the other -----------------------------------
    let callers = Sipp::start(
        "carrier_speaks_at_once.xml",
        &NET.carrier(),
        &["-s", "12399", "-m", "3", "-l", "1", &NET.sip()],
    );
    // The first call, still up, is in the newest bar already.
    board.wait_for(
        "the call in progress counted in the chart's newest bar",
        &card(&format!(
            "Number({LAST_BAR}.dataset.arrivals) >= 1 && \
             document.querySelector('#active-calls tbody tr[data-call-id]') !== null"
        )),
    );
    board.screenshot("during-the-first-call");
    callers.wait(Duration::from_secs(90)).assert_ok(&h);
    phone.wait(Duration::from_secs(30)).assert_ok(&h);
    board.wait_for(
        "three calls in the newest bar, answered within 20 s, one agent needed and ready",
        &card(&format!(
            "{LAST_BAR}.dataset.arrivals === '3' \
             && c.querySelectorAll('svg.chart circle.rate-point').length >= 1 \
             && [...c.querySelectorAll('svg.chart circle.rate-point')].at(-1).dataset.rate === '1' \
             && c.dataset.needed === '1' && c.dataset.ready === '1' && c.dataset.short === 'false' \
             && getComputedStyle(c.querySelector('.needed-ready')).color === '{GREEN}' \
             && Number(c.querySelector('svg.chart rect.forecast-bar').dataset.expected) > 0"
        )),
    );
    board.screenshot("after-three-calls");
    let needed: u32 = board
        .attr("#forecast-general", "data-needed")
        .and_then(|n| n.parse().ok())
        .expect("a number needed");

    // The API says the same, with last week's call as the prior.
    let api = Api::new(NET);
    let sup = api.login("supervisor", "supervisor-password");
    let (code, v) = api.get("/api/v1/forecast", &sup);
    assert_eq!(code, 200, "{v}");
    let g = v["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group_id"] == "general"))
        .unwrap_or_else(|| panic!("general in {v}"))
        .clone();
    assert_eq!(g["agents_needed"], needed, "{g}");
    assert_eq!(g["agents_ready"], 1, "{g}");
    assert!(g["prior_per_hour"].as_f64().is_some_and(|p| p > 0.0), "{g}");
    assert!(g["erlang_c"]["agents_needed"].as_u64().is_some(), "{g}");
    assert!(g["erlang_a"]["agents_needed"].as_u64().is_some(), "{g}");
    assert_eq!(g["history"].as_array().map(Vec::len), Some(8), "{g}");
    assert_eq!(g["history"][7]["arrivals"], 3, "{g}");
    assert!(g["handle_secs"].as_f64().is_some_and(|s| s > 0.0), "{g}");
    // An agent may not see it.
    let agent = api.login("2001", "agent-2001-password");
    let (code, v) = api.get("/api/v1/forecast", &agent);
    assert_eq!(code, 403, "{v}");

    // --- the supervisor signs the agent out: short, shown red --------------
    let (code, v) = api.post(
        "/api/v1/agent/state",
        &sup,
        r#"{"state": "logged_out", "agent_id": "A2001"}"#,
    );
    assert_eq!(code, 200, "{v}");
    board.wait_for(
        "ready 0 < needed: the figure in the warning colour",
        &card(&format!(
            "c.dataset.ready === '0' && c.dataset.short === 'true' \
             && getComputedStyle(c.querySelector('.needed-ready')).color === '{RED}'"
        )),
    );
    let shown = figure(&mut board);
    assert!(
        shown.contains(&format!("需要 {needed} / 就绪 0")),
        "{shown:?}"
    );
    board.screenshot("short");
    assert!(
        !board.console().contains("exception"),
        "the wall-board threw:\n{}",
        board.console()
    );
    eprintln!("screenshots: {}", artifacts.dir().display());
}
