//! Tenant isolation end to end, and the append-only audit log.

use super::*;

crate::store::pg::test_db::both_backends!(
    embedded: super::super::EmbeddedDb,
    postgres: super::super::PostgresDb,
    tests: [
        cross_tenant_isolation_for_every_role_combination,
        audit_appends_and_lists_by_tenant_newest_first_with_paging,
        audit_rows_cannot_be_changed_or_deleted,
    ]
);

// ----- tenant isolation end to end --------------------------------------

/// Every role of centre A and of centre B, logged in for real, against the
/// agents of both centres and the user listings.
fn cross_tenant_isolation_for_every_role_combination(db: &dyn Backing) {
    let mut users = Vec::new();
    for t in ["a", "b"] {
        users.push(agent(&format!("agent1.{t}"), t, "1001"));
        users.push(agent(&format!("agent2.{t}"), t, "1002"));
        users.push(new_user(
            &format!("sup.{t}"),
            Role::Supervisor,
            t,
            None,
            "agent-pass-1",
        ));
        users.push(new_user(
            &format!("admin.{t}"),
            Role::Admin,
            t,
            None,
            "agent-pass-1",
        ));
    }
    let s = seeded(db, &users);
    let principals: Vec<Principal> = users
        .iter()
        .map(|u| {
            let login = s.login(&u.username, "agent-pass-1", T0, HOUR).unwrap();
            s.authenticate(login.token.as_str(), T0).unwrap()
        })
        .collect();
    let agents: Vec<&Principal> = principals
        .iter()
        .filter(|p| p.role == Role::Agent)
        .collect();
    assert_eq!(agents.len(), 4);

    for actor in &principals {
        for target in &agents {
            let id = target.agent_id.as_deref().unwrap();
            let same_tenant = actor.tenant == target.tenant;
            let expected = same_tenant && (actor.role >= Role::Supervisor || actor == *target);
            assert_eq!(
                actor.may_act_on_agent(id, &target.tenant),
                expected,
                "{} -> agent {id} of {}",
                actor.user,
                target.tenant
            );
        }
        for t in ["a", "b"] {
            assert_eq!(actor.may_access_tenant(t), actor.tenant == t);
        }
        // Listings through the principal's filter never show the other centre.
        let listed = s.list_users(actor.tenant_filter()).unwrap();
        assert_eq!(listed.len(), 4);
        assert!(listed.iter().all(|u| u.tenant == actor.tenant));
    }
}

// ----- audit -----------------------------------------------------------

fn audit_appends_and_lists_by_tenant_newest_first_with_paging(db: &dyn Backing) {
    let s = db.open();
    let sup_a = principal("sup.a", Role::Supervisor, "a");
    let adm_b = principal("admin.b", Role::Admin, "b");
    let root = principal("root", Role::Admin, ALL_TENANTS);

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            s.audit(
                T0 + i,
                &sup_a,
                "call.barge",
                &format!("call-{i}"),
                &json!({"agent": "1001", "i": i}),
            )
            .unwrap(),
        );
    }
    s.audit(T0 + 10, &adm_b, "user.create", "agent1.b", &json!({}))
        .unwrap();
    s.audit(T0 + 11, &root, "tenant.create", "c", &json!(null))
        .unwrap();
    s.audit_in(
        T0 + 12,
        &root,
        "a",
        "user.disable",
        "agent2.a",
        &json!({"why": "left"}),
    )
    .unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let a = s.audit_log(sup_a.tenant_filter(), 100, None).unwrap();
    assert_eq!(a.len(), 6);
    assert!(a.iter().all(|r| r.tenant == "a"));
    assert_eq!(a[0].actor, "root");
    assert_eq!(a[0].action, "user.disable");
    assert_eq!(a[1].target, "call-4");
    assert_eq!(a[1].at_ms, T0 + 4);
    assert_eq!(a[1].detail, json!({"agent": "1001", "i": 4}));
    assert!(a.windows(2).all(|w| w[0].id > w[1].id));

    let b = s.audit_log(adm_b.tenant_filter(), 100, None).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].actor, "admin.b");
    let all = s.audit_log(root.tenant_filter(), 100, None).unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(all[1].tenant, ALL_TENANTS);

    // Paging.
    let page1 = s.audit_log(Some("a"), 2, None).unwrap();
    let page2 = s.audit_log(Some("a"), 2, Some(page1[1].id)).unwrap();
    let page3 = s.audit_log(Some("a"), 2, Some(page2[1].id)).unwrap();
    let page4 = s.audit_log(Some("a"), 2, Some(page3[1].id)).unwrap();
    let paged: Vec<i64> = [page1, page2, page3, page4]
        .concat()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(paged, a.iter().map(|r| r.id).collect::<Vec<_>>());
    assert!(s.audit_log(Some("a"), 0, None).unwrap().is_empty());
    assert_eq!(MAX_AUDIT_PAGE, 1000);

    // A tenant admin cannot file rows under another tenant.
    let e = s
        .audit_in(T0, &adm_b, "a", "user.create", "x", &json!({}))
        .unwrap_err();
    assert_eq!(e.code(), "forbidden");
    assert_eq!(
        s.audit(T0, &adm_b, "", "x", &json!({})).unwrap_err().code(),
        "bad_request"
    );
}

fn audit_rows_cannot_be_changed_or_deleted(db: &dyn Backing) {
    let s = db.open();
    let who = principal("sup.a", Role::Supervisor, "a");
    s.audit(T0, &who, "call.barge", "c1", &json!({})).unwrap();
    let audit = db.table("audit");
    for sql in [
        format!("UPDATE {audit} SET actor = 'someone'"),
        format!("DELETE FROM {audit}"),
    ] {
        let e = db.exec(&sql).unwrap_err();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(s.audit_log(None, 10, None).unwrap()[0].actor, "sup.a");
}
