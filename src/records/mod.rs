//! Call records for people: traffic reports and their exports
//! (REQUIREMENTS.md §7 "Monitoring and reports", §8 KPIs).
//!
//! - [`report`]: call records → a report by group, agent, hour or day, with
//!   the KPIs of §8 (pure: no clock, no I/O);
//! - [`export`]: a report as CSV or XLSX, call records as CSV (masked);
//! - [`store`]: the stored records (the `call.ended` events in the outbox
//!   database: `events.db`, or the PostgreSQL store's outbox tables) by
//!   tenant, time, caller, DID, agent, group and outcome; `query` their
//!   SQL in each backend's dialect.

pub mod cli;
pub mod export;
mod query;
pub mod report;
pub mod retention;
pub mod store;

#[cfg(test)]
mod report_tests;

pub use export::{cdrs_to_csv, to_csv, to_xlsx, ExportError};
pub use report::{build_report, Report, ReportBy, ReportRow};
