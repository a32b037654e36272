//! Whom a phone's transfer key names (issue 17 §4): the `Refer-To` of the
//! agent's REFER looked up in the roster in force, within the agent's
//! tenant, the way the CTI's transfer looks its targets up: an agent by
//! job number or phone, a skill group, else a phone number through the
//! tenant's trunk. The connected call's machine (`fsm::refer`) decides
//! the rest.

use crate::call::fsm::ReferRefusal;
use crate::ivr::TransferTarget;
use crate::roster::Roster;
use crate::sip::refer;

/// The transfer `refer_to` asks for, by the agent `referrer` (job number or
/// phone user), or why it cannot be carried out.
pub(super) fn target(
    roster: &Roster,
    referrer: Option<&str>,
    refer_to: Option<&str>,
) -> Result<TransferTarget, ReferRefusal> {
    let refused = |code: u16, reason: String| ReferRefusal { code, reason };
    let agent = |id: &str| roster.agent(id).or_else(|| roster.agent_by_user(id));
    let Some(me) = referrer.and_then(agent) else {
        return Err(refused(403, "only an agent's phone can transfer".into()));
    };
    let to = refer::parse(refer_to).map_err(|e| refused(400, e.to_string()))?;
    if to.replaces.is_some() {
        return Err(refused(
            501,
            "attended transfer by REFER with Replaces is not supported: consult from the phone bar"
                .into(),
        ));
    }
    let user = to.user;
    if let Some(a) = agent(&user).filter(|a| a.tenant == me.tenant) {
        if a.user == me.user {
            return Err(refused(
                400,
                "an agent cannot transfer a call to themselves".into(),
            ));
        }
        return Ok(TransferTarget::Agent(a.user.clone()));
    }
    if let Some(g) = roster.group(&user).filter(|g| g.tenant == me.tenant) {
        return Ok(TransferTarget::Group(g.id.clone()));
    }
    if crate::ivr::flow::dialable(&user) {
        return Ok(TransferTarget::Number {
            number: user,
            trunk: None,
        });
    }
    Err(refused(
        404,
        format!("no agent, skill group or phone number {user:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AgentConfig, GroupConfig};

    fn roster() -> Roster {
        let agent = |user: &str, job: &str, tenant: &str| {
            let mut a: AgentConfig = toml::from_str(&format!(
                "user = \"{user}\"\npassword = \"x\"\njob_number = \"{job}\"\ntenant = \"{tenant}\""
            ))
            .expect("agent");
            a.skills.insert("general".into(), 5);
            a
        };
        let group = |id: &str, tenant: &str| -> GroupConfig {
            toml::from_str(&format!(
                "id = \"{id}\"\nname = \"{id}\"\ntenant = \"{tenant}\""
            ))
            .expect("group")
        };
        Roster::new(
            vec![
                agent("1001", "A01", "default"),
                agent("1002", "A02", "default"),
                agent("2001", "B01", "other"),
            ],
            vec![group("general", "default"), group("water", "other")],
        )
    }

    fn to(refer_to: &str) -> Result<TransferTarget, ReferRefusal> {
        target(&roster(), Some("A01"), Some(refer_to))
    }

    #[test]
    fn the_key_names_an_agent_a_group_or_a_number_in_the_agents_tenant() {
        let agent = Ok(TransferTarget::Agent("1002".into()));
        assert_eq!(to("<sip:1002@127.0.0.1>"), agent);
        assert_eq!(to("<sip:A02@127.0.0.1>"), agent);
        assert_eq!(
            to("<sip:general@h>"),
            Ok(TransferTarget::Group("general".into()))
        );
        assert_eq!(
            to("<sip:12345678@h>"),
            Ok(TransferTarget::Number {
                number: "12345678".into(),
                trunk: None
            })
        );
        // The referrer named by their phone works the same.
        assert_eq!(target(&roster(), Some("1001"), Some("<sip:1002@h>")), agent);
    }

    #[test]
    fn other_tenants_strangers_and_bad_headers_are_refused() {
        let code = |r: Result<TransferTarget, ReferRefusal>| r.map_err(|e| e.code);
        // Another tenant's agent (by job number) and group are nobody here.
        assert_eq!(code(to("<sip:B01@h>")), Err(404));
        assert_eq!(code(to("<sip:water@h>")), Err(404));
        // …but a tenant's agent named by digits is a number, not the agent.
        assert!(matches!(
            to("<sip:2001@h>"),
            Ok(TransferTarget::Number { .. })
        ));
        assert_eq!(code(to("<sip:1001@h>")), Err(400), "oneself");
        assert_eq!(code(to("<http://x>")), Err(400));
        assert_eq!(code(target(&roster(), Some("A01"), None)), Err(400));
        assert_eq!(
            code(to("<sip:1002@h?Replaces=c%3Bto-tag%3D1%3Bfrom-tag%3D2>")),
            Err(501)
        );
        assert_eq!(
            code(target(&roster(), None, Some("<sip:1002@h>"))),
            Err(403)
        );
        assert_eq!(
            code(target(
                &roster(),
                Some("+8613800000000"),
                Some("<sip:1002@h>")
            )),
            Err(403)
        );
    }
}
