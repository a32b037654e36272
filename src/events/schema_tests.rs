//! The published schemas: files on disk equal [`super::schema`], parse as
//! JSON, and every sample event (and every README example) satisfies its
//! kind's schema, with no property the schema does not declare.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use super::model::{Event, EventData};
use super::schema;
use super::time::Timestamp;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/events")
}

/// A small validator for the keywords the schemas use: `type`, `const`,
/// `enum`, `required`, `properties`, `additionalProperties`, `items`,
/// `minimum`, `maximum`, `minLength`, `maxLength`, `pattern` (prefix
/// `^ev-[0-9]{13}-` only) and `format: date-time`. With `strict`, an object
/// property that `properties` does not declare (and no `additionalProperties`
/// schema covers) is an error too. Returns every problem, with its path.
fn check(value: &Value, schema: &Value, path: &str, strict: bool, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    if let Some(c) = s.get("const") {
        if value != c {
            errors.push(format!("{path}: {value} is not the constant {c}"));
        }
    }
    if let Some(Value::Array(values)) = s.get("enum") {
        if !values.contains(value) {
            errors.push(format!("{path}: {value} not in enum"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{path}: {value} is not of type {t}"));
            return;
        }
    }
    if let Some(n) = value.as_number() {
        if let Some(min) = s.get("minimum").and_then(Value::as_i64) {
            let below = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i < min,
                (None, Some(_), _) => false,
                (None, None, f) => f.is_some_and(|f| f < min as f64),
            };
            if below {
                errors.push(format!("{path}: {n} < minimum {min}"));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_u64) {
            if n.as_u64().is_some_and(|v| v > max) {
                errors.push(format!("{path}: {n} > maximum {max}"));
            }
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!("{path}: too short"));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!("{path}: too long"));
        }
        if s.get("format").and_then(Value::as_str) == Some("date-time")
            && Timestamp::parse(text).is_err()
        {
            errors.push(format!("{path}: {text:?} is not a date-time"));
        }
        match s.get("pattern").and_then(Value::as_str) {
            None => {}
            Some("^ev-[0-9]{13}-") => {
                let b = text.as_bytes();
                let good = text.starts_with("ev-")
                    && b.len() > 17
                    && b[3..16].iter().all(u8::is_ascii_digit)
                    && b[16] == b'-';
                if !good {
                    errors.push(format!("{path}: {text:?} does not match the id pattern"));
                }
            }
            Some(p) => errors.push(format!(
                "{path}: pattern {p} unsupported by the test checker"
            )),
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(item, item_schema, &format!("{path}[{i}]"), strict, errors);
            }
        }
    }
    if let Some(obj) = value.as_object() {
        if let Some(Value::Array(required)) = s.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    errors.push(format!("{path}: missing required {name}"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            let sub = format!("{path}.{k}");
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(ps), _) => check(v, ps, &sub, strict, errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{sub}: not allowed")),
                (None, Some(extra @ Value::Object(_))) => check(v, extra, &sub, strict, errors),
                (None, _) if strict => errors.push(format!("{sub}: not declared in the schema")),
                (None, _) => {}
            }
        }
    }
}

fn problems(event: &Value, kind: &str) -> Vec<String> {
    let schema = schema::schema(kind).expect("known kind");
    let mut errors = Vec::new();
    check(event, &schema, "$", true, &mut errors);
    errors
}

#[test]
fn every_kind_has_a_schema_and_a_file_that_matches_it() {
    let bless = std::env::var_os("HOTLINE_BLESS").is_some();
    let all = schema::all();
    assert_eq!(all.len(), EventData::KINDS.len());
    for (kind, s) in all {
        let path = docs().join(schema::file_name(kind));
        let text = format!("{}\n", serde_json::to_string_pretty(&s).expect("serialise"));
        if bless {
            fs::create_dir_all(docs()).expect("mkdir");
            fs::write(&path, &text).expect("write");
        }
        let on_disk = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run the tests with HOTLINE_BLESS=1)",
                path.display()
            )
        });
        let parsed: Value = serde_json::from_str(&on_disk)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        assert_eq!(
            parsed,
            s,
            "{} differs from schema.rs (HOTLINE_BLESS=1 rewrites it)",
            path.display()
        );
        assert_eq!(parsed["$schema"], schema::DRAFT);
        assert_eq!(parsed["properties"]["type"]["const"], kind);
    }
    assert!(schema::schema("call.exploded").is_none());
}

#[test]
fn no_stray_schema_files() {
    for entry in fs::read_dir(docs()).expect("docs/events") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(kind) = name.strip_suffix(".schema.json") {
            assert!(
                EventData::KINDS.contains(&kind),
                "{name} is not a known kind"
            );
        }
    }
}

#[test]
fn sample_events_satisfy_their_schemas() {
    let events = super::samples::events();
    for kind in EventData::KINDS {
        assert!(
            events.iter().any(|e| e.kind() == kind),
            "no sample of {kind}"
        );
    }
    for e in &events {
        let value = serde_json::to_value(e).expect("serialise");
        let errors = problems(&value, e.kind());
        assert!(errors.is_empty(), "{}: {errors:#?}\n{value:#}", e.kind());
        // And the export form too.
        let value = serde_json::to_value(e.for_export()).expect("serialise");
        assert!(problems(&value, e.kind()).is_empty());
    }
}

#[test]
fn the_checker_catches_wrong_events() {
    let events = super::samples::events();
    let ended = events
        .iter()
        .find(|e| e.kind() == "call.ended")
        .expect("cdr");
    let good = serde_json::to_value(ended).expect("serialise");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        problems(&v, "call.ended")
    };
    assert!(!mutate(&|v| drop(v["data"].as_object_mut().map(|m| m.remove("serial")))).is_empty());
    assert!(!mutate(&|v| v["data"]["talk_ms"] = Value::from(-1)).is_empty());
    assert!(!mutate(&|v| v["data"]["talk_ms"] = Value::from("12")).is_empty());
    assert!(!mutate(&|v| v["data"]["outcome"] = Value::from("exploded")).is_empty());
    assert!(!mutate(&|v| v["data"]["started_at"] = Value::from("yesterday")).is_empty());
    assert!(!mutate(&|v| v["data"]["undocumented"] = Value::from(1)).is_empty());
    assert!(!mutate(&|v| v["v"] = Value::from(2)).is_empty());
    assert!(!mutate(&|v| v["id"] = Value::from("x-1")).is_empty());
    assert!(!mutate(&|v| v["data"]["quality"][0]["lost"] = Value::from(0.5)).is_empty());
    assert!(!mutate(&|v| v["data"]["survey"]["attitude"] = Value::from(256)).is_empty());
    assert!(mutate(&|_| {}).is_empty());
}

/// ```json blocks of docs/events/README.md.
fn readme_examples() -> Vec<Value> {
    let text = fs::read_to_string(docs().join("README.md")).expect("README.md");
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```json") => block = Some(String::new()),
            (Some(b), "```") => {
                let b = std::mem::take(b);
                out.push(
                    serde_json::from_str(&b)
                        .unwrap_or_else(|e| panic!("README example not JSON: {e}\n{b}")),
                );
                block = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn readme_has_a_valid_example_of_every_kind() {
    let examples: Vec<Value> = readme_examples()
        .into_iter()
        .filter(|v| v.get("type").is_some() && v.get("data").is_some())
        .collect();
    for kind in EventData::KINDS {
        assert!(
            examples.iter().any(|e| e["type"] == kind),
            "README has no example of {kind}"
        );
    }
    for e in &examples {
        let kind = e["type"].as_str().expect("type");
        let errors = problems(e, kind);
        assert!(errors.is_empty(), "README example of {kind}: {errors:#?}");
        let parsed: Event =
            serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{kind}: {err}"));
        assert_eq!(parsed.kind(), kind);
    }
}

/// Prints the samples, to paste into the README (`cargo test print_samples
/// -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_samples() {
    for e in super::samples::events() {
        println!("{}\n", serde_json::to_string_pretty(&e).expect("serialise"));
    }
}
