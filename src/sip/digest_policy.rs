//! Which Digest algorithms a request is challenged with, and which
//! credentials are then accepted, sans-IO.
//!
//! RFC 8760 §2.4 lets a server send one challenge per algorithm, most
//! preferred first. Deployed phones do not all cope: baresip 1.0 (and other
//! phones in the field) give up on a 401 that carries two
//! `WWW-Authenticate` headers, so hotline sends **one challenge per
//! request** by default ([`ChallengeMode::Single`]) and picks its algorithm
//! per agent:
//!
//! 1. the agent's own `digest_algorithm`, when set (config validation makes
//!    sure it is listed and its credentials can answer it);
//! 2. else the first of the realm's `digest_algorithms` that the agent's
//!    credentials can answer (a password answers any; a stored HA1 only its
//!    own algorithm, so an agent with only `ha1_sha256` gets SHA-256);
//! 3. an unknown user gets the realm's first algorithm, like any agent
//!    without a setting.
//!
//! [`ChallengeMode::Multiple`] is RFC 8760's behaviour: every listed
//! algorithm the agent's credentials can answer, in the listed order (an
//! agent's own setting still narrows it to that one).
//!
//! What is challenged is also what is accepted: credentials in another
//! algorithm fail like a wrong password, so an agent configured for SHA-256
//! cannot be downgraded to MD5 (RFC 8760 §3).

use super::auth::{ha1, DigestAlgorithm, Secret};

/// How many challenges one 401/407 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMode {
    /// One challenge, in the algorithm chosen for the agent (default).
    Single,
    /// One challenge per algorithm the agent can answer (RFC 8760 §2.4).
    Multiple,
}

impl ChallengeMode {
    /// Parses `single` or `multiple` (the `[registrar] digest_challenge`
    /// values).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "single" => Some(Self::Single),
            "multiple" => Some(Self::Multiple),
            _ => None,
        }
    }
}

/// One agent's Digest credentials and setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAccount {
    /// The password or stored HA1 hashes.
    pub secret: Secret,
    /// The agent's own algorithm (`[[agent]] digest_algorithm`), if set.
    pub algorithm: Option<DigestAlgorithm>,
}

/// The realm's challenge policy: the mode and the algorithms in use, most
/// preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPolicy {
    mode: ChallengeMode,
    algorithms: Vec<DigestAlgorithm>,
}

impl DigestPolicy {
    /// A policy; an empty `algorithms` means MD5 then SHA-256; duplicates
    /// are dropped.
    pub fn new(mode: ChallengeMode, algorithms: Vec<DigestAlgorithm>) -> Self {
        let mut unique: Vec<DigestAlgorithm> = Vec::new();
        for a in algorithms {
            if !unique.contains(&a) {
                unique.push(a);
            }
        }
        if unique.is_empty() {
            unique = vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256];
        }
        Self {
            mode,
            algorithms: unique,
        }
    }

    /// Every algorithm in use, most preferred first (the digest server
    /// accepts no other).
    pub fn algorithms(&self) -> &[DigestAlgorithm] {
        &self.algorithms
    }

    /// The algorithms to challenge `account` with, in header order (`None`:
    /// an unknown user). Never empty.
    pub fn offered(&self, account: Option<&DigestAccount>) -> Vec<DigestAlgorithm> {
        let answerable: Vec<DigestAlgorithm> = match account {
            None => self.algorithms.clone(),
            Some(a) => {
                let listed = |alg: &DigestAlgorithm| {
                    self.algorithms.contains(alg) && a.secret.can_answer(*alg)
                };
                match a.algorithm.filter(listed) {
                    Some(own) => vec![own],
                    None => self.algorithms.iter().copied().filter(listed).collect(),
                }
            }
        };
        // Credentials that answer nothing in use (config validation refuses
        // them) look like an unknown user: the realm's first algorithm.
        let mut offered = if answerable.is_empty() {
            vec![self.algorithms[0]]
        } else {
            answerable
        };
        if self.mode == ChallengeMode::Single {
            offered.truncate(1);
        }
        offered
    }

    /// `account`'s secret narrowed to what it is challenged with, for the
    /// digest server to verify against: credentials in any other algorithm
    /// then fail like a wrong password.
    pub fn accepted_secret(&self, account: &DigestAccount, username: &str, realm: &str) -> Secret {
        let offered = self.offered(Some(account));
        let answer = |alg: DigestAlgorithm| -> Option<String> {
            if !offered.contains(&alg) {
                return None;
            }
            match &account.secret {
                Secret::Plain(password) => Some(ha1(alg, username, realm, password)),
                Secret::Ha1 { md5, sha256 } => match alg {
                    DigestAlgorithm::Md5 => md5.clone(),
                    DigestAlgorithm::Sha256 => sha256.clone(),
                },
            }
        };
        Secret::Ha1 {
            md5: answer(DigestAlgorithm::Md5),
            sha256: answer(DigestAlgorithm::Sha256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DigestAlgorithm::{Md5, Sha256};

    fn plain(algorithm: Option<DigestAlgorithm>) -> DigestAccount {
        DigestAccount {
            secret: Secret::Plain("pw".into()),
            algorithm,
        }
    }

    fn hashes(md5: bool, sha256: bool, algorithm: Option<DigestAlgorithm>) -> DigestAccount {
        DigestAccount {
            secret: Secret::Ha1 {
                md5: md5.then(|| ha1(Md5, "u", "r", "pw")),
                sha256: sha256.then(|| ha1(Sha256, "u", "r", "pw")),
            },
            algorithm,
        }
    }

    /// (name, mode, algorithms in use, account, expected offer).
    type Case = (
        &'static str,
        ChallengeMode,
        Vec<DigestAlgorithm>,
        Option<DigestAccount>,
        Vec<DigestAlgorithm>,
    );

    #[test]
    fn offered_table() {
        use ChallengeMode::{Multiple, Single};
        let both = vec![Md5, Sha256];
        let sha_first = vec![Sha256, Md5];
        let cases: Vec<Case> = vec![
            (
                "unknown user: realm's first",
                Single,
                both.clone(),
                None,
                vec![Md5],
            ),
            (
                "unknown user, multiple",
                Multiple,
                both.clone(),
                None,
                vec![Md5, Sha256],
            ),
            (
                "password: realm's first",
                Single,
                both.clone(),
                Some(plain(None)),
                vec![Md5],
            ),
            (
                "realm prefers SHA-256",
                Single,
                sha_first.clone(),
                Some(plain(None)),
                vec![Sha256],
            ),
            (
                "agent set to SHA-256",
                Single,
                both.clone(),
                Some(plain(Some(Sha256))),
                vec![Sha256],
            ),
            (
                "only a SHA-256 HA1",
                Single,
                both.clone(),
                Some(hashes(false, true, None)),
                vec![Sha256],
            ),
            (
                "both HA1s: realm's first",
                Single,
                both.clone(),
                Some(hashes(true, true, None)),
                vec![Md5],
            ),
            (
                "multiple: what it can answer",
                Multiple,
                both.clone(),
                Some(hashes(false, true, None)),
                vec![Sha256],
            ),
            (
                "multiple: password answers all",
                Multiple,
                both.clone(),
                Some(plain(None)),
                vec![Md5, Sha256],
            ),
            (
                "multiple: own setting narrows",
                Multiple,
                both.clone(),
                Some(plain(Some(Sha256))),
                vec![Sha256],
            ),
            (
                "own setting not in use: ignored",
                Single,
                vec![Md5],
                Some(plain(Some(Sha256))),
                vec![Md5],
            ),
            (
                "own setting it cannot answer: ignored",
                Single,
                both.clone(),
                Some(hashes(true, false, Some(Sha256))),
                vec![Md5],
            ),
            (
                "answers nothing in use: realm's first",
                Single,
                vec![Md5],
                Some(hashes(false, true, None)),
                vec![Md5],
            ),
            (
                "empty list: MD5 then SHA-256",
                Multiple,
                vec![],
                None,
                vec![Md5, Sha256],
            ),
            (
                "duplicates dropped",
                Multiple,
                vec![Sha256, Sha256, Md5],
                None,
                vec![Sha256, Md5],
            ),
        ];
        for (name, mode, algorithms, account, want) in cases {
            let p = DigestPolicy::new(mode, algorithms);
            assert_eq!(p.offered(account.as_ref()), want, "{name}");
        }
    }

    #[test]
    fn accepted_secret_holds_only_what_is_offered() {
        let p = DigestPolicy::new(ChallengeMode::Single, vec![Md5, Sha256]);
        assert_eq!(
            p.accepted_secret(&plain(None), "u", "r"),
            Secret::Ha1 {
                md5: Some(ha1(Md5, "u", "r", "pw")),
                sha256: None
            }
        );
        assert_eq!(
            p.accepted_secret(&plain(Some(Sha256)), "u", "r"),
            Secret::Ha1 {
                md5: None,
                sha256: Some(ha1(Sha256, "u", "r", "pw"))
            }
        );
        let multiple = DigestPolicy::new(ChallengeMode::Multiple, vec![Md5, Sha256]);
        assert_eq!(
            multiple.accepted_secret(&hashes(true, true, None), "u", "r"),
            Secret::Ha1 {
                md5: Some(ha1(Md5, "u", "r", "pw")),
                sha256: Some(ha1(Sha256, "u", "r", "pw"))
            }
        );
    }

    #[test]
    fn mode_parse() {
        assert_eq!(ChallengeMode::parse("single"), Some(ChallengeMode::Single));
        assert_eq!(
            ChallengeMode::parse("multiple"),
            Some(ChallengeMode::Multiple)
        );
        assert_eq!(ChallengeMode::parse("both"), None);
    }
}
