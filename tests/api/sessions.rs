//! Browser sessions: login, login_count, tenant switching, logout.

use serde_json::{Value, json};

use crate::helpers::{Cred, PASSWORD, World, session_cookie, spawn_app};

#[tokio::test]
async fn login_sets_a_hardened_session_cookie_and_counts_the_login() {
    let world = World::new().await;
    let app = &world.app;
    let reply = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "alice@example.com", "password": PASSWORD}),
        )
        .await;
    let body = reply.assert_status(200);
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["login_count"], 1);
    // Login selects the user's oldest membership.
    assert_eq!(body["current_tenant_id"], world.acme.to_string());
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("session="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain http must not set Secure"
    );

    let (cookie, body) = app.login("ALICE@example.com ", PASSWORD).await;
    assert_eq!(
        body["login_count"], 2,
        "e-mail matching ignores case and spaces"
    );
    let me = app.get("/api/me", &Cred::Cookie(cookie)).await;
    let me = me.assert_status(200);
    assert_eq!(me["login_count"], 2);
    assert_eq!(me["current_tenant_id"], world.acme.to_string());
    let memberships = me["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 2);
    assert!(memberships.contains(&json!({
        "tenant_id": world.acme.to_string(), "tenant_name": "Acme", "role": "Admin"
    })));
    assert!(memberships.contains(&json!({
        "tenant_id": world.globex.to_string(), "tenant_name": "Globex", "role": "Viewer"
    })));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_401() {
    let world = World::new().await;
    let app = &world.app;
    let wrong = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "alice@example.com", "password": "nope"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "nobody@example.com", "password": "nope"}),
        )
        .await;
    wrong.assert_problem(401, "login_failed");
    unknown.assert_problem(401, "login_failed");
    assert_eq!(wrong.body, unknown.body);
    assert!(session_cookie(&wrong).is_none());
    // A failed login is not counted.
    let (_, body) = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(body["login_count"], 1);
}

#[tokio::test]
async fn login_never_adopts_a_session_id_sent_by_the_client() {
    let world = World::new().await;
    let app = &world.app;
    let planted = "attacker-chosen-session-id";
    let reply = app
        .post(
            "/api/login",
            &Cred::Cookie(planted.into()),
            json!({"email": "alice@example.com", "password": PASSWORD}),
        )
        .await;
    reply.assert_status(200);
    let issued = session_cookie(&reply).unwrap();
    assert_ne!(issued, planted);
    assert!(issued.len() >= 43, "256-bit id, base64url: {issued}");
    app.get("/api/me", &Cred::Cookie(planted.into()))
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn a_session_is_confined_to_its_current_tenant_until_it_switches() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let globex_flows = format!("/api/tenants/{}/flows", world.globex);

    app.get(&globex_flows, &session)
        .await
        .assert_problem(403, "tenant_not_selected");
    app.get(&format!("/api/tenants/{}/flows", world.acme), &session)
        .await
        .assert_status(200);

    let switched = app
        .post(&format!("/session/{}", world.globex), &session, json!({}))
        .await;
    assert_eq!(
        switched.assert_status(200),
        &json!({"current_tenant_id": world.globex.to_string()})
    );
    app.get(&globex_flows, &session).await.assert_status(200);
    app.get(&format!("/api/tenants/{}/flows", world.acme), &session)
        .await
        .assert_problem(403, "tenant_not_selected");
    let me = app.get("/api/me", &session).await;
    assert_eq!(me.body["current_tenant_id"], world.globex.to_string());
}

#[tokio::test]
async fn switching_to_a_foreign_or_missing_tenant_is_the_same_403() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("bob@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let foreign = app
        .post(&format!("/session/{}", world.globex), &session, json!({}))
        .await;
    let missing = app
        .post(
            &format!("/session/{}", uuid::Uuid::new_v4()),
            &session,
            json!({}),
        )
        .await;
    foreign.assert_problem(403, "forbidden");
    missing.assert_problem(403, "forbidden");
    assert_eq!(foreign.body, missing.body);
    // The session keeps its tenant.
    let me = app.get("/api/me", &session).await;
    assert_eq!(me.body["current_tenant_id"], world.acme.to_string());
}

#[tokio::test]
async fn a_non_member_gets_403_or_404_before_tenant_not_selected() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("bob@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    app.get(&format!("/api/tenants/{}/flows", world.globex), &session)
        .await
        .assert_problem(403, "forbidden");
    app.get(
        &format!(
            "/api/tenants/{}/flows/{}",
            world.globex,
            uuid::Uuid::new_v4()
        ),
        &session,
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn switching_tenant_needs_a_session_not_a_token() {
    let world = World::new().await;
    let token = world.token_of("alice").await;
    world
        .app
        .post(
            &format!("/session/{}", world.globex),
            &Cred::Token(token),
            json!({}),
        )
        .await
        .assert_problem(403, "session_required");
}

#[tokio::test]
async fn logout_kills_the_session_server_side() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    app.get("/api/me", &session).await.assert_status(200);
    let out = app.post("/api/logout", &session, json!({})).await;
    assert_eq!(out.status, 204);
    assert_eq!(out.body, serde_json::Value::Null);
    let cleared = out.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("session=;") && cleared.contains("Max-Age=0"));
    // Replaying the old cookie does not work: the session is gone from the database.
    app.get("/api/me", &session)
        .await
        .assert_problem(401, "session_invalid");
    app.get("/api/token", &session)
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn a_disabled_user_can_neither_log_in_nor_use_a_session() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("carol@example.com", PASSWORD).await;
    zygo::store::users::set_disabled(&app.state.db, world.carol, true)
        .await
        .unwrap();
    app.state.authn.forget_user(world.carol).await;
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": "carol@example.com", "password": PASSWORD}),
    )
    .await
    .assert_problem(401, "login_failed");
}

#[tokio::test]
async fn requests_without_credentials_are_401() {
    let app = spawn_app().await;
    for path in ["/api/me", "/api/token", "/api/tenants"] {
        app.get(path, &Cred::None)
            .await
            .assert_problem(401, "unauthenticated");
    }
}

#[tokio::test]
async fn login_input_errors_name_the_field_and_change_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let cases = [
        (json!({"email": "alice@example.com"}), "missing password"),
        (json!({"email": "", "password": "x"}), "empty email"),
        (
            json!({"email": 5, "password": "x"}),
            "email of the wrong type",
        ),
        (json!([]), "not an object"),
    ];
    for (body, why) in cases {
        let reply = app.post("/api/login", &Cred::None, body).await;
        assert_eq!(reply.status, 400, "{why}: {}", reply.body);
        reply.assert_problem(400, "bad_request");
    }
    let (_, body) = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(body["login_count"], 1);
}

#[tokio::test]
async fn a_session_whose_tenant_removed_its_user_has_no_current_tenant() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("bob@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let me = app.get("/api/me", &session).await;
    assert_eq!(
        me.assert_status(200)["current_tenant_id"],
        world.acme.to_string()
    );

    let alice = Cred::Token(world.token_of("alice").await);
    app.delete(
        &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
        &alice,
    )
    .await
    .assert_status(204);
    // Not a member of the session's tenant any more: no current tenant, and no way into it.
    let me = app.get("/api/me", &session).await;
    let me = me.assert_status(200);
    assert_eq!(me["current_tenant_id"], Value::Null, "{me}");
    assert_eq!(me["memberships"], json!([]));
    app.get(&format!("/api/tenants/{}/flows", world.acme), &session)
        .await
        .assert_problem(403, "forbidden");
}
