//! Expired rows are purged in the background, in bounded batches, and a revocation stays as
//! long as a token it covers could still be accepted.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;
use zygo::store::entities::{issued_token, login_failure, revoked_family, session};
use zygo::store::purge::{self, Purge, REVOCATION_GRACE};

use crate::helpers::{Cred, PASSWORD, TestApp, World, eventually, spawn_with, test_settings};

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Sizes {
    issued_tokens: u64,
    revoked_families: u64,
    sessions: u64,
    login_failures: u64,
}

async fn sizes(app: &TestApp) -> Sizes {
    let db = &app.state.db;
    Sizes {
        issued_tokens: issued_token::Entity::find().count(db).await.unwrap(),
        revoked_families: revoked_family::Entity::find().count(db).await.unwrap(),
        sessions: session::Entity::find().count(db).await.unwrap(),
        login_failures: login_failure::Entity::find().count(db).await.unwrap(),
    }
}

async fn mint(app: &TestApp, cred: &Cred, seconds: u64) -> String {
    app.token(cred, Some(seconds)).await
}

async fn revoke(app: &TestApp, token: &str) {
    let reply = app
        .post(
            "/api/token/revoke",
            &Cred::Token(token.to_owned()),
            json!({}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.body);
}

#[tokio::test]
async fn a_purge_deletes_only_what_nobody_can_use_in_bounded_batches() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    // Short-lived tokens: two live families, two revoked ones.
    let mut short = Vec::new();
    for _ in 0..4 {
        short.push(mint(app, &session, 1).await);
    }
    // By jti through the session: the short tokens may already have expired.
    for token in &short[..2] {
        let jti = crate::helpers::jwt_part(token, 1)["jti"].clone();
        let reply = app
            .post("/api/token/revoke", &session, json!({"jti": jti}))
            .await;
        assert_eq!(reply.status.as_u16(), 204, "{}", reply.body);
    }
    // Long-lived tokens: one live, one revoked (its revocation must stay).
    let live = mint(app, &session, 86_400).await;
    let revoked = mint(app, &session, 86_400).await;
    revoke(app, &revoked).await;
    // Three sessions that have ended (past their lifetime), next to alice's live one.
    for i in 0..3 {
        zygo::store::sessions::create(
            &app.state.db,
            format!("{i:064x}"),
            zygo::store::UserId(world.bob.0),
            None,
            Utc::now() - chrono::Duration::seconds(5),
        )
        .await
        .unwrap();
    }
    let before = sizes(app).await;
    assert_eq!(before.issued_tokens, 6);
    assert_eq!(before.revoked_families, 3);
    assert_eq!(before.sessions, 4);

    // Judged one grace period after the short tokens expired, two rows per statement and one
    // statement per table per purge: each purge deletes at most two rows of a table.
    let later = Utc::now() + REVOCATION_GRACE + chrono::Duration::seconds(10);
    let bounded = Purge {
        batch: 2,
        max_batches: 1,
        ..Purge::new(later, &app.state.settings)
    };
    let first = purge::run(&app.state.db, bounded).await.unwrap();
    assert_eq!(first.issued_tokens, 2);
    assert_eq!(first.revoked_families, 2);
    assert_eq!(first.sessions, 2);
    let mut rounds = 1;
    while purge::run(&app.state.db, bounded).await.unwrap().total() > 0 {
        rounds += 1;
        assert!(rounds < 10, "a purge that never ends");
    }
    let after = sizes(app).await;
    println!("table sizes before a purge: {before:?}; after: {after:?} ({rounds} bounded rounds)");
    assert_eq!(
        after,
        Sizes {
            issued_tokens: 2,
            revoked_families: 1,
            sessions: 1,
            login_failures: before.login_failures,
        }
    );
    // What stays still works as before: the live token reads, the revoked one is refused.
    app.get("/api/me", &Cred::Token(live.clone()))
        .await
        .assert_status(200);
    app.get("/api/me", &Cred::Token(revoked))
        .await
        .assert_problem(401, "token_revoked");
    app.get("/api/me", &session).await.assert_status(200);
    let listed = app.get("/api/tokens", &Cred::Token(live)).await;
    assert_eq!(
        listed.assert_status(200)["items"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_revocation_stays_while_a_token_it_covers_is_within_the_grace_period() {
    let world = World::new().await;
    let app = &world.app;
    let token = world.token_of("carol").await;
    revoke(app, &token).await;
    // Just after expiry, and still within the grace period: the revocation is kept.
    let soon = Utc::now() + chrono::Duration::seconds(601);
    let purged = purge::run(&app.state.db, Purge::new(soon, &app.state.settings))
        .await
        .unwrap();
    assert_eq!(purged.revoked_families, 0);
    assert_eq!(purged.issued_tokens, 0);
    app.get("/api/me", &Cred::Token(token))
        .await
        .assert_problem(401, "token_revoked");
    assert_eq!(sizes(app).await.revoked_families, 1);
}

#[tokio::test]
async fn the_service_purges_in_the_background_while_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.purge_interval = Duration::from_secs(1);
    settings.session_idle = Duration::from_secs(1);
    settings.login_window = Duration::from_secs(1);
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let app = &world.app;
    let (cookie, _) = app.login("dave@example.com", PASSWORD).await;
    // A failed login leaves throttling counters (in the database on PostgreSQL).
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": "dave@example.com", "password": "guess"}),
    )
    .await
    .assert_problem(401, "login_failed");
    let before = sizes(app).await;
    assert_eq!(before.sessions, 1);
    // The session idles out after a second and the background purge removes it (and the
    // closed throttling windows) without anyone asking.
    let purged = eventually(10, || async {
        let now = sizes(app).await;
        now.sessions == 0 && now.login_failures == 0
    })
    .await;
    let after = sizes(app).await;
    println!("table sizes before the background purge: {before:?}; after: {after:?}");
    assert!(purged, "{after:?}");
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
    // It keeps serving meanwhile.
    app.get("/healthz", &Cred::None).await.assert_status(200);
}

#[tokio::test]
async fn a_purge_deletes_expired_invitations_in_bounded_batches_and_keeps_live_ones() {
    use zygo::store::entities::invitation;
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let mut invitees = Vec::new();
    for i in 0..3 {
        invitees.push(
            app.add_user(&format!("invitee{i}@example.com"), PASSWORD)
                .await,
        );
    }
    for user in invitees.iter().chain([&world.dave]) {
        app.put(
            &format!("/api/tenants/{}/members/{user}", world.acme),
            &alice,
            json!({"role": "Viewer"}),
        )
        .await
        .assert_status(202);
    }
    assert_eq!(
        invitation::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        4
    );
    // Judged just past the lifetime of all four, one row a statement, two statements a purge.
    let lifetime = chrono::Duration::from_std(app.state.settings.invitation_lifetime).unwrap();
    let later = Utc::now() + lifetime + chrono::Duration::seconds(10);
    let bounded = Purge {
        batch: 1,
        max_batches: 2,
        ..Purge::new(later, &app.state.settings)
    };
    assert_eq!(
        purge::run(&app.state.db, bounded)
            .await
            .unwrap()
            .invitations,
        2
    );
    // Judged now, nothing has expired: the purge leaves the other two.
    let now = purge::run(&app.state.db, Purge::new(Utc::now(), &app.state.settings))
        .await
        .unwrap();
    assert_eq!(now.invitations, 0);
    assert_eq!(
        invitation::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        purge::run(&app.state.db, bounded)
            .await
            .unwrap()
            .invitations,
        2
    );
    assert_eq!(
        invitation::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}
