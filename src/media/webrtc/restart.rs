//! ICE restarts a browser's page asks for (issue 17 §3: "the call survives
//! a short drop with ICE restart"): the live WebRTC transports by the
//! `ice-ufrag` of their first offer, so the call's browser leg (which
//! knows that offer, not the leg's ports, held by the media workers) can
//! give its transport new credentials before it re-offers them
//! ([`WebRtcTransport::restart_ice`]).

use std::sync::{Arc, LazyLock, Mutex, Weak};

use dashmap::DashMap;

use super::{IceCredentials, WebRtcTransport};

/// Live transports by their first ufrag (entries leave with their ports).
static LIVE: LazyLock<DashMap<String, Weak<Mutex<WebRtcTransport>>>> = LazyLock::new(DashMap::new);

/// `transport`, made with first ufrag `ufrag`, may be restarted.
pub(crate) fn register(ufrag: &str, transport: &Arc<Mutex<WebRtcTransport>>) {
    LIVE.insert(ufrag.to_string(), Arc::downgrade(transport));
}

/// The transport of first ufrag `ufrag` is gone.
pub(crate) fn forget(ufrag: &str) {
    LIVE.remove(ufrag);
}

/// Restart ICE on the live transport first offered with `ufrag`: its new
/// credentials, or `None` when it is gone.
pub fn restart(ufrag: &str) -> Option<IceCredentials> {
    let transport = LIVE.get(ufrag)?.value().upgrade()?;
    let fresh = match transport.lock() {
        Ok(mut t) => t.restart_ice(),
        Err(poisoned) => poisoned.into_inner().restart_ice(),
    };
    Some(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_transport_is_restarted_by_its_first_ufrag_until_forgotten() {
        let t = Arc::new(Mutex::new(WebRtcTransport::new(
            "127.0.0.1:40000".parse().expect("addr"),
        )));
        let first = t.lock().expect("lock").credentials().clone();
        register(&first.ufrag, &t);
        let fresh = restart(&first.ufrag).expect("restarted");
        assert_ne!(fresh, first);
        // Still found by its first ufrag after a restart.
        assert!(restart(&first.ufrag).is_some());
        forget(&first.ufrag);
        assert!(restart(&first.ufrag).is_none());
        assert!(restart("nobody").is_none());
    }
}
