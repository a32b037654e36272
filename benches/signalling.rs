//! Signalling hot paths: parsing a carrier INVITE, SDP offer/answer,
//! digest verification, registrar lookup, writing a confirmed leg's dialog
//! to hotline.db. Run: `cargo bench --bench signalling`.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline::media::sdp::{self, AudioCodec, Direction, LocalMedia, SessionDescription};
use hotline::sip::auth::{self, DigestAlgorithm, DigestServer, Secret};
use hotline::sip::journal::{DialogJournal, DialogRole, SavedDialog};
use hotline::sip::registrar::{ContactSpec, RegisterRequest, Registrar, RegistrarPolicy};
use hotline::store::{DialogWriter, Store};
use hotline::time::Time;

const SDP: &str = "v=0\r\no=carrier 1234 1 IN IP4 10.1.2.3\r\ns=call\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";

fn invite() -> String {
    format!(
        "INVITE sip:12345@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 69\r\nFrom: \"13800138000\" <sip:13800138000@10.1.2.3>;tag=1928301774\r\nTo: <sip:12345@10.0.0.1>\r\nCall-ID: a84b4c76e66710@10.1.2.3\r\nCSeq: 314159 INVITE\r\nContact: <sip:13800138000@10.1.2.3:5060>\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\nSupported: timer, 100rel\r\nSession-Expires: 1800\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn parse(c: &mut Criterion) {
    let msg = invite();
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_invite_and_read_headers", |b| {
        b.iter(|| hotline::sip::message::parse_for_inspection(black_box(msg.as_bytes())))
    });
    g.finish();
}

fn offer_answer(c: &mut Criterion) {
    let local = LocalMedia {
        address: "10.0.0.1".parse().unwrap(),
        port: 20000,
        session_id: 1,
        session_version: 1,
        codecs: vec![AudioCodec::Pcma, AudioCodec::Pcmu],
        telephone_event: true,
        direction: Direction::SendRecv,
        sdes: hotline::media::sdp::Sdes::OFF,
    };
    let mut g = c.benchmark_group("sdp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_negotiate_print", |b| {
        b.iter(|| {
            let offer = SessionDescription::parse(black_box(SDP)).unwrap();
            let (answer, _) = sdp::negotiate_answer(&offer, &local).unwrap();
            answer.to_string()
        })
    });
    g.finish();
}

fn digest(c: &mut Criterion) {
    let mut server = DigestServer::new("hotline.local", [9; 32], 300);
    let mut g = c.benchmark_group("digest");
    g.throughput(Throughput::Elements(1));
    for alg in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
        g.bench_function(format!("challenge_and_verify_{}", alg.token()), |b| {
            let mut nc = 0u32;
            b.iter(|| {
                let challenges = server.challenge(Time::from_unix_secs(1000), false);
                let chosen = challenges
                    .iter()
                    .find(|c| c.ends_with(&format!("algorithm={}", alg.token())))
                    .unwrap();
                nc += 1;
                let answer = auth::respond(
                    chosen,
                    "REGISTER",
                    "sip:hotline.local",
                    "1001",
                    "pass1001",
                    "c",
                    nc,
                )
                .unwrap();
                server.verify(Time::from_unix_secs(1000), "REGISTER", &answer, |_| {
                    Some(Secret::Plain("pass1001".into()))
                })
            })
        });
    }
    g.finish();
}

fn registrar(c: &mut Criterion) {
    let mut reg = Registrar::new(RegistrarPolicy::default());
    for i in 0..1000u32 {
        let source: SocketAddr = format!("10.0.{}.{}:5060", i / 250, i % 250 + 1)
            .parse()
            .unwrap();
        reg.register(
            Time::from_unix_secs(1000),
            RegisterRequest {
                aor: format!("{}", 1000 + i),
                contacts: vec![ContactSpec {
                    uri: format!("sip:{}@{source}", 1000 + i),
                    expires: Some(3600),
                    q: None,
                }],
                wildcard: false,
                expires_header: None,
                call_id: format!("c{i}"),
                cseq: 1,
                source,
                transport: "UDP".into(),
                path: vec![],
            },
        );
    }
    let mut g = c.benchmark_group("registrar");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lookup_among_1000_agents", |b| {
        b.iter(|| reg.lookup(Time::from_unix_secs(1001), black_box("1500")))
    });
    g.finish();
}

/// What each confirmed leg costs (issue 12 item 4): its dialog written to
/// hotline.db when confirmed and removed when it ends — directly (one
/// transaction each, the writer thread's work) and through the writer
/// thread as the SIP stack does it (hand-off, commit, and a flush to wait).
fn dialog_journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let leg = SavedDialog {
        call_id: "a84b4c76e66710@10.1.2.3".into(),
        local_tag: "hl-7f3a9c".into(),
        remote_tag: "1928301774".into(),
        role: DialogRole::Uas,
        local_party: "<sip:12345@10.0.0.1>;tag=hl-7f3a9c".into(),
        remote_party: "\"13800138000\" <sip:13800138000@10.1.2.3>;tag=1928301774".into(),
        remote_target: "sip:13800138000@10.1.2.3:5060".into(),
        route_set: vec!["<sip:10.1.2.1;lr>".into()],
        local_contact: Some("sip:10.0.0.1:5060".into()),
        local_cseq: 314159,
    };
    let mut g = c.benchmark_group("dialog_journal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("save_then_remove_one_leg", |b| {
        b.iter(|| {
            store.save_dialog(black_box(&leg)).expect("save");
            store.delete_dialog(&leg.key()).expect("delete");
        })
    });
    let writer = DialogWriter::start(store.clone()).expect("writer");
    g.bench_function("save_remove_flush_through_the_writer_thread", |b| {
        b.iter(|| {
            writer.save(black_box(&leg));
            writer.remove(&leg.key());
            writer.flush();
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    parse,
    offer_answer,
    digest,
    registrar,
    dialog_journal
);
criterion_main!(benches);
