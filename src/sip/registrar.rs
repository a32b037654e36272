//! Agent registrations: the location-service bindings table, sans-IO.
//!
//! Implements the registrar's processing of REGISTER per RFC 3261 §10.3
//! (steps 5–8): Contact `*` with `Expires: 0` (step 6), expiration from the
//! Contact `expires` parameter, then the `Expires` header, then a default
//! (step 7), `423 Interval Too Brief` with `Min-Expires` for intervals below
//! the configured minimum (§10.3 step 7, §20.23), shortening to a maximum,
//! Call-ID/CSeq ordering (step 7: same Call-ID with a CSeq not higher than
//! the stored one aborts the request), atomic commit of all updates
//! (step 7), and the current bindings for the 200 OK (step 8). Queries (no
//! Contact) return the current bindings (§10.2.3).
//!
//! The shell parses the REGISTER, authenticates it (see `auth`), calls
//! [`Registrar::register`], writes the response and persists the changes
//! from [`Registrar::take_changes`]. [`FailureThrottle`] limits repeated
//! authentication failures per source address. Time is injected as a
//! [`Time`] (the pure cores' one time type); intervals (Expires, the
//! throttle's window and block) are whole seconds as on the wire; nothing
//! here reads a clock or does I/O.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::time::Time;

/// Registrar limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarPolicy {
    /// Shortest accepted non-zero interval; below it → 423.
    pub min_expires: u32,
    /// Longer requested intervals are shortened to this.
    pub max_expires: u32,
    /// Interval when neither the Contact nor the request says.
    pub default_expires: u32,
    /// Most bindings kept per AOR; the least recently updated go first.
    pub max_contacts_per_aor: usize,
}

impl Default for RegistrarPolicy {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts_per_aor: 10,
        }
    }
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSpec {
    /// Contact URI (compared exactly to find an existing binding).
    pub uri: String,
    /// The Contact's `expires` parameter.
    pub expires: Option<u32>,
    /// The Contact's `q` parameter (0.0..=1.0).
    pub q: Option<f32>,
}

/// A parsed, authenticated REGISTER.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    /// Address of record (user part, e.g. "1001").
    pub aor: String,
    /// Contacts (empty with `wildcard == false`: a query).
    pub contacts: Vec<ContactSpec>,
    /// `Contact: *`.
    pub wildcard: bool,
    /// The `Expires` header.
    pub expires_header: Option<u32>,
    pub call_id: String,
    pub cseq: u32,
    pub source: SocketAddr,
    /// "UDP" / "TCP" ...
    pub transport: String,
    /// The REGISTER's `Path` (RFC 3327), first proxy first: the route to
    /// reach the contacts through (empty when the phone registered directly).
    pub path: Vec<String>,
}

/// One registered contact of an AOR.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub aor: String,
    pub contact: String,
    pub source: SocketAddr,
    pub transport: String,
    /// Live while `now < expires_at`.
    pub expires_at: Time,
    pub call_id: String,
    pub cseq: u32,
    pub q: Option<f32>,
    /// The `Path` it was registered through (RFC 3327 §5.3): requests to
    /// the contact carry it as their route set.
    pub path: Vec<String>,
}

/// A change to persist.
#[derive(Clone, Debug, PartialEq)]
pub enum BindingChange {
    /// Binding added or refreshed.
    Upserted(Binding),
    /// Binding removed (unregistered, expired, evicted, or replaced).
    Removed { aor: String, contact: String },
}

/// Why a REGISTER is invalid (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistrarError {
    #[error("empty address of record")]
    EmptyAor,
    #[error("empty Contact URI")]
    EmptyContactUri,
    #[error("Contact q value {0} outside 0.0..=1.0")]
    InvalidQ(f32),
    #[error("Contact * combined with other Contacts")]
    WildcardWithContacts,
    #[error("Contact * requires Expires: 0 (got {0:?})")]
    WildcardExpiresNotZero(Option<u32>),
    #[error("too many Contacts (at most {max})")]
    TooManyContacts { max: usize },
}

/// Result of [`Registrar::register`].
#[derive(Debug, Clone, PartialEq)]
pub enum RegisterOutcome {
    /// 200 OK; all live bindings of the AOR after the update, highest q
    /// first then most recent.
    Updated { current: Vec<Binding> },
    /// 423 Interval Too Brief with `Min-Expires`.
    IntervalTooBrief { min_expires: u32 },
    /// 400 Bad Request.
    Invalid(RegistrarError),
    /// Same Call-ID with a CSeq not above the stored one (500, §10.3 step 7).
    OutOfOrder,
}

/// The bindings table.
#[derive(Debug, Clone)]
pub struct Registrar {
    policy: RegistrarPolicy,
    /// Per AOR, least recently updated first.
    aors: BTreeMap<String, Vec<Binding>>,
    changes: Vec<BindingChange>,
}

fn q_of(b: &Binding) -> f32 {
    b.q.unwrap_or(1.0)
}

/// Highest q first, then most recent (later in the list) first.
fn ordered<'a>(list: impl DoubleEndedIterator<Item = &'a Binding>) -> Vec<Binding> {
    let mut v: Vec<Binding> = list.rev().cloned().collect();
    v.sort_by(|a, b| q_of(b).total_cmp(&q_of(a)));
    v
}

impl Registrar {
    /// An empty table.
    pub fn new(policy: RegistrarPolicy) -> Self {
        Self {
            policy,
            aors: BTreeMap::new(),
            changes: Vec::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &RegistrarPolicy {
        &self.policy
    }

    fn removed(b: &Binding) -> BindingChange {
        BindingChange::Removed {
            aor: b.aor.clone(),
            contact: b.contact.clone(),
        }
    }

    /// Processes a REGISTER (RFC 3261 §10.3 steps 5–8). All updates are
    /// applied atomically: on any error or abort nothing changes.
    pub fn register(&mut self, now: Time, req: RegisterRequest) -> RegisterOutcome {
        if req.aor.trim().is_empty() {
            return RegisterOutcome::Invalid(RegistrarError::EmptyAor);
        }

        // Expired bindings are gone already, whether swept or not.
        let mut current = self.aors.remove(&req.aor).unwrap_or_default();
        let (live, dead): (Vec<Binding>, Vec<Binding>) =
            current.drain(..).partition(|b| b.expires_at > now);
        self.changes.extend(dead.iter().map(Self::removed));
        let outcome = self.plan(now, &req, &live);
        let next = match outcome {
            Ok(next) => next,
            Err(o) => {
                if !live.is_empty() {
                    self.aors.insert(req.aor, live);
                }
                return o;
            }
        };
        // Diff old → new for persistence.
        for old in &live {
            if !next.iter().any(|n| n.contact == old.contact) {
                self.changes.push(Self::removed(old));
            }
        }
        for n in &next {
            if !live.iter().any(|o| o == n) {
                self.changes.push(BindingChange::Upserted(n.clone()));
            }
        }
        let out = ordered(next.iter());
        if !next.is_empty() {
            self.aors.insert(req.aor, next);
        }
        RegisterOutcome::Updated { current: out }
    }

    /// Computes the AOR's new binding list, or the failure outcome.
    fn plan(
        &self,
        now: Time,
        req: &RegisterRequest,
        live: &[Binding],
    ) -> Result<Vec<Binding>, RegisterOutcome> {
        let invalid = |e| Err(RegisterOutcome::Invalid(e));
        let same_dialog_not_newer = |b: &Binding| b.call_id == req.call_id && req.cseq <= b.cseq;

        if req.wildcard {
            // §10.3 step 6.
            if !req.contacts.is_empty() {
                return invalid(RegistrarError::WildcardWithContacts);
            }
            if req.expires_header != Some(0) {
                return invalid(RegistrarError::WildcardExpiresNotZero(req.expires_header));
            }
            if live.iter().any(same_dialog_not_newer) {
                return Err(RegisterOutcome::OutOfOrder);
            }
            return Ok(Vec::new());
        }

        // Validate every Contact and compute its interval (§10.3 step 7);
        // a later Contact with the same URI overrides an earlier one.
        let mut wanted: Vec<(&ContactSpec, u32)> = Vec::new();
        for c in &req.contacts {
            if c.uri.trim().is_empty() {
                return invalid(RegistrarError::EmptyContactUri);
            }
            if let Some(q) = c.q {
                if !(0.0..=1.0).contains(&q) {
                    return invalid(RegistrarError::InvalidQ(q));
                }
            }
            let requested = c
                .expires
                .or(req.expires_header)
                .unwrap_or(self.policy.default_expires);
            if requested != 0 && requested < self.policy.min_expires {
                return Err(RegisterOutcome::IntervalTooBrief {
                    min_expires: self.policy.min_expires,
                });
            }
            let granted = requested.min(self.policy.max_expires);
            wanted.retain(|(w, _)| w.uri != c.uri);
            wanted.push((c, granted));
        }
        let adding = wanted.iter().filter(|(_, e)| *e > 0).count();
        if adding > self.policy.max_contacts_per_aor {
            return invalid(RegistrarError::TooManyContacts {
                max: self.policy.max_contacts_per_aor,
            });
        }
        if wanted.iter().any(|(c, _)| {
            live.iter()
                .any(|b| b.contact == c.uri && same_dialog_not_newer(b))
        }) {
            return Err(RegisterOutcome::OutOfOrder);
        }

        let mut next: Vec<Binding> = live.to_vec();
        for (c, granted) in wanted {
            next.retain(|b| b.contact != c.uri);
            if granted > 0 {
                next.push(Binding {
                    aor: req.aor.clone(),
                    contact: c.uri.clone(),
                    source: req.source,
                    transport: req.transport.clone(),
                    expires_at: now + Duration::from_secs(u64::from(granted)),
                    call_id: req.call_id.clone(),
                    cseq: req.cseq,
                    q: c.q,
                    path: req.path.clone(),
                });
            }
        }
        // Evict the least recently updated beyond the cap; this request's
        // own contacts are last and fit (checked above).
        let excess = next.len().saturating_sub(self.policy.max_contacts_per_aor);
        next.drain(..excess);
        Ok(next)
    }

    /// Live bindings of `aor`, highest q first, then most recent.
    pub fn lookup(&self, now: Time, aor: &str) -> Vec<Binding> {
        match self.aors.get(aor) {
            Some(list) => ordered(list.iter().filter(|b| b.expires_at > now)),
            None => Vec::new(),
        }
    }

    /// Removes and returns bindings with `expires_at <= now`.
    pub fn expire(&mut self, now: Time) -> Vec<Binding> {
        let mut gone = Vec::new();
        self.aors.retain(|_, list| {
            let (live, dead): (Vec<Binding>, Vec<Binding>) =
                list.drain(..).partition(|b| b.expires_at > now);
            *list = live;
            gone.extend(dead);
            !list.is_empty()
        });
        self.changes.extend(gone.iter().map(Self::removed));
        gone
    }

    /// Removes every binding of `aor` (its account was deleted) and
    /// returns them.
    pub fn remove_aor(&mut self, aor: &str) -> Vec<Binding> {
        let gone = self.aors.remove(aor).unwrap_or_default();
        self.changes.extend(gone.iter().map(Self::removed));
        gone
    }

    /// Earliest `expires_at` of any binding (when to call [`Self::expire`]).
    pub fn poll_timeout(&self) -> Option<Time> {
        self.aors.values().flatten().map(|b| b.expires_at).min()
    }

    /// Loads persisted bindings (at start). Already expired ones are dropped
    /// and reported as [`BindingChange::Removed`]; duplicates keep the one
    /// expiring last; the per-AOR cap is enforced (least recent evicted).
    pub fn restore(&mut self, now: Time, bindings: Vec<Binding>) {
        let mut bindings = bindings;
        // Approximate recency by expiry: later expiry = more recent update.
        bindings.sort_by_key(|b| b.expires_at);
        for b in bindings {
            if b.expires_at <= now {
                self.changes.push(Self::removed(&b));
                continue;
            }
            let list = self.aors.entry(b.aor.clone()).or_default();
            list.retain(|o| o.contact != b.contact);
            list.push(b);
            let excess = list
                .len()
                .saturating_sub(self.policy.max_contacts_per_aor.max(1));
            for old in list.drain(..excess) {
                self.changes.push(Self::removed(&old));
            }
        }
    }

    /// `aor`'s bindings as another node left them in the shared store
    /// (docs/ha.md §1): they replace this table's, expired ones dropped,
    /// and nothing is reported to persist (they are stored already).
    /// Whether the AOR had a live binding before, and has one now.
    pub fn replace_aor(&mut self, now: Time, aor: &str, bindings: Vec<Binding>) -> (bool, bool) {
        let before = !self.lookup(now, aor).is_empty();
        let mut list: Vec<Binding> = bindings
            .into_iter()
            .filter(|b| b.aor == aor && b.expires_at > now)
            .collect();
        list.sort_by_key(|b| b.expires_at);
        let excess = list
            .len()
            .saturating_sub(self.policy.max_contacts_per_aor.max(1));
        list.drain(..excess);
        let after = !list.is_empty();
        if after {
            self.aors.insert(aor.to_string(), list);
        } else {
            self.aors.remove(aor);
        }
        (before, after)
    }

    /// Every stored binding (by AOR, least recently updated first).
    pub fn all(&self) -> Vec<Binding> {
        self.aors.values().flatten().cloned().collect()
    }

    /// Changes since the last call, in order, for the shell to persist.
    pub fn take_changes(&mut self) -> Vec<BindingChange> {
        std::mem::take(&mut self.changes)
    }
}

// ---------------------------------------------------------------------------
// Brute-force protection
// ---------------------------------------------------------------------------

/// Default bound on addresses tracked by [`FailureThrottle`].
pub const DEFAULT_MAX_THROTTLE_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start: Time,
    count: u32,
    blocked_until: Option<Time>,
}

/// Throttles repeated authentication failures per source address:
/// `max_failures` within `window_secs` block the address for `block_secs`.
///
/// IPv6 addresses are grouped by /64 (one host usually owns a whole /64);
/// IPv4-mapped IPv6 addresses count as IPv4. Memory is bounded: when the
/// table is full, expired entries are swept (at most once per second) and
/// new addresses that still do not fit are not tracked.
#[derive(Debug, Clone)]
pub struct FailureThrottle {
    max_failures: u32,
    window_secs: u64,
    block_secs: u64,
    max_entries: usize,
    entries: HashMap<IpAddr, Failures>,
    /// The Unix second of the last sweep (at most one a second).
    last_sweep: Option<u64>,
}

fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl FailureThrottle {
    /// `max_failures` (at least 1) failures within `window_secs` block for
    /// `block_secs`.
    pub fn new(max_failures: u32, window_secs: u64, block_secs: u64) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window_secs,
            block_secs,
            max_entries: DEFAULT_MAX_THROTTLE_ENTRIES,
            entries: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Overrides the bound on tracked addresses (at least 1).
    pub fn with_max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// Number of tracked addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a failed authentication from `ip`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Time) {
        let key = throttle_key(ip);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            if self.last_sweep != Some(now.unix_secs()) {
                self.last_sweep = Some(now.unix_secs());
                self.expire(now);
            }
            if self.entries.len() >= self.max_entries {
                return;
            }
        }
        let e = self.entries.entry(key).or_insert(Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        match e.blocked_until {
            Some(until) if until > now => return,
            Some(_) => e.blocked_until = None,
            None => {}
        }
        if now.saturating_duration_since(e.window_start) >= Duration::from_secs(self.window_secs)
            || e.count == 0
        {
            e.window_start = now;
            e.count = 0;
        }
        e.count += 1;
        if e.count >= self.max_failures {
            e.blocked_until = Some(now + Duration::from_secs(self.block_secs));
            e.count = 0;
        }
    }

    /// Records a successful authentication from `ip`: forgets its failures.
    /// An active block stays (the shell should not authenticate blocked
    /// addresses at all).
    pub fn record_success(&mut self, ip: IpAddr) {
        let key = throttle_key(ip);
        if let Some(e) = self.entries.get_mut(&key) {
            if e.blocked_until.is_none() {
                self.entries.remove(&key);
            } else {
                e.count = 0;
            }
        }
    }

    /// Whether `ip` is blocked at `now`.
    pub fn is_blocked(&self, ip: IpAddr, now: Time) -> bool {
        self.entries
            .get(&throttle_key(ip))
            .and_then(|e| e.blocked_until)
            .is_some_and(|until| until > now)
    }

    /// Forgets addresses neither blocked nor within a failure window.
    pub fn expire(&mut self, now: Time) {
        let window = Duration::from_secs(self.window_secs);
        self.entries.retain(|_, e| {
            e.blocked_until.is_some_and(|u| u > now)
                || (e.count > 0 && now.saturating_duration_since(e.window_start) < window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    /// `secs` seconds after `T0`.
    fn at(secs: u64) -> Time {
        Time::from_unix_secs(T0 + secs)
    }

    fn policy() -> RegistrarPolicy {
        RegistrarPolicy {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_contacts_per_aor: 3,
        }
    }

    fn src() -> SocketAddr {
        "192.0.2.10:5060".parse().unwrap()
    }

    fn contact(uri: &str, expires: Option<u32>) -> ContactSpec {
        ContactSpec {
            uri: uri.into(),
            expires,
            q: None,
        }
    }

    fn req(
        aor: &str,
        contacts: Vec<ContactSpec>,
        expires: Option<u32>,
        cid: &str,
        cseq: u32,
    ) -> RegisterRequest {
        RegisterRequest {
            aor: aor.into(),
            contacts,
            wildcard: false,
            expires_header: expires,
            call_id: cid.into(),
            cseq,
            source: src(),
            transport: "UDP".into(),
            path: vec![],
        }
    }

    fn wildcard(aor: &str, expires: Option<u32>, cid: &str, cseq: u32) -> RegisterRequest {
        RegisterRequest {
            wildcard: true,
            ..req(aor, vec![], expires, cid, cseq)
        }
    }

    fn current(o: RegisterOutcome) -> Vec<Binding> {
        match o {
            RegisterOutcome::Updated { current } => current,
            other => panic!("expected Updated, got {other:?}"),
        }
    }

    fn contacts_of(v: &[Binding]) -> Vec<&str> {
        v.iter().map(|b| b.contact.as_str()).collect()
    }

    #[test]
    fn register_refresh_unregister() {
        let mut r = Registrar::new(policy());
        let c = current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], Some(300), "c1", 1),
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].expires_at, at(300));
        assert_eq!(c[0].aor, "1001");
        assert_eq!(c[0].transport, "UDP");
        assert_eq!(r.lookup(at(0), "1001"), c);

        let c = current(r.register(
            at(100),
            req("1001", vec![contact("sip:a@h", None)], Some(300), "c1", 2),
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].expires_at, at(400));
        assert_eq!(c[0].cseq, 2);

        let c = current(r.register(
            at(200),
            req("1001", vec![contact("sip:a@h", Some(0))], None, "c1", 3),
        ));
        assert!(c.is_empty());
        assert!(r.lookup(at(200), "1001").is_empty());
        assert!(r.all().is_empty());
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn expires_resolution_table() {
        // (contact param, header, expected granted or Err(min) for 423)
        type Case = (Option<u32>, Option<u32>, Result<u64, u32>);
        let table: [Case; 9] = [
            (None, None, Ok(600)),
            (None, Some(120), Ok(120)),
            (Some(90), Some(120), Ok(90)),
            (Some(7200), None, Ok(3600)),
            (None, Some(u32::MAX), Ok(3600)),
            (Some(30), Some(3600), Err(60)),
            (None, Some(59), Err(60)),
            (Some(60), None, Ok(60)),
            (Some(120), Some(1), Ok(120)),
        ];
        for (param, header, want) in table {
            let mut r = Registrar::new(policy());
            let out = r.register(
                at(0),
                req("1001", vec![contact("sip:a@h", param)], header, "c", 1),
            );
            match want {
                Ok(secs) => {
                    let c = current(out);
                    assert_eq!(c[0].expires_at, at(secs), "{param:?} {header:?}");
                }
                Err(min) => {
                    assert_eq!(out, RegisterOutcome::IntervalTooBrief { min_expires: min });
                    assert!(r.take_changes().is_empty());
                }
            }
        }
    }

    #[test]
    fn brief_interval_aborts_whole_request() {
        let mut r = Registrar::new(policy());
        let out = r.register(
            at(0),
            req(
                "1001",
                vec![contact("sip:a@h", Some(300)), contact("sip:b@h", Some(10))],
                None,
                "c",
                1,
            ),
        );
        assert_eq!(out, RegisterOutcome::IntervalTooBrief { min_expires: 60 });
        assert!(r.all().is_empty());
    }

    #[test]
    fn two_contacts_and_ordering() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], None, "ca", 1),
        ));
        let c = current(r.register(
            at(1),
            req("1001", vec![contact("sip:b@h", None)], None, "cb", 1),
        ));
        // Most recent first at equal q.
        assert_eq!(contacts_of(&c), ["sip:b@h", "sip:a@h"]);
        // Higher q first.
        let mut spec = contact("sip:a@h", None);
        spec.q = Some(1.0);
        let mut spec_b = contact("sip:b@h", None);
        spec_b.q = Some(0.5);
        current(r.register(at(2), req("1001", vec![spec_b], None, "cb", 2)));
        let l = r.lookup(at(2), "1001");
        assert_eq!(contacts_of(&l), ["sip:a@h", "sip:b@h"]);
        current(r.register(at(3), req("1001", vec![spec], None, "ca", 2)));
        assert_eq!(
            contacts_of(&r.lookup(at(3), "1001")),
            ["sip:a@h", "sip:b@h"]
        );
        assert!(r.lookup(at(0), "1002").is_empty());
    }

    #[test]
    fn contact_replaced_by_other_call_id() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], None, "old", 50),
        ));
        let mut q = req("1001", vec![contact("sip:a@h", None)], None, "new", 1);
        q.source = "198.51.100.1:5070".parse().unwrap();
        q.transport = "TCP".into();
        let c = current(r.register(at(5), q));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].call_id, "new");
        assert_eq!(c[0].cseq, 1);
        assert_eq!(c[0].transport, "TCP");
        assert_eq!(c[0].source.port(), 5070);
    }

    #[test]
    fn evicts_oldest_beyond_cap() {
        let mut r = Registrar::new(policy());
        for (i, u) in ["sip:1@h", "sip:2@h", "sip:3@h"].iter().enumerate() {
            current(r.register(
                at(i as u64),
                req("1001", vec![contact(u, None)], None, u, 1),
            ));
        }
        // Refresh 1 → 2 is now the least recently updated.
        current(r.register(
            at(10),
            req("1001", vec![contact("sip:1@h", None)], None, "sip:1@h", 2),
        ));
        r.take_changes();
        let c = current(r.register(
            at(11),
            req("1001", vec![contact("sip:4@h", None)], None, "x", 1),
        ));
        assert_eq!(contacts_of(&c), ["sip:4@h", "sip:1@h", "sip:3@h"]);
        let ch = r.take_changes();
        assert!(ch.contains(&BindingChange::Removed {
            aor: "1001".into(),
            contact: "sip:2@h".into()
        }));
        // More contacts in one request than allowed → 400.
        let many = (0..4)
            .map(|i| contact(&format!("sip:m{i}@h"), None))
            .collect();
        assert_eq!(
            r.register(at(12), req("1001", many, None, "y", 1)),
            RegisterOutcome::Invalid(RegistrarError::TooManyContacts { max: 3 })
        );
    }

    #[test]
    fn wildcard_rules_table() {
        let mut spec_req = wildcard("1001", Some(0), "w", 10);
        spec_req.contacts.push(contact("sip:a@h", None));
        let table: Vec<(RegisterRequest, RegisterOutcome)> = vec![
            (
                wildcard("1001", None, "w", 10),
                RegisterOutcome::Invalid(RegistrarError::WildcardExpiresNotZero(None)),
            ),
            (
                wildcard("1001", Some(60), "w", 10),
                RegisterOutcome::Invalid(RegistrarError::WildcardExpiresNotZero(Some(60))),
            ),
            (
                spec_req,
                RegisterOutcome::Invalid(RegistrarError::WildcardWithContacts),
            ),
            // Same Call-ID as binding "a" with a CSeq not higher → abort.
            (
                wildcard("1001", Some(0), "ca", 5),
                RegisterOutcome::OutOfOrder,
            ),
            (
                wildcard("1001", Some(0), "ca", 4),
                RegisterOutcome::OutOfOrder,
            ),
            (
                wildcard("1001", Some(0), "ca", 6),
                RegisterOutcome::Updated { current: vec![] },
            ),
            (
                wildcard("1001", Some(0), "other", 1),
                RegisterOutcome::Updated { current: vec![] },
            ),
        ];
        for (q, want) in table {
            let mut r = Registrar::new(policy());
            current(r.register(
                at(0),
                req("1001", vec![contact("sip:a@h", None)], None, "ca", 5),
            ));
            current(r.register(
                at(0),
                req("1001", vec![contact("sip:b@h", None)], None, "cb", 9),
            ));
            r.take_changes();
            let removes_all = matches!(want, RegisterOutcome::Updated { .. });
            assert_eq!(r.register(at(1), q.clone()), want, "{q:?}");
            assert_eq!(r.lookup(at(1), "1001").is_empty(), removes_all, "{q:?}");
            assert_eq!(r.take_changes().len(), if removes_all { 2 } else { 0 });
        }
    }

    #[test]
    fn out_of_order_cseq() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], None, "c", 7),
        ));
        r.take_changes();
        for cseq in [7, 6, 1] {
            assert_eq!(
                r.register(
                    at(1),
                    req("1001", vec![contact("sip:a@h", Some(0))], None, "c", cseq)
                ),
                RegisterOutcome::OutOfOrder
            );
        }
        // Aborts the whole request, including a new contact in it.
        assert_eq!(
            r.register(
                at(1),
                req(
                    "1001",
                    vec![contact("sip:z@h", None), contact("sip:a@h", None)],
                    None,
                    "c",
                    7
                )
            ),
            RegisterOutcome::OutOfOrder
        );
        assert_eq!(contacts_of(&r.all()), ["sip:a@h"]);
        assert!(r.take_changes().is_empty());
        assert!(
            current(r.register(
                at(1),
                req("1001", vec![contact("sip:a@h", None)], None, "c", 8)
            ))
            .len()
                == 1
        );
    }

    #[test]
    fn query_and_invalid() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], None, "c", 1),
        ));
        r.take_changes();
        let c = current(r.register(at(1), req("1001", vec![], None, "c", 1)));
        assert_eq!(contacts_of(&c), ["sip:a@h"]);
        assert!(r.take_changes().is_empty());
        let mut bad_q = contact("sip:b@h", None);
        bad_q.q = Some(1.5);
        let mut nan_q = contact("sip:b@h", None);
        nan_q.q = Some(f32::NAN);
        let table = [
            (
                req("", vec![contact("sip:a@h", None)], None, "c", 2),
                "EmptyAor",
            ),
            (
                req("1001", vec![contact("  ", None)], None, "c", 2),
                "EmptyContactUri",
            ),
            (req("1001", vec![bad_q], None, "c", 2), "InvalidQ"),
            (req("1001", vec![nan_q], None, "c", 2), "InvalidQ"),
        ];
        for (q, name) in table {
            match r.register(at(1), q) {
                RegisterOutcome::Invalid(e) => assert!(format!("{e:?}").starts_with(name), "{e:?}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(r.all().len(), 1);
    }

    #[test]
    fn unregister_unknown_contact_is_ok() {
        let mut r = Registrar::new(policy());
        let c = current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], Some(0), "c", 1),
        ));
        assert!(c.is_empty());
        assert!(r.take_changes().is_empty());
    }

    #[test]
    fn expire_and_poll_timeout() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", Some(100))], None, "c", 1),
        ));
        current(r.register(
            at(0),
            req("1002", vec![contact("sip:b@h", Some(200))], None, "d", 1),
        ));
        r.take_changes();
        assert_eq!(r.poll_timeout(), Some(at(100)));
        assert!(r.expire(at(99)).is_empty());
        // Not live at exactly expires_at.
        assert!(r.lookup(at(100), "1001").is_empty());
        let gone = r.expire(at(100));
        assert_eq!(contacts_of(&gone), ["sip:a@h"]);
        assert_eq!(
            r.take_changes(),
            vec![BindingChange::Removed {
                aor: "1001".into(),
                contact: "sip:a@h".into()
            }]
        );
        assert_eq!(r.poll_timeout(), Some(at(200)));
        assert_eq!(r.expire(at(1000)).len(), 1);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn expired_binding_does_not_block_register() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", Some(100))], None, "c", 5),
        ));
        r.take_changes();
        // Same Call-ID, lower CSeq, but the old binding expired: not out of order.
        let c = current(r.register(
            at(500),
            req("1001", vec![contact("sip:a@h", None)], None, "c", 1),
        ));
        assert_eq!(c.len(), 1);
        let ch = r.take_changes();
        assert_eq!(ch.len(), 2);
        assert!(matches!(ch[0], BindingChange::Removed { .. }));
        assert!(matches!(ch[1], BindingChange::Upserted(_)));
    }

    fn binding(aor: &str, contact: &str, expires_at: Time) -> Binding {
        Binding {
            aor: aor.into(),
            contact: contact.into(),
            source: src(),
            transport: "UDP".into(),
            expires_at,
            call_id: "c".into(),
            cseq: 1,
            q: None,
            path: vec![],
        }
    }

    #[test]
    fn a_binding_keeps_the_path_it_came_through() {
        let mut r = Registrar::new(policy());
        let path = vec!["<sip:10.0.0.1;lr;received=sip:192.0.2.7:5060>".to_string()];
        let RegisterOutcome::Updated { current } = r.register(
            at(0),
            RegisterRequest {
                path: path.clone(),
                ..req("1001", vec![contact("sip:a@h", None)], None, "c", 1)
            },
        ) else {
            panic!("not updated");
        };
        assert_eq!(current[0].path, path);
        assert_eq!(r.lookup(at(1), "1001")[0].path, path);
        // A refresh straight to this node (no Path) forgets it.
        r.register(
            at(2),
            req("1001", vec![contact("sip:a@h", None)], None, "c", 2),
        );
        assert!(r.lookup(at(3), "1001")[0].path.is_empty());
    }

    #[test]
    fn another_nodes_bindings_replace_an_aor_without_changes_to_persist() {
        let mut r = Registrar::new(policy());
        r.register(
            at(0),
            req("1001", vec![contact("sip:a@h", None)], None, "c", 1),
        );
        r.take_changes();
        // Another node refreshed it with a second contact; one row expired.
        let (before, after) = r.replace_aor(
            at(10),
            "1001",
            vec![
                binding("1001", "sip:a@h", at(100)),
                binding("1001", "sip:b@h", at(200)),
                binding("1001", "sip:gone@h", at(5)),
                binding("1002", "sip:not-this-aor@h", at(300)),
            ],
        );
        assert_eq!((before, after), (true, true));
        let now: Vec<String> = r
            .lookup(at(10), "1001")
            .into_iter()
            .map(|b| b.contact)
            .collect();
        assert_eq!(now, ["sip:b@h", "sip:a@h"]);
        assert!(r.lookup(at(10), "1002").is_empty());
        assert!(r.take_changes().is_empty());
        // ... and unregistered it there.
        assert_eq!(r.replace_aor(at(11), "1001", vec![]), (true, false));
        assert!(r.lookup(at(11), "1001").is_empty());
        assert_eq!(r.poll_timeout(), None);
        assert!(r.take_changes().is_empty());
    }

    #[test]
    fn restore_drops_expired() {
        let mut r = Registrar::new(policy());
        r.restore(
            at(0),
            vec![
                binding("1001", "sip:a@h", at(50)),
                binding("1001", "sip:old@h", at(0)),
                binding("1002", "sip:b@h", at(10)),
                binding("1001", "sip:a@h", at(60)),
            ],
        );
        let all = r.all();
        assert_eq!(all.len(), 2);
        assert_eq!(r.lookup(at(0), "1001")[0].expires_at, at(60));
        assert_eq!(r.poll_timeout(), Some(at(10)));
        assert_eq!(
            r.take_changes(),
            vec![BindingChange::Removed {
                aor: "1001".into(),
                contact: "sip:old@h".into()
            }]
        );
        // Cap enforced on restore too.
        let mut r = Registrar::new(policy());
        r.restore(
            at(0),
            (0..5)
                .map(|i| binding("1001", &format!("sip:{i}@h"), at(10 + i)))
                .collect(),
        );
        assert_eq!(
            contacts_of(&r.lookup(at(0), "1001")),
            ["sip:4@h", "sip:3@h", "sip:2@h"]
        );
        assert_eq!(r.take_changes().len(), 2);
    }

    #[test]
    fn take_changes_reports_upserts_and_removals() {
        let mut r = Registrar::new(policy());
        current(r.register(
            at(0),
            req(
                "1001",
                vec![contact("sip:a@h", None), contact("sip:b@h", None)],
                None,
                "c",
                1,
            ),
        ));
        let ch = r.take_changes();
        assert_eq!(ch.len(), 2);
        assert!(ch.iter().all(|c| matches!(c, BindingChange::Upserted(_))));
        assert!(r.take_changes().is_empty());
        current(r.register(
            at(1),
            req(
                "1001",
                vec![contact("sip:a@h", Some(0)), contact("sip:b@h", None)],
                None,
                "c",
                2,
            ),
        ));
        let ch = r.take_changes();
        assert_eq!(ch.len(), 2);
        assert_eq!(
            ch[0],
            BindingChange::Removed {
                aor: "1001".into(),
                contact: "sip:a@h".into()
            }
        );
        match &ch[1] {
            BindingChange::Upserted(b) => {
                assert_eq!(b.contact, "sip:b@h");
                assert_eq!(b.expires_at, at(601));
            }
            other => panic!("{other:?}"),
        }
        // Duplicate contact URIs in one request: the last wins.
        let c = current(r.register(
            at(2),
            req(
                "1001",
                vec![contact("sip:b@h", Some(100)), contact("sip:b@h", Some(0))],
                None,
                "c",
                3,
            ),
        ));
        assert!(c.is_empty());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn throttle_blocks_and_unblocks() {
        let mut t = FailureThrottle::new(3, 60, 300);
        let a = ip("203.0.113.5");
        let b = ip("203.0.113.6");
        t.record_failure(a, at(0));
        t.record_failure(a, at(1));
        assert!(!t.is_blocked(a, at(1)));
        t.record_failure(a, at(2));
        assert!(t.is_blocked(a, at(2)));
        assert!(!t.is_blocked(b, at(2)));
        assert!(t.is_blocked(a, at(301)));
        // Failures while blocked do not extend the block.
        t.record_failure(a, at(100));
        assert!(!t.is_blocked(a, at(302)));
        // Success does not lift an active block.
        t.record_failure(a, at(400));
        t.record_failure(a, at(401));
        t.record_failure(a, at(402));
        t.record_success(a);
        assert!(t.is_blocked(a, at(403)));
    }

    #[test]
    fn throttle_window_and_success_reset() {
        let mut t = FailureThrottle::new(3, 60, 300);
        let a = ip("203.0.113.5");
        // Failures spread over more than the window do not block.
        for i in 0..10 {
            t.record_failure(a, at(i * 40));
            assert!(!t.is_blocked(a, at(i * 40)), "{i}");
        }
        let mut t = FailureThrottle::new(3, 60, 300);
        t.record_failure(a, at(0));
        t.record_failure(a, at(1));
        t.record_success(a);
        t.record_failure(a, at(2));
        t.record_failure(a, at(3));
        assert!(!t.is_blocked(a, at(3)));
        t.record_failure(a, at(4));
        assert!(t.is_blocked(a, at(4)));
    }

    #[test]
    fn throttle_ipv6_prefix_and_mapped() {
        let mut t = FailureThrottle::new(2, 60, 300);
        t.record_failure(ip("2001:db8:1:2::1"), at(0));
        t.record_failure(ip("2001:db8:1:2:ffff::9"), at(0));
        assert!(t.is_blocked(ip("2001:db8:1:2::77"), at(0)));
        assert!(!t.is_blocked(ip("2001:db8:1:3::1"), at(0)));
        t.record_failure(ip("::ffff:198.51.100.7"), at(0));
        t.record_failure(ip("198.51.100.7"), at(0));
        assert!(t.is_blocked(ip("198.51.100.7"), at(0)));
    }

    #[test]
    fn throttle_bounded_and_expire() {
        let mut t = FailureThrottle::new(2, 60, 300).with_max_entries(2);
        t.record_failure(ip("10.0.0.1"), at(0));
        t.record_failure(ip("10.0.0.2"), at(0));
        t.record_failure(ip("10.0.0.3"), at(0));
        assert_eq!(t.len(), 2);
        // After the window the sweep frees room.
        t.record_failure(ip("10.0.0.3"), at(61));
        assert_eq!(t.len(), 1);
        // Blocked entries survive expire until the block ends.
        t.record_failure(ip("10.0.0.3"), at(62));
        assert!(t.is_blocked(ip("10.0.0.3"), at(62)));
        t.expire(at(200));
        assert_eq!(t.len(), 1);
        t.expire(at(62 + 300));
        assert!(t.is_empty());
        assert!(!t.is_blocked(ip("10.0.0.3"), at(62 + 300)));
    }

    #[test]
    fn throttle_zero_max_means_one() {
        let mut t = FailureThrottle::new(0, 60, 10);
        let a = ip("10.0.0.1");
        t.record_failure(a, at(0));
        assert!(t.is_blocked(a, at(0)));
        assert!(!t.is_blocked(a, at(10)));
    }
}
