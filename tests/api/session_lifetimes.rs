//! Session lifetimes enforced server-side: idle timeout, absolute lifetime, and a session store
//! that cannot be read is a 503, never a pass.

use std::time::Duration;

use crate::helpers::{Cred, PASSWORD, TestApp, spawn_with, test_settings};

async fn app_with(lifetime: Duration, idle: Duration) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.session_lifetime = lifetime;
    settings.session_idle = idle;
    let app = spawn_with(settings, dir).await;
    app.add_user("erin@example.com", PASSWORD).await;
    app
}

#[tokio::test]
async fn an_idle_session_expires_but_a_used_one_lives_on() {
    let app = app_with(Duration::from_secs(3600), Duration::from_secs(2)).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    // Used every 1.2 s, it outlives the 2 s idle timeout several times over.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        app.get("/api/me", &cred).await.assert_status(200);
    }
    tokio::time::sleep(Duration::from_millis(2300)).await;
    app.get("/api/me", &cred)
        .await
        .assert_problem(401, "session_invalid");
    // Dead for good: it was deleted, not just refused.
    app.get("/api/me", &cred)
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_busy() {
    let app = app_with(Duration::from_secs(3), Duration::from_secs(3600)).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        app.get("/api/me", &cred).await.assert_status(200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.get("/api/me", &cred)
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn an_unreachable_session_store_is_a_503_never_a_pass() {
    let app = app_with(Duration::from_secs(3600), Duration::from_secs(3600)).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    app.get("/api/me", &cred).await.assert_status(200);
    app.state.db.clone().close().await.unwrap();
    let reply = app.get("/api/me", &cred).await;
    reply.assert_problem(503, "unavailable");
    assert_eq!(
        reply.body["detail"],
        "the database is unreachable; retry later"
    );
    // A state-changing request is not let through either.
    app.post(
        "/api/tenants",
        &cred,
        serde_json::json!({"name": "during the outage"}),
    )
    .await
    .assert_problem(503, "unavailable");
}
