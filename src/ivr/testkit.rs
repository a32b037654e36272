//! Test helpers: sample flows resembling the shipped 12345 flow, an
//! accept-all catalog, a scripted environment.

use std::path::Path;
use std::sync::Arc;

use super::flow::Flow;
use super::interpreter::Environment;
use super::validate::{Catalog, FlowSet};

/// The 12345 main flow.
pub const MAIN: &str = r#"
name = "12345"
description = "12345 政务服务热线 主菜单"
dids = ["12345", "057112345"]
tenant = "default"
entry = "welcome"

[nodes.welcome]
kind = "play"
prompts = ["ivr_12345_welcome"]
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
schedule = "working-hours"
open = "menu"
closed = "after_hours"

[nodes.menu]
kind = "menu"
prompts = ["ivr_12345_menu"]
timeout_secs = 5
retries = 3
invalid_prompt = "ivr_invalid"
timeout_prompt = "ivr_no_input"
fallback = "q_general"

[nodes.menu.options]
"1" = "consult"
"2" = "complaint"
"3" = "enterprise"
"0" = "q_general"
"9" = "emergency"

[nodes.consult]
kind = "set"
vars = { line = "consult" }
next = "q_general"

[nodes.complaint]
kind = "collect"
prompts = ["ivr_enter_ticket"]
var = "ticket_no"
min_digits = 6
max_digits = 18
timeout_secs = 8
pattern = "^[0-9]{6,18}$"
retries = 2
invalid_prompt = "ivr_invalid"
next = "mark_complaint"
fallback = "mark_complaint"

[nodes.mark_complaint]
kind = "set"
vars = { line = "complaint", ref = "{caller}-{var:ticket_no}" }
next = "q_complaint"

[nodes.enterprise]
kind = "switch"
default = "q_general"

[[nodes.enterprise.case]]
var = "area_code"
equals = "0571"
next = "q_enterprise"

[nodes.emergency]
kind = "queue"
group = "general"
priority = 9
on_timeout = "vm"
on_overflow = "vm"
on_closed = "vm"
after_agent = "survey"

[nodes.q_general]
kind = "queue"
group = "general"
max_wait_secs = 120
on_timeout = "vm"
on_overflow = "busy"
on_closed = "vm"
after_agent = "survey"

[nodes.q_complaint]
kind = "queue"
group = "complaint"
priority = 5
on_timeout = "vm"
after_agent = "survey"

[nodes.q_enterprise]
kind = "queue"
group = "enterprise"
after_agent = "survey"

[nodes.after_hours]
kind = "play"
prompts = ["ivr_after_hours"]
next = "vm"

[nodes.vm]
kind = "voicemail"
prompts = ["ivr_voicemail"]
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
"#;

/// The satisfaction survey subflow.
pub const SURVEY: &str = r#"
name = "survey"
description = "满意度调查"
entry = "ask"

[nodes.ask]
kind = "survey"
intro = "survey_intro"
thanks = "survey_thanks"
timeout_secs = 8

[[nodes.ask.question]]
prompt = "survey_attitude"
keys = { "1" = 5, "2" = 3, "3" = 1 }

[[nodes.ask.question]]
prompt = "survey_efficiency"
keys = { "1" = 5, "2" = 3, "3" = 1 }

[[nodes.ask.question]]
dimension = "resolution"
prompt = "survey_resolution"
keys = { "1" = 5, "2" = 1 }
"#;

/// A flow that transfers to 110 through a trunk, then to an agent when
/// that fails.
pub const TRANSFER: &str = r#"
name = "t"
entry = "police"
[nodes.police]
kind = "transfer"
number = "110"
trunk = "carrier"
on_fail = "agent"
[nodes.agent]
kind = "transfer"
agent = "1001"
"#;

/// Parses `text` as `ivr-flows/NAME.toml`, panicking with the errors.
pub fn flow(file: &str, text: &str) -> Flow {
    match Flow::parse(Path::new(&format!("ivr-flows/{file}.toml")), text) {
        Ok(f) => f,
        Err(errors) => panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// The errors of parsing `text` as `ivr-flows/NAME.toml`, as strings.
pub fn parse_errors(file: &str, text: &str) -> Vec<String> {
    match Flow::parse(Path::new(&format!("ivr-flows/{file}.toml")), text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// A validated set of the main and survey flows.
pub fn sample_set() -> Arc<FlowSet> {
    set_of(&[("12345", MAIN), ("survey", SURVEY)])
}

/// A validated set of the given (file, text) flows.
pub fn set_of(files: &[(&str, &str)]) -> Arc<FlowSet> {
    let flows = files.iter().map(|(f, t)| flow(f, t)).collect();
    match FlowSet::new(flows, &AllCatalog) {
        Ok(set) => Arc::new(set),
        Err(errors) => panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

pub use super::validate::AllCatalog;

/// Knows only names not starting with `missing`.
pub struct PickyCatalog;

impl Catalog for PickyCatalog {
    fn has_prompt(&self, n: &str) -> bool {
        !n.starts_with("missing")
    }
    fn has_group(&self, n: &str) -> bool {
        !n.starts_with("missing")
    }
    fn has_trunk(&self, n: &str) -> bool {
        !n.starts_with("missing")
    }
    fn has_schedule(&self, n: &str) -> bool {
        !n.starts_with("missing")
    }
    fn has_agent(&self, n: &str) -> bool {
        !n.starts_with("missing")
    }
}

/// A scripted environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Every schedule is open.
    pub open: bool,
    /// The caller is blocked.
    pub blocked: bool,
    /// The caller's area.
    pub area: Option<(String, String)>,
    /// UTC offset in minutes.
    pub offset: i32,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self {
            open: true,
            blocked: false,
            area: Some(("0571".into(), "杭州市".into())),
            offset: 480,
        }
    }
}

impl Environment for TestEnv {
    fn is_open(&self, _: &str, _: crate::time::Time) -> bool {
        self.open
    }
    fn area_of(&self, _: &str) -> Option<(String, String)> {
        self.area.clone()
    }
    fn is_blocked(&self, _: &str, _: &str) -> bool {
        self.blocked
    }
    fn utc_offset_minutes(&self) -> i32 {
        self.offset
    }
}
