//! The admission core's decisions, one test per branch, with no sockets.

use std::collections::HashMap;
use std::net::IpAddr;

use super::admission::{decide, Decision, FlowClaims, Refusal, RequestView, Tables, ALLOW};
use crate::call::{Ringing, Route};
use crate::sip::trunk::{Trunk, TrunkTable};

/// Flows by DID: number → (tenant, flow name).
struct Flows(HashMap<String, (String, String)>);

impl FlowClaims for Flows {
    type Claim = String;
    fn claim(&self, did: &str) -> Option<(String, String)> {
        self.0.get(did).cloned()
    }
}

const CARRIER: &str = "192.0.2.10";
const STRANGER: &str = "198.51.100.7";

struct World {
    dids: HashMap<String, (String, Route)>,
    trunks: TrunkTable,
    flows: Flows,
}

fn world() -> World {
    let trunks = TrunkTable::new(vec![Trunk {
        name: "carrier".into(),
        inbound: vec!["192.0.2.0/24".parse().expect("cidr")],
        proxy: None,
        tcp: false,
        backup: None,
        invite_timeout_secs: 8,
    }]);
    let mut dids = HashMap::new();
    dids.insert(
        "12345".to_string(),
        (
            "default".to_string(),
            Route::Agents {
                ringing: Ringing::Sequential,
                agents: vec!["1001".into()],
            },
        ),
    );
    // Claimed by both: the flow wins.
    dids.insert(
        "12399".to_string(),
        (
            "default".to_string(),
            Route::Queue {
                group: "general".into(),
                priority: 0,
            },
        ),
    );
    let flows = Flows(
        [(
            "12399".to_string(),
            ("city".to_string(), "main".to_string()),
        )]
        .into_iter()
        .collect(),
    );
    World {
        dids,
        trunks,
        flows,
    }
}

fn decide_in(
    w: &World,
    method: &str,
    number: &str,
    from: &str,
    draining: bool,
) -> Decision<String> {
    let source: IpAddr = from.parse().expect("ip");
    decide(
        &RequestView {
            method,
            uri_user: number,
            source,
        },
        &Tables {
            dids: &w.dids,
            trunks: &w.trunks,
            flows: &w.flows,
            draining,
        },
    )
}

fn allow() -> (String, String) {
    ("Allow".to_string(), ALLOW.to_string())
}

#[test]
fn register_goes_to_the_registrar() {
    let w = world();
    assert_eq!(
        decide_in(&w, "REGISTER", "1001", STRANGER, false),
        Decision::Register
    );
    // Even while draining: phones keep their registrations.
    assert_eq!(
        decide_in(&w, "REGISTER", "1001", STRANGER, true),
        Decision::Register
    );
}

#[test]
fn options_is_answered_200_with_allow_and_accept() {
    let w = world();
    assert_eq!(
        decide_in(&w, "OPTIONS", "", STRANGER, false),
        Decision::Reply {
            code: 200,
            headers: vec![allow(), ("Accept".into(), "application/sdp".into())],
        }
    );
}

#[test]
fn in_dialog_methods_outside_a_dialog_get_481() {
    let w = world();
    for m in ["BYE", "INFO", "UPDATE", "PRACK"] {
        assert_eq!(
            decide_in(&w, m, "1001", CARRIER, false),
            Decision::Reply {
                code: 481,
                headers: vec![]
            },
            "{m}"
        );
    }
}

#[test]
fn methods_we_do_not_serve_get_405_and_unknown_ones_501() {
    let w = world();
    for m in ["SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER"] {
        assert_eq!(
            decide_in(&w, m, "1001", CARRIER, false),
            Decision::Reply {
                code: 405,
                headers: vec![allow()]
            },
            "{m}"
        );
    }
    assert_eq!(
        decide_in(&w, "FROB", "1001", CARRIER, false),
        Decision::Reply {
            code: 501,
            headers: vec![allow()]
        }
    );
}

#[test]
fn a_draining_switch_refuses_new_calls_with_503_retry_after() {
    let w = world();
    // Draining comes first: not even a feature code or a known DID.
    for number in ["12345", "*11"] {
        assert_eq!(
            decide_in(&w, "INVITE", number, CARRIER, true),
            Decision::Refuse {
                code: 503,
                headers: vec![("Retry-After".into(), "30".into())],
                why: Refusal::Draining,
            }
        );
    }
}

#[test]
fn a_feature_code_is_the_agents_whatever_the_source() {
    let w = world();
    // Phones are not trunks: the shell authenticates the agent instead.
    assert_eq!(
        decide_in(&w, "INVITE", "*31", STRANGER, false),
        Decision::FeatureCode {
            dialled: "*31".into()
        }
    );
}

#[test]
fn an_invite_from_an_address_no_trunk_admits_gets_403() {
    let w = world();
    assert_eq!(
        decide_in(&w, "INVITE", "12345", STRANGER, false),
        Decision::Refuse {
            code: 403,
            headers: vec![],
            why: Refusal::NoTrunk,
        }
    );
}

#[test]
fn a_number_claimed_by_a_flow_goes_to_the_flow_before_any_did_entry() {
    let w = world();
    assert_eq!(
        decide_in(&w, "INVITE", "12399", CARRIER, false),
        Decision::Flow {
            trunk: "carrier".into(),
            number: "12399".into(),
            tenant: "city".into(),
            claim: "main".into(),
        }
    );
}

#[test]
fn a_did_entry_routes_the_call_with_its_tenant() {
    let w = world();
    assert_eq!(
        decide_in(&w, "INVITE", "12345", CARRIER, false),
        Decision::Did {
            trunk: "carrier".into(),
            number: "12345".into(),
            tenant: "default".into(),
            route: Route::Agents {
                ringing: Ringing::Sequential,
                agents: vec!["1001".into()],
            },
        }
    );
}

#[test]
fn an_unclaimed_number_gets_404() {
    let w = world();
    assert_eq!(
        decide_in(&w, "INVITE", "99999", CARRIER, false),
        Decision::Refuse {
            code: 404,
            headers: vec![],
            why: Refusal::UnknownNumber {
                trunk: "carrier".into()
            },
        }
    );
    // No user part at all.
    assert!(matches!(
        decide_in(&w, "INVITE", "", CARRIER, false),
        Decision::Refuse { code: 404, .. }
    ));
}
