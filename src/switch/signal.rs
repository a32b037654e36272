//! The signals `hotline serve` acts on: SIGINT or SIGTERM stop it
//! (draining calls), SIGHUP reloads the configuration file (as
//! `POST /api/v1/admin/reload` does).
//!
//! The handlers are installed when [`StopSignal::install`] is called, at
//! the very start of the switch, not when the main loop first polls them:
//! a supervisor (systemd, a test harness) may send SIGTERM as soon as the
//! API answers, and a signal that arrives before a handler exists would
//! kill the process with the default action instead of the clean drain.

use std::io;

/// Installed SIGINT/SIGTERM handlers.
pub struct StopSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Install the handlers now. Must run inside the tokio runtime.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolve at the first SIGINT or SIGTERM received since `install`.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok();
        }
    }
}

/// The installed SIGHUP handler (reload).
pub struct ReloadSignal {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl ReloadSignal {
    /// Install the handler now. Must run inside the tokio runtime.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolve at the next SIGHUP (never where there is none).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.hangup.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            std::future::pending::<()>().await;
        }
    }
}
