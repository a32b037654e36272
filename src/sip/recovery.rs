//! Closing the legs a crash left up (issue 12 item 4), and keeping the
//! record of live legs that makes it possible.
//!
//! While hotline runs, [`Journal`] writes each confirmed leg's dialog (a
//! [`SavedDialog`], through the configured [`DialogJournal`]) when the stack
//! reports it confirmed, again when a re-INVITE changes its remote target or
//! route set or its CSeq has moved far enough ([`JournalFilter`]), and
//! removes it when the leg ends.
//!
//! At the next start, before the stack dispatches its first request,
//! [`restore`] puts every leftover dialog back into rsipstack's dialog table
//! (its snapshot restore: confirmed state, our CSeq [`CSEQ_SLACK`] above the
//! stored one). So a BYE from the peer for such a leg, arriving before or
//! while hotline cleans up, is matched and answered 200 (RFC 3261 §15.1.2)
//! instead of 481. Then [`close_all`] sends each leg a BYE built by the
//! stack's in-dialog request builder from the stored state (§12.2.1.1:
//! Request-URI = remote target, Route = route set, From/To with both tags,
//! the Call-ID, the next CSeq, a Via with a fresh branch) to the first
//! Route or else the remote target, as the live dialog would. On UDP the
//! transaction layer retransmits it (timer E) until a final response or
//! timer F; that one transaction is the bounded retry (a BYE that gets no
//! answer still ends the dialog, §15.1.1). Each leg is logged once with its
//! outcome, then forgotten (table and journal).
//!
//! [`CSEQ_SLACK`]: super::journal::CSEQ_SLACK

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::dialog::{Dialog, DialogSnapshot, DialogSnapshotState, DialogState};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip as rsip;
use rsipstack::transaction::key::TransactionRole;
use tracing::{debug, info, warn};

use super::journal::{DialogJournal, DialogRole, JournalFilter, SavedDialog};

/// A stored dialog that cannot be turned back into a dialog.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// One of its header values or URIs does not parse.
    #[error("saved dialog {key}: {field} {value:?} does not parse: {reason}")]
    Unparsable {
        /// The dialog's key.
        key: String,
        /// Which field.
        field: &'static str,
        /// Its text.
        value: String,
        /// The parser's reason.
        reason: String,
    },
}

/// How long one leftover leg's BYE may take: longer than the transaction's
/// own timeout (timer F, 64 × T1 = 32 s), which normally ends it first.
const BYE_BOUND: Duration = Duration::from_secs(40);

/// The dialog's state as text (the snapshot of a confirmed INVITE dialog).
pub(super) fn saved_from(dialog: &InviteDialog) -> Option<SavedDialog> {
    let snap = dialog.snapshot();
    if snap.state != DialogSnapshotState::Confirmed
        || snap.id.local_tag.is_empty()
        || snap.id.remote_tag.is_empty()
    {
        return None;
    }
    let (role, local, remote) = match snap.role {
        TransactionRole::Client => (DialogRole::Uac, snap.from.to_string(), snap.to.to_string()),
        TransactionRole::Server => (DialogRole::Uas, snap.to.to_string(), snap.from.to_string()),
    };
    Some(SavedDialog {
        call_id: snap.id.call_id.clone(),
        local_tag: snap.id.local_tag.clone(),
        remote_tag: snap.id.remote_tag.clone(),
        role,
        local_party: local,
        remote_party: remote,
        remote_target: snap.remote_uri.to_string(),
        route_set: snap
            .route_set
            .iter()
            .map(|r| r.value().to_string())
            .collect(),
        local_contact: snap.local_contact.as_ref().map(ToString::to_string),
        local_cseq: snap.local_cseq,
    })
}

/// The rsipstack snapshot a saved dialog is restored from: confirmed, our
/// CSeq such that the next request carries [`SavedDialog::recovery_cseq`].
fn snapshot_of(saved: &SavedDialog) -> Result<DialogSnapshot, RecoveryError> {
    let key = saved.key();
    let bad = |field: &'static str, value: &str, reason: String| RecoveryError::Unparsable {
        key: key.clone(),
        field,
        value: value.to_string(),
        reason,
    };
    // rsipstack's parser takes any text for a host name: a URI must also
    // carry its scheme.
    let uri = |field: &'static str, text: &str| match rsip::Uri::try_from(text) {
        Ok(u) if u.scheme.is_some() => Ok(u),
        Ok(_) => Err(bad(field, text, "no sip:/sips: scheme".into())),
        Err(e) => Err(bad(field, text, e.to_string())),
    };
    let (from_text, to_text) = match saved.role {
        DialogRole::Uac => (&saved.local_party, &saved.remote_party),
        DialogRole::Uas => (&saved.remote_party, &saved.local_party),
    };
    let from =
        rsip::typed::From::parse(from_text).map_err(|e| bad("From", from_text, e.to_string()))?;
    let to = rsip::typed::To::parse(to_text).map_err(|e| bad("To", to_text, e.to_string()))?;
    let remote_uri = uri("remote target", &saved.remote_target)?;
    let local_contact = match &saved.local_contact {
        Some(c) => Some(uri("local contact", c)?),
        None => None,
    };
    let mut route_set = Vec::with_capacity(saved.route_set.len());
    for r in &saved.route_set {
        let route = rsip::Route::new(r.clone());
        rsip::typed::Route::parse(r.trim()).map_err(|e| bad("Route", r, e.to_string()))?;
        route_set.push(route);
    }
    Ok(DialogSnapshot {
        state: DialogSnapshotState::Confirmed,
        role: match saved.role {
            DialogRole::Uac => TransactionRole::Client,
            DialogRole::Uas => TransactionRole::Server,
        },
        id: DialogId {
            call_id: saved.call_id.clone(),
            local_tag: saved.local_tag.clone(),
            remote_tag: saved.remote_tag.clone(),
        },
        from,
        to,
        local_cseq: saved.recovery_cseq().saturating_sub(1),
        // 0: any CSeq the peer sends is accepted (§12.2.2 allows gaps).
        remote_cseq: 0,
        local_contact,
        remote_uri,
        remote_contact: None,
        route_set,
        supports_100rel: false,
        session_id: None,
    })
}

/// The live side: writes confirmed legs, removes ended ones.
pub(super) struct Journal {
    sink: Arc<dyn DialogJournal>,
    filter: Mutex<JournalFilter>,
    dialogs: Arc<DialogLayer>,
}

impl Journal {
    /// Where the legs are written.
    pub(super) fn sink(&self) -> &Arc<dyn DialogJournal> {
        &self.sink
    }

    pub(super) fn new(sink: Arc<dyn DialogJournal>, dialogs: Arc<DialogLayer>) -> Self {
        Self {
            sink,
            filter: Mutex::new(JournalFilter::default()),
            dialogs,
        }
    }

    fn filter(&self) -> std::sync::MutexGuard<'_, JournalFilter> {
        match self.filter.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A dialog state reported to a call: confirmed legs are written (or
    /// rewritten when their target moved), terminated ones removed.
    pub(super) fn on_state(&self, state: &DialogState) {
        match state {
            DialogState::Confirmed(id, _) => {
                if let Some(Dialog::Invite(d)) = self.dialogs.get_dialog(id) {
                    self.touch(&d);
                }
            }
            DialogState::Terminated(id, _) => self.ended(id),
            _ => {}
        }
    }

    /// Write the dialog if the filter says its state changed enough.
    pub(super) fn touch(&self, dialog: &InviteDialog) {
        let Some(saved) = saved_from(dialog) else {
            return;
        };
        let mut filter = self.filter();
        // A leg forgets its dialog (table first, then [`Self::ended`]) on
        // another task: written only while still in the table, under the
        // filter's lock, the save always goes out before that removal.
        if self.dialogs.get_dialog(&dialog.id()).is_none() {
            return;
        }
        if filter.observe(&saved) {
            self.sink.save(&saved);
        }
    }

    /// The dialog is gone (already out of the table): remove it if it was
    /// written.
    pub(super) fn ended(&self, id: &DialogId) {
        let key = id.to_string();
        let mut filter = self.filter();
        if filter.ended(&key) {
            self.sink.remove(&key);
        }
    }

    /// Wait until every write so far reached the journal's store.
    pub(super) fn flush(&self) {
        self.sink.flush();
    }
}

/// Whose legs are being closed.
#[derive(Debug, Clone)]
pub(super) enum Orphans {
    /// This node's last run (a crash, or a stop that could not end them).
    LastStop,
    /// Another node that died; the shared store gave its legs to this one
    /// (docs/ha.md §4).
    DeadNode(String),
}

/// Legs left up, back in the dialog table.
pub(super) struct Restored {
    legs: Vec<(SavedDialog, DialogId)>,
    whose: Orphans,
    /// Keeps the restored dialogs' state channel open.
    _states: rsipstack::dialog::dialog::DialogStateReceiver,
}

/// Put every leftover dialog back into `dialogs`. Run before the stack
/// dispatches requests, so an in-dialog request for one is matched.
pub(super) fn restore(sink: &Arc<dyn DialogJournal>, dialogs: &DialogLayer) -> Restored {
    let leftovers = match sink.leftovers() {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot read the dialogs the last run left up: none closed");
            Vec::new()
        }
    };
    restore_legs(leftovers, Orphans::LastStop, sink, dialogs)
}

/// Put `leftovers` (whose legs they are: `whose`) into `dialogs`.
pub(super) fn restore_legs(
    leftovers: Vec<SavedDialog>,
    whose: Orphans,
    sink: &Arc<dyn DialogJournal>,
    dialogs: &DialogLayer,
) -> Restored {
    let (states, receiver) = dialogs.new_dialog_state_channel();
    let mut legs = Vec::with_capacity(leftovers.len());
    for saved in leftovers {
        let key = saved.key();
        let restored = snapshot_of(&saved).map(|snap| {
            let id = snap.id.clone();
            (dialogs.restore_from_snapshot(snap, states.clone()), id)
        });
        match restored {
            Ok((Ok(true), id)) => legs.push((saved, id)),
            Ok((Ok(false), _)) => {
                warn!(call_id = %saved.call_id, "leftover dialog already in the table: skipped");
                sink.remove(&key);
            }
            Ok((Err(e), _)) => {
                warn!(call_id = %saved.call_id, error = %e, "leftover dialog not restored: no BYE sent");
                sink.remove(&key);
            }
            Err(e) => {
                warn!(error = %e, "leftover dialog unreadable: no BYE sent");
                sink.remove(&key);
            }
        }
    }
    if !legs.is_empty() {
        match &whose {
            Orphans::LastStop => warn!(
                legs = legs.len(),
                "legs of calls the last stop cut off: sending BYE"
            ),
            Orphans::DeadNode(node) => warn!(
                legs = legs.len(),
                %node,
                "legs of calls a dead node anchored: sending BYE"
            ),
        }
    }
    Restored {
        legs,
        whose,
        _states: receiver,
    }
}

/// How one leftover leg ended.
#[derive(Debug)]
enum Closed {
    /// Our BYE got this final status.
    Answered(u16),
    /// The peer had sent its own BYE first (answered 200); none sent.
    PeerHungUp,
    /// No final response within the transaction's timeout.
    NoAnswer,
    /// The BYE could not be sent.
    SendFailed(String),
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Answered(code) => write!(f, "BYE answered {code}"),
            Closed::PeerHungUp => f.write_str("the peer's BYE came first (answered 200)"),
            Closed::NoAnswer => f.write_str("BYE not answered (transaction timed out)"),
            Closed::SendFailed(reason) => write!(f, "BYE not sent: {reason}"),
        }
    }
}

/// Send each restored leg its BYE (concurrently), log the outcome once per
/// leg, then forget it: dialog table and journal.
pub(super) async fn close_all(
    restored: Restored,
    sink: Arc<dyn DialogJournal>,
    dialogs: Arc<DialogLayer>,
) {
    let Restored {
        legs,
        whose,
        _states,
    } = restored;
    let mut tasks = tokio::task::JoinSet::new();
    for (saved, id) in legs {
        let (sink, dialogs) = (sink.clone(), dialogs.clone());
        let dead_node = match &whose {
            Orphans::LastStop => None,
            Orphans::DeadNode(node) => Some(node.clone()),
        };
        tasks.spawn(async move {
            let outcome = match dialogs.get_dialog(&id) {
                Some(Dialog::Invite(d)) => close_one(&d).await,
                _ => Closed::SendFailed("restored dialog missing".into()),
            };
            let peer_bye = matches!(
                dialogs.get_dialog(&id),
                Some(Dialog::Invite(d)) if d.state().is_terminated()
            );
            info!(
                call_id = %saved.call_id,
                role = saved.role.as_str(),
                target = %saved.remote_target,
                cseq = saved.recovery_cseq(),
                %outcome,
                peer_bye,
                dead_node = dead_node.as_deref().unwrap_or(""),
                "leg left up by the last stop or a dead node closed"
            );
            dialogs.remove_dialog(&id);
            sink.remove(&saved.key());
        });
    }
    while tasks.join_next().await.is_some() {}
    sink.flush();
    debug!("leftover legs closed");
}

async fn close_one(dialog: &InviteDialog) -> Closed {
    if dialog.state().is_terminated() {
        return Closed::PeerHungUp;
    }
    let sent = tokio::time::timeout(BYE_BOUND, dialog.request(rsip::Method::Bye, None, None)).await;
    match sent {
        Ok(Ok(Some(resp))) => Closed::Answered(resp.status_code.code()),
        Ok(Ok(None)) | Err(_) => Closed::NoAnswer,
        Ok(Err(e)) => Closed::SendFailed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::journal::CSEQ_SLACK;

    fn saved(role: DialogRole) -> SavedDialog {
        SavedDialog {
            call_id: "c1@127.0.0.10".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            role,
            local_party: "<sip:12345@127.0.0.1:5060>;tag=ours".into(),
            remote_party: "\"Carrier\" <sip:+15550100@127.0.0.10:5060>;tag=theirs".into(),
            remote_target: "sip:+15550100@127.0.0.10:5060;transport=UDP".into(),
            route_set: vec!["<sip:127.0.0.2:5060;lr>".into()],
            local_contact: Some("sip:127.0.0.1:5060".into()),
            local_cseq: 42,
        }
    }

    #[test]
    fn a_saved_dialog_becomes_a_confirmed_snapshot_with_the_parties_the_right_way_round() {
        let uas = snapshot_of(&saved(DialogRole::Uas)).expect("snapshot");
        assert_eq!(uas.role, TransactionRole::Server);
        assert_eq!(uas.state, DialogSnapshotState::Confirmed);
        // rsipstack keeps the INVITE's From/To: for a UAS the peer is From.
        assert_eq!(
            uas.from.tag().map(|t| t.value().to_string()),
            Some("theirs".into())
        );
        assert_eq!(
            uas.to.tag().map(|t| t.value().to_string()),
            Some("ours".into())
        );
        assert_eq!(uas.local_cseq + 1, 42 + CSEQ_SLACK + 1);
        assert_eq!(
            uas.remote_uri.to_string(),
            "sip:+15550100@127.0.0.10:5060;transport=UDP"
        );
        assert_eq!(uas.route_set.len(), 1);
        let uac = snapshot_of(&saved(DialogRole::Uac)).expect("snapshot");
        assert_eq!(uac.role, TransactionRole::Client);
        assert_eq!(
            uac.from.tag().map(|t| t.value().to_string()),
            Some("ours".into())
        );
        assert_eq!(uac.id.local_tag, "ours");
        assert_eq!(uac.id.remote_tag, "theirs");
    }

    #[test]
    fn a_saved_dialog_that_does_not_parse_names_the_field() {
        let mut s = saved(DialogRole::Uac);
        s.remote_target = "not a uri <".into();
        let e = snapshot_of(&s).expect_err("bad target");
        assert!(e.to_string().contains("remote target"), "{e}");
        let mut s = saved(DialogRole::Uac);
        s.remote_party = "<<>>".into();
        let e = snapshot_of(&s).expect_err("bad To");
        assert!(e.to_string().contains("To"), "{e}");
    }
}
