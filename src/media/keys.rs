//! One party's key presses, read once across every hand-over of its media
//! (issue 12 §1; RFC 4733 §2.5.1.4 end-packet retransmission and §2.5.2
//! receiver rules; RFC 6086 INFO; ITU-T Q.24 tones).
//!
//! A press may arrive as an RFC 4733 event (a start packet, updates, three
//! end packets with one timestamp), as SIP INFO, as a tone in the audio, or
//! as any mix of them. A caller's media changes hands during a call: the
//! IVR's player, the queue's player, the relay to the agent, the survey's
//! player. When each owner started its own receiver, the retransmitted end
//! packets of a key the menu had already taken reached the queue as a second
//! press (the caller asked for a callback instead of reaching an agent), and
//! reached the agent's phone through the relay.
//!
//! A [`KeyReader`] therefore travels with the party's media (inside
//! [`super::player::Continuation`]) and holds everything that makes a press
//! one press: the RFC 4733 receiver, the in-band detector, the combiner of
//! the three paths, and the holder of each RFC 4733 event. An event belongs
//! to whoever held the media when its first packet arrived:
//! - a **reader** (a player: IVR, queue, survey) reports it as a key, once;
//!   none of its packets is ever forwarded to the other party;
//! - the **relay** forwards its packets to the other party; a later reader
//!   never reports it.
//!
//! Pure: time comes in as the offset from the media's epoch.

use std::collections::VecDeque;
use std::time::Duration;

use super::dtmf::{
    DtmfCombiner, DtmfDetector, DtmfKey, DtmfPath, Rfc4733Digit, Rfc4733Receiver, TelephoneEvent,
};

/// Who holds a party's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A player (IVR, queue, survey), which reports keys to the call.
    Reader,
    /// The relay, which forwards keys to the other party.
    Relay,
}

/// How many recent events' holders are remembered (a press is over in well
/// under a second; a few are enough to cover late retransmissions).
const HOLDERS_KEPT: usize = 16;

/// The clock of `telephone-event/8000` (the only rate G.711 calls offer).
const EVENT_CLOCK: u32 = 8000;

/// One party's key state, handed from owner to owner with its media.
#[derive(Debug, Clone)]
pub struct KeyReader {
    rfc4733: Rfc4733Receiver,
    /// Made at the first audio a player reads (~13 KiB of Goertzel
    /// windows and history): the relay never reads audio, so a bridged
    /// call's legs never pay for one.
    inband: Option<Box<DtmfDetector>>,
    combiner: DtmfCombiner,
    /// `(timestamp, event code, holder)` of recent RFC 4733 events.
    holders: VecDeque<(u32, u8, Holder)>,
    /// Who holds the media now.
    holder: Holder,
}

impl Default for KeyReader {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyReader {
    /// A reader that has seen nothing yet.
    pub fn new() -> Self {
        KeyReader {
            rfc4733: Rfc4733Receiver::new(EVENT_CLOCK),
            inband: None,
            combiner: DtmfCombiner::new(),
            holders: VecDeque::with_capacity(HOLDERS_KEPT),
            holder: Holder::Reader,
        }
    }

    fn holder(&mut self, timestamp: u32, event: u8, now_holder: Holder) -> Holder {
        if let Some(&(_, _, h)) = self
            .holders
            .iter()
            .find(|(ts, ev, _)| *ts == timestamp && *ev == event)
        {
            return h;
        }
        if self.holders.len() == HOLDERS_KEPT {
            self.holders.pop_front();
        }
        self.holders.push_back((timestamp, event, now_holder));
        now_holder
    }

    fn held_by(&self, digit: &Rfc4733Digit) -> Option<Holder> {
        self.holders
            .iter()
            .find(|(ts, ev, _)| *ts == digit.timestamp && *ev == digit.key.event())
            .map(|&(_, _, h)| h)
    }

    /// The presses among `digits` that a reader may report: its own, new
    /// on every path.
    fn report(&mut self, now: Duration, digits: Vec<Rfc4733Digit>) -> Vec<DtmfKey> {
        let mut out = Vec::new();
        for d in digits {
            if self.held_by(&d) == Some(Holder::Relay) {
                continue; // the other party had it through the relay
            }
            if let Some(k) = self.combiner.push(now, DtmfPath::Rfc4733, d.key, d.onset) {
                out.push(k);
            }
        }
        out
    }

    /// A telephone-event packet (its RTP `timestamp`, `marker` and
    /// `payload`) while a player holds the media: the presses it completes,
    /// each reported once whatever else carried it. Malformed payloads are
    /// ignored.
    pub fn read_event(
        &mut self,
        now: Duration,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Vec<DtmfKey> {
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            return Vec::new();
        };
        self.holder(timestamp, ev.event, Holder::Reader);
        let digits = self
            .rfc4733
            .on_packet(now, timestamp, marker, payload)
            .unwrap_or_default();
        self.report(now, digits)
    }

    /// A frame of the party's audio (8 kHz PCM) while a player holds the
    /// media: the presses detected in it that no other path reported.
    pub fn read_audio(&mut self, now: Duration, pcm: &[i16]) -> Vec<DtmfKey> {
        let digits = self
            .inband
            .get_or_insert_with(|| Box::new(DtmfDetector::new()))
            .process(now, pcm);
        digits
            .into_iter()
            .filter_map(|d| self.combiner.push(now, DtmfPath::InBand, d.key, d.onset))
            .collect()
    }

    /// A key the party sent as SIP INFO: `Some` when it is a new press.
    pub fn read_info(&mut self, now: Duration, key: DtmfKey) -> Option<DtmfKey> {
        self.combiner.push(now, DtmfPath::SipInfo, key, now)
    }

    /// Call every frame while a player holds the media: reports an event
    /// whose end packets never came.
    pub fn poll(&mut self, now: Duration) -> Option<DtmfKey> {
        let digit = self.rfc4733.poll(now)?;
        self.report(now, vec![digit]).into_iter().next()
    }

    /// A telephone-event packet while the relay holds the media: `true`
    /// when it may go to the other party (its event began under the relay),
    /// `false` when it belongs to a press a player already took.
    pub fn pass_event(
        &mut self,
        now: Duration,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> bool {
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            return false;
        };
        let holder = self.holder(timestamp, ev.event, Holder::Relay);
        // Keep the receiver's view current so a later reader knows these
        // events are over; what it completes here is never reported.
        let _ = self.rfc4733.on_packet(now, timestamp, marker, payload);
        holder == Holder::Relay
    }

    /// The media goes to `to`. From one player to the next (IVR → queue)
    /// nothing changes: the audio and the events continue, and a press made
    /// across the hand-over is reported once, by whichever reads its end.
    /// Between a player and the relay (either way) an event in progress
    /// stays with its holder (never reported later by a timeout), and a
    /// tone half heard is forgotten: the relay reads no audio.
    pub fn hand_over(&mut self, to: Holder) {
        if to != self.holder {
            self.rfc4733.abandon();
            self.inband = None;
        }
        self.holder = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::rfc4733_packets;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// The packets of one real press: start, updates, three end packets.
    fn press(key: char, ts: u32) -> Vec<(Duration, bool, [u8; 4])> {
        let key = DtmfKey::from_char(key).expect("key");
        rfc4733_packets(key, ts, ms(100), 10, 8000)
            .into_iter()
            .map(|p| (p.offset, p.marker, p.event.to_bytes()))
            .collect()
    }

    #[test]
    fn end_packets_after_a_hand_over_are_not_a_second_press() {
        let mut menu = KeyReader::new();
        let packets = press('1', 1000);
        let mut keys = Vec::new();
        // The menu reads up to the first end packet, then hands over.
        let first_end = packets
            .iter()
            .position(|p| p.2[1] & 0x80 != 0)
            .expect("end");
        for (at, marker, body) in &packets[..=first_end] {
            keys.extend(menu.read_event(*at, 1000, *marker, body));
        }
        assert_eq!(keys, vec![DtmfKey::from_char('1').expect("1")]);
        menu.hand_over(Holder::Reader);
        // The queue's player gets the same reader: two more end packets.
        let mut queue = menu;
        for (at, marker, body) in &packets[first_end + 1..] {
            assert!(queue.read_event(*at, 1000, *marker, body).is_empty());
        }
        assert!(queue.poll(ms(2000)).is_none());
    }

    #[test]
    fn a_key_a_player_took_is_never_forwarded_by_the_relay() {
        let mut r = KeyReader::new();
        let packets = press('2', 5000);
        let (at, marker, body) = packets[0];
        assert!(r.read_event(at, 5000, marker, &body).is_empty());
        r.hand_over(Holder::Relay);
        for (at, marker, body) in &packets[1..] {
            assert!(!r.pass_event(*at, 5000, *marker, body));
        }
        // A press begun under the relay goes to the agent …
        let later = press('5', 9000);
        for (at, marker, body) in &later[..2] {
            assert!(r.pass_event(ms(500) + *at, 9000, *marker, body));
        }
        // … and its tail, after the hand back, is never read as a key.
        r.hand_over(Holder::Reader);
        for (at, marker, body) in &later[2..] {
            assert!(r.read_event(ms(500) + *at, 9000, *marker, body).is_empty());
        }
        assert!(r.poll(ms(5000)).is_none());
    }

    #[test]
    fn info_and_rfc4733_for_one_press_count_once_across_owners() {
        let mut r = KeyReader::new();
        let k = DtmfKey::from_char('9').expect("9");
        assert_eq!(r.read_info(ms(100), k), Some(k));
        r.hand_over(Holder::Reader);
        let mut keys = Vec::new();
        for (at, marker, body) in press('9', 7000) {
            keys.extend(r.read_event(ms(90) + at, 7000, marker, &body));
        }
        assert!(keys.is_empty(), "{keys:?}");
        // The next press of the same key is a press.
        for (at, marker, body) in press('9', 20000) {
            keys.extend(r.read_event(ms(3000) + at, 20000, marker, &body));
        }
        assert_eq!(keys, vec![k]);
    }

    #[test]
    fn an_event_a_player_began_is_not_reported_after_the_relay_had_the_media() {
        let mut r = KeyReader::new();
        let packets = press('3', 100);
        let (at, marker, body) = packets[0];
        assert!(r.read_event(at, 100, marker, &body).is_empty());
        r.hand_over(Holder::Relay); // the rest of the press is lost
        r.hand_over(Holder::Reader); // back to a player much later
        assert!(r.poll(ms(60_000)).is_none());
    }

    /// A press begun under the IVR's player and ended under the queue's is
    /// one press, and so is a tone that spans the hand-over.
    #[test]
    fn a_press_across_a_player_hand_over_is_reported_once() {
        let mut r = KeyReader::new();
        let packets = press('4', 300);
        let (at, marker, body) = packets[0];
        assert!(r.read_event(at, 300, marker, &body).is_empty());
        r.hand_over(Holder::Reader);
        let mut keys = Vec::new();
        for (at, marker, body) in &packets[1..] {
            keys.extend(r.read_event(*at, 300, *marker, body));
        }
        assert_eq!(keys, vec![DtmfKey::from_char('4').expect("4")]);
        // A tone (key 6: 770 + 1477 Hz) for 200 ms, handed over half-way.
        let key = DtmfKey::from_char('6').expect("6");
        let (lo, hi) = key.frequencies();
        let mut tone_keys = Vec::new();
        for frame in 0..10u64 {
            if frame == 5 {
                r.hand_over(Holder::Reader);
            }
            let pcm: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (frame * 160 + i) as f64 / 8000.0;
                    let v = (2.0 * std::f64::consts::PI * lo * t).sin()
                        + (2.0 * std::f64::consts::PI * hi * t).sin();
                    (v * 6000.0) as i16
                })
                .collect();
            tone_keys.extend(r.read_audio(ms(5000 + frame * 20), &pcm));
        }
        for frame in 10..20u64 {
            tone_keys.extend(r.read_audio(ms(5000 + frame * 20), &[0; 160]));
        }
        assert_eq!(tone_keys, vec![key]);
    }

    #[test]
    fn garbage_payloads_are_ignored() {
        let mut r = KeyReader::new();
        assert!(r.read_event(ms(1), 1, true, &[1, 2]).is_empty());
        assert!(!r.pass_event(ms(1), 1, true, &[]));
    }
}
