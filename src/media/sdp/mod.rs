//! SDP parsing, printing and offer/answer negotiation for audio calls.
//!
//! This module is pure (sans-IO): it never touches sockets, files or the
//! clock. It covers exactly what a call-centre B2BUA needs from SDP:
//!
//! * **RFC 4566** (SDP: Session Description Protocol) — line-oriented
//!   `type=value` parsing and canonical printing (CRLF line endings).
//! * **RFC 3264** (An Offer/Answer Model with SDP) — answering an offer
//!   (§6), reading an answer to our own offer, rejecting unsupported
//!   streams with port 0, and hold signalling (§8.4: `a=sendonly`,
//!   `a=inactive`, plus the legacy RFC 2543 `c=0.0.0.0` form).
//! * **RFC 4733** (RTP payload for DTMF digits, telephony tones and
//!   signals) — `telephone-event/8000` on a dynamic payload type.
//! * **RFC 4568** (SDES) — `a=crypto` keys for SRTP on `RTP/SAVP` or,
//!   best effort, on `RTP/AVP` (`crypto`).
//! * **RFC 3551** (RTP/AVP profile) — static payload types, so that
//!   `m=audio ... 0 8` without `a=rtpmap` lines is still understood as
//!   PCMU and PCMA.
//!
//! Carriers send "non-standard" SDP, so parsing is deliberately tolerant:
//! CRLF or LF line endings, surrounding whitespace, unknown lines and
//! attributes (kept and ignored), missing `s=`/`t=`/`o=`/`v=`, case-insensitive
//! encoding names, `c=` at session or media level and `b=` lines are all
//! accepted. What we cannot work with is rejected with an [`SdpError`] that
//! names the 1-based SDP line number and the offending line: no `m=audio`,
//! an unparsable port, or no connection address for the audio stream.
//!
//! Files:
//! - `model`: the session and media descriptions, directions, codecs;
//! - `parse`: the text form, parse and print (RFC 4566);
//! - `offer_answer`: answer, offer and read-answer (RFC 3264);
//! - `crypto`: SDES keys and suites (RFC 4568, RFC 6188).

mod crypto;
#[cfg(test)]
mod crypto_tests;
mod model;
mod offer_answer;
mod parse;
#[cfg(test)]
mod tests;
pub mod webrtc;

pub use crypto::{
    is_secure_proto, parse_crypto, CryptoLine, CryptoSuite, MasterKey, Sdes, SrtpKeys,
};
pub use model::{
    static_payload_type, AudioCodec, Direction, MediaDescription, RtpMap, SessionDescription,
};
pub use offer_answer::{
    build_offer, negotiate_answer, read_answer, LocalMedia, Negotiated, NegotiationError,
    DEFAULT_PTIME, TELEPHONE_EVENT_FMTP, TELEPHONE_EVENT_PT,
};
pub use parse::SdpError;
