//! Data migrations on a database that already holds rows.

use chrono::{Duration, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, NotSet, Set};
use uuid::Uuid;
use zygo::store::entities::{audit_event, membership, tenant, user};
use zygo::store::{self, TenantId, UserId};

use crate::helpers::fresh_database_url;

#[tokio::test]
async fn flows_that_predate_owners_are_given_their_tenants_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()));
    let db = sea_orm::Database::connect(&url).await.unwrap();
    // The schema of the release before flows had owners.
    Migrator::up(&db, Some(2)).await.unwrap();
    let now = Utc::now();
    let mut users = Vec::new();
    for n in 0..3 {
        let id = Uuid::new_v4();
        // Written without reading it back: this schema predates later columns of the entity.
        user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(format!("u{n}@example.com")),
            password_hash: Set("x".into()),
            login_count: Set(0),
            disabled: Set(false),
            created_at: Set(now),
            credentials_valid_after: NotSet,
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
        users.push(id);
    }
    let (with_admins, without) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [with_admins, without] {
        tenant::ActiveModel {
            id: Set(id),
            name: Set("T".into()),
            created_at: Set(now),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    // users[1] became Admin first, users[2] later; users[0] is an Editor from the start.
    for (user, role, at) in [
        (users[0], "Editor", now - Duration::hours(3)),
        (users[2], "Admin", now - Duration::hours(1)),
        (users[1], "Admin", now - Duration::hours(2)),
    ] {
        membership::ActiveModel {
            tenant_id: Set(with_admins),
            user_id: Set(user),
            role: Set(role.into()),
            created_at: Set(at),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    membership::ActiveModel {
        tenant_id: Set(without),
        user_id: Set(users[0]),
        role: Set("Viewer".into()),
        created_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    let (old, orphan) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, tenant) in [(old, with_admins), (orphan, without)] {
        let insert = Query::insert()
            .into_table(Alias::new("flows"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "name",
                    "definition",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                tenant.into(),
                "old".into(),
                serde_json::json!({}).into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }

    Migrator::up(&db, None).await.unwrap();
    let flow = store::flows::find(&db, TenantId(with_admins), old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flow.attrs.owner, Some(UserId(users[1])), "the first Admin");
    assert!(flow.attrs.labels.is_empty() && flow.attrs.editors.is_empty());
    let orphan = store::flows::find(&db, TenantId(without), orphan)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orphan.attrs.owner, None, "no Admin, no owner");
}

/// A fresh database (SQLite in the returned directory, or PostgreSQL when the tests run there)
/// with every migration before `migration` applied: the schema of the release before it.
async fn migrated_up_to(migration: &str) -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()));
    let db = sea_orm::Database::connect(&url).await.unwrap();
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == migration)
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    (dir, db)
}

#[tokio::test]
async fn shares_of_former_members_and_of_owners_go_and_former_members_flows_lose_their_owner() {
    // The schema of the release before shares followed membership.
    let (_dir, db) = migrated_up_to("m20261206_000003_shares_follow_membership").await;
    let now = Utc::now();
    let mut users = Vec::new();
    for n in 0..3 {
        let id = Uuid::new_v4();
        user::Entity::insert(user::ActiveModel {
            id: Set(id),
            email: Set(format!("u{n}@example.com")),
            password_hash: Set("x".into()),
            login_count: Set(0),
            disabled: Set(false),
            created_at: Set(now),
            credentials_valid_after: Set(None),
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
        users.push(id);
    }
    let (admin, left, viewer) = (UserId(users[0]), UserId(users[1]), UserId(users[2]));
    let tenant_id = Uuid::new_v4();
    tenant::ActiveModel {
        id: Set(tenant_id),
        name: Set("T".into()),
        created_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    // `left` was a member once; it is no longer.
    for (user, role) in [(admin, "Admin"), (viewer, "Viewer")] {
        membership::ActiveModel {
            tenant_id: Set(tenant_id),
            user_id: Set(user.0),
            role: Set(role.into()),
            created_at: Set(now),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let tenant = TenantId(tenant_id);
    let insert = |id: Uuid, owner: UserId| {
        Query::insert()
            .into_table(Alias::new("flows"))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "name",
                    "definition",
                    "owner_id",
                    "created_at",
                    "updated_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                id.into(),
                tenant_id.into(),
                "old".into(),
                serde_json::json!({}).into(),
                owner.0.into(),
                now.into(),
                now.into(),
            ])
            .to_owned()
    };
    let (admins, lefts) = (Uuid::new_v4(), Uuid::new_v4());
    db.execute(&insert(admins, admin)).await.unwrap();
    db.execute(&insert(lefts, left)).await.unwrap();
    for (flow, user, access) in [
        (admins, left, "read"),
        (admins, admin, "edit"),
        (admins, viewer, "read"),
        (lefts, viewer, "edit"),
    ] {
        let share = Query::insert()
            .into_table(Alias::new("flow_shares"))
            .columns(["flow_id", "user_id", "access"].map(Alias::new))
            .values_panic([flow.into(), user.0.into(), access.into()])
            .to_owned();
        db.execute(&share).await.unwrap();
    }

    Migrator::up(&db, None).await.unwrap();
    let kept = store::flows::find(&db, tenant, admins)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.attrs.owner, Some(admin));
    assert_eq!(kept.attrs.readers, vec![viewer], "the member's share stays");
    assert!(kept.attrs.editors.is_empty(), "the owner's share is gone");
    let orphan = store::flows::find(&db, tenant, lefts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orphan.attrs.owner, None, "a former member owns nothing");
    assert_eq!(orphan.attrs.editors, vec![viewer]);
}

#[tokio::test]
async fn an_audit_trail_written_before_the_chain_key_verifies_pages_and_grows_after_it() {
    use sea_orm::{DbBackend, IntoActiveModel, Statement, TransactionTrait};
    use zygo::store::audit::{self, Actor, Event, Filter, Trail, action};
    use zygo::store::page::ChainPage;

    // The schema whose events were keyed by their id, with a tenant index.
    let (_dir, db) = migrated_up_to("m20261207_000003_audit_events_keyed_by_chain").await;
    let tenant_id = Uuid::new_v4();
    tenant::ActiveModel {
        id: Set(tenant_id),
        name: Set("T".into()),
        created_at: Set(Utc::now()),
    }
    .insert(&db)
    .await
    .unwrap();
    let tenant = TenantId(tenant_id);
    let append = |tenant: Option<TenantId>, n: usize| {
        let db = db.clone();
        async move {
            let txn = db.begin().await.unwrap();
            let event = Event::new(
                tenant,
                &Actor::cli(),
                action::FLOW_CREATED,
                format!("flow:{n}"),
            );
            let seq = audit::record(&txn, event).await.unwrap();
            txn.commit().await.unwrap();
            seq
        }
    };
    for n in 0..5 {
        append(Some(tenant), n).await;
    }
    for n in 0..3 {
        append(None, n).await;
    }
    let intact = |reports: Vec<audit::ChainReport>| {
        reports
            .into_iter()
            .map(|r| {
                assert_eq!(r.broken, None, "{}", r.chain);
                (r.chain, r.events)
            })
            .collect::<Vec<_>>()
    };
    let chain = audit::chain_of(Some(tenant));
    assert_eq!(
        intact(audit::verify(&db, None).await.unwrap()),
        [("account".to_owned(), 3), (chain.clone(), 5)]
    );

    Migrator::up(&db, None).await.unwrap();
    // Every event kept as it was: the chains verify, and a tenant's trail pages along its key.
    assert_eq!(
        intact(audit::verify(&db, None).await.unwrap()),
        [("account".to_owned(), 3), (chain.clone(), 5)]
    );
    let page = |before| ChainPage::new(before, 2);
    let first = audit::list(&db, Trail::Tenant(tenant), &Filter::default(), page(None))
        .await
        .unwrap();
    let places: Vec<i64> = first.items.iter().map(|e| e.seq).collect();
    assert_eq!((places, first.next), (vec![5, 4], Some(4)));
    let last = audit::list(
        &db,
        Trail::Tenant(tenant),
        &Filter::default(),
        page(Some(2)),
    )
    .await
    .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(
        (last.items[0].target.as_deref(), last.next),
        (Some("flow:0"), None)
    );
    // The chain grows on, and a second event at a taken place is refused by the key.
    assert_eq!(append(Some(tenant), 5).await, 6);
    let mut twin = first.items[0].clone();
    twin.id = Uuid::new_v4();
    let refused = audit_event::Entity::insert(twin.into_active_model().reset_all())
        .exec_without_returning(&db)
        .await;
    assert!(refused.is_err(), "two events at place 5");
    // The id is no key any more (an event with another's id at a free place is stored), and
    // the tenant index is gone.
    let insert_at = |place: i64| {
        let mut copy = first.items[0].clone();
        copy.seq = place;
        audit_event::Entity::insert(copy.into_active_model().reset_all())
            .exec_without_returning(&db)
    };
    insert_at(99).await.expect("the same id at another place");
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_string(
        backend,
        format!("DELETE FROM audit_events WHERE chain = '{chain}' AND seq = 99"),
    ))
    .await
    .unwrap();
    let indexed = |name: &'static str| {
        let db = db.clone();
        async move {
            let sql = match backend {
                DbBackend::Postgres => {
                    format!("SELECT count(*) AS n FROM pg_indexes WHERE indexname = '{name}'")
                }
                _ => format!(
                    "SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
                ),
            };
            let row = db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "n").unwrap() == 1
        }
    };
    assert!(!indexed("idx_audit_events_tenant").await);
    // And back: the schema before (the id a key again, the tenant index), the same events.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(
        intact(audit::verify(&db, None).await.unwrap()),
        [("account".to_owned(), 3), (chain, 6)]
    );
    assert!(indexed("idx_audit_events_tenant").await);
    assert!(indexed("idx_audit_events_chain_seq").await);
    assert!(insert_at(98).await.is_err(), "the id is a key again");
}
