//! `GET /api/v1/forecast` (issue 19 §2; REQUIREMENTS §7 wall-board, §8
//! answer-rate targets): per skill group of the caller's centre, the ready
//! agents the next half hour needs for ≥ 90 % within 20 s and ≥ 95 % within
//! 30 s (Erlang C and Erlang A), the agents ready and signed in now, the
//! 20 s rate they can expect, and the last hours' arrivals and 20 s rate
//! per half hour (the wall-board's chart). `/metrics` shows the same
//! figures as gauges ([`Sources`] is shared with it).
//!
//! The shell of the pure [`crate::forecast`] core: it reads the stored
//! records (the last hours and the same time of the past
//! [`PRIOR_WEEKS`](crate::forecast::PRIOR_WEEKS) weeks) on a blocking
//! thread, the calls in progress and the ACD's agents, and the clock once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::acd::{AgentState, Stats};
use crate::auth::Role;
use crate::events::cdr::Cdr;
use crate::events::time::Timestamp;
use crate::forecast::records::{history, inputs, Interval};
use crate::forecast::{forecast, Forecast, Settings, PRIOR_WEEKS};
use crate::records::store::{CallQuery, RecordStore, MAX_LIMIT};
use crate::time::Time;

/// The chart: this many intervals of [`CHART_BIN`] before now.
pub const CHART_BINS: usize = 8;
/// One bar of the chart.
pub const CHART_BIN: Duration = Duration::from_secs(30 * 60);

/// Where the forecast's inputs come from.
#[derive(Clone)]
pub struct Sources {
    /// The stored call records.
    pub records: Arc<RecordStore>,
    /// The records not yet stored (calls in progress, or waiting for
    /// after-call work): their callers count as arrivals.
    pub live: Option<Arc<crate::call::record::CallRecords>>,
    /// The ACD (agents by state).
    pub queues: Option<crate::call::queue::Queues>,
}

/// One group's forecast and chart.
pub struct GroupForecast {
    pub group: String,
    pub forecast: Forecast,
    pub history: Vec<Interval>,
}

/// Why no forecast could be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error("the ACD is not running")]
    NoAcd,
    #[error("the call records could not be read: {0}")]
    Records(String),
}

/// Members of a group ready for calls and signed in, by the ACD.
fn agents(stats: &Stats, group: &str) -> (u32, u32) {
    let Some(g) = stats.groups.iter().find(|g| g.group == group) else {
        return (0, 0);
    };
    let (mut ready, mut signed_in) = (0usize, 0usize);
    for (state, n) in &g.agents_by_state {
        if *state != AgentState::LoggedOut {
            signed_in += n;
        }
        if matches!(
            state,
            AgentState::Idle
                | AgentState::Ringing
                | AgentState::Talking
                | AgentState::OnHold
                | AgentState::AfterCallWork
        ) {
            ready += n;
        }
    }
    let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (cap(ready), cap(signed_in))
}

fn timestamp(t: Time) -> Option<Timestamp> {
    Timestamp::from_unix_ms(i64::try_from(t.unix_millis()).ok()?).ok()
}

/// The records of the last hours and of the same time in past weeks.
fn stored(records: &RecordStore, now: Time, settings: &Settings) -> Result<Vec<Cdr>, String> {
    let lookback = (CHART_BIN * CHART_BINS as u32)
        .max(settings.bin * settings.bins as u32)
        .max(settings.window);
    let mut windows = vec![(now.checked_sub(lookback), now + Duration::from_secs(1))];
    for w in 1..=PRIOR_WEEKS {
        let shift = Duration::from_secs(7 * 86_400 * u64::from(w));
        if let Some(then) = now.checked_sub(shift) {
            windows.push((
                then.checked_sub(settings.bin * settings.bins as u32),
                then + settings.horizon,
            ));
        }
    }
    let mut out = Vec::new();
    for (from, to) in windows {
        let query = CallQuery {
            from: from.and_then(timestamp),
            to: timestamp(to),
            limit: MAX_LIMIT,
            ..CallQuery::default()
        };
        out.extend(records.calls(&query).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Every group's forecast at `now` for the groups `visible` accepts.
pub async fn compute(
    sources: &Sources,
    now: Time,
    visible: impl Fn(&str) -> bool,
) -> Result<Vec<GroupForecast>, ForecastError> {
    let queues = sources.queues.as_ref().ok_or(ForecastError::NoAcd)?;
    let stats = queues.snapshot().await.ok_or(ForecastError::NoAcd)?;
    let groups: Vec<String> = stats
        .groups
        .iter()
        .map(|g| g.group.clone())
        .filter(|g| visible(g))
        .collect();
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let settings = Settings::default();
    let records = sources.records.clone();
    let finished = tokio::task::spawn_blocking(move || stored(&records, now, &settings))
        .await
        .map_err(|e| ForecastError::Records(e.to_string()))?
        .map_err(ForecastError::Records)?;
    let live: Vec<Cdr> = sources
        .live
        .as_ref()
        .map(|l| l.unfinished())
        .unwrap_or_default();
    Ok(groups
        .into_iter()
        .map(|group| {
            let (ready, signed_in) = agents(&stats, &group);
            let i = inputs(&settings, now, &group, &finished, &live, ready, signed_in);
            GroupForecast {
                forecast: forecast(&settings, &i),
                history: history(&finished, &live, &group, now, CHART_BIN, CHART_BINS),
                group,
            }
        })
        .collect())
}

fn rate(x: f64) -> Value {
    json!((x * 10_000.0).round() / 10_000.0)
}

/// A group's forecast as the API shows it.
pub fn to_json(g: &GroupForecast, name: Option<String>, tenant: Option<String>) -> Value {
    let f = &g.forecast;
    let model = |m: &crate::forecast::ModelFigures| {
        json!({
            "agents_needed": m.needed,
            "answer_rate_20s_signed_in": rate(m.rate_20s_signed_in),
            "answer_rate_30s_signed_in": rate(m.rate_30s_signed_in),
        })
    };
    let history: Vec<Value> = g
        .history
        .iter()
        .map(|i| {
            json!({
                "from": crate::events::time::format_rfc3339(
                    i64::try_from(i.from.unix_millis()).unwrap_or(0)
                ).ok(),
                "arrivals": i.arrivals,
                "answer_rate_20s": i.answer_rate_20s.map(rate),
            })
        })
        .collect();
    json!({
        "group_id": g.group,
        "name": name,
        "tenant": tenant,
        "agents_needed": f.needed(),
        "agents_ready": f.ready,
        "agents_signed_in": f.signed_in,
        "short": f.short(),
        "arrivals_per_hour": (f.arrivals_per_hour * 10.0).round() / 10.0,
        "level_per_hour": (f.level_per_hour * 10.0).round() / 10.0,
        "prior_per_hour": f.prior_per_hour.map(|p| (p * 10.0).round() / 10.0),
        "handle_secs": f.handle_secs.round(),
        "handle_default": f.handle_default,
        "patience_secs": f.patience_secs.map(f64::round),
        "ring_secs": (f.ring_secs * 10.0).round() / 10.0,
        "erlangs": (f.erlangs * 100.0).round() / 100.0,
        "erlang_c": model(&f.erlang_c),
        "erlang_a": model(&f.erlang_a),
        "calls_last_hour": f.window_calls,
        "history": history,
    })
}

/// `GET /api/v1/forecast` (supervisors): the caller's centre's groups.
pub async fn forecast_endpoint(
    State(s): State<ApiState>,
    Caller(p): Caller,
) -> ApiResult<Json<Value>> {
    p.require(Role::Supervisor)?;
    let Some(cti) = s.cti.as_ref() else {
        return Ok(Json(json!({ "groups": [] })));
    };
    let sources = Sources {
        records: s.records.clone(),
        live: s.records_live.clone(),
        queues: cti.calls.queues.clone(),
    };
    if sources.queues.is_none() {
        return Ok(Json(json!({ "groups": [] })));
    }
    let now = crate::util::now();
    let visible = |g: &str| cti.group_tenant(g).is_some_and(|t| p.may_access_tenant(&t));
    let groups = compute(&sources, now, visible).await.map_err(|e| match e {
        ForecastError::NoAcd => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "acd_unavailable",
            "the ACD is not running",
        ),
        ForecastError::Records(reason) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "records_unavailable",
            format!("the call records could not be read: {reason}"),
        ),
    })?;
    let roster = cti.roster.load();
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| {
            let info = roster.group(&g.group);
            to_json(
                g,
                info.map(|i| i.name.clone()),
                info.map(|i| i.tenant.clone()),
            )
        })
        .collect();
    Ok(Json(json!({
        "at": crate::events::time::format_rfc3339(i64::try_from(now.unix_millis()).unwrap_or(0)).ok(),
        "horizon_secs": Settings::default().horizon.as_secs(),
        "targets": [
            { "within_secs": 20, "rate": 0.90 },
            { "within_secs": 30, "rate": 0.95 },
        ],
        "chart_bin_secs": CHART_BIN.as_secs(),
        "groups": rows,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{GroupCounters, GroupStats, ServiceLevel};

    #[test]
    fn ready_agents_are_the_signed_in_ones_free_for_queue_calls() {
        let group = GroupStats {
            group: "general".into(),
            calls_waiting: 0,
            callbacks_pending: 0,
            longest_wait: None,
            agents_by_state: vec![
                (AgentState::LoggedOut, 7),
                (AgentState::Idle, 3),
                (AgentState::NotReady, 2),
                (AgentState::Ringing, 1),
                (AgentState::Talking, 4),
                (AgentState::OnHold, 1),
                (AgentState::AfterCallWork, 2),
                (AgentState::Outbound, 1),
            ],
            counters: GroupCounters::default(),
            answer_rate_20: None,
            answer_rate_30: None,
            asa: None,
            aht: None,
            average_acw: None,
        };
        let stats = Stats {
            at: Time::UNIX_EPOCH,
            groups: vec![group],
            agents: Vec::new(),
            sl20: ServiceLevel::default(),
            sl30: ServiceLevel::default(),
        };
        // Ready: idle, ringing, talking, on hold, after-call work (11);
        // signed in: all but the logged out (14).
        assert_eq!(agents(&stats, "general"), (11, 14));
        assert_eq!(agents(&stats, "other"), (0, 0));
    }
}
