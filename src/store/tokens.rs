//! Issued tokens and revoked token families.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};

use super::UserId;
use super::entities::{issued_token, revoked_family};

pub use issued_token::Model as IssuedToken;

/// Records a minted token.
pub async fn record(
    db: &impl ConnectionTrait,
    jti: &str,
    user: UserId,
    family: &str,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    issued_token::ActiveModel {
        jti: Set(jti.to_owned()),
        user_id: Set(user.0),
        family: Set(family.to_owned()),
        issued_at: Set(issued_at),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The token with this `jti`, if it belongs to `user` (another user's token is not found).
pub async fn find_for_user(
    db: &impl ConnectionTrait,
    jti: &str,
    user: UserId,
) -> Result<Option<IssuedToken>, DbErr> {
    issued_token::Entity::find_by_id(jti.to_owned())
        .filter(issued_token::Column::UserId.eq(user.0))
        .one(db)
        .await
}

/// Whether the family is revoked.
pub async fn is_revoked(db: &impl ConnectionTrait, family: &str) -> Result<bool, DbErr> {
    Ok(revoked_family::Entity::find_by_id(family.to_owned())
        .one(db)
        .await?
        .is_some())
}

/// Revokes families (idempotent).
pub async fn revoke(
    db: &impl ConnectionTrait,
    user: UserId,
    families: &[String],
) -> Result<(), DbErr> {
    if families.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    revoked_family::Entity::insert_many(families.iter().map(|family| {
        revoked_family::ActiveModel {
            family: Set(family.clone()),
            user_id: Set(user.0),
            revoked_at: Set(now),
        }
    }))
    .on_conflict_do_nothing_on([revoked_family::Column::Family])
    .exec(db)
    .await?;
    Ok(())
}

/// Every family of the user that still has a live token.
pub async fn live_families(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<String>, DbErr> {
    issued_token::Entity::find()
        .select_only()
        .column(issued_token::Column::Family)
        .distinct()
        .filter(issued_token::Column::UserId.eq(user.0))
        .filter(issued_token::Column::ExpiresAt.gt(Utc::now()))
        .into_tuple::<String>()
        .all(db)
        .await
}
