//! Carrier trunks (REQUIREMENTS §1 "primary/backup trunks with instant
//! switch-over"): which trunk a request's source address belongs to (IP
//! peering ACL), the order in which an outbound attempt tries trunks, when
//! a failure moves the attempt to the backup, and the schedule of outbound
//! registrations (RFC 3261 §10.2.4 refresh before expiry, backoff on
//! failure). Pure: time is injected as a
//! [`Time`]; lifetimes and back-offs are whole seconds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use crate::time::Time;

/// One trunk as this core sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trunk {
    /// Unique name.
    pub name: String,
    /// Source networks of the carrier's signalling.
    pub inbound: Vec<IpNet>,
    /// Where outbound requests go.
    pub proxy: Option<SocketAddr>,
    /// Outbound over a stream: TCP, or TLS when the stack keeps a TLS
    /// connection to `proxy` (`sip::tls_client`).
    pub tcp: bool,
    /// Next trunk on failure.
    pub backup: Option<String>,
    /// Seconds to wait for a provisional response before failing over.
    pub invite_timeout_secs: u64,
}

/// All trunks.
#[derive(Debug, Clone, Default)]
pub struct TrunkTable {
    trunks: Vec<Trunk>,
}

impl TrunkTable {
    /// Build from a list (names are unique; config validation checks it).
    pub fn new(trunks: Vec<Trunk>) -> Self {
        Self { trunks }
    }

    /// The trunk whose ACL admits `ip`: the most specific network wins, so
    /// a narrow carrier range beats a broad one.
    pub fn match_source(&self, ip: IpAddr) -> Option<&Trunk> {
        self.trunks
            .iter()
            .filter_map(|t| {
                t.inbound
                    .iter()
                    .filter(|n| n.contains(&ip))
                    .map(|n| n.prefix_len())
                    .max()
                    .map(|len| (len, t))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, t)| t)
    }

    /// By name.
    pub fn get(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The attempt order for an outbound call starting at `name`: the trunk,
    /// then its backup chain, skipping trunks without a proxy and repeats.
    pub fn attempt_order(&self, name: &str) -> Vec<&Trunk> {
        let mut order: Vec<&Trunk> = Vec::new();
        let mut next = self.get(name);
        while let Some(t) = next {
            if order.iter().any(|o| o.name == t.name) {
                break;
            }
            order.push(t);
            next = t.backup.as_deref().and_then(|b| self.get(b));
        }
        order.retain(|t| t.proxy.is_some());
        order
    }
}

/// Whether a final response on one trunk moves the attempt to the next one:
/// the trunk is unreachable (408, our own transport failure 503) or broken
/// (5xx). A 4xx/6xx is the callee's answer and ends the attempt.
pub fn fails_over(code: u16) -> bool {
    code == 408 || (500..600).contains(&code)
}

/// Outbound registration schedule for one trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationSchedule {
    /// Requested lifetime.
    pub expires_secs: u32,
    next_attempt: Time,
    failures: u32,
    registered_until: Option<Time>,
}

impl RegistrationSchedule {
    /// A schedule whose first attempt is due at `now`.
    pub fn new(now: Time, expires_secs: u32) -> Self {
        Self {
            expires_secs,
            next_attempt: now,
            failures: 0,
            registered_until: None,
        }
    }

    /// When the next REGISTER is due.
    pub fn poll_timeout(&self) -> Time {
        self.next_attempt
    }

    /// True while a registration is believed valid.
    pub fn is_registered(&self, now: Time) -> bool {
        self.registered_until.is_some_and(|u| now < u)
    }

    /// The carrier accepted for `granted` seconds: refresh at ~80 % of the
    /// lifetime (at least 5 s before expiry).
    pub fn on_success(&mut self, now: Time, granted: u32) {
        let granted = u64::from(granted.max(1));
        self.failures = 0;
        self.registered_until = Some(now + Duration::from_secs(granted));
        let margin = (granted / 5).max(5).min(granted.saturating_sub(1));
        self.next_attempt = now + Duration::from_secs(granted.saturating_sub(margin).max(1));
    }

    /// The attempt failed: retry with exponential backoff 2, 4, 8 … 300 s.
    pub fn on_failure(&mut self, now: Time) {
        self.failures = self.failures.saturating_add(1);
        let backoff = 2u64.saturating_pow(self.failures.min(9)).min(300);
        self.next_attempt = now + Duration::from_secs(backoff);
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(name: &str, nets: &[&str], proxy: Option<&str>, backup: Option<&str>) -> Trunk {
        Trunk {
            name: name.into(),
            inbound: nets.iter().map(|n| n.parse().unwrap()).collect(),
            proxy: proxy.map(|p| p.parse().unwrap()),
            tcp: false,
            backup: backup.map(Into::into),
            invite_timeout_secs: 4,
        }
    }

    #[test]
    fn most_specific_acl_wins() {
        let t = TrunkTable::new(vec![
            trunk("broad", &["127.0.0.0/8"], None, None),
            trunk("narrow", &["127.0.0.10/32"], None, None),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.match_source(ip("127.0.0.10")).unwrap().name, "narrow");
        assert_eq!(t.match_source(ip("127.0.0.11")).unwrap().name, "broad");
        assert!(t.match_source(ip("10.0.0.1")).is_none());
    }

    #[test]
    fn attempt_order_follows_backup_once_and_skips_proxyless() {
        let t = TrunkTable::new(vec![
            trunk("a", &[], Some("127.0.0.30:5060"), Some("b")),
            trunk("b", &[], None, Some("c")),
            trunk("c", &[], Some("127.0.0.31:5060"), Some("a")),
        ]);
        let names: Vec<_> = t
            .attempt_order("a")
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert!(t.attempt_order("zzz").is_empty());
    }

    #[test]
    fn failover_codes() {
        for (code, expect) in [
            (408, true),
            (500, true),
            (503, true),
            (486, false),
            (404, false),
            (603, false),
            (200, false),
        ] {
            assert_eq!(fails_over(code), expect, "{code}");
        }
    }

    #[test]
    fn registration_refreshes_before_expiry_and_backs_off() {
        let t = Time::from_unix_secs;
        let mut s = RegistrationSchedule::new(t(1000), 3600);
        assert_eq!(s.poll_timeout(), t(1000));
        s.on_success(t(1000), 3600);
        assert!(s.is_registered(t(1001)));
        assert_eq!(s.poll_timeout(), t(1000 + 3600 - 720));
        s.on_failure(t(3880));
        assert_eq!(s.poll_timeout(), t(3882));
        s.on_failure(t(3882));
        assert_eq!(s.poll_timeout(), t(3886));
        for _ in 0..20 {
            s.on_failure(t(5000));
        }
        assert_eq!(s.poll_timeout(), t(5300));
        assert!(!s.is_registered(t(5000)));
        s.on_success(t(6000), 10);
        assert_eq!(s.failures(), 0);
        assert_eq!(s.poll_timeout(), t(6005));
    }
}
