//! Call records as the forecast's inputs (issue 19 §1 "from the records"):
//! a `call.ended` record ([`Cdr`]) that asked for a skill group becomes an
//! [`Observation`], and the last hours' arrivals and 20 s answer rate per
//! interval (the wall-board's chart) are counted by the report's own
//! definitions ([`crate::records::report`], REQUIREMENTS §8), so the chart
//! and `hotline report` never disagree.
//!
//! Pure: records and the present in, figures out.

use std::time::Duration;

use super::group::{Inputs, Observation, PastWeek, Seen, Settings};
use super::PRIOR_WEEKS;
use crate::events::cdr::{Cdr, Outcome};
use crate::events::model::Direction;
use crate::records::report::{build_report, ReportBy};
use crate::time::Time;

fn time_of(ms: i64) -> Time {
    Time::from_unix_millis(u64::try_from(ms).unwrap_or(0))
}

/// When the caller asked for an agent (else entered the queue), for an
/// inbound call that did; `None` for the rest.
pub fn asked_at(cdr: &Cdr) -> Option<Time> {
    if cdr.direction != Direction::Inbound {
        return None;
    }
    cdr.agent_requested_at
        .or(cdr.queued_at)
        .map(|t| time_of(t.unix_ms()))
}

/// The skill group a record counts for: the last group it waited in (as
/// the report's group rows).
pub fn group_of(cdr: &Cdr) -> Option<&str> {
    cdr.group_id.as_deref()
}

/// The record as an observation, if it asked for an agent.
pub fn observation(cdr: &Cdr) -> Option<Observation> {
    let asked_at = asked_at(cdr)?;
    let ms = Duration::from_millis;
    let seen = if cdr.connected_at.is_some() && cdr.agent_id.is_some() {
        Seen::Answered {
            ring: ms(cdr.ring_ms.unwrap_or(0)),
            handle: ms(cdr.talk_ms + cdr.hold_ms + cdr.acw_ms.unwrap_or(0)),
        }
    } else if matches!(
        cdr.outcome,
        Outcome::AbandonedInIvr | Outcome::AbandonedInQueue | Outcome::AbandonedRinging
    ) {
        Seen::HungUp
    } else {
        Seen::Other
    };
    Some(Observation {
        asked_at,
        wait: ms(cdr.wait_ms.unwrap_or(0)),
        seen,
    })
}

/// The observations of `group` among `cdrs`.
pub fn observations<'a>(cdrs: impl IntoIterator<Item = &'a Cdr>, group: &str) -> Vec<Observation> {
    cdrs.into_iter()
        .filter(|c| group_of(c) == Some(group))
        .filter_map(observation)
        .collect()
}

/// One interval of the chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Its start.
    pub from: Time,
    /// Calls that asked for the group in it.
    pub arrivals: u64,
    /// Their 20 s answer rate (§8), `None` when no call counts.
    pub answer_rate_20s: Option<f64>,
}

/// `bins` intervals of `bin` ending at `end` (oldest first): the calls of
/// `group` that asked in each (stored records and calls in progress,
/// `live`), and the 20 s answer rate of the stored ones by the report (a
/// call in progress has no verdict yet).
pub fn history(
    finished: &[Cdr],
    live: &[Cdr],
    group: &str,
    end: Time,
    bin: Duration,
    bins: usize,
) -> Vec<Interval> {
    let start = end
        .checked_sub(bin * bins as u32)
        .unwrap_or(Time::UNIX_EPOCH);
    let within = |c: &&Cdr, from: Time, to: Time| {
        group_of(c) == Some(group) && asked_at(c).is_some_and(|t| t >= from && t < to)
    };
    (0..bins)
        .map(|k| {
            let from = start + bin * k as u32;
            let to = from + bin;
            let done: Vec<&Cdr> = finished.iter().filter(|c| within(c, from, to)).collect();
            let going = live.iter().filter(|c| within(c, from, to)).count();
            Interval {
                from,
                arrivals: (done.len() + going) as u64,
                answer_rate_20s: answer_rate_20s(done),
            }
        })
        .collect()
}

/// The §8 20 s answer rate of some records, as `hotline report` has it.
pub fn answer_rate_20s<'a>(cdrs: impl IntoIterator<Item = &'a Cdr>) -> Option<f64> {
    build_report(cdrs, ReportBy::Group, 0).total.answer_rate_20s
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;

/// A call still in progress (the live record's snapshot) as an
/// observation at `now`: it asked, so it counts as an arrival, and its
/// wait so far counts for the patience (a caller still waiting, or who
/// waited that long before the answer, had not hung up); its handle time
/// is not known yet.
pub fn live_observation(cdr: &Cdr, now: Time) -> Option<Observation> {
    let asked = asked_at(cdr)?;
    let waited_until = cdr
        .connected_at
        .map(|t| time_of(t.unix_ms()))
        .unwrap_or(now);
    Some(Observation {
        asked_at: asked,
        wait: waited_until.saturating_duration_since(asked),
        seen: Seen::Other,
    })
}

/// The forecast's inputs for `group` at `now` from the stored records
/// (`finished`: today's and the past weeks', anything else is ignored)
/// and the calls in progress (`live`). A past week with no call of the
/// group around the same time is left out (a centre's first weeks have
/// no prior).
pub fn inputs(
    settings: &Settings,
    now: Time,
    group: &str,
    finished: &[Cdr],
    live: &[Cdr],
    ready: u32,
    signed_in: u32,
) -> Inputs {
    let lookback = (settings.bin * settings.bins as u32).max(settings.window);
    let since = now.checked_sub(lookback).unwrap_or(Time::UNIX_EPOCH);
    let mut recent: Vec<Observation> = observations(finished, group)
        .into_iter()
        .filter(|o| o.asked_at >= since && o.asked_at < now)
        .collect();
    recent.extend(
        live.iter()
            .filter(|c| group_of(c) == Some(group))
            .filter_map(|c| live_observation(c, now))
            .filter(|o| o.asked_at >= since && o.asked_at < now),
    );
    let all = observations(finished, group);
    let past_weeks = (1..=PRIOR_WEEKS)
        .filter_map(|w| {
            let shift = Duration::from_secs(7 * 86_400 * u64::from(w));
            let then = now.checked_sub(shift)?;
            let from = then.checked_sub(settings.bin * settings.bins as u32)?;
            let to = then + settings.horizon;
            let calls: Vec<Observation> = all
                .iter()
                .filter(|o| o.asked_at >= from && o.asked_at < to)
                .copied()
                .collect();
            (!calls.is_empty()).then_some(PastWeek { shift, calls })
        })
        .collect();
    Inputs {
        now,
        recent,
        past_weeks,
        ready,
        signed_in,
    }
}
