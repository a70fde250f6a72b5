//! The cost of the audit trail on a write: one membership role change per transaction, without
//! its event and with it (`store::audit::record` in the same transaction), side by side, on
//! SQLite and, when `ZYGO_BENCH_DATABASE` names a PostgreSQL server (an admin URL), on a fresh
//! database there. Rounds alternate the two rows so a load burst from elsewhere hits both alike;
//! each row prints the median per write over the rounds. Nothing here asserts a time.
//!
//! `cargo bench --bench audit_write` (or `scripts/bench-audit`).

use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;
use zygo::config::DatabaseSettings;
use zygo::store::audit::{self, Actor, Event, action};
use zygo::store::entities::membership;
use zygo::store::{self, TenantId, UserId};

const ROUNDS: usize = 10;
const WRITES: u32 = 100;

/// One role change, audited or not.
async fn write(db: &DatabaseConnection, tenant: TenantId, user: UserId, n: u32, audited: bool) {
    let role = if n.is_multiple_of(2) {
        "Editor"
    } else {
        "Viewer"
    };
    let txn = db.begin().await.expect("begin");
    membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::TenantId.eq(tenant.0))
        .filter(membership::Column::UserId.eq(user.0))
        .exec(&txn)
        .await
        .expect("update");
    if audited {
        let actor = Actor {
            user: Some(user),
            credential: Some("token:bench".into()),
        };
        let event = Event::new(
            Some(tenant),
            &actor,
            action::MEMBER_ROLE_CHANGED,
            format!("user:{}", user.0),
        )
        .before(serde_json::json!({ "role": "Admin" }))
        .after(serde_json::json!({ "role": role }));
        audit::record(&txn, event).await.expect("record");
    }
    txn.commit().await.expect("commit");
}

async fn run(name: &str, settings: DatabaseSettings) {
    let db = store::open(&settings).await.expect("open");
    let user = UserId(
        store::users::create(
            &db,
            &format!("{}@bench.example", Uuid::new_v4()),
            "x".into(),
        )
        .await
        .expect("user")
        .id,
    );
    let tenant = TenantId(Uuid::new_v4());
    store::tenants::create(&db, tenant, "Bench", user, "Admin", &Actor::default())
        .await
        .expect("tenant");
    let (mut plain, mut audited) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for (with_event, into) in [(false, &mut plain), (true, &mut audited)] {
            let started = Instant::now();
            for n in 0..WRITES {
                write(&db, tenant, user, n + round as u32, with_event).await;
            }
            into.push(started.elapsed() / WRITES);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e6
    };
    let (plain, audited) = (median(&mut plain), median(&mut audited));
    println!(
        "{name:<10} role change  without event {plain:>9.1} µs   with event {audited:>9.1} µs   +{:.1} %",
        (audited / plain - 1.0) * 100.0
    );
    let report = audit::verify(&db, Some(tenant)).await.expect("verify");
    assert!(report.iter().all(|r| r.broken.is_none()));
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        run(
            "sqlite",
            DatabaseSettings::new(None, dir.path().to_path_buf()),
        )
        .await;
        if let Ok(admin) = std::env::var("ZYGO_BENCH_DATABASE") {
            let name = format!("zygo_bench_{}", Uuid::new_v4().simple());
            let admin_db = sea_orm::Database::connect(&admin).await.expect("connect");
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin_db,
                &format!("CREATE DATABASE {name}"),
            )
            .await
            .expect("create database");
            let (base, _) = admin.rsplit_once('/').expect("admin URL names a database");
            let url = format!("{base}/{name}");
            run(
                "postgres",
                DatabaseSettings::new(Some(url), dir.path().to_path_buf()),
            )
            .await;
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &admin_db,
                &format!("DROP DATABASE {name} WITH (FORCE)"),
            )
            .await;
        }
    });
}
