//! A large engine for benchmarks and the decisions-per-second figure
//! (issue "benchmark-ready function"): `agents` agents over ten skill
//! groups, all talking, and `waiting` callers queued behind them.

use std::time::Duration;

use super::engine::Engine;
use super::model::{
    AcdConfig, AgentConfig, AgentState, CallId, CallbackPolicy, GroupConfig, Input, NextStep,
    Output, Strategy,
};
use crate::time::Time;

const GROUPS: usize = 10;

fn agent_id(i: usize) -> String {
    format!("{i:05}")
}

fn config(agents: usize) -> AcdConfig {
    let strategies = [
        Strategy::LongestIdle,
        Strategy::FewestCalls,
        Strategy::SkillWeighted,
        Strategy::RoundRobin,
    ];
    let groups = (0..GROUPS)
        .map(|g| GroupConfig {
            id: format!("g{g}"),
            name: format!("group {g}"),
            tenant: "t".into(),
            strategy: strategies[g % strategies.len()],
            ring_timeout: Duration::from_secs(15),
            acw: Duration::ZERO,
            max_queue: usize::MAX,
            max_wait: Duration::from_secs(86_400),
            on_max_wait: NextStep::Voicemail,
            overflow_after: None,
            announce_every: None,
            priority_boost: vec![(Duration::from_secs(60), 3)],
        })
        .collect();
    let agents = (0..agents)
        .map(|i| AgentConfig {
            id: agent_id(i),
            name: format!("agent {i}"),
            tenant: "t".into(),
            device: format!("sip-{i}"),
            skills: vec![
                (format!("g{}", i % GROUPS), 1 + (i % 10) as u8),
                (
                    format!(
                        "g{}",
                        (i % GROUPS + 1 + (i / GROUPS) % (GROUPS - 1)) % GROUPS
                    ),
                    5,
                ),
            ],
        })
        .collect();
    AcdConfig {
        groups,
        agents,
        not_ready_reasons: vec!["break".into()],
        previous_service: None,
        callback: CallbackPolicy {
            max_attempts: 3,
            retry_interval: Duration::from_secs(300),
        },
    }
}

fn enqueue(engine: &mut Engine, now: Time, n: u64) -> Result<(), super::AcdError> {
    engine.handle(
        now,
        Input::Enqueue {
            call: CallId(n),
            group: format!("g{}", n % GROUPS as u64),
            priority: (n % 3) as u8,
            caller: format!("1380000{n:04}"),
            arrived: now,
            max_wait: None,
            on_timeout: None,
        },
    )
}

/// Answer every pending offer; returns how many there were.
fn answer_offers(engine: &mut Engine, now: Time) -> usize {
    let mut offers = Vec::new();
    while let Some(out) = engine.poll_output() {
        if let Output::Offer { call, agent, .. } = out {
            offers.push((call, agent));
        }
    }
    let n = offers.len();
    for (call, agent) in offers {
        // Cannot fail: the offer was just made.
        let _ = engine.handle(now, Input::OfferAnswered { call, agent });
    }
    n
}

/// An engine with `agents` agents all talking and `waiting` callers
/// queued, and the time it stands at. Call ids `1..=agents + waiting` are
/// used; [`bench_step`] continues after them.
#[doc(hidden)]
pub fn bench_fixture(agents: usize, waiting: usize) -> (Engine, Time) {
    let mut now = Time::from_unix_secs(1);
    let Ok(mut engine) = Engine::new(config(agents), now) else {
        unreachable!("the bench configuration is valid");
    };
    for i in 0..agents {
        let _ = engine.handle(now, Input::Login { agent: agent_id(i) });
    }
    let mut n = 0u64;
    for _ in 0..agents + waiting {
        now += Duration::from_millis(1);
        n += 1;
        let _ = enqueue(&mut engine, now, n);
        answer_offers(&mut engine, now);
    }
    while engine.poll_output().is_some() {}
    (engine, now)
}

/// One routing decision under load: agent `step % agents` hangs up, goes
/// idle, gets the best waiting call and answers it; a new caller arrives so
/// the queue stays as long. Returns the offers made (1 when all is well).
#[doc(hidden)]
pub fn bench_step(
    engine: &mut Engine,
    now: Time,
    agents: usize,
    waiting: usize,
    step: usize,
) -> usize {
    let agent = agent_id(step % agents.max(1));
    if let Some(view) = engine.agent_view(&agent) {
        if let (AgentState::Talking, Some(call)) = (view.state, view.call) {
            let _ = engine.handle(now, Input::CallEnded { call });
        }
    }
    let offers = answer_offers(engine, now);
    let _ = enqueue(engine, now, (agents + waiting + step + 1) as u64);
    offers + answer_offers(engine, now)
}
