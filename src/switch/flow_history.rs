//! Flow history's shell (issue 18 §4 "Flow changes you can review"):
//! every flow version the live IVR accepts is written to the store
//! ([`record_live`], at start and after each valid reload); a stored
//! version is compared with another ([`diff`]) or written back to its file
//! ([`rollback`]: validated first with the other flow files, then the
//! normal reload takes it live, so a rollback is an edit like any other);
//! and an edited file is replayed against recent recorded calls
//! ([`replay`], the pure work in [`crate::ivr::replay`]). The CLI
//! (`hotline flow history|diff|rollback|replay`) and the admin API both
//! call these.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use super::ivr::{flow_files, load_calendars, ConfigCatalog};
use crate::config::Config;
use crate::ivr::area::AreaTable;
use crate::ivr::calendar::Calendars;
use crate::ivr::replay::{RecordedCall, Report};
use crate::ivr::{Environment, Flow, FlowSet};
use crate::records::store::{CallQuery, RecordStore, MAX_LIMIT};
use crate::store::flows::{FlowVersion, Recorded};
use crate::store::{Store, StoreError};
use crate::time::Time;

/// Why a history operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No version of the flow is stored.
    #[error("no flow \"{0}\" in the flow history (a flow is recorded when the IVR accepts it)")]
    UnknownFlow(String),
    /// No stored version matches.
    #[error(
        "flow \"{name}\" has no stored version \"{version}\" (see `hotline flow history {name}`)"
    )]
    UnknownVersion {
        /// Flow.
        name: String,
        /// What was asked.
        version: String,
    },
    /// A version prefix matches several versions.
    #[error("flow \"{name}\": \"{version}\" matches several versions; give more of the hash")]
    Ambiguous {
        /// Flow.
        name: String,
        /// What was asked.
        version: String,
    },
    /// Only one version is stored: nothing to compare it with.
    #[error("flow \"{0}\" has one stored version: nothing to compare it with")]
    NothingToCompare(String),
    /// The version asked for is the one in the flow's file already.
    #[error("{path}: flow \"{name}\" is at version {version} already")]
    AlreadyLive {
        /// Flow.
        name: String,
        /// Version.
        version: String,
        /// Its file.
        path: PathBuf,
    },
    /// The flows would not validate (every problem, with file and line).
    #[error("refused, nothing changed:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No recorded call of the flow in the period.
    #[error("no recorded call entered flow \"{0}\" in that period")]
    NoCalls(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The call records could not be read.
    #[error("call records: {0}")]
    Records(String),
}

fn strings<E: ToString>(errors: Vec<E>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Write every flow of `flows` to the history as live now (`at_ms`), by
/// `by`: each file is read again and kept only if it still holds the
/// version that was validated (an edit in between is the next reload's).
pub fn record_live(store: &Store, flows: &FlowSet, by: &str, at_ms: i64) {
    for flow in flows.flows() {
        let text = match std::fs::read_to_string(&flow.path) {
            Ok(t) => t,
            Err(e) => {
                warn!(path = %flow.path.display(), error = %e, "flow history: file not read");
                continue;
            }
        };
        match Flow::parse(&flow.path, &text) {
            Ok(f) if f.version == flow.version => {}
            _ => continue,
        }
        let tenant = flow.tenant.as_deref().unwrap_or("default");
        let v = FlowVersion::accepted(&flow.name, &flow.version, tenant, &text, at_ms, by);
        match store.flow_went_live(&v) {
            Ok(Recorded::New) => {
                info!(flow = %flow.name, version = %flow.version, %by, "flow history: new version kept")
            }
            Ok(Recorded::Relive) => {
                info!(flow = %flow.name, version = %flow.version, %by, "flow history: a stored version is live again")
            }
            Ok(Recorded::Unchanged) => {}
            Err(e) => warn!(flow = %flow.name, error = %e, "flow history: not written"),
        }
    }
}

/// The flow's stored versions, first accepted first; an unknown flow is
/// an error.
pub fn versions(store: &Store, name: &str) -> Result<Vec<FlowVersion>, HistoryError> {
    let v = store.flow_versions(name)?;
    if v.is_empty() {
        return Err(HistoryError::UnknownFlow(name.to_string()));
    }
    Ok(v)
}

/// The live version (the last to go live).
pub fn live(versions: &[FlowVersion]) -> Option<&FlowVersion> {
    versions.iter().max_by_key(|v| v.live_seq)
}

/// The version `wanted` names: its hash or a unique prefix of it.
pub fn resolve<'a>(
    versions: &'a [FlowVersion],
    wanted: &str,
) -> Result<&'a FlowVersion, HistoryError> {
    let name = versions.first().map(|v| v.name.clone()).unwrap_or_default();
    if let Some(v) = versions.iter().find(|v| v.version == wanted) {
        return Ok(v);
    }
    let found: Vec<&FlowVersion> = if wanted.is_empty() {
        Vec::new()
    } else {
        versions
            .iter()
            .filter(|v| v.version.starts_with(wanted))
            .collect()
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(HistoryError::UnknownVersion {
            name,
            version: wanted.to_string(),
        }),
        _ => Err(HistoryError::Ambiguous {
            name,
            version: wanted.to_string(),
        }),
    }
}

/// The unified diff between two versions: `from` (default: the version
/// live before the live one) and `to` (default: the live one).
pub fn diff(
    versions: &[FlowVersion],
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(String, String, String), HistoryError> {
    let name = versions.first().map(|v| v.name.clone()).unwrap_or_default();
    let current = live(versions).ok_or_else(|| HistoryError::UnknownFlow(name.clone()))?;
    let to = match to {
        Some(t) => resolve(versions, t)?,
        None => current,
    };
    let from = match from {
        Some(f) => resolve(versions, f)?,
        None => versions
            .iter()
            .filter(|v| v.version != to.version && v.live_seq < to.live_seq)
            .max_by_key(|v| v.live_seq)
            .or_else(|| versions.iter().find(|v| v.version != to.version))
            .ok_or_else(|| HistoryError::NothingToCompare(name.clone()))?,
    };
    let text = crate::ivr::diff::unified(
        &format!("{name}@{}", from.version),
        &from.content,
        &format!("{name}@{}", to.version),
        &to.content,
    );
    Ok((from.version.clone(), to.version.clone(), text))
}

/// The flow files of `flows_dir`, parsed; the file holding `name` apart.
fn flows_on_disk(config: &Config, name: &str) -> Result<(Vec<Flow>, Option<Flow>), HistoryError> {
    let mut others = Vec::new();
    let mut own = None;
    let mut errors = Vec::new();
    for path in flow_files(&config.ivr.flows_dir) {
        let text = std::fs::read_to_string(&path).map_err(|source| HistoryError::Io {
            path: path.clone(),
            source,
        })?;
        match Flow::parse(&path, &text) {
            Ok(f) if f.name == name => own = Some(f),
            Ok(f) => others.push(f),
            Err(e) => errors.extend(strings(e)),
        }
    }
    if !errors.is_empty() {
        return Err(HistoryError::Invalid(errors));
    }
    Ok((others, own))
}

/// Validate `flows` as the live IVR would, against the configuration.
fn validate(config: &Config, flows: Vec<Flow>) -> Result<FlowSet, HistoryError> {
    let calendars = load_calendars(config).map_err(HistoryError::Invalid)?;
    let catalog = ConfigCatalog::new(config, &calendars);
    let set = FlowSet::new(flows, &catalog).map_err(|e| HistoryError::Invalid(strings(e)))?;
    let mut clashes = Vec::new();
    for did in &config.dids {
        if let Some(flow) = set.for_did(&did.number) {
            clashes.push(format!(
                "{}: DID \"{}\" is routed by both [[did]] in {} and this flow; remove one",
                flow.path.display(),
                did.number,
                config.source_path.display()
            ));
        }
    }
    if clashes.is_empty() {
        Ok(set)
    } else {
        Err(HistoryError::Invalid(clashes))
    }
}

/// Write the stored `version` of flow `name` back to its file (validated
/// with the other flow files first; refused if invalid), recorded as live
/// by `by` at `at_ms`. The IVR's next reload check takes it live. Returns
/// the version and the file written.
pub fn rollback(
    config: &Config,
    store: &Store,
    name: &str,
    version: &str,
    by: &str,
    at_ms: i64,
) -> Result<(FlowVersion, PathBuf), HistoryError> {
    let all = versions(store, name)?;
    let target = resolve(&all, version)?.clone();
    let (mut flows, own) = flows_on_disk(config, name)?;
    let path = own
        .as_ref()
        .map(|f| f.path.clone())
        .unwrap_or_else(|| config.ivr.flows_dir.join(format!("{name}.toml")));
    if own.as_ref().is_some_and(|f| f.version == target.version) {
        return Err(HistoryError::AlreadyLive {
            name: name.to_string(),
            version: target.version,
            path,
        });
    }
    let restored =
        Flow::parse(&path, &target.content).map_err(|e| HistoryError::Invalid(strings(e)))?;
    flows.push(restored);
    validate(config, flows)?;
    let mut v = target.clone();
    v.live_at = at_ms;
    v.live_by = by.to_string();
    store.flow_went_live(&v)?;
    // Written whole under another name, then renamed: the reload never
    // reads half a file (and ignores the temporary: not `*.toml`).
    let tmp = path.with_extension("toml.rollback");
    let io = |source| HistoryError::Io {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, &target.content).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    info!(flow = %name, version = %target.version, %by, path = %path.display(), "flow rolled back: the reload takes it live");
    Ok((target, path))
}

/// The calendars and areas of the configuration, for replays (the block
/// list's answer is the recorded walk's).
struct ReplayEnv {
    calendars: Calendars,
    areas: Option<AreaTable>,
    utc_offset_minutes: i32,
}

impl Environment for ReplayEnv {
    fn is_open(&self, schedule: &str, at: Time) -> bool {
        let secs = i64::try_from(at.unix_secs()).unwrap_or(i64::MAX);
        self.calendars.is_open(schedule, secs).unwrap_or(false)
    }
    fn area_of(&self, caller: &str) -> Option<(String, String)> {
        let a = self.areas.as_ref()?.lookup(caller)?;
        Some((a.code.to_string(), a.region.to_string()))
    }
    fn is_blocked(&self, _: &str, _: &str) -> bool {
        false
    }
    fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }
}

/// The recorded calls of flow `name` that started at or after `since_ms`,
/// newest first, read page by page (at most `cap`).
fn recorded_calls(
    records: &RecordStore,
    name: &str,
    since_ms: i64,
    cap: usize,
) -> Result<Vec<RecordedCall>, HistoryError> {
    let ts = |ms| {
        crate::events::time::Timestamp::from_unix_ms(ms)
            .map_err(|e| HistoryError::Records(e.to_string()))
    };
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = records
            .calls(&CallQuery {
                from: Some(ts(since_ms)?),
                to: before,
                limit: MAX_LIMIT,
                ..CallQuery::default()
            })
            .map_err(|e| HistoryError::Records(e.to_string()))?;
        let full = page.len() >= MAX_LIMIT;
        before = page.last().map(|c| c.started_at);
        for cdr in page {
            let Some(flow) = cdr.flow.as_ref().filter(|f| f.name == name) else {
                continue;
            };
            out.push(RecordedCall {
                call_id: cdr.call_id.clone(),
                caller: cdr.caller.clone(),
                called: cdr.called.clone(),
                tenant: cdr.tenant.clone(),
                started_at: Time::from_unix_millis(
                    u64::try_from(cdr.started_at.unix_ms()).unwrap_or_default(),
                ),
                version: flow.version.clone(),
                path: cdr.ivr_path.clone(),
                vars: cdr.ivr_vars.clone(),
                caller_hung_up: cdr.hangup_by == crate::events::cdr::HangupParty::Caller,
                hangup_reason: cdr.hangup_reason.clone(),
            });
        }
        if !full || out.len() >= cap || before.is_none() {
            return Ok(out);
        }
    }
}

/// Replay the flow in `file` (an edit, not yet live) against the calls of
/// its flow recorded since `since_ms`.
pub fn replay(
    config: &Config,
    store: &Store,
    records: &RecordStore,
    file: &Path,
    since_ms: i64,
) -> Result<Report, HistoryError> {
    let text = std::fs::read_to_string(file).map_err(|source| HistoryError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let edited = Flow::parse(file, &text).map_err(|e| HistoryError::Invalid(strings(e)))?;
    let name = edited.name.clone();
    let (others, _) = flows_on_disk(config, &name)?;
    let mut flows = others.clone();
    flows.push(edited);
    let new = Arc::new(validate(config, flows)?);
    let stored = versions(store, &name)?;
    let calls = recorded_calls(records, &name, since_ms, 200_000)?;
    if calls.is_empty() {
        return Err(HistoryError::NoCalls(name));
    }
    let mut old = BTreeMap::new();
    for v in &stored {
        let Ok(flow) = Flow::parse(file, &v.content) else {
            continue;
        };
        let mut set = others.clone();
        set.push(flow);
        if let Ok(set) = FlowSet::new(set, &crate::ivr::validate::AllCatalog) {
            old.insert(v.version.clone(), Arc::new(set));
        }
    }
    let areas = if config.ivr.areas.is_file() {
        AreaTable::load(&config.ivr.areas).ok()
    } else {
        None
    };
    let env = ReplayEnv {
        calendars: load_calendars(config).map_err(HistoryError::Invalid)?,
        areas,
        utc_offset_minutes: config.recording.utc_offset_minutes,
    };
    Ok(crate::ivr::replay::replay(&name, &old, &new, &calls, &env))
}

/// Parse `7d`, `12h`, `30m` or `90s` as milliseconds.
pub fn parse_period(text: &str) -> Option<i64> {
    let (n, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// Who a command-line rollback is recorded as: `cli:` and the login name.
pub fn cli_user() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"
name = "line"
dids = ["12399"]
entry = "q"
[nodes.q]
kind = "queue"
group = "general"
"#;

    /// The embedded configuration with its flows in `dir` and no calendars.
    fn config_in(dir: &Path) -> Config {
        let mut config = Config::embedded_default().expect("embedded configuration");
        config.ivr.flows_dir = dir.join("flows");
        config.ivr.calendars_dir = dir.join("no-calendars");
        config.data.dir = dir.join("var");
        config
    }

    #[test]
    fn a_rollback_is_checked_like_an_edit_then_written_to_the_flows_file() {
        let dir = tempfile::tempdir().expect("dir");
        let config = config_in(dir.path());
        std::fs::create_dir_all(&config.ivr.flows_dir).expect("flows dir");
        let file = config.ivr.flows_dir.join("line.toml");
        let store = Store::open(&config.data.dir).expect("store");
        let accept = |text: &str, at: i64| {
            std::fs::write(&file, text).expect("write");
            let set = FlowSet::load(
                std::slice::from_ref(&file),
                &crate::ivr::validate::AllCatalog,
            )
            .expect("valid");
            record_live(&store, &set, "file", at);
            set.get("line").expect("line").version.clone()
        };
        let good = accept(LINE, 1);
        // A version that was valid once but names a group this
        // configuration no longer has.
        let gone = accept(&LINE.replace("general", "abolished"), 2);
        let current = accept(&LINE.replace("general", "transport"), 3);

        match rollback(&config, &store, "line", &gone, "admin", 4) {
            Err(HistoryError::Invalid(problems)) => {
                assert!(
                    problems.iter().any(|p| p.contains("abolished")),
                    "{problems:?}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(std::fs::read_to_string(&file)
            .expect("file")
            .contains("transport"));
        assert!(matches!(
            rollback(&config, &store, "line", &current, "admin", 5),
            Err(HistoryError::AlreadyLive { .. })
        ));
        assert!(matches!(
            rollback(&config, &store, "nope", &current, "admin", 5),
            Err(HistoryError::UnknownFlow(_))
        ));

        let (v, path) =
            rollback(&config, &store, "line", &good[..5], "admin", 6).expect("rollback");
        assert_eq!(
            (v.version.as_str(), path.as_path()),
            (good.as_str(), file.as_path())
        );
        assert_eq!(std::fs::read_to_string(&file).expect("file"), LINE);
        let all = versions(&store, "line").expect("versions");
        let now = live(&all).expect("live");
        assert_eq!(
            (now.version.as_str(), now.live_by.as_str(), now.live_at),
            (good.as_str(), "admin", 6)
        );
        assert_eq!(all.len(), 3, "a rollback stores no second copy");
        assert!(
            !config.ivr.flows_dir.join("line.toml.rollback").exists(),
            "the temporary file is renamed over the flow's"
        );
    }

    #[test]
    fn periods_are_days_hours_minutes_or_seconds() {
        assert_eq!(parse_period("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_period("12h"), Some(12 * 3_600_000));
        assert_eq!(parse_period("30m"), Some(1_800_000));
        assert_eq!(parse_period("0d"), None);
        assert_eq!(parse_period("7"), None);
        assert_eq!(parse_period(""), None);
        assert_eq!(parse_period("d"), None);
    }

    fn v(version: &str, seq: i64) -> FlowVersion {
        let mut v = FlowVersion::accepted("main", version, "default", version, seq, "file");
        v.live_seq = seq;
        v
    }

    #[test]
    fn versions_are_named_by_hash_or_unique_prefix() {
        let all = [v("abc111", 1), v("abc222", 2), v("def333", 3)];
        assert_eq!(resolve(&all, "def").expect("prefix").version, "def333");
        assert_eq!(resolve(&all, "abc222").expect("full").version, "abc222");
        assert!(matches!(
            resolve(&all, "abc"),
            Err(HistoryError::Ambiguous { .. })
        ));
        assert!(matches!(
            resolve(&all, "zzz"),
            Err(HistoryError::UnknownVersion { .. })
        ));
        assert!(matches!(
            resolve(&all, ""),
            Err(HistoryError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn the_default_diff_is_the_previous_live_version_against_the_live_one() {
        // abc went live, then def, then abc again (a rollback).
        let all = [v("abc", 3), v("def", 2)];
        let (from, to, _) = diff(&all, None, None).expect("diff");
        assert_eq!((from.as_str(), to.as_str()), ("def", "abc"));
        let (from, to, text) = diff(&all, Some("abc"), Some("def")).expect("diff");
        assert_eq!((from.as_str(), to.as_str()), ("abc", "def"));
        assert!(text.starts_with("--- main@abc\n+++ main@def\n"), "{text}");
        assert!(matches!(
            diff(&[v("abc", 1)], None, None),
            Err(HistoryError::NothingToCompare(_))
        ));
    }
}
