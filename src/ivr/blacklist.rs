//! The in-memory block list behind the IVR `blacklist` node ("caller on the
//! block list → a message and hang-up, logged"). The CTI API will edit it
//! (persisted in SQLite) and configuration will seed it; both go through
//! [`Blacklist::insert`] / [`Blacklist::remove`], and the call path asks
//! [`Blacklist::is_blocked`] with the time passed in.
//!
//! Entries are kept per tenant, keyed by the normalised number
//! ([`super::number::normalise_number`]), so `+86 139 0571 0000` and
//! `13905710000` are one entry. A number ending in `*` is a prefix pattern
//! (`95*` blocks every number starting `95`, whether the caller's
//! normalised number or the number as presented starts so: `861300*`
//! blocks `8613000000000`, whose normalised form is the mobile
//! `13000000000`); `*` alone (block everything)
//! and `*` anywhere else are refused. A caller matching both an exact entry
//! and patterns gets the exact entry, else the longest matching pattern. An
//! entry with `expires_at` blocks while `now < expires_at`; expired entries
//! are ignored by lookups and dropped by [`Blacklist::purge_expired`].
//!
//! An entry's number is digits with an optional leading `+` (and the `*`
//! of a pattern); spaces, dashes, dots and brackets between them are
//! written-form noise and dropped. Anything else (letters, `#`, a second
//! `+`) is refused with [`BlacklistError::NotANumber`] (issue 12 item 8),
//! so a typo cannot become an entry that never matches.

use std::collections::{BTreeMap, HashMap};

use super::number::normalise_number;

/// One block-list entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Normalised number, or a prefix ending in `*`.
    pub number: String,
    /// Why (shown to supervisors, logged on each block).
    pub reason: String,
    /// Who added it (agent or admin id).
    pub added_by: String,
    /// Unix seconds at which the block ends; `None`: never.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

impl Entry {
    /// Whether the entry is a prefix pattern (`95*`).
    pub fn is_pattern(&self) -> bool {
        self.number.ends_with('*')
    }

    /// Whether the entry is in force at `now_unix`.
    pub fn is_active(&self, now_unix: i64) -> bool {
        self.expires_at.is_none_or(|t| now_unix < t)
    }
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlacklistError {
    /// Nothing left after normalisation.
    #[error("empty number")]
    EmptyNumber,
    /// `*` alone would block every caller.
    #[error("\"*\" would block every caller; give a prefix such as \"95*\"")]
    MatchesEverything,
    /// `*` somewhere other than the end.
    #[error("{0:?}: `*` may only end a prefix pattern, e.g. \"95*\"")]
    BadPattern(String),
    /// Not digits with an optional leading `+`.
    #[error(
        "{0:?} is not a phone number: digits with an optional leading `+`, and `*` to end a prefix"
    )]
    NotANumber(String),
    /// More digits than any phone number has.
    #[error("{0:?} is longer than {MAX_DIGITS} digits")]
    TooLong(String),
}

/// The most digits an entry may have (ITU-T E.164 allows 15; international
/// prefixes and extensions make room for more).
pub const MAX_DIGITS: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TenantList {
    /// Normalised number → entry.
    exact: HashMap<String, Entry>,
    /// Normalised prefix (without `*`) → entry.
    prefixes: BTreeMap<String, Entry>,
}

/// Block lists of all tenants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    tenants: HashMap<String, TenantList>,
}

/// The key of `number` (an entry's or a query's): normalised, and whether it
/// is a pattern.
fn key(number: &str) -> Result<(String, bool), BlacklistError> {
    let trimmed = number.trim();
    let (body, pattern) = match trimmed.strip_suffix('*') {
        Some(b) => (b, true),
        None => (trimmed, false),
    };
    if body.contains('*') {
        return Err(BlacklistError::BadPattern(number.to_string()));
    }
    let written: String = body
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    let digits = written.strip_prefix('+').unwrap_or(&written);
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.is_empty() && written.starts_with('+'))
    {
        return Err(BlacklistError::NotANumber(number.to_string()));
    }
    if digits.len() > MAX_DIGITS {
        return Err(BlacklistError::TooLong(number.to_string()));
    }
    let n = normalise_number(body);
    match (n.is_empty(), pattern) {
        (true, true) => Err(BlacklistError::MatchesEverything),
        (true, false) => Err(BlacklistError::EmptyNumber),
        (false, _) => Ok((n, pattern)),
    }
}

impl Blacklist {
    /// An empty block list.
    pub fn new() -> Blacklist {
        Blacklist::default()
    }

    /// Add or replace `entry` for `tenant`; its number is normalised (a
    /// pattern keeps its `*`). Returns the entry it replaced.
    pub fn insert(
        &mut self,
        tenant: &str,
        mut entry: Entry,
    ) -> Result<Option<Entry>, BlacklistError> {
        let (n, pattern) = key(&entry.number)?;
        let list = self.tenants.entry(tenant.to_string()).or_default();
        Ok(if pattern {
            entry.number = format!("{n}*");
            list.prefixes.insert(n, entry)
        } else {
            entry.number = n.clone();
            list.exact.insert(n, entry)
        })
    }

    /// Remove the entry for `number` (any written form; `95*` removes the
    /// pattern) from `tenant`'s list.
    pub fn remove(&mut self, tenant: &str, number: &str) -> Option<Entry> {
        let (n, pattern) = key(number).ok()?;
        let list = self.tenants.get_mut(tenant)?;
        let removed = if pattern {
            list.prefixes.remove(&n)
        } else {
            list.exact.remove(&n)
        };
        if list.exact.is_empty() && list.prefixes.is_empty() {
            self.tenants.remove(tenant);
        }
        removed
    }

    /// The entry blocking caller `number` for `tenant` at `now_unix`, if any:
    /// an active exact entry, else the longest active matching pattern.
    pub fn is_blocked(&self, tenant: &str, number: &str, now_unix: i64) -> Option<&Entry> {
        let list = self.tenants.get(tenant)?;
        let n = normalise_number(number);
        if n.is_empty() {
            return None;
        }
        if let Some(e) = list.exact.get(&n).filter(|e| e.is_active(now_unix)) {
            return Some(e);
        }
        if list.prefixes.is_empty() {
            return None;
        }
        // Every non-empty prefix, longest first.
        let longest = |s: &str| {
            (1..=s.len())
                .rev()
                .filter(|&end| s.is_char_boundary(end))
                .find_map(|end| {
                    list.prefixes
                        .get(&s[..end])
                        .filter(|e| e.is_active(now_unix))
                })
        };
        // A pattern matches the normalised number, or the number as the
        // carrier presented it: `861300*` blocks `8613000000000`, which
        // normalises to the mobile `13000000000`.
        longest(&n).or_else(|| {
            let written: String = number
                .chars()
                .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '(' | ')'))
                .collect();
            if written == n {
                None
            } else {
                longest(&written)
            }
        })
    }

    /// `tenant`'s entries (active or not), sorted by number.
    pub fn entries(&self, tenant: &str) -> Vec<&Entry> {
        let Some(list) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out: Vec<&Entry> = list.exact.values().chain(list.prefixes.values()).collect();
        out.sort_by(|a, b| a.number.cmp(&b.number));
        out
    }

    /// Tenants with at least one entry, sorted.
    pub fn tenants(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
        out.sort_unstable();
        out
    }

    /// Total entries over all tenants.
    pub fn len(&self) -> usize {
        self.tenants
            .values()
            .map(|l| l.exact.len() + l.prefixes.len())
            .sum()
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// Drop the entries expired at `now_unix`; returns them with their tenant
    /// (for the log), sorted by tenant and number.
    pub fn purge_expired(&mut self, now_unix: i64) -> Vec<(String, Entry)> {
        let mut out = Vec::new();
        for (tenant, list) in &mut self.tenants {
            // Collected then removed: `extract_if` is newer than the MSRV.
            let gone: Vec<String> = list
                .exact
                .iter()
                .filter(|(_, e)| !e.is_active(now_unix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                if let Some(e) = list.exact.remove(&k) {
                    out.push((tenant.clone(), e));
                }
            }
            let gone: Vec<String> = list
                .prefixes
                .iter()
                .filter(|(_, e)| !e.is_active(now_unix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                if let Some(e) = list.prefixes.remove(&k) {
                    out.push((tenant.clone(), e));
                }
            }
        }
        self.tenants
            .retain(|_, l| !l.exact.is_empty() || !l.prefixes.is_empty());
        out.sort_by(|a, b| (&a.0, &a.1.number).cmp(&(&b.0, &b.1.number)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(number: &str, expires_at: Option<i64>) -> Entry {
        Entry {
            number: number.into(),
            reason: format!("reason for {number}"),
            added_by: "agent-7".into(),
            expires_at,
        }
    }

    #[test]
    fn exact_entries_match_every_written_form() {
        let mut b = Blacklist::new();
        assert_eq!(b.insert("t1", entry("+86 139-0571-0000", None)), Ok(None));
        for caller in [
            "13905710000",
            "8613905710000",
            "013905710000",
            "+8613905710000",
        ] {
            let e = b.is_blocked("t1", caller, 0).unwrap();
            assert_eq!(e.number, "13905710000");
        }
        assert!(b.is_blocked("t2", "13905710000", 0).is_none()); // other tenant
        assert!(b.is_blocked("t1", "13905710001", 0).is_none());
        assert!(b.is_blocked("t1", "", 0).is_none());
        // Replacing returns the old entry.
        let old = b
            .insert("t1", entry("13905710000", Some(5)))
            .unwrap()
            .unwrap();
        assert_eq!(old.expires_at, None);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn patterns_and_precedence() {
        let mut b = Blacklist::new();
        b.insert("t", entry("95*", None)).unwrap();
        b.insert("t", entry("9510*", Some(100))).unwrap();
        b.insert("t", entry("95105555", None)).unwrap();
        b.insert("t", entry("+86 10 6512*", None)).unwrap();
        assert_eq!(b.is_blocked("t", "95588", 0).unwrap().number, "95*");
        assert_eq!(b.is_blocked("t", "95101234", 0).unwrap().number, "9510*");
        assert_eq!(b.is_blocked("t", "95101234", 100).unwrap().number, "95*"); // 9510* expired
        assert_eq!(b.is_blocked("t", "95105555", 0).unwrap().number, "95105555");
        assert_eq!(b.is_blocked("t", "95", 0).unwrap().number, "95*");
        assert_eq!(
            b.is_blocked("t", "010-6512 3456", 0).unwrap().number,
            "0106512*"
        );
        assert!(b.is_blocked("t", "9", 0).is_none());
        assert!(b.is_blocked("t", "12345", 0).is_none());
        assert!(b.is_blocked("t", "匿名", 0).is_none());
    }

    #[test]
    fn expiry() {
        let mut b = Blacklist::new();
        b.insert("t", entry("13905710000", Some(1000))).unwrap();
        b.insert("t", entry("13905710001", None)).unwrap();
        b.insert("u", entry("96*", Some(10))).unwrap();
        assert!(b.is_blocked("t", "13905710000", 999).is_some());
        assert!(b.is_blocked("t", "13905710000", 1000).is_none());
        let purged = b.purge_expired(1000);
        assert_eq!(
            purged
                .iter()
                .map(|(t, e)| (t.as_str(), e.number.as_str()))
                .collect::<Vec<_>>(),
            [("t", "13905710000"), ("u", "96*")]
        );
        assert_eq!(b.tenants(), ["t"]);
        assert_eq!(b.len(), 1);
        assert!(b.purge_expired(2000).is_empty());
    }

    #[test]
    fn remove_and_list() {
        let mut b = Blacklist::new();
        b.insert("t", entry("95*", None)).unwrap();
        b.insert("t", entry("13905710000", None)).unwrap();
        b.insert("t", entry("02112345678", None)).unwrap();
        let listed: Vec<&str> = b.entries("t").iter().map(|e| e.number.as_str()).collect();
        assert_eq!(listed, ["02112345678", "13905710000", "95*"]);
        assert!(b.entries("nobody").is_empty());
        assert!(b.remove("t", "95").is_none()); // the pattern is "95*"
        assert_eq!(b.remove("t", "95*").unwrap().number, "95*");
        assert_eq!(
            b.remove("t", "+86 139 0571 0000").unwrap().number,
            "13905710000"
        );
        assert!(b.remove("t", "*").is_none());
        assert!(b.remove("x", "1").is_none());
        assert_eq!(
            b.remove("t", "021-1234-5678").unwrap().number,
            "02112345678"
        );
        assert!(b.is_empty());
        assert!(b.tenants().is_empty());
    }

    #[test]
    fn refused_entries() {
        let mut b = Blacklist::new();
        assert_eq!(
            b.insert("t", entry("*", None)),
            Err(BlacklistError::MatchesEverything)
        );
        assert_eq!(
            b.insert("t", entry(" - ", None)),
            Err(BlacklistError::EmptyNumber)
        );
        assert_eq!(
            b.insert("t", entry("9*5", None)),
            Err(BlacklistError::BadPattern("9*5".into()))
        );
        assert_eq!(
            b.insert("t", entry("95**", None)),
            Err(BlacklistError::BadPattern("95**".into()))
        );
        for not_a_number in [
            "abc",
            "139abc",
            "++86139",
            "+",
            "+*",
            "#139",
            "139 x",
            "１３９",
        ] {
            assert_eq!(
                b.insert("t", entry(not_a_number, None)),
                Err(BlacklistError::NotANumber(not_a_number.into())),
                "{not_a_number:?}"
            );
        }
        let long = "1".repeat(MAX_DIGITS + 1);
        assert_eq!(
            b.insert("t", entry(&long, None)),
            Err(BlacklistError::TooLong(long.clone()))
        );
        assert!(b.is_empty());
        for written in ["+86 (139) 0571-0000", "010.1234.5678", "95*", "+1 555*"] {
            assert!(b.insert("t", entry(written, None)).is_ok(), "{written:?}");
        }
        assert_eq!(
            BlacklistError::MatchesEverything.to_string(),
            "\"*\" would block every caller; give a prefix such as \"95*\""
        );
    }

    #[test]
    fn entry_serde_shape() {
        let e: Entry =
            toml::from_str("number = \"95*\"\nreason = \"spam\"\nadded_by = \"admin\"\n").unwrap();
        assert_eq!(e.expires_at, None);
        assert!(e.is_pattern() && e.is_active(i64::MAX));
    }

    proptest! {
        #[test]
        fn lookups_never_panic(n in "\\PC{0,20}", p in "[0-9]{1,4}", now in any::<i64>()) {
            let mut b = Blacklist::new();
            b.insert("t", entry(&format!("{p}*"), Some(0))).unwrap();
            let _ = b.is_blocked("t", &n, now);
            let _ = b.remove("t", &n);
        }

        #[test]
        fn pattern_blocks_its_prefix_regression_country_code(tail in "[0-9]{7}") {
            // Found by the property below: `86` + a mobile loses its `86`
            // when normalised, and the pattern still matches as presented.
            let mut b = Blacklist::new();
            b.insert("t", entry("861300*", None)).unwrap();
            let caller = format!("861300{tail}");
            prop_assert!(b.is_blocked("t", &caller, 0).is_some());
        }

        #[test]
        fn pattern_blocks_its_prefix(p in "[2-9][0-9]{0,5}", tail in "[0-9]{0,8}") {
            let mut b = Blacklist::new();
            b.insert("t", entry(&format!("{p}*"), None)).unwrap();
            let caller = format!("{p}{tail}");
            prop_assert!(b.is_blocked("t", &caller, 0).is_some());
        }
    }
}
