//! Extra parties of a call (supervisors, three-way parties): joining one
//! starts mixing (the [`Conference`]) and a receiver task for its socket,
//! whose packets reach the relay task through a bounded queue (a full
//! queue drops: the mix never waits).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::forward::{Peer, MAX_PACKET};
use super::{LegFormat, Participant, CALLER, OTHER_SIDE};
use crate::media::codec::G711;
use crate::media::conference::Conference;
use crate::media::dtmf::Rfc4733Receiver;
use crate::media::mixer::{MixerError, ParticipantId, Role};
use crate::media::player::Continuation;
use crate::media::ports::PortPair;

/// An extra party inside the relay task.
pub(super) struct Extra {
    pub(super) id: ParticipantId,
    pub(super) pair: Arc<PortPair>,
    pub(super) peer: Peer,
    pub(super) format: LegFormat,
    pub(super) out: Continuation,
    pub(super) keys: Rfc4733Receiver,
    pub(super) receiver: tokio::task::JoinHandle<()>,
}

impl Drop for Extra {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Packets of extra parties: (who, datagram, from).
pub(super) type ExtraPacket = (ParticipantId, Vec<u8>, SocketAddr);
pub(super) type ExtraChannel = (mpsc::Sender<ExtraPacket>, mpsc::Receiver<ExtraPacket>);

/// The next extra party's packet, or never while nobody joined.
pub(super) async fn next_extra(chan: &mut Option<ExtraChannel>) -> Option<ExtraPacket> {
    match chan {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Add an extra party: start mixing if this is the first, start its
/// receiver.
pub(super) fn join(
    conference: &mut Option<Conference>,
    extras: &mut Vec<Extra>,
    p: Participant,
    (a_law, b_law): (G711, G711),
    b_role: Role,
    extra_tx: &mpsc::Sender<ExtraPacket>,
) -> Result<(), MixerError> {
    if p.id == CALLER || p.id == OTHER_SIDE || extras.iter().any(|x| x.id == p.id) {
        return Err(MixerError::AlreadyJoined(p.id));
    }
    let c = conference.get_or_insert_with(|| {
        let mut c = Conference::new();
        // Fresh conference: the two main legs cannot collide.
        let _ = c.join(CALLER, Role::Caller, a_law);
        let _ = c.join(OTHER_SIDE, b_role, b_law);
        tracing::debug!("mixing");
        c
    });
    c.join(p.id, p.role, p.format.law)?;
    super::key_leg(&p.pair, p.format.srtp.as_ref(), "party");
    let pair = Arc::new(p.pair);
    let rx_pair = pair.clone();
    let tx = extra_tx.clone();
    let id = p.id;
    let receiver = tokio::spawn(async move {
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let Ok((n, from)) = rx_pair.recv_rtp(&mut buf).await else {
                continue;
            };
            if n >= MAX_PACKET {
                continue;
            }
            // A full queue drops the packet: the mix never waits.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                tx.try_send((id, buf[..n].to_vec(), from))
            {
                break;
            }
        }
    });
    extras.push(Extra {
        id: p.id,
        pair,
        peer: Peer::new(Some(p.remote)),
        format: p.format,
        out: Continuation::fresh(),
        keys: Rfc4733Receiver::new(8000),
        receiver,
    });
    Ok(())
}
