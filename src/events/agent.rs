//! `agent.state` events (issue 7 §1; REQUIREMENTS.md §7: the wall-board's
//! agent states). Agents have no call, so each agent has its own `seq`
//! (1, 2, 3 … without gaps) and the envelope's `call_id` is `null`; the call
//! the agent is on travels in `data.call_id`. The running hotline takes the
//! numbers from the ACD's shell ([`AgentEvents::numbered`]), which keeps
//! them with the agent's state across restarts (issue 12 item 3): `seq`
//! goes on after a restart instead of starting at 1 again.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::EventError;
use super::id::IdSource;
use super::model::{AgentStateChanged, AgentStateName, Event, EventData};
use super::time::Timestamp;

/// One numbered agent state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    /// The change's number among the agent's (1, 2, 3 …).
    pub seq: u32,
    /// The state before, if any.
    pub previous: Option<AgentStateName>,
    /// The new state.
    pub state: AgentStateName,
}

/// Numbers and emits agent state changes; one per process (or per tenant).
#[derive(Clone)]
pub struct AgentEvents {
    ids: Arc<dyn IdSource>,
    /// (tenant, agent) → (last seq, last state).
    agents: BTreeMap<(String, String), (u32, AgentStateName)>,
}

impl std::fmt::Debug for AgentEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEvents")
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

impl AgentEvents {
    /// No agents seen yet; ids from `ids`.
    pub fn new(ids: Arc<dyn IdSource>) -> AgentEvents {
        AgentEvents {
            ids,
            agents: BTreeMap::new(),
        }
    }

    /// Resumes numbering for `agent` after a restart: its last `seq` and
    /// state, as the outbox last stored them.
    pub fn resume(&mut self, tenant: &str, agent: &str, last_seq: u32, state: AgentStateName) {
        self.agents
            .insert((tenant.to_owned(), agent.to_owned()), (last_seq, state));
    }

    /// `agent` of `tenant` entered `state` at `at_ms` (the ACD's
    /// `Output::AgentState`); `previous` is filled in from the last change
    /// seen.
    pub fn changed(
        &mut self,
        at_ms: i64,
        tenant: &str,
        agent: &str,
        state: AgentStateName,
        reason: Option<&str>,
        call_id: Option<&str>,
    ) -> Result<Event, EventError> {
        let key = (tenant.to_owned(), agent.to_owned());
        let (seq, previous) = match self.agents.get(&key) {
            Some((seq, prev)) => (
                seq.checked_add(1)
                    .ok_or_else(|| EventError::SeqOverflow(agent.to_owned()))?,
                Some(*prev),
            ),
            None => (1, None),
        };
        let change = Numbered {
            seq,
            previous,
            state,
        };
        self.numbered(at_ms, tenant, agent, change, reason, call_id)
    }

    /// `agent` of `tenant` made its change number `change.seq` (from
    /// `change.previous` to `change.state`) at `at_ms`, as numbered by
    /// whoever keeps the count (the ACD's shell, across restarts).
    pub fn numbered(
        &mut self,
        at_ms: i64,
        tenant: &str,
        agent: &str,
        change: Numbered,
        reason: Option<&str>,
        call_id: Option<&str>,
    ) -> Result<Event, EventError> {
        let Numbered {
            seq,
            previous,
            state,
        } = change;
        let at = Timestamp::from_unix_ms(at_ms)?;
        self.agents
            .insert((tenant.to_owned(), agent.to_owned()), (seq, state));
        let data = AgentStateChanged {
            agent_id: agent.to_owned(),
            state,
            previous,
            reason: reason.map(str::to_owned),
            call_id: call_id.map(str::to_owned),
        };
        Ok(Event::new(
            &*self.ids,
            at,
            tenant,
            None,
            seq,
            EventData::AgentState(data),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::id::IdGenerator;

    #[test]
    fn each_agent_counts_on_its_own() {
        let mut a = AgentEvents::new(Arc::new(IdGenerator::new("t", 0)));
        let e1 = a
            .changed(1_000, "nn", "1001", AgentStateName::Idle, None, None)
            .expect("ok");
        let e2 = a
            .changed(2_000, "nn", "1002", AgentStateName::Idle, None, None)
            .expect("ok");
        let e3 = a
            .changed(
                3_000,
                "nn",
                "1001",
                AgentStateName::Ringing,
                None,
                Some("c-1"),
            )
            .expect("ok");
        assert_eq!((e1.seq, e2.seq, e3.seq), (1, 1, 2));
        assert_eq!(e3.call_id, None);
        let EventData::AgentState(d) = &e3.body else {
            panic!("{e3:?}")
        };
        assert_eq!(d.previous, Some(AgentStateName::Idle));
        assert_eq!(d.call_id.as_deref(), Some("c-1"));
    }

    #[test]
    fn refuses_bad_times_and_overflow_without_changing_anything() {
        let mut a = AgentEvents::new(Arc::new(IdGenerator::new("t", 0)));
        assert!(a
            .changed(i64::MAX, "nn", "1001", AgentStateName::Idle, None, None)
            .is_err());
        a.resume("nn", "1001", u32::MAX, AgentStateName::Idle);
        assert_eq!(
            a.changed(0, "nn", "1001", AgentStateName::Talking, None, None),
            Err(EventError::SeqOverflow("1001".into()))
        );
        a.resume("nn", "1001", 41, AgentStateName::NotReady);
        let e = a
            .changed(0, "nn", "1001", AgentStateName::Idle, None, None)
            .expect("ok");
        assert_eq!(e.seq, 42);
    }

    #[test]
    fn numbers_given_by_the_keeper_are_used_as_they_are() {
        let mut a = AgentEvents::new(Arc::new(IdGenerator::new("t", 0)));
        let change = Numbered {
            seq: 7,
            previous: Some(AgentStateName::NotReady),
            state: AgentStateName::Idle,
        };
        let e = a
            .numbered(1_000, "nn", "1001", change, None, None)
            .expect("ok");
        assert_eq!(e.seq, 7);
        let EventData::AgentState(d) = &e.body else {
            panic!("{e:?}")
        };
        assert_eq!(d.previous, Some(AgentStateName::NotReady));
        // Counting on by itself continues from there.
        let next = a
            .changed(2_000, "nn", "1001", AgentStateName::Talking, None, None)
            .expect("ok");
        assert_eq!(next.seq, 8);
    }
}
