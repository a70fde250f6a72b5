//! The cost of the audit trail on a write, without its event and with it, side by side, on
//! SQLite and, when `ZYGO_BENCH_DATABASE` names a PostgreSQL server (an admin URL), on a fresh
//! database there. Three writes:
//!
//! - `role change (store)`: what `PUT /api/tenants/{id}/members/{user}` runs for a member
//!   (`store::invitations::set_role_or_invite`: the tenant's roles locked and read, the row
//!   updated, the invitation dropped);
//! - `flow update (store)`: what `PATCH /api/tenants/{id}/flows/{id}` runs for a rename
//!   (`store::flows::update_decided`: the flow read under its change lock, updated, read back);
//! - `role change (bare)`: one UPDATE in a transaction, the least a write can be, its event sent
//!   with the UPDATE (`audit::record_with`, as the store's writes do);
//! - `bare, event apart`: the same, its event sent as a statement of its own (`audit::record`),
//!   to show what riding on the change's statement saves.
//!
//! The store functions run unchanged; "without event" runs them inside
//! `audit::without_events`, which makes `record` and `record_with` write no event. Each round
//! runs every row, without and with its event back to back (which goes first alternates), so a
//! load burst from elsewhere hits all of them alike; each row prints the median time per write
//! over the rounds, and the median over the rounds of the with/without ratio within a round
//! (the pair ran seconds apart). Nothing here asserts a time.
//!
//! `cargo bench --bench audit_write` (or `scripts/bench-audit`).

use std::time::{Duration, Instant};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryTrait,
    TransactionTrait,
};
use uuid::Uuid;
use zygo::config::DatabaseSettings;
use zygo::store::audit::{self, Actor, Event, action};
use zygo::store::entities::membership;
use zygo::store::flows::FlowChanges;
use zygo::store::{self, TenantId, UserId};

const ROUNDS: usize = 20;
const WRITES: u32 = 50;

/// How a bare write sends its event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// In the UPDATE's statement (`audit::record_with`).
    Along,
    /// As a statement of its own (`audit::record`).
    Apart,
}

/// One role change, audited (its event sent as `sent` says) or not.
async fn write(
    db: &DatabaseConnection,
    tenant: TenantId,
    user: UserId,
    n: u32,
    audited: bool,
    sent: Sent,
) {
    let role = if n.is_multiple_of(2) {
        "Editor"
    } else {
        "Viewer"
    };
    let txn = db.begin().await.expect("begin");
    let update = membership::Entity::update_many()
        .col_expr(membership::Column::Role, Expr::value(role))
        .filter(membership::Column::TenantId.eq(tenant.0))
        .filter(membership::Column::UserId.eq(user.0));
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
        if sent == Sent::Along {
            let change = update.build(txn.get_database_backend());
            audit::record_with(&txn, event, change)
                .await
                .expect("update and record");
        } else {
            update.exec(&txn).await.expect("update");
            audit::record(&txn, event).await.expect("record");
        }
    } else {
        update.exec(&txn).await.expect("update");
    }
    txn.commit().await.expect("commit");
}

/// A member's role changed as the API does it.
async fn role_change_store(
    db: &DatabaseConnection,
    tenant: TenantId,
    admin: UserId,
    member: UserId,
    n: u32,
) {
    let role = if n.is_multiple_of(2) {
        "Editor"
    } else {
        "Viewer"
    };
    let actor = Actor {
        user: Some(admin),
        credential: Some("token:bench".into()),
    };
    store::invitations::set_role_or_invite(db, tenant, member, role, admin, &actor, |_| true)
        .await
        .expect("role change");
}

/// A flow renamed as the API does it.
async fn flow_update_store(
    db: &DatabaseConnection,
    tenant: TenantId,
    admin: UserId,
    flow: Uuid,
    n: u32,
) {
    let actor = Actor {
        user: Some(admin),
        credential: Some("token:bench".into()),
    };
    store::flows::update_decided(db, tenant, flow, &actor, |_| {
        Ok::<_, sea_orm::DbErr>(FlowChanges {
            name: Some(format!("flow {n}")),
            ..Default::default()
        })
    })
    .await
    .expect("flow update")
    .expect("the flow exists");
}

#[derive(Clone, Copy)]
enum Write {
    RoleChangeStore,
    FlowUpdateStore,
    RoleChangeBare,
    RoleChangeBareApart,
}

impl Write {
    fn name(self) -> &'static str {
        match self {
            Write::RoleChangeStore => "role change (store)",
            Write::FlowUpdateStore => "flow update (store)",
            Write::RoleChangeBare => "role change (bare)",
            Write::RoleChangeBareApart => "bare, event apart",
        }
    }
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
    let member = UserId(
        store::users::create(
            &db,
            &format!("{}@bench.example", Uuid::new_v4()),
            "x".into(),
        )
        .await
        .expect("member")
        .id,
    );
    store::members::set_role(&db, tenant, member, "Viewer", &Actor::default(), |_| true)
        .await
        .expect("member added");
    let flow = store::flows::create(
        &db,
        tenant,
        user,
        "bench",
        serde_json::json!({ "steps": [1, 2, 3] }),
        &["bench".to_owned()],
        &Actor::default(),
    )
    .await
    .expect("flow")
    .id;
    const KINDS: [Write; 4] = [
        Write::RoleChangeStore,
        Write::FlowUpdateStore,
        Write::RoleChangeBare,
        Write::RoleChangeBareApart,
    ];
    // Per row: each round's time per write without and with the event.
    let mut times = [(); KINDS.len()].map(|()| (Vec::new(), Vec::new()));
    for round in 0..ROUNDS {
        for (kind, (plain, audited)) in KINDS.iter().zip(&mut times) {
            // Which of the pair goes first alternates, so a drift in the machine's load
            // favours neither.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for with_event in order {
                let writes = async {
                    let started = Instant::now();
                    for n in 0..WRITES {
                        let n = n + round as u32;
                        match kind {
                            Write::RoleChangeStore => {
                                role_change_store(&db, tenant, user, member, n).await
                            }
                            Write::FlowUpdateStore => {
                                flow_update_store(&db, tenant, user, flow, n).await
                            }
                            Write::RoleChangeBare => {
                                write(&db, tenant, user, n, with_event, Sent::Along).await
                            }
                            Write::RoleChangeBareApart => {
                                write(&db, tenant, user, n, with_event, Sent::Apart).await
                            }
                        }
                    }
                    started.elapsed() / WRITES
                };
                if with_event {
                    audited.push(writes.await);
                } else {
                    plain.push(audit::without_events(writes).await);
                }
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (kind, (plain, audited)) in KINDS.iter().zip(times) {
        // The ratio within each round (the pair ran seconds apart), then its median.
        let ratio = median(
            plain
                .iter()
                .zip(&audited)
                .map(|(p, a)| a.as_secs_f64() / p.as_secs_f64())
                .collect(),
        );
        let micros = |v: Vec<Duration>| median(v.iter().map(|d| d.as_secs_f64() * 1e6).collect());
        let (plain, audited) = (micros(plain), micros(audited));
        println!(
            "{name:<9} {:<20} without event {plain:>8.1} µs   with event {audited:>8.1} µs   {:+.1} %",
            kind.name(),
            (ratio - 1.0) * 100.0
        );
    }
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
