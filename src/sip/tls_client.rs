//! SIP over TLS *to* a trunk (RFC 3261 §26.2, RFC 5630; issue 14 §4): one
//! persistent TLS connection per trunk whose `transport = "tls"`, opened at
//! start and reopened with back-off whenever it closes, as carriers' SBCs
//! expect of a peer (and as a phone keeps the connection it registered
//! on). Requests to the trunk travel on it; what the carrier sends back on
//! it is framed and gated like any inbound TLS connection
//! (`tcp_ingress::Link`).
//!
//! The handshake names the trunk's `tls_server_name` (SNI, and the name
//! its certificate must carry; default: the proxy's address) and checks the
//! certificate against the trunk's `tls_ca_file` or the system's roots; with
//! a `[tls]` certificate hotline presents it as its client certificate
//! (mutual TLS). A trunk marked TLS is never sent a request in the clear:
//! while its connection is down, requests to it fail at once and the call
//! moves to the trunk's backup.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip as rsip;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::gate::Gate;
use super::tcp_ingress::{Link, TlsPeers, HANDSHAKE};

/// A TCP connect to the trunk gives up after this.
const CONNECT: Duration = Duration::from_secs(5);
/// First wait before reconnecting; doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One trunk's TLS connection: where, under which name, with what.
pub struct TrunkTls {
    /// The trunk's name (for the log).
    pub trunk: String,
    /// Its proxy.
    pub dest: SocketAddr,
    /// SNI and the name its certificate must carry.
    pub server_name: ServerName<'static>,
    /// Roots (and our client certificate).
    pub config: Arc<rustls::ClientConfig>,
}

/// Keep `tls`'s connection open until `cancel`.
pub(crate) async fn keep(
    tls: TrunkTls,
    tls_peers: TlsPeers,
    gate: Arc<Gate>,
    endpoint: EndpointInnerRef,
    cancel: CancellationToken,
) {
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0u32;
    loop {
        let attempt = async {
            let tcp = tokio::time::timeout(CONNECT, TcpStream::connect(tls.dest))
                .await
                .map_err(|_| "TCP connect timed out".to_string())?
                .map_err(|e| format!("TCP connect: {e}"))?;
            tcp.set_nodelay(true).ok();
            tokio::time::timeout(HANDSHAKE, connector.connect(tls.server_name.clone(), tcp))
                .await
                .map_err(|_| "TLS handshake timed out".to_string())?
                .map_err(|e| format!("TLS handshake: {e}"))
        };
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            r = attempt => r,
        };
        match outcome {
            Ok(stream) => {
                info!(trunk = %tls.trunk, dest = %tls.dest, "SIP over TLS to the trunk: connected");
                failures = 0;
                backoff = FIRST_BACKOFF;
                *tls_peers.entry(tls.dest).or_insert(0) += 1;
                let link = Link {
                    remote: tls.dest,
                    gate: gate.clone(),
                    endpoint: endpoint.clone(),
                    cancel: cancel.child_token(),
                };
                link.run(stream, rsip::Transport::Tls).await;
                tls_peers.remove_if_mut(&tls.dest, |_, n| {
                    *n -= 1;
                    *n == 0
                });
                if cancel.is_cancelled() {
                    return;
                }
                warn!(trunk = %tls.trunk, dest = %tls.dest, "SIP over TLS to the trunk: connection closed; reconnecting");
            }
            Err(reason) => {
                failures += 1;
                if failures == 1 {
                    warn!(trunk = %tls.trunk, dest = %tls.dest, %reason, "SIP over TLS to the trunk failed; retrying with back-off (requests to it fail meanwhile)");
                } else {
                    debug!(trunk = %tls.trunk, dest = %tls.dest, %reason, failures, "SIP over TLS to the trunk failed again");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl super::stack::SipStack {
    /// Keep a TLS connection to `tls.dest` open for as long as the stack
    /// runs, and never send to that address in the clear: requests to it
    /// go over this connection or fail.
    pub fn keep_trunk_tls(&self, tls: TrunkTls) {
        self.inner.tls_only.insert(tls.dest);
        tokio::spawn(keep(
            tls,
            self.inner.tls_peers.clone(),
            self.gate.clone(),
            self.inner.endpoint.inner.clone(),
            self.inner.cancel.child_token(),
        ));
    }
}
