//! The replay report: calls whose destination the edit changes, grouped
//! by the node where the old and new walks part, the input given there and
//! the two destinations, with counts; calls that could not be replayed,
//! grouped by why.

use std::collections::BTreeMap;

use serde::Serialize;

use super::walk::Walk;
use super::RecordedCall;

/// Example call ids kept per line.
const EXAMPLES: usize = 3;

/// Calls that would now end elsewhere, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The last node both walks entered (where they part).
    pub node: String,
    /// What the caller gave there (`key 2`), if the node waited for input.
    pub input: Option<String>,
    /// Where these calls ended.
    pub before: String,
    /// Where they would end with the edit.
    pub after: String,
    /// How many calls.
    pub calls: usize,
    /// A few of their call ids.
    pub examples: Vec<String>,
}

/// Calls that could not be replayed, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreplayable {
    /// Why.
    pub reason: String,
    /// How many calls.
    pub calls: usize,
    /// A few of their call ids.
    pub examples: Vec<String>,
}

/// The whole replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The flow replayed.
    pub flow: String,
    /// The edited flow's version.
    pub version: String,
    /// Calls looked at.
    pub calls: usize,
    /// Calls that end where they ended.
    pub unchanged: usize,
    /// Calls that would end elsewhere, most first.
    pub moved: Vec<Move>,
    /// Calls not replayed, most first.
    pub unreplayable: Vec<Unreplayable>,
}

impl Report {
    pub(super) fn new(flow: &str, version: &str) -> Self {
        Self {
            flow: flow.to_string(),
            version: version.to_string(),
            calls: 0,
            unchanged: 0,
            moved: Vec::new(),
            unreplayable: Vec::new(),
        }
    }

    pub(super) fn unreplayable(&mut self, reason: String, call_id: &str) {
        self.calls += 1;
        let at = match self.unreplayable.iter().position(|u| u.reason == reason) {
            Some(i) => i,
            None => {
                self.unreplayable.push(Unreplayable {
                    reason,
                    calls: 0,
                    examples: Vec::new(),
                });
                self.unreplayable.len() - 1
            }
        };
        let u = &mut self.unreplayable[at];
        u.calls += 1;
        if u.examples.len() < EXAMPLES {
            u.examples.push(call_id.to_string());
        }
        self.unreplayable
            .sort_by(|a, b| b.calls.cmp(&a.calls).then(a.reason.cmp(&b.reason)));
    }

    pub(super) fn add(&mut self, call: &RecordedCall, before: &Walk, after: &Walk) {
        self.calls += 1;
        if before.destination == after.destination {
            self.unchanged += 1;
            return;
        }
        let common = before
            .path
            .iter()
            .zip(&after.path)
            .take_while(|(a, b)| a == b)
            .count();
        let node = match common {
            0 => after.path.first().cloned().unwrap_or_default(),
            n => after.path[n - 1].clone(),
        };
        let input = after
            .inputs
            .iter()
            .rev()
            .find(|(len, at, _)| *len == common && *at == node)
            .map(|(_, _, i)| i.to_string());
        let (before, after) = (
            before.destination.to_string(),
            after.destination.to_string(),
        );
        let at = self.moved.iter().position(|m| {
            m.node == node && m.input == input && m.before == before && m.after == after
        });
        let at = match at {
            Some(i) => i,
            None => {
                self.moved.push(Move {
                    node,
                    input,
                    before,
                    after,
                    calls: 0,
                    examples: Vec::new(),
                });
                self.moved.len() - 1
            }
        };
        let m = &mut self.moved[at];
        m.calls += 1;
        if m.examples.len() < EXAMPLES {
            m.examples.push(call.call_id.clone());
        }
        self.moved.sort_by(|a, b| {
            b.calls
                .cmp(&a.calls)
                .then_with(|| (&a.node, &a.input, &a.after).cmp(&(&b.node, &b.input, &b.after)))
        });
    }

    /// Calls that would end elsewhere.
    pub fn moved_calls(&self) -> usize {
        self.moved.iter().map(|m| m.calls).sum()
    }

    /// The report as text, one line per group.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "flow \"{}\" edited (version {}): {} recorded call(s) replayed\n",
            self.flow, self.version, self.calls
        );
        out.push_str(&format!(
            "  {} call(s) end where they ended, {} would now end elsewhere, {} could not be replayed\n",
            self.unchanged,
            self.moved_calls(),
            self.unreplayable.iter().map(|u| u.calls).sum::<usize>()
        ));
        if !self.moved.is_empty() {
            out.push_str("would now end elsewhere:\n");
        }
        for m in &self.moved {
            let at = match &m.input {
                Some(i) => format!("{} → {i}", m.node),
                None => m.node.clone(),
            };
            out.push_str(&format!(
                "  {at}: {} call(s) now go to {} instead of {} (e.g. {})\n",
                m.calls,
                m.after,
                m.before,
                m.examples.join(", ")
            ));
        }
        if !self.unreplayable.is_empty() {
            out.push_str("could not be replayed:\n");
        }
        for u in &self.unreplayable {
            out.push_str(&format!(
                "  {} call(s): {} (e.g. {})\n",
                u.calls,
                u.reason,
                u.examples.join(", ")
            ));
        }
        out
    }

    /// Counts per destination change, for tests and summaries:
    /// `(node, input, before, after) → calls`.
    pub fn counts(&self) -> BTreeMap<(String, Option<String>, String, String), usize> {
        self.moved
            .iter()
            .map(|m| {
                (
                    (
                        m.node.clone(),
                        m.input.clone(),
                        m.before.clone(),
                        m.after.clone(),
                    ),
                    m.calls,
                )
            })
            .collect()
    }
}
