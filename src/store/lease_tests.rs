//! The ACD leader's lease and its fencing on PostgreSQL (docs/ha.md §3):
//! one holder at a time, the epoch raised at each change of holder, a
//! deposed leader's writes refused, call id blocks never handed out twice.

use super::{test_pg, AcdWrite, Store, StoreError};

#[test]
fn one_node_leads_at_a_time_and_a_deposed_leader_cannot_write() {
    let Some(url) = test_pg::database("acd_lease") else {
        return;
    };
    let a = Store::connect(&url, "a").expect("a");
    let b = Store::connect(&url, "b").expect("b");
    let first = a.acd_lease(3_000).expect("a takes");
    assert!(
        first.held && first.holder == "a" && first.epoch == 1,
        "{first:?}"
    );
    let seen = b.acd_lease(3_000).expect("b asks");
    assert!(
        !seen.held && seen.holder == "a" && seen.epoch == 1,
        "{seen:?}"
    );
    let renewed = a.acd_lease(3_000).expect("a renews");
    assert!(
        renewed.held && renewed.epoch == 1,
        "renewing keeps the epoch"
    );
    a.save_acd_fenced(&[AcdWrite::DayStart(1)], Some(1))
        .expect("the leader writes");

    // a's lease runs out (by the database's clock): b takes it, epoch 2.
    test_pg::exec(
        &url,
        "UPDATE acd_lease SET expires_at = now() - interval '1 second'",
    );
    let taken = b.acd_lease(3_000).expect("b takes");
    assert!(
        taken.held && taken.holder == "b" && taken.epoch == 2,
        "{taken:?}"
    );
    assert!(!a.acd_lease(3_000).expect("a asks").held, "b holds it now");
    match a.save_acd_fenced(&[AcdWrite::DayStart(2)], Some(1)) {
        Err(StoreError::Deposed { node, epoch }) => assert_eq!((node.as_str(), epoch), ("a", 1)),
        other => panic!("a deposed leader wrote: {other:?}"),
    }
    b.save_acd_fenced(&[AcdWrite::DayStart(3)], Some(2))
        .expect("the new leader writes");
    assert_eq!(a.load_acd().expect("load").day_start_ms, Some(3));

    // A draining leader gives it up at once; the next takes it, epoch 3.
    b.release_acd_lease().expect("release");
    let back = a.acd_lease(3_000).expect("a takes again");
    assert!(back.held && back.epoch == 3, "{back:?}");
    a.release_acd_lease().expect("release");
    a.release_acd_lease()
        .expect("releasing a lease not held is nothing");

    let blocks = [
        a.call_id_block().expect("block"),
        b.call_id_block().expect("block"),
        a.call_id_block().expect("block"),
    ];
    assert!(blocks[0] < blocks[1] && blocks[1] < blocks[2], "{blocks:?}");
}

#[test]
fn the_embedded_store_has_no_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = Store::open(dir.path()).expect("open");
    assert!(matches!(
        one.acd_lease(3_000),
        Err(StoreError::NotShared(_))
    ));
    assert!(matches!(one.call_id_block(), Err(StoreError::NotShared(_))));
    assert!(matches!(
        one.save_acd_fenced(&[AcdWrite::DayStart(1)], Some(1)),
        Err(StoreError::NotShared(_))
    ));
    one.save_acd(&[AcdWrite::DayStart(1)]).expect("unfenced");
}
