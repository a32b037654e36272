//! A call's audio when more than two parties are on it: three-way calls
//! and supervisors listening, whispering or barging (media engine issue
//! §6). The pure core between the relay's sockets and the [`Mixer`]:
//!
//! * each participant's G.711 payloads (its own negotiated law, so legs
//!   that negotiated PCMA and PCMU are transcoded for free) are decoded
//!   into a small FIFO that absorbs arrival jitter;
//! * every 20 ms [`Conference::tick`] takes one frame per participant
//!   (nothing = silence: loss, hold), mixes with the mixer's hearing rules
//!   and encodes each participant's output in its law;
//! * the recording pair comes from the mixer (left = the caller's voice,
//!   right = what the caller heard, never a whisper).
//!
//! The FIFO keeps at most [`MAX_BUFFERED`] samples per participant: a
//! sender that runs fast (clock drift, a burst after a stall) loses its
//! oldest audio instead of growing the delay without bound. No clock, no
//! I/O: the relay's shell calls it.

use std::collections::VecDeque;

use super::codec::{Codec, G711};
use super::mixer::{Frame, Mixer, MixerError, Mode, ParticipantId, Role, FRAME_SAMPLES};

/// Most samples buffered per participant (60 ms): beyond that the oldest
/// are dropped.
pub const MAX_BUFFERED: usize = 3 * FRAME_SAMPLES;

struct Input {
    id: ParticipantId,
    law: G711,
    fifo: VecDeque<i16>,
    /// Samples dropped because the FIFO was full.
    overrun: u64,
}

/// One encoded 20 ms frame for a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Who it is for.
    pub id: ParticipantId,
    /// 160 G.711 bytes in the participant's law.
    pub payload: Vec<u8>,
}

/// The mix of one call's participants.
#[derive(Default)]
pub struct Conference {
    mixer: Mixer,
    inputs: Vec<Input>,
    pcm: Vec<i16>,
}

impl Conference {
    /// An empty conference.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a participant speaking and hearing `law`.
    ///
    /// # Errors
    /// The id is already in the mix.
    pub fn join(&mut self, id: ParticipantId, role: Role, law: G711) -> Result<(), MixerError> {
        self.mixer.join(id, role)?;
        self.inputs.retain(|i| i.id != id);
        self.inputs.push(Input {
            id,
            law,
            fifo: VecDeque::with_capacity(MAX_BUFFERED),
            overrun: 0,
        });
        Ok(())
    }

    /// Remove a participant (it fades out on the next tick).
    ///
    /// # Errors
    /// The id is not in the mix.
    pub fn leave(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        self.mixer.leave(id)?;
        self.inputs.retain(|i| i.id != id);
        Ok(())
    }

    /// Change a supervisor's mode.
    ///
    /// # Errors
    /// See [`Mixer::set_mode`].
    pub fn set_mode(&mut self, id: ParticipantId, mode: Mode) -> Result<(), MixerError> {
        self.mixer.set_mode(id, mode)
    }

    /// A supervisor's mode.
    pub fn mode(&self, id: ParticipantId) -> Option<Mode> {
        self.mixer.mode(id)
    }

    /// Participants (join order) and roles.
    pub fn participants(&self) -> impl Iterator<Item = (ParticipantId, Role)> + '_ {
        self.mixer.participants()
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Nobody in the mix.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Audio (a G.711 payload in the participant's law) arrived from `id`.
    /// Unknown ids are ignored (a packet racing a leave).
    pub fn push_payload(&mut self, id: ParticipantId, payload: &[u8]) {
        let Some(input) = self.inputs.iter_mut().find(|i| i.id == id) else {
            return;
        };
        self.pcm.clear();
        input.law.decode(payload, &mut self.pcm);
        input.fifo.extend(self.pcm.iter().copied());
        let excess = input.fifo.len().saturating_sub(MAX_BUFFERED);
        if excess > 0 {
            input.fifo.drain(..excess);
            input.overrun += excess as u64;
        }
    }

    /// Samples dropped for `id` because it sent faster than the mix ran.
    pub fn overrun(&self, id: ParticipantId) -> u64 {
        self.inputs
            .iter()
            .find(|i| i.id == id)
            .map_or(0, |i| i.overrun)
    }

    /// Mix one 20 ms tick: an encoded frame for every participant in
    /// `outputs` (cleared first), and the recording pair (left, right).
    pub fn tick(&mut self, outputs: &mut Vec<Output>) -> (Frame, Frame) {
        for input in &mut self.inputs {
            if input.fifo.len() >= FRAME_SAMPLES {
                let mut frame = [0i16; FRAME_SAMPLES];
                for (o, s) in frame.iter_mut().zip(input.fifo.drain(..FRAME_SAMPLES)) {
                    *o = s;
                }
                // Only fails for ids not in the mix; inputs mirror the mix.
                let _ = self.mixer.push(input.id, &frame);
            }
        }
        outputs.clear();
        let inputs = &self.inputs;
        for (id, frame) in self.mixer.mix() {
            let Some(input) = inputs.iter().find(|i| i.id == id) else {
                continue;
            };
            let mut payload = Vec::with_capacity(FRAME_SAMPLES);
            input.law.encode(&frame, &mut payload);
            outputs.push(Output { id, payload });
        }
        self.mixer.recording_frames()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: ParticipantId = ParticipantId(0);
    const AGENT: ParticipantId = ParticipantId(1);
    const OTHER: ParticipantId = ParticipantId(2);

    fn tone(law: G711, level: i16) -> Vec<u8> {
        let pcm = [level; FRAME_SAMPLES];
        let mut out = Vec::new();
        law.encode(&pcm, &mut out);
        out
    }

    fn level(law: G711, payload: &[u8]) -> i32 {
        let mut pcm = Vec::new();
        law.decode(payload, &mut pcm);
        // After the fade-in ramp: the last sample.
        i32::from(*pcm.last().unwrap())
    }

    fn run(conf: &mut Conference, sends: &[(ParticipantId, G711, i16)]) -> Vec<Output> {
        let mut out = Vec::new();
        for _ in 0..3 {
            for (id, law, l) in sends {
                conf.push_payload(*id, &tone(*law, *l));
            }
            conf.tick(&mut out);
        }
        out
    }

    fn heard(out: &[Output], id: ParticipantId, law: G711) -> i32 {
        level(law, &out.iter().find(|o| o.id == id).unwrap().payload)
    }

    #[test]
    fn three_parties_hear_each_other_across_laws() {
        let mut c = Conference::new();
        c.join(CALLER, Role::Caller, G711::Alaw).unwrap();
        c.join(AGENT, Role::Agent, G711::Ulaw).unwrap();
        c.join(OTHER, Role::External, G711::Alaw).unwrap();
        let out = run(
            &mut c,
            &[
                (CALLER, G711::Alaw, 1000),
                (AGENT, G711::Ulaw, 2000),
                (OTHER, G711::Alaw, 4000),
            ],
        );
        // Each hears the sum of the other two (within G.711 quantisation).
        let near = |got: i32, want: i32| (got - want).abs() <= want / 16;
        assert!(near(heard(&out, CALLER, G711::Alaw), 6000));
        assert!(near(heard(&out, AGENT, G711::Ulaw), 5000));
        assert!(near(heard(&out, OTHER, G711::Alaw), 3000));
    }

    #[test]
    fn whisper_reaches_the_agent_only_and_never_the_recording() {
        let mut c = Conference::new();
        c.join(CALLER, Role::Caller, G711::Alaw).unwrap();
        c.join(AGENT, Role::Agent, G711::Alaw).unwrap();
        c.join(OTHER, Role::Supervisor, G711::Alaw).unwrap();
        c.set_mode(OTHER, Mode::Whisper { to: AGENT }).unwrap();
        let mut out = Vec::new();
        let mut rec = ([0; FRAME_SAMPLES], [0; FRAME_SAMPLES]);
        for _ in 0..3 {
            c.push_payload(OTHER, &tone(G711::Alaw, 3000));
            rec = c.tick(&mut out);
        }
        assert!(heard(&out, AGENT, G711::Alaw) > 2500);
        assert_eq!(heard(&out, CALLER, G711::Alaw).abs(), 8, "A-law's zero");
        assert!(rec.0.iter().chain(rec.1.iter()).all(|s| *s == 0));
    }

    #[test]
    fn fifo_is_bounded_and_underrun_is_silence() {
        let mut c = Conference::new();
        c.join(CALLER, Role::Caller, G711::Alaw).unwrap();
        c.join(AGENT, Role::Agent, G711::Alaw).unwrap();
        for _ in 0..10 {
            c.push_payload(CALLER, &tone(G711::Alaw, 1000));
        }
        assert_eq!(c.overrun(CALLER), 7 * FRAME_SAMPLES as u64);
        let mut out = Vec::new();
        for _ in 0..5 {
            c.tick(&mut out);
        }
        // Three buffered frames played, then silence.
        assert!(heard(&out, AGENT, G711::Alaw).abs() < 16);
        c.push_payload(ParticipantId(9), &tone(G711::Alaw, 1000)); // ignored
    }
}
