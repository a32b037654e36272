//! The house rules of ../shared/DESIGN.md and ARCHITECTURE.md, checked on
//! the code itself (issue 13 §5): the leaf rooms (`sip`, `media`, `ivr`,
//! `acd`, `events`) never import each other nor the rooms above them
//! (`call`, `switch`, `api`, `app`); only the composition root (`app`,
//! with `main`) imports `api`; `api` and `switch` never import each other
//! (the API reaches the switch through traits `app` implements). SQLite
//! opening and schemas live in `store::sqlite`, PostgreSQL connections and
//! migrations in `store::pg`; both import nothing of the crate: the leaves
//! may import those parts of `store` and no other (the rest knows `sip`'s
//! and `ivr`'s types). The bottom room `time` (the
//! pure cores' time type and civil dates) may be imported by every room
//! and imports nothing of the crate. A new `use crate::…` that breaks a
//! rule fails this test with the file and line.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The room a source file belongs to: `src/<room>/…` or `src/<room>.rs`.
fn room_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// `(line number, room)` of every `crate::<room>` the file names, outside
/// comments.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
            rest = after;
        }
        // `use crate::{a, b::c}`: the rooms inside the braces.
        if let Some(at) = code.find("crate::{") {
            let inner = &code[at + "crate::{".len()..];
            for part in inner.split([',', '}']) {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push((i + 1, name));
                }
            }
        }
    }
    out
}

const LEAVES: [&str; 5] = ["sip", "media", "ivr", "acd", "events"];
const UPPER: [&str; 4] = ["call", "switch", "api", "app"];
/// The bottom room: everyone may import it; it imports nobody.
const BOTTOM: &str = "time";

#[test]
fn rooms_import_only_what_the_house_plan_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in sources(&src) {
        let room = room_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("source");
        let shown = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&file)
            .display()
            .to_string();
        // store::sqlite and store::pg import nothing of the crate.
        let in_sqlite = file.starts_with(src.join("store").join("sqlite"))
            || file.starts_with(src.join("store").join("pg"));
        for (line, target) in imports(&text) {
            checked += 1;
            let code = text.lines().nth(line - 1).unwrap_or("");
            let only_sqlite = (code.contains("crate::store::sqlite")
                || code.contains("crate::store::pg"))
                && !code
                    .replace("crate::store::sqlite", "")
                    .replace("crate::store::pg", "")
                    .contains("crate::store");
            if in_sqlite && (target != "store" || !only_sqlite) {
                broken.push(format!(
                    "{shown}:{line}: store::sqlite and store::pg import nothing of the crate (leaves use them), not {target}"
                ));
            }
            if LEAVES.contains(&room.as_str()) && target == "store" && !only_sqlite {
                broken.push(format!(
                    "{shown}:{line}: the {room} room may import store::sqlite and store::pg only, not the rest of store"
                ));
            }
            if target == room {
                continue;
            }
            if LEAVES.contains(&room.as_str())
                && (LEAVES.contains(&target.as_str()) || UPPER.contains(&target.as_str()))
            {
                broken.push(format!("{shown}:{line}: the {room} room imports {target}"));
            }
            if room == BOTTOM {
                broken.push(format!(
                    "{shown}:{line}: the {BOTTOM} room imports {target}: it imports nothing of the crate"
                ));
            }
            if target == "api" && !matches!(room.as_str(), "app" | "main") {
                broken.push(format!(
                    "{shown}:{line}: only the composition root (app) imports api, not {room}"
                ));
            }
            // The API reaches the switch through the traits of
            // `api::handles`, which `app` implements.
            if (room == "api" && target == "switch") || (room == "switch" && target == "api") {
                broken.push(format!(
                    "{shown}:{line}: {room} imports {target}: they meet only in the composition root (app)"
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} imports found: is the parser right?"
    );
    assert!(
        broken.is_empty(),
        "house rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_import_reader_sees_paths_and_braces() {
    let text = "use crate::media::rtp;\nuse crate::{acd::Engine, sip};\n// crate::call in a comment\nlet x = crate::util::unix_now();";
    let found: Vec<(usize, String)> = imports(text);
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["media", "acd", "sip", "util"]);
    assert_eq!(found[3].0, 4);
}

/// Files that once imported each other (issue 13 §5), and the direction
/// that stays: `(file or folder, what it must not name)`. The shared
/// pieces moved to where both can take them from.
const ONE_WAY: [(&str, &str); 5] = [
    // roster takes AgentConfig/GroupConfig (and agent_id) from config.
    ("src/config/", "crate::roster"),
    // cdr and model both take their values from events::parts.
    ("src/events/cdr.rs", "model::"),
    // calendar and holidays both take CalendarError from calendar_error.
    ("src/ivr/holidays.rs", "calendar::"),
    // parse builds flow's model (and offers Flow::parse/load); flow names
    // nothing of parse.
    ("src/ivr/flow.rs", "super::parse"),
    ("src/ivr/flow.rs", "ivr::parse"),
];

#[test]
fn broken_import_circles_stay_broken() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for (place, forbidden) in ONE_WAY {
        let path = root.join(place);
        let files = if path.is_dir() {
            sources(&path)
        } else {
            vec![path]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains(forbidden) {
                    broken.push(format!("{}:{}: names {forbidden}", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "an import circle is back:\n{}",
        broken.join("\n")
    );
}

/// The call's pure machines (DESIGN.md: "pure decision cores … driven by
/// injected time"), whose tests live in files of their own: what they may
/// not name outside comments — an async runtime, channels, sockets,
/// files, a clock.
const PURE_CORES: &[&str] = &[
    "src/call/fsm/mod.rs",
    "src/call/fsm/consult.rs",
    "src/call/fsm/reoffer.rs",
    "src/call/fsm/supervise.rs",
    "src/call/forks.rs",
    "src/call/agent_first.rs",
    "src/call/flow/core.rs",
    "src/call/queue_wait.rs",
    "src/call/converse/core.rs",
    "src/call/machine.rs",
    "src/call/hunt.rs",
];

/// What a pure core never names.
const IMPURE: &[&str] = &[
    "tokio::",
    "async fn",
    ".await",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "std::fs",
    "Instant::now",
    "SystemTime",
    "unix_now",
    "mpsc::",
];

#[test]
fn the_calls_pure_machines_stay_pure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for place in PURE_CORES {
        let file = root.join(place);
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in IMPURE {
                if code.contains(word) {
                    found.push(format!("{place}:{}: names {word}", i + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a pure machine does I/O or reads a clock:\n{}",
        found.join("\n")
    );
}
