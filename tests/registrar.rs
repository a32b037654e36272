//! Agent registration over the wire (RFC 3261 §10, RFC 7616/8760 digest):
//! challenge, success with MD5 and SHA-256, wrong password and unknown user
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

#[test]
fn digest_md5_and_sha256_both_register_and_challenges_list_md5_first() {
    let h = Hotline::start(Net(41), "");
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
    let contact = headers(&ok, "Contact");
    assert_eq!(contact.len(), 1, "{ok}");
    assert!(contact[0].contains("expires="), "{ok}");

    let mut q = Phone::new(&h, &h.net.agent(1), "1002");
    let ok = q.register_with("pass1002", "SHA-256", 600);
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(h.counter("/registrations"), 2);

    // Unregister (Expires: 0) removes the binding.
    let ok = q.register_with("pass1002", "SHA-256", 0);
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(h.counter("/registrations"), 1);
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
