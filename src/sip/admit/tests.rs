use super::*;

const POLICY: Policy = Policy {
    allow: "INVITE, ACK, CANCEL, BYE, OPTIONS",
    supported: &[],
};

fn invite(edit: impl Fn(String) -> String) -> Vec<u8> {
    let m = "INVITE sip:12345@10.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-1\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:caller@10.0.0.2>;tag=a\r\n\
        To: <sip:12345@10.0.0.1>\r\n\
        Call-ID: c1@x\r\n\
        CSeq: 1 INVITE\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n"
        .to_string();
    edit(m).into_bytes()
}

fn code(bytes: &[u8]) -> Option<u16> {
    match check(bytes, &POLICY) {
        Verdict::Pass => Some(200),
        Verdict::Refuse(r) => Some(r.code),
        Verdict::Drop(_) => None,
    }
}

#[test]
fn a_valid_invite_passes() {
    assert_eq!(check(&invite(|m| m), &POLICY), Verdict::Pass);
}

#[test]
fn each_defect_gets_its_rfc_3261_answer() {
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        ("no Max-Forwards", invite(|m| m.replace("Max-Forwards: 70\r\n", "")), Some(400)),
        ("Max-Forwards 0", invite(|m| m.replace("Max-Forwards: 70", "Max-Forwards: 0")), Some(483)),
        ("Max-Forwards 300", invite(|m| m.replace("Max-Forwards: 70", "Max-Forwards: 300")), Some(400)),
        ("tel scheme", invite(|m| m.replace("INVITE sip:12345@10.0.0.1", "INVITE tel:12345")), Some(416)),
        ("Require", invite(|m| m.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nRequire: foo, 100rel\r\n")), Some(420)),
        ("two To", invite(|m| m.replace("CSeq:", "To: <sip:x@y>\r\nCSeq:")), Some(400)),
        ("two Call-ID (compact)", invite(|m| m.replace("CSeq:", "i: other\r\nCSeq:")), Some(400)),
        ("empty Call-ID", invite(|m| m.replace("Call-ID: c1@x", "Call-ID: ")), Some(400)),
        ("bad Via version", invite(|m| m.replace("SIP/2.0/UDP", "SIP/3.0/UDP")), Some(400)),
        ("body without Content-Type", invite(|m| m.replace("Content-Type: application/sdp\r\n", "")), Some(400)),
        ("SIP/7.0", invite(|m| m.replace("10.0.0.1 SIP/2.0", "10.0.0.1 SIP/7.0")), Some(505)),
        ("unknown method", invite(|m| m.replace("INVITE sip", "FOO sip").replace("1 INVITE", "1 FOO")), Some(501)),
        ("missing Call-ID", invite(|m| m.replace("Call-ID: c1@x\r\n", "")), Some(400)),
        ("missing CSeq", invite(|m| m.replace("CSeq: 1 INVITE\r\n", "")), Some(400)),
        ("missing From", invite(|m| m.replace("From: <sip:caller@10.0.0.2>;tag=a\r\n", "")), Some(400)),
        ("missing To", invite(|m| m.replace("To: <sip:12345@10.0.0.1>\r\n", "")), Some(400)),
        ("missing Via", invite(|m| m.replace("Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-1\r\n", "")), None),
        ("CSeq method mismatch", invite(|m| m.replace("1 INVITE", "1 BYE")), Some(400)),
        ("CSeq too big", invite(|m| m.replace("CSeq: 1 ", "CSeq: 4294967296 ")), Some(400)),
        ("Content-Length beyond body", invite(|m| m.replace("Content-Length: 4", "Content-Length: 40")), Some(400)),
        ("Content-Length not a number", invite(|m| m.replace("Content-Length: 4", "Content-Length: four")), Some(400)),
        ("header without colon", invite(|m| m.replace("Max-Forwards: 70", "Max-Forwards 70")), Some(400)),
        ("NUL in a header", invite(|m| m.replace("Call-ID: c1@x", "Call-ID: c1\0x")), Some(400)),
        ("ACK with a defect", invite(|m| m.replace("INVITE sip", "ACK sip").replace("1 INVITE", "1 ACK").replace("Max-Forwards: 70\r\n", "")), None),
        ("known but unserved method passes", invite(|m| m.replace("INVITE sip", "SUBSCRIBE sip").replace("1 INVITE", "1 SUBSCRIBE")), Some(200)),
        ("in-dialog INVITE with Max-Forwards 0", invite(|m| m.replace("Max-Forwards: 70", "Max-Forwards: 0").replace("10.0.0.1>\r\n", "10.0.0.1>;tag=b\r\n")), Some(200)),
        ("OPTIONS with Max-Forwards 0", invite(|m| m.replace("INVITE sip", "OPTIONS sip").replace("1 INVITE", "1 OPTIONS").replace("Max-Forwards: 70", "Max-Forwards: 0")), Some(200)),
        ("response of version 7", b"SIP/7.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n".to_vec(), None),
        ("garbage", vec![0xff, 0x00, 0x13, 0x37], None),
    ];
    for (name, msg, want) in cases {
        assert_eq!(code(&msg), want, "{name}");
    }
}

#[test]
fn the_reply_is_sip_2_0_and_copies_what_routes_it() {
    let m = invite(|m| {
        m.replace("10.0.0.1 SIP/2.0", "10.0.0.1 SIP/7.0").replace(
            "Max-Forwards",
            "v: SIP/2.0/TCP 10.9.9.9;branch=z9hG4bK-2\r\nMax-Forwards",
        )
    });
    let Verdict::Refuse(r) = check(&m, &POLICY) else {
        panic!("refused expected");
    };
    let text = String::from_utf8(reply(&m, &r, "hotline/test")).expect("ascii");
    assert!(
        text.starts_with("SIP/2.0 505 Version Not Supported\r\n"),
        "{text}"
    );
    let vias: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Via:") || l.starts_with("v:"))
        .collect();
    assert_eq!(vias.len(), 2, "{text}");
    assert!(text.contains("Call-ID: c1@x\r\n"));
    assert!(text.contains("CSeq: 1 INVITE\r\n"));
    assert!(text.contains("To: <sip:12345@10.0.0.1>;tag=hl"), "{text}");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    // The same request retransmitted gets the same tag.
    assert_eq!(reply(&m, &r, "hotline/test"), reply(&m, &r, "hotline/test"));
}

#[test]
fn required_headers_travel_with_the_refusal() {
    let m = invite(|m| {
        m.replace("INVITE sip", "FOO sip")
            .replace("1 INVITE", "1 FOO")
    });
    let Verdict::Refuse(r) = check(&m, &POLICY) else {
        panic!("refused expected");
    };
    let text = String::from_utf8(reply(&m, &r, "s")).expect("ascii");
    assert!(
        text.contains("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"),
        "{text}"
    );
    let m = invite(|m| m.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nRequire: foo\r\n"));
    let Verdict::Refuse(r) = check(&m, &POLICY) else {
        panic!("refused expected");
    };
    let text = String::from_utf8(reply(&m, &r, "s")).expect("ascii");
    assert!(text.contains("Unsupported: foo\r\n"), "{text}");
}

#[test]
fn a_supported_extension_passes() {
    let policy = Policy {
        allow: "INVITE",
        supported: &["timer"],
    };
    let m = invite(|m| m.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nRequire: Timer\r\n"));
    assert_eq!(check(&m, &policy), Verdict::Pass);
}

#[test]
fn hostile_input_never_panics() {
    let m = invite(|m| m);
    for cut in 0..m.len() {
        let v = &m[..cut];
        if let Verdict::Refuse(r) = check(v, &POLICY) {
            let _ = reply(v, &r, "s");
        }
    }
    let mut seed: u32 = 0x1234_5678;
    for _ in 0..2000 {
        let mut v = m.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let i = seed as usize % v.len();
            v[i] = (seed >> 8) as u8;
        }
        if let Verdict::Refuse(r) = check(&v, &POLICY) {
            let _ = reply(&v, &r, "s");
        }
    }
}
