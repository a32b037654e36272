//! `hotline flow history|diff|rollback|replay` (issue 18 §4 "Flow changes
//! you can review"): the flow history of the store the configuration
//! names (`[data] dir`/hotline.db, or `[store] url`), printed for people;
//! the work is [`super::flow_history`]'s.

use std::io::Write;
use std::path::Path;

use super::flow_history::{self, HistoryError};
use crate::config::Config;
use crate::records::store::RecordStore;
use crate::store::Store;

/// A flow command's failure, as printed.
#[derive(Debug, thiserror::Error)]
pub enum FlowCliError {
    /// What the history said.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Anything else, as text.
    #[error("{0}")]
    Other(String),
}

fn other<E: ToString>(e: E) -> FlowCliError {
    FlowCliError::Other(e.to_string())
}

/// The store the configuration names; an embedded one must exist already.
pub fn open_store(config: &Config) -> Result<Store, FlowCliError> {
    if config.store.url.is_none() && !config.data.dir.join("hotline.db").exists() {
        return Err(FlowCliError::Other(format!(
            "{}: no hotline.db yet (hotline has not run with this configuration)",
            config.data.dir.join("hotline.db").display()
        )));
    }
    Store::configured(
        config.store.url.as_deref(),
        &config.node_id(),
        &config.data.dir,
    )
    .map_err(other)
}

fn open_records(config: &Config) -> Result<RecordStore, FlowCliError> {
    if let Some(url) = &config.store.url {
        return RecordStore::connect(url).map_err(other);
    }
    let path = config.events_db_path();
    if !path.exists() {
        return Err(FlowCliError::Other(format!(
            "{}: no events database yet (hotline has not run with this configuration)",
            path.display()
        )));
    }
    RecordStore::open(&path).map_err(other)
}

fn when(ms: i64) -> String {
    crate::events::time::format_rfc3339(ms).unwrap_or_else(|_| ms.to_string())
}

/// `hotline flow history NAME`: every stored version, the live one marked.
pub fn history(config: &Config, name: &str, out: &mut dyn Write) -> Result<(), FlowCliError> {
    let versions = flow_history::versions(&open_store(config)?, name)?;
    let live = flow_history::live(&versions).map(|v| v.version.clone());
    writeln!(
        out,
        "flow \"{name}\": {} version(s), live {}",
        versions.len(),
        live.as_deref().unwrap_or("-")
    )
    .map_err(other)?;
    writeln!(
        out,
        "{:>3}  {:<12}  {:<24}  {:<16}  {:<24}  by",
        "#", "version", "first accepted", "by", "last went live"
    )
    .map_err(other)?;
    for (i, v) in versions.iter().enumerate() {
        let mark = if live.as_deref() == Some(v.version.as_str()) {
            "  (live)"
        } else {
            ""
        };
        let line = format!(
            "{:>3}  {:<12}  {:<24}  {:<16}  {:<24}  {:<16}",
            i + 1,
            v.version,
            when(v.saved_at),
            v.saved_by,
            when(v.live_at),
            v.live_by
        );
        writeln!(out, "{}{mark}", line.trim_end()).map_err(other)?;
    }
    Ok(())
}

/// `hotline flow diff NAME [FROM] [TO]`.
pub fn diff(
    config: &Config,
    name: &str,
    from: Option<&str>,
    to: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), FlowCliError> {
    let versions = flow_history::versions(&open_store(config)?, name)?;
    let (from, to, text) = flow_history::diff(&versions, from, to)?;
    if text.is_empty() {
        writeln!(out, "flow \"{name}\": {from} and {to} are the same").map_err(other)?;
    } else {
        write!(out, "{text}").map_err(other)?;
    }
    Ok(())
}

/// `hotline flow rollback NAME VERSION`: the stored version written back
/// to the flow's file (validated first), recorded as rolled back by the
/// user running the command.
pub fn rollback(
    config: &Config,
    name: &str,
    version: &str,
    out: &mut dyn Write,
) -> Result<(), FlowCliError> {
    let store = open_store(config)?;
    let (v, path) = flow_history::rollback(
        config,
        &store,
        name,
        version,
        &flow_history::cli_user(),
        crate::util::unix_now_ms(),
    )?;
    writeln!(
        out,
        "{}: flow \"{name}\" rolled back to version {}; a running hotline takes it live at its next reload check",
        path.display(),
        v.version
    )
    .map_err(other)
}

/// `hotline flow replay FILE --since PERIOD [--json]`.
pub fn replay(
    config: &Config,
    file: &Path,
    since: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), FlowCliError> {
    let period = flow_history::parse_period(since).ok_or_else(|| {
        FlowCliError::Other(format!(
            "--since {since:?}: give a period such as 7d, 12h or 30m"
        ))
    })?;
    let store = open_store(config)?;
    let records = open_records(config)?;
    let since_ms = crate::util::unix_now_ms().saturating_sub(period);
    let report = flow_history::replay(config, &store, &records, file, since_ms)?;
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(other)?;
        writeln!(out, "{text}").map_err(other)
    } else {
        write!(out, "{}", report.to_text()).map_err(other)
    }
}
