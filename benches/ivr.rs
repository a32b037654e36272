//! IVR hot paths: the pure interpreter walking one whole call through the
//! shipped `ivr-flows/12345.toml`
//! (welcome, block list, area, hours, menu, set, queue, agent, survey
//! subflow with three questions, goodbye), and reading + parsing +
//! validating a large `ivr-flows/` directory (what start-up and every hot
//! reload do). Run: `cargo bench --bench ivr`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::ivr::{
    validate::AllCatalog, Action, CallFacts, Environment, Event, FlowSet, Interpreter, QueueOutcome,
};
use hotline::time::Time;

/// Open, nobody blocked, every caller in Hangzhou, China time.
struct Env;

impl Environment for Env {
    fn is_open(&self, _: &str, _: Time) -> bool {
        true
    }
    fn area_of(&self, _: &str) -> Option<(String, String)> {
        Some(("0571".into(), "杭州市".into()))
    }
    fn is_blocked(&self, _: &str, _: &str) -> bool {
        false
    }
    fn utc_offset_minutes(&self) -> i32 {
        480
    }
}

/// The shipped 12345 flow and its survey, as admins run them.
fn sample_set() -> Arc<FlowSet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-flows");
    let files = [dir.join("12345.toml"), dir.join("survey.toml")];
    Arc::new(FlowSet::load(&files, &AllCatalog).unwrap_or_else(|e| panic!("{e:?}")))
}

/// The caller's side of one call, after `start`: the welcome ends, the
/// caller picks 2, an agent answers and later hangs up, the survey intro
/// ends, three answers, the thanks ends, the goodbye ends.
fn script() -> Vec<Event> {
    vec![
        Event::PromptFinished,
        Event::Key('2'),
        Event::QueueResult(QueueOutcome::Answered {
            agent: "1001".into(),
        }),
        Event::AgentHungUp,
        Event::PromptFinished,
        Event::Key('1'),
        Event::Key('2'),
        Event::Key('1'),
        Event::PromptFinished,
        Event::PromptFinished,
    ]
}

/// Runs one whole call; returns the `Step` actions seen and whether the
/// last action was a hang-up.
fn run_call(
    set: &Arc<FlowSet>,
    facts: &CallFacts,
    events: &[Event],
    env: &Env,
    now: Time,
) -> (u64, bool) {
    let mut ivr = Interpreter::new(Arc::clone(set), "12345", facts.clone()).expect("flow exists");
    let mut steps = 0u64;
    let mut hung_up = false;
    let mut consume = |actions: Vec<Action>| {
        for a in actions {
            match a {
                Action::Step { .. } => steps += 1,
                Action::Hangup { .. } => hung_up = true,
                other => {
                    black_box(other);
                }
            }
        }
    };
    consume(ivr.start(now, env));
    for e in events {
        consume(ivr.handle(e.clone(), now, env));
    }
    (steps, hung_up && ivr.is_finished())
}

fn interpreter(c: &mut Criterion) {
    let set = sample_set();
    let facts = CallFacts {
        caller: "13800138000".into(),
        called: "12345".into(),
        tenant: "default".into(),
    };
    let events = script();
    let env = Env;
    // 2026-11-23 10:00 China time.
    let now = Time::from_unix_secs(1_795_399_200);
    let (steps, done) = run_call(&set, &facts, &events, &env, now);
    assert!(done, "the scripted call must end with a hang-up");
    assert_eq!(steps, 10, "welcome..bye is 10 node entries");

    let mut g = c.benchmark_group("ivr");
    g.throughput(Throughput::Elements(steps));
    g.bench_function("interpreter_steps", |b| {
        b.iter(|| run_call(black_box(&set), &facts, black_box(&events), &env, now))
    });
    g.finish();
}

/// One generated flow of 25-40 nodes (22 fixed plus a chain of 3-18),
/// with its own DID, schedule, groups and prompts.
fn generated_flow(i: usize) -> String {
    let mut t = String::new();
    let w = &mut t;
    let extra = 3 + i % 16;
    let _ = writeln!(w, "# generated flow {i}: {} nodes", 22 + extra);
    let _ = writeln!(w, "name = \"line_{i:03}\"");
    let _ = writeln!(w, "description = \"便民热线 {i:03} 分中心\"");
    let _ = writeln!(w, "dids = [\"0571{:04}\", \"9{i:03}\"]", 6000 + i);
    let _ = writeln!(w, "tenant = \"centre-{}\"", i % 12);
    let _ = writeln!(w, "entry = \"welcome\"\n");
    let _ = writeln!(
        w,
        r#"[nodes.welcome]
kind = "play"
prompts = ["welcome_{i}", "notice_{i}"]
interruptible = true
next = "blocked"

[nodes.blocked]
kind = "blacklist"
prompt = "ivr_blocked"
next = "area"

[nodes.area]
kind = "area"
next = "hours"

[nodes.hours]
kind = "hours"
schedule = "hours-{sched}"
open = "menu"
closed = "after_hours"

[nodes.menu]
kind = "menu"
prompts = ["menu_{i}"]
timeout_secs = 5
retries = 3
invalid_prompt = "ivr_invalid"
timeout_prompt = "ivr_no_input"
fallback = "q_general"

[nodes.menu.options]
"1" = "consult"
"2" = "complaint"
"3" = "enterprise"
"4" = "district"
"5" = "info"
"0" = "q_general"

[nodes.consult]
kind = "set"
vars = {{ line = "consult", ref = "{{caller}}-{i}" }}
next = "q_general"

[nodes.complaint]
kind = "collect"
prompts = ["enter_ticket_{i}"]
var = "ticket_no"
min_digits = 6
max_digits = 18
timeout_secs = 8
pattern = "^[0-9]{{6,18}}$"
retries = 2
invalid_prompt = "ivr_invalid"
next = "mark"
fallback = "mark"

[nodes.mark]
kind = "set"
vars = {{ line = "complaint", ref = "{{caller}}-{{var:ticket_no}}" }}
next = "q_complaint"

[nodes.enterprise]
kind = "switch"
default = "q_general"

[[nodes.enterprise.case]]
var = "area_code"
equals = "0571"
next = "q_enterprise"

[[nodes.enterprise.case]]
caller_prefix = "1{p}"
next = "q_enterprise"

[nodes.district]
kind = "switch"
default = "q_general"

[[nodes.district.case]]
time = "08:30-12:00"
next = "q_district"

[[nodes.district.case]]
weekdays = ["sat", "sun"]
next = "duty"

[nodes.info]
kind = "play"
prompts = ["info_{i}"]
next = "submenu"

[nodes.submenu]
kind = "menu"
prompts = ["submenu_{i}"]
fallback = "bye"

[nodes.submenu.options]
"1" = "x0"
"2" = "duty"
"9" = "menu"

[nodes.q_general]
kind = "queue"
group = "general-{g}"
max_wait_secs = 120
on_timeout = "vm"
on_overflow = "busy"
on_closed = "vm"
after_agent = "survey"

[nodes.q_complaint]
kind = "queue"
group = "complaint-{g}"
priority = 5
on_timeout = "vm"
after_agent = "survey"

[nodes.q_enterprise]
kind = "queue"
group = "enterprise-{g}"
on_closed = "vm"
after_agent = "survey"

[nodes.q_district]
kind = "queue"
group = "district-{i}"
on_timeout = "duty"
after_agent = "survey"

[nodes.duty]
kind = "transfer"
number = "0571{num:04}"
trunk = "carrier-{t}"
on_fail = "vm"

[nodes.after_hours]
kind = "play"
prompts = ["after_hours_{i}"]
next = "vm"

[nodes.vm]
kind = "voicemail"
prompts = ["ivr_voicemail"]
max_secs = 180
next = "bye"

[nodes.busy]
kind = "hangup"
prompt = "ivr_busy"

[nodes.survey]
kind = "subflow"
flow = "survey"
next = "bye"

[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#,
        sched = i % 7,
        p = 30 + i % 60,
        g = i % 20,
        num = 8000 + i,
        t = i % 3,
    );
    // A chain x0 -> x1 -> ... -> q_general of set/switch/collect/play nodes.
    for j in 0..extra {
        let next = if j + 1 == extra {
            "q_general".to_string()
        } else {
            format!("x{}", j + 1)
        };
        let _ = writeln!(w, "[nodes.x{j}]");
        match j % 4 {
            0 => {
                let _ = writeln!(w, "kind = \"set\"");
                let _ = writeln!(w, "vars = {{ step_{j} = \"{{called}}-{j}\" }}");
                let _ = writeln!(w, "next = \"{next}\"");
            }
            1 => {
                let _ = writeln!(w, "kind = \"switch\"");
                let _ = writeln!(w, "default = \"{next}\"\n");
                let _ = writeln!(w, "[[nodes.x{j}.case]]");
                let _ = writeln!(w, "var = \"step_{}\"", j - 1);
                let _ = writeln!(w, "prefix = \"{i}\"");
                let _ = writeln!(w, "next = \"{next}\"");
            }
            2 => {
                let _ = writeln!(w, "kind = \"collect\"");
                let _ = writeln!(w, "prompts = [\"ask_{i}_{j}\"]");
                let _ = writeln!(w, "var = \"code_{j}\"");
                let _ = writeln!(w, "max_digits = 4");
                let _ = writeln!(w, "next = \"{next}\"");
                let _ = writeln!(w, "fallback = \"q_general\"");
            }
            _ => {
                let _ = writeln!(w, "kind = \"play\"");
                let _ = writeln!(w, "prompts = [\"detail_{i}_{j}\"]");
                let _ = writeln!(w, "next = \"{next}\"");
            }
        }
        let _ = writeln!(w);
    }
    t
}

fn load_validate(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths: Vec<PathBuf> = Vec::new();
    // The shipped survey, which every generated line calls.
    paths.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr-flows/survey.toml"));
    for i in 0..300 {
        let p = dir.path().join(format!("line_{i:03}.toml"));
        std::fs::write(&p, generated_flow(i)).expect("write flow");
        paths.push(p);
    }
    let set = FlowSet::load(&paths, &AllCatalog).unwrap_or_else(|e| {
        panic!(
            "generated flows must validate:\n{}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let nodes: usize = set.flows().map(|f| f.nodes.len()).sum();
    assert_eq!(set.flows().count(), 301);
    assert_eq!(
        nodes,
        300 * 22 + (0..300).map(|i| 3 + i % 16).sum::<usize>() + 1
    );

    let mut g = c.benchmark_group("ivr");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(paths.len() as u64));
    g.bench_function("load_validate_300_flows", |b| {
        b.iter(|| FlowSet::load(black_box(&paths), &AllCatalog).map(|s| s.flows().count()))
    });
    g.finish();
}

criterion_group!(benches, interpreter, load_validate);
criterion_main!(benches);
