//! Other nodes' changes to the shared store (docs/ha.md §1): each write a
//! node makes to rows other nodes keep in memory (registrations, the
//! roster, the block list) is announced with
//! `pg_notify('hotline_change', "<node>\t<kind>\t<key>")` in the write's
//! own transaction, so it is heard exactly when it is visible. Each node
//! follows the channel ([`ChangeFeed`]) and reloads the named rows; its
//! own announcements are skipped (its memory is ahead of them). After the
//! listening session was lost, [`SharedChange::Resync`] says to reload
//! everything followed.

use std::time::Duration;

use super::pg::listen::{Heard, Listener};

/// The channel every node announces its changes on.
pub const CHANNEL: &str = "hotline_change";

/// The kinds of rows announced.
pub const REGISTRATION: &str = "registration";
/// Agents and skill groups (`roster`): key `*`, the roster is reloaded whole.
pub const ROSTER: &str = "roster";
/// One tenant's block list.
pub const BLACKLIST: &str = "blacklist";

/// What another node changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedChange {
    /// The bindings of one agent (address of record).
    Registration {
        /// The AOR whose rows changed.
        aor: String,
    },
    /// Agents or skill groups were added, changed or removed.
    Roster,
    /// A tenant's block list changed.
    Blacklist {
        /// The tenant.
        tenant: String,
    },
    /// Changes may have been missed: reload everything followed.
    Resync,
}

/// The payload announcing a change of `kind` to `key` by `node`.
pub fn payload(node: &str, kind: &str, key: &str) -> String {
    format!("{node}\t{kind}\t{key}")
}

/// Another node's change in `payload`; `None` for this node's own, an
/// unknown kind (a newer node's) or a malformed payload.
fn parse(own: &str, payload: &str) -> Option<SharedChange> {
    let mut parts = payload.splitn(3, '\t');
    let (node, kind, key) = (parts.next()?, parts.next()?, parts.next()?);
    if node == own {
        return None;
    }
    match kind {
        REGISTRATION => Some(SharedChange::Registration {
            aor: key.to_string(),
        }),
        ROSTER => Some(SharedChange::Roster),
        BLACKLIST => Some(SharedChange::Blacklist {
            tenant: key.to_string(),
        }),
        _ => None,
    }
}

/// Other nodes' changes, as they commit.
pub struct ChangeFeed {
    listener: Listener,
    node: String,
}

impl ChangeFeed {
    pub(super) fn new(listener: Listener, node: &str) -> Self {
        Self {
            listener,
            node: node.to_string(),
        }
    }

    /// Whether other nodes' changes are heard now (the session is up).
    pub fn is_up(&self) -> bool {
        self.listener.is_up()
    }

    /// The next change of another node, waiting at most `within`;
    /// `Ok(None)` when nothing came; `Err` when the feed ended.
    pub fn next(&self, within: Duration) -> Result<Option<SharedChange>, FeedEnded> {
        use std::sync::mpsc::RecvTimeoutError;
        match self.listener.next(within) {
            Ok(Heard::Payload(p)) => Ok(parse(&self.node, &p)),
            Ok(Heard::Reconnected) => Ok(Some(SharedChange::Resync)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(FeedEnded),
        }
    }
}

/// The listening thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the feed of other nodes' changes ended")]
pub struct FeedEnded;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_unknown_and_malformed_payloads_are_skipped() {
        let p = payload("node-b", "registration", "1001");
        assert_eq!(
            parse("node-a", &p),
            Some(SharedChange::Registration { aor: "1001".into() })
        );
        assert_eq!(parse("node-b", &p), None);
        assert_eq!(
            parse("node-a", &payload("node-b", ROSTER, "*")),
            Some(SharedChange::Roster)
        );
        assert_eq!(
            parse("node-a", &payload("node-b", BLACKLIST, "hz")),
            Some(SharedChange::Blacklist {
                tenant: "hz".into()
            })
        );
        assert_eq!(parse("node-a", "node-b\tsomething-new\tx"), None);
        assert_eq!(parse("node-a", "garbage"), None);
        assert_eq!(parse("node-a", ""), None);
        // A key may hold a tab of its own: only the first two split.
        assert_eq!(
            parse("a", "b\tregistration\tx\ty"),
            Some(SharedChange::Registration { aor: "x\ty".into() })
        );
    }
}
