//! Server-side sessions, keyed by the SHA-256 of the cookie value.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entities::session;
use super::{TenantId, UserId};

pub use session::Model as Session;

pub async fn create(
    db: &impl ConnectionTrait,
    id_hash: String,
    user: UserId,
    tenant: Option<TenantId>,
    expires_at: DateTime<Utc>,
) -> Result<Session, DbErr> {
    let now = Utc::now();
    session::ActiveModel {
        id_hash: Set(id_hash),
        user_id: Set(user.0),
        current_tenant_id: Set(tenant.map(|t| t.0)),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await
}

pub async fn find(db: &impl ConnectionTrait, id_hash: &str) -> Result<Option<Session>, DbErr> {
    session::Entity::find_by_id(id_hash.to_owned())
        .one(db)
        .await
}

pub async fn set_tenant(
    db: &impl ConnectionTrait,
    id_hash: &str,
    tenant: TenantId,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::CurrentTenantId, Expr::value(tenant.0))
        .filter(session::Column::IdHash.eq(id_hash))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn touch(db: &impl ConnectionTrait, id_hash: &str) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(Utc::now()))
        .filter(session::Column::IdHash.eq(id_hash))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id_hash: &str) -> Result<(), DbErr> {
    session::Entity::delete_by_id(id_hash.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of the user (log out everywhere, password change).
pub async fn delete_for_user(db: &impl ConnectionTrait, user: UserId) -> Result<u64, DbErr> {
    let result = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.0))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
