//! Reconfigurations thrown into a run: agents and groups added (ids
//! re-used after deletion), deleted and changed, with the refusals the
//! shadow predicts.

use super::*;

// ----- reconfiguration ---------------------------------------------------------

/// Ids the reconfiguring runs draw new agents and groups from (so deleted
/// ids come back).
pub(super) const AGENT_POOL: [&str; 14] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "y0", "y1", "y2", "y3", "y4",
];
pub(super) const GROUP_POOL: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
pub(super) const STRATEGIES: [Strategy; 5] = [
    Strategy::LongestIdle,
    Strategy::FewestCalls,
    Strategy::SkillWeighted,
    Strategy::RoundRobin,
    Strategy::RingAll,
];

impl Sim {
    /// Skills over the live groups chosen by the bits of `bits`.
    pub(super) fn random_skills(&self, bits: u16, level: u8) -> Vec<(String, u8)> {
        self.group_names
            .iter()
            .enumerate()
            .filter(|(i, _)| bits >> (i % 16) & 1 == 1)
            .map(|(i, g)| (g.clone(), 1 + ((usize::from(level) + i) % 10) as u8))
            .collect()
    }

    /// Another live group than `not`, if there is one.
    pub(super) fn other_group(&self, n: u16, not: &str) -> Option<String> {
        let v: Vec<&String> = self.group_names.iter().filter(|g| *g != not).collect();
        (!v.is_empty()).then(|| v[n as usize % v.len()].clone())
    }

    /// A new configuration: the current one with one random change. The
    /// second value says whether the engine must refuse it.
    pub(super) fn mutate(&self, (m, a, b, d): (u8, u16, u16, u8)) -> (AcdConfig, bool) {
        let mut cfg = self.cfg.clone();
        let mut refuse = false;
        let live_call_in = |g: &str| {
            self.calls
                .values()
                .any(|c| c.st != St::Done && c.group == g)
        };
        match m % 9 {
            0 | 1 => {
                // New skills for an agent, whatever their state.
                let i = a as usize % cfg.agents.len();
                cfg.agents[i].skills = self.random_skills(b, d);
            }
            2 => {
                // Add an agent (possibly a deleted id).
                let free: Vec<&&str> = AGENT_POOL
                    .iter()
                    .filter(|id| !self.agents.contains_key(**id))
                    .collect();
                if let Some(id) = (!free.is_empty()).then(|| free[a as usize % free.len()]) {
                    let mut new = agent(id, &[]);
                    new.skills = self.random_skills(b | 1, d);
                    cfg.agents.insert(b as usize % (cfg.agents.len() + 1), new);
                }
            }
            3 => {
                // Delete an agent: mostly a logged-out one.
                let out: Vec<&String> = self
                    .agent_names
                    .iter()
                    .filter(|n| self.agents[*n].state == AgentState::LoggedOut)
                    .collect();
                let id = if b % 4 != 0 && !out.is_empty() {
                    out[a as usize % out.len()].clone()
                } else {
                    self.agent_names[a as usize % self.agent_names.len()].clone()
                };
                if cfg.agents.len() > 2 {
                    refuse = self.agents[&id].state != AgentState::LoggedOut;
                    cfg.agents.retain(|x| x.id != id);
                }
            }
            4 => {
                // Add a group (possibly a deleted id) and give it agents.
                let free: Vec<&&str> = GROUP_POOL
                    .iter()
                    .filter(|id| !self.groups.contains_key(**id))
                    .collect();
                if let Some(id) = (!free.is_empty()).then(|| free[a as usize % free.len()]) {
                    let mut g = group(id, STRATEGIES[b as usize % 5]);
                    g.ring_timeout = s(5 + u64::from(d % 10));
                    g.acw = s(u64::from(d % 6));
                    g.max_queue = 2 + a as usize % 5;
                    g.max_wait = s(30 + u64::from(b % 60));
                    g.on_max_wait = match d % 4 {
                        0 => NextStep::Voicemail,
                        1 => NextStep::Callback,
                        2 => NextStep::Hangup,
                        _ => self
                            .other_group(a, id)
                            .map_or(NextStep::Hangup, NextStep::Group),
                    };
                    g.overflow_after = (b % 3 == 0)
                        .then(|| self.other_group(b, id))
                        .flatten()
                        .map(|t| (s(15 + u64::from(a % 30)), t));
                    g.announce_every = (d % 5 == 0).then(|| s(10));
                    g.priority_boost = if b % 2 == 0 {
                        vec![(s(20), 4)]
                    } else {
                        Vec::new()
                    };
                    for (i, x) in cfg.agents.iter_mut().enumerate() {
                        if (a >> (i % 16)) & 1 == 1 {
                            x.skills
                                .push((id.to_string(), 1 + ((usize::from(d) + i) % 10) as u8));
                        }
                    }
                    cfg.groups.push(g);
                }
            }
            5 => {
                // Delete a group: mostly one with no call.
                let empty: Vec<&String> = self
                    .group_names
                    .iter()
                    .filter(|g| !live_call_in(g))
                    .collect();
                let id = if b % 4 != 0 && !empty.is_empty() {
                    empty[a as usize % empty.len()].clone()
                } else {
                    self.group_names[a as usize % self.group_names.len()].clone()
                };
                if cfg.groups.len() > 2 {
                    refuse = live_call_in(&id)
                        || self.agents.values().any(|x| {
                            x.state == AgentState::AfterCallWork
                                && x.acw_group.as_deref() == Some(id.as_str())
                        });
                    cfg.groups.retain(|g| g.id != id);
                    let others: Vec<String> = cfg.groups.iter().map(|g| g.id.clone()).collect();
                    for (i, g) in cfg.groups.iter_mut().enumerate() {
                        // Retarget (never add or re-time) overflow.
                        let pick = others
                            .iter()
                            .filter(|o| **o != g.id)
                            .nth((a as usize + i) % others.len().saturating_sub(1).max(1))
                            .cloned();
                        if let Some((_, t)) = &mut g.overflow_after {
                            if *t == id {
                                match pick.clone() {
                                    Some(p) => *t = p,
                                    None => g.overflow_after = None,
                                }
                            }
                        }
                        if g.on_max_wait == NextStep::Group(id.clone()) {
                            g.on_max_wait = pick.map_or(NextStep::Voicemail, NextStep::Group);
                        }
                    }
                    for x in &mut cfg.agents {
                        x.skills.retain(|(g, _)| *g != id);
                    }
                }
            }
            6 | 7 => {
                // Other settings for a kept group (not its overflow time,
                // max wait or boosts: armed timers keep theirs).
                let i = a as usize % cfg.groups.len();
                let id = cfg.groups[i].id.clone();
                let retarget = self.other_group(b, &id);
                let g = &mut cfg.groups[i];
                g.name = format!("renamed {d}");
                g.strategy = STRATEGIES[b as usize % 5];
                g.ring_timeout = s(4 + u64::from(d % 12));
                g.acw = s(u64::from(d % 8));
                g.max_queue = 1 + (a as usize / 7) % 6;
                if let (Some((_, t)), Some(r)) = (&mut g.overflow_after, retarget.clone()) {
                    *t = r;
                }
                if matches!(g.on_max_wait, NextStep::Group(_)) || d % 3 == 0 {
                    g.on_max_wait = match (d % 4, retarget) {
                        (0, _) => NextStep::Callback,
                        (1, _) => NextStep::Voicemail,
                        (_, Some(r)) => NextStep::Group(r),
                        (_, None) => NextStep::Hangup,
                    };
                }
            }
            _ => {
                // Policies: reasons, previous service, callbacks.
                cfg.not_ready_reasons = ["break", "training", "ticket", "nap"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (b >> i) & 1 == 1)
                    .map(|(_, r)| r.to_string())
                    .collect();
                cfg.previous_service = (d % 3 != 0).then(|| PreviousServiceConfig {
                    within: s(300 + u64::from(a % 600)),
                    ring_for: s(2 + u64::from(d % 5)),
                });
                cfg.callback = CallbackPolicy {
                    max_attempts: 1 + u32::from(d % 3),
                    retry_interval: s(5 + u64::from(a % 30)),
                };
            }
        }
        (cfg, refuse)
    }

    /// One random reconfiguration, checked against the shadow.
    pub(super) fn reconfigure(&mut self, op: (u8, u16, u16, u8)) {
        let (cfg, refuse) = self.mutate(op);
        let now = self.now;
        let before = self.e.stats(now);
        let views: Vec<_> = self
            .agent_names
            .iter()
            .map(|a| self.e.agent_view(a))
            .collect();
        let deadline = self.e.poll_timeout();
        match self.e.reconfigure(now, cfg.clone()) {
            Err(err) => {
                assert!(refuse, "refused {err}");
                assert!(matches!(err, AcdError::InUse(_)), "{err}");
                self.reconfigs.1 += 1;
                assert!(self.e.poll_output().is_none(), "a refusal produced output");
                assert_eq!(self.e.stats(now), before, "a refusal changed the stats");
                let after: Vec<_> = self
                    .agent_names
                    .iter()
                    .map(|a| self.e.agent_view(a))
                    .collect();
                assert_eq!(after, views, "a refusal changed an agent");
                assert_eq!(self.e.poll_timeout(), deadline);
            }
            Ok(done) => {
                assert!(!refuse, "should have been refused");
                self.reconfigs.0 += 1;
                self.install_shadow(cfg, &done);
                self.process(false);
            }
        }
        self.advance(self.now);
        self.check_all();
        self.prune();
    }

    /// Bring the shadow's configuration up to `cfg`, checking the engine's
    /// account of what changed.
    pub(super) fn install_shadow(&mut self, cfg: AcdConfig, done: &Reconfigured) {
        let old = &self.cfg;
        let old_agents: HashMap<&str, &AgentConfig> =
            old.agents.iter().map(|a| (a.id.as_str(), a)).collect();
        let old_groups: HashMap<&str, &GroupConfig> =
            old.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let mut want = Reconfigured::default();
        for a in &cfg.agents {
            match old_agents.get(a.id.as_str()) {
                None => want.agents_added.push(a.id.clone()),
                Some(o) if *o != a => want.agents_changed.push(a.id.clone()),
                Some(_) => {}
            }
        }
        let mut removed: Vec<&AgentConfig> = old
            .agents
            .iter()
            .filter(|o| !cfg.agents.iter().any(|a| a.id == o.id))
            .collect();
        removed.sort_by_key(|o| self.agents[&o.id].index);
        want.agents_removed = removed.iter().map(|o| o.id.clone()).collect();
        for g in &cfg.groups {
            match old_groups.get(g.id.as_str()) {
                None => want.groups_added.push(g.id.clone()),
                Some(o) if *o != g => want.groups_changed.push(g.id.clone()),
                Some(_) => {}
            }
        }
        let mut got = done.clone();
        want.groups_removed = old
            .groups
            .iter()
            .filter(|o| !cfg.groups.iter().any(|g| g.id == o.id))
            .map(|o| o.id.clone())
            .collect();
        want.groups_removed.sort();
        got.groups_removed.sort();
        assert_eq!(got, want, "what the reconfiguration reported");

        self.deleted.0 += want.agents_removed.len() as u64;
        self.deleted.1 += want.groups_removed.len() as u64;
        for id in &want.agents_removed {
            self.agents.remove(id);
            self.gone.push(id.clone());
        }
        for id in &want.agents_added {
            self.gone.retain(|g| g != id);
            self.agents.insert(
                id.clone(),
                SAgent {
                    index: self.agents_made,
                    state: AgentState::LoggedOut,
                    call: None,
                    idle_since: self.now,
                    acw_until: None,
                    answered: 0,
                    restore: false,
                    acw_group: None,
                },
            );
            self.agents_made += 1;
        }
        for id in &want.groups_removed {
            self.recount.remove(id);
        }
        self.members.clear();
        self.skills.clear();
        for a in &cfg.agents {
            for (g, l) in &a.skills {
                self.members
                    .entry(g.clone())
                    .or_default()
                    .push((a.id.clone(), *l));
            }
            self.skills
                .insert(a.id.clone(), a.skills.iter().map(|x| x.0.clone()).collect());
        }
        self.groups = cfg
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.clone()))
            .collect();
        self.agent_names = cfg.agents.iter().map(|a| a.id.clone()).collect();
        self.group_names = cfg.groups.iter().map(|g| g.id.clone()).collect();
        self.cfg = cfg;
    }
}

/// One operation of a reconfiguring run: mostly traffic, sometimes a
/// reconfiguration.
pub(super) fn step_or_reconfigure(sim: &mut Sim, pick: u8, op: (u8, u16, u16, u8)) {
    if pick.is_multiple_of(12) {
        sim.reconfigure(op);
    } else {
        sim.step(op);
    }
}
