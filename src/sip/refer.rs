//! The `Refer-To` header of a REFER (RFC 3515 §2.1) as a phone's transfer
//! key sends it: whom the transferor wants the other party put through to,
//! and, for an attended transfer, the dialog that party should replace
//! (the URI's embedded `Replaces` header, RFC 3891 §3).
//!
//! Written by hand: rsipstack carries the header as text, and only the
//! target's user part and the `Replaces` triple matter here.

use thiserror::Error;

/// What a `Refer-To` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo {
    /// The target URI's user part (percent-decoded): an extension, an
    /// agent's job number, a skill group, a phone number.
    pub user: String,
    /// The dialog to replace (attended transfer), if any.
    pub replaces: Option<Replaces>,
}

/// A `Replaces` header (RFC 3891 §6.1): the dialog by its Call-ID and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Its Call-ID.
    pub call_id: String,
    /// Its `to-tag`.
    pub to_tag: String,
    /// Its `from-tag`.
    pub from_tag: String,
}

/// Why a `Refer-To` value was refused (answered 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferToError {
    /// No `Refer-To` at all.
    #[error("REFER without a Refer-To header")]
    Missing,
    /// Not a sip:, sips: or tel: URI.
    #[error("Refer-To {0:?}: not a sip:, sips: or tel: URI")]
    Scheme(String),
    /// The URI names nobody (no user part).
    #[error("Refer-To {0:?}: the URI has no user part")]
    NoUser(String),
    /// A `Replaces` without its Call-ID or both tags.
    #[error("Refer-To {0:?}: its Replaces lacks the Call-ID, to-tag or from-tag")]
    Replaces(String),
}

/// Parse a `Refer-To` header value (`None`: the header was missing).
pub fn parse(value: Option<&str>) -> Result<ReferTo, ReferToError> {
    let raw = value.ok_or(ReferToError::Missing)?.trim();
    // name-addr (`"Name" <uri>;params`) or addr-spec (`uri;params`).
    let uri = match (raw.find('<'), raw.rfind('>')) {
        (Some(open), Some(close)) if open < close => &raw[open + 1..close],
        _ => raw.split(';').next().unwrap_or(raw),
    }
    .trim();
    let lower = uri.to_ascii_lowercase();
    let rest = ["sip:", "sips:", "tel:"]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map(|s| &uri[s.len()..])
        .ok_or_else(|| ReferToError::Scheme(raw.to_string()))?;
    let (address, headers) = match rest.split_once('?') {
        Some((a, h)) => (a, Some(h)),
        None => (rest, None),
    };
    let user = match address.split_once('@') {
        Some((user, _host)) => user,
        // tel:+8612345;phone-context=… (sip: without '@' names a host)
        None if lower.starts_with("tel:") => address.split(';').next().unwrap_or(""),
        None => "",
    };
    let user = user.split(';').next().unwrap_or("");
    let user = percent_decode(user);
    if user.is_empty() {
        return Err(ReferToError::NoUser(raw.to_string()));
    }
    let replaces = match headers {
        None => None,
        Some(h) => h
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| replaces(&percent_decode(v)).ok_or(ReferToError::Replaces(raw.into())))
            .transpose()?,
    };
    Ok(ReferTo { user, replaces })
}

/// `call-id;to-tag=…;from-tag=…` (any order of the parameters).
fn replaces(v: &str) -> Option<Replaces> {
    let mut parts = v.split(';');
    let call_id = parts.next()?.trim().to_string();
    let (mut to_tag, mut from_tag) = (None, None);
    for p in parts {
        match p.trim().split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("to-tag") => to_tag = Some(v.to_string()),
            Some((k, v)) if k.eq_ignore_ascii_case("from-tag") => from_tag = Some(v.to_string()),
            _ => {}
        }
    }
    (!call_id.is_empty()).then_some(())?;
    Some(Replaces {
        call_id,
        to_tag: to_tag?,
        from_tag: from_tag?,
    })
}

/// `%XX` escapes decoded (RFC 3261 §19.1.2); a malformed escape is kept
/// as it stands.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blind_transfer_key_names_its_target_in_any_of_the_usual_forms() {
        for v in [
            "<sip:1002@127.0.0.1:5060>",
            "sip:1002@127.0.0.1",
            "\"Agent 2\" <sip:1002@hotline.example;transport=udp>;x=1",
            "<sips:1002@hotline.example>",
            "<sip:10%30%32@h>",
        ] {
            assert_eq!(
                parse(Some(v)),
                Ok(ReferTo {
                    user: "1002".into(),
                    replaces: None
                }),
                "{v}"
            );
        }
        assert_eq!(
            parse(Some("<tel:+8612345;phone-context=x>")).unwrap().user,
            "+8612345"
        );
    }

    #[test]
    fn an_attended_transfer_carries_the_dialog_to_replace() {
        let v = "<sip:1002@h?Replaces=abc%40host%3Bto-tag%3D11%3Bfrom-tag%3D22&Require=replaces>";
        assert_eq!(
            parse(Some(v)).unwrap().replaces,
            Some(Replaces {
                call_id: "abc@host".into(),
                to_tag: "11".into(),
                from_tag: "22".into(),
            })
        );
        let v = "<sip:1002@h?Replaces=abc%3Bfrom-tag%3D22>";
        assert_eq!(parse(Some(v)), Err(ReferToError::Replaces(v.into())));
    }

    #[test]
    fn a_refer_to_that_names_nobody_is_refused_with_its_reason() {
        assert_eq!(parse(None), Err(ReferToError::Missing));
        assert!(matches!(
            parse(Some("<http://x/>")),
            Err(ReferToError::Scheme(_))
        ));
        assert!(matches!(
            parse(Some("<sip:hotline.example>")),
            Err(ReferToError::NoUser(_))
        ));
        assert!(matches!(parse(Some("")), Err(ReferToError::Scheme(_))));
        assert!(matches!(
            parse(Some("<sip:@h>")),
            Err(ReferToError::NoUser(_))
        ));
        // Hostile: escapes at the end, non-UTF-8 bytes, no closing '>'.
        assert_eq!(parse(Some("<sip:10%2@h>")).unwrap().user, "10%2");
        assert!(parse(Some("<sip:%ff%fe@h>")).is_ok());
        assert!(parse(Some("<sip:1002@h")).is_err());
    }

    proptest::proptest! {
        /// Whatever a phone sends, the parse answers (never panics), and a
        /// target it finds is never empty.
        #[test]
        fn any_refer_to_is_parsed_or_refused(v in "\\PC{0,80}", user in "[0-9a-zA-Z%]{0,8}") {
            for value in [v.clone(), format!("<sip:{user}@h?Replaces={v}>"), format!("sip:{v}")] {
                if let Ok(to) = parse(Some(&value)) {
                    proptest::prop_assert!(!to.user.is_empty());
                }
            }
        }
    }
}
