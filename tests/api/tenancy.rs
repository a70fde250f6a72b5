//! Tenants from the URL: 403 for tenant-level requests of non-members, 404 (identical) for
//! specific resources that are missing, hidden in another tenant, or in a tenant you do not belong to.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Cred, World};

#[tokio::test]
async fn any_user_creates_a_tenant_and_becomes_its_admin() {
    let world = World::new().await;
    let app = &world.app;
    let token = Cred::Token(world.token_of("carol").await);
    let reply = app
        .post("/api/tenants", &token, json!({"name": "  Initech  "}))
        .await;
    let body = reply.assert_status(201);
    assert_eq!(body["name"], "Initech");
    assert_eq!(body["role"], "Admin");
    let id = body["id"].as_str().unwrap().to_owned();

    let tenant = app.get(&format!("/api/tenants/{id}"), &token).await;
    assert_eq!(tenant.assert_status(200)["name"], "Initech");
    let list = app.get("/api/tenants", &token).await;
    let names: Vec<_> = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("Acme".into(), "Viewer".into()),
            ("Initech".into(), "Admin".into())
        ]
    );
    // The creator may manage members at once: the role cache never saw a stale "non-member".
    app.put(
        &format!("/api/tenants/{id}/members/{}", world.bob),
        &token,
        json!({"role": "Viewer"}),
    )
    .await
    .assert_status(202);
}

#[tokio::test]
async fn tenant_names_are_validated_and_nothing_is_written() {
    let world = World::new().await;
    let app = &world.app;
    let token = Cred::Token(world.token_of("carol").await);
    let long = "x".repeat(201);
    let cases = [
        (json!({"name": "   "}), 400, "bad_request", "blank"),
        (json!({"name": ""}), 400, "bad_request", "empty"),
        (json!({"name": long}), 400, "bad_request", "too long"),
        (json!({}), 400, "bad_request", "missing"),
        (json!({"name": 7}), 400, "bad_request", "wrong type"),
    ];
    for (body, status, code, why) in cases {
        let reply = app.post("/api/tenants", &token, body).await;
        assert_eq!(reply.status, status, "{why}: {}", reply.body);
        reply.assert_problem(status, code);
    }
    let blank = app.post("/api/tenants", &token, json!({"name": " "})).await;
    assert!(blank.body["detail"].as_str().unwrap().starts_with("name:"));
    let list = app.get("/api/tenants", &token).await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "only Acme: nothing was created"
    );
}

#[tokio::test]
async fn non_members_get_the_same_403_for_existing_and_missing_tenants() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    for suffix in ["", "/members", "/flows"] {
        let foreign = app
            .get(&format!("/api/tenants/{}{suffix}", world.globex), &bob)
            .await;
        let missing = app
            .get(&format!("/api/tenants/{}{suffix}", Uuid::new_v4()), &bob)
            .await;
        foreign.assert_problem(403, "forbidden");
        missing.assert_problem(403, "forbidden");
        assert_eq!(foreign.body, missing.body);
    }
    let create = app
        .post(
            &format!("/api/tenants/{}/flows", world.globex),
            &bob,
            json!({"name": "x"}),
        )
        .await;
    create.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn hidden_missing_and_cross_tenant_flows_are_the_same_404() {
    let world = World::new().await;
    let app = &world.app;
    let dave = Cred::Token(world.token_of("dave").await);
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let globex_flow = world.flow(world.globex, &dave, "secret plan").await;
    let acme_flow = world.flow(world.acme, &alice, "acme flow").await;

    // Bob is not a member of Globex: a real flow there, a missing one, all the same.
    let hidden = app
        .get(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.globex),
            &bob,
        )
        .await;
    let missing = app
        .get(
            &format!("/api/tenants/{}/flows/{}", world.globex, Uuid::new_v4()),
            &bob,
        )
        .await;
    let missing_tenant = app
        .get(
            &format!("/api/tenants/{}/flows/{}", Uuid::new_v4(), Uuid::new_v4()),
            &bob,
        )
        .await;
    // Globex's flow addressed under Acme's path, by a member of Acme.
    let cross = app
        .get(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.acme),
            &bob,
        )
        .await;
    // A missing flow in Bob's own tenant.
    let own_missing = app
        .get(
            &format!("/api/tenants/{}/flows/{}", world.acme, Uuid::new_v4()),
            &bob,
        )
        .await;
    for reply in [&hidden, &missing, &missing_tenant, &cross, &own_missing] {
        reply.assert_problem(404, "not_found");
        assert_eq!(reply.body, hidden.body);
        let mut names: Vec<_> = reply
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        names.sort();
        let mut expected: Vec<_> = hidden
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        expected.sort();
        assert_eq!(names, expected);
    }
    // Writes too: a non-member cannot learn anything by trying to change or delete.
    for reply in [
        app.put(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.globex),
            &bob,
            json!({"name": "x"}),
        )
        .await,
        app.patch(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.globex),
            &bob,
            json!({"name": "x"}),
        )
        .await,
        app.delete(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.globex),
            &bob,
        )
        .await,
        app.delete(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.acme),
            &bob,
        )
        .await,
        app.delete(
            &format!("/api/tenants/{}/members/{}", world.globex, world.dave),
            &bob,
        )
        .await,
        app.put(
            &format!("/api/tenants/{}/members/{}", world.globex, world.bob),
            &bob,
            json!({"role": "Admin"}),
        )
        .await,
    ] {
        reply.assert_problem(404, "not_found");
    }
    // And the Globex flow is untouched.
    let kept = app
        .get(
            &format!("/api/tenants/{}/flows/{globex_flow}", world.globex),
            &dave,
        )
        .await;
    assert_eq!(kept.assert_status(200)["name"], "secret plan");
    // Alice's own flow is reachable for her, not through Globex's path.
    app.get(
        &format!("/api/tenants/{}/flows/{acme_flow}", world.acme),
        &alice,
    )
    .await
    .assert_status(200);
    app.get(
        &format!("/api/tenants/{}/flows/{acme_flow}", world.globex),
        &alice,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn malformed_ids_in_the_path_are_a_400_naming_the_parameter() {
    let world = World::new().await;
    let token = Cred::Token(world.token_of("alice").await);
    let reply = world.app.get("/api/tenants/not-a-uuid/flows", &token).await;
    reply.assert_problem(400, "bad_request");
    assert!(
        reply.body["detail"].as_str().unwrap().contains("tenant_id"),
        "{}",
        reply.body
    );
    let reply = world
        .app
        .get(&format!("/api/tenants/{}/flows/nope", world.acme), &token)
        .await;
    reply.assert_problem(400, "bad_request");
    assert!(reply.body["detail"].as_str().unwrap().contains("flow_id"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let world = World::new().await;
    world
        .app
        .get("/api/nothing-here", &Cred::None)
        .await
        .assert_problem(404, "not_found");
    let reply = world.app.delete("/api/tenants", &Cred::None).await;
    reply.assert_problem(405, "method_not_allowed");
}
