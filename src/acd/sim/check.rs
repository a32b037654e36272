//! The invariants checked after every step of a run: the shadow against
//! the engine's views, and the answer-rate counters recounted from the raw
//! queue-event log.

use super::*;

impl Sim {
    // ----- whole-state invariants -------------------------------------------

    pub(super) fn check_all(&self) {
        let now = self.now;
        let mut active = 0;
        let mut ringing: HashMap<&str, CallId> = HashMap::new();
        for (id, c) in &self.calls {
            let view = self.e.call_view(*id);
            if c.st == St::Done {
                assert!(view.is_none(), "{id} finished but still held");
                continue;
            }
            active += 1;
            let v = view.unwrap_or_else(|| panic!("{id} lost ({:?})", c.st));
            assert_eq!(v.group, c.group, "{id}");
            assert_eq!(v.callback, c.callback, "{id}");
            assert_eq!(v.arrived, c.arrived, "{id}");
            let g = &self.groups[&c.group];
            match (&c.st, &v.phase) {
                (St::Waiting, CallPhase::Waiting) => {
                    if !c.callback {
                        if let Some((after, _)) = &g.overflow_after {
                            assert!(now < c.entered + *after, "{id} overflow overdue");
                        }
                        assert!(now < c.entered + g.max_wait, "{id} max wait overdue");
                    }
                }
                (
                    St::Offered {
                        agents,
                        kind,
                        at,
                        ring,
                    },
                    CallPhase::Ringing {
                        agents: va,
                        kind: vk,
                    },
                ) => {
                    assert_eq!(agents, va, "{id}");
                    assert_eq!(kind, vk);
                    assert!(now < *at + *ring, "{id} ring overdue");
                    if *kind != OfferKind::RingAll {
                        assert_eq!(agents.len(), 1, "{id} rings several agents");
                    }
                    for a in agents {
                        assert!(ringing.insert(a, *id).is_none(), "{a} rings twice");
                        assert_eq!(self.agents[a].state, AgentState::Ringing);
                        assert_eq!(self.agents[a].call, Some(*id));
                    }
                }
                (St::Talking(a), CallPhase::Talking { agent }) => {
                    assert_eq!(a, agent);
                    assert!(matches!(
                        self.agents[a].state,
                        AgentState::Talking | AgentState::OnHold
                    ));
                    assert_eq!(self.agents[a].call, Some(*id));
                }
                (St::Dialing(a), CallPhase::Dialing { agent }) => {
                    assert_eq!(a, agent);
                    assert_eq!(self.agents[a].state, AgentState::Outbound);
                }
                (St::Retry(at), CallPhase::RetryWait { at: va }) => {
                    assert_eq!(at, va);
                    assert!(now < *at, "{id} retry overdue");
                }
                (st, ph) => panic!("{id}: shadow {st:?} vs engine {ph:?}"),
            }
        }
        assert_eq!(self.e.active_calls(), active, "phantom calls in the engine");
        // Agents agree, and nobody holds two calls.
        let mut holders: HashMap<CallId, &str> = HashMap::new();
        for (name, a) in &self.agents {
            let v = self.e.agent_view(name).expect("agent");
            assert_eq!(v.state, a.state, "{name}");
            assert_eq!(v.call, a.call, "{name}");
            if a.state == AgentState::Idle {
                assert_eq!(v.idle_since, a.idle_since, "{name} idle since");
            }
            if a.state == AgentState::AfterCallWork {
                assert_eq!(v.acw_until, a.acw_until, "{name} acw");
                assert!(a.acw_until.is_some_and(|u| now < u), "{name} ACW overdue");
            }
            if matches!(
                a.state,
                AgentState::Ringing | AgentState::Talking | AgentState::OnHold
            ) {
                let c = a.call.expect("busy agent has a call");
                if let Some(other) = holders.insert(c, name) {
                    let ring_all = matches!(
                        self.calls[&c].st,
                        St::Offered {
                            kind: OfferKind::RingAll,
                            ..
                        }
                    );
                    assert!(ring_all, "{c} held by {other} and {name}");
                }
            }
        }
        // Queue order and work conservation per group.
        for g in self.groups.keys() {
            let want = self.waiting_in(g);
            let snap = self.e.queue_snapshot(g).expect("group");
            let got: Vec<CallId> = snap.iter().map(|q| q.call).collect();
            assert_eq!(got, want, "queue order of {g}");
            for q in &snap {
                let c = &self.calls[&q.call];
                let p = eff(
                    c.base,
                    now.saturating_duration_since(c.arrived),
                    &self.groups[g].priority_boost,
                );
                assert_eq!(q.priority, p, "{} priority", q.call);
            }
            if !want.is_empty() {
                assert!(
                    self.idle_members(g).is_empty(),
                    "{g} has waiting calls and idle agents"
                );
            }
        }
        let sl = &self.recount;
        let stats = self.e.stats(now);
        let mut total = [0u64; 6];
        for gs in &stats.groups {
            let row = sl.get(&gs.group).copied().unwrap_or_default();
            let c = &gs.counters;
            let got = [
                c.sl20.asked,
                c.sl20.answered_within,
                c.sl20.short_abandons,
                c.sl30.asked,
                c.sl30.answered_within,
                c.sl30.short_abandons,
            ];
            assert_eq!(got, row, "service level of {}", gs.group);
            for i in 0..6 {
                total[i] += row[i];
            }
        }
        assert_eq!(
            [
                stats.sl20.asked,
                stats.sl20.answered_within,
                stats.sl20.short_abandons,
                stats.sl30.asked,
                stats.sl30.answered_within,
                stats.sl30.short_abandons
            ],
            total
        );
        assert_eq!(self.e.missed_calls().len(), self.missed, "missed-call list");
        // Members by state, and exactly the live agents.
        let mut live: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        live.sort_unstable();
        let mut named: Vec<&str> = stats.agents.iter().map(|a| a.agent.as_str()).collect();
        named.sort_unstable();
        assert_eq!(named, live, "agents in the stats");
        assert_eq!(stats.groups.len(), self.groups.len(), "groups in the stats");
        for gs in &stats.groups {
            let members = self.members.get(&gs.group).map_or(&[][..], Vec::as_slice);
            let total: usize = gs.agents_by_state.iter().map(|(_, n)| n).sum();
            assert_eq!(total, members.len(), "members of {}", gs.group);
            for (state, n) in &gs.agents_by_state {
                let want = members
                    .iter()
                    .filter(|(a, _)| self.agents[a].state == *state)
                    .count();
                assert_eq!(*n, want, "{} agents {state:?}", gs.group);
            }
        }
        for gone in &self.gone {
            assert!(
                self.e.agent_view(gone).is_none(),
                "deleted {gone} still known"
            );
        }
    }

    /// Count one raw queue event the way REQUIREMENTS §8 defines the rate.
    pub(super) fn recount_event(&mut self, ev: &QueueEvent) {
        let wait = ev.at.saturating_duration_since(ev.arrived);
        let how = match &ev.kind {
            QueueEventKind::Answered { .. } => 0,
            QueueEventKind::Abandoned { .. }
            | QueueEventKind::CallbackRequested
            | QueueEventKind::AbandonedInIvr => 1,
            QueueEventKind::TimedOut { .. } => 2,
            _ => return,
        };
        let row = self.recount.entry(ev.group.clone()).or_default();
        for (i, limit) in [(0, s(20)), (3, s(30))] {
            row[i] += 1;
            if wait <= limit && how == 0 {
                row[i + 1] += 1;
            }
            if wait <= limit && how == 1 {
                row[i + 2] += 1;
            }
        }
    }
}
