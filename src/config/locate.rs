//! Find the line of a dotted key (`did[0].agents[1]`) in a parsed TOML
//! document, so semantic errors point where the admin must look.

use toml_edit::{ImDocument, Item, TableLike, Value};

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            out.push(Segment::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
    }
    Some(out)
}

/// 1-based line of `path` in `doc` (whose source is `text`), if found. Falls
/// back to the deepest ancestor that exists.
pub fn locate(doc: &ImDocument<String>, text: &str, path: &str) -> Option<usize> {
    enum Node<'a> {
        Table(&'a dyn TableLike),
        Tables(&'a toml_edit::ArrayOfTables),
        Value(&'a Value),
    }
    fn node(item: &Item) -> Option<Node<'_>> {
        match item {
            Item::Table(t) => Some(Node::Table(t)),
            Item::ArrayOfTables(a) => Some(Node::Tables(a)),
            Item::Value(v) => Some(Node::Value(v)),
            Item::None => None,
        }
    }
    let mut span: Option<std::ops::Range<usize>> = None;
    let mut at = Node::Table(doc.as_table());
    for seg in segments(path)? {
        let next = match (seg, &at) {
            (Segment::Key(k), Node::Table(t)) => t.get_key_value(k).and_then(|(key, item)| {
                span = key.span().or(span.clone());
                node(item)
            }),
            (Segment::Key(k), Node::Value(Value::InlineTable(t))) => {
                t.get_key_value(k).and_then(|(key, item)| {
                    span = key.span().or(span.clone());
                    node(item)
                })
            }
            (Segment::Index(i), Node::Tables(a)) => a.get(i).map(|t| {
                span = t.span().or(span.clone());
                Node::Table(t as &dyn TableLike)
            }),
            (Segment::Index(i), Node::Value(Value::Array(a))) => a.get(i).map(|v| {
                span = v.span().or(span.clone());
                Node::Value(v)
            }),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    let start = span?.start;
    Some(text[..start.min(text.len())].matches('\n').count() + 1)
}
