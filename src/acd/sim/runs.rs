//! The runs: seeded long runs (with and without reconfigurations, and
//! one checking what a restart needs) and the proptest ones.

use super::reconfigure::step_or_reconfigure;
use super::*;

#[test]
fn seeded_long_run_with_reconfigures() {
    for seed in [0x2545_F491_4F6C_DD1Du64, 777, 20_250_101] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for _ in 0..5_000 {
            let r = rng.next();
            let op = (r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8);
            step_or_reconfigure(&mut sim, (r >> 48) as u8, op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
        println!(
            "seed {seed:#x}: {} reconfigurations applied ({} agents, {} groups deleted), {} refused; \
             {} offers, {} answered; agents {:?}, groups {:?}",
            sim.reconfigs.0,
            sim.deleted.0,
            sim.deleted.1,
            sim.reconfigs.1,
            sim.offers,
            sim.answered,
            sim.agent_names,
            sim.group_names
        );
        assert!(sim.reconfigs.0 > 100, "too few reconfigurations applied");
        assert!(sim.reconfigs.1 > 5, "too few refusals exercised");
        assert!(
            sim.deleted.0 > 5 && sim.deleted.1 > 5,
            "too few deletions exercised"
        );
        assert!(sim.offers > 300, "the run routed too little");
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn seeded_long_run() {
    for seed in [0x9E37_79B9_7F4A_7C15u64, 12345, 20_240_601] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        // Sign everybody in first so the run has traffic to route.
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for _ in 0..10_000 {
            let r = rng.next();
            sim.step((r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8));
        }
        // Let every timer run out.
        sim.advance(sim.now + s(3_600));
        sim.check_all();
        let st = sim.e.stats(sim.now);
        println!(
            "waiting {:?}",
            st.groups
                .iter()
                .map(|g| (g.group.clone(), g.calls_waiting, g.callbacks_pending))
                .collect::<Vec<_>>()
        );
        println!(
            "seed {seed:#x}: {} calls, {} offers, {} answered (calls and callbacks), {} rejected inputs, {} missed, t = {:?}",
            sim.next_id,
            sim.offers,
            sim.answered,
            sim.errors,
            sim.missed,
            sim.now
        );
        assert!(
            sim.offers > 1_000 && sim.answered > 500,
            "the run routed too little"
        );
    }
}

/// The kept lists in id order, as [`Engine::snapshot`] gives them.
fn sorted(mut kept: Snapshot) -> Snapshot {
    kept.agents.sort_by(|a, b| a.agent.cmp(&b.agent));
    kept.groups.sort_by(|a, b| a.group.cmp(&b.group));
    kept.callbacks.sort_by_key(|c| c.call);
    kept.missed.sort_by_key(|m| m.call);
    kept.served.sort_by(|a, b| a.caller.cmp(&b.caller));
    kept
}

/// What a store holds after applying every change in order equals the
/// engine's state computed afresh, and an engine restored from it at the
/// same moment has the same figures, missed calls, callbacks and agents.
fn check_kept(sim: &Sim, kept: &Snapshot) {
    let now = sim.e.snapshot();
    assert_eq!(
        sorted(kept.clone()),
        now,
        "kept state differs at {:?}",
        sim.now
    );
    // Nobody's phone registered: everyone signed out, nothing dispatched,
    // so every figure must come back exactly.
    let mut fresh = Engine::new(sim.cfg.clone(), sim.now).expect("config");
    let refused = fresh.restore(sim.now, Time::UNIX_EPOCH, kept.clone(), |_| false);
    assert!(refused.is_empty(), "{refused:?}");
    let (old, new) = (sim.e.stats(sim.now), fresh.stats(sim.now));
    for (o, n) in old.groups.iter().zip(&new.groups) {
        assert_eq!(o.counters, n.counters, "group {}", o.group);
        assert_eq!(
            o.callbacks_pending, n.callbacks_pending,
            "group {}",
            o.group
        );
    }
    for (o, n) in old.agents.iter().zip(&new.agents) {
        assert_eq!(o.counters, n.counters, "agent {}", o.agent);
    }
    assert_eq!(fresh.missed_calls(), sim.e.missed_calls());
    let restored = fresh.snapshot();
    assert_eq!(restored.callbacks, now.callbacks);
    assert_eq!(restored.served, now.served);
    // Phones registered: idle, not-ready and after-call-work agents are
    // as they were (unless handed a restored callback at once).
    let mut fresh = Engine::new(sim.cfg.clone(), sim.now).expect("config");
    fresh.restore(sim.now, Time::UNIX_EPOCH, kept.clone(), |_| true);
    for a in &kept.agents {
        let view = fresh.agent_view(&a.agent).expect("agent");
        let kept_as_is = match a.state {
            AgentState::Idle | AgentState::NotReady | AgentState::LoggedOut => true,
            AgentState::AfterCallWork => a.acw_until.is_some_and(|u| u > sim.now),
            _ => false,
        };
        if kept_as_is && view.state != AgentState::Ringing {
            assert_eq!(
                (view.state, &view.reason, view.since, view.idle_since),
                (a.state, &a.reason, a.since, a.idle_since),
                "agent {}",
                a.agent
            );
        }
    }
}

#[test]
fn seeded_long_run_keeps_what_a_restart_needs() {
    for seed in [0x5DEE_CE66_D1CE_4E5Bu64, 4242] {
        let mut rng = XorShift(seed);
        let mut sim = Sim::new();
        sim.e.track_changes();
        // A first start: nothing kept, the day begins.
        let first = sim.e.restore(
            Time::UNIX_EPOCH,
            Time::UNIX_EPOCH,
            Snapshot::default(),
            |_| true,
        );
        assert!(first.is_empty());
        let mut kept = Snapshot::default();
        kept.apply(&sim.e.take_changes());
        for a in sim.agent_names.clone() {
            sim.apply(Input::Login { agent: a });
        }
        for i in 0..4_000 {
            let r = rng.next();
            sim.step((r as u8, (r >> 8) as u16, (r >> 24) as u16, (r >> 40) as u8));
            kept.apply(&sim.e.take_changes());
            if i % 40 == 39 {
                check_kept(&sim, &kept);
            }
        }
        assert!(!kept.missed.is_empty() && !kept.served.is_empty());
        assert!(kept
            .groups
            .iter()
            .any(|g| g.counters.callbacks_answered > 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_operation_sequences_keep_invariants(
        login in any::<bool>(),
        ops in prop::collection::vec(any::<(u8, u16, u16, u8)>(), 1..250),
    ) {
        let mut sim = Sim::new();
        if login {
            for a in sim.agent_names.clone() {
                sim.apply(Input::Login { agent: a });
            }
        }
        for op in ops {
            sim.step(op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_sequences_with_reconfigures_keep_invariants(
        login in any::<bool>(),
        ops in prop::collection::vec((any::<u8>(), any::<(u8, u16, u16, u8)>()), 1..250),
    ) {
        let mut sim = Sim::new();
        if login {
            for a in sim.agent_names.clone() {
                sim.apply(Input::Login { agent: a });
            }
        }
        for (pick, op) in ops {
            step_or_reconfigure(&mut sim, pick, op);
        }
        sim.advance(sim.now + s(3_600));
        sim.check_all();
    }
}
