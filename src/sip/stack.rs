//! The SIP stack hotline builds on: `rsipstack` (RFC 3261 parser, UDP/TCP
//! transports with Content-Length framing and CRLF keep-alives, transactions
//! with timers A–M, RFC 3581 rport, dialogs), pinned and wrapped here.
//!
//! The rest of hotline sees only this file's types:
//! - [`SipStack::start`] binds the transports and returns the stream of
//!   out-of-dialog requests ([`Incoming`]) for the switch to decide on;
//! - in-dialog requests (BYE, re-INVITE, INFO, ACK …) are matched to their
//!   dialog here and surface as [`LegEvent`]s on the owning call's
//!   [`LegEvents`]; a request for no known dialog gets 481 (§12.2.2);
//! - [`InboundLeg`] (the UAS side of a carrier call) and [`OutboundLeg`]
//!   (our UAC INVITE to an agent or trunk) are the two halves a B2BUA joins.
//!
//! Legs are keyed by Call-ID ([`LegKey`]): our UAC legs use fresh random
//! Call-IDs, so a key never names two live legs.
//!
//! With a [`DialogJournal`] configured, confirmed legs are written down and
//! the legs a crash left up are restored and sent BYE at the next start
//! (see [`super::recovery`]).

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use rsipstack::dialog::dialog::{Dialog, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip as rsip;
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::flood::FloodPolicy;
pub use super::foreign::{ForeignLeg, OutboundLeg};
use super::gate::{Gate, GatedUdp};
use super::journal::DialogJournal;
use super::leg_events::{self, LegRouter, Registration};
pub use super::leg_events::{
    CallIdInUse, InDialogResponder, LegEnd, LegEvent, LegEventSender, LegEvents, LegKey,
    ReferResponder,
};
use super::linger::AcceptedInvite;
use super::message::{error_status, new_call_id, route_set, to_headers, Request, Responder};
use super::recovery::{self, Journal};
use super::sockets::{idle_listener, tcp_listener, udp_socket};

/// Errors at the SIP room's boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// A transport could not be bound.
    #[error("cannot listen for SIP on {transport} {addr}: {reason}")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// Address.
        addr: SocketAddr,
        /// OS or library reason.
        reason: String,
    },
    /// A message could not be sent.
    #[error("SIP send failed: {0}")]
    Send(String),
    /// A dialog operation failed.
    #[error("SIP dialog error: {0}")]
    Dialog(String),
    /// A URI we built or were given does not parse.
    #[error("invalid SIP URI {0:?}")]
    BadUri(String),
    /// A new INVITE's Call-ID is a live leg's (refused with 482).
    #[error(transparent)]
    CallIdInUse(#[from] CallIdInUse),
}

/// What to bind.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Address of every transport.
    pub listen: SocketAddr,
    /// Open UDP.
    pub udp: bool,
    /// Open TCP.
    pub tcp: bool,
    /// `User-Agent`/`Server` header.
    pub user_agent: String,
    /// Receive/send buffer asked of the kernel for the UDP socket (it caps
    /// the value at `net.core.rmem_max`/`wmem_max`).
    pub udp_buffer_bytes: usize,
    /// Where confirmed legs' dialogs are written so the next start can
    /// close the ones a crash left up; `None` keeps nothing.
    pub journal: Option<Arc<dyn DialogJournal>>,
    /// Per-source flood limits of the ingress gate ([`FloodPolicy::off`]
    /// for none).
    pub flood: FloodPolicy,
    /// TCP connections one address may hold at once.
    pub tcp_max_per_source: usize,
    /// SIP over TLS: where, and with which certificate.
    pub tls: Option<StackTls>,
}

/// SIP over TLS (RFC 3261 §26.2) for [`StackConfig`].
#[derive(Clone)]
pub struct StackTls {
    /// Address of the TLS listener (5061 by custom).
    pub listen: SocketAddr,
    /// The server side of rustls: certificate, key, client verification.
    pub config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for StackTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackTls")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// An out-of-dialog request for the switch to decide on.
pub enum Incoming {
    /// A new call (INVITE without To tag).
    Invite(PendingInvite),
    /// Anything else: REGISTER, OPTIONS, MESSAGE, unknown methods …
    Request(Request, Responder),
}

/// A new INVITE not yet answered: reject it or turn it into an [`InboundLeg`].
pub struct PendingInvite {
    /// The request.
    pub request: Request,
    tx: Transaction,
}

impl PendingInvite {
    /// Reject with a final status, optionally with extra headers. Boxed at
    /// once: rsipstack's reply is a 6 KiB future a call's task would
    /// otherwise carry for its whole life (issue 16, "Memory per call").
    pub fn reject(self, code: u16, headers: Vec<(String, String)>) -> BoxFuture<'static, ()> {
        let responder = Responder { tx: self.tx };
        Box::pin(async move {
            if let Err(e) = responder.reply(code, headers, None).await {
                debug!(error = %e, "reject INVITE");
            }
        })
    }

    /// Create the UAS dialog; its events go to `events`.
    pub fn into_leg(
        self,
        stack: &SipStack,
        events: &LegEventSender,
    ) -> Result<InboundLeg, SipError> {
        let key = LegKey(self.request.call_id());
        let route = match stack.inner.router.register(&key, events) {
            Ok(route) => route,
            Err(in_use) => {
                // RFC 3261 §8.2.2.2: the same Call-ID as a live leg is a
                // merged or looped request as far as routing goes.
                warn!(call_id = %key, "INVITE with a live leg's Call-ID: 482");
                let responder = Responder { tx: self.tx };
                tokio::spawn(async move { responder.reply(482, vec![], None).await.ok() });
                return Err(in_use.into());
            }
        };
        let mut tx = self.tx;
        let dialog = stack
            .inner
            .dialogs
            .get_or_create_server_invite(&tx, events.states.clone(), None, Some(stack.contact()))
            .map_err(|e| SipError::Dialog(e.to_string()))?;
        let mut driver = dialog.clone();
        // The INVITE server transaction lives until ACK/CANCEL/timeout:
        // rsipstack sends 100 Trying, relays our responses and reports the
        // ACK (Confirmed) or the CANCEL (Terminated) as dialog states.
        tokio::spawn(async move {
            if let Err(e) = driver.handle(&mut tx).await {
                debug!(error = %e, "inbound INVITE transaction ended");
            }
        });
        Ok(InboundLeg {
            key,
            _route: route,
            dialog,
            dialogs: stack.inner.dialogs.clone(),
            journal: stack.inner.journal.clone(),
            request: self.request,
        })
    }
}

/// Parameters of an INVITE we send.
#[derive(Debug, Clone)]
pub struct OutboundInvite {
    /// Request-URI, e.g. `sip:1001@127.0.0.21:5060`.
    pub target: String,
    /// Where to send it (registered source address or trunk proxy); `None`
    /// resolves the target URI.
    pub destination: Option<SocketAddr>,
    /// Send over TCP instead of UDP.
    pub tcp: bool,
    /// From user (caller number shown to the callee).
    pub from_user: String,
    /// From display name.
    pub from_display: Option<String>,
    /// SDP offer.
    pub sdp: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Answer a 401/407 challenge with this (user, password).
    pub credential: Option<(String, String)>,
    /// Sent straight to the callee's registered contact, with no proxy
    /// between that could fork it: its transaction ends at the answer
    /// instead of waiting out Timer M for a forked 2xx (`sip::linger`).
    pub direct: bool,
    /// Pre-loaded route (RFC 3261 §8.1.2): the `Path` the callee registered
    /// through (RFC 3327 §5.3), one `Route` each, first hop first; sent to
    /// `destination`, the address that hop's REGISTER came from.
    pub route: Vec<String>,
}

/// Our UAC leg (INVITE sent to an agent or trunk).
pub(super) struct SipOutbound {
    key: LegKey,
    /// Routes its dialog's states to the call (ends with the leg).
    _route: Registration,
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    journal: Option<Arc<Journal>>,
    /// Its INVITE transaction, ended with the leg rather than at Timer M.
    accepted: AcceptedInvite,
}

/// The carrier's leg (we are UAS).
pub struct InboundLeg {
    key: LegKey,
    /// Routes its dialog's states to the call (ends with the leg).
    _route: Registration,
    dialog: InviteDialog,
    dialogs: Arc<DialogLayer>,
    journal: Option<Arc<Journal>>,
    /// The INVITE that opened it.
    pub request: Request,
}

/// What a connected call does with either kind of leg (the B2BUA's two
/// halves may be inbound or outbound: a carrier call, or a callback where
/// hotline dialled both the agent and the citizen).
pub trait Leg: Send + Sync {
    /// The leg's key (its Call-ID).
    fn key(&self) -> &LegKey;
    /// Send a re-INVITE with `sdp`; returns the status and answer body.
    fn reinvite(
        &self,
        sdp: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(u16, Vec<u8>), SipError>> + Send;
    /// Refresh the session (RFC 4028 style) with an UPDATE without body;
    /// returns the status code (408/481 mean the peer is gone).
    fn refresh(&self) -> impl std::future::Future<Output = Result<u16, SipError>> + Send;
    /// Send BYE (confirmed) and forget the dialog.
    fn bye(&self) -> impl std::future::Future<Output = ()> + Send;
    /// Remove the dialog from the stack's table (idempotent).
    fn forget(&self);
    /// A handle that sends this leg's in-dialog requests from another
    /// task (the call never awaits a re-INVITE inline: its outcome comes
    /// back as an event).
    fn requests(&self) -> AnyLegRequests;
}

/// Sends in-dialog requests on a leg from anywhere (`'static`, cheap to
/// clone): a re-INVITE or a session refresh whose outcome the call takes
/// as an event while it goes on handling BYEs, RTP silence and commands.
#[derive(Clone)]
pub struct LegRequests {
    dialog: InviteDialog,
    journal: Option<Arc<Journal>>,
}

/// A leg's request handle, whatever the leg ([`Leg::requests`]).
#[derive(Clone)]
pub enum AnyLegRequests {
    /// A SIP dialog's.
    Sip(LegRequests),
    /// A leg that is not a SIP dialog (a browser's).
    Foreign(Arc<dyn super::foreign::ForeignLeg>),
}

impl AnyLegRequests {
    /// Send a re-offer with `sdp`; the status and answer body.
    pub async fn reinvite(self, sdp: Vec<u8>) -> Result<(u16, Vec<u8>), SipError> {
        match self {
            Self::Sip(r) => r.reinvite(sdp).await,
            Self::Foreign(f) => f.reinvite(sdp).await,
        }
    }

    /// Refresh the session; the status (408/481: the peer is gone).
    pub async fn refresh(self) -> Result<u16, SipError> {
        match self {
            Self::Sip(r) => r.refresh().await,
            Self::Foreign(f) => f.refresh().await,
        }
    }

    /// See [`LegRequests::notify_refer`]; a leg that is not SIP sends no
    /// REFER, so has nothing to be told.
    pub async fn notify_refer(self, code: u16, reason: &str, done: bool) -> Result<u16, SipError> {
        match self {
            Self::Sip(r) => r.notify_refer(code, reason, done).await,
            Self::Foreign(_) => Err(SipError::Dialog("not a SIP leg: no REFER to notify".into())),
        }
    }
}

impl LegRequests {
    /// Send a re-INVITE with `sdp`; the status and answer body.
    pub async fn reinvite(self, sdp: Vec<u8>) -> Result<(u16, Vec<u8>), SipError> {
        let headers = vec![rsip::Header::ContentType("application/sdp".into())];
        let result = self.dialog.reinvite(Some(headers), Some(sdp)).await;
        self.touch();
        match result {
            Ok(Some(resp)) => Ok((resp.status_code.code(), resp.body.clone())),
            Ok(None) => Err(SipError::Dialog("dialog not confirmed".into())),
            Err(e) => Err(SipError::Dialog(e.to_string())),
        }
    }

    /// Refresh the session (RFC 4028 style) with an UPDATE without body;
    /// the status code (408/481 mean the peer is gone).
    pub async fn refresh(self) -> Result<u16, SipError> {
        let result = self.dialog.update(None, None).await;
        self.touch();
        match result {
            Ok(Some(resp)) => Ok(resp.status_code.code()),
            Ok(None) => Err(SipError::Dialog("dialog not confirmed".into())),
            Err(e) => Err(SipError::Dialog(e.to_string())),
        }
    }

    /// Tell the transferor how its REFER went (RFC 3515 §2.4.5): a NOTIFY
    /// of the implicit `refer` subscription whose `message/sipfrag` body
    /// is the status line `code reason`; the last one (`done`) ends the
    /// subscription. The status the phone answered it with.
    pub async fn notify_refer(self, code: u16, reason: &str, done: bool) -> Result<u16, SipError> {
        let state = match done {
            true => "terminated;reason=noresource",
            false => "active;expires=60",
        };
        let headers = vec![
            rsip::Header::Event("refer".into()),
            rsip::Header::SubscriptionState(state.into()),
            rsip::Header::ContentType("message/sipfrag;version=2.0".into()),
        ];
        let body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        let result = self.dialog.notify(Some(headers), Some(body)).await;
        self.touch();
        match result {
            Ok(Some(resp)) => Ok(resp.status_code.code()),
            Ok(None) => Err(SipError::Dialog("dialog not confirmed".into())),
            Err(e) => Err(SipError::Dialog(e.to_string())),
        }
    }

    /// Our request moved the CSeq (and a 2xx may have moved the remote
    /// target): the journal rewrites the leg if it matters.
    fn touch(&self) {
        if let Some(journal) = &self.journal {
            journal.touch(&self.dialog);
        }
    }
}

macro_rules! common_leg_ops {
    ($t:ty $(, $accepted:ident)?) => {
        impl Leg for $t {
            fn key(&self) -> &LegKey {
                &self.key
            }

            async fn reinvite(&self, sdp: Vec<u8>) -> Result<(u16, Vec<u8>), SipError> {
                Leg::requests(self).reinvite(sdp).await
            }

            async fn refresh(&self) -> Result<u16, SipError> {
                Leg::requests(self).refresh().await
            }

            fn requests(&self) -> AnyLegRequests {
                AnyLegRequests::Sip(LegRequests {
                    dialog: self.dialog.clone(),
                    journal: self.journal.clone(),
                })
            }

            async fn bye(&self) {
                if let Err(e) = self.dialog.bye().await {
                    debug!(leg = %self.key, error = %e, "BYE");
                }
                self.forget();
            }

            fn forget(&self) {
                $(self.$accepted.leg_ended();)?
                let id = self.dialog.id();
                self.dialogs.remove_dialog(&id);
                if let Some(journal) = &self.journal {
                    journal.ended(&id);
                }
            }
        }

        impl Drop for $t {
            fn drop(&mut self) {
                self.forget();
            }
        }
    };
}

common_leg_ops!(InboundLeg);
common_leg_ops!(SipOutbound, accepted);

impl InboundLeg {
    /// Send 180 Ringing, or 183 Session Progress when `sdp` is given.
    pub fn progress(&self, sdp: Option<Vec<u8>>) {
        let headers = sdp
            .as_ref()
            .map(|_| vec![rsip::Header::ContentType("application/sdp".into())]);
        if let Err(e) = self.dialog.ringing(headers, sdp) {
            debug!(leg = %self.key, error = %e, "provisional response");
        }
    }

    /// Answer with 200 OK and our SDP.
    pub fn answer(&self, sdp: Vec<u8>) -> Result<(), SipError> {
        let headers = vec![rsip::Header::ContentType("application/sdp".into())];
        self.dialog
            .accept(Some(headers), Some(sdp))
            .map_err(|e| SipError::Dialog(e.to_string()))
    }

    /// Reject with a final status (before answer).
    pub fn reject(&self, code: u16) {
        if let Err(e) = self.dialog.reject(Some(rsip::StatusCode::from(code)), None) {
            debug!(leg = %self.key, error = %e, "reject");
        }
    }

    /// End the leg whatever its state: reject if unanswered, BYE otherwise.
    pub async fn hang_up(&self, code_if_unanswered: u16) {
        if self.dialog.state().is_confirmed() {
            self.bye().await;
        } else {
            self.reject(code_if_unanswered);
            self.forget();
        }
    }
}

impl SipOutbound {
    /// Cancel while ringing, or BYE once answered.
    pub(super) async fn hang_up(&self) {
        if let Err(e) = self.dialog.hangup().await {
            debug!(leg = %self.key, error = %e, "hang up");
        }
        self.forget();
    }
}

/// Our registration at a carrier; keeps Call-ID and CSeq across refreshes.
pub struct OutboundRegistration {
    registration: rsipstack::dialog::registration::Registration,
    target: String,
}

impl OutboundRegistration {
    /// Send REGISTER asking for `expires` seconds (0 unregisters). Returns
    /// the lifetime the registrar granted, or the final error status.
    pub async fn register(&mut self, expires: u32) -> Result<u32, u16> {
        let server = rsip::Uri::try_from(self.target.as_str()).map_err(|_| 400u16)?;
        match self.registration.register(server, Some(expires)).await {
            Ok(resp) if resp.status_code.kind() == rsip::StatusCodeKind::Successful => {
                Ok(self.registration.expires())
            }
            Ok(resp) => Err(resp.status_code.code()),
            Err(e) => {
                debug!(error = %e, target = %self.target, "REGISTER to carrier failed");
                Err(error_status(&e))
            }
        }
    }
}

pub(super) struct Inner {
    pub(super) endpoint: rsipstack::transaction::Endpoint,
    pub(super) dialogs: Arc<DialogLayer>,
    journal: Option<Arc<Journal>>,
    /// Every dialog's states, routed to the calls by Call-ID.
    pub(super) router: Arc<LegRouter>,
    /// The sender every dialog reports its states on.
    states: DialogStateSender,
    local: SocketAddr,
    pub(super) cancel: CancellationToken,
    /// Peers connected over TLS: a stream INVITE to one goes over its TLS
    /// connection (the one it registered on), not plain TCP.
    pub(super) tls_peers: super::tcp_ingress::TlsPeers,
    /// Trunks' proxies reached only over TLS (`tls_client`).
    pub(super) tls_only: Arc<dashmap::DashSet<SocketAddr>>,
}

/// The SIP stack: transports, transaction layer, dialog table.
#[derive(Clone)]
pub struct SipStack {
    pub(super) inner: Arc<Inner>,
    pub(super) gate: Arc<Gate>,
}

/// Capacity of the queue of out-of-dialog requests to the switch; beyond it
/// new requests get 503 (overload, RFC 3261 §21.5.4) instead of piling up.
const INCOMING_QUEUE: usize = 4096;

impl SipStack {
    /// Bind the transports and start serving.
    pub async fn start(cfg: &StackConfig) -> Result<(Self, mpsc::Receiver<Incoming>), SipError> {
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.child_token());
        let gate = Arc::new(Gate::new(cfg.flood.clone(), &cfg.user_agent));
        if cfg.udp {
            let bind_error = |reason: String| SipError::Bind {
                transport: "UDP",
                addr: cfg.listen,
                reason,
            };
            let socket = udp_socket(cfg.listen, cfg.udp_buffer_bytes)
                .map_err(|e| bind_error(e.to_string()))?;
            let gated = Arc::new(GatedUdp::new(socket, gate.clone()));
            let udp = UdpConnection::from_socket(gated, None, Some(cancel.child_token()))
                .await
                .map_err(|e| bind_error(e.to_string()))?;
            transport.add_transport(udp.into());
        }
        let tcp = if cfg.tcp {
            let listener = tcp_listener(cfg.listen).map_err(|e| SipError::Bind {
                transport: "TCP",
                addr: cfg.listen,
                reason: e.to_string(),
            })?;
            if !cfg.udp {
                // Our own Via and Contact name a listener: with no UDP
                // socket, an idle channel stands in for the TCP one.
                transport.add_transport(idle_listener(cfg.listen, rsip::Transport::Tcp).await?);
            }
            Some(listener)
        } else {
            None
        };
        let tls = match &cfg.tls {
            None => None,
            Some(tls) => {
                let listener = tcp_listener(tls.listen).map_err(|e| SipError::Bind {
                    transport: "TLS",
                    addr: tls.listen,
                    reason: e.to_string(),
                })?;
                // Names our TLS address in the Via and Contact of requests
                // sent over TLS.
                transport.add_transport(idle_listener(tls.listen, rsip::Transport::Tls).await?);
                Some((
                    listener,
                    tokio_rustls::TlsAcceptor::from(tls.config.clone()),
                ))
            }
        };
        let option = EndpointOption {
            ..Default::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport)
            .with_user_agent(&cfg.user_agent)
            .with_option(option)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Dialog(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        // Legs the last run left up go back into the table before the first
        // request is dispatched: a BYE for one is matched, not refused.
        let restored = cfg
            .journal
            .as_ref()
            .map(|sink| (recovery::restore(sink, &dialogs), sink.clone()));
        let journal = cfg
            .journal
            .as_ref()
            .map(|sink| Arc::new(Journal::new(sink.clone(), dialogs.clone())));
        let (router, states) = LegRouter::start(&dialogs, journal.clone());
        let inner = Arc::new(Inner {
            endpoint,
            dialogs,
            journal,
            router,
            states,
            local: cfg.listen,
            cancel,
            tls_peers: Default::default(),
            tls_only: Default::default(),
        });
        let serve = inner.endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serve.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        let streams = tcp
            .map(|l| (l, None))
            .into_iter()
            .chain(tls.map(|(l, acceptor)| (l, Some(acceptor))));
        for (listener, acceptor) in streams {
            tokio::spawn(super::tcp_ingress::serve(
                listener,
                acceptor,
                inner.tls_peers.clone(),
                gate.clone(),
                inner.endpoint.inner.clone(),
                cfg.tcp_max_per_source,
                inner.cancel.child_token(),
            ));
        }
        let (to_switch, from_stack) = mpsc::channel(INCOMING_QUEUE);
        let stack = SipStack { inner, gate };
        tokio::spawn(dispatch(stack.clone(), incoming, to_switch));
        if let Some((restored, sink)) = restored {
            tokio::spawn(recovery::close_all(
                restored,
                sink,
                stack.inner.dialogs.clone(),
            ));
        }
        info!(listen = %cfg.listen, udp = cfg.udp, tcp = cfg.tcp, tls = ?cfg.tls.as_ref().map(|t| t.listen), "SIP stack listening");
        Ok((stack, from_stack))
    }

    /// Our Contact URI.
    pub fn contact(&self) -> rsip::Uri {
        rsip::Uri {
            scheme: Some(rsip::Scheme::Sip),
            auth: None,
            host_with_port: self.inner.local.into(),
            params: vec![],
            headers: vec![],
        }
    }

    /// The listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// A new event channel for one call.
    pub fn leg_channel(&self) -> (LegEventSender, LegEvents) {
        leg_events::channel(self.inner.states.clone())
    }

    /// Send an INVITE; progress and the final response arrive on `events`.
    pub fn invite(
        &self,
        inv: OutboundInvite,
        events: &LegEventSender,
    ) -> Result<OutboundLeg, SipError> {
        let callee = rsip::Uri::try_from(inv.target.as_str())
            .map_err(|_| SipError::BadUri(inv.target.clone()))?;
        let caller_text = format!("sip:{}@{}", inv.from_user, self.inner.local);
        let caller = rsip::Uri::try_from(caller_text.as_str())
            .map_err(|_| SipError::BadUri(caller_text.clone()))?;
        let over_tls =
            |dest: &Option<SocketAddr>| dest.is_some_and(|d| self.inner.tls_peers.contains_key(&d));
        if let Some(d) = inv.destination.filter(|d| self.inner.tls_only.contains(d)) {
            if !over_tls(&inv.destination) {
                return Err(SipError::Send(format!(
                    "no TLS connection to the trunk at {d} (never sent in the clear)"
                )));
            }
        }
        let transport = if inv.tcp && over_tls(&inv.destination) {
            rsip::Transport::Tls
        } else if inv.tcp {
            rsip::Transport::Tcp
        } else {
            rsip::Transport::Udp
        };
        let call_id = new_call_id();
        let key = LegKey(call_id.clone());
        let route = self.inner.router.register(&key, events)?;
        let option = InviteOption {
            caller_display_name: inv.from_display.clone(),
            caller,
            callee,
            destination: inv.destination.map(|a| SipAddr::new(transport, a.into())),
            content_type: Some("application/sdp".into()),
            offer: Some(inv.sdp),
            contact: self.contact(),
            // RFC 3261 §20.5: what the peer may send us in the dialog
            // (a desk phone offers its transfer key when REFER is allowed).
            headers: Some(to_headers(
                inv.headers
                    .into_iter()
                    .chain([("Allow".to_string(), super::admit::ALLOW.to_string())])
                    .collect(),
            )),
            call_id: Some(call_id.clone()),
            route_set: route_set(&inv.route)?,
            credential: inv.credential.map(|(username, password)| {
                rsipstack::dialog::authenticate::Credential {
                    username,
                    password,
                    realm: None,
                    ..Default::default()
                }
            }),
            ..Default::default()
        };
        let (dialog, outcome) = self
            .inner
            .dialogs
            .do_invite_async(option, events.states.clone())
            .map_err(|e| SipError::Dialog(e.to_string()))?;
        let finals = events.route.clone();
        let k = key.clone();
        let accepted = AcceptedInvite::new(self.inner.dialogs.endpoint.clone(), inv.direct);
        let (answered, invite) = (accepted.clone(), dialog.clone());
        tokio::spawn(async move {
            let event = match outcome.await {
                Ok(Ok((_, Some(resp)))) => LegEvent::Final {
                    code: resp.status_code.code(),
                    sdp: (!resp.body.is_empty()).then(|| resp.body.clone()),
                },
                Ok(Ok((_, None))) => LegEvent::Final {
                    code: 408,
                    sdp: None,
                },
                Ok(Err(e)) => {
                    debug!(leg = %k, error = %e, "INVITE failed");
                    LegEvent::Final {
                        code: error_status(&e),
                        sdp: None,
                    }
                }
                Err(_) => LegEvent::Final {
                    code: 500,
                    sdp: None,
                },
            };
            if let LegEvent::Final { code, .. } = &event {
                answered.on_final(*code, || invite.initial_request());
            }
            finals.send(Box::new((k, event))).ok();
        });
        Ok(OutboundLeg::sip(SipOutbound {
            key,
            _route: route,
            dialog,
            dialogs: self.inner.dialogs.clone(),
            journal: self.inner.journal.clone(),
            accepted,
        }))
    }

    /// A client registration to a carrier's registrar (RFC 3261 §10.2),
    /// answering digest challenges with `username`/`password`.
    pub fn outbound_registration(
        &self,
        registrar: SocketAddr,
        tcp: bool,
        username: &str,
        password: &str,
    ) -> OutboundRegistration {
        let credential = rsipstack::dialog::authenticate::Credential {
            username: username.to_string(),
            password: password.to_string(),
            realm: None,
            auth_username: None,
        };
        let target = if tcp {
            format!("sip:{registrar};transport=tcp")
        } else {
            format!("sip:{registrar}")
        };
        OutboundRegistration {
            registration: rsipstack::dialog::registration::Registration::new(
                self.inner.endpoint.inner.clone(),
                Some(credential),
            ),
            target,
        }
    }

    /// What the ingress gate has refused, dropped and banned.
    pub fn gate_counts(&self) -> super::gate::GateCounts {
        self.gate.counts()
    }

    /// Dialogs in the stack's table (for leak checks).
    pub fn dialog_count(&self) -> usize {
        self.inner.dialogs.len()
    }

    /// Legs whose dialog states are routed to a call (for leak checks: a
    /// leg's route ends when the leg is dropped).
    pub fn routed_leg_count(&self) -> usize {
        self.inner.router.len()
    }

    /// Live transactions (for leak checks).
    pub fn transaction_count(&self) -> usize {
        self.inner
            .endpoint
            .inner
            .get_running_transactions()
            .map(|t| t.len())
            .unwrap_or(0)
    }

    /// Close the legs a dead node anchored (docs/ha.md §4): put them in the
    /// dialog table (so the peers' own BYEs are answered 200) and send each
    /// a BYE from its saved state, in the background; each is logged once
    /// and removed from the store when done. Without a journal, nothing.
    pub fn close_legs_of(&self, node: &str, legs: Vec<crate::sip::journal::SavedDialog>) {
        let Some(journal) = &self.inner.journal else {
            return;
        };
        let sink = journal.sink().clone();
        let restored = recovery::restore_legs(
            legs,
            recovery::Orphans::DeadNode(node.to_string()),
            &sink,
            &self.inner.dialogs,
        );
        tokio::spawn(recovery::close_all(
            restored,
            sink,
            self.inner.dialogs.clone(),
        ));
    }

    /// Wait until the dialog journal has written everything so far (at
    /// shutdown, after the calls ended: their legs are removed). Blocking.
    pub fn flush_journal(&self) {
        if let Some(journal) = &self.inner.journal {
            journal.flush();
        }
    }

    /// Stop the transports.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }
}

/// Route every new server transaction: in-dialog requests to their dialog,
/// the rest to the switch.
async fn dispatch(
    stack: SipStack,
    mut incoming: rsipstack::transaction::TransactionReceiver,
    to_switch: mpsc::Sender<Incoming>,
) {
    while let Some(mut tx) = incoming.recv().await {
        let request = Request::new(tx.original.clone(), stack.inner.local);
        let method = tx.original.method;
        if let Some((code, defect)) = request.defect() {
            if method != rsip::Method::Ack {
                info!(source = %request.source(), %method, %defect, code, "malformed request refused");
                let headers = to_headers(vec![super::message::warning(&defect)]);
                tx.reply_with(rsip::StatusCode::from(code), headers, None)
                    .await
                    .ok();
            }
            continue;
        }
        if request.has_to_tag() {
            match stack.inner.dialogs.match_dialog(&tx) {
                Some(Dialog::Invite(mut dialog)) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request");
                        }
                    });
                }
                // A phone refreshing or ending its BLF subscription.
                Some(Dialog::ServerSubscription(mut dialog)) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog SUBSCRIBE");
                        }
                    });
                }
                Some(_) | None => {
                    if method != rsip::Method::Ack {
                        debug!(%method, call_id = %request.call_id(), "no dialog: 481");
                        tx.reply(rsip::StatusCode::CallTransactionDoesNotExist)
                            .await
                            .ok();
                    }
                }
            }
            continue;
        }
        let item = match method {
            rsip::Method::Ack => continue, // stray ACK: nothing to do (§17.2.3)
            rsip::Method::Cancel => {
                // A CANCEL matching a live INVITE is consumed by that
                // transaction; one that reaches us matches nothing (§9.2).
                tx.reply(rsip::StatusCode::CallTransactionDoesNotExist)
                    .await
                    .ok();
                continue;
            }
            rsip::Method::Invite => Incoming::Invite(PendingInvite { request, tx }),
            _ => Incoming::Request(request, Responder { tx }),
        };
        if let Err(mpsc::error::TrySendError::Full(item)) = to_switch.try_send(item) {
            warn!("switch is overloaded: 503 to a new request");
            let responder = match item {
                Incoming::Invite(p) => Responder { tx: p.tx },
                Incoming::Request(_, r) => r,
            };
            responder
                .reply(503, vec![("Retry-After".into(), "5".into())], None)
                .await
                .ok();
        }
    }
}
