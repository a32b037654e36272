//! IVR flow files for tests: a test's directory with `flows/` and the
//! calendars (`cal/schedules/always.toml`, `never.toml`), and flows more
//! than one test runs.

/// A directory holding `files` (name, text) under `flows/`, and the
/// schedules `always` (every day, all day) and `never` under
/// `cal/schedules/`.
pub fn setup(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("flows")).expect("flows dir");
    let sched = dir.path().join("cal/schedules");
    std::fs::create_dir_all(&sched).expect("schedules dir");
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let always: String = days
        .iter()
        .map(|d| format!("{d} = [\"00:00-24:00\"]\n"))
        .collect();
    std::fs::write(sched.join("always.toml"), format!("[weekly]\n{always}")).expect("always");
    std::fs::write(sched.join("never.toml"), "[weekly]\n").expect("never");
    for (name, text) in files {
        std::fs::write(dir.path().join("flows").join(name), text).expect("flow file");
    }
    dir
}

/// Number 12399 on a schedule that is never open: the caller leaves a
/// voicemail (30 s at most, 3 s of silence ends it), then hears goodbye.
pub const AFTER_HOURS: &str = r#"
name = "test-line"
dids = ["12399"]
entry = "hours"
[nodes.hours]
kind = "hours"
schedule = "never"
open = "bye"
closed = "vm"
[nodes.vm]
kind = "voicemail"
prompts = ["ivr_no_input"]
max_secs = 30
silence_secs = 3
next = "bye"
[nodes.bye]
kind = "hangup"
prompt = "ivr_goodbye"
"#;
