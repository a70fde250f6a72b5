//! Members: listing, adding, changing roles and removing; the role cache bites at once.

use serde_json::json;

use crate::helpers::{Cred, World};

#[tokio::test]
async fn members_see_the_member_list() {
    let world = World::new().await;
    let carol = Cred::Token(world.token_of("carol").await);
    let reply = world
        .app
        .get(&format!("/api/tenants/{}/members", world.acme), &carol)
        .await;
    let members = reply.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    let pairs: Vec<_> = members
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("alice@example.com", "Admin"),
            ("bob@example.com", "Editor"),
            ("carol@example.com", "Viewer")
        ]
    );
    assert_eq!(members[0]["user_id"], world.alice.to_string());
}

#[tokio::test]
async fn a_role_change_bites_on_the_very_next_request() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let member = format!("/api/tenants/{}/members/{}", world.acme, world.carol);

    // Warm the cache with Carol's Viewer role.
    app.post(&flows, &carol, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");

    let promoted = app.put(&member, &alice, json!({"role": "Editor"})).await;
    assert_eq!(
        promoted.assert_status(200),
        &json!({"user_id": world.carol.to_string(), "email": "carol@example.com", "role": "Editor"})
    );
    app.post(&flows, &carol, json!({"name": "x"}))
        .await
        .assert_status(201);

    let demoted = app.put(&member, &alice, json!({"role": "Viewer"})).await;
    demoted.assert_status(200);
    app.post(&flows, &carol, json!({"name": "y"}))
        .await
        .assert_problem(403, "forbidden");

    let removed = app.delete(&member, &alice).await;
    assert_eq!(removed.status, 204);
    app.get(&flows, &carol)
        .await
        .assert_problem(403, "forbidden");
    // Removing a non-member withdraws an invitation if there is one: 204 either way.
    assert_eq!(app.delete(&member, &alice).await.status, 204);
}

#[tokio::test]
async fn an_admin_invites_an_outsider_who_can_work_in_the_tenant_once_they_accept() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    app.get(&flows, &dave)
        .await
        .assert_problem(403, "forbidden");
    let added = app
        .put(
            &format!("/api/tenants/{}/members/{}", world.acme, world.dave),
            &alice,
            json!({"role": "Viewer"}),
        )
        .await;
    assert_eq!(added.assert_status(202)["status"], "invited");
    app.get(&flows, &dave)
        .await
        .assert_problem(403, "forbidden");
    let accepted = app
        .post(
            &format!("/api/invitations/{}/accept", world.acme),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!(accepted.assert_status(200)["role"], "Viewer");
    app.get(&flows, &dave).await.assert_status(200);
}

#[tokio::test]
async fn only_admins_manage_members() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let carol_member = format!("/api/tenants/{}/members/{}", world.acme, world.carol);
    app.put(&carol_member, &bob, json!({"role": "Admin"}))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&carol_member, &bob)
        .await
        .assert_problem(403, "forbidden");
    // An Editor cannot raise itself either.
    app.put(
        &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
        &bob,
        json!({"role": "Admin"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let members = app
        .get(&format!("/api/tenants/{}/members", world.acme), &bob)
        .await;
    let roles: Vec<_> = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        vec![json!("Admin"), json!("Editor"), json!("Viewer")]
    );
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_nor_removed() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let me = format!("/api/tenants/{}/members/{}", world.acme, world.alice);
    app.put(&me, &alice, json!({"role": "Editor"}))
        .await
        .assert_problem(409, "conflict");
    app.delete(&me, &alice)
        .await
        .assert_problem(409, "conflict");
    // With a second Admin, the first may step down.
    app.put(
        &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
        &alice,
        json!({"role": "Admin"}),
    )
    .await
    .assert_status(200);
    app.put(&me, &alice, json!({"role": "Viewer"}))
        .await
        .assert_status(200);
    // Alice is a Viewer now: the cache was invalidated, managing members is over for her.
    app.delete(
        &format!("/api/tenants/{}/members/{}", world.acme, world.carol),
        &alice,
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn roles_the_policies_do_not_define_are_a_422_naming_the_field() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let member = format!("/api/tenants/{}/members/{}", world.acme, world.carol);
    let reply = app.put(&member, &alice, json!({"role": "Superuser"})).await;
    reply.assert_problem(422, "validation_failed");
    assert!(reply.body["detail"].as_str().unwrap().starts_with("role:"));
    for bad in [
        json!({"role": ""}),
        json!({"role": "admin; drop"}),
        json!({}),
    ] {
        app.put(&member, &alice, bad)
            .await
            .assert_problem(400, "bad_request");
    }
    let unknown_user = app
        .put(
            &format!(
                "/api/tenants/{}/members/{}",
                world.acme,
                uuid::Uuid::new_v4()
            ),
            &alice,
            json!({"role": "Viewer"}),
        )
        .await;
    // An id that names no user is answered as any invitation (and nobody is invited).
    assert_eq!(unknown_user.assert_status(202)["status"], "invited");
    let members = app
        .get(&format!("/api/tenants/{}/members", world.acme), &alice)
        .await;
    assert_eq!(
        members.body["items"].as_array().unwrap().len(),
        3,
        "nothing changed"
    );
}
