//! Extra parties of a call (supervisors, three-way parties): joining one
//! starts mixing (the [`Conference`]); its ports are watched by the relay's
//! IO worker under their own tag, its packets go into the mix (and its
//! RFC 4733 keys to the call).

use super::forward::Peer;
use super::{LegFormat, Participant, CALLER, OTHER_SIDE};
use crate::media::codec::G711;
use crate::media::conference::Conference;
use crate::media::dtmf::Rfc4733Receiver;
use crate::media::mixer::{MixerError, ParticipantId, Role};
use crate::media::player::Continuation;
use crate::media::ports::PortPair;

/// An extra party inside the relay.
pub(super) struct Extra {
    pub(super) id: ParticipantId,
    /// Its ports' tag with the IO worker.
    pub(super) tag: u16,
    pub(super) pair: PortPair,
    pub(super) peer: Peer,
    pub(super) format: LegFormat,
    pub(super) out: Continuation,
    pub(super) keys: Rfc4733Receiver,
}

/// Add an extra party (its ports to be watched as `tag`): start mixing if
/// this is the first.
pub(super) fn join(
    conference: &mut Option<Conference>,
    extras: &mut Vec<Extra>,
    p: Participant,
    (a_law, b_law): (G711, G711),
    b_role: Role,
    tag: u16,
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
    super::secure_leg(&p.pair, &p.format, "party");
    extras.push(Extra {
        id: p.id,
        tag,
        pair: p.pair,
        peer: super::core::peer_of(&p.format, Some(p.remote)),
        format: p.format,
        out: Continuation::fresh(),
        keys: Rfc4733Receiver::new(8000),
    });
    Ok(())
}
