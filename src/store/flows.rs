//! Flows: tenant-owned documents with a JSON `definition`. Every function takes the tenant.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use serde_json::Value;
use uuid::Uuid;

use super::TenantId;
use super::entities::flow;
use super::page::{Keyset, Position, Rows};

pub use flow::Model as Flow;

/// Fields to change; `None` keeps the stored value.
#[derive(Debug, Default)]
pub struct FlowChanges {
    pub name: Option<String>,
    pub definition: Option<Value>,
}

/// A page of the tenant's flows, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    page: Keyset,
) -> Result<Rows<Flow>, DbErr> {
    let select = flow::Entity::find().filter(flow::Column::TenantId.eq(tenant.0));
    let rows = page
        .apply(select, flow::Column::CreatedAt, flow::Column::Id)
        .all(db)
        .await?;
    Ok(page.collect(rows, |f| Position {
        created_at: f.created_at,
        id: f.id,
    }))
}

pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Flow>, DbErr> {
    flow::Entity::find_by_id(id)
        .filter(flow::Column::TenantId.eq(tenant.0))
        .one(db)
        .await
}

pub async fn create(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    name: &str,
    definition: Value,
) -> Result<Flow, DbErr> {
    let now = Utc::now();
    flow::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant.0),
        name: Set(name.to_owned()),
        definition: Set(definition),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Applies the changes; `None` when the flow does not exist in this tenant.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
    changes: FlowChanges,
) -> Result<Option<Flow>, DbErr> {
    let Some(existing) = find(db, tenant, id).await? else {
        return Ok(None);
    };
    // Nothing to change: the flow stays as it is, `updated_at` included.
    if changes.name.is_none() && changes.definition.is_none() {
        return Ok(Some(existing));
    }
    let mut active: flow::ActiveModel = existing.into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(definition) = changes.definition {
        active.definition = Set(definition);
    }
    active.updated_at = Set(Utc::now());
    Ok(Some(active.update(db).await?))
}

/// Deletes the flow; false when it does not exist in this tenant.
pub async fn delete(db: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let result = flow::Entity::delete_many()
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}
