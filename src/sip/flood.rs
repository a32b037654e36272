//! Per-source SIP flood limiting with temporary bans (issue 14 §5), the
//! job Kamailio's `pike` module does: every message from one IP address
//! takes a token from that address's bucket (`rate` per second, at most
//! `burst` saved up); an address that runs dry is banned for `ban`, and
//! while banned everything it sends is dropped unread.
//!
//! Sources inside `exempt` (the trunks' CIDRs, where a carrier's SBC
//! legitimately sends hundreds of requests a second) are never limited:
//! UDP sources are trivially spoofed, and banning a carrier because a
//! flooder forged its address would be the attack succeeding.
//!
//! A pure core: time is an input ([`Time`]), no clock is read. Memory is
//! bounded: buckets that would be full again are forgotten by
//! [`Limiter::admit`]'s periodic sweep, and at most `max_sources`
//! addresses are tracked (past that, new addresses share one overflow
//! bucket, so a spoofed-source flood is limited as one source).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::time::Time;

/// What the limiter enforces.
#[derive(Debug, Clone)]
pub struct FloodPolicy {
    /// Messages per second one address may send on average; 0 = no limit.
    pub rate: u32,
    /// Messages one address may send at once after a quiet spell.
    pub burst: u32,
    /// How long a flooding address is ignored.
    pub ban: Duration,
    /// Addresses never limited (trunk CIDRs, a trusted SBC).
    pub exempt: Vec<IpNet>,
    /// Addresses tracked at once before new ones share a bucket.
    pub max_sources: usize,
}

impl FloodPolicy {
    /// No limit at all (soft-phones, the load generator).
    pub fn off() -> Self {
        Self {
            rate: 0,
            burst: 0,
            ban: Duration::ZERO,
            exempt: Vec::new(),
            max_sources: 0,
        }
    }
}

/// The verdict on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within its budget (or exempt): read it.
    Pass,
    /// This message ran the address dry: it is banned from now on (log
    /// this once).
    Banned,
    /// The address is banned: drop unread.
    Dropped,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Thousandths of a message.
    milli: u64,
    at: Time,
}

/// What the limiter has done, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodCounts {
    /// Messages dropped because their source was banned.
    pub dropped: u64,
    /// Bans imposed.
    pub bans: u64,
    /// Addresses banned right now.
    pub banned_now: usize,
}

/// One limiter per SIP listener.
#[derive(Debug)]
pub struct Limiter {
    policy: FloodPolicy,
    buckets: HashMap<IpAddr, Bucket>,
    banned: HashMap<IpAddr, Time>,
    overflow: Bucket,
    last_sweep: Time,
    counts: FloodCounts,
}

const OVERFLOW: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl Limiter {
    /// A limiter enforcing `policy`.
    pub fn new(policy: FloodPolicy) -> Self {
        let full = u64::from(policy.burst.max(1)) * 1000;
        Self {
            policy,
            buckets: HashMap::new(),
            banned: HashMap::new(),
            overflow: Bucket {
                milli: full,
                at: Time::UNIX_EPOCH,
            },
            last_sweep: Time::UNIX_EPOCH,
            counts: FloodCounts::default(),
        }
    }

    /// Whether limiting is on at all.
    pub fn enabled(&self) -> bool {
        self.policy.rate > 0
    }

    /// Whether `ip` is banned at `now` (a TCP accept asks this).
    pub fn is_banned(&self, ip: IpAddr, now: Time) -> bool {
        self.banned.get(&ip).is_some_and(|until| now < *until)
    }

    /// Account one message from `ip` at `now`.
    pub fn admit(&mut self, ip: IpAddr, now: Time) -> Admit {
        if !self.enabled() || self.policy.exempt.iter().any(|n| n.contains(&ip)) {
            return Admit::Pass;
        }
        if now.saturating_duration_since(self.last_sweep) >= Duration::from_secs(1) {
            self.sweep(now);
        }
        if let Some(until) = self.banned.get(&ip) {
            if now < *until {
                self.counts.dropped += 1;
                return Admit::Dropped;
            }
            self.banned.remove(&ip);
            self.buckets.remove(&ip);
        }
        let full = u64::from(self.policy.burst.max(1)) * 1000;
        let rate = u64::from(self.policy.rate);
        let tracked = self.buckets.contains_key(&ip);
        let room = tracked || self.buckets.len() < self.policy.max_sources.max(1);
        let bucket = if room {
            self.buckets.entry(ip).or_insert(Bucket {
                milli: full,
                at: now,
            })
        } else {
            &mut self.overflow
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_millis() as u64;
        bucket.milli = (bucket.milli + elapsed.saturating_mul(rate)).min(full);
        bucket.at = now;
        if bucket.milli >= 1000 {
            bucket.milli -= 1000;
            return Admit::Pass;
        }
        let key = if room { ip } else { OVERFLOW };
        if key == OVERFLOW {
            // The overflow bucket is shared: refuse this message, ban no one.
            self.counts.dropped += 1;
            return Admit::Dropped;
        }
        self.banned.insert(key, now + self.policy.ban);
        self.buckets.remove(&key);
        self.counts.bans += 1;
        self.counts.dropped += 1;
        Admit::Banned
    }

    /// Forget buckets that have refilled and bans that have run out.
    fn sweep(&mut self, now: Time) {
        self.last_sweep = now;
        let rate = u64::from(self.policy.rate.max(1));
        let full = u64::from(self.policy.burst.max(1)) * 1000;
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_millis() as u64;
            b.milli + elapsed.saturating_mul(rate) < full
        });
        self.banned.retain(|_, until| now < *until);
    }

    /// What has been done so far.
    pub fn counts(&self) -> FloodCounts {
        FloodCounts {
            banned_now: self.banned.len(),
            ..self.counts
        }
    }

    /// Addresses tracked (for tests of the memory bound).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FloodPolicy {
        FloodPolicy {
            rate: 10,
            burst: 20,
            ban: Duration::from_secs(60),
            exempt: vec!["10.0.0.0/8".parse().expect("cidr")],
            max_sources: 1000,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_burst_passes_a_flood_is_banned_then_forgiven() {
        let mut l = Limiter::new(policy());
        let t0 = Time::from_unix_secs(1_000);
        let a = ip("192.0.2.1");
        for _ in 0..20 {
            assert_eq!(l.admit(a, t0), Admit::Pass);
        }
        assert_eq!(l.admit(a, t0), Admit::Banned);
        assert!(l.is_banned(a, t0));
        for s in 1..60 {
            assert_eq!(l.admit(a, t0 + Duration::from_secs(s)), Admit::Dropped);
        }
        let later = t0 + Duration::from_secs(61);
        assert!(!l.is_banned(a, later));
        assert_eq!(l.admit(a, later), Admit::Pass);
        let c = l.counts();
        assert_eq!(c.bans, 1);
        assert_eq!(c.dropped, 60);
    }

    #[test]
    fn a_steady_rate_within_the_limit_is_never_banned() {
        let mut l = Limiter::new(policy());
        let a = ip("192.0.2.2");
        let t0 = Time::from_unix_secs(1_000);
        for i in 0..10_000u64 {
            // 9 messages a second, under the rate of 10.
            let now = t0 + Duration::from_millis(i * 111);
            assert_eq!(l.admit(a, now), Admit::Pass, "message {i}");
        }
    }

    #[test]
    fn one_flooder_does_not_touch_another_source_and_exempt_sources_pass() {
        let mut l = Limiter::new(policy());
        let t0 = Time::from_unix_secs(1_000);
        for _ in 0..1000 {
            l.admit(ip("192.0.2.3"), t0);
            assert_eq!(l.admit(ip("10.1.2.3"), t0), Admit::Pass);
        }
        assert_eq!(l.admit(ip("192.0.2.4"), t0), Admit::Pass);
    }

    #[test]
    fn spoofed_sources_are_bounded_in_memory() {
        let mut l = Limiter::new(FloodPolicy {
            max_sources: 100,
            ..policy()
        });
        let t0 = Time::from_unix_secs(1_000);
        for i in 0..20_000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 + i));
            l.admit(a, t0);
        }
        assert!(l.tracked() <= 100);
        // Once they have refilled, the sweep forgets them.
        l.admit(ip("192.0.2.9"), t0 + Duration::from_secs(10));
        assert!(l.tracked() <= 1, "{}", l.tracked());
    }

    #[test]
    fn off_passes_everything() {
        let mut l = Limiter::new(FloodPolicy::off());
        for _ in 0..10_000 {
            assert_eq!(l.admit(ip("192.0.2.1"), Time::UNIX_EPOCH), Admit::Pass);
        }
    }
}
