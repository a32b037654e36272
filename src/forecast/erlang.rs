//! Erlang B, Erlang C and Erlang A (issue 19 §1; REQUIREMENTS §8: the 20 s
//! and 30 s answer rates): how many ready agents a skill group needs for a
//! load, and what answer rate a number of agents gives.
//!
//! - Erlang B by its recursion `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`
//!   (no factorials, no powers: stable for any load);
//! - Erlang C from it, `C = n·B / (n − a·(1 − B))`, and the M/M/n waiting
//!   time `P(W > t) = C·e^{−(nμ − λ)t}`;
//! - Erlang A (Palm's M/M/n+M, Garnett–Mandelbaum–Reiman 2002: callers who
//!   wait abandon at rate θ, exponential patience) as a birth–death chain:
//!   its stationary law computed in logarithms and truncated where the
//!   tail is negligible, and the waiting time of an arriving caller as a
//!   small absorbing chain (callers ahead in queue, then answered or gone)
//!   solved by uniformisation over slices short enough that no Poisson
//!   weight underflows.
//!
//! The answer rate follows REQUIREMENTS §8: answered within `t` over the
//! callers who asked, excluding those who hung up within `t`. Under Erlang
//! C nobody hangs up, so it is `1 − P(W > t)`.

/// A queue's load: arrivals and service as rates per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Callers asking for an agent per second (λ).
    pub arrivals_per_sec: f64,
    /// Mean handle time in seconds (1/μ): talk, hold and after-call work.
    pub handle_secs: f64,
    /// Mean patience in seconds (1/θ); `None`: nobody hangs up (Erlang C).
    pub patience_secs: Option<f64>,
}

impl Load {
    /// Offered traffic in Erlangs (a = λ/μ).
    pub fn erlangs(&self) -> f64 {
        self.arrivals_per_sec * self.handle_secs
    }
}

/// Erlang B: the blocking probability of `n` servers offered `a` Erlangs.
pub fn erlang_b(a: f64, n: u32) -> f64 {
    if a <= 0.0 {
        return if n == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// Erlang C: the probability that a caller waits, for `n` agents offered
/// `a` Erlangs; 1 when `n ≤ a` (the queue grows without bound).
pub fn erlang_c(a: f64, n: u32) -> f64 {
    if a <= 0.0 {
        return 0.0;
    }
    let nf = f64::from(n);
    if nf <= a {
        return 1.0;
    }
    let b = erlang_b(a, n);
    (nf * b / (nf - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// Erlang C's answer rate: the share of callers answered within `t_secs`.
pub fn erlang_c_answered_within(load: &Load, n: u32, t_secs: f64) -> f64 {
    let a = load.erlangs();
    if a <= 0.0 {
        return 1.0;
    }
    let nf = f64::from(n);
    if nf <= a {
        return 0.0;
    }
    let c = erlang_c(a, n);
    (1.0 - c * (-(nf - a) * t_secs / load.handle_secs).exp()).clamp(0.0, 1.0)
}

/// What Erlang A says of `n` agents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// Probability that an arriving caller waits.
    pub p_wait: f64,
    /// Probability that a caller hangs up before an agent answers.
    pub p_abandon: f64,
    /// Probability of an answer within the threshold.
    pub answered_within: f64,
    /// Probability of hanging up within the threshold.
    pub abandoned_within: f64,
}

impl ErlangA {
    /// The §8 answer rate: answered within the threshold / (1 − hung up
    /// within it).
    pub fn answer_rate(&self) -> f64 {
        let denominator = 1.0 - self.abandoned_within;
        if denominator <= 0.0 {
            return 0.0;
        }
        (self.answered_within / denominator).clamp(0.0, 1.0)
    }
}

/// Stationary tail below which the chain is cut (relative to the largest
/// state probability).
const TAIL: f64 = 1e-13;
/// Longest chain kept beyond the agents (callers waiting).
const MAX_QUEUE_STATES: usize = 20_000;
/// The largest Λ·Δt of one uniformisation slice (e^{−40} ≫ f64's minimum).
const SLICE: f64 = 40.0;
/// Poisson terms beyond the mean at which a slice's sum stops.
const POISSON_EPS: f64 = 1e-15;

/// Erlang A for `n` agents, answer and hang-up probabilities within
/// `t_secs`. With `patience_secs: None` (θ = 0) this is Erlang C (which
/// needs `n > a`; an unstable queue answers nobody within any time).
pub fn erlang_a(load: &Load, n: u32, t_secs: f64) -> ErlangA {
    let lambda = load.arrivals_per_sec;
    let mu = 1.0 / load.handle_secs.max(f64::MIN_POSITIVE);
    let theta = load
        .patience_secs
        .filter(|p| p.is_finite() && *p > 0.0)
        .map_or(0.0, |p| 1.0 / p);
    let nf = f64::from(n);
    if lambda <= 0.0 {
        return ErlangA {
            p_wait: 0.0,
            p_abandon: 0.0,
            answered_within: 1.0,
            abandoned_within: 0.0,
        };
    }
    if theta == 0.0 && nf * mu <= lambda {
        return ErlangA {
            p_wait: 1.0,
            p_abandon: 0.0,
            answered_within: 0.0,
            abandoned_within: 0.0,
        };
    }
    // log π_k, unnormalised: births λ, deaths min(k, n)μ + (k − n)⁺θ.
    let mut logs: Vec<f64> = vec![0.0];
    let mut max = 0.0f64;
    let mut k = 0usize;
    loop {
        k += 1;
        let kf = k as f64;
        let death = kf.min(nf) * mu + (kf - nf).max(0.0) * theta;
        let next = logs[k - 1] + (lambda / death).ln();
        logs.push(next);
        max = max.max(next);
        let past_peak = death > lambda;
        if (past_peak && next - max < TAIL.ln()) || k >= n as usize + MAX_QUEUE_STATES {
            break;
        }
    }
    let weights: Vec<f64> = logs.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let pi: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let n_us = n as usize;
    let p_wait: f64 = pi.iter().skip(n_us).sum();
    // An arrival finding n + i in the system has i callers ahead (PASTA).
    let ahead: Vec<f64> = pi.iter().skip(n_us).copied().collect();
    // Flow balance: callers hang up at θ·E[callers waiting] per second,
    // out of λ arriving.
    let waiting: f64 = ahead.iter().enumerate().map(|(i, p)| i as f64 * p).sum();
    let p_abandon = (theta * waiting / lambda).clamp(0.0, 1.0);
    let (served, gone) = tagged(&ahead, nf * mu, theta, t_secs);
    ErlangA {
        p_wait,
        p_abandon,
        answered_within: ((1.0 - p_wait) + served).clamp(0.0, 1.0),
        abandoned_within: gone.clamp(0.0, 1.0),
    }
}

/// The waiting caller's own chain: `start[i]` is the probability of
/// arriving with `i` callers ahead (and every agent busy); from `i` the
/// head moves at rate `service + i·θ` (an agent frees, or one ahead hangs
/// up), from 0 the caller is answered at `service`; the caller hangs up
/// at θ. Returns the probabilities of being answered and of having hung
/// up by `t_secs`.
fn tagged(start: &[f64], service: f64, theta: f64, t_secs: f64) -> (f64, f64) {
    if start.is_empty() || t_secs <= 0.0 {
        return (0.0, 0.0);
    }
    let m = start.len();
    let out_rate = |i: usize| service + i as f64 * theta + theta;
    let big = out_rate(m - 1).max(f64::MIN_POSITIVE);
    let mut p: Vec<f64> = start.to_vec();
    let (mut served, mut gone) = (0.0, 0.0);
    let slices = (big * t_secs / SLICE).ceil().max(1.0);
    let dt = t_secs / slices;
    let lt = big * dt;
    for _ in 0..slices as u64 {
        // Uniformisation: e^{Qdt} = Σ_j Poisson(j; Λdt) · Pʲ with
        // P = I + Q/Λ; the absorbed mass is tracked beside the vector.
        let mut term = p.clone();
        let (mut term_served, mut term_gone) = (0.0, 0.0);
        let mut weight = (-lt).exp();
        let mut acc: Vec<f64> = term.iter().map(|x| x * weight).collect();
        let (mut acc_served, mut acc_gone) = (served * weight, gone * weight);
        let (mut t_served, mut t_gone) = (served, gone);
        let mut j = 0u32;
        let mut cumulative = weight;
        while 1.0 - cumulative > POISSON_EPS && f64::from(j) < lt + 50.0 + 10.0 * lt.sqrt() {
            j += 1;
            // One step of P.
            let mut next = vec![0.0; m];
            for i in 0..m {
                let x = term[i];
                if x == 0.0 {
                    continue;
                }
                let move_rate = service + i as f64 * theta;
                next[i] += x * (1.0 - out_rate(i) / big);
                if i == 0 {
                    term_served += x * move_rate / big;
                } else {
                    next[i - 1] += x * move_rate / big;
                }
                term_gone += x * theta / big;
            }
            term = next;
            t_served += term_served;
            t_gone += term_gone;
            term_served = 0.0;
            term_gone = 0.0;
            weight *= lt / f64::from(j);
            cumulative += weight;
            for (a, x) in acc.iter_mut().zip(&term) {
                *a += weight * x;
            }
            acc_served += weight * t_served;
            acc_gone += weight * t_gone;
        }
        let norm = cumulative.max(f64::MIN_POSITIVE);
        p = acc.iter().map(|x| x / norm).collect();
        served = acc_served / norm;
        gone = acc_gone / norm;
    }
    (served, gone)
}

/// The Erlang A answer rate (§8) of `n` agents within `t_secs`.
pub fn erlang_a_rate(load: &Load, n: u32, t_secs: f64) -> f64 {
    erlang_a(load, n, t_secs).answer_rate()
}

/// Which model a staffing figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Erlang C: nobody hangs up.
    C,
    /// Erlang A: callers hang up at their patience.
    A,
}

/// A service target: at least `rate` answered within `within_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub within_secs: f64,
    pub rate: f64,
}

/// REQUIREMENTS §8: ≥ 90 % within 20 s and ≥ 95 % within 30 s.
pub const TARGETS: [Target; 2] = [
    Target {
        within_secs: 20.0,
        rate: 0.90,
    },
    Target {
        within_secs: 30.0,
        rate: 0.95,
    },
];

/// The answer rate `model` gives `n` agents within `t_secs`.
pub fn answer_rate(model: Model, load: &Load, n: u32, t_secs: f64) -> f64 {
    match model {
        Model::C => erlang_c_answered_within(load, n, t_secs),
        Model::A => erlang_a_rate(load, n, t_secs),
    }
}

/// Most agents a staffing search tries.
pub const MAX_AGENTS: u32 = 5_000;

/// The fewest agents meeting every target under `model` (0 without
/// arrivals); `None` when even [`MAX_AGENTS`] do not.
pub fn agents_needed(model: Model, load: &Load, targets: &[Target]) -> Option<u32> {
    let a = load.erlangs();
    if a <= 0.0 || load.arrivals_per_sec <= 0.0 {
        return Some(0);
    }
    let meets = |n: u32| {
        targets
            .iter()
            .all(|t| answer_rate(model, load, n, t.within_secs) >= t.rate)
    };
    // The rate rises with n: binary search between a floor that fails
    // (or 0) and a ceiling that meets the targets.
    let mut hi = (a.ceil() as u32).max(1);
    while !meets(hi) {
        if hi >= MAX_AGENTS {
            return None;
        }
        hi = (hi * 2).min(MAX_AGENTS);
    }
    let mut lo = 0u32;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
#[path = "erlang_tests.rs"]
mod tests;
