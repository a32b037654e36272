//! The store's test suite, run against both backends (issue 15 §1: "the
//! same store test suite runs against both"): every test is a function of
//! a [`Backing`], which opens a fresh handle on one database (a reopen, or
//! a second node) and runs raw SQL on it; `both_backends!` makes an
//! `embedded` and a `postgres` test of each.

use super::*;
use crate::roster::seed::{Kind, Origin};
use crate::sip::journal::{DialogJournal, DialogRole};
use crate::time::Time;

/// One database under test.
trait Backing {
    /// A new handle on it: after the last is dropped, a reopen; while
    /// another is held, a second node.
    fn open(&self) -> Store;
    /// Run SQL on it directly (both dialects read the statements used here).
    fn exec(&self, sql: &str);
}

struct EmbeddedDb(tempfile::TempDir);

impl Backing for EmbeddedDb {
    fn open(&self) -> Store {
        Store::open(self.0.path()).expect("open hotline.db")
    }
    fn exec(&self, sql: &str) {
        rusqlite::Connection::open(self.0.path().join("hotline.db"))
            .expect("sqlite")
            .execute_batch(sql)
            .expect("sql");
    }
}

struct PostgresDb(String);

impl Backing for PostgresDb {
    fn open(&self) -> Store {
        Store::connect(&self.0, "node-a").expect("connect")
    }
    fn exec(&self, sql: &str) {
        test_pg::exec(&self.0, sql);
    }
}

pg::test_db::both_backends!(
    embedded: super::EmbeddedDb,
    postgres: super::PostgresDb,
    tests: [
    bindings_survive_reopen,
    meta_is_created_once_and_shared,
    acd_rows_read_back_after_a_reopen,
    legs_survive_reopen_and_are_replaced_by_key,
    the_dialog_writer_writes_in_order_and_flush_waits,
    an_unreadable_leg_is_skipped_not_fatal,
    roster_rows_and_tombstones_survive_a_reopen,
    blacklist_survives_a_reopen_and_a_removed_seed_stays_removed,
    a_second_node_sees_the_first_nodes_writes,
    a_store_that_answers_pings,
    flow_versions_are_kept_once_and_the_live_one_moves,
    campaigns_are_replaced_by_id_and_the_finished_ones_leave_the_active_list,
]
);

/// Issue 18 §3: a campaign is kept by id (a save replaces it), read back
/// after a reopen; a finished or cancelled one is no longer active.
fn campaigns_are_replaced_by_id_and_the_finished_ones_leave_the_active_list(db: &dyn Backing) {
    let row = |id: &str, at: i64, body: &str| CampaignRow {
        id: id.into(),
        tenant: "t1".into(),
        created_ms: at,
        active: true,
        body: body.into(),
    };
    {
        let store = db.open();
        store.save_campaign(&row("b", 2, "{}")).expect("b");
        store.save_campaign(&row("a", 1, "{}")).expect("a");
        store.save_campaign(&row("c", 3, "{}")).expect("c");
        store
            .save_campaign(&row("a", 1, "{\"items\":[]}"))
            .expect("a again");
        store
            .save_campaign(&CampaignRow {
                active: false,
                ..row("c", 3, "{\"cancelled\":true}")
            })
            .expect("c done");
    }
    let store = db.open();
    let active = store.active_campaigns().expect("active");
    let ids: Vec<&str> = active.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "oldest first, the finished one left out");
    assert_eq!(active[0].body, "{\"items\":[]}");
    let c = store.campaign("c").expect("c").expect("kept");
    assert!(!c.active);
    assert_eq!(c.tenant, "t1");
    assert_eq!(c.body, "{\"cancelled\":true}");
    assert_eq!(store.campaign("nope").expect("none"), None);
}

fn a_store_that_answers_pings(db: &dyn Backing) {
    db.open().ping().expect("ping");
}

/// Issue 18 §4: every accepted flow version is kept once (by name and
/// hash) with its content and who and when; a rollback makes an old one
/// live again without a second copy; a reopen reads them back.
fn flow_versions_are_kept_once_and_the_live_one_moves(db: &dyn Backing) {
    let v = |version: &str, at: i64, by: &str| {
        FlowVersion::accepted(
            "main",
            version,
            "default",
            &format!("# {version}\n"),
            at,
            by,
        )
    };
    {
        let store = db.open();
        assert_eq!(
            store.flow_went_live(&v("aaa", 1_000, "file")).expect("a"),
            Recorded::New
        );
        assert_eq!(
            store
                .flow_went_live(&v("aaa", 2_000, "file"))
                .expect("a again"),
            Recorded::Unchanged,
            "a restart on the same file changes nothing"
        );
        assert_eq!(
            store.flow_went_live(&v("bbb", 3_000, "file")).expect("b"),
            Recorded::New
        );
        assert_eq!(
            store
                .flow_went_live(&v("aaa", 4_000, "admin"))
                .expect("rollback"),
            Recorded::Relive
        );
        let mut other = v("ccc", 5_000, "file");
        other.name = "other".into();
        store.flow_went_live(&other).expect("other");
    }
    let store = db.open();
    let versions = store.flow_versions("main").expect("versions");
    let summary: Vec<(&str, i64, &str, i64, &str, i64)> = versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.saved_at,
                v.saved_by.as_str(),
                v.live_at,
                v.live_by.as_str(),
                v.live_seq,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("aaa", 1_000, "file", 4_000, "admin", 3),
            ("bbb", 3_000, "file", 3_000, "file", 2)
        ]
    );
    assert_eq!(versions[0].content, "# aaa\n");
    assert_eq!(versions[0].tenant, "default");
    assert_eq!(store.flow_names().expect("names"), ["main", "other"]);
    assert!(store.flow_versions("nope").expect("none").is_empty());
}

fn binding(aor: &str, contact: &str) -> Binding {
    Binding {
        aor: aor.into(),
        contact: contact.into(),
        source: "127.0.0.21:5060".parse().expect("addr"),
        transport: "UDP".into(),
        expires_at: Time::from_unix_secs(1_000_000),
        call_id: "c1".into(),
        cseq: 7,
        q: Some(0.5),
        path: vec![],
    }
}

fn bindings_survive_reopen(db: &dyn Backing) {
    let store = db.open();
    store
        .apply(&[
            BindingChange::Upserted(binding("1001", "sip:1001@127.0.0.21:5060")),
            BindingChange::Upserted(binding("1002", "sip:1002@127.0.0.22:5060")),
        ])
        .expect("apply");
    store
        .apply(&[BindingChange::Removed {
            aor: "1002".into(),
            contact: "sip:1002@127.0.0.22:5060".into(),
        }])
        .expect("apply");
    let mut moved = binding("1001", "sip:1001@127.0.0.21:5060");
    moved.cseq = 8;
    moved.source = "127.0.0.23:5062".parse().expect("addr");
    moved.path = vec![
        "<sip:127.0.0.250;lr;received=sip:127.0.0.23:5062>".into(),
        "<sip:p2.example;lr>".into(),
    ];
    store
        .apply(&[BindingChange::Upserted(moved.clone())])
        .expect("refresh");
    drop(store);
    assert_eq!(
        db.open().load_bindings().expect("load"),
        vec![moved.clone()]
    );
    assert_eq!(
        db.open().load_bindings_of("1001").expect("load"),
        vec![moved]
    );
    assert_eq!(db.open().load_bindings_of("1002").expect("load"), vec![]);
    // A row whose address no longer parses is skipped, not fatal.
    db.exec("UPDATE registration SET source = 'nowhere'");
    assert_eq!(db.open().load_bindings().expect("load"), vec![]);
}

fn meta_is_created_once_and_shared(db: &dyn Backing) {
    let (a, b) = (db.open(), db.open());
    let first = a.meta_or_insert("k", || vec![1, 2, 3]).expect("meta");
    assert_eq!(first, vec![1, 2, 3]);
    assert_eq!(b.meta_or_insert("k", || vec![9]).expect("meta"), first);
    assert_eq!(a.meta_or_insert("k", || vec![8]).expect("meta"), first);
}

fn missed(call: u64, back: Option<i64>) -> AcdMissedRow {
    AcdMissedRow {
        call,
        caller: format!("138{call}"),
        group: "general".into(),
        arrived_ms: 1_000,
        at_ms: 2_000,
        place: "queue".into(),
        called_back_ms: back,
    }
}

fn acd_rows_read_back_after_a_reopen(db: &dyn Backing) {
    let s = db.open();
    assert_eq!(s.load_acd().expect("load"), AcdRows::default());
    let agent = AcdAgentRow {
        agent: "A01".into(),
        state: "not_ready".into(),
        reason: Some("training".into()),
        since_ms: 1_796_522_400_123,
        idle_since_ms: 1_796_522_300_000,
        acw_until_ms: None,
        acw_group: None,
        event_seq: 41,
        day: "{}".into(),
    };
    let callback = AcdCallbackRow {
        call: 7,
        group: "general".into(),
        caller: "13800138000".into(),
        number: "13800138000".into(),
        priority: 3,
        arrived_ms: 5,
        attempts: 1,
        retry_at_ms: Some(9),
        max_attempts: Some(1),
    };
    s.save_acd(&[
        AcdWrite::Agent(agent.clone()),
        AcdWrite::Group(AcdGroupRow {
            group: "general".into(),
            counters: "{\"answered\":3}".into(),
        }),
        AcdWrite::Callback(callback.clone()),
        AcdWrite::Callback(AcdCallbackRow {
            call: 8,
            max_attempts: None,
            ..callback.clone()
        }),
        // Missed in the order 9, 3, 5; 3 is called back later, 5 leaves.
        AcdWrite::Missed(missed(9, None)),
        AcdWrite::Missed(missed(3, None)),
        AcdWrite::Missed(missed(5, None)),
        AcdWrite::Served(AcdServedRow {
            caller: "old".into(),
            agent: "A01".into(),
            at_ms: 10,
        }),
        AcdWrite::Served(AcdServedRow {
            caller: "new".into(),
            agent: "A01".into(),
            at_ms: 500,
        }),
        AcdWrite::DayStart(1_796_486_400_000),
        AcdWrite::NextCall(120),
    ])
    .expect("save");
    let agent = AcdAgentRow {
        state: "idle".into(),
        reason: None,
        event_seq: 42,
        ..agent
    };
    s.save_acd(&[
        AcdWrite::Agent(agent.clone()),
        AcdWrite::CallbackGone(8),
        AcdWrite::Missed(missed(3, Some(3_000))),
        AcdWrite::MissedGone(5),
        AcdWrite::ServedBefore(100),
        AcdWrite::NextCall(121),
    ])
    .expect("save");
    drop(s);
    let rows = db.open().load_acd().expect("load");
    assert_eq!(rows.agents, vec![agent]);
    assert_eq!(rows.groups[0].counters, "{\"answered\":3}");
    assert_eq!(rows.callbacks, vec![callback]);
    assert_eq!(rows.missed, vec![missed(9, None), missed(3, Some(3_000))]);
    assert_eq!(
        rows.served
            .iter()
            .map(|r| r.caller.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    assert_eq!(rows.day_start_ms, Some(1_796_486_400_000));
    assert_eq!(rows.next_call, Some(121));
}

fn leg(call: &str, cseq: u32) -> SavedDialog {
    SavedDialog {
        call_id: call.into(),
        local_tag: "ours".into(),
        remote_tag: "theirs".into(),
        role: DialogRole::Uas,
        local_party: "<sip:12345@127.0.0.1:5060>;tag=ours".into(),
        remote_party: "\"Carrier\" <sip:+15550100@127.0.0.10>;tag=theirs".into(),
        remote_target: "sip:+15550100@127.0.0.10:5060".into(),
        route_set: vec!["<sip:127.0.0.2;lr>".into(), "<sip:127.0.0.3;lr>".into()],
        local_contact: Some("sip:127.0.0.1:5060".into()),
        local_cseq: cseq,
    }
}

fn legs_survive_reopen_and_are_replaced_by_key(db: &dyn Backing) {
    let store = db.open();
    store.save_dialog(&leg("a", 1)).expect("save");
    store.save_dialog(&leg("a", 600)).expect("save");
    store.save_dialog(&leg("b", 1)).expect("save");
    assert!(store.delete_dialog(&leg("b", 1).key()).expect("delete"));
    assert!(!store.delete_dialog(&leg("b", 1).key()).expect("delete"));
    drop(store);
    assert_eq!(db.open().load_dialogs().expect("load"), vec![leg("a", 600)]);
}

fn the_dialog_writer_writes_in_order_and_flush_waits(db: &dyn Backing) {
    let writer = DialogWriter::start(db.open()).expect("writer");
    writer.save(&leg("a", 1));
    writer.save(&leg("b", 1));
    writer.remove(&leg("a", 1).key());
    writer.flush();
    assert_eq!(writer.leftovers().expect("leftovers"), vec![leg("b", 1)]);
}

fn an_unreadable_leg_is_skipped_not_fatal(db: &dyn Backing) {
    let store = db.open();
    for call in ["good", "bad-role", "bad-routes"] {
        store.save_dialog(&leg(call, 1)).expect("save");
    }
    db.exec(
        "UPDATE dialog_leg SET role = 'proxy' WHERE call_id = 'bad-role';
         UPDATE dialog_leg SET route_set = 'nope' WHERE call_id = 'bad-routes';",
    );
    assert_eq!(store.load_dialogs().expect("load"), vec![leg("good", 1)]);
}

fn roster_rows_and_tombstones_survive_a_reopen(db: &dyn Backing) {
    let s = db.open();
    let row = |key: &str, body: Option<&str>, origin| Row {
        kind: Kind::Agent,
        key: key.into(),
        body: body.map(str::to_string),
        origin,
        seed: Some("{}".into()),
    };
    s.save_roster(&[
        RowChange::Put(row("1001", Some("{\"a\":1}"), Origin::Config)),
        RowChange::Put(row("1002", None, Origin::Api)),
        RowChange::Put(row("1003", Some("{}"), Origin::Config)),
    ])
    .expect("save");
    s.save_roster(&[
        RowChange::Remove(Kind::Agent, "1003".into()),
        RowChange::Put(row("1001", Some("{\"a\":2}"), Origin::Api)),
    ])
    .expect("remove");
    drop(s);
    assert_eq!(
        db.open().load_roster().expect("load"),
        vec![
            row("1001", Some("{\"a\":2}"), Origin::Api),
            row("1002", None, Origin::Api)
        ]
    );
}

fn entry(n: &str) -> Entry {
    Entry {
        number: n.into(),
        reason: "abuse".into(),
        added_by: "admin".into(),
        expires_at: Some(1_900_000_000),
    }
}

fn blacklist_survives_a_reopen_and_a_removed_seed_stays_removed(db: &dyn Backing) {
    let s = db.open();
    assert!(s
        .seed_blacklist_entry("default", &entry("13900000000"))
        .expect("seed"));
    s.save_blacklist_entry("b", &entry("95*")).expect("save");
    drop(s);
    let s = db.open();
    let all = s.load_blacklist().expect("load");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], ("b".to_string(), entry("95*")));
    assert!(s
        .delete_blacklist_entry("default", "13900000000")
        .expect("delete"));
    assert!(!s
        .delete_blacklist_entry("default", "13900000000")
        .expect("again"));
    assert!(!s
        .seed_blacklist_entry("default", &entry("13900000000"))
        .expect("seed again"));
    assert_eq!(
        s.load_blacklist().expect("load").len(),
        1,
        "the removed seed stays removed"
    );
}

/// Two handles at once: what one node writes, the other reads.
fn a_second_node_sees_the_first_nodes_writes(db: &dyn Backing) {
    let (a, b) = (db.open(), db.open());
    a.apply(&[BindingChange::Upserted(binding(
        "1001",
        "sip:1001@127.0.0.21:5060",
    ))])
    .expect("register on a");
    a.save_acd(&[AcdWrite::NextCall(77)]).expect("acd on a");
    assert_eq!(b.load_bindings().expect("b").len(), 1);
    assert_eq!(b.load_acd().expect("b").next_call, Some(77));
}

#[test]
fn a_bad_url_and_an_unreachable_server_are_clear_errors() {
    let e = Store::connect("mysql://x", "n").expect_err("not postgres");
    assert!(
        matches!(e, StoreError::Postgres(pg::PgError::Url(_))),
        "{e}"
    );
    // Port 1 on loopback: nothing listens, the refusal is immediate.
    let e = Store::connect("postgres://hotline:secret@127.0.0.1:1/hotline", "n")
        .expect_err("nothing listens");
    let text = e.to_string();
    assert!(text.contains("127.0.0.1:1/hotline as hotline"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is never shown: {text}"
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let Some(url) = test_pg::database("newer_build") else {
        return;
    };
    drop(Store::connect(&url, "n").expect("first connect migrates"));
    test_pg::exec(&url, "INSERT INTO store_migration (version) VALUES (99)");
    let e = Store::connect(&url, "n").expect_err("too new");
    assert!(
        matches!(
            e,
            StoreError::Postgres(pg::PgError::TooNew { found: 99, .. })
        ),
        "{e}"
    );
}

#[test]
fn a_connection_the_server_ends_is_made_again_for_the_next_call() {
    let Some(url) = test_pg::database("reconnect") else {
        return;
    };
    let store = Store::connect(&url, "n").expect("connect");
    store.save_acd(&[AcdWrite::NextCall(5)]).expect("before");
    let db = url.rsplit('/').next().expect("database name");
    test_pg::exec(
        &url,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{db}' AND application_name = 'hotline'"
        ),
    );
    // The call that meets the dead connection may fail (it is never
    // replayed); the next one reconnects.
    let first = store.load_acd();
    let rows = match first {
        Ok(rows) => rows,
        Err(e) => {
            assert!(matches!(e, StoreError::Postgres(_)), "{e}");
            store.load_acd().expect("reconnected")
        }
    };
    assert_eq!(rows.next_call, Some(5));
}

/// Legs belong to the node that anchors them: a node reads back only its
/// own; a node not seen for the dead time has its legs taken over, once,
/// by one survivor; a node still beating keeps its legs.
#[test]
fn a_dead_nodes_legs_are_taken_over_once_by_one_survivor() {
    let Some(url) = test_pg::database("takeover") else {
        return;
    };
    let a = Store::connect(&url, "a").expect("a");
    let b = Store::connect(&url, "b").expect("b");
    let c = Store::connect(&url, "c").expect("c");
    a.save_dialog(&leg("on-a-1", 1)).expect("save");
    a.save_dialog(&leg("on-a-2", 1)).expect("save");
    c.save_dialog(&leg("on-c", 1)).expect("save");
    for (s, http) in [(&a, "http://a:8080"), (&b, "http://b:8080"), (&c, "")] {
        s.heartbeat(http).expect("beat");
    }
    // Each node's peers: the others alive with an HTTP address.
    assert_eq!(
        a.peers(5).expect("peers"),
        vec!["http://b:8080".to_string()]
    );
    assert_eq!(c.peers(5).expect("peers").len(), 2);
    assert_eq!(b.load_dialogs().expect("b"), vec![], "b anchors nothing");
    assert_eq!(a.load_dialogs().expect("a").len(), 2);
    assert_eq!(b.take_over_dead(3).expect("none dead yet"), vec![]);
    // a stops beating (its last beat 10 s ago by the database's clock).
    test_pg::exec(
        &url,
        "UPDATE node SET seen_at = now() - interval '10 seconds' WHERE id = 'a'",
    );
    assert!(
        b.peers(5).expect("peers").is_empty(),
        "a is not alive any more"
    );
    let taken = b.take_over_dead(3).expect("take over");
    assert_eq!(
        taken,
        vec![("a".to_string(), vec![leg("on-a-1", 1), leg("on-a-2", 1)])]
    );
    assert_eq!(c.take_over_dead(3).expect("again"), vec![], "taken once");
    assert_eq!(b.load_dialogs().expect("b").len(), 2, "b owns them now");
    assert_eq!(a.load_dialogs().expect("a"), vec![], "a, back, finds none");
    assert_eq!(c.load_dialogs().expect("c"), vec![leg("on-c", 1)]);
    // The embedded store is one node: nothing to take over.
    let dir = tempfile::tempdir().expect("tempdir");
    let one = Store::open(dir.path()).expect("open");
    assert!(!one.is_shared());
    assert_eq!(one.take_over_dead(3).expect("none"), vec![]);
}

/// hotline.db files written before bindings kept their Path get the column
/// at open; their rows read back with none.
#[test]
fn an_embedded_store_without_the_path_column_gains_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    rusqlite::Connection::open(dir.path().join("hotline.db"))
        .expect("sqlite")
        .execute_batch(
            "CREATE TABLE registration (aor TEXT NOT NULL, contact TEXT NOT NULL,
                source TEXT NOT NULL, transport TEXT NOT NULL, expires_at INTEGER NOT NULL,
                call_id TEXT NOT NULL, cseq INTEGER NOT NULL, q REAL,
                PRIMARY KEY (aor, contact));
             INSERT INTO registration VALUES
                ('1001', 'sip:1001@127.0.0.21:5060', '127.0.0.21:5060', 'UDP', 1000000, 'c1', 7, 0.5);",
        )
        .expect("old schema");
    let store = Store::open(dir.path()).expect("open");
    assert_eq!(
        store.load_bindings().expect("load"),
        vec![binding("1001", "sip:1001@127.0.0.21:5060")]
    );
}

/// Docs/ha.md §1: a node hears another node's registration change as it
/// commits, and not its own.
#[test]
fn a_nodes_binding_change_is_heard_by_the_other_nodes_only() {
    let Some(url) = test_pg::database("follow_bindings") else {
        return;
    };
    let a = Store::connect(&url, "node-a").expect("a");
    let b = Store::connect(&url, "node-b").expect("b");
    let feed_a = a.follow().expect("follow").expect("a shared store follows");
    let feed_b = b.follow().expect("follow").expect("a shared store follows");
    b.apply(&[BindingChange::Upserted(binding("1001", "sip:x@h"))])
        .expect("apply");
    let heard = (0..10)
        .find_map(|_| {
            feed_a
                .next(std::time::Duration::from_secs(1))
                .expect("feed")
        })
        .expect("node A hears node B's change");
    assert_eq!(heard, SharedChange::Registration { aor: "1001".into() });
    assert_eq!(
        feed_b
            .next(std::time::Duration::from_millis(500))
            .expect("feed"),
        None,
        "a node's own change is not handed back to it"
    );
    assert!(Store::open(tempfile::tempdir().expect("dir").path())
        .expect("embedded")
        .follow()
        .expect("follow")
        .is_none());
}
