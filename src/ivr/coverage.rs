//! Whether the holiday calendars in use still cover the dates they are
//! asked about (issue 12 item 8: "a holiday calendar that runs out is a
//! loud warning at start and on /healthz, not a silent fallback").
//!
//! A schedule asked about a year its holiday calendar lists nothing for
//! treats that year's public holidays as ordinary days and its 调休
//! Saturdays as days off: the hotline would open on 春节 and stay closed on
//! the weekends worked instead. The State Council publishes each year's
//! arrangements around November of the year before, so the rule is:
//!
//! - a calendar that lists nothing for the **current** year is a gap;
//! - in the **last [`NEXT_YEAR_NOTICE_DAYS`] days** of a year, a calendar
//!   that lists nothing for the **next** year is a gap too (time to add it).
//!
//! Only calendars a schedule includes count, each judged on the local date
//! at its schedules' UTC offset. Pure: the time is passed in.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::calendar::Calendars;
use crate::time::civil::{local, Date};

/// How many days before 1 January a calendar must list the new year.
pub const NEXT_YEAR_NOTICE_DAYS: i64 = 60;

/// A holiday calendar that lists nothing for a year it will be asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageGap {
    /// The holiday calendar's name (`cn`).
    pub calendar: String,
    /// Its file.
    pub path: PathBuf,
    /// The year it lists nothing for.
    pub year: u16,
    /// Days until that year starts (`None`: it has started).
    pub starts_in_days: Option<i64>,
    /// The schedules that include the calendar, sorted.
    pub schedules: Vec<String>,
}

impl fmt::Display for CoverageGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schedules = self
            .schedules
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "holiday calendar {:?} ({}) lists nothing for {}",
            self.calendar,
            self.path.display(),
            self.year
        )?;
        match self.starts_in_days {
            Some(days) => write!(
                f,
                ", which starts in {days} days: schedules {schedules} will treat that year's \
                 public holidays and adjusted working days (调休) as ordinary days"
            )?,
            None => write!(
                f,
                ": schedules {schedules} treat that year's public holidays and adjusted \
                 working days (调休) as ordinary days"
            )?,
        }
        write!(
            f,
            "; add the State Council's {} arrangements to the file",
            self.year
        )
    }
}

/// The year `calendar_years` should list but does not, on local `today`,
/// with the days until it starts (`None`: the current year).
pub fn missing_year(
    calendar_years: &std::collections::BTreeSet<u16>,
    today: Date,
) -> Option<(u16, Option<i64>)> {
    let year = today.year();
    if !calendar_years.contains(&year) {
        return Some((year, None));
    }
    let next = year.checked_add(1)?;
    let new_year = Date::new(i64::from(next), 1, 1)?;
    let days = new_year.days() - today.days();
    (days <= NEXT_YEAR_NOTICE_DAYS && !calendar_years.contains(&next)).then_some((next, Some(days)))
}

/// Every gap in the holiday calendars `calendars`' schedules include, at
/// `unix_secs`, sorted by calendar name.
pub fn gaps(calendars: &Calendars, unix_secs: i64) -> Vec<CoverageGap> {
    let mut found: BTreeMap<(String, u16), CoverageGap> = BTreeMap::new();
    for name in calendars.names() {
        let Some(schedule) = calendars.schedule(name) else {
            continue;
        };
        let Some(holidays) = schedule
            .holidays()
            .and_then(|h| calendars.holiday_calendar(h))
        else {
            continue;
        };
        let today = local(unix_secs, schedule.utc_offset_minutes()).date;
        let Some((year, starts_in_days)) = missing_year(&holidays.years(), today) else {
            continue;
        };
        found
            .entry((holidays.name().to_string(), year))
            .or_insert_with(|| CoverageGap {
                calendar: holidays.name().to_string(),
                path: holidays.path().to_path_buf(),
                year,
                starts_in_days,
                schedules: Vec::new(),
            })
            .schedules
            .push(name.to_string());
    }
    found.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::calendar::Schedule;
    use crate::ivr::holidays::HolidayCalendar;
    use crate::time::civil::to_unix;
    use std::path::Path;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn years(list: &[u16]) -> std::collections::BTreeSet<u16> {
        list.iter().copied().collect()
    }

    /// (name, years listed, today, expected gap).
    type Case = (
        &'static str,
        &'static [u16],
        &'static str,
        Option<(u16, Option<i64>)>,
    );

    #[test]
    fn missing_year_rule_table() {
        let cases: [Case; 8] = [
            (
                "covers this year, far from its end",
                &[2026],
                "2026-06-01",
                None,
            ),
            (
                "no entries for this year",
                &[2025],
                "2026-06-01",
                Some((2026, None)),
            ),
            ("empty calendar", &[], "2026-01-01", Some((2026, None))),
            ("61 days before: not yet", &[2026], "2026-11-01", None),
            (
                "60 days before: next year due",
                &[2026],
                "2026-11-02",
                Some((2027, Some(60))),
            ),
            ("31 December", &[2026], "2026-12-31", Some((2027, Some(1)))),
            ("both years listed", &[2026, 2027], "2026-12-31", None),
            (
                "a leap year: the same 2 November",
                &[2028],
                "2028-11-02",
                Some((2029, Some(60))),
            ),
        ];
        for (name, listed, today, want) in cases {
            assert_eq!(missing_year(&years(listed), d(today)), want, "{name}");
        }
    }

    fn calendars(holidays: &[(&str, &str)], schedules: &[(&str, &str)]) -> Calendars {
        let h = holidays
            .iter()
            .map(|(name, text)| {
                HolidayCalendar::parse(Path::new(&format!("holidays/{name}.toml")), text).unwrap()
            })
            .collect();
        let s = schedules
            .iter()
            .map(|(name, cal)| {
                let text = format!(
                    "utc_offset_minutes = 480\nholidays = \"{cal}\"\n[weekly]\nmon = [\"08:00-18:00\"]\n"
                );
                Schedule::parse(Path::new(&format!("schedules/{name}.toml")), &text).unwrap()
            })
            .collect();
        Calendars::new(s, h).unwrap()
    }

    #[test]
    fn gaps_name_calendar_year_and_schedules_and_skip_unused_calendars() {
        let old = "[[holiday]]\nname = \"元旦\"\nfrom = \"2020-01-01\"\n";
        let current = "[[holiday]]\nname = \"元旦\"\nfrom = \"2026-01-01\"\n";
        let unused = old;
        let c = calendars(
            &[("old", old), ("cur", current), ("unused", unused)],
            &[("b-desk", "old"), ("a-line", "old"), ("c-main", "cur")],
        );
        // 2026-06-01 00:30 in China: only "old" is a gap.
        let june = to_unix(d("2026-06-01"), 30, 480);
        let got = gaps(&c, june);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].calendar, "old");
        assert_eq!(got[0].year, 2026);
        assert_eq!(got[0].starts_in_days, None);
        assert_eq!(got[0].schedules, ["a-line", "b-desk"]);
        let text = got[0].to_string();
        assert!(
            text.starts_with("holiday calendar \"old\" (holidays/old.toml) lists nothing for 2026: schedules \"a-line\", \"b-desk\""),
            "{text}"
        );
        // 2026-12-06 in China: "cur" lacks 2027 as well.
        let december = to_unix(d("2026-12-06"), 600, 480);
        let got = gaps(&c, december);
        let summary: Vec<(&str, u16, Option<i64>)> = got
            .iter()
            .map(|g| (g.calendar.as_str(), g.year, g.starts_in_days))
            .collect();
        assert_eq!(summary, [("cur", 2027, Some(26)), ("old", 2026, None)]);
        assert!(got[0].to_string().contains("which starts in 26 days"));
    }

    #[test]
    fn the_local_date_decides_around_new_year() {
        let current = "[[holiday]]\nname = \"元旦\"\nfrom = \"2027-01-01\"\n";
        let c = calendars(&[("cur", current)], &[("s", "cur")]);
        // 2026-12-31 17:00 UTC is already 2027-01-01 01:00 in China.
        let t = to_unix(d("2026-12-31"), 17 * 60, 0);
        assert!(gaps(&c, t).is_empty(), "{:?}", gaps(&c, t));
        let before = to_unix(d("2026-12-31"), 15 * 60, 0);
        assert_eq!(gaps(&c, before)[0].year, 2026);
    }
}
