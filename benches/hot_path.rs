//! The hot path of a token-authenticated request, measured piece by piece and end to end.
//!
//! `cargo bench --bench hot_path` prints figures; nothing here asserts a time. Each loop is bounded.
//! The service runs in-process on 127.0.0.1 with a fresh SQLite database.

use std::time::{Duration, Instant};

use uuid::Uuid;
use zygo::auth::password;
use zygo::authz::{Action, Resource};
use zygo::config::{DatabaseSettings, Secret, Settings};
use zygo::startup::Application;
use zygo::store::{self, TenantId, UserId};

fn report(name: &str, iterations: u32, elapsed: Duration) {
    let per = elapsed / iterations;
    println!(
        "{name:<44} {iterations:>7} runs  {:>9.2} µs/op",
        per.as_secs_f64() * 1e6
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::new(DatabaseSettings::new(None, dir.path().join("data")));
    settings.bind = "127.0.0.1:0".into();
    settings.policies_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    settings.token_secret = Some(Secret::new(vec![7; 48]));
    settings.watch_policies = false;
    let app = Application::build(settings).await.expect("app");
    let address = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    let hash = password::hash("bench-password").expect("hash");
    let user = UserId(
        store::users::create(&state.db, "bench@example.com", hash)
            .await
            .expect("user")
            .id,
    );
    let tenant = TenantId(Uuid::new_v4());
    store::tenants::create(&state.db, tenant, "Bench", user, "Admin")
        .await
        .expect("tenant");
    store::flows::create(&state.db, tenant, "one", serde_json::json!({"a": 1}))
        .await
        .expect("flow");
    let token = state.authn.keys.mint(user, 600).expect("token");

    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        state.authn.keys.verify(&token).expect("valid");
    }
    report(
        "HS256 verify (strict checks included)",
        n,
        started.elapsed(),
    );

    let caller = state.authn.from_token(&token).await.expect("caller");
    let started = Instant::now();
    for _ in 0..n {
        state.authn.from_token(&token).await.expect("caller");
    }
    report(
        "authenticate token (verify + user cache)",
        n,
        started.elapsed(),
    );

    let started = Instant::now();
    for _ in 0..n {
        state
            .authz
            .require(&caller, tenant, Action::ListFlows, Resource::Tenant)
            .await
            .expect("allowed");
    }
    report(
        "authorize (role cache + Cedar decision)",
        n,
        started.elapsed(),
    );

    let client = reqwest::Client::new();
    let url = format!("{address}/api/tenants/{tenant}/flows");
    let requests = 2_000;
    for _ in 0..100 {
        client
            .get(&url)
            .header("token", &token)
            .send()
            .await
            .expect("warm");
    }
    let started = Instant::now();
    for _ in 0..requests {
        let reply = client
            .get(&url)
            .header("token", &token)
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), 200);
        reply.bytes().await.expect("body");
    }
    report(
        "GET …/flows over HTTP, one client in series",
        requests,
        started.elapsed(),
    );
}
