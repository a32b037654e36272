//! Reconfiguration of a running ACD (admin API, config reload): agents and
//! skill groups are added, changed and deleted while calls are up, without
//! losing live state.
//!
//! The engine names agents and groups by index everywhere (calls, offers,
//! `Timer::Acw`, `last_served`, group membership, `acw_group`), so indices
//! never change: new entries are appended, deleted ones are *retired* (out
//! of the id maps and every group, skipped by everything that reports or
//! dispatches). Re-adding a deleted id makes a fresh entry.
//!
//! A reconfiguration is atomic: the configuration is checked exactly as
//! [`Engine::new`] checks it ([`validate`]), then against the live state
//! ([`Engine::check_live`]); only then is anything changed ([`Engine::install`],
//! which cannot fail), and waiting calls are dispatched to agents that may
//! have gained a skill.

use std::collections::HashMap;

use super::{validate, AgentRec, Call, Engine, Group, Plan};
use crate::acd::error::AcdError;
use crate::acd::model::{AcdConfig, AgentState, Reconfigured};
use crate::time::Time;

impl Engine {
    /// Apply `cfg` at `now`, keeping every live call, agent state, timer and
    /// counter.
    ///
    /// - Agents: new ones start logged out at `now`; kept ones keep their
    ///   state, call, after-call work, counters and idle-since time, and
    ///   their name, device and skills are replaced (group membership
    ///   follows; an agent ringing for a group they lose keeps that offer).
    ///   An agent's tenant may only change while logged out; an agent may
    ///   only be deleted while logged out.
    /// - Groups: new ones start empty; kept ones take the new settings for
    ///   new offers, entries and timers (armed timers stay). A group may not
    ///   be deleted, or change tenant, while a call (waiting, ringing,
    ///   talking, callback) belongs to it; nor be deleted while an agent is
    ///   in after-call work for it.
    /// - Not-ready reasons, previous-service and callback policy are
    ///   replaced; an agent not ready with a reason no longer listed stays so.
    ///
    /// On any error ([`AcdError::Config`], [`AcdError::InUse`]) nothing
    /// changes. Afterwards idle agents are handed waiting calls as after any
    /// input; the offers come out of [`Engine::poll_output`].
    pub fn reconfigure(&mut self, now: Time, cfg: AcdConfig) -> Result<Reconfigured, AcdError> {
        let plan = validate(&cfg)?;
        self.check_live(&cfg, &plan)?;
        let done = self.install(now, cfg, &plan);
        self.dispatch(now);
        Ok(done)
    }

    /// Refuse a configuration that would delete, or move to another tenant,
    /// something live work depends on. Changes nothing.
    fn check_live(&self, cfg: &AcdConfig, plan: &Plan) -> Result<(), AcdError> {
        for a in self.agents.iter().filter(|a| !a.retired) {
            let id = &a.cfg.id;
            match plan.agent_ix.get(id).and_then(|&ci| cfg.agents.get(ci)) {
                None => {
                    if a.state != AgentState::LoggedOut {
                        return Err(AcdError::InUse(format!(
                            "agent {id:?} is signed in ({}): sign them out first",
                            a.state
                        )));
                    }
                    if let Some(call) = a.call {
                        return Err(AcdError::InUse(format!(
                            "agent {id:?} still holds {call}: wait until it ends"
                        )));
                    }
                }
                Some(new) if new.tenant != a.cfg.tenant && a.state != AgentState::LoggedOut => {
                    return Err(AcdError::InUse(format!(
                        "agent {id:?} is signed in ({}): sign them out before moving them \
                         to tenant {:?}",
                        a.state, new.tenant
                    )));
                }
                Some(_) => {}
            }
        }
        // The lowest-numbered call of each group, so the error is stable.
        let mut held: HashMap<usize, &Call> = HashMap::new();
        for c in self.calls.values() {
            let slot = held.entry(c.group).or_insert(c);
            if c.id < slot.id {
                *slot = c;
            }
        }
        for (gi, g) in self.groups.iter().enumerate().filter(|(_, g)| !g.retired) {
            let id = &g.cfg.id;
            match plan.group_ix.get(id).and_then(|&ci| cfg.groups.get(ci)) {
                None => {
                    if let Some(c) = held.get(&gi) {
                        return Err(AcdError::InUse(format!(
                            "group {id:?} still holds {} ({}): it can be deleted once \
                             no call belongs to it",
                            c.id,
                            c.state_name()
                        )));
                    }
                    let in_acw = self
                        .agents
                        .iter()
                        .find(|a| !a.retired && a.acw_group == Some(gi));
                    if let Some(a) = in_acw {
                        return Err(AcdError::InUse(format!(
                            "group {id:?}: agent {:?} is in after-call work for it",
                            a.cfg.id
                        )));
                    }
                }
                Some(new) if new.tenant != g.cfg.tenant => {
                    if let Some(c) = held.get(&gi) {
                        return Err(AcdError::InUse(format!(
                            "group {id:?} holds {} ({}): cannot move it to tenant {:?} \
                             while it holds calls",
                            c.id,
                            c.state_name(),
                            new.tenant
                        )));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Apply a configuration already checked by [`validate`] and
    /// [`Engine::check_live`]. Cannot fail; does not dispatch.
    pub(super) fn install(&mut self, now: Time, cfg: AcdConfig, plan: &Plan) -> Reconfigured {
        let AcdConfig {
            groups,
            agents,
            not_ready_reasons,
            previous_service,
            callback,
        } = cfg;
        let mut done = Reconfigured::default();

        // Groups: retire the deleted, update the kept, append the new.
        for g in self.groups.iter_mut().filter(|g| !g.retired) {
            if !plan.group_ix.contains_key(&g.cfg.id) {
                g.retired = true;
                g.overflow = None;
                g.next_group = None;
                self.group_ix.remove(&g.cfg.id);
                done.groups_removed.push(g.cfg.id.clone());
            }
        }
        let mut gmap: Vec<usize> = Vec::with_capacity(groups.len());
        for g in groups {
            let kept = self
                .group_ix
                .get(&g.id)
                .copied()
                .filter(|&gi| self.groups.get(gi).is_some_and(|old| !old.retired));
            match kept.and_then(|gi| self.groups.get_mut(gi).map(|old| (gi, old))) {
                Some((gi, old)) => {
                    if old.cfg != g {
                        done.groups_changed.push(g.id.clone());
                    }
                    old.cfg = g;
                    gmap.push(gi);
                }
                None => {
                    let gi = self.groups.len();
                    done.groups_added.push(g.id.clone());
                    self.group_ix.insert(g.id.clone(), gi);
                    self.groups.push(Group::fresh(g));
                    gmap.push(gi);
                }
            }
        }
        let to_engine = |ci: usize| gmap.get(ci).copied();
        for (ci, (overflow, next_group)) in plan.links.iter().enumerate() {
            let Some(g) = to_engine(ci).and_then(|gi| self.groups.get_mut(gi)) else {
                continue;
            };
            g.overflow = overflow.and_then(|(after, t)| to_engine(t).map(|ti| (after, ti)));
            g.next_group = next_group.and_then(to_engine);
        }

        // Agents: retire the deleted (all logged out), update the kept,
        // append the new.
        for a in self.agents.iter_mut().filter(|a| !a.retired) {
            if !plan.agent_ix.contains_key(&a.cfg.id) {
                a.retired = true;
                a.skills.clear();
                self.agent_ix.remove(&a.cfg.id);
                done.agents_removed.push(a.cfg.id.clone());
            }
        }
        let mut amap: Vec<usize> = Vec::with_capacity(agents.len());
        for a in agents {
            let kept = self
                .agent_ix
                .get(&a.id)
                .copied()
                .filter(|&ai| self.agents.get(ai).is_some_and(|old| !old.retired));
            match kept.and_then(|ai| self.agents.get_mut(ai).map(|old| (ai, old))) {
                Some((ai, old)) => {
                    if old.cfg != a {
                        done.agents_changed.push(a.id.clone());
                    }
                    old.cfg = a;
                    amap.push(ai);
                }
                None => {
                    let ai = self.agents.len();
                    done.agents_added.push(a.id.clone());
                    self.agent_ix.insert(a.id.clone(), ai);
                    self.agents.push(AgentRec::fresh(a, now));
                    amap.push(ai);
                }
            }
        }

        // Membership, rebuilt from the skills with every agent's current
        // state: by_state and the idle sets stay exact by construction.
        for g in &mut self.groups {
            g.members.clear();
            g.levels.clear();
            g.idle.clear();
            g.by_state = [0; 8];
        }
        for (ci, skills) in plan.skills.iter().enumerate() {
            let Some(ai) = amap.get(ci).copied() else {
                continue;
            };
            let Some(a) = self.agents.get_mut(ai) else {
                continue;
            };
            a.skills.clear();
            for &(gci, level) in skills {
                let Some(gi) = to_engine(gci) else {
                    continue;
                };
                let Some(g) = self.groups.get_mut(gi) else {
                    continue;
                };
                g.members.push(ai);
                g.levels.insert(ai, level);
                g.by_state[a.state.index()] += 1;
                if a.state == AgentState::Idle {
                    g.idle.insert((a.idle_since, ai));
                }
                a.skills.push(gi);
            }
        }
        for g in &mut self.groups {
            g.rr_next = match g.members.len() {
                0 => 0,
                n => g.rr_next % n,
            };
        }

        // Policies; previous service never names a deleted agent.
        self.reasons = not_ready_reasons.into_iter().collect();
        self.previous_service = previous_service;
        self.callback = callback;
        let agents = &self.agents;
        self.last_served
            .retain(|_, (ai, _)| agents.get(*ai).is_some_and(|a| !a.retired));
        done
    }
}
