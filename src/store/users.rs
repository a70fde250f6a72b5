//! Users: accounts with an argon2id password hash, a login counter and a disabled flag.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    QueryTrait, Set,
};
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
        credentials_valid_after: Set(None),
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

/// The statement that counts a successful login (sessions only; tokens never count), for the
/// login's audit event to go with (`audit::record_with`).
pub fn count_login(backend: sea_orm::DbBackend, id: UserId) -> sea_orm::Statement {
    user::Entity::update_many()
        .col_expr(
            user::Column::LoginCount,
            Expr::col(user::Column::LoginCount).add(1),
        )
        .filter(user::Column::Id.eq(id.0))
        .build(backend)
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

/// The kill switch: every session created and every token issued before now is refused from
/// now on (see `auth::Standing`), and the user's sessions are deleted. Three statements whatever
/// the number of sessions and tokens; run it in the transaction of the change it belongs to (a
/// failed change then ends nothing). Returns the instant from which credentials count again.
///
/// The instant is taken once this transaction holds the user's row (PostgreSQL) or the database's
/// write lock (SQLite): a token minted concurrently either was recorded before it, and so was
/// issued before it, or checks the user's row after this commits (see `auth::Authn::mint`).
pub async fn end_credentials(
    txn: &sea_orm::DatabaseTransaction,
    id: UserId,
) -> Result<chrono::DateTime<Utc>, sea_orm::DbErr> {
    super::sessions::delete_for_user(txn, id).await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // `FOR NO KEY UPDATE`: it waits for, and holds off, readers that lock the row to see a
        // switch settle (`find_settled`), but not the key locks of rows that merely point at
        // the user (a session being inserted), so a login in flight cannot deadlock with it.
        user::Entity::find_by_id(id.0)
            .lock(sea_orm::sea_query::LockType::NoKeyUpdate)
            .one(txn)
            .await?;
    }
    let at = Utc::now();
    user::Entity::update_many()
        .col_expr(user::Column::CredentialsValidAfter, Expr::value(at))
        .filter(user::Column::Id.eq(id.0))
        .exec(txn)
        .await?;
    Ok(at)
}

/// The user as stored now, holding the row (PostgreSQL) until the transaction ends: it waits
/// for a kill switch in progress, and the transaction may then write the row (a login counts
/// itself) without upgrading a shared lock, which concurrent logins would deadlock on.
pub async fn find_for_update(
    txn: &sea_orm::DatabaseTransaction,
    id: UserId,
) -> Result<Option<User>, sea_orm::DbErr> {
    let select = user::Entity::find_by_id(id.0);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        select
            .lock(sea_orm::sea_query::LockType::NoKeyUpdate)
            .one(txn)
            .await
    } else {
        select.one(txn).await
    }
}

/// Makes what is counted per user in this transaction (live tokens) counted by one transaction
/// at a time, until it ends. PostgreSQL: the user's row is held. SQLite: a write that changes
/// nothing (no login count is negative) takes the database's write lock before anything is
/// read, waiting within the busy timeout for another writer, as `BEGIN IMMEDIATE` would.
pub async fn lock_for_counting(
    txn: &sea_orm::DatabaseTransaction,
    id: UserId,
) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        user::Entity::find_by_id(id.0)
            .lock(sea_orm::sea_query::LockType::NoKeyUpdate)
            .one(txn)
            .await?;
    } else {
        user::Entity::update_many()
            .col_expr(
                user::Column::LoginCount,
                Expr::col(user::Column::LoginCount),
            )
            .filter(user::Column::Id.eq(id.0))
            .filter(user::Column::LoginCount.lt(0))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The user as stored now, read past every cache and, on PostgreSQL, after any transaction that
/// holds the row (a kill switch in progress) has ended.
pub async fn find_settled(
    db: &impl ConnectionTrait,
    id: UserId,
) -> Result<Option<User>, sea_orm::DbErr> {
    let select = user::Entity::find_by_id(id.0);
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        select.lock_shared().one(db).await
    } else {
        select.one(db).await
    }
}

/// Disables (ending every credential issued so far, in the same transaction) or re-enables an
/// account; re-enabling revives nothing. Returns false when there is no such user.
pub async fn set_disabled_ending_credentials(
    db: &sea_orm::DatabaseConnection,
    id: UserId,
    disabled: bool,
    actor: &super::audit::Actor,
) -> Result<bool, sea_orm::DbErr> {
    use super::audit::{self, Event, action};
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    let found = set_disabled(&txn, id, disabled).await?;
    if found && disabled {
        end_credentials(&txn, id).await?;
    }
    if found {
        let name = if disabled {
            action::USER_DISABLED
        } else {
            action::USER_ENABLED
        };
        audit::record(
            &txn,
            Event::new(None, actor, name, format!("user:{}", id.0)),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(found)
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
