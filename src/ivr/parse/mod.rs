//! Flow file text → [`Flow`], reporting every structural problem at once.
//!
//! Requirement: unknown node kinds, unknown keys, missing keys, wrong types
//! and out-of-range values are all errors naming file, line and node. The
//! document is read with `toml_edit` (which keeps spans) instead of serde, so
//! that one pass collects every problem rather than stopping at the first;
//! lines come from `crate::config::locate`.
//!
//! - this file: the entry points ([`Flow::parse`], [`Flow::load`]) and the
//!   flow's top-level keys;
//! - `fields`: the typed reader of one table and the format's lexical rules;
//! - `nodes`: the keys of every node kind;
//! - `lookup`: the keys of the IVR-lookup nodes, `http` and `say`.
//!
//! The model it builds is [`crate::ivr::flow`]'s, which imports nothing
//! from here.

mod fields;
mod lookup;
mod nodes;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use toml_edit::{ImDocument, Item};

use crate::ivr::error::{FlowError, Problem};
use crate::ivr::flow::Flow;
use fields::{is_name, Ctx, Fields};

pub(crate) use fields::{template_parts, TemplatePart};
pub use nodes::DEFAULT_DIMENSIONS;

impl Flow {
    /// Parses one flow file's text; `path` is used in messages and kept.
    /// Reports every structural problem at once (cross-references between
    /// nodes and flows are checked by [`crate::ivr::validate()`]).
    pub fn parse(path: &Path, text: &str) -> Result<Flow, Vec<FlowError>> {
        parse(path, text)
    }

    /// Reads and parses one flow file.
    pub fn load(path: &Path) -> Result<Flow, Vec<FlowError>> {
        let bytes = std::fs::read(path).map_err(|e| {
            vec![FlowError {
                path: path.to_path_buf(),
                line: None,
                node: None,
                problem: Problem::Read(e.to_string()),
            }]
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => Self::parse(path, &text),
            Err(_) => Err(vec![FlowError {
                path: path.to_path_buf(),
                line: None,
                node: None,
                problem: Problem::Read("not UTF-8 text".into()),
            }]),
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
            if let Some(node) = nodes::parse_node(&mut cx, node_name, item) {
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
