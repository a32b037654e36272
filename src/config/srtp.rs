//! The SRTP policy keys (issue 14 §4, RFC 4568 SDES): `[media] srtp_agents`
//! for agents' and supervisors' phones, a trunk's `srtp` for the carrier.
//! An SRTP offer is always answered with SRTP whatever the policy (refusing
//! it would only fail the call); the policy decides what we offer and
//! whether plain RTP is refused.

use serde::Deserialize;

/// What hotline offers on a leg and whether it insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    /// Plain RTP offers (SRTP offers from the peer are still answered).
    #[default]
    Off,
    /// Best effort: `RTP/AVP` offers carrying `a=crypto`; a phone that
    /// does SDES encrypts, one that does not stays plain.
    Optional,
    /// SRTP only: `RTP/SAVP` offers; a plain offer or answer gets 488.
    Required,
}
