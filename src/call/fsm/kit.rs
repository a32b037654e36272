//! A test kit that runs one connected call's [`Fsm`] in virtual time with
//! scripted legs: the tests say what the carrier's, the agent's and
//! supervisors' phones send and read back exactly what hotline would send
//! them, which media changes it makes, what it does to supervisors' legs
//! and which facts it records (in the style of
//! quinn-proto's `Pair` tests and the ACD's `sim.rs`). No sockets, no
//! sleeps.

use std::net::SocketAddr;
use std::time::Duration;

use super::{
    Command, Fsm, Input, LegFormat, Media, Now, Output, ReqId, Setup, Side, SupId, Supervision,
    SupervisorAction, SupervisorEvent, TxId,
};
use crate::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};

/// The carrier's phone's media address.
pub const CARRIER_RTP: &str = "192.0.2.10:4000";
/// The agent's phone's media address.
pub const AGENT_RTP: &str = "192.0.2.20:5000";
/// The SDP a supervisor's phone has of us (opaque to the machine).
pub const SUPERVISOR_ANSWER: &[u8] = b"v=0 (our answer to the supervisor)";
/// How often the kit's calls refresh their legs.
pub const REFRESH: Duration = Duration::from_secs(900);

/// Media at `addr` (the one `LocalMedia` literal of the kit: a field
/// added to it is added here).
pub fn media_at(
    addr: SocketAddr,
    session_id: u64,
    session_version: u64,
    codecs: Vec<AudioCodec>,
    direction: Direction,
) -> LocalMedia {
    LocalMedia {
        address: addr.ip(),
        port: addr.port(),
        session_id,
        session_version,
        codecs,
        telephone_event: true,
        direction,
        sdes: crate::media::sdp::Sdes::OFF,
    }
}

/// Our media on one side.
fn ours(port: u16) -> LocalMedia {
    let addr = SocketAddr::new("198.51.100.1".parse().expect("address"), port);
    media_at(
        addr,
        7,
        1,
        vec![AudioCodec::Pcma, AudioCodec::Pcmu],
        Direction::SendRecv,
    )
}

/// A phone's SDP offer: PCMA + telephone-event from `addr` with
/// `direction`, version `version`.
pub fn phone_sdp(addr: &str, direction: Direction, version: u64) -> String {
    let addr: SocketAddr = addr.parse().expect("socket address");
    sdp::build_offer(&media_at(
        addr,
        99,
        version,
        vec![AudioCodec::Pcma],
        direction,
    ))
    .to_string()
}

/// The SDP of a phone's answer to hotline's offer `offer` from `addr`.
pub fn phone_answer(offer: &[u8], addr: &str, direction: Direction) -> Vec<u8> {
    let offer = SessionDescription::parse(&String::from_utf8_lossy(offer)).expect("our offer");
    let addr: SocketAddr = addr.parse().expect("socket address");
    let local = media_at(addr, 99, 2, vec![AudioCodec::Pcma], direction);
    let (answer, _) = sdp::negotiate_answer(&offer, &local).expect("answerable");
    answer.to_string().into_bytes()
}

/// The setup every kit call starts from: a carrier call to an agent,
/// PCMA on both sides, music on hold loaded, refreshed every 15 min.
pub fn setup() -> Setup {
    let a_local = ours(30000);
    let a_offer = SessionDescription::parse(&phone_sdp(CARRIER_RTP, Direction::SendRecv, 1))
        .expect("carrier offer");
    let (a_answer, _) = sdp::negotiate_answer(&a_offer, &a_local).expect("answer");
    let format = LegFormat {
        codec: AudioCodec::Pcma,
        telephone_event: Some(101),
    };
    Setup {
        a_local,
        b_local: ours(30002),
        a_format: format,
        b_format: format,
        a_remote: CARRIER_RTP.parse().expect("address"),
        b_remote: AGENT_RTP.parse().expect("address"),
        a_answer,
        music_loaded: true,
        music_on_hold: false,
        keep_caller: false,
        blind_transfer: true,
        refresh_every: Some(REFRESH),
    }
}

/// One connected call driven by a test.
pub struct Call {
    /// The machine under test.
    pub fsm: Fsm,
    /// Virtual time.
    pub now: Now,
    next_tx: u64,
}

impl Call {
    /// A call from [`setup`].
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A call from [`setup`] as `change` alters it.
    pub fn with(change: impl FnOnce(&mut Setup)) -> Self {
        let mut s = setup();
        change(&mut s);
        Call {
            fsm: Fsm::new(s, Now::UNIX_EPOCH),
            now: Now::UNIX_EPOCH,
            next_tx: 1,
        }
    }

    /// Feed `input`; what hotline does in answer.
    pub fn input(&mut self, input: Input) -> Vec<Output> {
        self.fsm.handle_input(self.now, input);
        self.drain()
    }

    /// `side` sends a re-INVITE with `sdp`: its transaction and what
    /// hotline does.
    pub fn reoffer(&mut self, side: Side, sdp: &str) -> (TxId, Vec<Output>) {
        let tx = self.tx();
        let out = self.input(Input::Reoffer {
            side,
            tx,
            sdp: sdp.as_bytes().to_vec(),
        });
        (tx, out)
    }

    /// `side` sends an INFO.
    pub fn info(&mut self, side: Side) -> (TxId, Vec<Output>) {
        let tx = self.tx();
        (tx, self.input(Input::Info { side, tx }))
    }

    /// Something happens to supervisor `sup`'s leg; what hotline does.
    pub fn supervisor(&mut self, sup: SupId, event: SupervisorEvent) -> Vec<Output> {
        self.input(Input::Supervisor { sup, event })
    }

    /// Supervisor `sup` (user `user`) dials in as `mode` and is answered.
    pub fn dial_in(&mut self, sup: SupId, user: &str, mode: Supervision) -> Vec<Output> {
        let event = SupervisorEvent::DialledIn {
            user: user.into(),
            mode,
            answer: SUPERVISOR_ANSWER.to_vec(),
        };
        self.supervisor(sup, event)
    }

    /// hotline rings supervisor `sup`'s phone (user `user`) for `mode`.
    pub fn ring_supervisor(&mut self, sup: SupId, user: &str, mode: Supervision) -> Vec<Output> {
        let event = SupervisorEvent::Rung {
            user: user.into(),
            mode,
        };
        self.supervisor(sup, event)
    }

    /// Supervisor `sup`'s phone answers (usable SDP).
    pub fn supervisor_answers(&mut self, sup: SupId) -> Vec<Output> {
        let event = SupervisorEvent::Answered {
            answer: SUPERVISOR_ANSWER.to_vec(),
        };
        self.supervisor(sup, event)
    }

    /// Supervisor `sup`'s phone sends an INFO carrying `key`.
    pub fn supervisor_info(&mut self, sup: SupId, key: Option<char>) -> (TxId, Vec<Output>) {
        let tx = self.tx();
        (tx, self.supervisor(sup, SupervisorEvent::Info { tx, key }))
    }

    /// Supervisor `sup`'s phone sends a re-INVITE.
    pub fn supervisor_reoffer(&mut self, sup: SupId) -> (TxId, Vec<Output>) {
        let tx = self.tx();
        (tx, self.supervisor(sup, SupervisorEvent::Reoffer { tx }))
    }

    /// A command; its outcome and what hotline does.
    pub fn command(&mut self, command: Command) -> (Result<(), String>, Vec<Output>) {
        let r = self.fsm.handle_command(command);
        (r, self.drain())
    }

    /// Let `d` pass, waking the machine at each deadline on the way.
    pub fn advance(&mut self, d: Duration) -> Vec<Output> {
        let until = self.now + d;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match self.fsm.poll_timeout() {
                Some(due) if due <= until => {
                    self.now = self.now.max(due);
                    self.fsm.handle_timeout(self.now);
                    out.extend(self.drain());
                }
                _ => break,
            }
        }
        self.now = until;
        out
    }

    /// Everything the machine has to do now.
    pub fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.fsm.poll_output()).collect()
    }

    fn tx(&mut self) -> TxId {
        let tx = TxId(self.next_tx);
        self.next_tx += 1;
        tx
    }
}

/// The re-INVITE hotline sent on `side` among `out`: its id and SDP.
pub fn reinvite_on(out: &[Output], side: Side) -> (ReqId, Vec<u8>) {
    out.iter()
        .find_map(|o| match o {
            Output::Reinvite { side: s, req, sdp } if *s == side => Some((*req, sdp.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no re-INVITE on {side:?} in {out:#?}"))
}

/// The final response to `tx` among `out`: status and SDP.
pub fn response_to(out: &[Output], tx: TxId) -> (u16, Option<Vec<u8>>) {
    let found: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Respond {
                tx: t, code, sdp, ..
            } if *t == tx && *code >= 200 => Some((*code, sdp.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one response to {tx:?} in {out:#?}");
    found.into_iter().next().expect("one")
}

/// The sides that got a BYE among `out`, in order.
pub fn byes(out: &[Output]) -> Vec<Side> {
    out.iter()
        .filter_map(|o| match o {
            Output::Bye { side } => Some(*side),
            _ => None,
        })
        .collect()
}

/// The media changes among `out`.
pub fn media(out: &[Output]) -> Vec<Media> {
    out.iter()
        .filter_map(|o| match o {
            Output::Media(m) => Some(*m),
            _ => None,
        })
        .collect()
}

/// The record's facts among `out`.
pub fn facts(out: &[Output]) -> Vec<super::Fact> {
    out.iter()
        .filter_map(|o| match o {
            Output::Fact(f) => Some(*f),
            _ => None,
        })
        .collect()
}

/// The audio direction an SDP body says.
pub fn direction_of(body: &[u8]) -> Direction {
    SessionDescription::parse(&String::from_utf8_lossy(body))
        .expect("SDP")
        .audio_direction()
}

/// What hotline does to supervisors' legs among `out`, in order.
pub fn sup_actions(out: &[Output]) -> Vec<(SupId, SupervisorAction)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Supervisor { sup, action } => Some((*sup, *action)),
            _ => None,
        })
        .collect()
}
