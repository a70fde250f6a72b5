//! Several instances on one database, and many writers on one instance.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::cli::zygo_command;
use crate::helpers::{
    Cred, PASSWORD, World, backend, postgres_admin_url, spawn_with, test_settings, time_until,
};

/// The bound the issue sets on cross-instance staleness (a correctness bound, not a benchmark).
const BOUND: Duration = Duration::from_secs(1);

/// Two instances on one database with the same token secret and a TTL far above the bound, so
/// only the invalidation signal can explain a change seen within it.
async fn two_instances() -> (World, crate::helpers::TestApp, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.cache_ttl = Duration::from_secs(120);
    let a = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    let b = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    (World::on(a).await, b, data)
}

#[tokio::test]
async fn instances_starting_together_on_a_fresh_postgres_database_migrate_it_once() {
    if postgres_admin_url().is_none() {
        eprintln!("skipped on {}: one SQLite file has one server", backend());
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(data.path());
    let (a, b, c) = tokio::join!(
        zygo::startup::Application::build(settings.clone()),
        zygo::startup::Application::build(settings.clone()),
        zygo::startup::Application::build(settings),
    );
    for app in [a, b, c] {
        app.expect("every instance starts");
    }
}

#[tokio::test]
async fn sessions_and_tokens_from_one_instance_work_on_another() {
    let (world, b, _data) = two_instances().await;
    let (cookie, _) = world.app.login("bob@example.com", PASSWORD).await;
    let me = b.get("/api/me", &Cred::Cookie(cookie.clone())).await;
    assert_eq!(me.assert_status(200)["email"], "bob@example.com");
    assert_eq!(me.body["current_tenant_id"], world.acme.to_string());

    let token = b.token(&Cred::Cookie(cookie.clone()), None).await;
    world
        .app
        .get(
            &format!("/api/tenants/{}/flows", world.acme),
            &Cred::Token(token),
        )
        .await
        .assert_status(200);

    // Logging out on one instance ends the session on the other.
    world
        .app
        .request(
            reqwest::Method::POST,
            "/api/logout",
            &Cred::Cookie(cookie.clone()),
            None,
        )
        .await
        .assert_status(204);
    b.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
}

#[tokio::test]
async fn a_membership_change_through_one_instance_is_enforced_by_another_within_a_second() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "skipped on {}: instances are signalled through PostgreSQL LISTEN/NOTIFY",
            backend()
        );
        return;
    }
    let (world, b_app, data) = two_instances().await;
    let admin = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    // Shared references, so the polling closures can copy them into their futures.
    let (b, bob, carol, dave, flows) = (&b_app, &bob, &carol, &dave, flows.as_str());

    // B caches Bob as Editor (he may create flows); A demotes him to Viewer.
    b.post(flows, bob, json!({"name": "before"}))
        .await
        .assert_status(201);
    world
        .app
        .put(
            &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
            &admin,
            json!({"role": "Viewer"}),
        )
        .await
        .assert_status(200);
    let demoted = time_until(Duration::from_secs(5), move || async move {
        b.post(flows, bob, json!({"name": "poll"})).await.status == 403
    })
    .await
    .expect("B enforces the demotion");

    // B caches Carol as a member; A removes her.
    b.get(flows, carol).await.assert_status(200);
    world
        .app
        .delete(
            &format!("/api/tenants/{}/members/{}", world.acme, world.carol),
            &admin,
        )
        .await
        .assert_status(204);
    let removed = time_until(Duration::from_secs(5), move || async move {
        b.get(flows, carol).await.status == 403
    })
    .await
    .expect("B enforces the removal");

    // The admin CLI, run next to both servers, signals them too.
    b.get(flows, bob).await.assert_status(200);
    let cli = zygo_command(data.path())
        .env("ZYGO_DATABASE_URL", &world.app.state.settings.database.url)
        .args([
            "member",
            "remove",
            &world.acme.to_string(),
            "bob@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let cli_removed = time_until(Duration::from_secs(5), move || async move {
        b.get(flows, bob).await.status == 403
    })
    .await
    .expect("B enforces the CLI's removal");

    // A user disabled from the CLI is refused by B (the user-status cache).
    b.get("/api/me", dave).await.assert_status(200);
    let cli = zygo_command(data.path())
        .env("ZYGO_DATABASE_URL", &world.app.state.settings.database.url)
        .args(["user", "disable", "dave@example.com"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let disabled = time_until(Duration::from_secs(5), move || async move {
        b.get("/api/me", dave).await.status == 401
    })
    .await
    .expect("B refuses the disabled user");

    println!(
        "cross-instance invalidation latency: demotion via A {demoted:?}, removal via A {removed:?}, \
         removal via CLI {cli_removed:?}, user disabled via CLI {disabled:?} (bound {BOUND:?})"
    );
    for (what, took) in [
        ("demotion", demoted),
        ("removal", removed),
        ("CLI removal", cli_removed),
        ("CLI disable", disabled),
    ] {
        assert!(
            took < BOUND,
            "{what} took {took:?} to reach the other instance"
        );
    }
}

#[tokio::test]
async fn without_a_signal_the_cache_ttl_still_bounds_how_stale_another_instance_gets() {
    // Two instances with a 1 s TTL; on SQLite there is no signal at all, so only the TTL acts.
    let ttl = Duration::from_secs(1);
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.cache_ttl = ttl;
    let a = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    let b = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    let world = World::on(a).await;
    let carol = Cred::Token(world.token_of("carol").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    b.get(&flows, &carol).await.assert_status(200);
    // Removed straight in the database, as a process that signals nobody would.
    zygo::store::members::remove(
        &world.app.state.db,
        world.acme,
        world.carol,
        &zygo::store::audit::Actor::default(),
        |_| true,
    )
    .await
    .unwrap();
    let (b, carol, flows) = (&b, &carol, flows.as_str());
    let took = time_until(Duration::from_secs(10), move || async move {
        b.get(flows, carol).await.status == 403
    })
    .await
    .expect("B enforces the removal");
    println!("unsignalled change reached the other instance after {took:?} (TTL {ttl:?})");
    assert!(took <= ttl + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_on_one_instance_never_get_a_server_error() {
    // Fifty logins to one account from one address at once would be throttled (every attempt is
    // counted on the account and the address before its password check, see the login tests);
    // this test is about the database, so the limits are lifted.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.login_failures_per_account_and_address = 1_000;
    settings.login_failures_per_account = 1_000;
    settings.login_failures_per_address = 1_000;
    let world = Arc::new(
        World::on(crate::helpers::spawn_with(settings, tempfile::tempdir().unwrap()).await).await,
    );
    let editor = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let mut writers = Vec::new();
    for i in 0..50 {
        let world = world.clone();
        let editor = editor.clone();
        let flows = flows.clone();
        writers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            // A login writes the counter and a session; flows are created, changed and deleted.
            let login = world
                .app
                .post(
                    "/api/login",
                    &Cred::None,
                    json!({"email": "alice@example.com", "password": PASSWORD}),
                )
                .await;
            statuses.push(("login", login.status.as_u16(), login.body.clone()));
            let created = world
                .app
                .post(&flows, &editor, json!({"name": format!("flow {i}")}))
                .await;
            statuses.push(("create", created.status.as_u16(), created.body.clone()));
            if let Some(id) = created.body["id"].as_str() {
                let path = format!("{flows}/{id}");
                let patched = world
                    .app
                    .patch(&path, &editor, json!({"definition": {"n": i}}))
                    .await;
                statuses.push(("patch", patched.status.as_u16(), patched.body.clone()));
                if i % 2 == 0 {
                    let deleted = world.app.delete(&path, &editor).await;
                    statuses.push(("delete", deleted.status.as_u16(), deleted.body.clone()));
                }
            }
            statuses
        }));
    }
    let mut replies = Vec::new();
    for writer in writers {
        replies.extend(
            tokio::time::timeout(Duration::from_secs(60), writer)
                .await
                .expect("writers finish")
                .unwrap(),
        );
    }
    let failures: Vec<_> = replies
        .iter()
        .filter(|(_, status, _)| *status >= 500)
        .collect();
    assert!(failures.is_empty(), "server errors: {failures:?}");
    for (what, status, body) in &replies {
        assert!(
            matches!(
                (*what, *status),
                ("login", 200) | ("create", 201) | ("patch", 200) | ("delete", 204)
            ),
            "{what} answered {status}: {body}"
        );
    }
    let me = world
        .app
        .get("/api/me", &Cred::Token(world.token_of("alice").await))
        .await;
    assert_eq!(me.assert_status(200)["login_count"], 51);
    let listed = world.app.get(&flows, &editor).await;
    assert_eq!(
        listed.assert_status(200)["items"].as_array().unwrap().len(),
        25
    );
}
