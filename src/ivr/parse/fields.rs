//! The reader the flow parser is built on: [`Ctx`] (one file: its path,
//! document, the errors found so far and the line of every key seen) and
//! [`Fields`] (one table's keys, typed, with unknown keys reported at the
//! end), plus the lexical rules of the format (names, variables, keys,
//! `HH:MM-HH:MM`, `set` templates). Requirement: unknown keys, missing keys,
//! wrong types and out-of-range values are all errors naming file, line and
//! node; lines come from `crate::config::locate`.

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::ivr::error::{FlowError, Problem};

/// `[A-Za-z0-9_-]+`: flow, node and prompt names.
pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[A-Za-z0-9_]+`: variable names.
pub(super) fn is_var(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One DTMF key from a one-character string.
pub(super) fn dtmf(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => None,
    }
}

/// Splits a `set` value into literal text and placeholders; `None` when a
/// placeholder is malformed.
pub(crate) fn template_parts(value: &str) -> Option<Vec<TemplatePart<'_>>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(TemplatePart::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let inner = &after[..close];
        out.push(match inner {
            "caller" => TemplatePart::Caller,
            "called" => TemplatePart::Called,
            _ => match inner.strip_prefix("var:") {
                Some(name) if is_var(name) => TemplatePart::Var(name),
                _ => return None,
            },
        });
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return None;
    }
    if !rest.is_empty() {
        out.push(TemplatePart::Text(rest));
    }
    Some(out)
}

/// A piece of a `set` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplatePart<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{caller}`
    Caller,
    /// `{called}`
    Called,
    /// `{var:NAME}`
    Var(&'a str),
}

/// `HH:MM-HH:MM` → minutes (end may be `24:00`).
pub(super) fn time_range(s: &str) -> Option<(u16, u16)> {
    fn hm(s: &str, allow_24: bool) -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return None;
        }
        let h: u16 = h.parse().ok()?;
        let m: u16 = m.parse().ok()?;
        if m >= 60 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
            return None;
        }
        Some(h * 60 + m)
    }
    let (a, b) = s.split_once('-')?;
    Some((hm(a, false)?, hm(b, true)?))
}

pub(super) struct Ctx<'d> {
    pub(super) path: &'d Path,
    pub(super) doc: &'d ImDocument<String>,
    pub(super) text: &'d str,
    pub(super) errors: Vec<FlowError>,
    pub(super) lines: BTreeMap<String, usize>,
}

impl Ctx<'_> {
    pub(super) fn line(&mut self, key: &str) -> Option<usize> {
        if let Some(line) = self.lines.get(key) {
            return Some(*line);
        }
        let line = crate::config::locate(self.doc, self.text, key)?;
        self.lines.insert(key.to_string(), line);
        Some(line)
    }

    pub(super) fn err(&mut self, node: Option<&str>, key: &str, problem: Problem) {
        let line = self.line(key);
        self.errors.push(FlowError {
            path: self.path.to_path_buf(),
            line,
            node: node.map(str::to_string),
            problem,
        });
    }
}

/// Reads the keys of one table, remembering which were asked for so the rest
/// can be reported as unknown.
pub(super) struct Fields<'t> {
    pub(super) table: &'t dyn TableLike,
    pub(super) prefix: String,
    pub(super) node: Option<String>,
    pub(super) seen: Vec<&'static str>,
}

impl<'t> Fields<'t> {
    pub(super) fn new(table: &'t dyn TableLike, prefix: String, node: Option<String>) -> Self {
        Self {
            table,
            prefix,
            node,
            seen: Vec::new(),
        }
    }

    pub(super) fn full(&self, key: &str) -> String {
        if key.is_empty() {
            self.prefix.clone()
        } else if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(super) fn err(&self, cx: &mut Ctx<'_>, key: &str, problem: Problem) {
        match self.node.as_deref() {
            // A dotted path through a malformed name cannot be located:
            // point at the node.
            Some(node) if !is_name(node) => {
                let line = cx.lines.get(&format!("nodes.{node}")).copied();
                cx.errors.push(FlowError {
                    path: cx.path.to_path_buf(),
                    line,
                    node: Some(node.to_string()),
                    problem,
                });
            }
            node => cx.err(node, &self.full(key), problem),
        }
    }

    pub(super) fn get(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<&'t Item> {
        self.seen.push(key);
        let item = self.table.get(key).filter(|i| !i.is_none())?;
        cx.line(&self.full(key));
        Some(item)
    }

    pub(super) fn wrong(&self, cx: &mut Ctx<'_>, key: &str, expected: &'static str) {
        self.err(
            cx,
            key,
            Problem::WrongType {
                key: key.to_string(),
                expected,
            },
        );
    }

    pub(super) fn missing(&self, cx: &mut Ctx<'_>, key: &str) {
        self.err(cx, key, Problem::MissingKey(key.to_string()));
    }

    pub(super) fn string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let item = self.get(cx, key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(cx, key, "a string");
                None
            }
        }
    }

    pub(super) fn req_string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        if self.table.get(key).is_none_or(Item::is_none) {
            self.seen.push(key);
            self.missing(cx, key);
            return None;
        }
        let s = self.string(cx, key)?;
        if s.is_empty() {
            self.err(cx, key, Problem::Empty(key.to_string()));
            return None;
        }
        Some(s)
    }

    /// A node name (transition target); empty is refused.
    pub(super) fn target(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let s = self.string(cx, key)?;
        if s.is_empty() {
            self.err(cx, key, Problem::Empty(key.to_string()));
            return None;
        }
        Some(s)
    }

    /// A prompt name (`[A-Za-z0-9_-]+`, so it cannot escape `sounds/`).
    pub(super) fn prompt(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let s = self.string(cx, key)?;
        if !is_name(&s) {
            self.err(
                cx,
                key,
                Problem::BadName {
                    what: "prompt name",
                    name: s,
                },
            );
            return None;
        }
        Some(s)
    }

    pub(super) fn strings(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<String>> {
        let item = self.get(cx, key)?;
        let Some(array) = item.as_array() else {
            self.wrong(cx, key, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    self.err(
                        cx,
                        &format!("{key}[{i}]"),
                        Problem::WrongType {
                            key: key.to_string(),
                            expected: "a list of strings",
                        },
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    pub(super) fn prompts(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        required: bool,
    ) -> Vec<String> {
        if required && self.table.get(key).is_none_or(Item::is_none) {
            self.seen.push(key);
            self.missing(cx, key);
            return Vec::new();
        }
        let Some(list) = self.strings(cx, key) else {
            return Vec::new();
        };
        if required && list.is_empty() {
            self.err(cx, key, Problem::Empty(key.to_string()));
        }
        for (i, p) in list.iter().enumerate() {
            if !is_name(p) {
                self.err(
                    cx,
                    &format!("{key}[{i}]"),
                    Problem::BadName {
                        what: "prompt name",
                        name: p.clone(),
                    },
                );
            }
        }
        list
    }

    pub(super) fn int(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Option<Option<i64>> {
        let Some(item) = self.get(cx, key) else {
            return Some(None);
        };
        let Some(value) = item.as_integer() else {
            self.wrong(cx, key, "a whole number");
            return None;
        };
        if value < min || value > max {
            self.err(
                cx,
                key,
                Problem::OutOfRange {
                    key: key.to_string(),
                    value,
                    min,
                    max,
                },
            );
            return None;
        }
        Some(Some(value))
    }

    /// A `u32` with a default; on error the default is used (the error is
    /// recorded, so the flow is refused anyway).
    pub(super) fn u32_or(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        default: u32,
        min: u32,
        max: u32,
    ) -> u32 {
        self.int(cx, key, i64::from(min), i64::from(max))
            .flatten()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(default)
    }

    pub(super) fn bool_or(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: bool) -> bool {
        let Some(item) = self.get(cx, key) else {
            return default;
        };
        match item.as_bool() {
            Some(b) => b,
            None => {
                self.wrong(cx, key, "true or false");
                default
            }
        }
    }

    pub(super) fn table(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<&'t dyn TableLike> {
        let item = self.get(cx, key)?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                self.wrong(cx, key, "a table");
                None
            }
        }
    }

    pub(super) fn tables(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Vec<&'t dyn TableLike>> {
        let item = self.get(cx, key)?;
        let list: Option<Vec<&'t dyn TableLike>> = match item {
            Item::ArrayOfTables(a) => Some(a.iter().map(|t| t as &dyn TableLike).collect()),
            Item::Value(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::InlineTable(t) => Some(t as &dyn TableLike),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        if list.is_none() {
            self.wrong(cx, key, "a list of tables");
        }
        list
    }

    /// Reports every key that was not asked for.
    pub(super) fn finish(self, cx: &mut Ctx<'_>) {
        let mut expected: Vec<&str> = self.seen.clone();
        expected.sort_unstable();
        expected.dedup();
        let expected = expected.join(", ");
        for (key, item) in self.table.iter() {
            if item.is_none() || self.seen.contains(&key) {
                continue;
            }
            self.err(
                cx,
                key,
                Problem::UnknownKey {
                    key: key.to_string(),
                    expected: expected.clone(),
                },
            );
        }
    }
}
