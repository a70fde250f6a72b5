//! Tenants. A tenant is created together with its first member, in one transaction.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QueryTrait, Set, TransactionTrait,
};

use super::audit::{self, Actor, Event, action};
use super::entities::{membership, tenant};
use super::page::{Keyset, Position, Rows};
use super::{TenantId, UserId};

pub use tenant::Model as Tenant;

/// Creates a tenant whose first member is `creator` with `role`.
pub async fn create(
    db: &DatabaseConnection,
    id: TenantId,
    name: &str,
    creator: UserId,
    role: &str,
    actor: &Actor,
) -> Result<Tenant, sea_orm::DbErr> {
    let txn = db.begin().await?;
    let now = Utc::now();
    let tenant = tenant::ActiveModel {
        id: Set(id.0),
        name: Set(name.to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let first_member = membership::Entity::insert(membership::ActiveModel {
        tenant_id: Set(tenant.id),
        user_id: Set(creator.0),
        role: Set(role.to_owned()),
        created_at: Set(now),
    })
    .build(txn.get_database_backend());
    let event = Event::new(
        Some(id),
        actor,
        action::TENANT_CREATED,
        format!("tenant:{}", id.0),
    )
    .after(serde_json::json!({
        "name": name,
        "first_member": creator.0,
        "role": role,
    }));
    audit::record_with(&txn, event, first_member).await?;
    txn.commit().await?;
    Ok(tenant)
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: TenantId,
) -> Result<Option<Tenant>, sea_orm::DbErr> {
    tenant::Entity::find_by_id(id.0).one(db).await
}

/// A page of the tenants a user belongs to, with the user's role in each, in the order the user
/// joined them.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user: UserId,
    page: Keyset,
) -> Result<Rows<(Tenant, String)>, sea_orm::DbErr> {
    let select = membership::Entity::find().filter(membership::Column::UserId.eq(user.0));
    let rows = page
        .apply(
            select,
            membership::Column::CreatedAt,
            membership::Column::TenantId,
        )
        .find_also_related(tenant::Entity)
        .all(db)
        .await?;
    let rows = page.collect(rows, |(m, _)| Position {
        created_at: m.created_at,
        id: m.tenant_id,
    });
    Ok(Rows {
        // A membership whose tenant vanished between the two reads is left out.
        items: rows
            .items
            .into_iter()
            .filter_map(|(m, t)| t.map(|t| (t, m.role)))
            .collect(),
        next: rows.next,
    })
}

/// Every tenant a user belongs to, with the user's role in each, by name (for `GET /api/me`,
/// which shows them all, and the demo seed).
pub async fn all_for_user(
    db: &impl ConnectionTrait,
    user: UserId,
) -> Result<Vec<(Tenant, String)>, sea_orm::DbErr> {
    let rows = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user.0))
        .find_also_related(tenant::Entity)
        .all(db)
        .await?;
    let mut tenants: Vec<(Tenant, String)> = rows
        .into_iter()
        .filter_map(|(m, t)| t.map(|t| (t, m.role)))
        .collect();
    tenants.sort_by(|a, b| a.0.name.cmp(&b.0.name).then(a.0.id.cmp(&b.0.id)));
    Ok(tenants)
}

/// The user's memberships, oldest first: (tenant, role).
pub async fn memberships_oldest_first(
    db: &impl ConnectionTrait,
    user: UserId,
) -> Result<Vec<(TenantId, String)>, sea_orm::DbErr> {
    Ok(membership::Entity::find()
        .filter(membership::Column::UserId.eq(user.0))
        .order_by_asc(membership::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|m| (TenantId(m.tenant_id), m.role))
        .collect())
}
