//! Traffic reports from call records (REQUIREMENTS.md §7 lines 87–89
//! "Reports by day/week/month: skill group, hourly traffic (分时话务), per
//! agent, missed calls (漏话), messages"; §8 lines 92–103, the KPIs the
//! buyers measure).
//!
//! [`build_report`] is a pure core: call records ([`Cdr`], the data of
//! `call.ended`) in, a [`Report`] out. No clock, no I/O; the caller picks the
//! records (a day, a week, a month) and the UTC offset of the centre.
//! [`super::export`] writes the result as CSV or XLSX.
//!
//! # Rows
//!
//! A report groups calls by one [`ReportBy`] key; rows are sorted by key
//! (byte order of the text, which is time order for hours and days), and
//! [`Report::total`] is computed the same way over **every** call given.
//!
//! - `group`: the record's `group_id`, the last skill group the call waited
//!   in (a call that overflowed counts for the group it ended in). Calls that
//!   never queued (IVR only, blocked, callbacks, outbound) are kept, in the
//!   row keyed [`NO_GROUP_KEY`] (`-`), so the rows add up to the total.
//! - `agent`: the record's `agent_id`, the **first** agent who answered; a
//!   transferred call counts wholly (handle time included) for that agent.
//!   Calls no agent answered are in no agent row (the CDR does not say which
//!   agents' phones rang, so there is no sound per-agent "offered to"
//!   figure): the agent rows do not add up to the total.
//! - `hour` / `day`: `started_at` in local time (`utc_offset_minutes`, China
//!   is [`CHINA_UTC_OFFSET_MINUTES`]), keys `2026-11-23 14:00` and
//!   `2026-11-23`. Only hours and days with calls have a row.
//!
//! # Definitions (one call record = one call)
//!
//! - `calls`: records in the row.
//! - `offered` (calls asking for an agent, §8 line 95 "calls asking for an
//!   agent"): `agent_requested_at` or `queued_at` is set.
//! - `answered`: offered calls an agent answered (`connected_at` set). An
//!   outbound or callback call connected to an agent did not ask for one: it
//!   is not an answer (it is counted in `callbacks_made`), so `answered ≤
//!   offered` and the answer rates stay within 0–100 %.
//! - `abandoned_in_ivr`: `outcome = abandoned_in_ivr` (the caller hung up in
//!   the IVR, whether or not they had asked for an agent).
//! - `abandoned_in_queue`: `outcome = abandoned_in_queue` or
//!   `abandoned_ringing` (hung up while an agent's phone rang).
//! - `abandoned_within_20s` / `_30s` ("callers who hang up within 20 s",
//!   §8 lines 95–96): offered, unanswered calls whose outcome is one of the
//!   three abandons above (the caller hung up; leaving a message or asking
//!   for a callback is not hanging up) with `wait_ms ≤ 20 000` (`30 000`).
//! - `answered_within_20s` / `_30s`: answered with `wait_ms ≤ 20 000`
//!   (`30 000`); `wait_ms` counts from asking for an agent (else from
//!   entering the queue) to the answer. "Within" includes the bound.
//! - `answer_rate_20s` / `_30s` (20S接通率, §8 lines 95–96): answered within
//!   N s / (offered − abandoned within N s).
//! - `call_loss` (呼损, §8 line 98 "calls lost after entering the switch,
//!   before distribution, through system faults"): `outcome = failed`, i.e.
//!   `system_fault` is set and no agent answered, and the caller was not
//!   served otherwise (voicemail, callback, outside transfer, block list).
//!   A fault after an answer is not call loss. `call_loss_rate`: call loss /
//!   `calls` (all calls of the row, §8 "/ all calls").
//! - `asa_ms` (average speed of answer): mean `wait_ms` of answered calls.
//! - `aht_ms` (average handle time): mean of `talk_ms + hold_ms + acw_ms` of
//!   answered calls (every agent of the call, after-call work that had not
//!   ended when the record closed counts 0).
//! - `longest_wait_ms`: largest `wait_ms` of the row's calls (answered or
//!   not); `None` when no call asked for an agent.
//! - `callbacks_requested`: `callback_requested_at` set; `callbacks_made`:
//!   calls with direction `callback` (§3 line 54 "every abandoned call is
//!   called back", §8 line 101); `callbacks_pending`: requested − made,
//!   floored at 0, within the row (a callback made in a later hour or day
//!   lowers that row, not the request's).
//! - `voicemails` (留言): a `voicemail` is recorded.
//! - `survey_rated`: answered calls with at least one survey score;
//!   `survey_coverage` (§8 line 102): rated / answered.
//! - `survey_score_mean`: mean of every score of the rated calls (all
//!   dimensions alike).
//! - `satisfied` (§5 line 69 "target satisfied ≥ 95 %"): rated calls whose
//!   mean score over their dimensions is at least [`SATISFIED_MIN_SCORE`]
//!   (4: on the shipped 5 / 3 / 1 scale, "satisfied" on average);
//!   `satisfaction_rate`:
//!   satisfied / rated. No dimension is singled out: the shipped survey has
//!   `attitude`, `efficiency` and `resolution` and no `satisfaction`.
//!
//! Rates and means are `None` when their denominator is 0. Rates are
//! fractions (0.923), exports show percentages.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::events::cdr::{Cdr, Outcome};
use crate::events::model::Direction;
use crate::events::time::Timestamp;

/// The 20 s of the 20 s answer rate (20S接通率), in ms.
pub const WITHIN_20S_MS: u64 = 20_000;
/// The 30 s of the 30 s answer rate, in ms.
pub const WITHIN_30S_MS: u64 = 30_000;
/// A rated call is satisfied when its mean score is at least this.
pub const SATISFIED_MIN_SCORE: u64 = 4;
/// The group report's key for calls that never queued.
pub const NO_GROUP_KEY: &str = "-";
/// The key of [`Report::total`].
pub const TOTAL_KEY: &str = "total";
/// China Standard Time, UTC+08:00, in minutes.
pub const CHINA_UTC_OFFSET_MINUTES: i32 = 480;

/// Milliseconds in a minute.
const MINUTE_MS: i64 = 60_000;

/// What the rows of a report are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportBy {
    /// Skill group (技能组), by `group_id`.
    Group,
    /// Agent job number (工号) of the first agent who answered.
    Agent,
    /// Local hour of the call's start (分时话务).
    Hour,
    /// Local day of the call's start.
    Day,
}

impl ReportBy {
    /// Every grouping, in documentation order.
    pub const ALL: [ReportBy; 4] = [
        ReportBy::Group,
        ReportBy::Agent,
        ReportBy::Hour,
        ReportBy::Day,
    ];

    /// The name, as in JSON and on the command line (`group` …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportBy::Group => "group",
            ReportBy::Agent => "agent",
            ReportBy::Hour => "hour",
            ReportBy::Day => "day",
        }
    }
}

impl fmt::Display for ReportBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report grouping that is not one of [`ReportBy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report grouping {0:?}: expected one of group, agent, hour, day")]
pub struct UnknownReportBy(pub String);

impl FromStr for ReportBy {
    type Err = UnknownReportBy;

    /// Reads `group`, `agent`, `hour` or `day` (case and surrounding
    /// spaces ignored).
    fn from_str(s: &str) -> Result<ReportBy, UnknownReportBy> {
        let name = s.trim();
        ReportBy::ALL
            .into_iter()
            .find(|by| by.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownReportBy(s.to_owned()))
    }
}

/// The first and last call start among the records of a report (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Earliest `started_at`.
    pub first_started_at: Timestamp,
    /// Latest `started_at`.
    pub last_started_at: Timestamp,
}

/// A report: one row per key, and the total. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What the rows are.
    pub by: ReportBy,
    /// The UTC offset hours and days were taken in, in minutes.
    pub utc_offset_minutes: i32,
    /// First and last call start; `None` without records.
    pub period: Option<Period>,
    /// The rows, sorted by key.
    pub rows: Vec<ReportRow>,
    /// Every call given (key [`TOTAL_KEY`]).
    pub total: ReportRow,
}

/// The figures of one row. Every definition is in the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Group id, agent job number, local hour or local day.
    pub key: String,
    /// Call records in the row.
    pub calls: u64,
    /// Calls asking for an agent.
    pub offered: u64,
    /// Offered calls an agent answered.
    pub answered: u64,
    /// Callers who hung up in the IVR.
    pub abandoned_in_ivr: u64,
    /// Callers who hung up in a queue or while an agent's phone rang.
    pub abandoned_in_queue: u64,
    /// Offered callers who hung up unanswered within 20 s.
    pub abandoned_within_20s: u64,
    /// Offered callers who hung up unanswered within 30 s.
    pub abandoned_within_30s: u64,
    /// Answered within 20 s of asking for an agent.
    pub answered_within_20s: u64,
    /// Answered within 30 s of asking for an agent.
    pub answered_within_30s: u64,
    /// 20S接通率: answered within 20 s / (offered − abandoned within 20 s).
    pub answer_rate_20s: Option<f64>,
    /// Answered within 30 s / (offered − abandoned within 30 s).
    pub answer_rate_30s: Option<f64>,
    /// Calls lost to a system fault before an answer (呼损).
    pub call_loss: u64,
    /// 呼损率: call loss / calls.
    pub call_loss_rate: Option<f64>,
    /// Average speed of answer, ms.
    pub asa_ms: Option<f64>,
    /// Average handle time (talk + hold + after-call work), ms.
    pub aht_ms: Option<f64>,
    /// Longest wait for an agent, ms.
    pub longest_wait_ms: Option<u64>,
    /// Callers who chose a callback.
    pub callbacks_requested: u64,
    /// Callback calls made.
    pub callbacks_made: u64,
    /// Requested − made, at least 0.
    pub callbacks_pending: u64,
    /// Messages left (留言).
    pub voicemails: u64,
    /// Answered calls with a survey score.
    pub survey_rated: u64,
    /// Rated / answered.
    pub survey_coverage: Option<f64>,
    /// Mean of every score given.
    pub survey_score_mean: Option<f64>,
    /// Rated calls with a mean score ≥ [`SATISFIED_MIN_SCORE`].
    pub satisfied: u64,
    /// Satisfied / rated.
    pub satisfaction_rate: Option<f64>,
}

/// The report of `cdrs` by `by`, hours and days taken at
/// `utc_offset_minutes` from UTC (China: [`CHINA_UTC_OFFSET_MINUTES`]).
pub fn build_report<'a>(
    cdrs: impl IntoIterator<Item = &'a Cdr>,
    by: ReportBy,
    utc_offset_minutes: i32,
) -> Report {
    let mut rows: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut period: Option<Period> = None;
    for cdr in cdrs {
        total.add(cdr);
        let at = cdr.started_at;
        period = Some(match period {
            None => Period {
                first_started_at: at,
                last_started_at: at,
            },
            Some(p) => Period {
                first_started_at: p.first_started_at.min(at),
                last_started_at: p.last_started_at.max(at),
            },
        });
        if let Some(key) = row_key(cdr, by, utc_offset_minutes) {
            rows.entry(key).or_default().add(cdr);
        }
    }
    Report {
        by,
        utc_offset_minutes,
        period,
        rows: rows
            .into_iter()
            .map(|(key, tally)| tally.finish(key))
            .collect(),
        total: total.finish(TOTAL_KEY.to_owned()),
    }
}

/// The row `cdr` belongs to (`None`: none, for an unanswered call in the
/// agent report).
fn row_key(cdr: &Cdr, by: ReportBy, utc_offset_minutes: i32) -> Option<String> {
    match by {
        ReportBy::Group => Some(
            cdr.group_id
                .clone()
                .unwrap_or_else(|| NO_GROUP_KEY.to_owned()),
        ),
        ReportBy::Agent => cdr.agent_id.clone(),
        ReportBy::Hour => Some(local_hour(cdr.started_at, utc_offset_minutes)),
        ReportBy::Day => Some(local_day(cdr.started_at, utc_offset_minutes)),
    }
}

/// `at` as local `YYYY-MM-DDTHH:MM:SS.mmm…` text at `utc_offset_minutes`
/// (clamped to the years 0000–9999).
fn local_text(at: Timestamp, utc_offset_minutes: i32) -> String {
    let shifted = at
        .unix_ms()
        .saturating_add(i64::from(utc_offset_minutes).saturating_mul(MINUTE_MS))
        .clamp(Timestamp::MIN_MS, Timestamp::MAX_MS);
    Timestamp::from_unix_ms(shifted).unwrap_or(at).to_string()
}

/// The local day of `at`: `2026-11-23`.
pub fn local_day(at: Timestamp, utc_offset_minutes: i32) -> String {
    let text = local_text(at, utc_offset_minutes);
    text.get(..10).unwrap_or(&text).to_owned()
}

/// The local hour of `at`: `2026-11-23 14:00`.
pub fn local_hour(at: Timestamp, utc_offset_minutes: i32) -> String {
    let text = local_text(at, utc_offset_minutes);
    match (text.get(..10), text.get(11..13)) {
        (Some(day), Some(hour)) => format!("{day} {hour}:00"),
        _ => text,
    }
}

/// The local minute of `at`: `2026-11-23 14:05` (for report titles).
pub fn local_minute(at: Timestamp, utc_offset_minutes: i32) -> String {
    let text = local_text(at, utc_offset_minutes);
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => text,
    }
}

/// `UTC+08:00`, `UTC-05:30`.
pub fn utc_offset_text(utc_offset_minutes: i32) -> String {
    let sign = if utc_offset_minutes < 0 { '-' } else { '+' };
    let m = utc_offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Whether the call asked for an agent.
fn asked_for_agent(cdr: &Cdr) -> bool {
    cdr.agent_requested_at.is_some() || cdr.queued_at.is_some()
}

/// Whether the caller hung up unanswered (in the IVR, a queue or ringing).
fn hung_up_unanswered(cdr: &Cdr) -> bool {
    matches!(
        cdr.outcome,
        Outcome::AbandonedInIvr | Outcome::AbandonedInQueue | Outcome::AbandonedRinging
    )
}

/// Counts and sums of one row, before the rates.
#[derive(Debug, Clone, Default)]
struct Tally {
    calls: u64,
    offered: u64,
    answered: u64,
    abandoned_in_ivr: u64,
    abandoned_in_queue: u64,
    abandoned_within_20s: u64,
    abandoned_within_30s: u64,
    answered_within_20s: u64,
    answered_within_30s: u64,
    call_loss: u64,
    wait_sum_ms: u64,
    waits: u64,
    handle_sum_ms: u64,
    longest_wait_ms: Option<u64>,
    callbacks_requested: u64,
    callbacks_made: u64,
    voicemails: u64,
    survey_rated: u64,
    score_sum: u64,
    scores: u64,
    satisfied: u64,
}

impl Tally {
    /// Counts one call.
    fn add(&mut self, c: &Cdr) {
        self.calls += 1;
        let offered = asked_for_agent(c);
        let answered = offered && c.connected_at.is_some();
        let within = |limit: u64| c.wait_ms.is_some_and(|w| w <= limit);
        if offered {
            self.offered += 1;
        }
        match c.outcome {
            Outcome::AbandonedInIvr => self.abandoned_in_ivr += 1,
            Outcome::AbandonedInQueue | Outcome::AbandonedRinging => self.abandoned_in_queue += 1,
            Outcome::Failed => self.call_loss += 1,
            _ => {}
        }
        if offered && !answered && hung_up_unanswered(c) {
            self.abandoned_within_20s += u64::from(within(WITHIN_20S_MS));
            self.abandoned_within_30s += u64::from(within(WITHIN_30S_MS));
        }
        if let Some(w) = c.wait_ms {
            self.longest_wait_ms = Some(self.longest_wait_ms.map_or(w, |l| l.max(w)));
        }
        if answered {
            self.answered += 1;
            self.answered_within_20s += u64::from(within(WITHIN_20S_MS));
            self.answered_within_30s += u64::from(within(WITHIN_30S_MS));
            if let Some(w) = c.wait_ms {
                self.wait_sum_ms = self.wait_sum_ms.saturating_add(w);
                self.waits += 1;
            }
            let handle = c
                .talk_ms
                .saturating_add(c.hold_ms)
                .saturating_add(c.acw_ms.unwrap_or(0));
            self.handle_sum_ms = self.handle_sum_ms.saturating_add(handle);
            if !c.survey.is_empty() {
                self.survey_rated += 1;
                let n = c.survey.len() as u64;
                let sum: u64 = c.survey.values().map(|s| u64::from(*s)).sum();
                self.score_sum += sum;
                self.scores += n;
                if sum >= SATISFIED_MIN_SCORE * n {
                    self.satisfied += 1;
                }
            }
        }
        if c.callback_requested_at.is_some() {
            self.callbacks_requested += 1;
        }
        if c.direction == Direction::Callback {
            self.callbacks_made += 1;
        }
        if c.voicemail.is_some() {
            self.voicemails += 1;
        }
    }

    /// The row's figures.
    fn finish(self, key: String) -> ReportRow {
        ReportRow {
            key,
            calls: self.calls,
            offered: self.offered,
            answered: self.answered,
            abandoned_in_ivr: self.abandoned_in_ivr,
            abandoned_in_queue: self.abandoned_in_queue,
            abandoned_within_20s: self.abandoned_within_20s,
            abandoned_within_30s: self.abandoned_within_30s,
            answered_within_20s: self.answered_within_20s,
            answered_within_30s: self.answered_within_30s,
            answer_rate_20s: ratio(
                self.answered_within_20s,
                self.offered.saturating_sub(self.abandoned_within_20s),
            ),
            answer_rate_30s: ratio(
                self.answered_within_30s,
                self.offered.saturating_sub(self.abandoned_within_30s),
            ),
            call_loss: self.call_loss,
            call_loss_rate: ratio(self.call_loss, self.calls),
            asa_ms: ratio(self.wait_sum_ms, self.waits),
            aht_ms: ratio(self.handle_sum_ms, self.answered),
            longest_wait_ms: self.longest_wait_ms,
            callbacks_requested: self.callbacks_requested,
            callbacks_made: self.callbacks_made,
            callbacks_pending: self.callbacks_requested.saturating_sub(self.callbacks_made),
            voicemails: self.voicemails,
            survey_rated: self.survey_rated,
            survey_coverage: ratio(self.survey_rated, self.answered),
            survey_score_mean: ratio(self.score_sum, self.scores),
            satisfied: self.satisfied,
            satisfaction_rate: ratio(self.satisfied, self.survey_rated),
        }
    }
}

/// `num / den`, `None` when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}
