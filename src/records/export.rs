//! Exports of reports and call records (REQUIREMENTS.md §7 "Excel/PDF-
//! compatible export"; §6 "Confidential callers (保密) have their numbers
//! masked in exports"; §9 "defence against injection").
//!
//! - [`to_csv`]: a [`Report`] as CSV (RFC 4180: comma-separated, CRLF line
//!   ends, fields holding `,`, `"`, CR or LF quoted with `""` for a quote),
//!   UTF-8 with a byte-order mark so that Excel in China reads it as UTF-8
//!   rather than GBK. One header row of Chinese and English titles, the rows,
//!   then the total (`合计 / total`). Rates are percentages with one decimal
//!   (`92.3%`), durations seconds with one decimal (`12.5`); a figure with no
//!   denominator is an empty field.
//! - [`to_xlsx`]: the same columns as one worksheet: a title row naming the
//!   grouping, the period (local time) and the UTC offset; a bold header row,
//!   frozen with the key column; rates as numbers with a `0.0%` format,
//!   durations in seconds with `0.0`; the total row in bold. The workbook's
//!   creation time is the last call's start, so one report always gives the
//!   same bytes.
//! - [`cdrs_to_csv`]: call records one per line, each through
//!   [`Cdr::for_export`] (confidential callers masked in `caller` and in the
//!   IVR variables). Times are the records' own UTC RFC 3339 text, durations
//!   whole milliseconds as in the record.
//!
//! CSV text fields that a spreadsheet would run as a formula (starting with
//! `=`, `@`, a tab or CR, or with `+` / `-` not followed by digits only) get
//! a leading `'` (OWASP "CSV injection"); `+8613812348000` and `-` stay as
//! they are. XLSX cells are written as strings and never evaluated.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook, XlsxError};

use super::report::{local_minute, utc_offset_text, Report, ReportBy, ReportRow};
use crate::events::cdr::{Cdr, HangupParty, Outcome};
use crate::events::model::{Direction, TransferKind};
use crate::events::time::Timestamp;

/// The byte-order mark that opens every CSV.
pub const BOM: char = '\u{feff}';
/// The total row's label in exports.
pub const TOTAL_LABEL: &str = "合计 / total";
/// The worksheet's name.
pub const SHEET_NAME: &str = "话务报表 report";

/// Rows a worksheet holds (Excel's limit).
const MAX_SHEET_ROWS: usize = 1_048_576;
/// Rows above the data: title and header.
const HEAD_ROWS: usize = 2;

/// Why a report could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The XLSX writer refused (a limit of the format, a bad format string).
    #[error("writing the XLSX report: {0}")]
    Xlsx(#[from] XlsxError),
    /// More rows than one worksheet holds.
    #[error("the report has {0} rows, more than one worksheet holds ({MAX_SHEET_ROWS})")]
    TooManyRows(usize),
}

/// One cell of a report row.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// A count.
    Count(u64),
    /// A fraction 0–1, shown as a percentage.
    Rate(Option<f64>),
    /// Milliseconds, shown as seconds.
    Millis(Option<f64>),
    /// A survey score, shown with one decimal.
    Score(Option<f64>),
}

/// A figure column: title, and the cell of a row.
struct Column {
    title: &'static str,
    cell: fn(&ReportRow) -> Cell,
}

/// Every figure column, in order, after the key column.
const COLUMNS: [Column; 25] = [
    Column {
        title: "呼叫量 / calls",
        cell: |r| Cell::Count(r.calls),
    },
    Column {
        title: "请求人工 / offered",
        cell: |r| Cell::Count(r.offered),
    },
    Column {
        title: "人工接通 / answered",
        cell: |r| Cell::Count(r.answered),
    },
    Column {
        title: "IVR放弃 / abandoned in IVR",
        cell: |r| Cell::Count(r.abandoned_in_ivr),
    },
    Column {
        title: "排队放弃 / abandoned in queue",
        cell: |r| Cell::Count(r.abandoned_in_queue),
    },
    Column {
        title: "20s内放弃 / abandoned ≤20 s",
        cell: |r| Cell::Count(r.abandoned_within_20s),
    },
    Column {
        title: "30s内放弃 / abandoned ≤30 s",
        cell: |r| Cell::Count(r.abandoned_within_30s),
    },
    Column {
        title: "20s内接通 / answered ≤20 s",
        cell: |r| Cell::Count(r.answered_within_20s),
    },
    Column {
        title: "30s内接通 / answered ≤30 s",
        cell: |r| Cell::Count(r.answered_within_30s),
    },
    Column {
        title: "20s接通率 / answer rate 20 s",
        cell: |r| Cell::Rate(r.answer_rate_20s),
    },
    Column {
        title: "30s接通率 / answer rate 30 s",
        cell: |r| Cell::Rate(r.answer_rate_30s),
    },
    Column {
        title: "呼损量 / call loss",
        cell: |r| Cell::Count(r.call_loss),
    },
    Column {
        title: "呼损率 / call loss rate",
        cell: |r| Cell::Rate(r.call_loss_rate),
    },
    Column {
        title: "平均应答时长(秒) / ASA s",
        cell: |r| Cell::Millis(r.asa_ms),
    },
    Column {
        title: "平均处理时长(秒) / AHT s",
        cell: |r| Cell::Millis(r.aht_ms),
    },
    Column {
        title: "最长等待(秒) / longest wait s",
        cell: |r| Cell::Millis(r.longest_wait_ms.map(|ms| ms as f64)),
    },
    Column {
        title: "回拨请求 / callbacks requested",
        cell: |r| Cell::Count(r.callbacks_requested),
    },
    Column {
        title: "已回拨 / callbacks made",
        cell: |r| Cell::Count(r.callbacks_made),
    },
    Column {
        title: "待回拨 / callbacks pending",
        cell: |r| Cell::Count(r.callbacks_pending),
    },
    Column {
        title: "留言 / voicemails",
        cell: |r| Cell::Count(r.voicemails),
    },
    Column {
        title: "参评量 / rated",
        cell: |r| Cell::Count(r.survey_rated),
    },
    Column {
        title: "参评率 / survey coverage",
        cell: |r| Cell::Rate(r.survey_coverage),
    },
    Column {
        title: "平均评分 / mean score",
        cell: |r| Cell::Score(r.survey_score_mean),
    },
    Column {
        title: "满意量 / satisfied",
        cell: |r| Cell::Count(r.satisfied),
    },
    Column {
        title: "满意率 / satisfaction",
        cell: |r| Cell::Rate(r.satisfaction_rate),
    },
];

/// The key column's title.
pub fn key_title(by: ReportBy) -> &'static str {
    match by {
        ReportBy::Group => "技能组 / group",
        ReportBy::Agent => "坐席工号 / agent",
        ReportBy::Hour => "时段 / hour",
        ReportBy::Day => "日期 / day",
    }
}

/// The grouping as the title row names it.
fn by_title(by: ReportBy) -> &'static str {
    match by {
        ReportBy::Group => "按技能组 / by group",
        ReportBy::Agent => "按坐席 / by agent",
        ReportBy::Hour => "分时 / by hour",
        ReportBy::Day => "按日 / by day",
    }
}

/// Every column title, the key's first: the header row of both exports.
pub fn header(by: ReportBy) -> Vec<&'static str> {
    std::iter::once(key_title(by))
        .chain(COLUMNS.iter().map(|c| c.title))
        .collect()
}

/// The title row: `话务报表 按技能组 / by group · 2026-11-23 00:03 – 2026-11-23
/// 23:58 (UTC+08:00)`.
pub fn title(report: &Report) -> String {
    let offset = report.utc_offset_minutes;
    let period = match report.period {
        Some(p) => format!(
            "{} – {}",
            local_minute(p.first_started_at, offset),
            local_minute(p.last_started_at, offset)
        ),
        None => "无通话 / no calls".to_owned(),
    };
    format!(
        "话务报表 {} · {period} ({})",
        by_title(report.by),
        utc_offset_text(offset)
    )
}

/// The rows, then the total, each with the label its key column shows.
fn labelled_rows(report: &Report) -> impl Iterator<Item = (&str, &ReportRow)> {
    report
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r))
        .chain(std::iter::once((TOTAL_LABEL, &report.total)))
}

// ---- CSV ------------------------------------------------------------------

/// The report as CSV (see the module docs).
pub fn to_csv(report: &Report) -> String {
    let mut out = String::new();
    out.push(BOM);
    push_record(&mut out, header(report.by).into_iter().map(str::to_owned));
    for (label, row) in labelled_rows(report) {
        let figures = COLUMNS.iter().map(|c| csv_figure(&(c.cell)(row)));
        push_record(&mut out, std::iter::once(label.to_owned()).chain(figures));
    }
    out
}

/// A figure as CSV text.
fn csv_figure(cell: &Cell) -> String {
    match cell {
        Cell::Count(n) => n.to_string(),
        Cell::Rate(r) => r.map_or_else(String::new, |r| format!("{:.1}%", r * 100.0)),
        Cell::Millis(ms) => ms.map_or_else(String::new, |ms| format!("{:.1}", ms / 1000.0)),
        Cell::Score(s) => s.map_or_else(String::new, |s| format!("{s:.1}")),
    }
}

/// Appends one CSV record (fields guarded and quoted) and its CRLF.
fn push_record(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, &guard_formula(field));
    }
    out.push_str("\r\n");
}

/// Appends `field`, quoted when it holds a comma, quote, CR or LF.
fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// `field` with a leading `'` if a spreadsheet would take it for a formula.
fn guard_formula(field: String) -> String {
    let mut chars = field.chars();
    let risky = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !chars.all(|c| c.is_ascii_digit()),
        _ => false,
    };
    if risky {
        format!("'{field}")
    } else {
        field
    }
}

// ---- XLSX -----------------------------------------------------------------

/// The report as an XLSX workbook of one sheet (see the module docs).
pub fn to_xlsx(report: &Report) -> Result<Vec<u8>, ExportError> {
    let n_rows = report.rows.len() + 1;
    if n_rows + HEAD_ROWS > MAX_SHEET_ROWS {
        return Err(ExportError::TooManyRows(n_rows));
    }
    let title = title(report);
    let mut workbook = Workbook::new();
    let mut properties = DocProperties::new().set_title(&title);
    let created = report
        .period
        .map_or(0, |p| p.last_started_at.unix_ms().div_euclid(1000));
    if let Ok(at) = ExcelDateTime::from_timestamp(created) {
        properties = properties.set_creation_datetime(&at);
    }
    workbook.set_properties(&properties);

    let title_format = Format::new().set_bold().set_font_size(14);
    let header_format = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let formats = |bold: bool| {
        let base = if bold {
            Format::new().set_bold()
        } else {
            Format::new()
        };
        (
            base.clone(),
            base.clone().set_num_format("0"),
            base.clone().set_num_format("0.0%"),
            base.set_num_format("0.0"),
        )
    };
    let plain = formats(false);
    let bold = formats(true);

    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET_NAME)?;
    sheet.write_string_with_format(0, 0, &title, &title_format)?;
    for (col, text) in (0u16..).zip(header(report.by)) {
        sheet.write_string_with_format(1, col, text, &header_format)?;
        sheet.set_column_width(col, if col == 0 { 20 } else { 14 })?;
    }
    sheet.set_row_height(1, 45)?;
    sheet.set_freeze_panes(2, 1)?;

    for (i, (label, row)) in labelled_rows(report).enumerate() {
        let at = u32::try_from(i + HEAD_ROWS).map_err(|_| ExportError::TooManyRows(n_rows))?;
        let is_total = i == report.rows.len();
        let (text, count, rate, decimal) = if is_total { &bold } else { &plain };
        sheet.write_string_with_format(at, 0, label, text)?;
        for (col, column) in (1u16..).zip(COLUMNS.iter()) {
            match (column.cell)(row) {
                Cell::Count(n) => {
                    sheet.write_number_with_format(at, col, n as f64, count)?;
                }
                Cell::Rate(Some(r)) => {
                    sheet.write_number_with_format(at, col, r, rate)?;
                }
                Cell::Millis(Some(ms)) => {
                    sheet.write_number_with_format(at, col, ms / 1000.0, decimal)?;
                }
                Cell::Score(Some(s)) => {
                    sheet.write_number_with_format(at, col, s, decimal)?;
                }
                Cell::Rate(None) | Cell::Millis(None) | Cell::Score(None) => {
                    sheet.write_blank(at, col, text)?;
                }
            }
        }
    }
    Ok(workbook.save_to_buffer()?)
}

// ---- call records -----------------------------------------------------------

/// The columns of [`cdrs_to_csv`].
pub const CDR_HEADER: [&str; 44] = [
    "呼叫流水号 / serial",
    "呼叫ID / call id",
    "租户 / tenant",
    "方向 / direction",
    "主叫号码 / caller",
    "被叫号码 / called",
    "行政区划代码 / area code",
    "归属地 / area",
    "保密 / confidential",
    "呼叫时间 / started at",
    "请求人工时间 / agent requested at",
    "进队时间 / queued at",
    "振铃时间 / ring at",
    "接通时间 / connected at",
    "挂机时间 / ended at",
    "挂机方 / hung up by",
    "SIP状态 / sip code",
    "挂机原因 / hangup reason",
    "系统故障 / system fault",
    "技能组 / group id",
    "技能组名称 / group name",
    "工号 / agent",
    "全部坐席 / agents",
    "振铃次数 / offers",
    "通话总时长ms / duration ms",
    "等待ms / wait ms",
    "振铃ms / ring ms",
    "通话ms / talk ms",
    "保持ms / hold ms",
    "保持次数 / holds",
    "话后整理ms / acw ms",
    "转接 / transfers",
    "会议人数 / conference max",
    "满意度 / survey",
    "留言 / voicemail",
    "留言ms / voicemail ms",
    "回拨请求时间 / callback requested at",
    "录音ID / recording id",
    "录音地址 / recording path",
    "IVR流程 / ivr flow",
    "IVR路径 / ivr path",
    "IVR变量 / ivr vars",
    "结果 / outcome",
    "完整 / complete",
];

/// Call records as CSV, one per line, masked for export (see the module
/// docs).
pub fn cdrs_to_csv(cdrs: &[Cdr]) -> String {
    let mut out = String::new();
    out.push(BOM);
    push_record(&mut out, CDR_HEADER.iter().map(|h| (*h).to_owned()));
    for cdr in cdrs {
        push_record(&mut out, cdr_fields(&cdr.for_export()));
    }
    out
}

/// One record's fields, in [`CDR_HEADER`] order.
fn cdr_fields(c: &Cdr) -> Vec<String> {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
    let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let transfers = c
        .transfers
        .iter()
        .map(|t| format!("{}:{}", transfer_kind_name(t.target_kind), t.target))
        .collect::<Vec<_>>()
        .join(";");
    let survey = c
        .survey
        .iter()
        .map(|(dimension, score)| format!("{dimension}={score}"))
        .collect::<Vec<_>>()
        .join(";");
    vec![
        c.serial.clone(),
        c.call_id.clone(),
        c.tenant.clone(),
        direction_name(c.direction).to_owned(),
        c.caller.clone(),
        c.called.clone(),
        text(c.caller_area.as_ref().map(|a| a.code.as_str())),
        text(c.caller_area.as_ref().map(|a| a.region.as_str())),
        c.confidential.to_string(),
        c.started_at.to_string(),
        time(c.agent_requested_at),
        time(c.queued_at),
        time(c.ring_at),
        time(c.connected_at),
        c.ended_at.to_string(),
        hangup_name(c.hangup_by).to_owned(),
        num(c.sip_code.map(u64::from)),
        text(c.hangup_reason.as_deref()),
        c.system_fault.to_string(),
        text(c.group_id.as_deref()),
        text(c.group_name.as_deref()),
        text(c.agent_id.as_deref()),
        c.agents.join(";"),
        c.offers.to_string(),
        c.duration_ms.to_string(),
        num(c.wait_ms),
        num(c.ring_ms),
        c.talk_ms.to_string(),
        c.hold_ms.to_string(),
        c.hold_count.to_string(),
        num(c.acw_ms),
        transfers,
        c.conference_max.to_string(),
        survey,
        text(c.voicemail.as_ref().map(|v| v.path.as_str())),
        num(c.voicemail.as_ref().map(|v| v.duration_ms)),
        time(c.callback_requested_at),
        text(c.recording.as_ref().map(|r| r.id.as_str())),
        text(c.recording.as_ref().map(|r| r.path.as_str())),
        c.flow
            .as_ref()
            .map(|f| format!("{}@{}", f.name, f.version))
            .unwrap_or_default(),
        c.ivr_path.join(">"),
        c.ivr_vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";"),
        outcome_name(c.outcome).to_owned(),
        c.complete.to_string(),
    ]
}

/// `direction` as in JSON.
fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Callback => "callback",
    }
}

/// `hangup_by` as in JSON.
fn hangup_name(h: HangupParty) -> &'static str {
    match h {
        HangupParty::Caller => "caller",
        HangupParty::Agent => "agent",
        HangupParty::System => "system",
    }
}

/// A transfer's target kind as in JSON.
fn transfer_kind_name(k: TransferKind) -> &'static str {
    match k {
        TransferKind::Agent => "agent",
        TransferKind::Group => "group",
        TransferKind::Number => "number",
    }
}

/// `outcome` as in JSON.
fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Answered => "answered",
        Outcome::AbandonedInIvr => "abandoned_in_ivr",
        Outcome::AbandonedInQueue => "abandoned_in_queue",
        Outcome::AbandonedRinging => "abandoned_ringing",
        Outcome::QueueTimeout => "queue_timeout",
        Outcome::Voicemail => "voicemail",
        Outcome::Callback => "callback",
        Outcome::TransferredOut => "transferred_out",
        Outcome::IvrCompleted => "ivr_completed",
        Outcome::Blocked => "blocked",
        Outcome::Failed => "failed",
    }
}
