//! Calls in progress and calls just started, per trunk and per centre
//! (tenant), for the admission caps of issue 14 §5 (`max_calls`,
//! `max_cps` on `[[trunk]]` and `[[tenant]]`).
//!
//! [`CallLoad`] is the pure ledger: it takes `now` as input (the shell
//! passes the wall clock), keeps per scope the calls in progress, the
//! start times within the last second (only for scopes with a CPS cap,
//! never more than the cap), what was admitted and what was refused. The
//! admission core ([`super::admission`]) reads it through
//! [`admission::Load`] and decides; the dispatch shell then counts an
//! admitted call with [`CallSlots::start`], which hands back a [`Slot`]:
//! the call task holds it, and dropping it — however the task ends: the
//! call answered and hung up, refused later, cancelled, or the task
//! panicking or being aborted — ends the call in the ledger, so no slot
//! ever leaks.
//!
//! A clock that goes back never wedges a CPS window: starts stamped after
//! `now` are dropped from it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::time::Time;

use super::admission::{self, CapScope, Usage};

/// The CPS window.
pub const CPS_WINDOW: Duration = Duration::from_secs(1);

/// One scope's caps (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Calls in progress at once.
    pub max_calls: u32,
    /// New calls within any one second.
    pub max_cps: u32,
}

#[derive(Debug, Clone, Default)]
struct ScopeLoad {
    caps: Caps,
    active: u32,
    /// Start times within the window, oldest first (only with a CPS cap).
    starts: VecDeque<Time>,
    admitted: u64,
    refused_calls: u64,
    refused_cps: u64,
    /// Refusing since the last admitted call (one log line per episode).
    refusing: bool,
}

impl ScopeLoad {
    fn in_window(&self, now: Time) -> u32 {
        let n = self
            .starts
            .iter()
            .rev()
            .take_while(|t| **t <= now && now.saturating_duration_since(**t) < CPS_WINDOW)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn usage(&self, now: Time) -> Usage {
        Usage {
            active: self.active,
            last_second: self.in_window(now),
            max_calls: self.caps.max_calls,
            max_cps: self.caps.max_cps,
        }
    }

    fn start(&mut self, now: Time) {
        self.active = self.active.saturating_add(1);
        self.admitted += 1;
        self.refusing = false;
        if self.caps.max_cps > 0 {
            // Drop what left the window, and starts "after" now (a clock
            // that went back).
            self.starts
                .retain(|t| *t <= now && now.saturating_duration_since(*t) < CPS_WINDOW);
            self.starts.push_back(now);
            let cap = usize::try_from(self.caps.max_cps).unwrap_or(usize::MAX);
            while self.starts.len() > cap {
                self.starts.pop_front();
            }
        }
    }

    fn figures(&self, scope: &'static str, name: &str) -> ScopeFigures {
        ScopeFigures {
            scope,
            name: name.to_string(),
            active: self.active,
            max_calls: self.caps.max_calls,
            max_cps: self.caps.max_cps,
            admitted: self.admitted,
            refused_calls: self.refused_calls,
            refused_cps: self.refused_cps,
        }
    }
}

/// What `/healthz` shows of one trunk or centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeFigures {
    /// `trunk` or `tenant`.
    pub scope: &'static str,
    /// The trunk's name or the centre's id.
    pub name: String,
    /// Calls in progress.
    pub active: u32,
    /// The concurrent-call cap (0 = none).
    pub max_calls: u32,
    /// The calls-per-second cap (0 = none).
    pub max_cps: u32,
    /// Calls admitted since the start.
    pub admitted: u64,
    /// INVITEs refused at the concurrent-call cap since the start.
    pub refused_calls: u64,
    /// INVITEs refused at the CPS cap since the start.
    pub refused_cps: u64,
}

/// The ledger (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct CallLoad {
    trunks: HashMap<String, ScopeLoad>,
    tenants: HashMap<String, ScopeLoad>,
}

impl CallLoad {
    /// A ledger with these caps; trunks and centres not listed have none.
    pub fn new(
        trunks: impl IntoIterator<Item = (String, Caps)>,
        tenants: impl IntoIterator<Item = (String, Caps)>,
    ) -> Self {
        let scopes = |list: &mut dyn Iterator<Item = (String, Caps)>| {
            list.map(|(name, caps)| {
                (
                    name,
                    ScopeLoad {
                        caps,
                        ..ScopeLoad::default()
                    },
                )
            })
            .collect()
        };
        Self {
            trunks: scopes(&mut trunks.into_iter()),
            tenants: scopes(&mut tenants.into_iter()),
        }
    }

    fn scope(&self, scope: &CapScope) -> Option<&ScopeLoad> {
        match scope {
            CapScope::Trunk(n) => self.trunks.get(n),
            CapScope::Tenant(n) => self.tenants.get(n),
        }
    }

    fn scope_mut(&mut self, scope: &CapScope) -> &mut ScopeLoad {
        match scope {
            CapScope::Trunk(n) => self.trunks.entry(n.clone()).or_default(),
            CapScope::Tenant(n) => self.tenants.entry(n.clone()).or_default(),
        }
    }

    /// Counts a call admitted at `now` for `trunk` and `tenant`.
    pub fn start(&mut self, trunk: &str, tenant: &str, now: Time) {
        self.scope_mut(&CapScope::Trunk(trunk.to_string()))
            .start(now);
        self.scope_mut(&CapScope::Tenant(tenant.to_string()))
            .start(now);
    }

    /// Counts the end of a call [`CallLoad::start`] counted.
    pub fn end(&mut self, trunk: &str, tenant: &str) {
        for scope in [
            CapScope::Trunk(trunk.to_string()),
            CapScope::Tenant(tenant.to_string()),
        ] {
            let s = self.scope_mut(&scope);
            s.active = s.active.saturating_sub(1);
        }
    }

    /// Counts an INVITE refused at a cap; `true` for the first refusal
    /// since the scope last admitted a call (the shell logs that one, so a
    /// burst beyond a cap is one log line, not one per INVITE).
    pub fn refused(&mut self, scope: &CapScope, cap: admission::Cap) -> bool {
        let s = self.scope_mut(scope);
        match cap {
            admission::Cap::Calls(_) => s.refused_calls += 1,
            admission::Cap::Cps(_) => s.refused_cps += 1,
        }
        !std::mem::replace(&mut s.refusing, true)
    }

    /// Every trunk's then every centre's figures, by name.
    pub fn figures(&self) -> Vec<ScopeFigures> {
        let mut trunks: Vec<_> = self
            .trunks
            .iter()
            .map(|(n, s)| s.figures("trunk", n))
            .collect();
        let mut tenants: Vec<_> = self
            .tenants
            .iter()
            .map(|(n, s)| s.figures("tenant", n))
            .collect();
        trunks.sort_by(|a, b| a.name.cmp(&b.name));
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        trunks.extend(tenants);
        trunks
    }

    /// The ledger as the admission core reads it at `now`.
    pub fn at(&self, now: Time) -> LoadAt<'_> {
        LoadAt { load: self, now }
    }
}

/// A [`CallLoad`] read at one instant.
pub struct LoadAt<'a> {
    load: &'a CallLoad,
    now: Time,
}

impl admission::Load for LoadAt<'_> {
    fn usage(&self, scope: &CapScope) -> Usage {
        self.load
            .scope(scope)
            .map(|s| s.usage(self.now))
            .unwrap_or_default()
    }
}

/// The shared ledger of a running switch.
#[derive(Debug, Clone, Default)]
pub struct CallSlots(Arc<Mutex<CallLoad>>);

impl CallSlots {
    /// The switch's ledger with these caps.
    pub fn new(load: CallLoad) -> Self {
        Self(Arc::new(Mutex::new(load)))
    }

    /// Runs `f` on the ledger (a poisoned lock is taken over: the ledger
    /// holds only counts).
    pub fn with<R>(&self, f: impl FnOnce(&mut CallLoad) -> R) -> R {
        match self.0.lock() {
            Ok(mut l) => f(&mut l),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Counts a call admitted at `now`; the call ends in the ledger when
    /// the [`Slot`] is dropped. The caller has decided admission under the
    /// same [`CallSlots::with`] or holds the only dispatch loop.
    pub fn start(&self, load: &mut CallLoad, trunk: &str, tenant: &str, now: Time) -> Slot {
        load.start(trunk, tenant, now);
        Slot {
            slots: self.clone(),
            trunk: trunk.to_string(),
            tenant: tenant.to_string(),
        }
    }

    /// Every trunk's and centre's figures.
    pub fn figures(&self) -> Vec<ScopeFigures> {
        self.with(|l| l.figures())
    }
}

/// One admitted call's place in the ledger; dropping it ends the call
/// there.
#[derive(Debug)]
pub struct Slot {
    slots: CallSlots,
    trunk: String,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (trunk, tenant) = (&self.trunk, &self.tenant);
        self.slots.with(|l| l.end(trunk, tenant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::admission::Load;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;

    fn at(ms: u64) -> Time {
        Time::from_unix_millis(T0 + ms)
    }

    fn trunk(n: &str) -> CapScope {
        CapScope::Trunk(n.into())
    }

    fn tenant(n: &str) -> CapScope {
        CapScope::Tenant(n.into())
    }

    fn ledger() -> CallLoad {
        CallLoad::new(
            [(
                "carrier".to_string(),
                Caps {
                    max_calls: 2,
                    max_cps: 3,
                },
            )],
            [(
                "city".to_string(),
                Caps {
                    max_calls: 5,
                    max_cps: 0,
                },
            )],
        )
    }

    #[test]
    fn starts_and_ends_count_per_trunk_and_tenant() {
        let mut l = ledger();
        l.start("carrier", "city", at(0));
        l.start("carrier", "city", at(10));
        let u = l.at(at(20)).usage(&trunk("carrier"));
        assert_eq!(
            u,
            Usage {
                active: 2,
                last_second: 2,
                max_calls: 2,
                max_cps: 3
            }
        );
        assert_eq!(l.at(at(20)).usage(&tenant("city")).active, 2);
        // No CPS cap on the tenant: no window kept.
        assert_eq!(l.at(at(20)).usage(&tenant("city")).last_second, 0);
        l.end("carrier", "city");
        assert_eq!(l.at(at(20)).usage(&trunk("carrier")).active, 1);
        assert_eq!(l.at(at(20)).usage(&tenant("city")).active, 1);
        // A second later the window is empty.
        assert_eq!(l.at(at(1_010)).usage(&trunk("carrier")).last_second, 0);
        assert_eq!(l.at(at(1_009)).usage(&trunk("carrier")).last_second, 1);
    }

    #[test]
    fn unknown_scopes_have_no_caps_and_are_counted() {
        let mut l = ledger();
        assert_eq!(l.at(at(0)).usage(&trunk("other")), Usage::default());
        l.start("other", "nowhere", at(0));
        let u = l.at(at(0)).usage(&trunk("other"));
        assert_eq!((u.active, u.max_calls, u.max_cps), (1, 0, 0));
        l.end("other", "nowhere");
        l.end("other", "nowhere");
        assert_eq!(
            l.at(at(0)).usage(&trunk("other")).active,
            0,
            "never below 0"
        );
    }

    #[test]
    fn refusals_and_figures() {
        let mut l = ledger();
        l.start("carrier", "city", at(0));
        // The first refusal of an episode is reported, the next are not …
        assert!(l.refused(&trunk("carrier"), admission::Cap::Calls(2)));
        assert!(!l.refused(&trunk("carrier"), admission::Cap::Cps(3)));
        assert!(l.refused(&tenant("city"), admission::Cap::Calls(5)));
        // … until the scope admits a call again.
        l.start("carrier", "city", at(1));
        l.end("carrier", "city");
        assert!(l.refused(&tenant("city"), admission::Cap::Calls(5)));
        l.refused(&tenant("city"), admission::Cap::Calls(5));
        let f = l.figures();
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            ScopeFigures {
                scope: "trunk",
                name: "carrier".into(),
                active: 1,
                max_calls: 2,
                max_cps: 3,
                admitted: 2,
                refused_calls: 1,
                refused_cps: 1,
            }
        );
        assert_eq!(
            (f[1].scope, f[1].refused_calls, f[1].max_calls),
            ("tenant", 3, 5)
        );
    }

    #[test]
    fn a_clock_that_goes_back_does_not_wedge_the_window() {
        let mut l = ledger();
        for i in 0..3 {
            l.start("carrier", "city", at(3_600_000 + i));
        }
        assert_eq!(l.at(at(3_600_010)).usage(&trunk("carrier")).last_second, 3);
        // The clock goes back an hour: those starts are not "within the
        // last second" any more.
        assert_eq!(l.at(at(10)).usage(&trunk("carrier")).last_second, 0);
        l.start("carrier", "city", at(20));
        assert_eq!(l.at(at(20)).usage(&trunk("carrier")).last_second, 1);
    }

    #[test]
    fn a_slot_ends_its_call_when_dropped_even_by_a_panicking_task() {
        let slots = CallSlots::new(ledger());
        let slot = slots.with(|l| slots.start(l, "carrier", "city", at(0)));
        let second = slots.with(|l| slots.start(l, "carrier", "city", at(1)));
        assert_eq!(slots.figures()[0].active, 2);
        drop(slot);
        assert_eq!(slots.figures()[0].active, 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let outcome = rt.block_on(async move {
            tokio::spawn(async move {
                let _held = second;
                panic!("the call task crashes");
            })
            .await
        });
        assert!(outcome.is_err());
        assert_eq!(slots.figures()[0].active, 0);
        assert_eq!(slots.figures()[1].active, 0);
        // An aborted task drops its slot too.
        let slot = slots.with(|l| slots.start(l, "carrier", "city", at(2)));
        rt.block_on(async {
            let task = tokio::spawn(async move {
                let _held = slot;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            task.abort();
            assert!(task.await.is_err());
        });
        assert_eq!(slots.figures()[0].active, 0);
    }

    proptest! {
        /// Whatever the starts (times in order, with gaps), the window
        /// count equals the starts within the last second, capped at
        /// `max_cps` (the ledger never needs to remember more).
        #[test]
        fn window_counts_the_last_second(gaps in proptest::collection::vec(0u64..700, 1..100)) {
            let mut l = ledger();
            let mut now = 0;
            let mut all = Vec::new();
            for g in gaps {
                now += g;
                l.start("carrier", "city", at(now));
                all.push(now);
                let expected = all.iter().filter(|t| now - **t < 1_000).count().min(3);
                let got = l.at(at(now)).usage(&trunk("carrier")).last_second;
                prop_assert_eq!(got as usize, expected);
            }
        }
    }
}
