//! Reacting to [`super::Event`]s while a node waits: keys, the end of a
//! prompt, the live timer, the queue's outcome, an agent's hang-up, a
//! transfer's result, the end of voicemail. Part of
//! [`super::Interpreter`].

use std::sync::Arc;

use super::{CollectEnd, HangupReason, Interpreter, Next, Phase, QueueOutcome, Wait};
use crate::ivr::flow::NodeKind;

impl Interpreter {
    pub(super) fn on_key(&mut self, key: char) -> Next {
        match self.wait {
            Wait::Play { interruptible } => {
                self.push_typeahead(key);
                if interruptible {
                    self.stop_playback();
                    self.with_node(|_, kind| match kind {
                        NodeKind::Play(p) => Next::Go(p.next.clone()),
                        NodeKind::Say(s) => Next::Go(s.next.clone()),
                        _ => Next::Wait,
                    })
                } else {
                    Next::Wait
                }
            }
            Wait::Menu => self.with_node(|me, kind| match kind {
                NodeKind::Menu(m) => match me.phase {
                    Phase::Notice => {
                        me.push_typeahead(key);
                        me.stop_playback();
                        me.menu_after_notice(m)
                    }
                    _ => me.menu_choice(m, key),
                },
                _ => Next::Wait,
            }),
            Wait::Collect => self.with_node(|me, kind| match kind {
                NodeKind::Collect(c) => match me.phase {
                    Phase::Notice => {
                        me.push_typeahead(key);
                        me.stop_playback();
                        me.collect_after_notice(c)
                    }
                    _ => {
                        me.stop_playback();
                        me.collect_key(c, key, true)
                    }
                },
                _ => Next::Wait,
            }),
            Wait::Survey => self.with_node(|me, kind| match kind {
                NodeKind::Survey(s) if matches!(me.phase, Phase::Prompt | Phase::Waiting) => {
                    me.survey_answer(s, key)
                }
                _ => Next::Wait,
            }),
            Wait::Http => {
                self.push_typeahead(key);
                Next::Wait
            }
            Wait::NotStarted
            | Wait::BlockedPrompt
            | Wait::Queue
            | Wait::Connected
            | Wait::Transfer
            | Wait::VoicemailPrompt
            | Wait::Recording
            | Wait::HangupPrompt
            | Wait::Done => Next::Wait,
        }
    }

    /// Runs `f` with the current node's kind (a missing node ends the call).
    pub(super) fn with_node(&mut self, f: impl FnOnce(&mut Self, &NodeKind) -> Next) -> Next {
        let set = Arc::clone(&self.set);
        match set.get(&self.flow).and_then(|fl| fl.nodes.get(&self.node)) {
            Some(n) => f(self, &n.kind),
            None => {
                self.finish(HangupReason::Error);
                Next::Stop
            }
        }
    }

    pub(super) fn on_prompt_end(&mut self) -> Next {
        match self.wait {
            Wait::Play { .. } => self.with_node(|_, kind| match kind {
                NodeKind::Play(p) => Next::Go(p.next.clone()),
                NodeKind::Say(s) => Next::Go(s.next.clone()),
                _ => Next::Wait,
            }),
            Wait::BlockedPrompt => {
                self.finish(HangupReason::Blocked);
                Next::Stop
            }
            Wait::HangupPrompt => {
                self.finish(HangupReason::Normal);
                Next::Stop
            }
            Wait::VoicemailPrompt => self.with_node(|me, kind| {
                if let NodeKind::Voicemail(v) = kind {
                    me.record(v.beep, v.max_secs, v.silence_secs);
                }
                Next::Wait
            }),
            Wait::Menu => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Menu(m), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(m.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Menu(m), Phase::Notice) => me.menu_after_notice(m),
                _ => Next::Wait,
            }),
            Wait::Collect => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Collect(c), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(c.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Collect(c), Phase::Notice) => me.collect_after_notice(c),
                _ => Next::Wait,
            }),
            Wait::Survey => self.with_node(|me, kind| match (kind, me.phase) {
                (NodeKind::Survey(s), Phase::Intro) => me.survey_ask(s, 0),
                (NodeKind::Survey(s), Phase::Prompt) => {
                    me.phase = Phase::Waiting;
                    me.start_timer(s.timeout_secs);
                    Next::Wait
                }
                (NodeKind::Survey(s), Phase::Thanks) => Next::Go(s.next.clone()),
                _ => Next::Wait,
            }),
            Wait::NotStarted
            | Wait::Queue
            | Wait::Connected
            | Wait::Transfer
            | Wait::Recording
            | Wait::Http
            | Wait::Done => Next::Wait,
        }
    }

    pub(super) fn on_timer(&mut self) -> Next {
        match (self.wait, self.phase) {
            (Wait::Menu, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Menu(m) => me.menu_fail(m, m.timeout_prompt.clone()),
                _ => Next::Wait,
            }),
            (Wait::Collect, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Collect(c) => me.collect_done(c, CollectEnd::Timeout),
                _ => Next::Wait,
            }),
            (Wait::Survey, Phase::Waiting) => self.with_node(|me, kind| match kind {
                NodeKind::Survey(s) => me.survey_ask(s, me.question + 1),
                _ => Next::Wait,
            }),
            (Wait::Http, _) => match self.request {
                Some(id) => self.on_http(id, crate::ivr::lookup::HttpOutcome::Timeout),
                None => Next::Wait,
            },
            _ => Next::Wait,
        }
    }

    pub(super) fn on_queue(&mut self, outcome: QueueOutcome) -> Next {
        if self.wait != Wait::Queue {
            return Next::Wait;
        }
        self.with_node(|me, kind| {
            let NodeKind::Queue(q) = kind else {
                return Next::Wait;
            };
            let target = match outcome {
                QueueOutcome::Answered { agent } => {
                    me.vars.insert("agent".into(), agent);
                    me.wait = Wait::Connected;
                    return Next::Wait;
                }
                QueueOutcome::Timeout => &q.on_timeout,
                QueueOutcome::Overflow => &q.on_overflow,
                QueueOutcome::Closed => &q.on_closed,
            };
            match target {
                Some(t) => Next::Go(Some(t.clone())),
                None => {
                    me.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            }
        })
    }

    pub(super) fn on_agent_hung_up(&mut self) -> Next {
        if self.wait != Wait::Connected {
            return Next::Wait;
        }
        self.with_node(|me, kind| match kind {
            NodeKind::Queue(q) => match &q.after_agent {
                Some(t) => Next::Go(Some(t.clone())),
                None => {
                    me.finish(HangupReason::Normal);
                    Next::Stop
                }
            },
            _ => Next::Wait,
        })
    }

    pub(super) fn on_transfer(&mut self, ok: bool) -> Next {
        if self.wait != Wait::Transfer {
            return Next::Wait;
        }
        if ok {
            self.cancel_timer();
            self.finished = true;
            self.wait = Wait::Done;
            return Next::Stop;
        }
        self.with_node(|me, kind| match kind {
            NodeKind::Transfer(t) => match &t.on_fail {
                Some(target) => Next::Go(Some(target.clone())),
                None => {
                    me.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            },
            _ => Next::Wait,
        })
    }

    pub(super) fn after_voicemail(&mut self) -> Next {
        self.with_node(|_, kind| match kind {
            NodeKind::Voicemail(v) => Next::Go(v.next.clone()),
            _ => Next::Wait,
        })
    }
}
