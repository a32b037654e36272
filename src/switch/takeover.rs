//! A node's part in a cluster sharing one store (issue 15 §3 (d),
//! docs/ha.md §4): every second it writes its heartbeat (with its HTTP
//! API's address, where the others fetch its recordings), and takes over
//! the live legs of any node not seen for [`DEAD_AFTER_SECS`] (by the
//! database's clock): each gets a BYE from its saved dialog state, so a
//! dead node leaves no carrier leg billing for hours; then its calls'
//! records get their `call.ended` (incomplete, a system fault,
//! `node-failure`) from the shared outbox. The store decides
//! who takes what (the dead nodes' rows locked in one transaction), so two
//! survivors never send the same BYE. Nothing runs on the embedded store.
//!
//! A stale heartbeat is only evidence of death while the store itself was
//! reachable: after PostgreSQL was away (for this node, and so perhaps for
//! all), a node looks for dead ones only once it has itself beaten without
//! a miss for [`STEADY_SECS`], long enough for every living node to have
//! beaten again. So a store outage does not make the nodes hang up each
//! other's calls.

use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use std::sync::Arc;

use crate::events::outbox::Outbox;
use crate::sip::SipStack;
use crate::store::cluster::ClusterStatus;
use crate::store::Store;

/// How often the heartbeat is written and dead nodes are looked for.
const BEAT: Duration = Duration::from_secs(1);

/// A node not seen for this long is dead: five missed beats.
pub const DEAD_AFTER_SECS: i32 = 5;

/// How long this node must have beaten without a miss before it judges
/// others: twice the dead time.
const STEADY_SECS: u64 = 2 * DEAD_AFTER_SECS as u64;

/// Start the loop when `store` is shared (`None` otherwise); it runs
/// until the handle is aborted.
pub fn spawn(
    store: Store,
    stack: SipStack,
    outbox: Arc<Outbox>,
    http: String,
    cluster: Arc<ClusterStatus>,
) -> Option<JoinHandle<()>> {
    if !store.is_shared() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut steady_since: Option<tokio::time::Instant> = None;
        let mut failing = false;
        loop {
            tick.tick().await;
            let judge =
                steady_since.is_some_and(|t| t.elapsed() >= Duration::from_secs(STEADY_SECS));
            let (s, http, seen) = (store.clone(), http.clone(), cluster.clone());
            let round = tokio::task::spawn_blocking(move || {
                s.heartbeat(&http)?;
                seen.set_peers(s.peers(DEAD_AFTER_SECS)?.len());
                if judge {
                    s.take_over_dead(DEAD_AFTER_SECS)
                } else {
                    Ok(Vec::new())
                }
            })
            .await;
            match round {
                Ok(Ok(taken)) => {
                    if failing {
                        info!("store heartbeat written again");
                        failing = false;
                    }
                    steady_since.get_or_insert_with(tokio::time::Instant::now);
                    for (node, legs) in taken {
                        warn!(%node, legs = legs.len(), "a node sharing the store is dead: closing the legs it anchored");
                        if !legs.is_empty() {
                            stack.close_legs_of(&node, legs);
                        }
                        let outbox = outbox.clone();
                        tokio::task::spawn_blocking(move || {
                            super::events::close_dead_nodes_calls(&outbox, &node);
                        });
                    }
                }
                Ok(Err(e)) => {
                    steady_since = None;
                    if !failing {
                        warn!(error = %e, "store heartbeat failed: other nodes may take this node for dead");
                        failing = true;
                    }
                }
                Err(e) => {
                    steady_since = None;
                    warn!(error = %e, "store heartbeat task failed");
                }
            }
        }
    }))
}
