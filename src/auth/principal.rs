//! Who is calling, and what they may touch (REQUIREMENTS §9: role-based
//! access with tenant isolation, no privilege escalation).
//!
//! A [`Principal`] is built by [`super::AuthStore::authenticate`] from the
//! *current* user row on every request, so a role change, a tenant move or
//! a disabled account takes effect at the next request, not at the next
//! login.
//!
//! # The rules
//! - **Roles** are ordered `agent < supervisor < admin`;
//!   [`Principal::require`] asks for a minimum.
//! - **Tenants**: every principal sees its own tenant only, except a
//!   *global admin*: a user with role admin in the reserved tenant
//!   [`ALL_TENANTS`] (`"*"`), who sees every tenant. Only admins may be put
//!   in `"*"` (the store refuses anything else); a non-admin principal
//!   carrying `"*"` anyway is treated as belonging to no tenant at all.
//! - **Agents**: an agent acts only on itself (its own `agent_id`, in its
//!   own tenant); supervisors and admins act on every agent of their tenant.
//! - **Users**: only admins manage users, only in tenants they may access;
//!   only a global admin creates users in `"*"`. An admin may create
//!   another admin of its own tenant (a peer, not an escalation); nobody
//!   can grant more than they have.
//!
//! For a resource looked up by id (`/calls/{id}`), the API should answer a
//! denied tenant with `not_found` rather than `forbidden`, so ids of other
//! centres cannot be probed; the checks here only say yes or no.

use serde::Serialize;

use super::{AuthError, Role};

/// The reserved tenant of global admins: may access every tenant.
pub const ALL_TENANTS: &str = "*";

/// An authenticated caller. Serializable for a `/me` answer, but
/// deliberately not deserializable: a principal comes from
/// [`super::AuthStore::authenticate`], never from a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Username (lower case).
    pub user: String,
    /// Role.
    pub role: Role,
    /// Tenant (call centre); [`ALL_TENANTS`] for a global admin.
    pub tenant: String,
    /// The ACD agent this user logs in as, for agents (and supervisors who
    /// take calls).
    pub agent_id: Option<String>,
}

impl Principal {
    /// An admin of [`ALL_TENANTS`].
    pub fn is_global_admin(&self) -> bool {
        self.role == Role::Admin && self.tenant == ALL_TENANTS
    }

    /// At least `role`, or [`AuthError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!("role {role} required")))
        }
    }

    /// May see and act on data of `tenant`.
    pub fn may_access_tenant(&self, tenant: &str) -> bool {
        if self.is_global_admin() {
            return true;
        }
        self.tenant != ALL_TENANTS && self.tenant == tenant
    }

    /// [`Principal::may_access_tenant`], or [`AuthError::Forbidden`].
    pub fn require_tenant(&self, tenant: &str) -> Result<(), AuthError> {
        if self.may_access_tenant(tenant) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "tenant {tenant:?} is not accessible"
            )))
        }
    }

    /// May act on agent `agent_id` of tenant `agent_tenant` (its state,
    /// its calls, its recordings): an agent only on itself, supervisors and
    /// admins on any agent of a tenant they may access.
    pub fn may_act_on_agent(&self, agent_id: &str, agent_tenant: &str) -> bool {
        if !self.may_access_tenant(agent_tenant) {
            return false;
        }
        match self.role {
            Role::Agent => self.agent_id.as_deref() == Some(agent_id),
            Role::Supervisor | Role::Admin => true,
        }
    }

    /// [`Principal::may_act_on_agent`], or [`AuthError::Forbidden`].
    pub fn require_agent(&self, agent_id: &str, agent_tenant: &str) -> Result<(), AuthError> {
        if self.may_act_on_agent(agent_id, agent_tenant) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "agent {agent_id:?} is not accessible"
            )))
        }
    }

    /// May create, change or delete a user with `role` in `tenant`: admins
    /// only, within the tenants they may access (so `"*"` only for a
    /// global admin), and never above their own role.
    pub fn may_manage_user(&self, role: Role, tenant: &str) -> bool {
        self.role == Role::Admin && role <= self.role && self.may_access_tenant(tenant)
    }

    /// [`Principal::may_manage_user`], or [`AuthError::Forbidden`].
    pub fn require_manage_user(&self, role: Role, tenant: &str) -> Result<(), AuthError> {
        if self.may_manage_user(role, tenant) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "may not manage {role} users of tenant {tenant:?}"
            )))
        }
    }

    /// The tenant filter for listings (`list_users`, `audit_log`, calls):
    /// `None` (everything) for a global admin, else the own tenant. Passing
    /// this to the store makes a listing tenant-safe by construction.
    pub fn tenant_filter(&self) -> Option<&str> {
        if self.is_global_admin() {
            None
        } else {
            Some(&self.tenant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(role: Role, tenant: &str, agent_id: Option<&str>) -> Principal {
        Principal {
            user: format!("{role}-{tenant}"),
            role,
            tenant: tenant.into(),
            agent_id: agent_id.map(Into::into),
        }
    }

    #[test]
    fn require_follows_the_role_order() {
        for have in Role::ALL {
            for need in Role::ALL {
                let got = p(have, "a", Some("1001")).require(need);
                assert_eq!(got.is_ok(), have >= need, "{have} needs {need}");
                if let Err(e) = got {
                    assert_eq!((e.status(), e.code()), (403, "forbidden"));
                }
            }
        }
    }

    /// Every role of tenant A against resources of A, of B and of the
    /// reserved "*": only own tenant, and a global admin everywhere.
    #[test]
    fn cross_tenant_denial_for_every_role() {
        // (principal role, principal tenant, resource tenant, allowed)
        let table = [
            (Role::Agent, "a", "a", true),
            (Role::Agent, "a", "b", false),
            (Role::Agent, "a", "*", false),
            (Role::Agent, "a", "", false),
            (Role::Agent, "a", "A", false),
            (Role::Supervisor, "a", "a", true),
            (Role::Supervisor, "a", "b", false),
            (Role::Supervisor, "a", "*", false),
            (Role::Admin, "a", "a", true),
            (Role::Admin, "a", "b", false),
            (Role::Admin, "a", "*", false),
            (Role::Admin, "*", "a", true),
            (Role::Admin, "*", "b", true),
            (Role::Admin, "*", "*", true),
            // Non-admins that somehow carry "*" belong to no tenant.
            (Role::Agent, "*", "a", false),
            (Role::Agent, "*", "*", false),
            (Role::Supervisor, "*", "a", false),
            (Role::Supervisor, "*", "*", false),
        ];
        for (role, own, target, allowed) in table {
            let who = p(role, own, Some("1001"));
            let case = format!("{role} of {own:?} -> tenant {target:?}");
            assert_eq!(who.may_access_tenant(target), allowed, "{case}");
            assert_eq!(who.require_tenant(target).is_ok(), allowed, "{case}");
            // Acting on a supervisor-visible agent of that tenant follows the
            // tenant rule for supervisors and admins.
            if role != Role::Agent {
                assert_eq!(who.may_act_on_agent("2002", target), allowed, "{case}");
            }
            // Nobody acts on another tenant's agent, whatever its id.
            if !allowed {
                assert!(!who.may_act_on_agent("1001", target), "{case}");
                assert!(who.require_agent("1001", target).is_err(), "{case}");
                for r in Role::ALL {
                    assert!(!who.may_manage_user(r, target), "{case} manage {r}");
                }
            }
        }
    }

    #[test]
    fn agents_act_only_on_themselves() {
        let agent = p(Role::Agent, "a", Some("1001"));
        assert!(agent.may_act_on_agent("1001", "a"));
        assert!(agent.require_agent("1001", "a").is_ok());
        assert!(!agent.may_act_on_agent("1002", "a"));
        assert!(
            !agent.may_act_on_agent("1001", "b"),
            "same id, other centre"
        );
        let unbound = p(Role::Agent, "a", None);
        assert!(!unbound.may_act_on_agent("1001", "a"));
        assert!(!unbound.may_act_on_agent("", "a"));
        let sup = p(Role::Supervisor, "a", None);
        assert!(sup.may_act_on_agent("1001", "a"));
        assert!(sup.may_act_on_agent("1002", "a"));
        assert!(!sup.may_act_on_agent("1001", "b"));
    }

    #[test]
    fn no_privilege_escalation_through_user_management() {
        let agent = p(Role::Agent, "a", Some("1001"));
        let sup = p(Role::Supervisor, "a", None);
        let admin = p(Role::Admin, "a", None);
        let global = p(Role::Admin, ALL_TENANTS, None);
        for r in Role::ALL {
            assert!(!agent.may_manage_user(r, "a"));
            assert!(!sup.may_manage_user(r, "a"));
            assert!(admin.may_manage_user(r, "a"));
            assert!(!admin.may_manage_user(r, "b"));
            assert!(!admin.may_manage_user(r, ALL_TENANTS));
            assert!(global.may_manage_user(r, "a"));
            assert!(global.may_manage_user(r, ALL_TENANTS));
        }
        assert!(admin.require_manage_user(Role::Admin, ALL_TENANTS).is_err());
        assert!(global.require_manage_user(Role::Admin, "b").is_ok());
    }

    #[test]
    fn listings_filter_by_own_tenant_except_global_admins() {
        assert_eq!(p(Role::Agent, "a", None).tenant_filter(), Some("a"));
        assert_eq!(p(Role::Admin, "a", None).tenant_filter(), Some("a"));
        assert_eq!(p(Role::Admin, "*", None).tenant_filter(), None);
        assert_eq!(p(Role::Supervisor, "*", None).tenant_filter(), Some("*"));
        assert!(p(Role::Admin, "*", None).is_global_admin());
        assert!(!p(Role::Supervisor, "*", None).is_global_admin());
    }
}
