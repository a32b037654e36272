//! The IVR-lookup nodes (issue 18 §2) in the walk: an `http` node builds
//! its request from the call's variables (values escaped for the URL, the
//! JSON body and headers), waits for the answer and maps it to variables
//! and a branch; a `say` node reads a figure aloud from the digit prompts.
//! Part of [`super::Interpreter`].

use super::{Action, HangupReason, Interpreter, Next, Wait};
use crate::ivr::flow::Say;
use crate::ivr::lookup::{
    as_var, field, header_value, url_escape, Http, HttpBranch, HttpMethod, HttpOutcome, HttpRequest,
};
use crate::ivr::parse::{template_parts, TemplatePart};
use crate::ivr::say::speak;

impl Interpreter {
    /// A template with every substituted value passed through `escape`.
    fn fill(&self, template: &str, escape: impl Fn(&str) -> String) -> String {
        let Some(parts) = template_parts(template) else {
            return template.to_string();
        };
        let mut out = String::new();
        for part in parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Caller => out.push_str(&escape(&self.facts.caller)),
                TemplatePart::Called => out.push_str(&escape(&self.facts.called)),
                TemplatePart::Var(name) => {
                    out.push_str(&escape(
                        self.vars.get(name).map(String::as_str).unwrap_or(""),
                    ));
                }
            }
        }
        out
    }

    pub(super) fn enter_http(&mut self, h: &Http) -> Next {
        if self.dot_segment(&h.url) {
            // `.` or `..` in the path would be resolved away by the URL
            // parser (escaped or not): the request is not sent.
            self.vars.insert("http_status".into(), "error".into());
            return match h.target(&HttpBranch::Error) {
                Some(target) => Next::Go(target),
                None => {
                    self.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            };
        }
        let id = self.next_request;
        self.next_request += 1;
        let body = (h.method == HttpMethod::Post).then(|| {
            let object: serde_json::Map<String, serde_json::Value> = h
                .body
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(self.substitute(v))))
                .collect();
            serde_json::Value::Object(object).to_string()
        });
        let request = HttpRequest {
            id,
            method: h.method,
            url: self.fill(&h.url, url_escape),
            headers: h
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), self.fill(v, header_value)))
                .collect(),
            body,
            timeout_secs: h.timeout_secs,
            retries: h.retries,
        };
        self.out.push(Action::HttpRequest(request));
        self.request = Some(id);
        self.wait = Wait::Http;
        if let Some(hold) = &h.hold_prompt {
            self.play(vec![hold.clone()], false);
        }
        self.start_timer(h.deadline_secs());
        Next::Wait
    }

    /// Whether a placeholder in the URL's path stands for `.` or `..`.
    fn dot_segment(&self, url: &str) -> bool {
        let path = url.split(['?', '#']).next().unwrap_or("");
        let Some(parts) = template_parts(path) else {
            return false;
        };
        parts.iter().any(|part| {
            let value = match part {
                TemplatePart::Text(_) => return false,
                TemplatePart::Caller => self.facts.caller.as_str(),
                TemplatePart::Called => self.facts.called.as_str(),
                TemplatePart::Var(name) => self.vars.get(*name).map_or("", String::as_str),
            };
            !value.is_empty() && value.bytes().all(|b| b == b'.')
        })
    }

    pub(super) fn on_http(&mut self, id: u64, outcome: HttpOutcome) -> Next {
        if self.wait != Wait::Http || self.request != Some(id) {
            return Next::Wait;
        }
        self.request = None;
        self.with_node(|me, kind| {
            let crate::ivr::flow::NodeKind::Http(h) = kind else {
                return Next::Wait;
            };
            let branch = me.answered_with(h, outcome);
            match h.target(&branch) {
                Some(target) => Next::Go(target),
                None => {
                    me.finish(HangupReason::Unavailable);
                    Next::Stop
                }
            }
        })
    }

    /// Sets `http_status` and the mapped fields; the branch to take.
    fn answered_with(&mut self, h: &Http, outcome: HttpOutcome) -> HttpBranch {
        let (status, body) = match outcome {
            HttpOutcome::Response { status, body } => (status, body),
            HttpOutcome::Timeout => {
                self.vars.insert("http_status".into(), "timeout".into());
                return HttpBranch::Timeout;
            }
            HttpOutcome::Failed(_) => {
                self.vars.insert("http_status".into(), "error".into());
                return HttpBranch::Error;
            }
        };
        self.vars.insert("http_status".into(), status.to_string());
        let branch = h.branch_for(status);
        if h.set.is_empty() {
            return branch;
        }
        match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(json) => {
                for (var, path) in &h.set {
                    match field(&json, path).and_then(as_var) {
                        Some(v) => {
                            self.vars.insert(var.clone(), v);
                        }
                        None => {
                            self.vars.remove(var);
                        }
                    }
                }
                branch
            }
            // Fields were promised and the answer has none: a 2xx that
            // cannot be used is an error; other statuses branch as they are.
            Err(_) if branch == HttpBranch::Next => {
                for var in h.set.keys() {
                    self.vars.remove(var);
                }
                HttpBranch::Error
            }
            Err(_) => branch,
        }
    }

    pub(super) fn enter_say(&mut self, s: &Say) -> Next {
        let value = self.substitute(&s.value);
        let Some(figure) = speak(&value, s.how) else {
            return Next::Go(s.on_invalid.clone().or_else(|| s.next.clone()));
        };
        let mut prompts = s.before.clone();
        prompts.extend(figure.iter().map(|p| (*p).to_string()));
        prompts.extend(s.after.iter().cloned());
        self.play(prompts, s.interruptible);
        self.wait = Wait::Play {
            interruptible: s.interruptible,
        };
        Next::Wait
    }
}
