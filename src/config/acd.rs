//! The ACD part of `hotline.toml` (REQUIREMENTS §3, issue "ACD"): `[acd]`
//! settings and `[[group]]` skill groups (the per-agent fields — job
//! number, skills — live in `[[agent]]`). Validated with the rest of the file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[acd]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcdSettings {
    /// Reason codes an agent may give for not-ready (示忙).
    pub not_ready_reasons: Vec<String>,
    /// Codes dialled from the phone to control the agent's state.
    pub feature_codes: FeatureCodes,
    /// 首问负责制: offer a repeat caller to the agent who served them last.
    pub previous_service: Option<PreviousService>,
    /// Callback policy (keep-your-place callbacks and missed calls).
    pub callback: CallbackSettings,
    /// The centre's time zone, minutes east of UTC: the wall-board's
    /// figures and the calls counted by fewest-calls routing are "today"
    /// and start from zero at local midnight. Unset: `[recording]
    /// utc_offset_minutes` (default 480, China Standard Time).
    pub utc_offset_minutes: Option<i32>,
}

impl Default for AcdSettings {
    fn default() -> Self {
        Self {
            not_ready_reasons: ["break", "training", "ticket", "meeting"]
                .map(String::from)
                .to_vec(),
            feature_codes: FeatureCodes::default(),
            previous_service: None,
            callback: CallbackSettings::default(),
            utc_offset_minutes: None,
        }
    }
}

/// `[acd.feature_codes]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureCodes {
    /// Sign in (and become ready).
    pub login: String,
    /// Sign out.
    pub logout: String,
    /// Ready (示闲).
    pub ready: String,
    /// Not ready (示忙), reason `break`; `<code><n>` picks reason n (1-based).
    pub not_ready: String,
    /// Supervisor: listen to an agent's call, `<code><agent user>` (监听).
    pub listen: String,
    /// Supervisor: speak to the agent only, `<code><agent user>` (耳语/密语).
    pub whisper: String,
    /// Supervisor: join the call, `<code><agent user>` (强插).
    pub barge: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        Self {
            login: "*11".into(),
            logout: "*12".into(),
            ready: "*13".into(),
            not_ready: "*14".into(),
            listen: "*31".into(),
            whisper: "*32".into(),
            barge: "*33".into(),
        }
    }
}

/// `[acd.previous_service]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousService {
    /// A caller who called within this many days is a repeat caller.
    pub within_days: u32,
    /// How long the call waits for that agent before normal routing.
    pub wait_secs: u64,
}

/// `[acd.callback]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackSettings {
    /// Attempts to reach a citizen who asked for a callback.
    pub max_attempts: u32,
    /// Seconds between attempts.
    pub retry_secs: u64,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_secs: 300,
        }
    }
}

/// Routing strategy of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyName {
    /// The agent idle the longest.
    LongestIdle,
    /// The agent with the fewest calls today.
    FewestCalls,
    /// Highest skill level first (longest idle among equals).
    SkillWeighted,
    /// In turn.
    RoundRobin,
    /// Every idle agent at once; first answer wins.
    RingAll,
}

/// Where a call goes when it waited too long or the queue is full.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Leave a message.
    Voicemail,
    /// Offer a callback (keeps the place).
    Callback,
    /// Hang up (after an announcement).
    Hangup,
    /// Another group (keeping the original arrival time).
    Group(String),
}

/// `[[group]]`: a skill group (技能组).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Stable id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Owning tenant.
    #[serde(default = "super::default_tenant")]
    pub tenant: String,
    /// Routing strategy.
    #[serde(default = "default_strategy")]
    pub strategy: StrategyName,
    /// How long one agent rings before the call goes back to the queue head.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    /// After-call work time.
    #[serde(default = "default_acw")]
    pub acw_secs: u64,
    /// Longest queue; the next caller goes to `on_full`.
    #[serde(default = "default_max_queue")]
    pub max_queue: usize,
    /// Longest wait; then `on_timeout`.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    /// Next step when the wait is too long.
    #[serde(default = "default_next_step")]
    pub on_timeout: NextStep,
    /// Next step when the queue is full.
    #[serde(default = "default_next_step")]
    pub on_full: NextStep,
    /// Overflow to `overflow_to` after this many seconds of waiting.
    pub overflow_after_secs: Option<u64>,
    /// Overflow target group.
    pub overflow_to: Option<String>,
    /// Announce position and expected wait this often (an announcement
    /// still playing is not cut: that tick is skipped).
    pub announce_every_secs: Option<u64>,
    /// `[[wait_secs, priority]]`: after waiting, priority rises to at least
    /// this; within the ordinary band (0–199): a boost never makes a caller
    /// an emergency (see `acd::EMERGENCY_PRIORITY_MIN`).
    #[serde(default)]
    pub priority_boost: Vec<(u64, u8)>,
    /// Answer queued callers and play the welcome, music on hold and
    /// position announcements (prompts from `media.sounds_dir`); otherwise
    /// they hear ringing until an agent answers.
    #[serde(default)]
    pub queue_media: bool,
    /// Key a queued caller presses to be called back instead of waiting
    /// (keeps their place); needs `queue_media`.
    pub callback_key: Option<String>,
}

/// Prompts a group with `queue_media` plays, from `media.sounds_dir`.
pub const QUEUE_PROMPTS: &[&str] = &[
    "queue_welcome",
    "moh",
    // The position announcement (media::announcement::PROMPTS).
    "queue_next",
    "queue_ahead",
    "queue_ahead_unit",
    "queue_wait",
    "queue_minutes",
    "queue_wait_short",
    "num_0",
    "num_1",
    "num_2",
    "num_3",
    "num_4",
    "num_5",
    "num_6",
    "num_7",
    "num_8",
    "num_9",
    "num_liang",
    "num_10",
    "num_100",
    "num_1000",
    "num_10000",
    "queue_callback_offer",
    "queue_callback_confirmed",
    "queue_sorry",
];

fn default_strategy() -> StrategyName {
    StrategyName::LongestIdle
}
fn default_ring_timeout() -> u64 {
    15
}
fn default_acw() -> u64 {
    30
}
fn default_max_queue() -> usize {
    100
}
fn default_max_wait() -> u64 {
    600
}
fn default_next_step() -> NextStep {
    NextStep::Voicemail
}

/// Check the ACD parts; `(dotted key, message)` per problem.
pub(super) fn validate(
    acd: &AcdSettings,
    groups: &[GroupConfig],
    skills: &[&BTreeMap<String, u8>],
    tenant_known: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, String)>,
) {
    let mut ids = std::collections::HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        if !ids.insert(g.id.as_str()) {
            out.push((
                format!("group[{i}].id"),
                format!("group {:?} is defined twice", g.id),
            ));
        }
        if !tenant_known(&g.tenant) {
            out.push((
                format!("group[{i}].tenant"),
                format!("no tenant {:?}", g.tenant),
            ));
        }
        for (j, (_, p)) in g.priority_boost.iter().enumerate() {
            if *p > crate::acd::ORDINARY_PRIORITY_MAX {
                out.push((
                    format!("group[{i}].priority_boost[{j}]"),
                    format!(
                        "priority {p} is in the emergency lane ({}-255): a boost stays within 0-{}",
                        crate::acd::EMERGENCY_PRIORITY_MIN,
                        crate::acd::ORDINARY_PRIORITY_MAX
                    ),
                ));
            }
        }
        if g.ring_timeout_secs == 0 {
            out.push((
                format!("group[{i}].ring_timeout_secs"),
                "must be at least 1".into(),
            ));
        }
    }
    let known = |id: &str| groups.iter().any(|g| g.id == id);
    for (i, g) in groups.iter().enumerate() {
        for (key, step) in [("on_timeout", &g.on_timeout), ("on_full", &g.on_full)] {
            if let NextStep::Group(target) = step {
                if !known(target) {
                    out.push((format!("group[{i}].{key}"), format!("no group {target:?}")));
                }
            }
        }
        match (&g.overflow_after_secs, &g.overflow_to) {
            (Some(_), None) => out.push((
                format!("group[{i}].overflow_after_secs"),
                "overflow_after_secs needs overflow_to".into(),
            )),
            (_, Some(t)) if !known(t) => {
                out.push((format!("group[{i}].overflow_to"), format!("no group {t:?}")))
            }
            (_, Some(t)) if t == &g.id => out.push((
                format!("group[{i}].overflow_to"),
                "a group cannot overflow to itself".into(),
            )),
            _ => {}
        }
    }
    for (i, agent_skills) in skills.iter().enumerate() {
        for (group, level) in agent_skills.iter() {
            if !known(group) {
                out.push((
                    format!("agent[{i}].skills.{group}"),
                    format!("no group {group:?}"),
                ));
            }
            if !(1..=10).contains(level) {
                out.push((
                    format!("agent[{i}].skills.{group}"),
                    format!("skill level {level} is outside 1..=10"),
                ));
            }
        }
    }
    if let Some(off) = acd.utc_offset_minutes {
        if !crate::acd::day::UTC_OFFSETS.contains(&off) {
            out.push((
                "acd.utc_offset_minutes".into(),
                format!("{off} is outside -720..=840 (UTC-12:00 to UTC+14:00)"),
            ));
        }
    }
    if acd.not_ready_reasons.is_empty() {
        out.push((
            "acd.not_ready_reasons".into(),
            "at least one reason is needed".into(),
        ));
    }
    let f = &acd.feature_codes;
    let codes = [&f.login, &f.logout, &f.ready, &f.not_ready];
    for (i, c) in codes.iter().enumerate() {
        if c.is_empty() || codes.iter().skip(i + 1).any(|o| o == c) {
            out.push((
                "acd.feature_codes".into(),
                format!("feature code {c:?} is empty or used twice"),
            ));
        }
    }
}
