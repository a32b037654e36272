//! One media session per call (issue 13 §3), served by the shared media IO
//! workers ([`crate::media::io`], issue 16 item 1).
//!
//! A [`CallerSession`] owns the caller leg's RTP ports from the first SDP
//! answer to the call's end: one worker reads them the whole time, and the
//! session's mode says what their audio is for:
//!
//! * **idle**: nobody sends to the caller (between a prompt and the
//!   bridge); what the caller sends meanwhile is dropped as it comes, so a
//!   key already handled is never replayed to an agent;
//! * **playing** ([`PlayerCore`]): IVR prompts, queue music, voicemail, the
//!   caller's keys;
//! * **bridged** ([`RelayCore`]): the conversation with an agent or a
//!   number, with extra parties in the mix and the recording.
//!
//! The caller's outgoing RTP stream, its keys and its latch
//! ([`Continuation`]) pass from mode to mode inside the session, on its
//! worker: the phone sees one SSRC with continuous sequence numbers and
//! timestamps for the whole call, a press is read once whoever listens, and
//! no hand-over is a window for a stranger or loses the ports. The call
//! drives the session with commands through its handles
//! ([`CallerMedia`](super::caller::CallerMedia), [`Player`](super::player::Player),
//! [`RelayHandle`](super::relay::RelayHandle)); the session ends when the
//! last of them is gone.
//!
//! Blocking work never runs on a worker: voicemails and recordings are
//! opened before their command and finished on the runtime's blocking pool.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::io::{self, Flow, MediaIo, MediaTask, Registrar, TaskHandle};
use super::player::core::{off_worker, voicemail_event, PlayerCommand, PlayerCore};
use super::player::{Continuation, PlayerEvent, Target};
use super::ports::{Channel, PortPair};
use super::relay::core::{RelayCore, Stopped, TAG_A};
use super::relay::{CallRecording, Control, RelayEvent, RelayOptions, RelayStats, Stop};
use super::voicemail::VoicemailRecorder;

/// What the call's handles tell its media session.
pub(crate) enum Command {
    /// Start a player (from idle), reporting to this channel.
    Play(mpsc::UnboundedSender<PlayerEvent>),
    /// A command for the running player.
    Player(PlayerCommand),
    /// Stop the player; the reply takes the voicemail still being recorded
    /// (no reply: its handle was dropped, the voicemail is finished
    /// detached).
    EndPlay(Option<oneshot::Sender<Option<Box<VoicemailRecorder>>>>),
    /// Bridge the caller to another leg.
    Bridge(Box<Bridge>),
    /// A command for the running relay.
    Relay(Control),
    /// Stop the relay (the reply takes its report).
    Unbridge(oneshot::Sender<Stopped>, Stop),
    /// The relay's handle was dropped without stopping it.
    Unbridged,
    /// The caller's media moved (a re-INVITE).
    Remote(SocketAddr),
}

/// What a bridge needs besides the caller's ports.
pub(crate) struct Bridge {
    pub(crate) a_remote: Option<SocketAddr>,
    pub(crate) b: PortPair,
    pub(crate) b_remote: Option<SocketAddr>,
    pub(crate) options: RelayOptions,
    pub(crate) events: mpsc::UnboundedSender<RelayEvent>,
    pub(crate) stats: Arc<RelayStats>,
}

enum Mode {
    Idle(Box<Continuation>),
    Playing(Box<PlayerCore>),
    Bridged(Box<RelayCore>),
    /// Only while a transition runs.
    Moving,
}

/// The caller leg's media for the whole call. See the module docs.
pub(crate) struct CallerSession {
    pair: Arc<PortPair>,
    target: Target,
    mode: Mode,
    /// Where blocking work goes (the runtime that started the call).
    runtime: Option<tokio::runtime::Handle>,
}

/// A running session, shared by the handles that drive it.
pub(crate) type Link = Arc<TaskHandle<CallerSession>>;

impl CallerSession {
    /// A session on `pair` sending to `target`, continuing `stream`, served
    /// by the process's workers (`None`: they could not start).
    pub(crate) fn start(pair: Arc<PortPair>, target: Target, stream: Continuation) -> Option<Link> {
        let session = Self {
            pair,
            target,
            mode: Mode::Idle(Box::new(stream)),
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        workers().map(|io| Arc::new(io.adopt(session)))
    }

    /// Take the caller's stream from whoever holds it, ending that mode
    /// (a player's voicemail is finished detached, a relay's recording
    /// too).
    fn take_stream(&mut self, now: Instant, registrar: &mut Registrar<'_>) -> Continuation {
        match std::mem::replace(&mut self.mode, Mode::Moving) {
            Mode::Idle(stream) => *stream,
            Mode::Playing(player) => {
                let events = player.events();
                let (stream, open) = player.finish();
                self.finish_voicemail(open, events);
                stream
            }
            Mode::Bridged(mut relay) => {
                tracing::warn!(
                    port = self.pair.port(),
                    "the caller was bridged again without the relay stopping: it stops now"
                );
                let (stopped, stream) = relay.stop(Stop::Finish, now, registrar);
                self.finish_recording(stopped.finish);
                stream
            }
            Mode::Moving => {
                tracing::warn!(
                    port = self.pair.port(),
                    "the caller's RTP stream was lost: starting a new one"
                );
                Continuation::fresh()
            }
        }
    }

    /// The running player, the session left moving (`None`, untouched,
    /// when it is not playing).
    fn take_player(&mut self) -> Option<Box<PlayerCore>> {
        match std::mem::replace(&mut self.mode, Mode::Moving) {
            Mode::Playing(player) => Some(player),
            other => {
                self.mode = other;
                None
            }
        }
    }

    /// Stop the relay, if bridged, and go idle on the caller's stream.
    fn unbridge(
        &mut self,
        how: Stop,
        now: Instant,
        registrar: &mut Registrar<'_>,
    ) -> Option<Stopped> {
        match std::mem::replace(&mut self.mode, Mode::Moving) {
            Mode::Bridged(mut relay) => {
                let (stopped, stream) = relay.stop(how, now, registrar);
                self.mode = Mode::Idle(Box::new(stream));
                Some(stopped)
            }
            other => {
                self.mode = other;
                None
            }
        }
    }

    fn finish_voicemail(
        &self,
        open: Option<Box<VoicemailRecorder>>,
        events: mpsc::UnboundedSender<PlayerEvent>,
    ) {
        if let Some(r) = open {
            off_worker(self.runtime.as_ref(), move || {
                events.send(voicemail_event(r)).ok();
            });
        }
    }

    /// Finish a recording the relay left open, off the worker.
    fn finish_recording(&self, recording: Option<CallRecording>) {
        let Some(r) = recording else { return };
        match &self.runtime {
            Some(rt) => {
                rt.spawn(async move {
                    let _ = r.finish().await;
                });
            }
            None => r.finish_detached(),
        }
    }
}

impl MediaTask for CallerSession {
    type Command = Command;

    fn watch(&mut self, registrar: &mut Registrar<'_>) {
        registrar.watch(TAG_A, &self.pair);
    }

    fn port(&self, tag: u16) -> Option<&PortPair> {
        match (&self.mode, tag) {
            (_, TAG_A) => Some(&self.pair),
            (Mode::Bridged(relay), _) => relay.port(tag),
            _ => None,
        }
    }

    fn on_datagram(
        &mut self,
        tag: u16,
        channel: Channel,
        datagram: &mut [u8],
        from: SocketAddr,
        now: Instant,
    ) {
        match &mut self.mode {
            Mode::Bridged(relay) => relay.on_datagram(tag, channel, datagram, from, now),
            Mode::Playing(player) if tag == TAG_A && channel == Channel::Rtp => {
                player.on_rtp(datagram, from, now);
            }
            // Idle: said to nobody (a key already handled, words before
            // the bridge); RTCP while playing is not read.
            _ => {}
        }
    }

    fn on_command(
        &mut self,
        command: Command,
        now: Instant,
        registrar: &mut Registrar<'_>,
    ) -> Flow {
        match command {
            Command::Play(events) => {
                let stream = self.take_stream(now, registrar);
                self.mode = Mode::Playing(Box::new(PlayerCore::resume(
                    stream,
                    self.target,
                    events,
                    self.runtime.clone(),
                )));
            }
            Command::Player(c) => {
                if let Mode::Playing(player) = &mut self.mode {
                    player.on_command(c, now);
                }
            }
            Command::EndPlay(reply) => {
                let Some(player) = self.take_player() else {
                    // Already ended (a bridge took over): nothing is open.
                    if let Some(reply) = reply {
                        reply.send(None).ok();
                    }
                    return Flow::Continue;
                };
                let events = player.events();
                let (stream, open) = player.finish();
                self.mode = Mode::Idle(Box::new(stream));
                match reply {
                    Some(reply) => {
                        if let Err(open) = reply.send(open) {
                            self.finish_voicemail(open, events);
                        }
                    }
                    None => self.finish_voicemail(open, events),
                }
            }
            Command::Bridge(bridge) => {
                let stream = self.take_stream(now, registrar);
                let Bridge {
                    a_remote,
                    b,
                    b_remote,
                    options,
                    events,
                    stats,
                } = *bridge;
                let mut relay = Box::new(RelayCore::new(
                    self.pair.clone(),
                    a_remote,
                    (b, b_remote),
                    options,
                    stream,
                    events,
                    stats,
                ));
                relay.watch(registrar);
                self.mode = Mode::Bridged(relay);
            }
            Command::Relay(c) => {
                if let Mode::Bridged(relay) = &mut self.mode {
                    relay.on_command(c, now, registrar);
                }
            }
            Command::Unbridge(reply, how) => {
                // Not bridged (a later play stopped the relay already): the
                // reply drops and the session goes on as it is.
                if let Some(stopped) = self.unbridge(how, now, registrar) {
                    if let Err(stopped) = reply.send(stopped) {
                        self.finish_recording(stopped.finish);
                        self.finish_recording(stopped.report.open_recording);
                    }
                }
            }
            Command::Unbridged => {
                if let Some(stopped) = self.unbridge(Stop::Finish, now, registrar) {
                    self.finish_recording(stopped.finish);
                }
            }
            Command::Remote(addr) => {
                self.target.remote = addr;
                match &mut self.mode {
                    // A signalled move: whoever sends next latches afresh.
                    Mode::Idle(stream) => stream.latched = None,
                    Mode::Playing(player) => player.set_remote(addr),
                    Mode::Bridged(relay) => {
                        relay.on_command(
                            Control::Remote(super::relay::Side::A, addr),
                            now,
                            registrar,
                        );
                    }
                    Mode::Moving => {}
                }
            }
        }
        Flow::Continue
    }

    fn on_tick(&mut self, now: Instant) {
        match &mut self.mode {
            Mode::Playing(player) => player.on_tick(&self.pair, now),
            Mode::Bridged(relay) => relay.on_tick(now),
            Mode::Idle(_) | Mode::Moving => {}
        }
    }

    fn abandon(&mut self, registrar: &mut Registrar<'_>) {
        registrar.unwatch(&self.pair);
        match std::mem::replace(&mut self.mode, Mode::Moving) {
            Mode::Playing(player) => {
                // A caller who hangs up after speaking keeps the message.
                let events = player.events();
                let (_, open) = player.finish();
                self.finish_voicemail(open, events);
            }
            Mode::Bridged(mut relay) => {
                let (stopped, _) = relay.stop(Stop::Finish, Instant::now(), registrar);
                self.finish_recording(stopped.finish);
            }
            Mode::Idle(_) | Mode::Moving => {}
        }
    }
}

/// The process's media IO workers, started at the first call
/// ([`configure_workers`] sets how many; one per core by default).
fn workers() -> Option<&'static MediaIo<CallerSession>> {
    static WORKERS: OnceLock<Option<MediaIo<CallerSession>>> = OnceLock::new();
    WORKERS
        .get_or_init(|| {
            let count = match WORKER_COUNT.load(Ordering::Relaxed) {
                0 => io::default_workers(),
                n => n,
            };
            let coalesce = Duration::from_micros(COALESCE_US.load(Ordering::Relaxed));
            match MediaIo::start("hotline-media", count, coalesce) {
                Ok(io) => Some(io),
                Err(e) => {
                    tracing::error!(error = %e, "the media IO workers cannot start: calls get no media");
                    None
                }
            }
        })
        .as_ref()
}

static WORKER_COUNT: AtomicUsize = AtomicUsize::new(0);
static COALESCE_US: AtomicU64 = AtomicU64::new(0);

/// How many media IO workers serve calls (`[media] io_workers`; zero: one
/// per core, at most [`io::MAX_WORKERS`]) and how long they let datagrams
/// gather after a busy pass (`[media] io_coalesce_us`). Takes effect if
/// called before the first call's media starts.
pub fn configure_workers(count: usize, coalesce: Duration) {
    WORKER_COUNT.store(count, Ordering::Relaxed);
    COALESCE_US.store(
        u64::try_from(coalesce.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Whether the media IO workers are near their limit (`limit_percent`
/// busy, or their ticks falling behind; see [`io::Pressure::overloaded`]):
/// admission then refuses new calls so the calls in progress keep their
/// packets.
pub fn overloaded(limit_percent: u32) -> bool {
    workers().is_some_and(|io| io.pressure().overloaded(limit_percent))
}

/// The busiest media IO worker's figures over its last second (`None`:
/// the workers could not start).
pub fn pressure() -> Option<io::Pressure> {
    workers().map(MediaIo::pressure)
}

/// Calls' media sessions served now (for `/healthz` and the leak tests).
pub fn running() -> usize {
    workers().map_or(0, MediaIo::tasks)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
