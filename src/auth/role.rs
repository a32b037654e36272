//! The three roles of REQUIREMENTS §9, ordered by privilege:
//! `agent < supervisor < admin`. A check "at least supervisor" is
//! `principal.require(Role::Supervisor)`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AuthError;

/// A user's role. The derived order is the privilege order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers calls: sees and acts on its own agent and its own calls only.
    Agent,
    /// Watches and steers the agents, queues and calls of its tenant.
    Supervisor,
    /// Manages users and settings of its tenant (or of every tenant, for a
    /// global admin: see [`super::principal::ALL_TENANTS`]).
    Admin,
}

impl Role {
    /// Every role, lowest privilege first.
    pub const ALL: [Role; 3] = [Role::Agent, Role::Supervisor, Role::Admin];

    /// The stable name, as in configuration, JSON and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    /// Exact, lower-case names only (`agent`, `supervisor`, `admin`), the
    /// same spelling serde accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(AuthError::BadRequest(format!(
                "unknown role {other:?} (expected agent, supervisor or admin)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_privilege_order() {
        assert!(Role::Agent < Role::Supervisor);
        assert!(Role::Supervisor < Role::Admin);
        assert!(Role::Agent < Role::Admin);
        let mut sorted = vec![Role::Admin, Role::Agent, Role::Supervisor];
        sorted.sort();
        assert_eq!(sorted, Role::ALL.to_vec());
    }

    #[test]
    fn names_roundtrip_through_fromstr_display_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
    }

    #[test]
    fn unknown_or_miscased_names_are_rejected() {
        for bad in ["", "Admin", "ADMIN", " admin", "root", "superuser"] {
            let err = bad.parse::<Role>().unwrap_err();
            assert_eq!(err.code(), "bad_request", "{bad:?}");
        }
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
    }
}
