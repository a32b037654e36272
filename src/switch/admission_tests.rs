//! The admission core's decisions, one test per branch, with no sockets.

use std::collections::HashMap;
use std::net::IpAddr;

use super::admission::{
    decide, Decision, FlowClaims, Refusal, RequestView, Tables, ALLOW, DRAINING_RETRY_AFTER_SECS,
};
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
            from_phone: false,
        },
        &Tables {
            dids: &w.dids,
            trunks: &w.trunks,
            flows: &w.flows,
            draining,
            load: &super::admission::Unlimited,
            media_overloaded: false,
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
fn a_draining_switch_answers_options_503_with_retry_after() {
    let w = world();
    // An edge's OPTIONS probe (Kamailio's dispatcher) takes the node out
    // of its rotation while the node's calls finish.
    for from in [CARRIER, STRANGER] {
        assert_eq!(
            decide_in(&w, "OPTIONS", "", from, true),
            Decision::Reply {
                code: 503,
                headers: vec![("Retry-After".into(), DRAINING_RETRY_AFTER_SECS.to_string())],
            }
        );
    }
    // Nothing else out of dialog changes.
    assert_eq!(
        decide_in(&w, "BYE", "1001", CARRIER, true),
        Decision::Reply {
            code: 481,
            headers: vec![]
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
    // SUBSCRIBE is the BLF service's; a REFER outside a call is nobody's.
    assert_eq!(
        decide_in(&w, "SUBSCRIBE", "1001", CARRIER, false),
        Decision::Subscribe
    );
    for m in ["NOTIFY", "PUBLISH", "MESSAGE", "REFER"] {
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

// ---------------------------------------------------------------------------
// Caps per trunk and per centre (issue 14 §5)
// ---------------------------------------------------------------------------

use super::admission::{Cap, CapScope, Load, CALLS_RETRY_AFTER_SECS, CPS_RETRY_AFTER_SECS};
use super::call_load::{CallLoad, Caps};
use crate::time::Time;

fn caps(max_calls: u32, max_cps: u32) -> Caps {
    Caps { max_calls, max_cps }
}

fn decide_loaded(w: &World, number: &str, from: &str, load: &dyn Load) -> Decision<String> {
    decide(
        &RequestView {
            method: "INVITE",
            uri_user: number,
            source: from.parse().expect("ip"),
            from_phone: false,
        },
        &Tables {
            dids: &w.dids,
            trunks: &w.trunks,
            flows: &w.flows,
            draining: false,
            load,
            media_overloaded: false,
        },
    )
}

fn at(ms: u64) -> Time {
    Time::from_unix_millis(1_700_000_000_000 + ms)
}

/// Admit like the shell: decide at `now`, count what is admitted.
fn admit(w: &World, load: &mut CallLoad, number: &str, now: Time) -> Decision<String> {
    let d = decide_loaded(w, number, CARRIER, &load.at(now));
    match &d {
        Decision::Did { trunk, tenant, .. } | Decision::Flow { trunk, tenant, .. } => {
            load.start(trunk, tenant, now)
        }
        Decision::Refuse {
            why: Refusal::Cap { scope, cap },
            ..
        } => {
            load.refused(scope, *cap);
        }
        _ => {}
    }
    d
}

fn refused_503(d: &Decision<String>) -> Option<(CapScope, Cap, String, String)> {
    let Decision::Refuse {
        code: 503,
        headers,
        why: Refusal::Cap { scope, cap },
    } = d
    else {
        return None;
    };
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Some((scope.clone(), *cap, get("Retry-After"), get("Warning")))
}

#[test]
fn a_trunk_at_its_concurrent_call_cap_refuses_503_with_retry_after() {
    let w = world();
    let mut load = CallLoad::new([("carrier".to_string(), caps(2, 0))], []);
    assert!(matches!(
        admit(&w, &mut load, "12345", at(0)),
        Decision::Did { .. }
    ));
    assert!(matches!(
        admit(&w, &mut load, "12399", at(1)),
        Decision::Flow { .. }
    ));
    let d = admit(&w, &mut load, "12345", at(2));
    let (scope, cap, retry, warning) = refused_503(&d).expect("503");
    assert_eq!(scope, CapScope::Trunk("carrier".into()));
    assert_eq!(cap, Cap::Calls(2));
    assert_eq!(retry, CALLS_RETRY_AFTER_SECS.to_string());
    assert!(
        warning.starts_with("399 hotline \"trunk carrier: 2 calls"),
        "{warning}"
    );
    // One ends: the next is admitted.
    load.end("carrier", "default");
    assert!(matches!(
        admit(&w, &mut load, "12345", at(3)),
        Decision::Did { .. }
    ));
    let f = load.figures();
    assert_eq!(
        (f[0].name.as_str(), f[0].refused_calls, f[0].admitted),
        ("carrier", 1, 3)
    );
}

#[test]
fn a_trunk_at_its_cps_cap_refuses_until_the_second_has_passed() {
    let w = world();
    let mut load = CallLoad::new([("carrier".to_string(), caps(0, 2))], []);
    assert!(matches!(
        admit(&w, &mut load, "12345", at(0)),
        Decision::Did { .. }
    ));
    assert!(matches!(
        admit(&w, &mut load, "12345", at(400)),
        Decision::Did { .. }
    ));
    let (_, cap, retry, _) = refused_503(&admit(&w, &mut load, "12345", at(999))).expect("503");
    assert_eq!(cap, Cap::Cps(2));
    assert_eq!(retry, CPS_RETRY_AFTER_SECS.to_string());
    // The first start leaves the window at 1 000 ms: one more fits.
    assert!(matches!(
        admit(&w, &mut load, "12345", at(1_000)),
        Decision::Did { .. }
    ));
    assert!(refused_503(&admit(&w, &mut load, "12345", at(1_001))).is_some());
    assert_eq!(load.figures()[0].refused_cps, 2);
}

#[test]
fn a_centre_cap_counts_its_calls_over_all_trunks() {
    let w = world();
    // The trunk has room; the centre "default" has two calls at most.
    let mut load = CallLoad::new(
        [("carrier".to_string(), caps(10, 0))],
        [
            ("default".to_string(), caps(2, 0)),
            ("city".to_string(), caps(0, 0)),
        ],
    );
    // A call of another trunk for the same centre counts (the shell
    // counts calls of every trunk).
    load.start("other-carrier", "default", at(0));
    assert!(matches!(
        admit(&w, &mut load, "12345", at(1)),
        Decision::Did { .. }
    ));
    let (scope, cap, _, warning) = refused_503(&admit(&w, &mut load, "12345", at(2))).expect("503");
    assert_eq!(scope, CapScope::Tenant("default".into()));
    assert_eq!(cap, Cap::Calls(2));
    assert!(warning.contains("centre default"), "{warning}");
    // Another centre's number on the same trunk is not refused.
    assert!(matches!(
        admit(&w, &mut load, "12399", at(3)),
        Decision::Flow { .. }
    ));
}

#[test]
fn the_trunks_cap_is_named_before_the_centres_and_calls_before_cps() {
    let w = world();
    let mut load = CallLoad::new(
        [("carrier".to_string(), caps(1, 1))],
        [("default".to_string(), caps(1, 1))],
    );
    admit(&w, &mut load, "12345", at(0));
    let (scope, cap, ..) = refused_503(&admit(&w, &mut load, "12345", at(1))).expect("503");
    assert_eq!(
        (scope, cap),
        (CapScope::Trunk("carrier".into()), Cap::Calls(1))
    );
}

#[test]
fn caps_never_touch_what_is_refused_earlier_or_is_no_call() {
    let w = world();
    // Every cap reached.
    let mut load = CallLoad::new(
        [("carrier".to_string(), caps(1, 1))],
        [("default".to_string(), caps(1, 1))],
    );
    load.start("carrier", "default", at(0));
    let l = load.at(at(1));
    assert!(matches!(
        decide_loaded(&w, "99999", CARRIER, &l),
        Decision::Refuse { code: 404, .. }
    ));
    assert!(matches!(
        decide_loaded(&w, "12345", STRANGER, &l),
        Decision::Refuse { code: 403, .. }
    ));
    assert!(matches!(
        decide_loaded(&w, "*31", STRANGER, &l),
        Decision::FeatureCode { .. }
    ));
}

#[test]
fn zero_means_no_cap() {
    let w = world();
    let mut load = CallLoad::new(
        [("carrier".to_string(), caps(0, 0))],
        [("default".to_string(), caps(0, 0))],
    );
    for i in 0..500 {
        assert!(matches!(
            admit(&w, &mut load, "12345", at(i)),
            Decision::Did { .. }
        ));
    }
}

/// Seeded: INVITEs at random times, calls ending at random: the calls in
/// progress never exceed `max_calls`, no second ever admits more than
/// `max_cps`, and every INVITE refused was refused at a reached cap (none
/// refused while there was room).
#[test]
fn seeded_traffic_never_exceeds_the_caps_and_is_refused_only_at_them() {
    let w = world();
    for seed in 1..=20u64 {
        let (max_calls, max_cps) = (3 + (seed % 4) as u32, 2 + (seed % 3) as u32);
        let mut load = CallLoad::new([("carrier".to_string(), caps(max_calls, max_cps))], []);
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut now = 0u64;
        let mut live: Vec<u64> = Vec::new(); // end times
        let mut admitted: Vec<u64> = Vec::new(); // start times
        for _ in 0..2_000 {
            now += next() % 300;
            // Calls whose time is up end (in the ledger, as a dropped slot).
            live.retain(|end| {
                let over = *end <= now;
                if over {
                    load.end("carrier", "default");
                }
                !over
            });
            let in_window = admitted.iter().filter(|t| now - **t < 1_000).count() as u32;
            let room = (live.len() as u32) < max_calls && in_window < max_cps;
            match admit(&w, &mut load, "12345", at(now)) {
                Decision::Did { .. } => {
                    assert!(room, "seed {seed}: admitted beyond a cap at {now}");
                    live.push(now + next() % 5_000);
                    admitted.push(now);
                }
                other => {
                    assert!(refused_503(&other).is_some(), "seed {seed}: {other:?}");
                    assert!(!room, "seed {seed}: refused with room at {now}");
                }
            }
            assert!(live.len() as u32 <= max_calls);
        }
    }
}

// ---------------------------------------------------------------------------
// Media near its limit (issue 16: overload refuses new calls first)
// ---------------------------------------------------------------------------

#[test]
fn while_the_media_workers_are_near_their_limit_a_new_call_gets_503_and_others_pass() {
    use super::admission::MEDIA_RETRY_AFTER_SECS;
    let w = world();
    let decide_media = |method: &str, number: &str| {
        decide(
            &RequestView {
                method,
                uri_user: number,
                source: CARRIER.parse().expect("ip"),
                from_phone: false,
            },
            &Tables {
                dids: &w.dids,
                trunks: &w.trunks,
                flows: &w.flows,
                draining: false,
                load: &super::admission::Unlimited,
                media_overloaded: true,
            },
        )
    };
    let Decision::Refuse {
        code: 503,
        headers,
        why: Refusal::MediaOverload,
    } = decide_media("INVITE", "12345")
    else {
        panic!("a new call while the media is near its limit is refused");
    };
    assert!(headers.contains(&("Retry-After".into(), MEDIA_RETRY_AFTER_SECS.to_string())));
    assert!(headers
        .iter()
        .any(|(k, v)| k == "Warning" && v.contains("media")));
    // What would be refused anyway keeps its own answer; what is not a new
    // call (an agent's registration, a carrier's OPTIONS ping) passes.
    assert!(matches!(
        decide_media("INVITE", "99999"),
        Decision::Refuse { code: 404, .. }
    ));
    assert_eq!(decide_media("REGISTER", "1001"), Decision::Register);
    assert!(matches!(
        decide_media("OPTIONS", ""),
        Decision::Reply { code: 200, .. }
    ));
}

#[test]
fn an_agents_phone_dialling_what_no_trunk_or_number_admits_is_a_call_from_the_phone() {
    let w = world();
    let from_phone = |number: &str, from: &str| {
        decide(
            &RequestView {
                method: "INVITE",
                uri_user: number,
                source: from.parse().expect("ip"),
                from_phone: true,
            },
            &Tables {
                dids: &w.dids,
                trunks: &w.trunks,
                flows: &w.flows,
                draining: false,
                load: &super::admission::Unlimited,
                media_overloaded: false,
            },
        )
    };
    let phone_call = |n: &str| Decision::PhoneCall {
        dialled: n.to_string(),
    };
    // From no trunk's address, or to a number nothing claims.
    assert_eq!(from_phone("1002", STRANGER), phone_call("1002"));
    assert_eq!(from_phone("1002", CARRIER), phone_call("1002"));
    // A number a flow claims is a call like a carrier's.
    assert!(matches!(
        from_phone("12399", CARRIER),
        Decision::Flow { .. }
    ));
    // Feature codes stay feature codes; strangers keep their 403 and 404.
    assert_eq!(
        from_phone("*13", STRANGER),
        Decision::FeatureCode {
            dialled: "*13".into()
        }
    );
    assert!(matches!(
        decide_in(&w, "INVITE", "1002", STRANGER, false),
        Decision::Refuse { code: 403, .. }
    ));
    assert!(matches!(
        decide_in(&w, "INVITE", "1002", CARRIER, false),
        Decision::Refuse { code: 404, .. }
    ));
}
