//! Tests of the SDP room: parsing carriers' bodies, printing, offer/answer
//! and hold, against the RFC examples and SIPp's offers.

use super::parse::SNIPPET_CHARS;
use super::*;
use std::net::Ipv4Addr;
use std::net::{IpAddr, SocketAddr};

fn local() -> LocalMedia {
    LocalMedia {
        sdes: super::Sdes::OFF,
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 30000,
        session_id: 42,
        session_version: 1,
        codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
        telephone_event: true,
        direction: Direction::SendRecv,
    }
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const SIPP_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n\
s=-\r\n\
c=IN IP4 127.0.1.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const CARRIER_OFFER: &str = "v=0\n\
o=HuaweiSoftX3000 1073741824 1073741824 IN IP4 172.16.8.20  \n\
s=Sip Call\n\
c=IN IP4 172.16.8.21\n\
b=AS:64\n\
t=0 0\n\
m=audio 40000 RTP/AVP 8 0 18 101\n\
a=rtpmap:8 pcma/8000\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:18 G729/8000\n\
a=fmtp:18 annexb=no\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-15\n\
a=ptime:20\n\
a=X-huawei-whatever:1\n";

#[test]
fn direction_reverse_and_intersect() {
    use Direction::*;
    let table = [
        (SendRecv, SendRecv),
        (SendOnly, RecvOnly),
        (RecvOnly, SendOnly),
        (Inactive, Inactive),
    ];
    for (d, r) in table {
        assert_eq!(d.reverse(), r);
        assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
    }
    assert_eq!(SendRecv.intersect(SendOnly), SendOnly);
    assert_eq!(RecvOnly.intersect(SendOnly), Inactive);
    assert_eq!(SendRecv.intersect(Inactive), Inactive);
    assert_eq!(Direction::from_attribute("SENDONLY"), Some(SendOnly));
    assert_eq!(Direction::from_attribute("foo"), None);
}

#[test]
fn codec_basics() {
    assert_eq!(AudioCodec::Pcma.payload_type(), 8);
    assert_eq!(AudioCodec::Pcmu.payload_type(), 0);
    assert_eq!(AudioCodec::Pcma.name(), "PCMA");
    assert_eq!(AudioCodec::Pcmu.to_string(), "PCMU");
    let lower = RtpMap {
        payload_type: 8,
        encoding: "pcma".into(),
        clock_rate: 8000,
        channels: Some(1),
    };
    assert_eq!(AudioCodec::from_rtpmap(&lower), Some(AudioCodec::Pcma));
    let wideband = RtpMap {
        clock_rate: 16000,
        ..lower
    };
    assert_eq!(AudioCodec::from_rtpmap(&wideband), None);
    assert_eq!(static_payload_type(18), Some(("G729", 8000, None)));
    assert_eq!(static_payload_type(96), None);
}

#[test]
fn round_trip_canonical() {
    let canonical = "v=0\r\n\
o=hotline 42 1 IN IP4 10.0.0.1\r\n\
s=hotline\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=rtcp:30001\r\n\
a=x-custom:yes\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP6 ::1\r\n";
    let sdp = SessionDescription::parse(canonical).unwrap();
    assert_eq!(sdp.to_string(), canonical);
    assert_eq!(sdp.media[0].rtcp_port, Some(30001));
    assert_eq!(sdp.media[0].other_attributes, vec!["x-custom:yes"]);
    assert_eq!(sdp.media[1].connection, Some("::1".parse().unwrap()));
}

#[test]
fn round_trip_messy_inputs_are_stable() {
    for text in [SIPP_OFFER, CARRIER_OFFER] {
        let first = SessionDescription::parse(text).unwrap();
        let printed = first.to_string();
        assert!(printed.ends_with("\r\n"));
        assert!(!printed.replace("\r\n", "").contains('\n'));
        let second = SessionDescription::parse(&printed).unwrap();
        assert_eq!(first, second);
        assert_eq!(second.to_string(), printed);
    }
    let offer = build_offer(&local());
    assert_eq!(
        SessionDescription::parse(&offer.to_string()).unwrap(),
        offer
    );
}

#[test]
fn sipp_offer_pcmu_only() {
    let offer = SessionDescription::parse(SIPP_OFFER).unwrap();
    assert_eq!(offer.origin_username, "user1");
    assert_eq!(offer.session_id, 53655765);
    assert_eq!(offer.session_version, 2353687637);
    assert_eq!(offer.origin_address, "127.0.1.1");
    assert_eq!(offer.audio_endpoint(), Some(sock("127.0.1.1:6000")));
    assert_eq!(offer.audio_direction(), Direction::SendRecv);
    assert!(!offer.is_hold());

    let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
    assert_eq!(neg.codec, AudioCodec::Pcmu);
    assert_eq!(neg.payload_type, 0);
    assert_eq!(neg.telephone_event, None);
    assert_eq!(neg.remote, sock("127.0.1.1:6000"));
    assert_eq!(neg.direction, Direction::SendRecv);
    assert_eq!(neg.ptime, 20);
    let text = answer.to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("c=IN IP4 10.0.0.1\r\n"));
    assert!(text.contains("a=sendrecv\r\n"));
    assert!(!text.contains("telephone-event"));
}

#[test]
fn carrier_offer_prefers_offer_order_and_keeps_dtmf() {
    let offer = SessionDescription::parse(CARRIER_OFFER).unwrap();
    assert_eq!(offer.session_name, "Sip Call");
    assert_eq!(offer.origin_address, "172.16.8.20");
    let audio = offer.audio().unwrap();
    assert_eq!(audio.formats, vec!["8", "0", "18", "101"]);
    assert_eq!(audio.ptime, Some(20));
    assert_eq!(
        audio.fmtps,
        vec![(18, "annexb=no".to_string()), (101, "0-15".to_string())]
    );
    assert_eq!(audio.telephone_event(), Some(101));
    assert_eq!(audio.other_attributes, vec!["X-huawei-whatever:1"]);

    // We prefer PCMU but the offerer's order wins (RFC 3264 §6.1).
    let mut me = local();
    me.codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcma];
    let (answer, neg) = negotiate_answer(&offer, &me).unwrap();
    assert_eq!(neg.codec, AudioCodec::Pcma);
    assert_eq!(neg.payload_type, 8);
    assert_eq!(neg.telephone_event, Some(101));
    assert_eq!(neg.remote, sock("172.16.8.21:40000"));
    assert_eq!(neg.ptime, 20);
    let a = answer.audio().unwrap();
    assert_eq!(a.formats, vec!["8", "101"]);
    assert_eq!(a.fmtp_for(101), Some("0-15"));
    assert_eq!(a.ptime, Some(20));
    assert_eq!(answer.session_id, 42);
    assert_eq!(answer.session_version, 1);

    // Only PCMU locally: skip PCMA.
    me.codecs = vec![AudioCodec::Pcmu];
    let (_, neg) = negotiate_answer(&offer, &me).unwrap();
    assert_eq!(neg.codec, AudioCodec::Pcmu);
    assert_eq!(neg.payload_type, 0);

    // No DTMF support locally: no telephone-event in answer.
    me.telephone_event = false;
    let (answer, neg) = negotiate_answer(&offer, &me).unwrap();
    assert_eq!(neg.telephone_event, None);
    assert_eq!(answer.audio().unwrap().formats, vec!["0"]);
}

#[test]
fn g729_only_is_no_common_codec() {
    let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    let err = negotiate_answer(&offer, &local()).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::NoCommonCodec {
            offered: vec!["18:G729/8000".into(), "101:telephone-event/8000".into()]
        }
    );
    assert_eq!(err.sip_status(), 488);
    assert!(err.to_string().contains("G729"));
}

#[test]
fn static_payload_types_without_rtpmap() {
    let text =
        "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5004 RTP/AVP 18 0 8\n";
    let offer = SessionDescription::parse(text).unwrap();
    assert!(offer.audio().unwrap().rtpmaps.is_empty());
    let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
    assert_eq!((neg.codec, neg.payload_type), (AudioCodec::Pcmu, 0));
    // We still write an explicit rtpmap in the answer.
    assert!(answer.to_string().contains("a=rtpmap:0 PCMU/8000\r\n"));
}

#[test]
fn connection_levels() {
    // Session-level only.
    let session_only =
        "v=0\r\no=- 1 1 IN IP4 h.example\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 8\r\n";
    // Media-level overrides session-level.
    let both = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 8\r\nc=IN IP4 192.0.2.9\r\n";
    // Media-level only, multicast TTL suffix, trailing spaces, no s=/t=.
    let media_only = "v=0\r\nm=audio 5000/2 RTP/AVP 8  \r\nc=IN IP4 192.0.2.7/127  \r\n";
    let v6 = "v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 5000 RTP/AVP 8\r\n";
    let table = [
        (session_only, "192.0.2.1:5000"),
        (both, "192.0.2.9:5000"),
        (media_only, "192.0.2.7:5000"),
        (v6, "[2001:db8::1]:5000"),
    ];
    for (text, expected) in table {
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.audio_endpoint(), Some(sock(expected)), "{text}");
        let (_, neg) = negotiate_answer(&sdp, &local()).unwrap();
        assert_eq!(neg.remote, sock(expected));
    }
    let sdp = SessionDescription::parse(session_only).unwrap();
    assert_eq!(sdp.origin_address, "h.example");
    assert_eq!(sdp.session_name, "-");
    assert!(sdp.to_string().contains("o=- 1 1 IN IP4 h.example\r\n"));
}

#[test]
fn hold_variants() {
    use Direction::*;
    let base = |session: &str, media: &str, conn: &str| {
        format!(
                "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 {conn}\r\nt=0 0\r\n{session}m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n{media}"
            )
    };
    // (session attrs, media attrs, c= address, offered dir, hold?, answer dir)
    let table = [
        ("", "", "1.2.3.4", SendRecv, false, SendRecv),
        ("", "a=sendrecv\r\n", "1.2.3.4", SendRecv, false, SendRecv),
        ("", "a=sendonly\r\n", "1.2.3.4", SendOnly, true, RecvOnly),
        ("", "a=inactive\r\n", "1.2.3.4", Inactive, true, Inactive),
        ("", "a=recvonly\r\n", "1.2.3.4", RecvOnly, false, SendOnly),
        ("a=sendonly\r\n", "", "1.2.3.4", SendOnly, true, RecvOnly),
        (
            "a=sendonly\r\n",
            "a=sendrecv\r\n",
            "1.2.3.4",
            SendRecv,
            false,
            SendRecv,
        ),
        ("", "", "0.0.0.0", SendOnly, true, RecvOnly),
        ("", "a=recvonly\r\n", "0.0.0.0", Inactive, true, Inactive),
        ("", "a=inactive\r\n", "0.0.0.0", Inactive, true, Inactive),
    ];
    for (session, media, conn, dir, hold, answer_dir) in table {
        let text = base(session, media, conn);
        let offer = SessionDescription::parse(&text).unwrap();
        assert_eq!(offer.audio_direction(), dir, "{text}");
        assert_eq!(offer.is_hold(), hold, "{text}");
        let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
        assert_eq!(neg.direction, answer_dir, "{text}");
        assert_eq!(answer.audio().unwrap().direction, Some(answer_dir));
        assert!(answer.to_string().contains(&format!("a={answer_dir}\r\n")));
    }
    let offer = SessionDescription::parse(&base("", "", "0.0.0.0")).unwrap();
    assert_eq!(offer.audio_endpoint(), Some(sock("0.0.0.0:7000")));
}

#[test]
fn answer_direction_capped_by_local() {
    let offer = SessionDescription::parse(SIPP_OFFER).unwrap();
    let mut me = local();
    me.direction = Direction::SendOnly; // we put the peer on hold
    let (_, neg) = negotiate_answer(&offer, &me).unwrap();
    assert_eq!(neg.direction, Direction::SendOnly);
    me.direction = Direction::Inactive;
    let (_, neg) = negotiate_answer(&offer, &me).unwrap();
    assert_eq!(neg.direction, Direction::Inactive);
}

#[test]
fn video_and_extra_streams_rejected_with_port_zero() {
    let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n\
m=video 9000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=audio 8000 RTP/AVP 0 8\r\n\
m=application 9 UDP/BFCP *\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    assert_eq!(offer.audio().unwrap().port, 8000);
    let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
    assert_eq!(neg.remote, sock("1.2.3.4:8000"));
    assert_eq!(answer.media.len(), 4);
    let summary: Vec<(&str, u16, Vec<&str>)> = answer
        .media
        .iter()
        .map(|m| {
            (
                m.media.as_str(),
                m.port,
                m.formats.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("video", 0, vec!["96"]),
            ("audio", 0, vec!["0"]),
            ("audio", 30000, vec!["0"]),
            ("application", 0, vec!["*"]),
        ]
    );
    let printed = answer.to_string();
    assert!(printed.contains("m=video 0 RTP/AVP 96\r\n"));
    assert!(printed.contains("m=application 0 UDP/BFCP *\r\n"));
    SessionDescription::parse(&printed).unwrap();
}

#[test]
fn telephone_event_on_pt_96_kept() {
    let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 8000 RTP/AVP 0 96\r\n\
a=rtpmap:96 TELEPHONE-EVENT/8000\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    let (answer, neg) = negotiate_answer(&offer, &local()).unwrap();
    assert_eq!(neg.telephone_event, Some(96));
    let a = answer.audio().unwrap();
    assert_eq!(a.formats, vec!["0", "96"]);
    assert_eq!(a.fmtp_for(96), Some(TELEPHONE_EVENT_FMTP));
    assert!(answer
        .to_string()
        .contains("a=rtpmap:96 telephone-event/8000\r\n"));
    // telephone-event at 16000 Hz is not the 8 kHz one we can use.
    let text16 = text.replace("/8000", "/16000");
    let offer = SessionDescription::parse(&text16).unwrap();
    let (_, neg) = negotiate_answer(&offer, &local()).unwrap();
    assert_eq!(neg.telephone_event, None);
}

#[test]
fn unsupported_transport_rejected() {
    let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 8000 UDP/TLS/RTP/SAVPF 0\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    assert_eq!(
        negotiate_answer(&offer, &local()).unwrap_err(),
        NegotiationError::UnsupportedTransport {
            proto: "UDP/TLS/RTP/SAVPF".into()
        }
    );
    // SRTP without a key we could use (here: none at all).
    let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 8000 RTP/SAVP 0\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    assert_eq!(
        negotiate_answer(&offer, &local()).unwrap_err(),
        NegotiationError::NoUsableCrypto {
            proto: "RTP/SAVP".into()
        }
    );
}

#[test]
fn offer_only_disabled_audio_is_no_audio() {
    let text = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n";
    let offer = SessionDescription::parse(text).unwrap();
    assert!(offer.audio().is_none());
    assert_eq!(offer.audio_endpoint(), None);
    assert!(!offer.is_hold());
    assert_eq!(
        negotiate_answer(&offer, &local()).unwrap_err(),
        NegotiationError::NoAudio
    );
}

#[test]
fn build_offer_layout() {
    let offer = build_offer(&local());
    let expected = "v=0\r\n\
o=hotline 42 1 IN IP4 10.0.0.1\r\n\
s=hotline\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
    assert_eq!(offer.to_string(), expected);

    let mut me = local();
    me.telephone_event = false;
    me.codecs = vec![AudioCodec::Pcmu, AudioCodec::Pcmu];
    me.direction = Direction::SendOnly;
    let offer = build_offer(&me);
    let a = offer.audio().unwrap();
    assert_eq!(a.formats, vec!["0"]);
    assert_eq!(a.direction, Some(Direction::SendOnly));
    assert!(offer.is_hold());
}

fn answer_text(formats: &str, extra: &str) -> String {
    format!(
            "v=0\r\no=peer 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 12000 RTP/AVP {formats}\r\n{extra}"
        )
}

#[test]
fn read_answer_table() {
    let offer = build_offer(&local());
    let te = "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
    type Expect = Result<(AudioCodec, u8, Option<u8>), NegotiationError>;
    let table: Vec<(String, Expect)> = vec![
        (
            answer_text("8 101", te),
            Ok((AudioCodec::Pcma, 8, Some(101))),
        ),
        (answer_text("0", ""), Ok((AudioCodec::Pcmu, 0, None))),
        (
            answer_text("13 0 101", te),
            Ok((AudioCodec::Pcmu, 0, Some(101))),
        ),
        (
            answer_text("97 101", &format!("a=rtpmap:97 pcma/8000\r\n{te}")),
            Ok((AudioCodec::Pcma, 97, Some(101))),
        ),
        (
            answer_text("18", ""),
            Err(NegotiationError::CodecNotOffered {
                payload_type: 18,
                encoding: "G729/8000".into(),
            }),
        ),
        (
            answer_text("99", ""),
            Err(NegotiationError::CodecNotOffered {
                payload_type: 99,
                encoding: "unknown".into(),
            }),
        ),
        (
            answer_text("101", te),
            Err(NegotiationError::NoCommonCodec {
                offered: vec!["101:telephone-event/8000".into()],
            }),
        ),
        (
            answer_text("8", "").replace("12000", "0"),
            Err(NegotiationError::AudioRejected),
        ),
    ];
    for (text, expected) in table {
        let answer = SessionDescription::parse(&text).unwrap();
        let got =
            read_answer(&offer, &answer).map(|n| (n.codec, n.payload_type, n.telephone_event));
        assert_eq!(got, expected, "{text}");
    }
}

#[test]
fn read_answer_details() {
    let offer = build_offer(&local());
    let answer = SessionDescription::parse(&answer_text(
        "0 101",
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\na=recvonly\r\n",
    ))
    .unwrap();
    let neg = read_answer(&offer, &answer).unwrap();
    assert_eq!(neg.codec, AudioCodec::Pcmu);
    assert_eq!(neg.remote, sock("203.0.113.5:12000"));
    assert_eq!(neg.direction, Direction::SendOnly);
    assert_eq!(neg.ptime, 30);

    // Answer with a codec we didn't offer: we offered PCMU only.
    let mut me = local();
    me.codecs = vec![AudioCodec::Pcmu];
    let offer = build_offer(&me);
    let answer = SessionDescription::parse(&answer_text("8", "")).unwrap();
    let err = read_answer(&offer, &answer).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::CodecNotOffered {
            payload_type: 8,
            encoding: "PCMA/8000".into()
        }
    );
    assert!(err.to_string().contains("PCMA"));

    // We offered without telephone-event: ignore it in the answer.
    me.telephone_event = false;
    let offer = build_offer(&me);
    let answer = SessionDescription::parse(&answer_text(
        "0 101",
        "a=rtpmap:101 telephone-event/8000\r\n",
    ))
    .unwrap();
    assert_eq!(read_answer(&offer, &answer).unwrap().telephone_event, None);

    // Our negotiate_answer output is readable by read_answer.
    let our_offer = build_offer(&local());
    let (their_answer, their_view) = negotiate_answer(&our_offer, &local()).unwrap();
    let ours = read_answer(&our_offer, &their_answer).unwrap();
    assert_eq!(ours.codec, their_view.codec);
    assert_eq!(ours.telephone_event, Some(101));
    assert_eq!(ours.remote, sock("10.0.0.1:30000"));
}

#[test]
fn parse_errors_name_line_and_content() {
    let table: Vec<(&str, SdpError)> = vec![
            ("", SdpError::Empty),
            ("  \r\n\r\n", SdpError::Empty),
            (
                "hello world",
                SdpError::MalformedLine {
                    line: 1,
                    content: "hello world".into(),
                },
            ),
            (
                "v=0\r\n\r\n<html>\r\n",
                SdpError::MalformedLine {
                    line: 3,
                    content: "<html>".into(),
                },
            ),
            (
                "v=1\r\n",
                SdpError::UnsupportedVersion {
                    line: 1,
                    content: "v=1".into(),
                },
            ),
            (
                "v=0\no=- abc 1 IN IP4 1.2.3.4\n",
                SdpError::InvalidOrigin {
                    line: 2,
                    content: "o=- abc 1 IN IP4 1.2.3.4".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
                SdpError::InvalidPort {
                    line: 3,
                    value: "70000".into(),
                    content: "m=audio 70000 RTP/AVP 0".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
                SdpError::InvalidPort {
                    line: 3,
                    value: "x".into(),
                    content: "m=audio x RTP/AVP 0".into(),
                },
            ),
            (
                "v=0\r\nm=audio 5000\r\n",
                SdpError::InvalidMedia {
                    line: 2,
                    content: "m=audio 5000".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 pbx.example.com\r\nm=audio 5000 RTP/AVP 0\r\n",
                SdpError::InvalidConnection {
                    line: 2,
                    content: "c=IN IP4 pbx.example.com".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
                SdpError::InvalidRtpMap {
                    line: 4,
                    content: "a=rtpmap:0 PCMU".into(),
                },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\na=fmtp:x 0-15\r\n",
                SdpError::InvalidFmtp {
                    line: 4,
                    content: "a=fmtp:x 0-15".into(),
                },
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",
                SdpError::NoAudio { lines: 6 },
            ),
            (
                "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n",
                SdpError::NoAudio { lines: 4 },
            ),
            (
                "v=0\r\ns=-\r\nm=video 6000 RTP/AVP 96\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
                SdpError::NoConnection {
                    line: 5,
                    content: "m=audio 5000 RTP/AVP 0".into(),
                },
            ),
        ];
    for (text, expected) in table {
        let err = SessionDescription::parse(text).unwrap_err();
        assert_eq!(err, expected, "{text:?}");
        let msg = err.to_string();
        if !matches!(err, SdpError::Empty | SdpError::NoAudio { .. }) {
            assert!(msg.starts_with("SDP line "), "{msg}");
        }
    }
    let msg = SessionDescription::parse("v=0\r\nm=audio 70000 RTP/AVP 0\r\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "SDP line 2: invalid port \"70000\" in media description: \"m=audio 70000 RTP/AVP 0\""
    );
}

#[test]
fn tolerant_inputs_accepted() {
    let text = "v=0\n\
o=- 1 1 IN IP4 1.2.3.4\n\
i=some info\n\
u=http://example.com\n\
b=CT:128\n\
z=0 0\n\
x=unknown line type\n\
a=tool:carrier-sbc\n\
m=video 0 RTP/AVP 96\n\
a=rtpmap:video-garbage\n\
a=fmtp:webrtc-datachannel max=1\n\
m=audio 5000 RTP/AVP 8 0\t\n\
b=AS:80\n\
c=IN IP4 1.2.3.4\n\
a=ptime:20.0\n\
a=rtcp:5001 IN IP4 1.2.3.4\n\
a=maxptime:150\n\
a=rtpmap:8 Pcma/8000/1\n";
    let sdp = SessionDescription::parse(text).unwrap();
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.other_attributes, vec!["tool:carrier-sbc"]);
    assert_eq!(
        sdp.media[0].other_attributes,
        vec!["rtpmap:video-garbage", "fmtp:webrtc-datachannel max=1"]
    );
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.ptime, None);
    assert_eq!(audio.rtcp_port, Some(5001));
    assert_eq!(audio.other_attributes, vec!["ptime:20.0", "maxptime:150"]);
    assert_eq!(audio.rtpmaps[0].channels, Some(1));
    let (_, neg) = negotiate_answer(&sdp, &local()).unwrap();
    assert_eq!(neg.codec, AudioCodec::Pcma);
    assert_eq!(neg.ptime, 20);
    // Printing and re-parsing keeps everything.
    assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
}

#[test]
fn long_offending_lines_are_truncated_in_errors() {
    let long = format!("v=0\r\nc=IN IP4 {}\r\n", "9".repeat(10_000));
    let err = SessionDescription::parse(&long).unwrap_err();
    let SdpError::InvalidConnection { line, content } = err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(line, 2);
    assert!(content.chars().count() <= SNIPPET_CHARS + 1);
}

/// Simple xorshift64 so the test needs no external crate.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(text: &str) {
    if let Ok(sdp) = SessionDescription::parse(text) {
        let _ = sdp.audio_endpoint();
        let _ = sdp.is_hold();
        let printed = sdp.to_string();
        let reparsed = SessionDescription::parse(&printed)
            .unwrap_or_else(|e| panic!("printed SDP failed to parse: {e}\n{printed}"));
        assert_eq!(reparsed, sdp, "{printed}");
        if let Ok((answer, _)) = negotiate_answer(&sdp, &local()) {
            let answer_text = answer.to_string();
            let answer = SessionDescription::parse(&answer_text)
                .unwrap_or_else(|e| panic!("answer failed to parse: {e}\n{answer_text}"));
            let _ = read_answer(&sdp, &answer);
        }
        let _ = read_answer(&build_offer(&local()), &sdp);
    }
}

#[test]
fn fuzz_like_mutations_never_panic() {
    let seeds = [SIPP_OFFER, CARRIER_OFFER];
    let alphabet: &[u8] = b"=: /\r\n0123456789amcovstAPRTV.-\xff\x00";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for seed in seeds {
        let bytes = seed.as_bytes();
        // Every truncation.
        for cut in 0..=bytes.len() {
            exercise(&String::from_utf8_lossy(&bytes[..cut]));
        }
        // Random mutations.
        for _ in 0..5_000 {
            let mut data = bytes.to_vec();
            for _ in 0..=rng.below(6) {
                let pos = rng.below(data.len() + 1);
                match rng.below(4) {
                    0 if pos < data.len() => {
                        data[pos] = alphabet[rng.below(alphabet.len())];
                    }
                    1 if pos < data.len() => {
                        data.remove(pos);
                    }
                    2 => data.insert(pos, alphabet[rng.below(alphabet.len())]),
                    _ => data.truncate(pos),
                }
            }
            exercise(&String::from_utf8_lossy(&data));
        }
    }
}
