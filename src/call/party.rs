//! Where an extra party of a call is rung (REQUIREMENTS §3 three-way
//! calls, §4 transfers with consultation): an agent at their phone's best
//! registration, a phone number through a trunk's proxy. The CTI's
//! consultations and three-way calls and a desk phone's consultation from
//! its second line (issue 17 §4) look their targets up here.

use super::{CallContext, PartyTarget};

/// Why a party cannot be rung.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// The agent's phone has no registration (nor a browser signed in).
    #[error("{0}'s phone is not registered")]
    NotRegistered(String),
    /// The tenant dials out through no trunk.
    #[error("this tenant has no outbound trunk")]
    NoTrunk,
    /// The trunk has no proxy to send an INVITE to.
    #[error("trunk {0:?} has no proxy")]
    NoProxy(String),
}

impl CallContext {
    /// Agent `label` (their job number, naming them in the record) at
    /// their phone `device`'s best registration.
    ///
    /// # Errors
    /// [`Unreachable::NotRegistered`].
    pub fn agent_party(&self, label: &str, device: &str) -> Result<PartyTarget, Unreachable> {
        let c = self
            .directory
            .contacts(device)
            .into_iter()
            .next()
            .ok_or_else(|| Unreachable::NotRegistered(label.to_string()))?;
        Ok(PartyTarget {
            device: Some(device.to_string()),
            label: label.to_string(),
            uri: c.uri,
            destination: c.source,
            tcp: c.tcp,
            route: c.route,
        })
    }

    /// Phone number `number` through `trunk` (or the tenant's trunk when
    /// `None`): its first proxy in attempt order.
    ///
    /// # Errors
    /// [`Unreachable::NoTrunk`], [`Unreachable::NoProxy`].
    pub fn number_party(
        &self,
        number: &str,
        trunk: Option<String>,
        tenant: &str,
    ) -> Result<PartyTarget, Unreachable> {
        let trunk = trunk
            .or_else(|| self.tenant_trunk(tenant))
            .ok_or(Unreachable::NoTrunk)?;
        let (proxy, tcp) = self
            .trunks
            .attempt_order(&trunk)
            .into_iter()
            .find_map(|t| Some((t.proxy?, t.tcp)))
            .ok_or(Unreachable::NoProxy(trunk))?;
        Ok(PartyTarget {
            device: None,
            label: number.to_string(),
            uri: format!("sip:{number}@{proxy}"),
            destination: proxy,
            tcp,
            route: vec![],
        })
    }
}
