//! Who is rung in turn when a call goes straight to agents or to a number,
//! and what the caller is told when nobody answers (issue 13 §1; RFC 3261
//! §16.7 serial forking, §21.4.18 480; RFC 3263 §4.3 trying the next
//! server): a pure machine over the ringing attempts, each of which is a
//! [`crate::call::forks::Forks`] attempt run by `call::ringing`.
//!
//! - **Agents**, in rounds (one agent per round when rung one after
//!   another, everyone in one round when rung at once): a round with no
//!   registered phone is skipped; a busy, refused or unanswered round
//!   leads to the next; when every round failed the caller gets 486 if
//!   agents were busy and none merely failed to answer, 480 when nobody
//!   answered or nobody was registered, else the first error status.
//! - **Trunks**, the first then its backups: a trunk that answers every
//!   fork with 408 or 5xx, or sends no provisional response in its time,
//!   fails over to the next; any other error status, or a ring timeout,
//!   ends the call with that status (480 for the timeout); when every
//!   trunk failed the caller gets 503.

use crate::sip::trunk;

/// How one ringing attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Someone answered.
    Answered,
    /// The caller hung up.
    CallerGone,
    /// Every fork answered with a final error (their statuses).
    Failed(Vec<u16>),
    /// The ring timeout passed.
    NoAnswer,
    /// No provisional response in time (a trunk unreachable).
    NoProvisional,
    /// Nobody to ring in this round: `unregistered` agents had no phone
    /// registered.
    Nobody {
        /// Agents of the round without a registered phone.
        unregistered: u32,
    },
}

/// How the hunt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hunted {
    /// Attempt `0` (a round, a trunk) was answered.
    Answered(usize),
    /// The caller hung up.
    CallerGone,
    /// Nobody answered: the final status for the caller.
    NotAnswered(u16),
}

/// What is hunted through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Through {
    Agents,
    Trunks,
}

/// What the unanswered attempts add up to, for the caller's final status.
#[derive(Debug, Default)]
struct Tally {
    busy: u32,
    no_answer: u32,
    unregistered: u32,
    other: Vec<u16>,
}

impl Tally {
    fn add(&mut self, codes: &[u16]) {
        for &c in codes {
            match c {
                486 | 600 => self.busy += 1,
                408 | 480 => self.no_answer += 1,
                c => self.other.push(c),
            }
        }
    }

    fn final_code(&self) -> u16 {
        if self.busy > 0 && self.no_answer == 0 {
            486
        } else if self.no_answer > 0 || self.unregistered > 0 {
            480
        } else {
            self.other
                .first()
                .copied()
                .filter(|c| *c >= 400)
                .unwrap_or(480)
        }
    }
}

/// The attempts of one hunt, in order.
#[derive(Debug)]
pub struct Hunt {
    through: Through,
    attempts: usize,
    next: usize,
    ringing: bool,
    tally: Tally,
    end: Option<Hunted>,
}

impl Hunt {
    /// Agents in `rounds` rounds.
    pub fn agents(rounds: usize) -> Self {
        Hunt::new(Through::Agents, rounds)
    }

    /// `trunks` trunks, the first then its backups.
    pub fn trunks(trunks: usize) -> Self {
        Hunt::new(Through::Trunks, trunks)
    }

    fn new(through: Through, attempts: usize) -> Self {
        let mut h = Hunt {
            through,
            attempts,
            next: 0,
            ringing: false,
            tally: Tally::default(),
            end: None,
        };
        h.settle();
        h
    }

    /// The attempt to ring now (an index into the rounds or trunks), if
    /// one is due; report how it went with [`Hunt::attempted`].
    pub fn poll_attempt(&mut self) -> Option<usize> {
        if self.end.is_some() || self.ringing {
            return None;
        }
        self.ringing = true;
        Some(self.next)
    }

    /// How the attempt handed out last ended.
    pub fn attempted(&mut self, how: Attempted) {
        if !self.ringing || self.end.is_some() {
            return;
        }
        self.ringing = false;
        let at = self.next;
        self.next += 1;
        match (self.through, how) {
            (_, Attempted::Answered) => self.end = Some(Hunted::Answered(at)),
            (_, Attempted::CallerGone) => self.end = Some(Hunted::CallerGone),
            (Through::Agents, Attempted::Failed(codes)) => self.tally.add(&codes),
            (Through::Agents, Attempted::NoAnswer | Attempted::NoProvisional) => {
                self.tally.no_answer += 1;
            }
            (_, Attempted::Nobody { unregistered }) => self.tally.unregistered += unregistered,
            (Through::Trunks, Attempted::Failed(codes))
                if codes.iter().all(|c| trunk::fails_over(*c)) => {}
            (Through::Trunks, Attempted::NoProvisional) => {}
            (Through::Trunks, Attempted::Failed(codes)) => {
                let code = codes.first().copied().unwrap_or(480);
                self.end = Some(Hunted::NotAnswered(code));
            }
            (Through::Trunks, Attempted::NoAnswer) => self.end = Some(Hunted::NotAnswered(480)),
        }
        self.settle();
    }

    /// How it ended, once it has.
    pub fn end(&self) -> Option<Hunted> {
        self.end
    }

    /// Every attempt made and none answered: the caller's status.
    fn settle(&mut self) {
        if self.end.is_none() && self.next >= self.attempts {
            self.end = Some(Hunted::NotAnswered(match self.through {
                Through::Agents => self.tally.final_code(),
                Through::Trunks => 503,
            }));
        }
    }
}

#[cfg(test)]
#[path = "hunt_tests.rs"]
mod tests;
