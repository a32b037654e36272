//! Walking the flow: leaving a node for the next, entering each node
//! (prompts, menus, collects, hours, conditions, queues, transfers,
//! voicemail, survey, subflows, hangup) until one waits, evaluating
//! conditions (time of day, weekday, caller area, block list, variables)
//! and substituting `${var}` templates. Part of [`super::Interpreter`].

use std::sync::Arc;

use super::{
    Action, Environment, Frame, HangupReason, Interpreter, Next, Phase, Wait, MAX_DEPTH, MAX_STEPS,
};
use crate::ivr::flow::{Condition, NodeKind};
use crate::ivr::parse::{template_parts, TemplatePart};
use crate::time::Time;

impl Interpreter {
    /// Leaves the current node for `target` (`None`: end of the current
    /// flow) and walks until a node waits.
    pub(super) fn goto(&mut self, target: Option<String>, now: Time, env: &dyn Environment) {
        self.cancel_timer();
        self.stop_playback();
        let set = Arc::clone(&self.set);
        let mut next = target;
        let mut steps = 0u32;
        loop {
            let Some(name) = next.take() else {
                match self.frames.pop() {
                    Some(frame) => {
                        self.flow = frame.flow;
                        next = frame.resume;
                        continue;
                    }
                    None => return self.finish(HangupReason::FlowEnd),
                }
            };
            steps += 1;
            if steps > MAX_STEPS {
                return self.finish(HangupReason::Error);
            }
            let Some(flow) = set.get(&self.flow) else {
                return self.finish(HangupReason::Error);
            };
            let Some(node) = flow.nodes.get(&name) else {
                return self.finish(HangupReason::Error);
            };
            self.out.push(Action::Step {
                flow: flow.name.clone(),
                version: flow.version.clone(),
                node: name.clone(),
                kind: node.kind.name(),
            });
            self.path.push(if self.frames.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", flow.name)
            });
            self.node = name;
            let step = self.enter(&node.kind, now, env);
            match step {
                Next::Go(t) => next = t,
                Next::Wait | Next::Stop => return,
            }
        }
    }

    /// Does what entering a node does.
    pub(super) fn enter(&mut self, kind: &NodeKind, now: Time, env: &dyn Environment) -> Next {
        match kind {
            NodeKind::Play(p) => {
                self.play(p.prompts.clone(), p.interruptible);
                self.wait = Wait::Play {
                    interruptible: p.interruptible,
                };
                Next::Wait
            }
            NodeKind::Blacklist(b) => {
                if !env.is_blocked(&self.facts.tenant, &self.facts.caller) {
                    return Next::Go(b.next.clone());
                }
                self.out.push(Action::Blocked);
                self.typeahead.clear();
                match &b.prompt {
                    Some(p) => {
                        self.play(vec![p.clone()], false);
                        self.wait = Wait::BlockedPrompt;
                        Next::Wait
                    }
                    None => {
                        self.finish(HangupReason::Blocked);
                        Next::Stop
                    }
                }
            }
            NodeKind::Area(a) => {
                if let Some((code, name)) = env.area_of(&self.facts.caller) {
                    self.vars.insert("area_code".into(), code);
                    self.vars.insert("area_name".into(), name);
                }
                Next::Go(a.next.clone())
            }
            NodeKind::Hours(h) => Next::Go(Some(if env.is_open(&h.schedule, now) {
                h.open.clone()
            } else {
                h.closed.clone()
            })),
            NodeKind::Menu(m) => {
                self.wait = Wait::Menu;
                self.menu_offer(m, 1)
            }
            NodeKind::Collect(c) => {
                self.wait = Wait::Collect;
                self.collect_offer(c, 1)
            }
            NodeKind::Switch(s) => {
                let target = s
                    .cases
                    .iter()
                    .find(|c| self.matches(&c.condition, now, env))
                    .map_or(&s.default, |c| &c.next);
                Next::Go(Some(target.clone()))
            }
            NodeKind::Set(s) => {
                let values: Vec<(String, String)> = s
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), self.substitute(v)))
                    .collect();
                self.vars.extend(values);
                Next::Go(s.next.clone())
            }
            NodeKind::Queue(q) => {
                self.typeahead.clear();
                self.out.push(Action::Enqueue {
                    group: q.group.clone(),
                    priority: q.priority,
                    max_wait_secs: q.max_wait_secs,
                });
                self.wait = Wait::Queue;
                Next::Wait
            }
            NodeKind::Transfer(t) => {
                self.typeahead.clear();
                self.out.push(Action::Transfer(t.target.clone()));
                self.wait = Wait::Transfer;
                Next::Wait
            }
            NodeKind::Voicemail(v) => {
                self.typeahead.clear();
                if v.prompts.is_empty() {
                    self.record(v.beep, v.max_secs, v.silence_secs);
                } else {
                    self.play(v.prompts.clone(), false);
                    self.wait = Wait::VoicemailPrompt;
                }
                Next::Wait
            }
            NodeKind::Survey(s) => {
                self.typeahead.clear();
                self.wait = Wait::Survey;
                self.replayed = false;
                match &s.intro {
                    Some(intro) => {
                        self.question = 0;
                        self.phase = Phase::Intro;
                        self.play(vec![intro.clone()], false);
                        Next::Wait
                    }
                    None => self.survey_ask(s, 0),
                }
            }
            NodeKind::Subflow(s) => {
                if self.frames.len() >= MAX_DEPTH || self.set.get(&s.flow).is_none() {
                    self.finish(HangupReason::Error);
                    return Next::Stop;
                }
                let entry = self.set.get(&s.flow).map(|f| f.entry.clone());
                self.frames.push(Frame {
                    flow: std::mem::replace(&mut self.flow, s.flow.clone()),
                    resume: s.next.clone(),
                });
                Next::Go(entry)
            }
            NodeKind::Http(h) => self.enter_http(h),
            NodeKind::Say(s) => self.enter_say(s),
            NodeKind::Hangup(h) => {
                self.typeahead.clear();
                match &h.prompt {
                    Some(p) => {
                        self.play(vec![p.clone()], false);
                        self.wait = Wait::HangupPrompt;
                        Next::Wait
                    }
                    None => {
                        self.finish(HangupReason::Normal);
                        Next::Stop
                    }
                }
            }
        }
    }

    pub(super) fn record(&mut self, beep: bool, max_secs: u32, silence_secs: u32) {
        self.answer();
        self.out.push(Action::RecordVoicemail {
            beep,
            max_secs,
            silence_secs,
        });
        self.wait = Wait::Recording;
    }

    pub(super) fn matches(&self, condition: &Condition, now: Time, env: &dyn Environment) -> bool {
        let unix_secs = i64::try_from(now.unix_secs()).unwrap_or(i64::MAX);
        let local = unix_secs.saturating_add(i64::from(env.utc_offset_minutes()) * 60);
        match condition {
            Condition::VarEquals { var, value } => self.vars.get(var) == Some(value),
            Condition::VarPrefix { var, prefix } => self
                .vars
                .get(var)
                .is_some_and(|v| v.starts_with(prefix.as_str())),
            Condition::CallerPrefix(p) => self.facts.caller.starts_with(p.as_str()),
            Condition::Called(c) => self.facts.called == *c,
            Condition::Time { start, end } => {
                let minute = local.rem_euclid(86_400) / 60;
                let (start, end) = (i64::from(*start), i64::from(*end));
                if start < end {
                    (start..end).contains(&minute)
                } else {
                    minute >= start || minute < end
                }
            }
            Condition::Weekdays(days) => {
                // 1970-01-01 was a Thursday (3 with Monday = 0).
                let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
                days.iter().any(|d| i64::from(*d) == weekday)
            }
        }
    }

    pub(super) fn substitute(&self, template: &str) -> String {
        let Some(parts) = template_parts(template) else {
            return template.to_string();
        };
        let mut out = String::new();
        for part in parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Caller => out.push_str(&self.facts.caller),
                TemplatePart::Called => out.push_str(&self.facts.called),
                TemplatePart::Var(name) => {
                    out.push_str(self.vars.get(name).map(String::as_str).unwrap_or(""));
                }
            }
        }
        out
    }
}
