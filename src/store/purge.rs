//! Purging rows nobody can use any more: expired issued tokens, revocations that no live token
//! needs, ended sessions, closed login-throttling windows and expired invitations. Deletes run in bounded batches
//! (each a short statement of its own), so a purge never holds a lock for long and requests go
//! on between batches.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entities::{invitation, issued_token, login_failure, revoked_family, session};

/// How long a revocation outlives the last token it covers: room for clocks that disagree
/// between instances (a lagging clock accepts a token a little past its `exp`).
pub const REVOCATION_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// What one purge may delete, and what counts as ended.
#[derive(Debug, Clone, Copy)]
pub struct Purge {
    /// The time rows are judged against.
    pub now: DateTime<Utc>,
    /// Rows one statement deletes at most.
    pub batch: u64,
    /// Statements one table gets per purge at most (the rest waits for the next purge).
    pub max_batches: u32,
    /// A session unused this long has ended.
    pub session_idle: chrono::Duration,
    /// A throttling window this old has closed.
    pub login_window: chrono::Duration,
    /// An invitation this old has expired.
    pub invitation_lifetime: chrono::Duration,
}

impl Purge {
    /// A purge judged at `now`, with the service's session and throttling settings.
    pub fn new(now: DateTime<Utc>, settings: &crate::config::Settings) -> Self {
        // Capped at a century, so `now - d` cannot overflow.
        let century = chrono::Duration::days(36_500);
        let chrono = |d: std::time::Duration| {
            chrono::Duration::from_std(d).map_or(century, |d| d.min(century))
        };
        Purge {
            now,
            batch: 1000,
            max_batches: 100,
            session_idle: chrono(settings.session_idle),
            login_window: chrono(settings.login_window),
            invitation_lifetime: chrono(settings.invitation_lifetime),
        }
    }
}

/// Rows deleted per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub issued_tokens: u64,
    pub revoked_families: u64,
    pub sessions: u64,
    pub login_failures: u64,
    pub invitations: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.issued_tokens
            + self.revoked_families
            + self.sessions
            + self.login_failures
            + self.invitations
    }
}

/// Deletes, batch by batch, the rows of `E` whose key is among the first `batch` keys matching
/// `ended`; stops when a batch comes back short or after `max_batches`.
async fn in_batches<E, C>(
    db: &C,
    purge: &Purge,
    key: E::Column,
    ended: sea_orm::Condition,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    in_batches_by::<E, C>(db, purge, &[key], ended).await
}

/// [`in_batches`] for a key of one or more columns (compared as a row value).
async fn in_batches_by<E, C>(
    db: &C,
    purge: &Purge,
    key: &[E::Column],
    ended: sea_orm::Condition,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut deleted = 0;
    for _ in 0..purge.max_batches {
        let keys = Query::select()
            .columns(key.iter().copied())
            .from(E::default())
            .cond_where(ended.clone())
            .limit(purge.batch)
            .to_owned();
        let chosen = match key {
            [one] => one.in_subquery(keys),
            many => Expr::tuple(many.iter().map(|c| Expr::col(*c))).in_subquery(keys),
        };
        let result = E::delete_many().filter(chosen).exec(db).await?;
        deleted += result.rows_affected;
        if result.rows_affected < purge.batch {
            break;
        }
        // Let requests waiting on the database go first.
        tokio::task::yield_now().await;
    }
    Ok(deleted)
}

/// One purge of every table.
pub async fn run(db: &impl ConnectionTrait, purge: Purge) -> Result<Purged, DbErr> {
    let now = purge.now;
    // A revocation goes only when no token of its family is still (or almost) valid. Tokens are
    // recorded before they are handed out, so "no live row" means "no live token".
    let live_in_family = Query::select()
        .expr(Expr::val(1))
        .from(issued_token::Entity)
        .and_where(
            Expr::col((issued_token::Entity, issued_token::Column::Family))
                .equals((revoked_family::Entity, revoked_family::Column::Family)),
        )
        .and_where(issued_token::Column::ExpiresAt.gt(now - REVOCATION_GRACE))
        .to_owned();
    let revoked_families = in_batches::<revoked_family::Entity, _>(
        db,
        &purge,
        revoked_family::Column::Family,
        sea_orm::Condition::all().add(Expr::exists(live_in_family).not()),
    )
    .await?;
    // Expired tokens go after the revocations that looked at them, and only once past the
    // same grace, so the check above always sees every token that might still be accepted.
    let issued_tokens = in_batches::<issued_token::Entity, _>(
        db,
        &purge,
        issued_token::Column::Jti,
        sea_orm::Condition::all().add(issued_token::Column::ExpiresAt.lte(now - REVOCATION_GRACE)),
    )
    .await?;
    let sessions = in_batches::<session::Entity, _>(
        db,
        &purge,
        session::Column::IdHash,
        sea_orm::Condition::any()
            .add(session::Column::ExpiresAt.lte(now))
            .add(session::Column::LastSeenAt.lte(now - purge.session_idle)),
    )
    .await?;
    let login_failures = in_batches::<login_failure::Entity, _>(
        db,
        &purge,
        login_failure::Column::Key,
        sea_orm::Condition::all()
            .add(login_failure::Column::WindowStartedAt.lte(now - purge.login_window)),
    )
    .await?;
    // An expired invitation can no longer be accepted (see `invitations::issued_after`).
    let invitations = in_batches_by::<invitation::Entity, _>(
        db,
        &purge,
        &[invitation::Column::TenantId, invitation::Column::UserId],
        sea_orm::Condition::all()
            .add(invitation::Column::CreatedAt.lte(now - purge.invitation_lifetime)),
    )
    .await?;
    Ok(Purged {
        issued_tokens,
        revoked_families,
        sessions,
        login_failures,
        invitations,
    })
}
