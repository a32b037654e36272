//! A running relay, the bridged mode of the caller's media session
//! ([`crate::media::session`], served by the shared media IO workers,
//! issue 16 item 1): the relay's state and its reactions to datagrams,
//! commands and the worker's 20 ms tick, with no task, no channel read and
//! no wait of its own. Sending never waits (a full socket buffer drops the
//! datagram, as the network would). The caller's ports are the session's:
//! the relay watches only its own (the other side, extra parties) and
//! hands the caller's stream back when it stops.
//!
//! What a datagram of the two main legs becomes is decided by the pure
//! forwarding core ([`super::forward`]); this file holds the per-call
//! state around it (the extra parties and the mix, music on hold, RTCP
//! timing, the recording's drain, the silence check) and executes the
//! decisions on the sockets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::forward::{local_packet, Hop, Leg, Peer, Verdict, MAX_PACKET};
use super::mix::{join, Extra};
use super::quality::{ntp_now, Quality};
use super::recording::{Recorder, DRAIN_EVERY, RECORD_DELAY};
use super::{
    key_leg, CallRecording, Control, RelayEvent, RelayOptions, RelayReport, RelayStats, Side, Stop,
    CALLER, OTHER_SIDE, RTCP_INTERVAL,
};
use crate::media::codec::Codec;
use crate::media::conference::{Conference, Output};
use crate::media::io::Registrar;
use crate::media::keys::Holder;
use crate::media::mixer::{MixerError, Role};
use crate::media::player::Continuation;
use crate::media::ports::{Channel as Socket, PortPair};
use crate::media::prompts::Playout;
use crate::media::recorder::Channel;
use crate::media::rtp::RtpHeader;

/// The caller's ports' tag (the session watches them).
pub(crate) const TAG_A: u16 = 0;
/// The other side's ports' tag.
const TAG_B: u16 = 1;
/// The first extra party's tag.
const FIRST_EXTRA: u16 = 2;

/// What a stopped relay hands its handle: the report, and the recording
/// to finish (off the worker: finishing writes to disk).
pub struct Stopped {
    pub(crate) report: RelayReport,
    pub(crate) finish: Option<CallRecording>,
}

/// A connected call's relay (see the module docs).
pub struct RelayCore {
    a_pair: Arc<PortPair>,
    b_pair: PortPair,
    la: Leg,
    lb: Leg,
    b_role: Role,
    events: mpsc::UnboundedSender<RelayEvent>,
    stats: Arc<RelayStats>,
    started: Instant,
    cname: String,
    /// RTCP: mean interval and the next report.
    rtcp_interval: Duration,
    rtcp_at: Instant,
    /// Silence: the timeout, how often it is checked, the next check, the
    /// last RTP from a main leg, whether a leg holds, whether reported.
    silence: Duration,
    check_every: Duration,
    next_check: Instant,
    last_rtp: Instant,
    on_hold: bool,
    reported: bool,
    recorder: Option<Recorder>,
    next_drain: Instant,
    moh: Option<Playout>,
    caller_muted: bool,
    /// Side B is kept out of the mix (its phone consults on a second line).
    agent_muted: bool,
    /// Mixing state: present while extra parties are on the call.
    conference: Option<Conference>,
    extras: Vec<Extra>,
    outputs: Vec<Output>,
    next_tag: u16,
    payload: Vec<u8>,
}

/// Next RTCP report time: the mean interval randomised over 0.5–1.5×.
fn next_rtcp(now: Instant, mean: Duration) -> Instant {
    let factor = 0.5 + rand::random::<f64>();
    now + mean.mul_f64(factor)
}

/// Send what the forwarding core decided for a datagram (`verdict`) from
/// `pair` (the other leg's sockets), counting it; `true` when it came from
/// the latched peer (the call is alive).
fn execute(
    verdict: Verdict,
    pair: &PortPair,
    packet: &[u8],
    s: &RelayStats,
    sent: &AtomicU64,
) -> bool {
    match verdict {
        Verdict::Send(to) => {
            if pair.send_rtp(packet, to).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        Verdict::Stranger | Verdict::Kept { dropped: true } => {
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Kept { dropped: false } => {}
    }
    verdict.alive()
}

impl RelayCore {
    /// A relay between `a` (peer `a_remote`; the caller's ports, which its
    /// media session keeps and reads) and `b` (peer `b_remote`), starting
    /// now, continuing the caller's stream, keys and latch (`a_stream`).
    pub(crate) fn new(
        a: Arc<PortPair>,
        a_remote: Option<SocketAddr>,
        (b, b_remote): (PortPair, Option<SocketAddr>),
        options: RelayOptions,
        a_stream: Continuation,
        events: mpsc::UnboundedSender<RelayEvent>,
        stats: Arc<RelayStats>,
    ) -> Self {
        let RelayOptions {
            silence,
            recording,
            a_continuation: _,
            a_format,
            b_format,
            b_role,
            cname,
            rtcp_interval,
        } = options;
        let rtcp_interval = if rtcp_interval.is_zero() {
            RTCP_INTERVAL
        } else {
            rtcp_interval
        };
        key_leg(&a, a_format.srtp.as_ref(), "caller");
        super::secure_leg(&b, &b_format, "agent");
        let mut la = Leg {
            // A player learnt where the caller's RTP comes from: no fresh
            // latch at the hand-over (`media::latch`).
            peer: Peer::resume(a_remote, a_stream.latched),
            quality: Quality::default(),
            format: a_format,
            // Side A heard prompts before the bridge: keep its stream
            // continuous and its keys (a press a player took is not the
            // agent's).
            out: a_stream,
        };
        la.out.keys.hand_over(Holder::Relay);
        let lb = Leg {
            peer: peer_of(&b_format, b_remote),
            quality: Quality::default(),
            format: b_format,
            out: Continuation::fresh(),
        };
        // What the caller sent while nobody played to it was dropped as it
        // came (the session reads the caller's ports from the first answer
        // on): a key already handled is never replayed to the agent. What
        // waited on side B's port before the bridge was dropped by
        // [`super::RelayHandle::bridge`].
        let started = Instant::now();
        let check_every = if silence.is_zero() {
            Duration::from_secs(3600)
        } else {
            (silence / 4).max(Duration::from_millis(100))
        };
        Self {
            a_pair: a,
            b_pair: b,
            la,
            lb,
            b_role: b_role.unwrap_or(Role::Agent),
            events,
            stats,
            started,
            cname,
            rtcp_interval,
            rtcp_at: next_rtcp(started, rtcp_interval),
            silence,
            check_every,
            next_check: started + check_every,
            last_rtp: started,
            on_hold: false,
            reported: false,
            recorder: recording.map(|r| Recorder::lend(r, started, [a_format, b_format])),
            next_drain: started + DRAIN_EVERY,
            moh: None,
            caller_muted: false,
            agent_muted: false,
            conference: None,
            extras: Vec::new(),
            outputs: Vec::new(),
            next_tag: FIRST_EXTRA,
            payload: Vec::with_capacity(160),
        }
    }

    /// An RTP datagram of a main leg.
    fn main_rtp(&mut self, side: Side, packet: &mut [u8], from: SocketAddr, now: Instant) {
        let at = now.saturating_duration_since(self.started);
        let (verdict, pair, sent) = match side {
            Side::A => {
                let hop = Hop {
                    from: &mut self.la,
                    to: &mut self.lb,
                    channel: Channel::Caller,
                    id: CALLER,
                    muted: false,
                    mix_muted: self.caller_muted,
                };
                let v = hop.route(
                    packet,
                    from,
                    at,
                    now,
                    &mut self.conference,
                    &mut self.recorder,
                );
                (v, &self.b_pair, &self.stats.a_to_b)
            }
            Side::B => {
                // While B holds, A hears music instead.
                let hop = Hop {
                    from: &mut self.lb,
                    to: &mut self.la,
                    channel: Channel::Agent,
                    id: OTHER_SIDE,
                    muted: self.moh.is_some(),
                    mix_muted: self.agent_muted,
                };
                let v = hop.route(
                    packet,
                    from,
                    at,
                    now,
                    &mut self.conference,
                    &mut self.recorder,
                );
                (v, &*self.a_pair, &self.stats.b_to_a)
            }
        };
        if execute(verdict, pair, packet, &self.stats, sent) {
            self.last_rtp = now;
        }
    }

    /// An RTP datagram of an extra party: into the mix, or its key.
    fn extra_rtp(&mut self, tag: u16, packet: &[u8], from: SocketAddr, now: Instant) {
        let at = now.saturating_duration_since(self.started);
        let Some(x) = self.extras.iter_mut().find(|x| x.tag == tag) else {
            return;
        };
        if packet.len() >= MAX_PACKET || !x.peer.admit_rtp(from, at) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Ok(rtp) = RtpHeader::parse(packet) else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if rtp.payload_type == x.format.payload_type {
            if let Some(c) = self.conference.as_mut() {
                c.push_payload(x.id, rtp.payload);
            }
        } else if Some(rtp.payload_type) == x.format.telephone_event {
            let digits = x.keys.on_packet(at, rtp.timestamp, rtp.marker, rtp.payload);
            for d in digits.into_iter().flatten() {
                self.events
                    .send(RelayEvent::Key {
                        participant: x.id,
                        key: d.key.to_char(),
                    })
                    .ok();
            }
        }
    }

    /// One 20 ms frame of music on hold (to A while B holds) or of the mix.
    fn pace(&mut self, now: Instant) {
        let music = self
            .moh
            .as_mut()
            .map(|p| p.next_frame().unwrap_or([0; 160]));
        let mut packet = [0u8; 12 + 160];
        let Some(c) = self.conference.as_mut() else {
            // Forwarding with B on hold: music to A.
            let (Some(frame), Some(to)) = (music, self.la.peer.rtp) else {
                return;
            };
            self.payload.clear();
            self.la.format.law.encode(&frame, &mut self.payload);
            let pt = self.la.format.payload_type;
            if let Some(n) = local_packet(&mut self.la.out, pt, &self.payload, &mut packet, now) {
                if self.a_pair.send_rtp(&packet[..n], to).is_ok() {
                    self.stats.b_to_a.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        };
        let rec = c.tick(&mut self.outputs);
        if let Some(r) = self.recorder.as_mut() {
            r.push_mixed(now.saturating_duration_since(self.started), rec);
        }
        if let Some(frame) = music {
            self.payload.clear();
            self.la.format.law.encode(&frame, &mut self.payload);
        }
        for o in &self.outputs {
            let (leg_out, pt, pair, to, counter) = if o.id == CALLER {
                let pair: &PortPair = &self.a_pair;
                (
                    &mut self.la.out,
                    self.la.format.payload_type,
                    pair,
                    self.la.peer.rtp,
                    Some(&self.stats.b_to_a),
                )
            } else if o.id == OTHER_SIDE {
                (
                    &mut self.lb.out,
                    self.lb.format.payload_type,
                    &self.b_pair,
                    self.lb.peer.rtp,
                    Some(&self.stats.a_to_b),
                )
            } else if let Some(x) = self.extras.iter_mut().find(|x| x.id == o.id) {
                (&mut x.out, x.format.payload_type, &x.pair, x.peer.rtp, None)
            } else {
                continue;
            };
            let body = if o.id == CALLER && music.is_some() {
                &self.payload[..]
            } else {
                &o.payload[..]
            };
            let (Some(to), Some(n)) = (to, local_packet(leg_out, pt, body, &mut packet, now))
            else {
                continue;
            };
            if pair.send_rtp(&packet[..n], to).is_ok() {
                if let Some(counter) = counter {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Our RTCP report to each main leg.
    fn report(&mut self, now: Instant) {
        let (at, ntp) = (now.saturating_duration_since(self.started), ntp_now());
        let mut buf = [0u8; MAX_PACKET];
        for (leg, pair) in [(&mut self.la, &*self.a_pair), (&mut self.lb, &self.b_pair)] {
            let Some((n, to)) = leg.rtcp_report(at, now, ntp, &self.cname, &mut buf) else {
                continue;
            };
            if pair.send_rtcp(&buf[..n], to).is_ok() {
                leg.quality.rtcp_sent += 1;
                self.stats.rtcp.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stop: stop watching the relay's own ports (the caller's stay with
    /// the session), give back or finish the recording, report the legs'
    /// quality, and hand the caller's stream, keys and latch back.
    pub(crate) fn stop(
        &mut self,
        how: Stop,
        now: Instant,
        registrar: &mut Registrar<'_>,
    ) -> (Stopped, Continuation) {
        self.abandon(registrar);
        let open = self
            .recorder
            .take()
            .map(|r| r.give_back(now.saturating_duration_since(self.started)));
        let (kept, finish) = match (how, open) {
            (Stop::HandBack(true), open) => (open, None),
            (_, open) => (None, open),
        };
        let (mut a, mut b) = (self.la.quality.report(), self.lb.quality.report());
        a.refused = self.la.peer.refused() + self.a_pair.srtp_refused();
        b.refused = self.lb.peer.refused() + self.b_pair.srtp_refused();
        super::histograms::observe(&a);
        super::histograms::observe(&b);
        if a.refused + b.refused > 0 {
            tracing::warn!(
                caller = a.refused,
                agent = b.refused,
                "packets from strangers refused at this call's ports"
            );
        }
        let mut stream = std::mem::replace(&mut self.la.out, Continuation::fresh());
        stream.latched = self.la.peer.latched();
        let stopped = Stopped {
            report: RelayReport {
                open_recording: kept,
                recording: None,
                a,
                b,
            },
            finish,
        };
        (stopped, stream)
    }

    /// Watch the relay's own ports (the caller's are the session's).
    pub(crate) fn watch(&mut self, registrar: &mut Registrar<'_>) {
        registrar.watch(TAG_B, &self.b_pair);
    }

    /// The ports behind `tag` (the caller's: [`TAG_A`]).
    pub(crate) fn port(&self, tag: u16) -> Option<&PortPair> {
        match tag {
            TAG_A => Some(&self.a_pair),
            TAG_B => Some(&self.b_pair),
            _ => self.extras.iter().find(|x| x.tag == tag).map(|x| &x.pair),
        }
    }

    /// A datagram on one of the call's ports (opened: SRTP removed).
    pub(crate) fn on_datagram(
        &mut self,
        tag: u16,
        channel: Socket,
        datagram: &mut [u8],
        from: SocketAddr,
        now: Instant,
    ) {
        let at = now.saturating_duration_since(self.started);
        match (tag, channel) {
            (TAG_A, Socket::Rtp) => self.main_rtp(Side::A, datagram, from, now),
            (TAG_B, Socket::Rtp) => self.main_rtp(Side::B, datagram, from, now),
            (TAG_A, Socket::Rtcp) => self.la.receive_rtcp(datagram, from, at, &self.stats),
            (TAG_B, Socket::Rtcp) => self.lb.receive_rtcp(datagram, from, at, &self.stats),
            (_, Socket::Rtp) => self.extra_rtp(tag, datagram, from, now),
            // Extra parties' reports are not read (their quality is not
            // part of the call record).
            (_, Socket::Rtcp) => {}
        }
    }

    /// A command from the relay's handle.
    pub(crate) fn on_command(
        &mut self,
        command: Control,
        now: Instant,
        registrar: &mut Registrar<'_>,
    ) {
        match command {
            Control::Remote(Side::A, addr) => self.la.peer = Peer::new(Some(addr)),
            Control::Remote(Side::B, addr) => {
                self.lb.peer = peer_of(&self.lb.format, Some(addr));
            }
            Control::AgentKeys(keys) => key_leg(&self.b_pair, Some(&keys), "agent"),
            Control::Hold(h) => {
                self.on_hold = h;
                self.last_rtp = now;
            }
            Control::MusicOnHold(Some(prompt)) => {
                let mut p = Playout::new();
                p.play(prompt);
                p.set_loop(true);
                self.moh = Some(p);
                self.on_hold = true;
            }
            Control::MusicOnHold(None) => {
                self.moh = None;
                self.on_hold = false;
                self.last_rtp = now;
            }
            Control::Join(p, reply) => {
                let tag = self.next_tag;
                let laws = (self.la.format.law, self.lb.format.law);
                let result = join(
                    &mut self.conference,
                    &mut self.extras,
                    *p,
                    laws,
                    self.b_role,
                    tag,
                );
                if result.is_ok() {
                    self.next_tag = self.next_tag.checked_add(1).unwrap_or(FIRST_EXTRA);
                    if let Some(x) = self.extras.last() {
                        registrar.watch(tag, &x.pair);
                    }
                }
                reply.send(result).ok();
            }
            Control::MuteCaller(m) => self.caller_muted = m,
            Control::MuteAgent(m) => self.agent_muted = m,
            Control::Leave(id) => {
                for x in self.extras.iter().filter(|x| x.id == id) {
                    registrar.unwatch(&x.pair);
                }
                self.extras.retain(|x| x.id != id);
                if let Some(c) = self.conference.as_mut() {
                    let _ = c.leave(id);
                }
                if self.extras.is_empty() && self.conference.is_some() {
                    self.conference = None;
                    tracing::debug!("back to forwarding");
                }
            }
            Control::Mode(id, mode, reply) => {
                let result = match self.conference.as_mut() {
                    Some(c) => c.set_mode(id, mode),
                    None => Err(MixerError::NotJoined(id)),
                };
                reply.send(result).ok();
            }
        }
    }

    /// The worker's tick.
    pub(crate) fn on_tick(&mut self, now: Instant) {
        if self.moh.is_some() || self.conference.is_some() {
            self.pace(now);
        }
        if now >= self.rtcp_at {
            self.rtcp_at = next_rtcp(now, self.rtcp_interval);
            self.report(now);
        }
        if now >= self.next_drain {
            self.next_drain = now + DRAIN_EVERY;
            let up_to = now
                .saturating_duration_since(self.started)
                .saturating_sub(RECORD_DELAY);
            if let Some(r) = self.recorder.as_mut() {
                r.drain(up_to);
            }
        }
        if now >= self.next_check {
            self.next_check = now + self.check_every;
            if !self.silence.is_zero()
                && !self.on_hold
                && !self.reported
                && now.saturating_duration_since(self.last_rtp) >= self.silence
            {
                self.reported = true;
                self.events.send(RelayEvent::Silent).ok();
            }
        }
    }

    /// Stop watching the relay's own ports (they close with it); the
    /// caller's outlive it (its media session keeps them).
    pub(crate) fn abandon(&mut self, registrar: &mut Registrar<'_>) {
        registrar.unwatch(&self.b_pair);
        for x in &self.extras {
            registrar.unwatch(&x.pair);
        }
    }
}

/// A leg's peer: strictly latched (`media::latch`), or, for a browser's
/// leg whose sources ICE checked, following its media.
pub(super) fn peer_of(format: &super::LegFormat, negotiated: Option<SocketAddr>) -> Peer {
    match format.dtls {
        Some(_) => Peer::following(negotiated),
        None => Peer::new(negotiated),
    }
}
