//! Unit tests of the outbox, each run against both backends (issue 15 §1:
//! "the same store test suite runs against both"): a real SQLite file and
//! a throw-away PostgreSQL database (`store::pg::test_db`; skipped with a
//! note when no server is given). `both_backends!` makes an `embedded`
//! and a `postgres` test of each test function.

use super::*;
use crate::events::ordering::{self, Candidate, Standing};
use proptest::prelude::*;

fn ev(id: &str, call: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.to_string(),
        call_id: call.map(str::to_string),
        kind: "test.event".to_string(),
        body_json: format!(r#"{{"id":"{id}"}}"#),
    }
}

/// One outbox database under test.
trait Backing {
    /// A new handle on it (after the last is dropped: a reopen).
    fn open_with(&self, config: OutboxConfig) -> Result<Outbox, OutboxError>;
    fn open(&self) -> Outbox {
        self.open_with(OutboxConfig::default()).expect("open")
    }
    /// What the death of a process does to the database beyond dropping
    /// nothing: PostgreSQL ends its sessions (and their locks).
    fn process_died(&self) {}
}

struct File(tempfile::TempDir);

impl Backing for File {
    fn open_with(&self, config: OutboxConfig) -> Result<Outbox, OutboxError> {
        Outbox::open_with(&self.0.path().join("events.db"), config)
    }
}

struct Postgres(String);

impl Backing for Postgres {
    fn open_with(&self, config: OutboxConfig) -> Result<Outbox, OutboxError> {
        Outbox::connect_with(&self.0, config)
    }
    fn process_died(&self) {
        crate::store::pg::test_db::exec(
            &self.0,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
    }
}

fn file() -> File {
    File(tempfile::tempdir().expect("tempdir"))
}

fn postgres(name: &str) -> Option<Postgres> {
    crate::store::pg::test_db::database(name).map(Postgres)
}

crate::store::pg::test_db::both_backends!(
    embedded: super::File,
    postgres: super::Postgres,
    tests: [
    hands_out_only_the_head_of_each_call,
    backoff_holds_the_call_back,
    expired_lease_hands_the_event_out_again,
    dead_letter_unblocks_the_call_and_replays,
    immediate_dead_letter_and_replay_all,
    sinks_deliver_independently,
    append_is_all_or_nothing_and_names_the_duplicate,
    survives_being_dropped_without_close,
    refuses_a_newer_schema,
    bodies_come_back_as_appended,
    calls_queries_and_deletes,
]
);

fn fresh(b: &dyn Backing) -> Outbox {
    let ob = b.open();
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    ob
}

fn ids(b: &[Pending]) -> Vec<&str> {
    b.iter().map(|p| p.id.as_str()).collect()
}

fn hands_out_only_the_head_of_each_call(b: &dyn Backing) {
    let ob = fresh(b);
    ob.append(&[
        ev("a1", Some("a")),
        ev("b1", Some("b")),
        ev("a2", Some("a")),
    ])
    .expect("append");
    ob.append(&[ev("n1", None), ev("n2", None), ev("b2", Some("b"))])
        .expect("append");
    let b = ob.next_batch("w", 10, 0).expect("batch");
    assert_eq!(ids(&b), ["a1", "b1", "n1", "n2"]);
    assert_eq!(b[0].attempt, 1);
    // Leased: nothing new until reported.
    assert!(ob.next_batch("w", 10, 0).expect("batch").is_empty());
    assert!(ob.ack("w", "a1").expect("ack"));
    assert!(!ob.ack("w", "a1").expect("ack twice"));
    assert_eq!(ids(&ob.next_batch("w", 10, 0).expect("batch")), ["a2"]);
}

fn backoff_holds_the_call_back(b: &dyn Backing) {
    let ob = fresh(b);
    ob.append(&[ev("a1", Some("a")), ev("a2", Some("a"))])
        .expect("append");
    let b = ob.next_batch("w", 10, 1_000).expect("batch");
    assert_eq!(ids(&b), ["a1"]);
    let Some(FailOutcome::Retry { at_ms }) = ob.fail("w", "a1", 1_000, "500").expect("fail") else {
        panic!("expected a retry");
    };
    assert!((1_000..=2_000).contains(&at_ms));
    if at_ms > 1_000 {
        assert!(ob.next_batch("w", 10, at_ms - 1).expect("batch").is_empty());
    }
    let b = ob.next_batch("w", 10, at_ms).expect("batch");
    assert_eq!(ids(&b), ["a1"]);
    assert_eq!(b[0].attempt, 2);
    assert_eq!(ob.next_retry_at("w", 0).expect("next retry"), Some(at_ms));
}

fn expired_lease_hands_the_event_out_again(b: &dyn Backing) {
    let ob = b
        .open_with(OutboxConfig {
            lease_ms: 100,
            ..OutboxConfig::default()
        })
        .expect("open");
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    ob.append(&[ev("a1", Some("a"))]).expect("append");
    assert_eq!(ob.next_batch("w", 1, 0).expect("batch").len(), 1);
    assert!(ob.next_batch("w", 1, 99).expect("batch").is_empty());
    assert_eq!(ob.next_batch("w", 1, 100).expect("batch").len(), 1);
}

fn dead_letter_unblocks_the_call_and_replays(b: &dyn Backing) {
    let ob = b.open();
    let policy = RetryPolicy {
        base_ms: 10,
        cap_ms: 10,
        max_attempts: 2,
    };
    ob.register_sink("w", policy).expect("register");
    ob.append(&[ev("a1", Some("a")), ev("a2", Some("a"))])
        .expect("append");
    let mut now = 0;
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let b = ob.next_batch("w", 10, now).expect("batch");
        assert_eq!(ids(&b), ["a1"]);
        outcomes.push(ob.fail("w", "a1", now, "HTTP 503").expect("fail"));
        now += 10;
    }
    assert!(matches!(outcomes[0], Some(FailOutcome::Retry { .. })));
    assert_eq!(outcomes[1], Some(FailOutcome::DeadLetter));
    // The call goes on.
    assert_eq!(ids(&ob.next_batch("w", 10, now).expect("batch")), ["a2"]);
    let dead = ob.dead_letters("w", 10).expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "a1");
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(dead[0].dead_at_ms, 10);
    let st = &ob.stats(now).expect("stats")[0];
    assert_eq!((st.pending, st.dead, st.in_flight), (1, 1, 1));
    assert!(ob.ack("w", "a2").expect("ack"));
    assert!(ob.replay("w", "a1").expect("replay"));
    assert!(!ob.replay("w", "a1").expect("replay twice"));
    let b = ob.next_batch("w", 10, now).expect("batch");
    assert_eq!(ids(&b), ["a1"]);
    assert!(b[0].replayed);
    assert_eq!(b[0].attempt, 1);
    assert!(ob.ack("w", "a1").expect("ack"));
    let st = &ob.stats(now).expect("stats")[0];
    assert_eq!(
        (st.pending, st.in_backoff, st.dead, st.delivered),
        (0, 0, 0, 2)
    );
}

fn immediate_dead_letter_and_replay_all(b: &dyn Backing) {
    let ob = fresh(b);
    ob.append(&[ev("x", None), ev("y", Some("c"))])
        .expect("append");
    assert_eq!(ob.next_batch("w", 10, 0).expect("batch").len(), 2);
    assert!(ob.dead_letter("w", "x", 5, "HTTP 400").expect("dead"));
    assert!(ob.dead_letter("w", "y", 5, "HTTP 422").expect("dead"));
    assert!(!ob.dead_letter("w", "y", 5, "again").expect("dead twice"));
    assert_eq!(ob.dead_letters("w", 1).expect("list").len(), 1);
    assert_eq!(ob.replay_all("w").expect("replay all"), 2);
    assert_eq!(ob.next_batch("w", 10, 6).expect("batch").len(), 2);
}

fn sinks_deliver_independently(b: &dyn Backing) {
    let ob = fresh(b);
    ob.register_sink("j", RetryPolicy::default())
        .expect("register");
    ob.append(&[ev("a1", Some("a")), ev("a2", Some("a"))])
        .expect("append");
    assert_eq!(ids(&ob.next_batch("w", 10, 0).expect("batch")), ["a1"]);
    ob.fail("w", "a1", 0, "down").expect("fail");
    assert_eq!(ids(&ob.next_batch("j", 10, 0).expect("batch")), ["a1"]);
    assert!(ob.ack("j", "a1").expect("ack"));
    assert_eq!(ids(&ob.next_batch("j", 10, 0).expect("batch")), ["a2"]);
    let stats = ob.stats(0).expect("stats");
    let names: Vec<&str> = stats.iter().map(|s| s.sink.as_str()).collect();
    assert_eq!(names, ["j", "w"]);
    assert_eq!(stats[0].delivered, 1);
    assert_eq!(stats[1].delivered, 0);
    assert!(matches!(
        ob.fail("nope", "a1", 0, "x"),
        Err(OutboxError::UnknownSink { .. })
    ));
    assert_eq!(ob.remove_sink("w").expect("remove"), 2);
    assert_eq!(ob.stats(0).expect("stats").len(), 1);
}

fn append_is_all_or_nothing_and_names_the_duplicate(b: &dyn Backing) {
    let ob = fresh(b);
    ob.append(&[ev("a1", Some("a"))]).expect("append");
    let err = ob
        .append(&[ev("a2", Some("a")), ev("a1", Some("a"))])
        .expect_err("duplicate");
    assert!(
        matches!(&err, OutboxError::DuplicateEvent { id, .. } if id == "a1"),
        "{err}"
    );
    assert!(err.to_string().contains(ob.database()), "{err}");
    let err = ob
        .append(&[ev("z", None), ev("z", None)])
        .expect_err("duplicate within");
    assert!(
        matches!(&err, OutboxError::DuplicateEvent { id, .. } if id == "z"),
        "{err}"
    );
    let bad = NewEvent {
        body_json: "{not json".into(),
        ..ev("b", None)
    };
    let err = ob.append(&[ev("ok", None), bad]).expect_err("bad body");
    assert!(err.to_string().contains("event b (test.event)"), "{err}");
    // Nothing of the refused batches is there.
    assert_eq!(ids(&ob.next_batch("w", 10, 0).expect("batch")), ["a1"]);
}

fn survives_being_dropped_without_close(b: &dyn Backing) {
    {
        let ob = b.open();
        ob.register_sink("w", RetryPolicy::default())
            .expect("register");
        for i in 0..50 {
            ob.append(&[ev(&format!("e{i}"), Some("c"))])
                .expect("append");
        }
        let batch = ob.next_batch("w", 1, 0).expect("batch");
        ob.ack("w", &batch[0].id).expect("ack");
        // In flight at the "crash": must come back.
        assert_eq!(ob.next_batch("w", 1, 0).expect("batch")[0].id, "e1");
        // No close, no checkpoint: the connections leak, as at kill -9.
        std::mem::forget(ob);
        b.process_died();
    }
    let ob = b.open();
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    let st = &ob.stats(0).expect("stats")[0];
    assert_eq!((st.delivered, st.pending), (1, 49));
    assert_eq!(ob.next_batch("w", 5, 0).expect("batch")[0].id, "e1");
}

fn refuses_a_newer_schema(b: &dyn Backing) {
    let ob = b.open();
    ob.backend.set_schema_version(99);
    drop(ob);
    let err = b.open_with(OutboxConfig::default()).expect_err("too new");
    assert!(
        matches!(err, OutboxError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

/// The sinks deliver the text appended, byte for byte (it is signed).
fn bodies_come_back_as_appended(b: &dyn Backing) {
    let ob = fresh(b);
    let body = r#"{ "z": 1.50, "a": [1,2],  "n": null, "s": "\u00e9\"x" }"#;
    ob.append(&[NewEvent {
        body_json: body.into(),
        ..ev("x", Some("c"))
    }])
    .expect("append");
    let got = ob.next_batch("w", 1, 0).expect("batch");
    assert_eq!(got[0].body_json, body);
    assert_eq!(ob.unended_calls(10).expect("unended").len(), 0);
}

fn ended(id: &str, call: &str, tenant: &str, started_at: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        call_id: Some(call.into()),
        kind: "call.ended".into(),
        body_json: format!(
            r#"{{"tenant":"{tenant}","data":{{"started_at":"{started_at}","recording":{{"path":"r/{call}.wav"}},"voicemail":null}}}}"#
        ),
    }
}

/// The restart repair's and the retention job's queries.
fn calls_queries_and_deletes(b: &dyn Backing) {
    let ob = fresh(b);
    let started = |id: &str, call: &str| NewEvent {
        kind: "call.started".into(),
        ..ev(id, Some(call))
    };
    let agent = |id: &str, at: &str| NewEvent {
        id: id.into(),
        call_id: None,
        kind: "agent.state".into(),
        body_json: format!(r#"{{"at":"{at}"}}"#),
    };
    ob.append(&[
        started("s1", "c1"),
        ended("e1", "c1", "a", "2026-01-02T00:00:00.000Z"),
        started("s2", "c2"),
        ended("e2", "c2", "b", "2026-01-01T00:00:00.000Z"),
        started("s3", "c3"),
        ev("x3", Some("c3")),
        agent("g1", "2025-12-31T00:00:00.000Z"),
        agent("g2", "2026-02-01T00:00:00.000Z"),
    ])
    .expect("append");
    let unended = ob.unended_calls(100).expect("unended");
    assert_eq!(unended.len(), 1);
    assert_eq!(unended[0].0, "c3");
    assert_eq!(unended[0].1, [r#"{"id":"s3"}"#, r#"{"id":"x3"}"#]);
    let calls = ob
        .calls_started_between("", "2026-01-03", 10)
        .expect("calls");
    let ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, ["c2", "c1"]);
    assert_eq!(calls[0].tenant, "b");
    assert_eq!(calls[0].recording.as_deref(), Some("r/c2.wav"));
    assert_eq!(calls[0].voicemail, None);
    let later = ob
        .calls_started_between("2026-01-01T00:00:00.000Z", "2026-01-03", 10)
        .expect("calls");
    assert_eq!(later.len(), 1);
    assert_eq!(
        ob.delete_calls(&["c1".into(), "c2".into()])
            .expect("delete"),
        4
    );
    assert_eq!(
        ob.delete_agent_events_before("2026-01-15T00:00:00.000Z")
            .expect("delete agents"),
        1
    );
    assert!(ob
        .calls_started_between("", "2027", 10)
        .expect("calls")
        .is_empty());
    // Their deliveries went with them: c3's two and g2 are left.
    let st = &ob.stats(0).expect("stats")[0];
    assert_eq!(st.pending, 3);
}

#[test]
fn next_batch_uses_the_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sqlite::Embedded::open(&dir.path().join("e.db"), Durability::Normal).expect("open");
    let plan = db.plan(
        "SELECT 1 FROM outbox_delivery p
         WHERE p.sink = 'w' AND p.call_id = 'c' AND p.state = 0 AND p.seq < 5",
    );
    assert!(
        plan.iter().any(|l| l.contains("outbox_delivery_call")),
        "{plan:?}"
    );
}

/// The DB's view as the pure rule sees it.
fn snapshot(ob: &Outbox, sink: &str, now_ms: i64) -> Vec<(i64, Option<String>, Standing)> {
    let leases = lock(&ob.leases).get(sink).cloned().unwrap_or_default();
    ob.backend
        .delivery_rows(sink)
        .into_iter()
        .map(|r| {
            let standing = if r.state == STATE_DEAD {
                Standing::Dead
            } else {
                Standing::Pending {
                    next_at_ms: r.next_at_ms,
                    in_flight: leases.get(&r.seq).is_some_and(|u| *u > now_ms),
                }
            };
            (r.seq, r.call_id, standing)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Option<u8>>),
    Batch(usize),
    Ack(usize),
    Fail(usize),
    Dead(usize),
    Replay(usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop::collection::vec(prop::option::weighted(0.8, 0u8..4), 1..4).prop_map(Op::Append),
        (1usize..5).prop_map(Op::Batch),
        (0usize..8).prop_map(Op::Ack),
        (0usize..8).prop_map(Op::Fail),
        (0usize..8).prop_map(Op::Dead),
        (0usize..8).prop_map(Op::Replay),
        (0i64..300).prop_map(Op::Advance),
    ]
}

/// next_batch (SQL) agrees with the pure rule, and a call's event is
/// never handed out while an older one of that call is pending.
fn ordering_rule_holds(b: &dyn Backing, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let ob = b
        .open_with(OutboxConfig {
            lease_ms: 500,
            ..OutboxConfig::default()
        })
        .expect("open");
    ob.register_sink(
        "w",
        RetryPolicy {
            base_ms: 50,
            cap_ms: 200,
            max_attempts: 3,
        },
    )
    .expect("register");
    let mut now = 0i64;
    let mut next_id = 0u32;
    let mut handed: Vec<Pending> = Vec::new();
    for op in ops {
        match op {
            Op::Append(calls) => {
                let evs: Vec<NewEvent> = calls
                    .iter()
                    .map(|c| {
                        next_id += 1;
                        let call = c.map(|c| format!("c{c}"));
                        ev(&format!("e{next_id}"), call.as_deref())
                    })
                    .collect();
                ob.append(&evs).expect("append");
            }
            Op::Batch(max) => {
                let snap = snapshot(&ob, "w", now);
                let cands: Vec<Candidate<'_>> = snap
                    .iter()
                    .map(|(seq, call, standing)| Candidate {
                        seq: *seq,
                        call_id: call.as_deref(),
                        standing: *standing,
                    })
                    .collect();
                let want = ordering::eligible(&cands, now, max);
                let got = ob.next_batch("w", max, now).expect("batch");
                let got_seqs: Vec<i64> = got.iter().map(|p| p.seq).collect();
                prop_assert_eq!(&got_seqs, &want);
                for p in &got {
                    if let Some(call) = &p.call_id {
                        let older_pending = snap.iter().any(|(s, c, st)| {
                            *s < p.seq
                                && c.as_ref() == Some(call)
                                && matches!(st, Standing::Pending { .. })
                        });
                        prop_assert!(!older_pending);
                    }
                }
                handed.extend(got);
            }
            Op::Ack(k) if !handed.is_empty() => {
                let p = handed.remove(k % handed.len());
                ob.ack("w", &p.id).expect("ack");
            }
            Op::Fail(k) if !handed.is_empty() => {
                let p = handed.remove(k % handed.len());
                ob.fail("w", &p.id, now, "x").expect("fail");
            }
            Op::Dead(k) if !handed.is_empty() => {
                let p = handed.remove(k % handed.len());
                ob.dead_letter("w", &p.id, now, "x").expect("dead");
            }
            Op::Replay(k) => {
                let dead = ob.dead_letters("w", 100).expect("dead letters");
                if !dead.is_empty() {
                    ob.replay("w", &dead[k % dead.len()].id).expect("replay");
                }
            }
            Op::Advance(ms) => now += ms,
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn sql_matches_the_ordering_rule_embedded(ops in prop::collection::vec(op(), 1..60)) {
        ordering_rule_holds(&file(), ops)?;
    }
}

proptest! {
    // A database per case: fewer cases than on a file.
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn sql_matches_the_ordering_rule_postgres(ops in prop::collection::vec(op(), 1..60)) {
        if let Some(db) = postgres("ordering_rule") {
            ordering_rule_holds(&db, ops)?;
        }
    }
}

/// Several nodes on one PostgreSQL outbox: one delivers each sink (the
/// holder of its lock); when that node's connection ends, another takes
/// the sink over and hands out what is still undelivered.
#[test]
fn one_node_delivers_a_sink_and_a_survivor_takes_it_over() {
    let Some(db) = postgres("one_deliverer") else {
        return;
    };
    let a = db.open();
    let b = db.open();
    for ob in [&a, &b] {
        ob.register_sink("w", RetryPolicy::default()).expect("sink");
    }
    a.append(&[ev("e1", Some("c1")), ev("e2", Some("c2"))])
        .expect("append");
    assert_eq!(ids(&a.next_batch("w", 10, 0).expect("a")), ["e1", "e2"]);
    assert!(
        b.next_batch("w", 10, 0).expect("b").is_empty(),
        "a holds the sink"
    );
    a.ack("w", "e1").expect("ack");
    drop(a);
    // b takes over: e2 was handed out by a but never acknowledged.
    let mut got = Vec::new();
    for _ in 0..50 {
        got = b.next_batch("w", 10, 0).expect("b");
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(ids(&got), ["e2"]);
}

/// Several nodes on one PostgreSQL outbox: a node's start closes only the
/// calls it started itself, never a live call of another node.
#[test]
fn a_node_finds_only_its_own_unended_calls() {
    let Some(db) = postgres("own_unended") else {
        return;
    };
    let a = Outbox::connect_as(&db.0, "a").expect("a");
    let b = Outbox::connect_as(&db.0, "b").expect("b");
    let started = |id: &str, call: &str| NewEvent {
        kind: "call.started".into(),
        ..ev(id, Some(call))
    };
    a.append(&[started("s1", "on-a")]).expect("append");
    b.append(&[started("s2", "on-b")]).expect("append");
    let calls = |ob: &Outbox| -> Vec<String> {
        ob.unended_calls(1_000)
            .expect("unended")
            .into_iter()
            .map(|(call, _)| call)
            .collect()
    };
    assert_eq!(calls(&a), ["on-a"]);
    assert_eq!(calls(&b), ["on-b"]);
}
