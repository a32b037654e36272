//! The offer/answer model (RFC 3264): answering an offer (§6), building our
//! own offer and reading the answer to it, rejecting streams we do not use
//! with port 0, and RFC 4733 `telephone-event/8000` on a dynamic payload
//! type. Pure: the caller maps every [`NegotiationError`] to a SIP 488.

use std::net::{IpAddr, SocketAddr};

use super::model::{AudioCodec, Direction, MediaDescription, RtpMap, SessionDescription};

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
    /// The audio stream uses a transport we cannot terminate (e.g. SRTP).
    #[error("unsupported audio transport protocol {proto:?}")]
    UnsupportedTransport { proto: String },
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
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
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
        },
    ))
}

/// Build an offer from our side (B2BUA's outbound leg): our codecs in
/// order on their static PTs, then `telephone-event/8000` as PT 101 with
/// `fmtp 0-16` if enabled, `a=ptime:20` and our direction.
pub fn build_offer(local: &LocalMedia) -> SessionDescription {
    let mut audio = MediaDescription::new("audio", local.port, "RTP/AVP", Vec::new());
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
    local_session(local, vec![audio])
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
    let direction = answer
        .audio_direction()
        .reverse()
        .intersect(offer.audio_direction());
    let ptime = answered.ptime.or(offered.ptime).unwrap_or(DEFAULT_PTIME);
    Ok(Negotiated {
        codec,
        payload_type,
        telephone_event,
        remote,
        direction,
        ptime,
    })
}
