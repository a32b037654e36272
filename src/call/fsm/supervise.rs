//! Supervision (REQUIREMENTS §3 monitoring: 监听 listen, 耳语 whisper, 强插
//! barge, 强接 take-over) as states of the connected call. A supervisor
//! either dials in (`*31`/`*32`/`*33` + the agent's user; the shell
//! answers the INVITE) or is rung from the API; either way this machine
//! decides:
//! - **joining**: a phone rung is [`Stage::Ringing`]; its answer (or a
//!   dial-in answered) joins the mix in the mode asked for
//!   ([`SupervisorAction::Join`]); an unusable answer or a mix that
//!   refuses them gets a BYE; a phone not reached is simply forgotten;
//! - **modes**: keys 1 / 2 / 3 (RFC 4733 through the media, or SIP INFO,
//!   answered 200) switch to listen / whisper / barge, one press one
//!   switch; a re-INVITE from their phone (hold, a new address) is
//!   answered 200 with the answer they have (the mix goes on);
//! - **hang-ups**: a supervisor who hangs up leaves the mix (no BYE);
//!   when the call ends however it ends (the caller, the agent, a
//!   transfer, silence, the API), every supervisor on it gets a BYE and
//!   every phone still ringing is cancelled; an answer that crosses the
//!   end (usable or not) gets a BYE; a request after it gets 481;
//! - **take-over** (强接): a supervisor on the call becomes the caller's
//!   party (through `consult`'s take-over) and is no longer a supervisor:
//!   their keys no longer switch modes, and their hang-up ends the call as
//!   the agent's would.
//!
//! Supervision goes on whatever else the call does: while the caller is on
//! hold, during a consultation, after a completed transfer. It changes
//! nothing in the call's record (the record's facts are the caller's and
//! the agent's; a take-over is the transfer `consult` records).
//!
//! The shell (`call::session::supervisors`) keeps the legs, ports and mix
//! participants, executes [`Output::Supervisor`] and reports what happened
//! as [`Input::Supervisor`].

use std::collections::BTreeMap;

use super::{Consultation, Fsm, Output, TxId};

/// A supervisor of the call, named by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SupId(pub u64);

/// How a supervisor joins an agent's call (REQUIREMENTS §3 monitoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervision {
    /// Hear both sides, heard by nobody (监听).
    Listen,
    /// Heard by the agent only (耳语).
    Whisper,
    /// Heard by everyone (强插).
    Barge,
}

impl Supervision {
    /// The key a supervisor presses to switch: 1 listen, 2 whisper, 3 barge.
    pub fn from_key(key: char) -> Option<Self> {
        match key {
            '1' => Some(Supervision::Listen),
            '2' => Some(Supervision::Whisper),
            '3' => Some(Supervision::Barge),
            _ => None,
        }
    }
}

/// What happened to a supervisor's leg (the shell reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// hotline rang the supervisor's phone (the API) to join as `mode`.
    Rung {
        /// Their user name.
        user: String,
        /// How they join once they answer.
        mode: Supervision,
    },
    /// A supervisor dialled in and the shell answered their INVITE with
    /// `answer`.
    DialledIn {
        /// Their SIP user.
        user: String,
        /// How they join.
        mode: Supervision,
        /// Our SDP answer to them.
        answer: Vec<u8>,
    },
    /// The phone rung answered with usable SDP; `answer` is the SDP they
    /// have of us (our offer).
    Answered {
        /// Our SDP as they have it.
        answer: Vec<u8>,
    },
    /// The phone rung answered with SDP hotline cannot use.
    Unusable,
    /// The phone rung gave a final error, or its dialog ended before an
    /// answer.
    NotReached,
    /// The mix refused them (the join or their mode).
    JoinFailed,
    /// A key from their phone through the media (RFC 4733 or in-band).
    Key(char),
    /// An INFO from their phone (answered 200), with the key it carries.
    Info {
        /// Its transaction.
        tx: TxId,
        /// The key, when its body names one.
        key: Option<char>,
    },
    /// A re-INVITE from their phone.
    Reoffer {
        /// Its transaction.
        tx: TxId,
    },
    /// Their dialog ended (BYE from their phone).
    Ended,
}

/// What the shell does to a supervisor's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorAction {
    /// Join the mix as a supervisor in this mode.
    Join(Supervision),
    /// Switch their mode.
    SetMode(Supervision),
    /// They hung up: out of the mix, their leg forgotten (no BYE).
    Leave,
    /// Send BYE on their leg (and take them out of the mix).
    Bye,
    /// Stop ringing their phone (CANCEL, or BYE if it answered meanwhile).
    Cancel,
}

/// Where a supervisor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Their phone is being rung.
    Ringing,
    /// In the mix.
    Joined,
}

/// A supervisor of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervisor {
    /// Their user name.
    pub user: String,
    /// Their mode (asked for while ringing; in force once joined).
    pub mode: Supervision,
    /// Where they stand.
    pub stage: Stage,
    /// Our SDP as they have it (re-sent to their re-INVITEs).
    answer: Vec<u8>,
}

/// The supervisors of a call.
pub(super) type Supervisors = BTreeMap<SupId, Supervisor>;

impl Fsm {
    /// The call's supervisors (ringing and joined).
    pub fn supervisors(&self) -> &BTreeMap<SupId, Supervisor> {
        &self.supervisors
    }

    /// The supervisor on the call named `user` (not one still ringing).
    pub fn supervisor_named(&self, user: &str) -> Option<SupId> {
        self.supervisors
            .iter()
            .find(|(_, s)| s.user == user && s.stage == Stage::Joined)
            .map(|(id, _)| *id)
    }

    /// Whether supervisor `user` may take the call over now: their id, or
    /// why not.
    pub fn take_over_check(&self, user: &str) -> Result<SupId, String> {
        let sup = self
            .supervisor_named(user)
            .ok_or_else(|| format!("{user} is not on the call"))?;
        if self.consultation != Consultation::Idle {
            return Err("a transfer is in progress".into());
        }
        Ok(sup)
    }

    /// Supervisor `sup` takes the call over as `label` (their agent id):
    /// they become the caller's party, the agent's leg goes (`consult`'s
    /// take-over), and they are no longer a supervisor.
    pub fn supervisor_takes_over(&mut self, sup: SupId, label: &str) -> Result<(), String> {
        match self.supervisors.get(&sup) {
            Some(s) if s.stage == Stage::Joined => {}
            Some(s) => return Err(format!("{} is not on the call", s.user)),
            None => return Err("the supervisor is not on the call".into()),
        }
        self.take_over(label)?;
        self.supervisors.remove(&sup);
        Ok(())
    }

    /// Something happened to supervisor `sup`'s leg.
    pub(super) fn supervisor_event(&mut self, sup: SupId, event: SupervisorEvent) {
        if self.end.is_some() {
            return self.supervisor_after_end(sup, event);
        }
        match event {
            SupervisorEvent::Rung { user, mode } => {
                self.supervisors.insert(
                    sup,
                    Supervisor {
                        user,
                        mode,
                        stage: Stage::Ringing,
                        answer: Vec::new(),
                    },
                );
            }
            SupervisorEvent::DialledIn { user, mode, answer } => {
                self.supervisors.insert(
                    sup,
                    Supervisor {
                        user,
                        mode,
                        stage: Stage::Joined,
                        answer,
                    },
                );
                self.act(sup, SupervisorAction::Join(mode));
            }
            SupervisorEvent::Answered { answer } => match self.supervisors.get_mut(&sup) {
                Some(s) if s.stage == Stage::Ringing => {
                    s.stage = Stage::Joined;
                    s.answer = answer;
                    let mode = s.mode;
                    self.act(sup, SupervisorAction::Join(mode));
                }
                // Not a phone we are ringing: it has no place on the call.
                _ => self.act(sup, SupervisorAction::Bye),
            },
            // Their dialog is up either way: it ends at once.
            SupervisorEvent::Unusable => {
                self.supervisors.remove(&sup);
                self.act(sup, SupervisorAction::Bye);
            }
            SupervisorEvent::JoinFailed => {
                if self.supervisors.remove(&sup).is_some() {
                    self.act(sup, SupervisorAction::Bye);
                }
            }
            SupervisorEvent::NotReached => {
                let ringing = self.supervisors.get(&sup).map(|s| s.stage) == Some(Stage::Ringing);
                if ringing {
                    self.supervisors.remove(&sup);
                }
            }
            SupervisorEvent::Key(key) => self.supervisor_key(sup, key),
            SupervisorEvent::Info { tx, key } => {
                self.respond(tx, 200, None);
                if let Some(key) = key {
                    self.supervisor_key(sup, key);
                }
            }
            SupervisorEvent::Reoffer { tx } => {
                // Hold or a new address from their phone: keep our answer
                // (the mix goes on).
                let answer = self.supervisors.get(&sup).map(|s| s.answer.clone());
                match answer {
                    Some(answer) => self.respond(tx, 200, Some(answer)),
                    None => self.respond(tx, 481, None),
                }
            }
            SupervisorEvent::Ended => {
                if let Some(s) = self.supervisors.remove(&sup) {
                    if s.stage == Stage::Joined {
                        self.act(sup, SupervisorAction::Leave);
                    }
                }
            }
        }
    }

    /// A key from supervisor `sup`: 1 / 2 / 3 switch their mode.
    fn supervisor_key(&mut self, sup: SupId, key: char) {
        let Some(mode) = Supervision::from_key(key) else {
            return;
        };
        let Some(s) = self
            .supervisors
            .get_mut(&sup)
            .filter(|s| s.stage == Stage::Joined)
        else {
            return;
        };
        s.mode = mode;
        self.act(sup, SupervisorAction::SetMode(mode));
    }

    /// The call is over: a phone answering now gets a BYE, one rung now is
    /// cancelled, a request gets 481.
    fn supervisor_after_end(&mut self, sup: SupId, event: SupervisorEvent) {
        match event {
            SupervisorEvent::Answered { .. }
            | SupervisorEvent::Unusable
            | SupervisorEvent::DialledIn { .. } => self.act(sup, SupervisorAction::Bye),
            SupervisorEvent::Rung { .. } => self.act(sup, SupervisorAction::Cancel),
            SupervisorEvent::Info { tx, .. } | SupervisorEvent::Reoffer { tx } => {
                self.respond(tx, 481, None)
            }
            _ => {}
        }
    }

    /// The call ends: every supervisor on it gets a BYE, every phone still
    /// ringing is cancelled.
    pub(super) fn supervisors_leave(&mut self) {
        for (sup, s) in std::mem::take(&mut self.supervisors) {
            self.act(
                sup,
                match s.stage {
                    Stage::Ringing => SupervisorAction::Cancel,
                    Stage::Joined => SupervisorAction::Bye,
                },
            );
        }
    }

    fn act(&mut self, sup: SupId, action: SupervisorAction) {
        self.push(Output::Supervisor { sup, action });
    }
}
