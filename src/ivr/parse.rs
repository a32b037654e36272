//! Flow file text → [`Flow`], reporting every structural problem at once.
//!
//! Requirement: unknown node kinds, unknown keys, missing keys, wrong types
//! and out-of-range values are all errors naming file, line and node. The
//! document is read with `toml_edit` (which keeps spans) instead of serde, so
//! that one pass collects every problem rather than stopping at the first;
//! lines come from `crate::config::locate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};
use toml_edit::{ImDocument, Item, TableLike, Value};

use super::error::{FlowError, Problem};
use super::flow::{
    Area, Blacklist, Case, Collect, Condition, Flow, Hangup, Hours, Menu, Node, NodeKind, Pattern,
    Play, Question, Queue, SetVars, Subflow, Survey, Switch, Transfer, TransferTarget, Voicemail,
    KINDS, WEEKDAYS,
};

/// Survey dimensions the first three questions default to.
pub const DEFAULT_DIMENSIONS: [&str; 3] = ["attitude", "efficiency", "resolution"];

/// `[A-Za-z0-9_-]+`: flow, node and prompt names.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[A-Za-z0-9_]+`: variable names.
pub(crate) fn is_var(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One DTMF key from a one-character string.
fn dtmf(s: &str) -> Option<char> {
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
fn time_range(s: &str) -> Option<(u16, u16)> {
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

struct Ctx<'d> {
    path: &'d Path,
    doc: &'d ImDocument<String>,
    text: &'d str,
    errors: Vec<FlowError>,
    lines: BTreeMap<String, usize>,
}

impl Ctx<'_> {
    fn line(&mut self, key: &str) -> Option<usize> {
        if let Some(line) = self.lines.get(key) {
            return Some(*line);
        }
        let line = crate::config::locate(self.doc, self.text, key)?;
        self.lines.insert(key.to_string(), line);
        Some(line)
    }

    fn err(&mut self, node: Option<&str>, key: &str, problem: Problem) {
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
struct Fields<'t> {
    table: &'t dyn TableLike,
    prefix: String,
    node: Option<String>,
    seen: Vec<&'static str>,
}

impl<'t> Fields<'t> {
    fn new(table: &'t dyn TableLike, prefix: String, node: Option<String>) -> Self {
        Self {
            table,
            prefix,
            node,
            seen: Vec::new(),
        }
    }

    fn full(&self, key: &str) -> String {
        if key.is_empty() {
            self.prefix.clone()
        } else if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn err(&self, cx: &mut Ctx<'_>, key: &str, problem: Problem) {
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

    fn get(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<&'t Item> {
        self.seen.push(key);
        let item = self.table.get(key).filter(|i| !i.is_none())?;
        cx.line(&self.full(key));
        Some(item)
    }

    fn wrong(&self, cx: &mut Ctx<'_>, key: &str, expected: &'static str) {
        self.err(
            cx,
            key,
            Problem::WrongType {
                key: key.to_string(),
                expected,
            },
        );
    }

    fn missing(&self, cx: &mut Ctx<'_>, key: &str) {
        self.err(cx, key, Problem::MissingKey(key.to_string()));
    }

    fn string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let item = self.get(cx, key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(cx, key, "a string");
                None
            }
        }
    }

    fn req_string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
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
    fn target(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let s = self.string(cx, key)?;
        if s.is_empty() {
            self.err(cx, key, Problem::Empty(key.to_string()));
            return None;
        }
        Some(s)
    }

    /// A prompt name (`[A-Za-z0-9_-]+`, so it cannot escape `sounds/`).
    fn prompt(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
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

    fn strings(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<String>> {
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

    fn prompts(&mut self, cx: &mut Ctx<'_>, key: &'static str, required: bool) -> Vec<String> {
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

    fn int(
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
    fn u32_or(
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

    fn bool_or(&mut self, cx: &mut Ctx<'_>, key: &'static str, default: bool) -> bool {
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

    fn table(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<&'t dyn TableLike> {
        let item = self.get(cx, key)?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                self.wrong(cx, key, "a table");
                None
            }
        }
    }

    fn tables(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<&'t dyn TableLike>> {
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
    fn finish(self, cx: &mut Ctx<'_>) {
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

/// Parses one flow file. See [`Flow::parse`].
pub(crate) fn parse(path: &Path, text: &str) -> Result<Flow, Vec<FlowError>> {
    let doc = match ImDocument::parse(text.to_string()) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            return Err(vec![FlowError {
                path: path.to_path_buf(),
                line,
                node: None,
                problem: Problem::Syntax(e.message().trim().to_string()),
            }]);
        }
    };
    let mut cx = Ctx {
        path,
        doc: &doc,
        text,
        errors: Vec::new(),
        lines: BTreeMap::new(),
    };
    let mut top = Fields::new(doc.as_table(), String::new(), None);

    let name = top.req_string(&mut cx, "name");
    if let Some(n) = &name {
        if !is_name(n) {
            top.err(
                &mut cx,
                "name",
                Problem::BadName {
                    what: "flow name",
                    name: n.clone(),
                },
            );
        }
    }
    let description = top.string(&mut cx, "description").unwrap_or_default();
    let dids = top.strings(&mut cx, "dids").unwrap_or_default();
    for (i, did) in dids.iter().enumerate() {
        let digits = did.strip_prefix('+').unwrap_or(did);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            top.err(&mut cx, &format!("dids[{i}]"), Problem::BadDid(did.clone()));
        }
    }
    let tenant = top.string(&mut cx, "tenant");
    let entry = top.req_string(&mut cx, "entry");

    let mut nodes = BTreeMap::new();
    if top.table.get("nodes").is_none_or(Item::is_none) {
        top.seen.push("nodes");
        top.missing(&mut cx, "nodes");
    } else if let Some(table) = top.table(&mut cx, "nodes") {
        if table.is_empty() {
            top.err(&mut cx, "nodes", Problem::Empty("nodes".into()));
        }
        for (node_name, item) in table.iter() {
            if item.is_none() {
                continue;
            }
            // The key's own span is exact even where a dotted path is not.
            let span = table.key(node_name).and_then(toml_edit::Key::span);
            if let Some(span) = span {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                cx.lines.insert(format!("nodes.{node_name}"), line);
            }
            if let Some(node) = parse_node(&mut cx, node_name, item) {
                nodes.insert(node_name.to_string(), node);
            }
        }
    }
    top.finish(&mut cx);

    let mut errors = std::mem::take(&mut cx.errors);
    errors.sort_by_key(|e| e.line);
    let lines = std::mem::take(&mut cx.lines);
    match (name, entry) {
        (Some(name), Some(entry)) if errors.is_empty() => Ok(Flow {
            name,
            description,
            dids,
            tenant,
            entry,
            nodes,
            version: hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string(),
            path: path.to_path_buf(),
            lines,
        }),
        _ => Err(errors),
    }
}

fn parse_node(cx: &mut Ctx<'_>, name: &str, item: &Item) -> Option<Node> {
    let key = format!("nodes.{name}");
    let line = cx.line(&key).unwrap_or(0);
    if !is_name(name) {
        cx.err(
            Some(name),
            &key,
            Problem::BadName {
                what: "node name",
                name: name.to_string(),
            },
        );
    }
    let Some(table) = item.as_table_like() else {
        cx.err(
            Some(name),
            &key,
            Problem::WrongType {
                key: key.clone(),
                expected: "a table",
            },
        );
        return None;
    };
    let mut f = Fields::new(table, key, Some(name.to_string()));
    let kind = f.req_string(cx, "kind")?;
    let before = cx.errors.len();
    let parsed = match kind.as_str() {
        "play" => {
            let prompts = f.prompts(cx, "prompts", true);
            let interruptible = f.bool_or(cx, "interruptible", false);
            let next = f.target(cx, "next");
            NodeKind::Play(Play {
                prompts,
                interruptible,
                next,
            })
        }
        "blacklist" => NodeKind::Blacklist(Blacklist {
            prompt: f.prompt(cx, "prompt"),
            next: f.target(cx, "next"),
        }),
        "area" => NodeKind::Area(Area {
            next: f.target(cx, "next"),
        }),
        "hours" => {
            let schedule = f.req_string(cx, "schedule");
            let open = f.req_string(cx, "open");
            let closed = f.req_string(cx, "closed");
            f.finish(cx);
            return Some(Node {
                line,
                kind: NodeKind::Hours(Hours {
                    schedule: schedule?,
                    open: open?,
                    closed: closed?,
                }),
            });
        }
        "menu" => parse_menu(cx, &mut f),
        "collect" => parse_collect(cx, &mut f),
        "switch" => parse_switch(cx, &mut f, name),
        "set" => parse_set(cx, &mut f),
        "queue" => {
            let group = f.req_string(cx, "group");
            let priority = f.u32_or(cx, "priority", 0, 0, 255);
            let max_wait_secs = f
                .int(cx, "max_wait_secs", 1, 86_400)
                .flatten()
                .and_then(|v| u32::try_from(v).ok());
            NodeKind::Queue(Queue {
                group: group.unwrap_or_default(),
                priority: u8::try_from(priority).unwrap_or(0),
                max_wait_secs,
                on_timeout: f.target(cx, "on_timeout"),
                on_overflow: f.target(cx, "on_overflow"),
                on_closed: f.target(cx, "on_closed"),
                after_agent: f.target(cx, "after_agent"),
            })
        }
        "transfer" => parse_transfer(cx, &mut f),
        "voicemail" => NodeKind::Voicemail(Voicemail {
            prompts: f.prompts(cx, "prompts", false),
            beep: f.bool_or(cx, "beep", true),
            max_secs: f.u32_or(cx, "max_secs", 120, 1, 3600),
            silence_secs: f.u32_or(cx, "silence_secs", 5, 1, 60),
            next: f.target(cx, "next"),
        }),
        "survey" => parse_survey(cx, &mut f, name),
        "subflow" => {
            let flow = f.req_string(cx, "flow");
            if let Some(flow) = &flow {
                if !is_name(flow) {
                    f.err(
                        cx,
                        "flow",
                        Problem::BadName {
                            what: "flow name",
                            name: flow.clone(),
                        },
                    );
                }
            }
            NodeKind::Subflow(Subflow {
                flow: flow.unwrap_or_default(),
                next: f.target(cx, "next"),
            })
        }
        "hangup" => NodeKind::Hangup(Hangup {
            prompt: f.prompt(cx, "prompt"),
        }),
        other => {
            f.err(
                cx,
                "kind",
                Problem::UnknownKind {
                    kind: other.to_string(),
                    expected: KINDS.join(", "),
                },
            );
            return None;
        }
    };
    f.finish(cx);
    (cx.errors.len() == before).then_some(Node { line, kind: parsed })
}

fn parse_menu(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let prompts = f.prompts(cx, "prompts", true);
    let mut options = BTreeMap::new();
    if f.table.get("options").is_none_or(Item::is_none) {
        f.seen.push("options");
        f.missing(cx, "options");
    } else if let Some(table) = f.table(cx, "options") {
        if table.is_empty() {
            f.err(cx, "options", Problem::Empty("options".into()));
        }
        for (key, item) in table.iter() {
            let full = format!("options.{key}");
            cx.line(&f.full(&full));
            let Some(k) = dtmf(key) else {
                f.err(
                    cx,
                    &full,
                    Problem::BadDtmf {
                        what: "option",
                        key: key.to_string(),
                    },
                );
                continue;
            };
            match item.as_str() {
                Some(t) if !t.is_empty() => {
                    options.insert(k, t.to_string());
                }
                _ => f.err(
                    cx,
                    &full,
                    Problem::WrongType {
                        key: full.clone(),
                        expected: "a node name",
                    },
                ),
            }
        }
    }
    NodeKind::Menu(Menu {
        prompts,
        options,
        timeout_secs: f.u32_or(cx, "timeout_secs", 5, 1, 300),
        retries: f.u32_or(cx, "retries", 3, 1, 10),
        invalid_prompt: f.prompt(cx, "invalid_prompt"),
        timeout_prompt: f.prompt(cx, "timeout_prompt"),
        fallback: f.target(cx, "fallback"),
    })
}

fn parse_collect(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let prompts = f.prompts(cx, "prompts", true);
    let var = f.req_string(cx, "var").unwrap_or_default();
    if !var.is_empty() {
        if !is_var(&var) {
            f.err(cx, "var", Problem::BadVarName(var.clone()));
        } else if var == "caller" || var == "called" {
            f.err(cx, "var", Problem::ReadOnlyVar(var.clone()));
        }
    }
    let min = f.int(cx, "min_digits", 0, 64).flatten();
    let max = f.int(cx, "max_digits", 1, 64).flatten();
    if let (Some(min), Some(max)) = (min.or(Some(1)), max.or(Some(20))) {
        if min > max {
            f.err(cx, "min_digits", Problem::MinOverMax { min, max });
        }
    }
    let terminator = match f.string(cx, "terminator") {
        None => Some('#'),
        Some(s) if s.is_empty() => None,
        Some(s) => match dtmf(&s) {
            Some(c) => Some(c),
            None => {
                f.err(
                    cx,
                    "terminator",
                    Problem::BadDtmf {
                        what: "terminator",
                        key: s,
                    },
                );
                None
            }
        },
    };
    let pattern = f
        .string(cx, "pattern")
        .and_then(|p| match regex::Regex::new(&p) {
            Ok(re) => Some(Pattern(re)),
            Err(e) => {
                let text = e.to_string();
                let reason = text
                    .lines()
                    .map(str::trim)
                    .rfind(|l| !l.is_empty())
                    .unwrap_or("invalid");
                let reason = reason.strip_prefix("error: ").unwrap_or(reason).to_string();
                f.err(cx, "pattern", Problem::BadPattern { pattern: p, reason });
                None
            }
        });
    NodeKind::Collect(Collect {
        prompts,
        var,
        min_digits: min.and_then(|v| u32::try_from(v).ok()).unwrap_or(1),
        max_digits: max.and_then(|v| u32::try_from(v).ok()).unwrap_or(20),
        terminator,
        timeout_secs: f.u32_or(cx, "timeout_secs", 5, 1, 300),
        pattern,
        retries: f.u32_or(cx, "retries", 3, 1, 10),
        invalid_prompt: f.prompt(cx, "invalid_prompt"),
        timeout_prompt: f.prompt(cx, "timeout_prompt"),
        next: f.target(cx, "next"),
        fallback: f.target(cx, "fallback"),
    })
}

fn parse_switch(cx: &mut Ctx<'_>, f: &mut Fields<'_>, node: &str) -> NodeKind {
    let mut cases = Vec::new();
    if f.table.get("case").is_none_or(Item::is_none) {
        f.seen.push("case");
        f.missing(cx, "case");
    } else if let Some(tables) = f.tables(cx, "case") {
        if tables.is_empty() {
            f.err(cx, "case", Problem::Empty("case".into()));
        }
        for (i, table) in tables.into_iter().enumerate() {
            let mut c = Fields::new(table, f.full(&format!("case[{i}]")), Some(node.to_string()));
            if let Some(case) = parse_case(cx, &mut c, i) {
                cases.push(case);
            }
            c.finish(cx);
        }
    }
    let default = f.req_string(cx, "default").unwrap_or_default();
    NodeKind::Switch(Switch { cases, default })
}

fn parse_case(cx: &mut Ctx<'_>, c: &mut Fields<'_>, index: usize) -> Option<Case> {
    let var = c.string(cx, "var");
    let equals = c.string(cx, "equals");
    let prefix = c.string(cx, "prefix");
    let caller_prefix = c.string(cx, "caller_prefix");
    let called = c.string(cx, "called");
    let time = c.string(cx, "time");
    let weekdays = c.strings(cx, "weekdays");
    let next = c.req_string(cx, "next");
    let present: Vec<&str> = [
        ("var", var.is_some()),
        ("equals", equals.is_some()),
        ("prefix", prefix.is_some()),
        ("caller_prefix", caller_prefix.is_some()),
        ("called", called.is_some()),
        ("time", time.is_some()),
        ("weekdays", weekdays.is_some()),
    ]
    .iter()
    .filter(|(_, p)| *p)
    .map(|(k, _)| *k)
    .collect();
    let condition = match (var, equals, prefix, caller_prefix, called, time, weekdays) {
        (Some(var), Some(value), None, None, None, None, None) => {
            Some(Condition::VarEquals { var, value })
        }
        (Some(var), None, Some(prefix), None, None, None, None) => {
            Some(Condition::VarPrefix { var, prefix })
        }
        (None, None, None, Some(p), None, None, None) => Some(Condition::CallerPrefix(p)),
        (None, None, None, None, Some(c), None, None) => Some(Condition::Called(c)),
        (None, None, None, None, None, Some(t), None) => match time_range(&t) {
            Some((start, end)) if start == end => {
                c.err(cx, "time", Problem::EmptyTime(t));
                None
            }
            Some((start, end)) => Some(Condition::Time { start, end }),
            None => {
                c.err(cx, "time", Problem::BadTime(t));
                None
            }
        },
        (None, None, None, None, None, None, Some(days)) => {
            let mut set = BTreeSet::new();
            let mut ok = true;
            if days.is_empty() {
                c.err(cx, "weekdays", Problem::Empty("weekdays".into()));
                ok = false;
            }
            for (j, d) in days.iter().enumerate() {
                let lower = d.to_ascii_lowercase();
                match WEEKDAYS.iter().position(|w| *w == lower) {
                    Some(p) => {
                        set.insert(u8::try_from(p).unwrap_or(0));
                    }
                    None => {
                        c.err(
                            cx,
                            &format!("weekdays[{j}]"),
                            Problem::BadWeekday(d.clone()),
                        );
                        ok = false;
                    }
                }
            }
            ok.then(|| Condition::Weekdays(set.into_iter().collect()))
        }
        _ => {
            let found = if present.is_empty() {
                "none".to_string()
            } else {
                present.join(", ")
            };
            c.err(
                cx,
                "",
                Problem::CaseCondition {
                    index: index + 1,
                    found,
                },
            );
            None
        }
    };
    if let Some(Condition::VarEquals { var, .. } | Condition::VarPrefix { var, .. }) = &condition {
        if !is_var(var) {
            c.err(cx, "var", Problem::BadVarName(var.clone()));
        }
    }
    Some(Case {
        condition: condition?,
        next: next?,
    })
}

fn parse_set(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let mut vars = BTreeMap::new();
    if f.table.get("vars").is_none_or(Item::is_none) {
        f.seen.push("vars");
        f.missing(cx, "vars");
    } else if let Some(table) = f.table(cx, "vars") {
        if table.is_empty() {
            f.err(cx, "vars", Problem::Empty("vars".into()));
        }
        for (name, item) in table.iter() {
            let full = format!("vars.{name}");
            cx.line(&f.full(&full));
            if !is_var(name) {
                f.err(cx, &full, Problem::BadVarName(name.to_string()));
                continue;
            }
            if name == "caller" || name == "called" {
                f.err(cx, &full, Problem::ReadOnlyVar(name.to_string()));
                continue;
            }
            let Some(value) = item.as_str() else {
                f.err(
                    cx,
                    &full,
                    Problem::WrongType {
                        key: full.clone(),
                        expected: "a string",
                    },
                );
                continue;
            };
            if template_parts(value).is_none() {
                f.err(
                    cx,
                    &full,
                    Problem::BadPlaceholder {
                        value: value.to_string(),
                    },
                );
                continue;
            }
            vars.insert(name.to_string(), value.to_string());
        }
    }
    NodeKind::Set(SetVars {
        vars,
        next: f.target(cx, "next"),
    })
}

fn parse_transfer(cx: &mut Ctx<'_>, f: &mut Fields<'_>) -> NodeKind {
    let number = f.string(cx, "number");
    let trunk = f.string(cx, "trunk");
    let agent = f.string(cx, "agent");
    let group = f.string(cx, "group");
    let on_fail = f.target(cx, "on_fail");
    let target = match (number, agent, group) {
        (Some(number), None, None) => {
            let digits = number.strip_prefix('+').unwrap_or(&number);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                f.err(cx, "number", Problem::BadDid(number.clone()));
            }
            TransferTarget::Number { number, trunk }
        }
        (n, a, g) => {
            let found: Vec<&str> = [
                ("number", n.is_some()),
                ("agent", a.is_some()),
                ("group", g.is_some()),
            ]
            .iter()
            .filter(|(_, p)| *p)
            .map(|(k, _)| *k)
            .collect();
            if found.len() == 1 && trunk.is_some() {
                f.err(cx, "trunk", Problem::TrunkWithoutNumber);
            }
            match (a, g) {
                (Some(a), None) if found.len() == 1 => TransferTarget::Agent(a),
                (None, Some(g)) if found.len() == 1 => TransferTarget::Group(g),
                _ => {
                    let found = if found.is_empty() {
                        "none".to_string()
                    } else {
                        found.join(", ")
                    };
                    f.err(cx, "", Problem::TransferTarget(found));
                    TransferTarget::Agent(String::new())
                }
            }
        }
    };
    NodeKind::Transfer(Transfer { target, on_fail })
}

fn parse_survey(cx: &mut Ctx<'_>, f: &mut Fields<'_>, node: &str) -> NodeKind {
    let intro = f.prompt(cx, "intro");
    let thanks = f.prompt(cx, "thanks");
    let timeout_secs = f.u32_or(cx, "timeout_secs", 5, 1, 300);
    let mut questions = Vec::new();
    if f.table.get("question").is_none_or(Item::is_none) {
        f.seen.push("question");
        f.missing(cx, "question");
    } else if let Some(tables) = f.tables(cx, "question") {
        if tables.is_empty() {
            f.err(cx, "question", Problem::Empty("question".into()));
        }
        let mut dims = BTreeSet::new();
        for (i, table) in tables.into_iter().enumerate() {
            let mut q = Fields::new(
                table,
                f.full(&format!("question[{i}]")),
                Some(node.to_string()),
            );
            let dimension = match q.string(cx, "dimension") {
                Some(d) if !d.is_empty() => Some(d),
                Some(_) => {
                    q.err(cx, "dimension", Problem::Empty("dimension".into()));
                    None
                }
                None => match DEFAULT_DIMENSIONS.get(i) {
                    Some(d) => Some((*d).to_string()),
                    None => {
                        q.err(cx, "", Problem::NoDimension(i + 1));
                        None
                    }
                },
            };
            if let Some(d) = &dimension {
                if !dims.insert(d.clone()) {
                    q.err(cx, "dimension", Problem::DuplicateDimension(d.clone()));
                }
            }
            let prompt = if q.table.get("prompt").is_none_or(Item::is_none) {
                q.seen.push("prompt");
                q.missing(cx, "prompt");
                None
            } else {
                q.prompt(cx, "prompt")
            };
            let mut keys = BTreeMap::new();
            if q.table.get("keys").is_none_or(Item::is_none) {
                q.seen.push("keys");
                q.missing(cx, "keys");
            } else if let Some(table) = q.table(cx, "keys") {
                if table.is_empty() {
                    q.err(cx, "keys", Problem::Empty("keys".into()));
                }
                for (key, item) in table.iter() {
                    let full = format!("keys.{key}");
                    cx.line(&q.full(&full));
                    let Some(k) = dtmf(key) else {
                        q.err(
                            cx,
                            &full,
                            Problem::BadDtmf {
                                what: "survey key",
                                key: key.to_string(),
                            },
                        );
                        continue;
                    };
                    match item.as_integer() {
                        Some(v) if (0..=100).contains(&v) => {
                            keys.insert(k, u8::try_from(v).unwrap_or(0));
                        }
                        Some(v) => q.err(
                            cx,
                            &full,
                            Problem::OutOfRange {
                                key: full.clone(),
                                value: v,
                                min: 0,
                                max: 100,
                            },
                        ),
                        None => q.err(
                            cx,
                            &full,
                            Problem::WrongType {
                                key: full.clone(),
                                expected: "a whole number",
                            },
                        ),
                    }
                }
            }
            q.finish(cx);
            if let (Some(dimension), Some(prompt)) = (dimension, prompt) {
                questions.push(Question {
                    dimension,
                    prompt,
                    keys,
                });
            }
        }
    }
    NodeKind::Survey(Survey {
        intro,
        thanks,
        timeout_secs,
        questions,
        next: f.target(cx, "next"),
    })
}
