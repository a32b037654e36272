//! Ringing several targets at once, as a pure machine (issue 13: one
//! `Forks` sub-machine for the call's fork-ringing loops): the INVITEs of
//! one attempt — every registered contact of the agents rung together, a
//! trunk, the agent of a callback — race; the first 2xx wins and the others
//! are cancelled (RFC 3261 §9.1, §16.7 "forking"); each final error is
//! kept for the caller's final status; the attempt ends at the ring
//! timeout, or early when a trunk gives no provisional response in time
//! (REQUIREMENTS §1 "instant switch-over" to the backup trunk), or when the
//! caller goes away. The first 180 and the first 183 with SDP are relayed
//! to the caller once. Time is an input; the shell (`call::ringing`,
//! `call::callback`) keeps the legs and sends what this machine decides.
//!
//! The ACD's offers ring through the same machine, open-ended
//! ([`Forks::open_ended`]): the ACD owns the ring timeout (its
//! `CancelOffer`) and the order of agents, so the attempt has no timer and
//! outlives its forks failing. Each [`Forks::offer`] rings every
//! registration of one agent's phone; the agent's last fork failing tells
//! the ACD the offer was rejected (486/600/603) or failed
//! ([`Output::OfferRejected`], [`Output::OfferFailed`]), [`Forks::stop`]
//! stops one agent's forks (the ACD's `Cancel`), and the first 2xx still
//! wins and cancels every other fork of every agent.

use std::collections::VecDeque;
use std::time::Duration;

use super::fsm::Now;

/// What a fork's phone or trunk said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// A provisional response (`early_media`: it carried SDP).
    Provisional {
        /// The status code (180, 183 …).
        code: u16,
        /// It carried SDP (early media).
        early_media: bool,
    },
    /// A 2xx: this fork answered.
    Answered,
    /// A final error.
    Failed(u16),
}

/// What the shell does for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<K> {
    /// Stop this fork (CANCEL; BYE when its 200 crossed the CANCEL).
    Cancel(K),
    /// Tell the caller it rings (180), once.
    Ringing,
    /// Tell the caller about early media (183 with our answer), once.
    EarlyMedia,
    /// The record: the agent of this phone user is offered the call (once
    /// per phone, however many of its contacts ring).
    Offered(String),
    /// The record: the offer to this phone ended unanswered (its last fork
    /// failed).
    OfferCancelled(String),
    /// Open-ended (ACD) attempt: tell the ACD this agent rejected the
    /// offer (their phone's last fork answered 486, 600 or 603).
    OfferRejected(String),
    /// Open-ended (ACD) attempt: tell the ACD the offer to this agent
    /// failed (their phone's last fork answered another final error, no
    /// INVITE to it could be sent, or its answer was unusable).
    OfferFailed(String),
}

/// How the attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<K> {
    /// This fork answered; the others were cancelled.
    Answered(K),
    /// Every fork failed: their codes in the order they came.
    Failed(Vec<u16>),
    /// The ring timeout passed.
    NoAnswer,
    /// No provisional response in time (a trunk that does not answer).
    NoProvisional,
    /// The caller went away (or the attempt was given up).
    CallerGone,
}

/// One attempt's forks.
#[derive(Debug)]
pub struct Forks<K> {
    /// Forks still ringing, with the phone user (or, open-ended, the ACD
    /// agent) they ring.
    live: Vec<(K, Option<String>)>,
    codes: Vec<u16>,
    /// The ring timeout (`None`: open-ended, the ACD's offers).
    ring_deadline: Option<Now>,
    /// The party whose fork answered (open-ended: told the ACD if the
    /// answer proves unusable).
    winner: Option<String>,
    provisional_deadline: Option<Now>,
    responded: bool,
    /// A fork sent a provisional response.
    heard: bool,
    told_ringing: bool,
    told_progress: bool,
    outcome: Option<Outcome<K>>,
    outputs: VecDeque<Output<K>>,
}

impl<K: Clone + PartialEq> Forks<K> {
    /// An attempt starting at `now` that rings for `ring_timeout`, and
    /// gives up early without a provisional response within
    /// `provisional_within`.
    pub fn new(now: Now, ring_timeout: Duration, provisional_within: Option<Duration>) -> Self {
        Forks {
            live: Vec::new(),
            codes: Vec::new(),
            ring_deadline: Some(now + ring_timeout),
            winner: None,
            provisional_deadline: provisional_within.map(|d| now + d),
            responded: provisional_within.is_none(),
            heard: false,
            told_ringing: false,
            told_progress: false,
            outcome: None,
            outputs: VecDeque::new(),
        }
    }

    /// An open-ended attempt: the ACD's offers of one call (a queued
    /// caller, or an agent's consultation of a skill group). No timer, and
    /// forks failing do not end it: only an answer does (until the shell
    /// finds it unusable, [`Forks::answer_unusable`]).
    pub fn open_ended() -> Self {
        Forks {
            live: Vec::new(),
            codes: Vec::new(),
            ring_deadline: None,
            winner: None,
            provisional_deadline: None,
            responded: true,
            heard: false,
            told_ringing: false,
            told_progress: false,
            outcome: None,
            outputs: VecDeque::new(),
        }
    }

    /// Open-ended: the ACD offered the call to `party`, and these INVITEs
    /// to their phone's registrations were sent (none: the offer failed
    /// at once, [`Output::OfferFailed`]). After an answer nothing more
    /// rings: forks offered then are cancelled at once.
    pub fn offer(&mut self, party: &str, keys: Vec<K>) {
        if self.outcome.is_some() {
            self.outputs.extend(keys.into_iter().map(Output::Cancel));
            return;
        }
        if keys.is_empty() {
            self.outputs
                .push_back(Output::OfferFailed(party.to_string()));
            return;
        }
        self.outputs.push_back(Output::Offered(party.to_string()));
        for key in keys {
            self.live.push((key, Some(party.to_string())));
        }
    }

    /// Stop ringing `party` (the ACD's `Cancel`), or every party: their
    /// forks are cancelled; the ACD, which asked, is told nothing.
    pub fn stop(&mut self, party: Option<&str>) {
        let outputs = &mut self.outputs;
        self.live.retain(|(key, p)| {
            let stop = party.is_none_or(|x| p.as_deref() == Some(x));
            if stop {
                outputs.push_back(Output::Cancel(key.clone()));
            }
            !stop
        });
    }

    /// Open-ended: the answer that won was unusable (the shell hung it
    /// up): the ACD hears the offer failed, and the attempt rings on (the
    /// ACD offers the next agent).
    pub fn answer_unusable(&mut self) {
        if !self.is_open_ended() || !matches!(self.outcome, Some(Outcome::Answered(_))) {
            return;
        }
        self.outcome = None;
        if let Some(party) = self.winner.take() {
            self.outputs.push_back(Output::OfferFailed(party));
        }
    }

    /// The phone user (open-ended: the agent) fork `key` rings, while it
    /// rings.
    pub fn party(&self, key: &K) -> Option<&str> {
        self.live
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, p)| p.as_deref())
    }

    /// An INVITE was sent: fork `key`, ringing `device` (an agent's phone
    /// user) if any.
    pub fn sent(&mut self, key: K, device: Option<String>) {
        if let Some(d) = &device {
            if !self.live.iter().any(|(_, v)| v.as_ref() == Some(d)) {
                self.outputs.push_back(Output::Offered(d.clone()));
            }
        }
        self.live.push((key, device));
    }

    /// An INVITE could not be sent (counted as a 500).
    pub fn not_sent(&mut self) {
        self.codes.push(500);
    }

    /// Every INVITE of the attempt is out: with none sent, it failed (not
    /// for an open-ended attempt, whose offers come one by one).
    pub fn started(&mut self) {
        if self.live.is_empty() && self.outcome.is_none() {
            self.outcome = Some(Outcome::Failed(self.codes.clone()));
        }
    }

    /// Fork `key` responded. News from a fork no longer ringing
    /// (cancelled, or after the end) changes nothing.
    pub fn handle_response(&mut self, key: &K, response: Response) {
        if self.outcome.is_some() {
            return;
        }
        let Some(i) = self.live.iter().position(|(k, _)| k == key) else {
            return;
        };
        match response {
            Response::Provisional { code, early_media } => {
                self.responded = true;
                self.heard = true;
                if early_media && !self.told_progress {
                    self.told_progress = true;
                    self.outputs.push_back(Output::EarlyMedia);
                } else if code == 180 && !self.told_ringing && !self.told_progress {
                    self.told_ringing = true;
                    self.outputs.push_back(Output::Ringing);
                }
            }
            Response::Answered => {
                let (_, party) = self.live.remove(i);
                self.winner = party;
                self.end(Outcome::Answered(key.clone()));
            }
            Response::Failed(code) => {
                let (_, device) = self.live.remove(i);
                self.codes.push(code);
                if let Some(d) = device {
                    if !self.live.iter().any(|(_, v)| v.as_ref() == Some(&d)) {
                        self.outputs.push_back(Output::OfferCancelled(d.clone()));
                        if self.is_open_ended() {
                            self.outputs.push_back(if matches!(code, 486 | 600 | 603) {
                                Output::OfferRejected(d)
                            } else {
                                Output::OfferFailed(d)
                            });
                        }
                    }
                }
                if self.is_open_ended() {
                    return; // open-ended: the ACD offers the next agent
                }
                if self.live.is_empty() {
                    self.outcome = Some(Outcome::Failed(self.codes.clone()));
                }
            }
        }
    }

    /// The caller went away (or the attempt is given up): every fork is
    /// cancelled.
    pub fn caller_gone(&mut self) {
        if self.outcome.is_none() {
            self.end(Outcome::CallerGone);
        }
    }

    /// When [`Forks::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Now> {
        if self.outcome.is_some() {
            return None;
        }
        let ring = self.ring_deadline?;
        let provisional = self.provisional_deadline.filter(|_| !self.responded);
        Some(match provisional {
            Some(p) => p.min(ring),
            None => ring,
        })
    }

    /// Time passed: the ring timeout, or no provisional response in time.
    pub fn handle_timeout(&mut self, now: Now) {
        let Some(ring) = self.ring_deadline.filter(|_| self.outcome.is_none()) else {
            return;
        };
        if now >= ring {
            self.end(Outcome::NoAnswer);
        } else if !self.responded && self.provisional_deadline.is_some_and(|p| now >= p) {
            self.end(Outcome::NoProvisional);
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output<K>> {
        self.outputs.pop_front()
    }

    /// How the attempt ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome<K>> {
        self.outcome.as_ref()
    }

    /// The final errors so far, in order.
    pub fn codes(&self) -> &[u16] {
        &self.codes
    }

    /// Some fork sent a provisional response (or none was awaited).
    pub fn responded(&self) -> bool {
        self.responded
    }

    /// Some fork sent a provisional response.
    pub fn heard(&self) -> bool {
        self.heard
    }

    /// The ACD's offers: no timer, the attempt outlives failed forks.
    fn is_open_ended(&self) -> bool {
        self.ring_deadline.is_none()
    }

    /// `key` is still ringing.
    pub fn is_ringing(&self, key: &K) -> bool {
        self.live.iter().any(|(k, _)| k == key)
    }

    /// End with `outcome`, cancelling every fork still ringing.
    fn end(&mut self, outcome: Outcome<K>) {
        for (key, _) in self.live.drain(..) {
            self.outputs.push_back(Output::Cancel(key));
        }
        self.outcome = Some(outcome);
    }
}

#[cfg(test)]
#[path = "forks_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "forks_offer_tests.rs"]
mod offer_tests;
