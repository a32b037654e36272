//! Opening hours within one day: `"HH:MM-HH:MM"` ranges, as written in
//! schedule files (IVR issue §2, "weekly hours and date exceptions").
//!
//! A range is start-inclusive, end-exclusive, in local minutes since
//! midnight. Start is `00:00`–`23:59`; end is after start and at most
//! `24:00` (the whole day is `"00:00-24:00"`). Hours never cross midnight:
//! overnight opening is written as `"20:00-24:00"` on one day and
//! `"00:00-08:00"` on the next. A day's list must be in order and must not
//! overlap; ranges may touch (`"08:00-12:00", "12:00-13:00"`).

use std::fmt;

use crate::time::civil::{HhMm, MINUTES_PER_DAY};

/// One open range within a day, in minutes since local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// First open minute, 0..1440.
    pub start: u16,
    /// First closed minute after the range, start < end ≤ 1440.
    pub end: u16,
}

impl Interval {
    /// Whether `minute` (since local midnight) falls within the range.
    pub fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }

    /// Parse `"HH:MM-HH:MM"`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Interval, String> {
        let shape = || {
            format!("{s:?} is not a range \"HH:MM-HH:MM\" (24-hour clock, e.g. \"08:30-12:00\")")
        };
        let (a, b) = s.split_once('-').ok_or_else(shape)?;
        let start = clock(a).ok_or_else(shape)?;
        let end = clock(b).ok_or_else(shape)?;
        if start >= MINUTES_PER_DAY {
            return Err(format!("{s:?}: a range cannot start at 24:00"));
        }
        if end <= start {
            return Err(format!(
                "{s:?}: end {b} is not after start {a}; hours do not cross midnight, \
                 write \"{a}-24:00\" on this day and \"00:00-{b}\" on the next"
            ));
        }
        Ok(Interval { start, end })
    }
}

/// `HH:MM` with HH 00..=24 and MM 00..=59, `24:00` the only time in hour 24
/// (so nothing is past the end of the day); other values (`25:00`, `12:60`,
/// `24:30`) are rejected.
fn clock(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let digit = |i: usize| b[i].is_ascii_digit().then(|| u16::from(b[i] - b'0'));
    let h = digit(0)? * 10 + digit(1)?;
    let m = digit(3)? * 10 + digit(4)?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl fmt::Display for Interval {
    /// `08:30–12:00` (en dash, for people; files use `-`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", HhMm(self.start), HhMm(self.end))
    }
}

/// Parse a day's list of ranges; every bad element is reported with its index
/// (`Err((index, message))`), and a range that starts before the previous one
/// ends is an error ("in order, not overlapping").
pub fn parse_day<'s>(
    items: impl IntoIterator<Item = &'s str>,
) -> Result<Vec<Interval>, Vec<(usize, String)>> {
    let mut out: Vec<Interval> = Vec::new();
    let mut errors = Vec::new();
    for (i, s) in items.into_iter().enumerate() {
        match Interval::parse(s) {
            Ok(iv) => {
                if let Some(prev) = out.last() {
                    if iv.start < prev.end {
                        errors.push((
                            i,
                            format!(
                                "{s:?} starts before the previous range {prev} ends; \
                                 list ranges in order without overlap"
                            ),
                        ));
                        continue;
                    }
                }
                out.push(iv);
            }
            Err(e) => errors.push((i, e)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `open 08:30–12:00, 13:30–17:30`, or `closed` for an empty list.
pub struct Hours<'a>(pub &'a [Interval]);

impl fmt::Display for Hours<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("closed");
        }
        f.write_str("open ")?;
        for (i, iv) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{iv}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(
            Interval::parse("08:30-12:00"),
            Ok(Interval {
                start: 510,
                end: 720
            })
        );
        assert_eq!(
            Interval::parse("00:00-24:00"),
            Ok(Interval {
                start: 0,
                end: 1440
            })
        );
        assert_eq!(
            Interval::parse("23:59-24:00"),
            Ok(Interval {
                start: 1439,
                end: 1440
            })
        );
    }

    #[test]
    fn rejects_bad_ranges() {
        for (s, needle) in [
            ("25:00-26:00", "is not a range"),
            ("08:60-09:00", "is not a range"),
            ("8:30-12:00", "is not a range"),
            ("08:30–12:00", "is not a range"), // en dash
            ("08:30", "is not a range"),
            ("08:30-24:30", "is not a range"),
            ("24:00-24:00", "cannot start at 24:00"),
            ("12:00-12:00", "not after start"),
            ("20:00-08:00", "do not cross midnight"),
            ("", "is not a range"),
        ] {
            let e = Interval::parse(s).unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn day_lists() {
        assert_eq!(parse_day(["08:00-12:00", "12:00-13:00"]).unwrap().len(), 2);
        let e = parse_day(["13:00-14:00", "08:00-09:00", "bad", "13:30-15:00"]).unwrap_err();
        assert_eq!(e.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(e[0].1.contains("in order"));
        let day = parse_day(["08:30-12:00", "13:30-17:30"]).unwrap();
        assert_eq!(Hours(&day).to_string(), "open 08:30–12:00, 13:30–17:30");
        assert_eq!(Hours(&[]).to_string(), "closed");
        assert!(day[0].contains(510) && !day[0].contains(720) && !day[0].contains(509));
    }
}
