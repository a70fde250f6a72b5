//! The flow list of a Viewer, decided by the policies: the first page of 100, and a page in the
//! middle, for tenants of 1,000, 10,000 and 100,000 flows of which 10 % are labelled
//! `confidential` and so hidden from a Viewer by the shipped `confidential-flows` policy (pushed
//! down to SQL). A second run adds a policy that hides the same flows in a form without SQL
//! translation (the list then decides each row it reads), to show what the fallback costs.
//!
//! `cargo bench --bench flow_list` prints figures; nothing asserts a time (`ZYGO_BENCH_SIZES`
//! overrides the sizes). SQLite in a temporary
//! folder by default; `ZYGO_BENCH_DATABASE=postgres://user@host:port/db` runs the same on a fresh
//! database created on that server.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;
use zygo::auth::password;
use zygo::config::{DatabaseSettings, Secret, Settings};
use zygo::startup::Application;
use zygo::store::entities::{flow, flow_label};
use zygo::store::{self, TenantId, UserId};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const ROUNDS: usize = 60;

/// The same flows hidden again, in a form the list cannot translate to SQL.
const OPAQUE: &str = r#"// Bench: hides confidential flows through a comparison the list does not push down.
@id("bench-opaque-confidential")
forbid (
  principal in Zygo::Role::"Viewer",
  action == Zygo::Action::"ReadFlow",
  resource is Zygo::Flow
)
when
{
  resource.labels.contains("confidential") == true &&
  !(principal in Zygo::Role::"Admin")
};
"#;

async fn fresh_postgres(admin: &str) -> String {
    let name = format!("zygo_bench_{}", Uuid::new_v4().simple());
    let (base, _) = admin.rsplit_once('/').expect("the URL names a database");
    let db = sea_orm::Database::connect(admin).await.expect("connect");
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    db.close().await.expect("close");
    format!("{base}/{name}")
}

/// `n` flows in `tenant`, one in ten labelled `confidential`, inserted in bulk.
async fn fill(db: &impl ConnectionTrait, tenant: TenantId, owner: UserId, n: usize) {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let id = Uuid::new_v4();
        let at = start + chrono::Duration::microseconds(i as i64);
        rows.push(flow::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant.0),
            name: Set(format!("flow {i}")),
            definition: Set(serde_json::json!({"steps": [i]}).to_string()),
            owner_id: Set(Some(owner.0)),
            created_at: Set(at),
            updated_at: Set(at),
        });
        if i % 10 == 3 {
            labels.push(flow_label::ActiveModel {
                flow_id: Set(id),
                label: Set("confidential".into()),
            });
        }
        if rows.len() == 1_000 {
            flow::Entity::insert_many(std::mem::take(&mut rows))
                .exec(db)
                .await
                .expect("flows");
        }
    }
    if !rows.is_empty() {
        flow::Entity::insert_many(rows)
            .exec(db)
            .await
            .expect("flows");
    }
    for chunk in labels.chunks(1_000) {
        flow_label::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("labels");
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn page(client: &reqwest::Client, url: &str, token: &str) -> (usize, Option<String>) {
    let reply = client
        .get(url)
        .header("token", token)
        .send()
        .await
        .expect("request");
    assert!(reply.status().is_success(), "{}", reply.status());
    let body: serde_json::Value = reply.json().await.expect("json");
    (
        body["items"].as_array().map_or(0, Vec::len),
        body["next_cursor"].as_str().map(str::to_owned),
    )
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("policies");
    let shipped = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(&shipped).expect("policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, policies.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let url = match std::env::var("ZYGO_BENCH_DATABASE") {
        Ok(admin) if !admin.is_empty() => Some(fresh_postgres(&admin).await),
        _ => None,
    };
    let backend = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut settings = Settings::new(DatabaseSettings::new(url, dir.path().join("data")));
    settings.bind = "127.0.0.1:0".into();
    settings.policies_dir = policies.clone();
    settings.token_secret = Some(Secret::new(vec![7; 48]));
    settings.watch_policies = false;
    let app = Application::build(settings).await.expect("app");
    let address = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    let hash = password::hash("bench-password").expect("hash");
    let admin = UserId(
        store::users::create(&state.db, "admin@example.com", hash.clone())
            .await
            .expect("user")
            .id,
    );
    let viewer = UserId(
        store::users::create(&state.db, "viewer@example.com", hash)
            .await
            .expect("user")
            .id,
    );
    let (token, _) = state
        .authn
        .keys
        .mint(viewer, 3_600, None, false)
        .expect("token");
    let client = reqwest::Client::new();
    // `ZYGO_BENCH_SIZES=1000,10000` for a quicker run.
    let sizes: Vec<usize> = std::env::var("ZYGO_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| SIZES.to_vec());
    let mut tenants = Vec::new();
    for size in sizes {
        let tenant = TenantId(Uuid::new_v4());
        store::tenants::create(
            &state.db,
            tenant,
            &format!("T{size}"),
            admin,
            "Admin",
            &zygo::store::audit::Actor::default(),
        )
        .await
        .expect("tenant");
        store::members::set_role(
            &state.db,
            tenant,
            viewer,
            "Viewer",
            &zygo::store::audit::Actor::default(),
            |_| true,
        )
        .await
        .expect("viewer");
        let started = Instant::now();
        fill(&state.db, tenant, admin, size).await;
        println!(
            "{backend}: {size} flows inserted in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        tenants.push((size, tenant));
    }

    for (mode, extra) in [
        ("pushed down to SQL", None),
        ("decided row by row (fallback)", Some(OPAQUE)),
    ] {
        if let Some(text) = extra {
            std::fs::write(policies.join("bench.cedar"), text).expect("write");
            state
                .authz
                .policy_store()
                .reload(true)
                .expect("the bench policy loads");
        }
        println!(
            "\n{backend}, a Viewer, 10 % hidden, {mode}: GET …/flows?limit=100 over HTTP, median of {ROUNDS}"
        );
        println!(
            "{:>8}  {:>14}  {:>16}  {:>6}",
            "flows", "first page ms", "middle page ms", "items"
        );
        for (size, tenant) in &tenants {
            let base = format!("{address}/api/tenants/{tenant}/flows?limit=100");
            // The cursor of the page at the middle of the list.
            let mut cursor = None;
            let mut seen = 0;
            while seen < size / 2 {
                let url = match &cursor {
                    Some(c) => format!("{base}&cursor={c}"),
                    None => base.clone(),
                };
                let (items, next) = page(&client, &url, &token).await;
                seen += items.max(1) * 10 / 9;
                cursor = next;
                if cursor.is_none() {
                    break;
                }
            }
            let middle = match &cursor {
                Some(c) => format!("{base}&cursor={c}"),
                None => base.clone(),
            };
            let mut first = Vec::new();
            let mut deep = Vec::new();
            let mut items = 0;
            for _ in 0..ROUNDS {
                let started = Instant::now();
                items = page(&client, &base, &token).await.0;
                first.push(started.elapsed());
                let started = Instant::now();
                page(&client, &middle, &token).await;
                deep.push(started.elapsed());
            }
            println!(
                "{size:>8}  {:>14.2}  {:>16.2}  {items:>6}",
                median(first).as_secs_f64() * 1e3,
                median(deep).as_secs_f64() * 1e3,
            );
        }
    }
}
