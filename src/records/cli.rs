//! `hotline records` and `hotline report` (issue 7 §4, §6): the operators'
//! command line over the stored records, reading the events database of a
//! configuration (running or not: the store only reads): `events.db`, or
//! the PostgreSQL store's outbox tables when `[store] url` is set.
//!
//! ```text
//! hotline records --from 2026-11-23 --missed --format table
//! hotline records --caller 13800138000 --format csv > calls.csv
//! hotline report --from 2026-11-01 --to 2026-12-01 --by group --format xlsx --out nov.xlsx
//! ```
//!
//! Dates are local (`YYYY-MM-DD`, at the configuration's UTC offset) or
//! RFC 3339. CSV exports mask confidential callers.

use std::io::Write;
use std::path::PathBuf;

use super::report::{build_report, ReportBy};
use super::store::{parse_outcome, parse_time, CallQuery, RecordStore};
use crate::config::Config;
use crate::events::cdr::Cdr;

/// Filters shared by both commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filters {
    /// Calls that started at or after (YYYY-MM-DD local, or RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Calls that started before (YYYY-MM-DD local, or RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this tenant (operations centre).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Calling number.
    #[arg(long)]
    pub caller: Option<String>,
    /// Called number (DID).
    #[arg(long)]
    pub called: Option<String>,
    /// An agent (job number) who talked to the caller.
    #[arg(long)]
    pub agent: Option<String>,
    /// A skill group the call waited in.
    #[arg(long)]
    pub group: Option<String>,
    /// Outcome (answered, abandoned_in_queue, voicemail …).
    #[arg(long)]
    pub outcome: Option<String>,
}

/// `hotline records`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordsArgs {
    /// Configuration file (default: the embedded one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub filters: Filters,
    /// Only calls that asked for an agent and were never connected (the
    /// callback list).
    #[arg(long)]
    pub missed: bool,
    /// Only calls with a voicemail.
    #[arg(long)]
    pub voicemail: bool,
    /// Only recorded calls.
    #[arg(long)]
    pub recorded: bool,
    /// At most this many calls, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// json (one record per line), csv (masked) or table.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `hotline report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Configuration file (default: the embedded one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub filters: Filters,
    /// Rows by group, agent, hour or day.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// csv, xlsx or json.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A command-line failure: the message for standard error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

fn err(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn query(config: &Config, f: &Filters) -> Result<CallQuery, CliError> {
    let offset = config.recording.utc_offset_minutes;
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| parse_time(t, offset))
            .transpose()
            .map_err(err)
    };
    Ok(CallQuery {
        tenant: f.tenant.clone(),
        from: time(&f.from)?,
        to: time(&f.to)?,
        caller: f.caller.clone(),
        called: f.called.clone(),
        agent: f.agent.clone(),
        group: f.group.clone(),
        outcome: f
            .outcome
            .as_deref()
            .map(parse_outcome)
            .transpose()
            .map_err(err)?,
        ..CallQuery::default()
    })
}

fn open(config: &Config) -> Result<RecordStore, CliError> {
    if let Some(url) = &config.store.url {
        return RecordStore::connect(url).map_err(err);
    }
    let path = config.events_db_path();
    if !path.exists() {
        return Err(CliError(format!(
            "{}: no events database yet (hotline has not run with this configuration)",
            path.display()
        )));
    }
    RecordStore::open(&path).map_err(err)
}

/// Run `hotline records`, writing to `out`.
pub fn records(config: &Config, args: &RecordsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut q = query(config, &args.filters)?;
    q.missed = args.missed;
    q.voicemail = args.voicemail;
    q.recorded = args.recorded;
    q.limit = args.limit.max(1);
    let cdrs = open(config)?.calls(&q).map_err(err)?;
    match args.format.as_str() {
        "json" => {
            for c in &cdrs {
                let line = serde_json::to_string(c).map_err(err)?;
                writeln!(out, "{line}").map_err(err)?;
            }
        }
        "csv" => {
            let text = super::export::cdrs_to_csv(&cdrs);
            out.write_all(text.as_bytes()).map_err(err)?;
        }
        "table" => table(&cdrs, config.recording.utc_offset_minutes, out)?,
        other => {
            return Err(CliError(format!(
                "unknown format {other:?}: expected json, csv or table"
            )))
        }
    }
    Ok(())
}

fn table(cdrs: &[Cdr], offset: i32, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(
        out,
        "{:<17} {:<24} {:<14} {:<8} {:<10} {:<8} {:>6} {:>6}  outcome",
        "started (local)", "serial", "caller", "called", "group", "agent", "wait", "talk"
    )
    .map_err(err)?;
    for c in cdrs {
        let c = c.for_export();
        let local = super::report::local_minute(c.started_at, offset);
        let secs =
            |ms: Option<u64>| ms.map_or("-".to_string(), |m| format!("{:.0}s", m as f64 / 1000.0));
        let outcome = serde_json::to_value(c.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<17} {:<24} {:<14} {:<8} {:<10} {:<8} {:>6} {:>6}  {}{}",
            local,
            c.serial,
            c.caller,
            c.called,
            c.group_id.as_deref().unwrap_or("-"),
            c.agent_id.as_deref().unwrap_or("-"),
            secs(c.wait_ms),
            secs(Some(c.talk_ms)),
            outcome,
            if c.complete { "" } else { " (incomplete)" }
        )
        .map_err(err)?;
    }
    writeln!(out, "{} call(s)", cdrs.len()).map_err(err)?;
    Ok(())
}

/// Run `hotline report`, writing to `out` (or `--out`).
pub fn report(config: &Config, args: &ReportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let by: ReportBy = args.by.parse().map_err(err)?;
    let mut q = query(config, &args.filters)?;
    q.limit = super::store::MAX_LIMIT;
    let store = open(config)?;
    let cdrs = all_calls(&store, q)?;
    let report = build_report(cdrs.iter(), by, config.recording.utc_offset_minutes);
    let bytes = match args.format.as_str() {
        "csv" => super::export::to_csv(&report).into_bytes(),
        "json" => serde_json::to_vec_pretty(&report).map_err(err)?,
        "xlsx" => {
            if args.out.is_none() {
                return Err(CliError("xlsx needs --out FILE".into()));
            }
            super::export::to_xlsx(&report).map_err(err)?
        }
        other => {
            return Err(CliError(format!(
                "unknown format {other:?}: expected csv, xlsx or json"
            )))
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, &bytes)
            .map_err(|e| CliError(format!("{}: {e}", path.display())))?,
        None => out.write_all(&bytes).map_err(err)?,
    }
    Ok(())
}

/// Every call matching `q`, paging past the store's page limit by time.
pub fn all_calls(store: &RecordStore, mut q: CallQuery) -> Result<Vec<Cdr>, CliError> {
    let mut all = Vec::new();
    loop {
        let page = store.calls(&q).map_err(err)?;
        let full = page.len() >= q.limit;
        let Some(oldest) = page.last().map(|c| c.started_at) else {
            break;
        };
        // Calls starting in the same millisecond as the page's oldest are
        // re-read by the next page: keep those not already taken.
        let seen: std::collections::HashSet<String> = all
            .iter()
            .filter(|c: &&Cdr| c.started_at == oldest)
            .map(|c| c.call_id.clone())
            .collect();
        all.extend(page.into_iter().filter(|c| !seen.contains(&c.call_id)));
        if !full {
            break;
        }
        let next_to =
            crate::events::time::Timestamp::from_unix_ms(oldest.unix_ms() + 1).map_err(err)?;
        if q.to == Some(next_to) {
            break; // more than a page in one millisecond: stop rather than loop
        }
        q.to = Some(next_to);
    }
    Ok(all)
}
