//! The roster: the agents and skill groups in force (CTI issue §6 "Admin:
//! agents, skill groups … CRUD (persisted in SQLite; the config file seeds
//! them), reload flows/config").
//!
//! Agents and groups are no longer fixed at start. They live in
//! `hotline.db`; `[[agent]]` and `[[group]]` in `hotline.toml` seed them
//! ([`seed`] has the merge rules), and admins change them through the API
//! while calls are up. Every part that needs them (registrar credentials,
//! the ACD, the call room, the CTI API, the IVR's flow check) reads the
//! current [`Roster`] snapshot from a [`LiveRoster`]; a change builds a new
//! snapshot and swaps it in whole, so a reader never sees half a change.
//! Files:
//! - this file: the immutable [`Roster`] snapshot and its lookups;
//! - [`seed`]: how the config file's entries and the stored ones merge;
//! - [`change`]: an admin edit, a reload's report, why a change was refused.

pub mod change;
pub mod seed;

use std::collections::HashMap;

use crate::config::{AgentConfig, GroupConfig};

/// The ACD's id of an agent (defined with [`AgentConfig`] in `config`, so
/// the config's validation needs nothing from the roster).
pub use crate::config::agent_id;

/// One immutable set of agents and groups, with lookups.
#[derive(Debug, Default)]
pub struct Roster {
    agents: Vec<AgentConfig>,
    groups: Vec<GroupConfig>,
    by_user: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    group_ix: HashMap<String, usize>,
}

impl Roster {
    /// A snapshot of `agents` and `groups` (validated by the caller; on a
    /// duplicate the first one wins the lookups).
    pub fn new(agents: Vec<AgentConfig>, groups: Vec<GroupConfig>) -> Self {
        let mut by_user = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, a) in agents.iter().enumerate() {
            by_user.entry(a.user.clone()).or_insert(i);
            by_id.entry(agent_id(a).to_string()).or_insert(i);
        }
        let mut group_ix = HashMap::new();
        for (i, g) in groups.iter().enumerate() {
            group_ix.entry(g.id.clone()).or_insert(i);
        }
        Self {
            agents,
            groups,
            by_user,
            by_id,
            group_ix,
        }
    }

    /// Every agent, in stored order.
    pub fn agents(&self) -> &[AgentConfig] {
        &self.agents
    }

    /// Every skill group, in stored order.
    pub fn groups(&self) -> &[GroupConfig] {
        &self.groups
    }

    /// The agent whose ACD id (job number) is `id`.
    pub fn agent(&self, id: &str) -> Option<&AgentConfig> {
        self.by_id.get(id).map(|&i| &self.agents[i])
    }

    /// The agent whose phone registers as SIP user `user`.
    pub fn agent_by_user(&self, user: &str) -> Option<&AgentConfig> {
        self.by_user.get(user).map(|&i| &self.agents[i])
    }

    /// The ACD id of the phone `user`, if it is an agent's.
    pub fn agent_id_of(&self, user: &str) -> Option<&str> {
        self.agent_by_user(user).map(agent_id)
    }

    /// The skill group `id`.
    pub fn group(&self, id: &str) -> Option<&GroupConfig> {
        self.group_ix.get(id).map(|&i| &self.groups[i])
    }
}

/// The roster in force, swapped whole on every change.
pub type LiveRoster = crate::util::Live<Roster>;
