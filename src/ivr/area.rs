//! Caller number → administrative area, for the IVR `area` node ("caller's
//! number → administrative area code and region, from a prefix table file").
//!
//! # File format: `config/areas.csv`
//!
//! UTF-8 (a leading BOM is ignored), one row per line, LF or CRLF. Blank
//! lines and lines whose first non-blank character is `#` are skipped. The
//! first other line is the header, exactly `prefix,area_code,region`. Each
//! row has three comma-separated fields (no quoting; spaces around fields are
//! trimmed, so a region cannot contain a comma or `#`; `#` starts a comment
//! anywhere on a line):
//!
//! ```text
//! prefix,area_code,region
//! 0571,0571,浙江省杭州市       # fixed line: area code with its leading 0
//! 1390571,0571,浙江省杭州市    # mobile: 7-digit number block (号段)
//! ```
//!
//! - `prefix`: 1–18 ASCII digits, matched against the start of the
//!   normalised caller number ([`super::number`]);
//! - `area_code`: 1–18 ASCII digits; the telephone area code (`0571`) in the
//!   shipped sample, though a deployment may use the 6-digit division code
//!   (行政区划代码, `330100`) instead: it is passed through as is;
//! - `region`: non-empty text, e.g. `浙江省杭州市`.
//!
//! A prefix listed twice with the same area is accepted (merged number-block
//! databases repeat rows); with a different area it is an error. All
//! problems are reported at once as `path:line: message`.
//!
//! # Lookup
//!
//! The longest table prefix of the normalised number wins. Rows are kept as
//! `(length, value)` integer keys in one sorted `Vec` and areas are interned,
//! so a full carrier number-block database (~500,000 7-digit blocks, a few
//! thousand regions) costs ~16 bytes a row and no allocation per row. A
//! lookup binary-searches once per distinct prefix length present (three in
//! practice: 3, 4 and 7 digits), about 3 × 19 integer comparisons at that
//! size. Lookups happen once per call, so a trie's speed would buy nothing
//! and cost memory and code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::number::{all_digits, normalise_number};

/// Longest prefix (and area code) accepted, in digits: fits a `u64`.
pub const MAX_PREFIX_DIGITS: usize = 18;

/// The expected header line.
pub const HEADER: &str = "prefix,area_code,region";

/// An administrative area.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Area {
    /// Area code, e.g. `0571`.
    pub code: String,
    /// Region name, e.g. `浙江省杭州市`.
    pub region: String,
}

/// A problem with an area table file.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// File at fault.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A bad line.
    #[error("{}:{line}: {message}", .path.display())]
    Invalid {
        /// File at fault.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The prefix table: longest-prefix lookup of caller numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaTable {
    /// `(digits, value, index into areas)`, sorted by `(digits, value)`.
    rows: Vec<(u8, u64, u32)>,
    /// Distinct areas.
    areas: Vec<Area>,
    /// Bit `n` set when some prefix has `n` digits.
    lengths: u32,
}

/// `s` (all digits, at most 18) as an integer.
fn value(s: &str) -> u64 {
    s.bytes().fold(0, |n, c| n * 10 + u64::from(c - b'0'))
}

impl AreaTable {
    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<AreaTable, Vec<AreaError>> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            vec![AreaError::Read {
                path: path.to_path_buf(),
                source,
            }]
        })?;
        AreaTable::parse(path, &text)
    }

    /// Parse `text`, reporting every problem against `path`.
    pub fn parse(path: &Path, text: &str) -> Result<AreaTable, Vec<AreaError>> {
        let mut errors = Vec::new();
        let mut err = |line: usize, message: String| {
            errors.push(AreaError::Invalid {
                path: path.to_path_buf(),
                line,
                message,
            })
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut header_seen = false;
        let mut areas: Vec<Area> = Vec::new();
        let mut area_index: HashMap<Area, u32> = HashMap::new();
        // (digits, value) → (area index, line)
        let mut seen: HashMap<(u8, u64), (u32, usize)> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            // `#` starts a comment anywhere on the line (regions never
            // contain one).
            let l = raw.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if !header_seen {
                header_seen = true;
                if fields != ["prefix", "area_code", "region"] {
                    err(
                        line,
                        format!("expected the header line {HEADER:?}, found {l:?}"),
                    );
                }
                continue;
            }
            let [prefix, code, region] = fields[..] else {
                err(
                    line,
                    format!(
                        "{} fields; expected 3: prefix,area_code,region (no commas in a region)",
                        fields.len()
                    ),
                );
                continue;
            };
            let mut ok = true;
            for (what, s) in [("prefix", prefix), ("area_code", code)] {
                if !all_digits(s) || s.len() > MAX_PREFIX_DIGITS {
                    err(
                        line,
                        format!("{what} {s:?} is not 1-{MAX_PREFIX_DIGITS} digits 0-9"),
                    );
                    ok = false;
                }
            }
            if region.is_empty() {
                err(line, "empty region".to_string());
                ok = false;
            }
            if !ok {
                continue;
            }
            let area = Area {
                code: code.to_string(),
                region: region.to_string(),
            };
            let idx = match area_index.get(&area) {
                Some(&i) => i,
                None => {
                    let Ok(i) = u32::try_from(areas.len()) else {
                        err(line, "more than 2^32 distinct areas".to_string());
                        continue;
                    };
                    area_index.insert(area.clone(), i);
                    areas.push(area);
                    i
                }
            };
            // At most 18 digits: the length fits a u8.
            let key = (prefix.len() as u8, value(prefix));
            match seen.get(&key) {
                Some(&(prev, _)) if prev == idx => {}
                Some(&(prev, prev_line)) => {
                    let p = &areas[prev as usize];
                    let a = &areas[idx as usize];
                    err(
                        line,
                        format!(
                            "prefix {prefix} is {},{} here but {},{} on line {prev_line}",
                            a.code, a.region, p.code, p.region
                        ),
                    );
                }
                None => {
                    seen.insert(key, (idx, line));
                }
            }
        }
        if !header_seen {
            err(
                text.lines().count().max(1),
                format!("no header line; the first line must be {HEADER:?}"),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut rows: Vec<(u8, u64, u32)> =
            seen.into_iter().map(|((d, v), (a, _))| (d, v, a)).collect();
        rows.sort_unstable();
        let lengths = rows.iter().fold(0u32, |m, r| m | 1 << r.0);
        Ok(AreaTable {
            rows,
            areas,
            lengths,
        })
    }

    /// The area of caller `number` (any written form, normalised here), by
    /// longest prefix; `None` if no prefix matches or it is not a number.
    pub fn lookup(&self, number: &str) -> Option<&Area> {
        self.lookup_normalised(&normalise_number(number))
    }

    /// As [`AreaTable::lookup`] for a number already normalised.
    pub fn lookup_normalised(&self, number: &str) -> Option<&Area> {
        if !all_digits(number) {
            return None;
        }
        let longest = number.len().min(MAX_PREFIX_DIGITS);
        (1..=longest)
            .rev()
            .filter(|&n| self.lengths & (1 << n) != 0)
            .find_map(|n| {
                // n ≤ 18 fits a u8.
                let key = (n as u8, value(&number[..n]));
                let i = self.rows.binary_search_by(|r| (r.0, r.1).cmp(&key)).ok()?;
                self.areas.get(self.rows[i].2 as usize)
            })
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no prefixes.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(text: &str) -> AreaTable {
        AreaTable::parse(Path::new("areas.csv"), text).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        AreaTable::parse(Path::new("areas.csv"), text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn shipped() -> AreaTable {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/areas.csv");
        match AreaTable::load(&p) {
            Ok(t) => t,
            Err(e) => panic!(
                "{}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    #[test]
    fn trailing_comments_are_not_part_of_the_region() {
        let t = AreaTable::parse(
            Path::new("areas.csv"),
            "prefix,area_code,region\n0571,0571,浙江省杭州市   # fixed line\n",
        )
        .unwrap();
        let a = t.lookup("057188886666").unwrap();
        assert_eq!(&*a.region, "浙江省杭州市");
    }

    #[test]
    fn shipped_table() {
        let t = shipped();
        assert!((60..=120).contains(&t.len()), "{}", t.len());
        let a = t.lookup("0571-8888 1234").unwrap();
        assert_eq!(
            (a.code.as_str(), a.region.as_str()),
            ("0571", "浙江省杭州市")
        );
        assert_eq!(t.lookup("+86 10 6512 3456").unwrap().region, "北京市");
        assert_eq!(t.lookup("02112345678").unwrap().code, "021");
        assert_eq!(t.lookup("+86 139 0571 0000").unwrap().code, "0571");
        assert_eq!(t.lookup("013905710000").unwrap().code, "0571");
        assert_eq!(t.lookup("057788881234").unwrap().region, "浙江省温州市");
        assert_eq!(t.lookup("057488881234").unwrap().region, "浙江省宁波市");
        assert!(t.lookup("12345").is_none());
        assert!(t.lookup("anonymous").is_none());
        assert!(t.lookup("").is_none());
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(
            "\u{feff}# comment\n\nprefix , area_code , region\r\n\
             057,057,short\n0571,0571,浙江省杭州市\n1390571,0571,浙江省杭州市\n\
             139,010,北京市\n  # indented comment\n0571,0571,浙江省杭州市\n",
        );
        assert_eq!(t.len(), 4); // the repeated 0571 row is merged
        assert_eq!(t.lookup("057188881234").unwrap().region, "浙江省杭州市");
        assert_eq!(t.lookup("057088881234").unwrap().region, "short");
        assert_eq!(t.lookup("13905710000").unwrap().region, "浙江省杭州市");
        assert_eq!(t.lookup("13905720000").unwrap().region, "北京市");
        assert_eq!(t.lookup("0571").unwrap().code, "0571"); // the whole number is a prefix
        assert!(t.lookup("05").is_none());
        assert!(table("prefix,area_code,region\n").is_empty());
    }

    #[test]
    fn every_error_at_once() {
        let e = errors(
            "# header missing below\nprefix,code,region\n\
             0571,0571\n\
             0571,0571,杭州,extra\n\
             05a1,0571,杭州\n\
             0571,+571,杭州\n\
             0571,0571,\n\
             1234567890123456789,0571,杭州\n\
             0571,0571,浙江省杭州市\n\
             0571,0572,浙江省湖州市\n",
        );
        assert_eq!(
            e,
            [
                "areas.csv:2: expected the header line \"prefix,area_code,region\", found \"prefix,code,region\"",
                "areas.csv:3: 2 fields; expected 3: prefix,area_code,region (no commas in a region)",
                "areas.csv:4: 4 fields; expected 3: prefix,area_code,region (no commas in a region)",
                "areas.csv:5: prefix \"05a1\" is not 1-18 digits 0-9",
                "areas.csv:6: area_code \"+571\" is not 1-18 digits 0-9",
                "areas.csv:7: empty region",
                "areas.csv:8: prefix \"1234567890123456789\" is not 1-18 digits 0-9",
                "areas.csv:10: prefix 0571 is 0572,浙江省湖州市 here but 0571,浙江省杭州市 on line 9",
            ]
        );
        assert_eq!(
            errors("# only a comment\n"),
            ["areas.csv:1: no header line; the first line must be \"prefix,area_code,region\""]
        );
        let e = AreaTable::load(Path::new("/nonexistent/areas.csv")).unwrap_err();
        assert!(e[0]
            .to_string()
            .starts_with("/nonexistent/areas.csv: cannot read: "));
    }

    proptest! {
        #[test]
        fn lookup_never_panics(s in "\\PC{0,30}") {
            let t = shipped();
            let _ = t.lookup(&s);
            let _ = t.lookup_normalised(&s);
        }

        #[test]
        fn longest_table_prefix_resolves(
            prefixes in proptest::collection::vec("[0-9]{1,8}", 1..20),
            pick in any::<proptest::sample::Index>(),
            tail in "[0-9]{0,10}",
        ) {
            let mut text = String::from("prefix,area_code,region\n");
            for p in &prefixes {
                // Area code = the prefix itself: unique per prefix.
                text += &format!("{p},{p},r{p}\n");
            }
            let t = table(&text);
            let number = format!("{}{tail}", pick.get(&prefixes));
            let want = prefixes
                .iter()
                .filter(|p| number.starts_with(p.as_str()))
                .max_by_key(|p| p.len())
                .unwrap();
            prop_assert_eq!(&t.lookup_normalised(&number).unwrap().code, want);
        }
    }
}
