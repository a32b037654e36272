//! The media room: SDP offer/answer ([`sdp`], SDES keys included), the RTP
//! port pool ([`ports`], each pair applying its leg's SRTP: [`srtp`]), one
//! media session per call ([`session`]: the caller's ports from the first
//! answer to the end, playing ([`player`]) or bridged ([`relay`]), served
//! by the shared IO workers ([`io`])) and the relay that anchors a call's
//! audio.
//!
//! The relay is the signalling core's simple anchor: it forwards RTP and
//! RTCP between two legs, latches to where packets really come from
//! (symmetric RTP for callers behind NAT) and reports silence so a dead call
//! is cleared. The full media engine (codecs, DTMF, prompts, recording,
//! mixing) replaces it behind the same seam.

pub mod announcement;
pub mod at_rest;
pub mod caller;
pub mod codec;
pub mod conference;
pub mod dtmf;
pub mod fork;
pub mod io;
pub mod keys;
pub mod latch;
pub mod mixer;
pub mod player;
pub mod ports;
pub mod prompts;
pub mod recorder;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod voicemail;
pub mod webrtc;
