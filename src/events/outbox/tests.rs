//! Unit tests of the outbox against real SQLite files.

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

fn fresh() -> (tempfile::TempDir, Outbox) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("events.db")).expect("open");
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    (dir, ob)
}

fn ids(b: &[Pending]) -> Vec<&str> {
    b.iter().map(|p| p.id.as_str()).collect()
}

#[test]
fn hands_out_only_the_head_of_each_call() {
    let (_d, ob) = fresh();
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

#[test]
fn backoff_holds_the_call_back() {
    let (_d, ob) = fresh();
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

#[test]
fn expired_lease_hands_the_event_out_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open_with(
        &dir.path().join("e.db"),
        OutboxConfig {
            lease_ms: 100,
            ..OutboxConfig::default()
        },
    )
    .expect("open");
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    ob.append(&[ev("a1", Some("a"))]).expect("append");
    assert_eq!(ob.next_batch("w", 1, 0).expect("batch").len(), 1);
    assert!(ob.next_batch("w", 1, 99).expect("batch").is_empty());
    assert_eq!(ob.next_batch("w", 1, 100).expect("batch").len(), 1);
}

#[test]
fn dead_letter_unblocks_the_call_and_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ob = Outbox::open(&dir.path().join("e.db")).expect("open");
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

#[test]
fn immediate_dead_letter_and_replay_all() {
    let (_d, ob) = fresh();
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

#[test]
fn sinks_deliver_independently() {
    let (_d, ob) = fresh();
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

#[test]
fn append_is_all_or_nothing_and_names_the_duplicate() {
    let (_d, ob) = fresh();
    ob.append(&[ev("a1", Some("a"))]).expect("append");
    let err = ob
        .append(&[ev("a2", Some("a")), ev("a1", Some("a"))])
        .expect_err("duplicate");
    assert!(
        matches!(&err, OutboxError::DuplicateEvent { id, .. } if id == "a1"),
        "{err}"
    );
    assert!(err.to_string().contains("events.db"), "{err}");
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

#[test]
fn survives_being_dropped_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("e.db");
    {
        let ob = Outbox::open(&path).expect("open");
        ob.register_sink("w", RetryPolicy::default())
            .expect("register");
        for i in 0..50 {
            ob.append(&[ev(&format!("e{i}"), Some("c"))])
                .expect("append");
        }
        let b = ob.next_batch("w", 1, 0).expect("batch");
        ob.ack("w", &b[0].id).expect("ack");
        // In flight at the "crash": must come back.
        assert_eq!(ob.next_batch("w", 1, 0).expect("batch")[0].id, "e1");
        // No close, no checkpoint: the connections leak, as at kill -9.
        std::mem::forget(ob);
    }
    let ob = Outbox::open(&path).expect("reopen");
    ob.register_sink("w", RetryPolicy::default())
        .expect("register");
    let st = &ob.stats(0).expect("stats")[0];
    assert_eq!((st.delivered, st.pending), (1, 49));
    assert_eq!(ob.next_batch("w", 5, 0).expect("batch")[0].id, "e1");
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("e.db");
    drop(Outbox::open(&path).expect("open"));
    Connection::open(&path)
        .and_then(|c| c.pragma_update(None, "user_version", 99))
        .expect("bump version");
    let err = Outbox::open(&path).expect_err("too new");
    assert!(
        matches!(err, OutboxError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn next_batch_uses_the_indexes() {
    let (_d, ob) = fresh();
    let conn = lock(&ob.delivery);
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT 1 FROM outbox_delivery p
             WHERE p.sink = 'w' AND p.call_id = 'c' AND p.state = 0 AND p.seq < 5",
        )
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(3))
                .and_then(|rows| rows.collect())
        })
        .expect("plan");
    assert!(
        plan.iter().any(|l| l.contains("outbox_delivery_call")),
        "{plan:?}"
    );
}

/// The DB's view as the pure rule sees it.
fn snapshot(ob: &Outbox, sink: &str, now_ms: i64) -> Vec<(i64, Option<String>, Standing)> {
    let leases = lock(&ob.leases).get(sink).cloned().unwrap_or_default();
    let conn = lock(&ob.delivery);
    let mut stmt = conn
        .prepare(
            "SELECT seq, call_id, state, next_at_ms FROM outbox_delivery
             WHERE sink = ?1 ORDER BY seq",
        )
        .expect("prepare");
    stmt.query_map(params![sink], |r| {
        let seq: i64 = r.get(0)?;
        let state: i64 = r.get(2)?;
        let standing = if state == STATE_DEAD {
            Standing::Dead
        } else {
            Standing::Pending {
                next_at_ms: r.get(3)?,
                in_flight: leases.get(&seq).is_some_and(|u| *u > now_ms),
            }
        };
        Ok((seq, r.get(1)?, standing))
    })
    .and_then(|rows| rows.collect())
    .expect("snapshot")
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// next_batch (SQL) agrees with the pure rule, and a call's event is
    /// never handed out while an older one of that call is pending.
    #[test]
    fn sql_matches_the_ordering_rule(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ob = Outbox::open_with(&dir.path().join("p.db"), OutboxConfig {
            lease_ms: 500, ..OutboxConfig::default()
        }).expect("open");
        ob.register_sink("w", RetryPolicy { base_ms: 50, cap_ms: 200, max_attempts: 3 })
            .expect("register");
        let mut now = 0i64;
        let mut next_id = 0u32;
        let mut handed: Vec<Pending> = Vec::new();
        for op in ops {
            match op {
                Op::Append(calls) => {
                    let evs: Vec<NewEvent> = calls.iter().map(|c| {
                        next_id += 1;
                        let call = c.map(|c| format!("c{c}"));
                        ev(&format!("e{next_id}"), call.as_deref())
                    }).collect();
                    ob.append(&evs).expect("append");
                }
                Op::Batch(max) => {
                    let snap = snapshot(&ob, "w", now);
                    let cands: Vec<Candidate<'_>> = snap.iter().map(|(seq, call, standing)| Candidate {
                        seq: *seq, call_id: call.as_deref(), standing: *standing,
                    }).collect();
                    let want = ordering::eligible(&cands, now, max);
                    let got = ob.next_batch("w", max, now).expect("batch");
                    let got_seqs: Vec<i64> = got.iter().map(|p| p.seq).collect();
                    prop_assert_eq!(&got_seqs, &want);
                    for p in &got {
                        if let Some(call) = &p.call_id {
                            let older_pending = snap.iter().any(|(s, c, st)| *s < p.seq
                                && c.as_ref() == Some(call)
                                && matches!(st, Standing::Pending { .. }));
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
    }
}
