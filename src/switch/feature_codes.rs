//! Agent control from the phone (issue "ACD" §6): feature codes dialled
//! from the soft-phone (`*11` login, `*12` logout, `*13` ready, `*14` not
//! ready, `*14<n>` not ready with the n-th reason; all configurable), so a
//! team can work with nothing but a SIP phone.

use crate::config::acd::FeatureCodes;

/// What an agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// Sign in (and become ready).
    Login,
    /// Sign out.
    Logout,
    /// Ready (示闲).
    Ready,
    /// Not ready (示忙) with a reason code.
    NotReady(String),
}

pub use crate::call::Supervision;

/// A supervisor code: the mode and the agent's SIP user
/// (`*31` + `1001` = listen to 1001's call).
pub fn parse_supervision(dialled: &str, codes: &FeatureCodes) -> Option<(Supervision, String)> {
    let dialled = dialled.trim();
    for (code, mode) in [
        (&codes.listen, Supervision::Listen),
        (&codes.whisper, Supervision::Whisper),
        (&codes.barge, Supervision::Barge),
    ] {
        if let Some(agent) = dialled.strip_prefix(code.as_str()) {
            if !agent.is_empty() && agent.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Some((mode, agent.to_string()));
            }
        }
    }
    None
}

/// The command a dialled number stands for, if it is a feature code.
/// `reasons` are the configured not-ready reasons; `*14` alone means the
/// first, `*14<n>` the n-th (1-based).
pub fn parse(dialled: &str, codes: &FeatureCodes, reasons: &[String]) -> Option<AgentCommand> {
    let dialled = dialled.trim();
    if dialled == codes.login {
        return Some(AgentCommand::Login);
    }
    if dialled == codes.logout {
        return Some(AgentCommand::Logout);
    }
    if dialled == codes.ready {
        return Some(AgentCommand::Ready);
    }
    let rest = dialled.strip_prefix(codes.not_ready.as_str())?;
    let index = if rest.is_empty() {
        0
    } else {
        rest.parse::<usize>().ok()?.checked_sub(1)?
    };
    reasons.get(index).cloned().map(AgentCommand::NotReady)
}

/// True when `dialled` looks like a feature code (starts with `*`), so it is
/// handled as an agent request, never as a carrier call.
pub fn looks_like_feature_code(dialled: &str) -> bool {
    dialled.starts_with('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_commands() {
        let codes = FeatureCodes::default();
        let reasons: Vec<String> = ["break", "training", "ticket"].map(String::from).to_vec();
        let table = [
            ("*11", Some(AgentCommand::Login)),
            ("*12", Some(AgentCommand::Logout)),
            ("*13", Some(AgentCommand::Ready)),
            ("*14", Some(AgentCommand::NotReady("break".into()))),
            ("*142", Some(AgentCommand::NotReady("training".into()))),
            ("*143", Some(AgentCommand::NotReady("ticket".into()))),
            ("*144", None),
            ("*140", None),
            ("*14x", None),
            ("*99", None),
            ("12345", None),
            ("", None),
        ];
        for (dialled, expected) in table {
            assert_eq!(parse(dialled, &codes, &reasons), expected, "{dialled:?}");
        }
        assert!(looks_like_feature_code("*11"));
        assert_eq!(
            parse_supervision("*311001", &codes),
            Some((Supervision::Listen, "1001".into()))
        );
        assert_eq!(
            parse_supervision("*322001", &codes),
            Some((Supervision::Whisper, "2001".into()))
        );
        assert_eq!(
            parse_supervision("*331001", &codes),
            Some((Supervision::Barge, "1001".into()))
        );
        assert_eq!(parse_supervision("*31", &codes), None);
        assert_eq!(parse_supervision("*3110;01", &codes), None);
        assert_eq!(parse_supervision("*11", &codes), None);
        assert!(!looks_like_feature_code("12345"));
    }
}
