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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sdp::{self, AudioCodec, Direction, SessionDescription};

    fn local(sdes: Sdes) -> LocalMedia {
        LocalMedia {
            address: "10.0.0.1".parse().expect("ip"),
            port: 30000,
            session_id: 1,
            session_version: 1,
            codecs: vec![AudioCodec::Pcma],
            telephone_event: false,
            direction: Direction::SendRecv,
            sdes,
        }
    }

    fn offer(proto: &str, crypto: &str) -> SessionDescription {
        SessionDescription::parse(&format!(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 {proto} 8\r\n{crypto}"
        ))
        .expect("offer")
    }

    const CRYPTO: &str =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n";

    #[test]
    fn a_leg_settled_on_srtp_refuses_a_plain_reoffer_and_reoffers_savp() {
        let mine = local(SrtpPolicy::default().toward_phones());
        let first = offer("RTP/AVP", CRYPTO);
        let (_, neg) = sdp::negotiate_answer(&first, &mine).expect("best-effort SRTP");
        assert!(neg.srtp.is_some());
        let srtp_leg = settled(&mine, &neg);
        // The phone's hold re-INVITE keeps its key: answered, same keys.
        let (_, again) = sdp::negotiate_answer(&first, &srtp_leg).expect("same keys");
        assert_eq!(again.srtp, neg.srtp);
        // A plain re-offer: 488, never a plain answer over encrypted media.
        let plain = offer("RTP/AVP", "");
        assert!(sdp::negotiate_answer(&plain, &srtp_leg).is_err());
        // Our re-offers: RTP/SAVP with the same key.
        let ours = sdp::build_offer(&srtp_leg);
        assert_eq!(ours.audio().expect("audio").proto, "RTP/SAVP");
        // A plain leg stays as it was.
        let (_, plain_neg) = sdp::negotiate_answer(&plain, &mine).expect("plain");
        assert_eq!(settled(&mine, &plain_neg), mine);
    }

    #[test]
    fn each_leg_gets_its_own_key_and_the_trunk_decides_for_its_addresses() {
        let policy = SrtpPolicy {
            agents: SrtpMode::Off,
            trunks: [("carrier".to_string(), SrtpMode::Required)].into(),
        };
        let a = policy.toward_phones();
        let b = policy.toward_phones();
        assert!(a.key.is_some() && !a.offer && !a.required, "accepting only");
        assert_ne!(a.key, b.key, "a fresh key per leg");
        let t = policy.toward_trunk(Some("carrier"));
        assert!(t.offer && t.required);
        let unknown = policy.toward_trunk(Some("other"));
        assert!(!unknown.offer && !unknown.required && unknown.key.is_some());
        let trunks = TrunkTable::new(vec![crate::sip::trunk::Trunk {
            name: "carrier".into(),
            inbound: vec!["192.0.2.0/24".parse().expect("net")],
            proxy: None,
            tcp: false,
            backup: None,
            invite_timeout_secs: 8,
        }]);
        assert!(
            policy
                .for_source(&trunks, "192.0.2.7".parse().expect("ip"))
                .required
        );
        assert!(
            !policy
                .for_source(&trunks, "10.1.1.1".parse().expect("ip"))
                .required
        );
    }
}
