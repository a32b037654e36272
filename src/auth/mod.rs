//! Users, roles, tenants, sessions and the audit log of the HTTP API
//! (REQUIREMENTS §9: "role-based access (agent, supervisor, admin) with
//! tenant isolation; no privilege escalation"; issue text: "passwords
//! stored hashed (argon2); token login with expiry and logout; every
//! endpoint checks role and tenant: an agent of centre A can never see or
//! touch a call, agent or recording of centre B. Supervisor and admin
//! actions go to an audit log (who, what, when, target)").
//!
//! Rooms:
//! - [`role`]: [`Role`], ordered `agent < supervisor < admin`;
//! - [`principal`]: the authenticated caller and every access rule
//!   (role minimum, tenant, own agent, user management);
//! - [`password`]: argon2id PHC hashing, constant-time verification and the
//!   dummy verification that keeps unknown usernames from being timed;
//! - [`store`]: [`AuthStore`], SQLite (`auth.db`) or the shared PostgreSQL
//!   database (`[store] url`, issue 15 §1): users, hashed session tokens,
//!   login lockout and the append-only audit log;
//! - [`error`]: [`AuthError`], each variant with its HTTP status and a
//!   stable code.
//!
//! A request goes: bearer token → [`AuthStore::authenticate`] →
//! [`Principal`] → `require(role)` / `require_tenant(..)` /
//! `require_agent(..)` → the handler, which lists with
//! [`Principal::tenant_filter`] and records supervisor and admin actions
//! with [`AuthStore::audit`].
//!
//! This module does no network I/O and never reads the clock (`now_ms` is
//! passed in, unix milliseconds).

pub mod error;
pub mod password;
pub mod principal;
pub mod role;
pub mod store;

pub use error::AuthError;
pub use principal::{Principal, ALL_TENANTS};
pub use role::Role;
pub use store::{
    AuditRecord, AuthStore, Credential, LockoutPolicy, Login, NewUser, Purged, Token, Upserted,
    UserInfo,
};

#[cfg(test)]
mod tests;
