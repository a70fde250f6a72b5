//! Issued tokens and revoked token families.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryTrait,
    Select, Set,
};
use uuid::Uuid;

use super::UserId;
use super::entities::{issued_token, revoked_family};
use super::page::{Keyset, Position, Rows};

pub use issued_token::Model as IssuedToken;

/// A minted token, as recorded.
pub struct NewToken<'a> {
    pub jti: &'a str,
    pub user: UserId,
    pub family: &'a str,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub name: Option<&'a str>,
    pub read_only: bool,
}

/// Records a minted token.
pub async fn record(db: &impl ConnectionTrait, token: NewToken<'_>) -> Result<(), DbErr> {
    db.execute_raw(insert(db.get_database_backend(), token))
        .await?;
    Ok(())
}

/// The statement that records a minted token, for the mint's audit event to go with
/// (`audit::record_with`).
pub fn insert(backend: sea_orm::DbBackend, token: NewToken<'_>) -> sea_orm::Statement {
    issued_token::Entity::insert(issued_token::ActiveModel {
        jti: Set(token.jti.to_owned()),
        user_id: Set(token.user.0),
        family: Set(token.family.to_owned()),
        issued_at: Set(token.issued_at),
        expires_at: Set(token.expires_at),
        name: Set(token.name.map(str::to_owned)),
        read_only: Set(token.read_only),
    })
    .build(backend)
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

/// The user's live tokens: not expired, not in a revoked family, and issued at or after
/// `issued_from` (the first whole second after the user's last kill switch, see
/// [`super::users::end_credentials`]; tokens carry whole seconds).
fn live(user: UserId, issued_from: Option<DateTime<Utc>>) -> Select<issued_token::Entity> {
    let revoked = Query::select()
        .column(revoked_family::Column::Family)
        .from(revoked_family::Entity)
        .and_where(revoked_family::Column::UserId.eq(user.0))
        .to_owned();
    let select = issued_token::Entity::find()
        .filter(issued_token::Column::UserId.eq(user.0))
        .filter(issued_token::Column::ExpiresAt.gt(Utc::now()))
        .filter(issued_token::Column::Family.not_in_subquery(revoked));
    match issued_from {
        Some(from) => select.filter(issued_token::Column::IssuedAt.gte(from)),
        None => select,
    }
}

/// How many live tokens the user holds (see [`live`]).
pub async fn count_live(
    db: &impl ConnectionTrait,
    user: UserId,
    issued_from: Option<DateTime<Utc>>,
) -> Result<u64, DbErr> {
    live(user, issued_from).count(db).await
}

/// One page of the user's live tokens (see [`live`]), newest first.
pub async fn list_live(
    db: &impl ConnectionTrait,
    user: UserId,
    issued_from: Option<DateTime<Utc>>,
    page: Keyset,
) -> Result<Rows<IssuedToken>, DbErr> {
    let select = live(user, issued_from);
    let rows = page
        .apply_newest_first_text_id(
            select,
            issued_token::Column::IssuedAt,
            issued_token::Column::Jti,
        )
        .all(db)
        .await?;
    Ok(page.collect(rows, |token| Position {
        created_at: token.issued_at,
        // Every `jti` this service mints is a UUID.
        id: Uuid::parse_str(&token.jti).unwrap_or_default(),
    }))
}
