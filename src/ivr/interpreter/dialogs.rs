//! The node dialogs with the caller: menus (offers, choices, retries,
//! notices), digit collection (keys, terminators, timeouts, validation)
//! and surveys (questions and scores). Part of [`super::Interpreter`].

use super::{Action, CollectEnd, HangupReason, Interpreter, Next, Phase};
use crate::ivr::flow::{Collect, Menu, Survey};

impl Interpreter {
    pub(super) fn menu_offer(&mut self, m: &Menu, offer: u32) -> Next {
        self.offer = offer;
        self.answer();
        if let Some(key) = self.typeahead.pop_front() {
            return self.menu_choice(m, key);
        }
        self.phase = Phase::Prompt;
        self.play(m.prompts.clone(), true);
        Next::Wait
    }

    pub(super) fn menu_choice(&mut self, m: &Menu, key: char) -> Next {
        self.cancel_timer();
        self.stop_playback();
        match m.options.get(&key) {
            Some(target) => {
                self.vars
                    .insert(format!("menu_{}", self.node), key.to_string());
                Next::Go(Some(target.clone()))
            }
            None => {
                self.typeahead.clear();
                self.menu_fail(m, m.invalid_prompt.clone())
            }
        }
    }

    pub(super) fn menu_fail(&mut self, m: &Menu, notice: Option<String>) -> Next {
        match notice {
            Some(p) => {
                self.phase = Phase::Notice;
                self.play(vec![p], true);
                Next::Wait
            }
            None => self.menu_after_notice(m),
        }
    }

    pub(super) fn menu_after_notice(&mut self, m: &Menu) -> Next {
        if self.offer >= m.retries {
            self.exhausted(m.fallback.clone())
        } else {
            self.menu_offer(m, self.offer + 1)
        }
    }

    pub(super) fn exhausted(&mut self, fallback: Option<String>) -> Next {
        match fallback {
            Some(f) => Next::Go(Some(f)),
            None => {
                self.finish(HangupReason::NoInput);
                Next::Stop
            }
        }
    }

    // ----- collect ----------------------------------------------------

    pub(super) fn collect_offer(&mut self, c: &Collect, offer: u32) -> Next {
        self.offer = offer;
        self.digits.clear();
        self.answer();
        if self.typeahead.is_empty() {
            self.phase = Phase::Prompt;
            self.play(c.prompts.clone(), true);
            return Next::Wait;
        }
        self.phase = Phase::Waiting;
        while let Some(key) = self.typeahead.pop_front() {
            match self.collect_key(c, key, false) {
                Next::Wait => {}
                other => return other,
            }
            if self.phase != Phase::Waiting {
                // Invalid input: a notice plays, or a new offer began.
                return Next::Wait;
            }
        }
        self.start_timer(c.timeout_secs);
        Next::Wait
    }

    /// One key of input; `arm` restarts the inter-digit timer.
    pub(super) fn collect_key(&mut self, c: &Collect, key: char, arm: bool) -> Next {
        if Some(key) == c.terminator {
            return self.collect_done(c, CollectEnd::Terminator);
        }
        self.digits.push(key);
        if self.digits.chars().count() >= c.max_digits as usize {
            return self.collect_done(c, CollectEnd::Max);
        }
        self.phase = Phase::Waiting;
        if arm {
            self.start_timer(c.timeout_secs);
        }
        Next::Wait
    }

    pub(super) fn collect_done(&mut self, c: &Collect, end: CollectEnd) -> Next {
        self.cancel_timer();
        self.stop_playback();
        let count = self.digits.chars().count();
        let valid = count >= c.min_digits as usize
            && count <= c.max_digits as usize
            && c.pattern
                .as_ref()
                .is_none_or(|p| p.0.is_match(&self.digits));
        if valid {
            let digits = std::mem::take(&mut self.digits);
            self.vars.insert(c.var.clone(), digits);
            return Next::Go(c.next.clone());
        }
        self.typeahead.clear();
        let notice = if end == CollectEnd::Timeout && self.digits.is_empty() {
            c.timeout_prompt
                .clone()
                .or_else(|| c.invalid_prompt.clone())
        } else {
            c.invalid_prompt.clone()
        };
        self.digits.clear();
        match notice {
            Some(p) => {
                self.phase = Phase::Notice;
                self.play(vec![p], true);
                Next::Wait
            }
            None => self.collect_after_notice(c),
        }
    }

    pub(super) fn collect_after_notice(&mut self, c: &Collect) -> Next {
        if self.offer >= c.retries {
            self.exhausted(c.fallback.clone())
        } else {
            self.collect_offer(c, self.offer + 1)
        }
    }

    // ----- survey -----------------------------------------------------

    pub(super) fn survey_ask(&mut self, s: &Survey, index: usize) -> Next {
        self.cancel_timer();
        self.replayed = false;
        self.question = index;
        match s.questions.get(index) {
            Some(q) => {
                self.phase = Phase::Prompt;
                self.play(vec![q.prompt.clone()], true);
                Next::Wait
            }
            None => match &s.thanks {
                Some(t) => {
                    self.phase = Phase::Thanks;
                    self.play(vec![t.clone()], false);
                    Next::Wait
                }
                None => Next::Go(s.next.clone()),
            },
        }
    }

    pub(super) fn survey_answer(&mut self, s: &Survey, key: char) -> Next {
        self.cancel_timer();
        self.stop_playback();
        let Some(q) = s.questions.get(self.question) else {
            return Next::Go(s.next.clone());
        };
        if let Some(score) = q.keys.get(&key) {
            self.scores.insert(q.dimension.clone(), *score);
            self.out.push(Action::SurveyScore {
                dimension: q.dimension.clone(),
                score: *score,
                key,
            });
            return self.survey_ask(s, self.question + 1);
        }
        if self.replayed {
            return self.survey_ask(s, self.question + 1);
        }
        self.replayed = true;
        self.phase = Phase::Prompt;
        self.play(vec![q.prompt.clone()], true);
        Next::Wait
    }
}
