//! Published policy versions and their activations: the policy set every instance serves when
//! the policies come from the database (`--policy-source database`).
//!
//! A version row is written once and never changed; activating a version (a publish, or a
//! rollback to an earlier one) adds an activation row, and the latest activation names the active
//! version. Times come from the database's clock, so instances and operators' machines whose
//! clocks disagree still record one order.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};

use super::audit;
use super::entities::{policy_activation, policy_version};

pub use policy_activation::Model as Activation;
pub use policy_version::Model as Version;

/// A version to store: what `zygo policy publish` read, validated and checked.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub content_hash: String,
    pub schema: String,
    pub roles: String,
    /// JSON object: `.cedar` file name → text.
    pub policies: String,
    /// JSON object: fixture file name → text.
    pub fixtures: String,
    pub published_by: String,
    pub message: String,
    pub diff_summary: String,
}

/// Why a publish or a rollback wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0}")]
    Db(#[from] DbErr),
    #[error(
        "the active version changed meanwhile (now {}); check the change again against it",
        .0.map_or_else(|| "none".to_owned(), |n| n.to_string())
    )]
    Moved(Option<i64>),
    #[error("there is no policy version {0}")]
    NoSuchVersion(i64),
    #[error("version {0} is already the active version")]
    AlreadyActive(i64),
}

/// The database's clock, now.
pub async fn now(db: &impl ConnectionTrait) -> Result<DateTime<Utc>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS us"
        }
        _ => "SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AS us",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::Custom("the database did not tell the time".into()))?;
    let micros: i64 = row.try_get("", "us")?;
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| DbErr::Custom(format!("the database's clock reads {micros} µs")))
}

/// The number of the active version (`None`: nothing was ever published).
pub async fn active(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    Ok(policy_activation::Entity::find()
        .order_by_desc(policy_activation::Column::Id)
        .limit(1)
        .one(db)
        .await?
        .map(|a| a.version))
}

/// One version, whole.
pub async fn find(db: &impl ConnectionTrait, number: i64) -> Result<Option<Version>, DbErr> {
    policy_version::Entity::find_by_id(number).one(db).await
}

/// Every version, newest first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Version>, DbErr> {
    policy_version::Entity::find()
        .order_by_desc(policy_version::Column::Number)
        .all(db)
        .await
}

/// Every activation, newest first.
pub async fn activations(db: &impl ConnectionTrait) -> Result<Vec<Activation>, DbErr> {
    policy_activation::Entity::find()
        .order_by_desc(policy_activation::Column::Id)
        .all(db)
        .await
}

async fn next_activation(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    Ok(policy_activation::Entity::find()
        .order_by_desc(policy_activation::Column::Id)
        .limit(1)
        .one(db)
        .await?
        .map_or(1, |a| a.id + 1))
}

async fn record_activation(
    db: &impl ConnectionTrait,
    version: i64,
    kind: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let id = next_activation(db).await?;
    policy_activation::Entity::insert(policy_activation::ActiveModel {
        id: Set(id),
        version: Set(version),
        kind: Set(kind.to_owned()),
        activated_by: Set(by.to_owned()),
        activated_at: Set(at),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Makes publishes and rollbacks take turns, whichever process or instance runs them (see
/// [`super::take_turn`]): what a publish then reads as the active version is final, and a
/// publish that lost a race answers [`ReleaseError::Moved`] rather than a duplicate version
/// number.
async fn take_turn(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    super::take_turn(
        txn,
        5139283817264912001,
        "UPDATE policy_activations SET id = id WHERE id < 0",
    )
    .await
}

/// Stores `new` as the next version and activates it, in one transaction, provided the active
/// version is still `expected` (what the change was checked against). Returns its number.
pub async fn publish(
    db: &DatabaseConnection,
    expected: Option<i64>,
    new: NewVersion,
) -> Result<i64, ReleaseError> {
    let txn = db.begin().await?;
    take_turn(&txn).await?;
    let active = active(&txn).await?;
    if active != expected {
        return Err(ReleaseError::Moved(active));
    }
    let number = policy_version::Entity::find()
        .order_by_desc(policy_version::Column::Number)
        .limit(1)
        .one(&txn)
        .await?
        .map_or(1, |v| v.number + 1);
    let at = now(&txn).await?;
    let (hash, message, diff) = (
        new.content_hash.clone(),
        new.message.clone(),
        new.diff_summary.clone(),
    );
    policy_version::Entity::insert(policy_version::ActiveModel {
        number: Set(number),
        content_hash: Set(new.content_hash),
        schema: Set(new.schema),
        roles: Set(new.roles),
        policies: Set(new.policies),
        fixtures: Set(new.fixtures),
        published_by: Set(new.published_by.clone()),
        published_at: Set(at),
        message: Set(new.message),
        diff_summary: Set(new.diff_summary),
    })
    .exec(&txn)
    .await?;
    record_activation(&txn, number, "publish", &new.published_by, at).await?;
    audit::record(
        &txn,
        audit::Event::new(
            None,
            &audit::Actor::cli(),
            audit::action::POLICY_PUBLISHED,
            format!("policy_version:{number}"),
        )
        .before(serde_json::json!({ "active_version": expected }))
        .after(serde_json::json!({
            "active_version": number,
            "content_hash": hash,
            "by": new.published_by,
            "message": message,
            "diff": diff,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(number)
}

/// Activates an earlier version again (recorded as a `rollback` by `by`), provided the active
/// version is still `expected`.
pub async fn rollback(
    db: &DatabaseConnection,
    expected: Option<i64>,
    number: i64,
    by: &str,
) -> Result<(), ReleaseError> {
    let txn = db.begin().await?;
    take_turn(&txn).await?;
    let active = active(&txn).await?;
    if active != expected {
        return Err(ReleaseError::Moved(active));
    }
    if active == Some(number) {
        return Err(ReleaseError::AlreadyActive(number));
    }
    if find(&txn, number).await?.is_none() {
        return Err(ReleaseError::NoSuchVersion(number));
    }
    let at = now(&txn).await?;
    record_activation(&txn, number, "rollback", by, at).await?;
    audit::record(
        &txn,
        audit::Event::new(
            None,
            &audit::Actor::cli(),
            audit::action::POLICY_ROLLED_BACK,
            format!("policy_version:{number}"),
        )
        .before(serde_json::json!({ "active_version": active }))
        .after(serde_json::json!({ "active_version": number, "by": by })),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
