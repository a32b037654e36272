//! A flow as a picture: Graphviz DOT and Mermaid text.
//!
//! Requirement: admins and reviewers see a flow as a graph, nodes labelled
//! with name, kind and the key detail (prompts, group, schedule …), edges
//! labelled with the key or condition, the entry marked. Output is
//! deterministic (nodes in file order, edges in each node's order) and every
//! label is escaped, so any text (Chinese included) survives.

use std::fmt::Write as _;

use super::flow::{Flow, Node, NodeKind, TransferTarget};

/// Label of the dashed self-loop drawn on menus and collects that retry.
const RETRY: &str = "invalid/timeout→retry";

/// The label lines of a node: name, kind, details.
fn label_lines(name: &str, node: &Node) -> Vec<String> {
    let mut lines = vec![name.to_string(), node.kind.name().to_string()];
    let list = |ps: &[String]| ps.join(", ");
    let detail = match &node.kind {
        NodeKind::Play(p) => Some(list(&p.prompts)),
        NodeKind::Blacklist(b) => b.prompt.clone(),
        NodeKind::Area(_) | NodeKind::Switch(_) => None,
        NodeKind::Hours(h) => Some(format!("schedule {}", h.schedule)),
        NodeKind::Menu(m) => Some(list(&m.prompts)),
        NodeKind::Collect(c) => Some(format!("{} → {}", list(&c.prompts), c.var)),
        NodeKind::Set(s) => Some(
            s.vars
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        NodeKind::Queue(q) => Some(if q.priority > 0 {
            format!("group {}, priority {}", q.group, q.priority)
        } else {
            format!("group {}", q.group)
        }),
        NodeKind::Transfer(t) => Some(match &t.target {
            TransferTarget::Agent(a) => format!("agent {a}"),
            TransferTarget::Group(g) => format!("group {g}"),
            TransferTarget::Number {
                number,
                trunk: Some(trunk),
            } => format!("{number} via {trunk}"),
            TransferTarget::Number {
                number,
                trunk: None,
            } => number.clone(),
        }),
        NodeKind::Voicemail(v) if v.prompts.is_empty() => None,
        NodeKind::Voicemail(v) => Some(list(&v.prompts)),
        NodeKind::Survey(s) => Some(
            s.questions
                .iter()
                .map(|q| q.dimension.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        NodeKind::Subflow(s) => Some(format!("flow {}", s.flow)),
        NodeKind::Hangup(h) => h.prompt.clone(),
        NodeKind::Http(h) => Some(format!("{} {}", h.method.as_str(), h.url)),
        NodeKind::Say(s) => Some(format!("{} as {}", s.value, s.how.name())),
    };
    lines.extend(detail.filter(|d| !d.is_empty()));
    lines
}

/// Whether the node gets a dashed retry self-loop.
fn retries(kind: &NodeKind) -> bool {
    match kind {
        NodeKind::Menu(m) => m.retries > 1,
        NodeKind::Collect(c) => c.retries > 1,
        _ => false,
    }
}

fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Graphviz DOT for `flow`.
pub fn to_dot(flow: &Flow) -> String {
    let mut out = String::new();
    let title = if flow.description.is_empty() {
        flow.name.clone()
    } else {
        format!("{}: {}", flow.name, flow.description)
    };
    let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&flow.name));
    let _ = writeln!(out, "  label=\"{}\";", dot_escape(&title));
    out.push_str("  labelloc=t;\n");
    out.push_str("  node [shape=box, fontname=\"sans-serif\"];\n");
    out.push_str("  edge [fontname=\"sans-serif\"];\n");
    out.push_str("  \"__entry\" [shape=point, label=\"\"];\n");
    let _ = writeln!(
        out,
        "  \"__entry\" -> \"{}\" [label=\"entry\"];",
        dot_escape(&flow.entry)
    );
    let nodes = flow.nodes_in_file_order();
    for (name, node) in &nodes {
        let label: Vec<String> = label_lines(name, node)
            .iter()
            .map(|l| dot_escape(l))
            .collect();
        let shape = match node.kind {
            NodeKind::Hours(_) | NodeKind::Switch(_) | NodeKind::Blacklist(_) => ", shape=diamond",
            NodeKind::Hangup(_) => ", shape=oval",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"{shape}];",
            dot_escape(name),
            label.join("\\n")
        );
    }
    for (name, node) in &nodes {
        for edge in node.kind.edges() {
            let label = edge.kind.label();
            let attrs = if label.is_empty() {
                String::new()
            } else {
                format!(" [label=\"{}\"]", dot_escape(&label))
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\"{attrs};",
                dot_escape(name),
                dot_escape(edge.target)
            );
        }
        if retries(&node.kind) {
            let _ = writeln!(
                out,
                "  \"{0}\" -> \"{0}\" [label=\"{RETRY}\", style=dashed];",
                dot_escape(name)
            );
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Mermaid `flowchart` for `flow`. Node ids are `n0`, `n1`, … in file order
/// (names may contain `-`); the entry is marked by a circle `entry`.
pub fn to_mermaid(flow: &Flow) -> String {
    let mut out = String::new();
    let title = if flow.description.is_empty() {
        flow.name.clone()
    } else {
        format!("{}: {}", flow.name, flow.description)
    };
    let _ = writeln!(out, "%% {}", title.replace(['\n', '\r'], " "));
    out.push_str("flowchart TD\n");
    let nodes = flow.nodes_in_file_order();
    let id = |name: &str| {
        nodes
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| format!("n{i}"))
    };
    out.push_str("  entry((entry))\n");
    for (i, (name, node)) in nodes.iter().enumerate() {
        let label: Vec<String> = label_lines(name, node)
            .iter()
            .map(|l| mermaid_escape(l))
            .collect();
        let label = label.join("<br/>");
        let (open, close) = match node.kind {
            NodeKind::Hours(_) | NodeKind::Switch(_) | NodeKind::Blacklist(_) => ("{", "}"),
            NodeKind::Hangup(_) => ("([", "])"),
            _ => ("[", "]"),
        };
        let _ = writeln!(out, "  n{i}{open}\"{label}\"{close}");
    }
    if let Some(entry) = id(&flow.entry) {
        let _ = writeln!(out, "  entry --> {entry}");
    }
    for (i, (_, node)) in nodes.iter().enumerate() {
        for edge in node.kind.edges() {
            // A dangling target (invalid flow) is drawn as a bare id.
            let target =
                id(edge.target).unwrap_or_else(|| format!("missing_{}", mermaid_id(edge.target)));
            let label = edge.kind.label();
            if label.is_empty() {
                let _ = writeln!(out, "  n{i} --> {target}");
            } else {
                let _ = writeln!(out, "  n{i} -->|\"{}\"| {target}", mermaid_escape(&label));
            }
        }
        if retries(&node.kind) {
            let _ = writeln!(out, "  n{i} -.->|\"{RETRY}\"| n{i}");
        }
    }
    out
}

/// An id-safe rendering of an arbitrary name.
fn mermaid_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::testkit::{flow, sample_set, MAIN};

    const SMALL: &str = r##"
name = "small"
description = "小 \"demo\""
entry = "hi"

[nodes.hi]
kind = "play"
prompts = ["ivr_welcome"]
next = "menu"

[nodes.menu]
kind = "menu"
prompts = ["ivr_menu"]
retries = 2
fallback = "q"
options = { "1" = "q", "#" = "bye" }

[nodes.q]
kind = "queue"
group = "general"
priority = 9
on_timeout = "bye"
after_agent = "bye"

[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"##;

    #[test]
    fn dot_is_exact() {
        let expected = r##"digraph "small" {
  label="small: 小 \"demo\"";
  labelloc=t;
  node [shape=box, fontname="sans-serif"];
  edge [fontname="sans-serif"];
  "__entry" [shape=point, label=""];
  "__entry" -> "hi" [label="entry"];
  "hi" [label="hi\nplay\nivr_welcome"];
  "menu" [label="menu\nmenu\nivr_menu"];
  "q" [label="q\nqueue\ngroup general, priority 9"];
  "bye" [label="bye\nhangup\nivr_goodbye", shape=oval];
  "hi" -> "menu";
  "menu" -> "bye" [label="#"];
  "menu" -> "q" [label="1"];
  "menu" -> "q" [label="fallback"];
  "menu" -> "menu" [label="invalid/timeout→retry", style=dashed];
  "q" -> "bye" [label="timeout"];
  "q" -> "bye" [label="after agent"];
}
"##;
        assert_eq!(to_dot(&flow("small", SMALL)), expected);
    }

    #[test]
    fn mermaid_is_exact() {
        let expected = r##"%% small: 小 "demo"
flowchart TD
  entry((entry))
  n0["hi<br/>play<br/>ivr_welcome"]
  n1["menu<br/>menu<br/>ivr_menu"]
  n2["q<br/>queue<br/>group general, priority 9"]
  n3(["bye<br/>hangup<br/>ivr_goodbye"])
  entry --> n0
  n0 --> n1
  n1 -->|"#35;"| n3
  n1 -->|"1"| n2
  n1 -->|"fallback"| n2
  n1 -.->|"invalid/timeout→retry"| n1
  n2 -->|"timeout"| n3
  n2 -->|"after agent"| n3
"##;
        assert_eq!(to_mermaid(&flow("small", SMALL)), expected);
    }

    #[test]
    fn sample_flows_render_every_node_and_edge() {
        let set = sample_set();
        for f in set.flows() {
            let dot = to_dot(f);
            let mermaid = to_mermaid(f);
            for name in f.nodes.keys() {
                assert!(dot.contains(&format!("\"{name}\" [label=")), "{name}");
            }
            let edges: usize = f.nodes.values().map(|n| n.kind.edges().len()).sum();
            assert!(mermaid.matches("-->").count() > edges);
            assert!(!mermaid.contains("missing_"));
        }
        let main = flow("12345", MAIN);
        let dot = to_dot(&main);
        assert!(dot.contains("label=\"12345: 12345 政务服务热线 主菜单\""));
        assert!(dot.contains("\"enterprise\" -> \"q_enterprise\" [label=\"area_code = 0571\"];"));
        assert!(dot.contains("\"hours\" -> \"menu\" [label=\"open\"];"));
        assert!(dot.contains("\"survey\" [label=\"survey\\nsubflow\\nflow survey\"];"));
    }
}
