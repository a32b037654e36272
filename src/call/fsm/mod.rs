//! The connected call as a pure state machine (issue 13; DESIGN.md "call":
//! `Fsm` pure, `task` a thin shell): side A (the caller: the carrier's leg
//! or the citizen dialled back) and side B (the agent or an external
//! party) talk through hotline's media, and everything that can happen to
//! them is an [`Input`] and everything hotline does in answer is an
//! [`Output`]. No sockets, no channels, no clock: the shell
//! (`call::session`) feeds leg events, media news, API commands and the
//! time in, executes the outputs, and sleeps until [`Fsm::poll_timeout`].
//!
//! What it decides, with the RFC that says how:
//! - **re-INVITEs** (RFC 3261 §14, RFC 3264 §8): a re-INVITE from one side
//!   moves that side's RTP target and is reflected to the other side with
//!   the same direction (hold with `a=sendonly`/`a=inactive`/`c=0.0.0.0`);
//!   the answer goes back once the other side answered (100 Trying
//!   meanwhile). A pending
//!   re-INVITE is a state ([`Reflecting`]), never an await: a BYE, RTP
//!   silence or a command meanwhile is handled at once, and the pending
//!   request is answered 487 when the call ends (RFC 3261 §15.1.2). A
//!   second re-INVITE while one is pending gets 491 from the side we
//!   re-INVITEd (glare, §14.2) and 500 with Retry-After from the side
//!   whose re-INVITE is pending (§14.2). An offerless re-INVITE gets our
//!   current offer (§14.2). The agent's own hold is answered by hotline,
//!   which plays music on hold to the caller instead of reflecting it.
//! - **session refresh** (RFC 4028 §10): both legs are refreshed every
//!   interval; 408/481 or no answer clears the call.
//! - **the end**: who hangs up, RTP silence, a failed refresh, shutdown,
//!   a release or a blind transfer from the API decide which legs get a
//!   BYE and whether the caller stays on the line (a flow's survey, a
//!   transfer).
//! - **hold** from the API and around a consultation: music on hold, the
//!   caller kept out of the mix, and the `held`/`resumed` facts.
//!
//! - **attended transfers** (`consult`): what is allowed when, the
//!   caller's hold while the agent consults, the caller back when the
//!   target fails or hangs up, the consulted party taking the agent's
//!   place, a supervisor's take-over.
//! - **supervision** (`supervise`): a supervisor rung or dialling in
//!   joining the mix, listen / whisper / barge by key, their hang-up, a
//!   BYE to each when the call ends, the take-over.
//!
//! The extra parties' legs and media (supervisors, three-way calls,
//! consulted agents) are kept by the shell (`call::session::parties`,
//! `call::session::supervisors`), which tells this machine what happened
//! to them. The ringing, IVR and
//! queue phases of a call are async drivers that hand over to this
//! machine once a call is connected (issue 13 goes on from here).

mod consult;
#[cfg(test)]
mod consult_tests;
#[cfg(test)]
mod interleavings_tests;
#[cfg(test)]
mod kit;
mod refer;
#[cfg(test)]
mod refer_tests;
mod reoffer;
#[cfg(test)]
mod srtp_tests;
mod supervise;
#[cfg(test)]
mod supervise_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crate::media::sdp::{AudioCodec, LocalMedia, SessionDescription};

pub use crate::media::relay::Side;
pub use consult::Consultation;
pub use refer::ReferRefusal;
pub use supervise::{Stage, SupId, Supervision, Supervisor, SupervisorAction, SupervisorEvent};

/// The time of the pure cores (`time::Time`, Unix milliseconds).
pub use crate::time::Time as Now;

/// An in-dialog request from a leg waiting for our final response (the
/// shell keeps the transaction; the machine names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// A request hotline sent on a leg (a re-INVITE or a refresh), whose
/// outcome comes back as an input with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReqId(pub u64);

/// What a leg negotiated: the codec and telephone-event payload type its
/// re-offers keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegFormat {
    /// The codec in use on the leg.
    pub codec: AudioCodec,
    /// The RFC 4733 payload type on the leg, if any.
    pub telephone_event: Option<u8>,
}

/// How a connected call starts.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Our media on side A (address, port, SDP session id and version).
    pub a_local: LocalMedia,
    /// Our media on side B.
    pub b_local: LocalMedia,
    /// What side A negotiated.
    pub a_format: LegFormat,
    /// What side B negotiated.
    pub b_format: LegFormat,
    /// Where side A's RTP goes.
    pub a_remote: SocketAddr,
    /// Where side B's RTP goes.
    pub b_remote: SocketAddr,
    /// Our last answer to side A.
    pub a_answer: SessionDescription,
    /// Music on hold is loaded (the agent's hold and the API's hold play
    /// it; without it the agent's hold is reflected to the caller).
    pub music_loaded: bool,
    /// The caller hears music on hold already.
    pub music_on_hold: bool,
    /// When the agent hangs up first the caller stays (the flow goes on).
    pub keep_caller: bool,
    /// Whoever runs the call can put the caller through a blind transfer.
    pub blind_transfer: bool,
    /// Refresh both legs this often (`None`: never).
    pub refresh_every: Option<Duration>,
}

/// What happens to a connected call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A re-INVITE from `side` (an empty `sdp`: an offerless one).
    Reoffer {
        /// Which leg.
        side: Side,
        /// Its transaction (answer with [`Output::Respond`]).
        tx: TxId,
        /// The offered SDP.
        sdp: Vec<u8>,
    },
    /// An INFO from `side` (answered 200; keys in it are the media's).
    Info {
        /// Which leg.
        side: Side,
        /// Its transaction.
        tx: TxId,
    },
    /// `side`'s dialog ended (BYE from the peer, or the dialog died).
    Ended {
        /// Which leg.
        side: Side,
    },
    /// The outcome of our re-INVITE `req`: status and answer body, or why
    /// it got none.
    ReinviteDone {
        /// Which request.
        req: ReqId,
        /// Status and body, or the error.
        result: Result<(u16, Vec<u8>), String>,
    },
    /// The outcome of our session refresh `req` on `side`.
    RefreshDone {
        /// Which leg.
        side: Side,
        /// Which request.
        req: ReqId,
        /// Status, or the error.
        result: Result<u16, String>,
    },
    /// A REFER from `side` (a phone's transfer key, RFC 3515), its
    /// target already looked up by the shell (or why it names nobody).
    Refer {
        /// Which leg.
        side: Side,
        /// Its transaction.
        tx: TxId,
        /// Where the transferor wants the caller put through.
        target: Result<crate::ivr::TransferTarget, ReferRefusal>,
    },
    /// A REFER from `side` whose `Replaces` names the agent's own
    /// consultation, the phone's second line (attended transfer from the
    /// phone, RFC 5589 §7): the consulted party takes the caller.
    ReferConsulted {
        /// Which leg.
        side: Side,
        /// Its transaction.
        tx: TxId,
    },
    /// The transferor's phone answered our NOTIFY `req` of a REFER (or
    /// did not in time): the transfer goes ahead either way.
    ReferNotified {
        /// Which NOTIFY.
        req: ReqId,
    },
    /// No RTP from either side for the media timeout.
    Silent,
    /// hotline is shutting down.
    Shutdown,
    /// Something happened to a supervisor's leg.
    Supervisor {
        /// Which supervisor.
        sup: SupId,
        /// What happened.
        event: SupervisorEvent,
    },
}

/// What other tasks ask of the call (the API, supervisors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Hang up both legs (force-release, the agent's hang-up button).
    Hangup,
    /// Blind transfer: the agent leaves, the caller is put through.
    Transfer(crate::ivr::TransferTarget),
    /// The agent leaves and the caller goes on to the flow's survey.
    ToSurvey,
    /// Music on hold on (`true`) or off.
    Hold(bool),
}

/// Media the shell applies to the call's relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `side`'s RTP now goes to `addr`.
    SetRemote {
        /// Which leg.
        side: Side,
        /// The new target.
        addr: SocketAddr,
    },
    /// A side put the other on hold (`true`) or resumed.
    SetHold(bool),
    /// Music on hold to the caller on or off.
    MusicOnHold(bool),
    /// The caller is kept out of the mix (a consultation) or back in it.
    MuteCaller(bool),
    /// `side`'s SRTP keys as its latest offer/answer settled them (a
    /// re-INVITE may carry a new key, RFC 4568 §7.1.4; the same keys again
    /// change nothing).
    SetKeys {
        /// Which leg.
        side: Side,
        /// The keys.
        keys: crate::media::sdp::SrtpKeys,
    },
}

/// A fact for the call's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The caller was put on hold.
    Held,
    /// The caller was taken off hold.
    Resumed,
}

/// What the machine asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer the in-dialog request `tx` (a provisional status leaves it
    /// open for the final one).
    Respond {
        /// Which request.
        tx: TxId,
        /// Status code.
        code: u16,
        /// Extra header fields (name, value).
        headers: Vec<(String, String)>,
        /// SDP body.
        sdp: Option<Vec<u8>>,
    },
    /// Send a re-INVITE with `sdp` on `side`.
    Reinvite {
        /// Which leg.
        side: Side,
        /// Its id (the outcome comes back as [`Input::ReinviteDone`]).
        req: ReqId,
        /// Our offer.
        sdp: Vec<u8>,
    },
    /// Refresh `side`'s session (UPDATE without a body).
    Refresh {
        /// Which leg.
        side: Side,
        /// Its id.
        req: ReqId,
    },
    /// Tell `side` how its REFER went: a NOTIFY whose sipfrag is the
    /// status line `code reason`; `done` ends the implicit subscription.
    /// Its outcome comes back as [`Input::ReferNotified`].
    NotifyRefer {
        /// Which leg.
        side: Side,
        /// Its id.
        req: ReqId,
        /// The sipfrag's status code.
        code: u16,
        /// Its reason phrase.
        reason: &'static str,
        /// The last NOTIFY.
        done: bool,
    },
    /// Send BYE on `side`.
    Bye {
        /// Which leg.
        side: Side,
    },
    /// Change the media.
    Media(Media),
    /// Tell the record.
    Fact(Fact),
    /// Do something to a supervisor's leg.
    Supervisor {
        /// Which supervisor.
        sup: SupId,
        /// What.
        action: SupervisorAction,
    },
    /// Attended transfer, step 2, decided by a phone's REFER: the
    /// consulted party `party` (through skill group `group`) took the
    /// caller and the agent's leg goes (the shell records the transfer and
    /// ends it, as for the API's completion).
    Completed {
        /// Who took the caller.
        party: String,
        /// The skill group the consultation went through.
        group: Option<String>,
    },
}

/// Why the connected call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Side A hung up.
    CallerHungUp,
    /// Side B (or who took its place) hung up, or the agent sent the
    /// caller to the survey.
    AgentHungUp,
    /// No RTP for the timeout.
    Silence,
    /// A session refresh failed.
    RefreshFailed,
    /// hotline shuts down.
    Shutdown,
    /// The API released the call.
    Released,
    /// The agent transferred the caller (blind).
    Transfer(crate::ivr::TransferTarget),
}

/// A re-INVITE of one side reflected to the other, waiting for the other
/// side's answer.
#[derive(Debug, Clone)]
struct Reflecting {
    /// Whose re-INVITE.
    from: Side,
    /// Its transaction, answered when the other side answers.
    tx: TxId,
    /// What it offered.
    offer: SessionDescription,
    /// Our re-INVITE to the other side.
    req: ReqId,
}

/// The connected call.
#[derive(Debug)]
pub struct Fsm {
    a_local: LocalMedia,
    b_local: LocalMedia,
    a_format: LegFormat,
    b_format: LegFormat,
    a_remote: SocketAddr,
    b_remote: SocketAddr,
    a_answer: SessionDescription,
    music_loaded: bool,
    music_on_hold: bool,
    keep_caller: bool,
    blind_transfer: bool,
    /// Side B holds the caller (its hold, the API's or a consultation's).
    held: bool,
    /// The agent's phone holds its leg (a re-INVITE with `sendonly` or
    /// `inactive`): the caller keeps music on hold when a consultation
    /// from the phone's second line ends.
    agent_holds: bool,
    /// Where an attended transfer stands.
    consultation: Consultation,
    /// A REFER accepted: its NOTIFY and where the caller goes.
    referred: Option<refer::Referred>,
    /// The supervisors on the call or being rung.
    supervisors: supervise::Supervisors,
    reflecting: Option<Reflecting>,
    refresh_every: Option<Duration>,
    next_refresh: Option<Now>,
    /// Refreshes sent and not yet answered.
    refreshing: Vec<ReqId>,
    next_req: u64,
    end: Option<End>,
    outputs: VecDeque<Output>,
}

impl Fsm {
    /// A call connected at `now`.
    pub fn new(setup: Setup, now: Now) -> Self {
        Fsm {
            a_local: setup.a_local,
            b_local: setup.b_local,
            a_format: setup.a_format,
            b_format: setup.b_format,
            a_remote: setup.a_remote,
            b_remote: setup.b_remote,
            a_answer: setup.a_answer,
            music_loaded: setup.music_loaded,
            music_on_hold: setup.music_on_hold,
            keep_caller: setup.keep_caller,
            blind_transfer: setup.blind_transfer,
            held: false,
            agent_holds: false,
            consultation: Consultation::Idle,
            referred: None,
            supervisors: supervise::Supervisors::new(),
            reflecting: None,
            refresh_every: setup.refresh_every,
            next_refresh: setup.refresh_every.map(|every| now + every),
            refreshing: Vec::new(),
            next_req: 1,
            end: None,
            outputs: VecDeque::new(),
        }
    }

    /// Something happened to the call.
    pub fn handle_input(&mut self, now: Now, input: Input) {
        if self.end.is_some() {
            // Over: a late request still gets its answer, a supervisor's
            // answer crossing the end its BYE.
            match input {
                Input::Reoffer { tx, .. }
                | Input::Info { tx, .. }
                | Input::Refer { tx, .. }
                | Input::ReferConsulted { tx, .. } => self.respond(tx, 481, None),
                Input::Supervisor { sup, event } => self.supervisor_event(sup, event),
                _ => {}
            }
            return;
        }
        match input {
            Input::Reoffer { side, tx, sdp } => self.reoffer(now, side, tx, &sdp),
            Input::Info { tx, .. } => self.respond(tx, 200, None),
            Input::Ended { side: Side::A } => self.finish(End::CallerHungUp),
            Input::Ended { side: Side::B } if self.referred.is_some() => self.refer_done(true),
            Input::Ended { side: Side::B } if self.agent_replaced() => {}
            Input::Ended { side: Side::B } => self.finish(End::AgentHungUp),
            Input::ReinviteDone { req, result } => self.reinvite_done(req, result),
            Input::RefreshDone { side, req, result } => {
                self.refreshing.retain(|r| *r != req);
                let gone = match result {
                    Ok(408) | Ok(481) => true,
                    Ok(_) => false,
                    Err(_) => true,
                };
                if gone && !(side == Side::B && self.agent_replaced()) {
                    self.finish(End::RefreshFailed);
                }
            }
            Input::Refer { side, tx, target } => self.refer(side, tx, target),
            Input::ReferConsulted { side, tx } => self.refer_consulted(side, tx),
            Input::ReferNotified { req } => self.refer_notified(req),
            Input::Silent => self.finish(End::Silence),
            Input::Shutdown => self.finish(End::Shutdown),
            Input::Supervisor { sup, event } => self.supervisor_event(sup, event),
        }
    }

    /// A command from the API; `Err` says why it was refused.
    pub fn handle_command(&mut self, command: Command) -> Result<(), String> {
        if self.end.is_some() {
            return Err("the call is over".into());
        }
        match command {
            Command::Hangup => {
                self.finish(End::Released);
                Ok(())
            }
            Command::Transfer(target) => {
                if !self.blind_transfer {
                    return Err("an outbound call or a callback cannot be blind-transferred; consult the target and complete the transfer instead".into());
                }
                self.finish(End::Transfer(target));
                Ok(())
            }
            Command::ToSurvey => {
                if !self.keep_caller {
                    return Err(
                        "this call has no survey after the agent (its flow sets none)".into(),
                    );
                }
                self.push(Output::Bye { side: Side::B });
                self.finish(End::AgentHungUp);
                Ok(())
            }
            Command::Hold(on) => self.api_hold(on),
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Fsm::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Now> {
        if self.end.is_some() || self.agent_replaced() {
            return None;
        }
        self.next_refresh
    }

    /// Time passed: refresh both legs when due.
    pub fn handle_timeout(&mut self, now: Now) {
        let (Some(due), Some(every)) = (self.next_refresh, self.refresh_every) else {
            return;
        };
        if now < due || self.end.is_some() || self.agent_replaced() {
            return;
        }
        self.next_refresh = Some(now + every);
        if !self.refreshing.is_empty() {
            return; // the last refresh is still out
        }
        for side in [Side::A, Side::B] {
            let req = self.req();
            self.refreshing.push(req);
            self.push(Output::Refresh { side, req });
        }
    }

    /// Why the call ended, once it has.
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// The caller stays on the line after the end (the agent hung up on a
    /// call whose flow goes on, or a blind transfer).
    pub fn keeps_caller(&self) -> bool {
        match &self.end {
            Some(End::AgentHungUp) => self.keep_caller,
            Some(End::Transfer(_)) => true,
            _ => false,
        }
    }

    /// The caller is on hold.
    pub fn held(&self) -> bool {
        self.held
    }

    /// The caller is put on hold for a consultation (music, out of the
    /// mix).
    fn consult_hold(&mut self) {
        if self.end.is_some() {
            return;
        }
        self.push(Output::Media(Media::MusicOnHold(true)));
        self.push(Output::Media(Media::MuteCaller(true)));
        if !self.held {
            self.held = true;
            self.push(Output::Fact(Fact::Held));
        }
        self.music_on_hold = true;
    }

    /// The caller is back from a consultation's hold (still with music
    /// while the agent's phone holds their leg).
    fn end_consult_hold(&mut self) {
        if self.end.is_some() {
            return;
        }
        self.push(Output::Media(Media::MuteCaller(false)));
        if self.agent_holds {
            return;
        }
        self.push(Output::Media(Media::MusicOnHold(false)));
        self.music_on_hold = false;
        if self.held {
            self.held = false;
            self.push(Output::Fact(Fact::Resumed));
        }
    }

    /// The consulted party took the agent's place and side B's leg is
    /// gone: side B is no longer refreshed nor heard, and the call ends
    /// when that party leaves ([`Fsm::party_left`]).
    fn agent_replaced(&self) -> bool {
        matches!(self.consultation, Consultation::Completed { .. })
    }

    /// Hold or resume from the API: music on hold to the caller.
    fn api_hold(&mut self, on: bool) -> Result<(), String> {
        if on == self.held {
            return Err(if on {
                "the caller is already on hold".into()
            } else {
                "the caller is not on hold".into()
            });
        }
        if on && !self.music_loaded {
            return Err("no music on hold is loaded".into());
        }
        self.push(Output::Media(Media::MusicOnHold(on)));
        self.push(Output::Fact(if on { Fact::Held } else { Fact::Resumed }));
        self.held = on;
        self.music_on_hold = on;
        Ok(())
    }

    /// The call ends: BYE to whoever must get one, and a pending
    /// re-INVITE answered 487 (RFC 3261 §15.1.2).
    fn finish(&mut self, end: End) {
        self.finish_with_gone(end, None);
    }

    /// [`Fsm::finish`] when side `gone` already ended its dialog: it gets
    /// no BYE.
    fn finish_with_gone(&mut self, end: End, gone: Option<Side>) {
        if let Some(r) = self.reflecting.take() {
            self.respond(r.tx, 487, None);
        }
        self.refreshing.clear();
        let byes: &[Side] = match &end {
            End::CallerHungUp => &[Side::B],
            End::AgentHungUp if self.keep_caller => &[],
            End::AgentHungUp => &[Side::A],
            End::Transfer(_) => &[Side::B],
            End::Silence | End::RefreshFailed | End::Shutdown | End::Released => {
                &[Side::A, Side::B]
            }
        };
        for side in byes.iter().filter(|s| Some(**s) != gone) {
            self.push(Output::Bye { side: *side });
        }
        self.supervisors_leave();
        self.end = Some(end);
    }

    fn respond(&mut self, tx: TxId, code: u16, sdp: Option<Vec<u8>>) {
        self.push(Output::Respond {
            tx,
            code,
            headers: Vec::new(),
            sdp,
        });
    }

    fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    fn req(&mut self) -> ReqId {
        let id = ReqId(self.next_req);
        self.next_req += 1;
        id
    }
}
