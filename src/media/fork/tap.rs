//! The fork's tap on the call's recording (issue 18 §1): the stereo
//! samples the recording's aligner drains (caller left, agent right,
//! already placed in wall-clock time through jitter, loss and hold) are
//! cut into 20 ms frames and offered to the fork's bounded queue, on the
//! media worker, without waiting: a full queue (a slow or absent receiver)
//! drops the frame and counts it, never delays the call.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::protocol::FRAME_SAMPLES;
use super::ForkCounts;
use crate::media::codec::{Codec, G711};

/// Interleaved stereo samples in one frame.
pub const FRAME_LEN: usize = 2 * FRAME_SAMPLES;

/// One frame on its way to the receiver.
#[derive(Debug)]
pub struct Frame {
    /// Frames made before this one (dropped ones included).
    pub sequence: u32,
    /// Interleaved stereo PCM16, [`FRAME_LEN`] samples.
    pub samples: Vec<i16>,
}

/// The fork's end on the media worker; dropping it ends the fork (the
/// sink sends `stop` once the queue is empty).
#[derive(Debug)]
pub struct ForkTap {
    queue: mpsc::Sender<Frame>,
    /// The frame being filled (interleaved).
    pending: Vec<i16>,
    /// A-law bytes decoded (`alaw` recordings).
    scratch: Vec<i16>,
    sequence: u32,
    counts: Arc<ForkCounts>,
}

impl ForkTap {
    /// A tap feeding `queue`, counting into `counts`.
    pub fn new(queue: mpsc::Sender<Frame>, counts: Arc<ForkCounts>) -> Self {
        Self {
            queue,
            pending: Vec::with_capacity(FRAME_LEN),
            scratch: Vec::new(),
            sequence: 0,
            counts,
        }
    }

    /// Interleaved linear stereo samples, in media order.
    pub fn push_linear(&mut self, mut samples: &[i16]) {
        while !samples.is_empty() {
            let take = (FRAME_LEN - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() == FRAME_LEN {
                self.offer();
            }
        }
    }

    /// Interleaved A-law stereo bytes (an `alaw` recording), decoded.
    pub fn push_alaw(&mut self, bytes: &[u8]) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        G711::Alaw.decode(bytes, &mut scratch);
        self.push_linear(&scratch);
        self.scratch = scratch;
    }

    /// Frames made so far (sent, queued or dropped).
    pub fn frames(&self) -> u32 {
        self.sequence
    }

    /// The full pending frame to the queue, or dropped and counted.
    fn offer(&mut self) {
        if !self.counts.is_on() {
            // Stopped: nothing to send; the media clock goes on.
            self.pending.clear();
            self.sequence = self.sequence.wrapping_add(1);
            return;
        }
        let samples = std::mem::replace(&mut self.pending, Vec::with_capacity(FRAME_LEN));
        let frame = Frame {
            sequence: self.sequence,
            samples,
        };
        self.sequence = self.sequence.wrapping_add(1);
        if let Err(e) = self.queue.try_send(frame) {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            super::FRAMES_DROPPED.fetch_add(1, Ordering::Relaxed);
            // The frame's buffer is the next one's.
            let mut back = match e {
                mpsc::error::TrySendError::Full(f) | mpsc::error::TrySendError::Closed(f) => {
                    f.samples
                }
            };
            back.clear();
            self.pending = back;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(bound: usize) -> (ForkTap, mpsc::Receiver<Frame>, Arc<ForkCounts>) {
        let (tx, rx) = mpsc::channel(bound);
        let counts = Arc::new(ForkCounts::new(true));
        (ForkTap::new(tx, counts.clone()), rx, counts)
    }

    #[test]
    fn drained_samples_become_whole_frames_in_order() {
        let (mut t, mut rx, counts) = tap(16);
        // 100 ms drained in uneven pieces: 5 frames, none left over.
        let all: Vec<i16> = (0..5 * FRAME_LEN as i32).map(|i| i as i16).collect();
        for piece in all.chunks(333) {
            t.push_linear(piece);
        }
        let mut seen = Vec::new();
        while let Ok(f) = rx.try_recv() {
            assert_eq!(f.samples.len(), FRAME_LEN);
            seen.push((f.sequence, f.samples[0]));
        }
        let expected: Vec<(u32, i16)> = (0..5)
            .map(|k| (k, (k as usize * FRAME_LEN) as i16))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_frames_counted_and_the_sequence_shows_the_gap() {
        let (mut t, mut rx, counts) = tap(2);
        t.push_linear(&vec![1; 5 * FRAME_LEN]);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(rx.try_recv().map(|f| f.sequence).ok(), Some(0));
        assert_eq!(rx.try_recv().map(|f| f.sequence).ok(), Some(1));
        t.push_linear(&vec![2; FRAME_LEN]);
        // Frames 2..=4 were dropped: the next one says so by its number.
        assert_eq!(rx.try_recv().map(|f| f.sequence).ok(), Some(5));
        assert_eq!(t.frames(), 6);
    }

    #[test]
    fn a_stopped_fork_makes_nothing_to_send_and_its_clock_goes_on() {
        let (mut t, mut rx, counts) = tap(16);
        t.push_linear(&vec![1; FRAME_LEN]);
        counts.switch(false);
        t.push_linear(&vec![2; 3 * FRAME_LEN]);
        counts.switch(true);
        t.push_linear(&vec![3; FRAME_LEN]);
        let seqs: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|f| f.sequence)
            .collect();
        assert_eq!(seqs, vec![0, 4]);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_gone_sink_only_counts() {
        let (mut t, rx, counts) = tap(4);
        drop(rx);
        t.push_linear(&vec![0; 3 * FRAME_LEN]);
        assert_eq!(counts.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn alaw_is_decoded_to_linear() {
        let (mut t, mut rx, _) = tap(4);
        t.push_alaw(&vec![0xD5; FRAME_LEN]);
        let f = rx.try_recv().expect("frame");
        let silence = G711::Alaw.decode_sample(0xD5);
        assert!(f.samples.iter().all(|s| *s == silence));
    }
}
