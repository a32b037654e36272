//! Reading hand-written TOML files (`config/schedules/*.toml`,
//! `config/holidays/*.toml`) key by key over `toml_edit`'s spans, so that
//! every problem in a file is reported at once with its line and dotted key
//! (the habit of `hotline.toml`: "errors name file, line and key").
//!
//! Typed getters record a [`Problem`] and return `None` on a wrong type; the
//! caller goes on checking the rest of the file.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::time::civil::Date;

/// One problem found in a file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the span is known.
    pub line: Option<usize>,
    /// Dotted key, e.g. `exception[1].hours[0]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A parsed document plus the problems found so far.
pub struct Reader<'a> {
    text: &'a str,
    /// Problems recorded by the getters and by the caller, in file order of
    /// discovery.
    pub problems: Vec<Problem>,
}

/// Dotted key of `key` under `prefix` (`""` at top level).
pub fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl<'a> Reader<'a> {
    /// Parse `text`; a syntax error is returned as one problem whose message is
    /// toml_edit's (without its line/column preamble, the line is in `line`).
    pub fn parse(text: &'a str) -> Result<(ImDocument<&'a str>, Reader<'a>), Problem> {
        let reader = Reader {
            text,
            problems: Vec::new(),
        };
        match ImDocument::parse(text) {
            Ok(doc) => Ok((doc, reader)),
            Err(e) => Err(Problem {
                line: reader.line(e.span()),
                key: String::new(),
                message: format!("TOML syntax: {}", e.message().trim_end()),
            }),
        }
    }

    /// 1-based line of the start of `span`.
    pub fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.text.len());
        Some(
            self.text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        )
    }

    /// Record a problem at `span`.
    pub fn problem(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = self.line(span);
        self.problems.push(Problem {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Report every key of `table` not in `allowed`; `hint` may add advice for
    /// a given unknown key.
    pub fn unknown_keys(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        allowed: &[&str],
        hint: impl Fn(&str) -> Option<&'static str>,
    ) {
        for (k, _) in table.iter() {
            if allowed.contains(&k) {
                continue;
            }
            let span = table.key(k).and_then(|key| key.span());
            let mut msg = format!("unknown key; expected one of: {}", allowed.join(", "));
            if let Some(h) = hint(k) {
                msg = format!("{msg} ({h})");
            }
            self.problem(span, join(prefix, k), msg);
        }
    }

    /// The value under `key`, with the span of its key (for messages).
    pub fn value<'t>(
        &mut self,
        table: &'t dyn TableLike,
        prefix: &str,
        key: &str,
        what: &str,
    ) -> Option<(&'t Value, Option<Range<usize>>)> {
        let (k, item) = table.get_key_value(key)?;
        let span = k.span().or_else(|| item.span());
        match item.as_value() {
            Some(v) => Some((v, span)),
            None => {
                self.problem(
                    span,
                    join(prefix, key),
                    format!("expected {what}, found a table"),
                );
                None
            }
        }
    }

    /// A string under `key`; `None` if absent or (recorded) of another type.
    pub fn string<'t>(
        &mut self,
        table: &'t dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(&'t str, Option<Range<usize>>)> {
        let (v, span) = self.value(table, prefix, key, "a string")?;
        match v.as_str() {
            Some(s) => Some((s, span)),
            None => {
                self.problem(
                    span,
                    join(prefix, key),
                    format!("expected a string, found {}", v.type_name()),
                );
                None
            }
        }
    }

    /// An integer under `key`.
    pub fn integer(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(i64, Option<Range<usize>>)> {
        let (v, span) = self.value(table, prefix, key, "an integer")?;
        match v.as_integer() {
            Some(n) => Some((n, span)),
            None => {
                self.problem(
                    span,
                    join(prefix, key),
                    format!("expected an integer, found {}", v.type_name()),
                );
                None
            }
        }
    }

    /// A date under `key`: a string `"YYYY-MM-DD"` or a TOML local date
    /// `2026-02-14` (no time, no offset).
    pub fn date(
        &mut self,
        table: &dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(Date, Option<Range<usize>>)> {
        let (v, span) = self.value(table, prefix, key, "a date")?;
        let parsed = match v {
            Value::String(s) => Date::parse(s.value()).map_err(|e| e.to_string()),
            Value::Datetime(dt) => {
                let dt = dt.value();
                match (dt.date, dt.time, dt.offset) {
                    (Some(d), None, None) => {
                        Date::new(i64::from(d.year), u32::from(d.month), u32::from(d.day))
                            .ok_or_else(|| format!("{d} is not a date in the years 0001-9999"))
                    }
                    _ => Err(format!("expected a date without time, found {dt}")),
                }
            }
            other => Err(format!(
                "expected a date \"YYYY-MM-DD\", found {}",
                other.type_name()
            )),
        };
        match parsed {
            Ok(d) => Some((d, span)),
            Err(msg) => {
                self.problem(span, join(prefix, key), msg);
                None
            }
        }
    }

    /// An array of strings under `key`, each with its own span. Non-string
    /// elements are recorded and skipped.
    #[allow(clippy::type_complexity)]
    pub fn strings<'t>(
        &mut self,
        table: &'t dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(Vec<(&'t str, Option<Range<usize>>)>, Option<Range<usize>>)> {
        let (v, span) = self.value(table, prefix, key, "an array of strings")?;
        let Some(arr) = v.as_array() else {
            self.problem(
                span,
                join(prefix, key),
                format!("expected an array of strings, found {}", v.type_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, el) in arr.iter().enumerate() {
            match el.as_str() {
                Some(s) => out.push((s, el.span())),
                None => self.problem(
                    el.span(),
                    format!("{}[{i}]", join(prefix, key)),
                    format!("expected a string, found {}", el.type_name()),
                ),
            }
        }
        Some((out, span))
    }

    /// The tables under `key`: `[[key]]` sections or an inline array of inline
    /// tables, each with the span of its header (or of the inline table).
    #[allow(clippy::type_complexity)]
    pub fn tables<'t>(
        &mut self,
        table: &'t dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Vec<(&'t dyn TableLike, Option<Range<usize>>)> {
        let Some((k, item)) = table.get_key_value(key) else {
            return Vec::new();
        };
        match item {
            Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
            Item::Value(Value::Array(a)) if a.iter().all(|v| v.is_inline_table()) => a
                .iter()
                .filter_map(|v| v.as_inline_table().map(|t| (t as &dyn TableLike, t.span())))
                .collect(),
            other => {
                let span = k.span().or_else(|| other.span());
                self.problem(
                    span,
                    join(prefix, key),
                    format!("expected [[{key}]] sections, found {}", other.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// The table under `key` (`[key]` or an inline table) and its span.
    pub fn table<'t>(
        &mut self,
        table: &'t dyn TableLike,
        prefix: &str,
        key: &str,
    ) -> Option<(&'t dyn TableLike, Option<Range<usize>>)> {
        let (k, item) = table.get_key_value(key)?;
        let span = k.span().or_else(|| item.span());
        match item.as_table_like() {
            Some(t) => Some((t, span)),
            None => {
                self.problem(
                    span,
                    join(prefix, key),
                    format!("expected a table [{key}], found {}", item.type_name()),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line() {
        let Err(p) = Reader::parse("a = 1\nb = [\n") else {
            panic!("parsed");
        };
        assert!(p.line.is_some_and(|l| l >= 2), "{p:?}");
        assert!(p.message.starts_with("TOML syntax: "), "{p:?}");
    }

    #[test]
    fn getters_record_wrong_types() {
        let text = "s = 1\nn = \"x\"\nd = 2026-02-14T10:00:00\na = [1, \"ok\"]\nt = 3\n";
        let (doc, mut r) = Reader::parse(text).unwrap();
        let top = doc.as_table();
        assert!(r.string(top, "", "s").is_none());
        assert!(r.integer(top, "", "n").is_none());
        assert!(r.date(top, "", "d").is_none());
        let (a, _) = r.strings(top, "", "a").unwrap();
        assert_eq!(a.len(), 1);
        assert!(r.tables(top, "", "t").is_empty());
        assert!(r.table(top, "", "t").is_none());
        let lines: Vec<_> = r
            .problems
            .iter()
            .map(|p| (p.line, p.key.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (Some(1), "s"),
                (Some(2), "n"),
                (Some(3), "d"),
                (Some(4), "a[0]"),
                (Some(5), "t"),
                (Some(5), "t")
            ]
        );
    }

    #[test]
    fn native_dates_and_inline_tables() {
        let text = "d = 2026-02-14\nx = [{ a = 1 }, { a = 2 }]\n";
        let (doc, mut r) = Reader::parse(text).unwrap();
        let top = doc.as_table();
        assert_eq!(r.date(top, "", "d").unwrap().0.to_string(), "2026-02-14");
        assert_eq!(r.tables(top, "", "x").len(), 2);
        assert!(r.problems.is_empty());
    }
}
