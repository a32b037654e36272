//! The conference mixer: three-way calls and supervisor listen / whisper /
//! barge on a live call, plus the two recording channels.
//!
//! Requirement (media engine issue): "N-party conference for three-way
//! calls (agent + caller + external party; join and leave mid-call), and
//! supervisor modes on a live call: listen (hears both, heard by nobody),
//! whisper (heard by the agent only), barge (all hear all); mode changes
//! without clicks or gaps. The recording captures what the caller heard
//! and what the agent side said, never the whisper on the caller's
//! channel."
//!
//! A pure core: per 20 ms tick the media shell [`Mixer::push`]es each
//! participant's decoded 8 kHz frame (a participant that pushed nothing
//! is silence: lost packets, on hold, muted), then [`Mixer::mix`] yields
//! for every participant the sum of what it may hear, never its own
//! voice, accumulated in `i32` and clamped to `i16` (saturation, not
//! wrap-around). No clock, no I/O, no allocation per tick once the
//! participant set is stable.
//!
//! # Hearing matrix
//!
//! Row = speaker, column = listener. "—" = never hears itself.
//!
//! | speaker ↓ / listener →     | Caller | Agent A | External | Supervisor (any mode) | rec. left | rec. right |
//! |----------------------------|--------|---------|----------|-----------------------|-----------|------------|
//! | Caller                     | —      | yes     | yes      | yes                   | **yes**   | no         |
//! | Agent                      | yes    | —       | yes      | yes                   | no        | **yes**    |
//! | External                   | yes    | yes     | —        | yes                   | no        | **yes**    |
//! | Supervisor `Listen`        | no     | no      | no       | no                    | no        | no         |
//! | Supervisor `Whisper{to:A}` | no     | **A only** | no    | no                    | no        | **no**     |
//! | Supervisor `Barge`         | yes    | yes     | yes      | yes                   | no        | yes        |
//!
//! So a listening supervisor hears caller, agent and external party (and
//! a barging colleague) while nobody hears them; a whisper reaches only
//! the named agent; a barging supervisor is an ordinary conference member.
//! Several participants may share a role (e.g. two agents in a consult);
//! the rules are per role, whisper is per agent id.
//!
//! # Recording channels
//!
//! [`Mixer::recording_frames`] gives a stereo pair per tick:
//! * **left = the caller's own voice** (the sum of all `Caller`
//!   participants, normally one);
//! * **right = everything the caller hears** — agent, external party and a
//!   barging supervisor — computed with exactly the caller's hearing
//!   rules and ramps, so a whisper (which the caller never hears) can never
//!   appear in it, and what the caller heard is left + right's "far end".
//!
//! Keeping the caller's voice on its own channel lets a quality reviewer
//! (or the speech-to-text work order pipeline) separate citizen from
//! service side, and the right channel is by construction what the
//! citizen was played: the recording is evidence of what the citizen
//! heard, nothing more.
//!
//! # Clicks and gaps
//!
//! Every (speaker, listener) pair remembers whether it was audible on the
//! previous tick. When a join, leave or mode change makes a contribution
//! appear or disappear, the next tick applies a linear ramp of
//! [`RAMP_SAMPLES`] (5 ms) to that contribution only — gain `k/40` rising
//! (or falling) over the first 40 samples — while every contribution that
//! stays audible is passed untouched, so a mode change neither clicks nor
//! leaves a gap. A leaving participant stays one more tick, its last
//! pushed frame fading out, and is then removed. Changes take effect on
//! the next [`Mixer::mix`].

use std::fmt;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// One 20 ms frame of 8 kHz mono 16-bit PCM.
pub type Frame = [i16; FRAME_SAMPLES];
/// Length of the crossfade ramp on an appearing/disappearing
/// contribution: 40 samples = 5 ms at 8 kHz.
pub const RAMP_SAMPLES: usize = 40;

/// A participant (call leg) in the mix, chosen by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a participant is to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The citizen who called the hotline.
    Caller,
    /// A hotline agent.
    Agent,
    /// A third party conferenced in (another department, interpreter).
    External,
    /// A supervisor monitoring the call; see [`Mode`].
    Supervisor,
}

/// A supervisor's mode. Supervisors join in [`Mode::Listen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Hears everyone, heard by nobody.
    Listen,
    /// Hears everyone, heard only by the agent `to`.
    Whisper {
        /// The agent coached.
        to: ParticipantId,
    },
    /// An ordinary conference member: all hear all.
    Barge,
}

/// A refused mixer operation, naming the participant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    /// `join` with an id already in the mix.
    #[error("participant {0} has already joined the mix")]
    AlreadyJoined(ParticipantId),
    /// The id is not in the mix (or has left).
    #[error("participant {0} is not in the mix")]
    NotJoined(ParticipantId),
    /// Only supervisors have a mode.
    #[error("participant {0} is a {1:?}, not a supervisor: only supervisors have a mode")]
    NotSupervisor(ParticipantId, Role),
    /// A whisper must name an agent present in the mix.
    #[error("whisper target {0} is not an agent in the mix")]
    NotAnAgent(ParticipantId),
}

#[derive(Debug, Clone)]
struct Slot {
    id: ParticipantId,
    role: Role,
    mode: Mode,
    input: Frame,
    has_input: bool,
    leaving: bool,
}

/// Who a contribution is for: a participant, or a recording channel.
#[derive(Clone, Copy)]
enum Listener<'a> {
    Slot(&'a Slot),
    RecordLeft,
    RecordRight,
}

/// Whether `listener` hears `speaker` now (the hearing matrix).
fn hears(listener: Listener<'_>, speaker: &Slot) -> bool {
    if speaker.leaving {
        return false;
    }
    match listener {
        Listener::Slot(l) => {
            if l.id == speaker.id || l.leaving {
                return false;
            }
            match (speaker.role, speaker.mode) {
                (Role::Supervisor, Mode::Listen) => false,
                (Role::Supervisor, Mode::Whisper { to }) => l.id == to,
                _ => true,
            }
        }
        Listener::RecordLeft => speaker.role == Role::Caller,
        // Exactly what a caller hears, minus callers themselves.
        Listener::RecordRight => !matches!(
            (speaker.role, speaker.mode),
            (Role::Caller, _) | (Role::Supervisor, Mode::Listen | Mode::Whisper { .. })
        ),
    }
}

/// Add `x` to `acc` with the gain dictated by the pair's previous and
/// current audibility: steady, fade in, fade out or nothing.
fn accumulate(acc: &mut [i32; FRAME_SAMPLES], x: &Frame, was: bool, is: bool) {
    const R: i32 = RAMP_SAMPLES as i32;
    match (was, is) {
        (false, false) => {}
        (true, true) => {
            for (a, &s) in acc.iter_mut().zip(x) {
                *a += i32::from(s);
            }
        }
        (false, true) => {
            for (i, (a, &s)) in acc.iter_mut().zip(x).enumerate() {
                let g = (i as i32 + 1).min(R);
                *a += i32::from(s) * g / R;
            }
        }
        (true, false) => {
            for (i, (a, &s)) in acc.iter_mut().zip(x).enumerate().take(RAMP_SAMPLES) {
                let g = R - (i as i32 + 1);
                *a += i32::from(s) * g / R;
            }
        }
    }
}

fn clamp(acc: &[i32; FRAME_SAMPLES]) -> Frame {
    let mut out = [0i16; FRAME_SAMPLES];
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
    out
}

/// The N-party mixer of one call. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct Mixer {
    slots: Vec<Slot>,
    /// `was[l][s]`: listener slot `l` heard speaker slot `s` last tick.
    was: Vec<Vec<bool>>,
    /// Same for the two recording channels.
    rec_was: [Vec<bool>; 2],
    outputs: Vec<(ParticipantId, Frame)>,
    recording: (Frame, Frame),
}

impl Default for Mixer {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            was: Vec::new(),
            rec_was: [Vec::new(), Vec::new()],
            outputs: Vec::new(),
            recording: ([0; FRAME_SAMPLES], [0; FRAME_SAMPLES]),
        }
    }
}

impl Mixer {
    /// An empty mix.
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&self, id: ParticipantId) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id && !s.leaving)
    }

    fn remove_slot(&mut self, i: usize) {
        self.slots.remove(i);
        self.was.remove(i);
        for row in self.was.iter_mut().chain(self.rec_was.iter_mut()) {
            row.remove(i);
        }
    }

    /// Add a participant; it fades in on the next tick. Supervisors start
    /// in [`Mode::Listen`]. Re-joining an id that is still fading out
    /// replaces it at once.
    ///
    /// # Errors
    /// [`MixerError::AlreadyJoined`] if the id is in the mix.
    pub fn join(&mut self, id: ParticipantId, role: Role) -> Result<(), MixerError> {
        if self.index(id).is_some() {
            return Err(MixerError::AlreadyJoined(id));
        }
        if let Some(i) = self.slots.iter().position(|s| s.id == id) {
            self.remove_slot(i);
        }
        self.slots.push(Slot {
            id,
            role,
            mode: Mode::Listen,
            input: [0; FRAME_SAMPLES],
            has_input: false,
            leaving: false,
        });
        for row in self.was.iter_mut().chain(self.rec_was.iter_mut()) {
            row.push(false);
        }
        self.was.push(vec![false; self.slots.len()]);
        tracing::debug!(participant = %id, ?role, "joined mix");
        Ok(())
    }

    /// Remove a participant: on the next tick it gets no output and its
    /// voice (the frame pushed for that tick, if any) fades out; then it
    /// is gone.
    ///
    /// # Errors
    /// [`MixerError::NotJoined`] if the id is not in the mix.
    pub fn leave(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        let i = self.index(id).ok_or(MixerError::NotJoined(id))?;
        self.slots[i].leaving = true;
        tracing::debug!(participant = %id, "leaving mix");
        Ok(())
    }

    /// Change a supervisor's mode; applies from the next tick with a
    /// 5 ms crossfade on what appears or disappears.
    ///
    /// # Errors
    /// Not in the mix, not a supervisor, or a whisper whose target is not
    /// an agent in the mix.
    pub fn set_mode(&mut self, id: ParticipantId, mode: Mode) -> Result<(), MixerError> {
        let i = self.index(id).ok_or(MixerError::NotJoined(id))?;
        let role = self.slots[i].role;
        if role != Role::Supervisor {
            return Err(MixerError::NotSupervisor(id, role));
        }
        if let Mode::Whisper { to } = mode {
            let is_agent = self
                .index(to)
                .is_some_and(|t| self.slots[t].role == Role::Agent);
            if !is_agent {
                return Err(MixerError::NotAnAgent(to));
            }
        }
        self.slots[i].mode = mode;
        tracing::debug!(participant = %id, ?mode, "supervisor mode");
        Ok(())
    }

    /// This tick's frame from `id` (replaces one already pushed this tick).
    /// A participant that pushes nothing is silent for the tick. A leaving
    /// participant's frame is used for its fade-out.
    ///
    /// # Errors
    /// [`MixerError::NotJoined`] for an unknown id.
    pub fn push(&mut self, id: ParticipantId, frame: &Frame) -> Result<(), MixerError> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(MixerError::NotJoined(id))?;
        slot.input = *frame;
        slot.has_input = true;
        Ok(())
    }

    /// Mix this tick: for every participant (in join order) the clamped
    /// sum of what it may hear. Also computes [`Self::recording_frames`],
    /// then clears the inputs and drops participants that left.
    pub fn mix(&mut self) -> impl Iterator<Item = (ParticipantId, Frame)> + '_ {
        let n = self.slots.len();
        self.outputs.clear();
        for li in 0..n {
            let listener = &self.slots[li];
            let mut acc = [0i32; FRAME_SAMPLES];
            for (si, speaker) in self.slots.iter().enumerate() {
                let is = hears(Listener::Slot(listener), speaker);
                if speaker.has_input {
                    accumulate(&mut acc, &speaker.input, self.was[li][si], is);
                }
                self.was[li][si] = is;
            }
            if !listener.leaving {
                self.outputs.push((listener.id, clamp(&acc)));
            }
        }
        let mut rec = [[0i32; FRAME_SAMPLES]; 2];
        for (ch, who) in [Listener::RecordLeft, Listener::RecordRight]
            .into_iter()
            .enumerate()
        {
            for (si, speaker) in self.slots.iter().enumerate() {
                let is = hears(who, speaker);
                if speaker.has_input {
                    accumulate(&mut rec[ch], &speaker.input, self.rec_was[ch][si], is);
                }
                self.rec_was[ch][si] = is;
            }
        }
        self.recording = (clamp(&rec[0]), clamp(&rec[1]));
        for s in &mut self.slots {
            s.has_input = false;
        }
        while let Some(i) = self.slots.iter().position(|s| s.leaving) {
            self.remove_slot(i);
        }
        self.outputs.iter().copied()
    }

    /// The last tick's recording pair: (left = the caller's own voice,
    /// right = everything the caller heard; never a whisper).
    pub fn recording_frames(&self) -> (Frame, Frame) {
        self.recording
    }

    /// Participants in the mix (join order) with their roles; leaving
    /// ones excluded.
    pub fn participants(&self) -> impl Iterator<Item = (ParticipantId, Role)> + '_ {
        self.slots
            .iter()
            .filter(|s| !s.leaving)
            .map(|s| (s.id, s.role))
    }

    /// A supervisor's mode; `None` for other roles or unknown ids.
    pub fn mode(&self, id: ParticipantId) -> Option<Mode> {
        self.index(id)
            .map(|i| &self.slots[i])
            .filter(|s| s.role == Role::Supervisor)
            .map(|s| s.mode)
    }

    /// Number of participants in the mix.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| !s.leaving).count()
    }

    /// Nobody in the mix.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: ParticipantId = ParticipantId(1);
    const AGENT: ParticipantId = ParticipantId(2);
    const EXT: ParticipantId = ParticipantId(3);
    const SUP: ParticipantId = ParticipantId(4);

    fn dc(v: i16) -> Frame {
        [v; FRAME_SAMPLES]
    }

    /// A frame that identifies its speaker: a distinct constant per id
    /// (powers of two, so any sum tells who is in it).
    fn voice(id: ParticipantId) -> Frame {
        dc(1 << id.0)
    }

    fn tick(m: &mut Mixer, speakers: &[ParticipantId]) -> Vec<(ParticipantId, Frame)> {
        for &id in speakers {
            m.push(id, &voice(id)).expect("joined");
        }
        m.mix().collect()
    }

    fn out(outs: &[(ParticipantId, Frame)], id: ParticipantId) -> Frame {
        outs.iter()
            .find(|(i, _)| *i == id)
            .map(|(_, f)| *f)
            .expect("participant output")
    }

    /// Steady state (second tick of a stable setup): the set of voices
    /// heard, decoded from the constant.
    fn heard(m: &mut Mixer, who: ParticipantId, speakers: &[ParticipantId]) -> i16 {
        tick(m, speakers);
        let outs = tick(m, speakers);
        let f = out(&outs, who);
        assert!(f.iter().all(|&s| s == f[0]), "steady state not flat: {f:?}");
        f[0]
    }

    fn bits(ids: &[ParticipantId]) -> i16 {
        ids.iter().map(|id| 1i16 << id.0).sum()
    }

    fn call(with_ext: bool, with_sup: bool) -> Mixer {
        let mut m = Mixer::new();
        m.join(CALLER, Role::Caller).expect("join");
        m.join(AGENT, Role::Agent).expect("join");
        if with_ext {
            m.join(EXT, Role::External).expect("join");
        }
        if with_sup {
            m.join(SUP, Role::Supervisor).expect("join");
        }
        m
    }

    const ALL: [ParticipantId; 4] = [CALLER, AGENT, EXT, SUP];

    #[test]
    fn two_party_each_hears_the_other() {
        let mut m = call(false, false);
        let all = [CALLER, AGENT];
        assert_eq!(heard(&mut m, CALLER, &all), bits(&[AGENT]));
        assert_eq!(heard(&mut m, AGENT, &all), bits(&[CALLER]));
        let (l, r) = m.recording_frames();
        assert_eq!((l[0], r[0]), (bits(&[CALLER]), bits(&[AGENT])));
    }

    #[test]
    fn three_party_each_hears_the_other_two() {
        let mut m = call(true, false);
        let all = [CALLER, AGENT, EXT];
        assert_eq!(heard(&mut m, CALLER, &all), bits(&[AGENT, EXT]));
        assert_eq!(heard(&mut m, AGENT, &all), bits(&[CALLER, EXT]));
        assert_eq!(heard(&mut m, EXT, &all), bits(&[CALLER, AGENT]));
        let (l, r) = m.recording_frames();
        assert_eq!((l[0], r[0]), (bits(&[CALLER]), bits(&[AGENT, EXT])));
    }

    #[test]
    fn listen_hears_all_and_is_heard_by_nobody() {
        let mut m = call(true, true);
        assert_eq!(m.mode(SUP), Some(Mode::Listen));
        assert_eq!(heard(&mut m, SUP, &ALL), bits(&[CALLER, AGENT, EXT]));
        assert_eq!(heard(&mut m, CALLER, &ALL), bits(&[AGENT, EXT]));
        assert_eq!(heard(&mut m, AGENT, &ALL), bits(&[CALLER, EXT]));
        assert_eq!(heard(&mut m, EXT, &ALL), bits(&[CALLER, AGENT]));
        let (l, r) = m.recording_frames();
        assert_eq!((l[0], r[0]), (bits(&[CALLER]), bits(&[AGENT, EXT])));
    }

    #[test]
    fn whisper_reaches_only_the_agent_never_caller_or_recording() {
        let mut m = call(true, true);
        m.set_mode(SUP, Mode::Whisper { to: AGENT }).expect("mode");
        assert_eq!(heard(&mut m, AGENT, &ALL), bits(&[CALLER, EXT, SUP]));
        assert_eq!(heard(&mut m, CALLER, &ALL), bits(&[AGENT, EXT]));
        assert_eq!(heard(&mut m, EXT, &ALL), bits(&[CALLER, AGENT]));
        assert_eq!(heard(&mut m, SUP, &ALL), bits(&[CALLER, AGENT, EXT]));
        let (l, r) = m.recording_frames();
        assert_eq!((l[0], r[0]), (bits(&[CALLER]), bits(&[AGENT, EXT])));
    }

    /// Only the supervisor speaks, loud, switching between listen and
    /// whisper (and the agent leaving and coming back) for many ticks:
    /// not one sample reaches the caller, the external party or the
    /// recording, including on the very first tick after joining.
    #[test]
    fn whisper_never_leaks_through_any_sequence_of_changes() {
        let mut m = call(true, true);
        m.set_mode(SUP, Mode::Whisper { to: AGENT }).expect("mode");
        let mut agent_heard = 0usize;
        for t in 0..200u64 {
            match t % 7 {
                0 => m.set_mode(SUP, Mode::Listen).expect("mode"),
                3 if m.participants().any(|(id, _)| id == AGENT) => {
                    m.set_mode(SUP, Mode::Whisper { to: AGENT }).expect("mode");
                }
                _ => {}
            }
            if t % 50 == 20 {
                m.leave(AGENT).expect("leave");
            }
            if t % 50 == 22 {
                m.join(AGENT, Role::Agent).expect("join");
                m.set_mode(SUP, Mode::Whisper { to: AGENT }).expect("mode");
            }
            let x: Frame = std::array::from_fn(|i| if (i / 4) % 2 == 0 { 30000 } else { -30000 });
            m.push(SUP, &x).expect("push");
            let outs: Vec<_> = m.mix().collect();
            for (id, f) in &outs {
                if *id == AGENT {
                    agent_heard += usize::from(f.iter().any(|&s| s != 0));
                } else {
                    assert!(
                        f.iter().all(|&s| s == 0),
                        "tick {t}: {id} heard the whisper"
                    );
                }
            }
            let (l, r) = m.recording_frames();
            assert!(
                l.iter().chain(&r).all(|&s| s == 0),
                "tick {t}: whisper recorded"
            );
        }
        assert!(agent_heard > 50, "the agent should hear the whisper");
    }

    #[test]
    fn barge_all_hear_all() {
        let mut m = call(true, true);
        m.set_mode(SUP, Mode::Barge).expect("mode");
        assert_eq!(heard(&mut m, CALLER, &ALL), bits(&[AGENT, EXT, SUP]));
        assert_eq!(heard(&mut m, AGENT, &ALL), bits(&[CALLER, EXT, SUP]));
        assert_eq!(heard(&mut m, EXT, &ALL), bits(&[CALLER, AGENT, SUP]));
        assert_eq!(heard(&mut m, SUP, &ALL), bits(&[CALLER, AGENT, EXT]));
        let (l, r) = m.recording_frames();
        assert_eq!((l[0], r[0]), (bits(&[CALLER]), bits(&[AGENT, EXT, SUP])));
    }

    #[test]
    fn join_and_leave_mid_call() {
        let mut m = call(false, false);
        let all = [CALLER, AGENT, EXT];
        assert_eq!(heard(&mut m, CALLER, &[CALLER, AGENT]), bits(&[AGENT]));
        m.join(EXT, Role::External).expect("join");
        assert_eq!(m.len(), 3);
        assert_eq!(heard(&mut m, CALLER, &all), bits(&[AGENT, EXT]));
        m.leave(AGENT).expect("leave");
        // Leaving: no output for the agent on the fade-out tick, then gone.
        let outs = tick(&mut m, &all);
        assert!(outs.iter().all(|(id, _)| *id != AGENT));
        assert_eq!(m.len(), 2);
        assert_eq!(m.push(AGENT, &dc(1)), Err(MixerError::NotJoined(AGENT)));
        assert_eq!(heard(&mut m, CALLER, &[CALLER, EXT]), bits(&[EXT]));
        assert_eq!(heard(&mut m, EXT, &[CALLER, EXT]), bits(&[CALLER]));
        assert_eq!(
            m.participants().collect::<Vec<_>>(),
            [(CALLER, Role::Caller), (EXT, Role::External)]
        );
        // Leave then re-join before the next tick.
        m.leave(EXT).expect("leave");
        m.join(EXT, Role::External).expect("rejoin");
        assert_eq!(heard(&mut m, CALLER, &[CALLER, EXT]), bits(&[EXT]));
    }

    #[test]
    fn errors_name_the_participant() {
        let mut m = call(false, true);
        assert_eq!(
            m.join(AGENT, Role::Agent),
            Err(MixerError::AlreadyJoined(AGENT))
        );
        assert_eq!(m.leave(EXT), Err(MixerError::NotJoined(EXT)));
        assert_eq!(
            m.set_mode(AGENT, Mode::Barge),
            Err(MixerError::NotSupervisor(AGENT, Role::Agent))
        );
        assert_eq!(
            m.set_mode(SUP, Mode::Whisper { to: CALLER }),
            Err(MixerError::NotAnAgent(CALLER))
        );
        assert_eq!(
            m.set_mode(SUP, Mode::Whisper { to: EXT }),
            Err(MixerError::NotAnAgent(EXT))
        );
        assert_eq!(m.mode(AGENT), None);
        assert!(MixerError::NotJoined(EXT).to_string().contains("#3"));
        assert!(m.leave(AGENT).is_ok());
        assert_eq!(m.leave(AGENT), Err(MixerError::NotJoined(AGENT)));
    }

    #[test]
    fn saturation_clamps_instead_of_wrapping() {
        let mut m = call(true, false);
        for _ in 0..2 {
            m.push(CALLER, &dc(30000)).expect("push");
            m.push(AGENT, &dc(30000)).expect("push");
            m.push(EXT, &dc(-30000)).expect("push");
            let _ = m.mix().count();
        }
        m.push(CALLER, &dc(30000)).expect("push");
        m.push(AGENT, &dc(30000)).expect("push");
        m.push(EXT, &dc(-32768)).expect("push");
        let outs: Vec<_> = m.mix().collect();
        assert!(out(&outs, EXT).iter().all(|&s| s == i16::MAX));
        assert!(out(&outs, CALLER).iter().all(|&s| s == -2768));
        let mut m = call(true, false);
        for _ in 0..2 {
            m.push(AGENT, &dc(-30000)).expect("push");
            m.push(EXT, &dc(-30000)).expect("push");
            let _ = m.mix().count();
        }
        let (_, r) = m.recording_frames();
        assert!(r.iter().all(|&s| s == i16::MIN));
    }

    fn max_step(samples: &[i16]) -> i32 {
        samples
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    /// Supervisor speaks a DC level of 16000 (the worst case for a click);
    /// the agent a DC of 4000. Switching listen → whisper → barge → listen
    /// must never step by more than 16000/40 (+1 for rounding) from one
    /// sample to the next in anyone's output, where a hard switch would
    /// step by the full 16000; contributions that stay audible are
    /// untouched (no gap).
    #[test]
    fn mode_changes_crossfade_without_clicks_or_gaps() {
        const SUP_DC: i16 = 16000;
        const AGENT_DC: i16 = 4000;
        let mut m = call(false, true);
        let mut streams: std::collections::HashMap<ParticipantId, Vec<i16>> = Default::default();
        let mut rec_right = vec![];
        let modes = [
            None,
            Some(Mode::Whisper { to: AGENT }),
            None,
            Some(Mode::Barge),
            None,
            Some(Mode::Listen),
            None,
            Some(Mode::Barge),
            Some(Mode::Whisper { to: AGENT }),
            None,
        ];
        // Warm up so every steady contribution is established.
        for _ in 0..2 {
            m.push(SUP, &dc(SUP_DC)).expect("push");
            m.push(AGENT, &dc(AGENT_DC)).expect("push");
            let _ = m.mix().count();
        }
        for mode in modes {
            if let Some(mode) = mode {
                m.set_mode(SUP, mode).expect("mode");
            }
            m.push(SUP, &dc(SUP_DC)).expect("push");
            m.push(AGENT, &dc(AGENT_DC)).expect("push");
            for (id, f) in m.mix() {
                streams.entry(id).or_default().extend_from_slice(&f);
            }
            rec_right.extend_from_slice(&m.recording_frames().1);
        }
        let limit = i32::from(SUP_DC) / RAMP_SAMPLES as i32 + 1;
        for (id, s) in &streams {
            let step = max_step(s);
            println!("max step for {id}: {step} (hard switch: {SUP_DC})");
            assert!(step <= limit, "{id}: step {step} > {limit}");
        }
        assert!(max_step(&rec_right) <= limit);
        // The caller always hears the agent fully: never below AGENT_DC.
        let caller = &streams[&CALLER];
        assert!(
            caller.iter().all(|&s| s >= AGENT_DC),
            "gap in the agent's voice"
        );
        // The agent hears the supervisor through whisper→barge and
        // barge→whisper without any dip.
        let agent = &streams[&AGENT];
        let whisper_to_barge = &agent[2 * 160..4 * 160];
        assert!(whisper_to_barge.iter().all(|&s| s == SUP_DC));
        let barge_to_whisper = &agent[8 * 160..10 * 160];
        assert!(barge_to_whisper.iter().all(|&s| s == SUP_DC));
        // The ramp is complete within 5 ms: caller at full level by sample 40.
        let barge_tick = &caller[3 * 160..4 * 160];
        assert_eq!(barge_tick[RAMP_SAMPLES - 1], AGENT_DC + SUP_DC);
        assert!(barge_tick[0] < AGENT_DC + SUP_DC / 10);
    }

    #[test]
    fn join_and_leave_fade_in_and_out() {
        let mut m = call(false, false);
        let mut caller = vec![];
        for t in 0..6 {
            match t {
                1 => m.join(EXT, Role::External).expect("join"),
                4 => m.leave(EXT).expect("leave"),
                _ => {}
            }
            m.push(AGENT, &dc(1000)).expect("push");
            if m.participants().any(|(id, _)| id == EXT) || t == 4 {
                m.push(EXT, &dc(20000)).expect("push");
            }
            let outs: Vec<_> = m.mix().collect();
            caller.extend_from_slice(&out(&outs, CALLER));
        }
        let step = max_step(&caller);
        assert!(step <= 20000 / RAMP_SAMPLES as i32 + 1, "step {step}");
        assert_eq!(caller[2 * 160], 21000);
        assert_eq!(caller[5 * 160], 1000);
        // (Tick 0 is the call's own fade-in: both joined just before it.)
        assert!(caller[160..].iter().all(|&s| s >= 1000));
    }

    #[test]
    fn silence_when_nobody_pushes() {
        let mut m = call(true, true);
        m.set_mode(SUP, Mode::Barge).expect("mode");
        assert!(m.mix().all(|(_, f)| f == [0; FRAME_SAMPLES]));
        // Inputs are per tick: a frame is not replayed on the next tick.
        m.push(AGENT, &dc(7)).expect("push");
        let _ = m.mix().count();
        assert!(m.mix().all(|(_, f)| f == [0; FRAME_SAMPLES]));
        assert_eq!(
            m.recording_frames(),
            ([0; FRAME_SAMPLES], [0; FRAME_SAMPLES])
        );
    }

    /// Not asserted: the cost of one 20 ms tick (push + mix + recording).
    #[test]
    #[allow(clippy::disallowed_methods)] // micro-timing in a test only
    fn mix_cost_per_tick() {
        for n in [3u64, 10] {
            let mut m = Mixer::new();
            m.join(ParticipantId(0), Role::Caller).expect("join");
            m.join(ParticipantId(1), Role::Agent).expect("join");
            for i in 2..n {
                m.join(ParticipantId(i), Role::External).expect("join");
            }
            let frame: Frame = std::array::from_fn(|i| ((i * 977) % 20000) as i16 - 10000);
            let ticks = 5000u32;
            let start = std::time::Instant::now();
            let mut sink = 0i64;
            for _ in 0..ticks {
                for i in 0..n {
                    m.push(ParticipantId(i), &frame).expect("push");
                }
                sink += m.mix().map(|(_, f)| i64::from(f[7])).sum::<i64>();
                sink += i64::from(m.recording_frames().1[3]);
            }
            let per = start.elapsed() / ticks;
            println!("mixer: {n} participants: {per:?} per 20 ms tick (sink {sink})");
        }
    }
}
