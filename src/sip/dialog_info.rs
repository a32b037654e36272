//! The `application/dialog-info+xml` body of the dialog event package
//! (RFC 4235 §4) as supervisors' phones read it for their BLF lamps: one
//! full document per NOTIFY, its `version` rising by one each (§4.1.1),
//! the watched agent's one dialog `early` while their phone rings,
//! `confirmed` while they talk, and no dialog at all while they are free.
//!
//! Written by hand: three elements of a fixed shape, no XML crate needed.

/// What the lamp shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lamp {
    /// Free (or signed out): no dialog.
    Idle,
    /// Their phone rings (a dialog in `early`).
    Ringing,
    /// On a call or wrapping one up (`confirmed`).
    Busy,
}

/// The document for `entity` (the watched phone's URI) at `version`.
pub fn document(entity: &str, version: u32, lamp: Lamp) -> String {
    let entity = escape(entity);
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" entity=\"{entity}\">\n"
    );
    let state = match lamp {
        Lamp::Idle => return format!("{head}</dialog-info>\n"),
        Lamp::Ringing => "early",
        Lamp::Busy => "confirmed",
    };
    format!(
        "{head}  <dialog id=\"blf-{version}\" direction=\"recipient\">\n    <state>{state}</state>\n  </dialog>\n</dialog-info>\n"
    )
}

/// XML attribute text (`&`, `<`, `>`, `"`, `'` escaped).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lamp_is_a_full_document_with_its_version_and_the_dialogs_state() {
        let idle = document("sip:1001@hotline", 0, Lamp::Idle);
        assert!(idle.contains("version=\"0\" state=\"full\" entity=\"sip:1001@hotline\""));
        assert!(!idle.contains("<dialog "), "{idle}");
        let ringing = document("sip:1001@hotline", 1, Lamp::Ringing);
        assert!(ringing.contains("<state>early</state>"), "{ringing}");
        let busy = document("sip:1001@hotline", 2, Lamp::Busy);
        assert!(busy.contains("<state>confirmed</state>") && busy.contains("version=\"2\""));
    }

    #[test]
    fn the_entity_is_escaped() {
        let doc = document("sip:\"a\"<b>&'@h", 0, Lamp::Idle);
        assert!(
            doc.contains("entity=\"sip:&quot;a&quot;&lt;b&gt;&amp;&apos;@h\""),
            "{doc}"
        );
    }
}
