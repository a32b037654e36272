//! Keeps hotline registered at carriers that want it (`[trunk.register]`):
//! one task per trunk drives the pure [`RegistrationSchedule`] (refresh at
//! ~80 % of the granted lifetime, exponential backoff on failure) and
//! unregisters on shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Transport, TrunkConfig};
use crate::sip::trunk::RegistrationSchedule;
use crate::sip::SipStack;
use crate::time::Time;
use crate::util::unix_now;

/// Start the registration task of `trunk` (which must have `register` and
/// `proxy`); it ends, unregistering, when `stop` is cancelled.
pub fn spawn(
    stack: SipStack,
    trunk: &TrunkConfig,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let account = trunk.register.clone()?;
    let proxy = trunk.proxy?;
    let name = trunk.name.clone();
    let tcp = trunk.transport == Transport::Tcp;
    Some(tokio::spawn(async move {
        let mut registration =
            stack.outbound_registration(proxy, tcp, &account.username, &account.password);
        let now = || Time::from_unix_secs(unix_now());
        let mut schedule = RegistrationSchedule::new(now(), account.expires_secs);
        loop {
            let wait = schedule.poll_timeout().saturating_duration_since(now());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
            match registration.register(account.expires_secs).await {
                Ok(granted) => {
                    if !schedule.is_registered(now()) {
                        info!(trunk = %name, %proxy, granted, "registered at the carrier");
                    }
                    schedule.on_success(now(), granted);
                }
                Err(code) => {
                    schedule.on_failure(now());
                    warn!(
                        trunk = %name, %proxy, code, failures = schedule.failures(),
                        retry_in = schedule.poll_timeout().saturating_duration_since(now()).as_secs(),
                        "registration at the carrier failed"
                    );
                }
            }
        }
        if schedule.is_registered(now()) {
            match tokio::time::timeout(Duration::from_secs(3), registration.register(0)).await {
                Ok(Ok(_)) => info!(trunk = %name, "unregistered from the carrier"),
                _ => warn!(trunk = %name, "could not unregister from the carrier"),
            }
        }
    }))
}
