//! The admission core (issue 13 §5): what the switch does with one
//! out-of-dialog request, decided without sockets, stores or clocks.
//!
//! - REGISTER goes to the registrar shell ([`super::Registrations`]);
//! - OPTIONS is answered 200 with `Allow` and `Accept` (carriers ping with
//!   it as a health check, RFC 3261 §11), but 503 with `Retry-After` while
//!   draining (issue 15: a SIP edge such as Kamailio's dispatcher probes
//!   every node with OPTIONS, so a node shutting down leaves the rotation
//!   while its calls finish, RFC 3261 §21.5.4); in-dialog methods outside any
//!   dialog get 481 (§12.2.2); methods we do not serve get 405 or 501 with
//!   `Allow` (§8.2.1, §20.5);
//! - a new INVITE, in this order: 503 with `Retry-After`
//!   ([`DRAINING_RETRY_AFTER_SECS`]) while draining;
//!   an agent's feature code (`*…`, authenticated by the shell with a 407
//!   digest challenge); 403 from an address no trunk admits (trunk ACL,
//!   [`crate::sip::trunk`]); the called number (DID) claimed by an IVR flow
//!   (flows first), else by a `[[did]]` entry; else 404 — but an INVITE
//!   from an agent's phone (its `From` user) that no trunk or number
//!   admits is the phone dialling out of a call it is on, a consultation
//!   from its second line (issue 17 §4), authenticated by the shell with a
//!   407 challenge and handed to that call; then the caps
//!   (issue 14 §5): the trunk's, then the centre's, concurrent calls
//!   (`max_calls`) before new calls per second (`max_cps`), 0 = no cap.
//!   Beyond one: 503 Service Unavailable (RFC 3261 §21.5.4) with
//!   `Retry-After` (§20.33: [`CALLS_RETRY_AFTER_SECS`] at a concurrent-call
//!   cap, [`CPS_RETRY_AFTER_SECS`] at a CPS cap, the window being a second)
//!   and a `Warning` naming the cap. Short on purpose: a carrier that
//!   honours `Retry-After` may hold all its traffic to us that long.
//!   Last, 503 with `Retry-After` ([`MEDIA_RETRY_AFTER_SECS`]) while the
//!   media IO workers are near their limit (issue 16: overload refuses new
//!   calls before calls in progress lose packets).
//!
//! The caps read a [`Load`]: the calls in progress and those started within
//! the last second per trunk and centre, which the shell counts
//! ([`super::call_load`]) and reads at the request's arrival time — this
//! core takes the counts as input and reads no clock.
//!
//! The block list is not an admission rule: the flow's `blacklist` node
//! reads it once the call runs. Nothing here depends on the time of day
//! (schedules are the flow's too), so [`decide`] takes no clock.
//!
//! The shell ([`super::Switch::run`]) builds a [`RequestView`] and
//! [`Tables`], calls [`decide`] and executes the [`Decision`].

use std::collections::HashMap;
use std::net::IpAddr;

use crate::call::Route;
use crate::sip::trunk::TrunkTable;

use super::feature_codes;

/// Methods we implement, for `Allow` (RFC 3261 §20.5); the SIP ingress
/// answers 501 with the same list.
pub use crate::sip::admit::ALLOW;

/// What admission reads of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Method, e.g. `INVITE`.
    pub method: &'a str,
    /// User part of the Request-URI (the dialled number), empty if none.
    pub uri_user: &'a str,
    /// Where it came from (the address the trunk ACL matches).
    pub source: IpAddr,
    /// Its `From` user is an agent's phone (still to be authenticated).
    pub from_phone: bool,
}

/// The numbers IVR flows claim: `did` → (tenant, the flow's claim). The
/// switch's is the live IVR snapshot; a test's can be a map.
pub trait FlowClaims {
    /// What a claim carries to the call (the switch: the flow pinned to
    /// the snapshot the call arrived under).
    type Claim;
    /// The flow that answers `did`, with its tenant.
    fn claim(&self, did: &str) -> Option<(String, Self::Claim)>;
}

/// What admission decides from.
pub struct Tables<'a, F> {
    /// `[[did]]` entries: number → (tenant, route).
    pub dids: &'a HashMap<String, (String, Route)>,
    /// Trunks (ACL by source address).
    pub trunks: &'a TrunkTable,
    /// Numbers claimed by IVR flows.
    pub flows: &'a F,
    /// Shutting down: no new calls.
    pub draining: bool,
    /// The trunks' and centres' load against their caps.
    pub load: &'a dyn Load,
    /// The media IO workers are near their limit (`[media]
    /// overload_percent`, `media::io::Pressure`): calls in progress keep
    /// their packets, new ones wait.
    pub media_overloaded: bool,
}

/// Why a new INVITE is refused (the shell logs each its own way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The switch is shutting down.
    Draining,
    /// No trunk admits the source address.
    NoTrunk,
    /// Neither a flow nor a `[[did]]` claims the number.
    UnknownNumber {
        /// The trunk it came through.
        trunk: String,
    },
    /// The media IO workers are near their limit.
    MediaOverload,
    /// A trunk's or centre's cap is reached.
    Cap {
        /// Whose.
        scope: CapScope,
        /// Which.
        cap: Cap,
    },
}

/// Whose cap: a trunk's (by name) or a centre's (tenant id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CapScope {
    /// `[[trunk]] name`.
    Trunk(String),
    /// `[[tenant]] id`.
    Tenant(String),
}

/// Which cap, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// `max_calls`: calls in progress at once.
    Calls(u32),
    /// `max_cps`: new calls within a second.
    Cps(u32),
}

/// `Retry-After` while draining (a new INVITE, an OPTIONS probe): about
/// how long a node takes to restart.
pub const DRAINING_RETRY_AFTER_SECS: u32 = 30;
/// `Retry-After` at a concurrent-call cap.
pub const CALLS_RETRY_AFTER_SECS: u32 = 5;
/// `Retry-After` at a calls-per-second cap.
pub const CPS_RETRY_AFTER_SECS: u32 = 1;
/// `Retry-After` while the media workers are near their limit (their
/// figures cover a second).
pub const MEDIA_RETRY_AFTER_SECS: u32 = 2;

/// One scope's load and caps at the request's arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls in progress.
    pub active: u32,
    /// Calls started within the last second (counted up to `max_cps`).
    pub last_second: u32,
    /// Concurrent-call cap, 0 = none.
    pub max_calls: u32,
    /// Calls-per-second cap, 0 = none.
    pub max_cps: u32,
}

impl Usage {
    /// The cap a new call would go beyond, if any (concurrent calls first).
    pub fn reached(&self) -> Option<Cap> {
        if self.max_calls > 0 && self.active >= self.max_calls {
            Some(Cap::Calls(self.max_calls))
        } else if self.max_cps > 0 && self.last_second >= self.max_cps {
            Some(Cap::Cps(self.max_cps))
        } else {
            None
        }
    }
}

/// The trunks' and centres' load, as the caps read it.
pub trait Load {
    /// `scope`'s load and caps now (unknown scopes: no cap).
    fn usage(&self, scope: &CapScope) -> Usage;
}

/// No load and no caps (tests, and requests that are no new call).
pub struct Unlimited;

impl Load for Unlimited {
    fn usage(&self, _: &CapScope) -> Usage {
        Usage::default()
    }
}

/// What to do with one out-of-dialog request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<C> {
    /// Answer with this status and headers, nothing else (OPTIONS, stray
    /// in-dialog methods, methods we do not serve).
    Reply {
        /// Status code.
        code: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// A REGISTER: the registrar shell authenticates and applies it.
    Register,
    /// A SUBSCRIBE: the BLF service (`blf`) authenticates and serves it.
    Subscribe,
    /// An INVITE refused with `code` and `headers`.
    Refuse {
        /// Status code.
        code: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Why.
        why: Refusal,
    },
    /// An agent dialled a feature code: authenticate (407), then apply it.
    FeatureCode {
        /// What was dialled.
        dialled: String,
    },
    /// An agent's phone dialled out of the call it is on (a consultation
    /// from its second line): authenticate (407), then hand it to the call.
    PhoneCall {
        /// What was dialled.
        dialled: String,
    },
    /// A new call for the IVR flow that claims the number.
    Flow {
        /// The trunk it came through.
        trunk: String,
        /// The called number.
        number: String,
        /// The flow's tenant.
        tenant: String,
        /// The flow's claim.
        claim: C,
    },
    /// A new call for a `[[did]]` entry.
    Did {
        /// The trunk it came through.
        trunk: String,
        /// The called number.
        number: String,
        /// The entry's tenant.
        tenant: String,
        /// Where it goes.
        route: Route,
    },
}

fn allow() -> Vec<(String, String)> {
    vec![("Allow".to_string(), ALLOW.to_string())]
}

fn draining_retry_after() -> Vec<(String, String)> {
    vec![(
        "Retry-After".to_string(),
        DRAINING_RETRY_AFTER_SECS.to_string(),
    )]
}

/// Decide what to do with one out-of-dialog request.
pub fn decide<F: FlowClaims>(req: &RequestView<'_>, tables: &Tables<'_, F>) -> Decision<F::Claim> {
    let reply = |code, headers| Decision::Reply { code, headers };
    match req.method {
        "INVITE" => admit_invite(req, tables),
        "REGISTER" => Decision::Register,
        "OPTIONS" if tables.draining => reply(503, draining_retry_after()),
        "OPTIONS" => {
            let mut h = allow();
            h.push(("Accept".into(), "application/sdp".into()));
            reply(200, h)
        }
        "BYE" | "INFO" | "UPDATE" | "PRACK" => reply(481, vec![]),
        "SUBSCRIBE" => Decision::Subscribe,
        "NOTIFY" | "PUBLISH" | "MESSAGE" | "REFER" => reply(405, allow()),
        _ => reply(501, allow()),
    }
}

fn admit_invite<F: FlowClaims>(
    req: &RequestView<'_>,
    tables: &Tables<'_, F>,
) -> Decision<F::Claim> {
    if tables.draining {
        return Decision::Refuse {
            code: 503,
            headers: draining_retry_after(),
            why: Refusal::Draining,
        };
    }
    let number = req.uri_user;
    if feature_codes::looks_like_feature_code(number) {
        return Decision::FeatureCode {
            dialled: number.to_string(),
        };
    }
    let phone_call = || Decision::PhoneCall {
        dialled: number.to_string(),
    };
    let Some(trunk) = tables.trunks.match_source(req.source) else {
        if req.from_phone {
            return phone_call();
        }
        return Decision::Refuse {
            code: 403,
            headers: vec![],
            why: Refusal::NoTrunk,
        };
    };
    let trunk = trunk.name.clone();
    let admitted = if let Some((tenant, claim)) = tables.flows.claim(number) {
        Decision::Flow {
            trunk,
            number: number.to_string(),
            tenant,
            claim,
        }
    } else {
        match tables.dids.get(number) {
            Some((tenant, route)) => Decision::Did {
                trunk,
                number: number.to_string(),
                tenant: tenant.clone(),
                route: route.clone(),
            },
            None if req.from_phone => return phone_call(),
            None => {
                return Decision::Refuse {
                    code: 404,
                    headers: vec![],
                    why: Refusal::UnknownNumber { trunk },
                }
            }
        }
    };
    let (Decision::Flow { trunk, tenant, .. } | Decision::Did { trunk, tenant, .. }) = &admitted
    else {
        return admitted;
    };
    if let Some(refusal) = capped(trunk, tenant, tables.load) {
        return refusal;
    }
    if tables.media_overloaded {
        return Decision::Refuse {
            code: 503,
            headers: vec![
                ("Retry-After".into(), MEDIA_RETRY_AFTER_SECS.to_string()),
                crate::sip::message::warning("media near its limit: calls in progress first"),
            ],
            why: Refusal::MediaOverload,
        };
    }
    admitted
}

/// The 503 for the first cap a new call of `trunk` for `tenant` would go
/// beyond: the trunk's, then the centre's.
fn capped<C>(trunk: &str, tenant: &str, load: &dyn Load) -> Option<Decision<C>> {
    [
        CapScope::Trunk(trunk.to_string()),
        CapScope::Tenant(tenant.to_string()),
    ]
    .into_iter()
    .find_map(|scope| {
        let cap = load.usage(&scope).reached()?;
        let whose = match &scope {
            CapScope::Trunk(n) => format!("trunk {n}"),
            CapScope::Tenant(n) => format!("centre {n}"),
        };
        let (retry, text) = match cap {
            Cap::Calls(n) => (
                CALLS_RETRY_AFTER_SECS,
                format!("{whose}: {n} calls in progress, its limit"),
            ),
            Cap::Cps(n) => (
                CPS_RETRY_AFTER_SECS,
                format!("{whose}: {n} new calls within a second, its limit"),
            ),
        };
        Some(Decision::Refuse {
            code: 503,
            headers: vec![
                ("Retry-After".into(), retry.to_string()),
                crate::sip::message::warning(&text),
            ],
            why: Refusal::Cap { scope, cap },
        })
    })
}
