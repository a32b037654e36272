//! The composition root of `hotline serve` (issue 13 §5): the one room
//! that imports both `switch` and `api` and wires them. It starts the
//! switch ([`crate::switch::start`]), then the HTTP side on the switch's
//! live handles ([`api`]: the users database, the records store, the
//! `/api/v1` router, the retention job; [`handles`]: the switch's types
//! seen through the API's traits; the listener of
//! [`crate::api::listener`]), and runs the switch until it stops; the HTTP
//! side stops with it ([`crate::switch::Parts::front_stop`]).

pub mod api;
mod handles;
pub mod passwd;

use std::sync::Arc;

use tracing::info;

use crate::config::Config;
use crate::switch::{self, SwitchError};

/// Errors that stop `hotline serve`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The switch could not start, or failed.
    #[error(transparent)]
    Switch(#[from] SwitchError),
    /// The HTTP API could not start.
    #[error("HTTP API: {0}")]
    Api(#[from] api::ApiStartError),
    /// HTTP could not start.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Http {
        /// Address.
        addr: std::net::SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The `[tls]` certificate or key cannot be used for HTTPS.
    #[error("HTTPS: {0}")]
    Tls(#[from] crate::config::tls::TlsError),
}

/// Run `hotline serve` until SIGINT/SIGTERM.
pub async fn run(file: Config) -> Result<(), AppError> {
    let switch = switch::start(file).await?;
    let p = switch.parts().clone();
    let config = &p.config;
    let http = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| AppError::Http {
            addr: config.http.listen,
            source,
        })?;
    // HTTPS with the [tls] certificate when `[http] tls` (validated at load).
    let https = match (&config.tls, config.http.tls) {
        (Some(tls), true) => Some(tls.server_config(&[b"http/1.1"])?),
        _ => None,
    };
    let roster_admin: Arc<dyn crate::api::handles::RosterAdmin> = p.roster_admin.clone();
    let api_state = api::start(
        config,
        p.outbox.clone(),
        p.calls.clone(),
        p.records.clone(),
        crate::api::blocklist::BlockAdmin {
            list: p.blacklist.clone(),
            store: p.store.clone(),
        },
        roster_admin,
    )?;
    api::spawn_retention(config, &api_state, p.front_stop.clone());
    forward_fork_results(&p, &api_state);
    info!(listen = %config.http.listen, https = https.is_some(), "HTTP API listening");
    let view = crate::api::listener::SwitchView {
        counters: p.counters.clone(),
        stack: p.stack.clone(),
        ports: p.ports.clone(),
        registrations: Arc::new(p.registrations.clone()),
        started: p.started,
        ivr: p.ivr.clone(),
        caps: Arc::new(p.call_slots.clone()),
        readiness: Arc::new(handles::NodeReadiness {
            draining: p.draining.clone(),
            store: p.store.clone(),
        }),
        queues: p.queues.clone(),
        outbox: p.outbox.clone(),
        cluster: p.cluster.clone(),
        forecast: Some(crate::api::forecast::Sources {
            records: api_state.records.clone(),
            live: api_state.records_live.clone(),
            queues: p.queues.clone(),
        }),
    };
    tokio::spawn(crate::api::listener::serve(
        http,
        https,
        view,
        crate::api::router(api_state).merge(crate::api::web::router(config.http.web_dir.clone())),
        crate::api::cors::AllowedOrigins::new(&config.http.cors_origins),
        p.front_stop.clone(),
    ));
    drop(p);
    switch.run().await?;
    Ok(())
}

/// Results audio-fork receivers send back (issue 18 §1) reach the agents'
/// live WebSockets as `assist` messages, beside the agents' text messages.
fn forward_fork_results(p: &switch::Parts, api_state: &crate::api::ApiState) {
    let Some(cti) = api_state.cti.as_ref() else {
        return;
    };
    let to = cti.messages.clone();
    let mut from = p.fork_results.subscribe();
    let stop = p.front_stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = from.recv() => match m {
                    Ok(m) => {
                        let _ = to.send(m);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "audio-fork results skipped: the live stream fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.cancelled() => return,
            }
        }
    });
}
