//! One `[nodes.NAME]` table → a [`Node`]: the keys of every node kind, their
//! defaults and ranges, as the format in [`crate::ivr::flow`] documents
//! them; every problem is recorded in the file's [`Ctx`].

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::Item;

use super::fields::{dtmf, is_name, is_var, template_parts, time_range, Ctx, Fields};
use crate::ivr::error::Problem;
use crate::ivr::flow::{
    Area, Blacklist, Case, Collect, Condition, Hangup, Hours, Menu, Node, NodeKind, Pattern, Play,
    Question, Queue, SetVars, Subflow, Survey, Switch, Transfer, TransferTarget, Voicemail, KINDS,
    WEEKDAYS,
};

/// Survey dimensions the first three questions default to.
pub const DEFAULT_DIMENSIONS: [&str; 3] = ["attitude", "efficiency", "resolution"];

pub(super) fn parse_node(cx: &mut Ctx<'_>, name: &str, item: &Item) -> Option<Node> {
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
        "http" => super::lookup::parse_http(cx, &mut f),
        "say" => super::lookup::parse_say(cx, &mut f),
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
