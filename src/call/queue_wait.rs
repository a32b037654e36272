//! A caller waiting in a skill group's queue, as a pure machine (issue 13
//! §1; REQUIREMENTS §2 queueing: queue media, position announcements, a
//! callback chosen by key): what the ACD's news, the caller's keys and
//! hang-up, an agent's answer and shutdown lead to — the caller answered
//! for the queue's prompts (or told 180), the welcome, announcements and
//! music on hold in turn, the phones the ACD offers rung and stopped, the
//! ACD told, the caller's farewell, the record's facts, and how the wait
//! ended.
//!
//! Sans-IO like [`crate::call::fsm::Fsm`] and [`crate::call::flow::core`]:
//! inputs in ([`QueueWait::handle_input`]), outputs out
//! ([`QueueWait::poll_output`]); it keeps no time (the ACD owns the queue's
//! timers and ring timeouts). Its shell is `call::ringing`'s
//! `ring_queue_at`, which keeps the legs rung for the offers
//! (`AcdOffers`), reads the agents' answers and plays through the
//! caller's player. Scenario tests: `queue_wait_tests.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::acd::{self, CallId};
use crate::call::flow::core::Prompts;
use crate::call::queue::QueueNews;
use crate::call::Outcome;
use crate::media::announcement::announcement;
use crate::media::dtmf::DtmfKey;
use crate::media::player::PlayerEvent;

/// The music on hold's prompt.
const MUSIC: &str = "moh";

/// A fact for the call's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The offer to this agent ended unanswered.
    OfferCancelled(String),
    /// This agent answered.
    Answered(String),
    /// The wait ran out (or the queue was full).
    TimedOut,
    /// The caller will be called back.
    Callback,
    /// The call ended by shutdown.
    Shutdown,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the caller's leg (for the queue's prompts); say how it went
    /// with [`Input::Answered`].
    Answer,
    /// Tell the caller it rings (180): no queue media.
    Progress,
    /// Start the caller's player.
    StartPlayer,
    /// Play these (loaded) prompts in order, not looped, `interruptible`
    /// by a key.
    Say {
        /// Prompt names.
        prompts: Vec<String>,
        /// A key cuts them (the callback offer is in them).
        interruptible: bool,
    },
    /// Play the music on hold, looped.
    Music,
    /// A key from SIP INFO, for the player to read as pressed.
    InfoKey(DtmfKey),
    /// Ring the phones of `agent` (SIP user `device`): the ACD's offer.
    Ring {
        /// Agent id.
        agent: String,
        /// Their phone's SIP user.
        device: String,
    },
    /// Stop ringing this agent's phones (`None`: every phone).
    StopRinging(Option<String>),
    /// Tell the ACD.
    Acd(acd::Input),
    /// Tell the call's record.
    Record(Fact),
    /// Give the player back.
    EndPlay,
    /// Play `prompt` to its end (bounded, or until the caller hangs up),
    /// give the player back, then BYE.
    Farewell(&'static str),
    /// Say BYE to the caller.
    Bye,
    /// Refuse the unanswered call with this status.
    Reject(u16),
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The result of [`Output::Answer`].
    Answered(bool),
    /// News from the ACD about this call.
    News(QueueNews),
    /// The ACD is gone (its channel closed).
    AcdGone,
    /// The player's news.
    Player(PlayerEvent),
    /// A key the caller's phone sent by SIP INFO.
    InfoKey(DtmfKey),
    /// The caller hung up.
    CallerHungUp,
    /// `agent`'s phone answered with a usable answer (the others were
    /// stopped by the shell's offers).
    AgentAnswered {
        /// Agent id.
        agent: String,
    },
    /// The offer to `agent` ended unanswered (their last phone failed).
    OfferEnded {
        /// Agent id.
        agent: String,
    },
    /// The process is shutting down.
    Shutdown,
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    /// This agent answered: the caller is connected to them.
    Connected(String),
    /// It ended otherwise.
    Ended(Outcome),
}

/// The queue's prompts as they play.
#[derive(Debug)]
struct Voice {
    /// Prompts still to play before the music resumes.
    pending: usize,
    /// A position announcement is playing (the next one waits its turn).
    announcing: bool,
}

/// One caller's wait in a queue.
pub struct QueueWait {
    call: CallId,
    /// An IVR flow's queue: a timeout goes back to the flow.
    back_to_flow: bool,
    prompts: Arc<dyn Prompts>,
    /// The caller's leg is answered.
    answered: bool,
    /// The queue plays to the caller (answered, player started).
    voice: Option<Voice>,
    /// The key that asks for a callback while the queue plays.
    callback_key: Option<char>,
    asked_answer: bool,
    outputs: VecDeque<Output>,
    waited: Option<Waited>,
}

impl QueueWait {
    /// `call` queued; `media`: the group plays queue media (with this
    /// callback key), `None`: it does not (or its prompts are not
    /// loaded); `answered`: the leg is answered already (an IVR flow).
    pub fn new(
        call: CallId,
        back_to_flow: bool,
        media: Option<Option<char>>,
        answered: bool,
        prompts: Arc<dyn Prompts>,
    ) -> Self {
        let mut wait = QueueWait {
            call,
            back_to_flow,
            prompts,
            answered,
            voice: None,
            callback_key: None,
            asked_answer: false,
            outputs: VecDeque::new(),
            waited: None,
        };
        match media {
            None => wait.push(Output::Progress),
            Some(callback_key) => {
                wait.callback_key = callback_key;
                if answered {
                    wait.start_voice();
                } else {
                    wait.asked_answer = true;
                    wait.push(Output::Answer);
                }
            }
        }
        wait
    }

    /// How the wait ended, once it did.
    pub fn waited(&self) -> Option<&Waited> {
        self.waited.as_ref()
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Something happened.
    pub fn handle_input(&mut self, input: Input) {
        if self.waited.is_some() {
            return;
        }
        match input {
            Input::Answered(ok) => {
                if !std::mem::take(&mut self.asked_answer) {
                    return;
                }
                if ok {
                    self.answered = true;
                    self.start_voice();
                } else {
                    self.push(Output::Progress);
                }
            }
            Input::News(news) => self.news(news),
            Input::AcdGone => {
                self.push(Output::StopRinging(None));
                self.give_back_voice();
                self.end(Outcome::NotAnswered(480));
            }
            Input::Player(event) => self.player_news(event),
            Input::InfoKey(key) => {
                if self.voice.is_some() {
                    self.push(Output::InfoKey(key));
                }
            }
            Input::CallerHungUp => {
                self.push(Output::Acd(acd::Input::CallerHungUp { call: self.call }));
                self.push(Output::StopRinging(None));
                self.give_back_voice();
                self.end(Outcome::CallerCancelled);
            }
            Input::AgentAnswered { agent } => {
                self.push(Output::Record(Fact::Answered(agent.clone())));
                self.push(Output::Acd(acd::Input::OfferAnswered {
                    call: self.call,
                    agent: agent.clone(),
                }));
                // The agent answered: the prompt is cut at once.
                self.give_back_voice();
                self.waited = Some(Waited::Connected(agent));
            }
            Input::OfferEnded { agent } => {
                self.push(Output::Record(Fact::OfferCancelled(agent)));
            }
            Input::Shutdown => {
                self.push(Output::StopRinging(None));
                self.push(Output::Acd(acd::Input::CallerHungUp { call: self.call }));
                self.push(Output::Record(Fact::Shutdown));
                self.give_back_voice();
                self.push(if self.answered {
                    Output::Bye
                } else {
                    Output::Reject(503)
                });
                self.end(Outcome::CallerCancelled);
            }
        }
    }

    fn news(&mut self, news: QueueNews) {
        match news {
            QueueNews::Offer { agent, device } => self.push(Output::Ring { agent, device }),
            QueueNews::Cancel { agent } => {
                self.push(Output::Record(Fact::OfferCancelled(agent.clone())));
                self.push(Output::StopRinging(Some(agent)));
            }
            QueueNews::Announce {
                position,
                estimated_wait,
            } => self.announce(position, estimated_wait),
            QueueNews::Timeout { reason, .. } if self.back_to_flow => {
                self.push(Output::StopRinging(None));
                self.give_back_voice();
                self.push(Output::Record(Fact::TimedOut));
                let full = reason == acd::TimeoutReason::QueueFull;
                tracing::info!(call = %self.call, full, "queue wait over: back to the flow");
                self.end(Outcome::QueueEnded { full });
            }
            QueueNews::Timeout { next, .. } => {
                self.push(Output::StopRinging(None));
                let callback = next == acd::NextStep::Callback;
                self.push(Output::Record(if callback {
                    Fact::Callback
                } else {
                    Fact::TimedOut
                }));
                tracing::info!(call = %self.call, ?next, listening = self.voice.is_some(), "queue timeout");
                // Answered and listening: told why, then hung up. Otherwise
                // (voicemail needs the recorder in the call) 480: the ACD
                // has the call on its missed list.
                let outcome = match (self.voice.take(), callback) {
                    (Some(_), true) => {
                        self.push(Output::Farewell("queue_callback_confirmed"));
                        Outcome::CallbackRequested
                    }
                    (Some(_), false) => {
                        self.push(Output::Farewell("queue_sorry"));
                        Outcome::NotAnswered(480)
                    }
                    (None, _) => Outcome::NotAnswered(480),
                };
                self.end(outcome);
            }
        }
    }

    fn player_news(&mut self, event: PlayerEvent) {
        if self.voice.is_none() {
            return;
        }
        if let PlayerEvent::Key(key) = event {
            tracing::info!(call = %self.call, %key, "caller pressed a key");
        }
        match event {
            PlayerEvent::Key(key) if self.callback_key == Some(key) => {
                tracing::info!(call = %self.call, %key, "caller asked to be called back");
                self.voice = None;
                self.push(Output::Acd(acd::Input::RequestCallback {
                    call: self.call,
                    number: None,
                }));
                self.push(Output::Record(Fact::Callback));
                self.push(Output::StopRinging(None));
                self.push(Output::Farewell("queue_callback_confirmed"));
                self.end(Outcome::CallbackRequested);
            }
            PlayerEvent::Key(_) => {}
            PlayerEvent::Finished(name) => self.finished(&name),
            PlayerEvent::Interrupted(_) => self.finished(""),
            PlayerEvent::Voicemail { .. } => {}
        }
    }

    fn start_voice(&mut self) {
        self.voice = Some(Voice {
            pending: 0,
            announcing: false,
        });
        self.push(Output::StartPlayer);
        self.say(&["queue_welcome"]);
    }

    /// Play these prompts (then the callback offer, then music).
    fn say(&mut self, names: &[&str]) {
        if self.voice.is_none() {
            return;
        }
        let mut prompts: Vec<String> = names
            .iter()
            .filter(|n| self.prompts.has(n))
            .map(|n| (*n).to_string())
            .collect();
        let interruptible = self.callback_key.is_some();
        if interruptible && self.prompts.has("queue_callback_offer") {
            prompts.push("queue_callback_offer".into());
        }
        let pending = prompts.len();
        if let Some(voice) = &mut self.voice {
            voice.pending = pending;
        }
        if pending == 0 {
            self.music();
        } else {
            self.push(Output::Say {
                prompts,
                interruptible,
            });
        }
    }

    fn music(&mut self) {
        if self.prompts.has(MUSIC) {
            self.push(Output::Music);
        }
    }

    /// A position announcement (the ACD's `Announce`): one still playing
    /// is not cut, this one is skipped (the next brings a fresh one).
    fn announce(&mut self, position: usize, estimated_wait: Option<Duration>) {
        let Some(voice) = &self.voice else { return };
        if voice.announcing && voice.pending > 0 {
            tracing::debug!(position, "the last announcement still plays: skipped");
            return;
        }
        let prompts = announcement(position, estimated_wait);
        tracing::info!(
            position,
            estimated_wait_secs = estimated_wait.map(|w| w.as_secs()),
            ?prompts,
            "position announcement"
        );
        self.say(&prompts);
        if let Some(voice) = &mut self.voice {
            voice.announcing = voice.pending > 0;
        }
    }

    /// A prompt ended (or was cut by a key): music when nothing else waits.
    fn finished(&mut self, name: &str) {
        if name == MUSIC {
            return;
        }
        let Some(voice) = &mut self.voice else { return };
        voice.pending = voice.pending.saturating_sub(1);
        if voice.pending == 0 {
            voice.announcing = false;
            self.music();
        }
    }

    fn give_back_voice(&mut self) {
        if self.voice.take().is_some() {
            self.push(Output::EndPlay);
        }
    }

    fn end(&mut self, outcome: Outcome) {
        self.waited = Some(Waited::Ended(outcome));
    }

    fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }
}

#[cfg(test)]
#[path = "queue_wait_tests.rs"]
mod tests;
