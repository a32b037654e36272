//! Which of a call's legs are SRTP (issue 14 §4; RFC 4568 SDES, RFC 3711):
//! the policy of `[media] srtp_agents` and each trunk's `srtp`, turned into
//! the [`Sdes`] stance of one leg's [`LocalMedia`](crate::media::sdp::LocalMedia).
//!
//! Every leg gets its own fresh master key, and every leg answers an SRTP
//! offer with SRTP; the mode decides only what we offer and whether plain
//! RTP is refused. SDES keys travel in the SDP, so they are only as secret
//! as the signalling: deploy them with SIP over TLS (docs/security.md).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::SrtpMode;
use crate::media::sdp::{LocalMedia, MasterKey, Negotiated, Sdes};
use crate::sip::trunk::TrunkTable;

/// The SRTP policy of the switch.
#[derive(Debug, Clone, Default)]
pub struct SrtpPolicy {
    /// Toward agents' and supervisors' phones.
    pub agents: SrtpMode,
    /// Toward each trunk, by name.
    pub trunks: HashMap<String, SrtpMode>,
}

impl SrtpPolicy {
    /// A leg toward (or from) a phone of the centre.
    pub fn toward_phones(&self) -> Sdes {
        stance(self.agents)
    }

    /// A leg toward (or from) the trunk `name` (a trunk not configured, or
    /// none: accept SRTP when offered, offer plain).
    pub fn toward_trunk(&self, name: Option<&str>) -> Sdes {
        stance(
            name.and_then(|n| self.trunks.get(n))
                .copied()
                .unwrap_or_default(),
        )
    }

    /// The leg of an INVITE from `source`: its trunk's policy if a trunk's
    /// networks hold it, else a phone's.
    pub fn for_source(&self, trunks: &TrunkTable, source: IpAddr) -> Sdes {
        match trunks.match_source(source) {
            Some(t) => self.toward_trunk(Some(&t.name)),
            None => self.toward_phones(),
        }
    }
}

/// A leg's stance for `mode`, with a fresh key.
fn stance(mode: SrtpMode) -> Sdes {
    let key = MasterKey::random();
    match mode {
        SrtpMode::Off => Sdes::accepting(key),
        SrtpMode::Optional => Sdes::optional(key),
        SrtpMode::Required => Sdes::required(key),
    }
}

/// Our media on a leg once its offer/answer settled: an SRTP leg stays
/// SRTP, so its re-offers say `RTP/SAVP` with the same key and a plain
/// re-offer from the peer is refused (488) rather than answered while our
/// media goes on encrypting.
pub fn settled(local: &LocalMedia, negotiated: &Negotiated) -> LocalMedia {
    let mut local = local.clone();
    if negotiated.srtp.is_some() {
        local.sdes.offer = true;
        local.sdes.required = true;
    }
    local
}
