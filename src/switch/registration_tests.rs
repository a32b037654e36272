//! A reload of the shared store never undoes this node's own newer
//! registration (docs/ha.md §1; found by the edge bench: a node started,
//! took a REGISTER, then its first reload of the stored bindings, read
//! before that REGISTER was written, replaced it, and the node forgot the
//! phone for good: its own change is never announced back to it).

use std::net::SocketAddr;

use super::Registrations;
use crate::config::Config;
use crate::sip::auth::respond;
use crate::sip::Request;
use crate::store::Store;

const PHONE: &str = "127.0.0.21:5070";

fn register(cseq: u32, authorization: Option<&str>) -> Request {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let text = format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-r{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=r\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: reload-race\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:1001@{PHONE}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    let rsipstack::sip::SipMessage::Request(req) =
        rsipstack::sip::SipMessage::try_from(text.as_bytes()).expect("a REGISTER")
    else {
        panic!("not a request");
    };
    Request::new(req, PHONE.parse::<SocketAddr>().expect("addr"))
}

/// Agent 1001 registers (challenge, answer) and its binding is written.
async fn registered(regs: &Registrations) {
    let challenged = regs.begin(&register(1, None));
    assert_eq!(challenged.code, 401);
    let challenge = challenged
        .headers
        .iter()
        .find(|(n, _)| n == "WWW-Authenticate")
        .map(|(_, v)| v.clone())
        .expect("a challenge");
    let answer = respond(
        &challenge,
        "REGISTER",
        "sip:127.0.0.1:5060",
        "1001",
        "pass1001",
        "c1",
        1,
    )
    .expect("an answer");
    let accepted = regs.begin(&register(2, Some(&answer)));
    assert_eq!(accepted.code, 200);
    accepted.written.wait().await;
}

fn phones(regs: &Registrations) -> usize {
    crate::call::Directory::contacts(regs, "1001").len()
}

#[tokio::test]
async fn a_reload_read_before_this_nodes_register_does_not_undo_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::embedded_default().expect("config");
    let store = Store::open(dir.path()).expect("store");
    let regs = Registrations::new(&config, store.clone()).expect("registrations");

    // A reload begins (its mark taken, the store read: nothing) ...
    let mark = regs.settled_mark().await;
    let read_before = store.load_bindings().expect("load");
    assert!(read_before.is_empty());
    // ... the phone registers here meanwhile ...
    registered(&regs).await;
    assert_eq!(phones(&regs), 1);
    // ... and the reload lands: this node's newer binding stays.
    regs.adopt_all(mark, read_before.clone());
    assert_eq!(phones(&regs), 1, "the reload undid this node's REGISTER");
    regs.adopt(mark, "1001", read_before);
    assert_eq!(phones(&regs), 1);

    // A reload begun after it reads it back, and keeps it.
    let mark = regs.settled_mark().await;
    regs.adopt_all(mark, store.load_bindings().expect("load"));
    assert_eq!(phones(&regs), 1);
    // Another node's later change (it unregistered the phone) is taken.
    let mark = regs.settled_mark().await;
    regs.adopt(mark, "1001", Vec::new());
    assert_eq!(phones(&regs), 0);
}
