//! Public-holiday calendars with adjusted working days (调休), shared by
//! schedules (IVR issue §2: "date exceptions, including Chinese public
//! holidays and the adjusted working days (调休) that move a weekend day to
//! work").
//!
//! # File format: `config/holidays/<name>.toml`
//!
//! ```toml
//! name = "cn"                       # optional; if given, must equal the file stem
//! description = "国务院办公厅 notices" # optional
//!
//! [[holiday]]                       # days off, both ends inclusive
//! name = "春节 Spring Festival"      # required, non-empty
//! from = "2026-02-15"               # required
//! to = "2026-02-23"                 # optional, defaults to `from` (one day)
//!
//! [[workday]]                       # 调休: a Saturday or Sunday that is worked
//! date = "2026-02-14"               # required
//! name = "春节调休"                  # required, non-empty
//! ```
//!
//! Dates are strings `"YYYY-MM-DD"` or TOML local dates (`2026-02-14`,
//! unquoted). Rules, all checked and reported at once with file and line:
//! `from` ≤ `to`; a range lasts at most 31 days (catches a mistyped month);
//! holiday ranges do not overlap one another; every workday is a Saturday or
//! Sunday (any other day is already worked), is listed once and does not fall
//! inside a holiday. Entries need not be in date order. Unknown keys are
//! errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::calendar_error::{file_name, CalendarError};
use super::tomlfile::Reader;
use crate::time::civil::Date;

/// The longest holiday range accepted, in days.
pub const MAX_HOLIDAY_DAYS: i64 = 31;

/// A run of public-holiday days off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// Its name, e.g. `春节 Spring Festival`.
    pub name: String,
    /// First day off.
    pub from: Date,
    /// Last day off (inclusive).
    pub to: Date,
}

impl Holiday {
    /// Whether `date` is one of its days.
    pub fn contains(&self, date: Date) -> bool {
        self.from <= date && date <= self.to
    }
}

/// A holiday calendar: days off and adjusted working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayCalendar {
    name: String,
    description: Option<String>,
    path: PathBuf,
    /// Sorted by `from`, not overlapping.
    holidays: Vec<Holiday>,
    workdays: BTreeMap<Date, String>,
}

impl HolidayCalendar {
    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<HolidayCalendar, Vec<CalendarError>> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            vec![CalendarError::Read {
                path: path.to_path_buf(),
                source,
            }]
        })?;
        HolidayCalendar::parse(path, &text)
    }

    /// Parse `text`, reporting problems against `path` (whose stem is the
    /// calendar's name unless the file sets `name`).
    pub fn parse(path: &Path, text: &str) -> Result<HolidayCalendar, Vec<CalendarError>> {
        let (doc, mut r) =
            Reader::parse(text).map_err(|p| vec![CalendarError::from_problem(path, p)])?;
        let top = doc.as_table();
        r.unknown_keys(
            top,
            "",
            &["name", "description", "holiday", "workday"],
            |_| None,
        );
        let name = file_name(&mut r, top, path);
        let description = r.string(top, "", "description").map(|(s, _)| s.to_string());

        let mut holidays: Vec<(Holiday, Option<usize>)> = Vec::new();
        for (i, (t, span)) in r.tables(top, "", "holiday").into_iter().enumerate() {
            let key = format!("holiday[{i}]");
            r.unknown_keys(t, &key, &["name", "from", "to"], |_| None);
            let hname = required_name(&mut r, t, &key, span.clone());
            let from = r.date(t, &key, "from");
            if from.is_none() && !t.contains_key("from") {
                r.problem(
                    span.clone(),
                    format!("{key}.from"),
                    "missing; the first day off",
                );
            }
            let to = r.date(t, &key, "to");
            let Some((from, from_span)) = from else {
                continue;
            };
            let (to, to_span) = match (to, t.contains_key("to")) {
                (Some(to), _) => to,
                (None, true) => continue, // bad `to`, already reported
                (None, false) => (from, from_span.clone()),
            };
            if to < from {
                r.problem(
                    to_span,
                    format!("{key}.to"),
                    format!("{to} is before from = {from}; holiday ranges run forwards"),
                );
                continue;
            }
            let days = to.days() - from.days() + 1;
            if days > MAX_HOLIDAY_DAYS {
                r.problem(
                    to_span,
                    format!("{key}.to"),
                    format!(
                        "{from}..{to} is {days} days; at most {MAX_HOLIDAY_DAYS} \
                         (a mistyped month?)"
                    ),
                );
                continue;
            }
            let line = r.line(from_span.clone());
            if let Some((other, other_line)) =
                holidays.iter().find(|(h, _)| h.from <= to && from <= h.to)
            {
                let at = other_line
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                r.problem(
                    from_span,
                    format!("{key}.from"),
                    format!(
                        "{from}..{to} overlaps {} {}..{}{at}",
                        other.name, other.from, other.to
                    ),
                );
                continue;
            }
            if let Some(hname) = hname {
                holidays.push((
                    Holiday {
                        name: hname,
                        from,
                        to,
                    },
                    line,
                ));
            }
        }
        let holidays: Vec<Holiday> = {
            let mut v: Vec<Holiday> = holidays.into_iter().map(|(h, _)| h).collect();
            v.sort_by_key(|h| h.from);
            v
        };

        let mut workdays: BTreeMap<Date, String> = BTreeMap::new();
        for (i, (t, span)) in r.tables(top, "", "workday").into_iter().enumerate() {
            let key = format!("workday[{i}]");
            r.unknown_keys(t, &key, &["date", "name"], |_| None);
            let wname = required_name(&mut r, t, &key, span.clone());
            let date = r.date(t, &key, "date");
            if date.is_none() && !t.contains_key("date") {
                r.problem(
                    span.clone(),
                    format!("{key}.date"),
                    "missing; the weekend day worked",
                );
            }
            let (Some(wname), Some((date, date_span))) = (wname, date) else {
                continue;
            };
            let wd = date.weekday();
            let dkey = format!("{key}.date");
            if !wd.is_weekend() {
                r.problem(
                    date_span,
                    dkey,
                    format!(
                        "{date} is a {wd}, already a working day; an adjusted working day \
                         (调休) is a Saturday or Sunday"
                    ),
                );
            } else if let Some(h) = holidays.iter().find(|h| h.contains(date)) {
                r.problem(
                    date_span,
                    dkey,
                    format!("{date} is inside holiday {} {}..{}", h.name, h.from, h.to),
                );
            } else if let std::collections::btree_map::Entry::Vacant(e) = workdays.entry(date) {
                e.insert(wname);
            } else {
                r.problem(date_span, dkey, format!("{date} is listed twice"));
            }
        }

        if !r.problems.is_empty() {
            return Err(r
                .problems
                .into_iter()
                .map(|p| CalendarError::from_problem(path, p))
                .collect());
        }
        Ok(HolidayCalendar {
            name: name.unwrap_or_default(),
            description,
            path: path.to_path_buf(),
            holidays,
            workdays,
        })
    }

    /// The calendar's name (the file stem), as schedules' `holidays = "…"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The free-text description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file it was parsed from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The holidays, in date order.
    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    /// The adjusted working days, in date order, with their names.
    pub fn workdays(&self) -> impl Iterator<Item = (Date, &str)> {
        self.workdays.iter().map(|(d, n)| (*d, n.as_str()))
    }

    /// The holiday `date` falls in, if any (binary search).
    pub fn holiday_on(&self, date: Date) -> Option<&Holiday> {
        // The last holiday starting on or before `date` is the only candidate:
        // ranges do not overlap.
        let i = self.holidays.partition_point(|h| h.from <= date);
        let h = self.holidays.get(i.checked_sub(1)?)?;
        h.contains(date).then_some(h)
    }

    /// The name of the adjusted working day on `date`, if it is one.
    pub fn workday_on(&self, date: Date) -> Option<&str> {
        self.workdays.get(&date).map(String::as_str)
    }

    /// The years the calendar lists anything for. A year missing here means
    /// that year's arrangements have not been loaded yet (the State Council
    /// publishes each year's around November of the year before).
    pub fn years(&self) -> BTreeSet<u16> {
        let mut out: BTreeSet<u16> = self
            .holidays
            .iter()
            .flat_map(|h| [h.from.year(), h.to.year()])
            .collect();
        out.extend(self.workdays.keys().map(|d| d.year()));
        out
    }
}

/// A required non-empty `name` under `key`.
fn required_name(
    r: &mut Reader<'_>,
    t: &dyn toml_edit::TableLike,
    key: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<String> {
    match r.string(t, key, "name") {
        Some((s, span)) if s.trim().is_empty() => {
            r.problem(span, format!("{key}.name"), "empty; name it, e.g. \"春节\"");
            None
        }
        Some((s, _)) => Some(s.trim().to_string()),
        None => {
            if !t.contains_key("name") {
                r.problem(span, format!("{key}.name"), "missing");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HolidayCalendar, Vec<String>> {
        HolidayCalendar::parse(Path::new("holidays/cn.toml"), text)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn lookups() {
        let c = parse(
            r#"
[[holiday]]
name = "国庆"
from = 2026-10-01
to = "2026-10-07"
[[holiday]]
name = "元旦"
from = "2026-01-01"
[[workday]]
date = "2026-10-10"
name = "国庆调休"
"#,
        )
        .unwrap();
        assert_eq!(c.name(), "cn");
        assert_eq!(c.holidays()[0].name, "元旦");
        assert_eq!(c.holiday_on(d("2026-01-01")).unwrap().name, "元旦");
        assert!(c.holiday_on(d("2026-01-02")).is_none());
        assert!(c.holiday_on(d("2025-12-31")).is_none());
        assert_eq!(c.holiday_on(d("2026-10-07")).unwrap().name, "国庆");
        assert!(c.holiday_on(d("2026-10-08")).is_none());
        assert_eq!(c.workday_on(d("2026-10-10")), Some("国庆调休"));
        assert_eq!(c.workday_on(d("2026-10-11")), None);
        assert_eq!(c.years().into_iter().collect::<Vec<_>>(), [2026]);
    }

    #[test]
    fn every_error_at_once() {
        let errs = parse(
            r#"name = "other"
colour = "red"
[[holiday]]
name = "a"
from = "2026-02-15"
to = "2026-02-10"
[[holiday]]
name = ""
from = "2026-02-15"
[[holiday]]
from = "2026-01-01"
to = "2026-03-01"
[[holiday]]
name = "b"
from = "2026-05-01"
to = "2026-05-05"
[[holiday]]
name = "c"
from = "2026-05-05"
[[holiday]]
name = "d"
to = "2026-05-05"
[[holiday]]
name = "e"
from = "2026-02-30"
[[workday]]
date = "2026-02-13"
name = "x"
[[workday]]
date = "2026-05-02"
name = "x"
[[workday]]
date = "2026-05-09"
name = "x"
[[workday]]
date = "2026-05-09"
name = "x"
[[workday]]
name = "x"
[[workday]]
date = "2026-05-16"
when = 1
"#,
        )
        .unwrap_err();
        let want = [
            "holidays/cn.toml:2: colour: unknown key; expected one of: name, description, holiday, workday",
            "holidays/cn.toml:1: name: \"other\" differs from the file name; name it \"cn\" or rename the file",
            "holidays/cn.toml:6: holiday[0].to: 2026-02-10 is before from = 2026-02-15; holiday ranges run forwards",
            "holidays/cn.toml:8: holiday[1].name: empty; name it, e.g. \"春节\"",
            "holidays/cn.toml:10: holiday[2].name: missing",
            "holidays/cn.toml:12: holiday[2].to: 2026-01-01..2026-03-01 is 60 days; at most 31 (a mistyped month?)",
            "holidays/cn.toml:19: holiday[4].from: 2026-05-05..2026-05-05 overlaps b 2026-05-01..2026-05-05 (line 15)",
            "holidays/cn.toml:20: holiday[5].from: missing; the first day off",
            "holidays/cn.toml:25: holiday[6].from: \"2026-02-30\" is not a calendar date",
            "holidays/cn.toml:27: workday[0].date: 2026-02-13 is a Fri, already a working day; an adjusted working day (调休) is a Saturday or Sunday",
            "holidays/cn.toml:30: workday[1].date: 2026-05-02 is inside holiday b 2026-05-01..2026-05-05",
            "holidays/cn.toml:36: workday[3].date: 2026-05-09 is listed twice",
            "holidays/cn.toml:38: workday[4].date: missing; the weekend day worked",
            "holidays/cn.toml:42: workday[5].when: unknown key; expected one of: date, name",
            "holidays/cn.toml:40: workday[5].name: missing",
        ];
        assert_eq!(errs, want, "\n{}", errs.join("\n"));
    }

    #[test]
    fn syntax_and_types() {
        let e = parse("[[holiday]\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("holidays/cn.toml:1: TOML syntax: "),
            "{e:?}"
        );
        let e = parse("holiday = 3\nworkday = [1]\n").unwrap_err();
        assert_eq!(
            e,
            [
                "holidays/cn.toml:1: holiday: expected [[holiday]] sections, found integer",
                "holidays/cn.toml:2: workday: expected [[workday]] sections, found array",
            ]
        );
    }

    #[test]
    fn reads_files() {
        let e = HolidayCalendar::load(Path::new("/nonexistent/cn.toml")).unwrap_err();
        assert!(e[0]
            .to_string()
            .starts_with("/nonexistent/cn.toml: cannot read: "));
    }
}
