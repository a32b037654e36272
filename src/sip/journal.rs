//! Dialogs written down so a crash cannot leave them up (issue 12 item 4:
//! "a call cut off by a crash is closed properly").
//!
//! When hotline dies mid-call (`kill -9`, OOM kill, power), the carrier keeps
//! billing and the agent's phone stays off-hook until someone sends them a
//! BYE. To send one after the restart, hotline needs what an in-dialog
//! request is built from (RFC 3261 §12.2.1.1): the Call-ID, both tags, both
//! parties (From/To), the remote target (the peer's Contact: the
//! Request-URI), the route set (Route headers) and the local CSeq (the BYE
//! must use a higher one). A [`SavedDialog`] holds exactly that as text, so
//! no rsipstack type leaves the `sip` room; the stack writes one when a leg
//! is confirmed and removes it when the leg ends, through a
//! [`DialogJournal`] (hotline.db in `hotline serve`).
//!
//! [`JournalFilter`] is the pure part: it decides which snapshots are worth
//! a write (a new dialog, a new remote target or route set, the CSeq past
//! half the slack the recovery BYE adds) and which ends need a delete.

use std::collections::HashMap;

/// Added to the stored CSeq for the BYE sent after a restart: in-dialog
/// requests sent after the last write (session refreshes, re-INVITEs) used
/// numbers the stored one does not show, and the peer refuses a BYE whose
/// CSeq is not above the last it saw (§12.2.2).
pub const CSEQ_SLACK: u32 = 1000;

/// Rewrite a saved dialog once its CSeq has moved this far from the stored
/// one, so the slack always covers the requests not written down.
pub const CSEQ_REWRITE: u32 = CSEQ_SLACK / 2;

/// Largest CSeq number (RFC 3261 §8.1.1.5: below 2**31).
pub const CSEQ_MAX: u32 = (1 << 31) - 1;

/// Which side of the dialog hotline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogRole {
    /// We sent the INVITE (an agent's or a trunk's leg).
    Uac,
    /// We answered it (the carrier's leg, a supervisor's).
    Uas,
}

impl DialogRole {
    /// `uac` or `uas`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DialogRole::Uac => "uac",
            DialogRole::Uas => "uas",
        }
    }

    /// The stored text back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "uac" => Some(DialogRole::Uac),
            "uas" => Some(DialogRole::Uas),
            _ => None,
        }
    }
}

/// One confirmed leg's dialog, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedDialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// Which side we are.
    pub role: DialogRole,
    /// Our party as a header value with our tag (`From` of our requests).
    pub local_party: String,
    /// The peer's party with its tag (`To` of our requests).
    pub remote_party: String,
    /// The remote target (the peer's Contact URI): the Request-URI.
    pub remote_target: String,
    /// Route set, in the order the Route headers go out.
    pub route_set: Vec<String>,
    /// Our Contact URI.
    pub local_contact: Option<String>,
    /// The last CSeq number we used in this dialog (when written).
    pub local_cseq: u32,
}

impl SavedDialog {
    /// The dialog's key: Call-ID, our tag and theirs (unique per leg).
    pub fn key(&self) -> String {
        dialog_key(&self.call_id, &self.local_tag, &self.remote_tag)
    }

    /// The CSeq number of the BYE sent after a restart: [`CSEQ_SLACK`]
    /// above the stored one (at most [`CSEQ_MAX`]).
    pub fn recovery_cseq(&self) -> u32 {
        self.local_cseq
            .saturating_add(CSEQ_SLACK)
            .saturating_add(1)
            .min(CSEQ_MAX)
    }
}

/// The key of the dialog with these identifiers.
pub fn dialog_key(call_id: &str, local_tag: &str, remote_tag: &str) -> String {
    format!("{call_id}-{local_tag}-{remote_tag}")
}

/// Where saved dialogs go. Implementations must not block the caller on
/// disk: `save` and `remove` are called from the SIP stack's tasks.
pub trait DialogJournal: Send + Sync + std::fmt::Debug {
    /// Insert or replace the dialog (by its key).
    fn save(&self, dialog: &SavedDialog);
    /// Forget the dialog with this key.
    fn remove(&self, key: &str);
    /// Every dialog saved and not removed (at start: the legs the last run
    /// left up).
    fn leftovers(&self) -> Result<Vec<SavedDialog>, String>;
    /// Wait until every save and remove so far is written.
    fn flush(&self);
}

/// Decides which dialog snapshots need a write. Pure.
#[derive(Debug, Default)]
pub struct JournalFilter {
    written: HashMap<String, SavedDialog>,
}

impl JournalFilter {
    /// A snapshot of a confirmed dialog: `true` when it must be written
    /// (first time, a new remote target or route set, or the CSeq moved
    /// [`CSEQ_REWRITE`] or more since the last write).
    pub fn observe(&mut self, dialog: &SavedDialog) -> bool {
        let key = dialog.key();
        let write = match self.written.get(&key) {
            None => true,
            Some(old) => {
                old.remote_target != dialog.remote_target
                    || old.route_set != dialog.route_set
                    || old.remote_party != dialog.remote_party
                    || dialog.local_cseq.wrapping_sub(old.local_cseq) >= CSEQ_REWRITE
            }
        };
        if write {
            self.written.insert(key, dialog.clone());
        }
        write
    }

    /// The dialog with `key` ended: `true` when it was written (and must be
    /// removed).
    pub fn ended(&mut self, key: &str) -> bool {
        self.written.remove(key).is_some()
    }

    /// Dialogs written and not ended.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// No dialog written and not ended.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(cseq: u32) -> SavedDialog {
        SavedDialog {
            call_id: "c1".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            role: DialogRole::Uas,
            local_party: "<sip:12345@127.0.0.1:5060>;tag=ours".into(),
            remote_party: "\"Carrier\" <sip:+15550100@127.0.0.10>;tag=theirs".into(),
            remote_target: "sip:+15550100@127.0.0.10:5060".into(),
            route_set: vec![],
            local_contact: Some("sip:127.0.0.1:5060".into()),
            local_cseq: cseq,
        }
    }

    #[test]
    fn a_dialog_is_written_once_until_something_that_matters_changes() {
        let mut f = JournalFilter::default();
        assert!(f.observe(&dialog(1)), "first confirmation");
        assert!(!f.observe(&dialog(1)), "the same again (INFO, OPTIONS …)");
        assert!(!f.observe(&dialog(5)), "a few refreshes");
        let mut moved = dialog(5);
        moved.remote_target = "sip:+15550100@127.0.0.11:5060".into();
        assert!(f.observe(&moved), "a re-INVITE moved the remote target");
        let mut routed = moved.clone();
        routed.route_set = vec!["<sip:127.0.0.2;lr>".into()];
        assert!(f.observe(&routed), "a new route set");
        let mut far = routed.clone();
        far.local_cseq = 5 + CSEQ_REWRITE - 1;
        assert!(!f.observe(&far), "within the slack");
        far.local_cseq = 5 + CSEQ_REWRITE;
        assert!(f.observe(&far), "half the slack used: rewrite");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn only_written_dialogs_are_removed() {
        let mut f = JournalFilter::default();
        assert!(
            !f.ended("never-confirmed"),
            "an unanswered fork is never written"
        );
        f.observe(&dialog(1));
        assert!(f.ended(&dialog(1).key()));
        assert!(!f.ended(&dialog(1).key()), "removed once");
        assert!(f.is_empty());
    }

    #[test]
    fn the_recovery_cseq_is_above_everything_sent_and_a_valid_number() {
        assert_eq!(dialog(7).recovery_cseq(), 7 + CSEQ_SLACK + 1);
        assert_eq!(dialog(CSEQ_MAX - 3).recovery_cseq(), CSEQ_MAX);
        assert_eq!(dialog(u32::MAX).recovery_cseq(), CSEQ_MAX);
        assert_eq!(
            DialogRole::parse(DialogRole::Uac.as_str()),
            Some(DialogRole::Uac)
        );
        assert_eq!(
            DialogRole::parse(DialogRole::Uas.as_str()),
            Some(DialogRole::Uas)
        );
        assert_eq!(DialogRole::parse("proxy"), None);
    }
}
