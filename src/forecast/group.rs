//! One skill group's forecast for the next half hour (issue 19 §1;
//! REQUIREMENTS §8 targets): from the calls that asked for the group
//! (today's recent ones and the same time of past weeks) and its agents
//! now, the arrival rate, handle time and patience, and from them the
//! ready agents Erlang C and Erlang A need for ≥ 90 % within 20 s and
//! ≥ 95 % within 30 s, and the 20 s rate the agents signed in now give.
//!
//! - Arrivals: [`super::smoothing`] over [`Settings::bins`] intervals of
//!   [`Settings::bin`] before `now`, past weeks as the prior.
//! - Handle time: mean of ring + talk + hold + after-call work of the
//!   calls answered within [`Settings::window`] (an agent is held from
//!   the ring); [`Settings::default_handle`] when none was answered.
//! - Patience: exponential, by its censored maximum likelihood over the
//!   same calls: hang-ups / total time callers waited (answered callers'
//!   waits count as "still patient then"); none without hang-ups (Erlang
//!   A is then Erlang C).
//! - The caller's wait the §8 rate counts ends at the answer, the
//!   models' wait at the agent's reservation: the thresholds are reduced
//!   by the mean ring time of the answered calls.
//!
//! Pure: the present is an input.

use std::time::Duration;

use super::erlang::{self, Load, Model, Target};
use super::smoothing;
use crate::time::Time;

/// How a call that asked for the group went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An agent answered after `ring` of ringing; the agent then spent
    /// `handle` on it (talk, hold, after-call work).
    Answered { ring: Duration, handle: Duration },
    /// The caller hung up before an answer.
    HungUp,
    /// Neither (voicemail, callback, the queue's limit).
    Other,
}

/// One call that asked for the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// When the caller asked for an agent.
    pub asked_at: Time,
    /// From asking to the answer or to leaving unanswered.
    pub wait: Duration,
    pub seen: Seen,
}

/// The forecast's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Length of one smoothing interval.
    pub bin: Duration,
    /// Recent intervals smoothed.
    pub bins: usize,
    /// Smoothing weight of the newest interval.
    pub alpha: f64,
    /// The period forecast (the next half hour).
    pub horizon: Duration,
    /// Handle time and patience come from the calls of this last period.
    pub window: Duration,
    /// Handle time assumed before any call was answered.
    pub default_handle: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            bin: Duration::from_secs(15 * 60),
            bins: 8,
            alpha: 0.5,
            horizon: Duration::from_secs(30 * 60),
            window: Duration::from_secs(3600),
            default_handle: Duration::from_secs(300),
        }
    }
}

/// A past week's calls around the same time: those that asked in
/// `[now − week_shift − bins·bin, now − week_shift + horizon)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PastWeek {
    /// How far back (7 days, 14 days …).
    pub shift: Duration,
    pub calls: Vec<Observation>,
}

/// What the forecast is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub now: Time,
    /// Today's calls of the group that asked before `now` (any older than
    /// the intervals and the window are ignored).
    pub recent: Vec<Observation>,
    pub past_weeks: Vec<PastWeek>,
    /// Members ready for calls now (idle, ringing, talking, holding, in
    /// after-call work).
    pub ready: u32,
    /// Members signed in now.
    pub signed_in: u32,
}

/// Staffing and answer rates under one model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ModelFigures {
    /// Ready agents needed for both targets (`None`: more than
    /// [`erlang::MAX_AGENTS`]).
    pub needed: Option<u32>,
    /// The expected 20 s answer rate with the agents signed in now.
    pub rate_20s_signed_in: f64,
    /// The expected 30 s answer rate with the agents signed in now.
    pub rate_30s_signed_in: f64,
}

/// One group's forecast.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Forecast {
    /// Callers per hour expected over the next half hour.
    pub arrivals_per_hour: f64,
    /// Today's smoothed rate, per hour.
    pub level_per_hour: f64,
    /// Past weeks' rate over the same half hour, per hour.
    pub prior_per_hour: Option<f64>,
    /// Today against past weeks.
    pub ratio: Option<f64>,
    /// Mean handle time (ring, talk, hold, after-call work), seconds.
    pub handle_secs: f64,
    /// Whether the handle time is the default (no call answered lately).
    pub handle_default: bool,
    /// Mean patience, seconds (`None`: nobody hung up lately).
    pub patience_secs: Option<f64>,
    /// Mean ring time of answered calls, seconds.
    pub ring_secs: f64,
    /// Offered load, Erlangs.
    pub erlangs: f64,
    pub erlang_c: ModelFigures,
    pub erlang_a: ModelFigures,
    pub ready: u32,
    pub signed_in: u32,
    /// Calls the handle time and patience came from.
    pub window_calls: usize,
}

impl Forecast {
    /// Ready agents needed: Erlang A's figure (it knows callers hang up),
    /// Erlang C's when A has none.
    pub fn needed(&self) -> Option<u32> {
        self.erlang_a.needed.or(self.erlang_c.needed)
    }

    /// Fewer ready agents than needed.
    pub fn short(&self) -> bool {
        self.needed().is_some_and(|n| self.ready < n) || self.needed().is_none()
    }
}

fn per_sec(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(1e-9)
}

/// The forecast for the next [`Settings::horizon`] after `inputs.now`.
pub fn forecast(settings: &Settings, inputs: &Inputs) -> Forecast {
    let now = inputs.now;
    let asked = |calls: &[Observation]| calls.iter().map(|c| c.asked_at).collect::<Vec<_>>();
    let bin_rates = |times: &[Time], end: Time| -> Vec<f64> {
        smoothing::bin_counts(times, end, settings.bin, settings.bins)
            .into_iter()
            .map(|c| per_sec(c, settings.bin))
            .collect()
    };
    let recent = bin_rates(&asked(&inputs.recent), now);
    let mut past_recent = Vec::new();
    let mut past_next = Vec::new();
    for week in &inputs.past_weeks {
        let Some(then) = now.checked_sub(week.shift) else {
            continue;
        };
        let times = asked(&week.calls);
        past_recent.push(bin_rates(&times, then));
        let next = smoothing::bin_counts(&times, then + settings.horizon, settings.horizon, 1);
        past_next.push(per_sec(next.iter().sum(), settings.horizon));
    }
    let arrivals = smoothing::forecast(&recent, &past_recent, &past_next, settings.alpha);

    // Handle time, ring time and patience over the window.
    let since = now.checked_sub(settings.window).unwrap_or(Time::UNIX_EPOCH);
    let window: Vec<&Observation> = inputs
        .recent
        .iter()
        .filter(|c| c.asked_at >= since && c.asked_at < now)
        .collect();
    let (mut handled, mut handle_total, mut ring_total) = (0u32, 0.0, 0.0);
    let (mut hung_up, mut waited) = (0u32, 0.0);
    for c in &window {
        waited += c.wait.as_secs_f64();
        match c.seen {
            Seen::Answered { ring, handle } => {
                handled += 1;
                handle_total += (ring + handle).as_secs_f64();
                ring_total += ring.as_secs_f64();
            }
            Seen::HungUp => hung_up += 1,
            Seen::Other => {}
        }
    }
    let handle_default = handled == 0;
    let handle_secs = if handle_default {
        settings.default_handle.as_secs_f64()
    } else {
        (handle_total / f64::from(handled)).max(1.0)
    };
    let ring_secs = if handled == 0 {
        0.0
    } else {
        ring_total / f64::from(handled)
    };
    let patience_secs = (hung_up > 0).then(|| (waited / f64::from(hung_up)).max(1.0));

    let load = Load {
        arrivals_per_sec: arrivals.forecast,
        handle_secs,
        patience_secs,
    };
    let targets: Vec<Target> = erlang::TARGETS
        .iter()
        .map(|t| Target {
            within_secs: (t.within_secs - ring_secs).max(0.0),
            rate: t.rate,
        })
        .collect();
    let figures = |model: Model| ModelFigures {
        needed: erlang::agents_needed(model, &load, &targets),
        rate_20s_signed_in: erlang::answer_rate(
            model,
            &load,
            inputs.signed_in,
            targets[0].within_secs,
        ),
        rate_30s_signed_in: erlang::answer_rate(
            model,
            &load,
            inputs.signed_in,
            targets[1].within_secs,
        ),
    };
    Forecast {
        arrivals_per_hour: arrivals.forecast * 3600.0,
        level_per_hour: arrivals.level * 3600.0,
        prior_per_hour: arrivals.prior_next.map(|p| p * 3600.0),
        ratio: arrivals.ratio,
        handle_secs,
        handle_default,
        patience_secs,
        ring_secs,
        erlangs: load.erlangs(),
        erlang_c: figures(Model::C),
        erlang_a: figures(Model::A),
        ready: inputs.ready,
        signed_in: inputs.signed_in,
        window_calls: window.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `n` calls evenly over the `span` before `end`, each answered after
    /// `wait` s with 5 s of ringing and `handle` s of work.
    fn calls(n: u64, end: Time, span: Duration, wait: u64, handle: u64) -> Vec<Observation> {
        (0..n)
            .map(|i| Observation {
                asked_at: end - span + span * (i as u32) / (n as u32),
                wait: secs(wait),
                seen: Seen::Answered {
                    ring: secs(5),
                    handle: secs(handle),
                },
            })
            .collect()
    }

    #[test]
    fn a_steady_group_gets_the_textbook_staffing() {
        // 200 calls/h for two hours, 175 s of work + 5 s of ringing: 10 E.
        let now = Time::from_unix_secs(1_800_000_000);
        let inputs = Inputs {
            now,
            recent: calls(400, now, secs(7200), 3, 175),
            past_weeks: vec![],
            ready: 12,
            signed_in: 12,
        };
        let f = forecast(&Settings::default(), &inputs);
        assert!((f.arrivals_per_hour - 200.0).abs() < 1e-6, "{f:?}");
        assert!((f.handle_secs - 180.0).abs() < 1e-9);
        assert!((f.erlangs - 10.0).abs() < 1e-6);
        assert_eq!(f.patience_secs, None);
        assert!(!f.handle_default);
        // Nobody hangs up: A is C. The thresholds lose the 5 s of ring:
        // 15 s and 25 s. 15 agents answer 1 − 0.102·e^{−5·15/180} = 93.3 %
        // within 15 s but 1 − 0.102·e^{−5·25/180} = 94.9 % within 25 s:
        // the 30 s target needs 16.
        assert_eq!(f.erlang_c.needed, Some(16));
        assert_eq!(f.erlang_a.needed, Some(16));
        assert_eq!(f.needed(), Some(16));
        assert!(f.short());
        assert!(f.erlang_c.rate_20s_signed_in < 0.9);
        assert_eq!(f.window_calls, 200);
    }

    #[test]
    fn hang_ups_give_the_patience_and_only_the_past_counts() {
        let now = Time::from_unix_secs(1_800_000_000);
        let mut recent = calls(100, now, secs(3600), 20, 200);
        // 20 hang-ups after 30 s each.
        for i in 0..20u32 {
            recent.push(Observation {
                asked_at: now - secs(3000) + secs(100) * i,
                wait: secs(30),
                seen: Seen::HungUp,
            });
        }
        // Calls after `now` are not seen.
        recent.extend(calls(500, now + secs(1800), secs(1800), 0, 10));
        let inputs = Inputs {
            now,
            recent,
            past_weeks: vec![],
            ready: 3,
            signed_in: 4,
        };
        let f = forecast(&Settings::default(), &inputs);
        // (100·20 + 20·30) s waited / 20 hang-ups.
        assert_eq!(f.patience_secs, Some(130.0));
        assert_eq!(f.window_calls, 120);
        assert!((f.handle_secs - 205.0).abs() < 1e-9);
        let (a, c) = (f.erlang_a.needed.expect("a"), f.erlang_c.needed.expect("c"));
        assert!(a <= c && a > 3, "a {a} c {c}");
        assert!(f.short());
    }

    #[test]
    fn past_weeks_lift_a_rising_morning() {
        let now = Time::from_unix_secs(1_800_000_000);
        let week = secs(7 * 86_400);
        // Last week: 60/h in the two hours before, 240/h just after.
        let then = now - week;
        let mut past = calls(120, then, secs(7200), 0, 100);
        past.extend(calls(120, then + secs(1800), secs(1800), 0, 100));
        let inputs = Inputs {
            now,
            recent: calls(120, now, secs(7200), 0, 100),
            past_weeks: vec![PastWeek {
                shift: week,
                calls: past,
            }],
            ready: 10,
            signed_in: 10,
        };
        let f = forecast(&Settings::default(), &inputs);
        assert!((f.level_per_hour - 60.0).abs() < 1e-6, "{f:?}");
        assert!((f.prior_per_hour.expect("prior") - 240.0).abs() < 1e-6);
        assert!((f.arrivals_per_hour - 240.0).abs() < 1e-6);
    }

    #[test]
    fn a_quiet_group_needs_nobody() {
        let inputs = Inputs {
            now: Time::from_unix_secs(1_800_000_000),
            recent: vec![],
            past_weeks: vec![],
            ready: 0,
            signed_in: 0,
        };
        let f = forecast(&Settings::default(), &inputs);
        assert_eq!(f.needed(), Some(0));
        assert!(f.handle_default);
        assert!(!f.short());
        assert_eq!(f.arrivals_per_hour, 0.0);
    }
}
