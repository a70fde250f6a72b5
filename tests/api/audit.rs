//! The audit trail: every administrative change writes one event in its own transaction, the
//! chains verify and name the first tampered event, and the trail is served to a tenant's Admins
//! and to each user for their own security events.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryOrder, Set,
};
use serde_json::{Value, json};
use zygo::store::audit::{self, Flaw};
use zygo::store::entities::audit_event;

use crate::helpers::{Cred, PASSWORD, World, jwt_part, session_cookie};

/// Every event of the trail, in the order written (chain, then place in it).
async fn events(world: &World) -> Vec<audit_event::Model> {
    let mut all = audit_event::Entity::find()
        .order_by_asc(audit_event::Column::At)
        .order_by_asc(audit_event::Column::Seq)
        .all(&world.app.state.db)
        .await
        .unwrap();
    all.sort_by(|a, b| (a.at, &a.chain, a.seq).cmp(&(b.at, &b.chain, b.seq)));
    all
}

fn last<'a>(events: &'a [audit_event::Model], action: &str) -> &'a audit_event::Model {
    events
        .iter()
        .rev()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} event in {events:#?}"))
}

fn json_of(text: &Option<String>) -> Value {
    text.as_deref()
        .map(|t| serde_json::from_str(t).unwrap())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn every_administrative_change_writes_its_event_with_who_what_and_where_and_no_secret() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let alice = Cred::Cookie(cookie.clone());
    let wrong = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "bob@example.com", "password": "not the password"}),
        )
        .await;
    wrong.assert_problem(401, "login_failed");
    let minted = app
        .get(
            "/api/token?expiration=300&name=deploy&read_only=true",
            &alice,
        )
        .await;
    let token = minted.assert_status(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jti = jwt_part(&token, 1)["jti"].as_str().unwrap().to_owned();
    app.post("/api/token/revoke", &alice, json!({"jti": jti}))
        .await
        .assert_status(204);
    let acme = world.acme;
    app.put(
        &format!("/api/tenants/{acme}/members/{}", world.bob),
        &alice,
        json!({"role": "Viewer"}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/api/tenants/{acme}/members/{}", world.dave),
        &alice,
        json!({"role": "Editor"}),
    )
    .await
    .assert_status(202);
    app.delete(
        &format!("/api/tenants/{acme}/members/{}", world.carol),
        &alice,
    )
    .await
    .assert_status(204);
    let flow = world.flow(acme, &alice, "deploy").await;
    let flows = format!("/api/tenants/{acme}/flows/{flow}");
    app.patch(
        &flows,
        &alice,
        json!({"name": "deploy-2", "definition": {"x": "secret-definition"}}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("{flows}/shares/{}", world.bob),
        &alice,
        json!({"access": "read"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("{flows}/shares/{}", world.bob), &alice)
        .await
        .assert_status(204);
    app.delete(&flows, &alice).await.assert_status(204);
    let created = app
        .post("/api/tenants", &alice, json!({"name": "Initech"}))
        .await;
    let initech = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = app
        .put(
            "/api/me/password",
            &alice,
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    changed.assert_status(204);
    let fresh = session_cookie(&changed).unwrap();
    app.post(
        "/api/logout-everywhere",
        &Cred::Cookie(fresh.clone()),
        json!({}),
    )
    .await
    .assert_status(204);

    let all = events(&world).await;
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "tenant.created",
        "member.added",
        "login.succeeded",
        "login.failed",
        "token.minted",
        "token.revoked",
        "member.role_changed",
        "member.invited",
        "member.removed",
        "flow.created",
        "flow.changed",
        "flow.shared",
        "flow.unshared",
        "flow.deleted",
        "password.changed",
        "account.logged_out_everywhere",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let alice_id = world.alice.0;
    let session_ref = |e: &audit_event::Model| e.credential.clone().unwrap_or_default();

    let login = last(&all, "login.succeeded");
    assert_eq!(login.actor_id, Some(alice_id));
    assert_eq!(login.chain, "account");
    assert_eq!(login.target.as_deref(), Some(&*format!("user:{alice_id}")));
    assert!(session_ref(login).starts_with("session:"), "{login:?}");
    assert!(login.request_id.is_some() && login.client.as_deref() == Some("127.0.0.1"));
    assert!(login.policy_version.is_some());

    let failed = last(&all, "login.failed");
    assert_eq!(failed.actor_id, None);
    assert_eq!(
        failed.target.as_deref(),
        Some(&*format!("user:{}", world.bob.0))
    );

    let minted = last(&all, "token.minted");
    assert_eq!(minted.target.as_deref(), Some(&*format!("token:{jti}")));
    let after = json_of(&minted.after);
    assert_eq!(after["name"], "deploy");
    assert_eq!(after["read_only"], true);
    assert_eq!(after["lifetime_seconds"], 300);
    assert_eq!(session_ref(minted), session_ref(login));

    let role = last(&all, "member.role_changed");
    assert_eq!(role.tenant_id, Some(acme.0));
    assert_eq!(role.chain, format!("tenant:{}", acme.0));
    assert_eq!(role.actor_id, Some(alice_id));
    assert_eq!(
        role.target.as_deref(),
        Some(&*format!("user:{}", world.bob.0))
    );
    assert_eq!(json_of(&role.before), json!({"role": "Editor"}));
    assert_eq!(json_of(&role.after), json!({"role": "Viewer"}));

    let invited = last(&all, "member.invited");
    assert_eq!(json_of(&invited.after), json!({"role": "Editor"}));
    let removed = last(&all, "member.removed");
    assert_eq!(json_of(&removed.before), json!({"role": "Viewer"}));

    let changed = last(&all, "flow.changed");
    assert_eq!(changed.target.as_deref(), Some(&*format!("flow:{flow}")));
    assert_eq!(
        json_of(&changed.after)["fields"],
        json!(["name", "definition"])
    );
    assert_eq!(json_of(&changed.before)["name"], "deploy");
    let shared = last(&all, "flow.shared");
    assert_eq!(
        json_of(&shared.after),
        json!({"user": world.bob.0, "access": "read"})
    );
    let tenant = last(&all, "tenant.created");
    assert_eq!(
        tenant.target.as_deref(),
        Some(&*format!("tenant:{initech}"))
    );

    // No secret anywhere: passwords, the token, the session cookies, a flow definition.
    let text = format!("{all:?}");
    for secret in [
        PASSWORD,
        "not the password",
        "a brand new passphrase",
        token.as_str(),
        cookie.as_str(),
        fresh.as_str(),
        "secret-definition",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` found in the audit trail"
        );
    }
    // Each event's chain verifies.
    let reports = audit::verify(&app.state.db, None).await.unwrap();
    assert!(reports.iter().all(|r| r.broken.is_none()), "{reports:?}");
}

/// Makes every insert of `action` fail after the row is written (a trigger), on either backend.
async fn fail_after_inserting(world: &World, action: &str) {
    let db = &world.app.state.db;
    let statements = match db.get_database_backend() {
        DbBackend::Postgres => vec![
            format!(
                "CREATE FUNCTION fail_audit() RETURNS trigger AS $$ BEGIN \
                 IF NEW.action = '{action}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER fail_audit AFTER INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION fail_audit()"
                .to_owned(),
        ],
        _ => vec![format!(
            "CREATE TRIGGER fail_audit AFTER INSERT ON audit_events \
             WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
    };
    for sql in statements {
        db.execute_unprepared(&sql).await.unwrap();
    }
}

#[tokio::test]
async fn a_change_whose_transaction_fails_after_its_event_was_written_leaves_neither() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let before = events(&world).await.len();
    fail_after_inserting(&world, "member.role_changed").await;
    let member = format!("/api/tenants/{}/members/{}", world.acme, world.bob);
    let reply = app.put(&member, &alice, json!({"role": "Viewer"})).await;
    reply.assert_problem(500, "internal");
    let members = app
        .get(&format!("/api/tenants/{}/members", world.acme), &alice)
        .await;
    let bob = members.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == world.bob.to_string())
        .cloned()
        .unwrap();
    assert_eq!(
        bob["role"], "Editor",
        "the change rolled back with its event"
    );
    assert_eq!(
        events(&world).await.len(),
        before,
        "no event without its change"
    );
}

/// Runs a statement on the test's database.
async fn sql(world: &World, statement: &str) {
    world
        .app
        .state
        .db
        .execute_unprepared(statement)
        .await
        .unwrap();
}

/// A tenant chain of five events: the tenant, two members, two flows.
async fn five_events(world: &World) -> Vec<audit_event::Model> {
    let chain = format!("tenant:{}", world.acme.0);
    let all: Vec<_> = events(world)
        .await
        .into_iter()
        .filter(|e| e.chain == chain)
        .collect();
    assert_eq!(all.len(), 3, "{all:#?}");
    let alice = Cred::Token(world.token_of("alice").await);
    world.flow(world.acme, &alice, "one").await;
    world.flow(world.acme, &alice, "two").await;
    let all: Vec<_> = events(world)
        .await
        .into_iter()
        .filter(|e| e.chain == chain)
        .collect();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    all
}

#[tokio::test]
async fn a_trail_page_reads_a_bounded_window_of_the_chain_and_says_where_to_go_on() {
    use zygo::store::audit::{Filter, Trail};
    use zygo::store::page::ChainPage;
    let world = World::new().await;
    five_events(&world).await;
    let db = &world.app.state.db;
    let trail = Trail::Tenant(world.acme);
    // Walks the trail a page at a time with a window of two places: (places, cursor) per page.
    let walk = |filter: Filter| async move {
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = ChainPage {
                before,
                limit: 10,
                window: 2,
            };
            let rows = audit::list(db, trail, &filter, page).await.unwrap();
            let places: Vec<i64> = rows.items.iter().map(|e| e.seq).collect();
            pages.push((places, rows.next));
            match rows.next {
                Some(next) => before = Some(next),
                None => return pages,
            }
        }
    };
    // Unfiltered: each page holds its window's events and goes on below it.
    assert_eq!(
        walk(Filter::default()).await,
        [
            (vec![5, 4], Some(4)),
            (vec![3, 2], Some(2)),
            (vec![1], None)
        ]
    );
    // A filter few events pass still reads two places a page, and leaves none out.
    let flows = Filter {
        action: Some("flow.created".into()),
        ..Filter::default()
    };
    assert_eq!(
        walk(flows).await,
        [(vec![5, 4], Some(4)), (vec![], Some(2)), (vec![], None)]
    );
    let created = Filter {
        action: Some("tenant.created".into()),
        ..Filter::default()
    };
    assert_eq!(
        walk(created).await,
        [(vec![], Some(4)), (vec![], Some(2)), (vec![1], None)]
    );
    // A time window that holds no instant is an empty last page, whatever the chain holds.
    let now = chrono::Utc::now();
    for (since, until) in [(now, now), (now, now - chrono::Duration::days(1))] {
        let nothing = Filter {
            since: Some(since),
            until: Some(until),
            ..Filter::default()
        };
        assert_eq!(walk(nothing).await, [(vec![], None)]);
    }
    // A full page goes on from its last event, as before.
    let rows = audit::list(db, trail, &Filter::default(), ChainPage::new(None, 2))
        .await
        .unwrap();
    assert_eq!(rows.next, Some(4));
}

async fn first_broken(world: &World) -> Option<audit::Broken> {
    audit::verify(&world.app.state.db, Some(world.acme))
        .await
        .unwrap()
        .remove(0)
        .broken
}

#[tokio::test]
async fn verify_passes_an_untouched_trail_and_names_an_edited_event() {
    let world = World::new().await;
    let chain = five_events(&world).await;
    assert_eq!(first_broken(&world).await, None);
    let third = &chain[2];
    sql(
        &world,
        &format!(
            "UPDATE audit_events SET target = 'user:00000000-0000-0000-0000-000000000000' \
             WHERE chain = '{}' AND seq = 3",
            third.chain
        ),
    )
    .await;
    let broken = first_broken(&world).await.unwrap();
    assert_eq!(
        (broken.seq, broken.id, broken.flaw),
        (3, third.id, Flaw::Edited)
    );
}

#[tokio::test]
async fn verify_names_the_event_after_a_deleted_one() {
    let world = World::new().await;
    let chain = five_events(&world).await;
    sql(
        &world,
        &format!(
            "DELETE FROM audit_events WHERE chain = '{}' AND seq = 2",
            chain[1].chain
        ),
    )
    .await;
    let broken = first_broken(&world).await.unwrap();
    assert_eq!(
        (broken.seq, broken.id, broken.flaw),
        (3, chain[2].id, Flaw::Removed)
    );
}

#[tokio::test]
async fn verify_names_reordered_events() {
    let world = World::new().await;
    let chain = five_events(&world).await;
    // Swap the places of events 2 and 3 (through a free number, for the unique index).
    let name = &chain[0].chain;
    for (from, to) in [(2, 1000), (3, 2), (1000, 3)] {
        sql(
            &world,
            &format!("UPDATE audit_events SET seq = {to} WHERE chain = '{name}' AND seq = {from}"),
        )
        .await;
    }
    let broken = first_broken(&world).await.unwrap();
    assert_eq!(broken.seq, 2);
    assert_eq!(broken.id, chain[2].id);
    assert_eq!(
        broken.flaw,
        Flaw::Edited,
        "the place in the chain is hashed"
    );
}

#[tokio::test]
async fn verify_names_an_event_whose_predecessor_was_forged_with_a_recomputed_hash() {
    let world = World::new().await;
    let chain = five_events(&world).await;
    let mut forged = chain[2].clone();
    forged.target = Some("flow:forged".into());
    forged.hash = audit::hash_of(&forged);
    sql(
        &world,
        &format!(
            "UPDATE audit_events SET target = 'flow:forged', hash = '{}' \
             WHERE chain = '{}' AND seq = 3",
            forged.hash, forged.chain
        ),
    )
    .await;
    let broken = first_broken(&world).await.unwrap();
    assert_eq!(
        (broken.seq, broken.id, broken.flaw),
        (4, chain[3].id, Flaw::Unlinked)
    );
}

#[tokio::test]
async fn verify_names_an_event_edited_into_values_of_the_wrong_kind() {
    // SQLite keeps whatever an `UPDATE` puts in a column; PostgreSQL refuses it, so there the
    // edit is an ordinary one.
    let nil = uuid::Uuid::nil();
    let cases: [(&str, Option<(i64, bool)>); 6] = [
        ("id = 'x'", Some((3, false))),
        ("at = 'yesterday'", Some((3, true))),
        ("actor_id = x'00'", Some((3, true))),
        ("after = x'ff'", Some((3, true))),
        ("hash = x'00'", Some((3, true))),
        // A place that is not a number sorts after every number: event 3 is missing from its
        // place, and the walk ends on the row that holds it.
        ("seq = 'three'", None),
    ];
    for (edit, named) in cases {
        let world = World::new().await;
        let chain = five_events(&world).await;
        if world.app.state.db.get_database_backend() != DbBackend::Sqlite {
            return;
        }
        sql(
            &world,
            &format!(
                "UPDATE audit_events SET {edit} WHERE chain = '{}' AND seq = 3",
                chain[0].chain
            ),
        )
        .await;
        let report = audit::verify(&world.app.state.db, Some(world.acme))
            .await
            .unwrap_or_else(|e| panic!("{edit}: {e}"))
            .remove(0);
        let broken = report.broken.unwrap_or_else(|| panic!("{edit}: not named"));
        match named {
            Some((seq, id_kept)) => {
                let id = if id_kept { chain[2].id } else { nil };
                assert_eq!(
                    (broken.seq, broken.id, broken.flaw),
                    (seq, id, Flaw::Edited),
                    "{edit}"
                );
                assert_eq!(report.events, 5, "{edit}: the walk goes on past it");
            }
            None => assert_eq!(
                (broken.seq, broken.id, broken.flaw),
                (4, chain[3].id, Flaw::Removed),
                "{edit}"
            ),
        }
    }
}

/// The events of one chain that are still stored, in order.
async fn chain_events(world: &World, chain: &str) -> Vec<audit_event::Model> {
    let mut all: Vec<_> = events(world)
        .await
        .into_iter()
        .filter(|e| e.chain == chain)
        .collect();
    all.sort_by_key(|e| e.seq);
    all
}

#[tokio::test]
async fn archiving_old_events_keeps_every_chain_verifiable_and_a_forged_checkpoint_is_named() {
    let world = World::new().await;
    let db = &world.app.state.db;
    let chain = five_events(&world).await;
    let name = chain[0].chain.clone();
    let cli = audit::Actor::cli();
    let intact = move || async move {
        for report in audit::verify(db, None).await.unwrap() {
            assert_eq!(report.broken, None, "{report:#?}");
        }
    };

    // Events 1 to 3 are older than the cut: they go, the chain verifies from the checkpoint.
    let cut = chain[2].at + chrono::Duration::microseconds(1);
    assert!(chain[3].at >= cut, "{chain:#?}");
    let done = audit::archive(db, cut, Some(world.acme), &cli)
        .await
        .unwrap();
    assert_eq!(
        done.iter()
            .map(|d| (d.chain.clone(), d.seq, d.hash.clone(), d.events, d.restated))
            .collect::<Vec<_>>(),
        [(name.clone(), 3, chain[2].hash.clone(), 3, false)]
    );
    let kept = chain_events(&world, &name).await;
    assert_eq!(kept.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    let report = audit::verify(db, Some(world.acme)).await.unwrap().remove(0);
    assert_eq!(
        (report.events, report.archived, report.broken),
        (2, 3, None)
    );
    intact().await;
    let recorded = last(&events(&world).await, audit::action::AUDIT_ARCHIVED).clone();
    assert_eq!(recorded.chain, audit::ACCOUNT_CHAIN);
    assert_eq!(recorded.target.as_deref(), Some(&*format!("chain:{name}")));
    assert_eq!(recorded.credential.as_deref(), Some("cli"));
    let after = json_of(&recorded.after);
    assert_eq!(
        (
            after["seq"].clone(),
            after["hash"].clone(),
            after["events"].clone()
        ),
        (json!(3), json!(chain[2].hash), json!(3))
    );
    assert_eq!(json_of(&recorded.before), json!({ "seq": 0 }));
    assert_eq!(report.recorded_by, Some(recorded.seq));
    assert_eq!(
        done[0].recorded_by, recorded.seq,
        "the archive names its event"
    );
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let refused = audit::archive(db, future, None, &cli).await.unwrap_err();
    assert!(refused.to_string().contains("in the future"), "{refused}");

    // A made-up event at a place the walk would not read (0, before the account chain's start)
    // is named, and no archive runs over it.
    let mut ghost = recorded.clone().into_active_model().reset_all();
    ghost.id = Set(uuid::Uuid::new_v4());
    ghost.seq = Set(0);
    ghost.insert(db).await.unwrap();
    let account = audit::verify(db, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.chain == audit::ACCOUNT_CHAIN)
        .unwrap();
    assert_eq!(
        account.broken.map(|b| (b.seq, b.flaw)),
        Some((0, Flaw::Outside))
    );
    // Asked for the tenant alone, verify names the account chain's flaw first; the tenant's
    // chain is not blamed for it (the row outside stops no walk).
    let both = audit::verify(db, Some(world.acme)).await.unwrap();
    assert_eq!(
        both.iter()
            .map(|r| (r.chain.clone(), r.broken.as_ref().map(|b| b.flaw)))
            .collect::<Vec<_>>(),
        [
            (audit::ACCOUNT_CHAIN.to_owned(), Some(Flaw::Outside)),
            (name.clone(), None)
        ]
    );
    let refused = audit::archive(db, chrono::Utc::now(), None, &cli)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("refusing to archive"), "{refused}");
    sql(
        &world,
        "DELETE FROM audit_events WHERE chain = 'account' AND seq = 0",
    )
    .await;
    intact().await;

    // The chain goes on from its head; an archive of every chain moves each checkpoint and
    // keeps each chain's last event.
    let alice = Cred::Token(world.token_of("alice").await);
    world.flow(world.acme, &alice, "three").await;
    let done = audit::archive(db, chrono::Utc::now(), None, &cli)
        .await
        .unwrap();
    let acme = done.iter().find(|d| d.chain == name).unwrap();
    assert_eq!((acme.seq, acme.events), (5, 2));
    assert!(
        done.iter().any(|d| d.chain == audit::ACCOUNT_CHAIN),
        "{done:#?}"
    );
    intact().await;
    assert_eq!(
        chain_events(&world, &name)
            .await
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [6]
    );

    // Later the account chain is cut again while the tenant's has nothing new to archive: the
    // event that recorded the tenant's checkpoint goes with the account chain's prefix, and a
    // new one restates the checkpoint, so the tenant's chain still verifies.
    world.token_of("bob").await;
    let done = audit::archive(db, chrono::Utc::now(), None, &cli)
        .await
        .unwrap();
    assert!(
        done.iter().all(|d| d.chain != name || d.restated),
        "{done:#?}"
    );
    assert!(
        done.iter().any(|d| d.chain == audit::ACCOUNT_CHAIN),
        "{done:#?}"
    );
    intact().await;
    let target = format!("chain:{name}");
    let all = events(&world).await;
    let restated = all
        .iter()
        .rev()
        .find(|e| e.action == audit::action::AUDIT_ARCHIVED && e.target.as_ref() == Some(&target))
        .unwrap();
    assert_eq!(
        json_of(&restated.after),
        json!({ "seq": 5, "hash": chain[4].hash, "events": 0, "restated": true })
    );
    let told = done.iter().find(|d| d.chain == name).unwrap();
    assert_eq!(
        (told.restated, told.seq, told.recorded_by),
        (true, 5, restated.seq)
    );

    // Behind the service's back: event 6 deleted after a new one, and the checkpoint moved to it
    // with its true hash. Every link holds; no archive recorded that checkpoint.
    world.flow(world.acme, &alice, "four").await;
    let kept = chain_events(&world, &name).await;
    sql(
        &world,
        &format!("DELETE FROM audit_events WHERE chain = '{name}' AND seq = 6"),
    )
    .await;
    sql(
        &world,
        &format!(
            "UPDATE audit_checkpoints SET seq = 6, hash = '{}' WHERE chain = '{name}'",
            kept[0].hash
        ),
    )
    .await;
    let broken = first_broken(&world).await.unwrap();
    assert_eq!(
        (broken.seq, broken.id, broken.flaw),
        (7, kept[1].id, Flaw::Unvouched)
    );
    // A broken chain is never archived: that would hide the tampering.
    let refused = audit::archive(db, chrono::Utc::now(), Some(world.acme), &cli)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("refusing to archive"), "{refused}");
    assert_eq!(chain_events(&world, &name).await.len(), 1);
    // Another tenant's archive does not depend on this chain: it is not refused.
    let other = audit::archive(db, chrono::Utc::now(), Some(world.globex), &cli).await;
    assert!(
        other.unwrap().is_empty(),
        "Globex's chain has only its head left"
    );

    // A chain emptied behind the service's back is found through its checkpoint, and without
    // it through the archive event that recorded it.
    sql(
        &world,
        &format!("DELETE FROM audit_events WHERE chain = '{name}'"),
    )
    .await;
    let broken_of = move |name: String| async move {
        audit::verify(db, None)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.chain == name)
            .and_then(|r| r.broken)
            .map(|b| (b.seq, b.id, b.flaw))
    };
    assert_eq!(
        broken_of(name.clone()).await,
        Some((7, uuid::Uuid::nil(), Flaw::Removed))
    );
    sql(
        &world,
        &format!("DELETE FROM audit_checkpoints WHERE chain = '{name}'"),
    )
    .await;
    assert_eq!(
        broken_of(name.clone()).await,
        Some((6, uuid::Uuid::nil(), Flaw::Removed))
    );
}

#[tokio::test]
async fn archives_at_once_take_turns_and_leave_every_chain_verifiable() {
    let world = World::new().await;
    let db = &world.app.state.db;
    let chain = five_events(&world).await;
    let name = chain[0].chain.clone();
    let cli = audit::Actor::cli();
    // Two archives of the same chain with different cuts, and one of every chain, at once: the
    // checkpoint only moves forward and nothing is archived twice, whatever the order.
    let early = chain[1].at + chrono::Duration::microseconds(1);
    let now = chrono::Utc::now();
    let (a, b, c) = tokio::join!(
        audit::archive(db, early, Some(world.acme), &cli),
        audit::archive(db, now, Some(world.acme), &cli),
        audit::archive(db, now, None, &cli),
    );
    let done: Vec<audit::Archived> = [a, b, c]
        .into_iter()
        .flat_map(|result| result.unwrap())
        .filter(|archived| archived.chain == name)
        .collect();
    assert_eq!(
        done.iter().map(|a| a.events).sum::<u64>(),
        4,
        "events 1 to 4 archived once in all: {done:#?}"
    );
    assert_eq!(done.iter().map(|a| a.seq).max(), Some(4));
    for report in audit::verify(db, None).await.unwrap() {
        assert_eq!(report.broken, None, "{report:#?}");
    }
    let report = audit::verify(db, Some(world.acme)).await.unwrap().remove(0);
    assert_eq!((report.archived, report.events), (4, 1));

    // The account chain's first kept event removed: the account chain names it, and the tenant's
    // chain, whose record the account chain no longer proves, says so rather than blaming itself.
    let first = chain_events(&world, audit::ACCOUNT_CHAIN).await[0].seq;
    sql(
        &world,
        &format!("DELETE FROM audit_events WHERE chain = 'account' AND seq = {first}"),
    )
    .await;
    let flaws: Vec<_> = audit::verify(db, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.chain == name || r.chain == audit::ACCOUNT_CHAIN)
        .map(|r| (r.chain, r.broken.map(|b| b.flaw)))
        .collect();
    assert_eq!(
        flaws,
        [
            (audit::ACCOUNT_CHAIN.to_owned(), Some(Flaw::Removed)),
            (name, Some(Flaw::Unrecorded))
        ]
    );
}

#[tokio::test]
async fn a_tenant_whose_whole_chain_was_deleted_is_named() {
    let world = World::new().await;
    let chain = format!("tenant:{}", world.globex.0);
    sql(
        &world,
        &format!("DELETE FROM audit_events WHERE chain = '{chain}'"),
    )
    .await;
    let broken = audit::verify(&world.app.state.db, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.chain == chain)
        .and_then(|r| r.broken)
        .map(|b| (b.seq, b.id, b.flaw));
    assert_eq!(broken, Some((1, uuid::Uuid::nil(), Flaw::Removed)));
}

#[tokio::test]
async fn concurrent_changes_in_one_tenant_never_fork_its_chain() {
    let world = World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let names: Vec<String> = (0..16).map(|n| format!("f{n}")).collect();
    let creations = names
        .iter()
        .map(|name| world.flow(world.acme, &alice, name));
    futures_util::future::join_all(creations).await;
    let report = audit::verify(&world.app.state.db, Some(world.acme))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(report.broken, None);
    assert_eq!(report.events, 3 + 16);
}

#[tokio::test]
async fn the_tenant_trail_is_for_its_admins_paged_and_filtered() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    for n in 0..3 {
        world.flow(world.acme, &alice, &format!("f{n}")).await;
    }
    let base = format!("/api/tenants/{}/audit", world.acme);
    // Newest first, a page at a time.
    let first = app.get(&format!("{base}?limit=4"), &alice).await;
    let body = first.assert_status(200);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["action"], "flow.created");
    assert_eq!(items[0]["seq"], 6);
    assert_eq!(items[0]["actor_id"], world.alice.to_string());
    assert!(
        items[0]["credential"]
            .as_str()
            .unwrap()
            .starts_with("token:")
    );
    // The chain's order: each page continues before the last event's place.
    let places: Vec<i64> = items.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(places, [6, 5, 4, 3]);
    let cursor = body["next_cursor"].as_str().unwrap();
    assert_eq!(cursor, "3");
    let second = app
        .get(&format!("{base}?limit=4&cursor={cursor}"), &alice)
        .await;
    let rest = second.assert_status(200);
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest["items"][0]["seq"], 2);
    assert_eq!(rest["items"][1]["action"], "tenant.created");
    assert_eq!(rest["next_cursor"], Value::Null);
    // A cursor is a place: any place reads the events before it, anything else is refused.
    let before_2 = app.get(&format!("{base}?cursor=2"), &alice).await;
    let before_2 = before_2.assert_status(200);
    assert_eq!(before_2["items"].as_array().unwrap().len(), 1);
    assert_eq!(before_2["items"][0]["seq"], 1);
    for bad in ["-1", "x", "1.000000000-0b6f3c2e3f1d4c559a612d2f4f7f6e10"] {
        let refused = app.get(&format!("{base}?cursor={bad}"), &alice).await;
        let problem = refused.assert_status(400);
        assert!(
            problem["detail"].as_str().unwrap().contains("cursor"),
            "{bad}: {problem}"
        );
    }
    // Filters: action, actor, time.
    let only = app
        .get(&format!("{base}?action=member.added"), &alice)
        .await;
    let only = only.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(only.len(), 2);
    assert!(only.iter().all(|e| e["action"] == "member.added"));
    let by_alice = app
        .get(&format!("{base}?actor={}", world.alice), &alice)
        .await;
    assert_eq!(
        by_alice.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let future = app
        .get(&format!("{base}?since=2999-01-01T00:00:00Z"), &alice)
        .await;
    assert_eq!(future.assert_status(200)["items"], json!([]));
    let backwards = app
        .get(
            &format!("{base}?since=2999-01-01T00:00:00Z&until=2000-01-01T00:00:00Z"),
            &alice,
        )
        .await;
    // An empty window selects nothing; it is not an error.
    assert_eq!(backwards.assert_status(200)["items"], json!([]));
    // Bounds past the year 9999 (as UTC: a valid RFC 3339 time with a negative offset gets
    // there) select what they say, though SQLite compares stored times as text.
    let all = app.get(&base, &alice).await.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .len();
    for late in ["9999-12-31T23:59:59-01:00", "%2B10000-01-01T00:00:00Z"] {
        let after = app.get(&format!("{base}?since={late}"), &alice).await;
        assert_eq!(after.assert_status(200)["items"], json!([]), "since {late}");
        let before = app.get(&format!("{base}?until={late}"), &alice).await;
        let before = before.assert_status(200)["items"].as_array().unwrap().len();
        assert_eq!(before, all, "until {late}");
    }
    // The policies decide: a Viewer member is refused, a non-member gets 404.
    let carol = Cred::Token(world.token_of("carol").await);
    app.get(&base, &carol)
        .await
        .assert_problem(403, "forbidden");
    // A non-member gets the answer every tenant-level route gives it, the same as for a tenant
    // that does not exist.
    let dave = Cred::Token(world.token_of("dave").await);
    app.get(&base, &dave).await.assert_problem(403, "forbidden");
    app.get(
        &format!("/api/tenants/{}/audit", uuid::Uuid::new_v4()),
        &dave,
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn my_trail_holds_my_own_security_events_only() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("carol@example.com", PASSWORD).await;
    let carol = Cred::Cookie(cookie);
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": "carol@example.com", "password": "wrong"}),
    )
    .await
    .assert_problem(401, "login_failed");
    let token = app.token(&carol, None).await;
    // Someone else's activity does not show.
    world.token_of("bob").await;
    let mine = app.get("/api/me/audit", &Cred::Token(token)).await;
    let items = mine.assert_status(200)["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.minted", "login.failed", "login.succeeded"]);
    assert!(items.iter().all(|e| e["tenant_id"] == Value::Null));
    let failed = app.get("/api/me/audit?action=login.failed", &carol).await;
    assert_eq!(
        failed.assert_status(200)["items"].as_array().unwrap().len(),
        1
    );
    app.get("/api/me/audit", &Cred::None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn the_operators_changes_are_audited_and_the_command_line_verifies_and_exports_the_trail() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::cli::zygo_command(data.path())
            .args(args)
            .output()
            .unwrap()
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    for args in [
        &["user", "add", "ann@example.com", "--password", "pw-ann-123"][..],
        &["tenant", "add", "Acme", "--admin", "ann@example.com"],
        &["user", "disable", "ann@example.com"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let verify = run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let report = text(&verify.stdout);
    assert!(
        report.contains("account: 1 event, intact; head "),
        "{report}"
    );
    assert!(report.contains(": 1 event, intact; head "), "{report}");

    let export = run(&["audit", "export", "--since", "2000-01-01"]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let lines: Vec<Value> = text(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Chain by chain: the account chain's event, then the tenant's.
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let created = &lines[1];
    assert_eq!(created["class_uid"], 3004);
    assert_eq!(created["activity_id"], 1);
    assert_eq!(created["type_uid"], 300401);
    assert_eq!(created["message"], "tenant.created");
    assert_eq!(created["actor"]["session"]["uid"], "cli");
    assert_eq!(created["entity"]["type"], "tenant");
    assert!(created["unmapped"]["policy_version"].is_string());
    let disabled = &lines[0];
    assert_eq!(disabled["class_uid"], 3001);
    assert_eq!(disabled["activity_id"], 5);
    assert_eq!(disabled["status_id"], 1);
    assert!(disabled["user"]["uid"].is_string());
    let later = run(&["audit", "export", "--since", "2999-01-01T00:00:00Z"]);
    assert!(later.status.success() && later.stdout.is_empty());

    // Each chain holds one event, its head: there is nothing an archive may take.
    let archive = run(&["audit", "archive", "--before", "2000-01-01"]);
    assert!(archive.status.success(), "{}", text(&archive.stderr));
    assert!(
        text(&archive.stdout).starts_with("nothing to archive"),
        "{}",
        text(&archive.stdout)
    );
    let future = run(&["audit", "archive", "--before", "2999-01-01"]);
    assert!(!future.status.success());
    assert!(
        text(&future.stderr).contains("--before: 2999-01-01 00:00:00 UTC is in the future"),
        "{}",
        text(&future.stderr)
    );
    let nobody = "00000000-0000-0000-0000-000000000000";
    for command in ["verify", "archive", "export"] {
        let mut args = vec!["audit", command, "--tenant", nobody];
        match command {
            "archive" => args.extend(["--before", "2000-01-01"]),
            "export" => args.extend(["--since", "2000-01-01"]),
            _ => {}
        }
        let out = run(&args);
        assert!(!out.status.success(), "{command}");
        let wanted = format!("--tenant: no tenant and no audit chain has the id {nobody}");
        assert!(
            text(&out.stderr).contains(&wanted),
            "{command}: {}",
            text(&out.stderr)
        );
    }
    let bad = run(&["audit", "archive", "--before", "last week"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--before: `last week` is neither"),
        "{}",
        text(&bad.stderr)
    );

    // A report that cannot be written (a full disk, a closed pipe) is an error, not a panic.
    for args in [
        &["audit", "verify"][..],
        &["audit", "archive", "--before", "2000-01-01"],
        &["audit", "export", "--since", "2000-01-01"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = crate::cli::zygo_command(data.path())
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let error = text(&out.stderr);
        assert!(
            error.contains("could not be written")
                || error.contains("cannot write the report")
                || error.contains("cannot write the export: No space left on device"),
            "{args:?}: {error}"
        );
        assert!(!error.contains("panicked"), "{args:?}: {error}");
    }
    // With SQLite, a mistyped data folder is named, and nothing is created there.
    if crate::helpers::backend() == "sqlite" {
        let typo = data.path().join("typo");
        for args in [
            &["audit", "verify"][..],
            &["audit", "export", "--since", "2000-01-01"],
            &["audit", "archive", "--before", "2000-01-01"],
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_zygo"))
                .args(args)
                .arg("--data-dir")
                .arg(&typo)
                .env_remove("ZYGO_DATABASE_URL")
                .output()
                .unwrap();
            assert!(!out.status.success(), "{args:?}");
            assert!(
                text(&out.stderr).contains("there is no database at"),
                "{args:?}: {}",
                text(&out.stderr)
            );
            assert!(!typo.exists(), "{args:?}");
        }
    }

    // Edit the account chain's event behind the service's back: verify names it and fails.
    let command = crate::cli::zygo_command(data.path());
    let url = command
        .get_envs()
        .find(|(k, _)| *k == "ZYGO_DATABASE_URL")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned());
    let settings = zygo::config::DatabaseSettings::new(url, data.path().to_path_buf());
    let db = zygo::store::open(&settings).await.unwrap();
    db.execute_unprepared(
        "UPDATE audit_events SET action = 'user.enabled' WHERE chain = 'account' AND seq = 1",
    )
    .await
    .unwrap();
    let verify = run(&["audit", "verify"]);
    assert!(!verify.status.success());
    let error = text(&verify.stderr);
    assert!(
        error.contains("chain account, event 1 (id ") && error.contains("edited"),
        "{error}"
    );
}

#[tokio::test]
async fn two_instances_appending_to_one_chain_and_a_rolled_back_append_keep_it_verifiable() {
    use sea_orm::TransactionTrait;
    use zygo::store::{self, TenantId, UserId};

    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::cli::zygo_command(data.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    for email in ["ann@example.com", "ben@example.com", "cy@example.com"] {
        run(&["user", "add", email, "--password", "pw-long-123"]);
    }
    // The other instance (a separate process) starts the tenant's chain.
    let tenant = run(&["tenant", "add", "Acme", "--admin", "ann@example.com"]);
    let tenant = TenantId(tenant.parse().unwrap());
    let command = crate::cli::zygo_command(data.path());
    let url = command
        .get_envs()
        .find(|(k, _)| *k == "ZYGO_DATABASE_URL")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned());
    let settings = zygo::config::DatabaseSettings::new(url, data.path().to_path_buf());
    let db = store::open(&settings).await.unwrap();
    let user = |email: &'static str| {
        let db = db.clone();
        async move {
            UserId(
                store::users::find_by_email(&db, email)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            )
        }
    };
    let (ben, cy) = (user("ben@example.com").await, user("cy@example.com").await);
    let actor = audit::Actor::cli();
    let set = |who: UserId, role: &'static str| {
        let (db, actor) = (db.clone(), actor.clone());
        async move {
            store::members::set_role(&db, tenant, who, role, &actor, |_| true)
                .await
                .unwrap();
        }
    };
    // This instance appends after the other's event, then the other appends behind its back:
    // the head this instance remembers is stale and must not be built on.
    set(ben, "Viewer").await;
    run(&[
        "member",
        "set",
        &tenant.0.to_string(),
        "cy@example.com",
        "Viewer",
    ]);
    set(ben, "Editor").await;
    // An append rolled back: the head it left in this instance's memory never existed.
    let txn = db.begin().await.unwrap();
    let event = audit::Event::new(
        Some(tenant),
        &actor,
        audit::action::MEMBER_ROLE_CHANGED,
        None,
    );
    audit::record(&txn, event).await.unwrap();
    txn.rollback().await.unwrap();
    set(cy, "Editor").await;
    run(&[
        "member",
        "set",
        &tenant.0.to_string(),
        "ben@example.com",
        "Viewer",
    ]);
    set(cy, "Viewer").await;

    let report = audit::verify(&db, Some(tenant)).await.unwrap().remove(0);
    assert_eq!(report.broken, None);
    assert_eq!(report.events, 7);
    let chain = audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Seq)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.tenant_id == Some(tenant.0))
        .map(|e| (e.seq, e.action, e.target))
        .collect::<Vec<_>>();
    let (added, changed) = (
        audit::action::MEMBER_ADDED,
        audit::action::MEMBER_ROLE_CHANGED,
    );
    let target = |u: UserId| Some(format!("user:{}", u.0));
    assert_eq!(
        chain,
        vec![
            (
                1,
                audit::action::TENANT_CREATED.to_owned(),
                Some(format!("tenant:{}", tenant.0))
            ),
            (2, added.to_owned(), target(ben)),
            (3, added.to_owned(), target(cy)),
            (4, changed.to_owned(), target(ben)),
            (5, changed.to_owned(), target(cy)),
            (6, changed.to_owned(), target(ben)),
            (7, changed.to_owned(), target(cy)),
        ]
    );
    let verify = run(&["audit", "verify", "--tenant", &tenant.0.to_string()]);
    assert!(verify.contains(": 7 events, intact; head "), "{verify}");
    // Each change this instance made on a stale head was made once, with its event.
    let roles = zygo::store::entities::membership::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.tenant_id == tenant.0)
        .map(|m| (m.user_id, m.role))
        .collect::<std::collections::HashMap<_, _>>();
    assert_eq!(roles.get(&ben.0).map(String::as_str), Some("Viewer"));
    assert_eq!(roles.get(&cy.0).map(String::as_str), Some("Viewer"));
}

/// A change sent with its event (`audit::record_with`) is made exactly once and recorded exactly
/// once, on a stale head (an append rolled back: the head this process remembers never existed)
/// as on a current one. The change counts (a login count), so running it twice would show.
#[tokio::test]
async fn a_change_sent_with_its_event_is_made_once_on_a_stale_head_and_on_a_current_one() {
    use sea_orm::TransactionTrait;
    use zygo::store;
    let world = World::new().await;
    let db = &world.app.state.db;
    let actor = &audit::Actor::cli();
    let login_count = || async {
        store::users::find(db, world.bob)
            .await
            .unwrap()
            .unwrap()
            .login_count
    };
    let counted = login_count().await;
    let change = |n: u32| async move {
        let txn = db.begin().await.unwrap();
        let event = audit::Event::new(
            Some(world.acme),
            actor,
            audit::action::MEMBER_ROLE_CHANGED,
            format!("change:{n}"),
        );
        let statement = store::users::count_login(db.get_database_backend(), world.bob);
        let rows = audit::record_with(&txn, event, statement).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(rows, 1, "the change's own rows affected");
    };
    // A rolled-back append leaves a head in memory that the database never had.
    let txn = db.begin().await.unwrap();
    let event = audit::Event::new(
        Some(world.acme),
        actor,
        audit::action::MEMBER_ROLE_CHANGED,
        "rolled back".to_owned(),
    );
    audit::record(&txn, event).await.unwrap();
    txn.rollback().await.unwrap();
    change(1).await;
    assert_eq!(
        login_count().await,
        counted + 1,
        "made once on a stale head"
    );
    // The head is current now.
    change(2).await;
    assert_eq!(
        login_count().await,
        counted + 2,
        "made once on a current head"
    );
    let chain = format!("tenant:{}", world.acme.0);
    let targets: Vec<_> = events(&world)
        .await
        .into_iter()
        .filter(|e| e.chain == chain)
        .filter_map(|e| e.target)
        .filter(|t| t.starts_with("change:") || t == "rolled back")
        .collect();
    assert_eq!(targets, ["change:1", "change:2"], "recorded once each");
    let reports = audit::verify(db, Some(world.acme)).await.unwrap();
    assert!(reports.iter().all(|r| r.broken.is_none()), "{reports:?}");
}

/// A change sent with its event takes its rows before the chain's lock, as every other write
/// does: a withdrawal (its event sent with its delete) waiting on an invitation row that an
/// accept holds while that accept records its own event does not deadlock; both finish.
#[tokio::test]
async fn a_change_sent_with_its_event_waits_for_its_rows_before_it_takes_the_chain() {
    use sea_orm::TransactionTrait;
    use zygo::store::{self, entities::invitation};
    let world = World::new().await;
    let db = world.app.state.db.clone();
    let (acme, dave) = (world.acme, world.dave);
    let actor = audit::Actor::cli();
    store::invitations::set_role_or_invite(&db, acme, dave, "Viewer", world.alice, &actor, |_| {
        true
    })
    .await
    .unwrap();
    // The accept's side: the invitation row first (held until the end)…
    let holder = db.begin().await.unwrap();
    invitation::Entity::delete_by_id((acme.0, dave.0))
        .exec(&holder)
        .await
        .unwrap();
    // …while a withdrawal of the same invitation starts and waits for that row…
    let withdrawal = tokio::spawn({
        let (db, actor) = (db.clone(), actor.clone());
        async move { store::invitations::withdraw(&db, acme, dave, &actor).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // …then the accept's event, which needs the chain.
    let event = audit::Event::new(
        Some(acme),
        &actor,
        audit::action::INVITATION_DECLINED,
        format!("user:{}", dave.0),
    );
    audit::record(&holder, event).await.unwrap();
    holder.commit().await.unwrap();
    let withdrawn = tokio::time::timeout(std::time::Duration::from_secs(10), withdrawal)
        .await
        .expect("the withdrawal finishes")
        .unwrap()
        .expect("the withdrawal succeeds");
    assert!(!withdrawn, "the invitation was already gone");
    let actions: Vec<_> = events(&world)
        .await
        .into_iter()
        .filter(|e| e.target.as_deref() == Some(&format!("user:{}", dave.0)))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "member.invited",
            "invitation.declined",
            "invitation.withdrawn"
        ]
    );
    let reports = audit::verify(&db, Some(acme)).await.unwrap();
    assert!(reports.iter().all(|r| r.broken.is_none()), "{reports:?}");
}

#[tokio::test]
async fn an_exported_file_can_be_hashed_again_line_by_line() {
    use sha2::Digest;
    let world = World::new().await;
    let app = &world.app;
    // Events with everything an event can name: a session and a token as credentials, request
    // ids and client addresses, before and after.
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let alice = Cred::Token(world.token_of("alice").await);
    let flow = world.flow(world.acme, &alice, "exported").await;
    app.patch(
        &format!("/api/tenants/{}/flows/{flow}", world.acme),
        &session,
        json!({"name": "exported, renamed \"quoted\" ünïcode"}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/api/tenants/{}/members/{}", world.acme, world.carol),
        &alice,
        json!({"role": "Editor"}),
    )
    .await
    .assert_status(200);
    let data = tempfile::tempdir().unwrap();
    let export = crate::cli::zygo_command(data.path())
        .env("ZYGO_DATABASE_URL", &app.state.settings.database.url)
        .args(["audit", "export", "--since", "2000-01-01"])
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), events(&world).await.len());
    let named = |path: &[&str]| {
        lines
            .iter()
            .filter(|l| path.iter().fold(*l, |v, k| &v[*k]).is_string())
            .count()
    };
    assert!(named(&["metadata", "correlation_uid"]) > 0);
    assert!(named(&["src_endpoint", "ip"]) > 0);
    // The recipe of docs/audit.md ("Export"), from the file alone.
    let text = |value: &Value| match value {
        Value::Null => Value::Null,
        json => Value::String(json.to_string()),
    };
    let mut with_before = 0;
    for line in &lines {
        let u = &line["unmapped"];
        let canonical = json!([
            line["metadata"]["uid"],
            u["chain"],
            u["seq"],
            u["at"],
            line["actor"]["user"]["uid"],
            line["actor"]["session"]["uid"],
            u["tenant_uid"],
            u["action"],
            u["target"],
            text(&u["before"]),
            text(&u["after"]),
            line["metadata"]["correlation_uid"],
            line["src_endpoint"]["ip"],
            u["policy_version"],
        ]);
        let hashed = format!("{}\n{canonical}", u["prev_hash"].as_str().unwrap());
        assert_eq!(
            hex::encode(sha2::Sha256::digest(hashed.as_bytes())),
            u["hash"].as_str().unwrap(),
            "{line}"
        );
        with_before += usize::from(!u["before"].is_null());
    }
    assert!(with_before > 0, "some events carry a before");
}
