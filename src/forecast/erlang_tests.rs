//! Erlang B, C and A against published values and exact limiting cases.

use super::*;

fn close(got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "got {got}, want {want} (± {tol})"
    );
}

/// `calls` per 30 minutes, `aht` seconds, patience `p` seconds.
fn load(calls_per_half_hour: f64, aht: f64, patience: Option<f64>) -> Load {
    Load {
        arrivals_per_sec: calls_per_half_hour / 1800.0,
        handle_secs: aht,
        patience_secs: patience,
    }
}

#[test]
fn erlang_b_matches_the_tables() {
    // Erlang B tables: B(5 E, 5) = 0.2849, B(10 E, 15) = 0.0365,
    // B(1, 1) = 1/2, B(2, 2) = 2/5.
    close(erlang_b(5.0, 5), 0.2849, 5e-5);
    close(erlang_b(10.0, 15), 0.0365, 5e-5);
    close(erlang_b(1.0, 1), 0.5, 1e-12);
    close(erlang_b(2.0, 2), 0.4, 1e-12);
    assert_eq!(erlang_b(3.0, 0), 1.0);
}

#[test]
fn erlang_b_stays_finite_at_a_large_load() {
    // a^n/n! overflows f64 long before this; the recursion does not.
    let b = erlang_b(2_000.0, 2_100);
    assert!(b.is_finite() && b > 0.0 && b < 0.01, "{b}");
    let c = erlang_c(2_000.0, 2_100);
    assert!(c.is_finite() && c > 0.0 && c < 1.0, "{c}");
}

#[test]
fn erlang_c_matches_the_textbook_examples() {
    // A = 2 E, 3 servers: P(wait) = 4/9.
    close(erlang_c(2.0, 3), 4.0 / 9.0, 1e-12);
    // The classic call-centre example: 100 calls in 30 min, 180 s handle
    // time (10 E): 14 agents wait 17.4 % and answer 88.8 % within 20 s,
    // 15 agents 94.1 %; 13 agents wait 28.5 %.
    let l = load(100.0, 180.0, None);
    close(l.erlangs(), 10.0, 1e-12);
    close(erlang_c(10.0, 14), 0.1741, 5e-5);
    close(erlang_c(10.0, 13), 0.2853, 5e-5);
    close(erlang_c_answered_within(&l, 14, 20.0), 0.8884, 5e-5);
    close(erlang_c_answered_within(&l, 15, 20.0), 0.9415, 5e-5);
    // Too few agents: the queue grows, nobody is answered in time.
    assert_eq!(erlang_c(10.0, 10), 1.0);
    assert_eq!(erlang_c_answered_within(&l, 9, 20.0), 0.0);
}

#[test]
fn staffing_for_the_textbook_example_under_erlang_c() {
    let l = load(100.0, 180.0, None);
    // 90 % in 20 s needs 15 (14 gives 88.8 %); 95 % in 30 s: 15 gives
    // 1 − 0.102·e^{−1/6·5}… = 0.965, so 15 meets both.
    assert_eq!(agents_needed(Model::C, &l, &TARGETS), Some(15));
    assert!(erlang_c_answered_within(&l, 15, 30.0) >= 0.95);
    // One target alone.
    let t80 = [Target {
        within_secs: 20.0,
        rate: 0.80,
    }];
    assert_eq!(agents_needed(Model::C, &l, &t80), Some(14));
    // No calls need no agents.
    assert_eq!(
        agents_needed(Model::C, &load(0.0, 180.0, None), &TARGETS),
        Some(0)
    );
}

#[test]
fn erlang_a_with_endless_patience_is_erlang_c() {
    let l = load(100.0, 180.0, Some(1e12));
    for n in 11..=18 {
        let a = erlang_a(&l, n, 20.0);
        close(a.p_wait, erlang_c(10.0, n), 1e-6);
        close(
            a.answered_within,
            erlang_c_answered_within(&l, n, 20.0),
            1e-6,
        );
        close(a.abandoned_within, 0.0, 1e-6);
        let none = erlang_a(&load(100.0, 180.0, None), n, 20.0);
        close(none.answered_within, a.answered_within, 1e-6);
    }
    assert_eq!(
        agents_needed(Model::A, &l, &TARGETS),
        agents_needed(Model::C, &l, &TARGETS)
    );
}

/// P(Poisson(a) ≥ n), summed directly.
fn poisson_tail(a: f64, n: u32) -> f64 {
    let mut term = (-a).exp();
    let mut below = 0.0;
    for k in 0..n {
        below += term;
        term *= a / f64::from(k + 1);
    }
    1.0 - below
}

#[test]
fn erlang_a_with_patience_equal_to_handle_time_is_an_infinite_server_queue() {
    // θ = μ: every caller in the system leaves at rate μ whether waiting or
    // talking, so the number in the system is Poisson(a) (M/M/∞) and a
    // caller waits when it is at least n.
    for (calls, n) in [(100.0, 8), (100.0, 10), (100.0, 14), (300.0, 25)] {
        let l = load(calls, 180.0, Some(180.0));
        let a = erlang_a(&l, n, 20.0);
        close(a.p_wait, poisson_tail(l.erlangs(), n), 1e-9);
    }
}

#[test]
fn erlang_a_accounts_for_every_caller_in_the_long_run() {
    // Waited long enough, every caller who waited was answered or hung
    // up, and the hang-ups equal the flow balance θ·E[waiting]/λ.
    for (calls, aht, patience, n) in [
        (100.0, 180.0, 60.0, 9),
        (100.0, 180.0, 120.0, 11),
        (400.0, 240.0, 90.0, 50),
        (40.0, 300.0, 200.0, 6),
    ] {
        let l = load(calls, aht, Some(patience));
        let a = erlang_a(&l, n, 50_000.0);
        close(a.answered_within + a.abandoned_within, 1.0, 1e-6);
        close(a.abandoned_within, a.p_abandon, 1e-6);
        assert!(a.p_abandon > 0.0);
    }
}

#[test]
fn erlang_a_needs_fewer_agents_than_erlang_c_when_callers_hang_up() {
    let impatient = load(100.0, 180.0, Some(60.0));
    let c = agents_needed(Model::C, &impatient, &TARGETS).expect("c");
    let a = agents_needed(Model::A, &impatient, &TARGETS).expect("a");
    assert!(a <= c, "A {a} C {c}");
    // Erlang A is stable below a (callers leave): 8 agents for 10 E.
    let r = erlang_a(&impatient, 8, 20.0);
    assert!(r.p_abandon > 0.05 && r.answer_rate() < 0.9, "{r:?}");
    // The rate rises with agents.
    let mut last = 0.0;
    for n in 5..=20 {
        let rate = erlang_a_rate(&impatient, n, 20.0);
        assert!(rate >= last - 1e-12, "{n}: {rate} < {last}");
        last = rate;
    }
    assert!(last > 0.99);
}

#[test]
fn the_answer_rate_excludes_callers_who_hung_up_within_the_threshold() {
    let r = ErlangA {
        p_wait: 0.5,
        p_abandon: 0.2,
        answered_within: 0.72,
        abandoned_within: 0.1,
    };
    close(r.answer_rate(), 0.8, 1e-12);
}

/// An M/M/n+M queue simulated caller by caller (first come, first served:
/// a caller is answered at the earliest time a server is free unless
/// their patience runs out first; one who hangs up takes no server).
/// Returns (P(wait > 0), P(hang up), P(answered within t), P(hung up
/// within t)) over `callers` after a warm-up.
fn simulated(load: &Load, n: u32, t: f64, callers: usize, seed: u64) -> [f64; 4] {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut exp = |mean: f64| -mean * (1.0 - rng.random::<f64>()).ln();
    // Server free times in ms, as integers for the heap.
    let mut free: BinaryHeap<Reverse<u64>> = (0..n).map(|_| Reverse(0)).collect();
    let mut now = 0.0;
    let warm = callers / 10;
    let mut counts = [0usize; 4];
    for i in 0..callers + warm {
        now += exp(1.0 / load.arrivals_per_sec);
        let patience = load.patience_secs.map_or(f64::INFINITY, &mut exp);
        let service = exp(load.handle_secs);
        let earliest = free.peek().map_or(0.0, |r| r.0 as f64 / 1000.0);
        let start = now.max(earliest);
        let wait = start - now;
        let answered = wait <= patience;
        if answered {
            free.pop();
            free.push(Reverse(((start + service) * 1000.0) as u64));
        }
        if i < warm {
            continue;
        }
        counts[0] += usize::from(wait > 0.0);
        counts[1] += usize::from(!answered);
        counts[2] += usize::from(answered && wait <= t);
        counts[3] += usize::from(!answered && patience <= t);
    }
    counts.map(|c| c as f64 / callers as f64)
}

#[test]
fn erlang_a_agrees_with_a_simulated_queue() {
    // Under, at and over capacity, patient and impatient callers. With
    // 400,000 callers the simulation's own spread is a few thousandths
    // (at 3,000,000 every figure agreed within 0.003).
    for (calls, aht, patience, n, seed) in [
        (100.0, 180.0, 60.0, 10, 1),
        (100.0, 180.0, 120.0, 9, 2),
        (400.0, 240.0, 90.0, 52, 3),
        (300.0, 300.0, 200.0, 45, 4),
    ] {
        let l = load(calls, aht, Some(patience));
        let a = erlang_a(&l, n, 20.0);
        let [wait, gone, within, gone_within] = simulated(&l, n, 20.0, 400_000, seed);
        let what = format!("{calls}/30 min, {aht} s, patience {patience} s, {n} agents: {a:?}");
        close(a.p_wait, wait, 0.012);
        close(a.p_abandon, gone, 0.012);
        close(a.answered_within, within, 0.012);
        close(a.abandoned_within, gone_within, 0.012);
        assert!(a.p_wait > 0.05, "{what}");
    }
}
