//! [`Engine::reconfigure`]: agents and skill groups added, changed and
//! deleted while calls are up, without losing live state; refusals leave
//! the engine unchanged. The randomized check (reconfigures thrown into
//! random traffic against the shadow model) lives in `sim.rs`.

use std::time::Duration;

use super::tests::{agent, config, group, s, t};
use super::*;
use crate::time::Time;

/// Drives an engine in virtual time and collects its outputs.
struct H {
    e: Engine,
    cfg: AcdConfig,
    now: Time,
    out: Vec<Output>,
}

impl H {
    fn new(cfg: AcdConfig) -> H {
        let e = Engine::new(cfg.clone(), t(0)).expect("valid config");
        H {
            e,
            cfg,
            now: t(0),
            out: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }

    /// Advance to `t` after the (virtual) epoch.
    fn at(&mut self, t: Duration) {
        let t = Time::UNIX_EPOCH + t;
        while let Some(d) = self.e.poll_timeout() {
            if d > t {
                break;
            }
            self.now = d.max(self.now);
            self.e.handle_timeout(self.now);
            self.drain();
        }
        self.now = t;
        self.consistent();
    }

    fn try_in(&mut self, input: Input) -> Result<(), AcdError> {
        let r = self.e.handle(self.now, input);
        self.drain();
        self.consistent();
        r
    }

    fn ok(&mut self, input: Input) {
        let dbg = format!("{input:?}");
        if let Err(e) = self.try_in(input) {
            panic!("{dbg}: {e}");
        }
    }

    /// Reconfigure to `cfg`; on success it becomes the current config.
    fn reconf(&mut self, cfg: AcdConfig) -> Result<Reconfigured, AcdError> {
        let r = self.e.reconfigure(self.now, cfg.clone());
        if r.is_ok() {
            self.cfg = cfg;
        }
        self.drain();
        self.consistent();
        r
    }

    /// Reconfigure, which must be refused and change nothing at all.
    fn refused(&mut self, cfg: AcdConfig) -> AcdError {
        self.drain();
        let before = self.e.stats(self.now);
        let views = self.views();
        let timeout = self.e.poll_timeout();
        let err = self
            .e
            .reconfigure(self.now, cfg)
            .expect_err("reconfiguration should be refused");
        assert!(self.e.poll_output().is_none(), "a refusal produced output");
        assert_eq!(
            self.e.stats(self.now),
            before,
            "a refusal changed the stats"
        );
        assert_eq!(self.views(), views, "a refusal changed an agent");
        assert_eq!(self.e.poll_timeout(), timeout);
        err
    }

    fn views(&self) -> Vec<Option<AgentView>> {
        self.cfg
            .agents
            .iter()
            .map(|a| self.e.agent_view(&a.id))
            .collect()
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn login(&mut self, a: &str) {
        self.ok(Input::Login { agent: a.into() });
    }

    fn enqueue(&mut self, call: u64, group: &str) {
        let arrived = self.now;
        self.ok(Input::Enqueue {
            call: CallId(call),
            group: group.into(),
            priority: 0,
            caller: format!("caller{call}"),
            arrived,
            max_wait: None,
            on_timeout: None,
        });
    }

    fn answer(&mut self, call: u64, a: &str) {
        self.ok(Input::OfferAnswered {
            call: CallId(call),
            agent: a.into(),
        });
    }

    /// (call, agent) of every offer since the last take.
    fn offers(&mut self) -> Vec<(u64, String)> {
        self.take()
            .into_iter()
            .filter_map(|o| match o {
                Output::Offer { call, agent, .. } | Output::OfferCallback { call, agent, .. } => {
                    Some((call.0, agent))
                }
                _ => None,
            })
            .collect()
    }

    fn state(&self, a: &str) -> AgentState {
        self.e.agent_state(a).expect("agent").0
    }

    /// Per live group, members by state equal the configured members'
    /// states, and the stats name exactly the configured groups and agents.
    fn consistent(&self) {
        let st = self.e.stats(self.now);
        let groups: Vec<&str> = st.groups.iter().map(|g| g.group.as_str()).collect();
        let want: Vec<&str> = self.cfg.groups.iter().map(|g| g.id.as_str()).collect();
        let mut sorted = want.clone();
        sorted.sort_unstable();
        let mut got = groups.clone();
        got.sort_unstable();
        assert_eq!(got, sorted, "groups in the stats");
        let mut agents: Vec<&str> = st.agents.iter().map(|a| a.agent.as_str()).collect();
        agents.sort_unstable();
        let mut want_agents: Vec<&str> = self.cfg.agents.iter().map(|a| a.id.as_str()).collect();
        want_agents.sort_unstable();
        assert_eq!(agents, want_agents, "agents in the stats");
        for g in &st.groups {
            let members: Vec<&AgentConfig> = self
                .cfg
                .agents
                .iter()
                .filter(|a| a.skills.iter().any(|(gid, _)| *gid == g.group))
                .collect();
            let total: usize = g.agents_by_state.iter().map(|(_, n)| n).sum();
            assert_eq!(total, members.len(), "members of {}", g.group);
            for (state, n) in &g.agents_by_state {
                let want = members
                    .iter()
                    .filter(|a| self.state(&a.id) == *state)
                    .count();
                assert_eq!(*n, want, "{} agents {state} in {}", n, g.group);
            }
        }
    }
}

fn off(call: u64, a: &str) -> (u64, String) {
    (call, a.to_string())
}

fn base() -> AcdConfig {
    config(
        vec![
            group("g", Strategy::LongestIdle),
            group("h", Strategy::LongestIdle),
        ],
        vec![
            agent("a1", &[("g", 5)]),
            agent("a2", &[("g", 5), ("h", 3)]),
            agent("a3", &[("h", 4)]),
        ],
    )
}

#[test]
fn added_agent_answers_a_call_of_an_added_group() {
    let mut h = H::new(base());
    let mut cfg = base();
    cfg.groups.push(group("new", Strategy::RoundRobin));
    let done = h.reconf(cfg.clone()).expect("add group");
    assert_eq!(
        done,
        Reconfigured {
            groups_added: vec!["new".into()],
            ..Reconfigured::default()
        }
    );
    h.enqueue(1, "new");
    assert_eq!(h.e.queue_snapshot("new").expect("group").len(), 1);
    cfg.agents.push(agent("n1", &[("new", 7)]));
    let done = h.reconf(cfg).expect("add agent");
    assert_eq!(done.agents_added, vec!["n1".to_string()]);
    assert!(done.groups_added.is_empty() && done.agents_changed.is_empty());
    assert_eq!(h.state("n1"), AgentState::LoggedOut);
    assert_eq!(h.e.agent_view("n1").expect("agent").since, h.now);
    h.take();
    h.at(s(3));
    h.login("n1");
    assert_eq!(h.offers(), vec![off(1, "n1")]);
    h.answer(1, "n1");
    assert_eq!(h.state("n1"), AgentState::Talking);
    let st = h.e.stats(h.now);
    let g = st.groups.iter().find(|g| g.group == "new").expect("new");
    assert_eq!(g.counters.answered, 1);
}

#[test]
fn new_skill_on_an_idle_agent_takes_a_waiting_call_at_once() {
    let mut h = H::new(base());
    h.login("a1");
    h.at(s(5));
    h.enqueue(7, "h"); // h's agents are logged out: it waits
    h.take();
    let mut cfg = base();
    cfg.agents[0].skills.push(("h".into(), 9));
    let done = h.reconf(cfg).expect("reconfigure");
    assert_eq!(done.agents_changed, vec!["a1".to_string()]);
    assert_eq!(h.offers(), vec![off(7, "a1")]);
    // Idle-since survived the change: a1 kept their place as idle since 0.
    assert_eq!(h.e.agent_view("a1").expect("a1").idle_since, t(0));
    let st = h.e.stats(h.now);
    let hs = st.groups.iter().find(|g| g.group == "h").expect("h");
    assert!(hs.agents_by_state.contains(&(AgentState::Ringing, 1)));
}

#[test]
fn skill_change_keeps_state_counters_and_idle_order() {
    let mut h = H::new(base());
    h.login("a1");
    h.at(s(2));
    h.login("a2");
    h.at(s(4));
    h.enqueue(1, "g");
    assert_eq!(h.offers(), vec![off(1, "a1")]);
    h.answer(1, "a1");
    h.at(s(10));
    // Reorder the agents and change a2's level: nothing live is lost.
    let mut cfg = base();
    cfg.agents.reverse();
    cfg.agents[1].skills = vec![("g".into(), 9)];
    cfg.agents[2].name = "Renamed".into();
    let done = h.reconf(cfg).expect("reconfigure");
    assert_eq!(
        done.agents_changed,
        vec!["a2".to_string(), "a1".to_string()]
    );
    assert_eq!(h.state("a1"), AgentState::Talking);
    let a1 = h.e.agent_view("a1").expect("a1");
    assert_eq!((a1.call, a1.since), (Some(CallId(1)), t(4)));
    let st = h.e.stats(h.now);
    let a1s = st.agents.iter().find(|a| a.agent == "a1").expect("a1");
    assert_eq!(a1s.counters.answered, 1);
    h.ok(Input::CallEnded { call: CallId(1) });
    assert_eq!(h.state("a1"), AgentState::AfterCallWork);
    h.take();
    h.enqueue(2, "g");
    assert_eq!(h.offers(), vec![off(2, "a2")]);
}

#[test]
fn deleted_agent_is_gone() {
    let mut h = H::new(base());
    h.login("a3");
    h.at(s(9));
    let mut cfg = base();
    cfg.agents.remove(1);
    let done = h.reconf(cfg).expect("delete a2");
    assert_eq!(done.agents_removed, vec!["a2".to_string()]);
    assert!(h.e.agent_state("a2").is_none());
    assert!(h.e.agent_view("a2").is_none());
    assert!(h.e.stats(h.now).agents.iter().all(|a| a.agent != "a2"));
    assert_eq!(
        h.try_in(Input::Login { agent: "a2".into() }),
        Err(AcdError::UnknownAgent("a2".into()))
    );
    assert_eq!(
        h.e.remember_service("c", "a2", h.now),
        Err(AcdError::UnknownAgent("a2".into()))
    );
    // Calls route to the agents that are left.
    h.take();
    h.enqueue(3, "h");
    assert_eq!(h.offers(), vec![off(3, "a3")]);
}

#[test]
fn refusals_change_nothing() {
    let mut h = H::new(base());
    h.login("a1");
    h.login("a2");
    h.enqueue(1, "g"); // rings a1
    h.take();
    h.enqueue(2, "g"); // rings a2
    h.enqueue(3, "g"); // waits
    h.take();

    let mut cfg = base();
    cfg.agents.remove(0);
    let err = h.refused(cfg);
    assert_eq!(
        err,
        AcdError::InUse("agent \"a1\" is signed in (ringing): sign them out first".into())
    );
    assert_eq!(
        err.to_string(),
        "agent \"a1\" is signed in (ringing): sign them out first"
    );

    // Group g holds calls; its agents would lose their only skill too.
    let mut cfg = base();
    cfg.groups.remove(0);
    cfg.agents[0].skills.clear();
    cfg.agents[1].skills.retain(|(g, _)| g != "g");
    let err = h.refused(cfg);
    assert!(
        err.to_string()
            .starts_with("group \"g\" still holds call 1 (ringing)"),
        "{err}"
    );

    // Moving a signed-in agent, or a group with calls, to another tenant.
    let mut cfg = base();
    cfg.agents[0].tenant = "u".into();
    cfg.agents[0].skills.clear();
    let err = h.refused(cfg);
    assert!(err
        .to_string()
        .contains("before moving them to tenant \"u\""));
    let mut cfg = base();
    cfg.groups[0].tenant = "u".into();
    cfg.agents[0].skills.clear();
    cfg.agents[1].skills.retain(|(g, _)| g != "g");
    let err = h.refused(cfg);
    assert_eq!(
        err.to_string(),
        "group \"g\" holds call 1 (ringing): cannot move it to tenant \"u\" while it holds calls"
    );

    // A bad configuration is a config error, checked first.
    let mut cfg = base();
    cfg.agents.remove(0);
    cfg.agents[0].skills.push(("nowhere".into(), 3));
    let err = h.refused(cfg);
    assert!(matches!(err, AcdError::Config(_)), "{err}");
    let mut cfg = base();
    cfg.groups[1].max_queue = 0;
    assert!(matches!(h.refused(cfg), AcdError::Config(_)));

    // The engine still works as before.
    h.answer(1, "a1");
    h.answer(2, "a2");
    h.ok(Input::CallEnded { call: CallId(1) });
    // a1 is in after-call work for g: g still cannot go, even once empty.
    h.ok(Input::CallerHungUp { call: CallId(3) });
    h.ok(Input::CallEnded { call: CallId(2) });
    assert_eq!(h.e.active_calls(), 0);
    let mut cfg = base();
    cfg.groups.remove(0);
    cfg.agents[0].skills.clear();
    cfg.agents[1].skills.retain(|(g, _)| g != "g");
    let err = h.refused(cfg.clone());
    assert!(
        err.to_string().contains("in after-call work for it"),
        "{err}"
    );
    h.ok(Input::CompleteAcw { agent: "a1".into() });
    h.ok(Input::CompleteAcw { agent: "a2".into() });
    let done = h.reconf(cfg).expect("g is free now");
    assert_eq!(done.groups_removed, vec!["g".to_string()]);
    assert_eq!(
        done.agents_changed,
        vec!["a1".to_string(), "a2".to_string()]
    );
    assert_eq!(
        h.try_in(Input::Enqueue {
            call: CallId(9),
            group: "g".into(),
            priority: 0,
            caller: "x".into(),
            arrived: h.now,
            max_wait: None,
            on_timeout: None,
        }),
        Err(AcdError::UnknownGroup("g".into()))
    );
    assert!(h.e.queue_snapshot("g").is_err());
}

#[test]
fn ringing_agent_losing_the_skill_keeps_the_offer() {
    let mut h = H::new(base());
    h.login("a1");
    h.enqueue(1, "g");
    assert_eq!(h.offers(), vec![off(1, "a1")]);
    let mut cfg = base();
    cfg.agents[0].skills = vec![("h".into(), 2)];
    h.reconf(cfg).expect("reconfigure");
    assert!(h.offers().is_empty());
    assert_eq!(h.state("a1"), AgentState::Ringing);
    let view = h.e.call_view(CallId(1)).expect("call");
    assert_eq!(
        view.phase,
        CallPhase::Ringing {
            agents: vec!["a1".into()],
            kind: OfferKind::Queue
        }
    );
    h.answer(1, "a1");
    assert_eq!(h.state("a1"), AgentState::Talking);
    h.ok(Input::CallEnded { call: CallId(1) });
    h.ok(Input::CompleteAcw { agent: "a1".into() });
    // From now on a1 takes h's calls, not g's.
    h.take();
    h.enqueue(2, "g");
    h.enqueue(3, "h");
    assert_eq!(h.offers(), vec![off(3, "a1")]);
}

#[test]
fn ring_timeout_after_losing_the_skill_requeues_in_the_old_group() {
    let mut h = H::new(base());
    h.login("a1");
    h.enqueue(1, "g");
    h.take();
    let mut cfg = base();
    cfg.agents[0].skills = vec![("h".into(), 2)];
    cfg.groups[0].ring_timeout = s(99); // armed timers stay
    h.reconf(cfg).expect("reconfigure");
    h.at(s(15));
    assert_eq!(h.state("a1"), AgentState::NotReady);
    assert_eq!(h.e.queue_snapshot("g").expect("g").len(), 1);
    h.login("a2");
    let offers = h.offers();
    assert_eq!(offers, vec![off(1, "a2")]);
    assert_eq!(h.e.poll_timeout(), Some(t(15 + 99)), "new ring timeout");
}

#[test]
fn re_adding_a_deleted_id_makes_a_fresh_agent() {
    let mut cfg = base();
    cfg.previous_service = Some(PreviousServiceConfig {
        within: s(3600),
        ring_for: s(5),
    });
    let mut h = H::new(cfg.clone());
    h.login("a1");
    h.enqueue(1, "g");
    h.answer(1, "a1");
    h.ok(Input::CallEnded { call: CallId(1) });
    h.ok(Input::CompleteAcw { agent: "a1".into() });
    h.ok(Input::Logout { agent: "a1".into() });
    let mut without = cfg.clone();
    without.agents.remove(0);
    h.reconf(without).expect("delete a1");
    let mut again = cfg.clone();
    again.agents[0].skills = vec![("h".into(), 1)];
    again.agents[0].device = "new-phone".into();
    let done = h.reconf(again.clone()).expect("re-add a1");
    assert_eq!(done.agents_added, vec!["a1".to_string()]);
    let st = h.e.stats(h.now);
    let a1 = st.agents.iter().find(|a| a.agent == "a1").expect("a1");
    assert_eq!(a1.state, AgentState::LoggedOut);
    assert_eq!(a1.counters.answered, 0, "fresh counters");
    // The old agent's previous-service entry is gone: caller1 calling h
    // again rings the new a1 as an ordinary queue offer.
    h.at(s(30));
    h.login("a1");
    h.take();
    h.ok(Input::Enqueue {
        call: CallId(2),
        group: "h".into(),
        priority: 0,
        caller: "caller1".into(),
        arrived: h.now,
        max_wait: None,
        on_timeout: None,
    });
    let offers: Vec<Output> = h.take();
    assert!(
        offers.iter().any(|o| matches!(
            o,
            Output::Offer { call: CallId(2), agent, device, kind: OfferKind::Queue }
                if agent == "a1" && device == "new-phone"
        )),
        "{offers:?}"
    );
}

#[test]
fn overflow_can_target_a_new_group() {
    let mut cfg = base();
    cfg.groups[0].overflow_after = Some((s(30), "h".into()));
    let mut h = H::new(cfg.clone());
    h.enqueue(1, "g");
    h.at(s(10));
    cfg.groups.push(group("x", Strategy::LongestIdle));
    cfg.groups[0].overflow_after = Some((s(30), "x".into()));
    cfg.groups[0].on_max_wait = NextStep::Group("x".into());
    cfg.agents.push(agent("x1", &[("x", 5)]));
    let done = h.reconf(cfg).expect("retarget");
    assert_eq!(done.groups_changed, vec!["g".to_string()]);
    assert_eq!(done.groups_added, vec!["x".to_string()]);
    h.login("x1");
    h.take();
    h.at(s(30));
    let out = h.take();
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Overflowed { call: CallId(1), to, .. } if to == "x"
        )),
        "{out:?}"
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Offer { call: CallId(1), agent, .. } if agent == "x1"
    )));
}

#[test]
fn policies_are_replaced_and_stale_reasons_kept() {
    let mut h = H::new(base());
    h.login("a1");
    h.ok(Input::NotReady {
        agent: "a1".into(),
        reason: "training".into(),
    });
    let mut cfg = base();
    cfg.not_ready_reasons = vec!["lunch".into()];
    cfg.callback.max_attempts = 5;
    let done = h.reconf(cfg).expect("reconfigure");
    assert_eq!(done, Reconfigured::default());
    let v = h.e.agent_view("a1").expect("a1");
    assert_eq!(
        (v.state, v.reason.as_deref()),
        (AgentState::NotReady, Some("training"))
    );
    assert!(matches!(
        h.try_in(Input::NotReady {
            agent: "a1".into(),
            reason: "break".into()
        }),
        Err(AcdError::UnknownReason { .. })
    ));
    h.ok(Input::NotReady {
        agent: "a1".into(),
        reason: "lunch".into(),
    });
    h.ok(Input::Ready { agent: "a1".into() });
}

#[test]
fn tenant_moves_when_nothing_is_live() {
    let mut h = H::new(base());
    h.login("a3");
    let mut cfg = base();
    cfg.groups[1].tenant = "u".into();
    cfg.agents[2].tenant = "u".into();
    cfg.agents[1].skills.retain(|(g, _)| g != "h");
    // a3 is signed in: refused.
    let err = h.refused(cfg.clone());
    assert!(err.to_string().contains("agent \"a3\""), "{err}");
    h.ok(Input::Logout { agent: "a3".into() });
    let done = h.reconf(cfg).expect("move");
    assert_eq!(done.groups_changed, vec!["h".to_string()]);
    assert_eq!(
        done.agents_changed,
        vec!["a2".to_string(), "a3".to_string()]
    );
    h.login("a3");
    h.take();
    h.enqueue(1, "h");
    assert_eq!(h.offers(), vec![off(1, "a3")]);
}
