//! The offer/answer model (RFC 3264): answering an offer (§6), building our
//! own offer and reading the answer to it, rejecting streams we do not use
//! with port 0, and RFC 4733 `telephone-event/8000` on a dynamic payload
//! type. Pure: the caller maps every [`NegotiationError`] to a SIP 488.

use std::net::{IpAddr, SocketAddr};

use super::crypto::{self, CryptoLine, Sdes, SrtpKeys, OFFERED_SUITE, OFFERED_TAG};
use super::model::{AudioCodec, Direction, MediaDescription, RtpMap, SessionDescription};
use crate::media::webrtc::Fingerprint;

/// Default packetisation time (ms) when neither side says otherwise.
pub const DEFAULT_PTIME: u32 = 20;
/// Payload type we use for `telephone-event/8000` in offers we build.
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Events we offer/accept for RFC 4733 (DTMF 0-9,*,#,A-D and flash).
pub const TELEPHONE_EVENT_FMTP: &str = "0-16";
/// Origin username / session name written into SDP we generate.
const OUR_NAME: &str = "hotline";

/// Errors from offer/answer negotiation. All of them should be mapped by
/// the caller to SIP `488 Not Acceptable Here` (see [`Self::sip_status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The SDP has no active (port != 0) `m=audio` stream.
    #[error("no active m=audio stream in SDP")]
    NoAudio,
    /// The answerer rejected our audio stream (port 0).
    #[error("audio stream rejected by answerer (port 0)")]
    AudioRejected,
    /// None of the offered codecs is one we support.
    #[error("no common audio codec; offered: [{}]", offered.join(", "))]
    NoCommonCodec { offered: Vec<String> },
    /// The answer chose a codec we did not offer.
    #[error("answer uses codec {encoding} (payload type {payload_type}) which was not offered")]
    CodecNotOffered { payload_type: u8, encoding: String },
    /// The audio stream has no usable connection address.
    #[error("audio stream has no connection address")]
    NoConnection,
    /// The audio stream uses a transport we cannot terminate.
    #[error("unsupported audio transport protocol {proto:?}")]
    UnsupportedTransport { proto: String },
    /// `RTP/SAVP` (or an answer to our SRTP offer) without an `a=crypto`
    /// line we support (RFC 4568 §7.1.2).
    #[error("no usable a=crypto line for {proto} (we support AES_CM_128/AES_256_CM with HMAC_SHA1_80/_32, no MKI, no session parameters)")]
    NoUsableCrypto { proto: String },
    /// SRTP is required on this leg and the peer offered or answered
    /// plain RTP.
    #[error("SRTP is required on this leg; the peer offered or answered plain {proto}")]
    SrtpRequired { proto: String },
    /// The answer's `a=crypto` names a tag or suite we did not offer.
    #[error("answer's a=crypto (tag {tag}) does not match our offer")]
    CryptoNotOffered { tag: u32 },
    /// A DTLS-SRTP answer without a usable `a=fingerprint` (RFC 8122: we
    /// take `sha-256`).
    #[error("DTLS-SRTP answer without a sha-256 a=fingerprint")]
    NoFingerprint,
    /// A DTLS-SRTP answer that wants a role other than the client's.
    #[error("DTLS-SRTP answer with a=setup:{setup}; hotline is the DTLS server, the answerer must be active")]
    DtlsRole { setup: String },
}

impl NegotiationError {
    /// SIP status code the caller should reply with (RFC 3261 §21.4.26).
    pub fn sip_status(&self) -> u16 {
        488
    }
}

/// Negotiated result for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: AudioCodec,
    /// Payload type to use for the codec on this leg.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if both sides support it.
    pub telephone_event: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Our direction on this leg (what we may send/receive).
    pub direction: Direction,
    pub ptime: u32,
    /// SRTP keys when the leg is SRTP (RFC 4568), else plain RTP.
    pub srtp: Option<SrtpKeys>,
    /// A browser's answer (DTLS-SRTP, RFC 5763): its certificate's
    /// fingerprint; the leg's keys come from the handshake.
    pub dtls: Option<Fingerprint>,
}

/// Our side's media parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub session_version: u64,
    /// Our preference order.
    pub codecs: Vec<AudioCodec>,
    /// Whether we support RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// The most we want to do (e.g. `SendOnly` when we put the peer on hold).
    pub direction: Direction,
    /// Whether and how we do SRTP on the leg (SDES, RFC 4568).
    pub sdes: Sdes,
}

fn local_session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin_username: OUR_NAME.to_string(),
        session_id: local.session_id,
        session_version: local.session_version,
        origin_address: local.address.to_string(),
        session_name: OUR_NAME.to_string(),
        connection: Some(local.address),
        direction: None,
        other_attributes: Vec::new(),
        media,
    }
}

fn supported_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP")
        || proto.eq_ignore_ascii_case("RTP/AVPF")
        || crypto::is_secure_proto(proto)
}

/// RFC 3264 §6: answer an offer.
///
/// Picks the first codec in the OFFER's order that we support (offerer's
/// preference) on the offer's payload type, keeps the offerer's
/// telephone-event PT (any PT mapped to `telephone-event/8000`) if we
/// support it, answers with the reverse of the offered direction capped by
/// our own direction, and answers m-lines we don't use (video, extra audio
/// streams, ...) with port 0 in the same order.
pub fn negotiate_answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let index = offer.audio_index().ok_or(NegotiationError::NoAudio)?;
    let offered = &offer.media[index];
    if !supported_proto(&offered.proto) {
        return Err(NegotiationError::UnsupportedTransport {
            proto: offered.proto.clone(),
        });
    }
    let chosen_crypto = answer_crypto(offered, &local.sdes)?;
    let (codec, payload_type) = offered
        .codecs()
        .into_iter()
        .find(|(c, _)| local.codecs.contains(c))
        .ok_or_else(|| NegotiationError::NoCommonCodec {
            offered: offered.describe_formats(),
        })?;
    let remote = offer
        .audio_endpoint()
        .ok_or(NegotiationError::NoConnection)?;
    let telephone_event = if local.telephone_event {
        offered.telephone_event()
    } else {
        None
    };
    let direction = offer.audio_direction().reverse().intersect(local.direction);
    let ptime = offered.ptime.unwrap_or(DEFAULT_PTIME);

    let mut audio = MediaDescription::new(
        "audio",
        local.port,
        &offered.proto,
        vec![payload_type.to_string()],
    );
    audio.rtpmaps.push(RtpMap {
        payload_type,
        ..codec.rtpmap()
    });
    if let Some(pt) = telephone_event {
        audio.formats.push(pt.to_string());
        audio.rtpmaps.push(RtpMap {
            payload_type: pt,
            encoding: "telephone-event".to_string(),
            clock_rate: 8000,
            channels: None,
        });
        let params = offered
            .fmtp_for(pt)
            .filter(|p| !p.is_empty())
            .unwrap_or(TELEPHONE_EVENT_FMTP);
        audio.fmtps.push((pt, params.to_string()));
    }
    audio.ptime = Some(ptime);
    audio.direction = Some(direction);
    let srtp = chosen_crypto.map(|(theirs, ours)| {
        audio.other_attributes.push(ours.attribute());
        SrtpKeys {
            suite: theirs.suite,
            local: ours.key,
            remote: theirs.key,
        }
    });

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                audio.clone()
            } else {
                m.rejected()
            }
        })
        .collect();
    let answer = local_session(local, media);
    Ok((
        answer,
        Negotiated {
            codec,
            payload_type,
            telephone_event,
            remote,
            direction,
            ptime,
            srtp,
            dtls: None,
        },
    ))
}

/// RFC 4568 §7.1.2 for an offer's audio stream: the offer's first usable
/// `a=crypto` line and our answering line (its tag and suite, our key),
/// or `None` for plain RTP; an error when SRTP is offered as mandatory
/// (`RTP/SAVP`) and we cannot, or required by us and not offered.
fn answer_crypto(
    offered: &MediaDescription,
    sdes: &Sdes,
) -> Result<Option<(CryptoLine, CryptoLine)>, NegotiationError> {
    let secure = crypto::is_secure_proto(&offered.proto);
    let usable = crypto::crypto_lines(&offered.other_attributes)
        .into_iter()
        .find_map(|theirs| {
            let key = sdes.key?.for_suite(theirs.suite)?;
            Some((theirs, CryptoLine { key, ..theirs }))
        });
    match usable {
        Some(pair) => Ok(Some(pair)),
        None if secure => Err(NegotiationError::NoUsableCrypto {
            proto: offered.proto.clone(),
        }),
        None if sdes.required => Err(NegotiationError::SrtpRequired {
            proto: offered.proto.clone(),
        }),
        None => Ok(None),
    }
}

/// Build an offer from our side (B2BUA's outbound leg): our codecs in
/// order on their static PTs, then `telephone-event/8000` as PT 101 with
/// `fmtp 0-16` if enabled, `a=ptime:20` and our direction.
///
/// With a key in `local.sdes`, the offer carries our one `a=crypto` line
/// (RFC 4568, `AES_CM_128_HMAC_SHA1_80`, tag 1) on `RTP/SAVP` when SRTP
/// is required, else on `RTP/AVP` (best effort).
pub fn build_offer(local: &LocalMedia) -> SessionDescription {
    let proto = if local.sdes.required && local.sdes.key.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut audio = MediaDescription::new("audio", local.port, proto, Vec::new());
    for codec in &local.codecs {
        if audio
            .rtpmaps
            .iter()
            .any(|m| m.payload_type == codec.payload_type())
        {
            continue;
        }
        audio.formats.push(codec.payload_type().to_string());
        audio.rtpmaps.push(codec.rtpmap());
    }
    if local.telephone_event {
        audio.formats.push(TELEPHONE_EVENT_PT.to_string());
        audio.rtpmaps.push(RtpMap {
            payload_type: TELEPHONE_EVENT_PT,
            encoding: "telephone-event".to_string(),
            clock_rate: 8000,
            channels: None,
        });
        audio
            .fmtps
            .push((TELEPHONE_EVENT_PT, TELEPHONE_EVENT_FMTP.to_string()));
    }
    audio.ptime = Some(DEFAULT_PTIME);
    audio.direction = Some(local.direction);
    if let Some(line) = offered_crypto(&local.sdes) {
        audio.other_attributes.push(line.attribute());
    }
    local_session(local, vec![audio])
}

/// Our one offered `a=crypto` line, if we offer SRTP on the leg.
fn offered_crypto(sdes: &Sdes) -> Option<CryptoLine> {
    if !sdes.offer && !sdes.required {
        return None;
    }
    Some(CryptoLine {
        tag: OFFERED_TAG,
        suite: OFFERED_SUITE,
        key: sdes.key?.for_suite(OFFERED_SUITE)?,
    })
}

/// Read an answer to an offer we built. The answer's first codec must be
/// one we offered; returns the negotiated view from our side (the payload
/// types are the answerer's, which we use when sending).
pub fn read_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    let offered = offer.audio().ok_or(NegotiationError::NoAudio)?;
    let Some(answered) = answer.audio() else {
        return Err(if answer.media.iter().any(|m| m.is_audio()) {
            NegotiationError::AudioRejected
        } else {
            NegotiationError::NoAudio
        });
    };
    let offered_codecs: Vec<AudioCodec> = offered.codecs().into_iter().map(|(c, _)| c).collect();

    let mut chosen = None;
    for pt in answered.payload_types() {
        let map = answered.rtpmap_for(pt);
        if map
            .as_ref()
            .is_some_and(|m| m.is_telephone_event() || m.is_comfort_noise())
        {
            continue;
        }
        match map.as_ref().and_then(AudioCodec::from_rtpmap) {
            Some(codec) if offered_codecs.contains(&codec) => {
                chosen = Some((codec, pt));
                break;
            }
            _ => {
                return Err(NegotiationError::CodecNotOffered {
                    payload_type: pt,
                    encoding: map.map_or_else(|| "unknown".to_string(), |m| m.describe()),
                })
            }
        }
    }
    let (codec, payload_type) = chosen.ok_or_else(|| NegotiationError::NoCommonCodec {
        offered: answered.describe_formats(),
    })?;
    let telephone_event = offered
        .telephone_event()
        .and_then(|_| answered.telephone_event());
    let remote = answer
        .audio_endpoint()
        .ok_or(NegotiationError::NoConnection)?;
    let dtls = super::webrtc::answered_dtls(answer, answered)?;
    // A browser's `c=0.0.0.0` says nothing (ICE finds the address), so
    // only its attributes say the direction.
    let declared = match dtls {
        Some(_) => answered
            .direction
            .or(answer.direction)
            .unwrap_or(Direction::SendRecv),
        None => answer.audio_direction(),
    };
    let direction = declared.reverse().intersect(offer.audio_direction());
    let ptime = answered.ptime.or(offered.ptime).unwrap_or(DEFAULT_PTIME);
    // DTLS keys a browser's leg (RFC 8827 §6.5): no SDES with it.
    let srtp = match dtls {
        Some(_) => None,
        None => answered_crypto(offered, answered)?,
    };
    Ok(Negotiated {
        codec,
        payload_type,
        telephone_event,
        remote,
        direction,
        ptime,
        srtp,
        dtls,
    })
}

/// RFC 4568 §7.1.3 for the answer to our offer: the answer's `a=crypto`
/// must carry one of our tags with its suite; an answer without one is
/// plain RTP, which only a best-effort (`RTP/AVP`) offer accepts.
fn answered_crypto(
    offered: &MediaDescription,
    answered: &MediaDescription,
) -> Result<Option<SrtpKeys>, NegotiationError> {
    let ours = crypto::crypto_lines(&offered.other_attributes);
    if ours.is_empty() {
        // We offered plain RTP: a plain answer, whatever it mentions.
        return if crypto::is_secure_proto(&answered.proto) {
            Err(NegotiationError::UnsupportedTransport {
                proto: answered.proto.clone(),
            })
        } else {
            Ok(None)
        };
    }
    match crypto::crypto_lines(&answered.other_attributes).first() {
        Some(theirs) => {
            let mine = ours
                .iter()
                .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
                .ok_or(NegotiationError::CryptoNotOffered { tag: theirs.tag })?;
            Ok(Some(SrtpKeys {
                suite: theirs.suite,
                local: mine.key,
                remote: theirs.key,
            }))
        }
        None if crypto::is_secure_proto(&offered.proto)
            || crypto::is_secure_proto(&answered.proto)
            || crypto::mentions_crypto(&answered.other_attributes) =>
        {
            Err(NegotiationError::NoUsableCrypto {
                proto: answered.proto.clone(),
            })
        }
        None => Ok(None),
    }
}
