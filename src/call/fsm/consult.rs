//! Attended transfers (咨询转接, REQUIREMENTS §4 "transfer with
//! consultation") as states of the connected call: the agent consults a
//! party — an agent or a number rung by name, or a skill group whose
//! consultation the ACD queues — while the caller waits on hold with
//! music, kept out of the mix. Then:
//! - the consulted party answers and talks with the agent;
//! - the target is not reached, or hangs up before the transfer is
//!   completed: the caller is back with the agent at once (as Asterisk's
//!   attended transfer returns the transferer);
//! - the agent completes: the consulted party takes the agent's place,
//!   the agent's leg is gone, and the call ends when that party leaves;
//! - the agent cancels: the caller is back;
//! - a supervisor on the call takes it over (强接): completed at once.
//!
//! The shell (`call::session::parties`) rings, queues and joins the
//! parties and tells this machine what happened; this machine decides
//! what is allowed and what the caller hears.

use super::{End, Fsm};

/// Where an attended transfer stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Consultation {
    /// Nobody is consulted.
    #[default]
    Idle,
    /// The target (a party's label, or a skill group's id) is being rung
    /// or waits in the group's queue; the caller is on hold.
    Ringing {
        /// The party's label or the group's id.
        target: String,
        /// A skill group's consultation.
        group: bool,
    },
    /// The consulted party answered and talks with the agent.
    Talking {
        /// The party's label (for a group: the agent the ACD picked).
        party: String,
        /// The skill group, when the consultation went through one.
        group: Option<String>,
    },
    /// The consulted party took the call; the first agent left.
    Completed {
        /// Who took it.
        party: String,
    },
}

impl Fsm {
    /// Where the attended transfer stands.
    pub fn consultation(&self) -> &Consultation {
        &self.consultation
    }

    /// Why a consultation cannot start now, if it cannot.
    pub fn consult_refusal(&self) -> Option<String> {
        if self.end.is_some() {
            return Some("the call is over".into());
        }
        if self.consultation != Consultation::Idle {
            return Some("a consultation is already in progress".into());
        }
        if !self.music_loaded {
            return Some("no music on hold is loaded".into());
        }
        None
    }

    /// The agent consults `target` (a party's label, or a skill group's id
    /// with `group`), now rung or queued: the caller goes on hold, out of
    /// the mix.
    pub fn begin_consult(&mut self, target: &str, group: bool) -> Result<(), String> {
        if let Some(why) = self.consult_refusal() {
            return Err(why);
        }
        self.consult_hold();
        self.consultation = Consultation::Ringing {
            target: target.to_string(),
            group,
        };
        Ok(())
    }

    /// The party consulted by name answered and joined. `false` when it
    /// was not the one consulted (a third party of a three-way call).
    pub fn consulted_party_answered(&mut self, party: &str) -> bool {
        match &self.consultation {
            Consultation::Ringing {
                target,
                group: false,
            } if target == party => {
                self.consultation = Consultation::Talking {
                    party: party.to_string(),
                    group: None,
                };
                true
            }
            _ => false,
        }
    }

    /// The agent the ACD picked for a skill group's consultation answered
    /// and joined. `false` without a group consultation waiting.
    pub fn group_agent_answered(&mut self, agent: &str) -> bool {
        match &self.consultation {
            Consultation::Ringing {
                target,
                group: true,
            } => {
                self.consultation = Consultation::Talking {
                    party: agent.to_string(),
                    group: Some(target.clone()),
                };
                true
            }
            _ => false,
        }
    }

    /// The consulted target was not reached (rejected, not answered, the
    /// ACD gave the group's consultation up) or hung up before the
    /// transfer was completed: the caller is back with the agent. `false`
    /// when `who` (a party's label or a group's id) was not the one
    /// consulted.
    pub fn consult_failed(&mut self, who: &str) -> bool {
        let consulted = match &self.consultation {
            Consultation::Ringing { target, .. } => target == who,
            Consultation::Talking { party, group } => party == who || group.as_deref() == Some(who),
            _ => false,
        };
        if !consulted || self.end.is_some() {
            return false;
        }
        self.consultation = Consultation::Idle;
        self.end_consult_hold();
        true
    }

    /// The agent gives the consultation up: the caller is back. The target
    /// consulted (a party's label or a group's id), for the shell to drop.
    pub fn cancel_consult(&mut self) -> Result<String, String> {
        let target = match std::mem::take(&mut self.consultation) {
            Consultation::Ringing { target, .. } => target,
            Consultation::Talking { party, .. } => party,
            other => {
                self.consultation = other;
                return Err("no consultation in progress".into());
            }
        };
        self.end_consult_hold();
        Ok(target)
    }

    /// Step 2: the consulted party takes the caller, the agent's leg goes.
    /// The party and the group the consultation went through.
    pub fn complete_consult(&mut self) -> Result<(String, Option<String>), String> {
        let (party, group) = match &self.consultation {
            Consultation::Talking { party, group } => (party.clone(), group.clone()),
            Consultation::Ringing {
                target,
                group: true,
            } => return Err(format!("no agent of group {target} has answered yet")),
            Consultation::Ringing { target, .. } => {
                return Err(format!("{target} has not answered yet"))
            }
            _ => return Err("no consultation in progress".into()),
        };
        // The agent's leg goes, and with it their phone's hold.
        self.agent_holds = false;
        self.end_consult_hold();
        self.consultation = Consultation::Completed {
            party: party.clone(),
        };
        // Side B's leg is gone: its refresh still out is no news.
        self.refreshing.clear();
        Ok((party, group))
    }

    /// A supervisor on the call (named `label`) takes it over: refused
    /// while a transfer is in progress or done; else completed at once.
    pub fn take_over(&mut self, label: &str) -> Result<(), String> {
        if self.consultation != Consultation::Idle {
            return Err("a transfer is in progress".into());
        }
        if self.end.is_some() {
            return Err("the call is over".into());
        }
        self.consultation = Consultation::Talking {
            party: label.to_string(),
            group: None,
        };
        self.complete_consult().map(|_| ())
    }

    /// An extra party (`label`) left: the one who took the call ends it as
    /// the agent would; the one being consulted brings the caller back.
    pub fn party_left(&mut self, label: &str) {
        match &self.consultation {
            Consultation::Completed { party } if party == label && self.end.is_none() => {
                self.finish(End::AgentHungUp);
            }
            Consultation::Talking { party, .. } if party == label => {
                self.consult_failed(label);
            }
            _ => {}
        }
    }
}
