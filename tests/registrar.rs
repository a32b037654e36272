//! Agent registration over the wire (RFC 3261 §10, RFC 7616/8760 digest):
//! one challenge per request by default (MD5, SHA-256 for agents configured
//! for it; RFC 8760 multiple challenges as an option), also for the 407 of
//! a feature code INVITE, success with MD5 and SHA-256, wrong password and unknown user
//! indistinguishable, stale nonce, replay, Min-Expires, unregister,
//! brute-force throttling, and bindings kept across a restart.

mod common;

use std::time::Duration;

use common::{headers, status, Hotline, Net, RawSip};
use hotline::sip::auth;

struct Phone {
    raw: RawSip,
    hotline_ip: String,
    user: String,
    call_id: String,
    cseq: u32,
}

impl Phone {
    fn new(h: &Hotline, ip: &str, user: &str) -> Self {
        Self {
            raw: RawSip::new(ip, &h.net.sip()),
            hotline_ip: h.net.ip(1),
            user: user.into(),
            call_id: format!("reg-{user}-{ip}"),
            cseq: 0,
        }
    }

    fn uri(&self) -> String {
        format!("sip:{}:5060", self.hotline_ip)
    }

    fn register(&mut self, expires: u32, authorization: Option<&str>) -> String {
        self.cseq += 1;
        let me = self.raw.local();
        let (user, hotline) = (&self.user, &self.hotline_ip);
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{cid}-{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{hotline}>;tag=t{cseq}\r\nTo: <sip:{user}@{hotline}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me}>\r\nExpires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n",
            uri = self.uri(),
            cid = self.call_id,
            cseq = self.cseq,
        );
        self.raw.send(msg.as_bytes());
        self.raw.recv_final().expect("a response to REGISTER")
    }

    /// Register with `password`, answering the challenge with `algorithm`.
    fn register_with(&mut self, password: &str, algorithm: &str, expires: u32) -> String {
        let challenge = self.register(expires, None);
        assert_eq!(status(&challenge), 401, "{challenge}");
        let offered = headers(&challenge, "WWW-Authenticate");
        let chosen = offered
            .iter()
            .find(|c| c.contains(&format!("algorithm={algorithm}")))
            .unwrap_or_else(|| panic!("no {algorithm} challenge in {offered:?}"));
        let answer = auth::respond(
            chosen,
            "REGISTER",
            &self.uri(),
            &self.user,
            password,
            "cn0nce",
            1,
        )
        .expect("answer");
        self.register(expires, Some(&answer))
    }
}

/// Agents beyond the test config's: 1005 is configured for SHA-256, 1006
/// has only a SHA-256 HA1 stored.
fn sha256_agents() -> String {
    let ha1 = auth::ha1(
        auth::DigestAlgorithm::Sha256,
        "1006",
        "hotline.test",
        "pass1006",
    );
    format!(
        "[[agent]]\nuser = \"1005\"\npassword = \"pass1005\"\ndigest_algorithm = \"SHA-256\"\n\
         [[agent]]\nuser = \"1006\"\nha1_sha256 = \"{ha1}\"\n"
    )
}

/// The one challenge of a 401, asserting there is exactly one.
fn only_challenge(resp: &str) -> String {
    assert_eq!(status(resp), 401, "{resp}");
    let offered = headers(resp, "WWW-Authenticate");
    assert_eq!(offered.len(), 1, "one challenge per request: {resp}");
    offered[0].to_string()
}

#[test]
fn one_challenge_per_request_md5_by_default_sha256_where_the_agent_is_configured_for_it() {
    let h = Hotline::start(Net(41), &sha256_agents());
    // Default: one MD5 challenge (phones like baresip 1.0 give up on two).
    let mut p = Phone::new(&h, &h.net.agent(0), "1001");
    let challenge = only_challenge(&p.register(600, None));
    assert!(
        challenge.contains("algorithm=MD5") && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );
    let ok = p.register_with("pass1001", "MD5", 600);
    assert_eq!(status(&ok), 200, "{ok}");
    let contact = headers(&ok, "Contact");
    assert_eq!(contact.len(), 1, "{ok}");
    assert!(contact[0].contains("expires="), "{ok}");

    // An unknown user gets the same single MD5 challenge.
    let mut unknown = Phone::new(&h, &h.net.agent(3), "7777");
    assert!(only_challenge(&unknown.register(600, None)).contains("algorithm=MD5"));

    // An agent configured for SHA-256: one SHA-256 challenge; MD5
    // credentials (a downgrade) are refused.
    let mut q = Phone::new(&h, &h.net.agent(1), "1005");
    let challenge = only_challenge(&q.register(600, None));
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    let md5 = challenge.replace("algorithm=SHA-256", "algorithm=MD5");
    let downgrade = auth::respond(&md5, "REGISTER", &q.uri(), "1005", "pass1005", "c", 1).unwrap();
    let refused = q.register(600, Some(&downgrade));
    assert_eq!(status(&refused), 401, "{refused}");
    let ok = q.register_with("pass1005", "SHA-256", 600);
    assert_eq!(status(&ok), 200, "{ok}");

    // An agent with only a SHA-256 HA1 stored can only answer SHA-256.
    let mut r = Phone::new(&h, &h.net.agent(2), "1006");
    let challenge = only_challenge(&r.register(600, None));
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    let ok = r.register_with("pass1006", "SHA-256", 600);
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(h.counter("/registrations"), 3);

    // Unregister (Expires: 0) removes the binding.
    let ok = q.register_with("pass1005", "SHA-256", 0);
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(h.counter("/registrations"), 2);
}

#[test]
fn multiple_challenges_rfc8760_when_configured_md5_first_and_both_register() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(151);
    let text = common::config(net, &dir.path().join("var"), &sha256_agents()).replace(
        "[registrar]\nmin_expires = 60\n",
        "[registrar]\nmin_expires = 60\ndigest_challenge = \"multiple\"\n",
    );
    let h = Hotline::start_with(net, dir, &text);
    let mut p = Phone::new(&h, &h.net.agent(0), "1001");
    let challenge = p.register(600, None);
    let offered = headers(&challenge, "WWW-Authenticate");
    assert_eq!(offered.len(), 2, "{challenge}");
    assert!(
        offered[0].contains("algorithm=MD5") && offered[1].contains("algorithm=SHA-256"),
        "{offered:?}"
    );
    assert!(
        offered.iter().all(|c| c.contains("qop=\"auth\"")),
        "{offered:?}"
    );
    let ok = p.register_with("pass1001", "MD5", 600);
    assert_eq!(status(&ok), 200, "{ok}");
    let mut q = Phone::new(&h, &h.net.agent(1), "1002");
    let ok = q.register_with("pass1002", "SHA-256", 600);
    assert_eq!(status(&ok), 200, "{ok}");
    // Only what the agent's credentials can answer is offered.
    let mut r = Phone::new(&h, &h.net.agent(2), "1006");
    let challenge = only_challenge(&r.register(600, None));
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    assert_eq!(h.counter("/registrations"), 2);
}

#[test]
fn a_feature_code_invite_gets_one_proxy_challenge_in_the_agents_algorithm() {
    let net = Net(152);
    let _hotline = Hotline::start(net, &sha256_agents());
    for (user, ip, algorithm) in [
        ("1001", net.agent(0), "MD5"),
        ("1005", net.agent(1), "SHA-256"),
    ] {
        let raw = RawSip::new(&ip, &net.sip());
        let me = raw.local();
        let hotline = net.ip(1);
        let uri = format!("sip:*11@{hotline}:5060");
        let invite = |branch: &str, auth: &str| {
            let sdp = format!(
                "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
            );
            format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{hotline}>;tag=fc{user}\r\nTo: <{uri}>\r\nCall-ID: fc-{user}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{user}@{me}>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
                cseq = if auth.is_empty() { 1 } else { 2 },
                len = sdp.len(),
            )
        };
        let ack = |branch: &str, resp: &str| {
            let to = headers(resp, "To")[0].to_string();
            format!(
                "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{hotline}>;tag=fc{user}\r\nTo: {to}\r\nCall-ID: fc-{user}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let branch = format!("z9hG4bK-fc-{user}-1");
        raw.send(invite(&branch, "").as_bytes());
        let resp = raw.recv_final().expect("a response to the INVITE");
        raw.send(ack(&branch, &resp).as_bytes());
        assert_eq!(status(&resp), 407, "{resp}");
        let offered = headers(&resp, "Proxy-Authenticate");
        assert_eq!(offered.len(), 1, "one challenge per request: {resp}");
        assert!(
            offered[0].contains(&format!("algorithm={algorithm}")),
            "{resp}"
        );
        let answer = auth::respond(
            offered[0],
            "INVITE",
            &uri,
            user,
            &format!("pass{user}"),
            "cn",
            1,
        )
        .unwrap();
        raw.send(
            invite(
                &format!("z9hG4bK-fc-{user}-2"),
                &format!("Proxy-Authorization: {answer}\r\n"),
            )
            .as_bytes(),
        );
        let resp = raw.recv_final().expect("a response to the answered INVITE");
        // Accepted: the feature code (sign in) is confirmed with a 200.
        assert_eq!(status(&resp), 200, "the answer is accepted: {resp}");
    }
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let h = Hotline::start(Net(42), "");
    let mut wrong = Phone::new(&h, &h.net.agent(0), "1001");
    let a = wrong.register_with("not-the-password", "MD5", 600);
    let mut unknown = Phone::new(&h, &h.net.agent(1), "7777");
    let b = unknown.register_with("whatever", "MD5", 600);
    assert_eq!(status(&a), 401, "{a}");
    assert_eq!(status(&b), 401, "{b}");
    // Same headers apart from the nonce and the echoed request fields.
    let shape = |r: &str| {
        let mut names: Vec<String> = r
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect();
        names.sort();
        names
    };
    assert_eq!(shape(&a), shape(&b));
    assert!(!a.contains("stale=true") && !b.contains("stale=true"));
    assert_eq!(h.counter("/registrations"), 0);
}

#[test]
fn stale_nonce_gets_stale_true_and_a_replay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(43);
    let text = common::config(net, &dir.path().join("var"), "").replace(
        "[registrar]\nmin_expires = 60\n",
        "[registrar]\nmin_expires = 60\nnonce_ttl_secs = 1\n",
    );
    let h = Hotline::start_with(net, dir, &text);
    let mut p = Phone::new(&h, &h.net.agent(0), "1001");
    let challenge = p.register(600, None);
    let first = headers(&challenge, "WWW-Authenticate")[0].to_string();
    std::thread::sleep(Duration::from_millis(2500));
    let late = auth::respond(&first, "REGISTER", &p.uri(), "1001", "pass1001", "c1", 1).unwrap();
    let resp = p.register(600, Some(&late));
    assert_eq!(status(&resp), 401, "{resp}");
    assert!(
        headers(&resp, "WWW-Authenticate")
            .iter()
            .all(|c| c.contains("stale=true")),
        "{resp}"
    );

    // A fresh nonce works once; the same Authorization again (same nc) is a replay.
    let fresh = headers(&resp, "WWW-Authenticate")[0].to_string();
    let answer = auth::respond(&fresh, "REGISTER", &p.uri(), "1001", "pass1001", "c2", 1).unwrap();
    assert_eq!(status(&p.register(600, Some(&answer))), 200);
    let replay = p.register(600, Some(&answer));
    assert_eq!(status(&replay), 401, "{replay}");
}

#[test]
fn too_brief_expiry_gets_423_with_min_expires() {
    let h = Hotline::start(Net(44), "");
    let mut p = Phone::new(&h, &h.net.agent(0), "1001");
    let resp = p.register_with("pass1001", "MD5", 10);
    assert_eq!(status(&resp), 423, "{resp}");
    assert_eq!(headers(&resp, "Min-Expires"), ["60"]);
}

#[test]
fn repeated_failures_block_the_source() {
    let h = Hotline::start(Net(45), "");
    let mut p = Phone::new(&h, &h.net.ip(77), "1001");
    let mut codes = Vec::new();
    for _ in 0..12 {
        let challenge = p.register(600, None);
        if status(&challenge) != 401 {
            codes.push(status(&challenge));
            continue;
        }
        let c = headers(&challenge, "WWW-Authenticate")[0].to_string();
        let guess = auth::respond(&c, "REGISTER", &p.uri(), "1001", "guess", "c", 1).unwrap();
        codes.push(status(&p.register(600, Some(&guess))));
    }
    assert!(
        codes.contains(&403),
        "blocked after repeated failures: {codes:?}"
    );
    // Even the right password is refused while blocked…
    let resp = p.register(600, None);
    assert_eq!(status(&resp), 403, "{resp}");
    // …but another address is not affected.
    let mut other = Phone::new(&h, &h.net.ip(78), "1001");
    assert_eq!(status(&other.register_with("pass1001", "MD5", 600)), 200);
    let log = h.log();
    assert_eq!(
        log.matches("address blocked").count(),
        1,
        "logged once:\n{}",
        h.tail_log()
    );
}

#[test]
fn bindings_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net(46);
    let text = common::config(net, &dir.path().join("var"), "");
    let mut h = Hotline::start_with(net, dir, &text);
    let mut p = Phone::new(&h, &h.net.agent(0), "1001");
    assert_eq!(status(&p.register_with("pass1001", "MD5", 600)), 200);
    h.sigterm();
    assert!(h.wait_exit(Duration::from_secs(15)).success());
    let dir = std::mem::replace(&mut h.dir, tempfile::tempdir().unwrap());
    drop(h);
    let h = Hotline::start_with(net, dir, &text);
    assert_eq!(h.counter("/registrations"), 1, "{}", h.tail_log());
}
