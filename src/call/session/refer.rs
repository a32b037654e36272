//! Whom a phone's transfer key names (issue 17 §4): the `Refer-To` of the
//! agent's REFER looked up in the roster in force, within the agent's
//! tenant, the way the CTI's transfer looks its targets up: an agent by
//! job number or phone, a skill group, else a phone number through the
//! tenant's trunk. The connected call's machine (`fsm::refer`) decides
//! the rest. A `Replaces` in the `Refer-To` asks for an attended transfer
//! (the call matches it against the phone's consultation line).

use crate::call::fsm::ReferRefusal;
use crate::ivr::TransferTarget;
use crate::roster::Roster;
use crate::sip::refer;

/// What a phone's REFER asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Referral {
    /// A blind transfer to this target.
    Blind(TransferTarget),
    /// An attended transfer: the party of the dialog `Replaces` names
    /// (the phone's consultation line, if it is this call's) takes the
    /// caller.
    Replaces(refer::Replaces),
}

/// The transfer `refer_to` asks for, by the agent `referrer` (job number or
/// phone user), or why it cannot be carried out.
pub(super) fn target(
    roster: &Roster,
    referrer: Option<&str>,
    refer_to: Option<&str>,
) -> Result<Referral, ReferRefusal> {
    let to = refer::parse(refer_to).map_err(|e| refused(400, e.to_string()));
    match (to, referrer_agent(roster, referrer)) {
        (_, Err(e)) | (Err(e), _) => Err(e),
        (Ok(to), Ok(_)) => match to.replaces {
            Some(r) => Ok(Referral::Replaces(r)),
            None => named(roster, referrer, &to.user).map(Referral::Blind),
        },
    }
}

/// Whom `user` (an extension, a job number, a skill group, a phone
/// number) names for the agent `referrer`, within the agent's tenant: the
/// target of a transfer key, or of a consultation the phone dials.
pub(super) fn named(
    roster: &Roster,
    referrer: Option<&str>,
    user: &str,
) -> Result<TransferTarget, ReferRefusal> {
    let me = referrer_agent(roster, referrer)?;
    let agent = |id: &str| roster.agent(id).or_else(|| roster.agent_by_user(id));
    if let Some(a) = agent(user).filter(|a| a.tenant == me.tenant) {
        if a.user == me.user {
            return Err(refused(
                400,
                "an agent cannot transfer a call to themselves".into(),
            ));
        }
        return Ok(TransferTarget::Agent(a.user.clone()));
    }
    if let Some(g) = roster.group(user).filter(|g| g.tenant == me.tenant) {
        return Ok(TransferTarget::Group(g.id.clone()));
    }
    if crate::ivr::flow::dialable(user) {
        return Ok(TransferTarget::Number {
            number: user.to_string(),
            trunk: None,
        });
    }
    Err(refused(
        404,
        format!("no agent, skill group or phone number {user:?}"),
    ))
}

/// The agent `referrer` names (job number or phone user).
fn referrer_agent<'r>(
    roster: &'r Roster,
    referrer: Option<&str>,
) -> Result<&'r crate::config::AgentConfig, ReferRefusal> {
    referrer
        .and_then(|id| roster.agent(id).or_else(|| roster.agent_by_user(id)))
        .ok_or_else(|| refused(403, "only an agent's phone can transfer".into()))
}

fn refused(code: u16, reason: String) -> ReferRefusal {
    ReferRefusal { code, reason }
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

    fn to(refer_to: &str) -> Result<Referral, ReferRefusal> {
        target(&roster(), Some("A01"), Some(refer_to))
    }

    #[test]
    fn the_key_names_an_agent_a_group_or_a_number_in_the_agents_tenant() {
        let agent = Ok(Referral::Blind(TransferTarget::Agent("1002".into())));
        assert_eq!(to("<sip:1002@127.0.0.1>"), agent);
        assert_eq!(to("<sip:A02@127.0.0.1>"), agent);
        assert_eq!(
            to("<sip:general@h>"),
            Ok(Referral::Blind(TransferTarget::Group("general".into())))
        );
        assert_eq!(
            to("<sip:12345678@h>"),
            Ok(Referral::Blind(TransferTarget::Number {
                number: "12345678".into(),
                trunk: None
            }))
        );
        // The referrer named by their phone works the same.
        assert_eq!(target(&roster(), Some("1001"), Some("<sip:1002@h>")), agent);
    }

    #[test]
    fn other_tenants_strangers_and_bad_headers_are_refused() {
        let code = |r: Result<Referral, ReferRefusal>| r.map_err(|e| e.code);
        // Another tenant's agent (by job number) and group are nobody here.
        assert_eq!(code(to("<sip:B01@h>")), Err(404));
        assert_eq!(code(to("<sip:water@h>")), Err(404));
        // …but a tenant's agent named by digits is a number, not the agent.
        assert!(matches!(
            to("<sip:2001@h>"),
            Ok(Referral::Blind(TransferTarget::Number { .. }))
        ));
        assert_eq!(code(to("<sip:1001@h>")), Err(400), "oneself");
        assert_eq!(code(to("<http://x>")), Err(400));
        assert_eq!(code(target(&roster(), Some("A01"), None)), Err(400));
        assert_eq!(
            to("<sip:1002@h?Replaces=c%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
            Ok(Referral::Replaces(refer::Replaces {
                call_id: "c@h".into(),
                to_tag: "1".into(),
                from_tag: "2".into()
            })),
            "an attended transfer names the dialog to replace"
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
