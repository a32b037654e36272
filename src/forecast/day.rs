//! The forecast checked against a simulated day (issue 19 §3): a 12345
//! centre of 140 seats in two skill groups, run through the pure ACD
//! engine ([`crate::acd::Engine`]) in virtual time and recorded by the
//! real record builder ([`crate::events::builder::CdrBuilder`]); at the
//! start of every half hour each group's forecast is made from what the
//! switch would know then (records of calls ended before it, snapshots of
//! the calls in progress, the agents signed in) and later compared with
//! the 20 s answer rate measured over the callers who asked in that half
//! hour, by the report's definition (REQUIREMENTS §8,
//! [`super::records::answer_rate_20s`]).
//!
//! The day: arrivals a non-homogeneous Poisson process following an
//! hourly 12345 profile (quiet at night, peaks 9–11 and 14–16), the day's
//! volume drawn ±8 %; talk time lognormal; callers' patience exponential;
//! agents answer after a ring of 2–6 s and miss 2 % of offers (the
//! engine's ring timeout puts the caller back); after-call work as the
//! group's setting; agents signed in by a roster planned on the profile
//! (a thinner lunch), each half hour's taking over five minutes before it
//! (those leaving sign out once free). The same weekday of `weeks` past weeks is simulated
//! first (other draws) as the forecast's prior. Deterministic for a seed;
//! no clock, no IO: `hotline forecast-day` prints [`table`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::erlang::{erlang_a_rate, Load};
use super::group::{forecast, Forecast, Settings};
use super::records::{answer_rate_20s, asked_at, group_of, inputs};
use crate::acd::{
    AcdConfig, AgentConfig, AgentState, CallId, CallbackPolicy, Engine, GroupConfig, Input,
    NextStep, Output, Strategy,
};
use crate::events::builder::{CallStart, CdrBuilder, EndCause};
use crate::events::cdr::{Cdr, HangupParty};
use crate::events::id::IdGenerator;
use crate::events::model::{Direction, Event, EventData};
use crate::time::Time;

/// Calls per hour of the whole centre by local hour, a weekday of a
/// 140-seat 12345 centre.
const PROFILE: [f64; 24] = [
    40.0, 25.0, 18.0, 15.0, 15.0, 25.0, 60.0, 220.0, 700.0, 1_120.0, 1_180.0, 950.0, 560.0, 640.0,
    1_060.0, 1_120.0, 960.0, 660.0, 420.0, 320.0, 260.0, 190.0, 120.0, 70.0,
];
/// 2026-11-30 00:00 in China (UTC+8), a Monday.
const DAY_START_UNIX: u64 = 1_795_968_000;
const HALF_HOUR: Duration = Duration::from_secs(1_800);
const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// One skill group of the simulated centre.
struct GroupPlan {
    id: &'static str,
    seats: u32,
    /// Its share of the calls.
    share: f64,
    talk_mean_secs: f64,
    patience_mean_secs: f64,
    acw: Duration,
}

const GROUPS: [GroupPlan; 2] = [
    GroupPlan {
        id: "general",
        seats: 120,
        share: 0.86,
        talk_mean_secs: 250.0,
        patience_mean_secs: 100.0,
        acw: Duration::from_secs(30),
    },
    GroupPlan {
        id: "enterprise",
        seats: 20,
        share: 0.14,
        talk_mean_secs: 330.0,
        patience_mean_secs: 150.0,
        acw: Duration::from_secs(45),
    },
];

/// Spread of the talk time's logarithm.
const TALK_SIGMA: f64 = 0.6;
/// Offers an agent lets ring out.
const MISSED_OFFER: f64 = 0.02;
/// A half hour's roster takes over this long before it begins: its new
/// agents sign in, and those it no longer has sign out once free (as
/// agents do around a shift change), so the forecast at the half hour sees
/// the roster, not the agents still finishing a call before they leave.
const SHIFT_LEAD: Duration = Duration::from_secs(5 * 60);
/// How long an agent who let an offer ring out stays not ready.
const NOT_READY_AFTER_MISS: Duration = Duration::from_secs(10);
/// How long an offer rings before the engine takes it back.
const RING_TIMEOUT: Duration = Duration::from_secs(15);

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOptions {
    pub seed: u64,
    /// Past weeks simulated as the prior.
    pub weeks: u32,
}

/// One half hour of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub group: &'static str,
    /// Its start, local `HH:MM`.
    pub from: String,
    pub forecast: Forecast,
    /// Callers who asked in the half hour, per hour.
    pub actual_per_hour: f64,
    /// Their 20 s answer rate (§8), `None` without calls.
    pub measured_20s: Option<f64>,
    /// Callers already waiting when the half hour began (a backlog the
    /// stationary models do not see).
    pub waiting_at_start: usize,
    /// Erlang A's 20 s rate had the arrivals been known (the actual
    /// ones, with the forecast's handle time, patience and agents): what
    /// is left of the error is the model's and the half hour's chance.
    pub hindsight_a: f64,
}

/// The error of one group's predictions over the half hours with at least
/// [`MIN_CALLS`] callers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Errors {
    pub half_hours: usize,
    /// Mean absolute error of the 20 s rate, Erlang A, percentage points.
    pub mae_a: f64,
    /// The same for Erlang C.
    pub mae_c: f64,
    /// Mean (predicted − measured), Erlang A, points.
    pub bias_a: f64,
    pub bias_c: f64,
    /// Mean absolute percentage error of the arrival forecast.
    pub arrivals_mape: f64,
    /// Half hours where the verdict "meets 90 %" agreed (Erlang A).
    pub verdict_agrees: usize,
    /// Of the scored half hours, those that began with at most
    /// [`CALM_START`] callers waiting, and Erlang A's mean absolute error
    /// over them.
    pub calm_half_hours: usize,
    pub mae_a_calm: f64,
    /// Erlang A's mean absolute error with the arrivals known.
    pub mae_a_hindsight: f64,
}

/// A half hour "begins calm" with at most this many callers waiting.
pub const CALM_START: usize = 2;

/// Half hours with fewer callers are shown but not scored.
pub const MIN_CALLS: u64 = 20;

/// The simulated day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayResult {
    pub options: DayOptions,
    pub rows: Vec<Row>,
    /// Callers who arrived on the measured day.
    pub arrivals: usize,
    /// Records of the measured day (one per caller once all have ended).
    pub calls: usize,
    /// Its 20 s rate over the whole day.
    pub day_20s: Option<f64>,
    /// Inputs the engine refused (0 in a sound run).
    pub refused: u64,
}

impl DayResult {
    /// The errors of `group`'s rows.
    pub fn errors(&self, group: &str) -> Errors {
        let rows: Vec<(&Row, f64)> = self
            .rows
            .iter()
            .filter(|r| r.group == group && r.actual_per_hour / 2.0 >= MIN_CALLS as f64)
            .filter_map(|r| r.measured_20s.map(|m| (r, m)))
            .collect();
        let n = rows.len().max(1) as f64;
        let calm: Vec<&(&Row, f64)> = rows
            .iter()
            .filter(|(r, _)| r.waiting_at_start <= CALM_START)
            .collect();
        let mean =
            |f: &dyn Fn(&Row, f64) -> f64| rows.iter().map(|(r, m)| f(r, *m)).sum::<f64>() / n;
        Errors {
            half_hours: rows.len(),
            mae_a: mean(&|r, m| (r.forecast.erlang_a.rate_20s_signed_in - m).abs() * 100.0),
            mae_c: mean(&|r, m| (r.forecast.erlang_c.rate_20s_signed_in - m).abs() * 100.0),
            bias_a: mean(&|r, m| (r.forecast.erlang_a.rate_20s_signed_in - m) * 100.0),
            bias_c: mean(&|r, m| (r.forecast.erlang_c.rate_20s_signed_in - m) * 100.0),
            arrivals_mape: mean(&|r, _| {
                (r.forecast.arrivals_per_hour - r.actual_per_hour).abs() / r.actual_per_hour * 100.0
            }),
            verdict_agrees: rows
                .iter()
                .filter(|(r, m)| (r.forecast.erlang_a.rate_20s_signed_in >= 0.9) == (*m >= 0.9))
                .count(),
            mae_a_hindsight: mean(&|r, m| (r.hindsight_a - m).abs() * 100.0),
            calm_half_hours: calm.len(),
            mae_a_calm: calm
                .iter()
                .map(|(r, m)| (r.forecast.erlang_a.rate_20s_signed_in - m).abs() * 100.0)
                .sum::<f64>()
                / calm.len().max(1) as f64,
        }
    }
}

fn exp_draw(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

fn normal_draw(rng: &mut StdRng) -> f64 {
    let (u, v) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Lognormal with the given mean and log-spread.
fn lognormal_draw(rng: &mut StdRng, mean: f64, sigma: f64) -> f64 {
    let mu = mean.ln() - sigma * sigma / 2.0;
    (mu + sigma * normal_draw(rng)).exp()
}

/// The centre's calls per hour at `secs` after local midnight (the hourly
/// profile joined linearly between the middles of the hours).
fn profile_rate(secs: f64) -> f64 {
    let h = (secs / 3_600.0 - 0.5).rem_euclid(24.0);
    let i = h.floor() as usize % 24;
    let f = h - h.floor();
    PROFILE[i] * (1.0 - f) + PROFILE[(i + 1) % 24] * f
}

/// Agents of a group the roster signs in for half hour `k`: the load the
/// planners expected (5 % under the profile, handle time without the
/// ring) plus a thin square-root margin, thinner still at lunch; tight
/// enough that the peaks miss 90 % on some days.
fn roster(plan: &GroupPlan, k: usize) -> u32 {
    let secs = k as f64 * 1_800.0 + 900.0;
    let handle = plan.talk_mean_secs + plan.acw.as_secs_f64();
    let a = 0.95 * profile_rate(secs) * plan.share * handle / 3_600.0;
    let mut staff = a + 0.4 * a.sqrt() + 1.0;
    if (23..27).contains(&k) {
        staff *= 0.85;
    }
    (staff.ceil() as u32).clamp(2, plan.seats)
}

fn agent_id(g: usize, i: u32) -> String {
    format!("{}-{i:03}", GROUPS[g].id)
}

/// The group and number of an agent id.
fn agent_index(agent: &str) -> Option<(usize, u32)> {
    let (group, n) = agent.rsplit_once('-')?;
    let g = GROUPS.iter().position(|p| p.id == group)?;
    Some((g, n.parse().ok()?))
}

fn config() -> AcdConfig {
    let groups = GROUPS
        .iter()
        .map(|p| GroupConfig {
            id: p.id.into(),
            name: p.id.into(),
            tenant: "sim".into(),
            strategy: Strategy::LongestIdle,
            ring_timeout: RING_TIMEOUT,
            acw: p.acw,
            max_queue: 100_000,
            max_wait: Duration::from_secs(3 * 3_600),
            on_max_wait: NextStep::Voicemail,
            overflow_after: None,
            announce_every: None,
            priority_boost: Vec::new(),
        })
        .collect();
    let agents = GROUPS
        .iter()
        .enumerate()
        .flat_map(|(g, p)| {
            (0..p.seats).map(move |i| AgentConfig {
                id: agent_id(g, i),
                name: agent_id(g, i),
                tenant: "sim".into(),
                device: agent_id(g, i),
                skills: vec![(p.id.into(), 5)],
            })
        })
        .collect();
    AcdConfig {
        groups,
        agents,
        not_ready_reasons: vec!["break".into()],
        previous_service: None,
        callback: CallbackPolicy {
            max_attempts: 1,
            retry_interval: Duration::from_secs(300),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Half hour `k` begins: the forecasts.
    Boundary(usize),
    /// Half hour `k`'s roster takes over, [`SHIFT_LEAD`] before it begins.
    Roster(usize),
    Arrive(usize),
    Answer(CallId, u64),
    Patience(CallId),
    TalkEnd(CallId),
    /// An agent the engine set not ready (an offer rang out) is ready again.
    Ready(usize, u32),
}

struct SimCall {
    b: CdrBuilder,
    talk: Duration,
    /// The live offer: agent and its token.
    offer: Option<(String, u64)>,
    answered: bool,
    over: bool,
}

/// One simulated day (the measured one or a past week's).
struct Day<'a> {
    rng: StdRng,
    e: Engine,
    now: Time,
    start: Time,
    agenda: BTreeMap<(Time, u64), Ev>,
    seq: u64,
    /// Ordered, so that a run is the same for a seed.
    calls: BTreeMap<CallId, SimCall>,
    arrivals: Vec<(Time, usize)>,
    ids: Arc<IdGenerator>,
    /// Agent → the call of their after-call work.
    acw: HashMap<String, CallId>,
    /// Agents to sign out when next idle.
    leaving: HashMap<String, bool>,
    signed: Vec<Vec<bool>>,
    /// Finished records and when they were stored.
    records: &'a mut Vec<(Time, Cdr)>,
    refused: u64,
}

impl<'a> Day<'a> {
    fn new(seed: u64, start: Time, records: &'a mut Vec<(Time, Cdr)>) -> Day<'a> {
        let mut rng = StdRng::seed_from_u64(seed);
        let Ok(e) = Engine::new(config(), start) else {
            unreachable!("the simulated centre's configuration is valid");
        };
        let volume = (1.0 + 0.08 * normal_draw(&mut rng)).max(0.5);
        // Thinning: candidates at the profile's peak rate, kept with
        // probability rate(t) / peak.
        let peak = PROFILE.iter().copied().fold(0.0, f64::max) * volume;
        let mut arrivals = Vec::new();
        let mut t = 0.0;
        loop {
            t += exp_draw(&mut rng, 3_600.0 / peak);
            if t >= 86_400.0 {
                break;
            }
            if rng.random::<f64>() * peak < profile_rate(t) * volume {
                let u = rng.random::<f64>();
                let g = if u < GROUPS[0].share { 0 } else { 1 };
                arrivals.push((start + Duration::from_secs_f64(t), g));
            }
        }
        let mut day = Day {
            rng,
            e,
            now: start,
            start,
            agenda: BTreeMap::new(),
            seq: 0,
            calls: BTreeMap::new(),
            arrivals,
            ids: Arc::new(IdGenerator::new("sim", seed)),
            acw: HashMap::new(),
            leaving: HashMap::new(),
            signed: GROUPS
                .iter()
                .map(|p| vec![false; p.seats as usize])
                .collect(),
            records,
            refused: 0,
        };
        for k in 0..48 {
            let begins = start + HALF_HOUR * k as u32;
            let roster = begins
                .checked_sub(SHIFT_LEAD)
                .filter(|_| k > 0)
                .unwrap_or(begins);
            day.at(roster, Ev::Roster(k));
            day.at(begins, Ev::Boundary(k));
        }
        for i in 0..day.arrivals.len() {
            let when = day.arrivals[i].0;
            day.at(when, Ev::Arrive(i));
        }
        day
    }

    fn at(&mut self, when: Time, ev: Ev) {
        self.seq += 1;
        self.agenda.insert((when, self.seq), ev);
    }

    fn handle(&mut self, input: Input) -> bool {
        match self.e.handle(self.now, input) {
            Ok(()) => {
                self.drain();
                true
            }
            Err(_) => {
                self.refused += 1;
                false
            }
        }
    }

    fn store(&mut self, emitted: Result<Vec<Event>, crate::events::error::EventError>) {
        match emitted {
            Ok(events) => {
                for e in events {
                    if let EventData::CallEnded(c) = e.body {
                        self.records.push((self.now, *c));
                    }
                }
            }
            Err(_) => self.refused += 1,
        }
    }

    fn ms(&self) -> i64 {
        i64::try_from(self.now.unix_millis()).unwrap_or(i64::MAX)
    }

    fn drain(&mut self) {
        let mut sign_out = Vec::new();
        while let Some(out) = self.e.poll_output() {
            let at = self.ms();
            match out {
                Output::Offer { call, agent, .. } => {
                    self.seq += 1;
                    let token = self.seq;
                    let missed = self.rng.random::<f64>() < MISSED_OFFER;
                    let ring = 2.0 + 4.0 * self.rng.random::<f64>();
                    let Some(c) = self.calls.get_mut(&call) else {
                        continue;
                    };
                    let r = c.b.offered(at, &agent);
                    c.offer = Some((agent, token));
                    self.store(r);
                    if !missed {
                        let when = self.now + Duration::from_secs_f64(ring);
                        self.at(when, Ev::Answer(call, token));
                    }
                }
                Output::CancelOffer { call, agent, .. } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        if c.offer.as_ref().is_some_and(|(a, _)| *a == agent) {
                            c.offer = None;
                        }
                        let r = c.b.offer_cancelled(at, &agent);
                        self.store(r);
                    }
                }
                Output::QueueTimeout { call, .. } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.over = true;
                        let _ = c.b.queue_timed_out(at);
                        let cause = EndCause {
                            reason: Some("max-wait".into()),
                            ..EndCause::default()
                        };
                        let r = c.b.ended(at, HangupParty::System, cause);
                        self.store(r);
                    }
                }
                Output::AgentState {
                    agent, state, call, ..
                } => {
                    if state == AgentState::AfterCallWork {
                        if let Some(c) = call {
                            self.acw.insert(agent.clone(), c);
                        }
                    }
                    if state == AgentState::NotReady {
                        if let Some((g, i)) = agent_index(&agent) {
                            let when = self.now + NOT_READY_AFTER_MISS;
                            self.at(when, Ev::Ready(g, i));
                        }
                    }
                    if state == AgentState::Idle {
                        if let Some(c) = self.acw.remove(&agent) {
                            if let Some(sc) = self.calls.get_mut(&c) {
                                let r = sc.b.acw_ended(at, &agent);
                                self.calls.remove(&c);
                                self.store(r);
                            }
                        }
                        if self.leaving.remove(&agent).is_some() {
                            sign_out.push(agent);
                        }
                    }
                }
                _ => {}
            }
        }
        for agent in sign_out {
            self.handle(Input::Logout { agent });
        }
    }

    /// Sign agents in or out to the roster of half hour `k`.
    fn apply_roster(&mut self, k: usize) {
        for (g, plan) in GROUPS.iter().enumerate() {
            let want = roster(plan, k) as usize;
            let have = self.signed[g].iter().filter(|s| **s).count();
            let ids: Vec<u32> = (0..plan.seats).collect();
            if want > have {
                let chosen: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|i| !self.signed[g][*i as usize])
                    .take(want - have)
                    .collect();
                for i in chosen {
                    let agent = agent_id(g, i);
                    self.signed[g][i as usize] = true;
                    if self.leaving.remove(&agent).is_none() {
                        self.handle(Input::Login { agent });
                    }
                }
            } else {
                let chosen: Vec<u32> = ids
                    .iter()
                    .rev()
                    .copied()
                    .filter(|i| self.signed[g][*i as usize])
                    .take(have - want)
                    .collect();
                for i in chosen {
                    let agent = agent_id(g, i);
                    self.signed[g][i as usize] = false;
                    let idle = self.e.agent_state(&agent).map(|(s, _)| s) == Some(AgentState::Idle);
                    if idle {
                        self.handle(Input::Logout { agent });
                    } else {
                        self.leaving.insert(agent, true);
                    }
                }
            }
        }
    }

    fn arrive(&mut self, i: usize) {
        let g = self.arrivals[i].1;
        let plan = &GROUPS[g];
        let id = CallId(self.seq + 1);
        self.seq += 1;
        let start = CallStart {
            call_id: format!("{}-{}", self.start.unix_secs(), id.0),
            serial: format!("12345-{}-{}", self.start.unix_secs(), id.0),
            tenant: "sim".into(),
            direction: Direction::Inbound,
            caller: format!("138{:08}", id.0 % 100_000_000),
            called: "12345".into(),
            caller_area: None,
            confidential: false,
        };
        let at = self.ms();
        let Ok((mut b, _)) = CdrBuilder::started(self.ids.clone(), at, start) else {
            self.refused += 1;
            return;
        };
        let _ = b.agent_requested(at);
        let _ = b.queued(at, plan.id, Some(plan.id), 0);
        let talk =
            lognormal_draw(&mut self.rng, plan.talk_mean_secs, TALK_SIGMA).clamp(10.0, 3_600.0);
        let patience = exp_draw(&mut self.rng, plan.patience_mean_secs);
        self.calls.insert(
            id,
            SimCall {
                b,
                talk: Duration::from_secs_f64(talk),
                offer: None,
                answered: false,
                over: false,
            },
        );
        let when = self.now + Duration::from_secs_f64(patience);
        self.at(when, Ev::Patience(id));
        self.handle(Input::Enqueue {
            call: id,
            group: plan.id.into(),
            priority: 0,
            caller: format!("c{}", id.0),
            arrived: self.now,
            max_wait: None,
            on_timeout: None,
        });
    }

    fn answer(&mut self, call: CallId, token: u64) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some((agent, t)) = c.offer.clone() else {
            return;
        };
        if t != token || c.over {
            return;
        }
        if self.handle(Input::OfferAnswered {
            call,
            agent: agent.clone(),
        }) {
            let at = self.ms();
            if let Some(c) = self.calls.get_mut(&call) {
                c.answered = true;
                c.offer = None;
                let talk = c.talk;
                let r = c.b.answered(at, &agent);
                self.store(r);
                self.at(self.now + talk, Ev::TalkEnd(call));
            }
        }
    }

    fn patience(&mut self, call: CallId) {
        let at = self.ms();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.answered || c.over {
            return;
        }
        c.over = true;
        let r = c.b.ended(at, HangupParty::Caller, normal());
        self.calls.remove(&call);
        self.store(r);
        self.handle(Input::CallerHungUp { call });
    }

    fn talk_end(&mut self, call: CallId) {
        let at = self.ms();
        if let Some(c) = self.calls.get_mut(&call) {
            c.over = true;
            let r = c.b.ended(at, HangupParty::Caller, normal());
            self.store(r);
        }
        self.handle(Input::CallEnded { call });
    }

    /// Run to the next half-hour boundary `k` (or to the end with
    /// `None`); the boundary's roster is applied.
    fn run_until(&mut self, boundary: Option<usize>) {
        loop {
            let next = self.agenda.first_key_value().map(|(k, ev)| (*k, *ev));
            let timer = self.e.poll_timeout();
            match (next, timer) {
                (None, None) => return,
                (Some(((t, _), _)), Some(d)) if d <= t => self.timeout(d),
                (None, Some(d)) => self.timeout(d),
                (Some((key, ev)), _) => {
                    self.agenda.remove(&key);
                    self.now = self.now.max(key.0);
                    match ev {
                        Ev::Roster(k) => self.apply_roster(k),
                        Ev::Boundary(k) => {
                            if boundary == Some(k) {
                                return;
                            }
                        }
                        Ev::Arrive(i) => self.arrive(i),
                        Ev::Answer(c, token) => self.answer(c, token),
                        Ev::Patience(c) => self.patience(c),
                        Ev::TalkEnd(c) => self.talk_end(c),
                        Ev::Ready(g, i) => {
                            let agent = agent_id(g, i);
                            if self.e.agent_state(&agent).map(|(s, _)| s)
                                == Some(AgentState::NotReady)
                            {
                                self.handle(Input::Ready { agent });
                            }
                        }
                    }
                }
            }
        }
    }

    fn timeout(&mut self, at: Time) {
        self.now = self.now.max(at);
        self.e.handle_timeout(self.now);
        self.drain();
    }

    /// Snapshots of the calls in progress.
    fn live(&self) -> Vec<Cdr> {
        self.calls
            .values()
            .filter(|c| !c.over)
            .map(|c| c.b.snapshot())
            .collect()
    }

    /// (ready, signed in) members of a group now.
    fn agents(&self, g: usize) -> (u32, u32) {
        let (mut ready, mut signed) = (0, 0);
        for i in 0..GROUPS[g].seats {
            match self.e.agent_state(&agent_id(g, i)).map(|(s, _)| s) {
                None | Some(AgentState::LoggedOut) => {}
                Some(s) => {
                    signed += 1;
                    if !matches!(s, AgentState::NotReady | AgentState::Outbound) {
                        ready += 1;
                    }
                }
            }
        }
        (ready, signed)
    }
}

fn normal() -> EndCause {
    EndCause {
        reason: Some("normal".into()),
        ..EndCause::default()
    }
}

/// Simulate `weeks` past weeks' same day, then the measured day with a
/// forecast per group at every half hour.
pub fn run(options: DayOptions) -> DayResult {
    let settings = Settings::default();
    let start = Time::from_unix_secs(DAY_START_UNIX);
    let mut records: Vec<(Time, Cdr)> = Vec::new();
    let mut refused = 0;
    for w in (1..=options.weeks).rev() {
        let seed = options.seed.wrapping_mul(1_000).wrapping_add(u64::from(w));
        let mut day = Day::new(seed, start - WEEK * w, &mut records);
        day.run_until(None);
        refused += day.refused;
    }
    let past = records.len();
    let mut forecasts: Vec<(usize, usize, Forecast, usize)> = Vec::new();
    let mut day = Day::new(options.seed, start, &mut records);
    for k in 0..48 {
        day.run_until(Some(k));
        let now = day.now;
        let live = day.live();
        let agents: Vec<(u32, u32)> = (0..GROUPS.len()).map(|g| day.agents(g)).collect();
        let stats = day.e.stats(now);
        let waiting = |id: &str| {
            stats
                .groups
                .iter()
                .find(|s| s.group == id)
                .map_or(0, |s| s.calls_waiting)
        };
        let finished: Vec<Cdr> = day
            .records
            .iter()
            .filter(|(stored, _)| *stored < now)
            .map(|(_, c)| c.clone())
            .collect();
        for (g, plan) in GROUPS.iter().enumerate() {
            let (ready, signed_in) = agents[g];
            let i = inputs(&settings, now, plan.id, &finished, &live, ready, signed_in);
            forecasts.push((k, g, forecast(&settings, &i), waiting(plan.id)));
        }
    }
    day.run_until(None);
    refused += day.refused;
    let arrivals = day.arrivals.len();
    let today: Vec<Cdr> = records[past..].iter().map(|(_, c)| c.clone()).collect();
    let rows = forecasts
        .into_iter()
        .map(|(k, g, forecast, waiting_at_start)| {
            let from = start + HALF_HOUR * k as u32;
            let to = from + HALF_HOUR;
            let inside: Vec<&Cdr> = today
                .iter()
                .filter(|c| group_of(c) == Some(GROUPS[g].id))
                .filter(|c| asked_at(c).is_some_and(|t| t >= from && t < to))
                .collect();
            let inside_count = inside.len();
            let hindsight_a = hindsight(&forecast, inside_count as f64 * 2.0);
            Row {
                group: GROUPS[g].id,
                from: format!("{:02}:{:02}", k / 2, (k % 2) * 30),
                forecast,
                actual_per_hour: inside.len() as f64 * 2.0,
                measured_20s: answer_rate_20s(inside),
                waiting_at_start,
                hindsight_a,
            }
        })
        .collect();
    DayResult {
        options,
        rows,
        arrivals,
        calls: today.len(),
        day_20s: answer_rate_20s(&today),
        refused,
    }
}

/// Erlang A's 20 s rate for `per_hour` arrivals with the rest of a
/// forecast (its handle time, patience, ring and agents signed in).
fn hindsight(f: &Forecast, per_hour: f64) -> f64 {
    let load = Load {
        arrivals_per_sec: per_hour / 3_600.0,
        handle_secs: f.handle_secs,
        patience_secs: f.patience_secs,
    };
    erlang_a_rate(&load, f.signed_in, (20.0 - f.ring_secs).max(0.0))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.1}", x * 100.0))
}

/// The result as Markdown: per group the half hours (forecast vs
/// measured) and the errors.
pub fn table(r: &DayResult) -> String {
    let mut out = format!(
        "Simulated day (seed {}, {} past weeks as the prior): {} calls, 20 s rate {} %, engine refusals {}.\n",
        r.options.seed,
        r.options.weeks,
        r.calls,
        pct(r.day_20s),
        r.refused
    );
    for plan in &GROUPS {
        out.push_str(&format!(
            "\n### Group `{}` ({} seats)\n\n| half hour | calls/h forecast | calls/h actual | AHT s | patience s | needed C | needed A | signed in | waiting at start | 20 s forecast C % | 20 s forecast A % | 20 s A, calls known % | 20 s measured % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            plan.id, plan.seats
        ));
        for row in r.rows.iter().filter(|x| x.group == plan.id) {
            let f = &row.forecast;
            let need = |n: Option<u32>| n.map_or(">max".into(), |n| n.to_string());
            out.push_str(&format!(
                "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
                row.from,
                f.arrivals_per_hour,
                row.actual_per_hour,
                f.handle_secs,
                f.patience_secs.map_or("–".into(), |p| format!("{p:.0}")),
                need(f.erlang_c.needed),
                need(f.erlang_a.needed),
                f.signed_in,
                row.waiting_at_start,
                f.erlang_c.rate_20s_signed_in * 100.0,
                f.erlang_a.rate_20s_signed_in * 100.0,
                row.hindsight_a * 100.0,
                pct(row.measured_20s),
            ));
        }
        let e = r.errors(plan.id);
        out.push_str(&format!(
            "\nScored half hours (≥ {MIN_CALLS} calls): {}. 20 s rate, mean absolute error: Erlang A {:.1} points, Erlang C {:.1} points; bias (forecast − measured): A {:+.1}, C {:+.1}. Arrivals: mean absolute percentage error {:.1} %. \"Meets 90 %\" verdict (A) right in {} of {}. Half hours beginning with ≤ {CALM_START} callers waiting: {}, Erlang A's mean absolute error over them {:.1} points. Erlang A with the calls known: mean absolute error {:.1} points.\n",
            e.half_hours, e.mae_a, e.mae_c, e.bias_a, e.bias_c, e.arrivals_mape, e.verdict_agrees, e.half_hours, e.calm_half_hours, e.mae_a_calm, e.mae_a_hindsight
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_peaks_mid_morning_and_mid_afternoon() {
        let at = |h: f64| profile_rate(h * 3_600.0);
        assert!(at(10.0) > 1_100.0 && at(15.0) > 1_050.0);
        assert!(at(3.5) < 20.0);
        assert!(at(12.5) < at(10.0) && at(12.5) < at(15.0));
        // The roster follows it within the seats: most at the morning
        // peak, a handful at night.
        let day: Vec<u32> = (0..48).map(|k| roster(&GROUPS[0], k)).collect();
        let most = day.iter().copied().max().unwrap_or(0);
        assert!((70..=120).contains(&most), "{day:?}");
        assert!((18..=22).contains(&day.iter().position(|n| *n == most).unwrap_or(0)));
        assert!(roster(&GROUPS[0], 6) < 10);
    }

    #[test]
    fn a_day_is_deterministic_and_every_caller_gets_one_record() {
        let options = DayOptions { seed: 3, weeks: 1 };
        let day = run(options);
        assert!(day == run(options), "the same seed gave another day");
        assert_eq!(day.refused, 0);
        assert!(day.arrivals > 5_000, "{}", day.arrivals);
        assert_eq!(day.calls, day.arrivals);
        assert_eq!(day.rows.len(), 48 * GROUPS.len());
        for row in &day.rows {
            let f = &row.forecast;
            for rate in [f.erlang_a.rate_20s_signed_in, f.erlang_c.rate_20s_signed_in] {
                assert!((0.0..=1.0).contains(&rate), "{row:?}");
            }
            assert!(row.measured_20s.is_none_or(|m| (0.0..=1.0).contains(&m)));
        }
        // The past week gave a prior from the first half hour on.
        assert!(day.rows[0].forecast.prior_per_hour.is_some());
        let e = day.errors("general");
        assert!(e.half_hours > 20 && e.mae_a.is_finite(), "{e:?}");
        assert!(table(&day).contains("| 09:30 |"));
    }

    #[test]
    fn lognormal_and_exponential_draws_have_their_means() {
        let mut rng = StdRng::seed_from_u64(7);
        let n = 200_000;
        let ln: f64 = (0..n)
            .map(|_| lognormal_draw(&mut rng, 250.0, 0.6))
            .sum::<f64>()
            / n as f64;
        let ex: f64 = (0..n).map(|_| exp_draw(&mut rng, 100.0)).sum::<f64>() / n as f64;
        assert!((ln - 250.0).abs() < 3.0, "{ln}");
        assert!((ex - 100.0).abs() < 1.5, "{ex}");
    }
}
