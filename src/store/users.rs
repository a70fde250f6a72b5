//! Users: accounts with an argon2id password hash, a login counter and a disabled flag.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::UserId;
use super::entities::user;

pub use user::Model as User;

/// Normalises an e-mail for storage and lookup: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Inserts a user; a duplicate e-mail surfaces as a unique violation.
pub async fn create(
    db: &impl ConnectionTrait,
    email: &str,
    password_hash: String,
) -> Result<User, sea_orm::DbErr> {
    user::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(normalize_email(email)),
        password_hash: Set(password_hash),
        login_count: Set(0),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<User>, sea_orm::DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(normalize_email(email)))
        .one(db)
        .await
}

pub async fn find(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, sea_orm::DbErr> {
    user::Entity::find_by_id(id.0).one(db).await
}

/// Counts a successful login (sessions only; tokens never call this).
pub async fn record_login(db: &impl ConnectionTrait, id: UserId) -> Result<(), sea_orm::DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::LoginCount,
            Expr::col(user::Column::LoginCount).add(1),
        )
        .filter(user::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(())
}

/// Disables or re-enables an account; returns false when there is no such user.
pub async fn set_disabled(
    db: &impl ConnectionTrait,
    id: UserId,
    disabled: bool,
) -> Result<bool, sea_orm::DbErr> {
    let result = user::Entity::update_many()
        .col_expr(user::Column::Disabled, Expr::value(disabled))
        .filter(user::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Deletes a user with their memberships and sessions (foreign keys cascade).
pub async fn delete(db: &impl ConnectionTrait, id: UserId) -> Result<bool, sea_orm::DbErr> {
    let result = user::Entity::delete_by_id(id.0).exec(db).await?;
    Ok(result.rows_affected > 0)
}

/// Replaces the password hash (a password change, or a parameter upgrade at login).
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: UserId,
    password_hash: String,
) -> Result<(), sea_orm::DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .filter(user::Column::Id.eq(id.0))
        .exec(db)
        .await?;
    Ok(())
}
