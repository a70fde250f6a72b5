//! Revocation: a token (and its family) by presenting it or by `jti`, log out everywhere, and a
//! password change; checked on every request and kept across restarts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Cred, PASSWORD, World, spawn_with, test_settings};

fn claims(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn revoking_the_presented_token_revokes_its_whole_family_and_nothing_else() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let root = app.token(&session, None).await;
    let child = app.token(&Cred::Token(root.clone()), None).await;
    let grandchild = app.token(&Cred::Token(child.clone()), None).await;
    let sibling = app.token(&Cred::Token(root.clone()), None).await;
    let other_family = app.token(&session, None).await;
    assert_eq!(claims(&grandchild)["fam"], claims(&root)["jti"]);
    assert_ne!(claims(&other_family)["fam"], claims(&root)["fam"]);

    let reply = app
        .post("/api/token/revoke", &Cred::Token(child.clone()), json!({}))
        .await;
    reply.assert_status(204);
    for token in [&root, &child, &grandchild, &sibling] {
        let reply = app.get("/api/me", &Cred::Token(token.clone())).await;
        reply.assert_problem(401, "token_revoked");
        // A revoked token cannot mint a way out.
        app.get("/api/token", &Cred::Token(token.clone()))
            .await
            .assert_problem(401, "token_revoked");
    }
    app.get("/api/me", &Cred::Token(other_family))
        .await
        .assert_status(200);
    app.get("/api/me", &session).await.assert_status(200);
}

#[tokio::test]
async fn a_token_is_revoked_by_jti_by_its_owner_only() {
    let world = World::new().await;
    let app = &world.app;
    let (alice_cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let alice = Cred::Cookie(alice_cookie);
    let lost = app.token(&alice, None).await;
    let jti = claims(&lost)["jti"].as_str().unwrap().to_owned();
    let bob = Cred::Token(world.token_of("bob").await);

    // Bob cannot revoke Alice's token, and cannot tell it exists.
    let foreign = app
        .post("/api/token/revoke", &bob, json!({"jti": jti}))
        .await;
    foreign.assert_problem(404, "not_found");
    let missing = app
        .post("/api/token/revoke", &bob, json!({"jti": "no-such-jti"}))
        .await;
    assert_eq!(foreign.body, missing.body);
    app.get("/api/me", &Cred::Token(lost.clone()))
        .await
        .assert_status(200);

    // A misspelt `jti` is refused, naming the field, and revokes nothing (`{}` would mean the
    // presented token).
    for body in [json!({"JTI": jti}), json!({"token": "x"})] {
        let refused = app.post("/api/token/revoke", &bob, body.clone()).await;
        refused.assert_problem(400, "bad_request");
        let detail = refused.body["detail"].as_str().unwrap().to_owned();
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert!(detail.contains(&field), "{detail}");
    }
    app.get("/api/me", &bob).await.assert_status(200);

    // A session must say which token.
    app.post("/api/token/revoke", &alice, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/api/token/revoke", &alice, json!({"jti": jti}))
        .await
        .assert_status(204);
    app.get("/api/me", &Cred::Token(lost))
        .await
        .assert_problem(401, "token_revoked");
    app.get("/api/me", &bob).await.assert_status(200);
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_and_token_of_the_user_only() {
    let world = World::new().await;
    let app = &world.app;
    let (laptop, _) = app.login("alice@example.com", PASSWORD).await;
    let (phone, _) = app.login("alice@example.com", PASSWORD).await;
    let token_a = app.token(&Cred::Cookie(laptop.clone()), Some(3600)).await;
    let token_b = app.token(&Cred::Token(token_a.clone()), None).await;
    let token_c = app.token(&Cred::Cookie(phone.clone()), None).await;
    let bob = Cred::Token(world.token_of("bob").await);

    let reply = app
        .post(
            "/api/logout-everywhere",
            &Cred::Token(token_c.clone()),
            json!({}),
        )
        .await;
    reply.assert_status(204);
    for cookie in [laptop, phone] {
        app.get("/api/me", &Cred::Cookie(cookie))
            .await
            .assert_problem(401, "session_invalid");
    }
    for token in [token_a, token_b, token_c] {
        app.get("/api/me", &Cred::Token(token))
            .await
            .assert_problem(401, "token_revoked");
    }
    app.get("/api/me", &bob).await.assert_status(200);
    // Logging in again works, and new tokens are fine.
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let fresh = app.token(&Cred::Cookie(cookie), None).await;
    app.get("/api/me", &Cred::Token(fresh))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_password_change_revokes_every_token_issued_before_it() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let before = app.token(&Cred::Cookie(cookie.clone()), None).await;
    let reply = app
        .put(
            "/api/me/password",
            &Cred::Token(before.clone()),
            json!({"current_password": PASSWORD, "new_password": "a-brand-new-password"}),
        )
        .await;
    reply.assert_status(204);
    app.get("/api/me", &Cred::Token(before))
        .await
        .assert_problem(401, "token_revoked");
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn revocation_survives_a_restart_and_token_replies_are_never_cached() {
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(data.path());
    let app = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let minted = app.get("/api/token", &Cred::Cookie(cookie)).await;
    assert_eq!(minted.headers["cache-control"], "no-store");
    let token = minted.body["token"].as_str().unwrap().to_owned();
    app.post("/api/token/revoke", &Cred::Token(token.clone()), json!({}))
        .await
        .assert_status(204);
    drop(app);

    let again = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    let reply = again.get("/api/me", &Cred::Token(token)).await;
    reply.assert_problem(401, "token_revoked");
    assert_eq!(reply.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_enforced_by_another() {
    // On PostgreSQL the other instance is signalled (TTL far above the bound, so only the signal
    // explains it); on SQLite the cache TTL bounds it.
    let postgres = crate::helpers::postgres_admin_url().is_some();
    let (ttl, bound) = if postgres {
        (Duration::from_secs(120), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.cache_ttl = ttl;
    let a = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    let b = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    a.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = a.login("erin@example.com", PASSWORD).await;
    let token = a.token(&Cred::Cookie(cookie), None).await;
    // B has seen the token as valid (and cached that).
    b.get("/api/me", &Cred::Token(token.clone()))
        .await
        .assert_status(200);
    a.post("/api/token/revoke", &Cred::Token(token.clone()), json!({}))
        .await
        .assert_status(204);
    let (b, cred) = (&b, &Cred::Token(token));
    let took = crate::helpers::time_until(bound, move || async move {
        b.get("/api/me", cred).await.status == 401
    })
    .await
    .expect("the other instance refuses the revoked token in time");
    b.get("/api/me", cred)
        .await
        .assert_problem(401, "token_revoked");
    assert!(took <= bound, "{took:?}");
}
