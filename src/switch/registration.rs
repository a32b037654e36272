//! REGISTER handling for agents (RFC 3261 §10.3 with RFC 7616/8760 digest):
//! the shell around the pure [`Registrar`], [`DigestServer`],
//! [`DigestPolicy`] (one challenge per request by default, its algorithm
//! chosen per agent) and [`FailureThrottle`] cores. It parses the request, authenticates it,
//! applies it, answers, and persists the change to SQLite so bindings
//! survive a restart. Also the call room's [`Directory`] of live contacts.
//!
//! A REGISTER is decided in memory where it arrives ([`Registrations::begin`],
//! in the switch's dispatch loop, in arrival order); its write goes to the
//! [`BindingWriter`] thread and the answer waits for it in a task of its
//! own ([`Registering::answer`]), so no INVITE waits behind SQLite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::{debug, info, warn};

use crate::call::{Contact, Directory};
use crate::config::{AgentConfig, Config};
use crate::sip::auth::{DigestAlgorithm, DigestServer, Secret, Verdict};
use crate::sip::digest_policy::{ChallengeMode, DigestAccount, DigestPolicy};
use crate::sip::message::warning;
use crate::sip::message::Contacts;
use crate::sip::registrar::{
    ContactSpec, FailureThrottle, RegisterOutcome, RegisterRequest, Registrar, RegistrarPolicy,
};
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
        /// 401, 407 or 403.
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
}

/// Agents' registrations: REGISTER in, bindings out.
#[derive(Clone)]
pub struct Registrations {
    state: Arc<Mutex<State>>,
    secrets: Arc<std::sync::RwLock<Arc<HashMap<String, DigestAccount>>>>,
    writer: BindingWriter,
    presence: Arc<Mutex<Option<PresenceHook>>>,
}

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
            })),
            secrets: Arc::new(std::sync::RwLock::new(Arc::new(secrets))),
            writer: BindingWriter::start(keeper),
            presence: Arc::new(Mutex::new(None)),
        })
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
            s.registrar.take_changes()
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
            s.registrar.take_changes()
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
    /// throttle. One challenge per request by default, in the algorithm
    /// chosen for the agent named in From ([`DigestPolicy`]); an unknown
    /// user gets the realm's default, like an agent without a setting.
    /// Wrong password and unknown user get the same challenge.
    pub fn authenticate(&self, req: &Request, kind: Challenge) -> Authenticated {
        let now = Time::from_unix_secs(unix_now());
        let ip = req.source().ip();
        let mut s = self.lock();
        if s.throttle.is_blocked(ip, now) {
            debug!(%ip, method = %req.method(), "request from a blocked address");
            return Authenticated::Refused {
                code: 403,
                headers: vec![],
            };
        }
        let (code, header, credentials) = match kind {
            Challenge::Www => (401, "WWW-Authenticate", req.authorization()),
            Challenge::Proxy => (407, "Proxy-Authenticate", req.header("Proxy-Authorization")),
        };
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
            return challenge(&mut s, false);
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
                Authenticated::Agent(username)
            }
            Verdict::Stale => challenge(&mut s, true),
            Verdict::Rejected(e) => {
                s.throttle.record_failure(ip, now);
                if s.throttle.is_blocked(ip, now) {
                    warn!(%ip, "too many failed authentications: address blocked");
                } else {
                    debug!(%ip, error = %e, method = %req.method(), "authentication failed");
                }
                challenge(&mut s, false)
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
        let username = match self.authenticate(req, Challenge::Www) {
            Authenticated::Agent(u) => u,
            Authenticated::Refused { code, headers } => return Decision::reply(code, headers),
        };
        let ip = req.source().ip();
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
            },
        );
        let changes = s.registrar.take_changes();
        match outcome {
            RegisterOutcome::Updated { current } => {
                let headers = current
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
