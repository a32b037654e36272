//! What a node knows of the others sharing its store, for `/metrics`
//! (issue 15 §4, docs/ha.md §6): how many other nodes beat within the dead
//! time (written by `switch::takeover` each second) and whether it hears
//! their changes now (written by `switch::follow` from the listening
//! session's state). Both stay at their "not shared" values on the
//! embedded store.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The node's view of its cluster.
#[derive(Debug)]
pub struct ClusterStatus {
    /// Other nodes alive; -1 until known (or never: not shared).
    peers: AtomicI64,
    /// Whether the session hearing other nodes' changes is up.
    following: AtomicBool,
    /// Whether several nodes share the store at all.
    shared: AtomicBool,
    /// Whether the nodes run one ACD (a lease and NATS).
    acd_clustered: AtomicBool,
    /// The lease's epoch while this node leads the ACD; 0 otherwise.
    acd_epoch: AtomicI64,
}

impl Default for ClusterStatus {
    fn default() -> Self {
        Self {
            peers: AtomicI64::new(-1),
            following: AtomicBool::new(false),
            shared: AtomicBool::new(false),
            acd_clustered: AtomicBool::new(false),
            acd_epoch: AtomicI64::new(0),
        }
    }
}

impl ClusterStatus {
    /// The store is shared: the figures mean something.
    pub fn set_shared(&self) {
        self.shared.store(true, Ordering::Relaxed);
    }

    /// Whether several nodes share the store.
    pub fn shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// `n` other nodes beat within the dead time.
    pub fn set_peers(&self, n: usize) {
        self.peers
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Other nodes alive, when known.
    pub fn peers(&self) -> Option<u64> {
        u64::try_from(self.peers.load(Ordering::Relaxed)).ok()
    }

    /// The listening session is up (`true`) or being made again.
    pub fn set_following(&self, up: bool) {
        self.following.store(up, Ordering::Relaxed);
    }

    /// The nodes run one ACD: whether this node leads it means something.
    pub fn set_acd_clustered(&self) {
        self.acd_clustered.store(true, Ordering::Relaxed);
    }

    /// This node leads the ACD with the lease's `epoch`, or not (`None`).
    pub fn set_acd_leader(&self, epoch: Option<i64>) {
        self.acd_epoch.store(epoch.unwrap_or(0), Ordering::Relaxed);
    }

    /// With one ACD for the nodes: the lease's epoch if this node leads
    /// it (`Some(Some(e))`), `Some(None)` if another does; `None` without.
    pub fn acd_leader(&self) -> Option<Option<i64>> {
        self.acd_clustered.load(Ordering::Relaxed).then(|| {
            let e = self.acd_epoch.load(Ordering::Relaxed);
            (e > 0).then_some(e)
        })
    }

    /// Whether this node hears the others' changes now.
    pub fn following(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }
}

/// Who holds the ACD leader's lease (docs/ha.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node holding it.
    pub holder: String,
    /// Raised at each change of holder: the leader's writes carry it.
    pub epoch: i64,
    /// Whether this node holds it (took or renewed it now).
    pub held: bool,
}
