//! REGISTER handling for agents (RFC 3261 §10.3 with RFC 7616/8760 digest):
//! the shell around the pure [`Registrar`], [`DigestServer`],
//! [`DigestPolicy`] (one challenge per request by default, its algorithm
//! chosen per agent), [`FailureThrottle`] (per address) and [`UserLockout`]
//! (per user name, issue 14 §5) cores. It parses the request, authenticates it,
//! applies it, answers, and persists the change to SQLite so bindings
//! survive a restart. Also the call room's [`Directory`] of live contacts.
//!
//! A REGISTER is decided in memory where it arrives ([`Registrations::begin`],
//! in the switch's dispatch loop, in arrival order); its write goes to the
//! [`BindingWriter`] thread and the answer waits for it in a task of its
//! own ([`Registering::answer`]), so no INVITE waits behind SQLite.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tracing::{debug, info, warn};

use crate::call::{Contact, Directory};
use crate::config::{AgentConfig, Config};
use crate::sip::auth::{parse_digest, DigestAlgorithm, DigestServer, Secret, Verdict};
use crate::sip::digest_policy::{ChallengeMode, DigestAccount, DigestPolicy};
use crate::sip::message::warning;
use crate::sip::message::Contacts;
use crate::sip::registrar::{
    ContactSpec, FailureThrottle, RegisterOutcome, RegisterRequest, Registrar, RegistrarPolicy,
};
use crate::sip::user_lockout::{LockedOut, UserLockout};
use crate::sip::{Request, Responder};
use crate::store::Store;
use crate::time::Time;
use crate::util::unix_now;

use super::binding_writer::{BindingStore, BindingWriter, Written};

/// Which challenge a request gets (RFC 3261 §22.1, §22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// 401 with WWW-Authenticate (REGISTER: we are the registrar).
    Www,
    /// 407 with Proxy-Authenticate (INVITE and other requests we route).
    Proxy,
}

/// The outcome of [`Registrations::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// The agent (SIP user) proved who they are.
    Agent(String),
    /// Answer with this status and these headers (challenge or 403).
    Refused {
        /// 401, 407, 403 (a blocked address) or 503 (a locked-out user).
        code: u16,
        /// Challenge headers.
        headers: Vec<(String, String)>,
    },
}

struct State {
    registrar: Registrar,
    digest: DigestServer,
    policy: DigestPolicy,
    throttle: FailureThrottle,
    lockout: UserLockout,
    /// Counts this node's own changes to the bindings ...
    local_seq: u64,
    /// ... and the count at each AOR's last one: a reload from the shared
    /// store started before it is older than what this node holds.
    changed_at: HashMap<String, u64>,
}

impl State {
    /// The registrar's changes to persist, noted as this node's own.
    fn take_local_changes(&mut self) -> Vec<crate::sip::registrar::BindingChange> {
        use crate::sip::registrar::BindingChange;
        let changes = self.registrar.take_changes();
        for c in &changes {
            let aor = match c {
                BindingChange::Upserted(b) => &b.aor,
                BindingChange::Removed { aor, .. } => aor,
            };
            self.local_seq += 1;
            self.changed_at.insert(aor.clone(), self.local_seq);
        }
        changes
    }
}

/// Agents' registrations: REGISTER in, bindings out.
#[derive(Clone)]
pub struct Registrations {
    state: Arc<Mutex<State>>,
    secrets: Arc<std::sync::RwLock<Arc<HashMap<String, DigestAccount>>>>,
    writer: BindingWriter,
    presence: Arc<Mutex<Option<PresenceHook>>>,
    lockouts: Arc<Mutex<Option<LockoutHook>>>,
    /// Trusted proxies (the trunks' source networks: the SIP edge is one):
    /// a REGISTER they relay names the phone's own address in its `Path`.
    proxies: Arc<Vec<ipnet::IpNet>>,
}

/// Called once when a user name is locked out ([`UserLockout`]), with the
/// address of the failure that locked it: the switch audits it.
pub type LockoutHook = Box<dyn Fn(&LockedOut, std::net::IpAddr) + Send + Sync>;

/// Failures for one user name are counted over this window.
const USER_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Called with `(agent SIP user, registered)` when an agent's first
/// binding appears (`true`) or its last one goes (`false`): the switch uses
/// it for auto-login. The future it may return resolves once the
/// consequence is kept (the ACD's state on disk); the REGISTER is answered
/// after it, so a phone told "registered" never meets a restart that
/// forgot its agent signed in.
pub type PresenceHook = Box<dyn Fn(&str, bool) -> Option<PresenceKept> + Send + Sync>;

/// Resolves once what a presence change caused is kept.
pub type PresenceKept = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Registrations {
    /// Build from config and restore persisted bindings.
    pub fn new(config: &Config, store: Store) -> Result<Self, crate::store::StoreError> {
        let keeper: Arc<dyn BindingStore> = Arc::new(store.clone());
        Self::with_binding_store(config, store, keeper)
    }

    /// [`Registrations::new`] with the changes after the start kept by
    /// `keeper` (a test's may be slow) instead of `store`.
    pub fn with_binding_store(
        config: &Config,
        store: Store,
        keeper: Arc<dyn BindingStore>,
    ) -> Result<Self, crate::store::StoreError> {
        let r = &config.registrar;
        let mut registrar = Registrar::new(RegistrarPolicy {
            min_expires: r.min_expires,
            max_expires: r.max_expires,
            default_expires: r.default_expires,
            max_contacts_per_aor: 10,
        });
        let now = Time::from_unix_secs(unix_now());
        registrar.restore(now, store.load_bindings()?);
        store.apply(&registrar.take_changes())?;
        let restored = registrar.all().len();
        if restored > 0 {
            info!(bindings = restored, "restored agent registrations");
        }
        let key_bytes = store.meta_or_insert("digest_nonce_key", || {
            let k: [u8; 32] = rand::random();
            k.to_vec()
        })?;
        let mut key = [0u8; 32];
        for (d, s) in key.iter_mut().zip(key_bytes.iter()) {
            *d = *s;
        }
        let secrets = secrets_of(&config.agents);
        let policy = DigestPolicy::new(
            ChallengeMode::parse(&r.digest_challenge).unwrap_or(ChallengeMode::Single),
            r.digest_algorithms
                .iter()
                .filter_map(|a| DigestAlgorithm::parse(a).ok())
                .collect(),
        );
        Ok(Self {
            state: Arc::new(Mutex::new(State {
                registrar,
                digest: DigestServer::new(&config.sip.realm, key, r.nonce_ttl_secs)
                    .with_algorithms(policy.algorithms().to_vec()),
                policy,
                throttle: FailureThrottle::new(r.auth_failures_before_block, 60, r.auth_block_secs),
                lockout: UserLockout::new(
                    r.user_failures_before_lockout,
                    USER_FAILURE_WINDOW,
                    std::time::Duration::from_secs(r.user_lockout_secs),
                ),
                local_seq: 0,
                changed_at: HashMap::new(),
            })),
            secrets: Arc::new(std::sync::RwLock::new(Arc::new(secrets))),
            writer: BindingWriter::start(keeper),
            presence: Arc::new(Mutex::new(None)),
            lockouts: Arc::new(Mutex::new(None)),
            proxies: Arc::new(
                config
                    .trunks
                    .iter()
                    .flat_map(|t| t.inbound_cidrs.iter().copied())
                    .collect(),
            ),
        })
    }

    /// The address a request is from, for the per-address throttle: the
    /// phone's own, as a trusted proxy (the edge) wrote it in the `Path`
    /// of a REGISTER or stamped it on the phone's `Via` of an INVITE, so
    /// one phone's failures behind the edge do not block every phone
    /// behind it; else the request's source.
    fn client_ip(&self, req: &Request) -> IpAddr {
        let source = req.source().ip();
        if self.proxies.iter().any(|n| n.contains(&source)) {
            if let Some(phone) = req.path_received().or_else(|| req.proxied_client()) {
                return phone.ip();
            }
        }
        source
    }

    fn secrets(&self) -> Arc<HashMap<String, DigestAccount>> {
        match self.secrets.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The agents' accounts changed (admin API, config reload): new
    /// credentials apply to the next request, and the phones of deleted
    /// agents lose their registrations.
    pub async fn set_agents(&self, agents: &[AgentConfig]) {
        let next = Arc::new(secrets_of(agents));
        let gone_users: Vec<String> = self
            .secrets()
            .keys()
            .filter(|u| !next.contains_key(*u))
            .cloned()
            .collect();
        match self.secrets.write() {
            Ok(mut s) => *s = next,
            Err(p) => *p.into_inner() = next,
        }
        let mut unregistered = Vec::new();
        let changes = {
            let mut s = self.lock();
            for user in &gone_users {
                if !s.registrar.remove_aor(user).is_empty() {
                    info!(agent = %user, "agent deleted: registrations removed");
                    unregistered.push(user.clone());
                }
            }
            s.take_local_changes()
        };
        for user in unregistered {
            drop(self.tell_presence(&user, false));
        }
        self.persist(changes).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// Be told when agents come and go (first binding / last binding).
    pub fn on_presence(&self, hook: PresenceHook) {
        if let Ok(mut p) = self.presence.lock() {
            *p = Some(hook);
        }
    }

    /// Be told once per lockout of a user name.
    pub fn on_lockout(&self, hook: LockoutHook) {
        if let Ok(mut l) = self.lockouts.lock() {
            *l = Some(hook);
        }
    }

    fn tell_presence(&self, user: &str, registered: bool) -> Option<PresenceKept> {
        let p = self.presence.lock().ok()?;
        p.as_ref().and_then(|hook| hook(user, registered))
    }

    /// The SIP users with at least one live binding now.
    pub fn registered_users(&self) -> std::collections::HashSet<String> {
        let now = Time::from_unix_secs(unix_now());
        let s = self.lock();
        s.registrar
            .all()
            .into_iter()
            .filter(|b| b.expires_at > now)
            .map(|b| b.aor)
            .collect()
    }

    /// User names locked out now ([`UserLockout`]).
    pub fn locked_out_users(&self) -> usize {
        self.lock()
            .lockout
            .locked_count(Time::from_unix_secs(unix_now()))
    }

    /// Where this node's own changes stand, and once every one made so far
    /// is in the store: take it before reloading from the shared store,
    /// and hand it to [`Self::adopt`], which then keeps what this node
    /// changed since (newer than the reload).
    pub async fn settled_mark(&self) -> u64 {
        let mark = self.lock().local_seq;
        self.writer.flush().wait().await;
        mark
    }

    /// Another node changed `aor`'s bindings in the shared store
    /// (docs/ha.md §1): this node's table takes them as stored (read after
    /// `mark`, [`Self::settled_mark`]), so it rings the agent's phones
    /// wherever they registered (through their `Path`); unless this node
    /// changed them itself since `mark`, which is newer. The ACD's sign-in
    /// is not touched: it follows the node that took the REGISTER.
    pub fn adopt(&self, mark: u64, aor: &str, bindings: Vec<crate::sip::registrar::Binding>) {
        let now = Time::from_unix_secs(unix_now());
        let mut s = self.lock();
        if s.changed_at.get(aor).is_some_and(|&at| at > mark) {
            debug!(agent = %aor, "registration changed here since the reload began: kept");
            return;
        }
        let (before, after) = s.registrar.replace_aor(now, aor, bindings);
        drop(s);
        if before != after {
            info!(agent = %aor, registered = after, "registration changed on another node");
        } else {
            debug!(agent = %aor, "registration refreshed on another node");
        }
    }

    /// Take every stored binding (read after `mark`), after changes may
    /// have been missed.
    pub fn adopt_all(&self, mark: u64, bindings: Vec<crate::sip::registrar::Binding>) {
        let mut by_aor: HashMap<String, Vec<crate::sip::registrar::Binding>> = HashMap::new();
        for b in self.lock().registrar.all() {
            by_aor.entry(b.aor).or_default();
        }
        for b in bindings {
            by_aor.entry(b.aor.clone()).or_default().push(b);
        }
        for (aor, list) in by_aor {
            self.adopt(mark, &aor, list);
        }
    }

    /// Number of live bindings.
    pub fn count(&self) -> usize {
        self.lock().registrar.all().len()
    }

    /// Expire bindings, nonces and throttle entries; persist removals.
    pub async fn housekeeping(&self) {
        let now = Time::from_unix_secs(unix_now());
        let mut gone = Vec::new();
        let changes = {
            let mut s = self.lock();
            for b in s.registrar.expire(now) {
                info!(agent = %b.aor, contact = %b.contact, "registration expired");
                if s.registrar.lookup(now, &b.aor).is_empty() {
                    gone.push(b.aor);
                }
            }
            s.digest.expire(now);
            s.throttle.expire(now);
            s.lockout.expire(now);
            s.take_local_changes()
        };
        for user in gone {
            drop(self.tell_presence(&user, false));
        }
        self.persist(changes).await;
    }

    async fn persist(&self, changes: Vec<crate::sip::registrar::BindingChange>) {
        self.writer.write(changes).wait().await;
    }

    /// Authenticate a request from an agent's phone with digest
    /// (RFC 3261 §22): 401/407 challenges, stale nonces, the per-address
    /// throttle, the per-user lockout (503 with `Retry-After` while it
    /// lasts, before the credentials are checked). One challenge per
    /// request by default, in the algorithm chosen for the agent named in
    /// From ([`DigestPolicy`]); an unknown user gets the realm's default,
    /// like an agent without a setting. Wrong password and unknown user get
    /// the same challenge, and are locked out alike.
    pub fn authenticate(&self, req: &Request, kind: Challenge) -> Authenticated {
        self.authenticate_from(req, kind, self.client_ip(req))
    }

    /// [`Self::authenticate`] for a request from the phone at `ip`.
    fn authenticate_from(&self, req: &Request, kind: Challenge, ip: IpAddr) -> Authenticated {
        let (answer, began) = self.decide_credentials(req, kind, ip);
        if let Some(locked) = began {
            warn!(
                user = %locked.user,
                %ip,
                failures = locked.failures,
                until_unix = locked.until.unix_secs(),
                "too many failed authentications for this user from any address: user locked out"
            );
            if let Ok(hook) = self.lockouts.lock() {
                if let Some(hook) = hook.as_ref() {
                    hook(&locked, ip);
                }
            }
        }
        answer
    }

    /// [`Registrations::authenticate`] under the state's lock; also the
    /// lockout that just began, reported once the lock is released.
    fn decide_credentials(
        &self,
        req: &Request,
        kind: Challenge,
        ip: IpAddr,
    ) -> (Authenticated, Option<LockedOut>) {
        let now = Time::from_unix_secs(unix_now());
        let mut s = self.lock();
        if s.throttle.is_blocked(ip, now) {
            debug!(%ip, method = %req.method(), "request from a blocked address");
            let refused = Authenticated::Refused {
                code: 403,
                headers: vec![],
            };
            return (refused, None);
        }
        let (code, header, credentials) = match kind {
            Challenge::Www => (401, "WWW-Authenticate", req.authorization()),
            Challenge::Proxy => (407, "Proxy-Authenticate", req.header("Proxy-Authorization")),
        };
        // The user name the credentials claim (what a guesser guesses for).
        let claimed = credentials
            .as_deref()
            .and_then(|c| parse_digest(c).ok())
            .and_then(|p| p.get("username").map(str::to_string));
        if let Some(left) = claimed
            .as_deref()
            .and_then(|u| s.lockout.locked_for(u, now))
        {
            debug!(%ip, user = ?claimed, method = %req.method(), "request for a locked-out user: 503");
            let retry = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let refused = Authenticated::Refused {
                code: 503,
                headers: vec![
                    ("Retry-After".into(), retry.max(1).to_string()),
                    warning("too many failed authentications for this user; try again later"),
                ],
            };
            return (refused, None);
        }
        let secrets = self.secrets();
        let offered = s
            .policy
            .offered(req.from_user().and_then(|u| secrets.get(&u)));
        let challenge = |s: &mut State, stale: bool| {
            let headers = s
                .digest
                .challenge_with(now, stale, &offered)
                .into_iter()
                .map(|v| (header.to_string(), v))
                .collect::<Vec<_>>();
            Authenticated::Refused { code, headers }
        };
        let Some(credentials) = credentials else {
            return (challenge(&mut s, false), None);
        };
        let State { digest, policy, .. } = &mut *s;
        let realm = digest.realm().to_string();
        let verdict = digest.verify(now, &req.method(), &credentials, |user| {
            secrets
                .get(user)
                .map(|account| policy.accepted_secret(account, user, &realm))
        });
        match verdict {
            Verdict::Authorized { username } => {
                s.throttle.record_success(ip);
                s.lockout.record_success(&username);
                (Authenticated::Agent(username), None)
            }
            Verdict::Stale => (challenge(&mut s, true), None),
            Verdict::Rejected(e) => {
                s.throttle.record_failure(ip, now);
                if s.throttle.is_blocked(ip, now) {
                    warn!(%ip, "too many failed authentications: address blocked");
                } else {
                    debug!(%ip, error = %e, method = %req.method(), "authentication failed");
                }
                let began = claimed.and_then(|u| s.lockout.record_failure(&u, now));
                (challenge(&mut s, false), began)
            }
        }
    }

    /// Answer one REGISTER.
    pub async fn handle(&self, req: Request, responder: Responder) {
        self.begin(&req).answer(responder).await;
    }

    /// Decide one REGISTER now (authentication, the registrar, the
    /// presence hook) and queue its write; never waits. The answer goes
    /// out with [`Registering::answer`] once the write and what the
    /// presence hook caused are kept.
    pub fn begin(&self, req: &Request) -> Registering {
        let d = self.decide(req);
        let kept = d.presence.and_then(|registered| {
            self.tell_presence(&req.to_user().unwrap_or_default(), registered)
        });
        Registering {
            code: d.code,
            headers: d.headers,
            written: self.writer.write(d.changes),
            kept,
        }
    }

    fn decide(&self, req: &Request) -> Decision {
        let now = Time::from_unix_secs(unix_now());
        let ip = self.client_ip(req);
        let username = match self.authenticate_from(req, Challenge::Www, ip) {
            Authenticated::Agent(u) => u,
            Authenticated::Refused { code, headers } => return Decision::reply(code, headers),
        };
        let mut s = self.lock();
        let aor = req.to_user().unwrap_or_default();
        if aor != username {
            warn!(%ip, %username, %aor, "agent tried to register another agent's number");
            return Decision::reply(403, vec![]);
        }
        let (wildcard, contacts) = match req.contacts() {
            Ok(Contacts::Wildcard) => (true, vec![]),
            Ok(Contacts::List(list)) => (
                false,
                list.into_iter()
                    .map(|c| ContactSpec {
                        uri: c.uri,
                        expires: c.expires,
                        q: c.q,
                    })
                    .collect(),
            ),
            Err(e) => return Decision::reply(400, vec![warning(&e)]),
        };
        // Registered through a proxy (the edge, docs/ha.md §2): requests to
        // these contacts go back through it (RFC 3327 §5.3).
        let path = match req.path() {
            Ok(p) => p,
            Err(e) => return Decision::reply(400, vec![warning(&e)]),
        };
        let path_supported = req.supports("path");
        let was_present = !s.registrar.lookup(now, &aor).is_empty();
        let outcome = s.registrar.register(
            now,
            RegisterRequest {
                aor: aor.clone(),
                contacts,
                wildcard,
                expires_header: req.expires(),
                call_id: req.call_id(),
                cseq: req.cseq().unwrap_or(0),
                source: req.source(),
                transport: req.transport().to_string(),
                path: path.clone(),
            },
        );
        let changes = s.take_local_changes();
        match outcome {
            RegisterOutcome::Updated { current } => {
                let mut headers: Vec<(String, String)> = current
                    .iter()
                    .map(|b| {
                        (
                            "Contact".to_string(),
                            format!(
                                "<{}>;expires={}",
                                b.contact,
                                b.expires_at.saturating_duration_since(now).as_secs()
                            ),
                        )
                    })
                    .collect();
                // RFC 3327 §5.3: the Path stored is echoed to a UA that
                // supports the extension; for one that does not it is
                // kept and used all the same, not shown.
                if path_supported && !current.is_empty() {
                    headers.extend(path.iter().map(|p| ("Path".to_string(), p.clone())));
                }
                info!(agent = %aor, contacts = current.len(), source = %req.source(), "registered");
                let present = !current.is_empty();
                Decision {
                    code: 200,
                    headers,
                    changes,
                    presence: (present != was_present).then_some(present),
                }
            }
            RegisterOutcome::IntervalTooBrief { min_expires } => Decision {
                changes,
                ..Decision::reply(423, vec![("Min-Expires".into(), min_expires.to_string())])
            },
            RegisterOutcome::Invalid(e) => Decision {
                changes,
                ..Decision::reply(400, vec![warning(&e.to_string())])
            },
            RegisterOutcome::OutOfOrder => Decision {
                changes,
                ..Decision::reply(500, vec![warning("CSeq out of order")])
            },
        }
    }
}

/// A REGISTER decided, waiting for its write to answer.
pub struct Registering {
    code: u16,
    headers: Vec<(String, String)>,
    written: Written,
    kept: Option<PresenceKept>,
}

impl Registering {
    /// Answer once the bindings are on disk and the presence change (an
    /// auto-login) is kept.
    pub async fn answer(self, responder: Responder) {
        self.written.wait().await;
        if let Some(kept) = self.kept {
            kept.await;
        }
        if let Err(e) = responder.reply(self.code, self.headers, None).await {
            debug!(error = %e, "REGISTER response");
        }
    }
}

/// The answer to one REGISTER and what it changed.
struct Decision {
    code: u16,
    headers: Vec<(String, String)>,
    changes: Vec<crate::sip::registrar::BindingChange>,
    /// `Some(registered)` when the agent's first binding appeared or the
    /// last one went.
    presence: Option<bool>,
}

impl Decision {
    fn reply(code: u16, headers: Vec<(String, String)>) -> Self {
        Self {
            code,
            headers,
            changes: vec![],
            presence: None,
        }
    }
}

impl Directory for Registrations {
    fn contacts(&self, user: &str) -> Vec<Contact> {
        self.lock()
            .registrar
            .lookup(Time::from_unix_secs(unix_now()), user)
            .into_iter()
            .map(|b| Contact {
                uri: b.contact,
                source: b.source,
                // A stream transport: TCP, or TLS (the stack sends over
                // the TLS connection the phone registered on).
                tcp: b.transport.eq_ignore_ascii_case("TCP")
                    || b.transport.eq_ignore_ascii_case("TLS"),
                route: b.path,
            })
            .collect()
    }
}

/// Digest credentials and settings by SIP user.
fn secrets_of(agents: &[AgentConfig]) -> HashMap<String, DigestAccount> {
    agents
        .iter()
        .map(|a| {
            let secret = match &a.password {
                Some(p) => Secret::Plain(p.clone()),
                None => Secret::Ha1 {
                    md5: a.ha1_md5.clone(),
                    sha256: a.ha1_sha256.clone(),
                },
            };
            let algorithm = a
                .digest_algorithm
                .as_deref()
                .and_then(|t| DigestAlgorithm::parse(t).ok());
            (a.user.clone(), DigestAccount { secret, algorithm })
        })
        .collect()
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
