//! Validation across a set of flows, and the validated [`FlowSet`].
//!
//! Requirement: a flow set is only put in service when every transition
//! leads somewhere, every node can be reached, no loop can spin without
//! waiting for the caller, every prompt, group, trunk, schedule and agent
//! exists, subflows exist and do not recurse, and no number is answered by
//! two flows. All problems are reported at once, each naming file, line and
//! node (see [`super::error`] for the messages).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::error::{FlowError, Problem};
use super::flow::{Flow, NodeKind, TransferTarget};

/// What the rest of the configuration provides, for cross-checks.
pub trait Catalog {
    /// A sound file `sounds/NAME.*` exists.
    fn has_prompt(&self, name: &str) -> bool;
    /// A skill group with this id is configured.
    fn has_group(&self, id: &str) -> bool;
    /// A trunk with this name is configured.
    fn has_trunk(&self, name: &str) -> bool;
    /// A calendar with this name is configured.
    fn has_schedule(&self, name: &str) -> bool;
    /// An agent with this SIP user is configured.
    fn has_agent(&self, user: &str) -> bool;
}

/// Knows every prompt, group, trunk, schedule and agent: flows checked
/// for their own consistency only (tests, benches, and stored versions
/// replayed after the configuration changed).
pub struct AllCatalog;

impl Catalog for AllCatalog {
    fn has_prompt(&self, _: &str) -> bool {
        true
    }
    fn has_group(&self, _: &str) -> bool {
        true
    }
    fn has_trunk(&self, _: &str) -> bool {
        true
    }
    fn has_schedule(&self, _: &str) -> bool {
        true
    }
    fn has_agent(&self, _: &str) -> bool {
        true
    }
}

/// Checks `flows` together; returns every problem (empty: all good).
pub fn validate(flows: &[Flow], catalog: &dyn Catalog) -> Vec<FlowError> {
    let mut errors = Vec::new();
    let mut by_name: BTreeMap<&str, &Flow> = BTreeMap::new();
    for flow in flows {
        match by_name.get(flow.name.as_str()) {
            Some(first) => errors.push(flow.error(
                None,
                "name",
                Problem::DuplicateFlow {
                    name: flow.name.clone(),
                    other_path: first.path.display().to_string(),
                },
            )),
            None => {
                by_name.insert(&flow.name, flow);
            }
        }
    }
    let mut dids: BTreeMap<&str, &Flow> = BTreeMap::new();
    for flow in flows {
        for (i, did) in flow.dids.iter().enumerate() {
            match dids.get(did.as_str()) {
                Some(other) if std::ptr::eq(*other, flow) => errors.push(flow.error(
                    None,
                    &format!("dids[{i}]"),
                    Problem::RepeatedDid(did.clone()),
                )),
                Some(other) => errors.push(flow.error(
                    None,
                    &format!("dids[{i}]"),
                    Problem::DuplicateDid {
                        did: did.clone(),
                        other: other.name.clone(),
                        other_path: other.path.display().to_string(),
                    },
                )),
                None => {
                    dids.insert(did, flow);
                }
            }
        }
    }
    for flow in flows {
        check_flow(flow, &by_name, catalog, &mut errors);
    }
    check_recursion(flows, &by_name, &mut errors);
    let mut silent = BTreeMap::new();
    for flow in flows {
        check_silent_loops(flow, &by_name, &mut silent, &mut errors);
    }
    errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    errors
}

fn check_flow(
    flow: &Flow,
    flows: &BTreeMap<&str, &Flow>,
    catalog: &dyn Catalog,
    errors: &mut Vec<FlowError>,
) {
    if !flow.nodes.contains_key(&flow.entry) {
        errors.push(flow.error(None, "entry", Problem::EntryUnknown(flow.entry.clone())));
    }
    let reachable = reachable(flow);
    for (name, node) in flow.nodes_in_file_order() {
        let at = |key: &str| {
            if key.is_empty() {
                format!("nodes.{name}")
            } else {
                format!("nodes.{name}.{key}")
            }
        };
        let mut err = |key: &str, problem: Problem| {
            errors.push(flow.error(Some(name), &at(key), problem));
        };
        for edge in node.kind.edges() {
            if !flow.nodes.contains_key(edge.target) {
                err(
                    &edge.kind.key(),
                    Problem::Dangling {
                        via: edge.kind.describe(),
                        target: edge.target.to_string(),
                    },
                );
            }
        }
        if flow.nodes.contains_key(&flow.entry) && !reachable.contains(name) {
            err("", Problem::Unreachable(flow.entry.clone()));
        }
        for (key, prompt) in node.kind.prompts() {
            if !catalog.has_prompt(prompt) {
                err(&key, Problem::UnknownPrompt(prompt.to_string()));
            }
        }
        match &node.kind {
            NodeKind::Hours(h) if !catalog.has_schedule(&h.schedule) => {
                err("schedule", Problem::UnknownSchedule(h.schedule.clone()));
            }
            NodeKind::Queue(q) if !catalog.has_group(&q.group) => {
                err("group", Problem::UnknownGroup(q.group.clone()));
            }
            NodeKind::Transfer(t) => match &t.target {
                TransferTarget::Agent(a) if !catalog.has_agent(a) => {
                    err("agent", Problem::UnknownAgent(a.clone()));
                }
                TransferTarget::Group(g) if !catalog.has_group(g) => {
                    err("group", Problem::UnknownGroup(g.clone()));
                }
                TransferTarget::Number {
                    trunk: Some(trunk), ..
                } if !catalog.has_trunk(trunk) => {
                    err("trunk", Problem::UnknownTrunk(trunk.clone()));
                }
                _ => {}
            },
            NodeKind::Subflow(s) if !flows.contains_key(s.flow.as_str()) => {
                err("flow", Problem::UnknownFlow(s.flow.clone()));
            }
            _ => {}
        }
    }
}

/// Node names reachable from the entry.
fn reachable(flow: &Flow) -> BTreeSet<&str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![flow.entry.as_str()];
    while let Some(name) = todo.pop() {
        let Some((key, node)) = flow.nodes.get_key_value(name) else {
            continue;
        };
        if !seen.insert(key.as_str()) {
            continue;
        }
        for edge in node.kind.edges() {
            todo.push(edge.target);
        }
    }
    seen
}

/// Subflows calling each other in a circle.
fn check_recursion(flows: &[Flow], by_name: &BTreeMap<&str, &Flow>, errors: &mut Vec<FlowError>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        flow: &'a Flow,
        by_name: &BTreeMap<&str, &'a Flow>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        errors: &mut Vec<FlowError>,
    ) {
        marks.insert(&flow.name, Mark::Active);
        stack.push(&flow.name);
        for (node_name, node) in flow.nodes_in_file_order() {
            let NodeKind::Subflow(sub) = &node.kind else {
                continue;
            };
            let Some(callee) = by_name.get(sub.flow.as_str()) else {
                continue;
            };
            match marks.get(callee.name.as_str()) {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|f| *f == callee.name).unwrap_or(0);
                    let mut chain: Vec<&str> = stack[start..].to_vec();
                    chain.push(&callee.name);
                    errors.push(flow.error(
                        Some(node_name),
                        &format!("nodes.{node_name}.flow"),
                        Problem::Recursion(chain.join(" -> ")),
                    ));
                }
                Some(Mark::Done) => {}
                None => visit(callee, by_name, marks, stack, errors),
            }
        }
        stack.pop();
        marks.insert(&flow.name, Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut stack = Vec::new();
    for flow in flows {
        // Only the first flow of a duplicated name takes part.
        let canonical = by_name
            .get(flow.name.as_str())
            .is_some_and(|f| std::ptr::eq(*f, flow));
        if canonical && !marks.contains_key(flow.name.as_str()) {
            visit(flow, by_name, &mut marks, &mut stack, errors);
        }
    }
}

/// Whether `flow` can return to its caller without waiting anywhere;
/// memoised in `memo` (a flow being computed counts as waiting, which is
/// right for recursion, reported separately).
fn returns_silently<'a>(
    flow: &'a Flow,
    by_name: &BTreeMap<&str, &'a Flow>,
    memo: &mut BTreeMap<&'a str, bool>,
) -> bool {
    if let Some(known) = memo.get(flow.name.as_str()) {
        return *known;
    }
    memo.insert(&flow.name, false);
    let mut seen = BTreeSet::new();
    let mut todo = vec![flow.entry.as_str()];
    let mut result = false;
    while let Some(name) = todo.pop() {
        let Some(node) = flow.nodes.get(name) else {
            continue;
        };
        if !seen.insert(name) || !passes_silently(&node.kind, by_name, memo) {
            continue;
        }
        let edges = node.kind.edges();
        let ends = match &node.kind {
            NodeKind::Blacklist(n) => n.next.is_none(),
            NodeKind::Area(n) => n.next.is_none(),
            NodeKind::Set(n) => n.next.is_none(),
            NodeKind::Subflow(n) => n.next.is_none(),
            NodeKind::Say(n) => n.next.is_none(),
            _ => false,
        };
        if ends {
            result = true;
            break;
        }
        todo.extend(edges.iter().map(|e| e.target));
    }
    memo.insert(&flow.name, result);
    result
}

/// Whether entering this node can lead on without waiting.
fn passes_silently<'a>(
    kind: &NodeKind,
    by_name: &BTreeMap<&str, &'a Flow>,
    memo: &mut BTreeMap<&'a str, bool>,
) -> bool {
    match kind {
        NodeKind::Subflow(s) => match by_name.get(s.flow.as_str()) {
            Some(callee) => returns_silently(callee, by_name, memo),
            None => false,
        },
        other => !other.waits(),
    }
}

/// Cycles made only of nodes that do not wait.
fn check_silent_loops<'a>(
    flow: &'a Flow,
    by_name: &BTreeMap<&str, &'a Flow>,
    memo: &mut BTreeMap<&'a str, bool>,
    errors: &mut Vec<FlowError>,
) {
    // The graph of silent nodes and the edges between them.
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, node) in &flow.nodes {
        if passes_silently(&node.kind, by_name, memo) {
            graph.insert(name, node.kind.edges().iter().map(|e| e.target).collect());
        }
    }
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut reported: BTreeSet<Vec<&str>> = BTreeSet::new();
    for (start, _) in flow.nodes_in_file_order() {
        if !graph.contains_key(start) || done.contains(start) {
            continue;
        }
        // Iterative DFS keeping the current path.
        let mut path: Vec<&str> = vec![start];
        let mut iters: Vec<usize> = vec![0];
        let mut on_path: BTreeSet<&str> = BTreeSet::from([start]);
        while let (Some(&node), Some(i)) = (path.last(), iters.last_mut()) {
            let outs = graph.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if *i >= outs.len() {
                done.insert(node);
                on_path.remove(node);
                path.pop();
                iters.pop();
                continue;
            }
            let next = outs[*i];
            *i += 1;
            if !graph.contains_key(next) || done.contains(next) {
                continue;
            }
            if on_path.contains(next) {
                let from = path.iter().position(|n| *n == next).unwrap_or(0);
                let mut cycle: Vec<&str> = path[from..].to_vec();
                let mut key = cycle.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    // Report at the cycle's first node in file order.
                    let first = cycle
                        .iter()
                        .min_by_key(|n| flow.nodes.get(**n).map(|x| x.line))
                        .copied()
                        .unwrap_or(next);
                    let at = cycle.iter().position(|n| *n == first).unwrap_or(0);
                    cycle.rotate_left(at);
                    cycle.push(first);
                    errors.push(flow.error(
                        Some(first),
                        &format!("nodes.{first}"),
                        Problem::SilentLoop(cycle.join(" -> ")),
                    ));
                }
                continue;
            }
            on_path.insert(next);
            path.push(next);
            iters.push(0);
        }
    }
}

/// The validated flows, by name; immutable and shareable (`Arc<FlowSet>`).
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    flows: BTreeMap<String, Flow>,
    dids: BTreeMap<String, String>,
}

impl FlowSet {
    /// Validates `flows` and builds the set, or returns every problem.
    pub fn new(flows: Vec<Flow>, catalog: &dyn Catalog) -> Result<Self, Vec<FlowError>> {
        let errors = validate(&flows, catalog);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut set = FlowSet::default();
        for flow in flows {
            for did in &flow.dids {
                set.dids.insert(did.clone(), flow.name.clone());
            }
            set.flows.insert(flow.name.clone(), flow);
        }
        Ok(set)
    }

    /// A set built without validation, to exercise the interpreter's guards.
    #[cfg(test)]
    pub(crate) fn unchecked(flows: Vec<Flow>) -> Self {
        let mut set = FlowSet::default();
        for flow in flows {
            for did in &flow.dids {
                set.dids.insert(did.clone(), flow.name.clone());
            }
            set.flows.insert(flow.name.clone(), flow);
        }
        set
    }

    /// Reads, parses and validates the given files; every problem of every
    /// file is reported together.
    pub fn load(paths: &[PathBuf], catalog: &dyn Catalog) -> Result<Self, Vec<FlowError>> {
        let mut flows = Vec::new();
        let mut errors = Vec::new();
        for path in paths {
            match Flow::load(path) {
                Ok(flow) => flows.push(flow),
                Err(mut e) => errors.append(&mut e),
            }
        }
        match Self::new(flows, catalog) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// The flow named `name`.
    pub fn get(&self, name: &str) -> Option<&Flow> {
        self.flows.get(name)
    }

    /// The flow answering the called number.
    pub fn for_did(&self, called: &str) -> Option<&Flow> {
        self.dids.get(called).and_then(|name| self.flows.get(name))
    }

    /// All flows, by name.
    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values()
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
