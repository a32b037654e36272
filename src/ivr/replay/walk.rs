//! One call walked through a flow set in the interpreter: the recorded
//! version with its inputs reconstructed from the recorded path
//! ([`reconstruct`]), then the edited set fed the same inputs ([`rerun`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::{Destination, RecordedCall, MAX_WAITS};
use crate::ivr::flow::{NodeKind, TransferTarget};
use crate::ivr::interpreter::{Action, CallFacts, Environment, Event, Interpreter, TimerId};
use crate::ivr::validate::FlowSet;
use crate::time::Time;

/// What the caller did at one wait for input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// These keys, one after the other.
    Keys(String),
    /// Nothing until the timer ran out.
    Silence,
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Keys(k) if k.chars().count() == 1 => write!(f, "key {k}"),
            Input::Keys(k) => write!(f, "keys {k}"),
            Input::Silence => write!(f, "no key"),
        }
    }
}

/// A call's walk: its path, destination and the inputs it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Nodes entered up to the destination.
    pub path: Vec<String>,
    /// Where it ended.
    pub destination: Destination,
    /// (path length when given, node, input), in order.
    pub inputs: Vec<(usize, String, Input)>,
    /// Whether the caller was blocked (found by the reconstruction).
    pub blocked: bool,
    /// Where the caller hung up: (node, how many times it had been entered).
    pub hung_up_at: Option<(String, usize)>,
}

/// The environment with the block list's answer fixed.
struct Fixed<'a> {
    env: &'a dyn Environment,
    blocked: bool,
}

impl Environment for Fixed<'_> {
    fn is_open(&self, schedule: &str, at: Time) -> bool {
        self.env.is_open(schedule, at)
    }
    fn area_of(&self, caller: &str) -> Option<(String, String)> {
        self.env.area_of(caller)
    }
    fn is_blocked(&self, _: &str, _: &str) -> bool {
        self.blocked
    }
    fn utc_offset_minutes(&self) -> i32 {
        self.env.utc_offset_minutes()
    }
}

/// Where a run stands after settling.
enum Settled {
    Ended,
    Waiting,
    Stuck,
}

#[derive(Clone)]
struct Run {
    it: Interpreter,
    now: Time,
    playing: bool,
    timer: Option<TimerId>,
    end: Option<Destination>,
    hung_up_at: Option<(String, usize)>,
}

impl Run {
    fn start(
        set: &Arc<FlowSet>,
        flow: &str,
        call: &RecordedCall,
        env: &dyn Environment,
        hung_up_at: Option<(String, usize)>,
    ) -> Result<Self, String> {
        let facts = CallFacts {
            caller: call.caller.clone(),
            called: call.called.clone(),
            tenant: call.tenant.clone(),
        };
        let it = Interpreter::new(set.clone(), flow, facts).map_err(|e| e.to_string())?;
        let mut run = Run {
            it,
            now: call.started_at,
            playing: false,
            timer: None,
            end: None,
            hung_up_at,
        };
        let actions = run.it.start(run.now, env);
        run.apply(actions);
        Ok(run)
    }

    fn node(&self) -> String {
        self.it.path().last().cloned().unwrap_or_default()
    }

    fn apply(&mut self, actions: Vec<Action>) {
        let mut end = None;
        for a in actions {
            match a {
                Action::Play { .. } => self.playing = true,
                Action::StopPlayback => self.playing = false,
                Action::StartTimer { id, .. } => self.timer = Some(id),
                Action::CancelTimer(id) if self.timer == Some(id) => self.timer = None,
                Action::Enqueue { group, .. } => end = end.or(Some(Destination::Queue(group))),
                Action::Transfer(t) => {
                    let to = match t {
                        TransferTarget::Agent(a) => format!("agent {a}"),
                        TransferTarget::Group(g) => format!("group {g}"),
                        TransferTarget::Number { number, .. } => format!("number {number}"),
                    };
                    end = end.or(Some(Destination::Transfer(to)));
                }
                Action::RecordVoicemail { .. } => {
                    end = end.or(Some(Destination::Voicemail(self.node())));
                }
                Action::Hangup { reason } => {
                    end = end.or(Some(Destination::Hangup {
                        node: self.node(),
                        reason: reason.as_str().to_string(),
                    }));
                }
                _ => {}
            }
        }
        if end.is_none() {
            if let Some((node, times)) = &self.hung_up_at {
                let entered = self.it.path().iter().filter(|n| *n == node).count();
                if entered >= *times {
                    end = Some(Destination::CallerHungUp(node.clone()));
                }
            }
        }
        if self.end.is_none() {
            self.end = end;
        }
    }

    /// Prompts played to their end until the walk ends or waits for input.
    fn settle(&mut self, env: &dyn Environment) -> Settled {
        for _ in 0..crate::ivr::interpreter::MAX_STEPS {
            if self.end.is_some() {
                return Settled::Ended;
            }
            if self.it.is_finished() {
                return Settled::Stuck;
            }
            if self.playing {
                self.playing = false;
                let actions = self.it.handle(Event::PromptFinished, self.now, env);
                self.apply(actions);
                continue;
            }
            return if self.timer.is_some() {
                Settled::Waiting
            } else {
                Settled::Stuck
            };
        }
        Settled::Stuck
    }

    fn give(&mut self, input: &Input, env: &dyn Environment) {
        match input {
            Input::Keys(keys) => {
                for k in keys.chars() {
                    if self.end.is_some() {
                        return;
                    }
                    let actions = self.it.handle(Event::Key(k), self.now, env);
                    self.apply(actions);
                }
            }
            Input::Silence => {
                if let Some(id) = self.timer.take() {
                    let actions = self.it.handle(Event::Timer(id), self.now, env);
                    self.apply(actions);
                }
            }
        }
    }
}

fn is_prefix(short: &[String], long: &[String]) -> bool {
    short.len() <= long.len() && short.iter().zip(long).all(|(a, b)| a == b)
}

/// The inputs worth trying at the node waiting now, likeliest first.
fn candidates(run: &Run, set: &FlowSet, call: &RecordedCall) -> Vec<Input> {
    let node = run.it.current_node();
    let mut out = Vec::new();
    if let Some(key) = call.vars.get(&format!("menu_{node}")) {
        out.push(Input::Keys(key.clone()));
    }
    let kind = set
        .get(run.it.current_flow())
        .and_then(|f| f.nodes.get(node))
        .map(|n| &n.kind);
    if let Some(NodeKind::Collect(c)) = kind {
        if let Some(digits) = call.vars.get(&c.var) {
            if let Some(t) = c.terminator {
                out.push(Input::Keys(format!("{digits}{t}")));
            }
            out.push(Input::Keys(digits.clone()));
        }
        out.push(Input::Silence);
    } else {
        // Silence before any key nothing recorded: a menu's last offer
        // goes to its fallback on silence and on an unknown key alike.
        out.push(Input::Silence);
        out.extend("0123456789*#".chars().map(|k| Input::Keys(k.to_string())));
    }
    out
}

/// Whether the recorded call's walk ended with the caller hanging up in
/// the IVR, and where: the last recorded node, when it is not itself a
/// destination.
fn hang_up_marker(set: &FlowSet, flow: &str, call: &RecordedCall) -> Option<(String, usize)> {
    if !call.caller_hung_up || call.hangup_reason.as_deref() == Some("no-input") {
        return None;
    }
    let last = call.path.last()?;
    let (f, n) = match last.split_once('/') {
        Some((f, n)) => (f, n),
        None => (flow, last.as_str()),
    };
    let kind = set.get(f).and_then(|f| f.nodes.get(n)).map(|n| &n.kind);
    match kind {
        Some(
            NodeKind::Queue(_)
            | NodeKind::Transfer(_)
            | NodeKind::Voicemail(_)
            | NodeKind::Hangup(_),
        ) => None,
        _ => Some((
            last.clone(),
            call.path.iter().filter(|p| *p == last).count(),
        )),
    }
}

/// Walk the recorded version again, finding at each wait the input that
/// follows the recorded path.
pub fn reconstruct(
    set: &Arc<FlowSet>,
    flow: &str,
    call: &RecordedCall,
    env: &dyn Environment,
) -> Result<Walk, String> {
    let marker = hang_up_marker(set, flow, call);
    let mut last_err = String::new();
    for blocked in [false, true] {
        let env = Fixed { env, blocked };
        match follow(set, flow, call, &env, marker.clone()) {
            Ok(mut walk) => {
                walk.blocked = blocked;
                return Ok(walk);
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

fn follow(
    set: &Arc<FlowSet>,
    flow: &str,
    call: &RecordedCall,
    env: &dyn Environment,
    marker: Option<(String, usize)>,
) -> Result<Walk, String> {
    let unfollowed = |at: &str| {
        format!(
            "the recorded path is not walked by version {} (at {at})",
            call.version
        )
    };
    let mut run = Run::start(set, flow, call, env, marker.clone())?;
    let mut inputs = Vec::new();
    for _ in 0..MAX_WAITS {
        if !is_prefix(run.it.path(), &call.path) {
            return Err(unfollowed(&run.node()));
        }
        match run.settle(env) {
            Settled::Ended => {
                if !is_prefix(run.it.path(), &call.path) {
                    return Err(unfollowed(&run.node()));
                }
                return Ok(Walk {
                    path: run.it.path().to_vec(),
                    destination: run
                        .end
                        .clone()
                        .unwrap_or(Destination::CallerHungUp(run.node())),
                    inputs,
                    blocked: false,
                    hung_up_at: marker,
                });
            }
            Settled::Stuck => return Err(unfollowed(&run.node())),
            Settled::Waiting => {}
        }
        let len = run.it.path().len();
        let mut chosen = None;
        let mut standing = None;
        for c in candidates(&run, set, call) {
            let mut trial = run.clone();
            trial.give(&c, env);
            let path = trial.it.path();
            if !is_prefix(path, &call.path) {
                continue;
            }
            if path.len() > len || (trial.end.is_some() && len == call.path.len()) {
                chosen = Some((c, trial));
                break;
            }
            // A wait that does not move on: silence rather than a key the
            // menu does not know (nothing recorded says a key was pressed).
            if trial.end.is_none() && (standing.is_none() || c == Input::Silence) {
                standing = Some((c, trial));
            }
        }
        let Some((input, next)) = chosen.or(standing) else {
            return Err(unfollowed(&run.node()));
        };
        inputs.push((len, run.node(), input));
        run = next;
    }
    Err(format!("more than {MAX_WAITS} waits for input"))
}

/// Feed a reconstructed walk's inputs to the edited set: each node gets the
/// inputs the call gave at that node, in order.
pub fn rerun(
    set: &Arc<FlowSet>,
    flow: &str,
    call: &RecordedCall,
    before: &Walk,
    env: &dyn Environment,
) -> Result<Walk, String> {
    let env = Fixed {
        env,
        blocked: before.blocked,
    };
    let mut script: BTreeMap<String, VecDeque<Input>> = BTreeMap::new();
    for (_, node, input) in &before.inputs {
        script
            .entry(node.clone())
            .or_default()
            .push_back(input.clone());
    }
    let mut run = Run::start(set, flow, call, &env, before.hung_up_at.clone())?;
    let mut inputs = Vec::new();
    for _ in 0..MAX_WAITS {
        match run.settle(&env) {
            Settled::Ended => {
                return Ok(Walk {
                    path: run.it.path().to_vec(),
                    destination: run
                        .end
                        .clone()
                        .unwrap_or(Destination::CallerHungUp(run.node())),
                    inputs,
                    blocked: before.blocked,
                    hung_up_at: before.hung_up_at.clone(),
                });
            }
            Settled::Stuck => return Err(format!("the edited flow stops at {}", run.node())),
            Settled::Waiting => {}
        }
        let node = run.node();
        let Some(input) = script.get_mut(&node).and_then(VecDeque::pop_front) else {
            return Err(format!(
                "the edited flow asks for input at {node} where the call gave none"
            ));
        };
        inputs.push((run.it.path().len(), node, input.clone()));
        run.give(&input, &env);
    }
    Err(format!("more than {MAX_WAITS} waits for input"))
}
