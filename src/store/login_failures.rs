//! Login throttling counters shared by every instance on a PostgreSQL database. Each call is one
//! statement, atomic on its own, timed by the database's clock, so instances whose clocks differ
//! still share one window.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

/// A counter as read or just counted: failures in the window, and the time left in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub failures: u32,
    pub left: Duration,
}

fn counted(row: Option<sea_orm::QueryResult>) -> Result<Option<Counted>, DbErr> {
    let Some(row) = row else {
        return Ok(None);
    };
    let failures: i32 = row.try_get("", "failures")?;
    let left: f64 = row.try_get("", "left_seconds")?;
    Ok(Some(Counted {
        failures: u32::try_from(failures).unwrap_or(0),
        left: Duration::try_from_secs_f64(left.max(0.0)).unwrap_or_default(),
    }))
}

fn seconds(window: Duration) -> f64 {
    window.as_secs_f64()
}

/// Counts one more on `key`, starting a new window when the last one has passed.
pub async fn bump(
    db: &impl ConnectionTrait,
    key: &str,
    window: Duration,
) -> Result<Counted, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO login_failures AS f (key, window_started_at, failures) \
             VALUES ($1, now(), 1) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN f.window_started_at > now() - make_interval(secs => $2) \
                          THEN f.failures + 1 ELSE 1 END, \
               window_started_at = CASE WHEN f.window_started_at > now() - make_interval(secs => $2) \
                          THEN f.window_started_at ELSE now() END \
             RETURNING failures, \
               EXTRACT(EPOCH FROM window_started_at + make_interval(secs => $2) - now())::float8 \
                 AS left_seconds",
            [key.into(), seconds(window).into()],
        ))
        .await?;
    counted(row)?
        .ok_or_else(|| DbErr::RecordNotFound("login_failures: upsert returned no row".into()))
}

/// The counter of `key` if its window is still open.
pub async fn peek(
    db: &impl ConnectionTrait,
    key: &str,
    window: Duration,
) -> Result<Option<Counted>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT failures, \
               EXTRACT(EPOCH FROM window_started_at + make_interval(secs => $2) - now())::float8 \
                 AS left_seconds \
             FROM login_failures \
             WHERE key = $1 AND window_started_at > now() - make_interval(secs => $2)",
            [key.into(), seconds(window).into()],
        ))
        .await?;
    counted(row)
}

/// Forgets the counter of `key`.
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM login_failures WHERE key = $1",
        [key.into()],
    ))
    .await?;
    Ok(())
}
