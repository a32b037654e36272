//! `GET /metrics` (issue 15 §4): after real calls through a skill group —
//! SIPp callers that speak at the answer, a SIPp agent phone echoing —
//! Prometheus's text format carries the calls, the group's queue and its
//! agents by state, the relayed legs' RTP loss and jitter histograms, the
//! outbox per sink, the store's latency and readiness, the group's agent
//! forecast (issue 19); every sample line is well-formed and no caller
//! number appears.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{register, Hotline, Net, Sipp};

const NET: Net = Net(55);

const EXTRA: &str = r#"
[[agent]]
user = "2001"
password = "pass2001"
job_number = "A2001"
skills = { general = 5 }
auto_login = true

[[group]]
id = "general"
ring_timeout_secs = 5
acw_secs = 1

[[did]]
number = "12399"
queue = "general"
"#;

/// Sample lines by series (`name{labels}`), values parsed; panics on a
/// line that is neither a comment nor `series value`.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(
            series.starts_with("hotline_"),
            "every series is hotline's: {line}"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        out.insert(series.to_string(), value);
    }
    out
}

#[test]
fn metrics_after_calls_through_a_group() {
    let jsonl = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "{EXTRA}\n[events]\njsonl_dir = \"{}\"\n",
        jsonl.path().display()
    );
    let h = Hotline::start(NET, &extra);
    register(&h, "2001", &NET.agent(0));
    let agent = Sipp::start(
        "agent_answer_echo.xml",
        &NET.agent(0),
        &["-m", "2", "-rtp_echo", "-s", "2001"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let callers = Sipp::start(
        "carrier_speaks_at_once.xml",
        &NET.carrier(),
        &["-s", "12399", "-m", "2", "-l", "1", &NET.sip()],
    );
    callers.wait(Duration::from_secs(60)).assert_ok(&h);
    agent.wait(Duration::from_secs(30)).assert_ok(&h);
    h.wait_for("the switch to be idle", Duration::from_secs(20), |v| {
        v["calls"]["active"] == 0 && v["media"]["sessions"] == 0
    });

    let http = format!("{}:8080", NET.ip(1));
    let scrape = || {
        let (code, text) =
            common::http_send(&http, "GET", "/metrics", None, None).expect("GET /metrics");
        assert_eq!(code, 200, "{text}");
        text
    };
    // The JSONL sink delivers on its own time: wait (bounded) for its
    // backlog to empty.
    let mut text = scrape();
    for _ in 0..100 {
        let m = samples(&text);
        let key = "hotline_outbox_backlog{sink=\"jsonl\"}";
        if m.get(key) == Some(&0.0)
            && m.contains_key("hotline_outbox_delivered_total{sink=\"jsonl\"}")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        text = scrape();
    }
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    assert!(!text.contains("15550100"), "no caller numbers in metrics");
    let m = samples(&text);
    let get = |series: &str| {
        *m.get(series)
            .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
    };
    assert_eq!(get("hotline_calls_started_total"), 2.0);
    assert_eq!(get("hotline_calls_answered_total"), 2.0);
    assert_eq!(get("hotline_calls_active"), 0.0);
    assert_eq!(get("hotline_ready"), 1.0);
    assert_eq!(get("hotline_queue_calls_waiting{group=\"general\"}"), 0.0);
    assert_eq!(
        get("hotline_queue_longest_wait_seconds{group=\"general\"}"),
        0.0
    );
    // 2001 in after-call work or idle again, the default agents logged out.
    let signed_in =
        get("hotline_agents{state=\"idle\"}") + get("hotline_agents{state=\"after_call_work\"}");
    assert_eq!(signed_in, 1.0, "{text}");
    // Two calls, two relayed legs each, all of which received RTP.
    assert_eq!(
        get("hotline_rtp_leg_jitter_milliseconds_count"),
        4.0,
        "{text}"
    );
    assert_eq!(get("hotline_rtp_leg_loss_fraction_count"), 4.0, "{text}");
    assert_eq!(
        get("hotline_rtp_leg_loss_fraction_bucket{le=\"0.001\"}"),
        4.0,
        "no loss on loopback: {text}"
    );
    assert!(get("hotline_store_latency_seconds_count") > 0.0, "{text}");
    // The forecast (issue 19): two callers within the last quarter hour
    // make a rate, and someone must answer them; 2001 is ready.
    assert_eq!(
        get("hotline_forecast_agents_ready{group=\"general\"}"),
        1.0,
        "{text}"
    );
    assert!(get("hotline_forecast_arrivals_per_hour{group=\"general\"}") > 0.0);
    for model in ["erlang_a", "erlang_c"] {
        let needed = get(&format!(
            "hotline_forecast_agents_needed{{group=\"general\",model=\"{model}\"}}"
        ));
        assert!(needed >= 1.0, "{model}: {text}");
        let rate = get(&format!(
            "hotline_forecast_answer_rate_20s{{group=\"general\",model=\"{model}\"}}"
        ));
        assert!((0.0..=1.0).contains(&rate), "{model}: {text}");
    }
    // The JSONL sink: every event delivered, none dead.
    assert!(
        get("hotline_outbox_delivered_total{sink=\"jsonl\"}") > 0.0,
        "{text}"
    );
    assert_eq!(get("hotline_outbox_dead_letters{sink=\"jsonl\"}"), 0.0);
    assert!(
        m.contains_key("hotline_outbox_backlog{sink=\"jsonl\"}"),
        "{text}"
    );
}
