//! ICE-lite (RFC 8445 §2.5, §7.3): hotline has one host candidate per
//! WebRTC leg (the leg's RTP port on the media address) and never sends
//! checks; it answers the browser's STUN Binding requests (RFC 5389) that
//! carry our `ice-ufrag` in `USERNAME` and are signed with our `ice-pwd`
//! (`MESSAGE-INTEGRITY`), with a success response giving the request's
//! source back (`XOR-MAPPED-ADDRESS`), signed the same way and with a
//! `FINGERPRINT` (RFC 8445 §7.3.1.x; RFC 7675 consent freshness uses the
//! same requests). A request whose source we answered is the only
//! address the leg sends media to and takes media from: a stranger
//! without our password cannot take the leg over.
//!
//! The STUN messages are webrtc-rs's `rtc-stun` (the crate beside the
//! SRTP and DTLS this project uses); the decisions here are ours.

use std::net::SocketAddr;

use rtc_stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

/// Our side's ICE credentials for one leg (RFC 8445 §5.3: `ice-ufrag` at
/// least 4 characters, `ice-pwd` at least 22, from the ice-char set).
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd` (a secret: never logged).
    pub pwd: String,
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IceCredentials({}, pwd redacted)", self.ufrag)
    }
}

impl IceCredentials {
    /// Fresh random credentials: an 8-character fragment and a
    /// 24-character password of letters and digits (~143 bits).
    pub fn random() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        let mut rng = rand::rng();
        Self {
            ufrag: Alphanumeric.sample_string(&mut rng, 8),
            pwd: Alphanumeric.sample_string(&mut rng, 24),
        }
    }
}

/// What a received STUN message comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Binding {
    /// A valid check: send `response` back to its source. `nominated`:
    /// it carried `USE-CANDIDATE` (the browser picked this pair).
    Answer {
        /// The signed success response.
        response: Vec<u8>,
        /// The request carried USE-CANDIDATE.
        nominated: bool,
    },
    /// Not a Binding request for us (wrong user, bad signature, a
    /// response, an indication, malformed): dropped, with why.
    Ignore(&'static str),
}

/// Judge one datagram that looks like STUN (RFC 7983: first byte 0–3)
/// against our credentials, and build the answer to a valid check.
pub fn answer(ours: &IceCredentials, datagram: &[u8], from: SocketAddr) -> Binding {
    let mut request = Message::new();
    if request.unmarshal_binary(datagram).is_err() {
        return Binding::Ignore("malformed STUN message");
    }
    if request.typ != BINDING_REQUEST {
        // Keep-alive indications and stray responses need no answer.
        return Binding::Ignore("not a Binding request");
    }
    // USERNAME is "<our ufrag>:<their ufrag>" (RFC 8445 §7.2.2).
    let Ok(user) = TextAttribute::get_from_as(&request, ATTR_USERNAME) else {
        return Binding::Ignore("Binding request without USERNAME");
    };
    let user = user.text;
    let ours_first = user
        .split_once(':')
        .is_some_and(|(local, _)| local == ours.ufrag);
    if !ours_first {
        return Binding::Ignore("Binding request for another ice-ufrag");
    }
    let Ok(provider) = rtc_stun::crypto::default_provider() else {
        return Binding::Ignore("no crypto provider");
    };
    if MessageIntegrity::check(&mut request, ours.pwd.as_bytes(), provider.crypto()).is_err() {
        return Binding::Ignore("Binding request with a bad MESSAGE-INTEGRITY");
    }
    if FINGERPRINT.check(&request).is_err() {
        return Binding::Ignore("Binding request with a bad FINGERPRINT");
    }
    let nominated = request.contains(ATTR_USE_CANDIDATE);
    let integrity = MessageIntegrity::new_short_term_integrity_with_provider(
        ours.pwd.clone(),
        provider.crypto(),
    );
    let mapped = XorMappedAddress {
        ip: from.ip(),
        port: from.port(),
    };
    let setters: [Box<dyn Setter + '_>; 5] = [
        Box::new(request.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(mapped),
        Box::new(integrity),
        Box::new(FINGERPRINT),
    ];
    let mut response = Message::new();
    match response.build(&setters) {
        Ok(()) => Binding::Answer {
            response: response.raw,
            nominated,
        },
        Err(_) => Binding::Ignore("could not build the Binding response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::webrtc::peer::check_as as check;

    fn creds() -> IceCredentials {
        IceCredentials {
            ufrag: "hotl".into(),
            pwd: "0123456789abcdefghijklmn".into(),
        }
    }

    fn from() -> SocketAddr {
        "127.0.0.1:50000".parse().expect("addr")
    }

    #[test]
    fn a_signed_check_for_our_ufrag_is_answered_with_its_source_signed_back() {
        let ours = creds();
        let Binding::Answer {
            response,
            nominated,
        } = answer(&ours, &check("hotl:brws", &ours.pwd, true), from())
        else {
            panic!("a valid check is answered");
        };
        assert!(nominated);
        let provider = rtc_stun::crypto::default_provider().expect("provider");
        let mut m = Message::new();
        m.unmarshal_binary(&response).expect("a STUN response");
        assert_eq!(m.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut m, ours.pwd.as_bytes(), provider.crypto())
            .expect("signed with our password");
        FINGERPRINT.check(&m).expect("fingerprinted");
        let mut mapped = XorMappedAddress::default();
        mapped
            .get_from_as(&m, rtc_stun::attributes::ATTR_XORMAPPED_ADDRESS)
            .expect("mapped address");
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from());
    }

    #[test]
    fn checks_without_our_password_or_for_another_ufrag_are_ignored() {
        let ours = creds();
        let wrong_pwd = check("hotl:brws", "not-the-password-at-all!", false);
        assert!(matches!(
            answer(&ours, &wrong_pwd, from()),
            Binding::Ignore(_)
        ));
        let other_user = check("else:brws", &ours.pwd, false);
        assert!(matches!(
            answer(&ours, &other_user, from()),
            Binding::Ignore(_)
        ));
        let unnominated = check("hotl:brws", &ours.pwd, false);
        assert!(matches!(
            answer(&ours, &unnominated, from()),
            Binding::Answer {
                nominated: false,
                ..
            }
        ));
    }

    #[test]
    fn garbage_that_looks_like_stun_is_ignored_not_a_panic() {
        let ours = creds();
        let mut junk = check("hotl:brws", &ours.pwd, false);
        for cut in [0, 1, 19, 20, 24, junk.len() - 3] {
            let _ = answer(&ours, &junk[..cut], from());
        }
        junk[21] ^= 0xff; // an attribute's length
        assert!(matches!(answer(&ours, &junk, from()), Binding::Ignore(_)));
    }

    #[test]
    fn random_credentials_are_long_enough_and_differ() {
        let (a, b) = (IceCredentials::random(), IceCredentials::random());
        assert!(a.ufrag.len() >= 4 && a.pwd.len() >= 22);
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.pwd));
    }
}
