//! A holiday calendar that has run out is loud (issue 12 item 8): a
//! schedule's public-holiday calendar that lists nothing for the current
//! year (or, in the year's last 60 days, for the next) makes hotline log a
//! warning at start and show it under `warnings` on `GET /healthz`, instead
//! of silently treating the holidays as ordinary days. A calendar that
//! covers this year and the next stays quiet.
#![allow(clippy::disallowed_methods)] // the test reads the clock to write "this year"

mod common;

use std::path::Path;

use common::{Hotline, Net};
use hotline::time::civil::Date;

/// This year in China Standard Time (the schedules' offset).
fn this_year() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    i64::from(Date::from_days((unix + 480 * 60).div_euclid(86_400)).year())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn schedule(holidays: &str) -> String {
    format!(
        "utc_offset_minutes = 480\nholidays = \"{holidays}\"\nholiday_hours = []\n\n[weekly]\nmon = [\"08:00-18:00\"]\n"
    )
}

#[test]
fn a_holiday_calendar_without_this_year_is_a_warning_at_start_and_on_healthz() {
    let net = Net(154);
    let dir = tempfile::tempdir().unwrap();
    let calendars = dir.path().join("calendars");
    let year = this_year();
    // "stale" stopped at 2020; "fresh" lists this year and the next.
    write(
        &calendars.join("holidays/stale.toml"),
        "[[holiday]]\nname = \"元旦\"\nfrom = \"2020-01-01\"\n",
    );
    write(
        &calendars.join("holidays/fresh.toml"),
        &format!(
            "[[holiday]]\nname = \"元旦\"\nfrom = \"{year}-01-01\"\n\n[[holiday]]\nname = \"元旦\"\nfrom = \"{}-01-01\"\n",
            year + 1
        ),
    );
    write(&calendars.join("schedules/desk.toml"), &schedule("stale"));
    write(&calendars.join("schedules/line.toml"), &schedule("fresh"));
    let data = dir.path().join("var");
    let extra = format!(
        "[ivr]\nflows_dir = \"{}\"\ncalendars_dir = \"{}\"\n",
        data.join("no-flows").display(),
        calendars.display()
    );
    let text = common::config(net, &data, &extra);
    let h = Hotline::start_with(net, dir, &text);

    let health = h.healthz();
    let warnings: Vec<&str> = health["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("healthz has warnings: {health}"))
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("\"stale\"")
            && warnings[0].contains(&year.to_string())
            && warnings[0].contains("desk"),
        "names the calendar, the year and the schedule: {warnings:?}"
    );
    // Logged at start, and not again while nothing changes (the IVR's
    // files are checked every 2 s).
    std::thread::sleep(std::time::Duration::from_secs(5));
    let log = h.log();
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("holiday calendar \"stale\""))
        .collect();
    assert_eq!(logged.len(), 1, "logged once:\n{}", h.tail_log());
    assert!(
        !log.contains("holiday calendar \"fresh\""),
        "a calendar that covers this year and the next is quiet:\n{}",
        h.tail_log()
    );
}
